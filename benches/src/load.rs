//! End-to-end load generator: posts NDJSON batches of generated events over N connections to a
//! running `sluice serve`, then reports, in one line, accepted events per second, indexed events
//! per second (until all are searchable, or with `--until indexed` until the processor has
//! acknowledged them all, for a null store), how long the last one took after its 202, and with
//! `--server-pid` the server's peak RSS (the kernel's VmHWM, which counts the index files
//! tantivy maps, and the highest anonymous memory sampled every 100 ms, which is what the
//! process cannot give back) and the CPU it spent per event. `--json` prints the same as a JSON
//! object.
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
    /// Offer this many events a second, as steady producers do, instead of sending as fast as
    /// the server takes them: how fresh events are at a rate the server keeps up with. A
    /// request that cannot start on time (all connections busy) starts as soon as one is free.
    #[arg(long)]
    rate: Option<u32>,
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
    /// What "done" is: every event searchable (`searchable`), or every event acknowledged by
    /// the store, read from `sluice_events_indexed_total` on `/metrics` (`indexed`: for a null
    /// store, which keeps nothing to search).
    #[arg(long, value_enum, default_value_t = Until::Searchable)]
    until: Until,
    /// Print the report as JSON instead of one line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Until {
    Searchable,
    Indexed,
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
    let done_count = |http: reqwest::Client, url: String| async move {
        match args.until {
            Until::Searchable => total(&http, &url).await,
            Until::Indexed => indexed(&http, &url).await,
        }
    };
    let before = done_count(http.clone(), args.url.clone())
        .await
        .context("is sluice serve running at --url?")?;
    let cpu_before = args.server_pid.and_then(cpu_seconds);
    // The server's anonymous memory, sampled for as long as the run lasts.
    let peak_anon_kb = Arc::new(AtomicUsize::new(0));
    let sampler = args.server_pid.map(|pid| {
        let peak = Arc::clone(&peak_anon_kb);
        tokio::spawn(async move {
            loop {
                if let Some(kb) = status_kb(pid, "RssAnon:") {
                    peak.fetch_max(kb as usize, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });

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
    // When each request is due: its first event's place at the offered rate.
    let due = |request: usize| {
        args.rate.map(|rate| {
            let events = (request * args.batch) as f64;
            tokio::time::Instant::from_std(started)
                + Duration::from_secs_f64(events / f64::from(rate.max(1)))
        })
    };
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(bodies.into_iter().enumerate())
        .map(|(request, body)| {
            let (http, ingest, accepted, retries) = (
                http.clone(),
                ingest.clone(),
                Arc::clone(&accepted),
                Arc::clone(&retries),
            );
            let due = due(request);
            async move {
                if let Some(due) = due {
                    tokio::time::sleep_until(due).await;
                }
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
        searchable = done_count(http.clone(), args.url.clone()).await?;
    }
    let all_searchable = started.elapsed();
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    let peak_anon_mb = args
        .server_pid
        .map(|_| round(peak_anon_kb.load(Ordering::Relaxed) as f64 / 1024.0));
    let cpu = args
        .server_pid
        .and_then(cpu_seconds)
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let cpu_us_per_event = cpu.map(|cpu| round(cpu * 1e6 / accepted.max(1) as f64));

    let done = match args.until {
        Until::Searchable => "searchable",
        Until::Indexed => "indexed",
    };
    let report = json!({
        "until": done,
        "events": args.events,
        "accepted": accepted,
        "connections": args.connections,
        "offered_per_second": args.rate,
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
        "server_peak_anon_rss_mb": peak_anon_mb,
        "server_cpu_seconds": cpu.map(round),
        "server_cpu_us_per_event": cpu_us_per_event,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let show = |key: &str| match &report[key] {
            Value::Null => "n/a".to_owned(),
            value => value.to_string(),
        };
        println!(
            "{accepted} events: accepted {}/s, {done} {}/s, all {done} {} s after the last 202, \
             peak RSS {} MB ({} MB anonymous), server CPU {} µs/event, {} back-pressure retries",
            show("accepted_per_second"),
            show("end_to_end_events_per_second"),
            show("searchable_lag_after_last_202_seconds"),
            show("server_peak_rss_mb"),
            show("server_peak_anon_rss_mb"),
            show("server_cpu_us_per_event"),
            show("backpressure_retries"),
        );
    }
    if searchable < expected {
        bail!(
            "only {} of {accepted} events {done} after {}s",
            searchable - before,
            args.timeout_secs
        );
    }
    Ok(())
}

async fn total(http: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let answer: Value = http
        .post(format!("{url}/api/logs/search"))
        .json(&json!({"size": 0, "track_total_hits": true}))
        .send()
        .await?
        .json()
        .await?;
    answer["total"]
        .as_u64()
        .context("search answer without total")
}

/// The store's acknowledged writes, from the Prometheus text `/metrics` serves.
async fn indexed(http: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| line.starts_with("sluice_events_indexed_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

/// User and system CPU the process has used, in seconds (`/proc/PID/stat` counts in the
/// kernel's USER_HZ, 100 on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are counted from its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

fn peak_rss_mb(pid: u32) -> Option<f64> {
    Some(round(status_kb(pid, "VmHWM:")? as f64 / 1024.0))
}

/// A figure of `/proc/PID/status` in kB (`VmHWM:`, `RssAnon:`).
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
