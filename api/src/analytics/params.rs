//! The query parameters every analytics, dashboard, performance and fraud endpoint takes, and
//! the window and bucket size they resolve to.

use serde::{Deserialize, Serialize};
use sluice_event::format_rfc3339_ms;
use sluice_http::ApiError;
use sluice_store::SearchQuery;
use utoipa::{IntoParams, ToSchema};

use crate::search::size;
use crate::time_param::{TimeBound, TimeParam, quick_range_ms, quick_range_start, time_range};

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

/// What an analytics endpoint was asked, whichever of the parameter sets below it takes.
#[derive(Debug, Default)]
pub struct AnalyticsParams {
    pub from: Option<TimeParam>,
    pub to: Option<TimeParam>,
    pub range: Option<String>,
    pub interval: Option<String>,
    pub limit: Option<i64>,
    pub threshold_ms: Option<f64>,
}

/// A parameter set: the window every endpoint takes (`from`/`to` or `range`) and the extras
/// named. Each endpoint takes exactly the set it uses, so a parameter it has no use for is
/// refused (400, naming it) rather than ignored, and the OpenAPI document lists what each takes.
macro_rules! window_params {
    ($(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Default, Deserialize, IntoParams)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            /// Start of the window, inclusive: RFC 3339 or epoch milliseconds. Not after `to`;
            /// not with `range`. Without a window, analytics look at the last day and
            /// `/api/logs/*` at everything.
            #[param(value_type = Option<TimeBound>, inline)]
            pub from: Option<TimeParam>,
            /// End of the window, inclusive: RFC 3339 or epoch milliseconds.
            #[param(value_type = Option<TimeBound>, inline)]
            pub to: Option<TimeParam>,
            /// A window back from now instead of `from`/`to`: a number and a unit of m, h or d
            /// (`15m`, `24h`, `30d`), at most 366 days.
            #[param(pattern = "^[1-9][0-9]{0,5}[mhd]$")]
            pub range: Option<String>,
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl From<$name> for AnalyticsParams {
            fn from(params: $name) -> AnalyticsParams {
                AnalyticsParams {
                    from: params.from,
                    to: params.to,
                    range: params.range,
                    $($field: params.$field,)*
                    ..AnalyticsParams::default()
                }
            }
        }
    };
}

window_params!(
    /// A window.
    Span {}
);
window_params!(
    /// A window cut into buckets.
    SpanTimeline {
        /// Bucket size of timelines, as `range` is written (`5m`, `1h`, `1d`); chosen from the
        /// window when absent. At most 2,000 buckets in the window.
        #[param(pattern = "^[1-9][0-9]{0,5}[mhd]$")]
        interval: Option<String>,
    }
);
window_params!(
    /// A window and the length of its top lists.
    SpanTop {
        /// Entries of each top list, up to 1,000 (default 10; 100 services).
        #[param(minimum = 0, maximum = 1000)]
        limit: Option<i64>,
    }
);
window_params!(
    /// A window cut into buckets, and the length of its top lists.
    SpanTopTimeline {
        /// Bucket size of timelines, as `range` is written (`5m`, `1h`, `1d`); chosen from the
        /// window when absent. At most 2,000 buckets in the window.
        #[param(pattern = "^[1-9][0-9]{0,5}[mhd]$")]
        interval: Option<String>,
        /// Entries of each top list, up to 1,000 (default 10; 20 services by database time).
        #[param(minimum = 0, maximum = 1000)]
        limit: Option<i64>,
    }
);
window_params!(
    /// A window, a threshold for slow requests and how many of them to list.
    SlowRequests {
        /// Endpoints listed, up to 1,000 (default 20).
        #[param(minimum = 0, maximum = 1000)]
        limit: Option<i64>,
        /// The response time, in ms, above which a request counts as slow (default 1000).
        #[param(minimum = 0)]
        threshold_ms: Option<f64>,
    }
);

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
            Some(range) => (quick_range_start(now, quick_range_ms(range)?), now),
            None => match time_range(self.from.clone(), self.to.clone())? {
                (Some(from), to) => (from, to.unwrap_or(now)),
                (None, Some(to)) => (to - DEFAULT_WINDOW_MS, to),
                (None, None) => (quick_range_start(now, DEFAULT_WINDOW_MS), now),
            },
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
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowJson {
    pub from: String,
    pub to: String,
    pub interval_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: serde_json::Value) -> AnalyticsParams {
        serde_json::from_value::<SpanTopTimeline>(json)
            .expect("params")
            .into()
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
        assert_eq!(w.from_ms % 60_000, 0, "a quick range starts on the minute");
        assert!((0..60_000).contains(&(w.to_ms - w.from_ms - 30 * 86_400_000)));
        let w = params(serde_json::json!({})).window().expect("valid");
        assert_eq!(w.from_ms % 60_000, 0, "so does the last day by default");
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
        let unused = serde_json::from_value::<SpanTimeline>(serde_json::json!({"limit": 5}));
        assert!(unused.expect_err("refused").to_string().contains("limit"));
    }
}
