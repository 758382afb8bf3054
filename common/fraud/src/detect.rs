//! Scoring on demand (`POST /api/fraud/detect`): a transaction is scored with the engine and the
//! state the processor uses, without being remembered.
//!
//! The api crate only knows this trait; the processor crate, which has validation, GeoIP and the
//! engine together, implements it, so the api scores exactly as the pipeline does. Where the
//! history comes from is the implementation's business and is reported with the answer.

use async_trait::async_trait;
use serde::Serialize;
use thiserror::Error;

use super::Assessment;
use sluice_event::validate::FieldIssue;
use sluice_store::StoreError;

#[async_trait]
pub trait FraudDetector: Send + Sync {
    /// Scores one transaction record (JSON, as producers send it; `log_type` may be left out).
    async fn detect(&self, record: &[u8]) -> Result<Detection, DetectError>;
}

/// What a record scored on demand may leave out, and what it then is taken to be: validation
/// requires these of a stored transaction, scoring has no use for them.
pub const SCORING_DEFAULTS: [(&str, &str); 2] =
    [("log_type", "transaction"), ("transaction_id", "on-demand")];

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Detection {
    #[serde(flatten)]
    pub assessment: Assessment,
    /// The country GeoIP found for the record's IP.
    pub geo_country: Option<String>,
    pub history: History,
}

/// Where the user's and the IP's recent history came from.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum History {
    /// The processor's own state, in the same process (`sluice serve`).
    Shared,
    /// Read back from the event store (an api process on its own): this many events.
    Rebuilt { events: usize },
}

#[derive(Debug, Error)]
pub enum DetectError {
    #[error("the record is not valid")]
    Invalid(Vec<FieldIssue>),
    #[error("{0}")]
    NotATransaction(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sluice itself failed (a scoring thread panicked).
    #[error("{0}")]
    Failed(String),
}
