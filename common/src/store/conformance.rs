//! The behaviour every event store adapter must have, run against each of them. Documents are
//! built as the processor builds them: the typed fields and a source that carries the same
//! values, since Elasticsearch reads the source and tantivy the typed fields.

use std::future::Future;
use std::sync::Arc;

use serde_json::json;

use super::{CountField, EventStore, SearchQuery, SearchResults, StoreDocument, ValueCount};
use crate::event::{LogType, write_rfc3339_ms};

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
    });
    StoreDocument {
        id: id.into(),
        timestamp_ms,
        log_type,
        level: Some(level.into()),
        service: Some("checkout".into()),
        message: Some(message.into()),
        error_message: None,
        source: serde_json::to_vec(&source).expect("JSON"),
    }
}

fn all(size: usize) -> SearchQuery {
    SearchQuery {
        size,
        ..SearchQuery::default()
    }
}

fn ids(results: SearchResults) -> Vec<String> {
    results.hits.into_iter().map(|h| h.id).collect()
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
        text: Some("gateway timeout".into()),
        ..all(10)
    };
    assert_eq!(
        ids(store.search(&text).await.expect("search")),
        ["1"],
        "every word must match"
    );
    let phrase = SearchQuery {
        text: Some("\"gateway refused\"".into()),
        ..all(10)
    };
    assert_eq!(ids(store.search(&phrase).await.expect("search")), ["2"]);

    let typed = SearchQuery {
        log_type: Some(LogType::Error),
        level: Some("ERROR".into()),
        service: Some("checkout".into()),
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

    let nothing = SearchQuery {
        service: Some("no-such-service".into()),
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
        by(all(0), CountField::LogType, 10).await,
        counts(&[("error", 3), ("transaction", 1)])
    );
    assert_eq!(
        by(all(0), CountField::Level, 10).await,
        counts(&[("error", 3), ("info", 1)])
    );
    assert_eq!(
        by(all(0), CountField::LogType, 1).await,
        counts(&[("error", 3)]),
        "the most frequent only"
    );
    let gateway = SearchQuery {
        text: Some("gateway".into()),
        ..all(0)
    };
    assert_eq!(
        by(gateway, CountField::LogType, 10).await,
        counts(&[("error", 2), ("transaction", 1)]),
        "text narrows the count"
    );
    assert_eq!(
        by(window, CountField::Service, 10).await,
        counts(&[("checkout", 2)]),
        "so does time"
    );
    assert_eq!(by(nothing, CountField::Service, 10).await, counts(&[]));
}
