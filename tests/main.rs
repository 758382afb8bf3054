//! Sluice's integration tests, in one binary (as ripgrep has them) so a change relinks one test
//! executable, not one per file. Each module starts the real `sluice` binary, or the services
//! `scripts/test.sh` runs, and talks to them over real connections; `support` has what they
//! share. Run one module with `cargo test --test integration <module>::`.

mod support;

mod auth;
mod backup;
mod bad_input;
mod compose;
mod compression;
mod contract;
mod dead_letters;
mod distributed;
mod durability;
mod faults;
mod kafka;
mod kibana_setup;
mod kubernetes;
mod pipeline;
mod quotas;
mod retention;
mod rollups;
mod search_conformance;
mod search_features;
mod tls;
mod web_ui;
