//! The two estimates a rollup keeps, mergeable and stored: quantiles (DDSketch, the sketch and
//! configuration tantivy's percentiles use, so an answer from rollups is the raw one) and
//! distinct counts (HyperLogLog++, exact-sparse while small).

use std::hash::{BuildHasher, Hasher};

use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config, DDSketch};

/// Quantiles of a number within 1 % relative error (DDSketch's default configuration).
#[derive(Clone, Serialize, Deserialize)]
pub struct Quantiles(DDSketch);

impl Default for Quantiles {
    fn default() -> Self {
        Quantiles(DDSketch::new(Config::defaults()))
    }
}

impl std::fmt::Debug for Quantiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Quantiles({} values)", self.0.count())
    }
}

impl Quantiles {
    pub fn add(&mut self, value: f64) {
        self.0.add(value);
    }

    pub fn merge(&mut self, other: &Quantiles) {
        // Sketches of one configuration always merge.
        let _ = self.0.merge(&other.0);
    }

    /// The estimate at `percent` (0–100), `None` over no values.
    pub fn percentile(&self, percent: f64) -> Option<f64> {
        self.0.quantile(percent / 100.0).ok().flatten()
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
