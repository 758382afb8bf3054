use super::*;
use crate::validate::RejectCode;

fn record(n: usize) -> QueuedRecord {
    QueuedRecord {
        id: Some(format!("id-{n}")),
        received_at_ms: 1_000 + n as i64,
        source: Source::Http,
        partition_key: None,
        payload: format!("{{\"n\":{n}}}").into_bytes(),
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
    let batch = consumer.next_batch(3, Duration::ZERO).await.expect("batch");
    assert_eq!(batch, (0..3).map(record).collect::<Vec<_>>());
    consumer.commit().await.expect("commit");
    assert_eq!(wal.backlog().records, 2);
    let rest = consumer
        .next_batch(10, Duration::ZERO)
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
        consumer.next_batch(2, Duration::ZERO).await.expect("batch");
        consumer.commit().await.expect("commit");
        // Delivered but never committed: must come back.
        consumer.next_batch(1, Duration::ZERO).await.expect("batch");
    }
    let wal = open(dir.path()).await;
    let mut consumer = wal.consumer().await;
    let batch = consumer
        .next_batch(10, Duration::ZERO)
        .await
        .expect("batch");
    assert_eq!(batch, (2..4).map(record).collect::<Vec<_>>());
    wal.append(vec![record(9)])
        .await
        .expect("append after reopen");
    let more = consumer
        .next_batch(10, Duration::ZERO)
        .await
        .expect("batch");
    assert_eq!(more, vec![record(9)]);
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
        .next_batch(10, Duration::from_secs(5))
        .await
        .expect("batch");
    assert_eq!(batch, vec![record(1)]);
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

fn letter(n: usize) -> DeadLetter {
    DeadLetter {
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
