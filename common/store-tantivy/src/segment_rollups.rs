//! Each segment's rollup, built from its columns when a reader first sees it and kept beside
//! the index, so that a dashboard over any window reads hour buckets instead of events.
//!
//! A segment never changes but by losing documents, so its rollup holds for as long as its
//! count of deleted documents does; one that lost documents (a replay replaced some of its
//! events) is rolled up again. A document replaced by a replay lives in exactly one segment, so
//! it is counted once; a rollup lost with a crash is built again from the committed segment.
//! Rollups are kept in `rollups/` as `<segment uuid>.<deleted>.cbor`, written after the segment
//! is committed and dropped with it (a merge, retention). A file that cannot be read is built
//! again. Until a segment's rollup is built, questions read that segment's events instead.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tantivy::columnar::{Column, StrColumn};
use tantivy::index::SegmentId;
use tantivy::query::Weight;
use tantivy::{DocId, Searcher, SegmentReader};

use super::edge_minutes::{EdgeHour, EdgeMinutes};
use super::hour_rows::HourRows;
use super::open_columns::OpenColumns;
use super::schema::TIMESTAMP;
use sluice_store::fields::{Field, FieldKind};
use sluice_store::rollup::{
    DayRollups, HOUR_MS, MAX_VALUES_PER_BUCKET, Part, Partition, PartitionRollup, Rollup,
    RollupBuilder, RollupOutline, RollupQuestion, RollupValue, TermId, TermTexts, rolled_up_fields,
};
use sluice_telemetry::InternalEvent;
use sluice_telemetry::events::RollupOverflowed;

const DIR: &str = "rollups";

/// A segment's rollup, for as long as its count of deleted documents is `deleted`.
///
/// Kept encoded, as in its file (zstd CBOR, about a twelfth of its decoded size). Merging it
/// into its days decodes it for the time it takes; a question over a day whose merge does not
/// hold it yet decodes it and keeps it so, until the day merges hold it whole and the pass lets
/// it go ([`SegmentRollups::release_merged`]). At 50 M events the decoded rollups were 800 MB
/// that nothing read.
pub(super) struct Kept {
    deleted: u32,
    encoded: Arc<[u8]>,
    decoded: OnceLock<Rollup>,
    pub outline: RollupOutline,
    /// The days it holds events in.
    pub days: Vec<i64>,
}

impl Kept {
    /// `rollup` is what `encoded` decodes to.
    fn new(deleted: u32, encoded: Vec<u8>, rollup: &Rollup) -> Arc<Kept> {
        let outline = rollup.outline();
        let days = outline.days();
        Arc::new(Kept {
            deleted,
            encoded: encoded.into(),
            decoded: OnceLock::new(),
            outline,
            days,
        })
    }

    /// These bytes were decoded before (read back at start-up) or encoded from a rollup by
    /// this process, and decoding is deterministic.
    fn decode(&self) -> Rollup {
        Rollup::decode(&self.encoded).expect("a kept rollup decodes as it did before")
    }

    /// The same rollup, not decoded: questions that hold this one keep its decoded copy until
    /// they are done.
    fn released(&self) -> Arc<Kept> {
        Arc::new(Kept {
            deleted: self.deleted,
            encoded: Arc::clone(&self.encoded),
            decoded: OnceLock::new(),
            outline: self.outline.clone(),
            days: self.days.clone(),
        })
    }

    fn is_decoded(&self) -> bool {
        self.decoded.get().is_some()
    }

    /// The key a day's merge knows this rollup's segment by: a segment that lost documents
    /// since is another.
    pub fn partition(&self, segment: SegmentId) -> Partition<'_, (SegmentId, u32)> {
        Partition {
            key: (segment, self.deleted),
            rollup: self,
            days: &self.days,
        }
    }
}

impl PartitionRollup for Kept {
    fn rollup(&self) -> &Rollup {
        self.decoded.get_or_init(|| self.decode())
    }

    fn read(&self, read: &mut dyn FnMut(&Rollup)) {
        match self.decoded.get() {
            Some(rollup) => read(rollup),
            None => read(&self.decode()),
        }
    }
}

pub(super) struct SegmentRollups {
    dir: PathBuf,
    kept: RwLock<HashMap<SegmentId, Arc<Kept>>>,
    /// The kept rollups merged per day (see [`DayRollups`]), rebuilt by each pass.
    days: RwLock<DayRollups<(SegmentId, u32)>>,
    /// Where the windows' edges lie in each segment.
    pub hour_rows: HourRows,
    /// The hours the windows' edges fall in, by minute.
    pub edge_minutes: EdgeMinutes,
    /// One pass at a time (the store's thread, `roll_up_now`): two would build the same rollups.
    /// Holds when days were last merged again.
    passes: Mutex<Instant>,
}

/// How often days that lost a segment are merged again while segments come and go: merging a
/// day again reads every segment with events that day, and a store merging segments under
/// load loses some every few seconds. Until then, questions read those days per segment.
pub(super) const MERGE_DAYS_AGAIN_EVERY: Duration = Duration::from_secs(10);

impl SegmentRollups {
    /// The rollups kept under `index_dir`, read back from their files when `read` (with
    /// rollups off, none is read: they would only take memory).
    pub fn open(index_dir: &Path, read: bool) -> io::Result<SegmentRollups> {
        let dir = index_dir.join(DIR);
        std::fs::create_dir_all(&dir)?;
        let mut kept = HashMap::new();
        let entries = match read {
            true => std::fs::read_dir(&dir)?.collect(),
            false => Vec::new(),
        };
        for entry in entries {
            let path = entry?.path();
            let Some((segment, deleted)) = name_of(&path) else {
                continue;
            };
            // An unreadable file is built again when its segment is next seen.
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if let Ok(rollup) = Rollup::decode(&bytes) {
                kept.insert(segment, Kept::new(deleted, bytes, &rollup));
            }
        }
        Ok(SegmentRollups {
            dir,
            kept: RwLock::new(kept),
            days: RwLock::new(DayRollups::default()),
            hour_rows: HourRows::default(),
            edge_minutes: EdgeMinutes::default(),
            passes: Mutex::new(Instant::now()),
        })
    }

    /// The segment's rollup, when one is kept for its live documents.
    pub fn of(&self, reader: &SegmentReader) -> Option<Arc<Kept>> {
        let kept = self.kept.read().unwrap_or_else(PoisonError::into_inner);
        kept.get(&reader.segment_id())
            .filter(|kept| kept.deleted == reader.num_deleted_docs())
            .map(Arc::clone)
    }

    /// The day merges as the last pass left them (a question reads those whose segments are
    /// all current for it: [`sluice_store::rollup::RollupQuestion::parts`]).
    pub fn days(&self) -> DayRollups<(SegmentId, u32)> {
        self.days
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Rolls up the searcher's segments that have no current rollup, and forgets (files and
    /// all) the rollups of segments that are gone. Returns how many were built. Days that lost
    /// a segment are merged again now when `merge_days_now`, else at most every
    /// [`MERGE_DAYS_AGAIN_EVERY`].
    pub fn update(&self, searcher: &Searcher, merge_days_now: bool) -> Result<usize, String> {
        let mut merged_again = self.passes.lock().unwrap_or_else(PoisonError::into_inner);
        self.pass(&mut merged_again, searcher, merge_days_now)
    }

    /// Whether some day holds a segment that is gone and waits to be merged again.
    pub fn days_behind(&self) -> bool {
        self.days
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .behind()
    }

    /// Drops every rollup and rolls up every segment again; returns how many.
    pub fn rebuild(&self, searcher: &Searcher) -> Result<usize, String> {
        let mut merged_again = self.passes.lock().unwrap_or_else(PoisonError::into_inner);
        self.kept
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        *self.days.write().unwrap_or_else(PoisonError::into_inner) = DayRollups::default();
        self.edge_minutes.clear();
        let cleared =
            std::fs::remove_dir_all(&self.dir).and_then(|()| std::fs::create_dir_all(&self.dir));
        cleared.map_err(|e| format!("clearing {}: {e}", self.dir.display()))?;
        self.pass(&mut merged_again, searcher, true)
    }

    /// [`update`](Self::update) under the pass lock, which holds when days were last merged
    /// again.
    fn pass(
        &self,
        merged_again: &mut Instant,
        searcher: &Searcher,
        merge_days_now: bool,
    ) -> Result<usize, String> {
        let built = self.roll_up_missing(searcher)?;
        let merge_again = merge_days_now || merged_again.elapsed() >= MERGE_DAYS_AGAIN_EVERY;
        self.merge_days(merge_again);
        if merge_again {
            *merged_again = Instant::now();
        }
        self.release_merged();
        Ok(built)
    }

    /// Lets go of the decoded rollups the day merges hold whole: no question reads them.
    fn release_merged(&self) {
        let days = self.days();
        let mut kept = self.kept.write().unwrap_or_else(PoisonError::into_inner);
        for (segment, rollup) in kept.iter_mut() {
            if rollup.is_decoded() && days.hold(&(*segment, rollup.deleted), &rollup.days) {
                *rollup = rollup.released();
            }
        }
    }

    /// How many kept rollups are decoded in memory.
    #[cfg(test)]
    pub fn decoded(&self) -> usize {
        let kept = self.kept.read().unwrap_or_else(PoisonError::into_inner);
        kept.values().filter(|rollup| rollup.is_decoded()).count()
    }

    fn roll_up_missing(&self, searcher: &Searcher) -> Result<usize, String> {
        let mut built = 0;
        for reader in searcher.segment_readers() {
            if self.of(reader).is_some() {
                continue;
            }
            let rollup = roll_up_segment(reader).map_err(|e| e.to_string())?;
            let (segment, deleted) = (reader.segment_id(), reader.num_deleted_docs());
            let overflowed: Vec<&str> = rollup.overflowed().map(Field::path).collect();
            if !overflowed.is_empty() {
                RollupOverflowed {
                    segment: &segment.uuid_string(),
                    fields: &overflowed,
                }
                .emit();
            }
            let path = self
                .dir
                .join(format!("{}.{deleted}.cbor", segment.uuid_string()));
            let written = |e| format!("writing {}: {e}", path.display());
            let bytes = rollup.encode().map_err(written)?;
            // Not synced: a rollup a power cut takes is built again from its segment.
            std::fs::write(&path, &bytes).map_err(written)?;
            let replaced = self
                .kept
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(segment, Kept::new(deleted, bytes, &rollup));
            if let Some(old) = replaced.filter(|old| old.deleted != deleted) {
                self.remove_file(segment, old.deleted);
            }
            built += 1;
        }
        let present: Vec<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(SegmentReader::segment_id)
            .collect();
        let gone: Vec<(SegmentId, u32)> = {
            let mut kept = self.kept.write().unwrap_or_else(PoisonError::into_inner);
            let gone: Vec<(SegmentId, u32)> = kept
                .iter()
                .filter(|(segment, _)| !present.contains(segment))
                .map(|(segment, kept)| (*segment, kept.deleted))
                .collect();
            for (segment, _) in &gone {
                kept.remove(segment);
            }
            gone
        };
        for (segment, deleted) in gone {
            self.remove_file(segment, deleted);
        }
        // The kept columns are pruned where segments change: each commit's reader reload.
        self.hour_rows.keep_only(&present);
        Ok(built)
    }

    /// Brings the day merges up to the kept rollups, off the lock questions read them under.
    fn merge_days(&self, merge_again: bool) {
        let kept: Vec<(SegmentId, Arc<Kept>)> = self
            .kept
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(segment, kept)| (*segment, Arc::clone(kept)))
            .collect();
        let partitions: Vec<_> = kept
            .iter()
            .map(|(segment, kept)| kept.partition(*segment))
            .collect();
        let merged = self.days().updated(&partitions, merge_again);
        *self.days.write().unwrap_or_else(PoisonError::into_inner) = merged;
    }

    /// Bytes the kept rollups take on disk.
    pub fn bytes(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok()?.metadata().ok())
                    .map(|metadata| metadata.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    fn remove_file(&self, segment: SegmentId, deleted: u32) {
        // A file left behind is harmless: it names a segment no reader will see again.
        let _ = std::fs::remove_file(
            self.dir
                .join(format!("{}.{deleted}.cbor", segment.uuid_string())),
        );
    }
}

/// What a question over a window reads: the day merges and the segments' rollups for the
/// window's whole hours, the edge hours for the whole minutes of its edges, and rollups of
/// events made on the spot (the rest of its edges, segments not rolled up yet) for all of
/// theirs.
pub(super) struct WindowRollups {
    pub days: DayRollups<(SegmentId, u32)>,
    pub kept: Vec<(SegmentId, Arc<Kept>)>,
    /// Edge hours, each with the minutes `[first, end)` read from it.
    pub edges: Vec<(Arc<EdgeHour>, i64, i64)>,
    pub read: Vec<Rollup>,
    /// Events of segments not rolled up yet, counted instead ([`Unrolled::Count`]).
    pub counted: u64,
}

/// What a question does with a segment not rolled up yet: rolls up what it matches, or, for a
/// search's total, only counts it (cheaper, and all a count needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unrolled {
    RollUp,
    Count,
}

impl WindowRollups {
    pub fn parts(&self, question: &RollupQuestion) -> Vec<Part<'_>> {
        let partitions: Vec<_> = self
            .kept
            .iter()
            .map(|(segment, kept)| kept.partition(*segment))
            .collect();
        let mut parts = question.parts(&partitions, &self.days);
        for (hour, first, end) in &self.edges {
            parts.extend(hour.parts(*first, *end));
        }
        parts.extend(self.read.iter().map(|rollup| Part {
            rollup,
            first: None,
            end: None,
        }));
        parts
    }
}

/// The segment and deleted count a rollup file is named for.
fn name_of(path: &Path) -> Option<(SegmentId, u32)> {
    let name = path.file_name()?.to_str()?.strip_suffix(".cbor")?;
    let (segment, deleted) = name.split_once('.')?;
    Some((
        SegmentId::from_uuid_string(segment).ok()?,
        deleted.parse().ok()?,
    ))
}

/// The rollup of a segment's live documents.
fn roll_up_segment(reader: &SegmentReader) -> tantivy::Result<Rollup> {
    let mut builder = RollupBuilder::new(MAX_VALUES_PER_BUCKET);
    let mut columns = SegmentColumns::open(reader, &rolled_up_fields(), &OpenColumns::passing())?;
    for doc in reader.doc_ids_alive() {
        columns.roll_up(doc, &mut builder);
    }
    Ok(builder.finish(&mut columns)?)
}

/// Rolls up the live documents `weight` matches in one segment, reading only `fields` (what a
/// question asks) and opening the segment's columns only when one matches. Not capped: it
/// lives for one question.
pub(super) fn roll_up_matches(
    reader: &SegmentReader,
    weight: &dyn Weight,
    fields: &[Field],
    columns: &OpenColumns,
) -> tantivy::Result<Option<Rollup>> {
    let mut matches = Matches::new(reader, fields, columns, RollupBuilder::new(usize::MAX));
    let mut opened = Ok(());
    weight.for_each_no_score(reader, &mut |docs| {
        for &doc in docs {
            if opened.is_ok() {
                opened = matches.add(doc);
            }
        }
    })?;
    opened?;
    matches.finish()
}

/// Rolls up the live documents of one segment that `filter` matches and whose timestamp lies
/// within one of `windows` (inclusive, disjoint): a question's ragged edges. Each window's
/// timestamps are found in one pass over the rows of its hours ([`HourRows`]) and only those
/// documents are checked against the filter, where a range query intersected with the filter
/// would seek through every document the filter matches.
pub(super) fn roll_up_within(
    reader: &SegmentReader,
    filter: &dyn Weight,
    windows: &[(i64, i64)],
    fields: &[Field],
    columns: &OpenColumns,
    hour_rows: &HourRows,
) -> tantivy::Result<Option<Rollup>> {
    if windows.is_empty() {
        return Ok(None);
    }
    let Some(timestamps) = columns.column::<i64>(reader, TIMESTAMP)? else {
        return Ok(None);
    };
    let mut docs = Vec::new();
    for &(from_ms, to_ms) in windows {
        hour_rows.docs_within(reader, &timestamps, from_ms, to_ms, &mut docs);
    }
    if docs.is_empty() {
        return Ok(None);
    }
    docs.sort_unstable();
    let mut matches = Matches::new(reader, fields, columns, RollupBuilder::new(usize::MAX));
    let mut filtered = filter.scorer(reader, 1.0)?;
    for doc in docs {
        if filtered.doc() < doc {
            filtered.seek(doc);
        }
        if filtered.doc() == doc {
            matches.add(doc)?;
        }
    }
    matches.finish()
}

/// Rolls up by minute every live document of one segment in the hour that starts at `hour`,
/// reading every field a rollup keeps: what an edge hour holds of the segment
/// ([`EdgeMinutes`](super::edge_minutes::EdgeMinutes)). Its breakdowns are capped as a kept
/// rollup's are, per minute. Columns are opened for this once and not kept: the edge hours'
/// questions read few of them.
pub(super) fn roll_up_hour_by_minute(
    reader: &SegmentReader,
    hour: i64,
    columns: &OpenColumns,
    hour_rows: &HourRows,
) -> tantivy::Result<Option<Rollup>> {
    let Some(timestamps) = columns.column::<i64>(reader, TIMESTAMP)? else {
        return Ok(None);
    };
    let mut docs = Vec::new();
    hour_rows.docs_within(
        reader,
        &timestamps,
        hour,
        hour.saturating_add(HOUR_MS - 1),
        &mut docs,
    );
    let fields = rolled_up_fields();
    let passing = OpenColumns::passing();
    let builder = RollupBuilder::by_minute(MAX_VALUES_PER_BUCKET);
    let mut matches = Matches::new(reader, &fields, &passing, builder);
    for doc in docs {
        matches.add(doc)?;
    }
    matches.finish()
}

/// A question's rollup of some of a segment's documents, whose columns are opened with the
/// first live one.
struct Matches<'a> {
    reader: &'a SegmentReader,
    fields: &'a [Field],
    opened: &'a OpenColumns,
    builder: RollupBuilder,
    columns: Option<SegmentColumns>,
}

impl<'a> Matches<'a> {
    fn new(
        reader: &'a SegmentReader,
        fields: &'a [Field],
        opened: &'a OpenColumns,
        builder: RollupBuilder,
    ) -> Matches<'a> {
        Matches {
            reader,
            fields,
            opened,
            builder,
            columns: None,
        }
    }

    fn add(&mut self, doc: DocId) -> tantivy::Result<()> {
        if !self.reader.is_deleted(doc) {
            let columns = match &mut self.columns {
                Some(columns) => columns,
                None => self.columns.insert(SegmentColumns::open(
                    self.reader,
                    self.fields,
                    self.opened,
                )?),
            };
            columns.roll_up(doc, &mut self.builder);
        }
        Ok(())
    }

    fn finish(self) -> tantivy::Result<Option<Rollup>> {
        match self.columns {
            Some(mut columns) if !self.builder.is_empty() => {
                Ok(Some(self.builder.finish(&mut columns)?))
            }
            _ => Ok(None),
        }
    }
}

enum Values {
    Keyword(StrColumn),
    Double(Column<f64>),
    Long(Column<i64>),
    Boolean(Column<bool>),
}

/// The columns a rollup reads, for one segment; keywords by term ordinal, read as text only
/// when the rollup is finished, in one pass over each dictionary.
struct SegmentColumns {
    timestamp: Column<i64>,
    fields: Vec<(Field, Values)>,
    values: Vec<(Field, RollupValue)>,
}

impl SegmentColumns {
    /// The columns of `read`, from `opened` (kept for questions, or passing for a segment
    /// rolled up once).
    fn open(
        reader: &SegmentReader,
        read: &[Field],
        opened: &OpenColumns,
    ) -> tantivy::Result<SegmentColumns> {
        let Some(timestamp) = opened.column::<i64>(reader, TIMESTAMP)? else {
            return Err(tantivy::TantivyError::SchemaError(format!(
                "segment {} has no {TIMESTAMP} column",
                reader.segment_id().uuid_string()
            )));
        };
        let mut fields = Vec::new();
        for &field in read {
            let name = field.tantivy_name();
            let values = match field.kind() {
                FieldKind::Keyword => opened.str(reader, &name)?.map(Values::Keyword),
                FieldKind::Double => opened.column::<f64>(reader, &name)?.map(Values::Double),
                FieldKind::Long => opened.column::<i64>(reader, &name)?.map(Values::Long),
                FieldKind::Boolean => opened.column::<bool>(reader, &name)?.map(Values::Boolean),
            };
            if let Some(values) = values {
                fields.push((field, values));
            }
        }
        Ok(SegmentColumns {
            timestamp,
            fields,
            values: Vec::new(),
        })
    }

    fn roll_up(&mut self, doc: DocId, builder: &mut RollupBuilder) {
        self.values.clear();
        for (field, values) in &self.fields {
            let field = *field;
            let mut push = |values: &mut dyn Iterator<Item = RollupValue>| {
                self.values.extend(values.map(|value| (field, value)));
            };
            match values {
                Values::Keyword(column) => push(&mut of_doc(column.ords(), doc, RollupValue::Term)),
                Values::Double(column) => push(&mut of_doc(column, doc, RollupValue::Double)),
                Values::Long(column) => push(&mut of_doc(column, doc, RollupValue::Long)),
                Values::Boolean(column) => push(&mut of_doc(column, doc, RollupValue::Boolean)),
            }
        }
        if let Some(timestamp_ms) = self.timestamp.first(doc) {
            builder.add(timestamp_ms, &self.values);
        }
    }
}

/// A document's values in `column`, as rollup values.
fn of_doc<T>(
    column: &Column<T>,
    doc: DocId,
    value: fn(T) -> RollupValue,
) -> impl Iterator<Item = RollupValue> + '_
where
    T: PartialOrd + Copy + std::fmt::Debug + Send + Sync + 'static,
{
    column.values_for_doc(doc).map(value)
}

impl TermTexts for SegmentColumns {
    type Error = io::Error;

    fn texts(
        &mut self,
        field: Field,
        ids: &[TermId],
        each: &mut dyn FnMut(&str),
    ) -> io::Result<()> {
        let column = self.fields.iter().find_map(|(f, values)| match values {
            Values::Keyword(column) if *f == field => Some(column),
            _ => None,
        });
        if let Some(column) = column {
            // Terms are indexed from `&str`, so they are UTF-8.
            column
                .dictionary()
                .sorted_ords_to_term_cb(ids.iter().copied(), |bytes| {
                    each(&String::from_utf8_lossy(bytes));
                    Ok(())
                })?;
        }
        Ok(())
    }
}
