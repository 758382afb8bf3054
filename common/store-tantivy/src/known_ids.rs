//! Which ids the index may already hold, so that a write deletes an earlier copy only where one
//! can exist.
//!
//! Ids are unique: a write first deletes any document with the same id. tantivy looks every
//! delete up in every segment, and in the segment being written, where it always finds the new
//! document itself (and keeps it, the delete being older). Those lookups were about a quarter of
//! the embedded store's CPU at full ingest, for ids that are almost all new. A Bloom filter of
//! every id written answers "certainly new" for nearly all of them; a false "maybe" (about 1 in
//! 100) costs only a delete that finds nothing. The filter lives in memory (1.25 bytes per id it
//! has room for; it is made for twice the ids held), is rebuilt from the index's id terms when
//! the store opens, and grows by being rebuilt so.

use xxhash_rust::xxh3::xxh3_128;

/// Bits per expected id and probes per id: about 1% false positives at capacity.
const BITS_PER_ID: usize = 10;
const PROBES: u64 = 7;
/// The smallest filter: 1,000,000 ids in about 1.2 MB.
const MIN_CAPACITY: usize = 1_000_000;

pub(super) struct KnownIds {
    bits: Vec<u64>,
    /// The number of bits less one (a power of two less one).
    mask: u64,
    count: usize,
    capacity: usize,
}

impl KnownIds {
    /// An empty filter with room for `expected` ids (at least [`MIN_CAPACITY`]).
    pub fn with_capacity(expected: usize) -> KnownIds {
        let capacity = expected.max(MIN_CAPACITY);
        let bits = (capacity * BITS_PER_ID).next_power_of_two();
        KnownIds {
            bits: vec![0; bits / 64],
            mask: (bits - 1) as u64,
            count: 0,
            capacity,
        }
    }

    /// Whether `more` further ids still fit without raising the false-positive rate.
    pub fn has_room_for(&self, more: usize) -> bool {
        self.count + more <= self.capacity
    }

    /// Bit positions by double hashing (Kirsch and Mitzenmacher): two halves of one 128-bit hash.
    fn probes(&self, id: &str) -> impl Iterator<Item = u64> + use<> {
        let hash = xxh3_128(id.as_bytes());
        let (first, step) = (hash as u64, ((hash >> 64) as u64) | 1);
        let mask = self.mask;
        (0..PROBES).map(move |i| first.wrapping_add(i.wrapping_mul(step)) & mask)
    }

    pub fn insert(&mut self, id: &str) {
        for bit in self.probes(id) {
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.count += 1;
    }

    /// `false` only for an id never inserted.
    pub fn may_contain(&self, id: &str) -> bool {
        self.probes(id)
            .all(|bit| self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inserted_id_is_known_and_few_others_seem_so() {
        let mut known = KnownIds::with_capacity(MIN_CAPACITY);
        for n in 0..MIN_CAPACITY {
            known.insert(&format!("{n:032x}"));
        }
        assert!((0..MIN_CAPACITY).all(|n| known.may_contain(&format!("{n:032x}"))));
        let false_positives = (MIN_CAPACITY..MIN_CAPACITY + 100_000)
            .filter(|n| known.may_contain(&format!("{n:032x}")))
            .count();
        // 1% expected at capacity; the power-of-two rounding gives more bits than asked.
        assert!(false_positives < 1_500, "{false_positives} of 100,000");
        assert!(!known.has_room_for(1));
    }
}
