//! Lone UTF-16 surrogates in JSON escapes (`"\ud800"`), made into U+FFFD before a record is
//! parsed.
//!
//! JSON's grammar allows them (RFC 8259 §8.2) and producers do send them: JavaScript's
//! `JSON.stringify` writes `\ud83d` for half an emoji cut off by a truncated string. But they are
//! not text: simd-json reads a lone high surrogate as U+0000, serde_json refuses the document,
//! and a Rust `String` cannot hold one. Refusing the record would lose a whole event for one
//! character that was already lost upstream; Sluice does what Lucene does when Elasticsearch
//! indexes such a string, and what WHATWG's UTF-16 decoding does: each lone surrogate becomes
//! U+FFFD, the replacement character. The escape is rewritten in place as `\ufffd` (the same
//! length), so ingest, the processor and both stores all read the same text, and the stored
//! document is valid JSON.

/// Replaces every escape of a lone surrogate in `bytes` with `\ufffd`; returns how many.
/// Escapes are read as JSON reads them (`\\u…` is an escaped backslash, then text).
pub fn repair_lone_surrogates(bytes: &mut [u8]) -> usize {
    let mut repaired = 0;
    let mut at = 0;
    while let Some(offset) = bytes.get(at..).and_then(|rest| memchr::memchr(b'\\', rest)) {
        let escape = at + offset;
        if bytes.get(escape + 1) != Some(&b'u') {
            // Any other escape is two bytes, an escaped backslash included.
            at = escape + 2;
            continue;
        }
        at = escape + 6;
        let Some(unit) = hex4(bytes, escape + 2) else {
            continue;
        };
        let paired = match unit {
            0xD800..=0xDBFF => {
                let low = (bytes.get(escape + 6) == Some(&b'\\')
                    && bytes.get(escape + 7) == Some(&b'u'))
                .then(|| hex4(bytes, escape + 8))
                .flatten();
                low.is_some_and(|low| (0xDC00..=0xDFFF).contains(&low))
            }
            0xDC00..=0xDFFF => false,
            _ => continue,
        };
        if paired {
            at = escape + 12;
        } else {
            bytes[escape + 2..escape + 6].copy_from_slice(b"fffd");
            repaired += 1;
        }
    }
    repaired
}

fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = bytes.get(at..at + 4)?;
    digits.iter().try_fold(0u16, |unit, &digit| {
        let value = (digit as char).to_digit(16)?;
        Some(unit << 4 | value as u16)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(text: &str) -> (String, usize) {
        let mut bytes = text.as_bytes().to_vec();
        let count = repair_lone_surrogates(&mut bytes);
        (String::from_utf8(bytes).expect("still UTF-8"), count)
    }

    #[test]
    fn lone_surrogates_become_the_replacement_character() {
        assert_eq!(
            repaired(r#"{"n":"\ud800"}"#),
            (r#"{"n":"\ufffd"}"#.into(), 1)
        );
        assert_eq!(
            repaired(r#"{"n":"\uDC00x"}"#),
            (r#"{"n":"\ufffdx"}"#.into(), 1)
        );
        // A high surrogate followed by another escape that is not a low one.
        assert_eq!(
            repaired(r#"{"n":"\ud800\u0041\ud800\ud800"}"#),
            (r#"{"n":"\ufffd\u0041\ufffd\ufffd"}"#.into(), 3)
        );
    }

    #[test]
    fn pairs_and_escaped_backslashes_are_left_alone() {
        let text = r#"{"n":"\ud83d\ude00","m":"\\ud800","o":"\u00e9\n\\"}"#;
        assert_eq!(repaired(text), (text.into(), 0));
    }

    #[test]
    fn what_is_repaired_parses_in_both_parsers_as_u_fffd() {
        let (text, _) = repaired(r#"{"n":"a\ud800b"}"#);
        let serde: serde_json::Value = serde_json::from_str(&text).expect("serde_json reads it");
        assert_eq!(serde["n"], "a\u{fffd}b");
        let mut bytes = text.into_bytes();
        let simd: serde_json::Value =
            simd_json::from_slice(&mut bytes).expect("simd-json reads it");
        assert_eq!(simd["n"], "a\u{fffd}b");
    }

    #[test]
    fn a_cut_off_escape_is_left_for_the_parser_to_refuse() {
        assert_eq!(repaired(r#"{"n":"\ud8"#).1, 0);
        assert_eq!(repaired("\\").1, 0);
    }
}
