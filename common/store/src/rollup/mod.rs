//! Rollups: what the dashboards ask of many events, kept per hour, so that a long window is read
//! from a few thousand small buckets instead of millions of events.
//!
//! A [`Rollup`] holds, for each UTC hour and each [`Population`] (the events of one log type,
//! payment status and fraud verdict: the slices the dashboards filter on), the events' count,
//! each number's count, sum, minimum and maximum, quantile sketches of the timings and distinct
//! counts of users and sessions; overall, and per value of every field the dashboards count by.
//! Building ([`RollupBuilder`]) and answering over several rollups ([`RollupQuestion::answer_parts`])
//! agree: a question asked of the rollups of any partition of a set of events, together, has
//! the answer it has of the rollup of the whole set. That is what lets a store keep
//! one per partition it commits (a tantivy segment, which never changes but by losing
//! documents): a replayed document that replaced an earlier one lives in one segment only, so
//! it is counted once, and a segment that lost documents has its rollup built again.
//!
//! [`RollupQuestion`] says whether a search and its aggregations can be answered from rollups
//! (filters on those slices only, time buckets of whole hours, metrics a rollup keeps), and
//! answers them in the shape the stores' own aggregations have; the ragged edges of a window
//! (its partial first and last hours) are read from the events and rolled up on the spot.

mod answer;
mod sketch;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use answer::{Part, RollupQuestion, Unanswerable};
pub use sketch::{Distinct, Quantiles};

use super::fields::{Field, FieldValue, FieldValues};

/// The width of a rollup bucket.
pub const HOUR_MS: i64 = 3_600_000;

/// The fields a rollup breaks its counts down by (`terms` aggregations on them are answered).
pub const COUNTED_BY: &[Field] = &[
    Field::Level,
    Field::Service,
    Field::PaymentMethod,
    Field::Currency,
    Field::ProductName,
    Field::Category,
    Field::Country,
    Field::GeoCountry,
    Field::ErrorCode,
    Field::ErrorType,
    Field::Endpoint,
    Field::StatusCode,
    Field::Action,
    Field::Page,
    Field::FraudIndicators,
];

/// The numbers a rollup keeps count, sum, minimum and maximum of (`stats`).
pub const MEASURED: &[Field] = &[
    Field::Amount,
    Field::Quantity,
    Field::ResponseTime,
    Field::DbQueryTime,
    Field::FraudScore,
    Field::StatusCode,
];

/// The numbers a breakdown's values keep too (`stats` within `terms`): amounts and units per
/// product, method or country; timings per endpoint or service.
pub const MEASURED_BY: &[Field] = &[
    Field::Amount,
    Field::Quantity,
    Field::ResponseTime,
    Field::DbQueryTime,
];

/// The numbers a rollup keeps quantile sketches of (`percentiles`).
pub const SKETCHED: &[Field] = &[Field::ResponseTime, Field::DbQueryTime];

/// The breakdowns whose values keep timing sketches too (`percentiles` within their `terms`):
/// the ones the endpoints ask it of. A sketch per value of every field would be most of a
/// rollup's size.
pub const SKETCHED_BY: &[Field] = &[Field::Endpoint, Field::Service];

/// The fields a rollup keeps distinct counts of (`cardinality`), per hour and population.
pub const DISTINCT: &[Field] = &[Field::UserId, Field::SessionId];

/// The fields a population is told apart by.
pub const POPULATION: &[Field] = &[Field::LogType, Field::Status, Field::FraudDetected];

/// Every field a rollup reads from an event, once each.
pub fn rolled_up_fields() -> Vec<Field> {
    let mut fields = Vec::new();
    for &field in POPULATION
        .iter()
        .chain(COUNTED_BY)
        .chain(MEASURED)
        .chain(DISTINCT)
    {
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
    fields
}

/// A field as a rollup's maps key it: compared as the enum, kept on disk by its path, so that a
/// field added to [`Field`] does not shift the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct FieldKey(Field);

impl Serialize for FieldKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.path())
    }
}

impl<'de> Deserialize<'de> for FieldKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let path = String::deserialize(deserializer)?;
        Field::from_path(&path)
            .map(FieldKey)
            .ok_or_else(|| serde::de::Error::custom(format!("no field {path}")))
    }
}

/// The slice of events a bucket holds: what the dashboards' own filters select.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Population {
    pub log_type: Option<String>,
    pub status: Option<String>,
    pub fraud_detected: Option<bool>,
}

impl Population {
    /// The population's value of one of its fields, as a `terms` bucket names it.
    fn value_of(&self, field: Field) -> Option<String> {
        match field {
            Field::LogType => self.log_type.clone(),
            Field::Status => self.status.clone(),
            Field::FraudDetected => self.fraud_detected.map(|d| d.to_string()),
            _ => None,
        }
    }

    /// Whether `field` is one a population is told apart by.
    pub fn splits_by(field: Field) -> bool {
        POPULATION.contains(&field)
    }
}

/// Count, sum, minimum and maximum of one number.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
struct Numbers {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Numbers {
    fn of(value: f64) -> Numbers {
        Numbers {
            count: 1,
            sum: value,
            min: value,
            max: value,
        }
    }

    fn merge(&mut self, other: &Numbers) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// What a rollup knows of a set of events: how many, and their numbers and timings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cell {
    count: u64,
    /// By [`MEASURED`] field path.
    numbers: BTreeMap<FieldKey, Numbers>,
    /// By [`SKETCHED`] field path.
    sketches: BTreeMap<FieldKey, Quantiles>,
}

impl Cell {
    fn add_number(&mut self, field: Field, value: f64, sketched: bool) {
        if MEASURED.contains(&field) {
            match self.numbers.get_mut(&FieldKey(field)) {
                Some(numbers) => numbers.merge(&Numbers::of(value)),
                None => {
                    self.numbers.insert(FieldKey(field), Numbers::of(value));
                }
            }
        }
        if sketched && SKETCHED.contains(&field) {
            self.sketches.entry(FieldKey(field)).or_default().add(value);
        }
    }
}

/// One hour of one population.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Bucket {
    all: Cell,
    /// Field path → value → the events with that value.
    by: BTreeMap<FieldKey, BTreeMap<String, Cell>>,
    /// By [`DISTINCT`] field path.
    distinct: BTreeMap<FieldKey, Distinct>,
}

/// Bumped whenever what a rollup keeps changes: a rollup of another format is not read (a
/// store builds it again from its events).
const FORMAT: u32 = 2;

/// The rollup of a set of events: buckets by hour (its start, epoch ms) and population.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rollup {
    format: u32,
    buckets: BTreeMap<(i64, Population), Bucket>,
}

impl Default for Rollup {
    fn default() -> Self {
        Rollup {
            format: FORMAT,
            buckets: BTreeMap::new(),
        }
    }
}

/// A rollup that could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("unreadable rollup: {0}")]
pub struct RollupDecodeError(String);

impl Rollup {
    /// The rollup as bytes (CBOR), to keep beside the events it was built from.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        // Writing to a Vec cannot fail, and every value here serialises.
        let _ = ciborium::into_writer(self, &mut bytes);
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Rollup, RollupDecodeError> {
        let rollup: Rollup =
            ciborium::from_reader(bytes).map_err(|e| RollupDecodeError(e.to_string()))?;
        match rollup.format {
            FORMAT => Ok(rollup),
            other => Err(RollupDecodeError(format!(
                "format {other}, not {FORMAT}: built again from the events"
            ))),
        }
    }
}

/// Builds a [`Rollup`] one event at a time.
#[derive(Debug, Default)]
pub struct RollupBuilder {
    rollup: Rollup,
}

impl RollupBuilder {
    /// Adds one event: its time and its field values (keywords as the store indexes them).
    pub fn add(&mut self, timestamp_ms: i64, values: &FieldValues) {
        let mut population = Population::default();
        for (field, value) in values.iter() {
            match (field, value) {
                (Field::LogType, FieldValue::Keyword(text)) => {
                    population.log_type = Some(text.to_owned())
                }
                (Field::Status, FieldValue::Keyword(text)) => {
                    population.status = Some(text.to_owned())
                }
                (Field::FraudDetected, FieldValue::Boolean(flag)) => {
                    population.fraud_detected = Some(flag)
                }
                _ => {}
            }
        }
        let hour = timestamp_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let bucket = self.rollup.buckets.entry((hour, population)).or_default();
        bucket.all.count += 1;
        for (field, value) in values.iter() {
            if let Some(number) = number_of(value) {
                bucket.all.add_number(field, number, true);
            }
            if DISTINCT.contains(&field)
                && let FieldValue::Keyword(text) = value
            {
                bucket
                    .distinct
                    .entry(FieldKey(field))
                    .or_default()
                    .add(text);
            }
        }
        for (index, (field, value)) in values.iter().enumerate() {
            if !COUNTED_BY.contains(&field) {
                continue;
            }
            // A multi-valued field (fraud indicators) counts an event once per distinct value.
            if values
                .iter()
                .take(index)
                .any(|(f, v)| f == field && v == value)
            {
                continue;
            }
            let key = match value {
                FieldValue::Keyword(text) => text.to_owned(),
                FieldValue::Long(number) => number.to_string(),
                FieldValue::Double(number) => number.to_string(),
                FieldValue::Boolean(flag) => flag.to_string(),
            };
            let sketched = SKETCHED_BY.contains(&field);
            let cell = bucket
                .by
                .entry(FieldKey(field))
                .or_default()
                .entry(key)
                .or_default();
            cell.count += 1;
            for (measured, number) in values.iter().filter_map(|(f, v)| Some((f, number_of(v)?))) {
                if MEASURED_BY.contains(&measured) {
                    cell.add_number(measured, number, sketched);
                }
            }
        }
    }

    pub fn finish(self) -> Rollup {
        self.rollup
    }
}

fn number_of(value: FieldValue<'_>) -> Option<f64> {
    match value {
        FieldValue::Double(number) => Some(number),
        FieldValue::Long(number) => Some(number as f64),
        _ => None,
    }
}
