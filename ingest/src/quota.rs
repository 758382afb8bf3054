//! Producer quotas: each API key, and each user sending with a token, may send so many records
//! and so many bytes a second (`[ingest.quota]`, or the key's own quota), so that one greedy
//! producer is turned away with 429 and `Retry-After` while the others keep their rate. The
//! shared bound on bodies in memory ([`Admission`](crate::Admission)) protects the server; this
//! protects producers from each other.
//!
//! A request is charged what it offers, valid or not (each record costs its parse), before it
//! is validated, so a throttled producer costs the server little. Records are charged before
//! bytes: a request refused for its bytes has spent its records' share too. A request larger
//! than the burst could never pass and is refused with 413 instead, which is the answer on
//! which Beats and Logstash split a bulk request. An upload is a file worth finishing: it is
//! slowed to the quota, chunk by chunk, instead of refused.
//!
//! The buckets (`governor`'s GCRA cells) live in this process: with several ingest processes
//! behind a balancer, each holds a producer to the quota on what it sees.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sluice_auth::Principal;
use sluice_auth::accounts::KeyQuota;
use sluice_config::QuotaConfig;
use sluice_http::ApiError;
use sluice_telemetry::emit;
use sluice_telemetry::events::IngestThrottled;

/// Past this many producers in one bucket map, those whose buckets are full again are dropped.
const MAX_TRACKED_PRODUCERS: usize = 10_000;

/// What a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Measure {
    Records,
    Bytes,
}

impl Measure {
    /// The setting's name, as the error body and the metric name the limit.
    fn limit(self) -> &'static str {
        match self {
            Measure::Records => "events_per_sec",
            Measure::Bytes => "bytes_per_sec",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Measure::Records => "records",
            Measure::Bytes => "bytes",
        }
    }
}

/// Who sends, as quotas know them.
#[derive(Debug, Clone)]
pub struct Producer {
    /// The bucket's key and the metric's label: `key:<id>` or `user:<id>`.
    id: String,
    /// How the error names the producer.
    name: String,
    quota: KeyQuota,
}

impl Producer {
    /// The producer the guard authenticated; without a guard (a test router), one anonymous
    /// producer under the defaults.
    pub fn of(principal: Option<&Principal>) -> Producer {
        match principal {
            Some(Principal::ApiKey(key)) => Producer {
                id: format!("key:{}", key.key_id),
                name: format!("API key {} ({:?})", key.key_id, key.name),
                quota: key.quota,
            },
            Some(Principal::User(claims)) => Producer {
                id: format!("user:{}", claims.sub),
                name: format!("user {}", claims.name),
                quota: KeyQuota::default(),
            },
            None => Producer {
                id: "anonymous".into(),
                name: "this producer".into(),
                quota: KeyQuota::default(),
            },
        }
    }

    /// The producer's rate of `measure`, if it has one.
    fn rate(&self, measure: Measure, defaults: &QuotaConfig) -> Option<NonZeroU32> {
        let (own, default) = match measure {
            Measure::Records => (self.quota.events_per_sec, defaults.events_per_sec),
            Measure::Bytes => (self.quota.bytes_per_sec, defaults.bytes_per_sec),
        };
        NonZeroU32::new(own.unwrap_or(default))
    }
}

/// The producers' buckets for one measure at one rate.
type Buckets = Arc<DefaultKeyedRateLimiter<String>>;

/// The buckets of every producer, in this process.
pub struct Quotas {
    defaults: QuotaConfig,
    /// One keyed limiter per measure and rate: producers with the same quota share a map, and
    /// a key given a new quota starts on a full bucket.
    limiters: Mutex<HashMap<(Measure, NonZeroU32), Buckets>>,
}

impl Quotas {
    pub fn new(defaults: QuotaConfig) -> Quotas {
        Quotas {
            defaults,
            limiters: Mutex::new(HashMap::new()),
        }
    }

    fn burst(&self, rate: NonZeroU32) -> NonZeroU32 {
        rate.saturating_mul(NonZeroU32::new(self.defaults.burst_secs).unwrap_or(NonZeroU32::MIN))
    }

    /// The producers' buckets for `measure` at `rate`, and that rate's burst.
    fn limiter(&self, measure: Measure, rate: NonZeroU32) -> (Buckets, NonZeroU32) {
        let burst = self.burst(rate);
        let mut limiters = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        let limiter = limiters.entry((measure, rate)).or_insert_with(|| {
            Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        if limiter.len() > MAX_TRACKED_PRODUCERS {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        (Arc::clone(limiter), burst)
    }

    /// What `producer` offers in one request: `records` records of `bytes` bytes. Refused with
    /// 429 (and when to come back) while either bucket lacks room, with 413 when the request
    /// is larger than the burst.
    pub fn admit(&self, producer: &Producer, records: usize, bytes: usize) -> Result<(), ApiError> {
        for (measure, amount) in [(Measure::Records, records), (Measure::Bytes, bytes)] {
            let (Some(rate), Some(amount)) =
                (producer.rate(measure, &self.defaults), charge(amount))
            else {
                continue;
            };
            let (limiter, burst) = self.limiter(measure, rate);
            let refusal = match limiter.check_key_n(&producer.id, amount) {
                Ok(Ok(())) => continue,
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    throttled(producer, measure, rate, burst, wait)
                }
                Err(_) => larger_than_burst(producer, measure, rate, burst, amount),
            };
            emit(IngestThrottled {
                producer: &producer.id,
                limit: measure.limit(),
            });
            return Err(refusal);
        }
        Ok(())
    }

    /// Like [`Quotas::admit`], but waits for room instead of refusing: an upload is slowed to
    /// the quota, its charge taken a burst at a time.
    pub async fn wait(&self, producer: &Producer, records: usize, bytes: usize) {
        for (measure, amount) in [(Measure::Records, records), (Measure::Bytes, bytes)] {
            let Some(rate) = producer.rate(measure, &self.defaults) else {
                continue;
            };
            let (limiter, burst) = self.limiter(measure, rate);
            let mut left = u32::try_from(amount).unwrap_or(u32::MAX);
            while let Some(piece) = NonZeroU32::new(left.min(burst.get())) {
                if limiter
                    .until_key_n_ready(&producer.id, piece)
                    .await
                    .is_err()
                {
                    // Unreachable: no piece is larger than the burst.
                    break;
                }
                left -= piece.get();
            }
        }
    }
}

/// A request's charge: its amount, or nothing to charge for an empty one.
fn charge(amount: usize) -> Option<NonZeroU32> {
    NonZeroU32::new(u32::try_from(amount).unwrap_or(u32::MAX))
}

fn throttled(
    producer: &Producer,
    measure: Measure,
    rate: NonZeroU32,
    burst: NonZeroU32,
    wait: Duration,
) -> ApiError {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        format!(
            "{} may send {rate} {} a second ({}); nothing from this request was accepted: \
             send it again in {seconds} s",
            producer.name,
            measure.unit(),
            measure.limit()
        ),
    )
    .retry_after(seconds)
    .detail("limit", measure.limit())
    .detail("limit_value", rate.get())
    .detail("burst", burst.get())
    .detail("producer", producer.id.as_str())
}

fn larger_than_burst(
    producer: &Producer,
    measure: Measure,
    rate: NonZeroU32,
    burst: NonZeroU32,
    amount: NonZeroU32,
) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_over_quota",
        format!(
            "this request holds {amount} {unit}; {} may send {rate} {unit} a second ({}), at \
             most {burst} at once: send smaller requests",
            producer.name,
            measure.limit(),
            unit = measure.unit(),
        ),
    )
    .detail("limit", measure.limit())
    .detail("limit_value", rate.get())
    .detail("burst", burst.get())
    .detail("producer", producer.id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_auth::accounts::ApiKeyPrincipal;

    fn key(id: &str, quota: KeyQuota) -> Producer {
        Producer::of(Some(&Principal::ApiKey(ApiKeyPrincipal {
            key_id: id.into(),
            name: format!("{id} shipper"),
            user_id: "u_1".into(),
            quota,
        })))
    }

    fn defaults(events_per_sec: u32, bytes_per_sec: u32) -> QuotaConfig {
        QuotaConfig {
            events_per_sec,
            bytes_per_sec,
            burst_secs: 1,
        }
    }

    #[test]
    fn one_producer_over_its_rate_is_refused_while_another_keeps_its_own() {
        let quotas = Quotas::new(defaults(100, 0));
        let (greedy, other) = (
            key("k_1", KeyQuota::default()),
            key("k_2", KeyQuota::default()),
        );
        quotas.admit(&greedy, 60, 6_000).expect("within the burst");
        let refused = quotas.admit(&greedy, 60, 6_000).expect_err("over the rate");
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.code, "quota_exceeded");
        assert_eq!(refused.retry_after, Some(1));
        let body = serde_json::to_value(refused.body()).expect("json");
        assert_eq!(body["error"]["limit"], "events_per_sec");
        assert_eq!(body["error"]["limit_value"], 100);
        assert_eq!(body["error"]["producer"], "key:k_1");
        quotas
            .admit(&other, 60, 6_000)
            .expect("another key has its own bucket");
    }

    #[test]
    fn a_keys_own_quota_replaces_the_default_and_zero_lifts_it() {
        let quotas = Quotas::new(defaults(10, 0));
        let lifted = key(
            "k_1",
            KeyQuota {
                events_per_sec: Some(0),
                bytes_per_sec: None,
            },
        );
        for _ in 0..100 {
            quotas.admit(&lifted, 1_000, 1).expect("no limit");
        }
        let bytes_bound = key(
            "k_2",
            KeyQuota {
                events_per_sec: Some(1_000),
                bytes_per_sec: Some(500),
            },
        );
        quotas.admit(&bytes_bound, 10, 400).expect("within both");
        let refused = quotas
            .admit(&bytes_bound, 10, 400)
            .expect_err("over the bytes");
        assert_eq!(refused.details[0], ("limit", "bytes_per_sec".into()));
    }

    #[test]
    fn a_request_larger_than_the_burst_is_too_large_not_too_early() {
        let quotas = Quotas::new(QuotaConfig {
            events_per_sec: 100,
            bytes_per_sec: 0,
            burst_secs: 2,
        });
        let producer = key("k_1", KeyQuota::default());
        let refused = quotas.admit(&producer, 201, 1).expect_err("over the burst");
        assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(refused.retry_after, None);
        assert!(
            refused.message.contains("at most 200 at once"),
            "{}",
            refused.message
        );
        quotas
            .admit(&producer, 200, 1)
            .expect("a whole burst after a quiet spell");
    }

    #[tokio::test]
    async fn an_upload_waits_for_its_quota_a_burst_at_a_time() {
        let quotas = Quotas::new(defaults(1_000, 0));
        let producer = key("k_1", KeyQuota::default());
        let started = std::time::Instant::now();
        // A burst now, then 1,500 more at 1,000 a second.
        quotas.wait(&producer, 2_500, 1).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1_400) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }
}
