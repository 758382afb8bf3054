//! Scoring on demand for `POST /api/fraud/detect`, with the pipeline's own validation, GeoIP and
//! fraud engine, so an answer here is what the processor would have scored.
//!
//! In `sluice serve` the processor's engine is shared and read without being changed
//! ([`FraudEngine::preview`]). An api process on its own has no engine state: it reads the
//! user's recent events (and the IP's recent ones, for failures per IP) back from the event
//! store, replays them in event-time order into a fresh engine, and scores the transaction
//! against that. Both ways give the same answer for events the store holds; a test checks it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde_json::Value;
use sluice_event::LogType;
use sluice_event::validate::{
    Buffers, FieldIssue, Limits, RejectCode, parse_record_with, validate,
};
use sluice_fraud::{
    Activity, DetectError, Detection, FraudConfig, FraudDetector, FraudEngine, FraudInput,
    GeoFacts, History, SharedFraudEngine, is_failure_action, is_failure_status,
};
use sluice_geoip::{GeoResolver, Lookup};
use sluice_store::{EventStore, Field, Filter, SearchQuery, Sort, SortField, Total};

use crate::pipeline::geo_facts;

/// Most events read back per user or IP; the engine keeps fewer per key anyway.
const MAX_HISTORY: usize = 1_000;

/// Where the history comes from.
enum Source {
    Shared(SharedFraudEngine),
    Store {
        store: Arc<dyn EventStore>,
        config: FraudConfig,
    },
}

pub struct OnDemandScorer {
    limits: Limits,
    /// Shared with the blocking thread each request is validated and looked up on.
    geo: Arc<Mutex<GeoResolver>>,
    source: Source,
}

/// The transaction to score, owned, as the engine needs it.
struct Transaction {
    user_id: Option<String>,
    ip: Option<IpAddr>,
    event_time_ms: i64,
    amount: f64,
    failed: bool,
    declared_country: Option<String>,
    geo: OwnedGeo,
}

enum OwnedGeo {
    NoDatabase,
    NotApplicable,
    Unknown,
    Found {
        country_iso: Option<String>,
        coordinates: Option<(f64, f64)>,
        anonymous: bool,
    },
}

impl OwnedGeo {
    fn of(facts: GeoFacts<'_>) -> OwnedGeo {
        match facts {
            GeoFacts::NoDatabase => OwnedGeo::NoDatabase,
            GeoFacts::NotApplicable => OwnedGeo::NotApplicable,
            GeoFacts::Unknown => OwnedGeo::Unknown,
            GeoFacts::Found {
                country_iso,
                coordinates,
                anonymous,
            } => OwnedGeo::Found {
                country_iso: country_iso.map(str::to_owned),
                coordinates,
                anonymous,
            },
        }
    }

    fn facts(&self) -> GeoFacts<'_> {
        match self {
            OwnedGeo::NoDatabase => GeoFacts::NoDatabase,
            OwnedGeo::NotApplicable => GeoFacts::NotApplicable,
            OwnedGeo::Unknown => GeoFacts::Unknown,
            OwnedGeo::Found {
                country_iso,
                coordinates,
                anonymous,
            } => GeoFacts::Found {
                country_iso: country_iso.as_deref(),
                coordinates: *coordinates,
                anonymous: *anonymous,
            },
        }
    }

    fn country(&self) -> Option<String> {
        match self {
            OwnedGeo::Found { country_iso, .. } => country_iso.clone(),
            _ => None,
        }
    }
}

impl Transaction {
    fn input(&self) -> FraudInput<'_> {
        FraudInput {
            user_id: self.user_id.as_deref(),
            ip: self.ip,
            event_time_ms: self.event_time_ms,
            activity: Activity::Transaction {
                amount: self.amount,
                failed: self.failed,
            },
            declared_country: self.declared_country.as_deref(),
            geo: self.geo.facts(),
        }
    }
}

impl OnDemandScorer {
    /// Scores against the engine the processor of this process uses.
    pub fn shared(limits: Limits, geo: GeoResolver, engine: SharedFraudEngine) -> OnDemandScorer {
        OnDemandScorer {
            limits,
            geo: Arc::new(Mutex::new(geo)),
            source: Source::Shared(engine),
        }
    }

    /// Scores against history read back from `store`.
    pub fn from_store(
        limits: Limits,
        geo: GeoResolver,
        store: Arc<dyn EventStore>,
        config: FraudConfig,
    ) -> OnDemandScorer {
        OnDemandScorer {
            limits,
            geo: Arc::new(Mutex::new(geo)),
            source: Source::Store { store, config },
        }
    }

    /// The record validated as the processor validates it, and looked up in GeoIP: CPU work, and
    /// a GeoIP reload reads a file, so on a blocking thread.
    async fn transaction(&self, record: &[u8]) -> Result<Transaction, DetectError> {
        let (limits, geo, record) = (self.limits, Arc::clone(&self.geo), record.to_vec());
        tokio::task::spawn_blocking(move || validated_transaction(&limits, &geo, &record))
            .await
            .map_err(|e| DetectError::Failed(format!("the scoring thread failed: {e}")))?
    }
}

fn validated_transaction(
    limits: &Limits,
    geo: &Mutex<GeoResolver>,
    record: &[u8],
) -> Result<Transaction, DetectError> {
    let mut object: serde_json::Map<String, Value> =
        serde_json::from_slice(record).map_err(|e| {
            DetectError::Invalid(vec![FieldIssue::whole_record(
                RejectCode::MalformedJson,
                format!("not a JSON object: {e}"),
            )])
        })?;
    for (field, default) in sluice_fraud::SCORING_DEFAULTS {
        object
            .entry(field)
            .or_insert_with(|| Value::String(default.into()));
    }
    let bytes = serde_json::to_vec(&object).map_err(|e| {
        DetectError::Invalid(vec![FieldIssue::whole_record(
            RejectCode::MalformedJson,
            e.to_string(),
        )])
    })?;
    let mut scratch = Vec::new();
    let parsed = parse_record_with(&bytes, &mut scratch, limits, &mut Buffers::default())
        .map_err(|issue| DetectError::Invalid(vec![issue]))?;
    let event = validate(parsed.tape.as_value(), sluice_event::now_ms(), limits)
        .map_err(DetectError::Invalid)?;
    if event.log_type() != LogType::Transaction {
        return Err(DetectError::NotATransaction(format!(
            "only transactions are scored, not {} records",
            event.log_type().as_str()
        )));
    }
    let Some(amount) = event.amount else {
        return Err(DetectError::Invalid(vec![FieldIssue::new(
            "amount",
            RejectCode::MissingField,
            "a transaction to score needs an amount",
        )]));
    };
    let lookup = match event.ip {
        Some(ip) => {
            let mut geo = geo.lock().unwrap_or_else(PoisonError::into_inner);
            // A replaced database file is picked up here as in the processor (checked at
            // most every 30 s).
            geo.reload_if_changed();
            geo.lookup(ip)
        }
        None => Lookup::NotPublic,
    };
    Ok(Transaction {
        user_id: event.user_id.as_deref().map(str::to_owned),
        ip: event.ip,
        event_time_ms: event.event_time_ms,
        amount,
        failed: event.status.is_some_and(is_failure_status),
        declared_country: event.country.map(str::to_owned),
        geo: OwnedGeo::of(geo_facts(&lookup)),
    })
}

#[async_trait]
impl FraudDetector for OnDemandScorer {
    async fn detect(&self, record: &[u8]) -> Result<Detection, DetectError> {
        let transaction = self.transaction(record).await?;
        let (assessment, history) = match &self.source {
            Source::Shared(engine) => (
                engine
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .preview(&transaction.input()),
                History::Shared,
            ),
            Source::Store { store, config } => {
                let (mut engine, events) = rebuild(store.as_ref(), config, &transaction).await?;
                (
                    engine.assess(&transaction.input()),
                    History::Rebuilt { events },
                )
            }
        };
        let assessment = assessment.ok_or_else(|| {
            DetectError::NotATransaction("the record is not a scorable transaction".into())
        })?;
        Ok(Detection {
            assessment,
            geo_country: transaction.geo.country(),
            history,
        })
    }
}

/// A fresh engine fed the user's and the IP's recent events from the store, oldest first, and
/// how many there were.
async fn rebuild(
    store: &dyn EventStore,
    config: &FraudConfig,
    transaction: &Transaction,
) -> Result<(FraudEngine, usize), DetectError> {
    let now = transaction.event_time_ms;
    let recent = |filter: Filter, window_ms: i64| SearchQuery {
        filters: vec![filter],
        from_ms: Some(now.saturating_sub(window_ms)),
        to_ms: Some(now),
        sort: Sort {
            field: SortField::Timestamp,
            descending: true,
        },
        size: MAX_HISTORY,
        total: Total::NotNeeded,
        ..SearchQuery::default()
    };
    let ttl_ms = i64::try_from(config.state.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut history = BTreeMap::new();
    if let Some(user_id) = &transaction.user_id {
        let found = store
            .search(&recent(
                Filter::Equals(Field::UserId, user_id.clone()),
                ttl_ms,
            ))
            .await?;
        for hit in found.hits {
            history.insert((hit.sort.value as i64, hit.sort.id), hit.source);
        }
    }
    if let Some(ip) = transaction.ip {
        let window_ms = i64::try_from(config.failed_attempts.window_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        let found = store
            .search(&recent(
                Filter::Equals(Field::Ip, ip.to_string()),
                window_ms,
            ))
            .await?;
        for hit in found.hits {
            history.insert((hit.sort.value as i64, hit.sort.id), hit.source);
        }
    }
    let mut engine = FraudEngine::new(config.clone());
    let events = history.len();
    for ((at_ms, _), source) in history {
        let Ok(document) = serde_json::from_slice::<Value>(&source) else {
            continue;
        };
        replay(&mut engine, &document, at_ms);
    }
    Ok((engine, events))
}

/// Feeds one stored event to the engine as the processor fed it when it arrived.
fn replay(engine: &mut FraudEngine, document: &Value, at_ms: i64) {
    let text = |name: &str| document[name].as_str();
    let activity = match text("log_type") {
        Some("transaction") => Activity::Transaction {
            amount: document["amount"].as_f64().unwrap_or(0.0),
            failed: text("status").is_some_and(is_failure_status),
        },
        Some("user_behavior") if text("action").is_some_and(is_failure_action) => {
            Activity::FailedAttempt
        }
        _ => return,
    };
    let geo = &document["geo"];
    let facts = match geo.as_object() {
        Some(_) => GeoFacts::Found {
            country_iso: geo["country_iso_code"].as_str(),
            coordinates: geo["location"]["lat"]
                .as_f64()
                .zip(geo["location"]["lon"].as_f64()),
            anonymous: false,
        },
        None => GeoFacts::NotApplicable,
    };
    engine.assess(&FraudInput {
        user_id: text("user_id"),
        ip: text("ip").and_then(|ip| ip.parse().ok()),
        event_time_ms: at_ms,
        activity,
        declared_country: text("country"),
        geo: facts,
    });
}
