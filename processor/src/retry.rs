//! Exponential back-off with jitter for store writes that fail as a whole (store down, overloaded).
//! The processor retries until the write succeeds or it is shut down; the queue position is held
//! meanwhile, so the queue absorbs the backlog and nothing acknowledged is lost.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    attempt: u32,
    /// xorshift state for jitter; no need for a crypto RNG here.
    seed: u64,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.max(Duration::from_millis(1));
        Backoff {
            initial,
            max: max.max(initial),
            next: initial,
            attempt: 0,
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// The delay before the next attempt: doubling up to `max`, each with ±25 % jitter so many
    /// processors do not retry in lockstep.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        self.attempt += 1;
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = (self.seed % 501) as f64 / 1000.0 - 0.25;
        base.mul_f64(1.0 + jitter)
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Back to the first delay, after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_bounded_jitter_up_to_max() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let delays: Vec<u128> = (0..6).map(|_| backoff.next_delay().as_millis()).collect();
        let bases = [100u128, 200, 400, 800, 1000, 1000];
        for (delay, base) in delays.iter().zip(bases) {
            assert!(
                *delay >= base * 3 / 4 && *delay <= base * 5 / 4,
                "{delay} not within 25% of {base}"
            );
        }
        assert_eq!(backoff.attempt(), 6);
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        for _ in 0..5 {
            backoff.next_delay();
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(125));
    }
}
