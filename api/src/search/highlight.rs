//! `<mark>` highlighting of what a search matched, done here rather than by the store so that it
//! is the same whichever store answered, and so that the text around the marks is HTML-escaped
//! (a log message is producer input; a page showing it must not run it).
//!
//! Words are runs of letters and digits, compared in lower case, as the stores' tokenizers split
//! and fold them; a phrase is marked where its words follow one another.

use serde::Serialize;

/// A text this long or shorter is returned whole; a longer one as fragments around the marks.
const WHOLE_TEXT_CHARS: usize = 300;
/// Characters of context on each side of a mark in a fragment.
const CONTEXT_CHARS: usize = 60;
const MAX_FRAGMENTS: usize = 3;

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Highlights {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub message: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_message: Vec<String>,
}

impl Highlights {
    pub fn is_empty(&self) -> bool {
        self.message.is_empty() && self.error_message.is_empty()
    }
}

/// Runs of letters and digits, as byte ranges.
fn words(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (at, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(at),
            (false, Some(s)) => {
                out.push((s, at));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

/// The byte ranges of `text` where one of `phrases` occurs, in order and not overlapping.
fn marks(text: &str, phrases: &[&str]) -> Vec<(usize, usize)> {
    let spans = words(text);
    let lowered: Vec<String> = spans
        .iter()
        .map(|&(s, e)| text[s..e].to_lowercase())
        .collect();
    let mut marked = vec![false; spans.len()];
    let mut ranges = Vec::new();
    for phrase in phrases {
        let wanted: Vec<String> = words(phrase)
            .iter()
            .map(|&(s, e)| phrase[s..e].to_lowercase())
            .collect();
        if wanted.is_empty() || wanted.len() > lowered.len() {
            continue;
        }
        for start in 0..=(lowered.len() - wanted.len()) {
            let window = start..start + wanted.len();
            if lowered[window.clone()] == wanted[..] && !marked[window.clone()].contains(&true) {
                marked[window.clone()].iter_mut().for_each(|m| *m = true);
                ranges.push((spans[start].0, spans[window.end - 1].1));
            }
        }
    }
    ranges.sort_unstable();
    ranges
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `text[from..to]`, escaped, with the marks inside it wrapped.
fn render(text: &str, from: usize, to: usize, marks: &[(usize, usize)]) -> String {
    let mut out = String::new();
    let mut at = from;
    for &(start, end) in marks.iter().filter(|(s, e)| *s >= from && *e <= to) {
        escape_into(&mut out, &text[at..start]);
        out.push_str("<mark>");
        escape_into(&mut out, &text[start..end]);
        out.push_str("</mark>");
        at = end;
    }
    escape_into(&mut out, &text[at..to]);
    out
}

/// The byte offset `chars` characters before (negative) or after `at`, within the text.
fn step(text: &str, at: usize, chars: usize, back: bool) -> usize {
    if back {
        text[..at]
            .char_indices()
            .rev()
            .nth(chars.saturating_sub(1))
            .map_or(0, |(i, _)| i)
    } else {
        text[at..]
            .char_indices()
            .nth(chars)
            .map_or(text.len(), |(i, _)| at + i)
    }
}

/// Fragments of `text` with the phrases marked; none when no phrase occurs in it.
pub fn fragments(text: &str, phrases: &[&str]) -> Vec<String> {
    let marks = marks(text, phrases);
    if marks.is_empty() {
        return Vec::new();
    }
    if text.chars().count() <= WHOLE_TEXT_CHARS {
        return vec![render(text, 0, text.len(), &marks)];
    }
    // Windows of context around each mark, merged where they touch.
    let mut windows: Vec<(usize, usize)> = Vec::new();
    for &(start, end) in &marks {
        let window = (
            step(text, start, CONTEXT_CHARS, true),
            step(text, end, CONTEXT_CHARS, false),
        );
        match windows.last_mut() {
            Some(last) if window.0 <= last.1 => last.1 = last.1.max(window.1),
            _ => windows.push(window),
        }
    }
    windows
        .into_iter()
        .take(MAX_FRAGMENTS)
        .map(|(from, to)| {
            let mut fragment = String::new();
            if from > 0 {
                fragment.push('…');
            }
            fragment.push_str(&render(text, from, to, &marks));
            if to < text.len() {
                fragment.push('…');
            }
            fragment
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_words_and_phrases_in_any_case_and_escapes_the_rest() {
        assert_eq!(
            fragments(
                "Payment <b>gateway</b> timed-out & GATEWAY down",
                &["gateway", "timed out"]
            ),
            [
                "Payment &lt;b&gt;<mark>gateway</mark>&lt;/b&gt; <mark>timed-out</mark> &amp; <mark>GATEWAY</mark> down"
            ]
        );
        assert!(fragments("nothing here", &["gateway"]).is_empty());
        assert!(
            fragments("timed in, out", &["timed out"]).is_empty(),
            "a phrase's words must follow one another"
        );
        assert_eq!(
            fragments("Größe über", &["über"]),
            ["Größe <mark>über</mark>"]
        );
    }

    #[test]
    fn long_text_gives_fragments_around_the_marks() {
        let text = format!(
            "{} needle {} needle {}",
            "a".repeat(400),
            "b".repeat(400),
            "c".repeat(10)
        );
        let found = fragments(&text, &["needle"]);
        assert_eq!(found.len(), 2);
        for fragment in &found {
            assert!(fragment.contains("<mark>needle</mark>"), "{fragment}");
            assert!(
                fragment.chars().count() < 2 * CONTEXT_CHARS + 30,
                "{fragment}"
            );
            assert!(fragment.starts_with('…'));
        }
        assert!(found[1].ends_with("c".repeat(10).as_str()));
    }
}
