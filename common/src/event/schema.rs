//! The fields Sluice knows, their types and which log types require them. One table drives
//! validation, CSV typing (a CSV cell is text; the table says what it should become) and docs.

use super::LogType;

/// The JSON type a known field must have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldKind {
    Text,
    /// A number; `min`/`max` bound it where a bound makes sense (amounts are never negative).
    Number {
        min: Option<f64>,
        max: Option<f64>,
    },
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Bool,
    /// Text that must parse as an IPv4 or IPv6 address.
    Ip,
    /// RFC 3339 text or epoch milliseconds.
    Timestamp,
    /// Text or an integer: error codes come as `"E1042"` from some services and `500` from others.
    Code,
    /// An array of text (fraud indicators detected upstream).
    TextList,
}

#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: FieldKind,
    /// Log types for which a missing value is an error.
    pub required_by: &'static [LogType],
}

use FieldKind::*;
use LogType::*;

const NON_NEGATIVE: FieldKind = Number {
    min: Some(0.0),
    max: None,
};

/// Every known field. Fields not listed here are kept as they come, bounded only in size.
pub const FIELDS: &[FieldSpec] = &[
    spec(
        "log_type",
        Text,
        &[Transaction, Error, UserBehavior, Performance, Fraud],
    ),
    spec("timestamp", Timestamp, &[]),
    spec("@timestamp", Timestamp, &[]),
    spec("event_id", Text, &[]),
    spec("level", Text, &[]),
    spec("service", Text, &[]),
    spec("message", Text, &[]),
    spec("ip", Ip, &[]),
    spec("user_id", Code, &[Transaction, UserBehavior]),
    // transaction
    spec("transaction_id", Code, &[Transaction, Fraud]),
    spec("amount", NON_NEGATIVE, &[Transaction]),
    spec("currency", Text, &[]),
    spec("payment_method", Text, &[]),
    spec("status", Text, &[]),
    spec("product_id", Code, &[]),
    spec("product_name", Text, &[]),
    spec("category", Text, &[]),
    spec(
        "quantity",
        Integer {
            min: Some(0),
            max: None,
        },
        &[],
    ),
    spec("country", Text, &[]),
    // error
    spec("error_code", Code, &[]),
    spec("error_type", Text, &[]),
    spec("error_message", Text, &[Error]),
    spec("endpoint", Text, &[Performance]),
    // user_behavior
    spec("action", Text, &[UserBehavior]),
    spec("page", Text, &[]),
    spec("session_id", Code, &[]),
    // performance
    spec("response_time", NON_NEGATIVE, &[Performance]),
    spec("db_query_time", NON_NEGATIVE, &[]),
    spec(
        "status_code",
        Integer {
            min: Some(100),
            max: Some(599),
        },
        &[],
    ),
    // fraud (detections made upstream)
    spec(
        "fraud_score",
        Number {
            min: Some(0.0),
            max: Some(100.0),
        },
        &[Fraud],
    ),
    spec("fraud_detected", Bool, &[]),
    spec("indicators", TextList, &[]),
];

const fn spec(name: &'static str, kind: FieldKind, required_by: &'static [LogType]) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required_by,
    }
}

/// The spec of a known field, if it is one.
pub fn field(name: &str) -> Option<&'static FieldSpec> {
    FIELDS.iter().find(|f| f.name == name)
}

/// Fields Sluice writes itself; a producer sending them would be overwritten, so they are refused.
pub const RESERVED: &[&str] = &["geo", "fraud", "ingest", "_id"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_log_type_requires_log_type() {
        let spec = field("log_type").expect("log_type is known");
        assert_eq!(spec.required_by.len(), LogType::ALL.len());
    }

    #[test]
    fn field_names_are_unique() {
        let mut names: Vec<_> = FIELDS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn unknown_field_has_no_spec() {
        assert!(field("coupon_code").is_none());
    }
}
