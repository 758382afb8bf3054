//! Records that reach the queue another way and fail validation in the processor are
//! dead-lettered with their original bytes and the reason, and listed over HTTP.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_queue_records_are_validated_and_dead_lettered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start(&data, None, &[]);
    assert_eq!(server.stop().code(), Some(0), "SIGTERM is a clean stop");

    // Another producer writes straight into the queue while Sluice is down.
    let bad_bytes = b"{\"log_type\":\"transaction\",\"amount\":\"\xff\"}".to_vec();
    support::append_to_queue(
        &data,
        &[
            br#"{"log_type":"error","error_message":"from the side door","service":"legacy"}"#,
            br#"{"log_type":"transaction","amount":-1,"user_id":"u","transaction_id":"t"}"#,
            &bad_bytes,
        ],
    )
    .await;

    let server = Server::start(&data, None, &[]);
    server
        .wait_for_total(json!({"size": 0}), 1, Duration::from_secs(20))
        .await;
    // The processor indexes a batch before it writes the batch's dead letters: wait for them.
    let letters = dead_letters_once_there_are(&server, 2, Duration::from_secs(20)).await;
    assert_eq!(letters["total"], 2, "{letters}");
    let newest = &letters["dead_letters"][0];
    assert_eq!(newest["code"], "invalid_encoding", "{newest}");
    assert_eq!(newest["stage"], "validate");
    assert_eq!(newest["source"], "queue");
    assert_eq!(
        newest["record"],
        String::from_utf8_lossy(&bad_bytes).as_ref()
    );
    let older = &letters["dead_letters"][1];
    assert_eq!(older["field"], "amount");
    assert!(
        older["reason"]
            .as_str()
            .expect("reason")
            .contains("at least 0"),
        "{older}"
    );
    let metrics = server.get_text("/metrics").await;
    assert!(
        metrics.contains(
            "sluice_events_dead_lettered_total{stage=\"validate\",reason=\"invalid_value\"} 1"
        ),
        "{metrics}"
    );
}

/// The first page of dead letters once there are `count`, or after `limit` whatever is there.
async fn dead_letters_once_there_are(server: &Server, count: u64, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let letters: Value = server.get_json("/api/dead-letters?limit=10").await;
        if letters["total"] == count || started.elapsed() >= limit {
            return letters;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where the test's foreign records go: the WAL of the data directory, written with the server
/// stopped, or a Kafka topic, written while the server's consumer is in its group (a group with
/// no committed offset starts at the end of the topic).
enum Backend {
    Wal,
    Kafka { brokers: String, topic: String },
}

impl Backend {
    async fn write(&self, data: &std::path::Path, payloads: &[Vec<u8>]) {
        match self {
            Backend::Wal => {
                let payloads: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
                support::append_to_queue(data, &payloads).await;
            }
            Backend::Kafka { brokers, topic } => {
                use rdkafka::producer::{FutureProducer, FutureRecord};
                let producer: FutureProducer = rdkafka::ClientConfig::new()
                    .set("bootstrap.servers", brokers)
                    .create()
                    .expect("producer");
                for payload in payloads {
                    producer
                        .send(
                            FutureRecord::<(), _>::to(topic).payload(payload),
                            Duration::from_secs(10),
                        )
                        .await
                        .expect("delivered");
                }
            }
        }
    }
}

async fn post(server: &Server, path: &str, body: Value) -> Value {
    let (status, answer) = server
        .post(path, "application/json", body.to_string())
        .await;
    assert_eq!(status, 200, "{path} {body}: {answer}");
    answer
}

/// `sluice dead-letters COMMAND ARGS` against `server`, logged in as the admin with the password
/// on standard input; its JSON answer.
fn cli(server: &Server, args: &[&str]) -> Value {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("dead-letters")
        .args(&args[..1])
        .args(["--url", &server.base, "--username", support::ADMIN])
        .args(&args[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sluice runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}\n", support::ADMIN_PASSWORD).as_bytes())
        .expect("password written");
    let output = child.wait_with_output().expect("sluice finishes");
    assert!(
        output.status.success(),
        "sluice dead-letters {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON answer")
}

/// Records dead-lettered by a mistake (a field limit set too low) are replayed once it is fixed:
/// counted first, indexed once with the ids they had, gone from the list, and not replayed
/// twice; others are purged; who did which is recorded, and all of it survives a restart.
async fn replay_after_the_mistake_is_fixed(backend: Backend, queue_env: Vec<(String, String)>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let fixed: Vec<(&str, &str)> = queue_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut mistaken = fixed.clone();
    mistaken.push(("SLUICE_INGEST__LIMITS__MAX_FIELDS", "8"));

    let mut payloads: Vec<Vec<u8>> = (0..6)
        .map(|n| {
            let mut record = json!({"log_type": "error", "error_message": format!("wide #{n}"),
                                    "service": "replayed"});
            for field in 0..9 {
                record[format!("extra_{field}")] = json!(field);
            }
            record.to_string().into_bytes()
        })
        .collect();
    payloads.push(b"{\"log_type\": \"error\", \"error_message\": ".to_vec());
    payloads.push(b"not json at all".to_vec());
    let mut server = Server::start(&data, None, &mistaken);
    if matches!(backend, Backend::Wal) {
        server.stop();
        backend.write(&data, &payloads).await;
        server = Server::start(&data, None, &mistaken);
    } else {
        backend.write(&data, &payloads).await;
    }
    let letters = dead_letters_once_there_are(&server, 8, Duration::from_secs(60)).await;
    assert_eq!(letters["total"], 8, "{letters}");
    server.stop();
    // The mistake fixed.
    let mut server = Server::start(&data, None, &fixed);

    let wide = server
        .get_json("/api/dead-letters?code=oversized&stage=validate&limit=100")
        .await;
    assert_eq!(wide["total"], 6, "{wide}");
    let one = wide["dead_letters"][0]["letter_id"]
        .as_str()
        .expect("letter_id")
        .to_owned();
    let by_id = server
        .get_json(&format!("/api/dead-letters?ids={one}"))
        .await;
    assert_eq!(by_id["total"], 1, "{by_id}");
    assert_eq!(by_id["dead_letters"][0]["letter_id"], one.as_str());
    // Every stage the processor names can be asked for (`document` was once refused).
    let documents = server.get_json("/api/dead-letters?stage=document").await;
    assert_eq!(documents["total"], 0, "{documents}");
    let future = sluice_event::now_ms() + 3_600_000;
    let later = server
        .get_json(&format!("/api/dead-letters?from={future}"))
        .await;
    assert_eq!(later["total"], 0, "{later}");

    let replay = json!({"code": "oversized", "stage": "validate"});
    let mut dry = replay.clone();
    dry["dry_run"] = json!(true);
    let counted = post(&server, "/api/dead-letters/replay", dry).await;
    assert_eq!(counted["matched"], 6, "{counted}");
    assert_eq!(counted["settled"], 0, "{counted}");
    assert_eq!(counted["action_id"], Value::Null);
    assert_eq!(server.get_json("/api/dead-letters").await["total"], 8);

    // Two administrators replay at once: both may send the records, each keeps its document
    // id, and every record is indexed once.
    let (first, second) = tokio::join!(
        post(&server, "/api/dead-letters/replay", replay.clone()),
        post(&server, "/api/dead-letters/replay", replay.clone())
    );
    let settled =
        first["settled"].as_u64().expect("settled") + second["settled"].as_u64().expect("settled");
    assert!(settled >= 6, "{first} {second}");
    let query = json!({"service": "replayed", "size": 0});
    server
        .wait_for_total(query.clone(), 6, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(server.total(query).await, 6, "indexed once");
    let left = server.get_json("/api/dead-letters").await;
    assert_eq!(left["total"], 2, "replayed letters leave the list: {left}");
    let again = post(&server, "/api/dead-letters/replay", replay).await;
    assert_eq!(again["matched"], 0, "a letter is replayed once: {again}");

    // The purge from a shell, as an operator would: counted first.
    let counted = cli(&server, &["purge", "--code", "malformed_json", "--dry-run"]);
    assert_eq!(counted["matched"], 2, "{counted}");
    assert_eq!(counted["settled"], 0, "{counted}");
    let purged = cli(&server, &["purge", "--code", "malformed_json"]);
    assert_eq!(purged["settled"], 2, "{purged}");
    assert_eq!(server.get_json("/api/dead-letters").await["total"], 0);

    server.stop();
    let server = Server::start(&data, None, &fixed);
    assert_eq!(
        server.get_json("/api/dead-letters").await["total"],
        0,
        "settled letters stay settled after a restart"
    );
    let actions = server.get_json("/api/dead-letters/actions").await;
    // Newest first: the purge, then the replays that sent something (one, or both of the two
    // at once); a replay that matched nothing did nothing to record.
    let actions = actions["actions"].as_array().expect("actions");
    assert!((2..=3).contains(&actions.len()), "{actions:?}");
    assert_eq!(actions[0]["action"], "purge");
    assert_eq!(actions[0]["count"], 2);
    assert_eq!(
        actions[0]["filter"],
        json!({"code": "malformed_json", "dry_run": false})
    );
    for replay in &actions[1..] {
        assert_eq!(replay["action"], "replay");
        assert_eq!(replay["count"], 6);
        assert_eq!(replay["letter_ids"].as_array().expect("ids").len(), 6);
    }
    for action in actions {
        assert_eq!(action["by"], support::ADMIN);
        assert!(action["at"].as_str().is_some_and(|at| at.ends_with('Z')));
    }
    // Still indexed once.
    assert_eq!(
        server
            .total(json!({"service": "replayed", "size": 0}))
            .await,
        6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_replayed_once_and_purged_on_the_wal() {
    replay_after_the_mistake_is_fixed(Backend::Wal, Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_replayed_once_and_purged_on_kafka() {
    let brokers = support::service("TEST_KAFKA_BROKERS");
    let unique = format!("{}-{}", std::process::id(), sluice_event::now_ms());
    let topic = format!("replay-logs-{unique}");
    let env = vec![
        ("SLUICE_QUEUE__URL".to_owned(), format!("kafka://{brokers}")),
        ("SLUICE_QUEUE__KAFKA__TOPIC".to_owned(), topic.clone()),
        (
            "SLUICE_QUEUE__KAFKA__DEAD_LETTER_TOPIC".to_owned(),
            format!("replay-dead-{unique}"),
        ),
        (
            "SLUICE_QUEUE__KAFKA__GROUP_ID".to_owned(),
            format!("replay-group-{unique}"),
        ),
        (
            "SLUICE_QUEUE__KAFKA__SESSION_TIMEOUT_MS".to_owned(),
            "6000".to_owned(),
        ),
    ];
    replay_after_the_mistake_is_fixed(Backend::Kafka { brokers, topic }, env).await;
}
