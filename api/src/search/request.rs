//! The body of `POST /api/logs/search`, checked and turned into a store query. Every mistake is
//! a 400 that names the field and says what would be accepted.

use serde::Deserialize;
use serde_json::Value;
use sluice_event::LogType;
use sluice_http::ApiError;
use sluice_store::text_query;
use sluice_store::{
    DEFAULT_SEARCH_SIZE, DEFAULT_TRACK_TOTAL_HITS, Field, Filter, MAX_RESULT_WINDOW,
    MAX_SEARCH_SIZE, SearchQuery, Sort, SortField, SortKey, Total,
};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::time_param::{TimeBound, TimeParam, window};

#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SearchRequest {
    /// The search box: words, `"phrases"`, `field:value`, `AND`, `OR`, `NOT`, `-word` and
    /// parentheses, as in Kibana's query bar.
    pub query: Option<String>,
    #[schema(value_type = Option<LogType>)]
    pub log_type: Option<String>,
    pub level: Option<String>,
    pub service: Option<String>,
    pub status: Option<String>,
    pub payment_method: Option<String>,
    /// The declared country or the one GeoIP found, ISO code.
    pub country: Option<String>,
    pub user_id: Option<String>,
    pub min_amount: Option<f64>,
    pub max_amount: Option<f64>,
    pub min_fraud_score: Option<f64>,
    pub max_fraud_score: Option<f64>,
    /// Start of the window, inclusive: RFC 3339 or epoch milliseconds; not after `to`, not
    /// with `range`.
    #[schema(value_type = Option<TimeBound>)]
    pub from: Option<TimeParam>,
    /// End of the window, inclusive: RFC 3339 or epoch milliseconds.
    #[schema(value_type = Option<TimeBound>)]
    pub to: Option<TimeParam>,
    /// A quick range back from now: 15m, 1h, 24h, 7d, 30d (at most 366 days).
    #[schema(pattern = "^[1-9][0-9]{0,5}[mhd]$")]
    pub range: Option<String>,
    /// `@timestamp` (the default) or a numeric field.
    #[schema(value_type = Option<SortName>)]
    pub sort: Option<String>,
    /// `desc` (the default) or `asc`.
    #[schema(value_type = Option<SortOrder>)]
    pub order: Option<String>,
    /// Hits per page (default 20, at most 10,000).
    #[schema(minimum = 0, maximum = 10000)]
    pub size: Option<i64>,
    /// Hits to skip; `offset + size` stays within 10,000 (page deeper with `search_after`).
    #[schema(minimum = 0, maximum = 10000)]
    pub offset: Option<i64>,
    /// The `next_search_after` of the previous page; not with `offset`.
    #[schema(value_type = Option<SortCursor>)]
    pub search_after: Option<(f64, String)>,
    /// Whether hits carry `_highlight` (default true).
    pub highlight: Option<bool>,
    /// How far `total` is counted, as Elasticsearch's `track_total_hits`: a number counts up to
    /// it (default 10,000) and past it `total` is that number with `total_relation` `gte`;
    /// `true` counts every match (slower over a large index); `false` counts none.
    #[schema(value_type = Option<TrackTotalHits>)]
    pub track_total_hits: Option<Value>,
}

/// `true`, `false` or how many matches to count at most.
pub struct TrackTotalHits;

impl PartialSchema for TrackTotalHits {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .into()
    }
}

impl ToSchema for TrackTotalHits {}

/// What results are sorted by: `@timestamp` or a numeric field, as [`Field`] lists them.
pub struct SortName;

impl PartialSchema for SortName {
    fn schema() -> RefOr<Schema> {
        let numeric = Field::ALL
            .iter()
            .filter(|f| f.is_numeric())
            .map(|f| f.path());
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["@timestamp", "timestamp"].into_iter().chain(numeric)))
            .into()
    }
}

impl ToSchema for SortName {}

#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum SortOrder {
    Desc,
    Asc,
}

/// A page's last sort key, `[value, id]`: pass a page's `next_search_after` back as it came.
pub struct SortCursor;

impl PartialSchema for SortCursor {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .prefix_items([
                ObjectBuilder::new().schema_type(Type::Number).build(),
                ObjectBuilder::new().schema_type(Type::String).build(),
            ])
            .items(utoipa::openapi::schema::ArrayItems::False)
            .min_items(Some(2))
            .max_items(Some(2))
            .into()
    }
}

impl ToSchema for SortCursor {}

fn invalid(message: String) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

/// A page size or limit within `0..=max`, `default` when absent.
pub fn size(requested: Option<i64>, default: usize, max: usize) -> Result<usize, ApiError> {
    match requested {
        None => Ok(default),
        Some(n) if n >= 0 && n as u64 <= max as u64 => Ok(n as usize),
        Some(n) => Err(invalid(format!(
            "size/limit must be between 0 and {max}, got {n}"
        ))),
    }
}

/// `log_type` checked against the five types.
fn log_type_filter(log_type: Option<&str>) -> Result<Option<Filter>, ApiError> {
    log_type
        .map(|t| {
            t.parse::<LogType>()
                .map(|t| Filter::Equals(Field::LogType, t.as_str().into()))
                .map_err(|()| {
                    invalid(format!(
                        "log_type {t:?} is not one of transaction, error, user_behavior, \
                         performance, fraud"
                    ))
                })
        })
        .transpose()
}

fn number_range(
    field: Field,
    names: (&str, &str),
    min: Option<f64>,
    max: Option<f64>,
) -> Result<Option<Filter>, ApiError> {
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(invalid(format!(
            "{} ({min}) is greater than {} ({max})",
            names.0, names.1
        )));
    }
    Ok((min.is_some() || max.is_some()).then(|| Filter::between(field, min, max)))
}

/// `track_total_hits` as Elasticsearch reads it, with the default it has.
fn total(track_total_hits: Option<&Value>) -> Result<Total, ApiError> {
    let bound = match track_total_hits {
        None => return Ok(Total::UpTo(DEFAULT_TRACK_TOTAL_HITS)),
        Some(Value::Bool(true)) => return Ok(Total::Counted),
        Some(Value::Bool(false)) => return Ok(Total::NotNeeded),
        Some(Value::Number(n)) => n.as_u64(),
        Some(_) => None,
    };
    bound.map(Total::UpTo).ok_or_else(|| {
        let given = track_total_hits.map(Value::to_string).unwrap_or_default();
        ApiError::bad_request(
            "invalid_field",
            format!(
                "track_total_hits {given}: true (count every match), false (count none) or how \
                 many to count at most, a whole number from 0 (default {DEFAULT_TRACK_TOTAL_HITS})"
            ),
        )
        .field("track_total_hits")
    })
}

pub fn to_query(request: SearchRequest) -> Result<SearchQuery, ApiError> {
    let total = total(request.track_total_hits.as_ref())?;
    let text = request
        .query
        .as_deref()
        .map(text_query::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_query", format!("query: {e}")))?
        .flatten();
    let mut filters: Vec<Filter> = Vec::new();
    filters.extend(log_type_filter(request.log_type.as_deref())?);
    let exact = [
        (Field::Level, &request.level),
        (Field::Service, &request.service),
        (Field::Status, &request.status),
        (Field::PaymentMethod, &request.payment_method),
        (Field::UserId, &request.user_id),
    ];
    for (field, value) in exact {
        if let Some(value) = value {
            filters.push(Filter::Equals(field, value.clone()));
        }
    }
    if let Some(country) = &request.country {
        filters.push(Filter::AnyOf(vec![
            Filter::Equals(Field::Country, country.clone()),
            Filter::Equals(Field::GeoCountry, country.clone()),
        ]));
    }
    filters.extend(number_range(
        Field::Amount,
        ("min_amount", "max_amount"),
        request.min_amount,
        request.max_amount,
    )?);
    filters.extend(number_range(
        Field::FraudScore,
        ("min_fraud_score", "max_fraud_score"),
        request.min_fraud_score,
        request.max_fraud_score,
    )?);
    let (from_ms, to_ms) = window(request.from, request.to, request.range.as_deref())?;
    let sort = Sort {
        field: match request.sort.as_deref() {
            None | Some("@timestamp" | "timestamp") => SortField::Timestamp,
            Some(name) => match Field::from_path(name) {
                Some(field) if field.is_numeric() => SortField::Field(field),
                _ => {
                    return Err(invalid(format!(
                        "sort {name:?}: sort by @timestamp or a numeric field ({})",
                        Field::ALL
                            .iter()
                            .filter(|f| f.is_numeric())
                            .map(|f| f.path())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            },
        },
        descending: match request.order.as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(other) => return Err(invalid(format!("order {other:?}: use asc or desc"))),
        },
    };
    let size = size(request.size, DEFAULT_SEARCH_SIZE, MAX_SEARCH_SIZE)?;
    let offset = offset_within_window(request.offset, size)?;
    if offset > 0 && request.search_after.is_some() {
        return Err(invalid(
            "give either offset or search_after, not both".into(),
        ));
    }
    Ok(SearchQuery {
        text,
        filters,
        from_ms,
        to_ms,
        sort,
        search_after: request
            .search_after
            .map(|(value, id)| SortKey { value, id }),
        offset,
        size,
        total,
    })
}

/// An `offset` that keeps the page within the result window.
pub fn offset_within_window(offset: Option<i64>, size: usize) -> Result<usize, ApiError> {
    let offset = offset.unwrap_or(0);
    if offset < 0 || offset as u64 + size as u64 > MAX_RESULT_WINDOW as u64 {
        return Err(invalid(format!(
            "offset + size must stay within {MAX_RESULT_WINDOW} (got {offset} + {size}); page \
             deeper with search_after"
        )));
    }
    Ok(offset as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<SearchQuery, ApiError> {
        to_query(serde_json::from_str(json).expect("request parses"))
    }

    #[test]
    fn defaults_and_bounds() {
        let q = parse("{}").expect("valid");
        assert_eq!(q.size, DEFAULT_SEARCH_SIZE);
        assert_eq!(q.sort, Sort::default());
        let q = parse(
            r#"{"from":"2024-05-01T00:00:00Z","to":1714564800000,"size":5,"log_type":"error"}"#,
        )
        .expect("valid");
        assert_eq!(
            (q.from_ms, q.to_ms, q.size),
            (Some(1_714_521_600_000), Some(1_714_564_800_000), 5)
        );
        assert_eq!(q.filters, [Filter::Equals(Field::LogType, "error".into())]);
    }

    /// As Elasticsearch: up to 10,000 unless asked otherwise.
    #[test]
    fn totals_are_counted_as_track_total_hits_says() {
        let total = |json: &str| parse(json).expect("valid").total;
        assert_eq!(total("{}"), Total::UpTo(10_000));
        assert_eq!(total(r#"{"track_total_hits":true}"#), Total::Counted);
        assert_eq!(total(r#"{"track_total_hits":false}"#), Total::NotNeeded);
        assert_eq!(total(r#"{"track_total_hits":250}"#), Total::UpTo(250));
    }

    #[test]
    fn filters_sort_and_paging() {
        let q = parse(
            r#"{"query":"gateway OR payment_method:card","country":"DE","min_amount":10,
                "max_fraud_score":50,"sort":"amount","order":"asc","search_after":[12.5,"x"],
                "size":3}"#,
        )
        .expect("valid");
        assert!(q.text.is_some());
        assert_eq!(q.filters.len(), 3);
        assert_eq!(q.sort.field, SortField::Field(Field::Amount));
        assert!(!q.sort.descending);
        assert_eq!(q.search_after.map(|k| k.id), Some("x".into()));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let message = |json: &str| parse(json).expect_err("refused").message;
        assert!(message(r#"{"log_type":"audit"}"#).contains("audit"));
        assert!(message(r#"{"size":100000}"#).contains("10000"));
        assert!(
            message(r#"{"from":"2024-05-02T00:00:00Z","to":"2024-05-01T00:00:00Z"}"#)
                .contains("after")
        );
        assert!(message(r#"{"from":"soon"}"#).starts_with("from"));
        assert!(message(r#"{"query":"\"open"}"#).contains("never closed"));
        assert!(message(r#"{"min_amount":5,"max_amount":1}"#).contains("min_amount"));
        assert!(message(r#"{"sort":"service"}"#).contains("numeric"));
        assert!(message(r#"{"order":"up"}"#).contains("asc"));
        assert!(message(r#"{"offset":9995,"size":10}"#).contains("search_after"));
        assert!(message(r#"{"offset":5,"search_after":[1,"a"]}"#).contains("not both"));
        assert!(message(r#"{"range":"2w"}"#).contains("quick range"));
        for bad in ["-1", "2.5", "\"all\"", "[]"] {
            let refused = parse(&format!(r#"{{"track_total_hits":{bad}}}"#)).expect_err(bad);
            assert_eq!(refused.field, Some("track_total_hits"), "{bad}");
            assert!(refused.message.contains("whole number"), "{bad}");
        }
        let unknown: Result<SearchRequest, _> = serde_json::from_str(r#"{"qeury":"x"}"#);
        assert!(
            unknown
                .expect_err("unknown field")
                .to_string()
                .contains("qeury")
        );
    }
}
