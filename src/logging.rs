//! Structured logs with `tracing`: text for people, JSON for log shippers; `RUST_LOG` wins over
//! the configured level.

use sluice_config::LogConfig;
use sluice_telemetry::emit;
use sluice_telemetry::events::LogLineLost;
use tracing_subscriber::EnvFilter;

pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .map_err(|e| anyhow::anyhow!("log.level {:?}: {e}", config.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyStderr);
    match config.format.as_str() {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => anyhow::bail!("log.format {other:?}: use \"text\" or \"json\""),
    }
    Ok(())
}

/// Standard error that never fails a log call. `tracing-subscriber` reports a failed write with
/// `eprintln!`, which panics when standard error itself cannot be written: with the log on a
/// full disk, the first line logged would take down the task that logged it (the processor,
/// retrying the store on that same full disk). A line that cannot be written is counted and
/// dropped instead.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::io::stderr().write_all(buf).is_err() {
            emit(LogLineLost);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
