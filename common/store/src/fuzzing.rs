//! What the `query` fuzz target (`fuzz/`, run by hand for hours) and the suite's property test
//! (run briefly on every build) check of the search syntax, with any bytes as input. The function
//! panics when an invariant breaks; nothing here may panic otherwise.

use crate::text_query::{self, MAX_QUERY_CHARS, TextQuery};

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

    /// Queries built from the syntax's own pieces, with a stray byte now and then, so the
    /// property reaches past the first token. `PROPTEST_CASES` runs more.
    fn queries() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(QUERY).prop_map(|piece| piece.as_bytes().to_vec()),
                1 => any::<u8>().prop_map(|byte| vec![byte]),
            ],
            0..30,
        )
        .prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn queries_parse_or_say_where(data in queries()) {
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
