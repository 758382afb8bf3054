//! Scoring on demand: against the processor's own engine (serve) and against history read back
//! from the event store (an api process alone), the same transactions get the same scores.

use std::sync::Arc;

use serde_json::json;
use sluice_event::validate::Limits;
use sluice_event::{QueuedRecord, Source};
use sluice_fraud::{DetectError, FraudConfig, FraudDetector, FraudEngine, History};
use sluice_geoip::GeoResolver;
use sluice_geoip::testing::write_sample_city;
use sluice_processor::{OnDemandScorer, Pipeline};
use sluice_store::EventStore;
use sluice_store_tantivy::TantivyStore;

const T0: i64 = 1_795_514_400_000;
const LONDON_IP: &str = "81.128.0.10";
const TOKYO_IP: &str = "126.0.0.10";
const LAGOS_IP: &str = "105.112.0.10";

fn at(offset_ms: i64) -> String {
    sluice_event::format_rfc3339_ms(T0 + offset_ms)
}

fn record(n: usize, mut event: serde_json::Value) -> QueuedRecord {
    if event["log_type"] == "transaction" {
        event["transaction_id"] = json!(format!("tx-{n}"));
    }
    QueuedRecord {
        id: Some(format!("evt-{n}")),
        received_at_ms: T0,
        source: Source::Http,
        partition_key: None,
        payload: serde_json::to_vec(&event).expect("JSON"),
    }
}

fn geo(dir: &std::path::Path) -> GeoResolver {
    let path = dir.join("city.mmdb");
    if !path.exists() {
        write_sample_city(&path).expect("mmdb");
    }
    GeoResolver::open(Some(path), 100).expect("geo")
}

#[tokio::test]
async fn shared_and_rebuilt_history_score_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = FraudConfig::default();
    let mut pipeline = Pipeline::new(
        Limits::default(),
        geo(dir.path()),
        FraudEngine::new(config.clone()),
    );
    // Alice: a few ordinary purchases in London, then four within a minute; a failed login.
    // Bob: failed payments from the Lagos IP, which others then use.
    let mut events = Vec::new();
    for (i, amount) in [40.0, 55.0, 38.0, 61.0, 47.0, 52.0].iter().enumerate() {
        events.push(
            json!({"log_type": "transaction", "user_id": "alice", "amount": amount,
            "status": "completed", "country": "GB", "ip": LONDON_IP,
            "timestamp": at(i as i64 * 3_600_000)}),
        );
    }
    for i in 0..4 {
        events.push(
            json!({"log_type": "transaction", "user_id": "alice", "amount": 30,
            "status": "completed", "country": "GB", "ip": LONDON_IP,
            "timestamp": at(8 * 3_600_000 + i * 10_000)}),
        );
    }
    events.push(
        json!({"log_type": "user_behavior", "user_id": "alice", "action": "login_failed",
        "ip": LONDON_IP, "timestamp": at(8 * 3_600_000 + 45_000)}),
    );
    for i in 0..3 {
        events.push(
            json!({"log_type": "transaction", "user_id": "bob", "amount": 99,
            "status": "declined", "country": "NG", "ip": LAGOS_IP,
            "timestamp": at(8 * 3_600_000 + i * 20_000)}),
        );
    }
    let records: Vec<QueuedRecord> = events
        .into_iter()
        .enumerate()
        .map(|(n, e)| record(n, e))
        .collect();
    let output = pipeline.process(&records);
    let refused: Vec<_> = output.dead_letters.iter().map(|d| &d.reason).collect();
    assert!(refused.is_empty(), "{refused:?}");
    let store = TantivyStore::open(&dir.path().join("index"), 20_000_000).expect("store");
    store
        .index(Arc::new(output.documents))
        .await
        .expect("indexed");

    let shared =
        OnDemandScorer::shared(Limits::default(), geo(dir.path()), pipeline.fraud_engine());
    let rebuilt =
        OnDemandScorer::from_store(Limits::default(), geo(dir.path()), Arc::new(store), config);
    let probes = [
        // The fifth within a minute.
        json!({"user_id": "alice", "amount": 30, "status": "completed", "country": "GB",
               "ip": LONDON_IP, "timestamp": at(8 * 3_600_000 + 50_000)}),
        // Far above her usual basket, from Tokyo an hour after London, declared GB.
        json!({"user_id": "alice", "amount": 900, "status": "completed", "country": "GB",
               "ip": TOKYO_IP, "timestamp": at(9 * 3_600_000)}),
        // Someone else on the IP with failures, from a high-risk country.
        json!({"log_type": "transaction", "user_id": "carol", "amount": 1500, "country": "NG",
               "ip": LAGOS_IP, "timestamp": at(8 * 3_600_000 + 70_000)}),
        // A stranger with nothing remarkable.
        json!({"user_id": "dave", "amount": 20, "country": "DE", "timestamp": at(9 * 3_600_000)}),
    ];
    let mut fired_somewhere = false;
    for probe in probes {
        let body = serde_json::to_vec(&probe).expect("JSON");
        let from_shared = shared.detect(&body).await.expect("scored");
        let from_store = rebuilt.detect(&body).await.expect("scored");
        assert_eq!(from_shared.history, History::Shared);
        assert!(matches!(from_store.history, History::Rebuilt { .. }));
        assert_eq!(
            from_shared.assessment, from_store.assessment,
            "the same score either way for {probe}"
        );
        fired_somewhere |= !from_shared.assessment.indicators.is_empty();
        // Asking again gives the same: nothing was remembered.
        assert_eq!(
            shared.detect(&body).await.expect("scored").assessment,
            from_shared.assessment
        );
    }
    assert!(fired_somewhere, "the probes exercise the indicators");
    let rapid = shared
        .detect(
            &serde_json::to_vec(&json!({"user_id": "alice", "amount": 30, "ip": LONDON_IP,
                "timestamp": at(8 * 3_600_000 + 50_000)}))
            .expect("JSON"),
        )
        .await
        .expect("scored");
    assert!(
        rapid
            .assessment
            .indicators
            .iter()
            .any(|i| i.as_str() == "rapid_transactions"),
        "{rapid:?}"
    );

    // What is refused, and why.
    let refused = |body: &'static [u8]| {
        let shared = &shared;
        async move { shared.detect(body).await.expect_err("refused") }
    };
    assert!(matches!(
        refused(b"not json").await,
        DetectError::Invalid(_)
    ));
    assert!(matches!(
        refused(br#"{"log_type":"error","error_message":"x"}"#).await,
        DetectError::NotATransaction(_)
    ));
    match refused(br#"{"user_id":"x"}"#).await {
        DetectError::Invalid(issues) => assert_eq!(issues[0].field, "amount"),
        other => panic!("{other:?}"),
    }
    match refused(br#"{"amount":"lots"}"#).await {
        DetectError::Invalid(issues) => assert_eq!(issues[0].field, "amount"),
        other => panic!("{other:?}"),
    }
}
