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
    if let Some(at) = memchr::memchr(0, bytes) {
        return Err(malformed(format!(
            "a raw NUL byte at byte {at} (inside a string, escape it as \\u0000)"
        )));
    }
    if has_long_number_run(bytes)
        && let Some(reason) = long_number_problem(bytes)
    {
        return Err(malformed(reason));
    }
    Ok(())
}

fn malformed(reason: String) -> FieldIssue {
    FieldIssue::whole_record(
        RejectCode::MalformedJson,
        format!("malformed JSON: {reason}"),
    )
}

const fn is_number_byte(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')
}

/// `is_number_byte` for every byte value, so a block is marked without branches.
const NUMBER_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_number_byte(b as u8);
        b += 1;
    }
    table
};

/// Bytes marked at a time: `LONG_NUMBER`, so that any run of that length lies within two
/// neighbouring blocks, which together fit one `u32`.
const BLOCK: usize = 16;
const _: () = assert!(LONG_NUMBER == BLOCK);

/// Whether any run of number characters, in strings or not, is long enough to matter. This
/// runs on every record twice (at ingest and in the processor), so it marks 16 bytes at a time
/// into a bit mask, without a branch per byte, and looks for 16 marks in a row in each pair of
/// neighbouring blocks.
fn has_long_number_run(bytes: &[u8]) -> bool {
    let marks = |block: &[u8]| {
        block.iter().enumerate().fold(0u32, |marks, (i, &b)| {
            marks | (u32::from(NUMBER_BYTES[usize::from(b)]) << i)
        })
    };
    let mut blocks = bytes.chunks_exact(BLOCK);
    let mut previous = 0u32;
    for block in &mut blocks {
        let current = marks(block);
        if sixteen_in_a_row(previous | (current << BLOCK)) {
            return true;
        }
        previous = current;
    }
    sixteen_in_a_row(previous | (marks(blocks.remainder()) << BLOCK))
}

/// Whether `bits` has 16 consecutive ones: each step keeps the bits that start a run twice as
/// long as the step before.
fn sixteen_in_a_row(bits: u32) -> bool {
    let two = bits & (bits >> 1);
    let four = two & (two >> 2);
    let eight = four & (four >> 4);
    eight & (eight >> 8) != 0
}

/// Why a long number outside strings is not JSON, if one is not: it runs into a byte that
/// cannot end a number, or its characters do not make one number.
fn long_number_problem(bytes: &[u8]) -> Option<String> {
    let mut run = 0usize;
    for (at, b) in super::outside_strings(bytes) {
        if is_number_byte(b) {
            run += 1;
            continue;
        }
        let ends_a_number = matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',' | b']' | b'}');
        if run >= LONG_NUMBER && !ends_a_number {
            return Some(format!(
                "a number runs into {:?} at byte {at}",
                char::from(b)
            ));
        }
        // The run is contiguous: a quote, which opens a string, is not a number character.
        let start = at - run;
        if run >= LONG_NUMBER && !is_json_number(&bytes[start..at]) {
            return Some(format!(
                "{} at byte {start} is not a number",
                String::from_utf8_lossy(&bytes[start..at])
            ));
        }
        run = 0;
    }
    None
}

/// Whether `text` is one JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
/// simd-json's slow path for long numbers accepts more (`1000000000000000000+`, found by the
/// agreement property test).
fn is_json_number(text: &[u8]) -> bool {
    fn digits(text: &[u8]) -> usize {
        text.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut at = usize::from(text.first() == Some(&b'-'));
    match digits(&text[at..]) {
        0 => return false,
        n if n > 1 && text[at] == b'0' => return false,
        n => at += n,
    }
    if text.get(at) == Some(&b'.') {
        let n = digits(&text[at + 1..]);
        if n == 0 {
            return false;
        }
        at += 1 + n;
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(text.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let n = digits(&text[at..]);
        if n == 0 {
            return false;
        }
        at += n;
    }
    at == text.len()
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
        // Number characters where the grammar has none, the run ending well.
        assert!(check(br#"{"a":1000000000000000000+,"b":1}"#).is_err());
        assert!(check(b"[1000000000000000000.]").is_err());
        assert!(check(b"[01234567890123456789]").is_err());
        assert!(check(b"[12345678901234567890e+-5]").is_err());
        assert!(check(b"[-12345678901234567890.25E-5]").is_ok());
        let issue = check(b"[1000000000000000000+]").expect_err("a trailing sign");
        assert!(
            issue
                .reason
                .contains("1000000000000000000+ at byte 1 is not a number"),
            "{}",
            issue.reason
        );
        // Digits in strings are text, whatever follows them.
        assert!(check(br#"{"order":"1234567890123456789012;x"}"#).is_ok());
    }

    /// The plain scan that the block-wise one must agree with.
    fn has_long_number_run_plainly(bytes: &[u8]) -> bool {
        let mut run = 0;
        bytes.iter().any(|&b| {
            run = if is_number_byte(b) { run + 1 } else { 0 };
            run >= LONG_NUMBER
        })
    }

    #[test]
    fn long_number_runs_are_seen_across_and_inside_blocks() {
        // Every length around the threshold, at every offset around a block boundary, and at
        // the end of the record (the remainder block).
        for len in 0..40 {
            for offset in 0..40 {
                for tail in [0, 1, 7] {
                    let mut bytes = vec![b'x'; offset];
                    bytes.extend(std::iter::repeat_n(b'7', len));
                    bytes.extend(std::iter::repeat_n(b'y', tail));
                    assert_eq!(
                        has_long_number_run(&bytes),
                        has_long_number_run_plainly(&bytes),
                        "{len} digits after {offset} bytes, {tail} after"
                    );
                }
            }
        }
        assert!(has_long_number_run(b"\"e\":-1.5E+99999999.9"));
        assert!(!has_long_number_run(
            b"\"ts\":\"2026-12-02\",\"n\":123456789012345"
        ));
    }

    #[test]
    fn a_raw_nul_is_refused_wherever_it_is() {
        assert!(check(b"[1\x002]").is_err());
        assert!(check(b"{\"a\":\"x\x00y\"}").is_err());
        assert!(check(br#"{"a":"\u0000"}"#).is_ok());
    }
}
