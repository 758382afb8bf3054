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
const MAX_MS: i64 = MAX_EPOCH_MS;
/// The last millisecond of 9999.
pub const MAX_EPOCH_MS: i64 = 253_402_300_799_999;

/// Parses RFC 3339 text, or a string of digits as epoch milliseconds.
pub fn parse_timestamp(text: &str) -> Result<i64, TimestampError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let ms = text
            .parse::<i64>()
            .map_err(|_| TimestampError::Unparseable(text.to_owned()))?;
        return check_epoch_ms(ms);
    }
    if let Some(ms) = parse_utc_fast(text.as_bytes()) {
        return check_epoch_ms(ms);
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| TimestampError::Unparseable(truncate(text)))?;
    let ms = i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| TimestampError::Unparseable(truncate(text)))?;
    check_epoch_ms(ms)
}

/// The form nearly every producer sends, `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, parsed without the
/// general RFC 3339 machinery (this runs once per event). Anything else, offsets included,
/// returns `None` and goes the general way.
fn parse_utc_fast(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' || !matches!(b[b.len() - 1], b'Z' | b'z') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        b[range].iter().try_fold(0i64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let millis = match b[19] {
        b'Z' | b'z' if b.len() == 20 => 0,
        b'.' if b.len() > 21 => {
            let fraction = &b[20..b.len() - 1];
            if !fraction.iter().all(u8::is_ascii_digit) {
                return None;
            }
            fraction
                .iter()
                .chain(std::iter::repeat(&b'0'))
                .take(3)
                .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'))
        }
        _ => return None,
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
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

/// Appends [`format_rfc3339_ms`]'s text to `out`. This runs twice per event, so the date is
/// computed with Howard Hinnant's civil_from_days and the text written in one piece. Times
/// outside 0000..=9999 are clamped to its ends, as they were before.
pub fn write_rfc3339_ms(ms: i64, out: &mut Vec<u8>) {
    // 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z.
    let ms = ms.clamp(-62_167_219_200_000, MAX_EPOCH_MS);
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let mut text = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut value: i64| {
        for slot in text[at..at + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, ms_of_day / 3_600_000);
    put(14, 2, ms_of_day / 60_000 % 60);
    put(17, 2, ms_of_day / 1_000 % 60);
    put(20, 3, ms_of_day % 1_000);
    out.extend_from_slice(&text);
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
    fn fast_path_agrees_with_the_general_parser() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59.999Z",
            "2024-05-01T12:00:00.1Z",
            "2024-05-01T12:00:00.123456789Z",
            "1999-12-31t23:59:59z",
            "2100-03-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
        ] {
            let general = OffsetDateTime::parse(text, &Rfc3339).expect("valid RFC 3339");
            let expected = i64::try_from(general.unix_timestamp_nanos() / 1_000_000).expect("fits");
            assert_eq!(parse_utc_fast(text.as_bytes()), Some(expected), "{text}");
        }
    }

    #[test]
    fn fast_path_declines_what_it_does_not_handle() {
        for text in [
            "2024-05-01T12:00:00+02:00",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01 12:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00.1a3Z",
        ] {
            assert_eq!(parse_utc_fast(text.as_bytes()), None, "{text}");
        }
        assert!(parse_timestamp("2023-02-29T00:00:00Z").is_err());
        assert_eq!(
            parse_timestamp("2024-05-01T14:00:00+02:00"),
            parse_timestamp("2024-05-01T12:00:00Z")
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

    /// The date arithmetic agrees with the time crate's calendar at the edges (epoch, leap
    /// days, centuries, the last millisecond kept) and at a spread of times between.
    #[test]
    fn formatting_agrees_with_the_calendar() {
        let reference = |ms: i64| {
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .expect("in range");
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second(),
                at.millisecond()
            )
        };
        let mut edges = vec![
            0,
            1,
            86_399_999,
            951_782_400_000,   // 2000-02-29
            4_107_456_000_000, // 2100-02-28
            4_107_542_399_999, // 2100-02-28, last ms (2100 is not a leap year)
            MAX_EPOCH_MS,
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            edges.push((x % MAX_EPOCH_MS as u64) as i64);
        }
        for ms in edges {
            assert_eq!(format_rfc3339_ms(ms), reference(ms), "{ms}");
        }
    }
}
