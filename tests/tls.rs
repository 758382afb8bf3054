//! HTTPS on the listener (`[tls]`), with certificates the test makes with `openssl` as an
//! operator would: the Elasticsearch handshake and `_bulk` work with `curl --cacert` and the
//! official Python client, the UI gets HSTS, a renewed certificate is served without a restart,
//! a broken renewal leaves the old one in service, and a bad configuration stops the start with
//! a reason.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{ADMIN, ADMIN_PASSWORD, Server, python_report, sluice_command};

/// A certificate authority and a certificate for 127.0.0.1 it signed.
struct Pair {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (apt-get install openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Makes `<name>-ca.pem`, and `<name>.pem` with `<name>.key` for 127.0.0.1 signed by it.
fn make_pair(dir: &Path, name: &str) -> Pair {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let (ca, ca_key) = (format!("{name}-ca.pem"), format!("{name}-ca.key"));
    let (cert, key, csr) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
    );
    let subject = format!("/CN={name} test authority");
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout", &ca_key, "-out", &ca, "-days", "2", "-subj", &subject,
    ]);
    openssl(dir, &args);
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
    openssl(dir, &args);
    let extensions = dir.join(format!("{name}.ext"));
    std::fs::write(
        &extensions,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &extensions.display().to_string(),
        ],
    );
    Pair {
        ca: dir.join(ca),
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

/// `curl --cacert CA ARGS URL`: its exit status and what it printed.
fn curl(ca: &Path, url: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Replaces a file as a renewal does: written beside it, then renamed over it.
fn replace(path: &Path, from: &Path) {
    let staged = path.with_extension("new");
    std::fs::copy(from, &staged).expect("copy");
    std::fs::rename(&staged, path).expect("rename");
}

const ELASTICSEARCH_CLIENT: &str = r#"
import json, sys
from elasticsearch import Elasticsearch, helpers
client = Elasticsearch(sys.argv[1], api_key=sys.argv[2], ca_certs=sys.argv[3])
info = client.info()
actions = ({"_index": "shop", "_id": f"tls-{n}", "_source": {"log_type": "error",
            "error_message": f"over https #{n}", "service": "python-over-tls"}}
           for n in range(200))
ok, errors = helpers.bulk(client, actions, chunk_size=100)
print(json.dumps({"version": info["version"]["number"], "ok": ok, "errors": errors}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_official_clients_sets_hsts_and_takes_a_renewed_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    let first = make_pair(&certs, "first");
    let second = make_pair(&certs, "second");
    // What the server is pointed at; the renewal replaces these two files.
    let (cert, key) = (certs.join("tls.crt"), certs.join("tls.key"));
    replace(&cert, &first.cert);
    replace(&key, &first.key);
    let (cert_setting, key_setting) = (cert.display().to_string(), key.display().to_string());
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&first.ca).expect("ca"))
        .expect("a PEM certificate");
    let mut server = Server::start_tls(
        &dir.path().join("data"),
        &[
            ("SLUICE_TLS__CERT", cert_setting.as_str()),
            ("SLUICE_TLS__KEY", key_setting.as_str()),
            ("SLUICE_TLS__RELOAD_CHECK_SECS", "1"),
        ],
        &ca,
    );
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );

    // The Elasticsearch handshake, with curl trusting the authority.
    let (ok, answer) = curl(&first.ca, &server.url("/"), &[]);
    assert!(ok, "{answer}");
    let handshake: Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(handshake["tagline"], "You Know, for Search", "{handshake}");
    // Without the authority, curl refuses the certificate: it is not a public one.
    let untrusted = Command::new("curl")
        .args(["-sS", "--max-time", "10", &server.url("/")])
        .output()
        .expect("curl runs");
    assert!(!untrusted.status.success());
    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(server.url("/").replace("https://", "http://"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(plain.is_err() || !plain.as_ref().is_ok_and(|r| r.status().is_success()));

    // Log in and make a key over HTTPS.
    let login = server
        .anonymous
        .post(server.url("/api/auth/login"))
        .json(&json!({"username": ADMIN, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login over https");
    assert_eq!(login.status().as_u16(), 200);
    let hsts = login
        .headers()
        .get("strict-transport-security")
        .map(|v| v.to_str().expect("ascii").to_owned());
    assert_eq!(hsts.as_deref(), Some("max-age=31536000"));
    let token = login.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let ui = server
        .anonymous
        .get(server.url("/ui/"))
        .send()
        .await
        .expect("ui");
    assert!(ui.headers().contains_key("strict-transport-security"));
    let created: Value = server
        .anonymous
        .post(server.url("/api/auth/api-keys"))
        .bearer_auth(&token)
        .json(&json!({"name": "over https"}))
        .send()
        .await
        .expect("key")
        .json()
        .await
        .expect("json");
    let encoded = created["encoded"].as_str().expect("encoded").to_owned();

    // `_bulk` with curl, then with the official client, both trusting the authority.
    let bulk = format!(
        "{}\n{}\n",
        json!({"index": {"_index": "shop", "_id": "curl-1"}}),
        json!({"log_type": "error", "error_message": "over https by curl", "service": "curl-over-tls"})
    );
    let authorization = format!("authorization: ApiKey {encoded}");
    let (ok, answer) = curl(
        &first.ca,
        &server.url("/_bulk"),
        &[
            "-H",
            &authorization,
            "-H",
            "content-type: application/x-ndjson",
            "--data-binary",
            &bulk,
        ],
    );
    assert!(ok, "{answer}");
    let answer: Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(answer["errors"], false, "{answer}");
    let ca_path = first.ca.display().to_string();
    let arguments = vec![server.base.clone(), encoded, ca_path];
    let report = python_report(ELASTICSEARCH_CLIENT, arguments).await;
    assert_eq!(report["ok"], 200, "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    server.http = reqwest::Client::builder()
        .add_root_certificate(ca.clone())
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().expect("header"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .expect("client");
    server
        .wait_for_total(json!({"size": 0}), 201, Duration::from_secs(60))
        .await;

    // A renewal under another authority: served from a new connection on, without a restart.
    replace(&key, &second.key);
    replace(&cert, &second.cert);
    let started = Instant::now();
    loop {
        let (ok, answer) = curl(&second.ca, &server.url("/"), &[]);
        if ok {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the renewed certificate was not served: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        !curl(&first.ca, &server.url("/"), &[]).0,
        "the old one is gone"
    );

    // A broken renewal (a half-written file) is refused; the last good pair stays in service.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").expect("broken");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (ok, answer) = curl(&second.ca, &server.url("/"), &[]);
    assert!(ok, "still serving the renewed pair: {answer}");
    let (_, metrics) = curl(&second.ca, &server.url("/metrics"), &[]);
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("sluice_tls_reload_failures_total ")
                && !line.ends_with(" 0")),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_tls_handshake_failures_total"),
        "the refused plain and untrusted connections are counted"
    );
    server.stop();
}

#[test]
fn a_tls_setting_that_cannot_work_stops_the_start_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = make_pair(dir.path(), "only");
    let (cert, key) = (
        pair.cert.display().to_string(),
        pair.key.display().to_string(),
    );
    let other = make_pair(dir.path(), "other");
    let other_key = other.key.display().to_string();
    let missing = dir.path().join("missing.pem").display().to_string();
    let data = dir.path().join("data");
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("SLUICE_TLS__CERT", &cert)],
            "tls.cert is set but tls.key is not",
        ),
        (
            &[("SLUICE_TLS__CERT", &missing), ("SLUICE_TLS__KEY", &key)],
            "missing.pem",
        ),
        (
            &[("SLUICE_TLS__CERT", &key), ("SLUICE_TLS__KEY", &key)],
            "no PEM certificate",
        ),
        (
            &[("SLUICE_TLS__CERT", &cert), ("SLUICE_TLS__KEY", &other_key)],
            "do not go together",
        ),
    ];
    for (env, reason) in cases {
        let output = sluice_command(&data, &["serve", "--listen", "127.0.0.1:0"], "", env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{env:?} started");
        assert!(stderr.contains(reason), "{env:?}: {stderr}");
    }
}
