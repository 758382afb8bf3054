use super::*;
use serde_json::Value;
use sluice_event::Source;
use sluice_fraud::FraudConfig;
use sluice_geoip::testing::write_sample_city;
use sluice_store::{Field, FieldValue, FieldValues};

fn record(json: &str, id: Option<&str>) -> QueuedRecord {
    QueuedRecord {
        id: id.map(str::to_owned),
        received_at_ms: 1_714_564_800_000,
        source: Source::Http,
        partition_key: None,
        payload: json.as_bytes().to_vec(),
    }
}

fn pipeline_with_geo() -> (tempfile::TempDir, Pipeline) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("city.mmdb");
    write_sample_city(&path).expect("mmdb");
    let geo = GeoResolver::open(Some(path), 100).expect("geo");
    let pipeline = Pipeline::new(
        Limits::default(),
        geo,
        FraudEngine::new(FraudConfig::default()),
    );
    (dir, pipeline)
}

fn source(document: &StoreDocument) -> Value {
    serde_json::from_str(&document.source).expect("document is JSON")
}

const TX: &str = r#"{"log_type":"transaction","transaction_id":"t1","user_id":"u1","amount":2500,"country":"US","ip":"105.112.1.1","timestamp":"2024-05-01T11:59:00Z","service":"checkout","level":"INFO","message":"paid","coupon":"X1"}"#;

#[test]
fn transaction_becomes_an_enriched_scored_document() {
    let (_dir, mut pipeline) = pipeline_with_geo();
    let out = pipeline.process(&[record(TX, Some("evt-1"))]);
    assert!(out.dead_letters.is_empty(), "{:?}", out.dead_letters);
    let document = &out.documents[0];
    assert_eq!(document.id, "evt-1");
    assert_eq!(document.timestamp_ms, 1_714_564_740_000);
    assert_eq!(
        document.fields.of(Field::Level),
        [FieldValue::Keyword("info")],
        "levels are indexed in lower case"
    );
    let doc = source(document);
    assert_eq!(doc["coupon"], "X1", "unknown fields are kept");
    assert_eq!(doc["@timestamp"], "2024-05-01T11:59:00.000Z");
    assert_eq!(doc["geo"]["country_iso_code"], "NG");
    assert_eq!(doc["geo"]["city_name"], "Lagos");
    assert_eq!(doc["geo"]["location"]["lat"], 6.45);
    assert_eq!(doc["ingest"]["source"], "http");
    assert_eq!(doc["ingest"]["received_at"], "2024-05-01T12:00:00.000Z");
    assert_eq!(doc["fraud"]["score"], 65.0);
    assert_eq!(doc["fraud"]["detected"], true);
    assert_eq!(
        doc["fraud"]["indicators"],
        serde_json::json!(["high_amount", "suspicious_location", "ip_mismatch"])
    );
}

#[test]
fn without_an_envelope_id_the_id_is_the_record_hash() {
    let (_dir, mut pipeline) = pipeline_with_geo();
    let a = pipeline.process(&[record(TX, None)]);
    let b = pipeline.process(&[record(TX, None)]);
    assert_eq!(a.documents[0].id, b.documents[0].id);
    assert_eq!(a.documents[0].id.len(), 32);
}

#[test]
fn invalid_records_become_dead_letters_with_their_bytes() {
    let (_dir, mut pipeline) = pipeline_with_geo();
    let bad = r#"{"log_type":"transaction","amount":-5}"#;
    let out = pipeline.process(&[record(TX, None), record(bad, None), record("{oops", None)]);
    assert_eq!(out.documents.len(), 1);
    assert_eq!(out.dead_letters.len(), 2);
    let first = &out.dead_letters[0];
    assert_eq!(first.payload, bad.as_bytes());
    assert_eq!(first.stage, "validate");
    assert!(first.reason.contains("amount"), "{}", first.reason);
    assert_eq!(out.dead_letters[1].code, RejectCode::MalformedJson);
}

#[test]
fn upstream_fraud_records_keep_their_verdict() {
    let (_dir, mut pipeline) = pipeline_with_geo();
    let fraud = r#"{"log_type":"fraud","transaction_id":"t9","fraud_score":88,"fraud_detected":true,"indicators":["velocity"]}"#;
    let out = pipeline.process(&[record(fraud, None)]);
    let doc = source(&out.documents[0]);
    assert_eq!(doc["fraud"]["score"], 88.0);
    assert_eq!(doc["fraud"]["source"], "upstream");
    assert_eq!(doc["fraud"]["indicators"], serde_json::json!(["velocity"]));
}

#[test]
fn non_transactions_get_no_fraud_and_private_ips_no_geo() {
    let (_dir, mut pipeline) = pipeline_with_geo();
    let perf =
        r#"{"log_type":"performance","endpoint":"/api/cart","response_time":12,"ip":"10.0.0.1"}"#;
    let out = pipeline.process(&[record(perf, None)]);
    let doc = source(&out.documents[0]);
    assert!(doc.get("fraud").is_none());
    assert!(doc.get("geo").is_none());
}

#[test]
fn without_geoip_events_still_flow() {
    let mut pipeline = Pipeline::new(
        Limits::default(),
        GeoResolver::without_database(),
        FraudEngine::new(FraudConfig::default()),
    );
    let out = pipeline.process(&[record(TX, None)]);
    let doc = source(&out.documents[0]);
    assert!(doc.get("geo").is_none());
    assert_eq!(
        doc["fraud"]["indicators"],
        serde_json::json!(["high_amount"])
    );
}

/// The values handed to the store, sorted so that two readings compare whatever their order.
fn sorted_values(values: &FieldValues) -> Vec<(Field, String)> {
    let mut listed: Vec<(Field, String)> = values
        .iter()
        .map(|(field, value)| (field, format!("{value:?}")))
        .collect();
    listed.sort();
    listed
}

/// One parse: the store indexes the values the processor read off the record, not a second
/// reading of the document; they must be exactly the values the document holds, as the
/// reference reading (and Elasticsearch, which reads the document) finds them.
fn assert_indexed_values_are_the_documents(document: &StoreDocument) {
    let reread = FieldValues::of_document(&source(document));
    assert_eq!(
        sorted_values(&document.fields),
        sorted_values(&reread),
        "{}",
        document.source
    );
}

#[test]
fn indexed_values_are_the_documents_for_generated_events() {
    let (_dir, mut pipeline) = pipeline_with_geo();
    let records: Vec<QueuedRecord> =
        sluice_sample::SampleGenerator::new(11, 2_000, 1_714_564_800_000, 86_400_000)
            .take(2_000)
            .map(|event| record(&event.to_string(), None))
            .collect();
    let out = pipeline.process(&records);
    assert!(
        out.dead_letters.is_empty(),
        "{:?}",
        out.dead_letters.first()
    );
    assert!(
        out.documents
            .iter()
            .any(|d| !d.fields.of(Field::GeoCountry).is_empty())
    );
    assert!(
        out.documents
            .iter()
            .any(|d| !d.fields.of(Field::FraudScore).is_empty())
    );
    for document in &out.documents {
        assert_indexed_values_are_the_documents(document);
    }
}

mod one_parse {
    use super::*;
    use proptest::prelude::*;

    /// Values of every JSON type, the edges of typing among them: numeric text, integers
    /// beyond 64 bits' signed range, floats, escapes, mixed arrays.
    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
            "[ -~]{0,12}".prop_map(Value::from),
            prop_oneof![
                Just(" 12.5 "),
                Just("7"),
                Just("-3.9"),
                Just("true"),
                Just("false"),
                Just("1e3"),
                Just("ERROR"),
                Just(" Warn "),
                Just("quote \" back \\ slash\n"),
                Just("ünïcødé ✓"),
            ]
            .prop_map(Value::from),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => scalar(),
            1 => proptest::collection::vec(scalar(), 0..4).prop_map(Value::from),
            1 => scalar().prop_map(|inner| serde_json::json!({ "nested": inner })),
        ]
    }

    const KEYS: &[&str] = &[
        "user_id",
        "ip",
        "transaction_id",
        "payment_method",
        "status",
        "currency",
        "product_id",
        "product_name",
        "category",
        "country",
        "error_code",
        "error_type",
        "endpoint",
        "action",
        "page",
        "session_id",
        "status_code",
        "quantity",
        "amount",
        "response_time",
        "db_query_time",
        "level",
        "service",
        "message",
        "coupon",
        "fraud_score",
        "indicators",
        "fraud_detected",
    ];

    fn record_json() -> impl Strategy<Value = Value> {
        let log_type = prop_oneof![
            Just("transaction"),
            Just("error"),
            Just("user_behavior"),
            Just("performance"),
            Just("fraud"),
        ];
        (
            log_type,
            proptest::collection::btree_map(proptest::sample::select(KEYS), value(), 0..12),
        )
            .prop_map(|(log_type, fields)| {
                let mut object = serde_json::Map::new();
                object.insert("log_type".into(), log_type.into());
                for (key, value) in fields {
                    object.insert(key.into(), value);
                }
                // What a record of its type must have, so that most cases reach the store.
                for (key, value) in [
                    ("transaction_id", Value::from("t")),
                    ("user_id", "u".into()),
                    ("amount", 1.into()),
                    ("endpoint", "/e".into()),
                    ("response_time", 2.into()),
                    ("message", "m".into()),
                    ("action", "view".into()),
                ] {
                    object.entry(key).or_insert(value);
                }
                Value::Object(object)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn indexed_values_are_the_documents(json in record_json()) {
            let (_dir, mut pipeline) = pipeline_with_geo();
            let out = pipeline.process(&[record(&json.to_string(), None)]);
            for document in &out.documents {
                assert_indexed_values_are_the_documents(document);
            }
        }
    }

    /// Found by the property test: serde_json's default float parser rounded
    /// `213704457812.49866` to a neighbouring double, where simd-json and Elasticsearch
    /// (Java's `Double.parseDouble`) round correctly; the reference reading parses floats
    /// exactly (`float_roundtrip`), so both readings hold the number the text says.
    #[test]
    fn a_float_serde_json_rounded_wrongly_is_indexed_as_written() {
        let (_dir, mut pipeline) = pipeline_with_geo();
        let json = r#"{"log_type":"user_behavior","amount":213704457812.49866,"transaction_id":"t","user_id":"u","endpoint":"/e","response_time":2,"message":"m","action":"view"}"#;
        let out = pipeline.process(&[record(json, None)]);
        let document = &out.documents[0];
        assert_indexed_values_are_the_documents(document);
        let amount = document
            .fields
            .iter()
            .find(|(field, _)| *field == Field::Amount)
            .map(|(_, value)| format!("{value:?}"));
        assert_eq!(amount.as_deref(), Some("Double(213704457812.49866)"));
    }
}

/// For a store that reads the document itself, the processor skips the typed values and the
/// document is the same.
#[test]
fn without_field_values_the_document_is_the_same_and_carries_none() {
    let (_dir, pipeline) = pipeline_with_geo();
    let (_other_dir, mut typed) = pipeline_with_geo();
    let mut untyped = pipeline.without_field_values();
    let plain = untyped.process(&[record(TX, Some("evt-1"))]);
    let full = typed.process(&[record(TX, Some("evt-1"))]);
    assert!(plain.documents[0].fields.iter().next().is_none());
    assert!(full.documents[0].fields.iter().next().is_some());
    assert_eq!(plain.documents[0].source, full.documents[0].source);
}
