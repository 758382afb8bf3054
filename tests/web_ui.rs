//! The web UI in a real browser. Starts `sluice serve` with a GeoIP database, a viewer, an
//! analyst, a moderator and events from `sluice gen`, then runs the Chromium tests in
//! `api/web/tests/` (playwright-core driving Debian's chromium) against it, and fails with their
//! output when one fails. Their screenshots go to `$UI_SCREENSHOTS`, or
//! `target/ui-screenshots`.
//!
//! Needs Node.js, `npm ci` in `api/web` and `/usr/bin/chromium`: `scripts/test.sh` installs them.
//! Without them this test fails and says what is missing; it never skips.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::{ADMIN, ADMIN_PASSWORD, Server, create_user, sample_geoip};

const PASSWORD: &str = "Browser-Test-Passw0rd";
/// Short-lived access tokens, so the browser tests see one expire and be refreshed.
const ACCESS_TTL_SECS: &str = "10";
const KIBANA_DASHBOARD: &str = "http://127.0.0.1:9/app/dashboards#/view/sluice-overview";
const GENERATED_EVENTS: usize = 3000;

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("api/web")
}

/// Node.js, the locked packages and Chromium, or a panic that says how to get them.
fn check_browser_tools(web: &Path, chromium: &str) {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|output| output.status.success()),
        "the web UI tests need Node.js (node on the PATH); scripts/test.sh installs what they need"
    );
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "the web UI tests need playwright-core: run `npm ci` in {}",
        web.display()
    );
    assert!(
        Path::new(chromium).is_file(),
        "the web UI tests need Chromium at {chromium}: apt-get install chromium \
         (or set CHROMIUM_PATH)"
    );
}

/// `sluice gen` output, as a producer would send it.
fn generated_events(dir: &Path) -> Vec<u8> {
    let file = dir.join("events.ndjson");
    let status = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "gen",
            "--count",
            &GENERATED_EVENTS.to_string(),
            "--seed",
            "7",
        ])
        .arg("--out")
        .arg(&file)
        .status()
        .expect("sluice gen runs");
    assert!(status.success(), "sluice gen failed");
    std::fs::read(&file).expect("generated events")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_works_in_chromium() {
    let web = web_dir();
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    check_browser_tools(&web, &chromium);
    let screenshots = std::env::var_os("UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots"));
    std::fs::create_dir_all(&screenshots).expect("screenshot folder");

    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let geoip = sample_geoip(dir.path());
    // Two records another producer wrote straight into the queue, which the processor refuses:
    // the dead letters the admin's page lists.
    support::append_to_queue(
        &data,
        &[
            br#"{"log_type":"transaction","amount":-1,"user_id":"u","transaction_id":"t"}"#,
            br#"{"log_type":"error","error_message":"#,
        ],
    )
    .await;
    let server = Server::start(
        &data,
        Some(&geoip),
        &[
            ("SLUICE_AUTH__ACCESS_TTL_SECS", ACCESS_TTL_SECS),
            // Every test logs in afresh, all from 127.0.0.1.
            ("SLUICE_AUTH__LOGIN__PER_IP_PER_MINUTE", "1000"),
            ("SLUICE_AUTH__LOGIN__PER_USERNAME_PER_MINUTE", "1000"),
            ("SLUICE_KIBANA__DASHBOARD_URL", KIBANA_DASHBOARD),
        ],
    );
    for (name, role) in [
        ("vera", "viewer"),
        ("anna", "analyst"),
        ("moritz", "moderator"),
        ("victor", "viewer"),
    ] {
        create_user(&data, name, role, PASSWORD);
    }

    let events = generated_events(dir.path());
    let (status, answer) = server
        .post("/api/logs/ingest", "application/x-ndjson", events)
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], GENERATED_EVENTS, "{answer}");
    server
        .wait_for_total(json!({}), GENERATED_EVENTS as u64, Duration::from_secs(60))
        .await;

    let users = json!({
        "admin": {"username": ADMIN, "password": ADMIN_PASSWORD},
        "viewer": {"username": "vera", "password": PASSWORD},
        "analyst": {"username": "anna", "password": PASSWORD},
        "moderator": {"username": "moritz", "password": PASSWORD},
        "promoted": {"username": "victor", "password": PASSWORD},
    });
    let output = tokio::task::spawn_blocking({
        let web = web.clone();
        let base = server.base.clone();
        let screenshots = screenshots.clone();
        move || {
            Command::new("node")
                .args(["--test", "--test-concurrency=1", "tests/"])
                .current_dir(&web)
                .env("SLUICE_URL", base)
                .env("SLUICE_USERS", users.to_string())
                .env("SLUICE_SCREENSHOTS", &screenshots)
                .env("CHROMIUM_PATH", chromium)
                .env("SLUICE_KIBANA_DASHBOARD", KIBANA_DASHBOARD)
                .env("SLUICE_GENERATED_EVENTS", GENERATED_EVENTS.to_string())
                .env("SLUICE_ACCESS_TTL_SECS", ACCESS_TTL_SECS)
                .output()
                .expect("node runs")
        }
    })
    .await
    .expect("node finished");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    if !output.status.success() {
        let log = std::fs::read_to_string(data.join("serve.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "the Chromium tests failed (output above; screenshots in {}); the server's last log lines:\n{}",
            screenshots.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    println!("screenshots of every page: {}", screenshots.display());
}

/// What the shell is told and sent, without a browser: the caller's pages and the Kibana
/// dashboard (none configured here), the security headers, conditional requests, and a clear
/// 404 for a file the UI does not have.
#[tokio::test]
async fn the_shell_serves_its_files_and_each_role_its_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    create_user(dir.path(), "vera", "viewer", PASSWORD);
    let server = Server::start(dir.path(), None, &[]);

    let ui: serde_json::Value = server.get_json("/api/ui").await;
    assert_eq!(ui["user"]["username"], ADMIN);
    assert_eq!(
        ui["pages"],
        json!([
            "dashboard",
            "search",
            "upload",
            "fraud",
            "performance",
            "kibana",
            "users",
            "dead-letters",
            "profile"
        ])
    );
    assert_eq!(ui["kibana"], json!({"dashboard_url": null}), "{ui}");
    let viewer =
        support::client_with_token(&support::login_blocking(&server.base, "vera", PASSWORD));
    let ui: serde_json::Value = viewer
        .get(server.url("/api/ui"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(ui["pages"], json!(["dashboard", "profile"]));
    assert_eq!(ui["kibana"], serde_json::Value::Null, "{ui}");

    let shell = server
        .anonymous
        .get(server.url("/ui"))
        .send()
        .await
        .expect("sent");
    assert_eq!(shell.status(), 200, "/ui leads to /ui/");
    let headers = shell.headers().clone();
    let policy = headers["content-security-policy"].to_str().expect("text");
    assert!(policy.contains("frame-src 'none'"), "{policy}");
    assert!(policy.contains("script-src 'self' blob:"), "{policy}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(shell.text().await.expect("html").contains("assets/app.js"));

    let chart = server
        .anonymous
        .get(server.url("/ui/assets/vendor/chart.umd.min.js"))
        .send()
        .await
        .expect("sent");
    assert_eq!(chart.status(), 200);
    assert_eq!(
        chart.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let etag = chart.headers()["etag"].clone();
    let again = server
        .anonymous
        .get(server.url("/ui/assets/vendor/chart.umd.min.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("sent");
    assert_eq!(again.status(), 304, "an unchanged file is not sent twice");

    let missing = server
        .anonymous
        .get(server.url("/ui/assets/../../Cargo.toml"))
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.status(), 404);
    let missing = server
        .anonymous
        .get(server.url("/ui/assets/secrets.js"))
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.status(), 404);
    let error: serde_json::Value = missing.json().await.expect("JSON error");
    assert_eq!(error["error"]["code"], "not_found");
}
