//! Producers that behave as a careful shipper does: each sends its batches in order and sends a
//! batch again, unchanged, until it gets a 202 — after a 503, 507 or 429 (honouring
//! `Retry-After`, up to a second) or a dropped connection. What got a 202 is what Sluice owes.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::json;

/// Where the producers send, swapped when a test restarts the server.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub token: String,
}

pub type SharedTarget = Arc<RwLock<Target>>;

pub fn target(server: &crate::support::Server) -> Target {
    Target {
        url: server.base.clone(),
        token: server.admin_token.clone(),
    }
}

/// What the producers saw.
#[derive(Default)]
pub struct Tally {
    /// Event ids of every batch that got a 202.
    pub acked: Mutex<HashSet<String>>,
    /// Every id ever sent.
    pub sent: Mutex<HashSet<String>>,
    /// Answers by status (`"202"`, `"507"`, …) and `"no answer"` for a dropped connection.
    pub answers: Mutex<BTreeMap<String, u64>>,
    /// Bodies of refusals, one per status, for the assertions on their shape.
    pub refusals: Mutex<BTreeMap<u16, (Option<String>, serde_json::Value)>>,
    stop: AtomicBool,
}

impl Tally {
    pub fn answered(&self, key: &str) -> u64 {
        self.answers
            .lock()
            .expect("lock")
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    pub fn acked(&self) -> HashSet<String> {
        self.acked.lock().expect("lock").clone()
    }

    /// Makes producers give up what they have not sent yet.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// How the producers load the server.
#[derive(Clone, Copy)]
pub struct Shape {
    pub producers: usize,
    pub batches: usize,
    pub batch: usize,
    /// Pause between batches of one producer (a rate cap).
    pub pause: Duration,
    /// Bytes of filler per event (the size of a record).
    pub filler: usize,
}

/// Starts the producers; they end when every batch got its 202 (or [`Tally::stop`]).
pub fn start(
    target: SharedTarget,
    shape: Shape,
    run: &str,
) -> (Arc<Tally>, Vec<tokio::task::JoinHandle<()>>) {
    let tally = Arc::new(Tally::default());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let handles = (0..shape.producers)
        .map(|producer| {
            let (tally, target, http) = (Arc::clone(&tally), Arc::clone(&target), http.clone());
            let run = run.to_owned();
            tokio::spawn(async move {
                for batch in 0..shape.batches {
                    let ids: Vec<String> = (0..shape.batch)
                        .map(|i| format!("{run}-p{producer}-b{batch}-e{i}"))
                        .collect();
                    tally.sent.lock().expect("lock").extend(ids.iter().cloned());
                    let body = ndjson(&ids, shape.filler);
                    loop {
                        if tally.stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let Target { url, token } = target.read().expect("target").clone();
                        let sent = http
                            .post(format!("{url}/api/logs/ingest"))
                            .bearer_auth(&token)
                            .header("content-type", "application/x-ndjson")
                            .body(body.clone())
                            .send()
                            .await;
                        let wait = match sent {
                            Ok(response) if response.status().as_u16() == 202 => {
                                count(&tally, "202");
                                tally
                                    .acked
                                    .lock()
                                    .expect("lock")
                                    .extend(ids.iter().cloned());
                                break;
                            }
                            Ok(response) => {
                                let status = response.status().as_u16();
                                count(&tally, &status.to_string());
                                let retry_after = response
                                    .headers()
                                    .get("retry-after")
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_owned);
                                let answer =
                                    response.json().await.unwrap_or(serde_json::Value::Null);
                                tally
                                    .refusals
                                    .lock()
                                    .expect("lock")
                                    .entry(status)
                                    .or_insert((retry_after.clone(), answer));
                                let seconds =
                                    retry_after.and_then(|s| s.parse::<u64>().ok()).unwrap_or(1);
                                Duration::from_millis((seconds * 1000).min(1000))
                            }
                            Err(_) => {
                                count(&tally, "no answer");
                                Duration::from_millis(100)
                            }
                        };
                        tokio::time::sleep(wait).await;
                    }
                    tokio::time::sleep(shape.pause).await;
                }
            })
        })
        .collect();
    (tally, handles)
}

fn count(tally: &Tally, key: &str) {
    *tally
        .answers
        .lock()
        .expect("lock")
        .entry(key.to_owned())
        .or_default() += 1;
}

fn ndjson(ids: &[String], filler: usize) -> String {
    let mut body = String::new();
    for id in ids {
        let event = json!({
            "log_type": "error", "event_id": id, "service": "payments", "level": "error",
            "error_message": "gateway timeout", "detail": noise(id, filler),
        });
        body.push_str(&event.to_string());
        body.push('\n');
    }
    body
}

/// Waits for every producer to finish (or `limit`), failing with what they saw.
pub async fn finish(handles: Vec<tokio::task::JoinHandle<()>>, tally: &Tally, limit: Duration) {
    let all = async {
        for handle in handles {
            handle.await.expect("producer");
        }
    };
    if tokio::time::timeout(limit, all).await.is_err() {
        tally.stop();
        panic!(
            "producers did not get every batch acknowledged within {limit:?}: {:?}",
            tally.answers.lock().expect("lock")
        );
    }
}

/// `len` hex digits that depend on `seed`: text that compresses about as little as real log
/// details, so a disk fills as it would.
fn noise(seed: &str, len: usize) -> String {
    let mut state = seed.bytes().fold(0x9E37_79B9_7F4A_7C15_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    }) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from_digit((state % 16) as u32, 16).unwrap_or('0')
        })
        .collect()
}
