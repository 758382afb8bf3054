//! Revenue: the amounts of transactions whose payment went through, meaning every status but
//! the failures (`failed`, `declined`, … in any case; a transaction without a status counts as
//! paid). Read above the store from amounts per status, so the pass over the transactions that
//! counts them also gives the revenue, instead of a second query that excludes failures.

use sluice_common::fraud::is_failure_status;
use sluice_common::store::{Aggregation, AggregationResults, Field};

use super::ALL_VALUES;

const AMOUNT: &str = "amount";
const QUANTITY: &str = "quantity";
const STATUSES: &str = "statuses";

/// Adds what [`Paid::of`] reads to an aggregation (or, with [`paid_aggregations`], to the top
/// level): amounts overall and per status.
pub fn with_paid(aggregation: Aggregation) -> Aggregation {
    paid_aggregations()
        .into_iter()
        .fold(aggregation, |aggregation, (name, nested)| {
            aggregation.with(name, nested)
        })
}

/// The aggregations [`Paid::of`] reads, for the top level of a request.
pub fn paid_aggregations() -> Vec<(&'static str, Aggregation)> {
    vec![
        (AMOUNT, Aggregation::stats(Field::Amount)),
        (QUANTITY, Aggregation::stats(Field::Quantity)),
        (
            STATUSES,
            Aggregation::terms(Field::Status, ALL_VALUES)
                .with(AMOUNT, Aggregation::stats(Field::Amount))
                .with(QUANTITY, Aggregation::stats(Field::Quantity)),
        ),
    ]
}

/// Paid transactions: how many, their amounts and their units.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Paid {
    pub count: u64,
    pub revenue: f64,
    pub units: f64,
}

impl Paid {
    /// Everything, less the failed statuses.
    pub fn of(results: &AggregationResults) -> Paid {
        let all = results.stats(AMOUNT);
        let mut paid = Paid {
            count: all.count,
            revenue: all.sum,
            units: results.stats(QUANTITY).sum,
        };
        for bucket in results.terms(STATUSES) {
            if is_failure_status(&bucket.value) {
                let failed = bucket.nested.stats(AMOUNT);
                paid.count = paid.count.saturating_sub(failed.count);
                paid.revenue -= failed.sum;
                paid.units -= bucket.nested.stats(QUANTITY).sum;
            }
        }
        paid
    }

    /// All transactions counted, paid or not.
    pub fn all_count(results: &AggregationResults) -> u64 {
        results.stats(AMOUNT).count
    }

    pub fn average_basket(&self) -> Option<f64> {
        (self.count > 0).then(|| self.revenue / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_common::store::aggregation::read;

    #[test]
    fn failures_in_any_case_are_taken_out() {
        let mut request = sluice_common::store::Aggregations::new();
        for (name, aggregation) in paid_aggregations() {
            request.insert(name.to_owned(), aggregation);
        }
        let answer = serde_json::json!({
            "amount": {"count": 5, "min": 1.0, "max": 40.0, "avg": 15.0, "sum": 75.0},
            "quantity": {"count": 5, "min": 1.0, "max": 3.0, "avg": 2.0, "sum": 10.0},
            "statuses": {"buckets": [
                {"key": "completed", "doc_count": 2, "amount": {"count": 2, "sum": 30.0}, "quantity": {"count": 2, "sum": 4.0}},
                {"key": "FAILED", "doc_count": 1, "amount": {"count": 1, "sum": 40.0}, "quantity": {"count": 1, "sum": 3.0}},
                {"key": "declined", "doc_count": 1, "amount": {"count": 1, "sum": 1.0}, "quantity": {"count": 1, "sum": 1.0}},
            ]},
        });
        let results = read(&request, Some(&answer), None, None).expect("reads");
        let paid = Paid::of(&results);
        assert_eq!(
            paid,
            Paid {
                count: 3,
                revenue: 34.0,
                units: 6.0
            },
            "the one without a status counts as paid"
        );
        assert_eq!(Paid::all_count(&results), 5);
    }
}
