//! End to end over HTTP against `sluice serve`: 10,000 generated events through each ingest
//! endpoint, all searchable with the right counts per log type, geo on known IPs, fraud on the
//! planted patterns.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_sample::{csv_header, csv_row};
use support::{Server, count_by_type, expected_country, generate, sample_geoip, search_all};

const PER_ENDPOINT: usize = 10_000;
const HOUR: i64 = 3_600_000;

/// Each endpoint's events live in their own 5-hour window, so each can be checked on its own.
struct Window {
    seed: u64,
    end_hours_ago: i64,
}

impl Window {
    fn events(&self) -> Vec<Value> {
        generate(self.seed, PER_ENDPOINT, self.end_hours_ago, 5)
    }

    /// Where the window's events lie, and no other window's: the generator's five hours, the
    /// patterns it plants up to an hour before them, half an hour to spare on either side. The
    /// windows are seven hours apart, so these bounds do not overlap.
    fn bounds(&self) -> (i64, i64) {
        let now = sluice_event::now_ms();
        (
            now - (self.end_hours_ago + 6) * HOUR - HOUR / 2,
            now - self.end_hours_ago * HOUR + HOUR / 2 - 60_000,
        )
    }
}

async fn assert_window(server: &Server, window: &Window, events: &[Value]) {
    let (from, to) = window.bounds();
    for (log_type, count) in count_by_type(events) {
        let query = json!({"log_type": log_type, "from": from, "to": to, "size": 0});
        server
            .wait_for_total(query, count, Duration::from_secs(60))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_through_every_endpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let geoip = sample_geoip(dir.path());
    let server = Server::start(&dir.path().join("data"), Some(&geoip), &[]);

    // 1. POST /api/logs/ingest: NDJSON and a JSON array, 5,000 each.
    let ingest = Window {
        seed: 11,
        end_hours_ago: 1,
    };
    let events = ingest.events();
    let (status, answer) = server
        .post_ndjson("/api/logs/ingest", &events[..5_000])
        .await;
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (202, Some(5_000)),
        "{answer}"
    );
    let response = server
        .http
        .post(server.url("/api/logs/ingest"))
        .json(&events[5_000..])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 202);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(5_000), Some(0))
    );
    assert_window(&server, &ingest, &events).await;
    check_geo(&server, &ingest).await;
    check_fraud(&server, &ingest, &events).await;
    check_fraud_metrics(&server, &ingest).await;

    // 2. POST /api/logs/upload with a CSV file.
    let csv_window = Window {
        seed: 12,
        end_hours_ago: 8,
    };
    let csv_events = csv_window.events();
    let mut csv = csv_header();
    for event in &csv_events {
        csv_row(event, &mut csv);
    }
    let (status, answer) = server
        .upload("orders.csv", "text/csv", csv.into_bytes())
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], PER_ENDPOINT);
    assert_eq!(answer["format"], "csv");
    assert!(answer["lines"].as_u64().expect("lines") > PER_ENDPOINT as u64);
    assert_window(&server, &csv_window, &csv_events).await;

    // 3. POST /api/logs/upload with an NDJSON file.
    let ndjson_window = Window {
        seed: 13,
        end_hours_ago: 15,
    };
    let ndjson_events = ndjson_window.events();
    let body = support::ndjson(&ndjson_events).into_bytes();
    let (status, answer) = server
        .upload("events.ndjson", "application/octet-stream", body)
        .await;
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (202, Some(PER_ENDPOINT as u64)),
        "{answer}"
    );
    assert_eq!(answer["lines"], PER_ENDPOINT);
    assert_window(&server, &ndjson_window, &ndjson_events).await;

    // 4. POST /_bulk in the Elasticsearch format, 1,000 items a request.
    let bulk_window = Window {
        seed: 14,
        end_hours_ago: 22,
    };
    let bulk_events = bulk_window.events();
    for chunk in bulk_events.chunks(1_000) {
        let mut body = String::new();
        for event in chunk {
            body.push_str("{\"index\":{\"_index\":\"logs-shop\"}}\n");
            body.push_str(&event.to_string());
            body.push('\n');
        }
        let response = server
            .http
            .post(server.url("/_bulk"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("bulk sent");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
        let answer: Value = response.json().await.expect("bulk answer");
        assert_eq!(answer["errors"], false, "{answer}");
        let items = answer["items"].as_array().expect("items");
        assert_eq!(items.len(), chunk.len());
        for (item, event) in items.iter().zip(chunk) {
            assert_eq!(item["index"]["status"], 201);
            assert_eq!(item["index"]["_id"], event["event_id"]);
            assert_eq!(item["index"]["_index"], "logs-shop");
        }
    }
    assert_window(&server, &bulk_window, &bulk_events).await;

    // Everything together: 40,000 distinct events.
    let mut all = events;
    all.extend(csv_events);
    all.extend(ndjson_events);
    all.extend(bulk_events);
    for (log_type, count) in count_by_type(&all) {
        assert_eq!(
            server.total(json!({"log_type": log_type, "size": 0})).await,
            count,
            "{log_type}"
        );
    }
    assert_eq!(
        server.total(json!({"size": 0})).await,
        4 * PER_ENDPOINT as u64
    );
}

/// Every transaction whose IP is in a network of the test database carries that network's place.
async fn check_geo(server: &Server, window: &Window) {
    let (from, to) = window.bounds();
    let answer = server.search(search_all("transaction", from, to)).await;
    let mut located = 0;
    for hit in answer["hits"].as_array().expect("hits") {
        let ip = hit["ip"].as_str().expect("ip");
        let Some(network) = expected_country(ip) else {
            assert!(
                hit.get("geo").is_none(),
                "{ip} is not in the test database: {hit}"
            );
            continue;
        };
        assert_eq!(hit["geo"]["country_iso_code"], network.iso, "{hit}");
        assert_eq!(hit["geo"]["city_name"], network.city, "{hit}");
        assert_eq!(hit["geo"]["location"]["lat"], network.lat, "{hit}");
        assert!(hit["geo"]["continent_code"].is_string(), "{hit}");
        located += 1;
    }
    assert!(located > 1_000, "only {located} located transactions");
}

/// Each planted pattern fires the indicator it was planted for.
async fn check_fraud(server: &Server, window: &Window, events: &[Value]) {
    let (from, to) = window.bounds();
    let answer = server.search(search_all("transaction", from, to)).await;
    let hits = answer["hits"].as_array().expect("hits");
    let planted: usize = events
        .iter()
        .filter(|e| e.get("sample_pattern").is_some())
        .count();
    let mut fired: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut scored = 0;
    for hit in hits {
        assert_eq!(
            hit["fraud"]["source"], "sluice",
            "every transaction is scored: {hit}"
        );
        scored += 1;
        let Some(pattern) = hit["sample_pattern"].as_str() else {
            continue;
        };
        let indicators = hit["fraud"]["indicators"].as_array().expect("indicators");
        let entry = fired
            .entry((
                pattern.to_owned(),
                hit["user_id"].as_str().expect("user").to_owned(),
            ))
            .or_default();
        entry.extend(
            indicators
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned)),
        );
        if pattern == "high_risk_mismatch" {
            assert_eq!(hit["fraud"]["detected"], true, "{hit}");
            assert!(hit["fraud"]["score"].as_f64().expect("score") >= 50.0);
        }
    }
    assert!(scored > 1_000);
    assert!(planted > 0 && !fired.is_empty());
    let mut seen_patterns = BTreeSet::new();
    for ((pattern, user), indicators) in &fired {
        let expected: &[&str] = match pattern.as_str() {
            "rapid_transactions" => &["rapid_transactions"],
            "failed_attempts" => &["failed_attempts"],
            "impossible_travel" => &["suspicious_location", "ip_mismatch"],
            "amount_anomaly" => &["amount_anomaly"],
            "high_risk_mismatch" => &["high_amount", "suspicious_location", "ip_mismatch"],
            other => panic!("unknown pattern {other}"),
        };
        for indicator in expected {
            assert!(
                indicators.contains(*indicator),
                "{pattern} of {user} did not fire {indicator}: {indicators:?}"
            );
        }
        seen_patterns.insert(pattern.clone());
    }
    assert_eq!(
        seen_patterns.len(),
        5,
        "every pattern was planted: {seen_patterns:?}"
    );
}

/// The fraud metrics count what the documents say: every event scored, every detection, and
/// each indicator as often as it fired (the window's events are the only ones indexed yet).
async fn check_fraud_metrics(server: &Server, window: &Window) {
    let (from, to) = window.bounds();
    let mut expected: BTreeMap<String, f64> = BTreeMap::new();
    for log_type in ["transaction", "user_behavior"] {
        let answer = server.search(search_all(log_type, from, to)).await;
        for hit in answer["hits"].as_array().expect("hits") {
            if hit["fraud"]["source"] != "sluice" {
                continue;
            }
            *expected
                .entry("sluice_fraud_scored_total".into())
                .or_default() += 1.0;
            if hit["fraud"]["detected"] == true {
                *expected
                    .entry("sluice_fraud_detections_total".into())
                    .or_default() += 1.0;
            }
            for indicator in hit["fraud"]["indicators"].as_array().expect("indicators") {
                let indicator = indicator.as_str().expect("a name");
                let metric = format!("sluice_fraud_indicators_total{{indicator=\"{indicator}\"}}");
                *expected.entry(metric).or_default() += 1.0;
            }
        }
    }
    assert!(
        expected.len() > 3,
        "scored, detected and indicators: {expected:?}"
    );
    let metrics = server.get_text("/metrics").await;
    let counted: BTreeMap<String, f64> = metrics
        .lines()
        .filter(|line| line.starts_with("sluice_fraud_"))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect();
    assert_eq!(counted, expected);
}

/// `store.url = null://` (for benchmarking the processor alone): everything is processed and
/// acknowledged, nothing is kept.
#[tokio::test]
async fn the_null_store_acknowledges_and_keeps_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None, &[("SLUICE_STORE__URL", "null://")]);
    let events = generate(5, 1_000, 1, 2);
    let (status, answer) = server.post_ndjson("/api/logs/ingest", &events).await;
    assert_eq!(status, 202, "{answer}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = server.get_text("/metrics").await;
        let indexed: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("sluice_events_indexed_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if indexed >= 1_000.0 {
            assert_eq!(indexed, 1_000.0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "indexed {indexed} of 1000"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.total(json!({"size": 0})).await, 0);
    assert!(!dir.path().join("index").exists());
}
