//! `sluice rollups rebuild`: builds the embedded store's rollups again from its events, after a
//! rollup file was lost or damaged or the rollup format changed. The store builds missing
//! rollups on its own; this drops every one first. It opens the index for writing, so it runs
//! while `sluice serve` is stopped.

use anyhow::{Context, bail};
use sluice_config::StoreBackend;
use sluice_store_tantivy::{TantivyOptions, TantivyStore};

use crate::backends::writer_options;
use crate::user::Target;

#[derive(Debug, clap::Subcommand)]
pub enum RollupsCommand {
    /// Drop the embedded store's rollups and build them again from its segments.
    Rebuild(Target),
}

pub fn run(command: RollupsCommand) -> anyhow::Result<()> {
    let RollupsCommand::Rebuild(target) = command;
    let config = target.config()?;
    let StoreBackend::Tantivy(index_dir) = config.store_backend()? else {
        bail!(
            "the store is not the embedded one: Elasticsearch answers dashboards with its own \
             aggregations and keeps no rollups"
        );
    };
    let store = TantivyStore::open_with(
        &index_dir,
        TantivyOptions {
            writer: writer_options(&config.store),
            kept_aggregations: 0,
            rollups: true,
        },
    )
    .context("opening the event store (stop the sluice that uses this data directory first)")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let segments = runtime.block_on(store.rebuild_rollups())?;
    println!(
        "rebuilt the rollups of {segments} segments in {} ({} bytes)",
        index_dir.display(),
        store.rollup_bytes()
    );
    Ok(())
}
