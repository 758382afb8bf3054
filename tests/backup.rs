//! `sluice backup` while `sluice serve` takes a steady stream of events, then `sluice restore`
//! into a new data directory: everything acknowledged before the backup started is there, once,
//! with the same answers, and the meta store and the JWT secret came with it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Server, ndjson, sluice_command};

const PER_BATCH: usize = 200;

fn batch(n: usize) -> Vec<Value> {
    (0..PER_BATCH)
        .map(|i| {
            json!({"log_type": "error", "event_id": format!("b{n}-{i}"),
                   "error_message": format!("batch {n} event {i}"), "service": format!("batch-{n}")})
        })
        .collect()
}

async fn count(server: &Server, n: usize) -> u64 {
    server
        .total(json!({"service": format!("batch-{n}"), "size": 0}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_everything_acknowledged_before_it_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // The processor takes a batch a second and the index commits every 3 s (never early: the
    // queue is never idle for a second under this load), so at the backup part of what was
    // acknowledged is committed and part is only in the queue, which the backup must carry.
    let env = [
        ("SLUICE_PROCESSOR__BATCH_MAX_WAIT_MS", "1000"),
        ("SLUICE_PROCESSOR__COMMIT_INTERVAL_MS", "3000"),
    ];
    let server = Arc::new(Server::start(&data, None, &env));
    let (status, key) = server
        .post(
            "/api/auth/api-keys",
            "application/json",
            json!({"name": "kept"}).to_string(),
        )
        .await;
    assert_eq!(status, 201, "{key}");

    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (server, acknowledged, stop) = (
            Arc::clone(&server),
            Arc::clone(&acknowledged),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let (status, answer) = server.post_ndjson("/api/logs/ingest", &batch(n)).await;
                assert_eq!(status, 202, "{answer}");
                acknowledged.lock().expect("lock").push(n);
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let before: Vec<usize> = acknowledged.lock().expect("lock").clone();
    assert!(before.len() >= 10, "{before:?}");
    let backup = dir.path().join("backup");
    let taken = {
        let (data, backup) = (data.clone(), backup.clone());
        tokio::task::spawn_blocking(move || {
            sluice_command(
                &data,
                &["backup", "--out", &backup.to_string_lossy()],
                "",
                &[],
            )
        })
        .await
        .expect("joined")
    };
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    let manifest: Value = serde_json::from_slice(&taken.stdout).expect("the manifest");
    let indexed_at_backup = manifest["index"]["documents"].as_u64().expect("documents");
    let acknowledged_at_backup = (before.len() * PER_BATCH) as u64;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    producer.await.expect("producer");
    assert!(
        0 < indexed_at_backup && indexed_at_backup < acknowledged_at_backup,
        "the index and the queue each carried part: {indexed_at_backup} indexed of \
         {acknowledged_at_backup}"
    );

    let restored = dir.path().join("restored");
    let put_back = sluice_command(&restored, &["restore", &backup.to_string_lossy()], "", &[]);
    assert!(
        put_back.status.success(),
        "{}",
        String::from_utf8_lossy(&put_back.stderr)
    );
    let copy = Server::start(&restored, None, &env);
    let everything_before = json!({"size": 0});
    let started = std::time::Instant::now();
    while copy.total(everything_before.clone()).await < acknowledged_at_backup {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the restored queue was not indexed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for &n in &before {
        assert_eq!(count(&copy, n).await, PER_BATCH as u64, "batch {n}");
    }
    // Nothing twice: a batch there at all is there whole.
    let total = copy.total(everything_before).await;
    assert_eq!(total % PER_BATCH as u64, 0, "{total}");
    // The same answers as the original for what both hold.
    let acknowledged_in_all = (acknowledged.lock().expect("lock").len() * PER_BATCH) as u64;
    server
        .wait_for_total(
            json!({"size": 0}),
            acknowledged_in_all,
            Duration::from_secs(60),
        )
        .await;
    let question = json!({"service": "batch-3", "size": 5, "sort": "timestamp"});
    let ids = |answer: Value| -> Vec<Value> {
        answer["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .map(|hit| hit["_id"].clone())
            .collect()
    };
    assert_eq!(
        ids(copy.search(question.clone()).await),
        ids(server.search(question).await)
    );

    // The meta store and the JWT secret came along: the key still sends, the original's token
    // is still good.
    let sent = copy
        .anonymous
        .post(copy.url("/api/logs/ingest"))
        .header(
            "authorization",
            format!("ApiKey {}", key["api_key"].as_str().expect("key")),
        )
        .header("content-type", "application/x-ndjson")
        .body(ndjson(&batch(100_000)))
        .send()
        .await
        .expect("sent");
    assert_eq!(sent.status().as_u16(), 202);
    let verified = copy
        .anonymous
        .get(copy.url("/api/auth/verify"))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .expect("sent");
    assert_eq!(verified.status().as_u16(), 200);
}

#[test]
fn a_backup_refuses_a_used_directory_and_a_restore_anything_but_a_whole_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let used = dir.path().join("used");
    std::fs::create_dir_all(&used).expect("dir");
    std::fs::write(used.join("keep.txt"), "mine").expect("file");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    let refused = sluice_command(
        &data,
        &["backup", "--out", &used.to_string_lossy()],
        "",
        &[],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not empty"));
    assert_eq!(
        std::fs::read_to_string(used.join("keep.txt")).expect("kept"),
        "mine"
    );
    let elsewhere = dir.path().join("elsewhere");
    let distributed = sluice_command(
        &data,
        &["backup", "--out", &elsewhere.to_string_lossy()],
        "",
        &[("SLUICE_QUEUE__URL", "kafka://127.0.0.1:1")],
    );
    assert!(!distributed.status.success());
    assert!(
        String::from_utf8_lossy(&distributed.stderr).contains("keep their own backups"),
        "{}",
        String::from_utf8_lossy(&distributed.stderr)
    );
    let not_a_backup = sluice_command(
        &dir.path().join("new"),
        &["restore", &used.to_string_lossy()],
        "",
        &[],
    );
    assert!(!not_a_backup.status.success());
    assert!(
        String::from_utf8_lossy(&not_a_backup.stderr).contains("not a backup, or one cut short"),
        "{}",
        String::from_utf8_lossy(&not_a_backup.stderr)
    );
}
