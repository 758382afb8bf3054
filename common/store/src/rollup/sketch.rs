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

/// 2^14 registers (0.8 % standard error once dense; exact-sparse below a few thousand values).
const PRECISION: u8 = 14;

/// xxh3, a fixed hash: sketches built in different processes and runs merge.
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
pub struct Xxh3;

impl BuildHasher for Xxh3 {
    type Hasher = Xxh3Hasher;

    fn build_hasher(&self) -> Xxh3Hasher {
        Xxh3Hasher(xxhash_rust::xxh3::Xxh3Default::new())
    }
}

pub struct Xxh3Hasher(xxhash_rust::xxh3::Xxh3Default);

impl Hasher for Xxh3Hasher {
    fn finish(&self) -> u64 {
        self.0.digest()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// An estimated number of distinct values.
#[derive(Clone, Serialize, Deserialize)]
pub struct Distinct(HyperLogLogPlus<String, Xxh3>);

impl Default for Distinct {
    fn default() -> Self {
        // The precision is within the crate's 4..=18.
        Distinct(HyperLogLogPlus::new(PRECISION, Xxh3).unwrap_or_else(|_| unreachable!()))
    }
}

impl std::fmt::Debug for Distinct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Distinct")
    }
}

impl Distinct {
    pub fn add(&mut self, value: &str) {
        self.0.insert(value);
    }

    pub fn merge(&mut self, other: &Distinct) {
        // Sketches of one precision and hasher always merge.
        let _ = self.0.merge(&other.0);
    }

    pub fn count(&mut self) -> u64 {
        self.0.count().round() as u64
    }
}
