//! `sluice`: the command line over the Sluice crates. Thin on purpose: each subcommand parses
//! its flags and hands over to a module that wires the library crates together.

mod backends;
mod backup;
mod config_check;
mod dead_letters;
mod generate;
mod logging;
mod openapi;
mod ops;
mod role;
mod roles;
mod rollups;
mod serve;
mod setup;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The pipeline allocates small buffers per event on several threads; mimalloc does that
/// markedly faster than the system allocator (see docs/benchmarks.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Streaming log pipeline and analytics for e-commerce"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every role in one process with the embedded backends (WAL queue, tantivy).
    Serve(roles::RunArgs),
    /// Run the ingest role alone: HTTP and `_bulk` ingest into Kafka.
    Ingest(roles::RunArgs),
    /// Run the processor role alone: Kafka → parse, enrich, score → Elasticsearch.
    Process(roles::RunArgs),
    /// Run the api role alone: accounts, search and the dead-letter list over Elasticsearch.
    Api(roles::RunArgs),
    /// Prepare the distributed backends: Kafka topics, the Elasticsearch index template, the
    /// meta store's indexes, the Kibana saved objects.
    Setup(setup::SetupArgs),
    /// Write realistic sample e-commerce logs.
    Gen(generate::GenArgs),
    /// Manage users in the meta store directly (the first admin, a lost admin password).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Copy the data directory of `sluice serve` while it runs: queue, index, meta store.
    Backup(backup::BackupArgs),
    /// Put a backup into a new data directory.
    Restore(backup::RestoreArgs),
    /// The embedded store's rollups, which answer dashboards over long windows.
    #[command(subcommand)]
    Rollups(rollups::RollupsCommand),
    /// List, replay and purge dead letters through a running Sluice's API, as an administrator.
    #[command(subcommand)]
    DeadLetters(dead_letters::DeadLetterCommand),
    /// Check the configuration (file, then `SLUICE_*` variables) as a role does at start and
    /// print it, secrets hidden, without connecting to anything.
    Config(ConfigArgs),
    /// Print the OpenAPI 3.1 document of the API (what `/api/openapi.json` serves), for client
    /// generators and reviews.
    Openapi,
}

/// Flags shared by the commands that read the configuration.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// TOML configuration file; `SLUICE_*` environment variables override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Ingest(args) => role::run(args, roles::Roles::INGEST),
        Command::Process(args) => role::run(args, roles::Roles::PROCESS),
        Command::Api(args) => role::run(args, roles::Roles::API),
        Command::Setup(args) => setup::run(args),
        Command::Gen(args) => generate::run(args),
        Command::User(command) => user::run(command),
        Command::DeadLetters(command) => dead_letters::run(command),
        Command::Backup(args) => backup::run_backup(args),
        Command::Restore(args) => backup::run_restore(args),
        Command::Rollups(command) => rollups::run(command),
        Command::Config(args) => config_check::run(args),
        Command::Openapi => openapi::json().map(|document| println!("{document}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}
