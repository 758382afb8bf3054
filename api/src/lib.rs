//! The api role: what analysts and tools read. This first cut serves search, recent logs and
//! dead letters; every route is declared on its own so the role guard of the accounts work can
//! be layered per route.

mod dead_letters;
mod search;
mod time_param;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use sluice_common::queue::DeadLetterQueue;
use sluice_common::store::EventStore;

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn EventStore>,
    pub dead_letters: Arc<dyn DeadLetterQueue>,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/logs/search", post(search::search))
        .route("/api/logs/recent", get(search::recent))
        .route("/api/dead-letters", get(dead_letters::list))
        .with_state(state)
}
