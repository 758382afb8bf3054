//! Power cuts: the whole data directory on a filesystem that forgets what was not made
//! durable (see `crashfs`). Producers send and resend; twelve times the server is killed and the
//! power cut, leaving each file and directory as a disk may leave it; after the last start every
//! event that got a 202 before a cut is indexed, once. This is what the fsyncs behind each 202
//! are for: the test fails if the queue acknowledges before its data and its directory entries
//! are durable, or commits its position before the index's commit is.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::crashfs::CrashDisk;
use super::kill::{next, seed};
use super::load::{self, Shape};
use super::{assert_exactly_once, drained};
use crate::support::Server;

const CUTS: u64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cuts_lose_no_acknowledged_event() {
    let seed = seed();
    println!("power cuts from FAULTS_SEED={seed}");
    let mut random = seed | 1;
    let mut disk = CrashDisk::mount();
    let data = disk.path().join("data");
    // Small segments, so the queue rolls and deletes files between cuts.
    let env = [("SLUICE_QUEUE__WAL__SEGMENT_BYTES", "262144")];
    let mut server = Server::start(&data, None, &env);
    let target = Arc::new(RwLock::new(load::target(&server)));
    let shape = Shape {
        producers: 2,
        batches: 300,
        batch: 100,
        pause: Duration::from_millis(30),
        filler: 100,
    };
    let (tally, producers) = load::start(Arc::clone(&target), shape, "power");
    for cut in 0..CUTS {
        tokio::time::sleep(Duration::from_millis(300 + next(&mut random, 1_500))).await;
        server.kill9();
        disk.power_cut(seed.wrapping_add(cut));
        server = Server::start(&data, None, &env);
        *target.write().expect("target") = load::target(&server);
    }
    load::finish(producers, &tally, Duration::from_secs(240)).await;
    let acked = tally.acked().len();
    let indexed = drained(&server, acked, Duration::from_secs(120)).await;
    assert_exactly_once(&indexed, &tally);
    println!(
        "{CUTS} power cuts, {acked} acknowledged events indexed once; answers {:?}",
        tally.answers.lock().expect("lock")
    );
}
