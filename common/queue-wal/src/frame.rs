//! One append as it lies in a WAL segment: a header, then the records, all under one checksum,
//! so that recovery finds an append whole or not at all.
//!
//! Layout, little endian: `magic:u32 | body_len:u32 | crc32:u32 | count:u32 | first:u64`, then
//! `count` times `len:u32 | bytes`. The checksum covers `count`, `first` and the body; `first` is
//! the position of the frame's first record, the others follow one by one.

use std::io::IoSlice;

pub(super) const HEADER_LEN: usize = 24;
const MAGIC: u32 = u32::from_le_bytes(*b"SWL1");

/// A frame's header, read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameHeader {
    pub body_len: u32,
    pub crc: u32,
    pub count: u32,
    pub first: u64,
}

impl FrameHeader {
    /// `None` when the bytes are not a frame header (zeros past the end, or garbage).
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Option<FrameHeader> {
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        if word(0) != MAGIC || word(12) == 0 {
            return None;
        }
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[16..24]);
        Some(FrameHeader {
            body_len: word(4),
            crc: word(8),
            count: word(12),
            first: u64::from_le_bytes(first),
        })
    }

    /// Header and body.
    pub fn frame_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.body_len)
    }

    /// Position of the frame's last record.
    pub fn last(&self) -> u64 {
        self.first + u64::from(self.count) - 1
    }

    /// Whether `body` is what this header promised, checksum included.
    pub fn verifies(&self, body: &[u8]) -> bool {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&self.count.to_le_bytes());
        hasher.update(&self.first.to_le_bytes());
        hasher.update(body);
        body.len() == self.body_len as usize && hasher.finalize() == self.crc
    }
}

/// The records of a verified body, in order; `None` if the lengths do not add up.
pub(super) fn records<'b>(header: &FrameHeader, body: &'b [u8]) -> Option<Vec<&'b [u8]>> {
    let mut out = Vec::with_capacity(header.count as usize);
    let mut rest = body;
    for _ in 0..header.count {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return None;
        }
        let (record, tail) = tail.split_at(len);
        out.push(record);
        rest = tail;
    }
    rest.is_empty().then_some(out)
}

/// A record to append, as two parts written back to back (a small header of the caller's and
/// the payload), so a payload is written from where it lies instead of being copied first.
pub(super) type Parts<'a> = [&'a [u8]; 2];

/// Bytes a frame of `records` takes on disk.
pub(super) fn frame_len(records: &[Parts<'_>]) -> u64 {
    HEADER_LEN as u64
        + records
            .iter()
            .map(|[head, body]| 4 + head.len() as u64 + body.len() as u64)
            .sum::<u64>()
}

/// A frame ready to be written with vectored writes: its header and record lengths encoded,
/// the records themselves borrowed.
pub(super) struct EncodedFrame<'a> {
    header: [u8; HEADER_LEN],
    lengths: Vec<[u8; 4]>,
    records: &'a [Parts<'a>],
}

/// A frame too large for its length fields.
#[derive(Debug)]
pub(super) struct FrameTooLarge;

impl<'a> EncodedFrame<'a> {
    pub fn new(first: u64, records: &'a [Parts<'a>]) -> Result<EncodedFrame<'a>, FrameTooLarge> {
        let count = u32::try_from(records.len()).map_err(|_| FrameTooLarge)?;
        let body_len =
            u32::try_from(frame_len(records) - HEADER_LEN as u64).map_err(|_| FrameTooLarge)?;
        let mut lengths = Vec::with_capacity(records.len());
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&count.to_le_bytes());
        hasher.update(&first.to_le_bytes());
        for [head, body] in records {
            // Each part fits: their sum is below the u32 body length checked above.
            let len = ((head.len() + body.len()) as u32).to_le_bytes();
            hasher.update(&len);
            hasher.update(head);
            hasher.update(body);
            lengths.push(len);
        }
        let mut header = [0u8; HEADER_LEN];
        header[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        header[4..8].copy_from_slice(&body_len.to_le_bytes());
        header[8..12].copy_from_slice(&hasher.finalize().to_le_bytes());
        header[12..16].copy_from_slice(&count.to_le_bytes());
        header[16..24].copy_from_slice(&first.to_le_bytes());
        Ok(EncodedFrame {
            header,
            lengths,
            records,
        })
    }

    /// The frame as slices, in order.
    pub fn slices(&self) -> Vec<IoSlice<'_>> {
        let mut slices = Vec::with_capacity(1 + 3 * self.records.len());
        slices.push(IoSlice::new(&self.header));
        for (len, [head, body]) in self.lengths.iter().zip(self.records) {
            slices.push(IoSlice::new(len));
            if !head.is_empty() {
                slices.push(IoSlice::new(head));
            }
            if !body.is_empty() {
                slices.push(IoSlice::new(body));
            }
        }
        slices
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(first: u64, records: &[Parts<'_>]) -> Vec<u8> {
        let frame = EncodedFrame::new(first, records).expect("fits");
        frame
            .slices()
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect()
    }

    #[test]
    fn a_frame_reads_back_as_written() {
        let records: [Parts<'_>; 3] = [[b"h1", b"payload one"], [b"", b""], [b"h3", b"x"]];
        let bytes = encode(41, &records);
        assert_eq!(bytes.len() as u64, frame_len(&records));
        let header =
            FrameHeader::decode(bytes[..HEADER_LEN].try_into().expect("header")).expect("a header");
        assert_eq!((header.first, header.count, header.last()), (41, 3, 43));
        let body = &bytes[HEADER_LEN..];
        assert!(header.verifies(body));
        let read = records_of(&header, body);
        assert_eq!(read, vec![&b"h1payload one"[..], b"", b"h3x"]);
    }

    fn records_of<'b>(header: &FrameHeader, body: &'b [u8]) -> Vec<&'b [u8]> {
        records(header, body).expect("lengths add up")
    }

    #[test]
    fn a_flipped_bit_or_a_short_body_does_not_verify() {
        let records: [Parts<'_>; 1] = [[b"", b"some record"]];
        let mut bytes = encode(0, &records);
        let header =
            FrameHeader::decode(bytes[..HEADER_LEN].try_into().expect("header")).expect("header");
        assert!(!header.verifies(&bytes[HEADER_LEN..bytes.len() - 1]));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(!header.verifies(&bytes[HEADER_LEN..]));
    }

    #[test]
    fn zeros_are_not_a_header() {
        assert_eq!(FrameHeader::decode(&[0; HEADER_LEN]), None);
    }
}
