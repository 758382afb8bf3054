//! The api role: what analysts, administrators and tools call. Accounts (`/api/auth`), user
//! administration (`/api/users`), search, recent logs, analytics, the dashboard, fraud,
//! performance and dead letters, and the web UI over them (`/ui/`). Every route is declared
//! on its own; who may call it is in `sluice_auth::policy`, enforced by the guard the
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
mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde::{Deserialize, Deserializer};
use sluice_auth::Accounts;
use sluice_queue::DeadLetterQueue;
use sluice_store::EventStore;

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn EventStore>,
    pub dead_letters: Arc<dyn DeadLetterQueue>,
    pub accounts: Arc<Accounts>,
    pub login: Arc<auth::LoginThrottle>,
    /// How long analytics answers are reused (`cache.answer_ttl_secs`); zero: not at all.
    pub answer_ttl: Duration,
    /// Scores transactions on demand, as the processor would.
    pub fraud: Arc<dyn sluice_fraud::FraudDetector>,
    /// The Kibana dashboard the web UI embeds (`Config::kibana_dashboard_url`).
    pub kibana_dashboard_url: Option<String>,
}

pub fn router(state: ApiState) -> Router {
    let web = web::router(state.kibana_dashboard_url.as_deref());
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
        .merge(web)
        .route(
            "/api/fraud/suspicious-activities",
            get(fraud::suspicious_activities),
        )
        .route("/api/fraud/detect", post(fraud::detect))
        .route(
            "/api/fraud/alerts/{id}/review",
            axum::routing::put(fraud::review),
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
        .route("/api/openapi.json", get(openapi))
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

/// The OpenAPI 3.1 description of every route. Written by hand next to the code; a test checks
/// it against the policy table, so a route cannot be added to one and forgotten in the other.
pub const OPENAPI: &str = include_str!("../openapi/openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// Creates the api's own meta store collections (saved searches, fraud reviews) where missing;
/// idempotent.
pub async fn prepare_meta(meta: &dyn sluice_meta::MetaStore) -> Result<(), sluice_meta::MetaError> {
    meta.prepare(&[search::saved::SAVED_SEARCHES, fraud::FRAUD_REVIEWS])
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use sluice_auth::policy::{Access, ROUTES};

    /// Every route of the policy is described, with the access the policy gives it, and nothing
    /// else is.
    #[test]
    fn openapi_describes_exactly_the_routes_of_the_policy() {
        let document: serde_json::Value =
            serde_json::from_str(super::OPENAPI).expect("openapi.json is JSON");
        assert_eq!(document["openapi"], "3.1.0");
        let mut described = BTreeSet::new();
        for (path, operations) in document["paths"].as_object().expect("paths") {
            for (method, operation) in operations.as_object().expect("operations") {
                let access = operation["x-sluice-access"]
                    .as_str()
                    .expect("access")
                    .to_owned();
                assert!(operation["summary"].is_string(), "{method} {path}");
                assert!(operation["responses"].is_object(), "{method} {path}");
                described.insert((method.to_uppercase(), path.clone(), access));
            }
        }
        // The web UI's files are pages for browsers, not API.
        let policy: BTreeSet<(String, String, String)> = ROUTES
            .iter()
            .filter(|(_, path, _)| *path != "/ui" && !path.starts_with("/ui/"))
            .map(|(method, path, access)| {
                let access = match access {
                    Access::Public => "public".to_owned(),
                    Access::Ingest => "ingest".to_owned(),
                    Access::User(role) => role.as_str().to_owned(),
                };
                ((*method).to_owned(), (*path).to_owned(), access)
            })
            .collect();
        assert_eq!(described, policy);
        // The document itself is public, so it is in the policy too.
        assert!(policy.contains(&(
            "GET".to_owned(),
            "/api/openapi.json".to_owned(),
            "public".to_owned()
        )));
    }
}
