//! The distributed meta store: MongoDB (`mongodb`). Each collection holds
//! `{_id, _seq, doc}`: the caller's document sits whole under `doc`, so none of its field names
//! can clash with MongoDB's, and `_seq` (from one counter document per collection, bumped
//! atomically) keeps listings in insertion order across every process that writes.

use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Database, IndexModel};
use serde_json::Value;

use sluice_meta::{Collection, Filter, MetaError, MetaStore, Page, check_name};

/// Where the per-collection insertion counters live.
const SEQUENCES: &str = "_sluice_sequences";
/// MongoDB's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11000;
/// How long to look for a server before an operation fails, unless the URL says otherwise.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct MongoMetaStore {
    database: Database,
}

impl MongoMetaStore {
    /// Connects to `url` (`mongodb://host:port/database`; the database defaults to `sluice`).
    /// The driver connects lazily: an unreachable server shows at the first operation.
    pub async fn connect(url: &str) -> Result<MongoMetaStore, MetaError> {
        let mut options = ClientOptions::parse(url)
            .await
            .map_err(|e| MetaError::Invalid(format!("meta.url {url:?}: {e}")))?;
        if options.server_selection_timeout.is_none() {
            options.server_selection_timeout = Some(SERVER_SELECTION_TIMEOUT);
        }
        if options.app_name.is_none() {
            options.app_name = Some("sluice".into());
        }
        let database_name = options
            .default_database
            .clone()
            .unwrap_or_else(|| "sluice".into());
        let client = Client::with_options(options).map_err(unavailable)?;
        Ok(MongoMetaStore {
            database: client.database(&database_name),
        })
    }

    fn collection(&self, collection: &Collection) -> mongodb::Collection<Document> {
        self.database.collection(collection.name)
    }

    async fn next_seq(&self, collection: &Collection) -> Result<i64, MetaError> {
        let counter = self
            .database
            .collection::<Document>(SEQUENCES)
            .find_one_and_update(doc! {"_id": collection.name}, doc! {"$inc": {"seq": 1_i64}})
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await
            .map_err(unavailable)?;
        counter
            .as_ref()
            .and_then(|c| c.get("seq"))
            .and_then(as_integer)
            .ok_or_else(|| {
                MetaError::Unavailable(format!(
                    "{SEQUENCES} returned no counter for {}: {counter:?}",
                    collection.name
                ))
            })
    }
}

/// A whole number, whichever BSON number type the server chose to store it as.
fn as_integer(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int64(n) => Some(*n),
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Double(n) if n.fract() == 0.0 => Some(*n as i64),
        _ => None,
    }
}

fn unavailable(e: mongodb::error::Error) -> MetaError {
    MetaError::Unavailable(e.to_string())
}

/// A duplicate key names the index it hit; the index names the field.
fn write_error(collection: &Collection, e: mongodb::error::Error) -> MetaError {
    let duplicate = match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(failure)) if failure.code == DUPLICATE_KEY => {
            Some(failure.message.clone())
        }
        ErrorKind::Command(failure) if failure.code == DUPLICATE_KEY => {
            Some(failure.message.clone())
        }
        _ => None,
    };
    match duplicate {
        Some(message) => MetaError::Conflict {
            collection: collection.name,
            field: collection
                .unique
                .iter()
                .find(|f| message.contains(&index_name(f)))
                .map_or_else(|| "id".to_owned(), |f| (*f).to_owned()),
        },
        None => unavailable(e),
    }
}

fn index_name(field: &str) -> String {
    format!("doc_{field}")
}

fn filter_document(id: Option<&str>, filter: Filter<'_>) -> Result<Document, MetaError> {
    let mut query = Document::new();
    if let Some(id) = id {
        query.insert("_id", id);
    }
    for (field, value) in filter {
        check_name(field)?;
        query.insert(format!("doc.{field}"), to_bson(value)?);
    }
    Ok(query)
}

fn to_bson(value: &Value) -> Result<Bson, MetaError> {
    Bson::try_from(value.clone()).map_err(|e| MetaError::Invalid(format!("{value}: {e}")))
}

fn stored(id: &str, seq: i64, document: &Value) -> Result<Document, MetaError> {
    Ok(doc! {"_id": id, "_seq": seq, "doc": to_bson(document)?})
}

fn unwrap_stored(collection: &Collection, stored: Document) -> Result<(String, Value), MetaError> {
    let id = stored.get_str("_id").unwrap_or_default().to_owned();
    match stored.get("doc") {
        Some(document @ Bson::Document(_)) => Ok((id, document.clone().into_relaxed_extjson())),
        _ => Err(MetaError::Corrupt {
            collection: collection.name,
            id,
            detail: "no `doc` field".into(),
        }),
    }
}

#[async_trait]
impl MetaStore for MongoMetaStore {
    async fn prepare(&self, collections: &[Collection]) -> Result<(), MetaError> {
        for collection in collections {
            check_name(collection.name)?;
            let mut indexes = vec![
                IndexModel::builder()
                    .keys(doc! {"_seq": 1})
                    .options(IndexOptions::builder().name("seq".to_owned()).build())
                    .build(),
            ];
            for (field, unique) in collection
                .unique
                .iter()
                .map(|f| (f, true))
                .chain(collection.indexed.iter().map(|f| (f, false)))
            {
                check_name(field)?;
                let path = format!("doc.{field}");
                let mut options = IndexOptions::builder().name(index_name(field)).build();
                if unique {
                    // Documents without the field do not take part, as in the SQLite adapter.
                    options.unique = Some(true);
                    options.partial_filter_expression = Some(doc! {&path: {"$exists": true}});
                }
                indexes.push(
                    IndexModel::builder()
                        .keys(doc! {path: 1})
                        .options(options)
                        .build(),
                );
            }
            self.collection(collection)
                .create_indexes(indexes)
                .await
                .map_err(|e| write_error(collection, e))?;
        }
        Ok(())
    }

    async fn insert(
        &self,
        collection: &Collection,
        id: &str,
        document: &Value,
    ) -> Result<(), MetaError> {
        let seq = self.next_seq(collection).await?;
        self.collection(collection)
            .insert_one(stored(id, seq, document)?)
            .await
            .map(drop)
            .map_err(|e| write_error(collection, e))
    }

    async fn get(&self, collection: &Collection, id: &str) -> Result<Option<Value>, MetaError> {
        let found = self
            .collection(collection)
            .find_one(doc! {"_id": id})
            .await
            .map_err(unavailable)?;
        found
            .map(|d| unwrap_stored(collection, d).map(|(_, document)| document))
            .transpose()
    }

    async fn find(
        &self,
        collection: &Collection,
        filter: Filter<'_>,
        page: Page,
    ) -> Result<Vec<(String, Value)>, MetaError> {
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        let cursor = self
            .collection(collection)
            .find(filter_document(None, filter)?)
            .sort(doc! {"_seq": 1})
            .skip(page.offset)
            .limit(i64::try_from(page.limit).unwrap_or(i64::MAX))
            .await
            .map_err(unavailable)?;
        let documents: Vec<Document> = cursor.try_collect().await.map_err(unavailable)?;
        documents
            .into_iter()
            .map(|d| unwrap_stored(collection, d))
            .collect()
    }

    async fn count(&self, collection: &Collection, filter: Filter<'_>) -> Result<u64, MetaError> {
        self.collection(collection)
            .count_documents(filter_document(None, filter)?)
            .await
            .map_err(unavailable)
    }

    async fn replace(
        &self,
        collection: &Collection,
        id: &str,
        document: &Value,
        expected: Filter<'_>,
    ) -> Result<bool, MetaError> {
        // `$set` of `doc` alone keeps `_seq`, so the document keeps its place in listings.
        self.collection(collection)
            .update_one(
                filter_document(Some(id), expected)?,
                doc! {"$set": {"doc": to_bson(document)?}},
            )
            .await
            .map(|outcome| outcome.matched_count > 0)
            .map_err(|e| write_error(collection, e))
    }

    async fn delete(&self, collection: &Collection, id: &str) -> Result<bool, MetaError> {
        self.collection(collection)
            .delete_one(doc! {"_id": id})
            .await
            .map(|outcome| outcome.deleted_count > 0)
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the Mongo-wire server that `scripts/test.sh` starts; `TEST_MONGODB_URL`
    /// points at it. Without it the test fails, loudly, rather than passing unseen.
    fn test_url() -> String {
        std::env::var("TEST_MONGODB_URL").expect(
            "TEST_MONGODB_URL is not set: run the suite through scripts/test.sh, which \
             starts the MongoDB-wire server",
        )
    }

    #[tokio::test]
    async fn mongodb_passes_the_conformance_suite() {
        let database = format!("conformance_{}", std::process::id());
        let url = format!("{}/{database}", test_url().trim_end_matches('/'));
        let store = MongoMetaStore::connect(&url).await.expect("connects");
        sluice_meta::conformance::run(&store).await;
        store.database.drop().await.expect("drop the test database");
    }
}
