//! Columns opened once per segment and kept while it lives, for the questions rollups answer.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tantivy::SegmentReader;
use tantivy::columnar::{Column, ColumnType, DynamicColumn, HasAssociatedColumnType, StrColumn};
use tantivy::index::SegmentId;

/// Columns opened once per segment and kept while it lives: opening one reads its block index,
/// which was a quarter of a month's dashboard question at 50 M events (two hundred segments,
/// each opened for the window's edges), and a segment's columns never change. A question opens
/// only the columns it asks, so the kept ones are the few the dashboards read.
#[derive(Default)]
pub(super) struct OpenColumns {
    opened: Mutex<HashMap<(SegmentId, String, ColumnType), Option<DynamicColumn>>>,
    /// Opens columns without keeping them (a segment rolled up once).
    passing: bool,
}

impl OpenColumns {
    /// Columns opened and not kept: for a segment read once.
    pub fn passing() -> OpenColumns {
        OpenColumns {
            passing: true,
            ..OpenColumns::default()
        }
    }

    fn dynamic(
        &self,
        reader: &SegmentReader,
        name: &str,
        column_type: ColumnType,
    ) -> tantivy::Result<Option<DynamicColumn>> {
        let key = (reader.segment_id(), name.to_owned(), column_type);
        if let Some(opened) = self.lock().get(&key) {
            return Ok(opened.clone());
        }
        let opened = match reader
            .fast_fields()
            .dynamic_column_handle(name, column_type)?
        {
            Some(handle) => Some(handle.open()?),
            None => None,
        };
        if !self.passing {
            self.lock().insert(key, opened.clone());
        }
        Ok(opened)
    }

    pub fn column<T>(
        &self,
        reader: &SegmentReader,
        name: &str,
    ) -> tantivy::Result<Option<Column<T>>>
    where
        T: HasAssociatedColumnType,
        DynamicColumn: Into<Option<Column<T>>>,
    {
        Ok(self
            .dynamic(reader, name, T::column_type())?
            .and_then(Into::into))
    }

    pub fn str(&self, reader: &SegmentReader, name: &str) -> tantivy::Result<Option<StrColumn>> {
        Ok(self
            .dynamic(reader, name, ColumnType::Str)?
            .and_then(Into::into))
    }

    /// The segments with columns kept.
    #[cfg(test)]
    pub fn segments(&self) -> std::collections::HashSet<SegmentId> {
        self.lock().keys().map(|(segment, _, _)| *segment).collect()
    }

    /// Forgets the columns of segments that are gone.
    pub fn keep_only(&self, present: &[SegmentId]) {
        self.lock()
            .retain(|(segment, _, _), _| present.contains(segment));
    }

    fn lock(
        &self,
    ) -> MutexGuard<'_, HashMap<(SegmentId, String, ColumnType), Option<DynamicColumn>>> {
        self.opened.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
