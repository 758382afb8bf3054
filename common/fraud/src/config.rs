//! Weights and thresholds of the fraud indicators. Every number is configurable (`[fraud]` in the
//! config file); the defaults are a reasonable start for a small shop.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FraudConfig {
    /// Score (0–100) at or above which an event is `fraud.detected`.
    pub threshold: f64,
    pub high_amount: HighAmount,
    pub rapid_transactions: RapidTransactions,
    pub failed_attempts: FailedAttempts,
    pub suspicious_location: SuspiciousLocation,
    pub ip_mismatch: IpMismatch,
    pub amount_anomaly: AmountAnomaly,
    pub state: StateLimits,
}

impl Default for FraudConfig {
    fn default() -> Self {
        FraudConfig {
            threshold: 50.0,
            high_amount: HighAmount::default(),
            rapid_transactions: RapidTransactions::default(),
            failed_attempts: FailedAttempts::default(),
            suspicious_location: SuspiciousLocation::default(),
            ip_mismatch: IpMismatch::default(),
            amount_anomaly: AmountAnomaly::default(),
            state: StateLimits::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HighAmount {
    pub weight: f64,
    /// Amounts at or above this fire the indicator.
    pub amount: f64,
}

impl Default for HighAmount {
    fn default() -> Self {
        HighAmount {
            weight: 30.0,
            amount: 1000.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RapidTransactions {
    pub weight: f64,
    /// Transactions by one user within `window_secs`, this one included, that fire it.
    pub count: usize,
    pub window_secs: u64,
}

impl Default for RapidTransactions {
    fn default() -> Self {
        RapidTransactions {
            weight: 25.0,
            count: 5,
            window_secs: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailedAttempts {
    pub weight: f64,
    /// Failed transactions or logins by one user within the window that fire it.
    pub per_user: usize,
    /// Failed attempts from one IP (any user) within the window that fire it.
    pub per_ip: usize,
    pub window_secs: u64,
}

impl Default for FailedAttempts {
    fn default() -> Self {
        FailedAttempts {
            weight: 25.0,
            per_user: 3,
            per_ip: 5,
            window_secs: 600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SuspiciousLocation {
    pub weight: f64,
    /// ISO 3166 alpha-2 codes of countries the shop treats as high risk.
    pub high_risk_countries: Vec<String>,
    /// Whether a public IP that the GeoIP database does not know counts (needs a database).
    pub unknown_ip: bool,
    /// Two consecutive transactions needing a faster journey than this are impossible travel.
    pub max_travel_kmh: f64,
    /// Journeys shorter than this never count: GeoIP is city-accurate at best.
    pub min_travel_km: f64,
}

impl Default for SuspiciousLocation {
    fn default() -> Self {
        SuspiciousLocation {
            weight: 20.0,
            high_risk_countries: ["KP", "IR", "NG", "RU"].map(String::from).to_vec(),
            unknown_ip: true,
            max_travel_kmh: 900.0,
            min_travel_km: 300.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IpMismatch {
    pub weight: f64,
}

impl Default for IpMismatch {
    fn default() -> Self {
        IpMismatch { weight: 15.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmountAnomaly {
    pub weight: f64,
    /// Earlier transactions a user needs before their history is trusted.
    pub min_history: u64,
    /// Fires when the amount is this many standard deviations above the user's mean…
    pub std_devs: f64,
    /// …and at least this many times the mean (guards users with very steady amounts).
    pub min_ratio: f64,
}

impl Default for AmountAnomaly {
    fn default() -> Self {
        AmountAnomaly {
            weight: 20.0,
            min_history: 5,
            std_devs: 3.0,
            min_ratio: 3.0,
        }
    }
}

/// Bounds on the per-user and per-IP state, so memory stays flat however many users come.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateLimits {
    /// State untouched for this long in event time is forgotten.
    pub ttl_secs: u64,
    /// Most users (and, separately, IPs) tracked; the least recently seen go first.
    pub max_keys: usize,
}

impl Default for StateLimits {
    fn default() -> Self {
        StateLimits {
            ttl_secs: 24 * 3600,
            max_keys: 200_000,
        }
    }
}
