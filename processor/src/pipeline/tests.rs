use super::*;
use serde_json::Value;
use sluice_event::Source;
use sluice_fraud::FraudConfig;
use sluice_geoip::testing::write_sample_city;

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
    serde_json::from_slice(&document.source).expect("document is JSON")
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
    assert_eq!(document.level.as_deref(), Some("INFO"));
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
