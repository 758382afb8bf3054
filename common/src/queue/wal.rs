//! The embedded queue: a write-ahead log on disk (`mrecordlog`) holding two queues, `events`
//! (ingest → processor) and `dead-letters`.
//!
//! `mrecordlog` flushes its buffer to the OS on every append but never calls `fsync`; a 202 must
//! survive a power cut, not only a killed process, so after each append this adapter fsyncs every
//! WAL file written since the last sync (and the directory when a file was created). mrecordlog
//! keeps unconsumed records in memory as well, which is why the backlog is bounded in bytes.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use mrecordlog::{MultiRecordLog, SyncPolicy};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify};

use super::{
    Backlog, DeadLetter, DeadLetterPage, DeadLetterQueue, Queue, QueueConsumer, QueueError,
    decode_record, encode_record,
};
use crate::event::{QueuedRecord, Source};

const EVENTS: &str = "events";
const DEAD_LETTERS: &str = "dead-letters";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WalConfig {
    /// High-water mark: past this many bytes waiting for the processor, ingest is refused.
    pub max_backlog_bytes: usize,
    /// Dead letters kept; the oldest go first.
    pub max_dead_letters: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            max_backlog_bytes: 32 * 1024 * 1024,
            max_dead_letters: 10_000,
        }
    }
}

/// Handle to the WAL; cheap to clone, shared by ingest, the processor's consumer and the api.
#[derive(Clone)]
pub struct WalQueue {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    config: WalConfig,
    state: Mutex<LogState>,
    appended: Notify,
    backlog_bytes: AtomicUsize,
    backlog_records: AtomicU64,
}

struct LogState {
    log: MultiRecordLog,
    /// Newest WAL file already fsynced; files sort by name in write order.
    synced_file: Option<String>,
    events: Positions,
    dead_letters: Positions,
}

/// `first..next` are the positions a queue currently holds.
#[derive(Debug, Clone, Copy, Default)]
struct Positions {
    first: u64,
    next: u64,
}

impl Positions {
    fn read(log: &MultiRecordLog, queue: &str) -> Positions {
        let mut range = log.range(queue, ..).into_iter().flatten().map(|(p, _)| p);
        match range.next() {
            None => Positions::default(),
            Some(first) => Positions {
                first,
                next: range.last().unwrap_or(first) + 1,
            },
        }
    }

    fn len(&self) -> u64 {
        self.next.saturating_sub(self.first)
    }
}

impl WalQueue {
    /// Opens (or creates) the WAL in `dir`, replaying what an earlier run left behind.
    pub async fn open(dir: &Path, config: WalConfig) -> Result<WalQueue, QueueError> {
        let io_err = |source| QueueError::Io {
            path: dir.display().to_string(),
            source,
        };
        tokio::fs::create_dir_all(dir).await.map_err(io_err)?;
        let mut log = MultiRecordLog::open_with_prefs(dir, SyncPolicy::OnAppend)
            .await
            .map_err(|e| QueueError::Corrupted {
                path: dir.display().to_string(),
                detail: e.to_string(),
            })?;
        for queue in [EVENTS, DEAD_LETTERS] {
            if !log.queue_exists(queue) {
                log.create_queue(queue)
                    .await
                    .map_err(|e| QueueError::Corrupted {
                        path: dir.display().to_string(),
                        detail: e.to_string(),
                    })?;
            }
        }
        let events = Positions::read(&log, EVENTS);
        let dead_letters = Positions::read(&log, DEAD_LETTERS);
        let inner = Inner {
            dir: dir.to_owned(),
            config,
            backlog_bytes: AtomicUsize::new(log.in_memory_size()),
            backlog_records: AtomicU64::new(events.len()),
            state: Mutex::new(LogState {
                log,
                synced_file: None,
                events,
                dead_letters,
            }),
            appended: Notify::new(),
        };
        Ok(WalQueue {
            inner: Arc::new(inner),
        })
    }

    /// The processor's reader. One per process: two would each see every record.
    pub async fn consumer(&self) -> WalConsumer {
        let first = self.inner.state.lock().await.events.first;
        WalConsumer {
            queue: self.clone(),
            next: first,
            delivered_through: None,
        }
    }

    async fn append_to(
        &self,
        state: &mut LogState,
        queue: &'static str,
        payloads: Vec<Vec<u8>>,
    ) -> Result<(), QueueError> {
        let inner = &self.inner;
        let last = state
            .log
            .append_records(queue, None, payloads.iter().map(|p| p.as_slice()))
            .await
            .map_err(|e| self.corrupted(e))?;
        if let Some(last) = last {
            let positions = match queue {
                EVENTS => &mut state.events,
                _ => &mut state.dead_letters,
            };
            if positions.len() == 0 {
                positions.first = last + 1 - payloads.len() as u64;
            }
            positions.next = last + 1;
        }
        let dir = inner.dir.clone();
        let synced = state.synced_file.take();
        state.synced_file = tokio::task::spawn_blocking(move || fsync_new_files(&dir, synced))
            .await
            .map_err(|e| self.io(io::Error::other(e)))?
            .map_err(|e| self.io(e))?;
        self.refresh_gauges(state);
        Ok(())
    }

    fn refresh_gauges(&self, state: &LogState) {
        self.inner
            .backlog_bytes
            .store(state.log.in_memory_size(), Ordering::Relaxed);
        self.inner
            .backlog_records
            .store(state.events.len(), Ordering::Relaxed);
    }

    fn io(&self, source: io::Error) -> QueueError {
        QueueError::Io {
            path: self.inner.dir.display().to_string(),
            source,
        }
    }

    fn corrupted(&self, e: impl std::fmt::Debug) -> QueueError {
        QueueError::Corrupted {
            path: self.inner.dir.display().to_string(),
            detail: format!("{e:?}"),
        }
    }
}

/// Fsyncs every WAL file at or after `synced` (the one it may have grown, and any created since),
/// and the directory when a file appeared, so new files survive a power cut too.
fn fsync_new_files(dir: &Path, synced: Option<String>) -> io::Result<Option<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("wal-"))
        .collect();
    names.sort_unstable();
    let start = synced
        .as_ref()
        .map_or(0, |s| names.partition_point(|n| n < s));
    for name in &names[start..] {
        std::fs::File::open(dir.join(name))?.sync_data()?;
    }
    let newest = names.last().cloned();
    if newest != synced {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(newest)
}

#[async_trait]
impl Queue for WalQueue {
    async fn append(&self, records: Vec<QueuedRecord>) -> Result<(), QueueError> {
        if records.is_empty() {
            return Ok(());
        }
        let backlog = self.backlog();
        if backlog.is_full() {
            return Err(QueueError::Full {
                backlog_bytes: backlog.bytes,
                limit_bytes: backlog.limit_bytes,
            });
        }
        let payloads = records
            .iter()
            .map(|record| {
                let mut bytes = Vec::new();
                encode_record(record, &mut bytes);
                bytes
            })
            .collect();
        let mut state = self.inner.state.lock().await;
        self.append_to(&mut state, EVENTS, payloads).await?;
        drop(state);
        self.inner.appended.notify_waiters();
        Ok(())
    }

    fn backlog(&self) -> Backlog {
        Backlog {
            records: self.inner.backlog_records.load(Ordering::Relaxed),
            bytes: self.inner.backlog_bytes.load(Ordering::Relaxed),
            limit_bytes: self.inner.config.max_backlog_bytes,
        }
    }
}

/// Reads `events` in order; see [`QueueConsumer`].
pub struct WalConsumer {
    queue: WalQueue,
    next: u64,
    delivered_through: Option<u64>,
}

#[async_trait]
impl QueueConsumer for WalConsumer {
    async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<QueuedRecord>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        let inner = Arc::clone(&self.queue.inner);
        loop {
            let appended = inner.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let batch = self.read(max).await;
            if !batch.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(batch);
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn commit(&mut self) -> Result<(), QueueError> {
        let Some(through) = self.delivered_through.take() else {
            return Ok(());
        };
        let queue = &self.queue;
        let mut state = queue.inner.state.lock().await;
        state
            .log
            .truncate(EVENTS, through)
            .await
            .map_err(|e| queue.corrupted(e))?;
        state.events.first = state.events.first.max(through + 1);
        queue.refresh_gauges(&state);
        Ok(())
    }

    fn backlog(&self) -> Backlog {
        self.queue.backlog()
    }
}

impl WalConsumer {
    async fn read(&mut self, max: usize) -> Vec<QueuedRecord> {
        let state = self.queue.inner.state.lock().await;
        let from = self.next;
        let Ok(range) = state.log.range(EVENTS, from..) else {
            return Vec::new();
        };
        let batch: Vec<QueuedRecord> = range
            .take(max)
            .map(|(position, bytes)| {
                self.next = position + 1;
                self.delivered_through = Some(position);
                // A record that is not a Sluice envelope (written by another tool, or damaged)
                // still reaches the processor, which validates it and dead-letters it if need be.
                decode_record(&bytes).unwrap_or_else(|_| QueuedRecord {
                    id: None,
                    received_at_ms: crate::now_ms(),
                    source: Source::Queue,
                    partition_key: None,
                    payload: bytes.into_owned(),
                })
            })
            .collect();
        batch
    }
}

/// Dead letters: a JSON header (length-prefixed) followed by the original bytes.
fn encode_dead_letter(letter: &DeadLetter) -> Vec<u8> {
    let header = serde_json::to_vec(letter).unwrap_or_default();
    let mut bytes = Vec::with_capacity(4 + header.len() + letter.payload.len());
    bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&letter.payload);
    bytes
}

fn decode_dead_letter(bytes: &[u8]) -> Option<DeadLetter> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let header = bytes.get(4..4 + len)?;
    let mut letter: DeadLetter = serde_json::from_slice(header).ok()?;
    letter.payload = bytes[4 + len..].to_vec();
    Some(letter)
}

#[async_trait]
impl DeadLetterQueue for WalQueue {
    async fn push(&self, letters: Vec<DeadLetter>) -> Result<(), QueueError> {
        if letters.is_empty() {
            return Ok(());
        }
        let payloads = letters.iter().map(encode_dead_letter).collect();
        let mut state = self.inner.state.lock().await;
        self.append_to(&mut state, DEAD_LETTERS, payloads).await?;
        let kept = state.dead_letters.len();
        let max = self.inner.config.max_dead_letters;
        if kept > max {
            let through = state.dead_letters.first + (kept - max) - 1;
            state
                .log
                .truncate(DEAD_LETTERS, through)
                .await
                .map_err(|e| self.corrupted(e))?;
            state.dead_letters.first = through + 1;
        }
        self.refresh_gauges(&state);
        Ok(())
    }

    async fn newest(&self, limit: usize) -> Result<DeadLetterPage, QueueError> {
        let state = self.inner.state.lock().await;
        let positions = state.dead_letters;
        let from = positions
            .next
            .saturating_sub(limit as u64)
            .max(positions.first);
        let mut letters: Vec<DeadLetter> = state
            .log
            .range(DEAD_LETTERS, from..)
            .map_err(|e| self.corrupted(e))?
            .filter_map(|(_, bytes)| decode_dead_letter(&bytes))
            .collect();
        letters.reverse();
        Ok(DeadLetterPage {
            total: positions.len(),
            letters,
        })
    }
}

#[cfg(test)]
mod tests;
