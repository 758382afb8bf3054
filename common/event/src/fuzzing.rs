//! What the fuzz targets (`fuzz/`, run by hand for hours) and the suite's property tests
//! (run briefly on every build) check of the record parser and validation, with any bytes as
//! input. Each function panics when an invariant breaks; nothing here may panic otherwise.

use crate::validate::{Limits, RejectCode, parse_record, repair_lone_surrogates, validate};

/// A record is refused with a code, or accepted; what is accepted serde_json reads too (once
/// lone surrogates are made U+FFFD), and what serde_json reads is never called malformed.
pub fn record(data: &[u8]) {
    let limits = Limits::default();
    let mut scratch = Vec::new();
    let verdict = parse_record(data, &mut scratch, &limits)
        .map_err(|issue| issue.code)
        .and_then(|parsed| {
            validate(parsed.tape.as_value(), crate::now_ms(), &limits)
                .map(drop)
                .map_err(|issues| issues[0].code)
        });
    let serde_reads = |bytes: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(bytes).is_ok_and(|v| v.is_object())
    };
    match verdict {
        Ok(()) => {
            let mut repaired = data.to_vec();
            repair_lone_surrogates(&mut repaired);
            assert!(
                serde_reads(&repaired),
                "accepted, but not JSON to serde_json"
            );
        }
        Err(RejectCode::MalformedJson | RejectCode::InvalidEncoding) => {
            assert!(!serde_reads(data), "valid JSON called malformed");
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1000),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// Pieces of records, so the property reaches past the first byte.
    fn pieces(of: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
        let piece = prop::sample::select(of).prop_map(|p| p.as_bytes().to_vec());
        let byte = any::<u8>().prop_map(|b| vec![b]);
        prop::collection::vec(prop_oneof![4 => piece, 1 => byte], 0..30)
            .prop_map(|pieces| pieces.concat())
    }

    const RECORD: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\"log_type\":\"error\"",
        "\"error_message\":\"x\"",
        "\"amount\":",
        "1",
        "-0",
        "1e400",
        "123456789012345678901234567890",
        "1.5",
        "true",
        "null",
        "\\ud800",
        "\\u0041",
        "\\\\",
        "\"a.b\"",
        "\"\"",
        "\"_source\"",
        " ",
    ];
    proptest! {
        #![proptest_config(config())]

        #[test]
        fn records_get_one_verdict(data in pieces(RECORD)) {
            super::record(&data);
        }
    }
}
