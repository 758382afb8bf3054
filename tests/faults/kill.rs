//! `kill -9` at 20 random moments while several producers send and resend: after the last
//! restart every acknowledged event is indexed once, and counted once by the dashboards, whose
//! answers from rollups equal those the events give with rollups off. The
//! moments are drawn from a seed printed at the start, so a failure can be replayed
//! (`FAULTS_SEED`).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::load::{self, Shape};
use super::{assert_exactly_once, drained};
use crate::support::Server;

const KILLS: usize = 20;

pub fn seed() -> u64 {
    std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| sluice_event::now_ms() as u64)
}

/// A number in `0..n` from xorshift state `state`.
pub fn next(state: &mut u64, n: u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state % n.max(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kills_under_resending_producers_lose_and_duplicate_nothing() {
    let seed = seed();
    println!("kill moments from FAULTS_SEED={seed}");
    let began_ms = sluice_event::now_ms();
    let mut random = seed | 1;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start(&data, None, &[]);
    let target = Arc::new(RwLock::new(load::target(&server)));
    let shape = Shape {
        producers: 3,
        batches: 300,
        batch: 100,
        pause: Duration::from_millis(80),
        filler: 100,
    };
    let (tally, producers) = load::start(Arc::clone(&target), shape, "kill");
    let mut acked_at_kill = Vec::new();
    for _ in 0..KILLS {
        // Somewhere in the next 1.5 s: in an append, a batch, a commit or a restart's replay.
        let wait = 50 + next(&mut random, 1_450);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.kill9();
        acked_at_kill.push(tally.acked().len());
        server = Server::start(&data, None, &[]);
        *target.write().expect("target") = load::target(&server);
    }
    let started = Instant::now();
    load::finish(producers, &tally, Duration::from_secs(240)).await;
    let acked = tally.acked();
    assert_eq!(acked.len(), shape.producers * shape.batches * shape.batch);
    assert!(
        acked_at_kill.first().copied().unwrap_or(0) < acked.len()
            && acked_at_kill.last().copied().unwrap_or(0) < acked.len(),
        "the kills landed while the load ran: {acked_at_kill:?}"
    );
    let indexed = drained(&server, acked.len(), Duration::from_secs(120)).await;
    assert_exactly_once(&indexed, &tally);
    // The dashboards count every acknowledged event once too: over whole hours they read the
    // segments' rollups, which replays after the kills must not have counted twice. Asked at
    // once and again after the rollup builder has caught up.
    const HOUR_MS: i64 = 3_600_000;
    let from = began_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let to = (sluice_event::now_ms().div_euclid(HOUR_MS) + 1) * HOUR_MS - 1;
    for again in 0..2 {
        let path = format!("/api/dashboard/stats?from={from}&to={}", to - again);
        let stats = server.get_json(&path).await;
        assert_eq!(stats["stats"]["events"], acked.len(), "{stats}");
        assert_eq!(stats["stats"]["errors"], acked.len(), "{stats}");
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    // Every dashboard answer from the rollups equals the events' own aggregation: the same
    // questions of the same index, asked again with rollups off. Both without the answer
    // cache, so each is computed. Over a week, so that timelines are in hours (a shorter
    // window's minute buckets are read from the events either way).
    let window = format!("from={}&to={to}", from - 7 * 24 * HOUR_MS);
    let questions = [
        "/api/dashboard/overview",
        "/api/dashboard/charts",
        "/api/analytics/errors",
        "/api/analytics/trends",
        "/api/performance/metrics",
    ]
    .map(|endpoint| format!("{endpoint}?{window}"));
    let mut answers = Vec::new();
    for (rollups, path_taken) in [("true", "rollups"), ("false", "events")] {
        server.stop();
        let env = [
            ("SLUICE_CACHE__ANSWER_TTL_SECS", "0"),
            ("SLUICE_STORE__ROLLUPS", rollups),
        ];
        server = Server::start(&data, None, &env);
        let mut answered = Vec::new();
        for question in &questions {
            let (answer, taken) = server.get_aggregated(question).await;
            assert_eq!(taken, path_taken, "{question}");
            answered.push(answer);
        }
        answers.push(answered);
    }
    for ((question, by_rollups), by_events) in questions.iter().zip(&answers[0]).zip(&answers[1]) {
        assert_eq!(by_rollups, by_events, "{question}");
    }
    assert_eq!(answers[0][0]["stats"]["events"], acked.len());
    println!(
        "{KILLS} kills, {} events acknowledged and indexed once; answers {:?}; drained {:?} after the producers",
        acked.len(),
        tally.answers.lock().expect("lock"),
        started.elapsed()
    );
}
