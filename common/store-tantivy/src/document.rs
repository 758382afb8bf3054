//! A [`StoreDocument`] as tantivy indexes it, read in place from the batch the processor
//! handed over.
//!
//! tantivy's own document type owns a copy of every value, so building one cost an allocation
//! per field and a copy of the whole source, all dropped again once indexed. Its writer takes
//! any type that lists its fields and values, so the batch itself is that type: a document is
//! the batch and a position in it, and each value is borrowed from the [`StoreDocument`] it
//! belongs to.

use std::sync::Arc;

use tantivy::schema::Field as TantivyField;
use tantivy::schema::document::{Document, ReferenceValue, ReferenceValueLeaf, Value};

use super::schema::Fields;
use sluice_store::{FieldValue, FieldValuesIter, StoreDocument};

/// The documents of one write and the schema's fields they are indexed into.
pub(super) struct Batch {
    documents: Arc<Vec<StoreDocument>>,
    fields: Fields,
}

impl Batch {
    pub fn new(documents: Arc<Vec<StoreDocument>>, fields: Fields) -> Arc<Batch> {
        Arc::new(Batch { documents, fields })
    }

    /// Every document of the batch, in order, each with its [`StoreDocument`].
    pub fn documents(self: &Arc<Batch>) -> impl Iterator<Item = (&StoreDocument, BatchDocument)> {
        self.documents.iter().enumerate().map(|(at, document)| {
            (
                document,
                BatchDocument {
                    batch: Arc::clone(self),
                    at,
                },
            )
        })
    }
}

/// One document of a [`Batch`].
pub(super) struct BatchDocument {
    batch: Arc<Batch>,
    at: usize,
}

impl BatchDocument {
    fn document(&self) -> &StoreDocument {
        &self.batch.documents[self.at]
    }
}

impl Document for BatchDocument {
    type Value<'a> = IndexedValue<'a>;
    type FieldsValuesIter<'a> = DocumentValues<'a>;

    fn iter_fields_and_values(&self) -> DocumentValues<'_> {
        DocumentValues {
            document: self.document(),
            fields: &self.batch.fields,
            next: Part::Timestamp,
            values: self.document().fields.iter(),
        }
    }
}

/// A value of a document: the field kinds the schema has.
#[derive(Debug, Clone, Copy)]
pub(super) enum IndexedValue<'a> {
    Text(&'a str),
    I64(i64),
    F64(f64),
    Bool(bool),
}

impl<'a> Value<'a> for IndexedValue<'a> {
    type ArrayIter = std::iter::Empty<IndexedValue<'a>>;
    type ObjectIter = std::iter::Empty<(&'a str, IndexedValue<'a>)>;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        ReferenceValue::Leaf(match *self {
            IndexedValue::Text(text) => ReferenceValueLeaf::Str(text),
            IndexedValue::I64(number) => ReferenceValueLeaf::I64(number),
            IndexedValue::F64(number) => ReferenceValueLeaf::F64(number),
            IndexedValue::Bool(flag) => ReferenceValueLeaf::Bool(flag),
        })
    }
}

/// Where [`DocumentValues`] is: the fixed fields first, then the typed field values.
#[derive(Clone, Copy)]
enum Part {
    Timestamp,
    Source,
    Message,
    ErrorMessage,
    FieldValues,
}

/// The fields and values of one document.
pub(super) struct DocumentValues<'a> {
    document: &'a StoreDocument,
    fields: &'a Fields,
    next: Part,
    values: FieldValuesIter<'a>,
}

impl<'a> Iterator for DocumentValues<'a> {
    type Item = (TantivyField, IndexedValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let document = self.document;
        loop {
            let (item, next) = match self.next {
                Part::Timestamp => (
                    Some((
                        self.fields.timestamp,
                        IndexedValue::I64(document.timestamp_ms),
                    )),
                    Part::Source,
                ),
                Part::Source => (
                    Some((self.fields.source, IndexedValue::Text(&document.source))),
                    Part::Message,
                ),
                Part::Message => (
                    document
                        .message
                        .as_deref()
                        .map(|text| (self.fields.message, IndexedValue::Text(text))),
                    Part::ErrorMessage,
                ),
                Part::ErrorMessage => (
                    document
                        .error_message
                        .as_deref()
                        .map(|text| (self.fields.error_message, IndexedValue::Text(text))),
                    Part::FieldValues,
                ),
                Part::FieldValues => {
                    let (field, value) = self.values.next()?;
                    let value = match value {
                        FieldValue::Keyword(text) => IndexedValue::Text(text),
                        FieldValue::Double(number) => IndexedValue::F64(number),
                        FieldValue::Long(number) => IndexedValue::I64(number),
                        FieldValue::Boolean(flag) => IndexedValue::Bool(flag),
                    };
                    return Some((self.fields.of(field), value));
                }
            };
            self.next = next;
            if item.is_some() {
                return item;
            }
        }
    }
}
