//! The behaviour every event store adapter must have, run against each of them. Documents are
//! built as the processor builds them: the typed fields and a source that carries the same
//! values, since Elasticsearch reads the source and tantivy the typed fields.

use std::future::Future;
use std::sync::Arc;

use serde_json::json;

use super::text_query;
use super::{
    Aggregation, Aggregations, EventStore, Field, Filter, SearchQuery, SearchResults, Sort,
    SortField, SortKey, StoreDocument, Total, TotalRelation, ValueCount,
};
use sluice_event::{LogType, write_rfc3339_ms};

pub fn document(
    id: &str,
    timestamp_ms: i64,
    log_type: LogType,
    level: &str,
    message: &str,
) -> StoreDocument {
    let mut at = Vec::new();
    write_rfc3339_ms(timestamp_ms, &mut at);
    let source = json!({
        "log_type": log_type.as_str(),
        "level": level,
        "service": "checkout",
        "message": message,
        "@timestamp": String::from_utf8_lossy(&at),
        "ingest": { "id": id },
    });
    StoreDocument::from_source(id, timestamp_ms, &source)
}

fn all(size: usize) -> SearchQuery {
    SearchQuery {
        size,
        ..SearchQuery::default()
    }
}

fn ids(results: SearchResults) -> Vec<String> {
    results.hits.into_iter().map(|h| h.sort.id).collect()
}

/// `settle` makes what was written visible to search (a refresh, where the store needs one).
/// Event times are in late 2026 so that every document lands in one daily index.
pub async fn run<S, F>(store: &dyn EventStore, settle: S)
where
    S: Fn() -> F,
    F: Future<Output = ()>,
{
    const T: i64 = 1_795_514_400_000;
    store.ready().await.expect("ready");

    // The same id twice, in one batch and again later: one document, the last one written.
    store
        .index(Arc::new(vec![
            document("a", T, LogType::Error, "ERROR", "first"),
            document("a", T, LogType::Error, "ERROR", "replayed"),
        ]))
        .await
        .expect("index");
    let report = store
        .index(Arc::new(vec![document(
            "a",
            T,
            LogType::Error,
            "ERROR",
            "again",
        )]))
        .await
        .expect("index");
    assert_eq!((report.indexed, report.rejected.len()), (1, 0));
    settle().await;
    let results = store.search(&all(10)).await.expect("search");
    assert_eq!(results.total, 1);
    let source: serde_json::Value = serde_json::from_slice(&results.hits[0].source).expect("json");
    assert_eq!(source["message"], "again");

    store
        .index(Arc::new(vec![
            document(
                "1",
                T + 100,
                LogType::Error,
                "Error",
                "payment gateway timeout",
            ),
            document("2", T + 300, LogType::Error, "error", "gateway refused"),
            document("3", T + 200, LogType::Transaction, "info", "gateway ok"),
        ]))
        .await
        .expect("index");
    settle().await;

    let newest = store.search(&all(10)).await.expect("search");
    assert_eq!(ids(newest), ["2", "3", "1", "a"], "newest first");

    let text = SearchQuery {
        text: text_query::parse("gateway timeout").expect("parses"),
        ..all(10)
    };
    assert_eq!(
        ids(store.search(&text).await.expect("search")),
        ["1"],
        "every word must match"
    );
    let phrase = SearchQuery {
        text: text_query::parse("\"gateway refused\"").expect("parses"),
        ..all(10)
    };
    assert_eq!(ids(store.search(&phrase).await.expect("search")), ["2"]);

    let typed = SearchQuery {
        filters: vec![
            Filter::Equals(Field::LogType, "error".into()),
            Filter::Equals(Field::Level, "ERROR".into()),
            Filter::Equals(Field::Service, "checkout".into()),
        ],
        ..all(10)
    };
    assert_eq!(
        ids(store.search(&typed).await.expect("search")),
        ["2", "1", "a"],
        "levels match in any case"
    );

    let window = SearchQuery {
        from_ms: Some(T + 150),
        to_ms: Some(T + 300),
        ..all(10)
    };
    assert_eq!(
        ids(store.search(&window).await.expect("search")),
        ["2", "3"],
        "bounds inclusive"
    );

    let counted = store.search(&all(1)).await.expect("search");
    assert_eq!(
        (counted.total, counted.hits.len()),
        (4, 1),
        "total counts beyond the page"
    );
    let only_count = store.search(&all(0)).await.expect("search");
    assert_eq!((only_count.total, only_count.hits.len()), (4, 0));
    let page_only = SearchQuery {
        total: Total::NotNeeded,
        ..typed.clone()
    };
    let page = store.search(&page_only).await.expect("search");
    assert_eq!(
        (page.total, page.total_relation),
        (0, TotalRelation::AtLeast),
        "not counted"
    );
    assert_eq!(ids(page), ["2", "1", "a"], "the same page, uncounted");

    // Counted up to a bound: exact within it; past it, the bound and "at least" — or the exact
    // count, said to be exact, where a store knows it without reading every match.
    let gateway = SearchQuery {
        text: text_query::parse("gateway").expect("parses"),
        ..all(1)
    };
    for (query, matching) in [(&typed, 3), (&gateway, 3), (&all(1), 4)] {
        for (bound, size) in [(1, 1), (2, 0), (3, 1), (10, 1), (10, 0)] {
            let bounded = SearchQuery {
                total: Total::UpTo(bound),
                size,
                ..query.clone()
            };
            let results = store.search(&bounded).await.expect("search");
            assert_eq!(
                results.hits.len() as u64,
                (size as u64).min(matching),
                "the page, whatever is counted"
            );
            match results.total_relation {
                TotalRelation::Exact => assert_eq!(
                    results.total, matching,
                    "an exact total up to {bound}: {query:?}"
                ),
                TotalRelation::AtLeast => assert!(
                    results.total == bound && matching > bound,
                    "at least {} of {matching}, counted up to {bound}: {query:?}",
                    results.total
                ),
            }
            if bound >= matching {
                assert_eq!(
                    (results.total, results.total_relation),
                    (matching, TotalRelation::Exact),
                    "within the bound every match is counted: {query:?}"
                );
            }
        }
    }

    let nothing = SearchQuery {
        filters: vec![Filter::Equals(Field::Service, "no-such-service".into())],
        ..all(10)
    };
    assert_eq!(store.search(&nothing).await.expect("search").total, 0);

    // Counting by a field: most frequent first, levels in any case counted as one.
    let counts = |pairs: &[(&str, u64)]| -> Vec<ValueCount> {
        pairs
            .iter()
            .map(|(value, count)| ValueCount {
                value: (*value).into(),
                count: *count,
            })
            .collect()
    };
    let by = |query: SearchQuery, field, size| async move {
        store.count_by(&query, field, size).await.expect("count")
    };
    assert_eq!(
        by(all(0), Field::LogType, 10).await,
        counts(&[("error", 3), ("transaction", 1)])
    );
    assert_eq!(
        by(all(0), Field::Level, 10).await,
        counts(&[("error", 3), ("info", 1)])
    );
    assert_eq!(
        by(all(0), Field::LogType, 1).await,
        counts(&[("error", 3)]),
        "the most frequent only"
    );
    let gateway = SearchQuery {
        text: text_query::parse("gateway").expect("parses"),
        ..all(0)
    };
    assert_eq!(
        by(gateway, Field::LogType, 10).await,
        counts(&[("error", 2), ("transaction", 1)]),
        "text narrows the count"
    );
    assert_eq!(
        by(window, Field::Service, 10).await,
        counts(&[("checkout", 2)]),
        "so does time"
    );
    assert_eq!(by(nothing, Field::Service, 10).await, counts(&[]));

    fields_sorting_and_aggregations(store, &settle).await;
}

/// For stores that can refuse one document (Elasticsearch refuses what it cannot map; tantivy
/// indexes the typed values it is handed and has nothing to refuse): a document the store
/// cannot take is refused on its own, for good, and says why; the others
/// of its write are indexed. The document here is bytes that are not JSON.
pub async fn one_refused_document_refuses_only_itself<S, F>(store: &dyn EventStore, settle: S)
where
    S: Fn() -> F,
    F: Future<Output = ()>,
{
    const AT: i64 = 1_796_000_000_000;
    let mut poison = document("refused", AT, LogType::Error, "error", "poison");
    poison.source = "{\"log_type\":\"error\",\"message\": not json}".to_owned();
    let report = store
        .index(Arc::new(vec![
            document("kept-1", AT, LogType::Error, "error", "kept"),
            poison,
            document("kept-2", AT + 1, LogType::Error, "error", "kept"),
        ]))
        .await
        .expect("the write as a whole succeeds");
    assert_eq!(report.indexed, 2, "{report:?}");
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert_eq!(report.rejected[0].id, "refused");
    assert!(!report.rejected[0].retryable, "{report:?}");
    assert!(!report.rejected[0].reason.is_empty());
    settle().await;
    let window = SearchQuery {
        from_ms: Some(AT),
        to_ms: Some(AT + 1),
        ..all(10)
    };
    assert_eq!(
        ids(store.search(&window).await.expect("search")),
        ["kept-2", "kept-1"]
    );
    store
        .ready()
        .await
        .expect("one refused document does not make the store unready");
}

/// A document from its JSON source, with the typed fields taken from it as the processor does.
fn event(id: &str, timestamp_ms: i64, mut source: serde_json::Value) -> StoreDocument {
    let mut at = Vec::new();
    write_rfc3339_ms(timestamp_ms, &mut at);
    source["@timestamp"] = json!(String::from_utf8_lossy(&at));
    source["ingest"] = json!({ "id": id });
    StoreDocument::from_source(id, timestamp_ms, &source)
}

async fn fields_sorting_and_aggregations<S, F>(store: &dyn EventStore, settle: &S)
where
    S: Fn() -> F,
    F: Future<Output = ()>,
{
    // An hour after the first part's documents, in the same day.
    const T: i64 = 1_795_514_400_000 + 3_600_000;
    const HOUR: i64 = 3_600_000;
    let sale = |id: &str, at: i64, amount: f64, method: &str, country: &str, score: f64| {
        event(
            id,
            at,
            json!({
                "log_type": "transaction", "level": "info", "service": "payments",
                "message": format!("order {id} paid by {method}"),
                "amount": amount, "payment_method": method, "status": "completed",
                "country": country, "user_id": format!("u-{id}"),
                "fraud": { "score": score, "detected": score >= 70.0,
                           "indicators": if score >= 70.0 { json!(["high_amount"]) } else { json!([]) } },
            }),
        )
    };
    let slow = |id: &str, at: i64, endpoint: &str, ms: f64, code: i64| {
        event(
            id,
            at,
            json!({
                "log_type": "performance", "level": "warn", "service": "api",
                "message": format!("{endpoint} took {ms} ms"),
                "endpoint": endpoint, "response_time": ms, "db_query_time": ms / 4.0,
                "status_code": code, "geo": { "country_iso_code": "DE" },
            }),
        )
    };
    store
        .index(Arc::new(vec![
            sale("s1", T, 120.0, "card", "DE", 10.0),
            sale("s2", T + 10, 80.5, "paypal", "FR", 75.0),
            sale("s3", T + 10, 15.0, "card", "DE", 90.0),
            sale("s4", T + HOUR + 5, 300.0, "card", "US", 20.0),
            slow("p1", T + 20, "/api/cart", 250.0, 200),
            slow("p2", T + HOUR, "/api/cart", 1250.0, 503),
            slow("p3", T + 2 * HOUR, "/api/search", 40.0, 200),
            event(
                "e1",
                T + 30,
                json!({
                    "log_type": "error", "level": "ERROR", "service": "payments",
                    "message": "charge failed", "error_message": "card gateway timed-out after 30s",
                    "error_code": "E504", "error_type": "Timeout",
                }),
            ),
        ]))
        .await
        .expect("index");
    settle().await;

    let since = |query: SearchQuery| SearchQuery {
        from_ms: Some(T),
        ..query
    };
    let found = |text: &str| {
        let query = since(SearchQuery {
            text: text_query::parse(text).expect("parses"),
            size: 20,
            ..SearchQuery::default()
        });
        async move {
            let mut found = ids(store.search(&query).await.expect("search"));
            found.sort();
            found
        }
    };
    // The query syntax, identically on both stores.
    assert_eq!(found("payment_method:card").await, ["s1", "s3", "s4"]);
    assert_eq!(
        found("payment_method:card AND country:DE").await,
        ["s1", "s3"]
    );
    assert_eq!(found("paypal OR error_code:E504").await, ["e1", "s2"]);
    assert_eq!(found("amount:>100").await, ["s1", "s4"]);
    assert_eq!(found("amount:[15 TO 80.5]").await, ["s2", "s3"]);
    assert_eq!(found("status_code:503").await, ["p2"]);
    assert_eq!(found("fraud.detected:true -paypal").await, ["s3"]);
    assert_eq!(found("fraud.indicators:high_amount").await, ["s2", "s3"]);
    assert_eq!(
        found("geo.country_iso_code:DE response_time:<100").await,
        ["p3"]
    );
    assert_eq!(found("error_message:\"timed out\"").await, ["e1"]);
    assert_eq!(found("message:\"timed out\"").await, Vec::<String>::new());
    assert_eq!(
        found("timed-out").await,
        ["e1"],
        "a hyphenated word is a phrase"
    );
    assert_eq!(found("level:error service:payments").await, ["e1"]);
    assert_eq!(
        found("NOT log_type:transaction NOT log_type:performance").await,
        ["e1"]
    );
    assert_eq!(
        found("(card OR paypal) -E504 order").await,
        ["s1", "s2", "s3", "s4"]
    );

    // Filters, as the API passes them, including one of several fields.
    let filtered = since(SearchQuery {
        filters: vec![
            Filter::AnyOf(vec![
                Filter::Equals(Field::Country, "DE".into()),
                Filter::Equals(Field::GeoCountry, "DE".into()),
            ]),
            Filter::between(Field::FraudScore, None, Some(50.0)),
        ],
        size: 20,
        ..SearchQuery::default()
    });
    assert_eq!(ids(store.search(&filtered).await.expect("search")), ["s1"]);

    // Sorting by a number (only events that have it), ties by id, and paging after a key.
    let by_amount = |after: Option<SortKey>, size| {
        since(SearchQuery {
            sort: Sort {
                field: SortField::Field(Field::Amount),
                descending: true,
            },
            search_after: after,
            size,
            ..SearchQuery::default()
        })
    };
    let first = store.search(&by_amount(None, 2)).await.expect("search");
    assert_eq!(first.total, 4);
    assert_eq!(
        first.hits.iter().map(super::Hit::id).collect::<Vec<_>>(),
        ["s4", "s1"]
    );
    assert_eq!(
        first.hits[1].sort,
        SortKey {
            value: 120.0,
            id: "s1".into()
        }
    );
    let next = store
        .search(&by_amount(Some(first.hits[1].sort.clone()), 5))
        .await
        .expect("search");
    assert_eq!(ids(next), ["s2", "s3"]);
    let ascending = since(SearchQuery {
        sort: Sort {
            field: SortField::Timestamp,
            descending: false,
        },
        size: 3,
        ..SearchQuery::default()
    });
    let oldest = store.search(&ascending).await.expect("search");
    assert_eq!(ids(oldest.clone()), ["s1", "s2", "s3"], "equal times by id");
    let after_tie = SearchQuery {
        search_after: Some(oldest.hits[1].sort.clone()),
        ..ascending.clone()
    };
    assert_eq!(
        ids(store.search(&after_tie).await.expect("search")),
        ["s3", "p1", "e1"],
        "after a tie, the rest of the tie and on"
    );
    let offset = SearchQuery {
        offset: 2,
        size: 2,
        ..ascending
    };
    assert_eq!(
        ids(store.search(&offset).await.expect("search")),
        ["s3", "p1"]
    );

    // Aggregations: the same request, the same typed answers.
    let mut request = Aggregations::new();
    request.insert(
        "methods".into(),
        Aggregation::terms(Field::PaymentMethod, 10)
            .with("amount", Aggregation::stats(Field::Amount)),
    );
    request.insert(
        "hours".into(),
        Aggregation::timeline(HOUR).with("slowest", Aggregation::stats(Field::ResponseTime)),
    );
    request.insert(
        "latency".into(),
        Aggregation::percentiles(Field::ResponseTime, &[50.0]),
    );
    request.insert("users".into(), Aggregation::cardinality(Field::UserId));
    request.insert("codes".into(), Aggregation::terms(Field::StatusCode, 10));
    request.insert(
        "indicators".into(),
        Aggregation::terms(Field::FraudIndicators, 10),
    );
    let window = SearchQuery::range(Some(T), Some(T + 2 * HOUR + 1));
    let results = store.aggregate(&window, &request).await.expect("aggregate");
    let methods: Vec<_> = results
        .terms("methods")
        .iter()
        .map(|b| (b.value.as_str(), b.count, b.nested.stats("amount").sum))
        .collect();
    assert_eq!(methods, [("card", 3, 435.0), ("paypal", 1, 80.5)]);
    let hours: Vec<_> = results
        .timeline("hours")
        .iter()
        .map(|b| (b.start_ms - T, b.count, b.nested.stats("slowest").max))
        .collect();
    assert_eq!(
        hours,
        [
            (0, 5, Some(250.0)),
            (HOUR, 2, Some(1250.0)),
            (2 * HOUR, 1, Some(40.0))
        ]
    );
    let median = results.percentile("latency", 50.0).expect("a median");
    assert!((median - 250.0).abs() <= 250.0 * 0.05, "median {median}");
    assert_eq!(results.cardinality("users"), 4);
    assert_eq!(
        results
            .terms("codes")
            .iter()
            .map(|b| (b.value.as_str(), b.count))
            .collect::<Vec<_>>(),
        [("200", 2), ("503", 1)]
    );
    assert_eq!(results.terms("indicators")[0].count, 2);
    let empty = store
        .aggregate(&SearchQuery::range(Some(0), Some(HOUR - 1)), &request)
        .await
        .expect("aggregate");
    assert!(empty.terms("methods").is_empty());
    assert_eq!(empty.timeline("hours")[0].count, 0);
    assert_eq!(empty.percentile("latency", 50.0), None);
    assert_eq!(empty.stats("nothing").count, 0);
}

/// Retention drops whole days before the cutoff and nothing after it, says how many events
/// went, and a second pass finds nothing left to drop. Run on a store of its own: it drops
/// everything before the cutoff.
pub async fn retention_drops_whole_days_before_the_cutoff<S, F>(store: &dyn EventStore, settle: S)
where
    S: Fn() -> F,
    F: Future<Output = ()>,
{
    use super::retention::{MS_PER_DAY, day_start, oldest_event_ms};
    let today = day_start(1_796_000_000_000);
    // One write per day, as live traffic arrives.
    for (day, ids) in [(-2, &["d-2a", "d-2b"][..]), (-1, &["d-1"]), (0, &["d0"])] {
        let at = today + day * MS_PER_DAY;
        let documents = ids
            .iter()
            .enumerate()
            .map(|(n, id)| document(id, at + 1_000 * n as i64, LogType::Error, "error", "kept"))
            .collect();
        store.index(Arc::new(documents)).await.expect("index");
    }
    settle().await;
    let usage = store.usage().await.expect("usage");
    assert!(usage.bytes > 0, "{usage:?}");
    assert_eq!(usage.oldest_ms, Some(today - 2 * MS_PER_DAY));

    // The cutoff is the start of yesterday: the day before it goes, yesterday stays whole,
    // even its first millisecond.
    let dropped = store.drop_before(today - MS_PER_DAY).await.expect("drop");
    assert_eq!(dropped, 2);
    settle().await;
    assert_eq!(
        ids(store.search(&all(10)).await.expect("search")),
        ["d0", "d-1"]
    );
    assert_eq!(
        oldest_event_ms(store).await.expect("oldest"),
        Some(today - MS_PER_DAY)
    );
    assert_eq!(
        store.drop_before(today - MS_PER_DAY).await.expect("again"),
        0,
        "a pass is idempotent"
    );
}
