//! One field path, one kind: Elasticsearch reads a record as paths (`a.b` is the field `b`
//! inside the object `a`, whether written as `{"a":{"b":1}}` or `{"a.b":1}`, and arrays are
//! transparent), and refuses a document in which one path is both an object and a value
//! (`{"a":1,"a.b":2}`, `[{"x":1},{"x":{"y":2}}]`), or a dotted path goes into a field the index
//! maps as a value (`{"user_id.first":"a"}`). Such a record is refused here, with the path.
//!
//! It costs a walk that builds every path, so it runs only on records where a conflict can
//! happen at all: those with a dotted name or an array holding an object.

use std::collections::HashMap;

use simd_json::prelude::*;

use super::{FieldIssue, Record, RejectCode};
use crate::schema;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Value,
}

/// The first conflict in `record`, if any.
pub(super) fn conflict(record: Record<'_, '_>) -> Option<FieldIssue> {
    let object = record.as_object()?;
    for (key, _) in object.iter() {
        if let Some((head, _)) = key.split_once('.')
            && schema::lookup(head).is_some()
        {
            return Some(FieldIssue::new(
                key,
                RejectCode::ConflictingTypes,
                format!("`{head}` is a field of the event model, not an object to put `{key}` in"),
            ));
        }
    }
    let mut kinds = HashMap::new();
    walk(record, &mut String::new(), &mut kinds)
}

fn walk(
    value: Record<'_, '_>,
    path: &mut String,
    kinds: &mut HashMap<String, Kind>,
) -> Option<FieldIssue> {
    if let Some(items) = value.as_array() {
        return items.iter().find_map(|item| walk(item, path, kinds));
    }
    let Some(object) = value.as_object() else {
        return (!value.is_null())
            .then(|| mark(path, Kind::Value, kinds))
            .flatten();
    };
    if !path.is_empty()
        && let Some(issue) = mark(path, Kind::Object, kinds)
    {
        return Some(issue);
    }
    for (key, child) in object.iter() {
        let before = path.len();
        let mut segments = key.split('.').peekable();
        while let Some(segment) = segments.next() {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(segment);
            if segments.peek().is_some()
                && let Some(issue) = mark(path, Kind::Object, kinds)
            {
                return Some(issue);
            }
        }
        if let Some(issue) = walk(child, path, kinds) {
            return Some(issue);
        }
        path.truncate(before);
    }
    None
}

fn mark(path: &str, kind: Kind, kinds: &mut HashMap<String, Kind>) -> Option<FieldIssue> {
    match kinds.get(path) {
        Some(seen) if *seen != kind => Some(FieldIssue::new(
            path,
            RejectCode::ConflictingTypes,
            "the field is both an object and a value in this record (dots in names are paths)",
        )),
        Some(_) => None,
        None => {
            kinds.insert(path.to_owned(), kind);
            None
        }
    }
}
