//! The CPU part of the processor, free of I/O so it runs on a blocking thread and benchmarks
//! on its own: records in, documents and dead letters out.

use simd_json::prelude::*;
use sluice_event::validate::{
    Buffers, FieldIssue, Limits, Record, RejectCode, ValidEvent, parse_record_with,
    parse_validated_record, read_validated, repair_lone_surrogates, validate,
};
use sluice_event::{LogType, QueuedRecord, Source, document_id};
use sluice_fraud::{
    Activity, Assessment, FraudEngine, FraudInput, GeoFacts, Indicator, SharedFraudEngine,
    is_failure_action, is_failure_status,
};
use sluice_geoip::{GeoRecord, GeoResolver, Lookup};
use sluice_queue::DeadLetter;
use sluice_store::StoreDocument;
use sluice_telemetry::emit;
use sluice_telemetry::events::{FraudScored, RecordsRepaired};

use crate::document::{DocumentMeta, FraudFields, build_document};

/// What one batch became.
#[derive(Debug, Default)]
pub struct BatchOutput {
    pub documents: Vec<StoreDocument>,
    /// For each document, where in the batch the record it was made from sits.
    pub origins: Vec<usize>,
    pub dead_letters: Vec<DeadLetter>,
}

pub use sluice_queue::Stage;

/// Why one record did not become a document.
#[derive(Debug)]
pub struct RecordFailure {
    pub stage: Stage,
    pub issues: Vec<FieldIssue>,
}

impl RecordFailure {
    fn at(stage: Stage, issues: Vec<FieldIssue>) -> RecordFailure {
        RecordFailure { stage, issues }
    }
}

pub struct Pipeline {
    limits: Limits,
    geo: GeoResolver,
    /// Shared with on-demand scoring in the same process; locked per scored event.
    fraud: SharedFraudEngine,
    scratch: Vec<u8>,
    buffers: Buffers,
    /// Records of the current batch that had lone surrogates repaired.
    repaired: usize,
    /// What the fraud engine made of the current batch, counted when the batch is done.
    fraud_counts: FraudCounts,
    /// Whether documents carry their typed field values (the store reads them).
    field_values: bool,
    /// Whether records from Sluice's ingest were validated there before they were queued.
    validated_at_ingest: bool,
}

impl Pipeline {
    pub fn new(limits: Limits, geo: GeoResolver, fraud: FraudEngine) -> Pipeline {
        Pipeline {
            limits,
            geo,
            fraud: std::sync::Arc::new(std::sync::Mutex::new(fraud)),
            scratch: Vec::new(),
            buffers: Buffers::default(),
            repaired: 0,
            fraud_counts: FraudCounts::default(),
            field_values: true,
            validated_at_ingest: false,
        }
    }

    /// Leaves documents without their typed field values, for a store that does not read them
    /// ([`sluice_store::EventStore::reads_field_values`]).
    pub fn without_field_values(mut self) -> Pipeline {
        self.field_values = false;
        self
    }

    /// Reads the records Sluice's ingest queued without checking them again: it validated them
    /// before it acknowledged them ([`sluice_queue::QueueConsumer::validated_at_ingest`]).
    /// Records that reached the queue another way ([`Source::Queue`]) are validated still.
    pub fn set_validated_at_ingest(&mut self, validated: bool) {
        self.validated_at_ingest = validated;
    }

    pub fn geo_mut(&mut self) -> &mut GeoResolver {
        &mut self.geo
    }

    /// The fraud engine this pipeline scores with, for scoring on demand in the same process.
    pub fn fraud_engine(&self) -> SharedFraudEngine {
        self.fraud.clone()
    }

    /// Every record of the batch becomes a document or a dead letter; one record's failure,
    /// whatever it is, never stops the others.
    pub fn process(&mut self, records: &[QueuedRecord]) -> BatchOutput {
        let mut output = BatchOutput {
            documents: Vec::with_capacity(records.len()),
            origins: Vec::with_capacity(records.len()),
            dead_letters: Vec::new(),
        };
        for (index, record) in records.iter().enumerate() {
            match self.process_guarded(record) {
                Ok(document) => {
                    output.documents.push(document);
                    output.origins.push(index);
                }
                Err(failure) => output.dead_letters.push(dead_letter(record, failure)),
            }
        }
        if self.repaired > 0 {
            emit(RecordsRepaired {
                kind: "lone_surrogate",
                count: std::mem::take(&mut self.repaired),
            });
        }
        let fraud = std::mem::take(&mut self.fraud_counts);
        if fraud.scored > 0 {
            emit(FraudScored {
                scored: fraud.scored,
                detected: fraud.detected,
                indicators: Indicator::ALL
                    .iter()
                    .zip(fraud.fired)
                    .map(|(indicator, fired)| (indicator.as_str(), fired)),
            });
        }
        output
    }

    /// One record, with a panic inside Sluice turned into a dead letter for that record alone.
    fn process_guarded(&mut self, record: &QueuedRecord) -> Result<StoreDocument, RecordFailure> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.process_one(record))) {
            Ok(result) => result,
            Err(panic) => {
                // The parser's scratch state may be half written; start it afresh.
                self.scratch = Vec::new();
                self.buffers = Buffers::default();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                Err(RecordFailure::at(
                    Stage::Process,
                    vec![FieldIssue::whole_record(
                        RejectCode::ProcessingFailed,
                        format!(
                            "Sluice failed on this record ({message}); it is kept here to be \
                             replayed once that is fixed"
                        ),
                    )],
                ))
            }
        }
    }

    /// One record to one document.
    pub fn process_one(&mut self, record: &QueuedRecord) -> Result<StoreDocument, RecordFailure> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self.process_parsed(record, &mut scratch);
        self.scratch = scratch;
        result
    }

    fn process_parsed(
        &mut self,
        record: &QueuedRecord,
        scratch: &mut Vec<u8>,
    ) -> Result<StoreDocument, RecordFailure> {
        let validated = self.validated_at_ingest && record.source != Source::Queue;
        let parsed = if validated {
            parse_validated_record(&record.payload, scratch, &self.limits, &mut self.buffers)
        } else {
            parse_record_with(&record.payload, scratch, &self.limits, &mut self.buffers)
        }
        .map_err(|issue| RecordFailure::at(Stage::Validate, vec![issue]))?;
        // The document is the record's bytes, so they get the same repair the parser saw.
        let repaired = (parsed.repaired > 0).then(|| {
            self.repaired += 1;
            let mut copy = record.payload.clone();
            repair_lone_surrogates(&mut copy);
            copy
        });
        let value = parsed.tape.as_value();
        let event = if validated {
            read_validated(value, record.received_at_ms, &self.limits)
        } else {
            validate(value, record.received_at_ms, &self.limits)
                .map_err(|issues| RecordFailure::at(Stage::Validate, issues))?
        };
        let id = match (&record.id, event.event_id) {
            (Some(id), _) => id.clone(),
            (None, Some(event_id)) if !event_id.is_empty() => event_id.to_owned(),
            (None, _) => document_id(value, record.received_at_ms),
        };
        let geo = match event.ip {
            Some(ip) => self.geo.lookup(ip),
            None => Lookup::NotPublic,
        };
        let fraud = self.score(&event, &geo);
        let meta = DocumentMeta::new(&event, value.contains_key("@timestamp"));
        let geo_record = match &geo {
            Lookup::Found(record) => Some(record.as_ref()),
            _ => None,
        };
        let fraud = fraud.as_ref().map(|fraud| fraud_fields(fraud, value));
        let payload = repaired.as_deref().unwrap_or(&record.payload);
        let parsed = self.field_values.then_some(value);
        build_document(payload, parsed, record, id, meta, geo_record, fraud).map_err(|reason| {
            RecordFailure::at(
                Stage::Document,
                vec![FieldIssue::whole_record(RejectCode::InvalidValue, reason)],
            )
        })
    }

    fn score(&mut self, event: &ValidEvent<'_>, geo: &Lookup) -> Option<Fraud> {
        let activity = match event.log_type() {
            LogType::Fraud => return Some(Fraud::Upstream),
            LogType::Transaction => Activity::Transaction {
                amount: event.amount.unwrap_or(0.0),
                failed: event.status.is_some_and(is_failure_status),
            },
            LogType::UserBehavior if event.action.is_some_and(is_failure_action) => {
                Activity::FailedAttempt
            }
            _ => return None,
        };
        let input = FraudInput {
            user_id: event.user_id.as_deref(),
            ip: event.ip,
            event_time_ms: event.event_time_ms,
            activity,
            declared_country: event.country,
            geo: geo_facts(geo),
        };
        // A panic elsewhere while holding the lock leaves at worst a half-updated counter of one
        // user, which is no reason to stop scoring everyone.
        let assessment = self
            .fraud
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .assess(&input)?;
        self.fraud_counts.count(&assessment);
        Some(Fraud::Scored(assessment))
    }
}

/// Fraud verdicts of a batch, for its metrics.
#[derive(Debug, Default)]
struct FraudCounts {
    scored: u64,
    detected: u64,
    /// Times each indicator fired, in the order of [`Indicator::ALL`].
    fired: [u64; Indicator::ALL.len()],
}

impl FraudCounts {
    fn count(&mut self, assessment: &Assessment) {
        self.scored += 1;
        self.detected += u64::from(assessment.detected);
        for indicator in &assessment.indicators {
            if let Some(at) = Indicator::ALL.iter().position(|i| i == indicator) {
                self.fired[at] += 1;
            }
        }
    }
}

/// The fraud part of a document: scored here, or detected upstream (a `fraud` record).
pub(crate) enum Fraud {
    Scored(Assessment),
    Upstream,
}

fn fraud_fields<'a>(fraud: &'a Fraud, record: Record<'_, 'a>) -> FraudFields<'a> {
    match fraud {
        Fraud::Scored(assessment) => FraudFields {
            score: assessment.score,
            indicators: assessment.indicators.iter().map(|i| i.as_str()).collect(),
            detected: assessment.detected,
            source: "sluice",
        },
        Fraud::Upstream => FraudFields {
            score: record
                .get("fraud_score")
                .and_then(|score| score.cast_f64())
                .unwrap_or(0.0),
            indicators: record
                .get("indicators")
                .and_then(|v| v.as_array())
                .map(|items| items.iter().filter_map(|i| i.into_string()).collect())
                .unwrap_or_default(),
            detected: record.get_bool("fraud_detected").unwrap_or(false),
            source: "upstream",
        },
    }
}

pub(crate) fn geo_facts(lookup: &Lookup) -> GeoFacts<'_> {
    match lookup {
        Lookup::NoDatabase => GeoFacts::NoDatabase,
        Lookup::NotPublic => GeoFacts::NotApplicable,
        Lookup::Unknown => GeoFacts::Unknown,
        Lookup::Found(record) => geo_record_facts(record),
    }
}

fn geo_record_facts(record: &GeoRecord) -> GeoFacts<'_> {
    GeoFacts::Found {
        country_iso: record.country_iso_code.as_deref(),
        coordinates: record.location,
        anonymous: record.anonymous,
    }
}

fn dead_letter(record: &QueuedRecord, failure: RecordFailure) -> DeadLetter {
    let RecordFailure { stage, issues } = failure;
    let first = issues.first().cloned().unwrap_or_else(|| {
        FieldIssue::whole_record(RejectCode::InvalidValue, "record could not be processed")
    });
    let reason = issues
        .iter()
        .map(|i| match i.field.as_str() {
            "" => i.reason.clone(),
            field => format!("{field}: {}", i.reason),
        })
        .collect::<Vec<_>>()
        .join("; ");
    DeadLetter {
        letter_id: String::new(),
        id: record.id.clone(),
        failed_at_ms: sluice_event::now_ms(),
        received_at_ms: record.received_at_ms,
        source: record.source,
        stage: stage.as_str().into(),
        code: first.code,
        field: (!first.field.is_empty()).then_some(first.field),
        reason,
        payload: record.payload.clone(),
    }
}

#[cfg(test)]
mod tests;
