//! Deterministic document ids. The same record always maps to the same id, so a replay after a
//! crash overwrites what it wrote instead of adding a duplicate: at-least-once delivery without
//! duplicates in the index.

use simd_json::prelude::*;
use xxhash_rust::xxh3::Xxh3;

use crate::validate::Record;

/// Producer ids longer than this are refused: ids are index keys, not payloads.
pub const MAX_EVENT_ID_BYTES: usize = 512;

/// The producer's `event_id` when it sent one, else a 128-bit hash of the record.
///
/// The hash is taken over a canonical form (object keys sorted, whitespace ignored), so a
/// producer that retries the same record with different formatting still gets the same id.
/// A record without a timestamp gets its receive time as event time, and two such records sent
/// at different times are different events: the receive time is then part of the hash.
pub fn document_id(record: Record<'_, '_>, received_at_ms: i64) -> String {
    if let Some(id) = record.get_str("event_id").filter(|id| !id.is_empty()) {
        return id.to_owned();
    }
    let mut hasher = Xxh3::new();
    hash_value(record, &mut hasher);
    let has_timestamp = record.contains_key("timestamp") || record.contains_key("@timestamp");
    if !has_timestamp {
        hasher.update(&received_at_ms.to_le_bytes());
    }
    format!("{:032x}", hasher.digest128())
}

fn hash_value(value: Record<'_, '_>, hasher: &mut Xxh3) {
    if let Some(object) = value.as_object() {
        let mut fields: Vec<_> = object.iter().collect();
        fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
        hasher.update(b"{");
        for (key, item) in fields {
            hasher.update(&(key.len() as u64).to_le_bytes());
            hasher.update(key.as_bytes());
            hash_value(item, hasher);
        }
        hasher.update(b"}");
    } else if let Some(items) = value.as_array() {
        hasher.update(b"[");
        for item in items.iter() {
            hash_value(item, hasher);
        }
        hasher.update(b"]");
    } else if let Some(text) = value.as_str() {
        hasher.update(b"s");
        hasher.update(&(text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    } else if let Some(b) = value.as_bool() {
        hasher.update(if b { b"t" } else { b"f" });
    } else if let Some(i) = value.as_i64() {
        hasher.update(b"i");
        hasher.update(&i.to_le_bytes());
    } else if let Some(u) = value.as_u64() {
        hasher.update(b"u");
        hasher.update(&u.to_le_bytes());
    } else if let Some(f) = value.as_f64() {
        hasher.update(b"d");
        hasher.update(&f.to_le_bytes());
    } else {
        hasher.update(b"n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(json: &str, received: i64) -> String {
        let mut bytes = json.as_bytes().to_vec();
        let tape = simd_json::to_tape(&mut bytes).expect("valid json");
        document_id(tape.as_value(), received)
    }

    #[test]
    fn producer_event_id_wins() {
        assert_eq!(id_of(r#"{"event_id":"abc","a":1}"#, 0), "abc");
    }

    #[test]
    fn key_order_and_whitespace_do_not_change_the_id() {
        let a = id_of(r#"{"a":1,"b":"x","timestamp":5}"#, 1);
        let b = id_of(r#"{ "timestamp":5, "b" : "x", "a":1 }"#, 2);
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn different_content_gives_different_ids() {
        assert_ne!(
            id_of(r#"{"a":1,"timestamp":5}"#, 0),
            id_of(r#"{"a":2,"timestamp":5}"#, 0)
        );
    }

    #[test]
    fn receive_time_counts_only_without_timestamp() {
        assert_ne!(id_of(r#"{"a":1}"#, 1), id_of(r#"{"a":1}"#, 2));
        assert_eq!(
            id_of(r#"{"a":1,"timestamp":9}"#, 1),
            id_of(r#"{"a":1,"timestamp":9}"#, 2)
        );
    }
}
