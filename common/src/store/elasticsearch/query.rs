//! A [`SearchQuery`] as Elasticsearch query DSL, and the search answer read back. The mapping
//! mirrors the tantivy store's so both give the same answers: words in `message` and
//! `error_message` must all match (phrases in quotes), exact filters on keywords, an inclusive
//! time range, newest first, an exact total.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::store::{
    CountField, Hit, MAX_SEARCH_SIZE, SearchQuery, SearchResults, normalize_level,
    terms_aggregation,
};

/// The `bool` query of a search: its text, filters and time range.
fn bool_query(query: &SearchQuery) -> Value {
    let mut filters = Vec::new();
    if let Some(log_type) = query.log_type {
        filters.push(json!({ "term": { "log_type": log_type.as_str() } }));
    }
    if let Some(level) = &query.level {
        filters.push(json!({ "term": { "level": normalize_level(level) } }));
    }
    if let Some(service) = &query.service {
        filters.push(json!({ "term": { "service": service } }));
    }
    if query.from_ms.is_some() || query.to_ms.is_some() {
        let mut range = serde_json::Map::new();
        range.insert("format".into(), json!("epoch_millis"));
        if let Some(from) = query.from_ms {
            range.insert("gte".into(), json!(from));
        }
        if let Some(to) = query.to_ms {
            range.insert("lte".into(), json!(to));
        }
        filters.push(json!({ "range": { "@timestamp": range } }));
    }
    let mut must = Vec::new();
    if let Some(text) = query.text.as_deref().filter(|t| !t.trim().is_empty()) {
        // simple_query_string never fails on odd input (an unclosed quote), as tantivy's lenient
        // parser does not.
        must.push(json!({
            "simple_query_string": {
                "query": text,
                "fields": ["message", "error_message"],
                "default_operator": "and",
            }
        }));
    }
    json!({ "bool": { "filter": filters, "must": must } })
}

pub(super) fn search_body(query: &SearchQuery) -> Value {
    json!({
        "size": query.size.min(MAX_SEARCH_SIZE),
        "track_total_hits": true,
        "query": bool_query(query),
        "sort": [{ "@timestamp": { "order": "desc", "unmapped_type": "date" } }],
    })
}

/// Counts by `field` over what `query` matches: no hits, one terms aggregation.
pub(super) fn count_body(query: &SearchQuery, field: CountField, size: usize) -> Value {
    json!({
        "size": 0,
        "query": bool_query(query),
        "aggs": { "by": terms_aggregation(field, size) },
    })
}

#[derive(Deserialize)]
struct SearchAnswer<'a> {
    #[serde(borrow)]
    hits: Hits<'a>,
}

#[derive(Deserialize)]
struct Hits<'a> {
    total: Total,
    #[serde(borrow)]
    hits: Vec<EsHit<'a>>,
}

#[derive(Deserialize)]
struct Total {
    value: u64,
}

#[derive(Deserialize)]
struct EsHit<'a> {
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "_source", borrow)]
    source: &'a RawValue,
}

pub(super) fn read_answer(answer: &[u8]) -> Result<SearchResults, String> {
    let answer: SearchAnswer<'_> =
        serde_json::from_slice(answer).map_err(|e| format!("unreadable search answer: {e}"))?;
    Ok(SearchResults {
        total: answer.hits.total.value,
        hits: answer
            .hits
            .hits
            .into_iter()
            .map(|hit| Hit {
                id: hit.id,
                source: hit.source.get().as_bytes().to_vec(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LogType;

    #[test]
    fn every_filter_becomes_a_clause() {
        let body = search_body(&SearchQuery {
            text: Some("gateway \"timed out\"".into()),
            log_type: Some(LogType::Error),
            level: Some(" ERROR ".into()),
            service: Some("checkout".into()),
            from_ms: Some(10),
            to_ms: None,
            size: 50_000,
        });
        assert_eq!(body["size"], 10_000);
        let filters = &body["query"]["bool"]["filter"];
        assert_eq!(filters[0], json!({"term": {"log_type": "error"}}));
        assert_eq!(filters[1], json!({"term": {"level": "error"}}));
        assert_eq!(filters[2], json!({"term": {"service": "checkout"}}));
        assert_eq!(
            filters[3],
            json!({"range": {"@timestamp": {"format": "epoch_millis", "gte": 10}}})
        );
        assert_eq!(
            body["query"]["bool"]["must"][0]["simple_query_string"]["query"],
            "gateway \"timed out\""
        );
    }

    #[test]
    fn blank_text_matches_everything() {
        let body = search_body(&SearchQuery {
            text: Some("  ".into()),
            size: 5,
            ..SearchQuery::default()
        });
        assert_eq!(body["query"]["bool"]["must"], json!([]));
        assert_eq!(body["query"]["bool"]["filter"], json!([]));
    }

    #[test]
    fn reads_hits_with_their_source_as_sent() {
        let answer = br#"{"took":2,"timed_out":false,"hits":{"total":{"value":7,"relation":"eq"},"max_score":null,"hits":[{"_index":"sluice-logs-2026.11.24","_id":"x1","_score":null,"_source":{"a":1,"b":"two"},"sort":[1795514400000]}]}}"#;
        let results = read_answer(answer).expect("answer");
        assert_eq!(results.total, 7);
        assert_eq!(results.hits[0].id, "x1");
        assert_eq!(results.hits[0].source, br#"{"a":1,"b":"two"}"#);
    }
}
