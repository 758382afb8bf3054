//! The query parameters every analytics, dashboard, performance and fraud endpoint takes, and
//! the window and bucket size they resolve to.

use serde::{Deserialize, Serialize};
use sluice_event::format_rfc3339_ms;
use sluice_http::ApiError;
use sluice_store::SearchQuery;

use crate::search::size;
use crate::time_param::{TimeParam, quick_range_ms, time_range};

/// Without a range, analytics look at the last day, as Kibana's default does.
const DEFAULT_WINDOW_MS: i64 = 86_400_000;
/// Bucket sizes chosen when the caller gives none: the smallest giving at most ~100 points.
const INTERVALS_MS: &[i64] = &[
    60_000,
    5 * 60_000,
    15 * 60_000,
    3_600_000,
    3 * 3_600_000,
    6 * 3_600_000,
    12 * 3_600_000,
    86_400_000,
    7 * 86_400_000,
    30 * 86_400_000,
];
const TARGET_BUCKETS: i64 = 100;
const MAX_BUCKETS: i64 = 2_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsParams {
    pub from: Option<TimeParam>,
    pub to: Option<TimeParam>,
    /// A quick range back from now: 15m, 1h, 24h, 7d, 30d.
    pub range: Option<String>,
    /// Bucket size for timelines (`5m`, `1h`, `1d`); chosen from the window when absent.
    pub interval: Option<String>,
    /// How many entries top lists have.
    pub limit: Option<i64>,
    /// Performance: the response time, in ms, above which a request counts as slow.
    pub threshold_ms: Option<f64>,
}

/// A closed time window and the bucket size for its timelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
    pub interval_ms: i64,
}

impl AnalyticsParams {
    /// The window: `from`/`to` (either may be left out), a quick `range`, or the last day.
    pub fn window(&self) -> Result<Window, ApiError> {
        let now = sluice_event::now_ms();
        let (from_ms, to_ms) = match &self.range {
            Some(_) if self.from.is_some() || self.to.is_some() => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "give either range or from/to, not both",
                ));
            }
            Some(range) => (now - quick_range_ms(range)?, now),
            None => {
                let (from, to) = time_range(self.from.clone(), self.to.clone())?;
                let to = to.unwrap_or(now);
                (from.unwrap_or(to - DEFAULT_WINDOW_MS), to)
            }
        };
        let span = (to_ms - from_ms).max(1);
        let interval_ms = match &self.interval {
            Some(interval) => {
                let ms = quick_range_ms(interval)?;
                if span / ms > MAX_BUCKETS {
                    return Err(ApiError::bad_request(
                        "invalid_request",
                        format!(
                            "interval {interval} cuts the window into more than {MAX_BUCKETS} \
                             buckets; choose a longer one"
                        ),
                    ));
                }
                ms
            }
            None => INTERVALS_MS
                .iter()
                .copied()
                .find(|ms| span / ms <= TARGET_BUCKETS)
                .unwrap_or(INTERVALS_MS[INTERVALS_MS.len() - 1]),
        };
        Ok(Window {
            from_ms,
            to_ms,
            interval_ms,
        })
    }

    /// The top-list length, within `1..=max`.
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        size(self.limit, default, max).map(|n| n.max(1))
    }

    /// Refuses parameters an endpoint has no use for, rather than ignoring them silently.
    pub fn refuse(&self, names: &[&str]) -> Result<(), ApiError> {
        let given = [
            ("interval", self.interval.is_some()),
            ("limit", self.limit.is_some()),
            ("threshold_ms", self.threshold_ms.is_some()),
        ];
        for (name, present) in given {
            if present && names.contains(&name) {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    format!("{name} does not apply to this endpoint"),
                ));
            }
        }
        Ok(())
    }
}

impl Window {
    /// Every event in the window.
    pub fn query(&self) -> SearchQuery {
        SearchQuery::range(Some(self.from_ms), Some(self.to_ms))
    }

    /// The window of the same length just before this one.
    pub fn previous(&self) -> Window {
        let span = self.to_ms - self.from_ms;
        Window {
            from_ms: self.from_ms - span - 1,
            to_ms: self.from_ms - 1,
            interval_ms: self.interval_ms,
        }
    }

    pub fn describe(&self) -> WindowJson {
        WindowJson {
            from: format_rfc3339_ms(self.from_ms),
            to: format_rfc3339_ms(self.to_ms),
            interval_ms: self.interval_ms,
        }
    }
}

/// The window as answers show it.
#[derive(Debug, Serialize)]
pub struct WindowJson {
    pub from: String,
    pub to: String,
    pub interval_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: serde_json::Value) -> AnalyticsParams {
        serde_json::from_value(json).expect("params")
    }

    #[test]
    fn windows_and_intervals() {
        let w = params(serde_json::json!({"from": 0, "to": 86_400_000}))
            .window()
            .expect("valid");
        assert_eq!(
            (w.from_ms, w.to_ms, w.interval_ms),
            (0, 86_400_000, 15 * 60_000)
        );
        let w = params(serde_json::json!({"range": "30d"}))
            .window()
            .expect("valid");
        assert_eq!(w.interval_ms, 12 * 3_600_000);
        let w = params(serde_json::json!({"to": 100_000_000}))
            .window()
            .expect("valid");
        assert_eq!(w.from_ms, 100_000_000 - DEFAULT_WINDOW_MS);
        let w = params(serde_json::json!({"from": 0, "to": 3_600_000, "interval": "5m"}))
            .window()
            .expect("valid");
        assert_eq!(w.interval_ms, 300_000);
        assert_eq!(
            w.previous(),
            Window {
                from_ms: -3_600_001,
                to_ms: -1,
                interval_ms: 300_000
            }
        );
    }

    #[test]
    fn mistakes_are_refused() {
        let refused = |json: serde_json::Value| params(json).window().expect_err("refused").message;
        assert!(refused(serde_json::json!({"range": "1h", "from": 0})).contains("not both"));
        assert!(
            refused(serde_json::json!({"from": 0, "to": 86_400_000_i64 * 30, "interval": "1m"}))
                .contains("buckets")
        );
        assert!(refused(serde_json::json!({"interval": "soon"})).contains("quick range"));
        let extra = params(serde_json::json!({"limit": 5}));
        assert!(extra.refuse(&["limit"]).is_err());
        assert!(extra.refuse(&["interval"]).is_ok());
    }
}
