//! Rollups answer as the events do: the dashboards' questions over windows of every shape,
//! asked of the same index through rollups and through tantivy's own aggregations.

use std::sync::Arc;

use serde_json::{Value, json};

use super::edge_minutes::MOST_PIECES;
use super::segment_rollups::Unrolled;
use super::{TantivyOptions, TantivyStore, WriterOptions};
use sluice_store::aggregation::{Aggregation, AggregationResult, AggregationResults, Aggregations};
use sluice_store::rollup::{HOUR_MS, MAX_VALUES_PER_BUCKET, RollupQuestion};
use sluice_store::{EventStore, Field, Filter, SearchQuery, StoreDocument, Total};

const END: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const SPAN: i64 = 3 * 86_400_000;

/// Sample events over three days, with what the processor adds: fraud verdicts and countries.
fn documents(seed: u64, count: usize) -> Vec<StoreDocument> {
    sluice_sample::SampleGenerator::new(seed, count, END, SPAN)
        .take(count)
        .enumerate()
        .map(|(n, mut event)| {
            let at = sluice_event::parse_timestamp(event["timestamp"].as_str().unwrap_or(""))
                .expect("sample time");
            if event["log_type"] == "transaction" {
                let score = (n * 37 % 100) as f64;
                event["fraud"] = json!({"score": score, "detected": score >= 90.0,
                    "indicators": if score >= 90.0 { json!(["high_amount"]) } else { json!([]) }});
                let country = ["US", "DE", "JP"][n % 3];
                event["geo"] = json!({ "country_iso_code": country });
            }
            let id = event["event_id"].as_str().unwrap_or("").to_owned();
            StoreDocument::from_source(&id, at, &event)
        })
        .collect()
}

fn named(list: Vec<(&str, Aggregation)>) -> Aggregations {
    list.into_iter()
        .map(|(name, aggregation)| (name.to_owned(), aggregation))
        .collect()
}

/// What the dashboard, analytics, performance and fraud endpoints ask.
fn questions(from_ms: Option<i64>, to_ms: Option<i64>) -> Vec<(SearchQuery, Aggregations)> {
    let window = SearchQuery::range(from_ms, to_ms);
    let of_type = |t: &str| window.and(Filter::Equals(Field::LogType, t.into()));
    let paid = || Aggregation::stats(Field::Amount);
    vec![
        (
            window.clone(),
            named(vec![
                ("types", Aggregation::terms(Field::LogType, 10)),
                ("detected", Aggregation::terms(Field::FraudDetected, 2)),
                ("users", Aggregation::cardinality(Field::UserId)),
                ("levels", Aggregation::terms(Field::Level, 20)),
                ("services", Aggregation::terms(Field::Service, 10)),
                ("countries", Aggregation::terms(Field::GeoCountry, 10)),
                (
                    "timeline",
                    Aggregation::timeline(3 * HOUR_MS)
                        .with("types", Aggregation::terms(Field::LogType, 10)),
                ),
            ]),
        ),
        (
            of_type("transaction"),
            named(vec![
                ("amount", paid()),
                (
                    "products",
                    Aggregation::terms(Field::ProductName, 200)
                        .with("amount", paid())
                        .with("quantity", Aggregation::stats(Field::Quantity)),
                ),
                (
                    "methods",
                    Aggregation::terms(Field::PaymentMethod, 200).with("amount", paid()),
                ),
                (
                    "timeline",
                    Aggregation::timeline(HOUR_MS).with("amount", paid()),
                ),
            ]),
        ),
        (
            of_type("transaction").and(Filter::AnyOf(vec![
                Filter::Equals(Field::Status, "failed".into()),
                Filter::Equals(Field::Status, "declined".into()),
            ])),
            named(vec![
                ("amount", paid()),
                (
                    "products",
                    Aggregation::terms(Field::ProductName, 1000).with("amount", paid()),
                ),
            ]),
        ),
        (
            of_type("performance"),
            named(vec![
                (
                    "p",
                    Aggregation::percentiles(Field::ResponseTime, &[50.0, 95.0, 99.0]),
                ),
                ("codes", Aggregation::terms(Field::StatusCode, 100)),
                (
                    "endpoints",
                    Aggregation::terms(Field::Endpoint, 1000)
                        .with("time", Aggregation::stats(Field::ResponseTime))
                        .with("p", Aggregation::percentiles(Field::ResponseTime, &[95.0])),
                ),
                (
                    "timeline",
                    Aggregation::timeline(6 * HOUR_MS)
                        .with("db", Aggregation::stats(Field::DbQueryTime)),
                ),
            ]),
        ),
        (
            of_type("user_behavior"),
            named(vec![
                ("actions", Aggregation::terms(Field::Action, 200)),
                ("pages", Aggregation::terms(Field::Page, 10)),
                ("users", Aggregation::cardinality(Field::UserId)),
                ("sessions", Aggregation::cardinality(Field::SessionId)),
            ]),
        ),
        (
            window.and(Filter::Exists(Field::FraudScore)),
            named(vec![("score", Aggregation::stats(Field::FraudScore))]),
        ),
        (
            window.and(Filter::Equals(Field::FraudDetected, "true".into())),
            named(vec![
                (
                    "indicators",
                    Aggregation::terms(Field::FraudIndicators, 100),
                ),
                ("countries", Aggregation::terms(Field::GeoCountry, 10)),
                ("timeline", Aggregation::timeline(HOUR_MS)),
            ]),
        ),
    ]
}

fn close(a: f64, b: f64, relative: f64) -> bool {
    (a - b).abs() <= relative * a.abs().max(b.abs()).max(1.0)
}

/// Counts equal, sums and extremes equal but for float rounding, percentiles equal (the same
/// sketch), distinct counts within the two sketches' errors.
fn assert_agree(path: &str, rollups: &AggregationResults, events: &AggregationResults) {
    assert_eq!(
        rollups.0.keys().collect::<Vec<_>>(),
        events.0.keys().collect::<Vec<_>>(),
        "{path}"
    );
    for (name, rolled) in &rollups.0 {
        let path = format!("{path}.{name}");
        match (rolled, &events.0[name]) {
            (AggregationResult::Terms(a), AggregationResult::Terms(b)) => {
                let counts = |t: &[sluice_store::TermBucket]| {
                    t.iter()
                        .map(|b| (b.value.clone(), b.count))
                        .collect::<Vec<_>>()
                };
                assert_eq!(counts(a), counts(b), "{path}");
                for (a, b) in a.iter().zip(b) {
                    assert_agree(&format!("{path}[{}]", a.value), &a.nested, &b.nested);
                }
            }
            (AggregationResult::Timeline(a), AggregationResult::Timeline(b)) => {
                let counts = |t: &[sluice_store::TimeBucket]| {
                    t.iter().map(|b| (b.start_ms, b.count)).collect::<Vec<_>>()
                };
                assert_eq!(counts(a), counts(b), "{path}");
                for (a, b) in a.iter().zip(b) {
                    assert_agree(&format!("{path}[{}]", a.start_ms), &a.nested, &b.nested);
                }
            }
            (AggregationResult::Stats(a), AggregationResult::Stats(b)) => {
                assert_eq!(a.count, b.count, "{path}");
                assert!(close(a.sum, b.sum, 1e-9), "{path}: {a:?} {b:?}");
                for (x, y) in [(a.min, b.min), (a.max, b.max), (a.avg, b.avg)] {
                    assert!(
                        x.zip(y)
                            .map_or(x.is_none() && y.is_none(), |(x, y)| close(x, y, 1e-9)),
                        "{path}: {a:?} {b:?}"
                    );
                }
            }
            (AggregationResult::Percentiles(a), AggregationResult::Percentiles(b)) => {
                for ((p, x), (_, y)) in a.iter().zip(b) {
                    assert!(
                        x.zip(*y)
                            .map_or(x.is_none() && y.is_none(), |(x, y)| close(x, y, 0.02)),
                        "{path} p{p}: {x:?} {y:?}"
                    );
                }
            }
            (AggregationResult::Cardinality(a), AggregationResult::Cardinality(b)) => {
                assert!(close(*a as f64, *b as f64, 0.03), "{path}: {a} {b}");
            }
            (a, b) => panic!("{path}: {a:?} against {b:?}"),
        }
    }
}

async fn assert_rollups_answer_as_events(
    store: &TantivyStore,
    windows: &[(Option<i64>, Option<i64>)],
) {
    for &(from_ms, to_ms) in windows {
        for (query, request) in questions(from_ms, to_ms) {
            RollupQuestion::of(&query, &request).expect("a question rollups answer");
            let inner = Arc::clone(&store.inner);
            let (by_rollups, by_events) = tokio::task::spawn_blocking(move || {
                let searcher = inner.reader.searcher();
                (
                    TantivyStore::run_aggregate(&inner, &query, &request).expect("rollups"),
                    TantivyStore::aggregate_from_events(&inner, &searcher, &query, &request)
                        .expect("events"),
                )
            })
            .await
            .expect("joins");
            assert_agree(&format!("{from_ms:?}..{to_ms:?}"), &by_rollups, &by_events);
        }
    }
}

fn windows() -> Vec<(Option<i64>, Option<i64>)> {
    let start = END - SPAN;
    vec![
        (None, None),
        (Some(start), Some(END)),
        // Ragged at both ends, and within one hour.
        (
            Some(start + 7 * HOUR_MS + 123_457),
            Some(END - 5 * HOUR_MS - 98_765),
        ),
        (
            Some(start + 30 * HOUR_MS + 60_000),
            Some(start + 30 * HOUR_MS + 1_800_000),
        ),
        (Some(start + 25 * HOUR_MS), None),
    ]
}

#[tokio::test]
async fn rollups_answer_the_dashboards_as_the_events_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
    let documents = documents(42, 6_000);
    // Several commits, so several segments; then a replay of the first batch, as after a crash,
    // which replaces documents in rolled-up segments.
    for batch in documents.chunks(1_500) {
        store
            .index(Arc::new(batch.to_vec()))
            .await
            .expect("indexes");
        store.roll_up_now().await.expect("rolls up");
    }
    store
        .index(Arc::new(documents[..700].to_vec()))
        .await
        .expect("replays");
    assert_rollups_answer_as_events(&store, &windows()).await;
    store.roll_up_now().await.expect("rolls up");
    let searcher = store.inner.reader.searcher();
    assert!(searcher.segment_readers().len() > 1);
    for segment in searcher.segment_readers() {
        assert!(
            store.inner.rollups.of(segment).is_some(),
            "every segment rolled up"
        );
    }
    assert_rollups_answer_as_events(&store, &windows()).await;

    // The day merges hold every segment whole: no segment's rollup stays decoded.
    assert_eq!(store.inner.rollups.decoded(), 0, "released once merged");
    // A replay leaves days holding segments that changed; within the re-merge interval they
    // are read per segment, each segment's rollup decoded again from what was kept.
    store
        .index(Arc::new(documents[2_000..2_900].to_vec()))
        .await
        .expect("replays");
    let searcher = store.inner.reader.searcher();
    store
        .inner
        .rollups
        .update(&searcher, false)
        .expect("rolls up");
    assert!(
        store.inner.rollups.days_behind(),
        "days left to merge again"
    );
    assert_rollups_answer_as_events(&store, &windows()).await;
    store.roll_up_now().await.expect("rolls up");
    assert!(!store.inner.rollups.days_behind());
    assert_eq!(
        store.inner.rollups.decoded(),
        0,
        "released once merged again"
    );
    assert_rollups_answer_as_events(&store, &windows()).await;

    // Counted once, whatever was replayed.
    let all = SearchQuery::range(None, None);
    let request = named(vec![("types", Aggregation::terms(Field::LogType, 10))]);
    let answer = store.aggregate(&all, &request).await.expect("answers");
    let counted: u64 = answer.terms("types").iter().map(|b| b.count).sum();
    assert_eq!(counted, documents.len() as u64);
}

/// The hours a window's ragged edges fall in are kept by minute: a segment added since is
/// added to them as a piece of its own, one replayed into has the hour rolled up again, and
/// every answer stays the events' own.
#[tokio::test]
async fn edge_hours_answer_as_the_events_do_as_segments_come_and_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
    let (from_ms, to_ms) = (
        END - SPAN + 7 * HOUR_MS + 123_457,
        END - 5 * HOUR_MS - 98_765,
    );
    let (first_hour, last_hour) = (END - SPAN + 7 * HOUR_MS, END - 6 * HOUR_MS);
    let window = [(Some(from_ms), Some(to_ms))];
    let pieces = |hour| store.inner.rollups.edge_minutes.pieces(hour);
    let first = documents(11, 3_000);
    for batch in first.chunks(1_500) {
        store
            .index(Arc::new(batch.to_vec()))
            .await
            .expect("indexes");
    }
    store.roll_up_now().await.expect("rolls up");
    assert_rollups_answer_as_events(&store, &window).await;
    assert_eq!(pieces(first_hour), Some(1), "rolled up by minute");
    assert_eq!(pieces(last_hour), Some(1), "rolled up by minute");

    // Segments added one at a time, up to as many pieces as an hour gathers, and one more.
    for pieces_now in 2..=MOST_PIECES + 1 {
        store
            .index(Arc::new(documents(10 + pieces_now as u64, 800)))
            .await
            .expect("indexes");
        store.roll_up_now().await.expect("rolls up");
        assert_rollups_answer_as_events(&store, &window).await;
        let expected = if pieces_now > MOST_PIECES {
            1
        } else {
            pieces_now
        };
        assert_eq!(pieces(first_hour), Some(expected), "the new segment added");
    }

    // A replay replaces documents in the segments the hours hold: rolled up again, whole.
    store
        .index(Arc::new(first[..400].to_vec()))
        .await
        .expect("replays");
    store.roll_up_now().await.expect("rolls up");
    assert_rollups_answer_as_events(&store, &window).await;
    assert_eq!(pieces(first_hour), Some(1), "rolled up again");
}

#[tokio::test]
async fn rollups_are_kept_across_a_restart_and_dropped_with_their_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let documents = documents(7, 2_000);
    {
        let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
        store
            .index(Arc::new(documents.clone()))
            .await
            .expect("indexes");
        store.roll_up_now().await.expect("rolls up");
        assert!(store.rollup_bytes() > 0);
    }
    let store = TantivyStore::open(dir.path(), 20_000_000).expect("reopens");
    assert_eq!(
        store.roll_up_now().await.expect("rolls up"),
        0,
        "every segment's rollup read back from disk"
    );
    assert_rollups_answer_as_events(&store, &windows()).await;
    assert_eq!(store.rebuild_rollups().await.expect("rebuilds"), 1);

    let everything = store.drop_before(END + 86_400_000).await.expect("drops");
    assert_eq!(everything, documents.len() as u64);
    store.roll_up_now().await.expect("rolls up");
    assert_eq!(
        store.rollup_bytes(),
        0,
        "the rollups went with their segments"
    );
}

/// A producer that sends a new page with every event: the segment's rollup stops keeping pages
/// at its cap, and a question by page is answered exactly from that segment's events.
#[tokio::test]
async fn endless_distinct_values_are_answered_from_events_not_kept_in_rollups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
    let pages = MAX_VALUES_PER_BUCKET + 200;
    let hour = END - 10 * HOUR_MS;
    let documents: Vec<StoreDocument> = (0..pages)
        .map(|n| {
            let event = json!({"log_type": "user_behavior", "action": "view",
                               "page": format!("/hostile/{n}"), "user_id": format!("u{}", n % 7)});
            StoreDocument::from_source(&format!("e{n}"), hour + n as i64, &event)
        })
        .collect();
    store.index(Arc::new(documents)).await.expect("indexes");
    store.roll_up_now().await.expect("rolls up");

    let all = SearchQuery::range(None, None);
    let by_page = named(vec![
        ("pages", Aggregation::terms(Field::Page, pages + 10)),
        ("actions", Aggregation::terms(Field::Action, 10)),
    ]);
    let answer = store.aggregate(&all, &by_page).await.expect("answers");
    assert_eq!(answer.terms("pages").len(), pages, "every page counted");
    assert!(answer.terms("pages").iter().all(|page| page.count == 1));
    assert_eq!(answer.terms("actions")[0].count, pages as u64);

    let searcher = store.inner.reader.searcher();
    let rollup = store
        .inner
        .rollups
        .of(&searcher.segment_readers()[0])
        .expect("rolled up");
    let asks = |request| RollupQuestion::of(&all, &request).expect("answerable");
    assert!(
        !asks(by_page).reads(&rollup.outline),
        "pages overflowed the rollup"
    );
    let by_action = named(vec![("actions", Aggregation::terms(Field::Action, 10))]);
    assert!(
        asks(by_action).reads(&rollup.outline),
        "actions are whole in it"
    );
}

/// The same hostile producer, with its pages spread over the hour a window ends in: the edge
/// hour's minutes neither keep the pages nor lose any, and a question by page or by action over
/// the ragged window is answered exactly.
#[tokio::test]
async fn endless_distinct_values_in_an_edge_hour_are_answered_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
    let pages = MAX_VALUES_PER_BUCKET + 200;
    let hour = END - 10 * HOUR_MS;
    let at = |n: usize| hour + 2_000 * n as i64;
    let documents: Vec<StoreDocument> = (0..pages)
        .map(|n| {
            let event = json!({"log_type": "user_behavior", "action": "view",
                               "page": format!("/hostile/{n}"), "user_id": format!("u{}", n % 7)});
            StoreDocument::from_source(&format!("e{n}"), at(n), &event)
        })
        .collect();
    store.index(Arc::new(documents)).await.expect("indexes");
    // An ordinary segment with events in the same hour, whose rollup holds its pages whole.
    store
        .index(Arc::new(documents_within(hour, 300)))
        .await
        .expect("indexes");
    store.roll_up_now().await.expect("rolls up");

    let to_ms = hour + 30 * 60_000 + 1_234;
    let window = SearchQuery::range(Some(hour - HOUR_MS / 2 + 17), Some(to_ms));
    let hostile = (0..pages).filter(|&n| at(n) <= to_ms).count();
    for request in [
        named(vec![(
            "pages",
            Aggregation::terms(Field::Page, pages + 400),
        )]),
        named(vec![("actions", Aggregation::terms(Field::Action, 10))]),
    ] {
        RollupQuestion::of(&window, &request).expect("a question rollups answer");
        let inner = Arc::clone(&store.inner);
        let query = window.clone();
        let (by_rollups, by_events) = tokio::task::spawn_blocking(move || {
            let searcher = inner.reader.searcher();
            (
                TantivyStore::run_aggregate(&inner, &query, &request).expect("rollups"),
                TantivyStore::aggregate_from_events(&inner, &searcher, &query, &request)
                    .expect("events"),
            )
        })
        .await
        .expect("joins");
        assert_agree("ragged window", &by_rollups, &by_events);
        if let Some(AggregationResult::Terms(pages)) = by_rollups.0.get("pages") {
            let hostile_counted = pages.iter().filter(|p| p.value.starts_with("/hostile/"));
            assert_eq!(
                hostile_counted.count(),
                hostile,
                "every hostile page in the window"
            );
        }
    }
}

/// `count` sample events within the hour that starts at `hour`.
fn documents_within(hour: i64, count: usize) -> Vec<StoreDocument> {
    documents(5, count)
        .into_iter()
        .enumerate()
        .map(|(n, document)| {
            let source: Value = serde_json::from_str(&document.source).expect("json");
            let at = hour + (n as i64 * 11_987) % HOUR_MS;
            StoreDocument::from_source(&format!("o{n}"), at, &source)
        })
        .collect()
}

#[test]
fn sample_documents_carry_what_the_questions_ask() {
    let documents = documents(1, 500);
    let has = |field: Field| documents.iter().any(|d| !d.fields.of(field).is_empty());
    for field in [
        Field::Amount,
        Field::ResponseTime,
        Field::SessionId,
        Field::FraudScore,
    ] {
        assert!(has(field), "{field}");
    }
    let _: Value = serde_json::from_str(&documents[0].source).expect("JSON");
}

/// A search the rollups can count (filters on the dashboards' slices) takes its total from
/// them and finds its page without counting every match: totals and pages equal those of a
/// store that counts, over ragged windows and after a replay.
#[tokio::test]
async fn search_totals_from_rollups_equal_counting_every_match() {
    let (dir, counting_dir) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
    let counting = TantivyStore::open_with(
        counting_dir.path(),
        TantivyOptions {
            writer: WriterOptions::with_memory(20_000_000),
            kept_aggregations: 0,
            rollups: false,
        },
    )
    .expect("opens");
    let late = documents(12, 500);
    let documents = documents(11, 4_000);
    for batch in documents.chunks(1_000).chain([&documents[..300]]) {
        for store in [&store, &counting] {
            store
                .index(Arc::new(batch.to_vec()))
                .await
                .expect("indexes");
        }
        store.roll_up_now().await.expect("rolls up");
    }
    // A batch the rollup thread may not have rolled up yet: counted from its events.
    for store in [&store, &counting] {
        store.index(Arc::new(late.clone())).await.expect("indexes");
    }
    let filters = [
        vec![],
        vec![Filter::Equals(Field::LogType, "transaction".into())],
        vec![
            Filter::AnyOf(vec![
                Filter::Equals(Field::Status, "failed".into()),
                Filter::Equals(Field::Status, "pending".into()),
            ]),
            Filter::Equals(Field::FraudDetected, "true".into()),
        ],
        // Not a slice: counted from the events.
        vec![Filter::Exists(Field::Amount)],
    ];
    for (from_ms, to_ms) in windows() {
        for filters in &filters {
            for size in [0, 7] {
                let query = SearchQuery {
                    filters: filters.clone(),
                    size,
                    ..SearchQuery::range(from_ms, to_ms)
                };
                let (found, expected) = (
                    store.search(&query).await.expect("searches"),
                    counting.search(&query).await.expect("searches"),
                );
                let sources = |hits: &[sluice_store::Hit]| {
                    hits.iter()
                        .map(|hit| hit.source.clone())
                        .collect::<Vec<_>>()
                };
                assert_eq!(found.total, expected.total, "{query:?}");
                assert_eq!(sources(&found.hits), sources(&expected.hits), "{query:?}");
                let uncounted = SearchQuery {
                    total: Total::NotNeeded,
                    ..query.clone()
                };
                let page = store.search(&uncounted).await.expect("searches");
                assert_eq!(page.total, 0);
                assert_eq!(sources(&page.hits), sources(&expected.hits), "{query:?}");
                // Segments not rolled up yet (none is, without rollups) are counted as they are.
                if let Ok(question) = RollupQuestion::of(&query, &Aggregations::new()) {
                    let inner = Arc::clone(&counting.inner);
                    let unrolled = tokio::task::spawn_blocking(move || {
                        let searcher = inner.reader.searcher();
                        let window = TantivyStore::roll_up_window(
                            &inner,
                            &searcher,
                            &query,
                            &question,
                            Unrolled::Count,
                        )
                        .expect("counts");
                        question.count_parts(&window.parts(&question)) + window.counted
                    })
                    .await
                    .expect("joins");
                    assert_eq!(unrolled, expected.total);
                }
            }
        }
    }
}
