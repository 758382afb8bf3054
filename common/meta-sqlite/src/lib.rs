//! The embedded meta store: one SQLite file (`rusqlite`, SQLite bundled), a table per
//! collection holding JSON documents, with unique and plain indexes on `json_extract` of the
//! declared fields. SQLite calls block, so they run on the blocking pool behind one connection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params_from_iter};
use serde_json::Value;

use sluice_meta::{Collection, Filter, MetaError, MetaStore, Page, check_name};

#[derive(Clone)]
pub struct SqliteMetaStore {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl SqliteMetaStore {
    /// Opens (or creates) the database file, in WAL journal mode so readers do not block the
    /// writer.
    pub fn open(path: &Path) -> Result<SqliteMetaStore, MetaError> {
        if let Some(parent) = path.parent() {
            sluice_storage::create_dir_all_durably(parent)
                .map_err(|e| MetaError::Unavailable(format!("{}: {e}", parent.display())))?;
        }
        let connection = Connection::open(path).map_err(|e| unavailable(path, e))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| connection.pragma_update(None, "synchronous", "FULL"))
            .map_err(|e| unavailable(path, e))?;
        Ok(SqliteMetaStore {
            connection: Arc::new(Mutex::new(connection)),
            path: path.to_owned(),
        })
    }

    /// Copies the database at `path` to `out` with SQLite's online backup API, from a
    /// connection of its own: a consistent copy while another process (a running `sluice
    /// serve`) reads and writes it.
    pub fn back_up(path: &Path, out: &Path) -> Result<(), MetaError> {
        let source = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| unavailable(path, e))?;
        source
            .backup(rusqlite::MAIN_DB, out, None)
            .map_err(|e| unavailable(out, e))
    }

    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        let connection = Arc::clone(&self.connection);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let connection = connection.lock().map_err(|_| {
                MetaError::Unavailable(format!("{}: lock poisoned", path.display()))
            })?;
            work(&connection)
        })
        .await
        .map_err(|e| MetaError::Unavailable(format!("meta store thread failed: {e}")))?
    }
}

fn unavailable(path: &Path, e: rusqlite::Error) -> MetaError {
    MetaError::Unavailable(format!("{}: {e}", path.display()))
}

fn sql_error(collection: &Collection, e: rusqlite::Error) -> MetaError {
    if let rusqlite::Error::SqliteFailure(failure, message) = &e
        && failure.code == ErrorCode::ConstraintViolation
    {
        let message = message.as_deref().unwrap_or_default();
        let field = collection
            .unique
            .iter()
            .find(|f| message.contains(&format!("'{}'", index_name(collection, f))))
            .map_or_else(|| "id".to_owned(), |f| (*f).to_owned());
        return MetaError::Conflict {
            collection: collection.name,
            field,
        };
    }
    MetaError::Unavailable(e.to_string())
}

fn index_name(collection: &Collection, field: &str) -> String {
    format!("{}_{field}", collection.name)
}

/// `WHERE` clause and parameters for an equality filter.
fn filter_sql(filter: Filter<'_>) -> Result<(String, Vec<String>), MetaError> {
    let (conditions, params) = filter_conditions(filter)?;
    let clause = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    Ok((clause, params))
}

/// One SQL condition per filter field, with its parameter.
fn filter_conditions(filter: Filter<'_>) -> Result<(Vec<String>, Vec<String>), MetaError> {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    for (field, value) in filter {
        check_name(field)?;
        conditions.push(format!(
            "json_extract(doc, '$.{field}') = json_extract(?, '$')"
        ));
        params.push(value.to_string());
    }
    Ok((conditions, params))
}

fn parse(collection: &Collection, id: &str, text: &str) -> Result<Value, MetaError> {
    serde_json::from_str(text).map_err(|e| MetaError::Corrupt {
        collection: collection.name,
        id: id.to_owned(),
        detail: e.to_string(),
    })
}

#[async_trait]
impl MetaStore for SqliteMetaStore {
    async fn prepare(&self, collections: &[Collection]) -> Result<(), MetaError> {
        let collections = collections.to_vec();
        self.with(move |connection| {
            for collection in &collections {
                check_name(collection.name)?;
                let table = collection.name;
                let mut sql = format!(
                    "CREATE TABLE IF NOT EXISTS {table} \
                     (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);"
                );
                for (field, unique) in collection
                    .unique
                    .iter()
                    .map(|f| (f, "UNIQUE "))
                    .chain(collection.indexed.iter().map(|f| (f, "")))
                {
                    check_name(field)?;
                    sql.push_str(&format!(
                        "CREATE {unique}INDEX IF NOT EXISTS {} ON {table}(json_extract(doc, '$.{field}'));",
                        index_name(collection, field)
                    ));
                }
                connection
                    .execute_batch(&sql)
                    .map_err(|e| sql_error(collection, e))?;
            }
            Ok(())
        })
        .await
    }

    async fn insert(
        &self,
        collection: &Collection,
        id: &str,
        document: &Value,
    ) -> Result<(), MetaError> {
        let (collection, id, doc) = (*collection, id.to_owned(), document.to_string());
        self.with(move |connection| {
            connection
                .execute(
                    &format!("INSERT INTO {} (id, doc) VALUES (?1, ?2)", collection.name),
                    (&id, &doc),
                )
                .map(drop)
                .map_err(|e| sql_error(&collection, e))
        })
        .await
    }

    async fn get(&self, collection: &Collection, id: &str) -> Result<Option<Value>, MetaError> {
        let (collection, id) = (*collection, id.to_owned());
        self.with(move |connection| {
            let text: Option<String> = connection
                .query_row(
                    &format!("SELECT doc FROM {} WHERE id = ?1", collection.name),
                    [&id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(|e| sql_error(&collection, e))?;
            text.map(|t| parse(&collection, &id, &t)).transpose()
        })
        .await
    }

    async fn find(
        &self,
        collection: &Collection,
        filter: Filter<'_>,
        page: Page,
    ) -> Result<Vec<(String, Value)>, MetaError> {
        let collection = *collection;
        let (clause, mut params) = filter_sql(filter)?;
        params.push(page.limit.min(i64::MAX as u64).to_string());
        params.push(page.offset.min(i64::MAX as u64).to_string());
        self.with(move |connection| {
            let sql = format!(
                "SELECT id, doc FROM {}{clause} ORDER BY seq LIMIT CAST(? AS INTEGER) OFFSET CAST(? AS INTEGER)",
                collection.name
            );
            let mut statement = connection.prepare(&sql).map_err(|e| sql_error(&collection, e))?;
            let rows = statement
                .query_map(params_from_iter(params.iter()), |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(|e| sql_error(&collection, e))?;
            let mut found = Vec::new();
            for row in rows {
                let (id, text) = row.map_err(|e| sql_error(&collection, e))?;
                let document = parse(&collection, &id, &text)?;
                found.push((id, document));
            }
            Ok(found)
        })
        .await
    }

    async fn count(&self, collection: &Collection, filter: Filter<'_>) -> Result<u64, MetaError> {
        let collection = *collection;
        let (clause, params) = filter_sql(filter)?;
        self.with(move |connection| {
            connection
                .query_row(
                    &format!("SELECT COUNT(*) FROM {}{clause}", collection.name),
                    params_from_iter(params.iter()),
                    |row| row.get::<_, i64>(0),
                )
                .map(|n| n.max(0) as u64)
                .map_err(|e| sql_error(&collection, e))
        })
        .await
    }

    async fn replace(
        &self,
        collection: &Collection,
        id: &str,
        document: &Value,
        expected: Filter<'_>,
    ) -> Result<bool, MetaError> {
        let collection = *collection;
        let (conditions, expected) = filter_conditions(expected)?;
        let mut params = vec![document.to_string(), id.to_owned()];
        params.extend(expected);
        let sql = std::iter::once(format!(
            "UPDATE {} SET doc = ? WHERE id = ?",
            collection.name
        ))
        .chain(conditions)
        .collect::<Vec<_>>()
        .join(" AND ");
        self.with(move |connection| {
            connection
                .execute(&sql, params_from_iter(params.iter()))
                .map(|changed| changed > 0)
                .map_err(|e| sql_error(&collection, e))
        })
        .await
    }

    async fn delete(&self, collection: &Collection, id: &str) -> Result<bool, MetaError> {
        let (collection, id) = (*collection, id.to_owned());
        self.with(move |connection| {
            connection
                .execute(
                    &format!("DELETE FROM {} WHERE id = ?1", collection.name),
                    [&id],
                )
                .map(|changed| changed > 0)
                .map_err(|e| sql_error(&collection, e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteMetaStore::open(&dir.path().join("meta.db")).expect("opens");
        sluice_meta::conformance::run(&store).await;
    }

    #[tokio::test]
    async fn documents_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.db");
        let users = sluice_meta::conformance::USERS;
        {
            let store = SqliteMetaStore::open(&path).expect("opens");
            store.prepare(&[users]).await.expect("prepare");
            store
                .insert(&users, "u1", &serde_json::json!({"username": "ada"}))
                .await
                .expect("insert");
        }
        let store = SqliteMetaStore::open(&path).expect("reopens");
        store
            .prepare(&[users])
            .await
            .expect("prepare again is harmless");
        assert_eq!(
            store.get(&users, "u1").await.expect("get"),
            Some(serde_json::json!({"username": "ada"}))
        );
    }
}
