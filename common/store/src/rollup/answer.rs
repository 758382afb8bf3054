//! Which questions rollups answer, and their answers in the stores' shape.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{
    Bucket, COUNTED_BY, Cell, DISTINCT, Distinct, FieldKey, HOUR_MS, MEASURED, MEASURED_BY,
    Numbers, POPULATION, Population, Quantiles, Rollup, RollupOutline, SKETCHED, SKETCHED_BY,
};
use crate::aggregation::{
    Aggregation, AggregationKind, AggregationResult, AggregationResults, Aggregations, Stats,
    TermBucket, TimeBucket, fill_timeline,
};
use crate::retention::day_start;
use crate::{Field, Filter, SearchQuery};

/// Why a question is read from the events instead: said in the answer, so the path is visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unanswerable(pub String);

/// The hours of a rollup that starts in `[first, end)` (unbounded where `None`).
#[derive(Clone, Copy)]
pub struct Part<'a> {
    pub rollup: &'a Rollup,
    pub first: Option<i64>,
    pub end: Option<i64>,
}

/// A search and its aggregations that rollups can answer.
#[derive(Debug, Clone)]
pub struct RollupQuestion {
    /// Every condition holds; each is one of a few (field, value) pairs.
    conditions: Vec<Vec<(Field, String)>>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    aggregations: Aggregations,
}

fn unanswerable(why: impl Into<String>) -> Unanswerable {
    Unanswerable(why.into())
}

impl RollupQuestion {
    /// The question, when rollups can answer it.
    pub fn of(
        query: &SearchQuery,
        aggregations: &Aggregations,
    ) -> Result<RollupQuestion, Unanswerable> {
        if query.text.is_some() {
            return Err(unanswerable("a text query"));
        }
        let mut conditions = Vec::new();
        for filter in &query.effective_filters() {
            match filter {
                // With nothing asked (a search's count), every event counts: the filter does.
                Filter::Exists(field)
                    if !aggregations.is_empty() && metrics_only_of(aggregations, *field) => {}
                filter => conditions.push(condition(filter)?),
            }
        }
        for aggregation in aggregations.values() {
            answerable(aggregation, Level::Buckets)?;
        }
        Ok(RollupQuestion {
            conditions,
            from_ms: query.from_ms,
            to_ms: query.to_ms,
            aggregations: aggregations.clone(),
        })
    }

    /// The fields the answer reads: the populations' and those the aggregations name, all a
    /// store needs to read of the events it rolls up for this question.
    pub fn fields(&self) -> Vec<Field> {
        fn named(aggregations: &Aggregations, fields: &mut Vec<Field>) {
            for aggregation in aggregations.values() {
                let field = match &aggregation.kind {
                    AggregationKind::Terms { field, .. }
                    | AggregationKind::Stats(field)
                    | AggregationKind::Cardinality(field)
                    | AggregationKind::Percentiles { field, .. } => Some(*field),
                    AggregationKind::Timeline { .. } => None,
                };
                fields.extend(field.filter(|field| !fields.contains(field)));
                named(&aggregation.nested, fields);
            }
        }
        let mut fields = POPULATION.to_vec();
        named(&self.aggregations, &mut fields);
        fields
    }

    /// The hours wholly inside the window, `[first, end)` by their starts; `None` where the
    /// window is open. Empty when the window holds no whole hour.
    pub fn whole_hours(&self) -> (Option<i64>, Option<i64>) {
        let first = self.from_ms.map(|from| {
            from.div_euclid(HOUR_MS) * HOUR_MS + i64::from(from % HOUR_MS != 0) * HOUR_MS
        });
        let end = self
            .to_ms
            .map(|to| to.saturating_add(1).div_euclid(HOUR_MS) * HOUR_MS);
        match (first, end) {
            (Some(first), Some(end)) if end <= first => (Some(first), Some(first)),
            hours => hours,
        }
    }

    /// The parts of the window outside its whole hours, as searches for the events to roll up
    /// on the spot: the whole window when it holds no whole hour.
    pub fn edges(&self, query: &SearchQuery) -> Vec<SearchQuery> {
        let part = |from_ms, to_ms| SearchQuery {
            from_ms,
            to_ms,
            ..query.clone()
        };
        match self.whole_hours() {
            (Some(first), Some(end)) if first == end => vec![part(self.from_ms, self.to_ms)],
            (first, end) => {
                let mut edges = Vec::new();
                if let (Some(from), Some(first)) = (self.from_ms, first)
                    && from < first
                {
                    edges.push(part(Some(from), Some(first - 1)));
                }
                if let (Some(to), Some(end)) = (self.to_ms, end)
                    && end <= to
                {
                    edges.push(part(Some(end), Some(to)));
                }
                edges
            }
        }
    }

    /// Whether `rollup` holds what the question reads: every breakdown it asks for is whole.
    pub fn reads(&self, rollup: &RollupOutline) -> bool {
        self.reads_whole(&rollup.overflowed)
    }

    /// [`reads`](Self::reads), of a rollup that did not hold these breakdowns whole.
    pub(super) fn reads_whole(&self, overflowed: &BTreeSet<FieldKey>) -> bool {
        fn whole(aggregations: &Aggregations, overflowed: &BTreeSet<FieldKey>) -> bool {
            aggregations.values().all(|aggregation| {
                let broken_down = match &aggregation.kind {
                    AggregationKind::Terms { field, .. } => overflowed.contains(&FieldKey(*field)),
                    _ => false,
                };
                !broken_down && whole(&aggregation.nested, overflowed)
            })
        }
        whole(&self.aggregations, overflowed)
    }

    /// The answer from `rollup`, which holds exactly the window's events.
    pub fn answer(&self, rollup: &Rollup) -> AggregationResults {
        self.answer_parts(&[Part {
            rollup,
            first: None,
            end: None,
        }])
    }

    /// The answer from the hours each part gives, which together hold exactly the window's
    /// events (the kept rollups' whole hours, the edges rolled up from the events). The parts
    /// are read where they are: only what the aggregations ask is merged.
    pub fn answer_parts(&self, parts: &[Part<'_>]) -> AggregationResults {
        self.over_buckets(&self.aggregations, &self.selected(parts))
    }

    /// How many of the events the parts give the question selects: a search's total.
    pub fn count_parts(&self, parts: &[Part<'_>]) -> u64 {
        count_of(&self.selected(parts))
    }

    /// The buckets of the parts' hours that hold the populations the question selects.
    fn selected<'a>(&self, parts: &[Part<'a>]) -> Vec<Entry<'a>> {
        let mut buckets: Vec<Entry<'_>> = Vec::new();
        for part in parts {
            let hours = part
                .rollup
                .hours(part.first.unwrap_or(i64::MIN), part.end.unwrap_or(i64::MAX));
            buckets.extend(
                hours
                    .filter(|((_, population), _)| self.selects(population))
                    .map(|(key, bucket)| Entry {
                        key,
                        bucket,
                        of: part.rollup,
                    }),
            );
        }
        buckets
    }

    fn selects(&self, population: &Population) -> bool {
        self.conditions.iter().all(|any_of| {
            any_of
                .iter()
                .any(|(field, value)| population.value_of(*field).as_deref() == Some(value))
        })
    }

    fn over_buckets(
        &self,
        aggregations: &Aggregations,
        buckets: &[Entry<'_>],
    ) -> AggregationResults {
        let mut results = BTreeMap::new();
        // What an aggregation that does not look at hours reads: whole days as one bucket.
        let days = std::cell::OnceCell::new();
        let by_days = || days.get_or_init(|| by_days(buckets));
        for (name, aggregation) in aggregations {
            let result = match &aggregation.kind {
                AggregationKind::Terms { field, size } if Population::splits_by(*field) => {
                    let terms = grouped(buckets, |(_, population)| population.value_of(*field))
                        .into_iter()
                        .map(|(value, group)| TermBucket {
                            value,
                            count: count_of(&group),
                            nested: self.over_buckets(&aggregation.nested, &group),
                        })
                        .collect();
                    AggregationResult::Terms(ranked(terms, *size))
                }
                AggregationKind::Terms { field, size } => {
                    let mut cells: BTreeMap<&str, Vec<&Cell>> = BTreeMap::new();
                    for Entry { bucket, .. } in by_days() {
                        for (value, cell) in bucket.by.get(&FieldKey(*field)).into_iter().flatten()
                        {
                            cells.entry(value).or_default().push(cell);
                        }
                    }
                    let terms = cells
                        .into_iter()
                        .map(|(value, cells)| TermBucket {
                            value: value.to_owned(),
                            count: cells.iter().map(|cell| cell.count).sum(),
                            nested: over_cells(&aggregation.nested, &cells),
                        })
                        .collect();
                    AggregationResult::Terms(ranked(terms, *size))
                }
                AggregationKind::Timeline { interval_ms } => {
                    let start_of = |(hour, _): &(i64, Population)| {
                        Some(hour.div_euclid(*interval_ms) * interval_ms)
                    };
                    let timeline = grouped(buckets, start_of)
                        .into_iter()
                        .map(|(start_ms, group)| TimeBucket {
                            start_ms,
                            count: count_of(&group),
                            nested: self.over_buckets(&aggregation.nested, &group),
                        })
                        .collect();
                    AggregationResult::Timeline(fill_timeline(
                        timeline,
                        *interval_ms,
                        self.from_ms,
                        self.to_ms,
                    ))
                }
                AggregationKind::Cardinality(field) => {
                    AggregationResult::Cardinality(distinct_of(by_days(), FieldKey(*field)))
                }
                AggregationKind::Stats(_) | AggregationKind::Percentiles { .. } => {
                    let cells: Vec<&Cell> =
                        by_days().iter().map(|entry| &entry.bucket.all).collect();
                    metric(aggregation, &cells)
                }
            };
            results.insert(name.clone(), result);
        }
        AggregationResults(results)
    }
}

/// One hour of one population, as a question reads it, and the rollup it is read from.
#[derive(Clone, Copy)]
struct Entry<'a> {
    key: &'a (i64, Population),
    bucket: &'a Bucket,
    of: &'a Rollup,
}

/// The buckets by `key` (those without one left out).
fn grouped<'a, K: Ord>(
    buckets: &[Entry<'a>],
    key: impl Fn(&(i64, Population)) -> Option<K>,
) -> BTreeMap<K, Vec<Entry<'a>>> {
    let mut groups: BTreeMap<K, Vec<Entry<'a>>> = BTreeMap::new();
    for entry in buckets {
        if let Some(key) = key(entry.key) {
            groups.entry(key).or_default().push(*entry);
        }
    }
    groups
}

fn count_of(group: &[Entry<'_>]) -> u64 {
    group.iter().map(|entry| entry.bucket.all.count).sum()
}

/// `buckets` with each day of one population that a rollup's day summary stands for (the
/// buckets hold every hour of it: [`Rollup::summarize_days`]) read as that summary: the same
/// events, one bucket instead of up to twenty-four. A month's breakdown by product reads thirty
/// buckets a population, and its distinct users merge thirty sketches, not 720.
fn by_days<'a>(buckets: &[Entry<'a>]) -> Vec<Entry<'a>> {
    // Keyed by the rollup's address: a question reads each rollup in place.
    let mut days: HashMap<(*const Rollup, i64, &Population), Vec<Entry<'a>>> = HashMap::new();
    let mut order = Vec::new();
    for entry in buckets {
        if entry.of.days.is_empty() {
            order.push(Err(*entry));
            continue;
        }
        let (hour, population) = entry.key;
        let key = (std::ptr::from_ref(entry.of), day_start(*hour), population);
        let day = days.entry(key).or_default();
        if day.is_empty() {
            order.push(Ok(key));
        }
        day.push(*entry);
    }
    let mut read = Vec::with_capacity(order.len());
    for at in order {
        let key = match at {
            Ok(key) => key,
            Err(entry) => {
                read.push(entry);
                continue;
            }
        };
        let Some(day) = days.remove(&key) else {
            continue;
        };
        let (_, start, population) = key;
        let of = day[0].of;
        match of.days.get_key_value(&(start, population.clone())) {
            Some((key, summary)) if summary.hours == day.len() => read.push(Entry {
                key,
                bucket: &summary.bucket,
                of,
            }),
            _ => read.extend(day),
        }
    }
    read
}

/// The distinct count of `field` over the buckets.
fn distinct_of(buckets: &[Entry<'_>], field: FieldKey) -> u64 {
    let mut distinct = Distinct::default();
    for entry in buckets {
        if let Some(sketch) = entry.bucket.distinct.get(&field) {
            distinct.merge(sketch);
        }
    }
    distinct.count()
}

/// Where in an answer an aggregation sits: over whole buckets, or within the events of one
/// value of a field (whose cells keep timing sketches or not).
#[derive(Clone, Copy, PartialEq)]
enum Level {
    Buckets,
    Cell { sketched: bool },
}

fn answerable(aggregation: &Aggregation, level: Level) -> Result<(), Unanswerable> {
    let nested_level = match (&aggregation.kind, level) {
        (AggregationKind::Stats(field), Level::Buckets) if MEASURED.contains(field) => {
            return Ok(());
        }
        (AggregationKind::Stats(field), Level::Cell { .. }) if MEASURED_BY.contains(field) => {
            return Ok(());
        }
        (
            AggregationKind::Percentiles { field, .. },
            Level::Buckets | Level::Cell { sketched: true },
        ) if SKETCHED.contains(field) => {
            return Ok(());
        }
        (AggregationKind::Cardinality(field), Level::Buckets) if DISTINCT.contains(field) => {
            return Ok(());
        }
        (AggregationKind::Terms { field, .. }, Level::Buckets) if Population::splits_by(*field) => {
            Level::Buckets
        }
        (AggregationKind::Terms { field, .. }, Level::Buckets) if COUNTED_BY.contains(field) => {
            Level::Cell {
                sketched: SKETCHED_BY.contains(field),
            }
        }
        (AggregationKind::Timeline { interval_ms }, Level::Buckets)
            if interval_ms % HOUR_MS == 0 =>
        {
            Level::Buckets
        }
        (kind, _) => return Err(unanswerable(format!("rollups do not keep {kind:?} there"))),
    };
    for nested in aggregation.nested.values() {
        answerable(nested, nested_level)?;
    }
    Ok(())
}

/// Whether every aggregation is a metric of `field` (which ignores events without it, so a
/// filter that it exists changes nothing).
fn metrics_only_of(aggregations: &Aggregations, field: Field) -> bool {
    aggregations.values().all(|aggregation| {
        aggregation.nested.is_empty()
            && match &aggregation.kind {
                AggregationKind::Stats(f)
                | AggregationKind::Cardinality(f)
                | AggregationKind::Percentiles { field: f, .. } => *f == field,
                _ => false,
            }
    })
}

/// A filter as a condition on populations.
fn condition(filter: &Filter) -> Result<Vec<(Field, String)>, Unanswerable> {
    match filter {
        Filter::Equals(field, value) if Population::splits_by(*field) => {
            Ok(vec![(*field, value.clone())])
        }
        Filter::AnyOf(filters) => {
            let mut any_of = Vec::new();
            for filter in filters {
                any_of.extend(condition(filter)?);
            }
            Ok(any_of)
        }
        other => Err(unanswerable(format!(
            "a filter rollups do not split by: {other:?}"
        ))),
    }
}

/// Metrics of the events of some cells, reading only the figures they name.
fn over_cells(aggregations: &Aggregations, cells: &[&Cell]) -> AggregationResults {
    AggregationResults(
        aggregations
            .iter()
            .map(|(name, aggregation)| (name.clone(), metric(aggregation, cells)))
            .collect(),
    )
}

fn metric(aggregation: &Aggregation, cells: &[&Cell]) -> AggregationResult {
    match &aggregation.kind {
        AggregationKind::Stats(field) => {
            let mut numbers: Option<Numbers> = None;
            for found in cells.iter().filter_map(|cell| cell.numbers_of(*field)) {
                match &mut numbers {
                    Some(numbers) => numbers.merge(found),
                    None => numbers = Some(*found),
                }
            }
            AggregationResult::Stats(match numbers {
                Some(Numbers {
                    count,
                    sum,
                    min,
                    max,
                }) if count > 0 => Stats {
                    count,
                    min: Some(min),
                    max: Some(max),
                    avg: Some(sum / count as f64),
                    sum,
                },
                _ => Stats::default(),
            })
        }
        AggregationKind::Percentiles { field, percents } => {
            let mut sketch = Quantiles::default();
            for found in cells.iter().filter_map(|cell| cell.sketch_of(*field)) {
                sketch.merge(found);
            }
            AggregationResult::Percentiles(
                percents
                    .iter()
                    .map(|&percent| (percent, sketch.percentile(percent)))
                    .collect(),
            )
        }
        // `answerable` lets only metrics reach a cell.
        _ => AggregationResult::Stats(Stats::default()),
    }
}

/// Most frequent first, ties by value, as the stores' answers are read.
fn ranked(mut terms: Vec<TermBucket>, size: usize) -> Vec<TermBucket> {
    terms.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    terms.truncate(size);
    terms
}
