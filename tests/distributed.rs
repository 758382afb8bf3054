//! The distributed deployment, every role in its own process: `sluice setup`, then `sluice
//! ingest` → Kafka → `sluice process` → Elasticsearch → `sluice api`, over the wire-compatible
//! Kafka, Elasticsearch and MongoDB servers and real Redis that `scripts/test.sh` starts.
//!
//! One load of 10,000 events lives through a 10 s cut between the processor and Elasticsearch,
//! with the processor killed (`kill -9`) during the cut while it holds batches it could not
//! write; afterwards every event is searchable exactly once, by type.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::outage::Relay;
use support::{
    ADMIN, ADMIN_PASSWORD, Server, count_by_type, ensure_user, generate, search_all, service,
};

/// Settings shared by every role of one deployment, each name unique to this run.
fn deployment_env(store_url: &str) -> Vec<(String, String)> {
    let unique = format!("{}-{}", std::process::id(), sluice_event::now_ms());
    vec![
        (
            "SLUICE_QUEUE__URL",
            format!("kafka://{}", service("TEST_KAFKA_BROKERS")),
        ),
        ("SLUICE_QUEUE__KAFKA__TOPIC", format!("dist-logs-{unique}")),
        (
            "SLUICE_QUEUE__KAFKA__DEAD_LETTER_TOPIC",
            format!("dist-dead-{unique}"),
        ),
        (
            "SLUICE_QUEUE__KAFKA__GROUP_ID",
            format!("dist-group-{unique}"),
        ),
        ("SLUICE_QUEUE__KAFKA__SESSION_TIMEOUT_MS", "6000".into()),
        ("SLUICE_STORE__URL", store_url.to_owned()),
        (
            "SLUICE_STORE__ELASTICSEARCH__INDEX_PREFIX",
            format!("dist-{unique}"),
        ),
        (
            "SLUICE_META__URL",
            format!(
                "{}/dist_{}",
                service("TEST_MONGODB_URL"),
                unique.replace('-', "_")
            ),
        ),
        ("SLUICE_CACHE__URL", service("TEST_REDIS_URL")),
        ("SLUICE_CACHE__REDIS_PREFIX", format!("dist-{unique}:")),
        (
            "SLUICE_AUTH__JWT_SECRET",
            "a-test-secret-that-is-long-enough-for-hs256".into(),
        ),
        ("SLUICE_PROCESSOR__RETRY_MAX_MS", "1000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The same settings with the processor's Elasticsearch behind `relay`.
fn through(env: &[(String, String)], relay: &Relay) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    for (key, value) in &mut env {
        if key == "SLUICE_STORE__URL" {
            *value = format!("http://{}", relay.address);
        }
    }
    env
}

async fn ingest(ingest: &Server, events: &[Value]) {
    for chunk in events.chunks(1_000) {
        let (status, answer) = ingest.post_ndjson("/api/logs/ingest", chunk).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["accepted"], chunk.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_through_separate_roles_survive_a_kill_and_an_outage() {
    let elasticsearch = service("TEST_ELASTICSEARCH_URL");
    let upstream: SocketAddr = elasticsearch
        .trim_start_matches("http://")
        .parse()
        .expect("TEST_ELASTICSEARCH_URL is http://IP:PORT");
    let relay = Relay::start(upstream).await;
    let env = deployment_env(&elasticsearch);
    let env_ref = borrowed(&env);
    let processor_env = through(&env, &relay);
    let processor_env_ref = borrowed(&processor_env);
    let dir = tempfile::tempdir().expect("tempdir");

    let setup = support::sluice_command(dir.path(), &["setup"], "", &env_ref);
    let printed = String::from_utf8_lossy(&setup.stdout);
    assert!(
        setup.status.success(),
        "sluice setup failed: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    for expected in [
        "kafka: topics",
        "elasticsearch: index template",
        "meta store",
        "kibana",
    ] {
        assert!(printed.contains(expected), "setup printed: {printed}");
    }
    ensure_user(dir.path(), ADMIN, "admin", ADMIN_PASSWORD, &env_ref);

    let api = Server::start_role("api", dir.path(), &env_ref, None);
    // The ingest role takes the api role's tokens: one secret, one meta store.
    let ingest_role = Server::start_role("ingest", dir.path(), &env_ref, Some(&api.admin_token));
    let mut processor = Server::start_role("process", dir.path(), &processor_env_ref, None);

    let unauthenticated = ingest_role
        .anonymous
        .post(ingest_role.url("/api/logs/ingest"))
        .body("{}")
        .send()
        .await
        .expect("ingest");
    assert_eq!(unauthenticated.status().as_u16(), 401);
    let ready: Value = ingest_role.get_json("/ready").await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["meta"], "ok");
    assert!(
        ready["checks"].get("store").is_none(),
        "ingest has no store: {ready}"
    );

    let events = generate(77, 10_000, 1, 3);
    let (first, rest) = events.split_at(4_000);
    let (middle, last) = rest.split_at(2_000);

    ingest(&ingest_role, first).await;
    let started = Instant::now();
    while api.total(json!({"size": 0})).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing indexed in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Cut Elasticsearch off while the processor is busy: it holds batches it cannot write.
    relay.cut();
    let cut_at = Instant::now();
    ingest(&ingest_role, middle).await;
    // Killed once it holds a batch it read and could not write (a failed store write counted),
    // so not committed; its successor must index those once.
    let holding = Instant::now();
    while !processor
        .get_text("/metrics")
        .await
        .lines()
        .any(|line| line.starts_with("sluice_store_errors_total ") && !line.ends_with(" 0"))
    {
        assert!(
            holding.elapsed() < Duration::from_secs(60),
            "the processor never failed a write to the cut-off store"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    processor.kill9();
    let processor = Server::start_role("process", dir.path(), &processor_env_ref, None);
    ingest(&ingest_role, last).await;
    // While Elasticsearch is unreachable the processor says so and holds its position.
    let mut seen_unready = false;
    while cut_at.elapsed() < Duration::from_secs(10) {
        let response = processor
            .anonymous
            .get(processor.url("/ready"))
            .send()
            .await
            .expect("ready");
        seen_unready |= response.status().as_u16() == 503;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        api.total(json!({"size": 0})).await < 10_000,
        "the outage held events back"
    );
    relay.restore();
    assert!(
        seen_unready,
        "the processor's /ready reports the store down"
    );

    // Wide enough for the generator's late arrivals, which it dates before its span.
    let now = sluice_event::now_ms();
    let (from, to) = (now - 24 * 3_600_000, now + 60_000);
    for (log_type, count) in count_by_type(&events) {
        let mut query = search_all(&log_type, from, to);
        query["size"] = json!(0);
        api.wait_for_total(query, count, Duration::from_secs(180))
            .await;
    }
    let everything = api.total(json!({"size": 0})).await;
    assert_eq!(everything, 10_000, "every event exactly once");

    let metrics = processor.get_text("/metrics").await;
    assert!(
        metrics.contains("sluice_store_bulk_duration_seconds"),
        "bulk latency is measured"
    );

    // A document the index template refuses reaches the dead-letter topic with the reason:
    // `cart` is an object in the first event, so a later text `cart` cannot be mapped.
    let shaped = json!({"log_type": "error", "error_message": "cart lost", "service": "mapping-probe",
                        "event_id": "cart-object", "cart": {"items": 3}});
    ingest(&ingest_role, &[shaped]).await;
    api.wait_for_total(
        json!({"log_type": "error", "service": "mapping-probe", "from": from, "to": to, "size": 0}),
        1,
        Duration::from_secs(60),
    )
    .await;
    let clashing = json!({"log_type": "error", "error_message": "cart lost", "service": "mapping-probe",
                          "event_id": "cart-text", "cart": "full"});
    ingest(&ingest_role, &[clashing]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let letter = loop {
        let page: Value = api.get_json("/api/dead-letters").await;
        let found = page["dead_letters"]
            .as_array()
            .and_then(|letters| letters.iter().find(|l| l["id"] == "cart-text").cloned());
        if let Some(letter) = found {
            break letter;
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter for cart-text: {page}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(letter["stage"], "index", "{letter}");
    let reason = letter["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("Elasticsearch 400") && reason.contains("cart"),
        "{reason}"
    );
}
