//! The event model and its validation: the five log types producers send, the fields Sluice
//! knows about, how a record travels through the queue, how its document id is derived, and the
//! checks ([`validate`]) that turn a producer's bytes into a valid event or a precise refusal.
//!
//! Records stay JSON objects end to end (fields Sluice does not know are kept); what is typed is
//! the set of known fields, described once in [`schema`] and used by validation, CSV typing and
//! the stores.

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod id;
mod openapi;
pub mod schema;
mod timestamp;
pub mod validate;

pub use id::{MAX_EVENT_ID_BYTES, document_id};
pub use openapi::{LogRecord, record_schema};
pub use timestamp::{
    MAX_EPOCH_MS, TimestampError, check_epoch_ms as check_epoch_ms_value, format_rfc3339_ms,
    parse_timestamp, write_rfc3339_ms,
};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kinds of log Sluice understands. Anything else is rejected at validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogType {
    Transaction,
    Error,
    UserBehavior,
    Performance,
    Fraud,
}

impl LogType {
    pub const ALL: [LogType; 5] = [
        LogType::Transaction,
        LogType::Error,
        LogType::UserBehavior,
        LogType::Performance,
        LogType::Fraud,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogType::Transaction => "transaction",
            LogType::Error => "error",
            LogType::UserBehavior => "user_behavior",
            LogType::Performance => "performance",
            LogType::Fraud => "fraud",
        }
    }
}

impl fmt::Display for LogType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LogType::ALL.into_iter().find(|t| t.as_str() == s).ok_or(())
    }
}

/// Where a record entered Sluice; kept in `ingest.source` and used as a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `POST /api/logs/ingest`
    Http,
    /// `POST /api/logs/upload`
    Upload,
    /// `POST /_bulk`
    Bulk,
    /// Written straight to the queue by another producer.
    Queue,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Http => "http",
            Source::Upload => "upload",
            Source::Bulk => "bulk",
            Source::Queue => "queue",
        }
    }

    pub fn parse(name: &str) -> Option<Source> {
        [Source::Http, Source::Upload, Source::Bulk, Source::Queue]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    pub fn from_u8(v: u8) -> Option<Source> {
        [Source::Http, Source::Upload, Source::Bulk, Source::Queue]
            .into_iter()
            .find(|s| *s as u8 == v)
    }
}

/// One record as it travels through the queue: the producer's bytes, untouched, plus what the
/// ingest role learned on receipt. A replay after a crash carries the same id, so it overwrites
/// the document it already wrote instead of duplicating it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecord {
    /// Document id decided at ingest; `None` for records written to the queue by other producers
    /// (the processor derives it the same way).
    pub id: Option<String>,
    pub received_at_ms: i64,
    pub source: Source,
    /// What keeps one customer's events in order across a partitioned queue: the `user_id`,
    /// when the record has one. The WAL has one partition and ignores it.
    pub partition_key: Option<String>,
    pub payload: Vec<u8>,
}

/// Milliseconds since the Unix epoch, the one clock unit used across Sluice.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
