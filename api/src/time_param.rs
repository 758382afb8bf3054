//! Time bounds as clients send them: RFC 3339 text, or epoch milliseconds as a number or text.

use serde::Deserialize;
use sluice_common::event::{check_epoch_ms_value, parse_timestamp};
use sluice_common::http::ApiError;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum TimeParam {
    Millis(i64),
    Text(String),
}

impl TimeParam {
    pub fn to_ms(&self) -> Result<i64, String> {
        match self {
            TimeParam::Millis(ms) => check_epoch_ms_value(*ms).map_err(|e| e.to_string()),
            TimeParam::Text(text) => parse_timestamp(text.trim()).map_err(|e| e.to_string()),
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
}
