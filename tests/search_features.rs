//! What analysts keep and take away from searches, over HTTP against `sluice serve`: saved
//! searches and recent searches, each per user, and exports streamed with bounded memory.

use crate::support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, client_with_token, create_user, generate, login_blocking};

const PASSWORD: &str = "Analyst-Passw0rd-1";

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_and_recent_searches_belong_to_their_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["alice", "bob"] {
        create_user(dir.path(), name, "analyst", PASSWORD);
    }
    let server = Server::start(dir.path(), None, &[]);
    let (status, _) = server
        .post_ndjson("/api/logs/ingest", &generate(5, 300, 1, 4))
        .await;
    assert_eq!(status, 202);
    server
        .wait_for_total(json!({"size": 0}), 300, Duration::from_secs(60))
        .await;
    let alice = client_with_token(&login_blocking(&server.base, "alice", PASSWORD));
    let bob = client_with_token(&login_blocking(&server.base, "bob", PASSWORD));
    let url = |path: &str| server.url(path);
    use reqwest::Method;

    let errors = json!({"log_type": "error", "query": "gateway OR timeout"});
    let (status, saved) = send(
        &alice,
        Method::POST,
        url("/api/logs/search/save"),
        Some(json!({"name": "Gateway errors", "search": errors})),
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["search"], errors);
    let id = saved["id"].as_str().expect("id").to_owned();
    let (status, again) = send(
        &alice,
        Method::POST,
        url("/api/logs/search/save"),
        Some(json!({"name": "Gateway errors", "search": {}})),
    )
    .await;
    assert_eq!(
        (status, &again["error"]["code"]),
        (409, &json!("name_taken"))
    );
    let (status, _) = send(
        &bob,
        Method::POST,
        url("/api/logs/search/save"),
        Some(json!({"name": "Gateway errors", "search": {"level": "error"}})),
    )
    .await;
    assert_eq!(status, 201, "names are per user");
    for (body, field) in [
        (
            json!({"name": "bad", "search": {"query": "\"open"}}),
            "search",
        ),
        (
            json!({"name": "bad", "search": {"colour": "red"}}),
            "search",
        ),
        (json!({"name": " ", "search": {}}), "name"),
        (json!({"name": "x".repeat(101), "search": {}}), "name"),
    ] {
        let (status, answer) = send(
            &alice,
            Method::POST,
            url("/api/logs/search/save"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }

    let (_, mine) = send(&alice, Method::GET, url("/api/logs/search/saved"), None).await;
    assert_eq!(mine["total"], 1, "{mine}");
    assert_eq!(mine["saved_searches"][0]["name"], "Gateway errors");
    let (_, his) = send(&bob, Method::GET, url("/api/logs/search/saved"), None).await;
    assert_eq!(
        his["saved_searches"][0]["search"],
        json!({"level": "error"})
    );
    let (status, _) = send(
        &bob,
        Method::DELETE,
        url(&format!("/api/logs/search/saved/{id}")),
        None,
    )
    .await;
    assert_eq!(status, 404, "bob cannot delete alice's search");
    let (status, _) = send(
        &alice,
        Method::DELETE,
        url(&format!("/api/logs/search/saved/{id}")),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, mine) = send(&alice, Method::GET, url("/api/logs/search/saved"), None).await;
    assert_eq!(mine["total"], 0);

    // Recent searches: newest first, a repeat moves up, turning a page is not a new search,
    // twenty at most, and each user sees only their own.
    let search = |body: Value| {
        let alice = alice.clone();
        let url = url("/api/logs/search");
        async move { send(&alice, Method::POST, url, Some(body)).await }
    };
    let (_, first_page) = search(json!({"log_type": "transaction", "size": 5})).await;
    search(json!({"query": "checkout"})).await;
    search(json!({"log_type": "transaction", "size": 5})).await;
    search(json!({
        "log_type": "transaction", "size": 5,
        "search_after": first_page["next_search_after"],
    }))
    .await;
    let (status, recent) = send(&alice, Method::GET, url("/api/logs/search/recent"), None).await;
    assert_eq!(status, 200, "{recent}");
    let searches: Vec<&Value> = recent["searches"]
        .as_array()
        .expect("searches")
        .iter()
        .map(|s| &s["search"])
        .collect();
    assert_eq!(
        searches,
        [
            &json!({"log_type": "transaction", "size": 5}),
            &json!({"query": "checkout"}),
        ]
    );
    assert!(recent["searches"][0]["total"].as_u64() > Some(0));
    for n in 0..25 {
        search(json!({"query": format!("word{n}")})).await;
    }
    let (_, recent) = send(&alice, Method::GET, url("/api/logs/search/recent"), None).await;
    let searches = recent["searches"].as_array().expect("searches");
    assert_eq!(searches.len(), 20);
    assert_eq!(searches[0]["search"], json!({"query": "word24"}));
    let (_, his) = send(&bob, Method::GET, url("/api/logs/search/recent"), None).await;
    assert_eq!(his["searches"], json!([]));
}

/// Anonymous memory of a process (heap, not the index files it maps), in bytes.
fn anonymous_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_every_hit_in_constant_memory() {
    const EVENTS: usize = 200_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None, &[]);
    let events = generate(11, EVENTS, 1, 12);
    // As a producer should: when the queue is full (503), wait and send the batch again.
    for chunk in events.chunks(5_000) {
        loop {
            let (status, answer) = server.post_ndjson("/api/logs/ingest", chunk).await;
            match status {
                202 => break,
                503 => tokio::time::sleep(Duration::from_millis(500)).await,
                _ => panic!("{status}: {answer}"),
            }
        }
    }
    server
        .wait_for_total(json!({"size": 0}), EVENTS as u64, Duration::from_secs(600))
        .await;
    let pid = server.pid().expect("running");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(900))
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", server.admin_token)
                    .parse()
                    .expect("header"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .expect("client");

    // Memory is sampled while the export runs; the client counts rows without keeping them.
    let baseline = anonymous_memory(pid);
    let peak = Arc::new(AtomicU64::new(baseline));
    let running = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, running) = (peak.clone(), running.clone());
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                peak.fetch_max(anonymous_memory(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut response = http
        .post(server.url("/api/logs/search/export?format=ndjson"))
        .json(&json!({}))
        .send()
        .await
        .expect("export sent");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .expect("header")
            .contains(".ndjson")
    );
    let (mut rows, mut bytes, mut partial) = (0usize, 0usize, Vec::new());
    let mut ids = HashSet::with_capacity(EVENTS);
    while let Some(chunk) = response.chunk().await.expect("the export completes") {
        bytes += chunk.len();
        partial.extend_from_slice(&chunk);
        let complete = partial
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        for line in partial[..complete]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let document: Value = serde_json::from_slice(line).expect("a JSON line");
            ids.insert(document["_id"].as_str().expect("_id").to_owned());
            rows += 1;
        }
        partial.drain(..complete);
    }
    running.store(false, Ordering::Relaxed);
    sampler.await.expect("sampler");
    assert_eq!(rows, EVENTS, "every event once");
    assert_eq!(ids.len(), EVENTS, "no repeats");
    let grown = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    assert!(
        grown < 64 * 1024 * 1024 && (grown as usize) < bytes / 4,
        "the export of {bytes} bytes grew the server's heap by {grown} bytes"
    );

    // CSV with chosen columns and a filter; a limit.
    let transactions = events
        .iter()
        .filter(|e| e["log_type"] == "transaction")
        .count();
    let csv = http
        .post(server.url(
            "/api/logs/search/export?format=csv&fields=_id,amount,payment_method,geo.city_name",
        ))
        .json(&json!({"log_type": "transaction"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(csv.status().as_u16(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    let text = csv.text().await.expect("csv");
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    assert_eq!(
        lines.next(),
        Some("_id,amount,payment_method,geo.city_name")
    );
    assert_eq!(lines.count(), transactions);
    let limited = http
        .post(server.url("/api/logs/search/export?limit=10"))
        .body("")
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert_eq!(limited.lines().count(), 10);

    for (path, body, names) in [
        ("/api/logs/search/export?format=xml", json!({}), "format"),
        ("/api/logs/search/export", json!({"size": 5}), "limit"),
        ("/api/logs/search/export?limit=0", json!({}), "limit"),
        ("/api/logs/search/export?fields=a", json!({}), "csv"),
    ] {
        let (status, answer) =
            send(&http, reqwest::Method::POST, server.url(path), Some(body)).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(names),
            "{path}: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_answers_are_reused_for_the_configured_seconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Long enough to outlast any wait below: that the entry goes when its TTL is up is the
    // cache's to show, with time stopped (`cache-memory`'s `entries_last_exactly_their_ttl`).
    let server = Server::start(
        dir.path(),
        None,
        &[("SLUICE_CACHE__ANSWER_TTL_SECS", "600")],
    );
    let events = generate(3, 200, 1, 2);
    let (status, _) = server.post_ndjson("/api/logs/ingest", &events[..100]).await;
    assert_eq!(status, 202);
    server
        .wait_for_total(json!({"size": 0}), 100, Duration::from_secs(60))
        .await;
    let from = sluice_event::now_ms() - 4 * 3_600_000;
    let path = format!(
        "/api/dashboard/stats?to={}&from={from}",
        from + 5 * 3_600_000
    );
    let get = || async {
        let response = server
            .http
            .get(server.url(&path))
            .send()
            .await
            .expect("sent");
        let outcome = response.headers()["x-sluice-cache"]
            .to_str()
            .expect("header")
            .to_owned();
        let answer: Value = response.json().await.expect("json");
        (outcome, answer["stats"]["events"].as_u64().expect("events"))
    };
    assert_eq!(get().await, ("miss".to_owned(), 100));
    let (status, _) = server.post_ndjson("/api/logs/ingest", &events[100..]).await;
    assert_eq!(status, 202);
    server
        .wait_for_total(json!({"size": 0}), 200, Duration::from_secs(60))
        .await;
    let (outcome, events_seen) = get().await;
    assert_eq!(outcome, "hit");
    assert_eq!(events_seen, 100, "the answer is reused, not recomputed");
    // The same parameters in another order are the same request.
    let reordered = format!(
        "/api/dashboard/stats?from={from}&to={}",
        from + 5 * 3_600_000
    );
    let response = server
        .http
        .get(server.url(&reordered))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-sluice-cache"], "hit");
    // Another question is answered afresh, from what is indexed now.
    let wider = format!(
        "/api/dashboard/stats?from={}&to={}",
        from - 3_600_000,
        from + 5 * 3_600_000
    );
    let response = server
        .http
        .get(server.url(&wider))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-sluice-cache"], "miss");
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["stats"]["events"], 200, "{answer}");
    let metrics = server.get_text("/metrics").await;
    assert!(
        metrics.contains("sluice_api_answer_cache_total{outcome=\"hit\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fraud_alerts_are_reviewed_and_the_review_shows_with_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_user(dir.path(), "alice", "analyst", PASSWORD);
    let server = Server::start(dir.path(), None, &[]);
    let (status, _) = server
        .post_ndjson("/api/logs/ingest", &generate(21, 2_000, 1, 4))
        .await;
    assert_eq!(status, 202);
    server
        .wait_for_total(json!({"size": 0}), 2_000, Duration::from_secs(60))
        .await;
    let alice = client_with_token(&login_blocking(&server.base, "alice", PASSWORD));
    let url = |path: &str| server.url(path);
    use reqwest::Method;

    let (status, page) = send(
        &alice,
        Method::GET,
        url("/api/fraud/suspicious-activities?size=3"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let hits = page["hits"].as_array().expect("hits").clone();
    assert_eq!(hits.len(), 3, "{page}");
    for hit in &hits {
        assert_eq!(hit["_review"]["status"], "new");
        assert_eq!(hit["fraud"]["detected"], true);
    }
    let id = |n: usize| hits[n]["_id"].as_str().expect("_id").to_owned();
    let review = |id: String, body: Value| {
        let (alice, url) = (
            alice.clone(),
            url(&format!("/api/fraud/alerts/{id}/review")),
        );
        async move { send(&alice, Method::PUT, url, Some(body)).await }
    };
    let (status, answer) = review(
        id(0),
        json!({"status": "confirmed", "note": "card reported stolen"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["review"]["reviewed_by"]["username"], "alice");
    let (status, _) = review(id(1), json!({"status": "false_positive"})).await;
    assert_eq!(status, 200);
    let (status, _) = review(id(1), json!({"status": "confirmed"})).await;
    assert_eq!(status, 200, "a review can be changed");
    let (status, _) = review(id(1), json!({"status": "false_positive"})).await;
    assert_eq!(status, 200);

    let (_, page) = send(
        &alice,
        Method::GET,
        url("/api/fraud/suspicious-activities?size=3"),
        None,
    )
    .await;
    let statuses: Vec<&Value> = page["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| &h["_review"]["status"])
        .collect();
    assert_eq!(
        statuses,
        [&json!("confirmed"), &json!("false_positive"), &json!("new")]
    );
    assert_eq!(page["hits"][0]["_review"]["note"], "card reported stolen");
    let (_, stats) = send(&alice, Method::GET, url("/api/fraud/stats?range=30d"), None).await;
    assert_eq!(
        stats["reviews"],
        json!({"confirmed": 1, "false_positive": 1}),
        "{stats}"
    );

    let error_event =
        server.search(json!({"log_type": "error", "size": 1})).await["hits"][0]["_id"]
            .as_str()
            .expect("an error event")
            .to_owned();
    for (target, body, expected, code) in [
        (id(2), json!({"status": "maybe"}), 400, "invalid_field"),
        (
            id(2),
            json!({"status": "confirmed", "note": "x".repeat(2_001)}),
            400,
            "invalid_field",
        ),
        (
            id(2),
            json!({"status": "confirmed", "extra": 1}),
            400,
            "invalid_request",
        ),
        (
            "no-such-event".to_owned(),
            json!({"status": "confirmed"}),
            404,
            "not_found",
        ),
        (
            error_event,
            json!({"status": "confirmed"}),
            400,
            "not_scored",
        ),
    ] {
        let (status, answer) = review(target.clone(), body.clone()).await;
        assert_eq!(status, expected, "{target} {body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{target} {body}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fraud_detect_scores_with_the_processors_state_and_remembers_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None, &[]);
    let start = sluice_event::now_ms() - 600_000;
    let at = |offset: i64| sluice_event::format_rfc3339_ms(start + offset);
    let purchases: Vec<Value> = (0..4)
        .map(|i| {
            json!({"log_type": "transaction", "transaction_id": format!("tx-{i}"),
                   "user_id": "erin", "amount": 25, "status": "completed",
                   "timestamp": at(i * 10_000)})
        })
        .collect();
    let (status, _) = server.post_ndjson("/api/logs/ingest", &purchases).await;
    assert_eq!(status, 202);
    server
        .wait_for_total(
            json!({"user_id": "erin", "size": 0}),
            4,
            Duration::from_secs(60),
        )
        .await;
    let detect = |body: Value| {
        let http = server.http.clone();
        let url = server.url("/api/fraud/detect");
        async move { send(&http, reqwest::Method::POST, url, Some(body)).await }
    };
    let fifth = json!({"user_id": "erin", "amount": 25, "timestamp": at(45_000)});
    let (status, scored) = detect(fifth.clone()).await;
    assert_eq!(status, 200, "{scored}");
    assert_eq!(
        scored["indicators"],
        json!(["rapid_transactions"]),
        "{scored}"
    );
    assert_eq!(scored["history"]["source"], "shared");
    assert_eq!(detect(fifth).await.1, scored, "asking again: the same");
    let (_, big) = detect(json!({"user_id": "frank", "amount": 5000})).await;
    assert_eq!(big["indicators"], json!(["high_amount"]), "{big}");
    assert_eq!(
        big["detected"], false,
        "one indicator is below the threshold: {big}"
    );

    for (body, code) in [
        (json!({"amount": "lots"}), "wrong_type"),
        (json!({"user_id": "x"}), "missing_field"),
        (
            json!({"log_type": "error", "error_message": "x"}),
            "not_a_transaction",
        ),
        (json!({"amount": 5, "ip": "999.1.1.1"}), "invalid_ip"),
        (json!([1, 2]), "malformed_json"),
    ] {
        let (status, answer) = detect(body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
}
