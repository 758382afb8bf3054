//! Producer quotas (`[ingest.quota]` and a key's own): a greedy key is turned away with 429 and
//! `Retry-After` while another keeps its rate; what was accepted is all indexed; a request
//! larger than the burst is 413 on both ingest faces; an upload is slowed, not refused; a
//! quota is an administrator's to give and holds from the key's next request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Server, create_user, generate, login_blocking, ndjson};

/// The default quota of this server: records a second per producer.
const DEFAULT_RATE: u64 = 500;
/// The greedy key's own quota.
const GREEDY_RATE: u64 = 100;

/// Makes an API key as the holder of `token`; its id and the credential to send.
async fn create_key(server: &Server, token: &str, body: Value) -> (u16, Value) {
    let response = server
        .anonymous
        .post(server.url("/api/auth/api-keys"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

fn credential(created: &Value) -> String {
    format!("ApiKey {}", created["api_key"].as_str().expect("api_key"))
}

/// Sends `count` fresh events (seeded by `seed`) with `credential`: status, Retry-After, body.
async fn send(
    server: &Server,
    path: &str,
    credential: &str,
    seed: u64,
    count: usize,
) -> (u16, Option<String>, Value) {
    let response = server
        .anonymous
        .post(server.url(path))
        .header("authorization", credential)
        .header("content-type", "application/x-ndjson")
        .body(ndjson(&generate(seed, count, 0, 1)))
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").to_owned());
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_greedy_key_is_throttled_while_another_keeps_its_rate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rate = DEFAULT_RATE.to_string();
    let server = Server::start(
        dir.path(),
        None,
        &[("SLUICE_INGEST__QUOTA__EVENTS_PER_SEC", rate.as_str())],
    );
    let admin = server.admin_token.clone();
    let (status, greedy) = create_key(
        &server,
        &admin,
        json!({"name": "nightly backfill", "quota": {"events_per_sec": GREEDY_RATE}}),
    )
    .await;
    assert_eq!(status, 201, "{greedy}");
    assert_eq!(greedy["quota"]["events_per_sec"], GREEDY_RATE);
    let (status, steady) = create_key(&server, &admin, json!({"name": "checkout"})).await;
    assert_eq!(status, 201, "{steady}");
    let greedy_id = greedy["id"].as_str().expect("id").to_owned();

    // For three seconds the greedy key sends 50-event requests as fast as it is answered,
    // while the steady key sends 50 events every 200 ms: half its quota.
    let accepted = Arc::new(AtomicU64::new(0));
    let seeds = Arc::new(AtomicU64::new(1));
    let run_for = Duration::from_secs(3);
    let started = Instant::now();
    let greedy_run = async {
        let (mut statuses, mut throttled) = (Vec::new(), None);
        while started.elapsed() < run_for {
            let seed = seeds.fetch_add(1, Ordering::Relaxed);
            let (status, retry_after, body) =
                send(&server, "/api/logs/ingest", &credential(&greedy), seed, 50).await;
            if status == 202 {
                accepted.fetch_add(50, Ordering::Relaxed);
            } else if status == 429 {
                throttled.get_or_insert((retry_after, body));
            }
            statuses.push(status);
        }
        (statuses, throttled)
    };
    let steady_run = async {
        let mut statuses = Vec::new();
        while started.elapsed() < run_for {
            let seed = seeds.fetch_add(1, Ordering::Relaxed);
            let (status, _, body) =
                send(&server, "/api/logs/ingest", &credential(&steady), seed, 50).await;
            assert_eq!(status, 202, "the steady key keeps its rate: {body}");
            accepted.fetch_add(50, Ordering::Relaxed);
            statuses.push(status);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        statuses
    };
    let ((greedy_statuses, throttled), steady_statuses) = tokio::join!(greedy_run, steady_run);
    let elapsed = started.elapsed().as_secs_f64();
    assert!(steady_statuses.len() >= 10, "{steady_statuses:?}");
    assert!(
        greedy_statuses.iter().all(|s| *s == 202 || *s == 429),
        "{greedy_statuses:?}"
    );
    let greedy_accepted = greedy_statuses.iter().filter(|s| **s == 202).count() as f64 * 50.0;
    // A burst of one second's quota, then the rate.
    let most = GREEDY_RATE as f64 * (elapsed + 1.0);
    assert!(
        greedy_accepted <= most,
        "the greedy key got {greedy_accepted} events through in {elapsed:.1} s"
    );
    let (retry_after, body) = throttled.expect("the greedy key was throttled");
    let retry_after: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let error = &body["error"];
    assert_eq!(error["code"], "quota_exceeded", "{body}");
    assert_eq!(error["limit"], "events_per_sec", "{body}");
    assert_eq!(error["limit_value"], GREEDY_RATE, "{body}");
    assert_eq!(error["producer"], format!("key:{greedy_id}"), "{body}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("nothing from this request was accepted")),
        "{body}"
    );

    let metrics = server.get_text("/metrics").await;
    let line = format!(
        "sluice_ingest_throttled_total{{key=\"key:{greedy_id}\",limit=\"events_per_sec\"}}"
    );
    assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    let steady_id = steady["id"].as_str().expect("id");
    assert!(!metrics.contains(&format!("key:{steady_id}")), "{metrics}");

    // Everything acknowledged is indexed, and nothing of a refused request.
    server
        .wait_for_total(
            json!({}),
            accepted.load(Ordering::Relaxed),
            Duration::from_secs(60),
        )
        .await;
}

#[tokio::test]
async fn a_request_over_the_burst_is_413_an_upload_is_slowed_and_only_an_admin_sets_quotas() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_user(dir.path(), "ana", "analyst", "Producer-Passw0rd-1");
    let rate = DEFAULT_RATE.to_string();
    let server = Server::start(
        dir.path(),
        None,
        &[("SLUICE_INGEST__QUOTA__EVENTS_PER_SEC", rate.as_str())],
    );
    let analyst = login_blocking(&server.base, "ana", "Producer-Passw0rd-1");
    let (status, refused) = create_key(
        &server,
        &analyst,
        json!({"name": "mine", "quota": {"events_per_sec": 0}}),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["field"], "quota");
    let (status, key) = create_key(&server, &analyst, json!({"name": "mine"})).await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(
        key["quota"],
        json!({"events_per_sec": null, "bytes_per_sec": null})
    );
    let id = key["id"].as_str().expect("id").to_owned();
    let set_quota = |token: String, quota: Value| {
        let server = &server;
        let id = id.clone();
        async move {
            let response = server
                .anonymous
                .put(server.url(&format!("/api/auth/api-keys/{id}/quota")))
                .bearer_auth(token)
                .json(&quota)
                .send()
                .await
                .expect("sent");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("json"))
        }
    };
    let (status, _) = set_quota(analyst.clone(), json!({"events_per_sec": 0})).await;
    assert_eq!(status, 403, "a key's owner may not lift its quota");
    let (status, changed) = set_quota(
        server.admin_token.clone(),
        json!({"events_per_sec": GREEDY_RATE}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["quota"]["events_per_sec"], GREEDY_RATE);

    // More than the key may send at once, on both ingest faces.
    let key = credential(&key);
    let (status, retry_after, body) = send(&server, "/api/logs/ingest", &key, 1, 150).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(retry_after, None, "waiting would not help");
    assert_eq!(body["error"]["code"], "request_over_quota", "{body}");
    assert_eq!(body["error"]["burst"], GREEDY_RATE, "{body}");
    let bulk: String = generate(2, 150, 0, 1)
        .iter()
        .map(|event| format!("{}\n{event}\n", json!({"index": {}})))
        .collect();
    let response = server
        .anonymous
        .post(server.url("/logs/_bulk"))
        .header("authorization", &key)
        .header("content-type", "application/x-ndjson")
        .body(bulk)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["error"]["type"], "illegal_argument_exception",
        "{body}"
    );

    // A 300-line file at 100 a second (a burst of 100 now): slowed to about two seconds, all
    // of it taken.
    let started = Instant::now();
    let file = ndjson(&generate(3, 300, 0, 1));
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::text(file).file_name("events.ndjson"),
    );
    let response = server
        .anonymous
        .post(server.url("/api/logs/upload"))
        .header("authorization", &key)
        .multipart(form)
        .send()
        .await
        .expect("sent");
    let waited = started.elapsed();
    assert_eq!(response.status().as_u16(), 202);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["accepted"], 300, "{body}");
    assert!(waited >= Duration::from_millis(1_800), "{waited:?}");

    // Lifted by an administrator: the next request passes, though the key was cached.
    let (status, _) = set_quota(server.admin_token.clone(), json!({"events_per_sec": 0})).await;
    assert_eq!(status, 200);
    let (status, _, body) = send(&server, "/api/logs/ingest", &key, 4, 1_000).await;
    assert_eq!(status, 202, "{body}");

    // A user sending with a token has the default quota.
    let user = format!("Bearer {analyst}");
    let (status, _, _) = send(&server, "/api/logs/ingest", &user, 5, 400).await;
    assert_eq!(status, 202);
    let (status, retry_after, body) = send(&server, "/api/logs/ingest", &user, 6, 400).await;
    assert_eq!(status, 429, "{body}");
    assert!(retry_after.is_some());
    assert_eq!(body["error"]["limit_value"], DEFAULT_RATE, "{body}");
}
