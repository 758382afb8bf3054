//! The api role: what analysts, administrators and tools call. Accounts (`/api/auth`), user
//! administration (`/api/users`), search, recent logs, analytics, the dashboard, fraud,
//! performance and dead letters. Every route is declared
//! on its own; who may call it is in `sluice_common::auth::policy`, enforced by the guard the
//! binary layers over all roles.

mod analytics;
mod answer_cache;
pub mod auth;
mod dashboard;
mod dead_letters;
mod fraud;
mod logs;
mod performance;
mod search;
mod time_param;
mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde::{Deserialize, Deserializer};
use sluice_common::auth::Accounts;
use sluice_common::queue::DeadLetterQueue;
use sluice_common::store::EventStore;

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn EventStore>,
    pub dead_letters: Arc<dyn DeadLetterQueue>,
    pub accounts: Arc<Accounts>,
    pub login: Arc<auth::LoginThrottle>,
    /// How long analytics answers are reused (`cache.answer_ttl_secs`); zero: not at all.
    pub answer_ttl: Duration,
}

pub fn router(state: ApiState) -> Router {
    let answers = Router::new()
        .route("/api/analytics/transactions", get(analytics::transactions))
        .route("/api/analytics/errors", get(analytics::errors))
        .route(
            "/api/analytics/user-behavior",
            get(analytics::user_behavior),
        )
        .route("/api/analytics/trends", get(analytics::trends))
        .route(
            "/api/analytics/logs-per-hour",
            get(analytics::logs_per_hour),
        )
        .route(
            "/api/analytics/top-countries",
            get(analytics::top_countries),
        )
        .route("/api/analytics/top-products", get(analytics::top_products))
        .route("/api/dashboard/overview", get(dashboard::overview))
        .route("/api/dashboard/stats", get(dashboard::stats))
        .route("/api/dashboard/metrics", get(dashboard::metrics))
        .route("/api/dashboard/charts", get(dashboard::charts))
        .route("/api/performance/metrics", get(performance::metrics))
        .route(
            "/api/performance/api-response-times",
            get(performance::api_response_times),
        )
        .route(
            "/api/performance/database-latency",
            get(performance::database_latency),
        )
        .route("/api/fraud/stats", get(fraud::stats))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            answer_cache::reuse_answers,
        ));
    Router::new()
        .merge(answers)
        .route(
            "/api/fraud/suspicious-activities",
            get(fraud::suspicious_activities),
        )
        .route("/api/logs/search", post(search::search))
        .route("/api/logs/recent", get(search::recent))
        .route("/api/logs/types", get(logs::types))
        .route("/api/logs/stats", get(logs::stats))
        .route("/api/logs/search/services", get(logs::services))
        .route("/api/logs/search/export", post(search::export))
        .route("/api/logs/search/save", post(search::saved::save))
        .route("/api/logs/search/saved", get(search::saved::list))
        .route(
            "/api/logs/search/saved/{id}",
            axum::routing::delete(search::saved::delete),
        )
        .route("/api/logs/search/recent", get(search::saved::recent))
        .route("/api/dead-letters", get(dead_letters::list))
        .route("/api/auth/register", post(auth::register))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/refresh", post(auth::refresh))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/auth/logout-all", post(auth::logout_all))
        .route("/api/auth/me", get(auth::me).put(auth::update_me))
        .route("/api/auth/change-password", post(auth::change_password))
        .route("/api/auth/verify", get(auth::verify))
        .route(
            "/api/auth/api-keys",
            post(auth::create_api_key).get(auth::list_api_keys),
        )
        .route(
            "/api/auth/api-keys/{id}",
            axum::routing::delete(auth::delete_api_key),
        )
        .route("/api/users", get(users::list))
        .route(
            "/api/users/{id}",
            get(users::get).put(users::update).delete(users::delete),
        )
        .with_state(state)
}

/// Creates the api's own meta store collections (saved searches) where missing; idempotent.
pub async fn prepare_meta(
    meta: &dyn sluice_common::meta::MetaStore,
) -> Result<(), sluice_common::meta::MetaError> {
    meta.prepare(&[search::saved::SAVED_SEARCHES]).await
}

/// For optional fields that can be cleared: absent is `None`, `null` is `Some(None)`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
