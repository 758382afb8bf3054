//! `[queue.wal]`: the embedded queue's bounds.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    /// High-water mark: past this many bytes on disk waiting for the processor, ingest is
    /// refused (503). Reserved before each append, so concurrent requests overshoot it by at
    /// most one request.
    pub max_backlog_bytes: usize,
    /// Dead letters kept; the oldest go first.
    pub max_dead_letters: u64,
    /// Size at which a log starts a new segment file; space is freed a whole segment at a time.
    pub segment_bytes: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            max_backlog_bytes: 1024 * 1024 * 1024,
            max_dead_letters: 10_000,
            segment_bytes: 32 * 1024 * 1024,
        }
    }
}
