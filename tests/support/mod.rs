//! Starts the real `sluice` binary for end-to-end tests and talks HTTP to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_common::sample::{COUNTRY_NETWORKS, CountryNetwork, SampleGenerator};
use sluice_geoip::testing::write_sample_city;

pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
}

impl Server {
    /// Starts `sluice serve` on a free port over `data_dir`, with extra `SLUICE_*` settings.
    pub fn start(data_dir: &Path, geoip: Option<&Path>, env: &[(&str, &str)]) -> Server {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("serve.log"))
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .env("SLUICE_PROCESSOR__BATCH_MAX_WAIT_MS", "50")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if let Some(geoip) = geoip {
            command.arg("--geoip").arg(geoip);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("sluice starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("sluice listening on ") {
                    let _ = tx.send(address.to_owned());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(data_dir.join("serve.log")).unwrap_or_default();
                panic!("sluice did not start listening within 30 s; its log:\n{log}");
            }
        };
        Server {
            child: Some(child),
            base,
            data_dir: data_dir.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `kill -9`: no chance to flush or shut down.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("kill -TERM");
        child.wait().expect("exits")
    }

    pub async fn post_ndjson(&self, path: &str, events: &[Value]) -> (u16, Value) {
        self.post(path, "application/x-ndjson", ndjson(events))
            .await
    }

    /// POSTs `body` with `content_type`; the status and the JSON answer (`null` if not JSON).
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs a multipart form to `/api/logs/upload`; the status and the JSON answer.
    pub async fn upload_form(&self, form: reqwest::multipart::Form) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/api/logs/upload"))
            .multipart(form)
            .send()
            .await
            .expect("upload sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Uploads `body` as the `file` field, named `file_name`, with content type `mime`.
    pub async fn upload(&self, file_name: &str, mime: &str, body: Vec<u8>) -> (u16, Value) {
        let part = reqwest::multipart::Part::bytes(body)
            .file_name(file_name.to_owned())
            .mime_str(mime)
            .expect("mime");
        self.upload_form(reqwest::multipart::Form::new().part("file", part))
            .await
    }

    /// GETs `path` and parses its JSON answer.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("JSON answer")
    }

    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("text answer")
    }

    pub async fn search(&self, body: Value) -> Value {
        let response = self
            .http
            .post(self.url("/api/logs/search"))
            .json(&body)
            .send()
            .await
            .expect("search sent");
        assert_eq!(response.status().as_u16(), 200, "search {body}");
        response.json().await.expect("search answer")
    }

    pub async fn total(&self, body: Value) -> u64 {
        self.search(body)
            .await
            .get("total")
            .and_then(Value::as_u64)
            .expect("total")
    }

    /// Polls until `total(query) == expected`, failing after `timeout` with what it last saw.
    pub async fn wait_for_total(&self, query: Value, expected: u64, timeout: Duration) {
        let started = Instant::now();
        let mut last = 0;
        while started.elapsed() < timeout {
            last = self.total(query.clone()).await;
            if last == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("expected {expected} documents for {query}, still {last} after {timeout:?}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn ndjson(events: &[Value]) -> String {
    let mut body = String::new();
    for event in events {
        body.push_str(&event.to_string());
        body.push('\n');
    }
    body
}

/// `count` generated events spread over `span_hours` ending `end_hours_ago` before now.
pub fn generate(seed: u64, count: usize, end_hours_ago: i64, span_hours: i64) -> Vec<Value> {
    let end = sluice_common::now_ms() - end_hours_ago * 3_600_000;
    SampleGenerator::new(seed, count, end, span_hours * 3_600_000)
        .take(count)
        .collect()
}

/// A GeoIP database (MaxMind City schema) that knows the generator's networks.
pub fn sample_geoip(dir: &Path) -> PathBuf {
    let path = dir.join("test-city.mmdb");
    write_sample_city(&path).expect("test GeoIP database");
    path
}

/// The generator's country for an IPv4 address, if it is in one of its networks.
pub fn expected_country(ip: &str) -> Option<&'static CountryNetwork> {
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    COUNTRY_NETWORKS.iter().find(|n| {
        let mask = u32::MAX << (32 - u32::from(n.prefix));
        u32::from(ip) & mask == u32::from_be_bytes(n.network) & mask
    })
}

pub fn count_by_type(events: &[Value]) -> std::collections::BTreeMap<String, u64> {
    let mut counts = std::collections::BTreeMap::new();
    for event in events {
        *counts
            .entry(event["log_type"].as_str().expect("log_type").to_owned())
            .or_insert(0) += 1;
    }
    counts
}

pub fn search_all(log_type: &str, from_ms: i64, to_ms: i64) -> Value {
    json!({"log_type": log_type, "from": from_ms, "to": to_ms, "size": 10000})
}
