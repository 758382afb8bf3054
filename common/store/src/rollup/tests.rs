use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::aggregation::{Aggregation, AggregationResults, Aggregations};
use crate::fields::{FieldValue, FieldValues};
use crate::{Filter, SearchQuery, StoreDocument};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn event(offset_ms: i64, source: serde_json::Value) -> (i64, FieldValues) {
    let document = StoreDocument::from_source("id", T0 + offset_ms, &source);
    (T0 + offset_ms, document.fields)
}

/// Keywords as the ids of a dictionary built as events arrive, one per rollup, as a segment's
/// term ordinals are.
#[derive(Default)]
struct Words {
    ids: HashMap<(Field, String), TermId>,
    texts: Vec<String>,
}

impl Words {
    fn id(&mut self, field: Field, text: &str) -> TermId {
        let next = self.texts.len() as TermId;
        *self.ids.entry((field, text.to_owned())).or_insert_with(|| {
            self.texts.push(text.to_owned());
            next
        })
    }
}

impl TermTexts for Words {
    type Error = std::convert::Infallible;

    fn texts(
        &mut self,
        _field: Field,
        ids: &[TermId],
        each: &mut dyn FnMut(&str),
    ) -> Result<(), Self::Error> {
        for &id in ids {
            each(&self.texts[id as usize]);
        }
        Ok(())
    }
}

fn rollup_keeping(events: &[(i64, FieldValues)], max_values_per_bucket: usize) -> Rollup {
    let mut words = Words::default();
    let mut builder = RollupBuilder::new(max_values_per_bucket);
    for (timestamp_ms, values) in events {
        let values: Vec<(Field, RollupValue)> = values
            .iter()
            .map(|(field, value)| {
                let value = match value {
                    FieldValue::Keyword(text) => RollupValue::Term(words.id(field, text)),
                    FieldValue::Long(number) => RollupValue::Long(number),
                    FieldValue::Double(number) => RollupValue::Double(number),
                    FieldValue::Boolean(flag) => RollupValue::Boolean(flag),
                };
                (field, value)
            })
            .collect();
        builder.add(*timestamp_ms, &values);
    }
    builder
        .finish(&mut words)
        .unwrap_or_else(|never| match never {})
}

fn rollup_of(events: &[(i64, FieldValues)]) -> Rollup {
    rollup_keeping(events, MAX_VALUES_PER_BUCKET)
}

fn sample() -> Vec<(i64, FieldValues)> {
    vec![
        event(
            10 * 60_000,
            json!({"log_type": "transaction", "status": "completed", "amount": 10.5,
                   "quantity": 1, "product_name": "Tea", "user_id": "u1",
                   "fraud": {"score": 10.0, "detected": false}}),
        ),
        event(
            70 * 60_000,
            json!({"log_type": "transaction", "status": "failed", "amount": 99.25,
                   "quantity": 3, "product_name": "Tea", "user_id": "u2",
                   "fraud": {"score": 95.0, "detected": true,
                             "indicators": ["high_amount", "ip_mismatch", "high_amount"]}}),
        ),
        event(
            75 * 60_000,
            json!({"log_type": "performance", "endpoint": "/pay", "response_time": 120.0,
                   "status_code": 200, "service": "checkout", "level": "INFO"}),
        ),
        event(
            130 * 60_000,
            json!({"log_type": "performance", "endpoint": "/pay", "response_time": 480.0,
                   "status_code": 500, "service": "checkout", "level": "error"}),
        ),
        event(
            131 * 60_000,
            json!({"log_type": "error", "error_code": "E1", "service": "search",
                   "level": "error", "user_id": "u1"}),
        ),
    ]
}

fn aggregations(named: Vec<(&str, Aggregation)>) -> Aggregations {
    named
        .into_iter()
        .map(|(name, aggregation)| (name.to_owned(), aggregation))
        .collect()
}

fn answer(
    query: &SearchQuery,
    named: Vec<(&str, Aggregation)>,
    rollup: &Rollup,
) -> AggregationResults {
    RollupQuestion::of(query, &aggregations(named))
        .expect("answerable")
        .answer(rollup)
}

#[test]
fn counts_sums_and_breakdowns_of_what_was_rolled_up() {
    let rollup = rollup_of(&sample());
    let all = SearchQuery::range(Some(T0), Some(T0 + 3 * HOUR_MS - 1));
    let answers = answer(
        &all,
        vec![
            ("types", Aggregation::terms(Field::LogType, 10)),
            ("levels", Aggregation::terms(Field::Level, 10)),
            ("indicators", Aggregation::terms(Field::FraudIndicators, 10)),
            ("users", Aggregation::cardinality(Field::UserId)),
            (
                "timeline",
                Aggregation::timeline(HOUR_MS)
                    .with("types", Aggregation::terms(Field::LogType, 10)),
            ),
        ],
        &rollup,
    );
    let counts = |name: &str| {
        answers
            .terms(name)
            .iter()
            .map(|b| (b.value.clone(), b.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        counts("types"),
        [
            ("performance".into(), 2),
            ("transaction".into(), 2),
            ("error".into(), 1)
        ]
    );
    assert_eq!(counts("levels"), [("error".into(), 2), ("info".into(), 1)]);
    assert_eq!(
        counts("indicators"),
        [("high_amount".into(), 1), ("ip_mismatch".into(), 1)],
        "an event counts once per value"
    );
    assert_eq!(answers.cardinality("users"), 2);
    let timeline: Vec<(i64, u64)> = answers
        .timeline("timeline")
        .iter()
        .map(|b| (b.start_ms - T0, b.count))
        .collect();
    assert_eq!(timeline, [(0, 1), (HOUR_MS, 2), (2 * HOUR_MS, 2)]);

    let transactions = all.and(Filter::Equals(Field::LogType, "transaction".into()));
    let answers = answer(
        &transactions,
        vec![(
            "products",
            Aggregation::terms(Field::ProductName, 10)
                .with("amount", Aggregation::stats(Field::Amount))
                .with("quantity", Aggregation::stats(Field::Quantity)),
        )],
        &rollup,
    );
    let tea = &answers.terms("products")[0];
    assert_eq!((tea.value.as_str(), tea.count), ("Tea", 2));
    let amount = tea.nested.stats("amount");
    assert_eq!(
        (amount.count, amount.sum, amount.min, amount.max),
        (2, 109.75, Some(10.5), Some(99.25))
    );
    assert_eq!(tea.nested.stats("quantity").sum, 4.0);

    let failed = transactions.and(Filter::AnyOf(vec![
        Filter::Equals(Field::Status, "failed".into()),
        Filter::Equals(Field::Status, "FAILED".into()),
    ]));
    let answers = answer(
        &failed,
        vec![("amount", Aggregation::stats(Field::Amount))],
        &rollup,
    );
    assert_eq!(answers.stats("amount").sum, 99.25);

    let slow =
        SearchQuery::range(None, None).and(Filter::Equals(Field::LogType, "performance".into()));
    let answers = answer(
        &slow,
        vec![(
            "endpoints",
            Aggregation::terms(Field::Endpoint, 10).with(
                "p",
                Aggregation::percentiles(Field::ResponseTime, &[50.0, 100.0]),
            ),
        )],
        &rollup,
    );
    let pay = &answers.terms("endpoints")[0];
    let p100 = pay.nested.percentile("p", 100.0).expect("a maximum");
    assert!((p100 - 480.0).abs() / 480.0 < 0.01, "{p100}");
}

#[test]
fn a_window_is_whole_hours_and_its_ragged_edges() {
    let query = SearchQuery::range(Some(T0 + 10 * 60_000), Some(T0 + 3 * HOUR_MS + 59));
    let question = RollupQuestion::of(
        &query,
        &aggregations(vec![("n", Aggregation::terms(Field::LogType, 5))]),
    )
    .expect("answerable");
    assert_eq!(
        question.whole_hours(),
        (Some(T0 + HOUR_MS), Some(T0 + 3 * HOUR_MS))
    );
    let edges: Vec<_> = question
        .edges(&query)
        .iter()
        .map(|e| (e.from_ms.map(|t| t - T0), e.to_ms.map(|t| t - T0)))
        .collect();
    assert_eq!(
        edges,
        [
            (Some(10 * 60_000), Some(HOUR_MS - 1)),
            (Some(3 * HOUR_MS), Some(3 * HOUR_MS + 59))
        ]
    );

    let aligned = SearchQuery::range(Some(T0), Some(T0 + 2 * HOUR_MS - 1));
    let question = RollupQuestion::of(&aligned, &Aggregations::new()).expect("answerable");
    assert_eq!(question.whole_hours(), (Some(T0), Some(T0 + 2 * HOUR_MS)));
    assert!(question.edges(&aligned).is_empty(), "no edge to read");

    let within_an_hour = SearchQuery::range(Some(T0 + 60_000), Some(T0 + 120_000));
    let question = RollupQuestion::of(&within_an_hour, &Aggregations::new()).expect("answerable");
    assert_eq!(
        question.edges(&within_an_hour),
        std::slice::from_ref(&within_an_hour),
        "read whole"
    );

    let open = SearchQuery::range(None, None);
    let question = RollupQuestion::of(&open, &Aggregations::new()).expect("answerable");
    assert_eq!(question.whole_hours(), (None, None));
    assert!(question.edges(&open).is_empty());
}

#[test]
fn questions_rollups_cannot_answer_say_so() {
    let window = SearchQuery::range(Some(T0), Some(T0 + HOUR_MS));
    let refused = |query: &SearchQuery, named: Vec<(&str, Aggregation)>| {
        RollupQuestion::of(query, &aggregations(named)).is_err()
    };
    let count = || vec![("n", Aggregation::terms(Field::LogType, 5))];
    assert!(refused(
        &window.and(Filter::Equals(Field::Level, "error".into())),
        count()
    ));
    assert!(refused(
        &window.and(Filter::between(Field::ResponseTime, Some(1.0), None)),
        count()
    ));
    assert!(refused(&window, vec![("m", Aggregation::timeline(60_000))]));
    assert!(refused(
        &window,
        vec![("u", Aggregation::terms(Field::UserId, 5))]
    ));
    assert!(refused(
        &window,
        vec![(
            "p",
            Aggregation::terms(Field::Endpoint, 5)
                .with("u", Aggregation::cardinality(Field::UserId))
        )]
    ));
    let mut text = window.clone();
    text.text = crate::text_query::parse("timeout").expect("parses");
    assert!(refused(&text, count()));
    // A filter that the number exists changes no metric of that number.
    assert!(!refused(
        &window.and(Filter::Exists(Field::FraudScore)),
        vec![("s", Aggregation::stats(Field::FraudScore))]
    ));
    assert!(refused(
        &window.and(Filter::Exists(Field::FraudScore)),
        count()
    ));
}

#[test]
fn a_rollup_reads_back_as_it_was_written() {
    let rollup = rollup_of(&sample());
    let again = Rollup::decode(&rollup.encode().expect("encodes")).expect("decodes");
    let question = RollupQuestion::of(
        &SearchQuery::range(None, None),
        &aggregations(vec![
            ("users", Aggregation::cardinality(Field::UserId)),
            (
                "p",
                Aggregation::percentiles(Field::ResponseTime, &[50.0, 95.0]),
            ),
            (
                "services",
                Aggregation::terms(Field::Service, 5)
                    .with("t", Aggregation::stats(Field::ResponseTime)),
            ),
        ]),
    )
    .expect("answerable");
    assert_eq!(question.answer(&again), question.answer(&rollup));
    assert!(Rollup::decode(b"not a rollup").is_err());
    let mut newer = rollup;
    newer.format = FORMAT + 1;
    assert!(
        Rollup::decode(&newer.encode().expect("encodes")).is_err(),
        "another format is built again, not misread"
    );
}

fn arbitrary_event() -> impl Strategy<Value = (i64, FieldValues)> {
    arbitrary_event_within(6 * HOUR_MS)
}

fn arbitrary_event_within(span_ms: i64) -> impl Strategy<Value = (i64, FieldValues)> {
    (
        0i64..span_ms,
        prop::sample::select(vec!["transaction", "performance", "error"]),
        prop::sample::select(vec!["completed", "failed"]),
        0u32..400,
        prop::sample::select(vec!["Tea", "Bike", "Lamp"]),
        0u32..30,
    )
        .prop_map(|(offset, log_type, status, quarters, product, user)| {
            event(
                offset,
                json!({"log_type": log_type, "status": status, "amount": f64::from(quarters) / 4.0,
                       "response_time": f64::from(quarters), "product_name": product,
                       "endpoint": if user % 2 == 0 { "/pay" } else { "/cart" },
                       "user_id": format!("u{user}")}),
            )
        })
}

proptest! {
    /// What lets a store keep one rollup per partition: any split, answered together, is the
    /// whole.
    #[test]
    fn merged_parts_answer_as_the_whole(
        events in prop::collection::vec(arbitrary_event(), 1..80),
        cut in 0usize..80,
    ) {
        let cut = cut.min(events.len());
        let (first, second) = (rollup_of(&events[..cut]), rollup_of(&events[cut..]));
        let parts = [&first, &second].map(|rollup| Part { rollup, first: None, end: None });
        let question = RollupQuestion::of(
            &SearchQuery::range(None, None),
            &aggregations(vec![
                ("types", Aggregation::terms(Field::LogType, 5)
                    .with("status", Aggregation::terms(Field::Status, 5)
                        .with("amount", Aggregation::stats(Field::Amount)))),
("products", Aggregation::terms(Field::ProductName, 5)
                    .with("amount", Aggregation::stats(Field::Amount))),
                ("endpoints", Aggregation::terms(Field::Endpoint, 5)
                    .with("p", Aggregation::percentiles(Field::ResponseTime, &[50.0, 99.0]))),
                ("timeline", Aggregation::timeline(2 * HOUR_MS)
                    .with("users", Aggregation::cardinality(Field::UserId))),
            ]),
        ).expect("answerable");
        prop_assert_eq!(question.answer_parts(&parts), question.answer(&rollup_of(&events)));
    }
}

fn days_question(from_hour: i64, to_hour: i64) -> RollupQuestion {
    let window = SearchQuery::range(
        Some(T0 + from_hour * HOUR_MS),
        Some(T0 + to_hour * HOUR_MS - 1),
    );
    RollupQuestion::of(
        &window,
        &aggregations(vec![
            (
                "types",
                Aggregation::terms(Field::LogType, 5)
                    .with("amount", Aggregation::stats(Field::Amount)),
            ),
            (
                "products",
                Aggregation::terms(Field::ProductName, 5)
                    .with("amount", Aggregation::stats(Field::Amount)),
            ),
            (
                "endpoints",
                Aggregation::terms(Field::Endpoint, 5).with(
                    "p",
                    Aggregation::percentiles(Field::ResponseTime, &[50.0, 99.0]),
                ),
            ),
            (
                "timeline",
                Aggregation::timeline(6 * HOUR_MS)
                    .with("users", Aggregation::cardinality(Field::UserId)),
            ),
            // Over whole days, read from the day merges' own summaries.
            (
                "daily",
                Aggregation::timeline(24 * HOUR_MS)
                    .with("users", Aggregation::cardinality(Field::UserId)),
            ),
            ("users", Aggregation::cardinality(Field::UserId)),
        ]),
    )
    .expect("answerable")
}

proptest! {
    /// Day merges are read only where they hold exactly partitions the question reads: merges
    /// built from any other set (behind the partitions, or holding one gone since) and the
    /// partitions' own rollups together count every event of the window once.
    #[test]
    fn day_merges_count_each_partition_once_however_stale(
        events in prop::collection::vec(arbitrary_event_within(3 * 24 * HOUR_MS), 1..120),
        cuts in (0usize..120, 0usize..120),
        merged in 0usize..8,
        current in 0usize..8,
        hours in (0i64..72, 0i64..73),
    ) {
        let (low, high) = (cuts.0.min(cuts.1).min(events.len()), cuts.0.max(cuts.1).min(events.len()));
        let pieces = [&events[..low], &events[low..high], &events[high..]];
        let rollups = pieces.map(rollup_of);
        let days = rollups.each_ref().map(|rollup| rollup.outline().days());
        let partitions = |set: usize| -> Vec<Partition<'_, usize>> {
            (0..3)
                .filter(|n| set & (1 << n) != 0)
                .map(|n| Partition { key: n, rollup: &rollups[n], days: &days[n] })
                .collect()
        };
        let (from_hour, to_hour) = (hours.0.min(hours.1), hours.0.max(hours.1) + 1);
        let question = days_question(from_hour, to_hour);
        let in_window = |(at, _): &&(i64, FieldValues)| {
            (T0 + from_hour * HOUR_MS..T0 + to_hour * HOUR_MS).contains(at)
        };
        let expected: Vec<(i64, FieldValues)> = (0..3)
            .filter(|n| current & (1 << n) != 0)
            .flat_map(|n| pieces[n].iter().filter(in_window).cloned())
            .collect();
        let expected = question.answer(&rollup_of(&expected));

        let stale = DayRollups::default().updated(&partitions(merged), true);
        let now = partitions(current);
        prop_assert_eq!(&question.answer_parts(&question.parts(&now, &stale)), &expected);
        let later = stale.updated(&now, false);
        prop_assert_eq!(&question.answer_parts(&question.parts(&now, &later)), &expected);

        // Once merged again, the merges answer alone.
        let updated = stale.updated(&now, true);
        prop_assert!(!updated.behind());
        // Which partitions the merges hold whole: their own rollups are read no more.
        for (n, days) in days.iter().enumerate() {
            prop_assert_eq!(updated.hold(&n, days), current & (1 << n) != 0 || days.is_empty());
            if merged & (1 << n) == 0 && !days.is_empty() {
                prop_assert!(!stale.hold(&n, days));
            }
        }
        let parts = question.parts(&now, &updated);
        prop_assert!(parts.iter().all(|part| !rollups.iter().any(|own| std::ptr::eq(part.rollup, own))));
        prop_assert_eq!(&question.answer_parts(&parts), &expected);
    }
}

/// A day's merge keeps, per population, its hours' buckets merged (counts, breakdowns, sums,
/// timing and distinct sketches), so that a month's question reads one bucket a day instead of
/// one an hour; it stands for the hours only where a question reads all of them.
#[test]
fn day_merges_keep_each_days_summary() {
    let events: Vec<(i64, FieldValues)> = (0..30)
        .map(|hour| {
            event(
                hour * HOUR_MS,
                json!({"log_type": "transaction", "status": "completed", "amount": 1.0,
                       "user_id": format!("u{}", hour % 20)}),
            )
        })
        .collect();
    let rollup = rollup_of(&events);
    let days = rollup.outline().days();
    let partitions = [Partition {
        key: 1,
        rollup: &rollup,
        days: &days,
    }];
    let merged = DayRollups::default().updated(&partitions, true);
    let summarized: Vec<(i64, usize)> = days_question(0, 48)
        .parts(&partitions, &merged)
        .iter()
        .flat_map(|part| &part.rollup.days)
        .map(|((day, _), summary)| (*day, summary.hours))
        .collect();
    assert_eq!(summarized, [(T0, 24), (T0 + 24 * HOUR_MS, 6)]);
    let windows = [
        (0, 48, 20),
        (0, 24, 20),
        (24, 48, 6),
        (2, 26, 20),
        (20, 30, 10),
    ];
    for (from_hour, to_hour, users) in windows {
        let question = days_question(from_hour, to_hour);
        let parts = question.parts(&partitions, &merged);
        let answer = question.answer_parts(&parts);
        assert_eq!(
            answer.cardinality("users"),
            users,
            "hours {from_hour}..{to_hour}"
        );
        let expected: Vec<(i64, FieldValues)> = events
            .iter()
            .filter(|(at, _)| (T0 + from_hour * HOUR_MS..T0 + to_hour * HOUR_MS).contains(at))
            .cloned()
            .collect();
        assert_eq!(answer, question.answer(&rollup_of(&expected)));
    }
}

/// A merge that holds a partition gone since is left, not read, until it is merged again.
#[test]
fn a_day_that_lost_a_partition_is_read_from_the_rest_until_merged_again() {
    let events = sample();
    let (first, second) = (rollup_of(&events[..2]), rollup_of(&events[2..]));
    let days = [first.outline().days(), second.outline().days()];
    assert_eq!(days[0], days[1], "one day");
    let both = [
        Partition {
            key: 1,
            rollup: &first,
            days: &days[0],
        },
        Partition {
            key: 2,
            rollup: &second,
            days: &days[1],
        },
    ];
    let merged = DayRollups::default().updated(&both, true);
    assert!(!merged.behind());
    let question = days_question(0, 24);
    assert_eq!(
        question.parts(&both, &merged).len(),
        1,
        "the day's merge alone"
    );

    let left = &both[1..];
    let later = merged.updated(left, false);
    assert!(later.behind(), "partition 1 is gone from a merge");
    let parts = question.parts(left, &later);
    assert!(
        parts.len() == 1 && std::ptr::eq(parts[0].rollup, &second),
        "read on its own"
    );
    assert_eq!(question.answer_parts(&parts), question.answer(&second));

    let again = later.updated(left, true);
    assert!(!again.behind());
    let parts = question.parts(left, &again);
    assert!(
        parts.len() == 1 && !std::ptr::eq(parts[0].rollup, &second),
        "merged again"
    );
    assert_eq!(question.answer_parts(&parts), question.answer(&second));
}

/// A producer sending a new value of a breakdown with every event grows no kept rollup past
/// its cap; questions by that field are refused by the rollup (the store reads its events),
/// others are still answered from it.
#[test]
fn a_breakdown_with_more_values_than_a_bucket_keeps_is_read_from_events() {
    let events: Vec<_> = (0..5)
        .map(|page| {
            event(
                page * 1000,
                json!({"log_type": "user_activity", "page": format!("/p{page}"), "level": "info"}),
            )
        })
        .collect();
    let all = SearchQuery::range(None, None);
    let question = |field| {
        RollupQuestion::of(
            &all,
            &aggregations(vec![("by", Aggregation::terms(field, 10))]),
        )
        .expect("answerable")
    };
    let capped = rollup_keeping(&events, 3);
    assert!(
        !question(Field::Page).reads(&capped.outline()),
        "pages overflowed"
    );
    assert!(question(Field::Level).reads(&capped.outline()));
    let levels = question(Field::Level).answer(&capped);
    assert_eq!(levels.terms("by")[0].count, 5, "the count is whole");
    let kept = rollup_keeping(&events, 5);
    assert!(question(Field::Page).reads(&kept.outline()));
    assert_eq!(question(Field::Page).answer(&kept).terms("by").len(), 5);
}
