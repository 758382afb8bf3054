use super::*;
use sluice_event::validate::RejectCode;

fn record(n: usize) -> QueuedRecord {
    QueuedRecord {
        id: Some(format!("id-{n}")),
        received_at_ms: 1_000 + n as i64,
        source: Source::Http,
        partition_key: None,
        payload: format!("{{\"n\":{n}}}").into_bytes(),
    }
}

/// A batch of up to `records` records, whatever their bytes.
fn at_most(records: usize) -> BatchLimit {
    BatchLimit {
        records,
        bytes: usize::MAX,
    }
}

async fn open(dir: &Path) -> WalQueue {
    WalQueue::open(dir, WalConfig::default())
        .await
        .expect("wal opens")
}

#[tokio::test]
async fn delivers_in_order_and_commit_removes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path()).await;
    wal.append((0..5).map(record).collect())
        .await
        .expect("append");
    assert_eq!(wal.backlog().records, 5);
    let mut consumer = wal.consumer().await;
    let batch = consumer
        .next_batch(at_most(3), Duration::ZERO)
        .await
        .expect("batch");
    assert_eq!(batch.records, (0..3).map(record).collect::<Vec<_>>());
    consumer.commit(&batch.checkpoint).await.expect("commit");
    assert_eq!(wal.backlog().records, 2);
    let rest = consumer
        .next_batch(at_most(10), Duration::ZERO)
        .await
        .expect("batch");
    assert_eq!(rest.len(), 2);
}

#[tokio::test]
async fn uncommitted_records_are_replayed_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let wal = open(dir.path()).await;
        wal.append((0..4).map(record).collect())
            .await
            .expect("append");
        let mut consumer = wal.consumer().await;
        let first = consumer
            .next_batch(at_most(2), Duration::ZERO)
            .await
            .expect("batch");
        consumer.commit(&first.checkpoint).await.expect("commit");
        // Delivered but never committed: must come back.
        consumer
            .next_batch(at_most(1), Duration::ZERO)
            .await
            .expect("batch");
    }
    let wal = open(dir.path()).await;
    let mut consumer = wal.consumer().await;
    let batch = consumer
        .next_batch(at_most(10), Duration::ZERO)
        .await
        .expect("batch");
    assert_eq!(batch.records, (2..4).map(record).collect::<Vec<_>>());
    wal.append(vec![record(9)])
        .await
        .expect("append after reopen");
    let more = consumer
        .next_batch(at_most(10), Duration::ZERO)
        .await
        .expect("batch");
    assert_eq!(more.records, vec![record(9)]);
}

#[tokio::test]
async fn waiting_consumer_wakes_on_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path()).await;
    let mut consumer = wal.consumer().await;
    let writer = wal.clone();
    let handle = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.append(vec![record(1)]).await.expect("append");
    });
    let batch = consumer
        .next_batch(at_most(10), Duration::from_secs(5))
        .await
        .expect("batch");
    assert_eq!(batch.records, vec![record(1)]);
    handle.await.expect("writer");
}

#[tokio::test]
async fn full_backlog_refuses_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = WalConfig {
        max_backlog_bytes: 4096,
        ..WalConfig::default()
    };
    let wal = WalQueue::open(dir.path(), config).await.expect("opens");
    let big = QueuedRecord {
        partition_key: None,
        payload: vec![b' '; 8192],
        ..record(1)
    };
    wal.append(vec![big]).await.expect("first fits");
    let err = wal.append(vec![record(2)]).await.expect_err("full");
    assert!(matches!(err, QueueError::Full { .. }));
}

/// The `n`th letter pushed, as it reads back: named by its position in the log.
fn letter(n: usize) -> DeadLetter {
    DeadLetter {
        letter_id: format!("w{n}"),
        id: None,
        failed_at_ms: n as i64,
        received_at_ms: 0,
        source: Source::Queue,
        stage: "validate".into(),
        code: RejectCode::MalformedJson,
        field: None,
        reason: format!("bad {n}"),
        payload: vec![0xff, n as u8],
    }
}

#[tokio::test]
async fn dead_letters_keep_bytes_newest_first_and_are_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = WalConfig {
        max_dead_letters: 3,
        ..WalConfig::default()
    };
    let wal = WalQueue::open(dir.path(), config.clone())
        .await
        .expect("opens");
    wal.push((0..5).map(letter).collect()).await.expect("push");
    let page = wal.newest(10).await.expect("list");
    assert_eq!(page.total, 3);
    assert_eq!(page.letters, vec![letter(4), letter(3), letter(2)]);
    drop(wal);
    let reopened = WalQueue::open(dir.path(), config).await.expect("reopens");
    assert_eq!(
        reopened.newest(1).await.expect("list").letters,
        vec![letter(4)]
    );
}

fn small_segments() -> WalConfig {
    WalConfig {
        segment_bytes: 256,
        ..WalConfig::default()
    }
}

/// Every record there is, and the checkpoint after the last.
async fn drain(consumer: &mut WalConsumer) -> Batch {
    let mut all = Batch::default();
    loop {
        let batch = consumer
            .next_batch(at_most(7), Duration::ZERO)
            .await
            .expect("batch");
        if batch.is_empty() {
            return all;
        }
        all.records.extend(batch.records);
        all.checkpoint = batch.checkpoint;
    }
}

#[tokio::test]
async fn consumed_segments_are_deleted_and_space_given_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = WalQueue::open(dir.path(), small_segments())
        .await
        .expect("opens");
    for n in 0..40 {
        wal.append(vec![record(n)]).await.expect("append");
    }
    let (before, _) = wal.disk_bytes();
    assert!(before > 40 * 20, "{before}");
    let mut consumer = wal.consumer().await;
    let drained = drain(&mut consumer).await;
    assert_eq!(drained.records, (0..40).map(record).collect::<Vec<_>>());
    consumer.commit(&drained.checkpoint).await.expect("commit");
    let (after, _) = wal.disk_bytes();
    assert!(
        after <= 256 + 64,
        "only the segment being written stays: {after}"
    );
    let files = std::fs::read_dir(dir.path().join(EVENTS))
        .expect("dir")
        .count();
    assert!(files <= 3, "{files} files left");
    assert_eq!(wal.backlog().records, 0);
    assert_eq!(wal.backlog().bytes, 0);
}

/// After every record was consumed and its segment deleted, a reopened queue must not hand
/// out positions the checkpoint already covers: the new records would be skipped as done.
#[tokio::test]
async fn positions_are_not_reused_after_everything_was_consumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let wal = WalQueue::open(dir.path(), small_segments())
            .await
            .expect("opens");
        for n in 0..30 {
            wal.append(vec![record(n)]).await.expect("append");
        }
        let mut consumer = wal.consumer().await;
        let drained = drain(&mut consumer).await;
        assert_eq!(drained.len(), 30);
        consumer.commit(&drained.checkpoint).await.expect("commit");
    }
    let wal = WalQueue::open(dir.path(), small_segments())
        .await
        .expect("reopens");
    assert_eq!(wal.backlog().records, 0);
    wal.append(vec![record(99)]).await.expect("append");
    let mut consumer = wal.consumer().await;
    assert_eq!(drain(&mut consumer).await.records, vec![record(99)]);
}

/// A frame holds a whole request; a batch may take part of it. Only what was delivered is
/// committed, and the rest comes back after a restart.
#[tokio::test]
async fn part_of_a_frame_is_committed_and_the_rest_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let wal = open(dir.path()).await;
        wal.append((0..10).map(record).collect())
            .await
            .expect("append");
        let mut consumer = wal.consumer().await;
        let batch = consumer
            .next_batch(at_most(4), Duration::ZERO)
            .await
            .expect("batch");
        assert_eq!(batch.records, (0..4).map(record).collect::<Vec<_>>());
        consumer.commit(&batch.checkpoint).await.expect("commit");
        assert_eq!(wal.backlog().records, 6);
    }
    let wal = open(dir.path()).await;
    let mut consumer = wal.consumer().await;
    assert_eq!(
        drain(&mut consumer).await.records,
        (4..10).map(record).collect::<Vec<_>>()
    );
}

/// What a crash in the middle of an append leaves: a torn frame, or garbage, at the end of the
/// newest segment. It is cut off; everything before it is there and appends go on.
#[tokio::test]
async fn a_torn_tail_is_cut_off_and_earlier_records_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let wal = open(dir.path()).await;
        wal.append((0..3).map(record).collect())
            .await
            .expect("append");
        wal.append((3..6).map(record).collect())
            .await
            .expect("append");
    }
    let segment = std::fs::read_dir(dir.path().join(EVENTS))
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .expect("a segment");
    let len = std::fs::metadata(&segment).expect("meta").len();
    // The second frame loses its last bytes, then junk follows.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open");
    file.set_len(len - 5).expect("truncate");
    drop(file);
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes.extend_from_slice(b"SWL1 junk after a torn frame");
    std::fs::write(&segment, &bytes).expect("write");

    let wal = open(dir.path()).await;
    let mut consumer = wal.consumer().await;
    assert_eq!(
        drain(&mut consumer).await.records,
        (0..3).map(record).collect::<Vec<_>>()
    );
    wal.append(vec![record(7)])
        .await
        .expect("append after recovery");
    assert_eq!(drain(&mut consumer).await.records, vec![record(7)]);
    drop((consumer, wal));
    let wal = open(dir.path()).await;
    let mut consumer = wal.consumer().await;
    let mut expected: Vec<QueuedRecord> = (0..3).map(record).collect();
    expected.push(record(7));
    assert_eq!(drain(&mut consumer).await.records, expected);
}

/// The high-water mark is reserved before each append: of many concurrent requests, those that
/// got in overshoot the mark by at most one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_overshoot_the_mark_by_at_most_one_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = WalConfig {
        max_backlog_bytes: 64 * 1024,
        ..WalConfig::default()
    };
    let wal = WalQueue::open(dir.path(), config).await.expect("opens");
    let request = |n: usize| {
        (0..10)
            .map(|i| QueuedRecord {
                payload: vec![b'x'; 1000],
                ..record(n * 10 + i)
            })
            .collect::<Vec<_>>()
    };
    let tasks: Vec<_> = (0..64)
        .map(|n| {
            let wal = wal.clone();
            let records = request(n);
            tokio::spawn(async move { wal.append(records).await })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => accepted += 1,
            Err(QueueError::Full { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let backlog = wal.backlog();
    let one_request = 24 + 10 * (4 + 12 + 8 + 1000);
    assert!((1..64).contains(&accepted), "{accepted} accepted");
    assert!(
        backlog.bytes < backlog.limit_bytes + one_request,
        "{} bytes held against a mark of {}",
        backlog.bytes,
        backlog.limit_bytes
    );
}

#[tokio::test]
async fn a_queue_written_by_mrecordlog_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("wal-00000000000000000000"), b"old").expect("write");
    let refused = WalQueue::open(dir.path(), WalConfig::default())
        .await
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("drain it"), "{refused}");
}

/// A real filesystem filling up under appends: each failed append is refused as a full disk,
/// none is half kept, appends work again once space is freed, and after reopening every
/// acknowledged record is there with its exact bytes. (mrecordlog lost every record appended
/// after its first failed write.) Runs as root, as CI does, to mount a small tmpfs.
#[tokio::test]
async fn a_full_disk_refuses_appends_and_loses_no_acknowledged_record() {
    let mount = sluice_storage::small_disk::SmallDisk::mount("3m");
    let ballast = mount.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 512 * 1024]).expect("ballast");
    let config = WalConfig {
        segment_bytes: 256 * 1024,
        ..WalConfig::default()
    };
    let dir = mount.path().join("queue");
    let payload = |n: usize| vec![(n % 251) as u8; 1_000 + n * 37 % 20_000];
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    {
        let wal = WalQueue::open(&dir, config.clone()).await.expect("opens");
        for n in 0..400 {
            let queued = QueuedRecord {
                payload: payload(n),
                ..record(n)
            };
            match wal.append(vec![queued.clone()]).await {
                Ok(()) => acknowledged.push(queued),
                Err(QueueError::DiskFull { path, .. }) => {
                    assert!(path.ends_with("events"), "{path}");
                    refused += 1;
                    if refused == 3 {
                        std::fs::remove_file(&ballast).expect("free the ballast");
                    }
                }
                Err(e) => panic!("append {n}: {e}"),
            }
        }
    }
    assert!(refused > 3, "the disk filled twice: {refused} refusals");
    let wal = WalQueue::open(&dir, config)
        .await
        .expect("reopens on a full disk");
    let mut consumer = wal.consumer().await;
    let replayed = drain(&mut consumer).await;
    assert_eq!(replayed.len(), acknowledged.len());
    assert!(
        replayed.records == acknowledged,
        "every acknowledged record, byte for byte"
    );
    // Committing works on the full disk, and frees it for new appends.
    consumer
        .commit(&replayed.checkpoint)
        .await
        .expect("commit on a full disk");
    wal.append(vec![record(1_000)])
        .await
        .expect("append once space is back");
}

/// A batch stops at its byte limit, but always holds one record however large.
#[tokio::test]
async fn batches_are_bounded_by_bytes_as_well_as_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path()).await;
    let sized = |n: usize, len: usize| QueuedRecord {
        payload: vec![b'x'; len],
        ..record(n)
    };
    wal.append(vec![
        sized(0, 400),
        sized(1, 400),
        sized(2, 400),
        sized(3, 5_000),
        sized(4, 10),
    ])
    .await
    .expect("append");
    let mut consumer = wal.consumer().await;
    let limit = BatchLimit {
        records: 100,
        bytes: 1_000,
    };
    let sizes =
        |batch: Vec<QueuedRecord>| batch.iter().map(|r| r.payload.len()).collect::<Vec<_>>();
    for expected in [&[400, 400][..], &[400], &[5_000], &[10]] {
        let batch = consumer
            .next_batch(limit, Duration::ZERO)
            .await
            .expect("batch");
        assert_eq!(
            sizes(batch.records),
            expected,
            "a record over the limit goes alone, but goes"
        );
    }
}

/// The processor reads the next batch while the store writes this one: committing this one's
/// checkpoint must not commit the batch delivered after it.
#[tokio::test]
async fn a_commit_covers_its_batch_not_the_ones_delivered_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let wal = open(dir.path()).await;
        wal.append((0..6).map(record).collect())
            .await
            .expect("append");
        let mut consumer = wal.consumer().await;
        let first = consumer
            .next_batch(at_most(2), Duration::ZERO)
            .await
            .expect("batch");
        let second = consumer
            .next_batch(at_most(2), Duration::ZERO)
            .await
            .expect("batch");
        assert_eq!(second.records, (2..4).map(record).collect::<Vec<_>>());
        consumer.commit(&first.checkpoint).await.expect("commit");
        assert_eq!(wal.backlog().records, 4, "only the first batch is done");
        // An older checkpoint again changes nothing.
        consumer.commit(&first.checkpoint).await.expect("commit");
        assert_eq!(wal.backlog().records, 4);
    }
    let wal = open(dir.path()).await;
    let mut consumer = wal.consumer().await;
    assert_eq!(
        drain(&mut consumer).await.records,
        (2..6).map(record).collect::<Vec<_>>(),
        "the second batch was delivered but not committed: it comes back"
    );
}

/// Appends that arrive together share a sync (group commit): each is still acknowledged with
/// its own records kept together, in one order that survives a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_are_committed_together_and_each_stays_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path()).await;
    let appends: Vec<_> = (0..100)
        .map(|request| {
            let wal = wal.clone();
            tokio::spawn(async move {
                wal.append((request * 5..request * 5 + 5).map(record).collect())
                    .await
            })
        })
        .collect();
    for append in appends {
        append.await.expect("task").expect("acknowledged");
    }
    assert_eq!(wal.backlog().records, 500);
    let check = |records: Vec<QueuedRecord>| {
        assert_eq!(records.len(), 500);
        let mut seen = std::collections::HashSet::new();
        for request in records.chunks(5) {
            let first = request[0].received_at_ms - 1_000;
            assert_eq!(first % 5, 0, "an append starts a run: {first}");
            let expected: Vec<_> = (first..first + 5).map(|n| record(n as usize)).collect();
            assert_eq!(
                request, expected,
                "an append's records stay together, in order"
            );
            assert!(seen.insert(first), "each append once");
        }
    };
    let mut consumer = wal.consumer().await;
    let first_read = drain(&mut consumer).await.records;
    check(first_read.clone());
    drop((consumer, wal));
    let wal = open(dir.path()).await;
    let mut consumer = wal.consumer().await;
    let reread = drain(&mut consumer).await.records;
    assert_eq!(reread, first_read, "the same order after a reopen");
}
