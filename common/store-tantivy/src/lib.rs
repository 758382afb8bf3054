//! The embedded event store: a tantivy index on disk.
//!
//! Each document is stored whole as JSON bytes and indexed on its text fields and, as typed fast
//! fields, on every field of [`Field`](sluice_store::Field) (see [`schema`]). Writes go through
//! one `IndexWriter` on a blocking thread; every batch ends with a commit and a reader reload, so
//! what [`EventStore::index`] acknowledged is durable and already searchable. Ids are unique: a
//! write deletes any earlier document with the same id first. Searches, sorting and aggregations
//! run on blocking threads too.

pub mod backup;
mod document;
mod edge_minutes;
mod fast_queries;
mod hour_rows;
mod known_ids;
mod open_columns;
mod query;
mod retention;
mod schema;
mod segment_aggregations;
mod segment_rollups;
#[cfg(test)]
mod segment_rollups_tests;
mod sorted;
mod total;
mod window;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tantivy::aggregation::agg_req::Aggregations as TantivyAggregations;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::{AggregationLimitsGuard, DistributedAggregationCollector};
use tantivy::collector::Count;
use tantivy::indexer::{IndexWriterOptions, UserOperation};
use tantivy::merge_policy::LogMergePolicy;
use tantivy::query::EnableScoring;
use tantivy::schema::Value;
use tantivy::{
    Index, IndexReader, IndexWriter, ReloadPolicy, SegmentReader, TantivyDocument, Term,
};

use self::document::{Batch, BatchDocument};
use self::known_ids::KnownIds;
use self::open_columns::OpenColumns;
use self::query::QueryBuilder;
use self::retention::{DayMergePolicy, SegmentDays};
use self::schema::Fields;
use self::segment_aggregations::{Edge, Question, SegmentAggregations};
use self::segment_rollups::{
    Kept, MERGE_DAYS_AGAIN_EVERY, SegmentRollups, Unrolled, WindowRollups, roll_up_matches,
    roll_up_within,
};
use self::sorted::{SortedPage, SortedSearch, ValueType};
use self::total::TotalCounter;
use self::window::WindowQuery;
use sluice_config::{DEFAULT_KEPT_AGGREGATIONS, DEFAULT_MAX_DOCS_PER_MERGE};
use sluice_store::aggregation::{self, Dialect};
use sluice_store::fields::FieldKind;
use sluice_store::rollup::{HOUR_MS, RollupQuestion, Unanswerable};
use sluice_store::{
    AggregationResults, Aggregations, EventStore, Hit, IndexReport, SearchQuery, SearchResults,
    SortField, StoreDocument, StoreError, StoreUsage, Total, TotalRelation,
};
use sluice_telemetry::InternalEvent;
use sluice_telemetry::events::{AggregationAnswered, RollupsBuilt, SegmentReads};

/// Operations sent to the indexing thread at a time.
const DOCUMENTS_PER_MESSAGE: usize = 1_000;
/// The id filter is rebuilt larger at a commit that leaves it room for fewer ids than this
/// (the most a processor writes between two commits, many times over).
const KNOWN_IDS_HEADROOM: usize = 500_000;

#[derive(Clone)]
pub struct TantivyStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    index: Index,
    fields: Fields,
    writer_options: WriterOptions,
    writer: Mutex<Writer>,
    /// Why the last write failed, until one succeeds: what `/ready` reports.
    failure: Mutex<Option<String>>,
    reader: IndexReader,
    /// Each segment's day, for the merge policy.
    days: SegmentDays,
    aggregations: SegmentAggregations,
    rollups: Arc<SegmentRollups>,
    /// The columns searches and rollup questions read, opened once per segment and forgotten
    /// with it (see [`open_columns`]).
    columns: OpenColumns,
    /// Wakes the thread that rolls up new segments (see [`segment_rollups`]).
    /// `None` when rollups are off.
    roll_up: Option<SyncSender<()>>,
}

struct Writer {
    /// `None` once a failed write (a full disk, an I/O error) killed it: tantivy's writer does
    /// not come back from that, so a new one is opened for the next write.
    index: Option<IndexWriter<BatchDocument>>,
    known_ids: KnownIds,
    /// The writer died in a retention pass, losing what the processor wrote since its last
    /// commit without the processor seeing a failure: its next write or commit is refused once,
    /// so that it writes everything since that commit again.
    lost_unseen: bool,
}

/// What a write or commit says after the writer lost what it had not committed.
const LOST: &str = "the index writer failed since the last commit; what it was given is lost and \
                    must be written again";

impl Writer {
    /// Refuses, once, after a loss the writer's caller has not been told of.
    fn report_loss(&mut self) -> Result<(), StoreError> {
        match std::mem::take(&mut self.lost_unseen) {
            true => Err(StoreError::Write(LOST.into())),
            false => Ok(()),
        }
    }
}

/// The writer: `index_threads` indexing threads sharing the memory budget, each with at least
/// the 15 MB tantivy needs, merging on `merge_threads` threads segments of up to
/// `max_docs_per_merge` documents, never across days (see [`retention`]).
fn open_writer(
    index: &Index,
    options: WriterOptions,
    days: &SegmentDays,
) -> Result<IndexWriter<BatchDocument>, String> {
    let threads = options.index_threads.max(1);
    let writer = index
        .writer_with_options(
            IndexWriterOptions::builder()
                .num_worker_threads(threads)
                .memory_budget_per_thread((options.memory_bytes / threads).max(15_000_000))
                .num_merge_threads(options.merge_threads.max(1))
                .build(),
        )
        .map_err(|e| format!("cannot take the index writer lock: {e}"))?;
    let mut within_a_day = LogMergePolicy::default();
    within_a_day.set_max_docs_before_merge(options.max_docs_per_merge.max(1));
    writer.set_merge_policy(Box::new(DayMergePolicy {
        within_a_day,
        days: days.clone(),
    }));
    Ok(writer)
}

/// How the embedded store's writer uses memory and threads. Each merge maps the segments it
/// reads and holds buffers of its own, so the number of merges at once and the size of the
/// largest bound the memory merging takes beside indexing.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// The indexing buffer, shared by the indexing threads (tantivy needs at least 15 MB each).
    pub memory_bytes: usize,
    /// Threads that index: each builds a segment of its own from the documents it is handed.
    pub index_threads: usize,
    /// Merges at once.
    pub merge_threads: usize,
    /// Segments with more documents are not merged further.
    pub max_docs_per_merge: usize,
}

impl WriterOptions {
    /// `memory_bytes` of indexing buffer, and merging as Elasticsearch's merge scheduler does
    /// by default: on half the cores, one to four (`max_thread_count`), with tantivy's
    /// largest merge.
    pub fn with_memory(memory_bytes: usize) -> WriterOptions {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        WriterOptions {
            memory_bytes,
            index_threads: 1,
            merge_threads: (cores / 2).clamp(1, 4),
            max_docs_per_merge: DEFAULT_MAX_DOCS_PER_MERGE,
        }
    }
}

/// How the embedded store uses memory.
#[derive(Debug, Clone)]
pub struct TantivyOptions {
    /// The indexing buffer and merging.
    pub writer: WriterOptions,
    /// Aggregation results of large segments kept for repeated questions (0: none).
    pub kept_aggregations: usize,
    /// Rollups kept per segment and questions answered from them.
    pub rollups: bool,
}

impl TantivyStore {
    /// Opens the index in `dir`, creating it when the directory is empty, with an indexing
    /// buffer of `writer_memory_bytes` and the default number of kept aggregation results.
    pub fn open(dir: &Path, writer_memory_bytes: usize) -> Result<TantivyStore, StoreError> {
        Self::open_with(
            dir,
            TantivyOptions {
                writer: WriterOptions::with_memory(writer_memory_bytes),
                kept_aggregations: DEFAULT_KEPT_AGGREGATIONS,
                rollups: true,
            },
        )
    }

    /// Opens the index in `dir`, creating it when the directory is empty, with the memory use
    /// `options` give.
    pub fn open_with(dir: &Path, options: TantivyOptions) -> Result<TantivyStore, StoreError> {
        let writer_options = options.writer;
        let open_err = |detail: String| StoreError::Open {
            path: dir.display().to_string(),
            detail,
        };
        sluice_storage::create_dir_all_durably(dir).map_err(|e| open_err(e.to_string()))?;
        schema::check_format(dir).map_err(open_err)?;
        let (schema, fields) = schema::schema();
        let directory =
            tantivy::directory::MmapDirectory::open(dir).map_err(|e| open_err(e.to_string()))?;
        let mut index = tantivy::IndexBuilder::new()
            .schema(schema)
            .settings(schema::settings())
            .open_or_create(directory)
            .map_err(|e| {
                open_err(format!(
                    "{e} (an index written by another Sluice version? move it away to start afresh)"
                ))
            })?;
        let days = SegmentDays::default();
        let writer = open_writer(&index, writer_options, &days).map_err(open_err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e: tantivy::TantivyError| open_err(e.to_string()))?;
        // Aggregations read a segment per thread.
        index
            .set_default_multithread_executor()
            .map_err(|e| open_err(format!("search threads: {e}")))?;
        let known_ids =
            Self::known_ids(&reader, &fields, 0).map_err(|e| open_err(e.to_string()))?;
        days.update(&reader.searcher())
            .map_err(|e| open_err(format!("reading segment days: {e}")))?;
        let rollups = Arc::new(
            SegmentRollups::open(dir, options.rollups)
                .map_err(|e| open_err(format!("reading rollups: {e}")))?,
        );
        let roll_up = match options.rollups {
            true => Some(Self::spawn_roll_up(&reader, &rollups).map_err(open_err)?),
            false => None,
        };
        Ok(TantivyStore {
            inner: Arc::new(Inner {
                path: dir.to_owned(),
                index,
                fields,
                writer_options,
                writer: Mutex::new(Writer {
                    index: Some(writer),
                    known_ids,
                    lost_unseen: false,
                }),
                failure: Mutex::new(None),
                reader,
                days,
                aggregations: SegmentAggregations::new(options.kept_aggregations),
                rollups,
                columns: OpenColumns::default(),
                roll_up,
            }),
        })
    }

    /// The thread that rolls up segments a commit or merge made, woken after each commit; it
    /// ends with the store. Rolling up off the writer's thread keeps a large merge's rollup
    /// from holding up the next commit.
    fn spawn_roll_up(
        reader: &IndexReader,
        rollups: &Arc<SegmentRollups>,
    ) -> Result<SyncSender<()>, String> {
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let (reader, rollups) = (reader.clone(), Arc::clone(rollups));
        std::thread::Builder::new()
            .name("sluice-rollups".into())
            .spawn(move || {
                loop {
                    match woken.recv_timeout(MERGE_DAYS_AGAIN_EVERY) {
                        Ok(()) => Self::roll_up_with(&reader, &rollups),
                        // Days left behind while segments came and went are merged now.
                        Err(RecvTimeoutError::Timeout) if rollups.days_behind() => {
                            Self::roll_up_with(&reader, &rollups)
                        }
                        Err(RecvTimeoutError::Timeout) => 0,
                        Err(RecvTimeoutError::Disconnected) => break,
                    };
                }
            })
            .map_err(|e| format!("starting the rollup thread: {e}"))?;
        // The segments already committed, from before a restart.
        let _ = wake.try_send(());
        Ok(wake)
    }

    fn roll_up_with(reader: &IndexReader, rollups: &SegmentRollups) -> usize {
        match rollups.update(&reader.searcher(), false) {
            Ok(built) => {
                RollupsBuilt {
                    built,
                    failure: None,
                }
                .emit();
                built
            }
            Err(reason) => {
                RollupsBuilt {
                    built: 0,
                    failure: Some(&reason),
                }
                .emit();
                0
            }
        }
    }

    /// Rolls up, now, every committed segment without a rollup; returns how many were built.
    /// The store does this on its own after each commit; tests and `sluice rollups rebuild`
    /// wait for it.
    pub async fn roll_up_now(&self) -> Result<usize, StoreError> {
        self.rollup_pass(
            |rollups, searcher| rollups.update(searcher, true),
            StoreError::Search,
        )
        .await
    }

    /// Drops every rollup and builds them again from the committed segments.
    pub async fn rebuild_rollups(&self) -> Result<usize, StoreError> {
        self.rollup_pass(SegmentRollups::rebuild, StoreError::Write)
            .await
    }

    /// Runs `pass` over the committed segments off the runtime; its count of rollups built.
    async fn rollup_pass(
        &self,
        pass: fn(&SegmentRollups, &tantivy::Searcher) -> Result<usize, String>,
        failed: fn(String) -> StoreError,
    ) -> Result<usize, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            pass(&inner.rollups, &inner.reader.searcher()).map_err(failed)
        })
        .await
        .map_err(|e| failed(format!("rollup thread failed: {e}")))?
    }

    /// Bytes the kept rollups take on disk.
    pub fn rollup_bytes(&self) -> u64 {
        self.inner.rollups.bytes()
    }

    /// A filter of every id in the index, with room for `more` besides.
    fn known_ids(
        reader: &IndexReader,
        fields: &Fields,
        more: usize,
    ) -> Result<KnownIds, StoreError> {
        let failed = |e: tantivy::TantivyError| StoreError::Write(format!("reading ids: {e}"));
        let searcher = reader.searcher();
        let held = usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX);
        let mut known = KnownIds::with_capacity(held.saturating_add(more).saturating_mul(2));
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(fields.id).map_err(failed)?;
            let mut ids = inverted.terms().stream().map_err(|e| failed(e.into()))?;
            while ids.advance() {
                known.insert(&String::from_utf8_lossy(ids.key()));
            }
        }
        Ok(known)
    }

    /// Adds `documents`, if any, and with `commit` makes everything added durable. A failure of
    /// the writer (which tantivy does not recover from) drops it and what it had not committed;
    /// the next write opens a new one, so the store comes back by itself once the disk has room
    /// again, and the caller writes again what it wrote since the last commit.
    fn write(
        inner: &Inner,
        documents: Option<Arc<Vec<StoreDocument>>>,
        commit: bool,
    ) -> Result<IndexReport, StoreError> {
        // A panic while writing leaves the writer in an unknown state: it is replaced below.
        let mut writer = inner.writer.lock().unwrap_or_else(|poisoned| {
            let mut writer = poisoned.into_inner();
            writer.index = None;
            writer
        });
        let written = documents
            .map_or_else(
                || Ok(IndexReport::default()),
                |documents| Self::add(inner, &mut writer, documents),
            )
            .and_then(|report| {
                if commit {
                    Self::commit(inner, &mut writer)?;
                }
                Ok(report)
            });
        let mut failure = inner.failure.lock().unwrap_or_else(PoisonError::into_inner);
        match &written {
            Ok(_) => *failure = None,
            Err(e) => {
                writer.index = None;
                *failure = Some(e.to_string());
            }
        }
        written
    }

    /// Hands `documents` to the indexing thread, deleting earlier copies of their ids first.
    fn add(
        inner: &Inner,
        writer: &mut Writer,
        documents: Arc<Vec<StoreDocument>>,
    ) -> Result<IndexReport, StoreError> {
        writer.report_loss()?;
        Self::reopen_if_dead(inner, writer)?;
        let Writer {
            index, known_ids, ..
        } = writer;
        let index = index
            .as_mut()
            .ok_or_else(|| StoreError::Write("no index writer".into()))?;
        let mut report = IndexReport::default();
        let batch = Batch::new(documents, inner.fields.clone());
        // Handed over a chunk per message: one document per message filled the indexing
        // thread's queue, and this thread then spun waiting for room.
        let mut operations = Vec::with_capacity(2 * DOCUMENTS_PER_MESSAGE);
        let mut documents = batch.documents().peekable();
        while let Some((document, indexed)) = documents.next() {
            // Only an id that may be present needs its earlier copy deleted.
            if known_ids.may_contain(&document.id) {
                operations.push(UserOperation::Delete(Term::from_field_text(
                    inner.fields.id,
                    &document.id,
                )));
            }
            known_ids.insert(&document.id);
            operations.push(UserOperation::Add(indexed));
            report.indexed += 1;
            if operations.len() >= DOCUMENTS_PER_MESSAGE || documents.peek().is_none() {
                index
                    .run(operations.drain(..))
                    .map_err(|e| StoreError::Write(format!("adding documents: {e}")))?;
            }
        }
        Ok(report)
    }

    /// Commits what was added, durably, and makes it searchable. A writer that failed since the
    /// last commit lost what it had been given, so there is nothing to commit until that is
    /// written again.
    fn commit(inner: &Inner, writer: &mut Writer) -> Result<(), StoreError> {
        writer.report_loss()?;
        Self::commit_now(inner, writer)
    }

    /// A new writer in place of one a failure killed.
    fn reopen_if_dead(inner: &Inner, writer: &mut Writer) -> Result<(), StoreError> {
        if writer.index.is_none() {
            let reopened = open_writer(&inner.index, inner.writer_options, &inner.days)
                .map_err(|e| StoreError::Write(format!("reopening the index writer: {e}")))?;
            writer.index = Some(reopened);
        }
        Ok(())
    }

    /// [`TantivyStore::commit`] without asking whether the caller missed a loss.
    fn commit_now(inner: &Inner, writer: &mut Writer) -> Result<(), StoreError> {
        let index = writer
            .index
            .as_mut()
            .ok_or_else(|| StoreError::Write(LOST.into()))?;
        index
            .commit()
            .map_err(|e| StoreError::Write(format!("commit: {e}")))?;
        // tantivy renames its new meta.json into place without syncing the directory: until
        // that rename is durable, a power cut can take the commit back while the queue has
        // already moved past what it held.
        sluice_storage::sync_dir(&inner.path)
            .map_err(|e| StoreError::Write(format!("syncing the index directory: {e}")))?;
        inner
            .reader
            .reload()
            .map_err(|e| StoreError::Write(format!("reader reload: {e}")))?;
        // Columns kept for searches and rollups go with their segments, rollups on or off: the
        // reader sees other segments only here (it is reloaded by hand, after a commit).
        let present: Vec<_> = (inner.reader.searcher().segment_readers().iter())
            .map(SegmentReader::segment_id)
            .collect();
        inner.columns.keep_only(&present);
        // Full: a pass is due already, and it will see this commit's segments.
        if let Some(roll_up) = &inner.roll_up {
            let _ = roll_up.try_send(());
        }
        // The filter is rebuilt from the committed ids only here, where every id written is
        // committed: rebuilt between commits, it would forget the ids not committed yet.
        if !writer.known_ids.has_room_for(KNOWN_IDS_HEADROOM) {
            let held = usize::try_from(inner.reader.searcher().num_docs()).unwrap_or(usize::MAX);
            writer.known_ids = Self::known_ids(&inner.reader, &inner.fields, held)?;
        }
        inner
            .days
            .update(&inner.reader.searcher())
            .map_err(|e| StoreError::Write(format!("reading segment days: {e}")))
    }

    /// [`TantivyStore::write`] on a blocking thread.
    async fn write_blocking(
        &self,
        documents: Option<Arc<Vec<StoreDocument>>>,
        commit: bool,
    ) -> Result<IndexReport, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || Self::write(&inner, documents, commit))
            .await
            .map_err(|e| StoreError::Write(format!("indexing thread failed: {e}")))?
    }

    /// Deletes every event before `cutoff_ms` and commits: segments wholly before it go whole.
    /// The commit also makes durable what the processor wrote since its own last commit, which
    /// is harmless (its queue position still moves only at its own commit); a failure here
    /// loses that, and the processor is told at its next write or commit.
    fn drop_with(inner: &Inner, cutoff_ms: i64) -> Result<u64, StoreError> {
        let expired = WindowQuery::new(inner.fields.timestamp, None, Some(cutoff_ms - 1));
        let count = inner
            .reader
            .searcher()
            .search(&expired, &Count)
            .map_err(|e| StoreError::Search(format!("counting expired events: {e}")))?;
        if count == 0 {
            return Ok(0);
        }
        let mut writer = inner.writer.lock().unwrap_or_else(|poisoned| {
            let mut writer = poisoned.into_inner();
            writer.index = None;
            writer
        });
        if writer.lost_unseen {
            return Err(StoreError::Write(
                "the index writer failed in the last retention pass and the processor has not \
                 written again what it lost; retention waits for that"
                    .into(),
            ));
        }
        let dropped = Self::reopen_if_dead(inner, &mut writer).and_then(|()| {
            let index = writer
                .index
                .as_mut()
                .ok_or_else(|| StoreError::Write("no index writer".into()))?;
            index
                .delete_query(Box::new(expired))
                .map_err(|e| StoreError::Write(format!("deleting expired events: {e}")))?;
            Self::commit_now(inner, &mut writer)
        });
        if dropped.is_err() {
            // As after a failed write: the writer does not come back from a failed commit.
            writer.index = None;
            writer.lost_unseen = true;
        }
        dropped.map(|()| count as u64)
    }

    /// Bytes of the committed index: the files of its segments and its meta file. Not what a
    /// merge in progress is writing, nor the files of segments merged or dropped that the next
    /// garbage collection removes: counting those, a retention pass would drop whole days for
    /// bytes that are about to go anyway.
    fn bytes_of_committed_segments(inner: &Inner) -> Result<u64, StoreError> {
        let metas = inner
            .index
            .searchable_segment_metas()
            .map_err(|e| StoreError::Search(format!("reading the index's segments: {e}")))?;
        let files = metas
            .iter()
            .flat_map(|meta| meta.list_files())
            .chain(std::iter::once(PathBuf::from("meta.json")));
        let mut bytes = 0;
        for file in files {
            match std::fs::metadata(inner.path.join(&file)) {
                Ok(metadata) => bytes += metadata.len(),
                // A segment merged away since the metas were read: no longer counted.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(StoreError::Search(format!(
                        "reading {}: {e}",
                        inner.path.join(&file).display()
                    )));
                }
            }
        }
        Ok(bytes)
    }

    fn query(
        inner: &Inner,
        query: &SearchQuery,
    ) -> Result<Box<dyn tantivy::query::Query>, StoreError> {
        QueryBuilder {
            index: &inner.index,
            fields: &inner.fields,
        }
        .build(query)
    }

    fn run_search(inner: &Inner, query: &SearchQuery) -> Result<SearchResults, StoreError> {
        let searcher = inner.reader.searcher();
        let tantivy_query = Self::query(inner, query)?;
        let (field, value_type) = match query.sort.field {
            SortField::Timestamp => (schema::TIMESTAMP.to_owned(), ValueType::I64),
            SortField::Field(field) => (
                field.tantivy_name(),
                match field.kind() {
                    FieldKind::Long => ValueType::I64,
                    _ => ValueType::F64,
                },
            ),
        };
        let size = query.size.min(sluice_store::MAX_SEARCH_SIZE);
        // A search the rollups can count (filters on the dashboards' slices only) takes its
        // total from them: counting every match of a month's window reads every segment.
        // Without words, filters or a window tantivy counts from the segments' sizes: exact,
        // and nothing to save.
        let narrowed =
            !query.filters.is_empty() || query.from_ms.is_some() || query.to_ms.is_some();
        let everything = !narrowed && query.text.is_none();
        let counted = match query.total {
            Total::NotNeeded => None,
            Total::Counted | Total::UpTo(_) if narrowed => {
                match Self::rollup_question(inner, query, &Aggregations::new()) {
                    Ok(question) => {
                        let window = Self::roll_up_window(
                            inner,
                            &searcher,
                            query,
                            &question,
                            Unrolled::Count,
                        )?;
                        Some(question.count_parts(&window.parts(&question)) + window.counted)
                    }
                    Err(_) => None,
                }
            }
            Total::Counted | Total::UpTo(_) => None,
        };
        let total = match (counted, query.total) {
            (Some(_), _) => Total::NotNeeded,
            (None, Total::UpTo(_)) if everything => Total::Counted,
            (None, total) => total,
        };
        let weight = tantivy_query
            .weight(EnableScoring::disabled_from_searcher(&searcher))
            .map_err(|e| StoreError::Search(e.to_string()))?;
        let page = if size == 0 {
            let mut counter = TotalCounter::new(total);
            for reader in searcher.segment_readers() {
                counter
                    .count(weight.as_ref(), reader)
                    .map_err(|e| StoreError::Search(e.to_string()))?;
            }
            let (total, total_relation) = counter.finish();
            SortedPage {
                total,
                total_relation,
                hits: Vec::new(),
            }
        } else {
            SortedSearch {
                field,
                value_type,
                descending: query.sort.descending,
                after: query.search_after.clone(),
                limit: query.offset + size,
                offset: query.offset,
                total,
            }
            .run(&searcher, weight.as_ref(), &inner.columns)
            .map_err(|e| StoreError::Search(e.to_string()))?
        };
        let (total, total_relation) = match counted {
            Some(counted) => (counted, TotalRelation::Exact),
            None => (page.total, page.total_relation),
        };
        let mut hits = Vec::with_capacity(size);
        for (sort, address) in page.hits {
            let stored: TantivyDocument = searcher
                .doc(address)
                .map_err(|e| StoreError::Search(e.to_string()))?;
            let source = stored
                .get_first(inner.fields.source)
                .and_then(|v| v.as_str().map(|source| source.as_bytes().to_vec()))
                .unwrap_or_default();
            hits.push(Hit { source, sort });
        }
        Ok(SearchResults {
            total,
            total_relation,
            hits,
        })
    }

    fn run_aggregate(
        inner: &Inner,
        query: &SearchQuery,
        request: &Aggregations,
    ) -> Result<AggregationResults, StoreError> {
        let searcher = inner.reader.searcher();
        match Self::rollup_question(inner, query, request) {
            Ok(question) => {
                let window =
                    Self::roll_up_window(inner, &searcher, query, &question, Unrolled::RollUp)?;
                let results = question.answer_parts(&window.parts(&question));
                AggregationAnswered {
                    from_rollups: true,
                    why_events: None,
                }
                .emit();
                return Ok(results);
            }
            Err(why) => AggregationAnswered {
                from_rollups: false,
                why_events: Some(&why.0),
            }
            .emit(),
        }
        Self::aggregate_from_events(inner, &searcher, query, request)
    }

    /// Answers with tantivy's aggregations over the matching events, keeping large segments'
    /// results for repeated questions.
    fn aggregate_from_events(
        inner: &Inner,
        searcher: &tantivy::Searcher,
        query: &SearchQuery,
        request: &Aggregations,
    ) -> Result<AggregationResults, StoreError> {
        let failed = |e: tantivy::TantivyError| StoreError::Search(e.to_string());
        let tantivy_query = Self::query(inner, query)?;
        let rendered = Dialect::Tantivy.render(request);
        let tantivy_request: TantivyAggregations = serde_json::from_value(rendered.clone())
            .map_err(|e| StoreError::Search(format!("aggregation request: {e}")))?;
        let collector = DistributedAggregationCollector::from_aggs(
            tantivy_request.clone(),
            AggregationLimitsGuard::default(),
        );
        let weight_of = |query: &dyn tantivy::query::Query| {
            query
                .weight(EnableScoring::disabled_from_searcher(searcher))
                .map_err(failed)
        };
        let weight = weight_of(tantivy_query.as_ref())?;
        // The same question cut at the first slice boundary after the window's start: the part
        // after it is kept per segment for as long as the start stays within the slice.
        let edge = match query.from_ms {
            Some(from_ms) if inner.aggregations.keeps() => {
                let boundary = segment_aggregations::next_boundary(from_ms);
                let part = |from_ms: Option<i64>, to_ms: Option<i64>| {
                    let mut part = query.clone();
                    (part.from_ms, part.to_ms) = (from_ms, to_ms);
                    weight_of(Self::query(inner, &part)?.as_ref())
                };
                Some(Edge {
                    boundary,
                    before: part(Some(from_ms), Some(boundary - 1))?,
                    after: part(Some(boundary), query.to_ms)?,
                })
            }
            _ => None,
        };
        // What is asked, the window aside (it is decided per segment): the request, and the
        // query's text and filters as their complete debug form.
        let question = Question {
            text: format!("{rendered} {:?} {:?}", query.text, query.filters).into(),
            collector: &collector,
            weight: weight.as_ref(),
            from_ms: query.from_ms,
            to_ms: query.to_ms,
            edge: edge.as_ref(),
        };
        let segments = searcher
            .index()
            .search_executor()
            .map(
                |(ordinal, reader)| {
                    inner
                        .aggregations
                        .segment(&question, ordinal as u32, reader)
                },
                searcher.segment_readers().iter().enumerate(),
            )
            .map_err(failed)?;
        let mut reads = SegmentReads::default();
        // tantivy merges into the buckets already there: the first segment's result is the base.
        let mut merged: Option<IntermediateAggregationResults> = None;
        for (result, reused) in segments {
            match reused {
                true => reads.reused += 1,
                false => reads.computed += 1,
            }
            match &mut merged {
                None => merged = Some(result),
                Some(merged) => merged.merge_fruits(result).map_err(failed)?,
            }
        }
        reads.emit();
        let results = merged
            .unwrap_or_default()
            .into_final_result(tantivy_request, AggregationLimitsGuard::default())
            .map_err(failed)?;
        let answer = serde_json::to_value(results)
            .map_err(|e| StoreError::Search(format!("aggregation answer: {e}")))?;
        aggregation::read(request, Some(&answer), query.from_ms, query.to_ms)
    }
}

impl TantivyStore {
    /// The question, when rollups are kept and can answer it.
    fn rollup_question(
        inner: &Inner,
        query: &SearchQuery,
        request: &Aggregations,
    ) -> Result<RollupQuestion, Unanswerable> {
        match inner.roll_up {
            Some(_) => RollupQuestion::of(query, request),
            None => Err(Unanswerable(
                "rollups are off (store.rollups = false)".into(),
            )),
        }
    }

    /// What rollups know of the window of `query`: the day merges and each segment's rollup
    /// for its whole hours, its edges' events rolled up on the spot, and a segment not rolled
    /// up yet read whole.
    fn roll_up_window(
        inner: &Inner,
        searcher: &tantivy::Searcher,
        query: &SearchQuery,
        question: &RollupQuestion,
        unrolled: Unrolled,
    ) -> Result<WindowRollups, StoreError> {
        let failed = |e: tantivy::TantivyError| StoreError::Search(e.to_string());
        let weight_of = |query: &SearchQuery| {
            Self::query(inner, query)?
                .weight(EnableScoring::disabled_from_searcher(searcher))
                .map_err(failed)
        };
        let whole = weight_of(query)?;
        let filter = weight_of(&SearchQuery {
            from_ms: None,
            to_ms: None,
            ..query.clone()
        })?;
        let fields = question.fields();
        let mut window = WindowRollups {
            days: inner.rollups.days(),
            kept: Vec::new(),
            edges: Vec::new(),
            read: Vec::new(),
            counted: 0,
        };
        // The segments whose rollup the question reads: their whole hours are read from it (or
        // their days' merges), their edges below. A rollup whose breakdown the question needs
        // overflowed is read as events.
        let mut rolled_up: Vec<(&SegmentReader, Arc<Kept>)> = Vec::new();
        for reader in searcher.segment_readers() {
            match inner
                .rollups
                .of(reader)
                .filter(|r| question.reads(&r.outline))
            {
                Some(rollup) => rolled_up.push((reader, rollup)),
                None if unrolled == Unrolled::Count => {
                    window.counted += u64::from(whole.count(reader).map_err(failed)?);
                }
                None => {
                    let all = roll_up_matches(reader, whole.as_ref(), &fields, &inner.columns);
                    window.read.extend(all.map_err(failed)?);
                }
            }
        }
        let from_events = Self::edges_by_minute(inner, question, query, &rolled_up, &mut window)
            .map_err(failed)?;
        for (reader, rollup) in rolled_up {
            // An edge outside the segment's hours matches none of its events.
            let edges: Vec<(i64, i64)> = from_events
                .iter()
                .copied()
                .filter(|(from, to)| rollup.outline.may_hold(*from, *to))
                .collect();
            let (columns, rows) = (&inner.columns, &inner.rollups.hour_rows);
            let edges = roll_up_within(reader, filter.as_ref(), &edges, &fields, columns, rows);
            window.read.extend(edges.map_err(failed)?);
            window.kept.push((reader.segment_id(), rollup));
        }
        Ok(window)
    }

    /// Adds to `window` the edge hours that hold the whole minutes of the window's edges, over
    /// the segments `rolled_up`, and returns what of the edges is left to read from those
    /// segments' events: partial minutes, and the edges of hours whose minutes do not hold a
    /// breakdown the question reads.
    fn edges_by_minute(
        inner: &Inner,
        question: &RollupQuestion,
        query: &SearchQuery,
        rolled_up: &[(&SegmentReader, Arc<Kept>)],
        window: &mut WindowRollups,
    ) -> tantivy::Result<Vec<(i64, i64)>> {
        let mut from_events = Vec::new();
        for edge in question.edges(query) {
            let (from, to) = (
                edge.from_ms.unwrap_or(i64::MIN),
                edge.to_ms.unwrap_or(i64::MAX),
            );
            let Some(hours) = edge_minutes::edge_hours(from, to) else {
                from_events.push((from, to));
                continue;
            };
            for hour in hours {
                let (from, to) = (from.max(hour), to.min(hour + HOUR_MS - 1));
                let (Some((first, end)), rest) = edge_minutes::whole_minutes(from, to) else {
                    from_events.push((from, to));
                    continue;
                };
                let holders: Vec<&SegmentReader> = rolled_up
                    .iter()
                    .filter(|(_, rollup)| rollup.outline.may_hold(from, to))
                    .map(|(reader, _)| *reader)
                    .collect();
                if holders.is_empty() {
                    continue;
                }
                let (columns, rows) = (&inner.columns, &inner.rollups.hour_rows);
                let minutes = inner
                    .rollups
                    .edge_minutes
                    .hour(hour, &holders, columns, rows)?;
                if minutes.answers(question) {
                    window.edges.push((minutes, first, end));
                    from_events.extend(rest);
                } else {
                    from_events.push((from, to));
                }
            }
        }
        Ok(from_events)
    }
}

#[async_trait]
impl EventStore for TantivyStore {
    async fn index(&self, documents: Arc<Vec<StoreDocument>>) -> Result<IndexReport, StoreError> {
        if documents.is_empty() {
            return Ok(IndexReport::default());
        }
        self.write_blocking(Some(documents), true).await
    }

    /// Adds without committing: [`EventStore::commit`] makes many writes durable at once.
    async fn write(&self, documents: Arc<Vec<StoreDocument>>) -> Result<IndexReport, StoreError> {
        if documents.is_empty() {
            return Ok(IndexReport::default());
        }
        self.write_blocking(Some(documents), false).await
    }

    async fn commit(&self) -> Result<(), StoreError> {
        self.write_blocking(None, true).await.map(drop)
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, StoreError> {
        let inner = Arc::clone(&self.inner);
        let query = query.clone();
        tokio::task::spawn_blocking(move || Self::run_search(&inner, &query))
            .await
            .map_err(|e| StoreError::Search(format!("search thread failed: {e}")))?
    }

    async fn aggregate(
        &self,
        query: &SearchQuery,
        request: &Aggregations,
    ) -> Result<AggregationResults, StoreError> {
        let inner = Arc::clone(&self.inner);
        let query = query.clone();
        let request = request.clone();
        tokio::task::spawn_blocking(move || Self::run_aggregate(&inner, &query, &request))
            .await
            .map_err(|e| StoreError::Search(format!("search thread failed: {e}")))?
    }

    fn answers_from_rollups(&self, query: &SearchQuery, aggregations: &Aggregations) -> bool {
        Self::rollup_question(&self.inner, query, aggregations).is_ok()
    }

    async fn ready(&self) -> Result<(), StoreError> {
        if !self.inner.path.is_dir() {
            return Err(StoreError::Open {
                path: self.inner.path.display().to_string(),
                detail: "index directory is gone".into(),
            });
        }
        let failure = self
            .inner
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match failure {
            Some(reason) => Err(StoreError::Write(format!(
                "the last write to {} failed: {reason}",
                self.inner.path.display()
            ))),
            None => Ok(()),
        }
    }

    async fn usage(&self) -> Result<StoreUsage, StoreError> {
        let inner = Arc::clone(&self.inner);
        let bytes = tokio::task::spawn_blocking(move || Self::bytes_of_committed_segments(&inner))
            .await
            .map_err(|e| StoreError::Search(format!("search thread failed: {e}")))??;
        Ok(StoreUsage {
            bytes,
            oldest_ms: sluice_store::retention::oldest_event_ms(self).await?,
        })
    }

    async fn drop_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || Self::drop_with(&inner, cutoff_ms))
            .await
            .map_err(|e| StoreError::Write(format!("indexing thread failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_event::LogType;
    use sluice_store::conformance::document;
    use sluice_store::fields::Field;

    #[tokio::test]
    async fn tantivy_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
        sluice_store::conformance::run(&store, || async {}).await;
    }

    /// Batch `n`: 400 documents of about 1 KB of text, to fill a small disk quickly.
    fn wordy_batch(n: usize) -> Arc<Vec<StoreDocument>> {
        let text = format!("{n} {}", "lorem ipsum dolor sit amet ".repeat(40));
        Arc::new(
            (0..400)
                .map(|i| {
                    document(
                        &format!("b{n}-{i}"),
                        n as i64 * 1_000 + i as i64,
                        LogType::Error,
                        "error",
                        &text,
                    )
                })
                .collect(),
        )
    }

    #[tokio::test]
    async fn tantivy_passes_the_retention_conformance_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
        sluice_store::conformance::retention_drops_whole_days_before_the_cutoff(&store, || async {
        })
        .await;
    }

    /// Merges keep to one day, so that retention removes segments whole instead of leaving
    /// tombstones: after many one-day writes on two days have merged, dropping the older day
    /// leaves only segments of the newer one, none with a deleted document.
    #[tokio::test]
    async fn retention_drops_whole_segments_because_merges_keep_to_one_day() {
        use sluice_store::retention::{MS_PER_DAY, day_start};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
        let newer = day_start(1_796_000_000_000);
        let older = newer - MS_PER_DAY;
        // Alternating days, so that a merge policy blind to days would mix them.
        for n in 0..24i64 {
            let at = if n % 2 == 0 { older } else { newer } + n * 1_000;
            let id = format!("doc-{n}");
            store
                .index(Arc::new(vec![document(
                    &id,
                    at,
                    LogType::Error,
                    "error",
                    "m",
                )]))
                .await
                .expect("index");
        }
        let searcher = || store.inner.reader.searcher();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        // tantivy merges eight segments of a level at a time, in the background: twelve a day
        // become one and four.
        while searcher().segment_readers().len() > 10 {
            assert!(
                std::time::Instant::now() < deadline,
                "segments did not merge"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            store.inner.reader.reload().expect("reload");
        }
        store.inner.days.update(&searcher()).expect("days");
        for segment in searcher().segment_readers() {
            let (first, last) = window::time_bounds(segment)
                .expect("bounds")
                .expect("events");
            assert_eq!(
                day_start(first),
                day_start(last),
                "a segment spans two days"
            );
        }
        assert_eq!(store.drop_before(newer).await.expect("drop"), 12);
        let left = searcher();
        assert_eq!(left.num_docs(), 12);
        for segment in left.segment_readers() {
            assert_eq!(
                segment.num_deleted_docs(),
                0,
                "a segment was tombstoned, not dropped"
            );
        }
    }

    /// A commit that fails for want of space kills tantivy's writer. The store says so on
    /// `ready`, refuses writes meanwhile, and once space is back writes again with a new
    /// writer, without being reopened; what was committed before stays.
    #[tokio::test]
    async fn a_writer_killed_by_a_full_disk_comes_back_when_space_does() {
        let disk = sluice_storage::small_disk::SmallDisk::mount("24m");
        let ballast = disk.path().join("ballast");
        let store = TantivyStore::open(&disk.path().join("index"), 15_000_000).expect("opens");
        store.index(wordy_batch(0)).await.expect("room at first");
        // Fill the disk, leaving the index no room for its next segment.
        let free = sluice_storage::available_bytes(disk.path()).expect("statvfs");
        std::fs::write(&ballast, vec![0u8; free as usize]).ok();
        let mut failed = None;
        for n in 1..50 {
            if let Err(e) = store.index(wordy_batch(n)).await {
                failed = Some(e);
                break;
            }
        }
        let failed = failed.expect("a write fails on the full disk");
        assert!(
            store.ready().await.is_err(),
            "ready reports the failed write: {failed}"
        );
        assert!(store.index(wordy_batch(99)).await.is_err(), "still full");

        std::fs::remove_file(&ballast).expect("free space");
        let report = store.index(wordy_batch(100)).await.expect("writes again");
        assert_eq!(report.indexed, 400);
        store.ready().await.expect("ready again");
        let found = store
            .search(&SearchQuery {
                size: 0,
                ..SearchQuery::default()
            })
            .await
            .expect("search");
        assert!(
            found.total >= 800,
            "batch 0 and batch 100 are there: {}",
            found.total
        );
    }

    /// Documents the store holds, committed.
    async fn total_of(store: &TantivyStore) -> u64 {
        let all = SearchQuery {
            size: 0,
            ..SearchQuery::default()
        };
        store.search(&all).await.expect("search").total
    }

    /// Writes are searchable and durable once committed. A writer that failed lost what it was
    /// given since the last commit, so a commit refuses until something is written again: it
    /// must not report the lost documents durable.
    #[tokio::test]
    async fn writes_wait_for_the_commit_and_a_lost_writer_commits_nothing() {
        let disk = sluice_storage::small_disk::SmallDisk::mount("24m");
        let ballast = disk.path().join("ballast");
        let store = TantivyStore::open(&disk.path().join("index"), 15_000_000).expect("opens");
        let total = async || total_of(&store).await;
        store.write(wordy_batch(0)).await.expect("written");
        assert_eq!(total().await, 0, "not committed yet");
        store.commit().await.expect("committed");
        assert_eq!(total().await, 400);

        let free = sluice_storage::available_bytes(disk.path()).expect("statvfs");
        std::fs::write(&ballast, vec![0u8; free as usize]).ok();
        let mut failed = None;
        for n in 1..50 {
            let written = match store.write(wordy_batch(n)).await {
                Ok(_) => store.commit().await,
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                failed = Some(e);
                break;
            }
        }
        failed.expect("a write or commit fails on the full disk");
        std::fs::remove_file(&ballast).expect("free space");
        let refused = store
            .commit()
            .await
            .expect_err("nothing of the lost writer is committed");
        assert!(
            refused.to_string().contains("must be written again"),
            "{refused}"
        );

        store.write(wordy_batch(100)).await.expect("writes again");
        store.commit().await.expect("commits again");
        let committed = total().await;
        assert!(committed >= 800 && committed % 400 == 0, "{committed}");
    }

    /// A retention pass that fails on a full disk kills the writer and, with it, what the
    /// processor wrote since its last commit, without the processor seeing a failure: its next
    /// write is refused once, so that it writes everything since its commit again.
    #[tokio::test]
    async fn a_failed_retention_pass_makes_the_next_write_say_what_was_lost() {
        use sluice_store::retention::MS_PER_DAY;
        let disk = sluice_storage::small_disk::SmallDisk::mount("24m");
        let ballast = disk.path().join("ballast");
        let store = TantivyStore::open(&disk.path().join("index"), 15_000_000).expect("opens");
        let total = async || total_of(&store).await;
        // Events of 1970: past any retention.
        store.write(wordy_batch(0)).await.expect("written");
        store.commit().await.expect("committed");
        store
            .write(wordy_batch(1))
            .await
            .expect("written, not committed");

        let free = sluice_storage::available_bytes(disk.path()).expect("statvfs");
        std::fs::write(&ballast, vec![0u8; free as usize]).ok();
        store
            .drop_before(MS_PER_DAY)
            .await
            .expect_err("retention cannot commit on the full disk");
        std::fs::remove_file(&ballast).expect("free space");

        let refused = store
            .write(wordy_batch(2))
            .await
            .expect_err("the processor is told its writes were lost");
        assert!(
            refused.to_string().contains("must be written again"),
            "{refused}"
        );
        for n in [1, 2] {
            store.write(wordy_batch(n)).await.expect("written again");
        }
        store.commit().await.expect("committed");
        assert_eq!(total().await, 1_200);
        assert_eq!(
            store
                .drop_before(MS_PER_DAY)
                .await
                .expect("retention again"),
            1_200
        );
        assert_eq!(total().await, 0);
    }

    #[tokio::test]
    async fn reopening_keeps_committed_documents() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
            store
                .index(Arc::new(vec![document(
                    "x",
                    5,
                    LogType::Error,
                    "ERROR",
                    "kept",
                )]))
                .await
                .expect("index");
        }
        let store = TantivyStore::open(dir.path(), 20_000_000).expect("reopens");
        let all = SearchQuery {
            size: 10,
            ..SearchQuery::default()
        };
        assert_eq!(store.search(&all).await.expect("search").total, 1);
        // The reopened store knows the id is taken: writing it again replaces the document.
        store
            .index(Arc::new(vec![document(
                "x",
                6,
                LogType::Error,
                "ERROR",
                "replaced",
            )]))
            .await
            .expect("index");
        let found = store.search(&all).await.expect("search");
        assert_eq!(found.total, 1);
        assert_eq!(found.hits[0].sort.value, 6.0);
    }

    /// A large segment's kept aggregation is reused only while it is the same: a replaced
    /// document (a deletion) or a new segment shows in the next answer, and a window across the
    /// segment's edge is computed afresh.
    #[tokio::test]
    async fn kept_segment_aggregations_follow_deletions_and_new_segments() {
        aggregations_follow_deletions_and_new_segments(DEFAULT_KEPT_AGGREGATIONS).await;
    }

    /// With nothing kept (`store.kept_aggregations = 0`) every segment is read every time.
    #[tokio::test]
    async fn nothing_is_kept_when_keeping_is_off() {
        aggregations_follow_deletions_and_new_segments(0).await;
    }

    /// Searches keep each segment's sort and id columns open; a commit that removes a segment
    /// forgets them, rollups on or off (off, no rollup pass prunes them), so a merged-away
    /// segment's files are not held open.
    #[tokio::test]
    async fn columns_kept_for_searches_go_with_their_segments() {
        use std::collections::HashSet;
        use tantivy::index::SegmentId;
        let dir = tempfile::tempdir().expect("tempdir");
        let options = TantivyOptions {
            writer: WriterOptions::with_memory(20_000_000),
            kept_aggregations: 0,
            rollups: false,
        };
        let store = TantivyStore::open_with(dir.path(), options).expect("opens");
        let first: Vec<StoreDocument> = (0..100_i64)
            .map(|n| document(&format!("a{n}"), n * 1_000, LogType::Error, "info", "kept"))
            .collect();
        store.index(Arc::new(first.clone())).await.expect("index");
        let second = document("b0", 500_000, LogType::Error, "info", "kept");
        store.index(Arc::new(vec![second])).await.expect("index");
        let segments = || -> HashSet<SegmentId> {
            let searcher = store.inner.reader.searcher();
            searcher
                .segment_readers()
                .iter()
                .map(SegmentReader::segment_id)
                .collect()
        };
        let newest = SearchQuery {
            size: 5,
            ..SearchQuery::range(None, None)
        };
        let page = store.search(&newest).await.expect("search");
        assert_eq!(page.hits.len(), 5);
        let before = segments();
        assert_eq!(before.len(), 2);
        assert_eq!(store.inner.columns.segments(), before, "kept");

        // Every event of the first segment replayed: the commit removes it.
        store.index(Arc::new(first)).await.expect("replay");
        let after = segments();
        assert!(before.iter().any(|segment| !after.contains(segment)));
        assert!(
            store.inner.columns.segments().is_subset(&after),
            "the gone segment's columns are forgotten"
        );
        assert_eq!(store.search(&newest).await.expect("search").hits.len(), 5);
    }

    async fn aggregations_follow_deletions_and_new_segments(kept_aggregations: usize) {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = TantivyOptions {
            writer: WriterOptions::with_memory(400_000_000),
            kept_aggregations,
            rollups: true,
        };
        let store = TantivyStore::open_with(dir.path(), options).expect("opens");
        let type_of = |n: i64| match n % 2 {
            0 => LogType::Error,
            _ => LogType::Transaction,
        };
        let documents: Vec<StoreDocument> = (0..60_000_i64)
            .map(|n| document(&format!("k{n}"), n * 1_000, type_of(n), "info", "kept"))
            .collect();
        store.index(Arc::new(documents)).await.expect("index");
        let counts = |from_ms, to_ms| {
            let store = store.clone();
            async move {
                // A service filter, which rollups do not split by: the events answer.
                let query = SearchQuery::range(from_ms, to_ms).and(sluice_store::Filter::Equals(
                    Field::Service,
                    "checkout".into(),
                ));
                let mut counts: Vec<(String, u64)> = store
                    .count_by(&query, Field::LogType, 5)
                    .await
                    .expect("aggregate")
                    .into_iter()
                    .map(|c| (c.value, c.count))
                    .collect();
                counts.sort();
                counts
            }
        };
        let both = |errors: u64, transactions: u64| {
            vec![
                ("error".to_owned(), errors),
                ("transaction".to_owned(), transactions),
            ]
        };
        // One event a second for 16 h 40 min.
        let whole = (Some(0), Some(100_000_000));
        assert_eq!(counts(whole.0, whole.1).await, both(30_000, 30_000));
        assert_eq!(counts(whole.0, whole.1).await, both(30_000, 30_000));
        let kept = |store: &TantivyStore| store.inner.aggregations.len();
        assert_eq!(
            kept(&store),
            kept_aggregations.min(1),
            "the large segment's result is kept when keeping is on"
        );

        // k0 was an error; now a transaction (its old copy deleted).
        let replaced = document("k0", 0, LogType::Transaction, "info", "kept");
        store.index(Arc::new(vec![replaced])).await.expect("index");
        assert_eq!(counts(whole.0, whole.1).await, both(29_999, 30_001));
        let added = document("new", 5_000, LogType::Error, "info", "kept");
        store.index(Arc::new(vec![added])).await.expect("index");
        assert_eq!(counts(whole.0, whole.1).await, both(30_000, 30_001));
        // Across the large segment's edge: 10..=19 s holds five of each.
        assert_eq!(counts(Some(10_000), Some(19_000)).await, both(5, 5));

        // A window starting at 2 h 30 min, inside the large segment: its part from 3 h on is
        // kept, and serves while the start moves within the hour; the slice before is read.
        let before = kept(&store);
        let hour = 3_600_000;
        assert_eq!(
            counts(Some(hour * 5 / 2), whole.1).await,
            both(25_500, 25_500)
        );
        assert_eq!(kept(&store), before + kept_aggregations.min(1));
        assert_eq!(counts(Some(9_360_000), whole.1).await, both(25_320, 25_320));
        assert_eq!(kept(&store), before + kept_aggregations.min(1));
        // A document after the cut replaced: the kept part is computed afresh.
        let replaced = document("k20000", 20_000_000, LogType::Transaction, "info", "kept");
        store.index(Arc::new(vec![replaced])).await.expect("index");
        assert_eq!(counts(Some(9_360_000), whole.1).await, both(25_319, 25_321));
        // Ending before the segment's last event, the window is read as a whole.
        assert_eq!(
            counts(Some(9_360_000), Some(9_360_000 + 9_999)).await,
            both(5, 5)
        );
    }

    /// Segments visited best first, skipped below the bar, read through the column's candidates
    /// or in blocks, with replaced (deleted) documents and a filter: every page in either
    /// direction equals a full sort of what should match.
    #[tokio::test]
    async fn pruned_pages_equal_a_full_sort() {
        use sluice_store::{Filter, Sort, SortField};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
        let mut live = std::collections::BTreeMap::new();
        for batch in 0..6_i64 {
            let documents: Vec<StoreDocument> = (0..400_i64)
                .map(|n| {
                    // Later batches replace some earlier ids, with a new time and type.
                    let id = match n % 9 {
                        0 if batch > 0 => format!("b{}-{}", batch - 1, n + 1),
                        _ => format!("b{batch}-{n}"),
                    };
                    // Mostly rising with the batch, as events arrive, with ties across segments.
                    let at = batch * 300 + (n * 37) % 500;
                    let log_type = if n % 3 == 0 {
                        LogType::Error
                    } else {
                        LogType::Transaction
                    };
                    live.insert(id.clone(), (at, log_type));
                    document(&id, at, log_type, "info", "pruned")
                })
                .collect();
            store.index(Arc::new(documents)).await.expect("index");
        }
        for descending in [true, false] {
            let mut expected: Vec<(i64, String)> = live
                .iter()
                .filter(|(_, (_, log_type))| *log_type == LogType::Transaction)
                .map(|(id, (at, _))| (*at, id.clone()))
                .collect();
            expected.sort();
            if descending {
                expected.reverse();
            }
            let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
            let query = |offset, size, search_after| SearchQuery {
                filters: vec![Filter::Equals(Field::LogType, "transaction".into())],
                sort: Sort {
                    field: SortField::Timestamp,
                    descending,
                },
                offset,
                size,
                search_after,
                ..SearchQuery::default()
            };
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .search(&query(0, 13, after.clone()))
                    .await
                    .expect("search");
                assert_eq!(page.total as usize, expected.len());
                paged.extend(page.hits.iter().map(|h| h.id().to_owned()));
                match page.hits.last() {
                    Some(last) if page.hits.len() == 13 => after = Some(last.sort.clone()),
                    _ => break,
                }
            }
            assert_eq!(paged, expected, "search_after, descending {descending}");
            for offset in [0, 5, 390, 1200] {
                let page = store
                    .search(&query(offset, 20, None))
                    .await
                    .expect("search");
                let ids: Vec<String> = page.hits.into_iter().map(|h| h.sort.id).collect();
                let end = (offset + 20).min(expected.len());
                assert_eq!(
                    ids,
                    expected[offset..end],
                    "offset {offset}, descending {descending}"
                );
            }
            // Words the rollups cannot count, counted up to a bound: the same page; past the
            // bound the bound, "at least".
            let matching = expected.len() as u64;
            for (bound, total) in [
                (100, (100, TotalRelation::AtLeast)),
                (matching - 1, (matching - 1, TotalRelation::AtLeast)),
                (matching, (matching, TotalRelation::Exact)),
            ] {
                for size in [0, 20] {
                    let worded = SearchQuery {
                        text: sluice_store::text_query::parse("pruned").expect("parses"),
                        total: Total::UpTo(bound),
                        ..query(0, size, None)
                    };
                    let page = store.search(&worded).await.expect("search");
                    let ids: Vec<String> = page.hits.into_iter().map(|h| h.sort.id).collect();
                    assert_eq!(ids, expected[..size], "descending {descending}");
                    assert_eq!(
                        (page.total, page.total_relation),
                        total,
                        "counted up to {bound}, a page of {size}"
                    );
                }
            }
        }
    }

    /// Ties across many segments: every page after the previous one's last key, and every
    /// offset page, follow (time desc, id desc) exactly.
    #[tokio::test]
    async fn paging_is_exact_across_segments_and_ties() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TantivyStore::open(dir.path(), 20_000_000).expect("opens");
        let mut expected = Vec::new();
        for batch in 0..5 {
            let documents: Vec<StoreDocument> = (0..20)
                .map(|n| {
                    let id = format!("d{:02}-{batch}", (n * 7 + batch * 3) % 20);
                    let at = 1_000 + (n % 2) as i64;
                    expected.push((at, id.clone()));
                    document(&id, at, LogType::Error, "error", "tie")
                })
                .collect();
            // One commit per batch: one segment each.
            store.index(Arc::new(documents)).await.expect("index");
        }
        expected.sort_by(|a, b| b.cmp(a));
        let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .search(&SearchQuery {
                    search_after: after.clone(),
                    size: 7,
                    ..SearchQuery::default()
                })
                .await
                .expect("search");
            paged.extend(page.hits.iter().map(|h| h.id().to_owned()));
            match page.hits.last() {
                Some(last) if page.hits.len() == 7 => after = Some(last.sort.clone()),
                _ => break,
            }
        }
        assert_eq!(paged, expected);
        for offset in [0, 13, 50, 95] {
            let page = store
                .search(&SearchQuery {
                    offset,
                    size: 10,
                    ..SearchQuery::default()
                })
                .await
                .expect("search");
            let ids: Vec<String> = page.hits.into_iter().map(|h| h.sort.id).collect();
            let end = (offset + 10).min(expected.len());
            assert_eq!(ids, expected[offset..end], "offset {offset}");
        }
    }

    /// A backup taken while the index commits and merges is always one whole commit: it opens,
    /// and holds whole batches only, never fewer than the one before it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn backups_taken_while_commits_and_merges_run_are_whole_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Arc::new(TantivyStore::open(&dir.path().join("index"), 20_000_000).expect("opens"));
        store.write(wordy_batch(0)).await.expect("written");
        store.commit().await.expect("committed");
        let writer = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for n in 1..40 {
                    store.write(wordy_batch(n)).await.expect("written");
                    store.commit().await.expect("committed");
                }
            })
        };
        let mut last = 0;
        for attempt in 0..15 {
            let out = dir.path().join(format!("backup-{attempt}"));
            let index = dir.path().join("index");
            let taken = tokio::task::spawn_blocking(move || backup::back_up(&index, &out))
                .await
                .expect("joined")
                .expect("backed up");
            assert_eq!(
                taken.documents % 400,
                0,
                "whole batches: {}",
                taken.documents
            );
            assert!(taken.documents >= last, "{} after {last}", taken.documents);
            last = taken.documents;
        }
        writer.await.expect("writer");
        let out = dir.path().join("backup-last");
        let index = dir.path().join("index");
        let taken = tokio::task::spawn_blocking(move || backup::back_up(&index, &out))
            .await
            .expect("joined")
            .expect("backed up");
        assert_eq!(taken.documents, 40 * 400);
    }

    /// A segment file that `meta.json` names but that is gone (a merge removed it between the
    /// two reads) is noticed: the backup starts again from a newer `meta.json`, and says so when
    /// none comes, rather than keeping a copy that would not open.
    #[tokio::test]
    async fn a_backup_notices_a_segment_merged_away_under_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = dir.path().join("index");
        let store = TantivyStore::open(&index, 20_000_000).expect("opens");
        store.write(wordy_batch(0)).await.expect("written");
        store.commit().await.expect("committed");
        drop(store);
        let postings = std::fs::read_dir(&index)
            .expect("index dir")
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "idx"))
            .expect("a segment");
        std::fs::remove_file(postings).expect("removed");
        let refused = backup::back_up(&index, &dir.path().join("backup")).expect_err("incomplete");
        assert!(
            refused
                .to_string()
                .contains("merged away while it was copied"),
            "{refused}"
        );
    }
}
