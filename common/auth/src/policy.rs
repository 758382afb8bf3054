//! The one table of who may call each route. The guard looks every request up here; a route
//! missing from it is refused to everyone, so forgetting an entry fails closed.

use super::role::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed.
    Public,
    /// A user's access token with at least this role.
    User(Role),
    /// Sending logs: an analyst's (or higher) access token, or a producer API key.
    Ingest,
}

/// `(method, route template, access)`. Templates are axum's, as `MatchedPath` reports them.
pub const ROUTES: &[(&str, &str, Access)] = &[
    // Operations and the Elasticsearch handshake shippers make before sending.
    ("GET", "/health", Access::Public),
    ("GET", "/ready", Access::Public),
    ("GET", "/metrics", Access::Public),
    ("GET", "/", Access::Public),
    ("GET", "/api/openapi.json", Access::Public),
    ("GET", "/api/docs", Access::Public),
    // Ingest.
    ("POST", "/api/logs/ingest", Access::Ingest),
    ("POST", "/api/logs/upload", Access::Ingest),
    ("POST", "/_bulk", Access::Ingest),
    ("PUT", "/_bulk", Access::Ingest),
    ("POST", "/{index}/_bulk", Access::Ingest),
    ("PUT", "/{index}/_bulk", Access::Ingest),
    // Reading logs.
    ("POST", "/api/logs/search", Access::User(Role::Analyst)),
    ("GET", "/api/logs/recent", Access::User(Role::Viewer)),
    ("GET", "/api/logs/types", Access::User(Role::Viewer)),
    ("GET", "/api/logs/stats", Access::User(Role::Viewer)),
    (
        "GET",
        "/api/logs/search/services",
        Access::User(Role::Analyst),
    ),
    (
        "POST",
        "/api/logs/search/export",
        Access::User(Role::Analyst),
    ),
    ("POST", "/api/logs/search/save", Access::User(Role::Analyst)),
    ("GET", "/api/logs/search/saved", Access::User(Role::Analyst)),
    (
        "DELETE",
        "/api/logs/search/saved/{id}",
        Access::User(Role::Analyst),
    ),
    (
        "GET",
        "/api/logs/search/recent",
        Access::User(Role::Analyst),
    ),
    // Analytics: the dashboard is for everyone, the analyses for analysts.
    ("GET", "/api/dashboard/overview", Access::User(Role::Viewer)),
    ("GET", "/api/dashboard/stats", Access::User(Role::Viewer)),
    ("GET", "/api/dashboard/metrics", Access::User(Role::Viewer)),
    ("GET", "/api/dashboard/charts", Access::User(Role::Viewer)),
    (
        "GET",
        "/api/analytics/logs-per-hour",
        Access::User(Role::Viewer),
    ),
    (
        "GET",
        "/api/analytics/top-countries",
        Access::User(Role::Viewer),
    ),
    (
        "GET",
        "/api/analytics/top-products",
        Access::User(Role::Viewer),
    ),
    (
        "GET",
        "/api/analytics/transactions",
        Access::User(Role::Analyst),
    ),
    ("GET", "/api/analytics/errors", Access::User(Role::Analyst)),
    (
        "GET",
        "/api/analytics/user-behavior",
        Access::User(Role::Analyst),
    ),
    ("GET", "/api/analytics/trends", Access::User(Role::Analyst)),
    (
        "GET",
        "/api/performance/metrics",
        Access::User(Role::Analyst),
    ),
    (
        "GET",
        "/api/performance/api-response-times",
        Access::User(Role::Analyst),
    ),
    (
        "GET",
        "/api/performance/database-latency",
        Access::User(Role::Analyst),
    ),
    ("GET", "/api/fraud/stats", Access::User(Role::Analyst)),
    (
        "GET",
        "/api/fraud/suspicious-activities",
        Access::User(Role::Analyst),
    ),
    (
        "PUT",
        "/api/fraud/alerts/{id}/review",
        Access::User(Role::Analyst),
    ),
    ("POST", "/api/fraud/detect", Access::User(Role::Analyst)),
    ("GET", "/api/dead-letters", Access::User(Role::Admin)),
    (
        "POST",
        "/api/dead-letters/replay",
        Access::User(Role::Admin),
    ),
    ("POST", "/api/dead-letters/purge", Access::User(Role::Admin)),
    (
        "GET",
        "/api/dead-letters/actions",
        Access::User(Role::Admin),
    ),
    // The web UI. The shell and its assets hold no data. Each page's script is served only to
    // the roles that may use the page, so a page a role may not use is neither linked nor served.
    ("GET", "/ui", Access::Public),
    ("GET", "/ui/", Access::Public),
    ("GET", "/ui/assets/{*file}", Access::Public),
    ("GET", "/api/ui", Access::User(Role::Viewer)),
    ("GET", "/ui/pages/dashboard.js", Access::User(Role::Viewer)),
    ("GET", "/ui/pages/profile.js", Access::User(Role::Viewer)),
    ("GET", "/ui/pages/search.js", Access::User(Role::Analyst)),
    ("GET", "/ui/pages/upload.js", Access::User(Role::Analyst)),
    ("GET", "/ui/pages/fraud.js", Access::User(Role::Analyst)),
    (
        "GET",
        "/ui/pages/performance.js",
        Access::User(Role::Analyst),
    ),
    ("GET", "/ui/pages/kibana.js", Access::User(Role::Analyst)),
    ("GET", "/ui/pages/users.js", Access::User(Role::Moderator)),
    (
        "GET",
        "/ui/pages/dead-letters.js",
        Access::User(Role::Admin),
    ),
    // Accounts.
    ("POST", "/api/auth/register", Access::Public),
    ("GET", "/api/auth/registration", Access::Public),
    ("POST", "/api/auth/login", Access::Public),
    ("POST", "/api/auth/refresh", Access::Public),
    ("POST", "/api/auth/logout", Access::User(Role::Viewer)),
    ("POST", "/api/auth/logout-all", Access::User(Role::Viewer)),
    ("GET", "/api/auth/me", Access::User(Role::Viewer)),
    ("PUT", "/api/auth/me", Access::User(Role::Viewer)),
    (
        "POST",
        "/api/auth/change-password",
        Access::User(Role::Viewer),
    ),
    ("GET", "/api/auth/verify", Access::User(Role::Viewer)),
    // An API key can send logs, so making one takes the role that can.
    ("POST", "/api/auth/api-keys", Access::User(Role::Analyst)),
    ("GET", "/api/auth/api-keys", Access::User(Role::Analyst)),
    (
        "DELETE",
        "/api/auth/api-keys/{id}",
        Access::User(Role::Analyst),
    ),
    // A quota is the operator's brake on a producer: its owner may not lift it.
    (
        "PUT",
        "/api/auth/api-keys/{id}/quota",
        Access::User(Role::Admin),
    ),
    ("GET", "/api/users", Access::User(Role::Moderator)),
    ("GET", "/api/users/{id}", Access::User(Role::Moderator)),
    ("PUT", "/api/users/{id}", Access::User(Role::Moderator)),
    ("DELETE", "/api/users/{id}", Access::User(Role::Admin)),
];

/// The access rule of a route; `HEAD` follows `GET`.
pub fn access_for(method: &str, route: &str) -> Option<Access> {
    let method = if method == "HEAD" { "GET" } else { method };
    ROUTES
        .iter()
        .find(|(m, r, _)| *m == method && *r == route)
        .map(|(_, _, access)| *access)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_listed_once() {
        for (i, (method, route, _)) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[i + 1..]
                    .iter()
                    .any(|(m, r, _)| m == method && r == route),
                "{method} {route} is listed twice"
            );
        }
    }

    #[test]
    fn head_follows_get_and_unknown_routes_have_no_rule() {
        assert_eq!(access_for("HEAD", "/"), Some(Access::Public));
        assert_eq!(access_for("DELETE", "/api/logs/recent"), None);
        assert_eq!(access_for("GET", "/api/secret"), None);
    }
}
