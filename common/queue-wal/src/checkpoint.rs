//! A position kept in a small file that is overwritten in place: how far a queue was consumed
//! (the events) or dropped (the oldest dead letters).
//!
//! The file holds two slots, written in turn, each with a sequence number and a checksum, so a
//! torn write leaves the other slot to read. Its one block is allocated when the file is
//! created, so overwriting it never needs free space: a commit still works on a full disk, and
//! that is what lets the processor drain the queue and free space again.
//!
//! Slots are not fsynced: a position lost to a power cut only means records are read again,
//! and the processor's writes are idempotent (a replayed record overwrites its document).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

const SLOT_LEN: usize = 32;
const MAGIC: u32 = u32::from_le_bytes(*b"SCK1");

pub(super) struct Checkpoint {
    file: File,
    sequence: u64,
    value: Option<u64>,
}

impl Checkpoint {
    /// Opens (or creates, durably) the checkpoint at `path`.
    pub fn open(path: &Path) -> io::Result<Checkpoint> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if !existed || file.metadata()?.len() < 2 * SLOT_LEN as u64 {
            file.write_all_at(&[0u8; 2 * SLOT_LEN], 0)?;
            file.sync_all()?;
            if let Some(dir) = path.parent() {
                sluice_storage::sync_dir(dir)?;
            }
        }
        let mut slots = [0u8; 2 * SLOT_LEN];
        file.read_exact_at(&mut slots, 0)?;
        let newest = slots
            .chunks_exact(SLOT_LEN)
            .filter_map(decode_slot)
            .max_by_key(|(sequence, _)| *sequence);
        Ok(Checkpoint {
            file,
            sequence: newest.map_or(0, |(sequence, _)| sequence),
            value: newest.map(|(_, value)| value),
        })
    }

    /// The position last written, if any.
    pub fn value(&self) -> Option<u64> {
        self.value
    }

    pub fn write(&mut self, value: u64) -> io::Result<()> {
        let sequence = self.sequence + 1;
        let slot = encode_slot(sequence, value);
        let at = (sequence % 2) * SLOT_LEN as u64;
        self.file.write_all_at(&slot, at)?;
        self.sequence = sequence;
        self.value = Some(value);
        Ok(())
    }
}

fn checksum(sequence: u64, value: u64) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&sequence.to_le_bytes());
    hasher.update(&value.to_le_bytes());
    hasher.finalize()
}

fn encode_slot(sequence: u64, value: u64) -> [u8; SLOT_LEN] {
    let mut slot = [0u8; SLOT_LEN];
    slot[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    slot[4..8].copy_from_slice(&checksum(sequence, value).to_le_bytes());
    slot[8..16].copy_from_slice(&sequence.to_le_bytes());
    slot[16..24].copy_from_slice(&value.to_le_bytes());
    slot
}

fn decode_slot(slot: &[u8]) -> Option<(u64, u64)> {
    let slot: &[u8; SLOT_LEN] = slot.try_into().ok()?;
    let u32_at =
        |at: usize| u32::from_le_bytes([slot[at], slot[at + 1], slot[at + 2], slot[at + 3]]);
    let u64_at = |at: usize| u64::from(u32_at(at)) | u64::from(u32_at(at + 4)) << 32;
    let (magic, crc, sequence, value) = (u32_at(0), u32_at(4), u64_at(8), u64_at(16));
    (magic == MAGIC && crc == checksum(sequence, value) && sequence > 0)
        .then_some((sequence, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_value_survives_reopening_and_a_torn_slot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoint");
        let mut checkpoint = Checkpoint::open(&path).expect("opens");
        assert_eq!(checkpoint.value(), None);
        checkpoint.write(7).expect("write");
        checkpoint.write(9).expect("write");
        assert_eq!(Checkpoint::open(&path).expect("reopens").value(), Some(9));
        // Tear the newest slot (sequence 2 sits in slot 0): the one before is read.
        let file = OpenOptions::new().write(true).open(&path).expect("open");
        file.write_all_at(&[0xff; 8], 8).expect("tear");
        assert_eq!(Checkpoint::open(&path).expect("reopens").value(), Some(7));
    }
}
