//! The API contract, checked from outside: schemathesis (PyPI, in the test venv) reads
//! `/api/openapi.json` from a running `sluice serve` that holds events, a dead letter and a
//! fraud detection, generates requests from it and checks every answer against it — every
//! check it has, in every phase: examples, coverage, fuzzing, and the stateful phase, which
//! chains operations through the ids their answers return. The document is generated from the
//! code, so this is what keeps code and document honest with each other: a status, a field or a
//! type the server answers and the document does not say fails here, and so does a request the
//! document forbids that the server takes.
//!
//! What schemathesis is told is in `tests/contract/`: how to log in (`hooks.py`: the run's own
//! calls of logout and change-password end sessions, so it logs in again on a 401), how to send
//! NDJSON, and, in `schemathesis.toml`, which operations may answer 400 to requests the document
//! allows, because of a rule JSON Schema cannot state (each is named there).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::{ADMIN, ADMIN_PASSWORD, Server, service};

/// Fixed, so a failure is reproducible with `schemathesis run --seed`.
const SEED: &str = "20261203";
/// Examples per operation and phase: enough to reach every branch of the parameter sets, few
/// enough for a debug build on two cores.
const EXAMPLES: &str = "30";

fn contract_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_as_its_openapi_document_says() {
    let python = service("TEST_PYTHON");
    let schemathesis = Path::new(&python).with_file_name("schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: scripts/test-services.sh installs schemathesis into the test venv",
        schemathesis.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    // A record only a producer writing straight into the queue could send: a dead letter.
    support::append_to_queue(
        &data,
        &[br#"{"log_type":"transaction","amount":-1,"user_id":"u","transaction_id":"t"}"#],
    )
    .await;
    // The run tries logins with made-up passwords; the admin must not be locked out by them.
    let server = Server::start(
        &data,
        None,
        &[
            ("SLUICE_AUTH__LOGIN__PER_IP_PER_MINUTE", "1000000"),
            ("SLUICE_AUTH__LOGIN__PER_USERNAME_PER_MINUTE", "1000000"),
            ("SLUICE_AUTH__LOGIN__LOCKOUT_FAILURES", "1000000"),
        ],
    );
    let mut events = support::generate(11, 1_000, 0, 24);
    events.push(json!({
        "log_type": "fraud", "transaction_id": "tx-contract", "user_id": "user-contract",
        "fraud_score": 97.5, "fraud_detected": true, "indicators": ["high_amount"],
        "message": "flagged upstream", "service": "risk",
    }));
    let (status, answer) = server.post_ndjson("/api/logs/ingest", &events).await;
    assert_eq!(status, 202, "{answer}");
    server
        .wait_for_total(json!({}), events.len() as u64, Duration::from_secs(120))
        .await;

    let out = dir.path().join("run");
    std::fs::create_dir_all(&out).expect("run dir");
    let run = Command::new(&schemathesis)
        .current_dir(&out)
        .arg("--config-file")
        .arg(contract_dir().join("schemathesis.toml"))
        .args(["run", &server.url("/api/openapi.json")])
        .args(["--seed", SEED, "--max-examples", EXAMPLES])
        // One worker: CPython 3.11 crashes in `ast` when hypothesis explains a lambda on two
        // threads at once ("AST constructor recursion depth mismatch").
        .args(["--workers", "1", "--no-color", "--output-truncate", "false"])
        .args(["--generation-database", "none"])
        .env("PYTHONPATH", contract_dir())
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("CONTRACT_BASE_URL", server.url(""))
        .env("CONTRACT_USERNAME", ADMIN)
        .env("CONTRACT_PASSWORD", ADMIN_PASSWORD)
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "schemathesis found answers that disagree with /api/openapi.json:\n{report}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // Every operation was reached, every phase ran, and none was skipped for want of auth.
    let summary = report.rsplit("SUMMARY").next().unwrap_or_default();
    for phase in ["✅ Coverage", "✅ Fuzzing", "✅ Stateful"] {
        assert!(summary.contains(phase), "{phase} missing:\n{report}");
    }
    assert!(
        !summary.contains("Authentication failed"),
        "operations answered only 401/403:\n{report}"
    );
    let selected = summary
        .lines()
        .find_map(|line| line.trim().strip_prefix("Selected: "))
        .expect("selected operations");
    let (tested, total) = selected.split_once('/').expect("n/m");
    assert_eq!(tested, total, "operations left out:\n{report}");
}
