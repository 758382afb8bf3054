//! The processor role: reads the queue in batches, turns each record into an indexed document
//! (parse → validate → GeoIP → fraud score → document), writes the batch to the event store and
//! only then commits the queue position. Records that cannot become documents go to the
//! dead-letter queue with their original bytes and the reason; nothing is dropped silently.

mod detect;
mod document;
mod pipeline;
mod retention;
mod retry;
mod service;
mod uncommitted;

pub use detect::OnDemandScorer;
pub use pipeline::{BatchOutput, Pipeline, RecordFailure, Stage};
pub use retention::run_retention;
pub use retry::Backoff;
pub use service::Processor;
