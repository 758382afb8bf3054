//! Byte layout of a [`QueuedRecord`] inside a queue that stores plain byte strings (the WAL).
//! The producer's bytes are kept untouched after a small fixed header, so a replay sees exactly
//! what was acknowledged.
//!
//! Layout: `version:u8 | source:u8 | received_at_ms:i64 LE | id_len:u16 LE | id | payload`.

use crate::event::{QueuedRecord, Source};

const VERSION: u8 = 1;
const HEADER: usize = 1 + 1 + 8 + 2;

pub fn encode_record(record: &QueuedRecord, out: &mut Vec<u8>) {
    let id = record.id.as_deref().unwrap_or("");
    // Ids are bounded by validation (producer ids) or are 32-hex hashes; clamp defensively so a
    // length never wraps.
    let id = &id.as_bytes()[..id.len().min(usize::from(u16::MAX))];
    out.reserve(HEADER + id.len() + record.payload.len());
    out.push(VERSION);
    out.push(record.source as u8);
    out.extend_from_slice(&record.received_at_ms.to_le_bytes());
    out.extend_from_slice(&(id.len() as u16).to_le_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(&record.payload);
}

pub fn decode_record(bytes: &[u8]) -> Result<QueuedRecord, String> {
    if bytes.len() < HEADER {
        return Err(format!("{} bytes is shorter than the header", bytes.len()));
    }
    if bytes[0] != VERSION {
        return Err(format!("unknown envelope version {}", bytes[0]));
    }
    let source = Source::from_u8(bytes[1]).ok_or_else(|| format!("unknown source {}", bytes[1]))?;
    let received_at_ms = i64::from_le_bytes(bytes[2..10].try_into().map_err(|_| "header")?);
    let id_len = usize::from(u16::from_le_bytes(
        bytes[10..12].try_into().map_err(|_| "header")?,
    ));
    let rest = &bytes[HEADER..];
    if rest.len() < id_len {
        return Err("id runs past the end of the record".to_owned());
    }
    let (id, payload) = rest.split_at(id_len);
    let id = std::str::from_utf8(id).map_err(|_| "id is not UTF-8")?;
    Ok(QueuedRecord {
        id: (!id.is_empty()).then(|| id.to_owned()),
        received_at_ms,
        source,
        partition_key: None,
        payload: payload.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_every_byte() {
        let record = QueuedRecord {
            id: Some("evt-1".into()),
            received_at_ms: 1_714_564_800_123,
            source: Source::Bulk,
            partition_key: None,
            payload: b"{\"a\":\"\xc3\xa9\"}".to_vec(),
        };
        let mut bytes = Vec::new();
        encode_record(&record, &mut bytes);
        assert_eq!(decode_record(&bytes), Ok(record));
    }

    #[test]
    fn missing_id_round_trips_as_none() {
        let record = QueuedRecord {
            id: None,
            received_at_ms: 1,
            source: Source::Http,
            partition_key: None,
            payload: b"{}".to_vec(),
        };
        let mut bytes = Vec::new();
        encode_record(&record, &mut bytes);
        assert_eq!(decode_record(&bytes).expect("decodes").id, None);
    }

    #[test]
    fn truncated_and_foreign_bytes_are_errors() {
        assert!(decode_record(b"{\"log_type\":1}").is_err());
        assert!(decode_record(&[1, 0, 0]).is_err());
    }
}
