//! `sluice backup --out DIR` and `sluice restore DIR`: a consistent copy of what `sluice serve`
//! keeps in its data directory, taken while it runs, and put back into a new data directory.
//!
//! Nothing acknowledged before the backup starts is missing from it: the queue is copied first
//! (each log's checkpoint, then its segments), then the index at its last commit, which holds
//! everything the queue's checkpoint says was done; a restored Sluice reads the queue again from
//! that checkpoint, and records already in the index overwrite their own documents. Then the
//! meta store (SQLite's online backup API), the JWT secret (so sessions and tokens stay good)
//! and the GeoIP databases. A manifest written last marks the backup whole.
//!
//! The distributed backends keep their own backups (Elasticsearch snapshots, Kafka's
//! retention and replication, `mongodump`): docs/operations.md.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sluice_config::{Config, MetaBackend, QueueBackend, StoreBackend};

use crate::user::Target;

/// Marks a backup whole; written last.
const MANIFEST: &str = "sluice-backup.json";
const FORMAT: u64 = 1;

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    target: Target,
    /// Where the backup goes: a new or empty directory (best on the data directory's
    /// filesystem, where unchanging files are hard-linked instead of copied).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A directory `sluice backup` wrote.
    backup: PathBuf,
    /// The data directory to restore into: new or empty.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
}

/// The embedded backends' places, or why there are none to copy.
struct Embedded {
    queue: PathBuf,
    index: PathBuf,
    meta: PathBuf,
}

fn embedded(config: &Config) -> anyhow::Result<Embedded> {
    let distributed = "sluice backup copies the embedded backends of `sluice serve`; Kafka, \
                       Elasticsearch and MongoDB keep their own backups (see Backups in \
                       docs/operations.md)";
    let QueueBackend::Wal(queue) = config.queue_backend()? else {
        bail!("the queue is Kafka: {distributed}");
    };
    let StoreBackend::Tantivy(index) = config.store_backend()? else {
        bail!("the store is Elasticsearch: {distributed}");
    };
    let MetaBackend::Sqlite(meta) = config.meta_backend()? else {
        bail!("the meta store is MongoDB: {distributed}");
    };
    Ok(Embedded { queue, index, meta })
}

/// Refuses a directory that holds anything: a backup or a restore never mixes with old files.
fn new_or_empty(dir: &Path, what: &str) -> anyhow::Result<()> {
    let mut entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    if entries.next().is_some() {
        bail!(
            "{what} {} is not empty: give a new directory",
            dir.display()
        );
    }
    Ok(())
}

pub fn run_backup(args: BackupArgs) -> anyhow::Result<()> {
    let config = args.target.config()?;
    let places = embedded(&config)?;
    new_or_empty(&args.out, "the backup directory")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let taken = back_up(&config, &places, &args.out);
    if taken.is_err() {
        // Half a backup is no backup: nothing is left that could be taken for one.
        let _ = std::fs::remove_dir_all(&args.out);
    }
    let manifest = taken?;
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    Ok(())
}

fn back_up(config: &Config, places: &Embedded, out: &Path) -> anyhow::Result<Value> {
    let started = sluice_event::now_ms();
    let queue = sluice_queue_wal::backup::back_up(&places.queue, &out.join("queue"))
        .with_context(|| format!("copying the queue {}", places.queue.display()))?;
    let index = sluice_store_tantivy::backup::back_up(&places.index, &out.join("index"))
        .context("copying the index")?;
    sluice_meta_sqlite::SqliteMetaStore::back_up(&places.meta, &out.join("meta.db"))
        .context("copying the meta store")?;
    let mut copied = Vec::new();
    let secret = config.data_dir.join("jwt-secret");
    if secret.exists() {
        std::fs::copy(&secret, out.join("jwt-secret"))
            .with_context(|| format!("copying {}", secret.display()))?;
        copied.push("jwt-secret".to_owned());
    }
    let geoip = config.data_dir.join("geoip");
    if geoip.is_dir() {
        copy_tree(&geoip, &out.join("geoip"))?;
        copied.push("geoip".to_owned());
    }
    let manifest = json!({
        "format": FORMAT,
        "sluice_version": env!("CARGO_PKG_VERSION"),
        "started_at": sluice_event::format_rfc3339_ms(started),
        "finished_at": sluice_event::format_rfc3339_ms(sluice_event::now_ms()),
        "queue": {"segments": queue.segments, "bytes": queue.bytes},
        "index": {"documents": index.documents, "files": index.files},
        "meta": "meta.db",
        "also": copied,
    });
    sluice_storage::write_durably(
        &out.join(MANIFEST),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
        None,
    )
    .context("writing the manifest")?;
    Ok(manifest)
}

/// Copies every file under `from` to `to`, directories made as needed.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

pub fn run_restore(args: RestoreArgs) -> anyhow::Result<()> {
    let manifest_path = args.backup.join(MANIFEST);
    let manifest: Value = std::fs::read(&manifest_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .with_context(|| {
            format!(
                "{} has no readable {MANIFEST}: not a backup, or one cut short",
                args.backup.display()
            )
        })?;
    if manifest["format"] != FORMAT {
        bail!(
            "{} is a backup in format {}; this Sluice restores format {FORMAT}",
            args.backup.display(),
            manifest["format"]
        );
    }
    new_or_empty(&args.data_dir, "the data directory")?;
    copy_tree(&args.backup, &args.data_dir)?;
    std::fs::remove_file(args.data_dir.join(MANIFEST)).context("removing the copied manifest")?;
    sluice_storage::sync_dir(&args.data_dir)?;
    println!(
        "restored the backup of {} ({} documents indexed, the queue read again from its \
         checkpoint) into {}: start it with sluice serve --data-dir {}",
        manifest["started_at"].as_str().unwrap_or("?"),
        manifest["index"]["documents"],
        args.data_dir.display(),
        args.data_dir.display()
    );
    Ok(())
}
