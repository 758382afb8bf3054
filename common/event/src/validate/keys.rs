//! Field names, at every level of a record: what any store behind Sluice can take.
//!
//! The rules are Elasticsearch's, applied whichever store is configured, so that what ingest
//! accepts does not change with the store and an accepted record is never refused later:
//! - no field twice in one object (Elasticsearch parses with strict duplicate detection and
//!   refuses the document; serde_json would silently keep the last one);
//! - no empty or blank names, and no name that starts or ends with a dot or holds two in a row
//!   (Elasticsearch reads dots as object paths and refuses these as ambiguous);
//! - no Elasticsearch metadata field (`_index`, `_source`, …) at the top level;
//! - no name starting `$serde_json::private::`, at any level: serde_json, which the stores'
//!   adapters and the api read documents with, takes an object whose first name is its
//!   `RawValue` token for the raw JSON in the value's string, so `{"$serde_json::private::RawValue":"5"}`
//!   would be an object at ingest and the number 5 behind it (found by the CSV fuzz target);
//! - one path, one kind: not an object and a value at once (see [`super::paths`]);
//! - objects nested no deeper than `max_object_depth` (`index.mapping.depth.limit`, 20), and no
//!   more than `max_fields` names in all (`index.mapping.total_fields.limit`, 1,000).

use std::collections::HashSet;

use super::{FieldIssue, Limits, Record, RejectCode};

/// The prefix of serde_json's private tokens (`$serde_json::private::RawValue`, and `…::Number`
/// under its `arbitrary_precision` feature).
const SERDE_JSON_TOKENS: &str = "$serde_json::private::";

/// Fields Elasticsearch keeps for itself; a document cannot carry them. (`_id` is refused as a
/// reserved field by the event model already.)
const METADATA_FIELDS: &[&str] = &[
    "_index",
    "_source",
    "_routing",
    "_version",
    "_seq_no",
    "_primary_term",
    "_ignored",
    "_ignored_source",
    "_field_names",
    "_data_stream_timestamp",
    "_doc_count",
    "_tier",
    "_nested_path",
    "_tsid",
];

/// Objects with more keys than this are checked for duplicates with a set, not pairwise.
const PAIRWISE_LIMIT: usize = 24;

/// Every problem with the record's field names (empty when there is none).
pub(super) fn check(record: Record<'_, '_>, limits: &Limits) -> Vec<FieldIssue> {
    let mut walk = Walk {
        limits,
        issues: Vec::new(),
        fields: 0,
        path: String::new(),
        paths_may_conflict: false,
    };
    walk.value(record, 0);
    if walk.paths_may_conflict
        && walk.issues.is_empty()
        && let Some(conflict) = super::paths::conflict(record)
    {
        walk.issues.push(conflict);
    }
    if walk.fields > limits.max_fields {
        walk.issues.push(FieldIssue::whole_record(
            RejectCode::Oversized,
            format!(
                "record has {} fields, the limit is {} (ingest.limits.max_fields)",
                walk.fields, limits.max_fields
            ),
        ));
    }
    walk.issues
}

struct Walk<'l> {
    limits: &'l Limits,
    issues: Vec<FieldIssue>,
    fields: usize,
    /// Where the walk is, as `a.b[2].c`.
    path: String,
    /// A dotted name or an object in an array was seen: one path may be two kinds.
    paths_may_conflict: bool,
}

impl Walk<'_> {
    /// `depth` counts the objects around `value` (the record itself is depth 1 inside).
    fn value(&mut self, value: Record<'_, '_>, depth: usize) {
        if let Some(object) = value.as_object() {
            self.object(object, depth + 1);
        } else if let Some(items) = value.as_array() {
            for (index, item) in items.iter().enumerate() {
                self.paths_may_conflict |= item.is_object();
                if item.is_object() || item.is_array() {
                    let len = self.path.len();
                    self.path.push_str(&format!("[{index}]"));
                    self.value(item, depth);
                    self.path.truncate(len);
                }
            }
        }
    }

    fn object(&mut self, object: simd_json::value::tape::Object<'_, '_>, depth: usize) {
        if depth > self.limits.max_object_depth {
            let field = self.path.clone();
            self.issues.push(FieldIssue::new(
                &field,
                RejectCode::TooDeep,
                format!(
                    "objects nest deeper than {} levels (ingest.limits.max_object_depth)",
                    self.limits.max_object_depth
                ),
            ));
            return;
        }
        let len = object.len();
        self.fields += len;
        let mut seen = (len > PAIRWISE_LIMIT).then(|| HashSet::with_capacity(len));
        // The names so far, each with a fingerprint that settles almost every comparison.
        let mut earlier: [(u64, &str); PAIRWISE_LIMIT] = [(0, ""); PAIRWISE_LIMIT];
        for (index, (key, value)) in object.iter().enumerate() {
            let duplicate = match &mut seen {
                Some(seen) => !seen.insert(key),
                None => {
                    let print = fingerprint(key);
                    let duplicate = earlier[..index]
                        .iter()
                        .any(|&(other, name)| other == print && name == key);
                    earlier[index] = (print, key);
                    duplicate
                }
            };
            if duplicate {
                self.issue(
                    key,
                    RejectCode::DuplicateField,
                    "the field appears more than once in the same object".into(),
                );
            } else if !is_plain(key) {
                if let Some(reason) = bad_name(key, depth == 1) {
                    self.issue(key, RejectCode::InvalidFieldName, reason);
                }
                self.paths_may_conflict |= key.contains('.');
            } else if depth == 1 && key.starts_with('_') && METADATA_FIELDS.contains(&key) {
                self.issue(key, RejectCode::InvalidFieldName, metadata_reason(key));
            }
            if value.is_object() || value.is_array() {
                let before = self.path.len();
                if !self.path.is_empty() {
                    self.path.push('.');
                }
                self.path.push_str(key);
                self.value(value, depth);
                self.path.truncate(before);
            }
        }
    }

    /// An issue with the name `key` in the object at the walk's path; an empty name shows as
    /// `""`, since an empty field means the whole record.
    fn issue(&mut self, key: &str, code: RejectCode, reason: String) {
        let key = if key.is_empty() { "\"\"" } else { key };
        let field = match self.path.is_empty() {
            true => key.to_owned(),
            false => format!("{}.{key}", self.path),
        };
        self.issues.push(FieldIssue::new(&field, code, reason));
    }
}

/// The length and first bytes of a name, and its last byte: names that differ here differ.
fn fingerprint(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut head = [0u8; 8];
    let take = bytes.len().min(6);
    head[..take].copy_from_slice(&bytes[..take]);
    head[6] = bytes.last().copied().unwrap_or(0);
    // Lengths are compared modulo 256: a match only means the names are compared whole.
    head[7] = bytes.len() as u8;
    u64::from_le_bytes(head)
}

/// A name of ASCII letters, digits, `_`, `-` and `@` only, as nearly every name sent is: it
/// passes every rule but the metadata one (whose names all start with `_`) and holds no dot,
/// so one pass over its bytes stands in for the searches of [`bad_name`] on the hot path.
fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@'))
}

fn metadata_reason(name: &str) -> String {
    format!("`{name}` is an Elasticsearch metadata field and cannot be sent inside a record")
}

/// Why `name` cannot be a field name, if it cannot.
fn bad_name(name: &str, top_level: bool) -> Option<String> {
    if name.trim().is_empty() {
        return Some("a field name cannot be empty or only whitespace".into());
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Some(
            "a field name cannot start or end with a dot or hold two in a row (dots separate \
             object paths)"
                .into(),
        );
    }
    if name.starts_with(SERDE_JSON_TOKENS) {
        return Some(format!(
            "`{name}` is reserved: the JSON library Sluice reads documents with gives names \
             starting `{SERDE_JSON_TOKENS}` a meaning of its own"
        ));
    }
    if top_level && METADATA_FIELDS.contains(&name) {
        return Some(metadata_reason(name));
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The fast path may only skip names the full rules accept: a plain name is refused
        /// for being a metadata field or not at all, and holds no dot.
        #[test]
        fn a_plain_name_passes_every_rule_but_the_metadata_one(
            name in "[-_@a-zA-Z0-9]{1,12}|_(index|source|routing|tier)|[-_@.$ a-z]{0,8}",
        ) {
            prop_assume!(is_plain(&name));
            prop_assert!(!name.contains('.'));
            prop_assert_eq!(bad_name(&name, false), None);
            prop_assert_eq!(bad_name(&name, true).is_some(), METADATA_FIELDS.contains(&name.as_str()));
        }
    }
}
