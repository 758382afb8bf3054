//! The search box's query syntax, parsed once above the stores so both answer the same thing.
//!
//! `payment timeout` (every word), `"gateway timed out"` (a phrase), `a OR b`, `a AND b`,
//! `NOT a` or `-a`, parentheses, `field:value` on the fields of [`Field`], `message:word` and
//! `error_message:"a phrase"` on one text field, and `amount:>100`, `amount:<=5`,
//! `amount:[10 TO 20]` on numbers. `AND`, `OR` and `NOT` are operators only in capitals, as in
//! Lucene; `AND` binds tighter than `OR`. A word is matched as a phrase of its tokens, so
//! `time-out` finds "time out" in both stores whatever their tokenizers make of the hyphen.
//!
//! Mistakes are refused with the character where they were found, rather than guessed at.

use std::ops::Bound;

use thiserror::Error;

use super::fields::{Field, FieldKind};
use super::{Filter, normalize_level};

/// Longer queries are refused: nobody types them, and they cost the store.
pub const MAX_QUERY_CHARS: usize = 2_000;
/// Parentheses nest at most this deep, which bounds the parser's recursion.
const MAX_DEPTH: usize = 32;

/// Which text field a text clause searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    Message,
    ErrorMessage,
}

impl TextField {
    pub const BOTH: [TextField; 2] = [TextField::Message, TextField::ErrorMessage];

    pub fn name(self) -> &'static str {
        match self {
            TextField::Message => "message",
            TextField::ErrorMessage => "error_message",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TextQuery {
    /// The words of `phrase`, in order, in one of `fields`.
    Phrase {
        fields: Vec<TextField>,
        phrase: String,
    },
    /// A `field:value` clause.
    Filter(Filter),
    And(Vec<TextQuery>),
    Or(Vec<TextQuery>),
    Not(Box<TextQuery>),
}

impl TextQuery {
    /// The phrases a match has to contain somewhere (not under a `NOT`), for highlighting.
    pub fn positive_phrases(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_phrases(&mut out);
        out
    }

    fn collect_phrases<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            TextQuery::Phrase { phrase, .. } => out.push(phrase),
            TextQuery::And(parts) | TextQuery::Or(parts) => {
                parts.iter().for_each(|p| p.collect_phrases(out));
            }
            TextQuery::Filter(_) | TextQuery::Not(_) => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason} (at character {position})")]
pub struct QuerySyntaxError {
    /// Counted in characters from 1.
    pub position: usize,
    pub reason: String,
}

/// Parses a search box query; `None` when it holds nothing but blanks.
pub fn parse(input: &str) -> Result<Option<TextQuery>, QuerySyntaxError> {
    let chars: Vec<char> = input.chars().collect();
    if chars.len() > MAX_QUERY_CHARS {
        return Err(QuerySyntaxError {
            position: MAX_QUERY_CHARS + 1,
            reason: format!("the query is longer than {MAX_QUERY_CHARS} characters"),
        });
    }
    let mut parser = Parser {
        chars,
        at: 0,
        depth: 0,
    };
    parser.skip_blanks();
    if parser.at == parser.chars.len() {
        return Ok(None);
    }
    let query = parser.or()?;
    parser.skip_blanks();
    if parser.at < parser.chars.len() {
        return Err(parser.error("unexpected ')' with no '(' before it"));
    }
    Ok(Some(query))
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn error(&self, reason: impl Into<String>) -> QuerySyntaxError {
        QuerySyntaxError {
            position: self.at + 1,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    /// Whether the next bare word is `keyword` (followed by a blank, a bracket or the end).
    fn at_keyword(&self, keyword: &str) -> bool {
        let end = self.at + keyword.len();
        end <= self.chars.len()
            && self.chars[self.at..end].iter().copied().eq(keyword.chars())
            && self
                .chars
                .get(end)
                .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | ')' | '"' | ']'))
    }

    fn or(&mut self) -> Result<TextQuery, QuerySyntaxError> {
        let mut parts = vec![self.and()?];
        loop {
            self.skip_blanks();
            if !self.at_keyword("OR") {
                break;
            }
            self.at += 2;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            TextQuery::Or(parts)
        })
    }

    fn and(&mut self) -> Result<TextQuery, QuerySyntaxError> {
        let mut parts = vec![self.unary()?];
        loop {
            self.skip_blanks();
            match self.peek() {
                None | Some(')') => break,
                _ if self.at_keyword("OR") => break,
                _ if self.at_keyword("AND") => {
                    self.at += 3;
                    parts.push(self.unary()?);
                }
                _ => parts.push(self.unary()?),
            }
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            TextQuery::And(parts)
        })
    }

    fn unary(&mut self) -> Result<TextQuery, QuerySyntaxError> {
        self.skip_blanks();
        if self.at_keyword("NOT") {
            self.at += 3;
            return Ok(TextQuery::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some('-')
            && self
                .chars
                .get(self.at + 1)
                .is_some_and(|c| !c.is_whitespace())
        {
            self.at += 1;
            return Ok(TextQuery::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<TextQuery, QuerySyntaxError> {
        self.skip_blanks();
        match self.peek() {
            None => Err(self.error("the query ends where a word was expected")),
            Some('(') => {
                if self.depth == MAX_DEPTH {
                    return Err(
                        self.error(format!("parentheses nest deeper than {MAX_DEPTH} levels"))
                    );
                }
                self.depth += 1;
                self.at += 1;
                let inner = self.or()?;
                self.skip_blanks();
                if self.peek() != Some(')') {
                    return Err(self.error("missing ')'"));
                }
                self.at += 1;
                self.depth -= 1;
                Ok(inner)
            }
            Some(')') => Err(self.error("')' where a word was expected")),
            Some('"') => Ok(TextQuery::Phrase {
                fields: TextField::BOTH.to_vec(),
                phrase: self.quoted()?,
            }),
            Some(_) => self.word_or_clause(),
        }
    }

    /// A quoted phrase; the opening quote is at the cursor.
    fn quoted(&mut self) -> Result<String, QuerySyntaxError> {
        let opened = self.at;
        self.at += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(QuerySyntaxError {
                        position: opened + 1,
                        reason: "this quote is never closed".into(),
                    });
                }
                Some('"') => {
                    self.at += 1;
                    return Ok(text);
                }
                Some('\\') if self.chars.get(self.at + 1) == Some(&'"') => {
                    text.push('"');
                    self.at += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.at += 1;
                }
            }
        }
    }

    /// A bare word, up to a blank, a bracket or a quote.
    fn bare(&mut self) -> String {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| !c.is_whitespace() && !matches!(c, '(' | ')' | '"'))
        {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    fn word_or_clause(&mut self) -> Result<TextQuery, QuerySyntaxError> {
        let start = self.at;
        let name_end = self.chars[start..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@')))
            .map_or(self.chars.len(), |n| start + n);
        // A field name starts with a letter, and a URL's `http://` is a word, not a field.
        let is_clause = name_end > start
            && self.chars[start].is_ascii_alphabetic()
            && self.chars.get(name_end) == Some(&':')
            && self.chars.get(name_end + 1) != Some(&'/');
        if is_clause {
            let name: String = self.chars[start..name_end].iter().collect();
            self.at = name_end + 1;
            return self.clause(&name, start);
        }
        let word = self.bare();
        Ok(TextQuery::Phrase {
            fields: TextField::BOTH.to_vec(),
            phrase: word,
        })
    }

    /// The value of `name:`; the cursor is just after the colon.
    fn clause(&mut self, name: &str, started: usize) -> Result<TextQuery, QuerySyntaxError> {
        let text_field = match name {
            "message" => Some(TextField::Message),
            "error_message" => Some(TextField::ErrorMessage),
            _ => None,
        };
        if let Some(text_field) = text_field {
            let phrase = self.value_text()?;
            return Ok(TextQuery::Phrase {
                fields: vec![text_field],
                phrase,
            });
        }
        let Some(field) = Field::from_path(name) else {
            return Err(QuerySyntaxError {
                position: started + 1,
                reason: format!(
                    "unknown field {name:?}; fields are message, error_message, {}",
                    Field::paths()
                ),
            });
        };
        if field.is_numeric() {
            return self.numeric_clause(field).map(TextQuery::Filter);
        }
        let value = self.value_text()?;
        if field.kind() == FieldKind::Boolean && !matches!(value.as_str(), "true" | "false") {
            return Err(self.error(format!("{field} is true or false, not {value:?}")));
        }
        let value = if field == Field::Level {
            normalize_level(&value)
        } else {
            value
        };
        Ok(TextQuery::Filter(Filter::Equals(field, value)))
    }

    fn value_text(&mut self) -> Result<String, QuerySyntaxError> {
        let value = match self.peek() {
            Some('"') => self.quoted()?,
            _ => self.bare(),
        };
        if value.is_empty() {
            return Err(self.error("a value is missing after ':'"));
        }
        Ok(value)
    }

    fn numeric_clause(&mut self, field: Field) -> Result<Filter, QuerySyntaxError> {
        if self.peek() == Some('[') {
            self.at += 1;
            let lower = self.number(field)?;
            self.skip_blanks();
            if !self.at_keyword("TO") {
                return Err(self.error("expected TO in a [from TO to] range"));
            }
            self.at += 2;
            self.skip_blanks();
            let upper_start = self.at;
            while self.peek().is_some_and(|c| c != ']' && !c.is_whitespace()) {
                self.at += 1;
            }
            let upper_text: String = self.chars[upper_start..self.at].iter().collect();
            let upper = self.parse_number(field, &upper_text, upper_start)?;
            self.skip_blanks();
            if self.peek() != Some(']') {
                return Err(self.error("missing ']'"));
            }
            self.at += 1;
            return Ok(Filter::Range {
                field,
                lower: Bound::Included(lower),
                upper: Bound::Included(upper),
            });
        }
        let next = |n: usize| self.chars.get(self.at + n).copied();
        let (operator, width) = match (next(0), next(1)) {
            (Some('>'), Some('=')) => (">=", 2),
            (Some('<'), Some('=')) => ("<=", 2),
            (Some('>'), _) => (">", 1),
            (Some('<'), _) => ("<", 1),
            _ => ("=", 0),
        };
        self.at += width;
        let value = self.number(field)?;
        let (lower, upper) = match operator {
            ">=" => (Bound::Included(value), Bound::Unbounded),
            ">" => (Bound::Excluded(value), Bound::Unbounded),
            "<=" => (Bound::Unbounded, Bound::Included(value)),
            "<" => (Bound::Unbounded, Bound::Excluded(value)),
            _ => (Bound::Included(value), Bound::Included(value)),
        };
        Ok(Filter::Range {
            field,
            lower,
            upper,
        })
    }

    fn number(&mut self, field: Field) -> Result<f64, QuerySyntaxError> {
        let start = self.at;
        let text = self.bare();
        self.parse_number(field, &text, start)
    }

    fn parse_number(&self, field: Field, text: &str, at: usize) -> Result<f64, QuerySyntaxError> {
        text.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| QuerySyntaxError {
                position: at + 1,
                reason: format!("{field} takes a number, not {text:?}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(text: &str) -> TextQuery {
        TextQuery::Phrase {
            fields: TextField::BOTH.to_vec(),
            phrase: text.into(),
        }
    }

    fn parsed(input: &str) -> TextQuery {
        parse(input).expect("parses").expect("not blank")
    }

    #[test]
    fn words_phrases_and_operators() {
        assert_eq!(parse("   ").expect("blank"), None);
        assert_eq!(
            parsed("payment  timeout"),
            TextQuery::And(vec![phrase("payment"), phrase("timeout")])
        );
        assert_eq!(parsed("\"gateway timed out\""), phrase("gateway timed out"));
        assert_eq!(
            parsed("a b OR c AND d"),
            TextQuery::Or(vec![
                TextQuery::And(vec![phrase("a"), phrase("b")]),
                TextQuery::And(vec![phrase("c"), phrase("d")]),
            ]),
            "AND binds tighter than OR"
        );
        assert_eq!(
            parsed("(a OR b) -c"),
            TextQuery::And(vec![
                TextQuery::Or(vec![phrase("a"), phrase("b")]),
                TextQuery::Not(Box::new(phrase("c"))),
            ])
        );
        assert_eq!(
            parsed("NOT a or b"),
            TextQuery::And(vec![
                TextQuery::Not(Box::new(phrase("a"))),
                phrase("or"),
                phrase("b")
            ]),
            "lower-case operators are words"
        );
        assert_eq!(parsed("time-out"), phrase("time-out"));
        assert_eq!(parsed("ORDER"), phrase("ORDER"));
    }

    #[test]
    fn field_clauses() {
        assert_eq!(
            parsed("payment_method:card level:ERROR"),
            TextQuery::And(vec![
                TextQuery::Filter(Filter::Equals(Field::PaymentMethod, "card".into())),
                TextQuery::Filter(Filter::Equals(Field::Level, "error".into())),
            ])
        );
        assert_eq!(
            parsed("product_name:\"Wireless Mouse\""),
            TextQuery::Filter(Filter::Equals(Field::ProductName, "Wireless Mouse".into()))
        );
        assert_eq!(
            parsed("error_message:\"timed out\""),
            TextQuery::Phrase {
                fields: vec![TextField::ErrorMessage],
                phrase: "timed out".into()
            }
        );
        assert_eq!(
            parsed("amount:>100"),
            TextQuery::Filter(Filter::Range {
                field: Field::Amount,
                lower: Bound::Excluded(100.0),
                upper: Bound::Unbounded
            })
        );
        assert_eq!(
            parsed("fraud.score:<=30.5"),
            TextQuery::Filter(Filter::Range {
                field: Field::FraudScore,
                lower: Bound::Unbounded,
                upper: Bound::Included(30.5)
            })
        );
        assert_eq!(
            parsed("amount:[10 TO 20]"),
            TextQuery::Filter(Filter::Range {
                field: Field::Amount,
                lower: Bound::Included(10.0),
                upper: Bound::Included(20.0)
            })
        );
        assert_eq!(
            parsed("status_code:503"),
            TextQuery::Filter(Filter::Range {
                field: Field::StatusCode,
                lower: Bound::Included(503.0),
                upper: Bound::Included(503.0)
            })
        );
        assert_eq!(
            parsed("fraud.detected:true"),
            TextQuery::Filter(Filter::Equals(Field::FraudDetected, "true".into()))
        );
        assert_eq!(
            parsed("http://shop/x").positive_phrases(),
            ["http://shop/x"],
            "a colon after something that is not a field name is part of the word"
        );
    }

    #[test]
    fn mistakes_are_located() {
        let error = |input: &str| parse(input).expect_err("refused");
        let unclosed = error("gateway \"timed out");
        assert_eq!(unclosed.position, 9);
        assert!(unclosed.reason.contains("never closed"));
        assert_eq!(error("(a OR b").reason, "missing ')'");
        assert_eq!(error("a)").position, 2);
        let unknown = error("paymnt_method:card");
        assert_eq!(unknown.position, 1);
        assert!(unknown.reason.contains("payment_method"), "{unknown}");
        assert!(error("amount:lots").reason.contains("number"));
        assert!(error("amount:[1 TO]").reason.contains("number"));
        assert!(
            error("fraud.detected:maybe")
                .reason
                .contains("true or false")
        );
        assert!(error("status:").reason.contains("missing"));
        assert!(error("a OR").reason.contains("ends"));
        assert!(error(&"(".repeat(100)).reason.contains("deeper"));
        assert!(error(&"a ".repeat(1_500)).reason.contains("longer"));
    }

    #[test]
    fn positive_phrases_leave_out_negations() {
        assert_eq!(
            parsed("gateway -refused (\"timed out\" OR level:error)").positive_phrases(),
            ["gateway", "timed out"]
        );
    }
}
