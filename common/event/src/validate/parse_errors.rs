//! Saying why a record the fast parser refused is refused.
//!
//! simd-json reports where it stopped, not why in a producer's terms. A record it refuses is
//! read once more, on this slow path only, by serde_json with a seed that tracks the path being
//! read, so a valid-JSON number beyond what a double holds (`1e400`) is named as such, with its
//! field, rather than called malformed.

use std::cell::RefCell;
use std::fmt::Write;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{FieldIssue, RejectCode};

/// One step of a path into a record.
enum Step {
    Key(String),
    Index(usize),
}

/// Why `original` (the record's bytes, lone surrogates already repaired) cannot be read;
/// `fast_error` is what simd-json said.
pub(super) fn explain(original: &[u8], fast_error: &str) -> FieldIssue {
    if let Err(e) = std::str::from_utf8(original) {
        return FieldIssue::whole_record(
            RejectCode::InvalidEncoding,
            format!(
                "the record is not UTF-8 (invalid bytes at byte {}); JSON text must be UTF-8",
                e.valid_up_to()
            ),
        );
    }
    let (outcome, path) = read_tracked(original);
    match outcome {
        Err(e) if is_out_of_range(&e) => FieldIssue::new(
            &render(&path),
            RejectCode::NumberOutOfRange,
            "a number beyond what a 64-bit float holds (about ±1.8e308); send it as text if \
             it must be kept exactly",
        ),
        // Valid JSON simd-json cannot read: a negative exponent of more digits than it takes
        // (`4E-88666886666`, found by fuzzing). Its value underflows to 0; with the exponent's
        // sign turned it overflows instead, which tells its path.
        Ok(()) => match overlong_negative_exponent(original) {
            Some(sign) => {
                let mut flipped = original.to_vec();
                flipped[sign] = b'+';
                FieldIssue::new(
                    &render(&read_tracked(&flipped).1),
                    RejectCode::NumberOutOfRange,
                    "a number whose exponent has more than ten digits, which Sluice does not \
                     read (as a 64-bit float it is 0); send it as 0, or as text",
                )
            }
            None => malformed(fast_error),
        },
        Err(_) => malformed(fast_error),
    }
}

fn malformed(fast_error: &str) -> FieldIssue {
    FieldIssue::whole_record(
        RejectCode::MalformedJson,
        format!("malformed JSON: {fast_error}"),
    )
}

/// Reads `bytes` with serde_json; the outcome, and the path it was at when it stopped.
fn read_tracked(bytes: &[u8]) -> (Result<(), serde_json::Error>, Vec<Step>) {
    let path = RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let outcome = Tracked { path: &path }.deserialize(&mut deserializer);
    (outcome, path.into_inner())
}

fn is_out_of_range(e: &serde_json::Error) -> bool {
    e.to_string().starts_with("number out of range")
}

/// Where the `-` of a number's exponent of more than ten digits is, outside strings.
fn overlong_negative_exponent(bytes: &[u8]) -> Option<usize> {
    let mut sign = None;
    let mut digits = 0;
    let mut previous = 0u8;
    for (at, b) in super::outside_strings(bytes) {
        match b {
            b'-' if matches!(previous, b'e' | b'E') => {
                sign = Some(at);
                digits = 0;
            }
            b'0'..=b'9' if sign.is_some() => {
                digits += 1;
                if digits > 10 {
                    return sign;
                }
            }
            _ => sign = None,
        }
        previous = b;
    }
    None
}

fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(index) => {
                let _ = write!(out, "[{index}]");
            }
        }
    }
    out
}

/// Reads any value and leaves, when reading fails, the path to where it failed.
struct Tracked<'p> {
    path: &'p RefCell<Vec<Step>>,
}

impl<'de> DeserializeSeed<'de> for Tracked<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tracked<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            self.path.borrow_mut().push(Step::Key(key));
            map.next_value_seed(Tracked { path: self.path })?;
            self.path.borrow_mut().pop();
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        for index in 0.. {
            self.path.borrow_mut().push(Step::Index(index));
            let more = seq.next_element_seed(Tracked { path: self.path })?;
            self.path.borrow_mut().pop();
            if more.is_none() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_out_of_range_is_named_with_its_path() {
        let issue = explain(
            br#"{"log_type":"error","cart":{"items":[1,{"price":1e400}]}}"#,
            "x",
        );
        assert_eq!(issue.code, RejectCode::NumberOutOfRange);
        assert_eq!(issue.field, "cart.items[1].price");
        let top = explain(br#"{"n":-1e400}"#, "x");
        assert_eq!(
            (top.code, top.field.as_str()),
            (RejectCode::NumberOutOfRange, "n")
        );
    }

    /// Found by the `record` fuzz target: serde_json reads `4E-88666886666` (as 0), simd-json
    /// does not, and it was called malformed.
    #[test]
    fn an_exponent_too_long_to_read_is_out_of_range_with_its_path() {
        let issue = explain(
            br#"{"a":[1,{"b":4E-88666886666}],"c":"e-12345678901"}"#,
            "x",
        );
        assert_eq!(
            (issue.code, issue.field.as_str()),
            (RejectCode::NumberOutOfRange, "a[1].b"),
            "{}",
            issue.reason
        );
        let short = explain(br#"{"n":1e-4000,"s":"e-12345678901"}"#, "x");
        assert_eq!(short.code, RejectCode::MalformedJson, "{}", short.reason);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_an_encoding_problem() {
        let issue = explain(b"{\"n\":\"\xff\"}", "InvalidUtf8");
        assert_eq!(issue.code, RejectCode::InvalidEncoding);
        assert!(issue.reason.contains("byte 6"), "{}", issue.reason);
    }

    #[test]
    fn other_failures_stay_malformed_with_the_fast_parsers_words() {
        let issue = explain(br#"{"n":01}"#, "InvalidNumber at character 5");
        assert_eq!(issue.code, RejectCode::MalformedJson);
        assert!(
            issue.reason.contains("InvalidNumber at character 5"),
            "{}",
            issue.reason
        );
    }
}
