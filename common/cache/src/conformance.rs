//! The behaviour every cache adapter must have, run against each of them.

use std::time::Duration;

use super::Cache;

const MINUTE: Duration = Duration::from_secs(60);
const BRIEF: Duration = Duration::from_millis(100);

/// Runs the suite with every key under `prefix`, so runs against a shared server do not meet.
pub async fn run(cache: &dyn Cache, prefix: &str) {
    let key = |name: &str| format!("{prefix}:{name}");

    // Set, get, overwrite, delete.
    assert_eq!(cache.get(&key("absent")).await.expect("get"), None);
    cache
        .set(&key("k"), b"v1".to_vec(), MINUTE)
        .await
        .expect("set");
    assert_eq!(
        cache.get(&key("k")).await.expect("get"),
        Some(b"v1".to_vec())
    );
    cache
        .set(&key("k"), b"v2".to_vec(), MINUTE)
        .await
        .expect("overwrite");
    assert_eq!(
        cache.get(&key("k")).await.expect("get"),
        Some(b"v2".to_vec())
    );
    cache.delete(&key("k")).await.expect("delete");
    cache
        .delete(&key("k"))
        .await
        .expect("deleting nothing is fine");
    assert_eq!(cache.get(&key("k")).await.expect("get"), None);

    // Values are bytes, not text.
    let binary = vec![0u8, 255, 10, 13, 0];
    cache
        .set(&key("bin"), binary.clone(), MINUTE)
        .await
        .expect("set");
    assert_eq!(cache.get(&key("bin")).await.expect("get"), Some(binary));

    // Entries and counters expire.
    cache
        .set(&key("short"), b"v".to_vec(), BRIEF)
        .await
        .expect("set");
    assert_eq!(
        cache
            .increment(&key("short-counter"), BRIEF)
            .await
            .expect("incr"),
        1
    );
    tokio::time::sleep(BRIEF * 3).await;
    assert_eq!(cache.get(&key("short")).await.expect("get"), None);
    assert_eq!(
        cache
            .increment(&key("short-counter"), BRIEF)
            .await
            .expect("a counter starts over after expiring"),
        1
    );

    // Counters count, keep their first deadline, and read as decimal text.
    for expected in 1..=3 {
        assert_eq!(
            cache.increment(&key("c"), MINUTE).await.expect("incr"),
            expected
        );
    }
    assert_eq!(
        cache.get(&key("c")).await.expect("get"),
        Some(b"3".to_vec())
    );
    cache.delete(&key("c")).await.expect("delete");
    assert_eq!(cache.increment(&key("c"), MINUTE).await.expect("incr"), 1);
    let deadline_kept = key("deadline");
    cache.increment(&deadline_kept, BRIEF).await.expect("incr");
    cache
        .increment(&deadline_kept, MINUTE)
        .await
        .expect("a later TTL does not extend the first");
    tokio::time::sleep(BRIEF * 3).await;
    assert_eq!(cache.get(&deadline_kept).await.expect("get"), None);
}
