//! Retention in the embedded store, over HTTP: events past `store.retention_days` go at the next
//! pass, and under steady load a `store.max_disk_bytes` bound drops the oldest days so that the
//! store stops growing, while nothing of the current day is dropped.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use sluice_sample::SampleGenerator;

use crate::support::Server;

const DAY_MS: i64 = 86_400_000;
/// More than the backfill below holds (about 3.4 MB), less than it and the steady traffic of
/// today (about 1.7 MB) together.
const BOUND: u64 = 4_000_000;

/// Events whose time falls in `[from_ms, to_ms]`.
async fn held(server: &Server, from_ms: i64, to_ms: i64) -> u64 {
    server
        .total(json!({"from": from_ms, "to": to_ms, "size": 0}))
        .await
}

/// The start of the UTC day `days_ago` days before today, epoch ms.
fn day_start(days_ago: i64) -> i64 {
    let now = sluice_event::now_ms();
    now - now.rem_euclid(DAY_MS) - days_ago * DAY_MS
}

/// `count` generated events on the UTC day `days_ago` days before today (today: up to now). The
/// generator plants some patterns up to an hour before its span; these events are retimed into
/// the day, and given ids of their own, so that each is counted once.
fn events_of_day(seed: u64, count: usize, days_ago: i64) -> Vec<Value> {
    let start = day_start(days_ago);
    let end = (start + DAY_MS - 1).min(sluice_event::now_ms());
    let span = (end - start).max(1);
    SampleGenerator::new(seed, count, end, span)
        .take(count)
        .enumerate()
        .map(|(n, mut event)| {
            let object = event.as_object_mut().expect("an object");
            object.insert("event_id".into(), json!(format!("{days_ago}-{seed}-{n}")));
            object.insert(
                "timestamp".into(),
                json!(start + (n as i64 * span / count as i64)),
            );
            event
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_days_go_on_schedule_and_a_disk_bound_stops_the_growth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bound = BOUND.to_string();
    let env = [
        ("SLUICE_STORE__RETENTION_DAYS", "30"),
        ("SLUICE_STORE__MAX_DISK_BYTES", bound.as_str()),
        ("SLUICE_STORE__RETENTION_CHECK_SECS", "1"),
        ("SLUICE_PROCESSOR__COMMIT_INTERVAL_MS", "100"),
    ];
    // The current day must not change under the test: near midnight (UTC), wait for it.
    let left_today = DAY_MS - sluice_event::now_ms().rem_euclid(DAY_MS);
    if left_today < 120_000 {
        tokio::time::sleep(Duration::from_millis(left_today as u64 + 1_000)).await;
    }
    let data = dir.path().join("data");
    let server = Server::start(&data, None, &env);

    // Past retention: forty days ago goes at the first pass.
    let expired = events_of_day(1, 500, 40);
    let (status, _) = server.post_ndjson("/api/logs/ingest", &expired).await;
    assert_eq!(status, 202);
    // A backfill of ten earlier days, a day per request as a shipper catching up sends them, so
    // that each day is a segment of its own.
    for days_ago in (1..=10).rev() {
        let events = events_of_day(100 + days_ago as u64, 2_000, days_ago);
        let (status, answer) = server.post_ndjson("/api/logs/ingest", &events).await;
        assert_eq!(status, 202, "{answer}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Then steady traffic of today, watching the store's size on disk.
    let started = Instant::now();
    let mut sent_today = 0;
    let mut sizes = Vec::new();
    let mut batch = 0;
    while started.elapsed() < Duration::from_secs(20) {
        let events = events_of_day(1_000 + batch, 250, 0);
        batch += 1;
        let (status, answer) = server.post_ndjson("/api/logs/ingest", &events).await;
        assert_eq!(status, 202, "{answer}");
        sent_today += answer["accepted"].as_u64().expect("accepted");
        tokio::time::sleep(Duration::from_millis(500)).await;
        sizes.push(server.metric("sluice_store_bytes", "").await as u64);
    }
    let today = day_start(0);
    let now = sluice_event::now_ms() + 60_000;
    let deadline = Instant::now() + Duration::from_secs(30);
    while held(&server, today, now).await < sent_today {
        assert!(
            Instant::now() < deadline,
            "today's events were not all indexed: {} of {sent_today}, {} in all, sizes {sizes:?}, dead letters {}",
            held(&server, today, now).await,
            held(&server, 0, now).await,
            server.get_json("/api/dead-letters").await,
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A pass after the last write.
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(
        held(&server, 0, day_start(30) - 1).await,
        0,
        "events past retention are gone"
    );
    assert!(
        server
            .metric(
                "sluice_store_retention_dropped_events_total",
                "reason=\"age\""
            )
            .await
            >= expired.len() as f64
    );
    assert_eq!(
        held(&server, today, now).await,
        sent_today,
        "nothing of the current day is dropped"
    );
    assert_eq!(
        held(&server, day_start(10), day_start(9) - 1).await,
        0,
        "the oldest day went for the disk bound"
    );
    assert!(
        server
            .metric(
                "sluice_store_retention_dropped_events_total",
                "reason=\"disk\""
            )
            .await
            >= 2_000.0
    );
    let oldest = server
        .metric("sluice_store_oldest_event_timestamp_seconds", "")
        .await;
    assert!(
        oldest * 1000.0 >= day_start(9) as f64,
        "the oldest event kept is reported: {oldest}"
    );
    // Once the bound is reached the store stops growing: every size seen in the second half
    // of the steady load is within a pass's worth of traffic of the bound.
    let settled = &sizes[sizes.len() / 2..];
    let largest = settled.iter().copied().max().unwrap_or(0);
    assert!(
        largest <= BOUND + BOUND / 2,
        "the store kept growing past {BOUND} bytes: {sizes:?}"
    );
    let on_disk: u64 = std::fs::read_dir(data.join("index"))
        .expect("index dir")
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .filter(|metadata| metadata.is_file())
        .map(|metadata| metadata.len())
        .sum();
    assert!(
        on_disk <= BOUND + BOUND / 2,
        "the index directory holds {on_disk} bytes"
    );
}
