//! What the fuzz targets (`fuzz/`, run by hand for hours) and the suite's property tests
//! (run briefly on every build) check of the parsers in this crate, with any bytes as input.
//! Each function panics when an invariant breaks; nothing here may panic otherwise.

use crate::store::text_query::{self, MAX_QUERY_CHARS, TextQuery};
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

/// The search syntax parses or says where it stopped; what parses has a bounded depth, and its
/// phrases are pieces of the input.
pub fn query(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match text_query::parse(input) {
        Ok(Some(query)) => {
            assert!(
                depth(&query) <= 2 * MAX_QUERY_CHARS,
                "deeper than the input"
            );
            // An empty phrase (`""`) is one: it matches nothing, as in Elasticsearch.
            for phrase in query.positive_phrases() {
                assert!(
                    input.contains(&phrase.replace('"', "\\\"")),
                    "a phrase that is not in the query: {phrase:?}"
                );
            }
        }
        Ok(None) => assert!(
            input.trim().is_empty(),
            "a non-blank query parsed to nothing"
        ),
        Err(e) => assert!(
            e.position >= 1 && e.position <= input.chars().count().max(MAX_QUERY_CHARS) + 1,
            "an error outside the input: {e}"
        ),
    }
}

fn depth(query: &TextQuery) -> usize {
    match query {
        TextQuery::And(parts) | TextQuery::Or(parts) => {
            1 + parts.iter().map(depth).max().unwrap_or(0)
        }
        TextQuery::Not(inner) => 1 + depth(inner),
        TextQuery::Phrase { .. } | TextQuery::Filter(_) => 1,
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

    /// Pieces of records and queries, so the properties reach past the first byte.
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
    const QUERY: &[&str] = &[
        "gateway",
        " ",
        "AND",
        "OR",
        "NOT",
        "-",
        "(",
        ")",
        "\"",
        "amount:",
        ">",
        ">=",
        "100",
        "[",
        "TO",
        "]",
        "*",
        "status_code:",
        "message:",
        "\\",
        "é",
    ];

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn records_get_one_verdict(data in pieces(RECORD)) {
            super::record(&data);
        }

        #[test]
        fn queries_parse_or_say_where(data in pieces(QUERY)) {
            super::query(&data);
        }
    }

    /// Found by the property test: `""` is an empty phrase, in the input as written.
    #[test]
    fn an_empty_quoted_phrase_is_a_phrase_of_the_query() {
        super::query(b"\"\"\0");
        super::query(br#"say "\"quoted\"" twice"#);
    }
}
