//! Every internal event Sluice emits, with the metric it counts and the log line it writes.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use tracing::{debug, error, info, warn};

use super::InternalEvent;
use super::throttle::LogThrottle;
use sluice_event::Source;
use sluice_event::validate::RejectCode;

pub const RECEIVED: &str = "sluice_events_received_total";
pub const ACCEPTED: &str = "sluice_events_accepted_total";
pub const REJECTED: &str = "sluice_events_rejected_total";
pub const REQUESTS_REFUSED: &str = "sluice_ingest_requests_refused_total";
pub const THROTTLED: &str = "sluice_ingest_throttled_total";
pub const TLS_RELOAD_FAILURES: &str = "sluice_tls_reload_failures_total";
pub const TLS_HANDSHAKE_FAILURES: &str = "sluice_tls_handshake_failures_total";
pub const QUEUE_APPEND: &str = "sluice_queue_append_duration_seconds";
pub const QUEUE_LAG: &str = "sluice_queue_lag_records";
pub const QUEUE_BACKLOG_BYTES: &str = "sluice_queue_backlog_bytes";
pub const PROCESSED: &str = "sluice_events_processed_total";
pub const INDEXED: &str = "sluice_events_indexed_total";
pub const DEAD_LETTERED: &str = "sluice_events_dead_lettered_total";
pub const BATCH_DURATION: &str = "sluice_processor_batch_duration_seconds";
pub const BATCH_SIZE: &str = "sluice_processor_batch_size_records";
pub const STORE_WRITE: &str = "sluice_store_write_duration_seconds";
pub const STORE_COMMIT: &str = "sluice_store_commit_duration_seconds";
pub const STORE_ERRORS: &str = "sluice_store_errors_total";
pub const GEOIP_LOOKUPS: &str = "sluice_geoip_lookups_total";
pub const GEOIP_LOADED: &str = "sluice_geoip_database_loaded";
pub const FRAUD_SCORED: &str = "sluice_fraud_scored_total";
pub const FRAUD_DETECTED: &str = "sluice_fraud_detections_total";
pub const FRAUD_INDICATORS: &str = "sluice_fraud_indicators_total";
pub const HTTP_DURATION: &str = "sluice_http_request_duration_seconds";
pub const AUTH_REFUSED: &str = "sluice_auth_refused_total";
pub const PARTITION_LAG: &str = "sluice_queue_partition_lag_records";
pub const LOGINS: &str = "sluice_auth_logins_total";
pub const BULK_REQUESTS: &str = "sluice_store_bulk_duration_seconds";
pub const BULK_BYTES: &str = "sluice_store_bulk_size_bytes";
pub const ANSWER_CACHE: &str = "sluice_api_answer_cache_total";
pub const SEGMENT_AGGREGATIONS: &str = "sluice_store_segment_aggregations_total";
pub const ROLLUPS_BUILT: &str = "sluice_store_rollups_built_total";
pub const ROLLUP_FAILURES: &str = "sluice_store_rollup_failures_total";
pub const ROLLUP_OVERFLOWS: &str = "sluice_store_rollup_overflows_total";
pub const AGGREGATION_PATH: &str = "sluice_store_aggregations_total";
pub const IN_FLIGHT_BYTES: &str = "sluice_ingest_in_flight_bytes";
pub const BACKEND_UP: &str = "sluice_backend_up";
pub const BACKEND_FAILURES: &str = "sluice_backend_failures_total";
pub const RECORDS_REPAIRED: &str = "sluice_events_repaired_total";
pub const FREE_BYTES: &str = "sluice_storage_free_bytes";
pub const LOG_LINES_LOST: &str = "sluice_log_lines_lost_total";
pub const STORE_BYTES: &str = "sluice_store_bytes";
pub const STORE_OLDEST_EVENT: &str = "sluice_store_oldest_event_timestamp_seconds";
pub const RETENTION_DROPPED: &str = "sluice_store_retention_dropped_events_total";
pub const RETENTION_FAILURES: &str = "sluice_store_retention_failures_total";

/// Refusals of whole requests are logged at most once per key every ten seconds.
static REFUSALS: LogThrottle = LogThrottle::new(Duration::from_secs(10));

pub(super) fn describe() {
    describe_counter!(
        AUTH_REFUSED,
        "Requests refused for missing or insufficient credentials, by reason"
    );
    describe_counter!(LOGINS, "Login attempts, by outcome");
    describe_counter!(
        SEGMENT_AGGREGATIONS,
        "Segments an embedded-store aggregation read (computed) or found kept (reused)"
    );
    describe_counter!(
        ROLLUPS_BUILT,
        "Segment rollups the embedded store built (for new, merged or changed segments)"
    );
    describe_counter!(
        ROLLUP_FAILURES,
        "Passes that failed to build or keep segment rollups (aggregations read events meanwhile)"
    );
    describe_counter!(
        ROLLUP_OVERFLOWS,
        "Segment rollups built without a breakdown that had too many values in an hour, by field \
         (questions by it read that segment's events)"
    );
    describe_counter!(
        AGGREGATION_PATH,
        "Aggregations answered, by path (rollup: hour buckets plus the window's edges; events)"
    );
    describe_counter!(
        ANSWER_CACHE,
        "Analytics answers looked up in the cache, by outcome (hit, miss, error)"
    );
    describe_histogram!(
        BULK_REQUESTS,
        "Elasticsearch _bulk request time, by outcome (ok, item_errors, failed)"
    );
    describe_histogram!(BULK_BYTES, "Elasticsearch _bulk request body size");
    describe_gauge!(
        PARTITION_LAG,
        "Records of a Kafka partition the processors' group has not consumed yet"
    );
    describe_counter!(RECEIVED, "Records received by ingest, valid or not");
    describe_counter!(
        ACCEPTED,
        "Records accepted by ingest and durable in the queue"
    );
    describe_counter!(REJECTED, "Records refused by ingest validation, by reason");
    describe_counter!(
        REQUESTS_REFUSED,
        "Whole ingest requests refused, by reason (too_large, queue_full, disk_full, in_flight_limit, …)"
    );
    describe_counter!(
        THROTTLED,
        "Ingest requests refused for the producer's quota, by producer (key:<id>, user:<id>) and limit"
    );
    describe_counter!(
        TLS_RELOAD_FAILURES,
        "Changed TLS certificate files that did not load (the previous pair is still served)"
    );
    describe_counter!(
        TLS_HANDSHAKE_FAILURES,
        "Connections whose TLS handshake failed or timed out (plain HTTP to the TLS port, untrusted certificate)"
    );
    describe_gauge!(
        IN_FLIGHT_BYTES,
        "Request bytes ingest holds in memory now (bounded by ingest.max_in_flight_bytes)"
    );
    describe_gauge!(
        BACKEND_UP,
        "1 while a backend works for the component that uses it, 0 while it fails (by check)"
    );
    describe_counter!(
        BACKEND_FAILURES,
        "Operations on a backend that failed and were retried, by check"
    );
    describe_counter!(
        RECORDS_REPAIRED,
        "Records indexed with a repair, by kind (lone_surrogate: replaced by U+FFFD)"
    );
    describe_counter!(
        LOG_LINES_LOST,
        "Log lines that could not be written (standard error on a full disk, or closed)"
    );
    describe_gauge!(
        FREE_BYTES,
        "Free bytes on the filesystem of each guarded data directory, by path"
    );
    describe_histogram!(
        QUEUE_APPEND,
        "Time to make an ingest batch durable in the queue"
    );
    describe_gauge!(
        QUEUE_LAG,
        "Records in the queue not yet committed by the processor"
    );
    describe_gauge!(
        QUEUE_BACKLOG_BYTES,
        "Bytes held by the queue waiting for the processor"
    );
    describe_gauge!(
        STORE_BYTES,
        "Bytes the event store takes on disk, every copy"
    );
    describe_gauge!(
        STORE_OLDEST_EVENT,
        "Event time of the oldest event the store keeps (0 when empty)"
    );
    describe_counter!(
        RETENTION_DROPPED,
        "Events dropped by retention, by reason (age: past store.retention_days; disk: over store.max_disk_bytes)"
    );
    describe_counter!(RETENTION_FAILURES, "Retention passes that failed");
    describe_counter!(PROCESSED, "Records read from the queue by the processor");
    describe_counter!(INDEXED, "Documents acknowledged by the event store");
    describe_counter!(
        DEAD_LETTERED,
        "Records sent to the dead-letter queue, by reason"
    );
    describe_histogram!(BATCH_DURATION, "Processor batch time: read to queue commit");
    describe_histogram!(BATCH_SIZE, "Records per processor batch");
    describe_histogram!(
        STORE_WRITE,
        "Event store write time (a _bulk request, or handing a batch to the embedded index)"
    );
    describe_histogram!(
        STORE_COMMIT,
        "Event store commit time: the batches written since the last one made durable"
    );
    describe_counter!(STORE_ERRORS, "Failed event store writes (retried)");
    describe_counter!(
        GEOIP_LOOKUPS,
        "GeoIP lookups by result (found, not_found, cached)"
    );
    describe_gauge!(GEOIP_LOADED, "1 when a GeoIP database is loaded");
    describe_counter!(FRAUD_SCORED, "Transactions scored by the fraud engine");
    describe_counter!(
        FRAUD_DETECTED,
        "Transactions at or above the fraud threshold"
    );
    describe_counter!(FRAUD_INDICATORS, "Fraud indicators fired, by indicator");
    describe_histogram!(
        HTTP_DURATION,
        "HTTP request latency by method, route and status"
    );
}

/// Records arrived at an ingest endpoint.
pub struct EventsReceived {
    pub source: Source,
    pub count: usize,
}

impl InternalEvent for EventsReceived {
    fn emit(self) {
        counter!(RECEIVED, "source" => self.source.as_str()).increment(self.count as u64);
    }
}

/// Records made durable in the queue.
pub struct EventsAccepted {
    pub source: Source,
    pub count: usize,
    pub append: Duration,
}

impl InternalEvent for EventsAccepted {
    fn emit(self) {
        debug!(
            source = self.source.as_str(),
            count = self.count,
            "events accepted"
        );
        counter!(ACCEPTED, "source" => self.source.as_str()).increment(self.count as u64);
        histogram!(QUEUE_APPEND).record(self.append.as_secs_f64());
    }
}

/// A record refused by validation at ingest (the producer is told; this counts it).
pub struct EventRejected {
    pub source: Source,
    pub code: RejectCode,
}

impl InternalEvent for EventRejected {
    fn emit(self) {
        counter!(REJECTED, "source" => self.source.as_str(), "reason" => self.code.as_str())
            .increment(1);
    }
}

/// A whole ingest request refused before its records were looked at.
pub struct RequestRefused<'a> {
    pub source: Source,
    pub reason: &'static str,
    pub detail: &'a str,
}

impl InternalEvent for RequestRefused<'_> {
    fn emit(self) {
        if let Some(held_back) = REFUSALS.admit(self.reason) {
            warn!(
                source = self.source.as_str(),
                reason = self.reason,
                detail = self.detail,
                more_refused_since_last_logged = held_back,
                "ingest request refused (logged at most every 10 s per reason; the metric counts all)"
            );
        }
        counter!(REQUESTS_REFUSED, "source" => self.source.as_str(), "reason" => self.reason)
            .increment(1);
    }
}

/// A producer was turned away for its quota (`[ingest.quota]`, or its key's own).
pub struct IngestThrottled<'a> {
    /// `key:<id>` or `user:<id>`: bounded by the keys and users there are.
    pub producer: &'a str,
    pub limit: &'static str,
}

impl InternalEvent for IngestThrottled<'_> {
    fn emit(self) {
        if let Some(held_back) = REFUSALS.admit("quota_exceeded") {
            warn!(
                producer = self.producer,
                limit = self.limit,
                more_refused_since_last_logged = held_back,
                "producer over its quota (logged at most every 10 s; the metric counts all)"
            );
        }
        counter!(THROTTLED, "key" => self.producer.to_owned(), "limit" => self.limit).increment(1);
    }
}

/// A TLS certificate and key were loaded (at start, or after the files changed).
pub struct TlsCertificateLoaded<'a> {
    pub path: &'a std::path::Path,
}

impl InternalEvent for TlsCertificateLoaded<'_> {
    fn emit(self) {
        info!(cert = %self.path.display(), "TLS certificate loaded");
    }
}

/// Changed TLS files did not load; the pair loaded before is still served.
pub struct TlsReloadFailed<'a> {
    pub error: &'a str,
}

impl InternalEvent for TlsReloadFailed<'_> {
    fn emit(self) {
        error!(
            error = self.error,
            "the changed TLS certificate or key did not load; still serving the previous pair"
        );
        counter!(TLS_RELOAD_FAILURES).increment(1);
    }
}

/// A client's TLS handshake failed or timed out.
pub struct TlsHandshakeFailed;

impl InternalEvent for TlsHandshakeFailed {
    fn emit(self) {
        counter!(TLS_HANDSHAKE_FAILURES).increment(1);
    }
}

/// How much waits in the queue; emitted after each append and commit.
pub struct QueueBacklog {
    pub records: u64,
    pub bytes: usize,
}

impl InternalEvent for QueueBacklog {
    fn emit(self) {
        gauge!(QUEUE_LAG).set(self.records as f64);
        gauge!(QUEUE_BACKLOG_BYTES).set(self.bytes as f64);
    }
}

/// A processor batch went all the way: stored (or dead-lettered) and committed.
pub struct BatchProcessed {
    pub records: usize,
    pub indexed: usize,
    pub duration: Duration,
}

impl InternalEvent for BatchProcessed {
    fn emit(self) {
        debug!(
            records = self.records,
            indexed = self.indexed,
            elapsed_ms = self.duration.as_millis() as u64,
            "batch processed"
        );
        counter!(PROCESSED).increment(self.records as u64);
        counter!(INDEXED).increment(self.indexed as u64);
        histogram!(BATCH_DURATION).record(self.duration.as_secs_f64());
        histogram!(BATCH_SIZE).record(self.records as f64);
    }
}

/// The store acknowledged a write.
pub struct StoreWritten {
    pub documents: usize,
    pub duration: Duration,
}

impl InternalEvent for StoreWritten {
    fn emit(self) {
        debug!(
            documents = self.documents,
            elapsed_ms = self.duration.as_millis() as u64,
            "store write"
        );
        histogram!(STORE_WRITE).record(self.duration.as_secs_f64());
    }
}

/// The store made the batches written since its last commit durable.
pub struct StoreCommitted {
    pub documents: usize,
    pub duration: Duration,
}

impl InternalEvent for StoreCommitted {
    fn emit(self) {
        debug!(
            documents = self.documents,
            elapsed_ms = self.duration.as_millis() as u64,
            "store commit"
        );
        histogram!(STORE_COMMIT).record(self.duration.as_secs_f64());
    }
}

/// A store write failed and will be retried; nothing is committed meanwhile.
pub struct StoreWriteFailed<'a> {
    pub error: &'a str,
    pub attempt: u32,
    pub retry_in: Duration,
}

impl InternalEvent for StoreWriteFailed<'_> {
    fn emit(self) {
        error!(
            error = self.error,
            attempt = self.attempt,
            retry_in_ms = self.retry_in.as_millis() as u64,
            "event store write failed; retrying, queue position held"
        );
        counter!(STORE_ERRORS).increment(1);
    }
}

/// A retention pass ended: what it dropped and what the store holds now.
pub struct RetentionEnforced {
    pub expired: u64,
    pub evicted: u64,
    pub bytes: u64,
    pub oldest_ms: Option<i64>,
    /// The current day alone is over `store.max_disk_bytes`.
    pub over_disk_bound: bool,
    pub max_disk_bytes: u64,
}

impl InternalEvent for RetentionEnforced {
    fn emit(self) {
        if self.expired + self.evicted > 0 {
            info!(
                expired = self.expired,
                evicted = self.evicted,
                bytes = self.bytes,
                "retention dropped old events"
            );
        }
        if self.over_disk_bound {
            warn!(
                bytes = self.bytes,
                max_disk_bytes = self.max_disk_bytes,
                "the event store is over store.max_disk_bytes with only the current day left; \
                 raise the bound or give the store more disk"
            );
        }
        counter!(RETENTION_DROPPED, "reason" => "age").increment(self.expired);
        counter!(RETENTION_DROPPED, "reason" => "disk").increment(self.evicted);
        gauge!(STORE_BYTES).set(self.bytes as f64);
        gauge!(STORE_OLDEST_EVENT).set(self.oldest_ms.map_or(0.0, |ms| ms as f64 / 1000.0));
    }
}

/// A retention pass failed; the next one tries again.
pub struct RetentionFailed<'a> {
    pub error: &'a str,
}

impl InternalEvent for RetentionFailed<'_> {
    fn emit(self) {
        warn!(
            error = self.error,
            "retention pass failed; trying again at the next one"
        );
        counter!(RETENTION_FAILURES).increment(1);
    }
}

/// Records sent to the dead-letter queue.
pub struct EventsDeadLettered<'a> {
    pub stage: &'a str,
    pub code: RejectCode,
    pub count: usize,
    pub example: &'a str,
}

impl InternalEvent for EventsDeadLettered<'_> {
    fn emit(self) {
        warn!(
            stage = self.stage,
            reason = self.code.as_str(),
            count = self.count,
            example = self.example,
            "records dead-lettered"
        );
        counter!(DEAD_LETTERED, "stage" => self.stage.to_owned(), "reason" => self.code.as_str())
            .increment(self.count as u64);
    }
}

/// GeoIP lookups of one batch.
pub struct GeoIpLookups {
    pub found: usize,
    pub not_found: usize,
    pub cached: usize,
}

impl InternalEvent for GeoIpLookups {
    fn emit(self) {
        counter!(GEOIP_LOOKUPS, "result" => "found").increment(self.found as u64);
        counter!(GEOIP_LOOKUPS, "result" => "not_found").increment(self.not_found as u64);
        counter!(GEOIP_LOOKUPS, "result" => "cached").increment(self.cached as u64);
    }
}

/// A GeoIP database was loaded, or there is none (said once, at start).
pub struct GeoIpDatabase<'a> {
    pub loaded: Option<&'a str>,
    pub detail: &'a str,
}

impl InternalEvent for GeoIpDatabase<'_> {
    fn emit(self) {
        match self.loaded {
            Some(path) => info!(path, detail = self.detail, "GeoIP database loaded"),
            None => warn!(
                detail = self.detail,
                "running without GeoIP: events get no geo.* fields"
            ),
        }
        gauge!(GEOIP_LOADED).set(if self.loaded.is_some() { 1.0 } else { 0.0 });
    }
}

/// Events the fraud engine scored in a batch: how many, how many it flagged, and how often each
/// indicator fired (by name). Counted per batch, not per event: a metric handle is looked up in
/// the registry each time one is counted.
pub struct FraudScored<I> {
    pub scored: u64,
    pub detected: u64,
    pub indicators: I,
}

impl<I: IntoIterator<Item = (&'static str, u64)>> InternalEvent for FraudScored<I> {
    fn emit(self) {
        counter!(FRAUD_SCORED).increment(self.scored);
        if self.detected > 0 {
            counter!(FRAUD_DETECTED).increment(self.detected);
        }
        for (indicator, fired) in self.indicators {
            if fired > 0 {
                counter!(FRAUD_INDICATORS, "indicator" => indicator).increment(fired);
            }
        }
    }
}

/// An HTTP request answered.
pub struct HttpRequestServed {
    pub method: String,
    pub route: String,
    pub status: u16,
    pub duration: Duration,
}

impl InternalEvent for HttpRequestServed {
    fn emit(self) {
        histogram!(HTTP_DURATION, "method" => self.method, "route" => self.route, "status" => self.status.to_string())
            .record(self.duration.as_secs_f64());
    }
}

/// A request refused by the access guard (401 or 403).
pub struct AuthRefused<'a> {
    pub route: &'a str,
    pub status: u16,
    pub reason: &'static str,
}

impl InternalEvent for AuthRefused<'_> {
    fn emit(self) {
        debug!(
            route = self.route,
            status = self.status,
            reason = self.reason,
            "request refused by the access guard"
        );
        counter!(AUTH_REFUSED, "reason" => self.reason).increment(1);
    }
}

/// A login attempt and how it ended: `success`, `invalid_credentials`, `rate_limited`, `locked`.
pub struct LoginAttempted<'a> {
    pub username: &'a str,
    pub outcome: &'static str,
}

impl InternalEvent for LoginAttempted<'_> {
    fn emit(self) {
        if self.outcome == "success" {
            info!(username = self.username, "login");
        } else {
            warn!(
                username = self.username,
                outcome = self.outcome,
                "login refused"
            );
        }
        counter!(LOGINS, "outcome" => self.outcome).increment(1);
    }
}

/// How far the processors' consumer group is behind on one Kafka partition, from librdkafka's
/// statistics.
pub struct QueuePartitionLag<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub records: u64,
}

impl InternalEvent for QueuePartitionLag<'_> {
    fn emit(self) {
        gauge!(PARTITION_LAG, "topic" => self.topic.to_owned(), "partition" => self.partition.to_string())
            .set(self.records as f64);
    }
}

/// One `_bulk` request to Elasticsearch came back (or failed as a whole).
pub struct BulkRequestSent<'a> {
    pub documents: usize,
    pub bytes: usize,
    pub duration: Duration,
    /// `ok`, `item_errors` or `failed`.
    pub outcome: &'static str,
    /// Why the request failed as a whole, for the log.
    pub error: Option<&'a str>,
}

impl InternalEvent for BulkRequestSent<'_> {
    fn emit(self) {
        let elapsed_ms = self.duration.as_millis() as u64;
        match self.error {
            Some(error) => warn!(
                documents = self.documents,
                bytes = self.bytes,
                elapsed_ms,
                error,
                "Elasticsearch _bulk request failed"
            ),
            None => debug!(
                documents = self.documents,
                bytes = self.bytes,
                elapsed_ms,
                outcome = self.outcome,
                "Elasticsearch _bulk request"
            ),
        }
        histogram!(BULK_REQUESTS, "outcome" => self.outcome).record(self.duration.as_secs_f64());
        histogram!(BULK_BYTES).record(self.bytes as f64);
    }
}

/// An analytics answer looked up in the cache.
pub struct AnswerCacheLookup<'a> {
    /// `hit`, `miss` or `error` (the cache failed; the answer was computed).
    pub outcome: &'static str,
    pub error: Option<&'a str>,
}

impl InternalEvent for AnswerCacheLookup<'_> {
    fn emit(self) {
        if let Some(error) = self.error {
            warn!(error, "answer cache unavailable; computing the answer");
        }
        counter!(ANSWER_CACHE, "outcome" => self.outcome).increment(1);
    }
}

/// The segments one aggregation of the embedded store read, and those whose result was kept.
#[derive(Default)]
pub struct SegmentReads {
    pub reused: usize,
    pub computed: usize,
}

impl InternalEvent for SegmentReads {
    fn emit(self) {
        counter!(SEGMENT_AGGREGATIONS, "outcome" => "reused").increment(self.reused as u64);
        counter!(SEGMENT_AGGREGATIONS, "outcome" => "computed").increment(self.computed as u64);
    }
}

/// A pass over the embedded store's segments that built the rollups missing.
pub struct RollupsBuilt<'a> {
    pub built: usize,
    pub failure: Option<&'a str>,
}

impl InternalEvent for RollupsBuilt<'_> {
    fn emit(self) {
        counter!(ROLLUPS_BUILT).increment(self.built as u64);
        if let Some(reason) = self.failure {
            warn!(
                reason,
                "segment rollups not built; aggregations read the events meanwhile"
            );
            counter!(ROLLUP_FAILURES).increment(1);
        }
    }
}

/// A segment's rollup left out breakdowns with more values in an hour than a rollup keeps.
pub struct RollupOverflowed<'a> {
    pub segment: &'a str,
    pub fields: &'a [&'a str],
}

impl InternalEvent for RollupOverflowed<'_> {
    fn emit(self) {
        warn!(
            segment = self.segment,
            fields = ?self.fields,
            "too many distinct values in an hour to keep in the segment's rollup; questions \
             broken down by these fields read the segment's events"
        );
        for &field in self.fields {
            counter!(ROLLUP_OVERFLOWS, "field" => field.to_owned()).increment(1);
        }
    }
}

/// How an aggregation was answered: from rollups, or from the events (and why).
pub struct AggregationAnswered<'a> {
    pub from_rollups: bool,
    pub why_events: Option<&'a str>,
}

impl InternalEvent for AggregationAnswered<'_> {
    fn emit(self) {
        let path = if self.from_rollups {
            "rollup"
        } else {
            "events"
        };
        if let Some(why) = self.why_events {
            debug!(why, "aggregation read from the events");
        }
        counter!(AGGREGATION_PATH, "path" => path).increment(1);
    }
}

/// How many request bytes ingest holds now.
pub struct InFlightBytes {
    pub bytes: u64,
}

impl InternalEvent for InFlightBytes {
    fn emit(self) {
        gauge!(IN_FLIGHT_BYTES).set(self.bytes as f64);
    }
}

/// A component found a backend failing (`check`: `store`, `queue`, `dead_letters`); logged
/// when it starts failing, counted every time.
pub struct BackendFailing<'a> {
    pub check: &'static str,
    pub reason: &'a str,
    pub first: bool,
}

impl InternalEvent for BackendFailing<'_> {
    fn emit(self) {
        if self.first {
            error!(
                check = self.check,
                reason = self.reason,
                "backend failing; retrying with back-off, /ready reports it until it recovers"
            );
        }
        counter!(BACKEND_FAILURES, "check" => self.check).increment(1);
        gauge!(BACKEND_UP, "check" => self.check).set(0.0);
    }
}

/// A failing backend works again.
pub struct BackendRecovered {
    pub check: &'static str,
    pub failing_for: Duration,
    pub attempts: u64,
}

impl InternalEvent for BackendRecovered {
    fn emit(self) {
        info!(
            check = self.check,
            failing_for_ms = self.failing_for.as_millis() as u64,
            attempts = self.attempts,
            "backend recovered"
        );
        gauge!(BACKEND_UP, "check" => self.check).set(1.0);
    }
}

/// Records indexed after a repair the processor made.
pub struct RecordsRepaired {
    pub kind: &'static str,
    pub count: usize,
}

impl InternalEvent for RecordsRepaired {
    fn emit(self) {
        counter!(RECORDS_REPAIRED, "kind" => self.kind).increment(self.count as u64);
    }
}

/// Free space on a guarded filesystem, as last measured.
pub struct FreeSpace<'a> {
    pub path: &'a str,
    pub bytes: u64,
}

impl InternalEvent for FreeSpace<'_> {
    fn emit(self) {
        gauge!(FREE_BYTES, "path" => self.path.to_owned()).set(self.bytes as f64);
    }
}

/// A log line that could not be written; counted, since it cannot be logged.
pub struct LogLineLost;

impl InternalEvent for LogLineLost {
    fn emit(self) {
        counter!(LOG_LINES_LOST).increment(1);
    }
}
