//! Validation of one record against the event model: the same rules at ingest (answered to the
//! producer, record by record) and in the processor (for records that reached the queue another
//! way; failures are dead-lettered). Every problem names the field and says what is wrong.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
pub use simd_json::Buffers;
use simd_json::Tape;
use simd_json::prelude::*;

/// A parsed record, read straight off simd-json's tape: no tree of nodes is allocated.
pub type Record<'tape, 'input> = simd_json::value::tape::Value<'tape, 'input>;

use crate::schema::{self, FieldKind, Role};
use crate::{LogType, MAX_EVENT_ID_BYTES, check_epoch_ms_value, parse_timestamp};

mod escapes;
mod keys;
mod parse_errors;
mod paths;
mod simd_gaps;

pub use escapes::repair_lone_surrogates;

/// Why a record was refused: a small closed set, used as the `reason` label of the rejection
/// metrics (so its cardinality stays bounded) and as `code` in error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    MalformedJson,
    MalformedCsv,
    InvalidEncoding,
    NotAnObject,
    TooDeep,
    Oversized,
    MissingField,
    WrongType,
    InvalidValue,
    UnknownLogType,
    InvalidIp,
    InvalidTimestamp,
    FutureTimestamp,
    ReservedField,
    DuplicateField,
    InvalidFieldName,
    ConflictingTypes,
    NumberOutOfRange,
    /// The event store refused the document (a dead letter of stage `index`).
    StoreRefused,
    /// Processing the record failed inside Sluice (a bug; a dead letter of stage `process`).
    ProcessingFailed,
}

impl RejectCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::MalformedJson => "malformed_json",
            RejectCode::MalformedCsv => "malformed_csv",
            RejectCode::InvalidEncoding => "invalid_encoding",
            RejectCode::NotAnObject => "not_an_object",
            RejectCode::TooDeep => "too_deep",
            RejectCode::Oversized => "oversized",
            RejectCode::MissingField => "missing_field",
            RejectCode::WrongType => "wrong_type",
            RejectCode::InvalidValue => "invalid_value",
            RejectCode::UnknownLogType => "unknown_log_type",
            RejectCode::InvalidIp => "invalid_ip",
            RejectCode::InvalidTimestamp => "invalid_timestamp",
            RejectCode::FutureTimestamp => "future_timestamp",
            RejectCode::ReservedField => "reserved_field",
            RejectCode::DuplicateField => "duplicate_field",
            RejectCode::InvalidFieldName => "invalid_field_name",
            RejectCode::ConflictingTypes => "conflicting_types",
            RejectCode::NumberOutOfRange => "number_out_of_range",
            RejectCode::StoreRefused => "store_refused",
            RejectCode::ProcessingFailed => "processing_failed",
        }
    }
}

/// One problem with one field of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldIssue {
    /// The field at fault; empty when the record as a whole is (malformed JSON, too large).
    pub field: String,
    pub code: RejectCode,
    pub reason: String,
}

impl FieldIssue {
    pub fn new(field: &str, code: RejectCode, reason: impl Into<String>) -> Self {
        FieldIssue {
            field: field.to_owned(),
            code,
            reason: reason.into(),
        }
    }

    pub fn whole_record(code: RejectCode, reason: impl Into<String>) -> Self {
        FieldIssue::new("", code, reason)
    }

    /// Ties the issue to its record number (1-based, in the order the producer sent them).
    pub fn at(self, record: usize) -> RecordError {
        RecordError {
            record,
            field: self.field,
            code: self.code,
            reason: self.reason,
        }
    }
}

/// A field issue tied to its record, as answered to producers: `{record, field, code, reason}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordError {
    /// 1-based: the array position, NDJSON line, CSV data row or bulk item.
    pub record: usize,
    pub field: String,
    pub code: RejectCode,
    pub reason: String,
}

/// Bounds on what one record may be. Defaults suit e-commerce logs; all are configurable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest record, in bytes of JSON.
    pub max_record_bytes: usize,
    /// Longest text value of any top-level field.
    pub max_field_bytes: usize,
    /// Deepest nesting of arrays and objects, checked before parsing.
    pub max_depth: usize,
    /// Deepest nesting of objects, the record itself counting as one (Elasticsearch's
    /// `index.mapping.depth.limit`).
    pub max_object_depth: usize,
    /// Most field names in one record, nested ones included (Elasticsearch's
    /// `index.mapping.total_fields.limit`).
    pub max_fields: usize,
    /// How far ahead of the receive time an event may claim to be, in milliseconds.
    pub max_future_skew_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: 1024 * 1024,
            max_field_bytes: 32 * 1024,
            max_depth: 32,
            max_object_depth: 20,
            max_fields: 1_000,
            max_future_skew_ms: 24 * 60 * 60 * 1000,
        }
    }
}

/// The typed view of a valid record: what the fraud engine, GeoIP and the stores need, read in
/// the same pass that validates, borrowed from the parsed record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidEvent<'v> {
    pub log_type: Option<LogType>,
    /// Event time: the record's timestamp, or its receive time when it had none.
    pub event_time_ms: i64,
    pub ip: Option<IpAddr>,
    pub user_id: Option<Cow<'v, str>>,
    pub amount: Option<f64>,
    pub event_id: Option<&'v str>,
    pub status: Option<&'v str>,
    pub action: Option<&'v str>,
    /// The billing country the customer declared.
    pub country: Option<&'v str>,
    pub level: Option<&'v str>,
    pub service: Option<&'v str>,
    pub message: Option<&'v str>,
    pub error_message: Option<&'v str>,
}

impl ValidEvent<'_> {
    /// The log type; always set on an event [`validate`] accepted.
    pub fn log_type(&self) -> LogType {
        self.log_type.unwrap_or(LogType::Error)
    }
}

/// A record parsed for validation.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub tape: Tape<'a>,
    /// Lone surrogate escapes replaced by `\ufffd` before parsing (see [`repair_lone_surrogates`]).
    pub repaired: usize,
}

/// Parses one record's bytes into a JSON object, after checking the bounds that protect the
/// parser itself. `original` is copied into `scratch` (simd-json parses in place) and lone
/// surrogate escapes in it are made U+FFFD first.
pub fn parse_record<'a>(
    original: &[u8],
    scratch: &'a mut Vec<u8>,
    limits: &Limits,
) -> Result<Parsed<'a>, FieldIssue> {
    parse_record_with(original, scratch, limits, &mut Buffers::default())
}

/// [`parse_record`] reusing the parser's scratch buffers, for loops over many records.
pub fn parse_record_with<'a>(
    original: &[u8],
    scratch: &'a mut Vec<u8>,
    limits: &Limits,
    buffers: &mut Buffers,
) -> Result<Parsed<'a>, FieldIssue> {
    if original.len() > limits.max_record_bytes {
        return Err(FieldIssue::whole_record(
            RejectCode::Oversized,
            format!(
                "record is {} bytes, the limit is {}",
                original.len(),
                limits.max_record_bytes
            ),
        ));
    }
    check_nesting(original, limits)?;
    simd_gaps::check(original)?;
    parse_object(original, scratch, buffers)
}

/// Parses a record that Sluice's ingest validated before it queued it (a WAL record): its
/// bytes passed [`parse_record`]'s checks and [`validate`] then, so only the nesting bound is
/// checked again, as insurance for what walks the parsed record. A record that does not parse
/// is refused as [`parse_record`] would refuse it.
pub fn parse_validated_record<'a>(
    original: &[u8],
    scratch: &'a mut Vec<u8>,
    limits: &Limits,
    buffers: &mut Buffers,
) -> Result<Parsed<'a>, FieldIssue> {
    check_nesting(original, limits)?;
    parse_object(original, scratch, buffers)
}

/// Refuses a record that nests deeper than the limit.
fn check_nesting(original: &[u8], limits: &Limits) -> Result<(), FieldIssue> {
    if count_opening(original) > limits.max_depth
        && exact_nesting_depth(original) > limits.max_depth
    {
        return Err(FieldIssue::whole_record(
            RejectCode::TooDeep,
            format!("record nests deeper than {} levels", limits.max_depth),
        ));
    }
    Ok(())
}

/// Copies `original` into `scratch`, repairs lone surrogates there and parses it: the object, or
/// why it is none.
fn parse_object<'a>(
    original: &[u8],
    scratch: &'a mut Vec<u8>,
    buffers: &mut Buffers,
) -> Result<Parsed<'a>, FieldIssue> {
    scratch.clear();
    scratch.extend_from_slice(original);
    let repaired = repair_lone_surrogates(scratch);
    let tape = match simd_json::to_tape_with_buffers(scratch, buffers) {
        Ok(tape) => tape,
        Err(e) => {
            // The slow path: read the original again to say why, in the producer's terms.
            let mut copy = original.to_vec();
            repair_lone_surrogates(&mut copy);
            return Err(parse_errors::explain(&copy, &e.to_string()));
        }
    };
    let root = tape.as_value();
    if !root.is_object() {
        return Err(FieldIssue::whole_record(
            RejectCode::NotAnObject,
            format!("a record must be a JSON object, got {}", type_name(root)),
        ));
    }
    Ok(Parsed { tape, repaired })
}

/// Deepest bracket nesting outside strings. Checked before parsing so a hostile record like
/// `[[[[…` cannot exhaust the stack of the code that later walks or drops the parsed value.
pub fn nesting_depth(bytes: &[u8]) -> usize {
    // Depth never exceeds the number of opening brackets; counting them vectorises, and most
    // records have only a handful, so the exact scan below rarely runs.
    let opening = count_opening(bytes);
    if opening <= 1 {
        return opening;
    }
    exact_nesting_depth(bytes)
}

/// Opening brackets in `bytes`, strings included. Counted in byte-wide lanes, 255 bytes at a
/// time so no lane overflows: a sum in `usize` lanes took eight times the instructions.
fn count_opening(bytes: &[u8]) -> usize {
    bytes
        .chunks(usize::from(u8::MAX))
        .map(|chunk| {
            let in_chunk = chunk.iter().fold(0u8, |count, &b| {
                count + u8::from(b == b'[') + u8::from(b == b'{')
            });
            usize::from(in_chunk)
        })
        .sum()
}

/// The bytes of `bytes` that are not inside a JSON string, with their positions; the quotes
/// that open and close strings are among them.
pub(crate) fn outside_strings(bytes: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    bytes.iter().enumerate().filter_map(move |(at, &b)| {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    in_string = false;
                    return Some((at, b));
                }
                _ => {}
            }
            return None;
        }
        in_string = b == b'"';
        Some((at, b))
    })
}

fn exact_nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for (_, b) in outside_strings(bytes) {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Checks a parsed record against the event model, in one pass over its fields. `received_at_ms`
/// stands in for a missing timestamp and anchors the "too far in the future" rule.
pub fn validate<'v>(
    record: Record<'_, 'v>,
    received_at_ms: i64,
    limits: &Limits,
) -> Result<ValidEvent<'v>, Vec<FieldIssue>> {
    let mut issues = Vec::new();
    let Some(object) = record.as_object() else {
        return Err(vec![FieldIssue::whole_record(
            RejectCode::NotAnObject,
            "a record must be a JSON object",
        )]);
    };

    issues.extend(keys::check(record, limits));
    let mut reading = Reading::default();
    let mut present = 0u64;
    for (key, value) in object.iter() {
        if schema::is_reserved(key) {
            issues.push(FieldIssue::new(
                key,
                RejectCode::ReservedField,
                format!("`{key}` is written by Sluice and cannot be sent"),
            ));
            continue;
        }
        // `into_string` borrows from the input, so the text outlives this loop.
        let text = value.into_string();
        if let Some(text) = text
            && text.len() > limits.max_field_bytes
        {
            issues.push(FieldIssue::new(
                key,
                RejectCode::Oversized,
                format!(
                    "value is {} bytes, the limit is {}",
                    text.len(),
                    limits.max_field_bytes
                ),
            ));
            continue;
        }
        let Some(known) = schema::lookup(key) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        if let Err(issue) = check_kind(key, known.spec.kind, value) {
            issues.push(issue);
            continue;
        }
        if text.is_none_or(|t| !t.trim().is_empty()) {
            present |= 1 << known.index;
        }
        reading.take(known.role, value, text);
    }
    let Reading {
        mut event,
        log_type: log_type_value,
        timestamp,
        at_timestamp,
    } = reading;

    if present & 1 << LOG_TYPE_INDEX.index == 0 && !issues.iter().any(|i| i.field == "log_type") {
        issues.push(FieldIssue::new(
            "log_type",
            RejectCode::MissingField,
            "log_type is required (transaction, error, user_behavior, performance, fraud)",
        ));
    }
    if let Some(text) = log_type_value {
        match text.parse::<LogType>() {
            Ok(log_type) => event.log_type = Some(log_type),
            Err(()) => issues.push(FieldIssue::new(
                "log_type",
                RejectCode::UnknownLogType,
                format!(
                    "unknown log_type {:?}; expected one of transaction, error, user_behavior, \
                     performance, fraud",
                    text.chars().take(64).collect::<String>()
                ),
            )),
        }
    }

    if let Some(log_type) = event.log_type {
        for known in schema::required(log_type) {
            let reported = issues.iter().any(|i| i.field == known.spec.name);
            if present & 1 << known.index == 0 && !reported {
                issues.push(FieldIssue::new(
                    known.spec.name,
                    RejectCode::MissingField,
                    format!("{} is required for {log_type} logs", known.spec.name),
                ));
            }
        }
    }

    let (stated, field) = stated_time(timestamp, at_timestamp);
    event.event_time_ms = match stated {
        Some(ms) if ms > received_at_ms.saturating_add(limits.max_future_skew_ms) => {
            issues.push(FieldIssue::new(
                field,
                RejectCode::FutureTimestamp,
                format!(
                    "timestamp is {} s ahead of the receive time; at most {} s is allowed",
                    (ms - received_at_ms) / 1000,
                    limits.max_future_skew_ms / 1000
                ),
            ));
            received_at_ms
        }
        Some(ms) => ms,
        None => received_at_ms,
    };

    if issues.is_empty() && event.log_type.is_some() {
        Ok(event)
    } else {
        Err(issues)
    }
}

/// What one pass over a record's fields gathers for its [`ValidEvent`]: the same reading for a
/// record being validated and for one validated before ([`read_validated`]).
#[derive(Default)]
struct Reading<'t, 'v> {
    event: ValidEvent<'v>,
    log_type: Option<&'v str>,
    timestamp: Option<Record<'t, 'v>>,
    at_timestamp: Option<Record<'t, 'v>>,
}

impl<'t, 'v> Reading<'t, 'v> {
    /// Keeps what the field of `role` says; `text` is its value when that is text.
    fn take(&mut self, role: Role, value: Record<'t, 'v>, text: Option<&'v str>) {
        let event = &mut self.event;
        match role {
            Role::LogType => self.log_type = text,
            Role::Timestamp => self.timestamp = Some(value),
            Role::AtTimestamp => self.at_timestamp = Some(value),
            Role::EventId => event.event_id = text,
            Role::Ip => event.ip = text.and_then(|t| t.trim().parse().ok()),
            Role::UserId => event.user_id = code_text(value),
            Role::Amount => event.amount = value.cast_f64(),
            Role::Status => event.status = text,
            Role::Action => event.action = text,
            Role::Country => event.country = text,
            Role::Level => event.level = text,
            Role::Service => event.service = text,
            Role::Message => event.message = text,
            Role::ErrorMessage => event.error_message = text,
            Role::Other => {}
        }
    }
}

/// The time a record states, `timestamp` before `@timestamp`, and the field it came from.
fn stated_time(
    timestamp: Option<Record<'_, '_>>,
    at_timestamp: Option<Record<'_, '_>>,
) -> (Option<i64>, &'static str) {
    match (timestamp, at_timestamp) {
        (Some(value), _) => (timestamp_ms(value).ok(), "timestamp"),
        (None, Some(value)) => (timestamp_ms(value).ok(), "@timestamp"),
        (None, None) => (None, "timestamp"),
    }
}

/// The [`ValidEvent`] of a record [`validate`] accepted before (at ingest, before it was
/// queued), read without checking it again: the same event `validate` gives for it.
pub fn read_validated<'v>(
    record: Record<'_, 'v>,
    received_at_ms: i64,
    limits: &Limits,
) -> ValidEvent<'v> {
    let mut reading = Reading::default();
    if let Some(object) = record.as_object() {
        for (key, value) in object.iter() {
            if value.is_null() {
                continue;
            }
            if let Some(known) = schema::lookup(key) {
                reading.take(known.role, value, value.into_string());
            }
        }
    }
    let mut event = reading.event;
    event.log_type = reading.log_type.and_then(|text| text.parse().ok());
    event.event_time_ms = match stated_time(reading.timestamp, reading.at_timestamp).0 {
        // Refused by `validate`; read as it reads it.
        Some(ms) if ms > received_at_ms.saturating_add(limits.max_future_skew_ms) => received_at_ms,
        Some(ms) => ms,
        None => received_at_ms,
    };
    event
}

/// Where `log_type` sits in the field table.
static LOG_TYPE_INDEX: std::sync::LazyLock<schema::Known> = std::sync::LazyLock::new(|| {
    schema::lookup("log_type").unwrap_or_else(|| unreachable!("log_type is in the field table"))
});

fn timestamp_ms(value: Record<'_, '_>) -> Result<i64, String> {
    if let Some(text) = value.as_str() {
        return parse_timestamp(text).map_err(|e| e.to_string());
    }
    if let Some(ms) = value.as_i64() {
        return check_epoch_ms_value(ms).map_err(|e| e.to_string());
    }
    Err(format!(
        "expected RFC 3339 text or epoch milliseconds, got {}",
        type_name(value)
    ))
}

/// Text of a field that may be text or an integer (`user_id`, `error_code`, …).
pub fn code_text<'v>(value: Record<'_, 'v>) -> Option<Cow<'v, str>> {
    if let Some(text) = value.into_string() {
        return Some(Cow::Borrowed(text));
    }
    if let Some(i) = value.as_i64() {
        return Some(Cow::Owned(i.to_string()));
    }
    value.as_u64().map(|u| Cow::Owned(u.to_string()))
}

fn check_kind(key: &str, kind: FieldKind, value: Record<'_, '_>) -> Result<(), FieldIssue> {
    let wrong_type = |expected: &str| {
        FieldIssue::new(
            key,
            RejectCode::WrongType,
            format!("expected {expected}, got {}", type_name(value)),
        )
    };
    match kind {
        FieldKind::Text => {
            value.as_str().ok_or_else(|| wrong_type("text"))?;
            if key == "event_id" && value.as_str().is_some_and(|s| s.len() > MAX_EVENT_ID_BYTES) {
                return Err(FieldIssue::new(
                    key,
                    RejectCode::Oversized,
                    format!("event_id is longer than {MAX_EVENT_ID_BYTES} bytes"),
                ));
            }
        }
        FieldKind::Code => {
            if code_text(value).is_none() {
                return Err(wrong_type("text or an integer"));
            }
        }
        FieldKind::Number { min, max } => {
            let n = value
                .cast_f64()
                .filter(|_| value.is_number())
                .ok_or_else(|| wrong_type("a number"))?;
            check_bounds(key, n, min, max)?;
        }
        FieldKind::Integer { min, max } => {
            let n = match value.as_i64() {
                Some(n) => n as f64,
                // A whole number beyond 64 bits is an integer, only out of range.
                None => value
                    .as_f64()
                    .filter(|n| n.fract() == 0.0)
                    .ok_or_else(|| wrong_type("an integer"))?,
            };
            check_bounds(key, n, min.map(|m| m as f64), max.map(|m| m as f64))?;
        }
        FieldKind::Bool => {
            value.as_bool().ok_or_else(|| wrong_type("true or false"))?;
        }
        FieldKind::Ip => {
            let text = value
                .as_str()
                .ok_or_else(|| wrong_type("an IP address as text"))?;
            text.trim().parse::<IpAddr>().map_err(|_| {
                FieldIssue::new(
                    key,
                    RejectCode::InvalidIp,
                    format!(
                        "{:?} is not an IPv4 or IPv6 address",
                        text.chars().take(64).collect::<String>()
                    ),
                )
            })?;
        }
        FieldKind::Timestamp => {
            timestamp_ms(value)
                .map_err(|reason| FieldIssue::new(key, RejectCode::InvalidTimestamp, reason))?;
        }
        FieldKind::TextList => {
            let ok = value
                .as_array()
                .is_some_and(|items| items.iter().all(|i| i.as_str().is_some()));
            if !ok {
                return Err(wrong_type("an array of text"));
            }
        }
    }
    Ok(())
}

fn check_bounds(key: &str, n: f64, min: Option<f64>, max: Option<f64>) -> Result<(), FieldIssue> {
    if !n.is_finite() {
        return Err(FieldIssue::new(
            key,
            RejectCode::InvalidValue,
            "must be finite",
        ));
    }
    if let Some(min) = min
        && n < min
    {
        return Err(FieldIssue::new(
            key,
            RejectCode::InvalidValue,
            format!("must be at least {min}, got {n}"),
        ));
    }
    if let Some(max) = max
        && n > max
    {
        return Err(FieldIssue::new(
            key,
            RejectCode::InvalidValue,
            format!("must be at most {max}, got {n}"),
        ));
    }
    Ok(())
}

fn type_name(value: Record<'_, '_>) -> &'static str {
    match value.value_type() {
        ValueType::Null => "null",
        ValueType::Bool => "a boolean",
        ValueType::String => "text",
        ValueType::Array => "an array",
        ValueType::Object => "an object",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests;
