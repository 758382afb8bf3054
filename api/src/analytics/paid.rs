//! Revenue: the amounts of transactions whose payment went through, meaning every status but
//! the failures (`failed`, `declined`, … in any case; a transaction without a status counts as
//! paid). Computed as everything less the failures: the same aggregations run over the window's
//! transactions and over its failed ones, and the failed figures are subtracted per bucket. The
//! failed ones are a small share, found through a few status terms, so the second pass is cheap;
//! excluding them in the store instead costs a pass over everything twice.

use std::collections::BTreeMap;

use sluice_fraud::FAILURE_STATUSES;
use sluice_store::aggregation::AggregationKind;
use sluice_store::{Aggregation, AggregationResults, Field, Filter, SearchQuery};

use super::params::Window;
use super::{aggregate, of_type};
use crate::ApiState;
use sluice_http::ApiError;

const AMOUNT: &str = "amount";
const QUANTITY: &str = "quantity";

static NOTHING: AggregationResults = AggregationResults(BTreeMap::new());

/// Adds what [`Paid::of`] reads to a bucketing aggregation: amounts (units stay 0).
pub fn with_paid(aggregation: Aggregation) -> Aggregation {
    aggregation.with(AMOUNT, Aggregation::stats(Field::Amount))
}

/// [`with_paid`] and units sold, where an answer shows them: each nested figure costs a pass
/// over every bucket's documents.
pub fn with_paid_units(aggregation: Aggregation) -> Aggregation {
    with_paid(aggregation).with(QUANTITY, Aggregation::stats(Field::Quantity))
}

/// What [`Paid::of`] reads, for the top level of a request: amounts (units stay 0).
pub fn paid_aggregations() -> Vec<(&'static str, Aggregation)> {
    vec![(AMOUNT, Aggregation::stats(Field::Amount))]
}

/// The window's transactions with a failed status, in the cases producers write.
fn failed_transactions(window: &Window) -> SearchQuery {
    let mut statuses = Vec::new();
    for status in FAILURE_STATUSES {
        let mut capitalized = (*status).to_owned();
        capitalized[..1].make_ascii_uppercase();
        for variant in [
            (*status).to_owned(),
            capitalized,
            status.to_ascii_uppercase(),
        ] {
            statuses.push(Filter::Equals(Field::Status, variant));
        }
    }
    of_type(window, "transaction").and(Filter::AnyOf(statuses))
}

/// Top lists over the failures are this long at least: a value in the top list of all
/// transactions needs its failures subtracted even when it is not among the most failed.
const FAILED_TERMS: usize = 1_000;

/// `aggregation` with every top list at least [`FAILED_TERMS`] long.
fn widened(mut aggregation: Aggregation) -> Aggregation {
    if let AggregationKind::Terms { size, .. } = &mut aggregation.kind {
        *size = (*size).max(FAILED_TERMS);
    }
    aggregation.nested = aggregation
        .nested
        .into_iter()
        .map(|(name, nested)| (name, widened(nested)))
        .collect();
    aggregation
}

/// The same aggregations over the window's transactions and over its failed ones, at once.
pub async fn transactions_and_failures(
    state: &ApiState,
    window: &Window,
    named: Vec<(&str, Aggregation)>,
) -> Result<(AggregationResults, AggregationResults), ApiError> {
    let failed_named = named
        .iter()
        .map(|(name, aggregation)| (*name, widened(aggregation.clone())))
        .collect();
    tokio::try_join!(
        aggregate(state, of_type(window, "transaction"), named),
        aggregate(state, failed_transactions(window), failed_named),
    )
}

/// The nested results of the terms bucket `value` of `name` (empty when there is none): how a
/// bucket of the transactions finds its counterpart among the failures.
pub fn bucket_of<'a>(
    results: &'a AggregationResults,
    name: &str,
    value: &str,
) -> &'a AggregationResults {
    results
        .terms(name)
        .iter()
        .find(|bucket| bucket.value == value)
        .map_or(&NOTHING, |bucket| &bucket.nested)
}

/// The nested results of the time bucket of `name` starting at `start_ms` (empty when none).
pub fn interval_of<'a>(
    results: &'a AggregationResults,
    name: &str,
    start_ms: i64,
) -> &'a AggregationResults {
    results
        .timeline(name)
        .iter()
        .find(|bucket| bucket.start_ms == start_ms)
        .map_or(&NOTHING, |bucket| &bucket.nested)
}

/// Paid transactions: how many, their amounts and their units.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Paid {
    pub count: u64,
    pub revenue: f64,
    pub units: f64,
}

impl Paid {
    /// Everything less the failures, at one level of the answers (the top, or one bucket).
    pub fn of(all: &AggregationResults, failed: &AggregationResults) -> Paid {
        let (everything, failures) = (all.stats(AMOUNT), failed.stats(AMOUNT));
        Paid {
            count: everything.count.saturating_sub(failures.count),
            revenue: everything.sum - failures.sum,
            units: all.stats(QUANTITY).sum - failed.stats(QUANTITY).sum,
        }
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
    use sluice_store::Aggregations;
    use sluice_store::aggregation::read;

    fn results(answer: serde_json::Value) -> AggregationResults {
        let mut request: Aggregations = paid_aggregations()
            .into_iter()
            .map(|(name, aggregation)| (name.to_owned(), aggregation))
            .collect();
        request.insert(QUANTITY.to_owned(), Aggregation::stats(Field::Quantity));
        read(&request, Some(&answer), None, None).expect("reads")
    }

    #[test]
    fn everything_less_the_failures() {
        let all = results(serde_json::json!({
            "amount": {"count": 5, "min": 1.0, "max": 40.0, "avg": 15.0, "sum": 75.0},
            "quantity": {"count": 5, "min": 1.0, "max": 3.0, "avg": 2.0, "sum": 10.0},
        }));
        let failed = results(serde_json::json!({
            "amount": {"count": 2, "min": 1.0, "max": 40.0, "avg": 20.5, "sum": 41.0},
            "quantity": {"count": 2, "min": 1.0, "max": 3.0, "avg": 2.0, "sum": 4.0},
        }));
        let paid = Paid::of(&all, &failed);
        assert_eq!(
            paid,
            Paid {
                count: 3,
                revenue: 34.0,
                units: 6.0
            }
        );
        assert_eq!(
            paid.average_basket().map(|a| (a * 100.0).round()),
            Some(1133.0)
        );
        assert_eq!(
            Paid::of(&all, &NOTHING).count,
            5,
            "no failures: everything is paid"
        );
        assert_eq!(Paid::all_count(&all), 5);
    }

    #[test]
    fn failures_are_counted_beyond_the_top_list() {
        let widened = widened(
            Aggregation::terms(Field::ProductName, 10)
                .with("by", Aggregation::terms(Field::Currency, 5)),
        );
        let AggregationKind::Terms { size, .. } = widened.kind else {
            panic!("terms");
        };
        assert_eq!(size, FAILED_TERMS);
        let AggregationKind::Terms { size, .. } = widened.nested["by"].kind else {
            panic!("terms");
        };
        assert_eq!(size, FAILED_TERMS);
    }

    #[test]
    fn every_case_of_every_failure_is_asked_for() {
        let window = Window {
            from_ms: 0,
            to_ms: 1,
            interval_ms: 1,
        };
        let query = failed_transactions(&window);
        let Some(Filter::AnyOf(statuses)) = query.filters.last() else {
            panic!("{query:?}");
        };
        assert_eq!(statuses.len(), FAILURE_STATUSES.len() * 3);
        assert!(statuses.contains(&Filter::Equals(Field::Status, "Declined".into())));
        assert!(statuses.contains(&Filter::Equals(Field::Status, "FAILED".into())));
    }
}
