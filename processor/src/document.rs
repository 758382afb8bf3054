//! The indexed document: the producer's record, untouched, plus what Sluice adds in Elastic
//! Common Schema style (`@timestamp`, `geo.*`, `fraud.*`, `ingest.*`).

use std::borrow::Cow;

use simd_json::prelude::*;
use simd_json::{BorrowedValue, ObjectHasher, StaticNode};
use sluice_common::event::{LogType, QueuedRecord, format_rfc3339_ms};
use sluice_common::store::StoreDocument;
use sluice_common::validate::ValidEvent;
use sluice_geoip::GeoRecord;

use crate::pipeline::Fraud;

type Object<'v> = simd_json::borrowed::Object<'v>;

fn object<'v>(capacity: usize) -> Object<'v> {
    Object::with_capacity_and_hasher(capacity, ObjectHasher::default())
}

fn text<'v>(s: impl Into<String>) -> BorrowedValue<'v> {
    BorrowedValue::String(Cow::Owned(s.into()))
}

fn number<'v>(n: f64) -> BorrowedValue<'v> {
    BorrowedValue::Static(StaticNode::F64(n))
}

/// What the store indexes besides the document, copied out of the validated record before the
/// record is extended (the record cannot be borrowed and changed at once).
pub(crate) struct DocumentMeta {
    log_type: LogType,
    event_time_ms: i64,
    level: Option<String>,
    service: Option<String>,
    message: Option<String>,
    error_message: Option<String>,
}

impl From<&ValidEvent<'_>> for DocumentMeta {
    fn from(event: &ValidEvent<'_>) -> Self {
        DocumentMeta {
            log_type: event.log_type(),
            event_time_ms: event.event_time_ms,
            level: event.level.map(str::to_owned),
            service: event.service.map(str::to_owned),
            message: event.message.map(str::to_owned),
            error_message: event.error_message.map(str::to_owned),
        }
    }
}

pub(crate) fn build_document(
    value: &mut BorrowedValue<'_>,
    id: String,
    meta: DocumentMeta,
    record: &QueuedRecord,
    geo: Option<&GeoRecord>,
    fraud: Option<&Fraud>,
) -> Result<StoreDocument, String> {
    let event = &meta;

    let fraud_value = fraud.map(|fraud| fraud_object(fraud, value));
    let fields = value
        .as_object_mut()
        .ok_or_else(|| "record is not a JSON object".to_owned())?;
    fields.insert(
        Cow::Borrowed("@timestamp"),
        text(format_rfc3339_ms(event.event_time_ms)),
    );
    if let Some(geo) = geo {
        fields.insert(Cow::Borrowed("geo"), geo_object(geo));
    }
    if let Some(fraud_value) = fraud_value {
        fields.insert(Cow::Borrowed("fraud"), fraud_value);
    }
    let mut ingest = object(2);
    ingest.insert(
        Cow::Borrowed("received_at"),
        text(format_rfc3339_ms(record.received_at_ms)),
    );
    ingest.insert(Cow::Borrowed("source"), text(record.source.as_str()));
    fields.insert(Cow::Borrowed("ingest"), BorrowedValue::from(ingest));

    let mut source = Vec::with_capacity(record.payload.len() + 256);
    value
        .write(&mut source)
        .map_err(|e| format!("cannot serialise document: {e}"))?;
    Ok(StoreDocument {
        id,
        timestamp_ms: meta.event_time_ms,
        log_type: meta.log_type,
        level: meta.level,
        service: meta.service,
        message: meta.message,
        error_message: meta.error_message,
        source,
    })
}

fn geo_object<'v>(geo: &GeoRecord) -> BorrowedValue<'v> {
    let mut o = object(6);
    let fields = [
        ("country_iso_code", &geo.country_iso_code),
        ("country_name", &geo.country_name),
        ("region_name", &geo.region_name),
        ("city_name", &geo.city_name),
        ("continent_code", &geo.continent_code),
    ];
    for (key, field) in fields {
        if let Some(v) = field {
            o.insert(Cow::Borrowed(key), text(v.as_str()));
        }
    }
    if let Some((lat, lon)) = geo.location {
        let mut location = object(2);
        location.insert(Cow::Borrowed("lat"), number(lat));
        location.insert(Cow::Borrowed("lon"), number(lon));
        o.insert(Cow::Borrowed("location"), BorrowedValue::from(location));
    }
    BorrowedValue::from(o)
}

fn fraud_object<'v>(fraud: &Fraud, record: &BorrowedValue<'_>) -> BorrowedValue<'v> {
    let mut o = object(4);
    match fraud {
        Fraud::Scored(assessment) => {
            o.insert(Cow::Borrowed("score"), number(assessment.score));
            let indicators = assessment
                .indicators
                .iter()
                .map(|i| text(i.as_str()))
                .collect::<Vec<_>>();
            o.insert(Cow::Borrowed("indicators"), BorrowedValue::from(indicators));
            o.insert(
                Cow::Borrowed("detected"),
                BorrowedValue::Static(StaticNode::Bool(assessment.detected)),
            );
            o.insert(Cow::Borrowed("source"), text("sluice"));
        }
        Fraud::Upstream => {
            let score = record
                .get("fraud_score")
                .and_then(ValueAsScalar::cast_f64)
                .unwrap_or(0.0);
            o.insert(Cow::Borrowed("score"), number(score));
            let indicators = record
                .get("indicators")
                .and_then(|v| v.as_array())
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(text))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            o.insert(Cow::Borrowed("indicators"), BorrowedValue::from(indicators));
            let detected = record.get_bool("fraud_detected").unwrap_or(false);
            o.insert(
                Cow::Borrowed("detected"),
                BorrowedValue::Static(StaticNode::Bool(detected)),
            );
            o.insert(Cow::Borrowed("source"), text("upstream"));
        }
    }
    BorrowedValue::from(o)
}
