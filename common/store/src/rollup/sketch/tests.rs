use proptest::prelude::*;
use sketches_ddsketch::{Config, DDSketch};

use super::Quantiles;

fn arbitrary_timing() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => 0.001f64..1e6,
        1 => Just(0.0),
        1 => -1e4f64..-0.001,
    ]
}

proptest! {
    /// The sketch answers as DDSketch does (tantivy's percentiles), merged or not.
    #[test]
    fn quantiles_answer_as_ddsketch(
        first in prop::collection::vec(arbitrary_timing(), 0..300),
        second in prop::collection::vec(arbitrary_timing(), 0..300),
    ) {
        let (mut ours, mut theirs) = (Quantiles::default(), DDSketch::new(Config::defaults()));
        let mut other = Quantiles::default();
        for &value in &first {
            ours.add(value);
            theirs.add(value);
        }
        for &value in &second {
            other.add(value);
            theirs.add(value);
        }
        ours.merge(&other);
        for percent in [0.0, 1.0, 25.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0] {
            let expected = theirs.quantile(percent / 100.0).ok().flatten();
            prop_assert_eq!(ours.percentile(percent), expected, "p{}", percent);
        }
    }

    /// Past 2,048 keys the lowest fold into the lowest kept, as DDSketch's store does.
    #[test]
    fn quantiles_over_a_wide_range_collapse_as_ddsketch(
        values in prop::collection::vec((-8.0f64..30.0).prop_map(|e| 10f64.powf(e)), 1..200),
        cut in 0usize..200,
    ) {
        let (mut ours, mut theirs) = (Quantiles::default(), DDSketch::new(Config::defaults()));
        let (mut other, mut their_other) = (Quantiles::default(), DDSketch::new(Config::defaults()));
        let cut = cut.min(values.len());
        for &value in &values[..cut] {
            ours.add(value);
            theirs.add(value);
        }
        for &value in &values[cut..] {
            other.add(value);
            their_other.add(value);
        }
        ours.merge(&other);
        theirs.merge(&their_other).expect("one configuration");
        for percent in [1.0, 10.0, 30.0, 50.0, 99.0] {
            let expected = theirs.quantile(percent / 100.0).ok().flatten();
            prop_assert_eq!(ours.percentile(percent), expected, "p{}", percent);
        }
    }
}
