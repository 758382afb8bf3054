//! Time bounds as clients send them: RFC 3339 text, or epoch milliseconds as a number or text.

use serde::{Deserialize, Serialize};
use sluice_event::{check_epoch_ms_value, parse_timestamp};
use sluice_http::ApiError;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::{PartialSchema, ToSchema};

/// How the OpenAPI document describes a [`TimeParam`]: RFC 3339 text or epoch milliseconds,
/// within the years validation accepts (1970 to 9999).
pub struct TimeBound;

impl PartialSchema for TimeBound {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(sluice_event::MAX_EPOCH_MS)),
            )
            .into()
    }
}

impl ToSchema for TimeBound {}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum TimeParam {
    Millis(i64),
    /// Milliseconds written as JSON may write a whole number (`1700000000000.0`).
    WholeMillis(f64),
    Text(String),
}

impl TimeParam {
    pub fn to_ms(&self) -> Result<i64, String> {
        match self {
            TimeParam::Millis(ms) => check_epoch_ms_value(*ms).map_err(|e| e.to_string()),
            TimeParam::WholeMillis(ms) if ms.fract() == 0.0 && ms.abs() < 1e18 => {
                check_epoch_ms_value(*ms as i64).map_err(|e| e.to_string())
            }
            TimeParam::WholeMillis(ms) => Err(format!(
                "{ms} is not a whole number of milliseconds since the epoch"
            )),
            TimeParam::Text(text) => parse_timestamp(text.trim()).map_err(|e| e.to_string()),
        }
    }
}

/// The longest quick range: a year.
const MAX_QUICK_RANGE_MS: i64 = 366 * 86_400_000;

/// A quick range (`15m`, `1h`, `24h`, `7d`, `30d`: a number and a unit of m, h or d) in
/// milliseconds.
pub fn quick_range_ms(range: &str) -> Result<i64, ApiError> {
    let refuse = || {
        ApiError::bad_request(
            "invalid_request",
            format!(
                "range {range:?} is not a quick range such as 15m, 1h, 24h, 7d or 30d (at most 366d)"
            ),
        )
    };
    let range = range.trim();
    let Some(unit) = range.chars().last() else {
        return Err(refuse());
    };
    let number = &range[..range.len() - unit.len_utf8()];
    let unit_ms = match unit {
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return Err(refuse()),
    };
    let number: i64 = number.parse().map_err(|_| refuse())?;
    match number.checked_mul(unit_ms) {
        Some(ms) if ms > 0 && ms <= MAX_QUICK_RANGE_MS => Ok(ms),
        _ => Err(refuse()),
    }
}

/// Where a window of `range_ms` back from `now_ms` starts: on the minute at or before, as
/// Elasticsearch's `now-30d/m`. A dashboard refreshed within the minute asks the same start, and
/// a start on the minute is read from the rollups' minutes without reading any event (a
/// partial minute is read from each segment's events, whose cost grows with the store).
pub fn quick_range_start(now_ms: i64, range_ms: i64) -> i64 {
    (now_ms - range_ms).div_euclid(MINUTE_MS) * MINUTE_MS
}

const MINUTE_MS: i64 = 60_000;

/// A time window as clients give it: `from`/`to`, or a quick `range` back from now (not both).
pub fn window(
    from: Option<TimeParam>,
    to: Option<TimeParam>,
    range: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    match range {
        None => time_range(from, to),
        Some(_) if from.is_some() || to.is_some() => Err(ApiError::bad_request(
            "invalid_request",
            "give either range or from/to, not both",
        )),
        Some(range) => {
            let now = sluice_event::now_ms();
            Ok((
                Some(quick_range_start(now, quick_range_ms(range)?)),
                Some(now),
            ))
        }
    }
}

/// `from` and `to` as inclusive epoch milliseconds, each optional, refused when unreadable or
/// out of order.
pub fn time_range(
    from: Option<TimeParam>,
    to: Option<TimeParam>,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let bound = |name: &str, param: Option<TimeParam>| {
        param
            .map(|p| p.to_ms())
            .transpose()
            .map_err(|e| ApiError::bad_request("invalid_request", format!("{name}: {e}")))
    };
    let (from_ms, to_ms) = (bound("from", from)?, bound("to", to)?);
    if let (Some(from), Some(to)) = (from_ms, to_ms)
        && from > to
    {
        return Err(ApiError::bad_request("invalid_request", "from is after to"));
    }
    Ok((from_ms, to_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_number_forms() {
        assert_eq!(TimeParam::Millis(5).to_ms(), Ok(5));
        let whole: TimeParam = serde_json::from_str("1700000000000.0").expect("a number");
        assert_eq!(whole.to_ms(), Ok(1_700_000_000_000));
        let fraction: TimeParam = serde_json::from_str("1.5").expect("a number");
        assert!(fraction.to_ms().is_err());
        assert_eq!(
            TimeParam::Text("2024-05-01T12:00:00Z".into()).to_ms(),
            Ok(1_714_564_800_000)
        );
        assert_eq!(
            TimeParam::Text("1714564800000".into()).to_ms(),
            Ok(1_714_564_800_000)
        );
        assert!(TimeParam::Text("noon".into()).to_ms().is_err());
    }

    #[test]
    fn quick_ranges_start_on_the_minute() {
        let now = 1_714_564_842_123; // 2024-05-01T12:00:42.123Z
        assert_eq!(quick_range_start(now, 86_400_000), 1_714_478_400_000);
        assert_eq!(
            quick_range_start(1_714_564_800_000, 900_000),
            1_714_563_900_000
        );
    }

    #[test]
    fn quick_ranges() {
        assert_eq!(quick_range_ms("15m").expect("valid"), 900_000);
        assert_eq!(quick_range_ms("24h").expect("valid"), 86_400_000);
        assert_eq!(quick_range_ms("30d").expect("valid"), 2_592_000_000);
        for bad in [
            "",
            "h",
            "0h",
            "-1d",
            "7w",
            "1é",
            "400d",
            "9999999999999999d",
            "1.5h",
        ] {
            assert!(quick_range_ms(bad).is_err(), "{bad}");
        }
        let (from, to) = window(None, None, Some("1h")).expect("valid");
        let (from, to) = from.zip(to).expect("both bounds");
        assert!((3_600_000..3_660_000).contains(&(to - from)), "{from} {to}");
        assert_eq!(from % 60_000, 0, "on the minute");
        assert!(window(Some(TimeParam::Millis(1)), None, Some("1h")).is_err());
    }
}
