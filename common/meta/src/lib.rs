//! The meta store: the small, long-lived records around the pipeline — users, refresh-token
//! families, producer API keys, saved searches, fraud reviews. Embedded: SQLite; distributed:
//! MongoDB.
//!
//! The trait is a document store on purpose: collections of JSON documents keyed by id, with
//! unique and indexed fields, which both engines offer natively. The typed logic (what a user
//! is, how a key is hashed) lives above the trait once, instead of twice in two adapters.

use async_trait::async_trait;
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MetaError {
    #[error("{collection}: another document already has this {field}")]
    Conflict {
        collection: &'static str,
        field: String,
    },
    #[error("meta store unavailable: {0}")]
    Unavailable(String),
    #[error("meta store document {collection}/{id} is unreadable: {detail}")]
    Corrupt {
        collection: &'static str,
        id: String,
        detail: String,
    },
    #[error("invalid meta store request: {0}")]
    Invalid(String),
}

/// A collection and the fields its documents are looked up by. Names are code, not input:
/// letters, digits and `_` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collection {
    pub name: &'static str,
    /// Top-level fields no two documents may share (absent values do not count).
    pub unique: &'static [&'static str],
    /// Top-level fields searched by equality.
    pub indexed: &'static [&'static str],
}

/// A page of a listing, in insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub limit: u64,
}

/// Equality on top-level fields, all of which must match.
pub type Filter<'a> = &'a [(&'a str, Value)];

#[async_trait]
pub trait MetaStore: Send + Sync {
    /// Creates the collections and their indexes if missing; safe to call on every start.
    async fn prepare(&self, collections: &[Collection]) -> Result<(), MetaError>;

    /// Stores a new document; `Conflict` if the id or a unique field is taken.
    async fn insert(
        &self,
        collection: &Collection,
        id: &str,
        document: &Value,
    ) -> Result<(), MetaError>;

    async fn get(&self, collection: &Collection, id: &str) -> Result<Option<Value>, MetaError>;

    /// Documents matching `filter`, as `(id, document)`, oldest first.
    async fn find(
        &self,
        collection: &Collection,
        filter: Filter<'_>,
        page: Page,
    ) -> Result<Vec<(String, Value)>, MetaError>;

    /// The first document matching `filter` (a lookup by a unique field), as `(id, document)`.
    async fn find_one(
        &self,
        collection: &Collection,
        filter: Filter<'_>,
    ) -> Result<Option<(String, Value)>, MetaError> {
        let page = Page {
            offset: 0,
            limit: 1,
        };
        Ok(self
            .find(collection, filter, page)
            .await?
            .into_iter()
            .next())
    }

    async fn count(&self, collection: &Collection, filter: Filter<'_>) -> Result<u64, MetaError>;

    /// Replaces the document `id` if it still matches `expected` (empty: whatever it holds), in
    /// one atomic step; `false` if there was no such document. The condition is what makes a
    /// read-modify-write safe between processes (a refresh token rotated twice at once, say).
    /// `Conflict` on unique fields.
    async fn replace(
        &self,
        collection: &Collection,
        id: &str,
        document: &Value,
        expected: Filter<'_>,
    ) -> Result<bool, MetaError>;

    /// Removes a document; `false` if there was none.
    async fn delete(&self, collection: &Collection, id: &str) -> Result<bool, MetaError>;
}

/// Collection and field names become table and column names (SQLite) or key paths (MongoDB),
/// so each adapter checks them with this: 1 to 64 ASCII letters, digits or underscores.
pub fn check_name(name: &str) -> Result<(), MetaError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(MetaError::Invalid(format!(
            "{name:?} is not a valid collection or field name"
        )))
    }
}

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
