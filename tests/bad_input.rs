//! Bad input over HTTP: every refused record is named with its field and reason, and nothing
//! valid beside it is lost. Oversized, malformed, wrongly typed and hostile bodies.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Server;

fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    Server::start(&dir.join("data"), None, env)
}

fn valid(n: usize) -> Value {
    json!({
        "log_type": "error", "event_id": format!("ok-{n}"), "service": "cart",
        "error_message": format!("stock reservation failed #{n}"), "level": "error",
    })
}

/// (record, field, code) of every error in an answer.
fn errors(answer: &Value) -> Vec<(u64, String, String)> {
    answer["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["record"].as_u64().expect("record"),
                e["field"].as_str().expect("field").to_owned(),
                e["code"].as_str().expect("code").to_owned(),
            )
        })
        .collect()
}

fn future() -> String {
    sluice_event::format_rfc3339_ms(sluice_event::now_ms() + 3 * 86_400_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_ndjson_batch_counts_and_names_every_bad_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let big = "x".repeat(40 * 1024);
    let deep = format!(
        "{{\"log_type\":\"error\",\"error_message\":\"d\",\"x\":{}1{}}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    let lines = [
        valid(1).to_string(),                  // 1
        "{\"log_type\":\"error\",".to_owned(), // 2 malformed
        json!({"log_type": "transaction", "transaction_id": "t", "user_id": "u"}).to_string(), // 3 no amount
        json!({"log_type": "transaction", "transaction_id": "t", "user_id": "u", "amount": -4})
            .to_string(), // 4
        valid(2).to_string(),                                                                  // 5
        json!({"log_type": "audit", "message": "x"}).to_string(),                              // 6
        json!({"log_type": "error", "error_message": "x", "ip": "300.1.2.3"}).to_string(),     // 7
        String::new(), // 8 blank: skipped
        json!({"log_type": "error", "error_message": "x", "timestamp": future()}).to_string(), // 9
        json!({"log_type": "performance", "endpoint": "/x", "response_time": "fast"}).to_string(), // 10
        json!({"log_type": "error", "error_message": big}).to_string(), // 11
        "[1,2,3]".to_owned(),                                           // 12
        deep,                                                           // 13
        valid(3).to_string(),                                           // 14
    ];
    let body = lines.join("\n");
    let (status, answer) = server
        .post("/api/logs/ingest", "application/x-ndjson", body)
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 3, "{answer}");
    assert_eq!(answer["rejected"], 10, "{answer}");
    let expected: Vec<(u64, &str, &str)> = vec![
        (2, "", "malformed_json"),
        (3, "amount", "missing_field"),
        (4, "amount", "invalid_value"),
        (6, "log_type", "unknown_log_type"),
        (7, "ip", "invalid_ip"),
        (9, "timestamp", "future_timestamp"),
        (10, "response_time", "wrong_type"),
        (11, "error_message", "oversized"),
        (12, "", "not_an_object"),
        (13, "", "too_deep"),
    ];
    let got = errors(&answer);
    assert_eq!(
        got.iter()
            .map(|(r, f, c)| (*r, f.as_str(), c.as_str()))
            .collect::<Vec<_>>(),
        expected,
        "{answer}"
    );
    for error in answer["errors"].as_array().expect("errors") {
        assert!(!error["reason"].as_str().expect("reason").is_empty());
    }
    server
        .wait_for_total(
            json!({"service": "cart", "size": 0}),
            3,
            Duration::from_secs(20),
        )
        .await;
}

/// A producer that dies in the middle of its body is acknowledged nothing: the records split
/// from the part that arrived are never queued, in either format, and the server goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_off_midway_acknowledges_none_of_its_records() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let records: Vec<Value> = (0..2_000)
        .map(|n| {
            json!({"log_type": "error", "event_id": format!("cut-{n}"), "service": "cut-off",
                   "error_message": "the producer died"})
        })
        .collect();
    let bodies = [
        ("application/x-ndjson", support::ndjson(&records)),
        ("application/json", Value::from(records).to_string()),
    ];
    let address = server.base.trim_start_matches("http://").to_owned();
    for (content_type, body) in bodies {
        let mut socket = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connects");
        let head = format!(
            "POST /api/logs/ingest HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {}\r\n\
             content-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            server.admin_token,
            body.len()
        );
        socket.write_all(head.as_bytes()).await.expect("head sent");
        // Half the body, ending inside a record, then the producer's side closes.
        socket
            .write_all(&body.as_bytes()[..body.len() / 2])
            .await
            .expect("half the body sent");
        socket.shutdown().await.expect("write side closed");
        let mut answer = String::new();
        let _ = socket.read_to_string(&mut answer).await;
        assert!(
            !answer.starts_with("HTTP/1.1 2"),
            "{content_type}: a body cut off midway was acknowledged: {answer}"
        );
    }
    let after = json!({"log_type": "error", "event_id": "after-the-cut", "service": "after-cut",
                       "error_message": "sent whole"});
    let (status, answer) = server.post_ndjson("/api/logs/ingest", &[after]).await;
    assert_eq!(status, 202, "{answer}");
    // The queue is read in order: once the whole record is searchable, anything queued before
    // it would be too.
    server
        .wait_for_total(
            json!({"service": "after-cut", "size": 0}),
            1,
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(
        server.total(json!({"service": "cut-off", "size": 0})).await,
        0
    );
}

/// Each connection's read buffer is bounded (64 KiB), and a request head must fit in it: a
/// larger head is refused with RFC 6585's 431, not buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_head_is_refused_with_431() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connects");
    let head = format!(
        "GET /health HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\nx-padding: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    // The server may answer and close before it has read the whole head.
    let _ = socket.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "no answer to a 200 KiB request head within 10 s"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "a 200 KiB request head was not refused with 431: {answer}"
    );
    let health = reqwest::get(format!("{}/health", server.base))
        .await
        .expect("health answers");
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_request_errors_have_status_and_json_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(
        dir.path(),
        &[
            ("SLUICE_INGEST__MAX_BODY_BYTES", "2048"),
            ("SLUICE_INGEST__MAX_UPLOAD_BYTES", "4096"),
        ],
    );
    // Nothing valid: 400 with every error.
    let (status, answer) = server
        .post(
            "/api/logs/ingest",
            "application/json",
            json!([{"log_type": "nope"}, {"a": 1}]).to_string(),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "no_valid_records");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(0), Some(2))
    );
    // Too large: 413.
    let (status, answer) = server
        .post(
            "/api/logs/ingest",
            "application/x-ndjson",
            valid(1).to_string().repeat(40),
        )
        .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "payload_too_large");
    // Unsupported type: 415, naming what works.
    let (status, answer) = server
        .post("/api/logs/ingest", "text/csv", "log_type\nerror\n")
        .await;
    assert_eq!(status, 415, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .contains("application/x-ndjson")
    );
    // Empty and broken bodies: 400.
    let (status, answer) = server
        .post("/api/logs/ingest", "application/json", "   ")
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = server
        .post("/api/logs/ingest", "application/json", "[{\"a\":1},")
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "malformed_json");
    // An upload far over the limit: 413 on its declared length, and the client gets the answer
    // although it is still sending when the server refuses.
    for _ in 0..3 {
        let (status, answer) = server
            .upload("big.csv", "text/csv", vec![b'x'; 4 * 1024 * 1024])
            .await;
        assert_eq!(status, 413, "{answer}");
        assert_eq!(answer["error"]["code"], "payload_too_large");
    }
    // Upload without the `file` field.
    let form = reqwest::multipart::Form::new().text("other", "x");
    let (status, answer) = server.upload_form(form).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "missing_file");
    // Search with a typo in a field: 400 naming it.
    let response = server
        .http
        .post(server.url("/api/logs/search"))
        .json(&json!({"qeury": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 400);
    let answer: Value = response.json().await.expect("json");
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .contains("qeury")
    );
    // Counting endpoints: a reversed range, an unreadable time, a typo and a huge limit.
    for (path, names) in [
        (
            "/api/logs/types?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from is after to",
        ),
        ("/api/logs/types?from=yesterday", "from"),
        ("/api/logs/types?form=1", "form"),
        (
            "/api/logs/search/services?limit=100000",
            "between 0 and 1000",
        ),
        ("/api/logs/types?range=2w", "quick range"),
        ("/api/analytics/transactions?range=1h&from=0", "not both"),
        (
            "/api/analytics/errors?from=0&to=2592000000&interval=1m",
            "buckets",
        ),
        ("/api/analytics/trends?limit=5", "unknown field `limit`"),
        (
            "/api/performance/api-response-times?threshold_ms=-5",
            "threshold_ms",
        ),
        (
            "/api/fraud/suspicious-activities?min_score=101",
            "min_score",
        ),
        (
            "/api/fraud/suspicious-activities?search_after=abc",
            "search_after",
        ),
        ("/api/dashboard/overview?limit=abc", "limit"),
    ] {
        let response = server
            .http
            .get(server.url(path))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status().as_u16(), 400, "{path}");
        let answer: Value = response.json().await.expect("json");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{path}: {answer}");
    }
    // Searches the query syntax or the checks refuse, each saying why and where.
    let deep = "(".repeat(100);
    let long = "word ".repeat(600);
    for (body, code, names) in [
        (
            json!({"query": "gateway \"timed out"}),
            "invalid_query",
            "at character 9",
        ),
        (json!({"query": deep}), "invalid_query", "deeper"),
        (json!({"query": long}), "invalid_query", "longer than"),
        (
            json!({"query": "paymnt_method:card"}),
            "invalid_query",
            "payment_method",
        ),
        (json!({"query": "amount:lots"}), "invalid_query", "number"),
        (json!({"sort": "level"}), "invalid_request", "numeric"),
        (
            json!({"min_amount": 10, "max_amount": 1}),
            "invalid_request",
            "min_amount",
        ),
        (
            json!({"offset": 9_999, "size": 10}),
            "invalid_request",
            "search_after",
        ),
        (
            json!({"search_after": ["x", 1]}),
            "invalid_request",
            "search_after",
        ),
    ] {
        let response = server
            .http
            .post(server.url("/api/logs/search"))
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status().as_u16(), 400, "{body}");
        let answer: Value = response.json().await.expect("json");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{body}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_upload_with_bom_crlf_quotes_and_bad_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let csv = "\u{feff}log_type,event_id,service,error_message,message,amount,transaction_id,user_id\r\n\
               error,c1,search,\"timeout, retried\",\"line one\r\nline \"\"two\"\"\",,,\r\n\
               transaction,c2,checkout,,,12.50,t1,u1\r\n\
               transaction,c3,checkout,,,twelve,t2,u2\r\n\
               error,c4,search,too few cells\r\n\
               error,c5,search,\"last, one\",,,,\r\n";
    let (status, answer) = server
        .upload("export.csv", "text/csv", csv.as_bytes().to_vec())
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(3), Some(2)),
        "{answer}"
    );
    assert_eq!(answer["lines"], 7);
    let got = errors(&answer);
    assert_eq!(got[0], (3, "amount".into(), "wrong_type".into()));
    assert_eq!(got[1].0, 4);
    server
        .wait_for_total(json!({"size": 0}), 3, Duration::from_secs(20))
        .await;
    let hits = server.search(json!({"query": "retried"})).await;
    let hit = &hits["hits"][0];
    assert_eq!(hit["_id"], "c1");
    assert_eq!(hit["error_message"], "timeout, retried");
    assert_eq!(hit["message"], "line one\r\nline \"two\"");
    let tx = server.search(json!({"log_type": "transaction"})).await;
    assert_eq!(tx["hits"][0]["amount"], 12.5, "CSV amounts become numbers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_reports_each_item_and_refuses_malformed_actions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let body = [
        r#"{"create":{"_index":"logs","_id":"b1"}}"#.to_owned(),
        valid(1).to_string(),
        r#"{"index":{}}"#.to_owned(),
        json!({"log_type": "transaction", "amount": "free"}).to_string(),
        r#"{"delete":{"_index":"logs","_id":"b1"}}"#.to_owned(),
        r#"{"index":{"_id":"b4"}}"#.to_owned(),
        json!({"log_type": "error", "error_message": "bulk ok"}).to_string(),
    ]
    .join("\n");
    let (status, answer) = server
        .post("/logs/_bulk", "application/x-ndjson", body)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], true);
    let items = answer["items"].as_array().expect("items");
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["create"]["status"], 201);
    assert_eq!(items[0]["create"]["_id"], "b1");
    assert_eq!(items[1]["index"]["status"], 400);
    let reason = items[1]["index"]["error"]["reason"]
        .as_str()
        .expect("reason");
    assert!(
        reason.contains("[amount]") && reason.contains("[transaction_id]"),
        "{reason}"
    );
    assert_eq!(items[1]["index"]["_index"], "logs");
    assert_eq!(items[2]["delete"]["status"], 400);
    assert_eq!(items[3]["index"]["status"], 201);
    assert_eq!(items[3]["index"]["_id"], "b4");
    server
        .wait_for_total(json!({"size": 0}), 2, Duration::from_secs(20))
        .await;

    let response = server
        .http
        .post(server.url("/_bulk"))
        .body("{\"index\":{}\n{}\n")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 400);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["error"]["type"], "illegal_argument_exception");
    assert_eq!(answer["status"], 400);

    // No body, and a body without actions, as Elasticsearch 8 answers them.
    for (body, kind, reason) in [
        ("", "parse_exception", "request body is required"),
        (
            "\n\n",
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;",
        ),
    ] {
        let (status, answer) = server.post("/_bulk", "application/x-ndjson", body).await;
        assert_eq!(status, 400, "{body:?}: {answer}");
        assert_eq!(answer["error"]["type"], kind, "{body:?}: {answer}");
        assert_eq!(answer["error"]["root_cause"][0]["reason"], reason);
    }

    let root: Value = server.get_json("/").await;
    assert!(
        root["version"]["number"]
            .as_str()
            .expect("version")
            .starts_with('8')
    );
    assert_eq!(root["tagline"], "You Know, for Search");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics_tell_what_happened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let body = format!("{}\n{{\"log_type\":\"nope\"}}\n", valid(1));
    let (status, answer) = server
        .post("/api/logs/ingest", "application/x-ndjson", body)
        .await;
    assert_eq!(status, 202, "{answer}");
    server
        .wait_for_total(json!({"size": 0}), 1, Duration::from_secs(20))
        .await;

    let health = server
        .http
        .get(server.url("/health"))
        .send()
        .await
        .expect("sent");
    assert_eq!(health.status().as_u16(), 200);
    let ready: Value = server.get_json("/ready").await;
    assert_eq!(ready["status"], "ready");
    let metrics = server.get_text("/metrics").await;
    for expected in [
        "sluice_events_received_total{source=\"http\"} 2",
        "sluice_events_accepted_total{source=\"http\"} 1",
        "sluice_events_rejected_total{source=\"http\",reason=\"unknown_log_type\"} 1",
        "sluice_events_processed_total 1",
        "sluice_events_indexed_total 1",
        "sluice_queue_lag_records 0",
        "sluice_processor_batch_duration_seconds_bucket",
        "sluice_store_write_duration_seconds_count",
        "sluice_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/logs/ingest\",status=\"202\"",
        "sluice_geoip_database_loaded 0",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from /metrics:\n{metrics}"
        );
    }
    // Dead-letter counter exists once something was dead-lettered; see the dead-letter test.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_refuses_with_retry_after_and_loses_nothing_silently() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A high-water mark of 2 KiB, and a store nobody answers at, so nothing drains: the first
    // request, a 4 KB record, fits under the mark whatever the empty queue's own bookkeeping
    // (a request may overshoot the mark, alone) and takes the queue past it, so every request
    // after it is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let nobody = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let server = start(
        dir.path(),
        &[
            ("SLUICE_QUEUE__WAL__MAX_BACKLOG_BYTES", "2048"),
            ("SLUICE_STORE__URL", &nobody),
        ],
    );
    let mut first = valid(1);
    first["error_message"] = json!("stock reservation failed ".repeat(160));
    let (status, answer) = server
        .post(
            "/api/logs/ingest",
            "application/x-ndjson",
            format!("{first}\n"),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let body = format!("{}\n", valid(2));
    let response = server
        .http
        .post(server.url("/api/logs/ingest"))
        .header("content-type", "application/x-ndjson")
        .body(body.clone())
        .send()
        .await
        .expect("a clean answer, not a dropped connection");
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["error"]["code"], "queue_full");
    let bulk = format!("{{\"index\":{{}}}}\n{}\n", valid(3));
    let (status, answer) = server.post("/_bulk", "application/x-ndjson", bulk).await;
    assert_eq!(status, 429, "shippers back off on 429: {answer}");
    assert_eq!(answer["error"]["type"], "es_rejected_execution_exception");
    let ready = server
        .http
        .get(server.url("/ready"))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status().as_u16(), 503);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(
        ready["queue"]["records"], 1,
        "only the first request is queued: {ready}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_larger_than_the_queue_waits_for_room_instead_of_failing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A queue far smaller than the file: the upload must pause and resume, not fail.
    let server = start(
        dir.path(),
        &[
            ("SLUICE_QUEUE__WAL__MAX_BACKLOG_BYTES", "262144"),
            ("SLUICE_INGEST__UPLOAD_CHUNK_RECORDS", "500"),
        ],
    );
    let events = support::generate(21, 6_000, 1, 5);
    let body = support::ndjson(&events).into_bytes();
    assert!(body.len() > 4 * 262_144, "the file outsizes the queue");
    let (status, answer) = server
        .upload("events.ndjson", "application/x-ndjson", body)
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 6_000, "{answer}");
    server
        .wait_for_total(json!({"size": 0}), 6_000, Duration::from_secs(60))
        .await;
}
