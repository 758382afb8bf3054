//! Query latency benchmark: asks a running `sluice serve` every analytics, dashboard,
//! performance and fraud endpoint and a set of searches, one request at a time, many times each,
//! and prints the median, p95 and slowest per request as a Markdown table, with the first
//! (untimed) request apart: the first time a question is asked, the embedded store reads every
//! segment; a repeat reuses what it kept of the large ones (`store.kept_aggregations`).
//!
//! Run the server with `SLUICE_CACHE__ANSWER_TTL_SECS=0` to measure the work, not the cache.
//!
//! `LOAD_TOKEN=… cargo run --release -p sluice-benches --bin sluice-query -- \
//!     --url http://127.0.0.1:8080 --range 30d --rounds 30`

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "Query latency benchmark for sluice serve")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The window every analytics request covers (a quick range: 24h, 7d, 30d).
    #[arg(long, default_value = "30d")]
    range: String,
    /// Timed requests per endpoint, after two untimed ones.
    #[arg(long, default_value_t = 30)]
    rounds: usize,
    /// Access token of an analyst or admin.
    #[arg(long, env = "LOAD_TOKEN", hide_env_values = true)]
    token: String,
}

enum Request {
    Get(String),
    Search(Value),
}

fn percentile(sorted: &[Duration], percent: f64) -> Duration {
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", args.token)
            .parse()
            .context("--token is not a valid header value")?,
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(120))
        .build()?;
    let range = &args.range;
    let mut requests: Vec<(String, Request)> = [
        "/api/dashboard/overview",
        "/api/dashboard/stats",
        "/api/dashboard/metrics",
        "/api/dashboard/charts",
        "/api/analytics/transactions",
        "/api/analytics/errors",
        "/api/analytics/user-behavior",
        "/api/analytics/trends",
        "/api/analytics/top-countries",
        "/api/analytics/top-products",
        "/api/performance/metrics",
        "/api/performance/api-response-times",
        "/api/performance/database-latency",
        "/api/fraud/stats",
    ]
    .iter()
    .map(|path| {
        (
            format!("GET {path}?range={range}"),
            Request::Get(format!("{path}?range={range}")),
        )
    })
    .collect();
    requests.push((
        "GET /api/analytics/logs-per-hour".into(),
        Request::Get("/api/analytics/logs-per-hour".into()),
    ));
    for (label, body) in [
        ("search: newest 20", json!({})),
        ("search: words", json!({"query": "payment gateway"})),
        (
            "search: phrase + type + range",
            json!({"query": "\"timed out\"", "log_type": "error", "range": range}),
        ),
        (
            "search: field syntax",
            json!({"query": "payment_method:paypal AND amount:>100"}),
        ),
        (
            "search: filters",
            json!({"log_type": "transaction", "country": "DE", "min_amount": 50}),
        ),
        (
            "search: sort by amount",
            json!({"sort": "amount", "size": 50}),
        ),
        ("search: deep page", json!({"offset": 5000, "size": 20})),
    ] {
        requests.push((
            format!("POST /api/logs/search ({label})"),
            Request::Search(body),
        ));
    }

    let total: Value = http
        .post(format!("{}/api/logs/search", args.url))
        .json(&json!({"size": 0, "track_total_hits": true}))
        .send()
        .await
        .context("is sluice serve running at --url?")?
        .json()
        .await?;
    println!("events in the store: {}", total["total"]);
    println!();
    println!("| request | first ms | median ms | p95 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    for (label, request) in &requests {
        let mut times = Vec::with_capacity(args.rounds);
        let mut first = Duration::ZERO;
        for round in 0..args.rounds + 2 {
            let started = Instant::now();
            let response = match request {
                Request::Get(path) => http.get(format!("{}{path}", args.url)).send().await?,
                Request::Search(body) => {
                    http.post(format!("{}/api/logs/search", args.url))
                        .json(body)
                        .send()
                        .await?
                }
            };
            let status = response.status();
            let body = response.bytes().await?;
            if !status.is_success() {
                bail!("{label}: {status}: {}", String::from_utf8_lossy(&body));
            }
            match round {
                0 => first = started.elapsed(),
                1 => {}
                _ => times.push(started.elapsed()),
            }
        }
        times.sort();
        println!(
            "| {label} | {} | {} | {} | {} |",
            ms(first),
            ms(percentile(&times, 50.0)),
            ms(percentile(&times, 95.0)),
            ms(times[times.len() - 1]),
        );
    }
    Ok(())
}
