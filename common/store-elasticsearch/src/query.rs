//! A [`SearchQuery`] as Elasticsearch query DSL, and the search answer read back. The mapping
//! mirrors the tantivy store's so both give the same answers: text clauses are phrases in
//! `message` or `error_message`, filters are `term`s and `range`s on the template's typed
//! fields, the time range is inclusive, the order is total (an id tiebreaker) and the total
//! exact.

use std::ops::Bound;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use sluice_store::aggregation::Dialect;
use sluice_store::fields::{Field, FieldKind};
use sluice_store::{
    Aggregations, Filter, Hit, MAX_SEARCH_SIZE, SearchQuery, SearchResults, SortField, SortKey,
    TextQuery, Total, TotalRelation, normalize_level,
};

/// The document field that breaks ties between hits of equal sort value: the document id, which
/// the processor writes into every document (`_id` itself cannot be sorted on in Elasticsearch 8).
pub(super) const TIEBREAKER: &str = "ingest.id";

/// The `bool` query of a search: its text, filters and time range.
fn bool_query(query: &SearchQuery) -> Value {
    let mut filters: Vec<Value> = query.effective_filters().iter().map(filter).collect();
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
    let must: Vec<Value> = query.text.iter().map(text).collect();
    json!({ "bool": { "filter": filters, "must": must } })
}

fn text(query: &TextQuery) -> Value {
    match query {
        TextQuery::Phrase { fields, phrase } => match fields.as_slice() {
            [one] => json!({ "match_phrase": { one.name(): phrase } }),
            several => json!({
                "multi_match": {
                    "query": phrase,
                    "type": "phrase",
                    "fields": several.iter().map(|f| f.name()).collect::<Vec<_>>(),
                }
            }),
        },
        TextQuery::Filter(f) => filter(f),
        TextQuery::And(parts) => {
            json!({ "bool": { "must": parts.iter().map(text).collect::<Vec<_>>() } })
        }
        TextQuery::Or(parts) => json!({
            "bool": {
                "should": parts.iter().map(text).collect::<Vec<_>>(),
                "minimum_should_match": 1,
            }
        }),
        TextQuery::Not(inner) => json!({ "bool": { "must_not": [text(inner)] } }),
    }
}

fn filter(filter_: &Filter) -> Value {
    match filter_ {
        Filter::Equals(field, value) => {
            let value = match field.kind() {
                FieldKind::Keyword if *field == Field::Level => json!(normalize_level(value)),
                FieldKind::Keyword => json!(value),
                FieldKind::Double | FieldKind::Long => value
                    .parse::<f64>()
                    .map_or_else(|_| json!(value), |n| json!(n)),
                FieldKind::Boolean => value
                    .parse::<bool>()
                    .map_or_else(|_| json!(value), |b| json!(b)),
            };
            json!({ "term": { field.path(): value } })
        }
        Filter::Range {
            field,
            lower,
            upper,
        } => {
            let mut range = serde_json::Map::new();
            match lower {
                Bound::Included(x) => range.insert("gte".into(), json!(x)),
                Bound::Excluded(x) => range.insert("gt".into(), json!(x)),
                Bound::Unbounded => None,
            };
            match upper {
                Bound::Included(x) => range.insert("lte".into(), json!(x)),
                Bound::Excluded(x) => range.insert("lt".into(), json!(x)),
                Bound::Unbounded => None,
            };
            json!({ "range": { field.path(): range } })
        }
        Filter::Exists(field) => json!({ "exists": { "field": field.path() } }),
        Filter::AnyOf(filters) => json!({
            "bool": {
                "should": filters.iter().map(filter).collect::<Vec<_>>(),
                "minimum_should_match": 1,
            }
        }),
    }
}

pub(super) fn search_body(query: &SearchQuery) -> Value {
    let order = if query.sort.descending { "desc" } else { "asc" };
    let (sort_field, unmapped) = match query.sort.field {
        SortField::Timestamp => ("@timestamp", "date"),
        SortField::Field(field) => (field.path(), "double"),
    };
    let mut body = json!({
        "size": query.size.min(MAX_SEARCH_SIZE),
        "from": query.offset,
        "track_total_hits": match query.total {
            Total::Counted => json!(true),
            Total::UpTo(bound) => json!(bound),
            Total::NotNeeded => json!(false),
        },
        "query": bool_query(query),
        "sort": [
            { sort_field: { "order": order, "unmapped_type": unmapped } },
            { TIEBREAKER: { "order": order, "unmapped_type": "keyword" } },
        ],
    });
    if let Some(after) = &query.search_after {
        body["search_after"] = match query.sort.field {
            SortField::Timestamp => json!([after.value as i64, after.id]),
            SortField::Field(_) => json!([after.value, after.id]),
        };
        body["from"] = json!(0);
    }
    body
}

/// `aggregations` over what `query` matches: no hits.
pub(super) fn aggregate_body(query: &SearchQuery, aggregations: &Aggregations) -> Value {
    json!({
        "size": 0,
        "query": bool_query(query),
        "aggs": Dialect::Elasticsearch.render(aggregations),
    })
}

#[derive(Deserialize)]
struct SearchAnswer<'a> {
    #[serde(borrow)]
    hits: Hits<'a>,
}

#[derive(Deserialize)]
struct Hits<'a> {
    #[serde(default)]
    total: HitsTotal,
    #[serde(borrow)]
    hits: Vec<EsHit<'a>>,
}

/// Absent when not tracked: 0, at least.
#[derive(Deserialize)]
struct HitsTotal {
    value: u64,
    relation: Relation,
}

impl Default for HitsTotal {
    fn default() -> HitsTotal {
        HitsTotal {
            value: 0,
            relation: Relation::Gte,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Relation {
    Eq,
    Gte,
}

#[derive(Deserialize)]
struct EsHit<'a> {
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "_source", borrow)]
    source: &'a RawValue,
    /// The hit's sort values: the sort field's (epoch milliseconds for time), then the id.
    #[serde(default)]
    sort: Vec<Value>,
}

pub(super) fn read_answer(answer: &[u8]) -> Result<SearchResults, String> {
    let answer: SearchAnswer<'_> =
        serde_json::from_slice(answer).map_err(|e| format!("unreadable search answer: {e}"))?;
    Ok(SearchResults {
        total: answer.hits.total.value,
        total_relation: match answer.hits.total.relation {
            Relation::Eq => TotalRelation::Exact,
            Relation::Gte => TotalRelation::AtLeast,
        },
        hits: answer
            .hits
            .hits
            .into_iter()
            .map(|hit| {
                let value = hit.sort.first().and_then(Value::as_f64).unwrap_or(0.0);
                Hit {
                    sort: SortKey { value, id: hit.id },
                    source: hit.source.get().as_bytes().to_vec(),
                }
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_store::text_query;

    #[test]
    fn every_filter_becomes_a_clause() {
        let body = search_body(&SearchQuery {
            text: text_query::parse("gateway \"timed out\" -refused").expect("parses"),
            filters: vec![
                Filter::Equals(Field::Level, " ERROR ".into()),
                Filter::between(Field::Amount, Some(10.0), None),
                Filter::AnyOf(vec![
                    Filter::Equals(Field::Country, "DE".into()),
                    Filter::Equals(Field::GeoCountry, "DE".into()),
                ]),
            ],
            from_ms: Some(10),
            size: 50_000,
            ..SearchQuery::default()
        });
        assert_eq!(body["size"], 10_000);
        let filters = &body["query"]["bool"]["filter"];
        assert_eq!(filters[0], json!({"term": {"level": "error"}}));
        assert_eq!(filters[1], json!({"range": {"amount": {"gte": 10.0}}}));
        assert_eq!(
            filters[2]["bool"]["should"][1],
            json!({"term": {"geo.country_iso_code": "DE"}})
        );
        assert_eq!(
            filters[3],
            json!({"range": {"@timestamp": {"format": "epoch_millis", "gte": 10}}})
        );
        let text = &body["query"]["bool"]["must"][0]["bool"]["must"];
        assert_eq!(text[1]["multi_match"]["query"], "timed out");
        assert_eq!(text[1]["multi_match"]["type"], "phrase");
        assert_eq!(
            text[2]["bool"]["must_not"][0]["multi_match"]["query"],
            "refused"
        );
    }

    #[test]
    fn sorting_and_search_after() {
        let body = search_body(&SearchQuery {
            sort: sluice_store::Sort {
                field: SortField::Field(Field::Amount),
                descending: false,
            },
            search_after: Some(SortKey {
                value: 12.5,
                id: "x".into(),
            }),
            offset: 40,
            size: 5,
            ..SearchQuery::default()
        });
        assert_eq!(body["sort"][0]["amount"]["order"], "asc");
        assert_eq!(body["sort"][1]["ingest.id"]["order"], "asc");
        assert_eq!(body["search_after"], json!([12.5, "x"]));
        assert_eq!(body["from"], 0, "search_after replaces the offset");
        assert_eq!(
            body["query"]["bool"]["filter"][0],
            json!({"exists": {"field": "amount"}}),
            "only events with the sort field"
        );
    }

    #[test]
    fn blank_text_matches_everything() {
        let body = search_body(&SearchQuery {
            size: 5,
            ..SearchQuery::default()
        });
        assert_eq!(body["query"]["bool"]["must"], json!([]));
        assert_eq!(body["query"]["bool"]["filter"], json!([]));
    }

    #[test]
    fn reads_hits_with_their_source_as_sent() {
        let answer = br#"{"took":2,"timed_out":false,"hits":{"total":{"value":7,"relation":"eq"},"max_score":null,"hits":[{"_index":"sluice-logs-2026.11.24","_id":"x1","_score":null,"_source":{"a":1,"b":"two"},"sort":[1795514400000,"x1"]}]}}"#;
        let results = read_answer(answer).expect("answer");
        assert_eq!(results.total, 7);
        assert_eq!(results.hits[0].id(), "x1");
        assert_eq!(results.hits[0].source, br#"{"a":1,"b":"two"}"#);
        assert_eq!(results.hits[0].sort.value, 1_795_514_400_000.0);
    }

    /// Elasticsearch's answers to `track_total_hits` of a bound (a lower bound past it) and of
    /// `false` (no `total` at all).
    #[test]
    fn reads_a_bounded_or_untracked_total_as_at_least() {
        let bounded = br#"{"hits":{"total":{"value":10000,"relation":"gte"},"hits":[]}}"#;
        let results = read_answer(bounded).expect("answer");
        assert_eq!(
            (results.total, results.total_relation),
            (10_000, TotalRelation::AtLeast)
        );
        let untracked = br#"{"hits":{"hits":[]}}"#;
        let results = read_answer(untracked).expect("answer");
        assert_eq!(
            (results.total, results.total_relation),
            (0, TotalRelation::AtLeast)
        );
        let exact = read_answer(br#"{"hits":{"total":{"value":3,"relation":"eq"},"hits":[]}}"#)
            .expect("answer");
        assert_eq!(exact.total_relation, TotalRelation::Exact);
        let body = search_body(&SearchQuery {
            total: Total::UpTo(10_000),
            ..SearchQuery::default()
        });
        assert_eq!(body["track_total_hits"], 10_000);
    }
}
