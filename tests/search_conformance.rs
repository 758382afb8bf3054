//! The same search on both event stores gives the same answer. Two `sluice serve` processes take
//! the same generated events, one indexing into tantivy, the other into the Elasticsearch-API
//! server `scripts/test.sh` starts; every request below must come back the same from both.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, generate, sample_geoip};

/// A hit without what legitimately differs between the two deployments: when each received it.
fn comparable(hit: &Value) -> Value {
    let mut hit = hit.clone();
    if let Some(ingest) = hit.get_mut("ingest").and_then(Value::as_object_mut) {
        ingest.remove("received_at");
    }
    hit
}

/// Hits come newest first; events with the same time may come in either order, so the
/// comparison is of the time sequence plus the hits as a set.
fn assert_same_answer(request: &Value, tantivy: &Value, elasticsearch: &Value) {
    assert_eq!(
        tantivy["total"], elasticsearch["total"],
        "total for {request}"
    );
    let hits = |answer: &Value| -> Vec<Value> {
        answer["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .map(comparable)
            .collect()
    };
    let (left, right) = (hits(tantivy), hits(elasticsearch));
    assert_eq!(left.len(), right.len(), "page size for {request}");
    let times =
        |hits: &[Value]| -> Vec<Value> { hits.iter().map(|h| h["@timestamp"].clone()).collect() };
    assert_eq!(times(&left), times(&right), "order for {request}");
    let sorted = |mut hits: Vec<Value>| {
        hits.sort_by_key(|h| h["_id"].as_str().unwrap_or_default().to_owned());
        hits
    };
    let (left, right) = (sorted(left), sorted(right));
    for (l, r) in left.iter().zip(&right) {
        assert_eq!(l, r, "hit for {request}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_answers_the_same_on_tantivy_and_elasticsearch() {
    let elasticsearch = std::env::var("TEST_ELASTICSEARCH_URL")
        .expect("TEST_ELASTICSEARCH_URL: run the suite through scripts/test.sh");
    let prefix = format!(
        "conformance-{}-{}",
        std::process::id(),
        sluice_common::now_ms()
    );
    let dirs = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    let geoip = sample_geoip(dirs[0].path());
    let on_tantivy = Server::start(&dirs[0].path().join("data"), Some(&geoip), &[]);
    let on_elasticsearch = Server::start(
        &dirs[1].path().join("data"),
        Some(&geoip),
        &[
            ("SLUICE_STORE__URL", elasticsearch.as_str()),
            ("SLUICE_STORE__ELASTICSEARCH__INDEX_PREFIX", prefix.as_str()),
        ],
    );

    let events = generate(2024, 3_000, 1, 6);
    for server in [&on_tantivy, &on_elasticsearch] {
        for chunk in events.chunks(1_000) {
            let (status, answer) = server.post_ndjson("/api/logs/ingest", chunk).await;
            assert_eq!(status, 202, "{answer}");
        }
    }
    for server in [&on_tantivy, &on_elasticsearch] {
        server
            .wait_for_total(json!({"size": 0}), 3_000, Duration::from_secs(120))
            .await;
    }

    let now = sluice_common::now_ms();
    let hour = 3_600_000;
    let requests = [
        json!({}),
        json!({"size": 0}),
        json!({"size": 7}),
        json!({"log_type": "transaction", "size": 10000}),
        json!({"log_type": "error", "size": 10000}),
        json!({"log_type": "fraud", "size": 10000}),
        json!({"level": "CRITICAL", "size": 10000}),
        json!({"service": "checkout", "size": 10000}),
        json!({"query": "timed out", "size": 10000}),
        json!({"query": "payment gateway", "size": 10000}),
        json!({"query": "\"payment gateway returned\"", "size": 10000}),
        json!({"query": "gateway 502", "log_type": "error", "size": 10000}),
        json!({"query": "no-such-word-anywhere", "size": 10}),
        json!({"from": now - 3 * hour, "to": now - 2 * hour, "size": 10000}),
        json!({"log_type": "performance", "from": now - 4 * hour, "to": now - hour, "size": 50}),
    ];
    for request in &requests {
        let tantivy = on_tantivy.search(request.clone()).await;
        let elastic = on_elasticsearch.search(request.clone()).await;
        assert_same_answer(request, &tantivy, &elastic);
        let expect_some = request["query"] != "no-such-word-anywhere";
        assert_eq!(
            tantivy["total"].as_u64() > Some(0),
            expect_some,
            "{request} matches"
        );
    }
    assert_eq!(
        on_tantivy
            .search(json!({"log_type": "error", "size": 0}))
            .await["total"],
        json!(events.iter().filter(|e| e["log_type"] == "error").count()),
        "and both are right"
    );
    let recent = |server: &Server| {
        let server_url = server.url("/api/logs/recent?limit=25");
        let http = server.http.clone();
        async move {
            http.get(server_url)
                .send()
                .await
                .expect("recent")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    // Counts by type and by service: the same on both stores, and what the events say.
    let mut expected_types = support::count_by_type(&events);
    for server in [&on_tantivy, &on_elasticsearch] {
        let types = server.get_json("/api/logs/types").await;
        assert_eq!(types["total"], 3_000, "{types}");
        let listed = types["types"].as_array().expect("types");
        assert_eq!(listed.len(), 5, "every type, even without events: {types}");
        for entry in listed {
            let log_type = entry["log_type"].as_str().expect("log_type");
            let expected = expected_types.get(log_type).copied().unwrap_or(0);
            assert_eq!(entry["count"], expected, "{log_type}: {types}");
        }
        let counts: Vec<u64> = listed.iter().filter_map(|t| t["count"].as_u64()).collect();
        assert!(
            counts.windows(2).all(|w| w[0] >= w[1]),
            "most first: {types}"
        );
    }
    let stats = [
        on_tantivy.get_json("/api/logs/stats").await,
        on_elasticsearch.get_json("/api/logs/stats").await,
    ];
    assert_eq!(stats[0], stats[1], "stats");
    assert_eq!(stats[0]["total"], 3_000);
    let by_type: std::collections::BTreeMap<String, u64> = stats[0]["by_type"]
        .as_array()
        .expect("by_type")
        .iter()
        .map(|c| {
            (
                c["value"].as_str().expect("value").to_owned(),
                c["count"].as_u64().expect("count"),
            )
        })
        .collect();
    assert_eq!(by_type, expected_types, "stats by type");
    let levels: u64 = stats[0]["by_level"]
        .as_array()
        .expect("by_level")
        .iter()
        .filter_map(|c| c["count"].as_u64())
        .sum();
    let with_level = events.iter().filter(|e| e["level"].is_string()).count() as u64;
    assert_eq!(
        levels, with_level,
        "every levelled event counted once: {}",
        stats[0]
    );
    expected_types.clear();
    let mut expected_services = std::collections::BTreeMap::new();
    for event in &events {
        if let Some(service) = event["service"].as_str() {
            *expected_services.entry(service.to_owned()).or_insert(0u64) += 1;
        }
    }
    let services_of = |answer: &Value| -> std::collections::BTreeMap<String, u64> {
        answer["services"]
            .as_array()
            .expect("services")
            .iter()
            .map(|s| {
                (
                    s["service"].as_str().expect("service").to_owned(),
                    s["count"].as_u64().expect("count"),
                )
            })
            .collect()
    };
    let on_both = [
        on_tantivy.get_json("/api/logs/search/services").await,
        on_elasticsearch.get_json("/api/logs/search/services").await,
    ];
    assert_eq!(on_both[0], on_both[1], "services, in the same order");
    assert_eq!(services_of(&on_both[0]), expected_services);
    let window = format!(
        "/api/logs/search/services?from={}&to={}&limit=2",
        now - 3 * hour,
        now - 2 * hour
    );
    let windowed = on_tantivy.get_json(&window).await;
    assert_eq!(
        windowed,
        on_elasticsearch.get_json(&window).await,
        "{window}"
    );
    assert_eq!(
        windowed["services"].as_array().map(Vec::len),
        Some(2),
        "{windowed}"
    );

    let request = json!("GET /api/logs/recent?limit=25");
    assert_same_answer(
        &request,
        &recent(&on_tantivy).await,
        &recent(&on_elasticsearch).await,
    );
}
