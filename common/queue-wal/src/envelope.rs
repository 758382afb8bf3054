//! Byte layout of a [`QueuedRecord`] inside a queue that stores plain byte strings (the WAL).
//! The producer's bytes are kept untouched after a small fixed header, so a replay sees exactly
//! what was acknowledged.
//!
//! Layout: `version:u8 | source:u8 | received_at_ms:i64 LE | id_len:u16 LE | id | payload`.

use sluice_event::{QueuedRecord, Source};

const VERSION: u8 = 1;
const HEADER: usize = 1 + 1 + 8 + 2;

/// The envelope's header and id, which go before the payload.
pub(super) fn encode_header(record: &QueuedRecord, out: &mut Vec<u8>) {
    let id = record.id.as_deref().unwrap_or("");
    // Ids are bounded by validation (producer ids) or are 32-hex hashes; clamp defensively so a
    // length never wraps.
    let id = &id.as_bytes()[..id.len().min(usize::from(u16::MAX))];
    out.reserve(HEADER + id.len());
    out.push(VERSION);
    out.push(record.source as u8);
    out.extend_from_slice(&record.received_at_ms.to_le_bytes());
    out.extend_from_slice(&(id.len() as u16).to_le_bytes());
    out.extend_from_slice(id);
}

/// The record in `bytes`, which become its payload; the bytes back if they are not an envelope.
pub(super) fn decode_record(mut bytes: Vec<u8>) -> Result<QueuedRecord, (String, Vec<u8>)> {
    match read_header(&bytes) {
        Ok((id, received_at_ms, source, header_len)) => {
            bytes.drain(..header_len);
            Ok(QueuedRecord {
                id,
                received_at_ms,
                source,
                partition_key: None,
                payload: bytes,
            })
        }
        Err(reason) => Err((reason, bytes)),
    }
}

/// Id, receive time, source and header length of an envelope.
fn read_header(bytes: &[u8]) -> Result<(Option<String>, i64, Source, usize), String> {
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
    let id = bytes
        .get(HEADER..HEADER + id_len)
        .ok_or("id runs past the end of the record")?;
    let id = std::str::from_utf8(id).map_err(|_| "id is not UTF-8")?;
    Ok((
        (!id.is_empty()).then(|| id.to_owned()),
        received_at_ms,
        source,
        HEADER + id_len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(record: &QueuedRecord) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_header(record, &mut bytes);
        bytes.extend_from_slice(&record.payload);
        bytes
    }

    #[test]
    fn round_trip_keeps_every_byte() {
        let record = QueuedRecord {
            id: Some("evt-1".into()),
            received_at_ms: 1_714_564_800_123,
            source: Source::Bulk,
            partition_key: None,
            payload: b"{\"a\":\"\xc3\xa9\"}".to_vec(),
        };
        assert_eq!(decode_record(encode(&record)), Ok(record));
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
        assert_eq!(decode_record(encode(&record)).expect("decodes").id, None);
    }

    #[test]
    fn truncated_and_foreign_bytes_are_errors() {
        let foreign = b"{\"log_type\":1}".to_vec();
        assert_eq!(
            decode_record(foreign.clone()).map_err(|(_, b)| b),
            Err(foreign)
        );
        assert!(decode_record(vec![1, 0, 0]).is_err());
    }
}
