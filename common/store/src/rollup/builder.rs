//! Building a [`Rollup`] one event at a time, cheaply enough to run for every committed segment.
//!
//! Keywords arrive as numbers ([`TermId`], a segment's term ordinals): an event costs hash-map
//! steps over numbers, never a string, and each distinct text is read once, in order, when the
//! rollup is finished ([`TermTexts`]). Distinct counts collect ids per bucket and hash each text
//! into its sketch once. Breakdowns are capped per bucket ([`MAX_VALUES_PER_BUCKET`]) so that a
//! producer sending endless distinct values cannot grow a rollup without bound.

use std::collections::BTreeMap;

use super::{
    Bucket, COUNTED_BY, Cell, DISTINCT, Distinct, FieldKey, HOUR_MS, MEASURED, MEASURED_BY,
    MINUTE_MS, Numbers, Population, Quantiles, Rollup, SKETCHED, SKETCHED_BY,
};
use crate::fields::Field;

/// A keyword as a builder keys it: a number standing for its text in the caller's dictionary
/// (one per field), such as a segment's term ordinal. Ids are dense, from 0 to the number of
/// texts: the builder keeps sets of them as bits.
pub type TermId = u64;

/// One value of an event, as a rollup reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RollupValue {
    Term(TermId),
    Long(i64),
    Double(f64),
    Boolean(bool),
}

/// The texts of the term ids a builder was given, asked when it finishes.
pub trait TermTexts {
    type Error;

    /// Calls `each` with the text of every id of `ids` (ascending, distinct), in that order.
    fn texts(
        &mut self,
        field: Field,
        ids: &[TermId],
        each: &mut dyn FnMut(&str),
    ) -> Result<(), Self::Error>;
}

/// How many values of one breakdown one bucket of a kept rollup keeps. A field with more (a
/// producer sending a new page or product name with every event) is marked overflowed in the
/// rollup, and questions that break down by it read that rollup's events instead: answers stay exact, and
/// a rollup's size stays bounded by its hours and populations, not by its producers.
pub const MAX_VALUES_PER_BUCKET: usize = 1_000;

/// Maps keyed by numbers (term ids, hours): the keys are ours, not a client's, so a fast hash
/// is safe, and SipHash would be most of an event's cost.
type NumberMap<K, V> = rustc_hash::FxHashMap<K, V>;
type NumberSet<K> = rustc_hash::FxHashSet<K>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BucketKey {
    start: i64,
    log_type: Option<TermId>,
    status: Option<TermId>,
    fraud_detected: Option<bool>,
}

/// A breakdown value: a term's id, or a number or flag, told apart by its bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ValueKey {
    Term(TermId),
    Long(i64),
    Double(u64),
    Boolean(bool),
}

impl ValueKey {
    fn of(value: RollupValue) -> ValueKey {
        match value {
            RollupValue::Term(id) => ValueKey::Term(id),
            RollupValue::Long(number) => ValueKey::Long(number),
            RollupValue::Double(number) => ValueKey::Double(number.to_bits()),
            RollupValue::Boolean(flag) => ValueKey::Boolean(flag),
        }
    }
}

#[derive(Default)]
struct CellBuilder {
    count: u64,
    numbers: [Option<Numbers>; MEASURED.len()],
    sketches: [Option<Quantiles>; SKETCHED.len()],
}

impl CellBuilder {
    fn add(&mut self, measured: usize, value: f64, sketch: Option<usize>) {
        match &mut self.numbers[measured] {
            Some(numbers) => numbers.merge(&Numbers::of(value)),
            slot @ None => *slot = Some(Numbers::of(value)),
        }
        if let Some(index) = sketch {
            self.sketches[index].get_or_insert_default().add(value);
        }
    }

    fn finish(self) -> Cell {
        Cell {
            count: self.count,
            numbers: MEASURED
                .iter()
                .zip(self.numbers)
                .filter_map(|(&field, numbers)| Some((FieldKey(field), numbers?)))
                .collect(),
            sketches: SKETCHED
                .iter()
                .zip(self.sketches)
                .filter_map(|(&field, sketch)| Some((FieldKey(field), sketch?)))
                .collect(),
        }
    }
}

#[derive(Default)]
struct BucketBuilder {
    all: CellBuilder,
    by: NumberMap<(Field, ValueKey), CellBuilder>,
    /// Values kept per [`COUNTED_BY`] field, and whether more were seen.
    values: [(usize, bool); COUNTED_BY.len()],
    distinct: [NumberSet<TermId>; DISTINCT.len()],
}

/// Builds a [`Rollup`] one event at a time.
pub struct RollupBuilder {
    max_values_per_bucket: usize,
    /// [`HOUR_MS`], or [`MINUTE_MS`] for a store's rollups of a window's edge hours.
    bucket_ms: i64,
    buckets: NumberMap<BucketKey, BucketBuilder>,
    /// One event's numbers: (index in MEASURED, value), reused between events.
    numbers: Vec<(usize, f64)>,
}

fn position(fields: &[Field], field: Field) -> Option<usize> {
    fields.iter().position(|&f| f == field)
}

impl RollupBuilder {
    /// A builder that keeps up to `max_values_per_bucket` values of each breakdown per bucket
    /// ([`MAX_VALUES_PER_BUCKET`] for a rollup that is kept; any number for one that answers
    /// one question and is dropped).
    pub fn new(max_values_per_bucket: usize) -> RollupBuilder {
        RollupBuilder {
            max_values_per_bucket,
            bucket_ms: HOUR_MS,
            buckets: NumberMap::default(),
            numbers: Vec::new(),
        }
    }

    /// A builder of minute buckets: a rollup that answers for any whole minutes of its hours,
    /// which a store keeps in memory for the hours a window's ragged edges fall in, never on
    /// disk (a kept rollup's buckets are hours: [`Rollup::outline`] and the day merges read them
    /// as such).
    pub fn by_minute(max_values_per_bucket: usize) -> RollupBuilder {
        RollupBuilder {
            bucket_ms: MINUTE_MS,
            ..RollupBuilder::new(max_values_per_bucket)
        }
    }

    /// Adds one event: its time and its values, keywords as term ids (see [`TermId`]).
    pub fn add(&mut self, timestamp_ms: i64, values: &[(Field, RollupValue)]) {
        let mut key = BucketKey {
            start: timestamp_ms.div_euclid(self.bucket_ms) * self.bucket_ms,
            log_type: None,
            status: None,
            fraud_detected: None,
        };
        for &(field, value) in values {
            match (field, value) {
                (Field::LogType, RollupValue::Term(id)) => key.log_type = Some(id),
                (Field::Status, RollupValue::Term(id)) => key.status = Some(id),
                (Field::FraudDetected, RollupValue::Boolean(flag)) => {
                    key.fraud_detected = Some(flag)
                }
                _ => {}
            }
        }
        let bucket = self.buckets.entry(key).or_default();
        bucket.all.count += 1;
        self.numbers.clear();
        for &(field, value) in values {
            let number = match value {
                RollupValue::Double(number) => number,
                RollupValue::Long(number) => number as f64,
                RollupValue::Term(id) => {
                    if let Some(index) = position(DISTINCT, field) {
                        bucket.distinct[index].insert(id);
                    }
                    continue;
                }
                RollupValue::Boolean(_) => continue,
            };
            if let Some(measured) = position(MEASURED, field) {
                bucket.all.add(measured, number, position(SKETCHED, field));
                if MEASURED_BY.contains(&field) {
                    self.numbers.push((measured, number));
                }
            }
        }
        for (index, &(field, value)) in values.iter().enumerate() {
            let Some(counted) = position(COUNTED_BY, field) else {
                continue;
            };
            // A multi-valued field (fraud indicators) counts an event once per distinct value.
            if values[..index].contains(&(field, value)) {
                continue;
            }
            let by_key = (field, ValueKey::of(value));
            let cell = match bucket.by.get_mut(&by_key) {
                Some(cell) => cell,
                None => {
                    let (kept, overflowed) = &mut bucket.values[counted];
                    if *kept >= self.max_values_per_bucket {
                        *overflowed = true;
                        continue;
                    }
                    *kept += 1;
                    bucket.by.entry(by_key).or_default()
                }
            };
            cell.count += 1;
            let sketched = SKETCHED_BY.contains(&field);
            for &(measured, number) in &self.numbers {
                let sketch = sketched
                    .then(|| position(SKETCHED, MEASURED[measured]))
                    .flatten();
                cell.add(measured, number, sketch);
            }
        }
    }

    /// Whether no event was added.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The rollup, each term id read as its text once.
    pub fn finish<T: TermTexts>(self, terms: &mut T) -> Result<Rollup, T::Error> {
        let texts = self.read_texts(terms)?;
        let text = |field: Field, id: TermId| texts.text(field, id).map(str::to_owned);
        let mut rollup = Rollup::default();
        for (key, built) in self.buckets {
            let population = Population {
                log_type: key.log_type.and_then(|id| text(Field::LogType, id)),
                status: key.status.and_then(|id| text(Field::Status, id)),
                fraud_detected: key.fraud_detected,
            };
            let mut bucket = Bucket {
                all: built.all.finish(),
                ..Bucket::default()
            };
            for ((field, value), cell) in built.by {
                let value = match value {
                    ValueKey::Term(id) => match text(field, id) {
                        Some(text) => text,
                        None => continue,
                    },
                    ValueKey::Long(number) => number.to_string(),
                    ValueKey::Double(bits) => f64::from_bits(bits).to_string(),
                    ValueKey::Boolean(flag) => flag.to_string(),
                };
                bucket
                    .by
                    .entry(FieldKey(field))
                    .or_default()
                    .insert(value, cell.finish());
            }
            for (&field, &(_, overflowed)) in COUNTED_BY.iter().zip(&built.values) {
                if overflowed {
                    rollup.overflowed.insert(FieldKey(field));
                }
            }
            for (&field, ids) in DISTINCT.iter().zip(&built.distinct) {
                if ids.is_empty() {
                    continue;
                }
                let mut distinct = Distinct::default();
                for &id in ids {
                    if let Some(hash) = texts.hash(field, id) {
                        distinct.add_hash(hash);
                    }
                }
                distinct.settle();
                bucket.distinct.insert(FieldKey(field), distinct);
            }
            // Ids are one per text within a field, so no two keys name one population.
            rollup.buckets.insert((key.start, population), bucket);
        }
        Ok(rollup)
    }

    /// What every term id the buckets hold stands for, each text read once: distinct counts
    /// need only its hash. Wanted ids are gathered as bitsets (ids are dense), so a segment of
    /// millions of sessions costs a bit and a hash per session here, not a map entry.
    fn read_texts<T: TermTexts>(&self, terms: &mut T) -> Result<Texts, T::Error> {
        let mut wanted: BTreeMap<Field, IdSet> = BTreeMap::new();
        for (key, bucket) in &self.buckets {
            let population = [(Field::LogType, key.log_type), (Field::Status, key.status)];
            for (field, id) in population {
                if let Some(id) = id {
                    wanted.entry(field).or_default().insert(id);
                }
            }
            for (field, value) in bucket.by.keys() {
                if let ValueKey::Term(id) = value {
                    wanted.entry(*field).or_default().insert(*id);
                }
            }
            for (&field, ids) in DISTINCT.iter().zip(&bucket.distinct) {
                let set = wanted.entry(field).or_default();
                for &id in ids {
                    set.insert(id);
                }
            }
        }
        let mut texts = Texts::default();
        for (field, set) in wanted {
            let ids: Vec<TermId> = set.iter().collect();
            let mut next = ids.iter();
            match DISTINCT.contains(&field) {
                true => {
                    let hashes = texts.hashes.entry(field).or_default();
                    hashes.resize(set.len(), 0);
                    terms.texts(field, &ids, &mut |text| {
                        if let Some(slot) = next.next().and_then(|&id| hashes.get_mut(id as usize))
                        {
                            *slot = Distinct::hash(text);
                        }
                    })?;
                }
                false => {
                    let kept = texts.kept.entry(field).or_default();
                    terms.texts(field, &ids, &mut |text| {
                        if let Some(&id) = next.next() {
                            kept.push((id, text.to_owned()));
                        }
                    })?;
                }
            }
        }
        Ok(texts)
    }
}

/// Term ids, as bits.
#[derive(Default)]
struct IdSet(Vec<u64>);

impl IdSet {
    fn insert(&mut self, id: TermId) {
        let (word, bit) = ((id / 64) as usize, id % 64);
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << bit;
    }

    /// One past the largest id.
    fn len(&self) -> usize {
        self.0
            .last()
            .map_or(0, |last| self.0.len() * 64 - last.leading_zeros() as usize)
    }

    /// The ids, ascending.
    fn iter(&self) -> impl Iterator<Item = TermId> + '_ {
        self.0.iter().enumerate().flat_map(|(word, &bits)| {
            (0..64)
                .filter(move |bit| bits & (1 << bit) != 0)
                .map(move |bit| word as TermId * 64 + bit)
        })
    }
}

/// What the term ids of a finished rollup stand for.
#[derive(Default)]
struct Texts {
    /// By field: (id, text), ascending by id.
    kept: BTreeMap<Field, Vec<(TermId, String)>>,
    /// By [`DISTINCT`] field: the hash of each id's text, indexed by id.
    hashes: BTreeMap<Field, Vec<u64>>,
}

impl Texts {
    fn text(&self, field: Field, id: TermId) -> Option<&str> {
        let kept = self.kept.get(&field)?;
        let at = kept.binary_search_by_key(&id, |(id, _)| *id).ok()?;
        Some(kept[at].1.as_str())
    }

    fn hash(&self, field: Field, id: TermId) -> Option<u64> {
        self.hashes
            .get(&field)?
            .get(usize::try_from(id).ok()?)
            .copied()
    }
}
