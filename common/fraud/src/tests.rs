use super::*;

const T0: i64 = 1_714_564_800_000;
const MIN: i64 = 60_000;
const LONDON: (f64, f64) = (51.5, -0.12);
const TOKYO: (f64, f64) = (35.68, 139.69);

fn found(iso: &'static str, coordinates: (f64, f64)) -> GeoFacts<'static> {
    GeoFacts::Found {
        country_iso: Some(iso),
        coordinates: Some(coordinates),
        anonymous: false,
    }
}

fn tx(user: &'static str, at: i64, amount: f64) -> FraudInput<'static> {
    FraudInput {
        user_id: Some(user),
        ip: Some("81.2.69.142".parse().expect("ip")),
        event_time_ms: at,
        activity: Activity::Transaction {
            amount,
            failed: false,
        },
        declared_country: Some("GB"),
        geo: found("GB", LONDON),
    }
}

fn fired(engine: &mut FraudEngine, input: FraudInput<'_>) -> Vec<Indicator> {
    engine
        .assess(&input)
        .expect("transactions are scored")
        .indicators
}

fn engine() -> FraudEngine {
    FraudEngine::new(FraudConfig::default())
}

#[test]
fn ordinary_transaction_fires_nothing() {
    let assessment = engine().assess(&tx("u", T0, 40.0)).expect("scored");
    assert_eq!(assessment.indicators, []);
    assert_eq!(assessment.score.to_string(), "0");
    assert!(!assessment.detected);
}

#[test]
fn high_amount_fires_at_threshold_only() {
    let mut e = engine();
    assert_eq!(fired(&mut e, tx("a", T0, 1000.0)), [Indicator::HighAmount]);
    assert_eq!(fired(&mut e, tx("b", T0, 999.99)), []);
}

#[test]
fn rapid_transactions_fire_on_the_fifth_within_a_minute() {
    let mut e = engine();
    for i in 0..4 {
        assert_eq!(fired(&mut e, tx("u", T0 + i * 5_000, 20.0)), []);
    }
    assert_eq!(
        fired(&mut e, tx("u", T0 + 20_000, 20.0)),
        [Indicator::RapidTransactions]
    );
}

#[test]
fn spread_out_transactions_are_not_rapid() {
    let mut e = engine();
    for i in 0..10 {
        assert_eq!(fired(&mut e, tx("u", T0 + i * 2 * MIN, 20.0)), []);
    }
}

fn failed_tx(user: &'static str, ip: &'static str, at: i64) -> FraudInput<'static> {
    FraudInput {
        ip: Some(ip.parse().expect("ip")),
        activity: Activity::Transaction {
            amount: 10.0,
            failed: true,
        },
        ..tx(user, at, 10.0)
    }
}

#[test]
fn failed_attempts_per_user_fire_on_the_third() {
    let mut e = engine();
    assert_eq!(fired(&mut e, failed_tx("u", "81.2.69.1", T0)), []);
    assert_eq!(fired(&mut e, failed_tx("u", "81.2.69.2", T0 + MIN)), []);
    assert_eq!(
        fired(&mut e, failed_tx("u", "81.2.69.3", T0 + 2 * MIN)),
        [Indicator::FailedAttempts]
    );
}

#[test]
fn failed_logins_count_towards_the_next_transaction() {
    let mut e = engine();
    for i in 0..3 {
        let login = FraudInput {
            activity: Activity::FailedAttempt,
            ..tx("u", T0 + i * MIN, 0.0)
        };
        assert_eq!(e.assess(&login), None);
    }
    assert_eq!(
        fired(&mut e, tx("u", T0 + 4 * MIN, 20.0)),
        [Indicator::FailedAttempts]
    );
}

#[test]
fn failed_attempts_per_ip_fire_across_users() {
    let mut e = engine();
    let users = ["a", "b", "c", "d"];
    for (i, user) in users.iter().enumerate() {
        assert_eq!(
            fired(&mut e, failed_tx(user, "5.5.5.5", T0 + i as i64 * MIN)),
            []
        );
    }
    assert_eq!(
        fired(&mut e, failed_tx("e", "5.5.5.5", T0 + 5 * MIN)),
        [Indicator::FailedAttempts]
    );
}

#[test]
fn old_failures_fall_out_of_the_window() {
    let mut e = engine();
    fired(&mut e, failed_tx("u", "81.2.69.1", T0));
    fired(&mut e, failed_tx("u", "81.2.69.1", T0 + MIN));
    assert_eq!(
        fired(&mut e, failed_tx("u", "81.2.69.1", T0 + 30 * MIN)),
        []
    );
}

#[test]
fn high_risk_country_is_suspicious_location() {
    let mut e = engine();
    let input = FraudInput {
        geo: found("NG", (6.45, 3.39)),
        declared_country: Some("NG"),
        ..tx("u", T0, 20.0)
    };
    assert_eq!(fired(&mut e, input), [Indicator::SuspiciousLocation]);
}

#[test]
fn unknown_and_anonymous_ips_are_suspicious_but_missing_database_is_not() {
    let mut e = engine();
    let unknown = FraudInput {
        geo: GeoFacts::Unknown,
        ..tx("a", T0, 20.0)
    };
    assert_eq!(fired(&mut e, unknown), [Indicator::SuspiciousLocation]);
    let anonymous = FraudInput {
        geo: GeoFacts::Found {
            country_iso: Some("GB"),
            coordinates: None,
            anonymous: true,
        },
        ..tx("b", T0, 20.0)
    };
    assert_eq!(fired(&mut e, anonymous), [Indicator::SuspiciousLocation]);
    let no_db = FraudInput {
        geo: GeoFacts::NoDatabase,
        ..tx("c", T0, 20.0)
    };
    assert_eq!(fired(&mut e, no_db), []);
}

#[test]
fn impossible_travel_is_suspicious_but_a_flight_is_not() {
    let mut e = engine();
    assert_eq!(fired(&mut e, tx("u", T0, 20.0)), []);
    let tokyo_soon = FraudInput {
        geo: found("JP", TOKYO),
        declared_country: Some("JP"),
        ..tx("u", T0 + 30 * MIN, 20.0)
    };
    assert_eq!(fired(&mut e, tokyo_soon), [Indicator::SuspiciousLocation]);
    let mut e = engine();
    fired(&mut e, tx("v", T0, 20.0));
    let tokyo_next_day = FraudInput {
        geo: found("JP", TOKYO),
        declared_country: Some("JP"),
        ..tx("v", T0 + 24 * 60 * MIN, 20.0)
    };
    assert_eq!(fired(&mut e, tokyo_next_day), []);
}

#[test]
fn ip_mismatch_fires_when_geo_country_differs_from_declared() {
    let mut e = engine();
    let input = FraudInput {
        declared_country: Some("us"),
        ..tx("u", T0, 20.0)
    };
    assert_eq!(fired(&mut e, input), [Indicator::IpMismatch]);
    let same = FraudInput {
        declared_country: Some("gb"),
        ..tx("v", T0, 20.0)
    };
    assert_eq!(fired(&mut e, same), []);
}

#[test]
fn amount_anomaly_needs_history_and_a_real_outlier() {
    let mut e = engine();
    for (i, amount) in [20.0, 25.0, 22.0, 30.0, 24.0].into_iter().enumerate() {
        assert_eq!(fired(&mut e, tx("u", T0 + i as i64 * 10 * MIN, amount)), []);
    }
    assert_eq!(fired(&mut e, tx("u", T0 + 60 * MIN, 35.0)), []);
    assert_eq!(
        fired(&mut e, tx("u", T0 + 70 * MIN, 400.0)),
        [Indicator::AmountAnomaly]
    );
    let mut fresh = engine();
    assert_eq!(fired(&mut fresh, tx("new", T0, 400.0)), []);
}

#[test]
fn score_sums_weights_and_detects_at_threshold() {
    let mut e = engine();
    let input = FraudInput {
        geo: found("NG", (6.45, 3.39)),
        declared_country: Some("US"),
        ..tx("u", T0, 5000.0)
    };
    let assessment = e.assess(&input).expect("scored");
    assert_eq!(
        assessment.indicators,
        [
            Indicator::HighAmount,
            Indicator::SuspiciousLocation,
            Indicator::IpMismatch
        ]
    );
    assert_eq!(assessment.score, 65.0);
    assert!(assessment.detected);
}

#[test]
fn state_is_bounded_by_max_keys() {
    let config = FraudConfig {
        state: StateLimits {
            max_keys: 10,
            ..StateLimits::default()
        },
        ..FraudConfig::default()
    };
    let mut e = FraudEngine::new(config);
    let users: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
    for user in &users {
        e.assess(&FraudInput {
            user_id: Some(user),
            ..tx("x", T0, 1.0)
        });
    }
    assert_eq!(e.tracked_users(), 10);
}

#[test]
fn state_expires_after_ttl_in_event_time() {
    let mut e = engine();
    for i in 0..4 {
        fired(&mut e, tx("u", T0 + i * 1000, 20.0));
    }
    let ttl = FraudConfig::default().state.ttl_secs as i64 * 1000;
    // Four quick transactions, then silence longer than the TTL: the history is gone, so four
    // more quick ones are not yet "rapid".
    for i in 0..4 {
        assert_eq!(
            fired(&mut e, tx("u", T0 + ttl + 10_000 + i * 1000, 20.0)),
            []
        );
    }
}

#[test]
fn other_activity_is_not_scored() {
    let input = FraudInput {
        activity: Activity::Other,
        ..tx("u", T0, 0.0)
    };
    assert_eq!(engine().assess(&input), None);
}

#[test]
fn haversine_london_tokyo_is_about_9560_km() {
    let km = haversine_km(LONDON, TOKYO);
    assert!((9500.0..9650.0).contains(&km), "{km}");
}

#[test]
fn a_preview_scores_as_assess_would_and_remembers_nothing() {
    let mut e = engine();
    for i in 0..4 {
        fired(&mut e, tx("u", T0 + i * 5_000, 20.0));
    }
    let fifth = tx("u", T0 + 20_000, 20.0);
    let previewed = e.preview(&fifth).expect("scored");
    assert_eq!(previewed.indicators, [Indicator::RapidTransactions]);
    assert_eq!(
        e.preview(&fifth).expect("scored"),
        previewed,
        "asking again changes nothing"
    );
    assert_eq!(
        e.assess(&fifth).expect("scored"),
        previewed,
        "the same as scoring it"
    );
    let stranger = tx("someone-else", T0, 20.0);
    assert_eq!(e.preview(&stranger).expect("scored").indicators, []);
    assert_eq!(e.tracked_users(), 1, "a preview adds no state");
}
