//! Against the Elasticsearch-API server `scripts/test.sh` starts (`TEST_ELASTICSEARCH_URL`); each
//! test uses its own index prefix, so they run side by side.

use std::sync::atomic::{AtomicUsize, Ordering};

use elasticsearch::indices::IndicesRefreshParts;
use serde_json::json;

use super::*;
use sluice_event::LogType;
use sluice_store::conformance::document;

fn test_url() -> String {
    std::env::var("TEST_ELASTICSEARCH_URL").expect(
        "TEST_ELASTICSEARCH_URL is not set: run the suite through scripts/test.sh, which starts \
         the Elasticsearch-API server",
    )
}

fn config(name: &str) -> ElasticsearchConfig {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    ElasticsearchConfig {
        index_prefix: format!(
            "test-{name}-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ),
        ..ElasticsearchConfig::default()
    }
}

async fn store(name: &str, config_change: impl FnOnce(&mut ElasticsearchConfig)) -> ElasticStore {
    let mut config = config(name);
    config_change(&mut config);
    let store = ElasticStore::connect(&test_url(), config).expect("client");
    store.install_template().await.expect("template");
    store
}

/// What a refresh makes searchable; Elasticsearch does it every second on its own.
async fn refresh(store: &ElasticStore) {
    let pattern = format!("{}-*", store.config.index_prefix);
    store
        .client
        .indices()
        .refresh(IndicesRefreshParts::Index(&[&pattern]))
        .send()
        .await
        .expect("refresh")
        .error_for_status_code()
        .expect("refresh status");
}

#[tokio::test]
async fn elasticsearch_passes_the_conformance_suite() {
    let store = store("conformance", |_| {}).await;
    sluice_store::conformance::run(&store, || refresh(&store)).await;
    sluice_store::conformance::one_refused_document_refuses_only_itself(&store, || refresh(&store))
        .await;
}

#[tokio::test]
async fn elasticsearch_passes_the_retention_conformance_check() {
    let store = store("retention", |_| {}).await;
    sluice_store::conformance::retention_drops_whole_days_before_the_cutoff(&store, || {
        refresh(&store)
    })
    .await;
}

/// With `manage_template` (the default) the first write installs the template.
#[tokio::test]
async fn daily_indices_take_the_template() {
    let store = ElasticStore::connect(&test_url(), config("daily")).expect("client");
    let day_one = 1_795_514_400_000;
    store
        .index(Arc::new(vec![
            document("a", day_one, LogType::Error, "ERROR", "one"),
            document("b", day_one + 86_400_000, LogType::Error, "ERROR", "two"),
        ]))
        .await
        .expect("index");
    let prefix = &store.config.index_prefix;
    for index in [
        format!("{prefix}-2026.11.24"),
        format!("{prefix}-2026.11.25"),
    ] {
        let mapping: serde_json::Value = store
            .client
            .indices()
            .get_mapping(elasticsearch::indices::IndicesGetMappingParts::Index(&[
                &index,
            ]))
            .send()
            .await
            .expect("mapping")
            .json()
            .await
            .expect("json");
        let properties = &mapping[&index]["mappings"]["properties"];
        assert_eq!(properties["level"]["type"], "keyword", "{index}: {mapping}");
        assert_eq!(properties["amount"]["type"], "double", "{index}: {mapping}");
    }
}

#[tokio::test]
async fn many_bulk_requests_in_flight_lose_nothing() {
    let store = store("split", |c| {
        c.bulk_max_bytes = 4 * 1024;
        c.bulk_concurrency = 4;
    })
    .await;
    let documents: Vec<_> = (0..2_000)
        .map(|i| {
            document(
                &format!("d{i}"),
                1_795_514_400_000 + i,
                LogType::Transaction,
                "info",
                &format!("order {i} placed"),
            )
        })
        .collect();
    let report = store.index(Arc::new(documents)).await.expect("index");
    assert_eq!((report.indexed, report.rejected.len()), (2_000, 0));
    refresh(&store).await;
    let all = SearchQuery {
        size: 0,
        ..SearchQuery::default()
    };
    assert_eq!(store.search(&all).await.expect("search").total, 2_000);
}

/// A document the mapping refuses is rejected for good with Elasticsearch's reason; the rest of
/// its batch is indexed. The template lets a number of the wrong form be left out of its field
/// (`index.mapping.ignore_malformed`); an index created without that setting refuses it, as
/// an operator's own index may.
#[tokio::test]
async fn unmappable_document_is_rejected_and_its_neighbours_kept() {
    let store = store("reject", |_| {}).await;
    let index = format!("{}-2026.11.24", store.config.index_prefix);
    store
        .client
        .indices()
        .create(elasticsearch::indices::IndicesCreateParts::Index(&index))
        .body(json!({"settings": {"index.mapping.ignore_malformed": false}}))
        .send()
        .await
        .expect("create index")
        .error_for_status_code()
        .expect("created");
    let good = document(
        "good",
        1_795_514_400_000,
        LogType::Transaction,
        "info",
        "fine",
    );
    let mut bad = document(
        "bad",
        1_795_514_400_001,
        LogType::Transaction,
        "info",
        "odd",
    );
    let mut source: serde_json::Value = serde_json::from_str(&bad.source).expect("json");
    source["amount"] = json!("a lot");
    bad.source = serde_json::to_string(&source).expect("json");
    let report = store.index(Arc::new(vec![good, bad])).await.expect("index");
    assert_eq!(report.indexed, 1);
    assert_eq!(report.rejected.len(), 1);
    let rejected = &report.rejected[0];
    assert_eq!(rejected.id, "bad");
    assert!(!rejected.retryable);
    assert!(
        rejected.reason.starts_with("Elasticsearch 400") && rejected.reason.contains("amount"),
        "{}",
        rejected.reason
    );
}

/// With several nodes, requests go to each in turn: a dead node costs one retry, not the write.
#[tokio::test]
async fn a_node_list_is_used_in_turn() {
    let both = format!("http://127.0.0.1:9,{}", test_url());
    let store = ElasticStore::connect(&both, config("nodes")).expect("client");
    let mut answered = 0;
    for _ in 0..4 {
        answered += usize::from(store.ready().await.is_ok());
    }
    assert_eq!(answered, 2, "every other request reaches the live node");
}

#[tokio::test]
async fn unreachable_cluster_fails_the_write_as_a_whole() {
    // Nothing listens on port 9 of 127.0.0.1 (discard, never enabled).
    let store = ElasticStore::connect("http://127.0.0.1:9", config("down")).expect("client");
    let err = store
        .index(Arc::new(vec![document(
            "a",
            0,
            LogType::Error,
            "ERROR",
            "x",
        )]))
        .await
        .expect_err("nobody answers");
    assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
    assert!(store.ready().await.is_err());
    assert!(store.search(&SearchQuery::default()).await.is_err());
}

#[test]
fn credentials_in_the_url_or_mixed_are_refused() {
    let in_url = ElasticStore::connect("http://elastic:secret@127.0.0.1:9200", config("u"));
    assert!(
        in_url
            .err()
            .expect("refused")
            .to_string()
            .contains("not in the URL")
    );
    let mut mixed = config("m");
    mixed.username = Some("elastic".into());
    mixed.api_key = Some("a2V5OnNlY3JldA==".into());
    assert!(ElasticStore::connect("http://127.0.0.1:9200", mixed).is_err());
    let not_http = ElasticStore::connect("http://127.0.0.1:9200,ftp://b:21", config("s"));
    assert!(
        not_http
            .err()
            .expect("refused")
            .to_string()
            .contains("ftp://b:21")
    );
    let mut missing_ca = config("c");
    missing_ca.ca_cert = Some("/no/such/ca.pem".into());
    let err = ElasticStore::connect("https://127.0.0.1:9200", missing_ca)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("/no/such/ca.pem"), "{err}");
}

/// The credentials reach the cluster as Elasticsearch documents them: `Basic` for a user,
/// `ApiKey` with the encoded key. A listener records what arrives.
#[tokio::test]
async fn credentials_are_sent_as_elasticsearch_expects() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn authorization_sent(config: ElasticsearchConfig) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let store = ElasticStore::connect(&url, config).expect("client");
        let answering = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = vec![0; 4096];
            let read = socket.read(&mut request).await.expect("read");
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await
                .expect("answer");
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
        store.ready().await.expect("ready");
        let request = answering.await.expect("request");
        request
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("authorization")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default()
    }

    let mut basic = config("basic");
    basic.username = Some("sluice_writer".into());
    basic.password = Some("s3cret".into());
    assert_eq!(
        authorization_sent(basic).await,
        "Basic c2x1aWNlX3dyaXRlcjpzM2NyZXQ="
    );
    let mut key = config("key");
    key.api_key = Some("VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==".into());
    assert_eq!(
        authorization_sent(key).await,
        "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
    );
}

#[test]
fn a_ca_file_that_is_not_pem_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate").expect("write");
    let mut config = config("pem");
    config.ca_cert = Some(path);
    let err = ElasticStore::connect("https://127.0.0.1:9200", config)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("not a PEM certificate"), "{err}");
}
