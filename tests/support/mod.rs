//! Starts the real `sluice` binary for end-to-end tests and talks HTTP to it.

pub mod outage;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_geoip::testing::write_sample_city;
use sluice_sample::{COUNTRY_NETWORKS, CountryNetwork, SampleGenerator};

pub struct Server {
    child: Option<Child>,
    pub base: String,
    /// Sends the admin's access token with every request.
    pub http: reqwest::Client,
    /// Sends no credentials.
    pub anonymous: reqwest::Client,
    /// The access token of `ADMIN`.
    pub admin_token: String,
}

/// The admin every test server starts with.
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "Test-Root-Passw0rd";

/// Settings every test server runs with: cheap bcrypt, quick batches.
const TEST_ENV: &[(&str, &str)] = &[
    ("SLUICE_PROCESSOR__BATCH_MAX_WAIT_MS", "50"),
    ("SLUICE_AUTH__BCRYPT_COST", "4"),
];

/// Runs `sluice` with `args` over `data_dir`, `stdin` on its standard input; its output.
pub fn sluice_command(
    data_dir: &Path,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> std::process::Output {
    use std::io::Write;
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in TEST_ENV.iter().chain(env) {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("sluice runs");
    // A command that refuses its arguments exits before reading its input; the pipe is then
    // closed under us, and its output (asserted by the caller) is what matters.
    let written = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    if let Err(error) = written {
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::BrokenPipe,
            "stdin written: {error}"
        );
    }
    child.wait_with_output().expect("sluice finishes")
}

/// Creates a user with the command line; panics with its output if that fails.
pub fn create_user(data_dir: &Path, username: &str, role: &str, password: &str) {
    let output = run_user_create(data_dir, username, role, password, &[]);
    assert!(
        output.status.success(),
        "sluice user create failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Creates a user unless one of that name exists (a server restarted over its data directory).
pub fn ensure_user(
    data_dir: &Path,
    username: &str,
    role: &str,
    password: &str,
    env: &[(&str, &str)],
) {
    let output = run_user_create(data_dir, username, role, password, env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() || stderr.contains("username is taken"),
        "sluice user create failed: {stderr}"
    );
}

fn run_user_create(
    data_dir: &Path,
    username: &str,
    role: &str,
    password: &str,
    env: &[(&str, &str)],
) -> std::process::Output {
    sluice_command(
        data_dir,
        &[
            "user",
            "create",
            "--username",
            username,
            "--role",
            role,
            "--password-stdin",
        ],
        &format!("{password}\n"),
        env,
    )
}

/// `POST /api/auth/login` over a plain blocking socket (tests start servers outside async
/// code too); the access token.
pub fn login_blocking(base: &str, username: &str, password: &str) -> String {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let body = json!({"username": username, "password": password}).to_string();
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "POST /api/auth/login HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("login sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("login answer");
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let parsed: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    parsed["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("login as {username} failed: {answer}"))
        .to_owned()
}

/// A client that sends `Authorization: Bearer <token>` with every request.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .default_headers(headers)
        .build()
        .expect("http client")
}

impl Server {
    /// Starts `sluice serve` on a free port over `data_dir`, with extra `SLUICE_*` settings,
    /// after creating the admin `ADMIN` (unless the data directory already has it), and logs in.
    pub fn start(data_dir: &Path, geoip: Option<&Path>, env: &[(&str, &str)]) -> Server {
        std::fs::create_dir_all(data_dir).expect("data dir");
        ensure_user(data_dir, ADMIN, "admin", ADMIN_PASSWORD, env);
        let mut args = vec!["serve".to_owned(), "--data-dir".to_owned()];
        args.push(data_dir.display().to_string());
        if let Some(geoip) = geoip {
            args.push("--geoip".to_owned());
            args.push(geoip.display().to_string());
        }
        let mut server = Server::launch(&args, data_dir, "serve.log", env, None);
        server.log_in();
        server
    }

    /// Starts `sluice serve` over HTTPS (`env` names the certificate and key); its clients trust
    /// `ca`. Nobody is logged in: `http` sends no credentials until the test logs in.
    pub fn start_tls(data_dir: &Path, env: &[(&str, &str)], ca: &reqwest::Certificate) -> Server {
        std::fs::create_dir_all(data_dir).expect("data dir");
        ensure_user(data_dir, ADMIN, "admin", ADMIN_PASSWORD, env);
        let args = [
            "serve".to_owned(),
            "--data-dir".to_owned(),
            data_dir.display().to_string(),
        ];
        Server::launch(&args, data_dir, "serve.log", env, Some(ca))
    }

    /// Starts one role (`ingest`, `process`, `api`) on a free port; its log goes to
    /// `<data_dir>/<role>.log`. The api role logs in as `ADMIN`, who must exist; the others
    /// send `token` when given (one the api role issued).
    pub fn start_role(
        role: &str,
        data_dir: &Path,
        env: &[(&str, &str)],
        token: Option<&str>,
    ) -> Server {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let mut server = Server::launch(
            &[role.to_owned()],
            data_dir,
            &format!("{role}.log"),
            env,
            None,
        );
        if role == "api" {
            server.log_in();
        } else if let Some(token) = token {
            server.admin_token = token.to_owned();
            server.http = client_with_token(token);
        }
        server
    }

    /// Spawns `sluice ARGS --listen 127.0.0.1:0` and waits for the address it listens on; its
    /// clients trust `ca` besides the usual roots.
    fn launch(
        args: &[String],
        data_dir: &Path,
        log_name: &str,
        env: &[(&str, &str)],
        ca: Option<&reqwest::Certificate>,
    ) -> Server {
        let log_path = data_dir.join(log_name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .args(args)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (key, value) in TEST_ENV.iter().chain(env) {
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
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("sluice {args:?} did not start listening within 30 s; its log:\n{log}");
            }
        };
        let mut anonymous = reqwest::Client::builder().timeout(Duration::from_secs(60));
        if let Some(ca) = ca {
            anonymous = anonymous.add_root_certificate(ca.clone());
        }
        let anonymous = anonymous.build().expect("http client");
        // Owned by a `Server` before anything else can panic, so a failed login still stops it.
        Server {
            child: Some(child),
            base,
            http: anonymous.clone(),
            anonymous,
            admin_token: String::new(),
        }
    }

    fn log_in(&mut self) {
        self.admin_token = login_blocking(&self.base, ADMIN, ADMIN_PASSWORD);
        self.http = client_with_token(&self.admin_token);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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

    /// GETs `path`, requires a 200, and returns its JSON answer with the path its aggregations
    /// took (the `x-sluice-aggregation` header: `rollups`, `events`, or `none`).
    pub async fn get_aggregated(&self, path: &str) -> (Value, String) {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let taken = response
            .headers()
            .get("x-sluice-aggregation")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        let answer: Value = response.json().await.expect("JSON answer");
        assert_eq!(status, 200, "{path}: {answer}");
        (answer, taken)
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

    /// The sum of a Prometheus series' samples on `/metrics` whose line contains `labels`.
    pub async fn metric(&self, name: &str, labels: &str) -> f64 {
        self.get_text("/metrics")
            .await
            .lines()
            .filter(|line| line.starts_with(name) && line.contains(labels))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
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

    /// Every match of `body`: counted in full unless the body says how far to count.
    pub async fn total(&self, mut body: Value) -> u64 {
        if let Some(fields) = body.as_object_mut() {
            fields
                .entry("track_total_hits")
                .or_insert(Value::Bool(true));
        }
        let answer = self.search(body).await;
        assert_eq!(answer["total_relation"], "eq", "an exact total: {answer}");
        answer.get("total").and_then(Value::as_u64).expect("total")
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

/// Runs `script` with the test venv's Python (`TEST_PYTHON`: the official Elasticsearch client
/// beside it) and `args`; what it printed, as JSON. Fails with its errors if it fails.
pub async fn python_report(script: &'static str, args: Vec<String>) -> Value {
    let python = service("TEST_PYTHON");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg("-c")
            .arg(script)
            .args(args)
            .output()
            .expect("python runs")
    })
    .await
    .expect("joined");
    assert!(
        output.status.success(),
        "the Python client failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the client's report, in JSON")
}

/// `count` generated events spread over `span_hours` ending `end_hours_ago` before now.
pub fn generate(seed: u64, count: usize, end_hours_ago: i64, span_hours: i64) -> Vec<Value> {
    let end = sluice_event::now_ms() - end_hours_ago * 3_600_000;
    SampleGenerator::new(seed, count, end, span_hours * 3_600_000)
        .take(count)
        .collect()
}

/// Appends `payloads` to the WAL queue under `data_dir` as another producer writing straight
/// into the queue would (no ingest validation). The server must not be running.
pub async fn append_to_queue(data_dir: &Path, payloads: &[&[u8]]) {
    use sluice_event::{QueuedRecord, Source};
    use sluice_queue::Queue;
    use sluice_queue_wal::{WalConfig, WalQueue};
    let wal = WalQueue::open(&data_dir.join("queue"), WalConfig::default())
        .await
        .expect("wal");
    let records = payloads
        .iter()
        .map(|payload| QueuedRecord {
            id: None,
            received_at_ms: sluice_event::now_ms(),
            source: Source::Queue,
            partition_key: None,
            payload: payload.to_vec(),
        })
        .collect();
    wal.append(records).await.expect("append");
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

/// Where a service `scripts/test.sh` started is (`TEST_ELASTICSEARCH_URL`, `TEST_PYTHON`…).
pub fn service(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: run the suite through scripts/test.sh"))
}

/// A figure of a process's memory from the kernel (`VmHWM`, `RssAnon`), in bytes.
pub fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    kb * 1024
}
