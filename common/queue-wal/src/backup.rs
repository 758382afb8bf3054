//! A copy of the queue taken while the queue is open in another process (`sluice backup`
//! beside a running `sluice serve`), by its files alone.
//!
//! What makes it whole: each log's checkpoint is copied first, then its segments. Records
//! before the checkpoint are in the index, which the backup copies after the queue; a sealed
//! segment that is gone by the time it is linked was released because the checkpoint moved past
//! it, so its records are in that index too. Sealed segments are never written again and are
//! hard-linked; the active one is copied as far as it is written (a frame cut short at its end
//! is dropped when the copy is opened, as after a crash: it was not acknowledged).

use std::io;
use std::path::Path;

use sluice_storage::link_or_copy;

use crate::{CHECKPOINT, DEAD_LETTERS, EVENTS};

/// What a backup of the queue took.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WalBackup {
    pub segments: usize,
    pub bytes: u64,
}

/// Copies the queue in `dir` to `out` (which must not hold a queue).
pub fn back_up(dir: &Path, out: &Path) -> io::Result<WalBackup> {
    let mut taken = WalBackup::default();
    for log in [EVENTS, DEAD_LETTERS] {
        let (from, to) = (dir.join(log), out.join(log));
        std::fs::create_dir_all(&to)?;
        match std::fs::copy(from.join(CHECKPOINT), to.join(CHECKPOINT)) {
            Ok(bytes) => taken.bytes += bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut segments: Vec<_> = std::fs::read_dir(&from)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|ext| ext == crate::log::EXTENSION)
            })
            .collect();
        // Named by their first position, zero-padded: the last is the active one.
        segments.sort();
        let active = segments.pop();
        for segment in segments {
            let Some(name) = segment.file_name() else {
                continue;
            };
            match link_or_copy(&segment, &to.join(name)) {
                Ok(()) => {
                    taken.segments += 1;
                    taken.bytes += std::fs::metadata(to.join(name))?.len();
                }
                // Released since it was listed: committed, so in the index.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(active) = active
            && let Some(name) = active.file_name()
        {
            match std::fs::copy(&active, to.join(name)) {
                Ok(bytes) => {
                    taken.segments += 1;
                    taken.bytes += bytes;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(taken)
}
