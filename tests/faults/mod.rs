//! The fault suite: what Sluice promises (a 202 means durable; every acknowledged event is
//! indexed exactly once; memory stays bounded; it recovers on its own) held up against the
//! faults a production box sees, each staged for real:
//! - `kill`: `kill -9` at random moments under producers that resend;
//! - `disk`: a real ext4 volume filling up, and freed again;
//! - `outage`: the store cut off for a minute under load, Elasticsearch and tantivy;
//! - `poison`: hostile records of every kind found, through every door;
//! - `producers`: many concurrent large bodies against the memory bound;
//! - `power`: power cuts, on a filesystem that forgets what was not synced.
//!
//! Mounting filesystems needs root, which CI runs as. Every process a test starts listens on
//! 127.0.0.1 and is stopped when the test ends; every mount is unmounted.

mod crashfs;
mod disk;
mod kill;
mod load;
mod loopdisk;
mod outage;
mod poison;
mod power;
mod producers;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::Server;
use serde_json::{Value, json};

use self::load::Tally;

/// Every indexed event's id, once per document, read through the export as a one-column CSV.
/// The export streams for as long as the index is large (over a minute for 128,000 documents of
/// 5.7 KB in a debug build on two busy cores), so the client gives up when the stream stalls for
/// a minute, not after a minute in all.
pub async fn indexed_ids(server: &Server) -> Vec<String> {
    let client = reqwest::Client::builder()
        .read_timeout(Duration::from_secs(60))
        .build()
        .expect("http client");
    let response = client
        .post(server.url("/api/logs/search/export?format=csv&fields=_id"))
        .bearer_auth(&server.admin_token)
        .json(&json!({}))
        .send()
        .await
        .expect("export sent");
    assert_eq!(response.status().as_u16(), 200, "export");
    let body = response.text().await.expect("export body");
    // Ids are letters, digits and dashes: no cell is quoted.
    body.lines().skip(1).map(str::to_owned).collect()
}

/// Waits until the queue is empty and the store holds at least `expected` documents, for at
/// most `limit`; returns the ids then indexed (what is missing is for the caller to say).
pub async fn drained(server: &Server, expected: usize, limit: Duration) -> Vec<String> {
    let started = Instant::now();
    loop {
        let ready: Value = server.get_json("/ready").await;
        let total = server.total(json!({"size": 0})).await;
        if ready["queue"]["records"] == 0 && total as usize >= expected {
            return indexed_ids(server).await;
        }
        if started.elapsed() >= limit {
            eprintln!(
                "not drained within {limit:?}: {total} of {expected} indexed; /ready: {ready}"
            );
            return indexed_ids(server).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every acknowledged event is indexed exactly once, and nothing indexed was never sent.
pub fn assert_exactly_once(indexed: &[String], tally: &Tally) {
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for id in indexed {
        *copies.entry(id.as_str()).or_default() += 1;
    }
    let sent = tally.sent.lock().expect("lock");
    let twice: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "indexed more than once: {twice:?}");
    let foreign: Vec<_> = copies
        .keys()
        .filter(|id| !sent.contains(**id))
        .take(5)
        .collect();
    assert!(foreign.is_empty(), "indexed but never sent: {foreign:?}");
    let acked = tally.acked();
    let mut lost: Vec<_> = acked
        .iter()
        .filter(|id| !copies.contains_key(id.as_str()))
        .collect();
    lost.sort();
    // Ids are `run-producer-batch-event`: which batches, says when in the run they were lost.
    let mut batches: Vec<&str> = lost
        .iter()
        .map(|id| id.rsplit_once("-e").map_or(id.as_str(), |(batch, _)| batch))
        .collect();
    batches.dedup();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events lost, from batches {:?}",
        lost.len(),
        acked.len(),
        &batches[..batches.len().min(40)]
    );
}
