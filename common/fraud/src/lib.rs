//! The fraud engine: scores each event inline from the event itself, its GeoIP facts and what the
//! same user and IP did recently. A plain library (no I/O) so the processor scores every event and
//! the api can score on demand with the same code.
//!
//! State is keyed by user and by IP, bounded by [`StateLimits`] (an LRU of at most `max_keys`
//! entries each, forgotten after `ttl_secs` of event time) and driven by event time, so a replay or
//! a backlog scores the same as live traffic.

mod config;
pub mod detect;
mod state;

pub type SharedFraudEngine = std::sync::Arc<std::sync::Mutex<FraudEngine>>;

pub use config::{
    AmountAnomaly, FailedAttempts, FraudConfig, HighAmount, IpMismatch, RapidTransactions,
    StateLimits, SuspiciousLocation,
};
pub use detect::{DetectError, Detection, FraudDetector, History, SCORING_DEFAULTS};

use std::net::IpAddr;

use serde::Serialize;
use state::{IpState, StateMap, UserState};

/// The six indicators, named as they appear in `fraud.indicators`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    HighAmount,
    RapidTransactions,
    FailedAttempts,
    SuspiciousLocation,
    IpMismatch,
    AmountAnomaly,
}

impl Indicator {
    pub const ALL: [Indicator; 6] = [
        Indicator::HighAmount,
        Indicator::RapidTransactions,
        Indicator::FailedAttempts,
        Indicator::SuspiciousLocation,
        Indicator::IpMismatch,
        Indicator::AmountAnomaly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::HighAmount => "high_amount",
            Indicator::RapidTransactions => "rapid_transactions",
            Indicator::FailedAttempts => "failed_attempts",
            Indicator::SuspiciousLocation => "suspicious_location",
            Indicator::IpMismatch => "ip_mismatch",
            Indicator::AmountAnomaly => "amount_anomaly",
        }
    }
}

/// What GeoIP said about the event's IP.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GeoFacts<'a> {
    /// No GeoIP database is loaded: location indicators that need one stay silent.
    NoDatabase,
    /// No IP on the event, or a private/reserved one: nothing to judge.
    NotApplicable,
    /// A public IP the database does not know.
    Unknown,
    Found {
        country_iso: Option<&'a str>,
        coordinates: Option<(f64, f64)>,
        anonymous: bool,
    },
}

/// What happened, as far as fraud is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activity {
    Transaction {
        amount: f64,
        failed: bool,
    },
    /// A failed login or payment attempt outside a transaction record.
    FailedAttempt,
    /// Anything else: not scored, not remembered.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FraudInput<'a> {
    pub user_id: Option<&'a str>,
    pub ip: Option<IpAddr>,
    pub event_time_ms: i64,
    pub activity: Activity,
    /// The billing country the customer declared.
    pub declared_country: Option<&'a str>,
    pub geo: GeoFacts<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Assessment {
    /// 0–100: the sum of the weights of the indicators that fired, capped at 100.
    pub score: f64,
    pub indicators: Vec<Indicator>,
    pub detected: bool,
}

/// Transaction statuses that mean the payment did not go through (in any case).
pub const FAILURE_STATUSES: &[&str] = &["failed", "declined", "rejected", "error", "denied"];

/// Statuses and actions that count as a failed attempt.
pub fn is_failure_status(status: &str) -> bool {
    FAILURE_STATUSES
        .iter()
        .any(|s| status.eq_ignore_ascii_case(s))
}

pub fn is_failure_action(action: &str) -> bool {
    [
        "login_failed",
        "failed_login",
        "payment_failed",
        "card_declined",
    ]
    .iter()
    .any(|s| action.eq_ignore_ascii_case(s))
}

pub struct FraudEngine {
    config: FraudConfig,
    users: StateMap<String, UserState>,
    ips: StateMap<IpAddr, IpState>,
}

impl FraudEngine {
    pub fn new(config: FraudConfig) -> FraudEngine {
        let limits = &config.state;
        FraudEngine {
            users: StateMap::new(limits.max_keys, limits.ttl_secs * 1000),
            ips: StateMap::new(limits.max_keys, limits.ttl_secs * 1000),
            config,
        }
    }

    /// Users currently tracked (bounded by `state.max_keys`).
    pub fn tracked_users(&self) -> usize {
        self.users.len()
    }

    /// Scores `input` as [`FraudEngine::assess`] would, against the current state, and remembers
    /// nothing: for scoring on demand (`POST /api/fraud/detect`), where asking twice must not
    /// look like two transactions. Only the two states the input touches are copied.
    pub fn preview(&self, input: &FraudInput<'_>) -> Option<Assessment> {
        let limits = &self.config.state;
        let mut scratch = FraudEngine {
            config: self.config.clone(),
            users: StateMap::new(1, limits.ttl_secs * 1000),
            ips: StateMap::new(1, limits.ttl_secs * 1000),
        };
        if let Some(user_id) = input.user_id
            && let Some(slot) = self.users.peek(user_id)
        {
            scratch.users.restore(user_id.to_owned(), slot.clone());
        }
        if let Some(ip) = input.ip
            && let Some(slot) = self.ips.peek(&ip)
        {
            scratch.ips.restore(ip, slot.clone());
        }
        scratch.assess(input)
    }

    /// Scores a transaction and remembers what it needs for the next ones. Failed attempts outside
    /// transactions are remembered but not scored; other activity is ignored (`None`).
    pub fn assess(&mut self, input: &FraudInput<'_>) -> Option<Assessment> {
        let now = input.event_time_ms;
        let failed = match input.activity {
            Activity::Transaction { failed, .. } => failed,
            Activity::FailedAttempt => true,
            Activity::Other => return None,
        };
        let c = &self.config;
        let fail_window = c.failed_attempts.window_secs as i64 * 1000;

        let ip_failures = match input.ip {
            Some(ip) => {
                let state = self.ips.entry(&ip, now);
                if failed {
                    state.failures.record(now);
                }
                state.failures.count_within(now, fail_window)
            }
            None => 0,
        };
        let user = input.user_id.map(|id| self.users.entry(id, now));

        let Activity::Transaction { amount, .. } = input.activity else {
            if let Some(user) = user {
                user.failures.record(now);
            }
            return None;
        };

        let mut fired = Vec::new();
        if amount >= c.high_amount.amount {
            fired.push(Indicator::HighAmount);
        }
        let mut user_failures = 0;
        if let Some(user) = user {
            if failed {
                user.failures.record(now);
            }
            user_failures = user.failures.count_within(now, fail_window);
            user.transactions.record(now);
            let window = c.rapid_transactions.window_secs as i64 * 1000;
            if user.transactions.count_within(now, window) >= c.rapid_transactions.count {
                fired.push(Indicator::RapidTransactions);
            }
            let a = &c.amount_anomaly;
            if user.amounts.count() >= a.min_history
                && amount > user.amounts.mean() + a.std_devs * user.amounts.std_dev()
                && amount >= a.min_ratio * user.amounts.mean()
            {
                fired.push(Indicator::AmountAnomaly);
            }
            user.amounts.push(amount);
        }
        if user_failures >= c.failed_attempts.per_user || ip_failures >= c.failed_attempts.per_ip {
            fired.push(Indicator::FailedAttempts);
        }

        let location = &c.suspicious_location;
        let mut suspicious = match input.geo {
            GeoFacts::Unknown => location.unknown_ip,
            GeoFacts::Found {
                country_iso,
                anonymous,
                ..
            } => {
                anonymous
                    || country_iso.is_some_and(|iso| {
                        location
                            .high_risk_countries
                            .iter()
                            .any(|c| c.eq_ignore_ascii_case(iso))
                    })
            }
            GeoFacts::NoDatabase | GeoFacts::NotApplicable => false,
        };
        if let (
            GeoFacts::Found {
                coordinates: Some(here),
                ..
            },
            Some(user_id),
        ) = (input.geo, input.user_id)
            && let Some(user) = self.users.get_mut(user_id)
        {
            if let Some((then_ms, there)) = user.last_location
                && impossible_travel(then_ms, there, now, here, location)
            {
                suspicious = true;
            }
            if user.last_location.is_none_or(|(then_ms, _)| then_ms <= now) {
                user.last_location = Some((now, here));
            }
        }
        if suspicious {
            fired.push(Indicator::SuspiciousLocation);
        }

        if let (
            GeoFacts::Found {
                country_iso: Some(seen),
                ..
            },
            Some(declared),
        ) = (input.geo, input.declared_country)
            && !declared.trim().is_empty()
            && !seen.eq_ignore_ascii_case(declared.trim())
        {
            fired.push(Indicator::IpMismatch);
        }

        Some(self.score(fired))
    }

    fn score(&self, indicators: Vec<Indicator>) -> Assessment {
        let c = &self.config;
        let total = indicators
            .iter()
            .map(|i| match i {
                Indicator::HighAmount => c.high_amount.weight,
                Indicator::RapidTransactions => c.rapid_transactions.weight,
                Indicator::FailedAttempts => c.failed_attempts.weight,
                Indicator::SuspiciousLocation => c.suspicious_location.weight,
                Indicator::IpMismatch => c.ip_mismatch.weight,
                Indicator::AmountAnomaly => c.amount_anomaly.weight,
            })
            // A fold from +0.0: `sum()` of no floats is -0.0, which would print as such.
            .fold(0.0, |total, weight| total + weight);
        let score = (total.clamp(0.0, 100.0) * 10.0).round() / 10.0;
        Assessment {
            detected: score >= c.threshold,
            score,
            indicators,
        }
    }
}

/// Whether getting from `there` at `then_ms` to `here` at `now_ms` needs an implausible speed.
fn impossible_travel(
    then_ms: i64,
    there: (f64, f64),
    now_ms: i64,
    here: (f64, f64),
    limits: &SuspiciousLocation,
) -> bool {
    let km = haversine_km(there, here);
    if km < limits.min_travel_km {
        return false;
    }
    let hours = (now_ms - then_ms).abs() as f64 / 3_600_000.0;
    hours == 0.0 || km / hours > limits.max_travel_kmh
}

/// Great-circle distance between two (lat, lon) points in degrees.
pub fn haversine_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
}

#[cfg(test)]
mod tests;
