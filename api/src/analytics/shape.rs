//! How aggregation results look in answers, the same in every endpoint: timelines as
//! `{time, count, …}`, top lists as `{value, count, …}`, money in cents precision, rates as
//! fractions.

use serde::Serialize;
use sluice_store::{TermBucket, TimeBucket};
use utoipa::ToSchema;

use sluice_event::format_rfc3339_ms;

/// Rounded to cents (and latencies to hundredths of a millisecond): sums of floating-point
/// amounts differ in their last bits with the order they were added in, which is no one's
/// business.
pub fn money(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// `part / whole`, 0 when there is no whole, to four decimals.
pub fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
}

/// A bucket of a top list: a value, its events, and what the endpoint adds (`E`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Term<E> {
    pub value: String,
    pub count: u64,
    #[serde(flatten)]
    pub extra: E,
}

/// A bucket of a timeline: its start, its events, and what the endpoint adds (`E`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Interval<E> {
    /// The bucket's start, RFC 3339.
    pub time: String,
    pub count: u64,
    #[serde(flatten)]
    pub extra: E,
}

/// Nothing beside the count.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Count {}

/// The revenue of the bucket's successful payments.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revenue {
    pub revenue: f64,
}

pub fn timeline<E>(buckets: &[TimeBucket], extra: impl Fn(&TimeBucket) -> E) -> Vec<Interval<E>> {
    buckets
        .iter()
        .map(|bucket| Interval {
            time: format_rfc3339_ms(bucket.start_ms),
            count: bucket.count,
            extra: extra(bucket),
        })
        .collect()
}

pub fn terms<E>(buckets: &[TermBucket], extra: impl Fn(&TermBucket) -> E) -> Vec<Term<E>> {
    buckets
        .iter()
        .map(|bucket| Term {
            value: bucket.value.clone(),
            count: bucket.count,
            extra: extra(bucket),
        })
        .collect()
}

/// A top list with nothing beside the counts.
pub fn counts(buckets: &[TermBucket]) -> Vec<Term<Count>> {
    terms(buckets, |_| Count {})
}

/// A timeline with nothing beside the counts.
pub fn counts_over_time(buckets: &[TimeBucket]) -> Vec<Interval<Count>> {
    timeline(buckets, |_| Count {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_and_rates() {
        assert_eq!(money(0.1 + 0.2), 0.3);
        assert_eq!(money(1234.5678), 1234.57);
        assert_eq!(ratio(1, 3), 0.3333);
        assert_eq!(ratio(5, 0), 0.0);
    }
}
