//! `sluice serve`: ingest, processor and api in one process, by default on the embedded backends
//! (WAL queue, tantivy, SQLite, in-process cache) in `./data`.

use crate::roles::{Roles, RunArgs, run_blocking};

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    run_blocking(args.into_config()?, Roles::ALL)
}
