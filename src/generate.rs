//! `sluice gen`: sample e-commerce logs as NDJSON, a JSON array or CSV, to a file or stdout.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sluice_sample::{SampleGenerator, csv_header, csv_row};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Ndjson,
    Json,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct GenArgs {
    /// How many events.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    count: usize,
    #[arg(long, value_enum, default_value = "ndjson")]
    format: Format,
    /// Seed for the same events every time (event ids included); random when absent.
    #[arg(long)]
    seed: Option<u64>,
    /// Hours of traffic the events spread over, ending now.
    #[arg(long, default_value_t = 24)]
    hours: u32,
    /// Output file; stdout when absent.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(args: GenArgs) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        let seed = sluice_event::now_ms() as u64;
        eprintln!("sluice gen: seed {seed} (pass --seed {seed} to get these events again)");
        seed
    });
    let out: Box<dyn Write> = match &args.out {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 20, out);
    // Drawn on stderr, and only when it is a terminal.
    let progress = ProgressBar::new(args.count as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let span_ms = i64::from(args.hours.max(1)) * 3_600_000;
    let events =
        SampleGenerator::new(seed, args.count, sluice_event::now_ms(), span_ms).take(args.count);
    let mut line = String::new();
    match args.format {
        Format::Csv => out.write_all(csv_header().as_bytes())?,
        Format::Json => out.write_all(b"[\n")?,
        Format::Ndjson => {}
    }
    for (i, event) in events.enumerate() {
        match args.format {
            Format::Ndjson => {
                serde_json::to_writer(&mut out, &event)?;
                out.write_all(b"\n")?;
            }
            Format::Json => {
                if i > 0 {
                    out.write_all(b",\n")?;
                }
                serde_json::to_writer(&mut out, &event)?;
            }
            Format::Csv => {
                line.clear();
                csv_row(&event, &mut line);
                out.write_all(line.as_bytes())?;
            }
        }
        if i % 1024 == 0 {
            progress.set_position(i as u64);
        }
    }
    if let Format::Json = args.format {
        out.write_all(b"\n]\n")?;
    }
    out.flush().context("writing the events")?;
    progress.finish_and_clear();
    Ok(())
}
