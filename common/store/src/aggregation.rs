//! Aggregations, asked and read once above the stores.
//!
//! tantivy's aggregation module speaks Elasticsearch's aggregation DSL, so a request is written
//! once as that JSON and both stores run it natively; [`Dialect`] covers the two places they
//! differ (tantivy's field names, and time buckets, which tantivy computes with a plain
//! histogram over its millisecond field). Both answer in Elasticsearch's shape, read here into
//! typed results, so the API never sees which store answered.
//!
//! The stores' documented approximations apply: percentiles are estimates (Elasticsearch's
//! t-digest, tantivy's DDSketch with 1% relative error) and cardinality is HyperLogLog in both
//! (exact in Elasticsearch below 3,000 values).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::fields::{Field, FieldKind};
use super::{StoreError, normalize_level};

/// Named aggregations, run side by side.
pub type Aggregations = BTreeMap<String, Aggregation>;

#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    pub kind: AggregationKind,
    /// Aggregations run within each bucket of a bucketing kind.
    pub nested: Aggregations,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AggregationKind {
    /// The `size` most frequent values, most frequent first, ties by value.
    Terms { field: Field, size: usize },
    /// Events per fixed interval of event time, aligned to the epoch (so to UTC hours and days).
    Timeline { interval_ms: i64 },
    /// Count, min, max, average and sum of a number.
    Stats(Field),
    /// Estimated percentiles of a number.
    Percentiles { field: Field, percents: Vec<f64> },
    /// Estimated number of distinct values.
    Cardinality(Field),
}

impl Aggregation {
    fn of(kind: AggregationKind) -> Aggregation {
        Aggregation {
            kind,
            nested: Aggregations::new(),
        }
    }

    pub fn terms(field: Field, size: usize) -> Aggregation {
        Aggregation::of(AggregationKind::Terms {
            field,
            size: size.max(1),
        })
    }

    pub fn timeline(interval_ms: i64) -> Aggregation {
        Aggregation::of(AggregationKind::Timeline {
            interval_ms: interval_ms.max(1),
        })
    }

    pub fn stats(field: Field) -> Aggregation {
        Aggregation::of(AggregationKind::Stats(field))
    }

    pub fn percentiles(field: Field, percents: &[f64]) -> Aggregation {
        Aggregation::of(AggregationKind::Percentiles {
            field,
            percents: percents.to_vec(),
        })
    }

    pub fn cardinality(field: Field) -> Aggregation {
        Aggregation::of(AggregationKind::Cardinality(field))
    }

    /// Adds an aggregation run within each bucket.
    pub fn with(mut self, name: &str, nested: Aggregation) -> Aggregation {
        self.nested.insert(name.to_owned(), nested);
        self
    }
}

/// The store an aggregation request is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Elasticsearch,
    Tantivy,
}

/// Terms counts are gathered per shard (Elasticsearch) or per segment (tantivy) and merged; a
/// value outside one part's top list would be undercounted. Asking each part for this many
/// keeps counts exact for every field with fewer distinct values, which covers the fields
/// Sluice counts by except ids.
const TERMS_SHARD_SIZE: usize = 2_000;

impl Dialect {
    fn field(self, field: Field) -> String {
        match self {
            Dialect::Elasticsearch => field.path().to_owned(),
            Dialect::Tantivy => field.tantivy_name(),
        }
    }

    /// The request as the store's JSON.
    pub fn render(self, aggregations: &Aggregations) -> Value {
        Value::Object(
            aggregations
                .iter()
                .map(|(name, aggregation)| (name.clone(), self.render_one(aggregation)))
                .collect(),
        )
    }

    fn render_one(self, aggregation: &Aggregation) -> Value {
        let mut body = match &aggregation.kind {
            AggregationKind::Terms { field, size } => json!({
                "terms": {
                    "field": self.field(*field),
                    "size": size,
                    "shard_size": (*size).max(TERMS_SHARD_SIZE),
                }
            }),
            AggregationKind::Timeline { interval_ms } => match self {
                Dialect::Elasticsearch => json!({
                    "date_histogram": {
                        "field": "@timestamp",
                        "fixed_interval": format!("{interval_ms}ms"),
                    }
                }),
                Dialect::Tantivy => json!({
                    "histogram": { "field": "timestamp_ms", "interval": *interval_ms as f64 }
                }),
            },
            AggregationKind::Stats(field) => json!({ "stats": { "field": self.field(*field) } }),
            AggregationKind::Percentiles { field, percents } => json!({
                "percentiles": { "field": self.field(*field), "percents": percents }
            }),
            AggregationKind::Cardinality(field) => {
                json!({ "cardinality": { "field": self.field(*field) } })
            }
        };
        if !aggregation.nested.is_empty() {
            body["aggs"] = self.render(&aggregation.nested);
        }
        body
    }
}

/// Count, min, max, average and sum; the last four are `None` (or 0 for the sum) over no values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
    pub sum: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TermBucket {
    pub value: String,
    pub count: u64,
    pub nested: AggregationResults,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimeBucket {
    /// Epoch milliseconds.
    pub start_ms: i64,
    pub count: u64,
    pub nested: AggregationResults,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AggregationResult {
    Terms(Vec<TermBucket>),
    Timeline(Vec<TimeBucket>),
    Stats(Stats),
    /// The requested percents with their estimates (`None` over no values).
    Percentiles(Vec<(f64, Option<f64>)>),
    Cardinality(u64),
}

/// The answers by name. An answer that is missing (nothing was there to aggregate) reads as
/// empty: no buckets, zero counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AggregationResults(pub BTreeMap<String, AggregationResult>);

impl AggregationResults {
    pub fn terms(&self, name: &str) -> &[TermBucket] {
        match self.0.get(name) {
            Some(AggregationResult::Terms(buckets)) => buckets,
            _ => &[],
        }
    }

    pub fn timeline(&self, name: &str) -> &[TimeBucket] {
        match self.0.get(name) {
            Some(AggregationResult::Timeline(buckets)) => buckets,
            _ => &[],
        }
    }

    pub fn stats(&self, name: &str) -> Stats {
        match self.0.get(name) {
            Some(AggregationResult::Stats(stats)) => stats.clone(),
            _ => Stats::default(),
        }
    }

    /// The estimate for `percent`, when there were values.
    pub fn percentile(&self, name: &str, percent: f64) -> Option<f64> {
        match self.0.get(name) {
            Some(AggregationResult::Percentiles(values)) => values
                .iter()
                .find(|(p, _)| (p - percent).abs() < 1e-9)
                .and_then(|(_, v)| *v),
            _ => None,
        }
    }

    pub fn cardinality(&self, name: &str) -> u64 {
        match self.0.get(name) {
            Some(AggregationResult::Cardinality(n)) => *n,
            _ => 0,
        }
    }
}

fn unreadable(what: &str, answer: &Value) -> StoreError {
    let mut shown = answer.to_string();
    shown.truncate(300);
    StoreError::Search(format!("unreadable {what} answer: {shown}"))
}

/// Reads a store's answer (its `aggregations` object, or `None` when it had nothing to
/// aggregate) for `request`. Time buckets are filled in with zeros over `[from_ms, to_ms]`, so a
/// chart has a point for every interval whichever store answered.
pub fn read(
    request: &Aggregations,
    answer: Option<&Value>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> Result<AggregationResults, StoreError> {
    let mut results = BTreeMap::new();
    for (name, aggregation) in request {
        let part = answer.and_then(|a| a.get(name));
        results.insert(name.clone(), read_one(aggregation, part, from_ms, to_ms)?);
    }
    Ok(AggregationResults(results))
}

fn read_one(
    aggregation: &Aggregation,
    answer: Option<&Value>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> Result<AggregationResult, StoreError> {
    let nested = |bucket: &Value| read(&aggregation.nested, Some(bucket), from_ms, to_ms);
    Ok(match &aggregation.kind {
        AggregationKind::Terms { field, size } => {
            let mut buckets = Vec::new();
            for bucket in buckets_of(answer, "terms")? {
                buckets.push(TermBucket {
                    value: key_text(&bucket["key"]),
                    count: doc_count(bucket)?,
                    nested: nested(bucket)?,
                });
            }
            AggregationResult::Terms(order_terms(buckets, *field, *size))
        }
        AggregationKind::Timeline { interval_ms } => {
            let mut buckets = Vec::new();
            for bucket in buckets_of(answer, "time buckets")? {
                let start = bucket["key"]
                    .as_f64()
                    .ok_or_else(|| unreadable("time bucket", bucket))?;
                buckets.push(TimeBucket {
                    start_ms: start as i64,
                    count: doc_count(bucket)?,
                    nested: nested(bucket)?,
                });
            }
            AggregationResult::Timeline(fill_timeline(buckets, *interval_ms, from_ms, to_ms))
        }
        AggregationKind::Stats(_) => AggregationResult::Stats(match answer {
            None => Stats::default(),
            Some(stats) => Stats {
                count: stats["count"]
                    .as_u64()
                    .ok_or_else(|| unreadable("stats", stats))?,
                min: stats["min"].as_f64(),
                max: stats["max"].as_f64(),
                avg: stats["avg"].as_f64(),
                sum: stats["sum"].as_f64().unwrap_or(0.0),
            },
        }),
        AggregationKind::Percentiles { percents, .. } => {
            let values = answer.map(|a| &a["values"]);
            AggregationResult::Percentiles(
                percents
                    .iter()
                    .map(|&percent| (percent, values.and_then(|v| percentile_in(v, percent))))
                    .collect(),
            )
        }
        AggregationKind::Cardinality(_) => AggregationResult::Cardinality(match answer {
            None => 0,
            Some(value) => value["value"]
                .as_f64()
                .ok_or_else(|| unreadable("cardinality", value))? as u64,
        }),
    })
}

fn buckets_of<'a>(answer: Option<&'a Value>, what: &str) -> Result<&'a [Value], StoreError> {
    match answer {
        None => Ok(&[]),
        Some(answer) => answer["buckets"]
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| unreadable(what, answer)),
    }
}

fn doc_count(bucket: &Value) -> Result<u64, StoreError> {
    bucket["doc_count"]
        .as_u64()
        .ok_or_else(|| unreadable("bucket", bucket))
}

/// Keys as text; whole numbers without a fraction, as Elasticsearch prints a `long` key and
/// tantivy (whose numeric keys are floats) does not.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(text) => text.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Percentile answers are keyed by the percent as text ("95.0"); matched by value, since the
/// stores print it differently.
fn percentile_in(values: &Value, percent: f64) -> Option<f64> {
    match values {
        Value::Object(map) => map
            .iter()
            .find(|(key, _)| key.parse::<f64>().is_ok_and(|k| (k - percent).abs() < 1e-9))
            .and_then(|(_, v)| v.as_f64()),
        Value::Array(items) => items
            .iter()
            .find(|item| {
                item["key"]
                    .as_f64()
                    .is_some_and(|k| (k - percent).abs() < 1e-9)
            })
            .and_then(|item| item["value"].as_f64()),
        _ => None,
    }
}

/// Most frequent first, ties by value, so the stores order ties alike. Levels are lowercased
/// and merged: both stores index them lowercased, and merging again costs nothing where they
/// did, and is right where a cluster's mapping predates the normalizer.
fn order_terms(mut buckets: Vec<TermBucket>, field: Field, size: usize) -> Vec<TermBucket> {
    if field == Field::Level {
        let mut merged: Vec<TermBucket> = Vec::with_capacity(buckets.len());
        for bucket in buckets {
            let value = normalize_level(&bucket.value);
            match merged.iter_mut().find(|m| m.value == value) {
                Some(existing) => existing.count += bucket.count,
                None => merged.push(TermBucket { value, ..bucket }),
            }
        }
        buckets = merged;
    }
    if field.kind() == FieldKind::Boolean {
        for bucket in &mut buckets {
            bucket.value = match bucket.value.as_str() {
                "1" => "true".into(),
                "0" => "false".into(),
                other => other.to_owned(),
            };
        }
    }
    buckets.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    buckets.truncate(size);
    buckets
}

/// A bucket for every interval from `from_ms` to `to_ms` (or between the first and last
/// bucket, where the range is open), zero where the store had none.
pub(crate) fn fill_timeline(
    buckets: Vec<TimeBucket>,
    interval_ms: i64,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> Vec<TimeBucket> {
    let align = |ms: i64| ms.div_euclid(interval_ms) * interval_ms;
    let first = from_ms
        .map(align)
        .or_else(|| buckets.first().map(|b| b.start_ms));
    let last = to_ms
        .map(align)
        .or_else(|| buckets.last().map(|b| b.start_ms));
    let (Some(first), Some(last)) = (first, last) else {
        return buckets;
    };
    // An open range over sparse data could ask for millions of empty buckets; past this many,
    // the store's own buckets are returned as they are.
    const MAX_FILLED: i64 = 20_000;
    if last < first || (last - first) / interval_ms > MAX_FILLED {
        return buckets;
    }
    let mut by_start: BTreeMap<i64, TimeBucket> =
        buckets.into_iter().map(|b| (b.start_ms, b)).collect();
    let mut filled = Vec::new();
    let mut start = first;
    while start <= last {
        filled.push(by_start.remove(&start).unwrap_or(TimeBucket {
            start_ms: start,
            count: 0,
            nested: AggregationResults::default(),
        }));
        start += interval_ms;
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Aggregations {
        let mut request = Aggregations::new();
        request.insert(
            "methods".into(),
            Aggregation::terms(Field::PaymentMethod, 3)
                .with("revenue", Aggregation::stats(Field::Amount)),
        );
        request.insert("hours".into(), Aggregation::timeline(3_600_000));
        request.insert(
            "latency".into(),
            Aggregation::percentiles(Field::ResponseTime, &[50.0, 95.0]),
        );
        request.insert("users".into(), Aggregation::cardinality(Field::UserId));
        request
    }

    #[test]
    fn renders_each_dialect() {
        let es = Dialect::Elasticsearch.render(&request());
        assert_eq!(
            es["methods"],
            json!({"terms": {"field": "payment_method", "size": 3, "shard_size": 2000},
                   "aggs": {"revenue": {"stats": {"field": "amount"}}}})
        );
        assert_eq!(
            es["hours"],
            json!({"date_histogram": {"field": "@timestamp", "fixed_interval": "3600000ms"}})
        );
        let tantivy = Dialect::Tantivy.render(&request());
        assert_eq!(
            tantivy["hours"],
            json!({"histogram": {"field": "timestamp_ms", "interval": 3_600_000.0}})
        );
        let fraud = Dialect::Tantivy.render(&Aggregations::from([(
            "s".to_owned(),
            Aggregation::stats(Field::FraudScore),
        )]));
        assert_eq!(fraud["s"]["stats"]["field"], "fraud_score");
    }

    #[test]
    fn reads_answers_from_either_store() {
        // As Elasticsearch answers (integer keys, "50.0" percent keys) …
        let es = json!({
            "methods": {"buckets": [
                {"key": "paypal", "doc_count": 2, "revenue": {"count": 2, "min": 1.0, "max": 3.0, "avg": 2.0, "sum": 4.0}},
                {"key": "card", "doc_count": 2, "revenue": {"count": 2, "min": 1.0, "max": 1.0, "avg": 1.0, "sum": 2.0}},
            ]},
            "hours": {"buckets": [{"key": 7_200_000, "doc_count": 1}, {"key": 14_400_000, "doc_count": 3}]},
            "latency": {"values": {"50.0": 120.0, "95.0": null}},
            "users": {"value": 7},
        });
        let results =
            read(&request(), Some(&es), Some(3_600_000), Some(18_000_000)).expect("reads");
        let methods = results.terms("methods");
        assert_eq!(
            methods
                .iter()
                .map(|b| (b.value.as_str(), b.count))
                .collect::<Vec<_>>(),
            [("card", 2), ("paypal", 2)],
            "ties by value"
        );
        assert_eq!(methods[1].nested.stats("revenue").sum, 4.0);
        assert_eq!(
            results
                .timeline("hours")
                .iter()
                .map(|b| (b.start_ms, b.count))
                .collect::<Vec<_>>(),
            [
                (3_600_000, 0),
                (7_200_000, 1),
                (10_800_000, 0),
                (14_400_000, 3),
                (18_000_000, 0)
            ],
            "zero-filled over the range"
        );
        assert_eq!(results.percentile("latency", 50.0), Some(120.0));
        assert_eq!(results.percentile("latency", 95.0), None);
        assert_eq!(results.cardinality("users"), 7);

        // … and as tantivy does (float keys, "95" percent keys).
        let tantivy = json!({
            "methods": {"buckets": [], "sum_other_doc_count": 0},
            "hours": {"buckets": [{"key": 7_200_000.0, "doc_count": 1}]},
            "latency": {"values": {"95": 300.5}},
            "users": {"value": 2.0},
        });
        let results = read(&request(), Some(&tantivy), None, None).expect("reads");
        assert_eq!(results.timeline("hours")[0].start_ms, 7_200_000);
        assert_eq!(results.percentile("latency", 95.0), Some(300.5));
        assert_eq!(results.cardinality("users"), 2);
    }

    #[test]
    fn nothing_to_aggregate_reads_as_empty() {
        let results = read(&request(), None, None, None).expect("reads");
        assert!(results.terms("methods").is_empty());
        assert_eq!(results.stats("anything"), Stats::default());
        assert_eq!(results.cardinality("users"), 0);
    }

    #[test]
    fn levels_merge_and_numeric_keys_read_whole() {
        let mut request = Aggregations::new();
        request.insert("levels".into(), Aggregation::terms(Field::Level, 10));
        request.insert("codes".into(), Aggregation::terms(Field::StatusCode, 10));
        let answer = json!({
            "levels": {"buckets": [{"key": "ERROR", "doc_count": 2}, {"key": "error", "doc_count": 3}, {"key": "info", "doc_count": 4}]},
            "codes": {"buckets": [{"key": 503.0, "doc_count": 1}, {"key": 200, "doc_count": 9}]},
        });
        let results = read(&request, Some(&answer), None, None).expect("reads");
        assert_eq!(results.terms("levels")[0].value, "error");
        assert_eq!(results.terms("levels")[0].count, 5);
        assert_eq!(
            results
                .terms("codes")
                .iter()
                .map(|b| b.value.as_str())
                .collect::<Vec<_>>(),
            ["200", "503"]
        );
    }
}
