//! Event time: producers send RFC 3339 text or epoch milliseconds; Sluice keeps milliseconds.

use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TimestampError {
    #[error("expected RFC 3339 text (2024-05-01T12:00:00Z) or epoch milliseconds, got {0:?}")]
    Unparseable(String),
    #[error("epoch milliseconds out of range: {0}")]
    OutOfRange(i64),
}

/// Years outside 1970..=9999 are refused: they are almost always a unit mistake (seconds, micros).
const MIN_MS: i64 = 0;
const MAX_MS: i64 = 253_402_300_799_999;

/// Parses RFC 3339 text, or a string of digits as epoch milliseconds.
pub fn parse_timestamp(text: &str) -> Result<i64, TimestampError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let ms = text
            .parse::<i64>()
            .map_err(|_| TimestampError::Unparseable(text.to_owned()))?;
        return check_epoch_ms(ms);
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| TimestampError::Unparseable(truncate(text)))?;
    let ms = i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| TimestampError::Unparseable(truncate(text)))?;
    check_epoch_ms(ms)
}

/// Validates epoch milliseconds sent as a JSON number.
pub fn check_epoch_ms(ms: i64) -> Result<i64, TimestampError> {
    if (MIN_MS..=MAX_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(TimestampError::OutOfRange(ms))
    }
}

/// `2024-05-01T12:00:00.123Z`: the form written into `@timestamp`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let mut out = Vec::with_capacity(24);
    write_rfc3339_ms(ms, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends [`format_rfc3339_ms`]'s text to `out`, digit by digit: this runs twice per event.
pub fn write_rfc3339_ms(ms: i64, out: &mut Vec<u8>) {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (year, month, day) = dt.to_calendar_date();
    let digits = |out: &mut Vec<u8>, value: u32, width: u32| {
        for power in (0..width).rev() {
            out.push(b'0' + (value / 10u32.pow(power) % 10) as u8);
        }
    };
    digits(out, year.clamp(0, 9999) as u32, 4);
    out.push(b'-');
    digits(out, u32::from(u8::from(month)), 2);
    out.push(b'-');
    digits(out, u32::from(day), 2);
    out.push(b'T');
    digits(out, u32::from(dt.hour()), 2);
    out.push(b':');
    digits(out, u32::from(dt.minute()), 2);
    out.push(b':');
    digits(out, u32::from(dt.second()), 2);
    out.push(b'.');
    digits(out, u32::from(dt.millisecond()), 3);
    out.push(b'Z');
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_offset_is_normalised_to_utc_ms() {
        assert_eq!(
            parse_timestamp("2024-05-01T14:00:00.250+02:00"),
            Ok(1_714_564_800_250)
        );
    }

    #[test]
    fn digit_string_is_epoch_ms() {
        assert_eq!(parse_timestamp("1714564800250"), Ok(1_714_564_800_250));
    }

    #[test]
    fn garbage_is_refused_with_the_value() {
        let err = parse_timestamp("yesterday").unwrap_err();
        assert!(err.to_string().contains("yesterday"));
    }

    #[test]
    fn negative_and_huge_epochs_are_refused() {
        assert!(check_epoch_ms(-1).is_err());
        assert!(check_epoch_ms(MAX_MS + 1).is_err());
    }

    #[test]
    fn formats_with_millis() {
        assert_eq!(
            format_rfc3339_ms(1_714_564_800_250),
            "2024-05-01T12:00:00.250Z"
        );
    }
}
