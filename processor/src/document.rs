//! The indexed document: the producer's record, byte for byte, plus what Sluice adds in Elastic
//! Common Schema style (`@timestamp`, `geo.*`, `fraud.*`, `ingest.*` with the document id).
//!
//! The additions are spliced in before the record's closing brace instead of re-serialising the
//! parsed record: the record is known-valid JSON (it was just parsed), Sluice's keys are reserved
//! (validation refuses records that carry them), and this keeps the producer's exact bytes while
//! saving the serialisation that would otherwise dominate the hot path.

use simd_json::prelude::*;
use sluice_event::validate::{Record, ValidEvent};
use sluice_event::{LogType, QueuedRecord, write_rfc3339_ms};
use sluice_geoip::GeoRecord;
use sluice_store::{Field, FieldValue, FieldValues, JsonScalar, StoreDocument};

/// What the store indexes besides the document, copied out of the validated record.
pub(crate) struct DocumentMeta {
    log_type: LogType,
    event_time_ms: i64,
    /// The producer sent `@timestamp` itself (the ECS alias of `timestamp`): keep theirs.
    has_at_timestamp: bool,
    message: Option<String>,
    error_message: Option<String>,
}

impl DocumentMeta {
    pub(crate) fn new(event: &ValidEvent<'_>, has_at_timestamp: bool) -> Self {
        DocumentMeta {
            log_type: event.log_type(),
            event_time_ms: event.event_time_ms,
            has_at_timestamp,
            message: event.message.map(str::to_owned),
            error_message: event.error_message.map(str::to_owned),
        }
    }
}

/// The fraud fields as they go into the document.
pub(crate) struct FraudFields<'a> {
    pub score: f64,
    pub indicators: Vec<&'a str>,
    pub detected: bool,
    pub source: &'static str,
}

/// The document for `record`, whose bytes (or their repaired copy) are `payload`, with the
/// typed field values read off `parsed` when it is given (the store reads them).
pub(crate) fn build_document(
    payload: &[u8],
    parsed: Option<Record<'_, '_>>,
    record: &QueuedRecord,
    id: String,
    meta: DocumentMeta,
    geo: Option<&GeoRecord>,
    fraud: Option<FraudFields<'_>>,
) -> Result<StoreDocument, String> {
    let fields = parsed.map_or_else(FieldValues::default, |parsed| {
        field_values(parsed, &id, meta.log_type, geo, fraud.as_ref())
    });
    let end = payload
        .iter()
        .rposition(|b| *b == b'}')
        .ok_or_else(|| "record is not a JSON object".to_owned())?;
    let mut out = Vec::with_capacity(end + 512);
    out.extend_from_slice(&payload[..end]);
    // The record is a non-empty object (it has at least `log_type`), so a comma always fits.
    if !meta.has_at_timestamp {
        out.extend_from_slice(b",\"@timestamp\":\"");
        write_rfc3339_ms(meta.event_time_ms, &mut out);
        out.push(b'"');
    }
    if let Some(geo) = geo {
        write_geo(&mut out, geo);
    }
    if let Some(fraud) = &fraud {
        out.extend_from_slice(b",\"fraud\":{\"score\":");
        write_number(&mut out, fraud.score);
        out.extend_from_slice(b",\"indicators\":[");
        for (i, indicator) in fraud.indicators.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_string(&mut out, indicator);
        }
        out.extend_from_slice(b"],\"detected\":");
        out.extend_from_slice(if fraud.detected { b"true" } else { b"false" });
        out.extend_from_slice(b",\"source\":");
        write_string(&mut out, fraud.source);
        out.push(b'}');
    }
    // The id goes into the document too: sorting needs a unique tiebreaker for deep paging, and
    // Elasticsearch 8 cannot sort on `_id`.
    out.extend_from_slice(b",\"ingest\":{\"id\":");
    write_string(&mut out, &id);
    out.extend_from_slice(b",\"received_at\":\"");
    write_rfc3339_ms(record.received_at_ms, &mut out);
    out.extend_from_slice(b"\",\"source\":");
    write_string(&mut out, record.source.as_str());
    out.extend_from_slice(b"}}");
    // The record was UTF-8 (the parser checks) and so is everything added to it.
    let source = String::from_utf8(out).map_err(|e| format!("the document is not UTF-8: {e}"))?;
    Ok(StoreDocument {
        id,
        timestamp_ms: meta.event_time_ms,
        message: meta.message,
        error_message: meta.error_message,
        fields,
        source,
    })
}

/// The values the store indexes, read off the parsed record and what Sluice adds to it: the
/// same values [`FieldValues::of_document`] reads out of the finished document (a property test
/// holds the two together), without parsing the document again.
fn field_values(
    parsed: Record<'_, '_>,
    id: &str,
    log_type: LogType,
    geo: Option<&GeoRecord>,
    fraud: Option<&FraudFields<'_>>,
) -> FieldValues {
    let mut values = FieldValues::with_capacity(24, 256);
    values.push(Field::DocumentId, FieldValue::Keyword(id));
    // The processor's reading of the type is authoritative.
    values.push(Field::LogType, FieldValue::Keyword(log_type.as_str()));
    if let Some(object) = parsed.as_object() {
        for (key, value) in object.iter() {
            // Sluice's own (dotted) fields cannot be sent: validation refused such records.
            let Some(field) = Field::from_path(key).filter(|f| *f != Field::LogType) else {
                continue;
            };
            match value.as_array() {
                Some(items) => {
                    for item in items.iter() {
                        push_scalar(&mut values, field, item);
                    }
                }
                None => push_scalar(&mut values, field, value),
            }
        }
    }
    if let Some(country) = geo.and_then(|geo| geo.country_iso_code.as_deref()) {
        values.push(Field::GeoCountry, FieldValue::Keyword(country));
    }
    if let Some(fraud) = fraud {
        // A score JSON cannot hold is written as null.
        if fraud.score.is_finite() {
            values.push(Field::FraudScore, FieldValue::Double(fraud.score));
        }
        values.push(Field::FraudDetected, FieldValue::Boolean(fraud.detected));
        for indicator in &fraud.indicators {
            values.push(Field::FraudIndicators, FieldValue::Keyword(indicator));
        }
    }
    values
}

fn push_scalar(values: &mut FieldValues, field: Field, value: Record<'_, '_>) {
    let scalar = if let Some(text) = value.as_str() {
        JsonScalar::Text(text)
    } else if let Some(flag) = value.as_bool() {
        JsonScalar::Bool(flag)
    } else if let Some(n) = value.as_i64() {
        JsonScalar::Int(n)
    } else if let Some(n) = value.as_u64() {
        JsonScalar::UInt(n)
    } else if let Some(n) = value.as_f64() {
        JsonScalar::Float(n)
    } else {
        return;
    };
    values.push_json(field, scalar);
}

fn write_geo(out: &mut Vec<u8>, geo: &GeoRecord) {
    out.extend_from_slice(b",\"geo\":{");
    let mut first = true;
    // The names are Sluice's own, quoted already.
    let mut key = |out: &mut Vec<u8>, quoted_name: &[u8]| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(quoted_name);
        out.push(b':');
    };
    let texts: [(&[u8], _); 5] = [
        (b"\"country_iso_code\"", &geo.country_iso_code),
        (b"\"country_name\"", &geo.country_name),
        (b"\"region_name\"", &geo.region_name),
        (b"\"city_name\"", &geo.city_name),
        (b"\"continent_code\"", &geo.continent_code),
    ];
    for (name, value) in texts {
        if let Some(value) = value {
            key(out, name);
            write_string(out, value);
        }
    }
    if let Some((lat, lon)) = geo.location {
        key(out, b"\"location\"");
        out.extend_from_slice(b"{\"lat\":");
        write_number(out, lat);
        out.extend_from_slice(b",\"lon\":");
        write_number(out, lon);
        out.push(b'}');
    }
    out.push(b'}');
}

/// A JSON string, escaped (names from a GeoIP database can hold any text). Whether it needs
/// escaping is asked of every byte without stopping early, which the compiler vectorises.
fn write_string(out: &mut Vec<u8>, text: &str) {
    let plain = !text.bytes().fold(false, |escape, b| {
        escape | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, text).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// A JSON number; non-finite values (which JSON cannot hold) become `null`.
fn write_number(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        let mut buffer = ryu::Buffer::new();
        out.extend_from_slice(buffer.format_finite(value).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_event::Source;
    use sluice_event::validate::{Limits, parse_record};

    fn meta(has_at_timestamp: bool) -> DocumentMeta {
        DocumentMeta {
            log_type: LogType::Error,
            event_time_ms: 1_714_564_800_000,
            has_at_timestamp,
            message: None,
            error_message: None,
        }
    }

    fn record(payload: &str) -> QueuedRecord {
        QueuedRecord {
            id: None,
            received_at_ms: 1_714_564_801_000,
            source: Source::Bulk,
            partition_key: None,
            payload: payload.as_bytes().to_vec(),
        }
    }

    fn build(payload: &str, has_at: bool, geo: Option<&GeoRecord>) -> serde_json::Value {
        let mut scratch = Vec::new();
        let parsed =
            parse_record(payload.as_bytes(), &mut scratch, &Limits::default()).expect("parses");
        let document = build_document(
            payload.as_bytes(),
            Some(parsed.tape.as_value()),
            &record(payload),
            "x".into(),
            meta(has_at),
            geo,
            None,
        )
        .expect("builds");
        serde_json::from_str(&document.source).expect("valid JSON")
    }

    #[test]
    fn additions_are_spliced_before_the_closing_brace_with_whitespace_around() {
        let doc = build(
            " {\"log_type\" : \"error\", \"n\": [1, {\"a\": \"}\"}] }\n",
            false,
            None,
        );
        assert_eq!(doc["n"][1]["a"], "}");
        assert_eq!(doc["@timestamp"], "2024-05-01T12:00:00.000Z");
        assert_eq!(doc["ingest"]["source"], "bulk");
        assert_eq!(doc["ingest"]["id"], "x");
        assert_eq!(doc["ingest"]["received_at"], "2024-05-01T12:00:01.000Z");
    }

    #[test]
    fn producer_at_timestamp_is_kept_once() {
        let raw = r#"{"log_type":"error","@timestamp":1714564800000}"#;
        let mut scratch = Vec::new();
        let parsed =
            parse_record(raw.as_bytes(), &mut scratch, &Limits::default()).expect("parses");
        let document = build_document(
            raw.as_bytes(),
            Some(parsed.tape.as_value()),
            &record(raw),
            "x".into(),
            meta(true),
            None,
            None,
        )
        .expect("builds");
        let text = document.source;
        assert_eq!(text.matches("@timestamp").count(), 1, "{text}");
    }

    #[test]
    fn geo_names_are_escaped() {
        let geo = GeoRecord {
            city_name: Some("Quote \" and \\ back\nslash".into()),
            location: Some((1.5, -2.25)),
            ..GeoRecord::default()
        };
        let doc = build("{\"log_type\":\"error\"}", false, Some(&geo));
        assert_eq!(doc["geo"]["city_name"], "Quote \" and \\ back\nslash");
        assert_eq!(doc["geo"]["location"]["lon"], -2.25);
    }
}
