//! An append-only log of frames in segment files, each named after the position of its first
//! record (`00000000000000000042.wal`).
//!
//! What makes it safe on a full or failing disk:
//! - an append is one frame, written and then `fdatasync`ed before it counts (appends that
//!   arrive together share one sync: [`Log::write_group`]); a failed write or sync cuts the
//!   segment back to its last good frame, so nothing after an error is written behind a broken
//!   one, and positions are only taken by appends that succeeded;
//! - if the cut itself fails, the segment is sealed and the next append starts a new one;
//! - recovery reads every frame and stops a segment at the first one that is incomplete or fails
//!   its checksum (only an append that was never acknowledged can be there), and a segment ends
//!   where the next one begins, so a frame whose sync failed cannot come back beside its retry.
//!
//! All file I/O here blocks: callers run it on blocking threads.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tracing::{error, warn};

use super::frame::{self, EncodedFrame, FrameHeader, HEADER_LEN, Parts};

pub(super) const EXTENSION: &str = "wal";

/// A frame found on disk: where it is and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameSpan {
    pub first: u64,
    pub last: u64,
    pub bytes: u64,
}

/// Frames written to the active segment but not yet synced: see [`Log::write_group`].
pub(super) struct WrittenGroup {
    segment: u64,
    /// Where the group starts and ends in the segment.
    start: u64,
    end: u64,
    /// The position after the group's last record.
    next: u64,
    /// The segment's file, for the caller to sync outside the log's lock.
    pub file: File,
    /// Each append's frame, in order.
    pub spans: Vec<FrameSpan>,
}

/// A record read back with its position.
pub(super) type Positioned = (u64, Vec<u8>);

pub(super) struct Log {
    dir: PathBuf,
    segment_bytes: u64,
    /// Every segment by its first position, with the bytes of it that are durable and valid.
    segments: BTreeMap<u64, u64>,
    active: Option<Active>,
    next: u64,
}

/// The segment appends go to.
struct Active {
    first: u64,
    file: File,
    len: u64,
    /// A failed write could not be cut back: nothing more goes into this segment.
    sealed: bool,
}

/// What a reader needs to know of the segment holding a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SegmentView {
    pub first: u64,
    pub path: PathBuf,
    pub durable_len: u64,
    /// The first position of the next segment, when there is one: this one is complete.
    pub next_first: Option<u64>,
}

/// Why an append failed; nothing of it was acknowledged.
#[derive(Debug, thiserror::Error)]
pub(super) enum AppendError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("an append of {0} bytes does not fit a frame (at most 4 GiB)")]
    TooLarge(u64),
    #[error("an append needs at least one record")]
    Empty,
}

impl AppendError {
    /// The same error for another append of a failed group (an `io::Error` is not `Clone`);
    /// the OS error code is kept, so a full disk still reads as one.
    pub fn duplicate(&self) -> AppendError {
        match self {
            AppendError::Io(e) => AppendError::Io(match e.raw_os_error() {
                Some(code) => io::Error::from_raw_os_error(code),
                None => io::Error::new(e.kind(), e.to_string()),
            }),
            AppendError::TooLarge(bytes) => AppendError::TooLarge(*bytes),
            AppendError::Empty => AppendError::Empty,
        }
    }
}

impl Log {
    /// Opens the log in `dir` (created if missing), recovering every segment. `floor` is a
    /// position the log has already reached (the consumer's checkpoint + 1): new appends never
    /// reuse a position below it, even when every segment was deleted. Returns the log and the
    /// frames it holds, in order.
    pub fn open(dir: &Path, segment_bytes: u64, floor: u64) -> io::Result<(Log, Vec<FrameSpan>)> {
        sluice_storage::create_dir_all_durably(dir)?;
        let mut firsts: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|entry| segment_first(&entry.ok()?.file_name().to_string_lossy()))
            .collect();
        firsts.sort_unstable();
        let mut segments = BTreeMap::new();
        let mut frames = Vec::new();
        let mut next = floor;
        for (index, &first) in firsts.iter().enumerate() {
            let next_first = firsts.get(index + 1).copied();
            let path = segment_path(dir, first);
            let (valid_len, found) = scan_segment(&path, first, next_first)?;
            let file_len = fs::metadata(&path)?.len();
            if valid_len < file_len {
                if next_first.is_none() {
                    // The tail of the newest segment: an append cut short by a crash.
                    OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(valid_len)?;
                } else {
                    warn!(
                        segment = %path.display(),
                        skipped_bytes = file_len - valid_len,
                        "WAL segment ends in a frame that was never acknowledged; skipped"
                    );
                }
            }
            if let Some(last) = found.last() {
                next = next.max(last.last + 1);
            }
            next = next.max(first);
            frames.extend(found);
            segments.insert(first, valid_len);
        }
        Ok((
            Log {
                dir: dir.to_owned(),
                segment_bytes: segment_bytes.max(1),
                segments,
                active: None,
                next,
            },
            frames,
        ))
    }

    /// The position the next record appended will take.
    pub fn next_position(&self) -> u64 {
        self.next
    }

    /// Appends `records` as one frame and syncs it; returns its span. On an error nothing was
    /// acknowledged and the log is as it was before.
    pub fn append(&mut self, records: &[Parts<'_>]) -> Result<FrameSpan, AppendError> {
        let written = self.write_group(&[records])?;
        match written.file.sync_data() {
            Ok(()) => {
                self.publish(&written);
                written.spans.first().copied().ok_or(AppendError::Empty)
            }
            Err(e) => {
                self.abandon(&written);
                Err(AppendError::Io(e))
            }
        }
    }

    /// Writes one frame per append of `appends`, back to back, without syncing them: they are
    /// not durable, nor visible to readers, until [`Log::publish`] after a successful
    /// `sync_data` of the returned file (which the caller runs without holding the log), or
    /// gone again after [`Log::abandon`]. One group at a time: the next is written only once
    /// this one is published or abandoned. On an error nothing of the group was kept.
    pub fn write_group(&mut self, appends: &[&[Parts<'_>]]) -> Result<WrittenGroup, AppendError> {
        if appends.iter().any(|records| records.is_empty()) {
            return Err(AppendError::Empty);
        }
        let mut next = self.next;
        let mut spans = Vec::with_capacity(appends.len());
        let mut encoded = Vec::with_capacity(appends.len());
        for records in appends {
            let bytes = frame::frame_len(records);
            encoded
                .push(EncodedFrame::new(next, records).map_err(|_| AppendError::TooLarge(bytes))?);
            let last = next + records.len() as u64 - 1;
            spans.push(FrameSpan {
                first: next,
                last,
                bytes,
            });
            next = last + 1;
        }
        let active = self.writable_segment()?;
        let start = active.len;
        let mut slices: Vec<io::IoSlice<'_>> =
            encoded.iter().flat_map(EncodedFrame::slices).collect();
        if let Err(e) = write_all_vectored(&mut active.file, &mut slices) {
            Self::cut_back(active, start);
            return Err(AppendError::Io(e));
        }
        let end = start + spans.iter().map(|span| span.bytes).sum::<u64>();
        active.len = end;
        Ok(WrittenGroup {
            segment: active.first,
            start,
            end,
            next,
            file: active.file.try_clone()?,
            spans,
        })
    }

    /// The group is durable: readers may see it and its positions are taken.
    pub fn publish(&mut self, group: &WrittenGroup) {
        self.segments.insert(group.segment, group.end);
        self.next = group.next;
    }

    /// The group's sync failed: cut it off its segment (or seal the segment if even that
    /// fails), so that nothing is ever written after a frame that may be torn.
    pub fn abandon(&mut self, group: &WrittenGroup) {
        if let Some(active) = self.active.as_mut()
            && active.first == group.segment
        {
            Self::cut_back(active, group.start);
        }
    }

    fn cut_back(active: &mut Active, start: u64) {
        let cut = active
            .file
            .set_len(start)
            .and_then(|()| active.file.seek(SeekFrom::Start(start)).map(drop));
        match cut {
            Ok(()) => active.len = start,
            Err(cut) => {
                error!(error = %cut, "cannot cut a failed WAL append off its segment; sealing it");
                active.sealed = true;
            }
        }
    }

    /// The segment to append to, starting a new one when there is none, it is full or sealed.
    fn writable_segment(&mut self) -> io::Result<&mut Active> {
        let roll = self
            .active
            .as_ref()
            .is_none_or(|a| a.sealed || a.len >= self.segment_bytes);
        if roll {
            if let Some(old) = self.active.take()
                && old.len == 0
            {
                // Nothing was ever written to it; the new segment takes its name.
                self.segments.remove(&old.first);
                drop(old.file);
                fs::remove_file(segment_path(&self.dir, old.first))?;
            }
            let first = self.next;
            let path = segment_path(&self.dir, first);
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?;
            // The directory entry must survive a power cut as well as the frames in the file.
            sluice_storage::sync_dir(&self.dir)?;
            self.segments.insert(first, 0);
            self.active = Some(Active {
                first,
                file,
                len: 0,
                sealed: false,
            });
        }
        self.active
            .as_mut()
            .ok_or_else(|| io::Error::other("no active WAL segment"))
    }

    /// The segment holding `position`, or the first one after it.
    pub fn segment_for(&self, position: u64) -> Option<SegmentView> {
        let (&first, &durable_len) = self
            .segments
            .range(..=position)
            .next_back()
            .or_else(|| self.segments.range(position..).next())?;
        let next_first = self
            .segments
            .range(first + 1..)
            .next()
            .map(|(&first, _)| first);
        Some(SegmentView {
            first,
            path: segment_path(&self.dir, first),
            durable_len,
            next_first,
        })
    }

    /// Forgets every complete segment whose records are all at or before `position`, and
    /// returns their files for the caller to delete (outside any lock).
    pub fn release_through(&mut self, position: u64) -> Vec<PathBuf> {
        let active = self.active.as_ref().map(|a| a.first);
        let firsts: Vec<u64> = self.segments.keys().copied().collect();
        let mut released = Vec::new();
        for pair in firsts.windows(2) {
            let (first, next_first) = (pair[0], pair[1]);
            if next_first > position + 1 || Some(first) == active {
                break;
            }
            self.segments.remove(&first);
            released.push(segment_path(&self.dir, first));
        }
        released
    }

    /// Bytes of every segment.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.values().sum()
    }
}

/// `first` from a segment's file name, for names this log writes.
fn segment_first(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

pub(super) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.{EXTENSION}"))
}

/// Reads `path` frame by frame: its valid length and its frames. A segment ends at the first
/// frame that is incomplete, fails its checksum, does not follow on, or belongs to the next
/// segment.
fn scan_segment(
    path: &Path,
    first: u64,
    next_first: Option<u64>,
) -> io::Result<(u64, Vec<FrameSpan>)> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut frames = Vec::new();
    let mut offset = 0;
    let mut expected = first;
    let mut body = Vec::new();
    while let Some(header) = read_header(&mut reader)? {
        let belongs = header.first == expected && next_first.is_none_or(|n| header.last() < n);
        if !belongs || !read_body(&mut reader, &header, &mut body)? {
            break;
        }
        frames.push(FrameSpan {
            first: header.first,
            last: header.last(),
            bytes: header.frame_len(),
        });
        offset += header.frame_len();
        expected = header.last() + 1;
    }
    Ok((offset, frames))
}

fn read_header(reader: &mut impl Read) -> io::Result<Option<FrameHeader>> {
    let mut bytes = [0u8; HEADER_LEN];
    match reader.read_exact(&mut bytes) {
        Ok(()) => Ok(FrameHeader::decode(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the body `header` announces into `body`; false if it is short or fails its checksum.
fn read_body(reader: &mut impl Read, header: &FrameHeader, body: &mut Vec<u8>) -> io::Result<bool> {
    body.clear();
    let wanted = u64::from(header.body_len);
    reader.take(wanted).read_to_end(body)?;
    Ok(body.len() as u64 == wanted && header.verifies(body))
}

fn write_all_vectored(file: &mut File, mut slices: &mut [io::IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads durable frames in order, from its own file handle, without holding the log's lock
/// while it reads.
pub(super) struct Cursor {
    segment: Option<(SegmentView, BufReader<File>, u64)>,
    /// The next position to read.
    next: u64,
    body: Vec<u8>,
}

/// One frame read back: its span and the records at or after the cursor's position.
pub(super) struct ReadFrame {
    pub span: FrameSpan,
    pub records: Vec<Positioned>,
}

impl Cursor {
    pub fn at(position: u64) -> Cursor {
        Cursor {
            segment: None,
            next: position,
            body: Vec::new(),
        }
    }

    /// The next durable frame, or `None` when everything durable was read. `view` tells where
    /// a position lies right now (the log's [`Log::segment_for`], under its lock).
    pub fn next_frame(
        &mut self,
        view: impl Fn(u64) -> Option<SegmentView>,
    ) -> io::Result<Option<ReadFrame>> {
        loop {
            let Some(current) = view(self.next) else {
                return Ok(None);
            };
            let same = self
                .segment
                .as_ref()
                .is_some_and(|(open, _, _)| open.first == current.first);
            if !same {
                self.open(current)?;
                continue;
            }
            let Some((open, reader, offset)) = self.segment.as_mut() else {
                return Ok(None);
            };
            *open = current;
            if *offset + HEADER_LEN as u64 <= open.durable_len {
                let header = read_header(reader)?
                    .ok_or_else(|| corrupted(&open.path, *offset, "no frame header"))?;
                if open.next_first.is_none_or(|n| header.first < n) {
                    if !read_body(reader, &header, &mut self.body)? {
                        return Err(corrupted(&open.path, *offset, "a frame fails its checksum"));
                    }
                    *offset += header.frame_len();
                    let span = FrameSpan {
                        first: header.first,
                        last: header.last(),
                        bytes: header.frame_len(),
                    };
                    let records = frame::records(&header, &self.body)
                        .ok_or_else(|| corrupted(&open.path, *offset, "record lengths"))?;
                    let from = self.next;
                    let records: Vec<Positioned> = (header.first..)
                        .zip(records)
                        .filter(|(position, _)| *position >= from)
                        .map(|(position, bytes)| (position, bytes.to_vec()))
                        .collect();
                    self.next = self.next.max(span.last + 1);
                    return Ok(Some(ReadFrame { span, records }));
                }
            }
            match open.next_first {
                // This segment is complete and read: on to the next.
                Some(next_first) => {
                    self.next = self.next.max(next_first);
                    self.segment = None;
                }
                None => return Ok(None),
            }
        }
    }

    /// Opens `view`'s segment and moves to the frame holding the cursor's position.
    fn open(&mut self, view: SegmentView) -> io::Result<()> {
        let mut reader = BufReader::with_capacity(1 << 20, File::open(&view.path)?);
        let mut offset = 0;
        self.next = self.next.max(view.first);
        while offset + HEADER_LEN as u64 <= view.durable_len {
            let Some(header) = read_header(&mut reader)? else {
                break;
            };
            if header.last() >= self.next {
                reader.seek_relative(-(HEADER_LEN as i64))?;
                break;
            }
            reader.seek_relative(i64::from(header.body_len))?;
            offset += header.frame_len();
        }
        self.segment = Some((view, reader, offset));
        Ok(())
    }
}

fn corrupted(path: &Path, offset: u64, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} at byte {offset}: {what}", path.display()),
    )
}
