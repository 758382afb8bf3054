//! Rollups over HTTP: a dashboard over days is answered from the embedded store's rollups (the
//! `x-sluice-aggregation` header says so) with the figures of the events; a question rollups do
//! not keep (minute buckets) reads the events and says that; `sluice rollups rebuild` rebuilds
//! them in a stopped server's data directory, and the answers stay the same; with
//! `store.rollups = false` every question reads the events.

use std::time::Duration;

use serde_json::json;

use crate::support::{Server, count_by_type, generate, sluice_command};

/// No answer cache: each request below is computed, so its header says how.
const ENV: &[(&str, &str)] = &[("SLUICE_CACHE__ANSWER_TTL_SECS", "0")];

#[tokio::test]
async fn dashboards_over_days_are_answered_from_rollups_and_rebuilt_on_demand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), None, ENV);
    let events = generate(16, 3_000, 1, 70);
    for batch in events.chunks(500) {
        let (status, answer) = server.post_ndjson("/api/logs/ingest", batch).await;
        assert_eq!(status, 202, "{answer}");
    }
    server
        .wait_for_total(
            json!({"size": 0}),
            events.len() as u64,
            Duration::from_secs(60),
        )
        .await;

    let now = sluice_event::now_ms();
    let week = format!("from={}&to={now}", now - 7 * 86_400_000);
    let (overview, taken) = server
        .get_aggregated(&format!("/api/dashboard/overview?{week}"))
        .await;
    assert_eq!(taken, "rollups");
    let expected = count_by_type(&events);
    assert_eq!(overview["stats"]["events"], events.len());
    assert_eq!(overview["stats"]["transactions"], expected["transaction"]);
    assert_eq!(overview["stats"]["errors"], expected["error"]);
    for endpoint in [
        "/api/analytics/transactions",
        "/api/analytics/user-behavior",
        "/api/performance/metrics",
        "/api/fraud/stats",
    ] {
        let (_, taken) = server.get_aggregated(&format!("{endpoint}?{week}")).await;
        assert_eq!(taken, "rollups", "{endpoint}");
    }
    let (_, taken) = server
        .get_aggregated("/api/dashboard/metrics?range=1h")
        .await;
    assert_eq!(taken, "events", "minute buckets are read from the events");

    server.stop();
    let rebuilt = sluice_command(dir.path(), &["rollups", "rebuild"], "", ENV);
    let said = String::from_utf8_lossy(&rebuilt.stdout);
    assert!(
        rebuilt.status.success() && said.contains("rebuilt the rollups of"),
        "{said} {}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let mut server = Server::start(dir.path(), None, ENV);
    let (again, taken) = server
        .get_aggregated(&format!("/api/dashboard/overview?{week}"))
        .await;
    assert_eq!(taken, "rollups");
    for part in ["stats", "timeline", "charts"] {
        assert_eq!(again[part], overview[part], "{part} after the rebuild");
    }

    server.stop();
    let rollups_off: Vec<(&str, &str)> = ENV
        .iter()
        .copied()
        .chain([("SLUICE_STORE__ROLLUPS", "false")])
        .collect();
    let server = Server::start(dir.path(), None, &rollups_off);
    let (by_events, taken) = server
        .get_aggregated(&format!("/api/dashboard/overview?{week}"))
        .await;
    assert_eq!(taken, "events", "store.rollups = false reads the events");
    for count in ["events", "transactions", "errors", "fraud_alerts"] {
        assert_eq!(
            by_events["stats"][count], overview["stats"][count],
            "{count}"
        );
    }
}

#[tokio::test]
async fn rebuilding_rollups_refuses_a_data_directory_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _server = Server::start(dir.path(), None, ENV);
    let refused = sluice_command(dir.path(), &["rollups", "rebuild"], "", ENV);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        said.contains("stop the sluice that uses this data directory"),
        "{said}"
    );
}
