//! The distributed event store: Elasticsearch 8 (or a cluster speaking its REST API), through the
//! official `elasticsearch` client over rustls.
//!
//! Each processor batch is cut into `_bulk` requests of bounded size, sent a few at a time, and
//! every item's answer is read: what was refused for now comes back as retryable and the
//! processor sends just those again after a back-off; what was refused for good is dead-lettered
//! with Elasticsearch's reason. When no request gets through the write fails as a whole, the
//! processor keeps its queue position, and the queue holds the backlog until the cluster is back.
//!
//! Documents go to daily indices named after their event time, so retention is deleting an
//! index; the index template ([`template`]) types them. Ids are Sluice's document ids, so a
//! replayed record overwrites itself.

mod bulk;
mod query;
mod retention;
mod retry;
pub mod template;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use elasticsearch::auth::Credentials;
use elasticsearch::cat::CatIndicesParts;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::Url;
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder,
};
use elasticsearch::indices::{IndicesDeleteParts, IndicesPutIndexTemplateParts};
use elasticsearch::params::Bytes;
use elasticsearch::{BulkParts, Elasticsearch, SearchParts};
use futures::StreamExt;

pub use sluice_config::ElasticsearchConfig;

use sluice_store::aggregation;
use sluice_store::{
    AggregationResults, Aggregations, EventStore, IndexReport, RejectedDocument, SearchQuery,
    SearchResults, StoreDocument, StoreError, StoreUsage,
};
use sluice_telemetry::emit;
use sluice_telemetry::events::BulkRequestSent;

#[derive(Clone)]
pub struct ElasticStore {
    client: Elasticsearch,
    config: Arc<ElasticsearchConfig>,
    /// Set once the template is installed, with `manage_template`: before the first write, not
    /// at start, so a processor starts while the cluster is down and waits for it like any write.
    template_installed: Arc<tokio::sync::OnceCell<()>>,
    /// For messages; without credentials (they are never part of the URL Sluice is given).
    url: String,
}

impl ElasticStore {
    /// A client for the cluster at `url` (`http(s)://host:port`, or several separated by
    /// commas, used in turn). Nothing is sent yet: use [`ElasticStore::ready`] to check that it
    /// answers.
    pub fn connect(url: &str, config: ElasticsearchConfig) -> Result<ElasticStore, StoreError> {
        let open_err = |detail: String| StoreError::Open {
            path: url.to_owned(),
            detail,
        };
        let mut nodes = Vec::new();
        for node in url.split(',').map(str::trim) {
            let parsed =
                Url::parse(node).map_err(|e| open_err(format!("{node:?} is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(open_err(format!("{node:?}: use http:// or https://")));
            }
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(open_err(
                    "put credentials in store.elasticsearch.username/password, not in the URL \
                     (it shows up in logs)"
                        .into(),
                ));
            }
            nodes.push(parsed);
        }
        let transport = match nodes.len() {
            1 => TransportBuilder::new(SingleNodeConnectionPool::new(nodes.remove(0))),
            _ => TransportBuilder::new(MultiNodeConnectionPool::round_robin(nodes, None)),
        };
        let mut transport =
            transport.timeout(Duration::from_millis(config.request_timeout_ms.max(1)));
        transport = match (&config.username, &config.password, &config.api_key) {
            (Some(user), Some(password), None) => {
                transport.auth(Credentials::Basic(user.clone(), password.clone()))
            }
            (None, None, Some(key)) => transport.auth(Credentials::EncodedApiKey(key.clone())),
            (None, None, None) => transport,
            _ => {
                return Err(open_err(
                    "set either store.elasticsearch.username and password, or api_key".into(),
                ));
            }
        };
        if config.tls_insecure {
            transport = transport.cert_validation(CertificateValidation::None);
        } else if let Some(path) = &config.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| open_err(format!("reading ca_cert {}: {e}", path.display())))?;
            let certificate = Certificate::from_pem(&pem).map_err(|e| {
                open_err(format!(
                    "ca_cert {} is not a PEM certificate: {e}",
                    path.display()
                ))
            })?;
            transport = transport.cert_validation(CertificateValidation::Full(certificate));
        }
        let transport = transport
            .build()
            .map_err(|e| open_err(format!("building the HTTP client: {e}")))?;
        Ok(ElasticStore {
            client: Elasticsearch::new(transport),
            config: Arc::new(config),
            template_installed: Arc::new(tokio::sync::OnceCell::new()),
            url: url.to_owned(),
        })
    }

    /// Installs or updates the index template; later daily indices take it up.
    pub async fn install_template(&self) -> Result<(), StoreError> {
        let name = &self.config.index_prefix;
        let response = self
            .client
            .indices()
            .put_index_template(IndicesPutIndexTemplateParts::Name(name))
            .body(template::index_template(name))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        checked(response, "installing the index template")
            .await
            .map(drop)
            .map_err(StoreError::Write)
    }

    /// A `_search` over every Sluice index; the raw answer.
    async fn search_request(&self, body: serde_json::Value) -> Result<bytes::Bytes, StoreError> {
        let pattern = format!("{}-*", self.config.index_prefix);
        let response = self
            .client
            .search(SearchParts::Index(&[&pattern]))
            .body(body)
            .send()
            .await
            .map_err(|e| {
                StoreError::Search(format!("Elasticsearch at {} is unreachable: {e}", self.url))
            })?;
        checked(response, "search")
            .await
            .map_err(StoreError::Search)
    }

    /// Sluice's daily indices, with their sizes (every copy) and event counts.
    async fn daily_indices(&self) -> Result<Vec<retention::DailyIndex>, StoreError> {
        let pattern = format!("{}-*", self.config.index_prefix);
        let response = self
            .client
            .cat()
            .indices(CatIndicesParts::Index(&[&pattern]))
            .format("json")
            .bytes(Bytes::B)
            .h(&["index", "store.size", "docs.count"])
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let answer = checked(response, "listing the daily indices")
            .await
            .map_err(StoreError::Search)?;
        retention::daily_indices(&self.config.index_prefix, &answer).map_err(StoreError::Search)
    }

    fn unreachable(&self, e: &elasticsearch::Error) -> StoreError {
        StoreError::Write(format!("Elasticsearch at {} is unreachable: {e}", self.url))
    }

    /// Sends one `_bulk` body and reads what became of each of its documents.
    async fn send_bulk(
        &self,
        body: Vec<u8>,
        documents: &[StoreDocument],
    ) -> Result<bulk::RequestReport, String> {
        let started = Instant::now();
        let bytes = body.len();
        let result = async {
            let response = self
                .client
                .bulk(BulkParts::None)
                .body(vec![body])
                .send()
                .await
                .map_err(|e| format!("Elasticsearch at {} is unreachable: {e}", self.url))?;
            let answer = checked(response, "_bulk").await?;
            bulk::read_response(&answer, documents)
        }
        .await;
        let outcome = match &result {
            Ok(report) if report.rejected.is_empty() => "ok",
            Ok(_) => "item_errors",
            Err(_) => "failed",
        };
        emit(BulkRequestSent {
            documents: documents.len(),
            bytes,
            duration: started.elapsed(),
            outcome,
            error: result.as_ref().err().map(String::as_str),
        });
        result
    }
}

/// The answer's body when the status is a success; otherwise what went wrong, with a hint.
async fn checked(response: Response, what: &str) -> Result<bytes::Bytes, String> {
    let status = response.status_code().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("{what}: reading the answer: {e}"))?;
    if (200..300).contains(&status) {
        return Ok(body);
    }
    #[derive(serde::Deserialize)]
    struct ErrorAnswer {
        error: retry::EsError,
    }
    let detail = match serde_json::from_slice::<ErrorAnswer>(&body) {
        Ok(answer) => answer.error.describe(),
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
    };
    Err(format!(
        "{what}: Elasticsearch answered {status}: {detail}{}",
        retry::request_hint(status)
    ))
}

#[async_trait]
impl EventStore for ElasticStore {
    async fn index(&self, documents: Arc<Vec<StoreDocument>>) -> Result<IndexReport, StoreError> {
        if documents.is_empty() {
            return Ok(IndexReport::default());
        }
        if self.config.manage_template {
            self.template_installed
                .get_or_try_init(|| self.install_template())
                .await?;
        }
        // Bodies are built as requests go out, `bulk_concurrency` at a time.
        let requests = bulk::build_requests(
            &documents,
            &self.config.index_prefix,
            self.config.bulk_max_bytes,
        );
        let answers: Vec<_> = futures::stream::iter(requests)
            .map(|request| {
                let carried = &documents[request.documents.clone()];
                async move { (carried, self.send_bulk(request.body, carried).await) }
            })
            .buffer_unordered(self.config.bulk_concurrency.max(1))
            .collect()
            .await;
        let answers_count = answers.len();
        let mut report = IndexReport::default();
        let mut failures = Vec::new();
        for (carried, answer) in answers {
            match answer {
                Ok(answered) => {
                    report.indexed += answered.indexed;
                    report.rejected.extend(answered.rejected);
                }
                Err(reason) => {
                    // The request as a whole did not get through: all of it is worth retrying.
                    report
                        .rejected
                        .extend(carried.iter().map(|document| RejectedDocument {
                            id: document.id.clone(),
                            reason: reason.clone(),
                            retryable: true,
                        }));
                    failures.push(reason);
                }
            }
        }
        // Nothing got through: the cluster is down or refuses Sluice, which is one error to
        // report and retry rather than a rejection per document.
        if failures.len() == answers_count {
            return Err(StoreError::Write(failures.swap_remove(0)));
        }
        Ok(report)
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, StoreError> {
        let answer = self.search_request(query::search_body(query)).await?;
        query::read_answer(&answer).map_err(StoreError::Search)
    }

    async fn aggregate(
        &self,
        query: &SearchQuery,
        request: &Aggregations,
    ) -> Result<AggregationResults, StoreError> {
        let answer = self
            .search_request(query::aggregate_body(query, request))
            .await?;
        let answer: serde_json::Value = serde_json::from_slice(&answer)
            .map_err(|e| StoreError::Search(format!("unreadable aggregation answer: {e}")))?;
        // No `aggregations` when no index matched the pattern yet: nothing to aggregate.
        aggregation::read(
            request,
            answer.get("aggregations"),
            query.from_ms,
            query.to_ms,
        )
    }

    async fn ready(&self) -> Result<(), StoreError> {
        let response = self
            .client
            .ping()
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        checked(response, "ping")
            .await
            .map(drop)
            .map_err(|e| StoreError::Open {
                path: self.url.clone(),
                detail: e,
            })
    }

    async fn usage(&self) -> Result<StoreUsage, StoreError> {
        let bytes = self
            .daily_indices()
            .await?
            .iter()
            .map(|index| index.bytes)
            .sum();
        Ok(StoreUsage {
            bytes,
            oldest_ms: sluice_store::retention::oldest_event_ms(self).await?,
        })
    }

    /// Deletes the daily indices of days wholly before `cutoff_ms`.
    async fn drop_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let mut dropped = 0;
        for index in self.daily_indices().await? {
            if index.day_ms + sluice_store::retention::MS_PER_DAY > cutoff_ms {
                continue;
            }
            let response = self
                .client
                .indices()
                .delete(IndicesDeleteParts::Index(&[&index.name]))
                .send()
                .await
                .map_err(|e| self.unreachable(&e))?;
            // Another processor's retention pass may have deleted it first.
            if response.status_code().as_u16() == 404 {
                continue;
            }
            checked(
                response,
                &format!("deleting the expired index {}", index.name),
            )
            .await
            .map_err(StoreError::Write)?;
            dropped += index.events;
        }
        Ok(dropped)
    }

    /// Elasticsearch types the fields from the document, by the index template.
    fn reads_field_values(&self) -> bool {
        false
    }
}
