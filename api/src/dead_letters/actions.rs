//! What was done to dead letters, who did it and when: each replay and purge is one document in
//! the meta store. The letters an action names are settled: listings, replays and purges pass
//! over them from then on. Both dead-letter queues are append-only (WAL segments, a Kafka
//! topic), so settling is recorded beside them rather than by deleting; the letters themselves
//! go with the queue's own retention (`queue.wal.max_dead_letters`, the topic's retention).
//! Keeping the record above the queue makes it the same for the WAL and Kafka.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_auth::AccountError;
use sluice_auth::accounts::new_id;
use sluice_http::ApiError;
use sluice_meta::{Collection, MetaStore, Page};
use utoipa::ToSchema;

pub const DEAD_LETTER_ACTIONS: Collection = Collection {
    name: "dead_letter_actions",
    unique: &[],
    indexed: &["action"],
};

/// Most actions read back, for the settled set and the history.
const MAX_ACTIONS: u64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// The letters' records were sent through the processor again.
    Replay,
    /// The letters were dropped from the list.
    Purge,
}

/// One replay or purge.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Action {
    #[serde(skip_deserializing, default)]
    pub id: String,
    pub action: ActionKind,
    /// The username of who did it.
    pub by: String,
    /// RFC 3339.
    pub at: String,
    /// The filter it was given, as sent.
    #[schema(value_type = Object)]
    pub filter: Value,
    /// How many letters it settled.
    pub count: usize,
    /// The letters it settled.
    pub letter_ids: Vec<String>,
}

fn meta_error(e: sluice_meta::MetaError) -> ApiError {
    AccountError::Meta(e).into()
}

async fn all(meta: &dyn MetaStore) -> Result<Vec<Action>, ApiError> {
    let page = Page {
        offset: 0,
        limit: MAX_ACTIONS,
    };
    let found = meta
        .find(&DEAD_LETTER_ACTIONS, &[], page)
        .await
        .map_err(meta_error)?;
    Ok(found
        .into_iter()
        .filter_map(|(id, document)| {
            let mut action: Action = serde_json::from_value(document).ok()?;
            action.id = id;
            Some(action)
        })
        .collect())
}

/// Every letter an action settled.
pub async fn settled(meta: &dyn MetaStore) -> Result<HashSet<String>, ApiError> {
    Ok(all(meta)
        .await?
        .into_iter()
        .flat_map(|action| action.letter_ids)
        .collect())
}

/// The newest `limit` actions, newest first.
pub async fn newest(meta: &dyn MetaStore, limit: usize) -> Result<Vec<Action>, ApiError> {
    let mut actions = all(meta).await?;
    actions.reverse();
    actions.truncate(limit);
    Ok(actions)
}

/// Records `action`; its id.
pub async fn record(meta: &dyn MetaStore, mut action: Action) -> Result<String, ApiError> {
    action.id = new_id("dla");
    let document = serde_json::to_value(&action)
        .map_err(|e| ApiError::internal(format!("recording the action: {e}")))?;
    meta.insert(&DEAD_LETTER_ACTIONS, &action.id, &document)
        .await
        .map_err(meta_error)?;
    Ok(action.id)
}
