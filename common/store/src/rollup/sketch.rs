//! The two estimates a rollup keeps, mergeable and stored: quantiles (DDSketch, the sketch and
//! configuration tantivy's percentiles use, so an answer from rollups is the raw one) and
//! distinct counts (HyperLogLog++, exact-sparse while small).

#[cfg(test)]
mod tests;

use std::hash::{BuildHasher, Hasher};

use std::sync::LazyLock;

use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use serde::{Deserialize, Serialize};
use sketches_ddsketch::Config;

/// Quantiles of a number within 1 % relative error: DDSketch (its keys, ranks and collapsing of
/// the lowest keys past 2,048) with the configuration tantivy's percentiles use, so an answer
/// from rollups is the raw one. Kept as the counts of the keys between the lowest and highest
/// seen: the crate's store holds at least 128 eight-byte bins a sketch, and a rollup held in
/// memory has a sketch per hour, population and breakdown value, most of them of a few values.
#[derive(Clone, Serialize, Deserialize)]
pub struct Quantiles {
    positive: Bins,
    /// Of the values' magnitudes.
    negative: Bins,
    zeros: u64,
    min: f64,
    max: f64,
}

/// The configuration DDSketch and tantivy's percentiles default to.
static CONFIG: LazyLock<Config> = LazyLock::new(Config::defaults);

impl Default for Quantiles {
    fn default() -> Self {
        Quantiles {
            positive: Bins::default(),
            negative: Bins::default(),
            zeros: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl std::fmt::Debug for Quantiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Quantiles({} values)", self.count())
    }
}

impl Quantiles {
    pub fn add(&mut self, value: f64) {
        let config = &*CONFIG;
        if value > config.min_possible() {
            self.positive.add(config.key(value), 1);
        } else if value < -config.min_possible() {
            self.negative.add(config.key(-value), 1);
        } else {
            self.zeros += 1;
        }
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    pub fn merge(&mut self, other: &Quantiles) {
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
        self.zeros += other.zeros;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    fn count(&self) -> u64 {
        self.negative.total + self.zeros + self.positive.total
    }

    /// The estimate at `percent` (0–100), `None` over no values: DDSketch's.
    pub fn percentile(&self, percent: f64) -> Option<f64> {
        let quantile = percent / 100.0;
        let count = self.count();
        if !(0.0..=1.0).contains(&quantile) || count == 0 {
            return None;
        }
        if quantile == 0.0 {
            return Some(self.min);
        }
        if quantile == 1.0 {
            return Some(self.max);
        }
        let rank = (quantile * (count as f64 - 1.0)) as u64;
        let config = &*CONFIG;
        let negatives = self.negative.total;
        Some(if rank < negatives {
            -config.value(self.negative.key_at_rank(negatives - rank - 1))
        } else if rank < negatives + self.zeros {
            0.0
        } else {
            config.value(self.positive.key_at_rank(rank - negatives - self.zeros))
        })
    }
}

/// The most keys a sketch keeps (DDSketch's default): past that, the lowest fold into the
/// lowest kept, as the crate's collapsing store does.
const MAX_BINS: usize = 2048;

/// Counts of consecutive keys from `lowest`.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Bins {
    lowest: i32,
    counts: Vec<u64>,
    total: u64,
}

impl Bins {
    fn highest(&self) -> i32 {
        // At most `MAX_BINS` counts: the length fits.
        self.lowest + self.counts.len() as i32 - 1
    }

    fn add(&mut self, key: i32, count: u64) {
        self.reach(key, key);
        let index = key.max(self.lowest) - self.lowest;
        self.counts[index as usize] += count;
        self.total += count;
    }

    fn merge(&mut self, other: &Bins) {
        if other.counts.is_empty() {
            return;
        }
        self.reach(other.lowest, other.highest());
        for (key, count) in (other.lowest..).zip(&other.counts) {
            let index = key.max(self.lowest) - self.lowest;
            self.counts[index as usize] += count;
        }
        self.total += other.total;
    }

    /// Makes room for the keys `low..=high`; when that spans more than [`MAX_BINS`], the
    /// lowest are folded into the lowest kept.
    fn reach(&mut self, low: i32, high: i32) {
        if self.counts.is_empty() {
            self.lowest = low.max(high.saturating_sub(MAX_BINS as i32 - 1));
            self.counts = vec![0; (high - self.lowest) as usize + 1];
            return;
        }
        let high = high.max(self.highest());
        let low = low
            .min(self.lowest)
            .max(high.saturating_sub(MAX_BINS as i32 - 1));
        if low < self.lowest {
            let grow = (self.lowest - low) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.lowest = low;
        } else if low > self.lowest {
            let fold = ((low - self.lowest) as usize).min(self.counts.len());
            let folded: u64 = self.counts.drain(..fold).sum();
            self.lowest = low;
            if self.counts.is_empty() {
                self.counts.push(0);
            }
            self.counts[0] += folded;
        }
        self.counts.resize((high - self.lowest) as usize + 1, 0);
    }

    /// The key of the value at `rank` (0-based, ascending).
    fn key_at_rank(&self, rank: u64) -> i32 {
        let mut seen = 0;
        for (key, count) in (self.lowest..).zip(&self.counts) {
            seen += count;
            if seen > rank {
                return key;
            }
        }
        self.highest()
    }
}

/// 2^12 registers: 1.6 % standard error once dense, near-exact while sparse (below about a
/// thousand values), and at most 3 KB a sketch. Rollups keep one per hour, population, field
/// and segment, held in memory: 2^14 registers (0.8 %) cost 12 KB each once dense.
const PRECISION: u8 = 12;

/// A value's hash, computed once by [`Distinct::hash`]: the sketch's hasher passes it through.
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
pub struct Prehashed;

impl BuildHasher for Prehashed {
    type Hasher = PrehashedHasher;

    fn build_hasher(&self) -> PrehashedHasher {
        PrehashedHasher(0)
    }
}

pub struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are inserted (`write_u64`); anything else is folded in, never dropped.
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

/// An estimated number of distinct values, each known by its xxh3 hash (fixed, so sketches
/// built in different processes and runs merge).
#[derive(Clone, Serialize, Deserialize)]
pub struct Distinct(HyperLogLogPlus<u64, Prehashed>);

impl Default for Distinct {
    fn default() -> Self {
        // The precision is within the crate's 4..=18.
        Distinct(HyperLogLogPlus::new(PRECISION, Prehashed).unwrap_or_else(|_| unreachable!()))
    }
}

impl std::fmt::Debug for Distinct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Distinct")
    }
}

impl Distinct {
    /// The hash a value is added by: computed once per distinct value, not once per event.
    pub fn hash(value: &str) -> u64 {
        xxhash_rust::xxh3::xxh3_64(value.as_bytes())
    }

    /// Adds the value whose [`hash`](Self::hash) this is.
    pub fn add_hash(&mut self, hash: u64) {
        self.0.insert(&hash);
    }

    pub fn merge(&mut self, other: &Distinct) {
        // Sketches of one precision and hasher always merge.
        let _ = self.0.merge(&other.0);
    }

    /// Folds the values added since the last count into the kept registers, so the sketch is
    /// kept (and written) without its insertion buffer.
    pub fn settle(&mut self) {
        self.0.count();
    }

    pub fn count(&mut self) -> u64 {
        self.0.count().round() as u64
    }
}
