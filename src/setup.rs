//! `sluice setup`: prepares the distributed backends before the roles start, idempotently: the
//! Kafka topics, the Elasticsearch index template, the meta store's collections and indexes, and,
//! when a Kibana is configured, its saved objects (data view, visualisations, dashboard).

use std::time::Duration;

use anyhow::{Context, bail};
use sluice_config::{Config, QueueBackend, StoreBackend};
use sluice_store_elasticsearch::ElasticStore;

use crate::ConfigArgs;

#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Where embedded backends keep their files (default ./data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
}

/// The saved objects as the repository ships them, for indices `sluice-logs-*`.
const SAVED_OBJECTS: &str = include_str!("../infra/kibana/saved-objects.ndjson");
const SHIPPED_PATTERN: &str = "sluice-logs-*";

pub fn run(args: SetupArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.config.as_deref())?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    crate::logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(setup(&config))
}

async fn setup(config: &Config) -> anyhow::Result<()> {
    match config.queue_backend()? {
        QueueBackend::Kafka(brokers) => {
            crate::backends::kafka_with_topics(config, brokers).await?;
            println!(
                "kafka: topics {} and {} ready",
                config.queue.kafka.topic, config.queue.kafka.dead_letter_topic
            );
        }
        QueueBackend::Wal(dir) => {
            println!(
                "queue: write-ahead log in {} (nothing to prepare)",
                dir.display()
            );
        }
    }
    match config.store_backend()? {
        StoreBackend::Elasticsearch(url) => {
            let store = ElasticStore::connect(&url, config.store.elasticsearch.clone())?;
            store
                .install_template()
                .await
                .context("installing the Elasticsearch index template")?;
            println!(
                "elasticsearch: index template {0} installed for {0}-*",
                config.store.elasticsearch.index_prefix
            );
        }
        StoreBackend::Tantivy(dir) => {
            println!(
                "store: tantivy index in {} (nothing to prepare)",
                dir.display()
            );
        }
        StoreBackend::Null => println!("store: null:// (nothing to prepare)"),
    }
    let meta = crate::backends::open_meta(config).await?;
    sluice_auth::accounts::prepare_meta(meta.as_ref())
        .await
        .context("preparing the meta store")?;
    sluice_api::prepare_meta(meta.as_ref())
        .await
        .context("preparing the meta store for saved searches")?;
    println!("meta store: collections and indexes ready");
    match &config.kibana.url {
        Some(url) => {
            let imported = import_saved_objects(config, url).await?;
            println!("kibana: {imported} saved objects imported into {url}");
        }
        None => println!("kibana: no kibana.url configured, skipped"),
    }
    Ok(())
}

/// The saved objects with the data view pointed at this installation's indices.
pub fn saved_objects(index_prefix: &str) -> String {
    SAVED_OBJECTS.replace(SHIPPED_PATTERN, &format!("{index_prefix}-*"))
}

/// Kibana's import API, overwriting earlier imports so a re-run updates the dashboard.
async fn import_saved_objects(config: &Config, url: &str) -> anyhow::Result<u64> {
    let objects = saved_objects(&config.store.elasticsearch.index_prefix);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::text(objects)
            .file_name("sluice-saved-objects.ndjson")
            .mime_str("application/ndjson")?,
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let mut request = client
        .post(format!(
            "{}/api/saved_objects/_import?overwrite=true",
            url.trim_end_matches('/')
        ))
        // Kibana refuses writes without it, as a guard against cross-site requests.
        .header("kbn-xsrf", "sluice")
        .multipart(form);
    if let Some(username) = &config.kibana.username {
        request = request.basic_auth(username, config.kibana.password.as_deref());
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("Kibana at {url} is unreachable"))?;
    let status = response.status();
    let answer: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("Kibana answered {status} with something other than JSON"))?;
    if !status.is_success() || answer["success"] != true {
        bail!("Kibana refused the saved objects ({status}): {answer}");
    }
    Ok(answer["successCount"].as_u64().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_objects_are_ndjson_and_follow_the_prefix() {
        let objects = saved_objects("shop");
        let parsed: Vec<serde_json::Value> = objects
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        let data_view = parsed
            .iter()
            .find(|o| o["type"] == "index-pattern")
            .expect("a data view");
        assert_eq!(data_view["attributes"]["title"], "shop-*");
        assert_eq!(data_view["attributes"]["timeFieldName"], "@timestamp");
        assert!(!objects.contains(SHIPPED_PATTERN));
    }
}
