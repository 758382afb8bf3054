//! The embedded queue: a write-ahead log on disk with two logs, `events` (ingest → processor)
//! and `dead-letters`, each in segment files of its own (see [`log`] for the format and how
//! it stays whole through a full disk, a failed write or a crash).
//!
//! Why not `mrecordlog`, which Sluice used before: after a failed write (ENOSPC in the middle
//! of a record) it kept acknowledging appends, but its writer's offset no longer matched the
//! file, so on reopen every record appended after the failure was skipped as corrupted (on a
//! filling 60 MB volume, 423 of 1,114 acknowledged records gone); it never fsyncs, and it keeps
//! every unconsumed record in memory. Here an append is acknowledged only once it is written
//! and fdatasynced, a failed append leaves the log as it was, and the backlog stays on disk: the
//! processor reads it back through the page cache, so the high-water mark bounds disk, not RAM.
//!
//! The consumer's position is a [`checkpoint`]; segments whose records are all committed are
//! deleted, which is what frees disk space as the processor catches up.

pub mod backup;
mod checkpoint;
mod envelope;
mod frame;
mod log;

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use self::checkpoint::Checkpoint;
use self::frame::Parts;
use self::log::{AppendError, Cursor, FrameSpan, Log, ReadFrame, WrittenGroup};
pub use sluice_config::WalConfig;
use sluice_event::{QueuedRecord, Source};
use sluice_queue::{
    Backlog, Batch, BatchLimit, Checkpoint as QueueCheckpoint, DeadLetter, DeadLetterFilter,
    DeadLetterPage, DeadLetterQueue, NewestMatching, Queue, QueueConsumer, QueueError,
};
use sluice_storage::{available_bytes, create_dir_all_durably, is_out_of_space};

const EVENTS: &str = "events";
const DEAD_LETTERS: &str = "dead-letters";
const CHECKPOINT: &str = "checkpoint";
/// The WAL is one partition.
const PARTITION: i32 = 0;

/// Handle to the WAL; cheap to clone, shared by ingest, the processor's consumer and the api.
#[derive(Clone)]
pub struct WalQueue {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    config: WalConfig,
    events: Mutex<Log>,
    /// The last event position the processor committed.
    committed: Mutex<Checkpoint>,
    dead_letters: Mutex<DeadLetterLog>,
    /// Appends waiting for the next group commit.
    commits: Mutex<CommitQueue>,
    appended: Notify,
    /// Bytes of events on disk not yet committed, plus those of appends under way.
    held_bytes: AtomicU64,
    next_position: AtomicU64,
    /// One past the last committed position.
    committed_next: AtomicU64,
}

/// Group commit: appends that arrive while a sync is under way wait here, and the thread that
/// did that sync writes them all as the next group and syncs once for all of them, as
/// databases' group commit does. Concurrent requests then cost one `fdatasync` per group, not
/// one each, and nobody waits for the disk while holding the log (readers and commits need it).
#[derive(Default)]
struct CommitQueue {
    waiting: Vec<WaitingAppend>,
    /// A thread is writing groups: new appends join the queue instead of starting another.
    writing: bool,
}

/// One `append` call waiting for its group.
struct WaitingAppend {
    /// The envelope headers of `records`, back to back, and where each ends.
    heads: Vec<u8>,
    ends: Vec<usize>,
    records: Vec<QueuedRecord>,
    /// What it reserved under the high-water mark, given back if it fails.
    bytes: u64,
    done: tokio::sync::oneshot::Sender<Result<FrameSpan, AppendError>>,
}

impl WaitingAppend {
    fn parts(&self) -> Vec<Parts<'_>> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .zip(&self.records)
            .map(|((start, &end), record)| [&self.heads[start..end], record.payload.as_slice()])
            .collect()
    }
}

struct DeadLetterLog {
    log: Log,
    /// The last dead letter dropped by retention.
    dropped: Checkpoint,
    first_kept: u64,
}

/// Locks a mutex that a panicked holder may have poisoned: every state behind these locks is
/// consistent between statements that can panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WalQueue {
    /// Opens (or creates) the WAL in `dir`, recovering what an earlier run left behind.
    pub async fn open(dir: &Path, config: WalConfig) -> Result<WalQueue, QueueError> {
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(dir, config))
            .await
            .map_err(|e| QueueError::Unavailable(format!("opening the WAL: {e}")))?
    }

    fn open_blocking(dir: PathBuf, config: WalConfig) -> Result<WalQueue, QueueError> {
        let io_err = |source| QueueError::Io {
            path: dir.display().to_string(),
            source,
        };
        refuse_older_format(&dir)?;
        let events_dir = dir.join(EVENTS);
        create_dir_all_durably(&events_dir).map_err(io_err)?;
        let committed = Checkpoint::open(&events_dir.join(CHECKPOINT)).map_err(io_err)?;
        let floor = committed.value().map_or(0, |c| c + 1);
        let (events, frames) =
            Log::open(&events_dir, config.segment_bytes, floor).map_err(io_err)?;
        let backlog_bytes = frames
            .iter()
            .filter(|f| f.last >= floor)
            .map(|f| f.bytes)
            .sum();

        let dead_dir = dir.join(DEAD_LETTERS);
        create_dir_all_durably(&dead_dir).map_err(io_err)?;
        let dropped = Checkpoint::open(&dead_dir.join(CHECKPOINT)).map_err(io_err)?;
        let dead_floor = dropped.value().map_or(0, |d| d + 1);
        let (dead_log, _) =
            Log::open(&dead_dir, config.segment_bytes, dead_floor).map_err(io_err)?;
        let first_kept = dead_floor.max(
            dead_log
                .next_position()
                .saturating_sub(config.max_dead_letters),
        );
        let next = events.next_position();
        // Where reading starts: the checkpoint may be older than the oldest segment left.
        let first_unconsumed = frames
            .iter()
            .find(|f| f.last >= floor)
            .map_or(next, |f| f.first.max(floor));
        Ok(WalQueue {
            inner: Arc::new(Inner {
                dir,
                config,
                events: Mutex::new(events),
                committed: Mutex::new(committed),
                dead_letters: Mutex::new(DeadLetterLog {
                    log: dead_log,
                    dropped,
                    first_kept,
                }),
                commits: Mutex::new(CommitQueue::default()),
                appended: Notify::new(),
                held_bytes: AtomicU64::new(backlog_bytes),
                next_position: AtomicU64::new(next),
                committed_next: AtomicU64::new(first_unconsumed),
            }),
        })
    }

    /// The processor's reader. One per process: two would each see every record.
    pub async fn consumer(&self) -> WalConsumer {
        let start = self.inner.committed_next.load(Ordering::SeqCst);
        WalConsumer {
            queue: self.clone(),
            cursor: Some(Cursor::at(start)),
            pending: VecDeque::new(),
            pending_bytes: 0,
            delivered: VecDeque::new(),
            delivered_through: None,
        }
    }

    /// Takes room for `bytes` under the high-water mark, or says the queue is full.
    fn reserve(&self, bytes: u64) -> Result<(), QueueError> {
        let limit = self.inner.config.max_backlog_bytes as u64;
        self.inner
            .held_bytes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                (held < limit).then_some(held + bytes)
            })
            .map(drop)
            .map_err(|held| QueueError::Full {
                backlog_bytes: usize::try_from(held).unwrap_or(usize::MAX),
                limit_bytes: self.inner.config.max_backlog_bytes,
            })
    }

    fn append_error(&self, dir: &Path, error: AppendError) -> QueueError {
        match error {
            AppendError::Io(source) if is_out_of_space(&source) => QueueError::DiskFull {
                path: dir.display().to_string(),
                free_bytes: available_bytes(dir).unwrap_or(0),
                source,
            },
            AppendError::Io(source) => QueueError::Io {
                path: dir.display().to_string(),
                source,
            },
            other => QueueError::Io {
                path: dir.display().to_string(),
                source: io::Error::other(other.to_string()),
            },
        }
    }

    /// Disk bytes of each log, for operators and tests.
    pub fn disk_bytes(&self) -> (u64, u64) {
        let events = lock(&self.inner.events).disk_bytes();
        let dead = lock(&self.inner.dead_letters).log.disk_bytes();
        (events, dead)
    }
}

/// A queue directory in the layout of Sluice before 0.1's own WAL (mrecordlog files at its
/// top) is refused with what to do, instead of being read as empty.
fn refuse_older_format(dir: &Path) -> Result<(), QueueError> {
    if !dir.exists() {
        return Ok(());
    }
    let older = std::fs::read_dir(dir)
        .map_err(|source| QueueError::Io {
            path: dir.display().to_string(),
            source,
        })?
        .filter_map(Result::ok)
        .any(|entry| entry.file_name().to_string_lossy().starts_with("wal-"));
    if older {
        return Err(QueueError::Format {
            path: dir.display().to_string(),
            detail: "it holds an mrecordlog queue written by an earlier Sluice. Let that version \
                     drain it (stop sending, wait for /ready to show 0 queued records), then \
                     move the directory away and start this version"
                .into(),
        });
    }
    Ok(())
}

#[async_trait]
impl Queue for WalQueue {
    async fn append(&self, records: Vec<QueuedRecord>) -> Result<(), QueueError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut heads = Vec::with_capacity(records.len() * 48);
        let mut ends = Vec::with_capacity(records.len());
        for record in &records {
            envelope::encode_header(record, &mut heads);
            ends.push(heads.len());
        }
        let bytes = frame::HEADER_LEN as u64
            + records
                .iter()
                .map(|r| r.payload.len() as u64 + 4)
                .sum::<u64>()
            + heads.len() as u64;
        if bytes - frame::HEADER_LEN as u64 > u64::from(u32::MAX) {
            return Err(
                self.append_error(&self.inner.dir.join(EVENTS), AppendError::TooLarge(bytes))
            );
        }
        self.reserve(bytes)?;
        let (done, span) = tokio::sync::oneshot::channel();
        let lead = {
            let mut commits = lock(&self.inner.commits);
            commits.waiting.push(WaitingAppend {
                heads,
                ends,
                records,
                bytes,
                done,
            });
            !std::mem::replace(&mut commits.writing, true)
        };
        if lead {
            let inner = Arc::clone(&self.inner);
            tokio::task::spawn_blocking(move || write_groups(&inner));
        }
        match span.await {
            Ok(Ok(span)) => {
                debug_assert_eq!(span.bytes, bytes);
                Ok(())
            }
            Ok(Err(e)) => Err(self.append_error(&self.inner.dir.join(EVENTS), e)),
            Err(_) => Err(QueueError::Unavailable(
                "the WAL append thread failed".into(),
            )),
        }
    }

    fn backlog(&self) -> Backlog {
        let next = self.inner.next_position.load(Ordering::SeqCst);
        let committed_next = self.inner.committed_next.load(Ordering::SeqCst);
        Backlog {
            records: next.saturating_sub(committed_next),
            bytes: usize::try_from(self.inner.held_bytes.load(Ordering::SeqCst))
                .unwrap_or(usize::MAX),
            limit_bytes: self.inner.config.max_backlog_bytes,
        }
    }
}

/// Writes groups of waiting appends until none is left; runs on a blocking thread, one at a time.
fn write_groups(inner: &Inner) {
    // Should a group panic, the appends still waiting must not wait for ever.
    let guard = LeaderGuard(inner);
    loop {
        let group = {
            let mut commits = lock(&inner.commits);
            if commits.waiting.is_empty() {
                commits.writing = false;
                break;
            }
            std::mem::take(&mut commits.waiting)
        };
        write_group(inner, group);
    }
    std::mem::forget(guard);
}

/// Ends a panicked leader's turn: the appends left waiting fail, and the next one leads.
struct LeaderGuard<'a>(&'a Inner);

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        let mut commits = lock(&self.0.commits);
        commits.writing = false;
        for waiting in commits.waiting.drain(..) {
            self.0.held_bytes.fetch_sub(waiting.bytes, Ordering::SeqCst);
        }
    }
}

/// Writes one group and syncs it once; every append of it learns the outcome.
fn write_group(inner: &Inner, group: Vec<WaitingAppend>) {
    let parts: Vec<Vec<Parts<'_>>> = group.iter().map(WaitingAppend::parts).collect();
    let appends: Vec<&[Parts<'_>]> = parts.iter().map(Vec::as_slice).collect();
    let written = lock(&inner.events).write_group(&appends);
    let synced = written.and_then(|written: WrittenGroup| {
        // The disk is waited for without holding the log.
        match written.file.sync_data() {
            Ok(()) => {
                lock(&inner.events).publish(&written);
                Ok(written.spans)
            }
            Err(e) => {
                lock(&inner.events).abandon(&written);
                Err(AppendError::Io(e))
            }
        }
    });
    drop(parts);
    match synced {
        Ok(spans) => {
            if let Some(last) = spans.last() {
                inner
                    .next_position
                    .fetch_max(last.last + 1, Ordering::SeqCst);
            }
            inner.appended.notify_waiters();
            for (waiting, span) in group.into_iter().zip(spans) {
                // An append whose caller went away is durable all the same.
                let _ = waiting.done.send(Ok(span));
            }
        }
        Err(e) => {
            for waiting in group {
                inner.held_bytes.fetch_sub(waiting.bytes, Ordering::SeqCst);
                let _ = waiting.done.send(Err(e.duplicate()));
            }
        }
    }
}

/// Reads `events` in order; see [`QueueConsumer`].
pub struct WalConsumer {
    queue: WalQueue,
    /// Handed to a blocking thread for each read, so it is absent only while one runs.
    cursor: Option<Cursor>,
    /// Records read but not yet delivered (a frame holds more than a batch takes).
    pending: VecDeque<(u64, QueuedRecord)>,
    /// Payload bytes of `pending`.
    pending_bytes: usize,
    /// Frames read whose records are not all committed yet, to free their bytes on commit.
    delivered: VecDeque<FrameSpan>,
    /// The position of the last record delivered.
    delivered_through: Option<u64>,
}

#[async_trait]
impl QueueConsumer for WalConsumer {
    async fn next_batch(&mut self, limit: BatchLimit, wait: Duration) -> Result<Batch, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        let inner = Arc::clone(&self.queue.inner);
        loop {
            let appended = inner.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            self.fill(limit).await?;
            if !self.pending.is_empty() || tokio::time::Instant::now() >= deadline {
                let mut batch = Batch::default();
                let mut bytes = 0;
                while let Some((_, next)) = self.pending.front()
                    && limit.admits(batch.len(), bytes, next.payload.len())
                {
                    let Some((position, record)) = self.pending.pop_front() else {
                        break;
                    };
                    self.pending_bytes -= record.payload.len();
                    bytes += record.payload.len();
                    self.delivered_through = Some(position);
                    batch.checkpoint.advance(PARTITION, position + 1);
                    batch.records.push(record);
                }
                return Ok(batch);
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Ok(Batch::default());
            }
        }
    }

    async fn commit(&mut self, checkpoint: &QueueCheckpoint) -> Result<(), QueueError> {
        // Never past what was delivered, and only forward.
        let Some(through) = checkpoint
            .next_of(PARTITION)
            .and_then(|next| next.checked_sub(1))
            .zip(self.delivered_through)
            .map(|(asked, delivered)| asked.min(delivered))
            .filter(|&through| through >= self.queue.inner.committed_next.load(Ordering::SeqCst))
        else {
            return Ok(());
        };
        let inner = Arc::clone(&self.queue.inner);
        let released = tokio::task::spawn_blocking(move || {
            lock(&inner.committed).write(through)?;
            let files = lock(&inner.events).release_through(through);
            for file in files {
                // A file that cannot be deleted is only space not yet given back.
                if let Err(e) = std::fs::remove_file(&file) {
                    tracing::warn!(file = %file.display(), error = %e, "cannot delete a consumed WAL segment");
                }
            }
            Ok::<_, io::Error>(())
        })
        .await
        .map_err(|e| QueueError::Unavailable(format!("the WAL commit thread failed: {e}")))?;
        released.map_err(|source| QueueError::Io {
            path: self.queue.inner.dir.join(EVENTS).display().to_string(),
            source,
        })?;
        let mut freed = 0;
        while let Some(frame) = self.delivered.front()
            && frame.last <= through
        {
            freed += frame.bytes;
            self.delivered.pop_front();
        }
        let inner = &self.queue.inner;
        inner.held_bytes.fetch_sub(freed, Ordering::SeqCst);
        inner
            .committed_next
            .fetch_max(through + 1, Ordering::SeqCst);
        Ok(())
    }

    fn backlog(&self) -> Backlog {
        self.queue.backlog()
    }

    /// Only ingest appends events, after validating them; a record that is not ingest's
    /// envelope is delivered as [`Source::Queue`].
    fn validated_at_ingest(&self) -> bool {
        true
    }
}

impl WalConsumer {
    /// Reads durable frames until a batch within `limit` is pending or nothing more is there.
    async fn fill(&mut self, limit: BatchLimit) -> Result<(), QueueError> {
        if self.pending.len() >= limit.records || self.pending_bytes >= limit.bytes {
            return Ok(());
        }
        let Some(mut cursor) = self.cursor.take() else {
            return Err(QueueError::Unavailable("the WAL reader was lost".into()));
        };
        let inner = Arc::clone(&self.queue.inner);
        let (records_needed, bytes_needed) = (
            limit.records - self.pending.len(),
            limit.bytes - self.pending_bytes,
        );
        let read = tokio::task::spawn_blocking(move || {
            let mut frames: Vec<ReadFrame> = Vec::new();
            let (mut records, mut bytes) = (0, 0);
            let result = loop {
                if records >= records_needed || bytes >= bytes_needed {
                    break Ok(());
                }
                match cursor.next_frame(|position| lock(&inner.events).segment_for(position)) {
                    Ok(Some(frame)) => {
                        records += frame.records.len();
                        bytes += frame.span.bytes as usize;
                        frames.push(frame);
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            (cursor, frames, result)
        })
        .await
        .map_err(|e| QueueError::Unavailable(format!("the WAL reader thread failed: {e}")))?;
        let (cursor, frames, result) = read;
        self.cursor = Some(cursor);
        for frame in frames {
            self.delivered.push_back(frame.span);
            for (position, bytes) in frame.records {
                let record = queued_record(bytes);
                self.pending_bytes += record.payload.len();
                self.pending.push_back((position, record));
            }
        }
        result.map_err(|e| QueueError::Corrupted {
            path: self.queue.inner.dir.join(EVENTS).display().to_string(),
            detail: e.to_string(),
        })
    }
}

/// A record as read back. One that is not a Sluice envelope (written by another tool, or
/// damaged) still reaches the processor, which validates it and dead-letters it if need be.
fn queued_record(bytes: Vec<u8>) -> QueuedRecord {
    envelope::decode_record(bytes).unwrap_or_else(|(_, payload)| QueuedRecord {
        id: None,
        received_at_ms: sluice_event::now_ms(),
        source: Source::Queue,
        partition_key: None,
        payload,
    })
}

/// Dead letters: a JSON header (length-prefixed) followed by the original bytes.
fn encode_dead_letter_header(letter: &DeadLetter) -> Vec<u8> {
    // A struct of strings and numbers always serialises.
    let header = serde_json::to_vec(letter).unwrap_or_default();
    let mut bytes = Vec::with_capacity(4 + header.len());
    bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&header);
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
        let inner = Arc::clone(&self.inner);
        let pushed = tokio::task::spawn_blocking(move || {
            let heads: Vec<Vec<u8>> = letters.iter().map(encode_dead_letter_header).collect();
            let parts: Vec<Parts<'_>> = heads
                .iter()
                .zip(&letters)
                .map(|(head, letter)| [head.as_slice(), letter.payload.as_slice()])
                .collect();
            let mut dead = lock(&inner.dead_letters);
            dead.log.append(&parts)?;
            let max = inner.config.max_dead_letters;
            let next = dead.log.next_position();
            if next - dead.first_kept > max {
                let first_kept = next - max;
                dead.dropped
                    .write(first_kept - 1)
                    .map_err(AppendError::Io)?;
                dead.first_kept = first_kept;
                let files = dead.log.release_through(first_kept - 1);
                drop(dead);
                for file in files {
                    let _ = std::fs::remove_file(file);
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| QueueError::Unavailable(format!("the dead-letter thread failed: {e}")))?;
        pushed.map_err(|e| self.append_error(&self.inner.dir.join(DEAD_LETTERS), e))
    }

    /// Reads every kept letter (`queue.wal.max_dead_letters` bound them), holding at most
    /// `limit` of them.
    async fn newest_matching(
        &self,
        filter: &DeadLetterFilter,
        limit: usize,
    ) -> Result<DeadLetterPage, QueueError> {
        let inner = Arc::clone(&self.inner);
        let filter = filter.clone();
        let read = tokio::task::spawn_blocking(move || {
            let dead = lock(&inner.dead_letters);
            let mut newest = NewestMatching::new(&filter, limit);
            let mut cursor = Cursor::at(dead.first_kept);
            while let Some(frame) = cursor.next_frame(|position| dead.log.segment_for(position))? {
                for (position, bytes) in &frame.records {
                    if let Some(mut letter) = decode_dead_letter(bytes) {
                        letter.letter_id = format!("w{position}");
                        newest.offer(letter, *position);
                    }
                }
            }
            Ok::<_, io::Error>(newest.into_page())
        })
        .await
        .map_err(|e| QueueError::Unavailable(format!("the dead-letter thread failed: {e}")))?;
        read.map_err(|e| QueueError::Corrupted {
            path: self.inner.dir.join(DEAD_LETTERS).display().to_string(),
            detail: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
