//! Bytes simd-json reads although they are not JSON, found by the agreement property test
//! (`processor/tests/agreement.rs`), and refused here before or after it parses:
//! - a raw NUL, which it takes for the end of a number (`[1<NUL>2]` as two values);
//! - any byte right after a long number (`1234567890123456789;5`, `1.345678901234567890;5`):
//!   its slow paths for numbers of many digits do not look at what follows them.
//!
//! serde_json, Elasticsearch and the tantivy adapter refuse both, so ingest must too.

use super::{FieldIssue, RejectCode};

/// Characters from which a number is checked (simd-json's fast paths end near 19 digits; this
/// leaves a margin).
const LONG_NUMBER: usize = 16;

/// Refuses what simd-json would read wrongly; checked before parsing (cheap scans only).
pub(super) fn check(bytes: &[u8]) -> Result<(), FieldIssue> {
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(malformed(format!(
            "a raw NUL byte at byte {at} (inside a string, escape it as \\u0000)"
        )));
    }
    if has_long_number_run(bytes)
        && let Some(at) = long_number_with_a_bad_end(bytes)
    {
        return Err(malformed(format!(
            "a number runs into {:?} at byte {at}",
            char::from(bytes[at])
        )));
    }
    Ok(())
}

fn malformed(reason: String) -> FieldIssue {
    FieldIssue::whole_record(
        RejectCode::MalformedJson,
        format!("malformed JSON: {reason}"),
    )
}

fn is_number_byte(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')
}

/// Whether any run of number characters, in strings or not, is long enough to matter: the
/// common case, none, costs one tight loop.
fn has_long_number_run(bytes: &[u8]) -> bool {
    let mut run = 0;
    for &b in bytes {
        run = if is_number_byte(b) { run + 1 } else { 0 };
        if run >= LONG_NUMBER {
            return true;
        }
    }
    false
}

/// Where a long number outside strings is followed by a byte that cannot end a JSON number.
fn long_number_with_a_bad_end(bytes: &[u8]) -> Option<usize> {
    let mut run = 0usize;
    for (at, b) in super::outside_strings(bytes) {
        if is_number_byte(b) {
            run += 1;
            continue;
        }
        let ends_a_number = matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',' | b']' | b'}');
        if run >= LONG_NUMBER && !ends_a_number {
            return Some(at);
        }
        run = 0;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_integers_must_end_where_json_numbers_end() {
        assert!(check(b"[1234567890123456789;2]").is_err());
        assert!(check(b"[-1234567890123456789\x01]").is_err());
        assert!(check(b"[12345678901234567890123456789x]").is_err());
        assert!(check(b"[1234567890123456789, 12345678901234567890123]").is_ok());
        assert!(check(b"[1234567890123456789.5e3]").is_ok());
        assert!(check(b"[1.345678901234567890;2]").is_err());
        assert!(check(b"[-1.5738163939190605e99]").is_ok());
        // Digits in strings are text, whatever follows them.
        assert!(check(br#"{"order":"1234567890123456789012;x"}"#).is_ok());
    }

    #[test]
    fn a_raw_nul_is_refused_wherever_it_is() {
        assert!(check(b"[1\x002]").is_err());
        assert!(check(b"{\"a\":\"x\x00y\"}").is_err());
        assert!(check(br#"{"a":"\u0000"}"#).is_ok());
    }
}
