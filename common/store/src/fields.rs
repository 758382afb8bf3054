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

            /// The field with this document path.
            pub fn from_path(path: &str) -> Option<Field> {
                match path {
                    $($path => Some(Field::$variant),)*
                    _ => None,
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
    /// Where the field sits in [`Field::ALL`], for tables indexed by field.
    pub fn index(self) -> usize {
        self as usize
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

/// A JSON scalar as field typing sees it, whichever parser read it: the processor reads
/// records off simd-json's tape, tests and tools read documents with serde_json, and both must
/// type a value the same way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JsonScalar<'a> {
    Text(&'a str),
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    Float(f64),
    Bool(bool),
}

/// One typed value of a [`Field`], borrowed from the [`FieldValues`] that hold it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Keyword(&'a str),
    Double(f64),
    Long(i64),
    Boolean(bool),
}

/// Where a value sits: keyword text lives in the shared buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Keyword { start: u32, end: u32 },
    Double(f64),
    Long(i64),
    Boolean(bool),
}

/// The typed values a document has for each [`Field`], as the index template types them:
/// what a store indexes without reading the document again. The processor fills them from the
/// record it already parsed; [`FieldValues::of_document`] reads them out of a JSON document, the
/// reference the processor's reading is tested against. Keyword text shares one buffer, so a
/// document's values cost two allocations however many there are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldValues {
    text: String,
    values: Vec<(Field, Slot)>,
}

impl FieldValues {
    pub fn with_capacity(values: usize, text_bytes: usize) -> FieldValues {
        FieldValues {
            text: String::with_capacity(text_bytes),
            values: Vec::with_capacity(values),
        }
    }

    /// Empties it, keeping its buffers for the next document's values.
    pub fn clear(&mut self) {
        self.text.clear();
        self.values.clear();
    }

    /// Adds one value, already of `field`'s kind.
    pub fn push(&mut self, field: Field, value: FieldValue<'_>) {
        let slot = match value {
            FieldValue::Keyword(text) => {
                return self.push_keyword_with(field, |buffer| buffer.push_str(text));
            }
            FieldValue::Double(number) => Slot::Double(number),
            FieldValue::Long(number) => Slot::Long(number),
            FieldValue::Boolean(flag) => Slot::Boolean(flag),
        };
        self.values.push((field, slot));
    }

    /// Adds a keyword whose text `write` appends to the buffer (a number's digits, say).
    fn push_keyword_with(&mut self, field: Field, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        write(&mut self.text);
        // Documents are bounded far below 4 GiB (`ingest.max_record_bytes`).
        let (start, end) = (start as u32, self.text.len() as u32);
        self.values.push((field, Slot::Keyword { start, end }));
    }

    /// Adds `value` as `field`'s kind types it: numbers from numbers or numeric text
    /// (Elasticsearch coerces both), keywords from text, numbers or flags. A value of another
    /// type is skipped, as `ignore_malformed` would.
    pub fn push_json(&mut self, field: Field, value: JsonScalar<'_>) {
        match (field.kind(), value) {
            // Levels match in any case (the template's lowercase normalizer).
            (FieldKind::Keyword, JsonScalar::Text(text))
                if field == Field::Level && !crate::is_normalized_level(text) =>
            {
                self.push(field, FieldValue::Keyword(&crate::normalize_level(text)))
            }
            (FieldKind::Keyword, JsonScalar::Text(text)) => {
                self.push(field, FieldValue::Keyword(text))
            }
            (FieldKind::Keyword, JsonScalar::Int(n)) => self.push_keyword_with(field, |buffer| {
                buffer.push_str(itoa::Buffer::new().format(n))
            }),
            (FieldKind::Keyword, JsonScalar::UInt(n)) => self.push_keyword_with(field, |buffer| {
                buffer.push_str(itoa::Buffer::new().format(n))
            }),
            (FieldKind::Keyword, JsonScalar::Float(n)) if n.is_finite() => self
                .push_keyword_with(field, |buffer| {
                    buffer.push_str(ryu::Buffer::new().format_finite(n))
                }),
            (FieldKind::Keyword, JsonScalar::Bool(flag)) => self.push(
                field,
                FieldValue::Keyword(if flag { "true" } else { "false" }),
            ),
            (FieldKind::Double, JsonScalar::Int(n)) => {
                self.push(field, FieldValue::Double(n as f64))
            }
            (FieldKind::Double, JsonScalar::UInt(n)) => {
                self.push(field, FieldValue::Double(n as f64))
            }
            (FieldKind::Double, JsonScalar::Float(n)) => self.push(field, FieldValue::Double(n)),
            (FieldKind::Double, JsonScalar::Text(text)) => {
                if let Ok(n) = text.trim().parse() {
                    self.push(field, FieldValue::Double(n));
                }
            }
            (FieldKind::Long, JsonScalar::Int(n)) => self.push(field, FieldValue::Long(n)),
            // Saturating, as serde_json's reading of a number beyond 64 bits is.
            (FieldKind::Long, JsonScalar::UInt(n)) => {
                self.push(field, FieldValue::Long((n as f64).trunc() as i64))
            }
            (FieldKind::Long, JsonScalar::Float(n)) if n.is_finite() => {
                self.push(field, FieldValue::Long(n.trunc() as i64))
            }
            (FieldKind::Long, JsonScalar::Text(text)) => {
                if let Ok(n) = text.trim().parse() {
                    self.push(field, FieldValue::Long(n));
                }
            }
            (FieldKind::Boolean, JsonScalar::Bool(flag)) => {
                self.push(field, FieldValue::Boolean(flag))
            }
            (FieldKind::Boolean, JsonScalar::Text("true")) => {
                self.push(field, FieldValue::Boolean(true))
            }
            (FieldKind::Boolean, JsonScalar::Text("false")) => {
                self.push(field, FieldValue::Boolean(false))
            }
            _ => {}
        }
    }

    /// Every value, in the order they were added.
    pub fn iter(&self) -> FieldValuesIter<'_> {
        FieldValuesIter {
            text: &self.text,
            values: self.values.iter(),
        }
    }

    /// The values of one field.
    pub fn of(&self, field: Field) -> Vec<FieldValue<'_>> {
        self.iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, value)| value)
            .collect()
    }

    /// Reads every field out of a JSON document by its path, each element of an array.
    pub fn of_document(document: &serde_json::Value) -> FieldValues {
        let mut values = FieldValues::default();
        for &field in Field::ALL {
            let mut node = Some(document);
            for part in field.path().split('.') {
                node = node.and_then(|node| node.get(part));
            }
            match node {
                Some(serde_json::Value::Array(items)) => {
                    for item in items {
                        values.push_serde(field, item);
                    }
                }
                Some(single) => values.push_serde(field, single),
                None => {}
            }
        }
        values
    }

    fn push_serde(&mut self, field: Field, value: &serde_json::Value) {
        use serde_json::Value;
        let scalar = match value {
            Value::String(text) => JsonScalar::Text(text),
            Value::Bool(flag) => JsonScalar::Bool(*flag),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => JsonScalar::Int(i),
                (None, Some(u), _) => JsonScalar::UInt(u),
                (None, None, Some(f)) => JsonScalar::Float(f),
                (None, None, None) => return,
            },
            Value::Null | Value::Array(_) | Value::Object(_) => return,
        };
        self.push_json(field, scalar);
    }
}

/// The values of a [`FieldValues`], in the order they were added: a named type, so that a
/// store's document type can hold it.
#[derive(Debug, Clone)]
pub struct FieldValuesIter<'a> {
    text: &'a str,
    values: std::slice::Iter<'a, (Field, Slot)>,
}

impl<'a> Iterator for FieldValuesIter<'a> {
    type Item = (Field, FieldValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let &(field, slot) = self.values.next()?;
        let value = match slot {
            Slot::Keyword { start, end } => FieldValue::Keyword(
                self.text
                    .get(start as usize..end as usize)
                    .unwrap_or_default(),
            ),
            Slot::Double(number) => FieldValue::Double(number),
            Slot::Long(number) => FieldValue::Long(number),
            Slot::Boolean(flag) => FieldValue::Boolean(flag),
        };
        Some((field, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.values.size_hint()
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
        for (index, field) in Field::ALL.iter().enumerate() {
            assert_eq!(field.index(), index, "{field}");
        }
    }

    #[test]
    fn values_are_typed_as_the_template_types_them() {
        let document = json!({
            "amount": "12.5", "quantity": 3.9, "status_code": 503, "status": 7,
            "fraud": { "score": 80, "detected": true, "indicators": ["high_amount", 4, "ip_mismatch"] },
            "geo": { "country_iso_code": "DE" },
            "response_time": "slow", "db_query_time": 1.5, "currency": 2.5, "product_id": true,
        });
        let values = FieldValues::of_document(&document);
        assert_eq!(values.of(Field::Amount), [FieldValue::Double(12.5)]);
        assert_eq!(values.of(Field::Quantity), [FieldValue::Long(3)]);
        assert_eq!(values.of(Field::StatusCode), [FieldValue::Long(503)]);
        assert_eq!(values.of(Field::Status), [FieldValue::Keyword("7")]);
        assert_eq!(values.of(Field::Currency), [FieldValue::Keyword("2.5")]);
        assert_eq!(values.of(Field::ProductId), [FieldValue::Keyword("true")]);
        assert_eq!(values.of(Field::DbQueryTime), [FieldValue::Double(1.5)]);
        assert_eq!(
            values.of(Field::FraudIndicators),
            [
                FieldValue::Keyword("high_amount"),
                FieldValue::Keyword("4"),
                FieldValue::Keyword("ip_mismatch")
            ]
        );
        assert_eq!(values.of(Field::FraudDetected), [FieldValue::Boolean(true)]);
        assert_eq!(values.of(Field::GeoCountry), [FieldValue::Keyword("DE")]);
        assert!(values.of(Field::ResponseTime).is_empty());
        assert!(values.of(Field::UserId).is_empty());
    }
}
