//! Ingest and the stores agree on what a valid record is (issue 13): generated records, with
//! the JSON that parsers disagree on (lone surrogate escapes, numbers beyond 64 bits or beyond a
//! double, duplicate and odd field names, deep nesting) and byte-level mutations on top, go
//! through ingest's validation (simd-json), serde_json, the processor and the store. For every
//! record:
//! - what ingest accepts, the processor turns into a document that is JSON to serde_json, and
//!   the store indexes it — tantivy here, Elasticsearch (the stand-in `scripts/test.sh` starts)
//!   in the second test;
//! - what ingest refuses, the processor dead-letters with the same code (records reach the queue
//!   without ingest too);
//! - valid JSON is never called malformed.
//!
//! `PROPTEST_CASES` runs more cases (the suite runs a few hundred).

use std::sync::Arc;

use proptest::prelude::*;
use sluice_event::validate::{Limits, RejectCode, parse_record, validate};
use sluice_event::{QueuedRecord, Source};
use sluice_fraud::{FraudConfig, FraudEngine};
use sluice_geoip::GeoResolver;
use sluice_processor::Pipeline;
use sluice_store::{EventStore, StoreDocument};
use sluice_store_elasticsearch::{ElasticStore, ElasticsearchConfig};
use sluice_store_tantivy::TantivyStore;

/// A JSON value as text, built to include what parsers disagree on.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    /// A number exactly as written (`123456789012345678901234567890`, `1e400`, `-0.0`).
    Number(String),
    /// String contents as written between the quotes, escapes included.
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The same value with every array holding one kind only (the kind of its first item), as
    /// Elasticsearch needs to map a field it sees for the first time without a conflict.
    fn one_kind_per_array(self) -> Json {
        fn kind(value: &Json) -> u8 {
            match value {
                Json::Null => 0,
                Json::Bool(_) => 1,
                // Integers and decimals apart: a cluster coerces one into the other; the
                // stand-in does not.
                Json::Number(n) if n.contains(['.', 'e', 'E']) => 2,
                Json::Number(_) => 6,
                Json::Text(_) => 3,
                Json::Array(_) => 4,
                Json::Object(_) => 5,
            }
        }
        match self {
            Json::Array(items) => {
                let first = items.iter().map(kind).find(|k| !matches!(k, 0 | 4));
                // Objects in one array may give one field two kinds: keep the first object.
                let keep = if first == Some(5) { 1 } else { usize::MAX };
                Json::Array(
                    items
                        .into_iter()
                        .filter(|item| Some(kind(item)) == first)
                        .take(keep)
                        .map(Json::one_kind_per_array)
                        .collect(),
                )
            }
            Json::Object(members) => Json::Object(
                members
                    .into_iter()
                    .map(|(key, value)| (key, value.one_kind_per_array()))
                    .collect(),
            ),
            other => other,
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::Text(t) => {
                out.push('"');
                out.push_str(t);
                out.push('"');
            }
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(key);
                    out.push_str("\":");
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        Just("123456789012345678901234567890".to_owned()),
        Just("-98765432109876543210987654321".to_owned()),
        Just("1e400".to_owned()),
        Just("-1e400".to_owned()),
        Just("1e-400".to_owned()),
        Just("0.1e309".to_owned()),
        Just("-0".to_owned()),
        Just("1.0E+2".to_owned()),
    ]
}

/// String contents, escapes as JSON writes them, lone surrogates among them.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9 ]{0,8}",
        1 => any::<char>().prop_filter("not a quote, backslash or control", |c| {
            *c != '"' && *c != '\\' && !c.is_control()
        }).prop_map(String::from),
        1 => prop::sample::select(vec![
            "\\n", "\\t", "\\\"", "\\\\", "\\/", "\\u00e9", "\\u0000", "\\ud83d\\ude00",
            "\\ud800", "\\udfff", "\\ud800\\u0041", "\\uDBFF\\uDFFF", "\\\\ud800",
        ]).prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..5).prop_map(|pieces| pieces.concat())
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z_]{1,8}",
        1 => prop::sample::select(vec![
            "", " ", ".a", "a.", "a..b", "a.b", "_source", "_index", "_x", "ключ", "geo",
            "geo.city_name", "fraud", "ingest.id", "log_type", "amount", "ip", "timestamp",
            "\\u0041", "k\\ud800",
        ]).prop_map(str::to_owned),
    ]
}

fn value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        number().prop_map(Json::Number),
        text().prop_map(Json::Text),
    ];
    leaf.prop_recursive(8, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
            prop::collection::vec((key(), inner), 0..5).prop_map(Json::Object),
        ]
    })
}

/// A record of one log type, mostly with its required fields, then fields of any kind.
fn record() -> impl Strategy<Value = Vec<u8>> {
    record_of(false)
}

/// [`record`], with `one_kind_per_array` applied to its fields.
fn record_of(one_kind_per_array: bool) -> impl Strategy<Value = Vec<u8>> {
    let required = prop_oneof![
        Just(r#""log_type":"error","error_message":"gateway timeout""#),
        Just(r#""log_type":"transaction","transaction_id":"t1","user_id":"u1","amount":12.5"#),
        Just(r#""log_type":"user_behavior","user_id":"u2","action":"view""#),
        Just(r#""log_type":"performance","endpoint":"/cart","response_time":41"#),
        Just(r#""log_type":"fraud","transaction_id":"t2","fraud_score":80"#),
        Just(r#""log_type":"error""#),
    ];
    let extras = prop::collection::vec((key(), value()), 0..6);
    let mutations =
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 0..3);
    (required, extras, any::<bool>(), mutations).prop_map(
        move |(required, extras, mutate, mutations)| {
            let mut text = String::from("{");
            text.push_str(required);
            for (key, value) in extras {
                let value = if one_kind_per_array {
                    value.one_kind_per_array()
                } else {
                    value
                };
                text.push_str(",\"");
                text.push_str(&key);
                text.push_str("\":");
                value.write(&mut text);
            }
            text.push('}');
            let mut bytes = text.into_bytes();
            if mutate {
                for (at, kind, byte) in mutations {
                    let at = at.index(bytes.len().max(1));
                    match kind {
                        0 if at < bytes.len() => bytes[at] = byte,
                        1 => bytes.insert(at.min(bytes.len()), byte),
                        _ if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        _ => {}
                    }
                }
            }
            bytes
        },
    )
}

/// Ingest's verdict, as `ingest/src/accept.rs` reaches it.
fn ingest_verdict(bytes: &[u8], limits: &Limits) -> Result<(), RejectCode> {
    let mut scratch = Vec::new();
    let parsed = parse_record(bytes, &mut scratch, limits).map_err(|issue| issue.code)?;
    validate(parsed.tape.as_value(), sluice_event::now_ms(), limits)
        .map(drop)
        .map_err(|issues| issues[0].code)
}

fn queued(bytes: Vec<u8>) -> QueuedRecord {
    QueuedRecord {
        id: None,
        received_at_ms: sluice_event::now_ms(),
        source: Source::Queue,
        partition_key: None,
        payload: bytes,
    }
}

/// Checks one batch's agreement and returns the documents the processor made of it.
fn agree(
    pipeline: &mut Pipeline,
    records: &[Vec<u8>],
) -> Result<Vec<StoreDocument>, TestCaseError> {
    let limits = Limits::default();
    let batch: Vec<QueuedRecord> = records.iter().cloned().map(queued).collect();
    let output = pipeline.process(&batch);
    let mut letters = output.dead_letters.iter();
    let mut documents = output.documents.iter().zip(&output.origins);
    for (at, bytes) in records.iter().enumerate() {
        let shown = String::from_utf8_lossy(bytes);
        let verdict = ingest_verdict(bytes, &limits);
        if let Err(code) = verdict {
            let serde_reads =
                serde_json::from_slice::<serde_json::Value>(bytes).is_ok_and(|v| v.is_object());
            prop_assert!(
                !(serde_reads
                    && matches!(
                        code,
                        RejectCode::MalformedJson | RejectCode::InvalidEncoding
                    )),
                "valid JSON called {code:?}: {shown}"
            );
        }
        match verdict {
            Ok(()) => {
                let (document, origin) = documents.next().ok_or_else(|| {
                    TestCaseError::fail(format!("accepted, not processed: {shown}"))
                })?;
                prop_assert_eq!(*origin, at, "accepted, then dead-lettered: {}", shown);
                let reread = serde_json::from_str::<serde_json::Value>(&document.source);
                prop_assert!(
                    reread.is_ok(),
                    "document is not JSON to serde_json: {:?} from {}",
                    reread.err(),
                    shown
                );
            }
            Err(code) => {
                let letter = letters.next().ok_or_else(|| {
                    TestCaseError::fail(format!("refused at ingest ({code:?}), indexed: {shown}"))
                })?;
                prop_assert_eq!(
                    letter.code,
                    code,
                    "ingest and the processor differ on {}",
                    shown
                );
                prop_assert_eq!(&letter.payload, bytes);
            }
        }
    }
    Ok(output.documents)
}

fn pipeline() -> Pipeline {
    Pipeline::new(
        Limits::default(),
        GeoResolver::without_database(),
        FraudEngine::new(FraudConfig::default()),
    )
}

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn ingest_the_processor_and_tantivy_agree_on_every_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TantivyStore::open(dir.path(), 20_000_000).expect("store");
    let runtime = runtime();
    let pipeline = std::cell::RefCell::new(pipeline());
    proptest!(cases(300), |(records in prop::collection::vec(record(), 1..16))| {
        let documents = agree(&mut pipeline.borrow_mut(), &records)?;
        let count = documents.len();
        let report = runtime.block_on(store.index(Arc::new(documents)));
        let report = report.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(report.indexed, count, "refused: {:?}", report.rejected);
    });
}

/// What ingest accepted, the processor reads from the WAL without validating it again; the
/// documents must be the ones it makes when it validates (records that reach the queue another
/// way), byte for byte and value for value.
#[test]
fn records_validated_at_ingest_become_the_documents_validation_makes() {
    let received_at_ms = sluice_event::now_ms();
    let as_queued = |bytes: &Vec<u8>, source| QueuedRecord {
        id: None,
        received_at_ms,
        source,
        partition_key: None,
        payload: bytes.clone(),
    };
    let mut trusting = pipeline();
    trusting.set_validated_at_ingest(true);
    let pipelines = std::cell::RefCell::new((pipeline(), trusting));
    let records = prop_oneof![record(), known_fields_record(), sample_record()];
    proptest!(cases(300), |(records in prop::collection::vec(records, 1..16))| {
        let limits = Limits::default();
        let accepted: Vec<&Vec<u8>> = records
            .iter()
            .filter(|bytes| ingest_verdict(bytes, &limits).is_ok())
            .collect();
        let (validating, trusting) = &mut *pipelines.borrow_mut();
        let checked: Vec<QueuedRecord> =
            accepted.iter().map(|bytes| as_queued(bytes, Source::Queue)).collect();
        let from_ingest: Vec<QueuedRecord> =
            accepted.iter().map(|bytes| as_queued(bytes, Source::Http)).collect();
        let checked = validating.process(&checked);
        let read = trusting.process(&from_ingest);
        prop_assert!(checked.dead_letters.is_empty() && read.dead_letters.is_empty());
        prop_assert_eq!(checked.documents.len(), read.documents.len());
        for (expected, got) in checked.documents.iter().zip(&read.documents) {
            // The receive source is in the document; everything else must be equal.
            let got_source = got.source.replace("\"source\":\"http\"}}", "\"source\":\"queue\"}}");
            prop_assert_eq!(&expected.source, &got_source);
            prop_assert_eq!(expected.id.as_str(), got.id.as_str());
            prop_assert_eq!(expected.timestamp_ms, got.timestamp_ms);
            prop_assert_eq!(&expected.message, &got.message);
            prop_assert_eq!(&expected.error_message, &got.error_message);
            let values = |fields: &sluice_store::FieldValues| {
                let mut values: Vec<String> =
                    fields.iter().map(|value| format!("{value:?}")).collect();
                values.sort();
                values
            };
            prop_assert_eq!(values(&expected.fields), values(&got.fields));
        }
    });
}

/// A record whose fields are the ones the processor reads, each in one of the forms producers
/// send it (text or number, padded, upper-case, null), with fields of any kind besides.
fn known_fields_record() -> impl Strategy<Value = Vec<u8>> {
    let forms: Vec<(&str, Vec<&str>)> = vec![
        (
            "timestamp",
            vec![
                r#""2026-12-05T23:19:02.953Z""#,
                "1764976742953",
                r#""2026-12-05T23:19:02+02:00""#,
                "null",
                r#""soon""#,
            ],
        ),
        (
            "@timestamp",
            vec![r#""2026-12-04T10:00:00Z""#, "1764842400000", "null"],
        ),
        (
            "user_id",
            vec![r#""u1""#, "42", r#"" ""#, "null", "18446744073709551615"],
        ),
        (
            "ip",
            vec![r#""81.2.69.142""#, r#"" 8.8.8.8 ""#, r#""::1""#, "null"],
        ),
        ("amount", vec!["12.5", "0", "1e3", "null"]),
        ("status", vec![r#""failed""#, r#""completed""#]),
        ("action", vec![r#""login_failed""#, r#""view""#]),
        ("country", vec![r#""US""#, r#""de""#]),
        ("level", vec![r#""ERROR""#, r#""info""#, r#"" Warn ""#]),
        ("service", vec![r#""checkout""#]),
        ("message", vec![r#""payment failed for tx-1""#, r#""""#]),
        ("error_message", vec![r#""gateway é timeout""#]),
        ("event_id", vec![r#""e-1""#, r#""""#]),
    ];
    let fields = forms
        .into_iter()
        .map(|(name, values)| {
            prop::option::of(prop::sample::select(values)).prop_map(move |value| {
                value.map_or_else(String::new, |value| format!(",\"{name}\":{value}"))
            })
        })
        .collect::<Vec<_>>();
    (record_of(false), fields).prop_map(|(base, fields)| {
        let mut text = String::from_utf8_lossy(&base).into_owned();
        match text.rfind('}') {
            Some(end) => text.insert_str(end, &fields.concat()),
            None => text.push_str(&fields.concat()),
        }
        text.into_bytes()
    })
}

/// One of the generator's events, as shops send them.
fn sample_record() -> impl Strategy<Value = Vec<u8>> {
    any::<u64>().prop_map(|seed| {
        let mut events =
            sluice_sample::SampleGenerator::new(seed, 1, 1_767_225_600_000, 86_400_000);
        serde_json::to_vec(&events.next().expect("an event")).expect("JSON")
    })
}

/// Each document goes to an index of its own: how one document's fields map must not depend on
/// the documents before it (a field first seen as text, then as an object, is refused by any
/// Elasticsearch, and that is the store's state, not the record's validity). Arrays hold one
/// kind each: Elasticsearch maps a new field from an array's first item and coerces the rest to
/// it, which this stand-in does not do; with `index.mapping.ignore_malformed` a real cluster
/// keeps the document either way.
#[test]
fn ingest_the_processor_and_elasticsearch_agree_on_every_record() {
    let url = std::env::var("TEST_ELASTICSEARCH_URL").expect(
        "TEST_ELASTICSEARCH_URL is not set: run the suite through scripts/test.sh, which starts \
         the Elasticsearch-API server",
    );
    let run = format!(
        "agreement-{}-{}",
        std::process::id(),
        sluice_event::now_ms()
    );
    let stores = std::cell::Cell::new(0usize);
    let runtime = runtime();
    let pipeline = std::cell::RefCell::new(pipeline());
    proptest!(cases(40), |(records in prop::collection::vec(record_of(true), 1..6))| {
        let documents = agree(&mut pipeline.borrow_mut(), &records)?;
        for document in documents {
            stores.set(stores.get() + 1);
            let config = ElasticsearchConfig {
                index_prefix: format!("{run}-{}", stores.get()),
                ..ElasticsearchConfig::default()
            };
            let store = ElasticStore::connect(&url, config).expect("client");
            let shown = document.source.clone();
            let report = runtime.block_on(store.index(Arc::new(vec![document])));
            let report = report.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(report.indexed, 1, "refused: {:?} {}", report.rejected, shown);
        }
    });
}
