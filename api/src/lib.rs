//! The api role: what analysts, administrators and tools call. Accounts (`/api/auth`), user
//! administration (`/api/users`), search, recent logs, analytics, the dashboard, fraud,
//! performance and dead letters, and the web UI over them (`/ui/`). Every route is declared
//! on its own; who may call it is in `sluice_auth::policy`, enforced by the guard the
//! binary layers over all roles.

mod aggregation_path;
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
mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Deserializer};
use sluice_auth::Accounts;
use sluice_queue::DeadLetterQueue;
use sluice_store::EventStore;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn EventStore>,
    pub dead_letters: Arc<dyn DeadLetterQueue>,
    /// Where replayed dead letters go: the queue ingest writes to (none where this process does
    /// not write to it).
    pub queue: Option<Arc<dyn sluice_queue::Queue>>,
    pub accounts: Arc<Accounts>,
    pub login: Arc<auth::LoginThrottle>,
    /// How long analytics answers are reused (`cache.answer_ttl_secs`); zero: not at all.
    pub answer_ttl: Duration,
    /// Scores transactions on demand, as the processor would.
    pub fraud: Arc<dyn sluice_fraud::FraudDetector>,
    /// The Kibana dashboard the web UI embeds (`Config::kibana_dashboard_url`).
    pub kibana_dashboard_url: Option<String>,
    /// Whether `POST /api/auth/register` takes new accounts
    /// ([`AuthConfig::registration_open`](sluice_config::AuthConfig::registration_open)).
    pub registration_open: bool,
    /// The OpenAPI document of every role, as `/api/openapi.json` serves it. The binary puts it
    /// together, since it alone knows every role ([`openapi`] is this role's part).
    pub openapi: axum::body::Bytes,
}

/// The api routes and their OpenAPI description come from these two lists, so a route cannot be
/// served and left out of the document. The UI's files are routes of their own, undocumented
/// (`web`). These answers are reused for `cache.answer_ttl_secs` (`answer_cache`).
fn answer_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(analytics::transactions))
        .routes(routes!(analytics::errors))
        .routes(routes!(analytics::user_behavior))
        .routes(routes!(analytics::trends))
        .routes(routes!(analytics::logs_per_hour))
        .routes(routes!(analytics::top_countries))
        .routes(routes!(analytics::top_products))
        .routes(routes!(dashboard::overview))
        .routes(routes!(dashboard::stats))
        .routes(routes!(dashboard::metrics))
        .routes(routes!(dashboard::charts))
        .routes(routes!(performance::metrics))
        .routes(routes!(performance::api_response_times))
        .routes(routes!(performance::database_latency))
        .routes(routes!(fraud::stats))
}

fn other_routes(kibana_dashboard_url: Option<&str>) -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(web::router(kibana_dashboard_url))
        .routes(routes!(fraud::suspicious_activities))
        .routes(routes!(fraud::detect))
        .routes(routes!(fraud::review))
        .routes(routes!(search::search))
        .routes(routes!(search::recent))
        .routes(routes!(logs::types))
        .routes(routes!(logs::stats))
        .routes(routes!(logs::services))
        .routes(routes!(search::export::export))
        .routes(routes!(search::saved::save))
        .routes(routes!(search::saved::list))
        .routes(routes!(search::saved::delete))
        .routes(routes!(search::saved::recent))
        .routes(routes!(dead_letters::list))
        .routes(routes!(dead_letters::replay))
        .routes(routes!(dead_letters::purge))
        .routes(routes!(dead_letters::list_actions))
        .routes(routes!(openapi_document))
        .routes(routes!(auth::register))
        .routes(routes!(auth::registration))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::logout_all))
        .routes(routes!(auth::me, auth::update_me))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::verify))
        .routes(routes!(auth::create_api_key, auth::list_api_keys))
        .routes(routes!(auth::set_api_key_quota))
        .routes(routes!(auth::delete_api_key))
        .routes(routes!(users::list))
        .routes(routes!(users::get, users::update, users::delete))
}

pub fn router(state: ApiState) -> Router {
    let answers = answer_routes()
        .route_layer(axum::middleware::from_fn(aggregation_path::say_path))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            answer_cache::reuse_answers,
        ));
    let (router, _) = answers
        .merge(other_routes(state.kibana_dashboard_url.as_deref()))
        .split_for_parts();
    router.with_state(state)
}

/// What the api routes answer, for the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    answer_routes().merge(other_routes(None)).into_openapi()
}

#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    summary = "This document: every route, parameter, body, answer and error, generated from the code",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json"))
)]
async fn openapi_document(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
}

/// Creates the api's own meta store collections (saved searches, fraud reviews, dead-letter
/// actions) where missing; idempotent.
pub async fn prepare_meta(meta: &dyn sluice_meta::MetaStore) -> Result<(), sluice_meta::MetaError> {
    meta.prepare(&[
        search::saved::SAVED_SEARCHES,
        fraud::FRAUD_REVIEWS,
        dead_letters::DEAD_LETTER_ACTIONS,
    ])
    .await
}

/// For optional fields that can be cleared: absent is `None`, `null` is `Some(None)`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
