//! Retention over daily indices: Sluice deletes `<prefix>-YYYY.MM.DD` once its day has passed
//! the retention, instead of installing an ILM policy. ILM ages an index from its creation (or
//! rollover), not from the event time in its name, so a backfill of last month's events would
//! be kept a month too long; Sluice's indices are named by event time, and deleting by that
//! name keeps exactly the days the embedded store keeps. It also works unchanged on OpenSearch,
//! which has no ILM. Indices under the prefix whose names are not a date are never touched.

use serde::Deserialize;
use time::{Date, Month};

use sluice_store::retention::MS_PER_DAY;

/// One daily index, as `_cat/indices` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DailyIndex {
    pub name: String,
    /// Start of its day, epoch milliseconds.
    pub day_ms: i64,
    pub bytes: u64,
    pub events: u64,
}

#[derive(Deserialize)]
struct CatRow {
    index: String,
    #[serde(rename = "store.size")]
    store_size: Option<String>,
    #[serde(rename = "docs.count")]
    docs_count: Option<String>,
}

/// The daily indices of `prefix` in a `_cat/indices?format=json&bytes=b` answer.
pub(super) fn daily_indices(prefix: &str, answer: &[u8]) -> Result<Vec<DailyIndex>, String> {
    let rows: Vec<CatRow> =
        serde_json::from_slice(answer).map_err(|e| format!("reading the list of indices: {e}"))?;
    let number = |text: &Option<String>| text.as_deref().and_then(|t| t.parse().ok());
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let day_ms = day_of(prefix, &row.index)?;
            Some(DailyIndex {
                day_ms,
                // A closed index has no figures; it still counts as a day held.
                bytes: number(&row.store_size).unwrap_or(0),
                events: number(&row.docs_count).unwrap_or(0),
                name: row.index,
            })
        })
        .collect())
}

/// The day `<prefix>-YYYY.MM.DD` names, if `name` is one.
fn day_of(prefix: &str, name: &str) -> Option<i64> {
    let date = name.strip_prefix(prefix)?.strip_prefix('-')?;
    let mut parts = date.split('.');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let date = Date::from_calendar_date(
        year.parse().ok()?,
        Month::try_from(month.parse::<u8>().ok()?).ok()?,
        day.parse().ok()?,
    )
    .ok()?;
    let days = i64::from(
        date.to_julian_day()
            - Date::from_calendar_date(1970, Month::January, 1)
                .ok()?
                .to_julian_day(),
    );
    Some(days * MS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::daily_index_name;

    #[test]
    fn reads_the_day_back_from_the_names_bulk_writes() {
        for at in [0, 1_796_000_000_000, 253_402_300_799_000, -86_400_000] {
            let name = daily_index_name("sluice-logs", at);
            assert_eq!(
                day_of("sluice-logs", &name),
                Some(at.div_euclid(MS_PER_DAY) * MS_PER_DAY),
                "{name}"
            );
        }
    }

    #[test]
    fn leaves_indices_that_are_not_a_day_of_the_prefix_alone() {
        for name in [
            "sluice-logs",
            "sluice-logs-archive",
            "sluice-logs-2026.13.01",
            "sluice-logs-2026.1.01",
            "sluice-logs-2026.01.01.1",
            "sluice-logs-x-2026.01.01",
            "other-2026.01.01",
        ] {
            assert_eq!(day_of("sluice-logs", name), None, "{name}");
        }
    }

    /// The answer's shape, as Elasticsearch 8 documents `_cat/indices?format=json&bytes=b`.
    #[test]
    fn reads_sizes_and_counts_from_the_cat_answer() {
        let answer = br#"[
            {"index":"sluice-logs-2026.11.01","store.size":"2048","docs.count":"10"},
            {"index":"sluice-logs-archive","store.size":"99","docs.count":"1"},
            {"index":"sluice-logs-2026.11.02","store.size":null,"docs.count":null}
        ]"#;
        let indices = daily_indices("sluice-logs", answer).expect("reads");
        assert_eq!(indices.len(), 2);
        assert_eq!((indices[0].bytes, indices[0].events), (2048, 10));
        assert_eq!(indices[1].day_ms - indices[0].day_ms, MS_PER_DAY);
        assert_eq!((indices[1].bytes, indices[1].events), (0, 0));
    }
}
