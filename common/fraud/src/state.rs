//! Per-key fraud state, bounded in number of keys (LRU) and in age (TTL in event time).

use std::collections::VecDeque;
use std::hash::Hash;
use std::num::NonZeroUsize;

use lru::LruCache;

/// Recent event times kept per key; plenty for windows of minutes, and it bounds memory.
const MAX_TIMES: usize = 64;

/// An LRU of states that forgets a state not touched for `ttl_ms` of event time.
pub struct StateMap<K: Hash + Eq, V> {
    entries: LruCache<K, (i64, V)>,
    ttl_ms: i64,
}

impl<K: Hash + Eq, V: Default> StateMap<K, V> {
    pub fn new(max_keys: usize, ttl_ms: u64) -> Self {
        StateMap {
            entries: LruCache::new(NonZeroUsize::new(max_keys.max(1)).unwrap_or(NonZeroUsize::MIN)),
            ttl_ms: i64::try_from(ttl_ms).unwrap_or(i64::MAX),
        }
    }

    /// The state of `key` as of `now_ms`, fresh if it was unknown or had expired. The key is
    /// copied only when it is new.
    pub fn entry<Q>(&mut self, key: &Q, now_ms: i64) -> &mut V
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = K>,
    {
        let ttl = self.ttl_ms;
        let slot = self
            .entries
            .get_or_insert_mut_ref(key, || (now_ms, V::default()));
        if now_ms.saturating_sub(slot.0) > ttl {
            slot.1 = V::default();
        }
        slot.0 = slot.0.max(now_ms);
        &mut slot.1
    }

    /// The slot of `key` (its last touch and state), without marking it recently used.
    pub fn peek<Q>(&self, key: &Q) -> Option<&(i64, V)>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.peek(key)
    }

    /// Puts a slot in place as it is (a copy taken with [`StateMap::peek`]).
    pub fn restore(&mut self, key: K, slot: (i64, V)) {
        self.entries.put(key, slot);
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get_mut(key).map(|slot| &mut slot.1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Event times, newest last; counts tolerate events arriving slightly out of order.
#[derive(Default, Clone)]
pub struct Times(VecDeque<i64>);

impl Times {
    pub fn record(&mut self, at_ms: i64) {
        if self.0.len() == MAX_TIMES {
            self.0.pop_front();
        }
        self.0.push_back(at_ms);
    }

    /// Events in `(now - window, now]`.
    pub fn count_within(&self, now_ms: i64, window_ms: i64) -> usize {
        self.0
            .iter()
            .filter(|&&t| t <= now_ms && now_ms - t < window_ms)
            .count()
    }
}

/// Running mean and variance of a user's amounts (Welford), constant memory.
#[derive(Default, Clone)]
pub struct AmountStats {
    count: u64,
    mean: f64,
    m2: f64,
}

impl AmountStats {
    pub fn push(&mut self, amount: f64) {
        self.count += 1;
        let delta = amount - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (amount - self.mean);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    pub fn std_dev(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / (self.count - 1) as f64).sqrt()
        }
    }
}

#[derive(Default, Clone)]
pub struct UserState {
    pub transactions: Times,
    pub failures: Times,
    pub amounts: AmountStats,
    /// Time and (lat, lon) of the latest located transaction.
    pub last_location: Option<(i64, (f64, f64))>,
}

#[derive(Default, Clone)]
pub struct IpState {
    pub failures: Times,
}
