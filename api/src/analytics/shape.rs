//! How aggregation results look in answers, the same in every endpoint: timelines as
//! `{time, count, …}`, top lists as `{value, count, …}`, money in cents precision, rates as
//! fractions.

use serde_json::{Value, json};
use sluice_store::{TermBucket, TimeBucket};

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

/// Merges `extra`'s fields (an object) into `base`.
fn merged(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(base), Value::Object(extra)) = (&mut base, extra) {
        base.extend(extra);
    }
    base
}

pub fn timeline_json(buckets: &[TimeBucket], extra: impl Fn(&TimeBucket) -> Value) -> Vec<Value> {
    buckets
        .iter()
        .map(|bucket| {
            merged(
                json!({ "time": format_rfc3339_ms(bucket.start_ms), "count": bucket.count }),
                extra(bucket),
            )
        })
        .collect()
}

pub fn terms_json(buckets: &[TermBucket], extra: impl Fn(&TermBucket) -> Value) -> Vec<Value> {
    buckets
        .iter()
        .map(|bucket| {
            merged(
                json!({ "value": bucket.value, "count": bucket.count }),
                extra(bucket),
            )
        })
        .collect()
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
