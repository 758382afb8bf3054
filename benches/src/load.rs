//! End-to-end load generator: posts NDJSON batches of generated events over N connections to a
//! running `sluice serve`, then reports accepted events per second and how long until all of
//! them are searchable. With `--server-pid` it also reports the server's peak RSS.
//!
//! `LOAD_TOKEN=$(…login…) cargo run --release -p sluice-benches --bin sluice-load -- \
//!     --url http://127.0.0.1:8080 --events 1000000 --connections 4` (an analyst's or admin's
//! access token: the generator both sends and searches; see docs/benchmarks.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use serde_json::{Value, json};
use sluice_sample::SampleGenerator;

#[derive(Debug, Parser)]
#[command(about = "Load generator for sluice serve")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Events to send in all.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Events per request.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Hours back from now the events' timestamps spread over.
    #[arg(long, default_value_t = 24)]
    span_hours: u64,
    /// The server's pid, to report its peak resident memory (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Give up waiting for searchability after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// After a 503 or 429, wait as long as the answer's `Retry-After` says, as shippers do,
    /// instead of a fixed 200 ms. Matters with many large bodies: each refused attempt is sent
    /// whole again.
    #[arg(long)]
    honour_retry_after: bool,
    /// Access token of an analyst or admin (`POST /api/auth/login`). Not `SLUICE_*`: `sluice`
    /// reads those as configuration and refuses unknown ones.
    #[arg(long, env = "LOAD_TOKEN", hide_env_values = true)]
    token: String,
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
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(120))
        .build()?;
    let before = total(&http, &args.url)
        .await
        .context("is sluice serve running at --url?")?;

    eprintln!("generating {} events…", args.events);
    let now = sluice_event::now_ms();
    let mut bodies: Vec<bytes::Bytes> = Vec::new();
    let mut body = String::new();
    for (i, event) in SampleGenerator::new(
        args.seed,
        args.events,
        now,
        i64::try_from(args.span_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX),
    )
    .take(args.events)
    .enumerate()
    {
        body.push_str(&event.to_string());
        body.push('\n');
        if (i + 1) % args.batch == 0 {
            bodies.push(std::mem::take(&mut body).into());
        }
    }
    if !body.is_empty() {
        bodies.push(body.into());
    }
    let body_bytes: usize = bodies.iter().map(bytes::Bytes::len).sum();
    let mean_body_mb = round(body_bytes as f64 / bodies.len().max(1) as f64 / 1e6);

    eprintln!(
        "sending {} requests ({mean_body_mb} MB each on average) over {} connections…",
        bodies.len(),
        args.connections
    );
    let honour_retry_after = args.honour_retry_after;
    let accepted = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let ingest = format!("{}/api/logs/ingest", args.url);
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(bodies)
        .map(|body| {
            let (http, ingest, accepted, retries) = (
                http.clone(),
                ingest.clone(),
                Arc::clone(&accepted),
                Arc::clone(&retries),
            );
            async move {
                let mut transport_errors = 0;
                loop {
                    let sent = http
                        .post(&ingest)
                        .header("content-type", "application/x-ndjson")
                        .body(body.clone()) // `Bytes`: a resend copies nothing
                        .send()
                        .await;
                    let response = match sent {
                        Ok(response) => response,
                        // A shipper retries a dropped connection; give up only if it persists.
                        Err(e) if transport_errors < 5 => {
                            transport_errors += 1;
                            eprintln!("retrying after: {e}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let status = response.status().as_u16();
                    if status == 503 || status == 429 {
                        // Back-pressure: ingest's in-flight limit or the queue's high-water mark.
                        retries.fetch_add(1, Ordering::Relaxed);
                        let retry_after = response
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|value| value.to_str().ok()?.parse().ok())
                            .filter(|_| honour_retry_after)
                            .map_or(Duration::from_millis(200), Duration::from_secs);
                        tokio::time::sleep(retry_after).await;
                        continue;
                    }
                    let answer: Value = response.json().await?;
                    if status != 202 {
                        bail!("ingest answered {status}: {answer}");
                    }
                    let n = answer["accepted"].as_u64().unwrap_or(0) as usize;
                    accepted.fetch_add(n, Ordering::Relaxed);
                    return Ok(());
                }
            }
        })
        .buffer_unordered(args.connections)
        .collect()
        .await;
    let send_time = started.elapsed();
    for result in results {
        result?;
    }
    let accepted = accepted.load(Ordering::Relaxed);

    let expected = before + accepted as u64;
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let mut searchable = before;
    while searchable < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        searchable = total(&http, &args.url).await?;
    }
    let all_searchable = started.elapsed();

    let report = json!({
        "events": args.events,
        "accepted": accepted,
        "connections": args.connections,
        "batch": args.batch,
        "mean_body_mb": mean_body_mb,
        "send_seconds": round(send_time.as_secs_f64()),
        "accepted_per_second": (accepted as f64 / send_time.as_secs_f64()).round(),
        "searchable_after_seconds": round(all_searchable.as_secs_f64()),
        "searchable_lag_after_last_202_seconds": round((all_searchable - send_time).as_secs_f64()),
        "end_to_end_events_per_second": (accepted as f64 / all_searchable.as_secs_f64()).round(),
        "backpressure_retries": retries.load(Ordering::Relaxed),
        "all_searchable": searchable >= expected,
        "server_peak_rss_mb": args.server_pid.and_then(peak_rss_mb),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if searchable < expected {
        bail!(
            "only {} of {accepted} events searchable after {}s",
            searchable - before,
            args.timeout_secs
        );
    }
    Ok(())
}

async fn total(http: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let answer: Value = http
        .post(format!("{url}/api/logs/search"))
        .json(&json!({"size": 0}))
        .send()
        .await?
        .json()
        .await?;
    answer["total"]
        .as_u64()
        .context("search answer without total")
}

fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(round(kb / 1024.0))
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
