//! The CPU part of the processor, free of I/O so it runs on a blocking thread and benchmarks
//! on its own: records in, documents and dead letters out.

use simd_json::prelude::*;
use sluice_common::event::{LogType, QueuedRecord, document_id};
use sluice_common::fraud::{
    Activity, Assessment, FraudEngine, FraudInput, GeoFacts, SharedFraudEngine, is_failure_action,
    is_failure_status,
};
use sluice_common::queue::DeadLetter;
use sluice_common::store::StoreDocument;
use sluice_common::telemetry::emit;
use sluice_common::telemetry::events::FraudScored;
use sluice_common::validate::{
    Buffers, FieldIssue, Limits, Record, RejectCode, ValidEvent, parse_record_with, validate,
};
use sluice_geoip::{GeoRecord, GeoResolver, Lookup};

use crate::document::{DocumentMeta, FraudFields, build_document};

/// What one batch became.
#[derive(Debug, Default)]
pub struct BatchOutput {
    pub documents: Vec<StoreDocument>,
    pub dead_letters: Vec<DeadLetter>,
}

pub struct Pipeline {
    limits: Limits,
    geo: GeoResolver,
    /// Shared with on-demand scoring in the same process; locked per scored event.
    fraud: SharedFraudEngine,
    scratch: Vec<u8>,
    buffers: Buffers,
}

impl Pipeline {
    pub fn new(limits: Limits, geo: GeoResolver, fraud: FraudEngine) -> Pipeline {
        Pipeline {
            limits,
            geo,
            fraud: std::sync::Arc::new(std::sync::Mutex::new(fraud)),
            scratch: Vec::new(),
            buffers: Buffers::default(),
        }
    }

    pub fn geo_mut(&mut self) -> &mut GeoResolver {
        &mut self.geo
    }

    /// The fraud engine this pipeline scores with, for scoring on demand in the same process.
    pub fn fraud_engine(&self) -> SharedFraudEngine {
        self.fraud.clone()
    }

    pub fn process(&mut self, records: &[QueuedRecord]) -> BatchOutput {
        let mut output = BatchOutput {
            documents: Vec::with_capacity(records.len()),
            dead_letters: Vec::new(),
        };
        for record in records {
            match self.process_one(record) {
                Ok(document) => output.documents.push(document),
                Err(issues) => output.dead_letters.push(dead_letter(record, issues)),
            }
        }
        output
    }

    /// One record to one document.
    pub fn process_one(&mut self, record: &QueuedRecord) -> Result<StoreDocument, Vec<FieldIssue>> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(&record.payload);
        let result = self.process_parsed(record, &mut scratch);
        self.scratch = scratch;
        result
    }

    fn process_parsed(
        &mut self,
        record: &QueuedRecord,
        bytes: &mut [u8],
    ) -> Result<StoreDocument, Vec<FieldIssue>> {
        let tape = parse_record_with(bytes, &self.limits, &mut self.buffers)
            .map_err(|issue| vec![issue])?;
        let value = tape.as_value();
        let event = validate(value, record.received_at_ms, &self.limits)?;
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
        build_document(record, id, meta, geo_record, fraud)
            .map_err(|reason| vec![FieldIssue::whole_record(RejectCode::InvalidValue, reason)])
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
        emit(FraudScored {
            detected: assessment.detected,
            indicators: &assessment.indicators,
        });
        Some(Fraud::Scored(assessment))
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

fn dead_letter(record: &QueuedRecord, issues: Vec<FieldIssue>) -> DeadLetter {
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
        id: record.id.clone(),
        failed_at_ms: sluice_common::now_ms(),
        received_at_ms: record.received_at_ms,
        source: record.source,
        stage: "validate".into(),
        code: first.code,
        field: (!first.field.is_empty()).then_some(first.field),
        reason,
        payload: record.payload.clone(),
    }
}

#[cfg(test)]
mod tests;
