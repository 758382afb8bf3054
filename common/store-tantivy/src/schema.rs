//! The tantivy index's schema and its format version.
//!
//! Besides the whole document (stored) and the two text fields, every field of
//! [`Field`](sluice_store::Field) gets a typed fast field, filled from the values the processor
//! typed when it read the record ([`StoreDocument::fields`](sluice_store::StoreDocument)), so
//! filters, sorting and aggregations read columns and indexing never parses a document (see
//! [`document`](super::document)). The document id is the `ingest_id` field: indexed (for the
//! delete that keeps ids unique) and a column (the sort's tiebreaker), and not stored, since
//! the stored document carries it.
//!
//! Nothing is scored (hits come in time or field order), so no field keeps norms: they cost a
//! byte per document and field to write and merge, for relevance nobody asks for.

use std::path::Path;

use tantivy::IndexSettings;
use tantivy::schema::{
    FAST, Field as TantivyField, IndexRecordOption, NumericOptions, STORED, Schema, SchemaBuilder,
    TextFieldIndexing, TextOptions,
};

use sluice_store::fields::{Field, FieldKind};

/// Bumped whenever the schema changes; an index of another format is refused with a way out.
/// Format 1 (no version file) indexed only time, type, level, service and the text fields;
/// format 2 indexed the id twice (`id` and `ingest_id`) and stored it a third time; format 3
/// stored the document as bytes and kept field norms.
pub const FORMAT: u32 = 4;
pub(crate) const FORMAT_FILE: &str = "sluice-index-format";
/// The event time in milliseconds, a fast column.
pub(super) const TIMESTAMP: &str = "timestamp_ms";

#[derive(Clone)]
pub(super) struct Fields {
    /// The document id: [`Field::DocumentId`]'s field.
    pub id: TantivyField,
    pub timestamp: TantivyField,
    pub message: TantivyField,
    pub error_message: TantivyField,
    pub source: TantivyField,
    /// In the order of [`Field::ALL`].
    pub analytic: Vec<TantivyField>,
}

impl Fields {
    pub fn of(&self, field: Field) -> TantivyField {
        self.analytic[field.index()]
    }
}

pub(super) fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Time and numbers are only ranged, sorted and aggregated, all on the fast column; an
    // inverted index of them would be a term per distinct millisecond, written for nothing.
    let timestamp = builder.add_i64_field(TIMESTAMP, FAST);
    let message = builder.add_text_field("message", full_text());
    let error_message = builder.add_text_field("error_message", full_text());
    // Text, which tantivy's document store copies whole; it writes bytes a byte at a time.
    let source = builder.add_text_field("source", STORED);
    let analytic: Vec<TantivyField> = Field::ALL
        .iter()
        .map(|field| add_analytic(&mut builder, *field))
        .collect();
    let fields = Fields {
        id: analytic[Field::DocumentId.index()],
        timestamp,
        message,
        error_message,
        source,
        analytic,
    };
    (builder.build(), fields)
}

/// How a new index stores its documents: lz4 in blocks of 64 KiB rather than tantivy's 16, which
/// compresses the documents of a batch, alike in their field names and values, a sixth smaller
/// for the same CPU (see docs/benchmarks.md). An index keeps the settings it was made with.
pub(super) fn settings() -> IndexSettings {
    IndexSettings {
        docstore_blocksize: 64 * 1024,
        ..IndexSettings::default()
    }
}

/// Words, lowercased, with their positions for phrases.
fn full_text() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    )
}

/// The exact value, as one term and a column.
fn keyword() -> TextOptions {
    TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_fieldnorms(false)
                .set_index_option(IndexRecordOption::Basic),
        )
        .set_fast(None)
}

fn add_analytic(builder: &mut SchemaBuilder, field: Field) -> TantivyField {
    let name = field.tantivy_name();
    match field.kind() {
        FieldKind::Keyword => builder.add_text_field(&name, keyword()),
        FieldKind::Double => builder.add_f64_field(&name, FAST),
        FieldKind::Long => builder.add_i64_field(&name, FAST),
        FieldKind::Boolean => {
            builder.add_bool_field(&name, NumericOptions::default().set_indexed().set_fast())
        }
    }
}

/// Refuses an index written in another format; marks a new (empty) directory with this one.
pub(super) fn check_format(dir: &Path) -> Result<(), String> {
    let marker = dir.join(FORMAT_FILE);
    let found = match std::fs::read_to_string(&marker) {
        Ok(text) => text
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("{} is not a format number: {text:?}", marker.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let has_index = dir.join("meta.json").exists();
            if !has_index {
                sluice_storage::write_durably(&marker, FORMAT.to_string().as_bytes(), None)
                    .map_err(|e| format!("writing {}: {e}", marker.display()))?;
                return Ok(());
            }
            1
        }
        Err(e) => return Err(format!("reading {}: {e}", marker.display())),
    };
    if found == FORMAT {
        return Ok(());
    }
    Err(format!(
        "the index is in format {found}, and this Sluice reads format {FORMAT} (it indexes the \
         fields it filters and aggregates on differently). Move the directory away to start a new index (and \
         send its events through ingest again if you need them), or run the Sluice version \
         that wrote it"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_gets_this_format_and_an_old_index_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        check_format(dir.path()).expect("new");
        check_format(dir.path()).expect("same format");

        let old = tempfile::tempdir().expect("tempdir");
        std::fs::write(old.path().join("meta.json"), "{}").expect("write");
        let refused = check_format(old.path()).expect_err("format 1");
        assert!(refused.contains("format 1"), "{refused}");
        assert!(refused.contains("Move the directory away"), "{refused}");
    }
}
