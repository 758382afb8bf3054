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
mod builder;
mod days;
mod sketch;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use answer::{Part, RollupQuestion, Unanswerable};
pub use builder::{MAX_VALUES_PER_BUCKET, RollupBuilder, RollupValue, TermId, TermTexts};
pub use days::{DayRollups, Partition, PartitionRollup};
pub use sketch::{Distinct, Quantiles};

use super::fields::Field;
use super::retention::day_start;

/// The width of a rollup bucket.
pub const HOUR_MS: i64 = 3_600_000;

/// The width of a bucket of a rollup built [`by_minute`](RollupBuilder::by_minute).
pub const MINUTE_MS: i64 = 60_000;

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

/// What a rollup knows of a set of events: how many, and their numbers and timings. Figures
/// are kept as short lists, by field: a cell holds a few, and most cells are breakdown values.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cell {
    count: u64,
    /// Of [`MEASURED`] fields.
    numbers: Vec<(FieldKey, Numbers)>,
    /// Of [`SKETCHED`] fields.
    sketches: Vec<(FieldKey, Quantiles)>,
}

impl Cell {
    fn numbers_of(&self, field: Field) -> Option<&Numbers> {
        self.numbers
            .iter()
            .find_map(|(key, numbers)| (key.0 == field).then_some(numbers))
    }

    fn sketch_of(&self, field: Field) -> Option<&Quantiles> {
        self.sketches
            .iter()
            .find_map(|(key, sketch)| (key.0 == field).then_some(sketch))
    }

    fn merge(&mut self, other: &Cell) {
        self.count += other.count;
        for (field, numbers) in &other.numbers {
            match self.numbers.iter_mut().find(|(mine, _)| mine == field) {
                Some((_, mine)) => mine.merge(numbers),
                None => self.numbers.push((*field, *numbers)),
            }
        }
        for (field, sketch) in &other.sketches {
            match self.sketches.iter_mut().find(|(mine, _)| mine == field) {
                Some((_, mine)) => mine.merge(sketch),
                None => self.sketches.push((*field, sketch.clone())),
            }
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

impl Bucket {
    fn merge(&mut self, other: &Bucket) {
        self.all.merge(&other.all);
        for (field, values) in &other.by {
            let mine = self.by.entry(*field).or_default();
            for (value, cell) in values {
                match mine.get_mut(value) {
                    Some(mine) => mine.merge(cell),
                    None => {
                        mine.insert(value.clone(), cell.clone());
                    }
                }
            }
        }
        for (field, sketch) in &other.distinct {
            match self.distinct.get_mut(field) {
                Some(mine) => mine.merge(sketch),
                None => {
                    self.distinct.insert(*field, sketch.clone());
                }
            }
        }
    }
}

/// Bumped whenever what a rollup keeps changes: a rollup of another format is not read (a
/// store builds it again from its events).
const FORMAT: u32 = 5;

/// zstd's default level: most of the gain at a few hundred MB/s.
const ZSTD_LEVEL: i32 = 3;

/// The rollup of a set of events: buckets by hour (its start, epoch ms) and population; by
/// minute for one built [`by_minute`](RollupBuilder::by_minute), which answers the same
/// questions (a question's time buckets are whole hours) over any whole minutes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rollup {
    format: u32,
    buckets: BTreeMap<(i64, Population), Bucket>,
    /// Breakdowns some bucket had more values of than it keeps ([`MAX_VALUES_PER_BUCKET`]):
    /// questions by them read this rollup's events instead.
    overflowed: BTreeSet<FieldKey>,
    /// Each UTC day's buckets by population, merged: kept by a day's merge
    /// ([`summarize_days`](Self::summarize_days)) and never written, so that a month's question
    /// reads thirty buckets a population, not seven hundred and twenty.
    #[serde(skip)]
    days: BTreeMap<(i64, Population), DaySummary>,
}

/// A day's buckets for one population merged, and how many of its hours hold that population:
/// a question that reads every one of those hours may read this instead.
#[derive(Debug, Clone)]
struct DaySummary {
    hours: usize,
    bucket: Bucket,
}

impl Default for Rollup {
    fn default() -> Self {
        Rollup {
            format: FORMAT,
            buckets: BTreeMap::new(),
            overflowed: BTreeSet::new(),
            days: BTreeMap::new(),
        }
    }
}

/// What a rollup holds, without its buckets: the hours it has events in and the breakdowns it
/// does not hold whole. Enough to plan a question, so that a store need not keep decoded the
/// rollups its day merges already hold (a few per cent of their size).
#[derive(Debug, Clone, Default)]
pub struct RollupOutline {
    /// The hours' starts, ascending.
    hours: Vec<i64>,
    overflowed: BTreeSet<FieldKey>,
}

impl RollupOutline {
    /// Whether some event may lie within `from_ms..=to_ms`: whether an hour it touches holds
    /// any.
    pub fn may_hold(&self, from_ms: i64, to_ms: i64) -> bool {
        let first = from_ms.saturating_sub(from_ms.rem_euclid(HOUR_MS));
        let end = to_ms
            .saturating_sub(to_ms.rem_euclid(HOUR_MS))
            .saturating_add(1);
        let at = self.hours.partition_point(|hour| *hour < first);
        self.hours.get(at).is_some_and(|hour| *hour < end)
    }

    /// The UTC days (their starts, epoch ms) whose hours hold events, ascending.
    pub fn days(&self) -> Vec<i64> {
        let mut days: Vec<i64> = Vec::new();
        for hour in &self.hours {
            let day = day_start(*hour);
            if days.last() != Some(&day) {
                days.push(day);
            }
        }
        days
    }
}

/// A rollup that could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("unreadable rollup: {0}")]
pub struct RollupDecodeError(String);

impl Rollup {
    /// The buckets of the hours that start in `[first, end)`.
    fn hours(&self, first: i64, end: i64) -> impl Iterator<Item = (&(i64, Population), &Bucket)> {
        self.buckets
            .range((first, Population::default())..)
            .take_while(move |((hour, _), _)| *hour < end)
    }

    /// What the rollup holds, without its buckets.
    pub fn outline(&self) -> RollupOutline {
        let mut hours: Vec<i64> = Vec::new();
        for (hour, _) in self.buckets.keys() {
            if hours.last() != Some(hour) {
                hours.push(*hour);
            }
        }
        RollupOutline {
            hours,
            overflowed: self.overflowed.clone(),
        }
    }

    /// Adds `other`'s hours that start in `[first, end)`, and its overflowed breakdowns (a sum
    /// of rollups holds whole only what each of them does).
    pub fn merge_hours(&mut self, other: &Rollup, first: i64, end: i64) {
        // Days summarized before this merge would no longer be their hours' union.
        self.days.clear();
        for (key, bucket) in other.hours(first, end) {
            match self.buckets.get_mut(key) {
                Some(mine) => mine.merge(bucket),
                None => {
                    self.buckets.insert(key.clone(), bucket.clone());
                }
            }
        }
        self.overflowed.extend(other.overflowed.iter().copied());
    }

    /// The same events in buckets `width_ms` wide, a multiple of this rollup's own: a store
    /// keeps an edge hour's minutes ten at a time as well, so that the part of an hour a window
    /// holds reads at most fourteen buckets a population, not fifty-nine.
    pub fn coarsened(&self, width_ms: i64) -> Rollup {
        let mut coarse = Rollup {
            overflowed: self.overflowed.clone(),
            ..Rollup::default()
        };
        for ((start, population), bucket) in &self.buckets {
            let key = (start.div_euclid(width_ms) * width_ms, population.clone());
            match coarse.buckets.get_mut(&key) {
                Some(coarse) => coarse.merge(bucket),
                None => {
                    coarse.buckets.insert(key, bucket.clone());
                }
            }
        }
        coarse
    }

    /// Keeps each day's buckets by population merged ([`DaySummary`]), for questions over
    /// whole days. Until the rollup next changes: merging into it drops them.
    pub fn summarize_days(&mut self) {
        let mut days: BTreeMap<(i64, Population), DaySummary> = BTreeMap::new();
        for ((hour, population), bucket) in &self.buckets {
            let day = days
                .entry((day_start(*hour), population.clone()))
                .or_insert_with(|| DaySummary {
                    hours: 0,
                    bucket: Bucket::default(),
                });
            day.hours += 1;
            day.bucket.merge(bucket);
        }
        self.days = days;
    }

    /// The breakdowns this rollup does not hold whole (see [`MAX_VALUES_PER_BUCKET`]).
    pub fn overflowed(&self) -> impl Iterator<Item = Field> + '_ {
        self.overflowed.iter().map(|key| key.0)
    }

    /// The rollup as bytes to keep beside the events it was built from: CBOR, compressed with
    /// zstd (field paths, breakdown values and sketch bins repeat from bucket to bucket: a
    /// third of the size).
    pub fn encode(&self) -> std::io::Result<Vec<u8>> {
        let mut compressed = zstd::stream::Encoder::new(Vec::new(), ZSTD_LEVEL)?;
        ciborium::into_writer(self, &mut compressed).map_err(std::io::Error::other)?;
        compressed.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Rollup, RollupDecodeError> {
        let decompressed =
            zstd::stream::Decoder::new(bytes).map_err(|e| RollupDecodeError(e.to_string()))?;
        let rollup: Rollup =
            ciborium::from_reader(decompressed).map_err(|e| RollupDecodeError(e.to_string()))?;
        match rollup.format {
            FORMAT => Ok(rollup),
            other => Err(RollupDecodeError(format!(
                "format {other}, not {FORMAT}: built again from the events"
            ))),
        }
    }
}
