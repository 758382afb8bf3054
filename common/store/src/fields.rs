//! The document fields searches filter, sort and aggregate on, named once for both stores.
//!
//! Elasticsearch reads them from the document by their path (the index template types them);
//! tantivy copies them out of the document into typed fast fields when it indexes. Naming them
//! in one table keeps the two in step: a field added here is filterable and aggregatable in both,
//! and the query syntax and the API accept exactly these names.

use std::fmt;

/// How a field is indexed: exact text, a number or a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Keyword,
    Double,
    Long,
    Boolean,
}

macro_rules! fields {
    ($($variant:ident => $path:literal, $kind:ident;)*) => {
        /// A document field the stores index for filters, sorting and aggregations.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field {
            $($variant,)*
        }

        impl Field {
            pub const ALL: &'static [Field] = &[$(Field::$variant,)*];

            /// The field's path in the document, as Elasticsearch and the API name it.
            pub fn path(self) -> &'static str {
                match self {
                    $(Field::$variant => $path,)*
                }
            }

            pub fn kind(self) -> FieldKind {
                match self {
                    $(Field::$variant => FieldKind::$kind,)*
                }
            }
        }
    };
}

fields! {
    DocumentId => "ingest.id", Keyword;
    LogType => "log_type", Keyword;
    Level => "level", Keyword;
    Service => "service", Keyword;
    UserId => "user_id", Keyword;
    Ip => "ip", Keyword;
    TransactionId => "transaction_id", Keyword;
    PaymentMethod => "payment_method", Keyword;
    Status => "status", Keyword;
    Currency => "currency", Keyword;
    ProductId => "product_id", Keyword;
    ProductName => "product_name", Keyword;
    Category => "category", Keyword;
    Country => "country", Keyword;
    ErrorCode => "error_code", Keyword;
    ErrorType => "error_type", Keyword;
    Endpoint => "endpoint", Keyword;
    Action => "action", Keyword;
    Page => "page", Keyword;
    SessionId => "session_id", Keyword;
    StatusCode => "status_code", Long;
    Quantity => "quantity", Long;
    Amount => "amount", Double;
    ResponseTime => "response_time", Double;
    DbQueryTime => "db_query_time", Double;
    GeoCountry => "geo.country_iso_code", Keyword;
    FraudScore => "fraud.score", Double;
    FraudDetected => "fraud.detected", Boolean;
    FraudIndicators => "fraud.indicators", Keyword;
}

impl Field {
    /// The field with this document path.
    pub fn from_path(path: &str) -> Option<Field> {
        Field::ALL.iter().copied().find(|f| f.path() == path)
    }

    /// The field's name in tantivy, where a dot would read as a JSON path.
    pub fn tantivy_name(self) -> String {
        self.path().replace('.', "_")
    }

    pub fn is_numeric(self) -> bool {
        matches!(self.kind(), FieldKind::Double | FieldKind::Long)
    }

    /// Every field path, for error messages that list what may be used.
    pub fn paths() -> String {
        Field::ALL
            .iter()
            .map(|f| f.path())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// Reads a field's values out of a parsed document, as the index template would type them:
/// numbers from numbers or numeric text (Elasticsearch coerces both), keywords from text or
/// numbers, each element of an array. Values of another type are skipped, as
/// `ignore_malformed` would.
pub fn values_in(document: &serde_json::Value, field: Field) -> Vec<FieldValue> {
    let mut node = document;
    for part in field.path().split('.') {
        match node.get(part) {
            Some(next) => node = next,
            None => return Vec::new(),
        }
    }
    let mut out = Vec::new();
    match node {
        serde_json::Value::Array(items) => {
            for item in items {
                out.extend(typed(item, field.kind()));
            }
        }
        single => out.extend(typed(single, field.kind())),
    }
    out
}

/// One value of a [`Field`], typed by its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Keyword(String),
    Double(f64),
    Long(i64),
    Boolean(bool),
}

fn typed(value: &serde_json::Value, kind: FieldKind) -> Option<FieldValue> {
    use serde_json::Value;
    match (kind, value) {
        (FieldKind::Keyword, Value::String(text)) => Some(FieldValue::Keyword(text.clone())),
        (FieldKind::Keyword, Value::Number(n)) => Some(FieldValue::Keyword(n.to_string())),
        (FieldKind::Keyword, Value::Bool(b)) => Some(FieldValue::Keyword(b.to_string())),
        (FieldKind::Double, Value::Number(n)) => n.as_f64().map(FieldValue::Double),
        (FieldKind::Double, Value::String(text)) => {
            text.trim().parse().ok().map(FieldValue::Double)
        }
        (FieldKind::Long, Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.trunc() as i64)
            })
            .map(FieldValue::Long),
        (FieldKind::Long, Value::String(text)) => text.trim().parse().ok().map(FieldValue::Long),
        (FieldKind::Boolean, Value::Bool(b)) => Some(FieldValue::Boolean(*b)),
        (FieldKind::Boolean, Value::String(text)) => match text.as_str() {
            "true" => Some(FieldValue::Boolean(true)),
            "false" => Some(FieldValue::Boolean(false)),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_tantivy_names_are_unique() {
        let mut paths: Vec<_> = Field::ALL.iter().map(|f| f.path()).collect();
        let mut names: Vec<_> = Field::ALL.iter().map(|f| f.tantivy_name()).collect();
        paths.sort_unstable();
        names.sort_unstable();
        paths.dedup();
        names.dedup();
        assert_eq!(paths.len(), Field::ALL.len());
        assert_eq!(names.len(), Field::ALL.len());
        assert_eq!(Field::from_path("fraud.score"), Some(Field::FraudScore));
        assert_eq!(Field::from_path("fraud"), None);
    }

    #[test]
    fn values_are_typed_as_the_template_types_them() {
        let document = json!({
            "amount": "12.5", "quantity": 3.9, "status_code": 503, "status": 7,
            "fraud": { "score": 80, "detected": true, "indicators": ["high_amount", 4, "ip_mismatch"] },
            "geo": { "country_iso_code": "DE" },
            "response_time": "slow",
        });
        assert_eq!(
            values_in(&document, Field::Amount),
            [FieldValue::Double(12.5)]
        );
        assert_eq!(values_in(&document, Field::Quantity), [FieldValue::Long(3)]);
        assert_eq!(
            values_in(&document, Field::Status),
            [FieldValue::Keyword("7".into())]
        );
        assert_eq!(
            values_in(&document, Field::FraudIndicators),
            [
                FieldValue::Keyword("high_amount".into()),
                FieldValue::Keyword("4".into()),
                FieldValue::Keyword("ip_mismatch".into())
            ]
        );
        assert_eq!(
            values_in(&document, Field::FraudDetected),
            [FieldValue::Boolean(true)]
        );
        assert_eq!(
            values_in(&document, Field::GeoCountry),
            [FieldValue::Keyword("DE".into())]
        );
        assert!(values_in(&document, Field::ResponseTime).is_empty());
        assert!(values_in(&document, Field::UserId).is_empty());
    }
}
