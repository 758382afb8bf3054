//! Accounts over HTTP against `sluice serve`: the role matrix over every route, the token attack
//! suite, the register → login → refresh → logout flow, refresh-token reuse, login throttling and
//! lockout, user administration, password changes and producer API keys.

use crate::support;

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sluice_auth::Role;
use sluice_auth::policy::ROUTES;
use sluice_auth::tokens::{Claims, TokenKeys};
use sluice_config::AuthConfig;
use support::{ADMIN_PASSWORD, Server, create_user, ndjson, sluice_command};

const PASSWORD: &str = "Sturdy-Test-Pass-1";

fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    Server::start(dir, None, env)
}

fn valid_event() -> Value {
    support::generate(7, 1, 1, 1).remove(0)
}

/// `method path` with `token` (`None`: no credentials; `Some("ApiKey …")` as given; otherwise a
/// bearer token) and a JSON body for POST and PUT; status and JSON answer.
async fn call(
    server: &Server,
    method: &str,
    path: &str,
    credential: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = server.anonymous.request(method, server.url(path));
    if let Some(credential) = credential {
        let value = if credential.starts_with("ApiKey ") || credential.starts_with("Basic ") {
            credential.to_owned()
        } else {
            format!("Bearer {credential}")
        };
        request = request.header("authorization", value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

async fn login(server: &Server, username: &str, password: &str) -> Value {
    let (status, body, _) = call(
        server,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await;
    assert_eq!(status, 200, "login as {username}: {body}");
    body
}

fn token(login: &Value, which: &str) -> String {
    login[which].as_str().expect("token").to_owned()
}

/// Who is allowed: the expectation for each route, written from the issue, independently of
/// the policy table the server enforces.
#[derive(Clone, Copy)]
enum Expect {
    Public,
    AtLeast(Role),
    /// Analyst and up, or an API key.
    Ingest,
}

const EXPECTED: &[(&str, &str, Expect)] = &[
    ("GET", "/health", Expect::Public),
    ("GET", "/ready", Expect::Public),
    ("GET", "/metrics", Expect::Public),
    ("GET", "/", Expect::Public),
    ("GET", "/api/openapi.json", Expect::Public),
    ("GET", "/api/docs", Expect::Public),
    ("POST", "/api/logs/ingest", Expect::Ingest),
    ("POST", "/api/logs/upload", Expect::Ingest),
    ("POST", "/_bulk", Expect::Ingest),
    ("PUT", "/_bulk", Expect::Ingest),
    ("POST", "/{index}/_bulk", Expect::Ingest),
    ("PUT", "/{index}/_bulk", Expect::Ingest),
    ("POST", "/api/logs/search", Expect::AtLeast(Role::Analyst)),
    ("GET", "/api/logs/recent", Expect::AtLeast(Role::Viewer)),
    ("GET", "/api/logs/types", Expect::AtLeast(Role::Viewer)),
    ("GET", "/api/logs/stats", Expect::AtLeast(Role::Viewer)),
    (
        "POST",
        "/api/logs/search/export",
        Expect::AtLeast(Role::Analyst),
    ),
    (
        "POST",
        "/api/logs/search/save",
        Expect::AtLeast(Role::Analyst),
    ),
    (
        "GET",
        "/api/logs/search/saved",
        Expect::AtLeast(Role::Analyst),
    ),
    (
        "DELETE",
        "/api/logs/search/saved/{id}",
        Expect::AtLeast(Role::Analyst),
    ),
    (
        "GET",
        "/api/logs/search/recent",
        Expect::AtLeast(Role::Analyst),
    ),
    (
        "GET",
        "/api/dashboard/overview",
        Expect::AtLeast(Role::Viewer),
    ),
    ("GET", "/api/dashboard/stats", Expect::AtLeast(Role::Viewer)),
    (
        "GET",
        "/api/dashboard/metrics",
        Expect::AtLeast(Role::Viewer),
    ),
    (
        "GET",
        "/api/dashboard/charts",
        Expect::AtLeast(Role::Viewer),
    ),
    (
        "GET",
        "/api/analytics/logs-per-hour",
        Expect::AtLeast(Role::Viewer),
    ),
    (
        "GET",
        "/api/analytics/top-countries",
        Expect::AtLeast(Role::Viewer),
    ),
    (
        "GET",
        "/api/analytics/top-products",
        Expect::AtLeast(Role::Viewer),
    ),
    (
        "GET",
        "/api/analytics/transactions",
        Expect::AtLeast(Role::Analyst),
    ),
    (
        "GET",
        "/api/analytics/errors",
        Expect::AtLeast(Role::Analyst),
    ),
    (
        "GET",
        "/api/analytics/user-behavior",
        Expect::AtLeast(Role::Analyst),
    ),
    (
        "GET",
        "/api/analytics/trends",
        Expect::AtLeast(Role::Analyst),
    ),
    (
        "GET",
        "/api/performance/metrics",
        Expect::AtLeast(Role::Analyst),
    ),
    (
        "GET",
        "/api/performance/api-response-times",
        Expect::AtLeast(Role::Analyst),
    ),
    (
        "GET",
        "/api/performance/database-latency",
        Expect::AtLeast(Role::Analyst),
    ),
    ("GET", "/api/fraud/stats", Expect::AtLeast(Role::Analyst)),
    (
        "GET",
        "/api/fraud/suspicious-activities",
        Expect::AtLeast(Role::Analyst),
    ),
    (
        "PUT",
        "/api/fraud/alerts/{id}/review",
        Expect::AtLeast(Role::Analyst),
    ),
    ("POST", "/api/fraud/detect", Expect::AtLeast(Role::Analyst)),
    (
        "GET",
        "/api/logs/search/services",
        Expect::AtLeast(Role::Analyst),
    ),
    ("GET", "/api/dead-letters", Expect::AtLeast(Role::Admin)),
    (
        "POST",
        "/api/dead-letters/replay",
        Expect::AtLeast(Role::Admin),
    ),
    (
        "POST",
        "/api/dead-letters/purge",
        Expect::AtLeast(Role::Admin),
    ),
    (
        "GET",
        "/api/dead-letters/actions",
        Expect::AtLeast(Role::Admin),
    ),
    // The web UI: the shell is anyone's, each page's script only its roles'.
    ("GET", "/ui", Expect::Public),
    ("GET", "/ui/", Expect::Public),
    ("GET", "/ui/assets/{*file}", Expect::Public),
    ("GET", "/api/ui", Expect::AtLeast(Role::Viewer)),
    (
        "GET",
        "/ui/pages/dashboard.js",
        Expect::AtLeast(Role::Viewer),
    ),
    ("GET", "/ui/pages/profile.js", Expect::AtLeast(Role::Viewer)),
    ("GET", "/ui/pages/search.js", Expect::AtLeast(Role::Analyst)),
    ("GET", "/ui/pages/upload.js", Expect::AtLeast(Role::Analyst)),
    ("GET", "/ui/pages/fraud.js", Expect::AtLeast(Role::Analyst)),
    (
        "GET",
        "/ui/pages/performance.js",
        Expect::AtLeast(Role::Analyst),
    ),
    ("GET", "/ui/pages/kibana.js", Expect::AtLeast(Role::Analyst)),
    (
        "GET",
        "/ui/pages/users.js",
        Expect::AtLeast(Role::Moderator),
    ),
    (
        "GET",
        "/ui/pages/dead-letters.js",
        Expect::AtLeast(Role::Admin),
    ),
    ("POST", "/api/auth/register", Expect::Public),
    ("GET", "/api/auth/registration", Expect::Public),
    ("POST", "/api/auth/login", Expect::Public),
    ("POST", "/api/auth/refresh", Expect::Public),
    ("POST", "/api/auth/logout", Expect::AtLeast(Role::Viewer)),
    (
        "POST",
        "/api/auth/logout-all",
        Expect::AtLeast(Role::Viewer),
    ),
    ("GET", "/api/auth/me", Expect::AtLeast(Role::Viewer)),
    ("PUT", "/api/auth/me", Expect::AtLeast(Role::Viewer)),
    (
        "POST",
        "/api/auth/change-password",
        Expect::AtLeast(Role::Viewer),
    ),
    ("GET", "/api/auth/verify", Expect::AtLeast(Role::Viewer)),
    ("POST", "/api/auth/api-keys", Expect::AtLeast(Role::Analyst)),
    ("GET", "/api/auth/api-keys", Expect::AtLeast(Role::Analyst)),
    (
        "DELETE",
        "/api/auth/api-keys/{id}",
        Expect::AtLeast(Role::Analyst),
    ),
    (
        "PUT",
        "/api/auth/api-keys/{id}/quota",
        Expect::AtLeast(Role::Admin),
    ),
    ("GET", "/api/users", Expect::AtLeast(Role::Moderator)),
    ("GET", "/api/users/{id}", Expect::AtLeast(Role::Moderator)),
    ("PUT", "/api/users/{id}", Expect::AtLeast(Role::Moderator)),
    ("DELETE", "/api/users/{id}", Expect::AtLeast(Role::Admin)),
];

#[test]
fn the_matrix_covers_every_route_in_the_policy() {
    let expected: BTreeSet<_> = EXPECTED.iter().map(|(m, r, _)| (*m, *r)).collect();
    let policy: BTreeSet<_> = ROUTES.iter().map(|(m, r, _)| (*m, *r)).collect();
    assert_eq!(expected, policy);
}

#[tokio::test]
async fn role_matrix_every_route_every_role_and_no_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, role) in [
        ("vera", "viewer"),
        ("anna", "analyst"),
        ("moe", "moderator"),
    ] {
        create_user(dir.path(), name, role, PASSWORD);
    }
    let server = start(
        dir.path(),
        &[
            ("SLUICE_AUTH__LOGIN__PER_IP_PER_MINUTE", "100000"),
            ("SLUICE_AUTH__LOGIN__PER_USERNAME_PER_MINUTE", "100000"),
        ],
    );
    let credentials = [
        (Role::Viewer, "vera", PASSWORD),
        (Role::Analyst, "anna", PASSWORD),
        (Role::Moderator, "moe", PASSWORD),
        (Role::Admin, "admin", ADMIN_PASSWORD),
    ];
    let (status, key, _) = call(
        &server,
        "POST",
        "/api/auth/api-keys",
        Some(&server.admin_token),
        Some(json!({"name": "matrix"})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let api_key = format!("ApiKey {}", key["api_key"].as_str().expect("key"));

    let mut failures = Vec::new();
    for (method, route, expect) in EXPECTED {
        let path = route
            .replace("{index}", "logs")
            .replace("{*file}", "app.js")
            .replace("{id}", "x_does_not_exist");
        let body = matches!(*method, "POST" | "PUT").then(|| json!({}));
        let mut check = |who: String, status: u16, allowed: bool, answer: &Value| {
            // Allowed means answered for the route's own reasons: a success, or a 4xx about the
            // request (an empty body, an id that does not exist); never a server error.
            let ok = if allowed {
                status != 401 && status != 403 && status < 500
            } else {
                matches!(status, 401 | 403) && answer["error"]["code"].is_string()
            };
            if !ok {
                failures.push(format!(
                    "{method} {route} as {who}: {status} (allowed: {allowed}) {answer}"
                ));
            }
        };

        let (status, answer, _) = call(&server, method, &path, None, body.clone()).await;
        let public = matches!(expect, Expect::Public);
        check("nobody".into(), status, public, &answer);
        if !public {
            assert_eq!(status, 401, "{method} {route} without a token: {answer}");
        }

        for (role, username, password) in credentials {
            // Log in per call: logout and logout-all end the session they are called with.
            let bearer = token(&login(&server, username, password).await, "access_token");
            let allowed = match expect {
                Expect::Public => true,
                Expect::AtLeast(min) => role >= *min,
                Expect::Ingest => role >= Role::Analyst,
            };
            let (status, answer, _) =
                call(&server, method, &path, Some(&bearer), body.clone()).await;
            check(role.to_string(), status, allowed, &answer);
            if !allowed {
                assert_eq!(status, 403, "{method} {route} as {role}: {answer}");
            }
        }

        let allowed = matches!(expect, Expect::Public | Expect::Ingest);
        let (status, answer, _) = call(&server, method, &path, Some(&api_key), body.clone()).await;
        check("an API key".into(), status, allowed, &answer);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn register_login_call_refresh_logout_then_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    account_flow(&start(dir.path(), &[])).await;
}

/// Whether anyone may sign up: by default only `serve` on a loopback address (local mode) takes
/// new accounts; the api role of a deployment does not, and the setting decides either way.
#[tokio::test]
async fn registration_is_open_only_in_local_mode_unless_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let attempt = json!({"username": "walk-in", "password": PASSWORD});
    let registration = async |server: &Server| {
        let (status, answer, _) = call(
            server,
            "POST",
            "/api/auth/register",
            None,
            Some(attempt.clone()),
        )
        .await;
        let (_, open, _) = call(server, "GET", "/api/auth/registration", None, None).await;
        (
            status,
            answer["error"]["code"].clone(),
            open["open"].clone(),
        )
    };
    let closed = (403, json!("registration_closed"), json!(false));

    let mut local = start(&dir.path().join("local"), &[]);
    assert_eq!(
        registration(&local).await,
        (201, Value::Null, json!(true)),
        "serve on 127.0.0.1"
    );
    local.stop();

    let closed_dir = dir.path().join("closed");
    let mut closed_by_setting = start(&closed_dir, &[("SLUICE_AUTH__ALLOW_REGISTRATION", "false")]);
    assert_eq!(registration(&closed_by_setting).await, closed);
    closed_by_setting.stop();

    // The api role alone, the front of a deployment (whose store is Elasticsearch).
    let elasticsearch = std::env::var("TEST_ELASTICSEARCH_URL")
        .expect("TEST_ELASTICSEARCH_URL: run the suite through scripts/test.sh");
    let prefix = format!("registration-{}", std::process::id());
    let data_dir = closed_dir.display().to_string();
    let deployment = [
        // The accounts the serve above made, the admin among them.
        ("SLUICE_DATA_DIR", data_dir.as_str()),
        ("SLUICE_STORE__URL", elasticsearch.as_str()),
        ("SLUICE_STORE__ELASTICSEARCH__INDEX_PREFIX", prefix.as_str()),
        (
            "SLUICE_AUTH__JWT_SECRET",
            "a-secret-every-api-process-shares-0123456789",
        ),
    ];
    let mut api = Server::start_role("api", &closed_dir, &deployment, None);
    assert_eq!(registration(&api).await, closed, "the api role");
    api.stop();
    let log = std::fs::read_to_string(closed_dir.join("api.log")).expect("api log");
    assert!(
        log.contains("registration is closed"),
        "the start says which applies: {log}"
    );

    let opened = [
        deployment[0],
        deployment[1],
        deployment[2],
        deployment[3],
        ("SLUICE_AUTH__ALLOW_REGISTRATION", "true"),
    ];
    let api = Server::start_role("api", &closed_dir, &opened, None);
    assert_eq!(
        registration(&api).await,
        (201, Value::Null, json!(true)),
        "opened by the setting"
    );
}

/// The same accounts, kept in MongoDB (the Mongo-wire stand-in) with Redis as the cache.
#[tokio::test]
async fn accounts_work_the_same_on_mongodb_and_redis() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = format!("{}_{}", std::process::id(), sluice_event::now_ms());
    let mongo = format!(
        "{}/sluice_auth_{run}",
        std::env::var("TEST_MONGODB_URL")
            .expect("TEST_MONGODB_URL: run through scripts/test.sh")
            .trim_end_matches('/')
    );
    let redis =
        std::env::var("TEST_REDIS_URL").expect("TEST_REDIS_URL: run through scripts/test.sh");
    let prefix = format!("sluice-auth-{run}:");
    let server = start(
        dir.path(),
        &[
            ("SLUICE_META__URL", &mongo),
            ("SLUICE_CACHE__URL", &redis),
            ("SLUICE_CACHE__REDIS_PREFIX", &prefix),
        ],
    );
    assert!(
        !dir.path().join("meta.db").exists(),
        "no SQLite file when MongoDB is configured"
    );
    let ready = server.get_json("/ready").await;
    assert_eq!(
        (
            ready["checks"]["meta"].as_str(),
            ready["checks"]["cache"].as_str()
        ),
        (Some("ok"), Some("ok")),
        "{ready}"
    );
    account_flow(&server).await;
}

async fn account_flow(server: &Server) {
    let (status, registered, _) = call(
        server,
        "POST",
        "/api/auth/register",
        None,
        Some(json!({"username": "Nora", "password": PASSWORD, "email": "Nora@Example.com"})),
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["user"]["username"], "nora");
    assert_eq!(registered["user"]["role"], "viewer");
    assert_eq!(registered["user"]["email"], "nora@example.com");
    assert!(registered["user"].get("password_hash").is_none());

    let (status, again, _) = call(
        server,
        "POST",
        "/api/auth/register",
        None,
        Some(json!({"username": "NORA", "password": PASSWORD})),
    )
    .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("username_taken"))
    );
    let (status, weak, _) = call(
        server,
        "POST",
        "/api/auth/register",
        None,
        Some(json!({"username": "weak", "password": "short"})),
    )
    .await;
    assert_eq!(status, 400, "{weak}");
    assert_eq!(weak["error"]["field"], "password");

    let session = login(server, "nora", PASSWORD).await;
    assert_eq!(session["token_type"], "Bearer");
    assert_eq!(session["expires_in"], 3600);
    assert_eq!(session["user"]["username"], "nora");
    let access = token(&session, "access_token");
    let (status, me, _) = call(server, "GET", "/api/auth/me", Some(&access), None).await;
    assert_eq!(
        (status, me["user"]["username"].as_str()),
        (200, Some("nora"))
    );
    let (status, verified, _) = call(server, "GET", "/api/auth/verify", Some(&access), None).await;
    assert_eq!((status, verified["valid"].as_bool()), (200, Some(true)));
    let (status, updated, _) = call(
        server,
        "PUT",
        "/api/auth/me",
        Some(&access),
        Some(json!({"display_name": "Nora B."})),
    )
    .await;
    assert_eq!(
        (status, updated["user"]["display_name"].as_str()),
        (200, Some("Nora B."))
    );
    let (status, escalate, _) = call(
        server,
        "PUT",
        "/api/auth/me",
        Some(&access),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(status, 400, "a user cannot set their own role: {escalate}");

    let (status, rotated, _) = call(
        server,
        "POST",
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": token(&session, "refresh_token")})),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let access = token(&rotated, "access_token");
    let (status, _, _) = call(server, "POST", "/api/auth/logout", Some(&access), None).await;
    assert_eq!(status, 204);

    let (status, refused, headers) = call(server, "GET", "/api/auth/me", Some(&access), None).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (401, Some("session_ended"))
    );
    assert!(headers.contains_key("www-authenticate"));
    let (status, refused, _) = call(
        server,
        "POST",
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": token(&rotated, "refresh_token")})),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (401, Some("session_ended"))
    );
}

/// The claims inside a token, read without checking it.
fn claims_of(token: &str) -> Claims {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("claims")
}

#[tokio::test]
async fn token_attacks_are_refused_with_401() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let secret = std::fs::read(dir.path().join("jwt-secret")).expect("the generated key");
    let keys = TokenKeys::new(&secret, &AuthConfig::default());
    let session = login(&server, "admin", ADMIN_PASSWORD).await;
    let access = token(&session, "access_token");
    let genuine = claims_of(&access);
    let now = genuine.iat;

    let mut tampered = access.clone().into_bytes();
    let at = tampered.len() - 3;
    tampered[at] = if tampered[at] == b'x' { b'y' } else { b'x' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let encode = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let payload = encode(serde_json::to_value(&genuine).expect("claims"));
    let signature = access.rsplit('.').next().expect("signature");
    let viewer_claims = Claims {
        role: Role::Viewer,
        ..genuine.clone()
    };
    let forged_by_other_key = TokenKeys::new(&[1u8; 32], &AuthConfig::default()).sign(&Claims {
        role: Role::Admin,
        ..viewer_claims
    });

    let attacks: Vec<(&str, String, &str)> = vec![
        ("tampered signature", tampered, "invalid_token"),
        (
            "signed with another key",
            forged_by_other_key,
            "invalid_token",
        ),
        (
            "expired",
            keys.sign(&Claims {
                exp: now - 120,
                iat: now - 4000,
                nbf: now - 4000,
                ..genuine.clone()
            }),
            "token_expired",
        ),
        (
            "not yet valid",
            keys.sign(&Claims {
                nbf: now + 600,
                ..genuine.clone()
            }),
            "token_not_yet_valid",
        ),
        (
            "wrong issuer",
            keys.sign(&Claims {
                iss: "evil".into(),
                ..genuine.clone()
            }),
            "token_wrong_issuer",
        ),
        (
            "wrong audience",
            keys.sign(&Claims {
                aud: "other-app".into(),
                ..genuine.clone()
            }),
            "token_wrong_issuer",
        ),
        (
            "alg none",
            format!(
                "{}.{payload}.",
                encode(json!({"alg": "none", "typ": "JWT"}))
            ),
            "invalid_token",
        ),
        (
            "another algorithm",
            format!(
                "{}.{payload}.{signature}",
                encode(json!({"alg": "HS512", "typ": "JWT"}))
            ),
            "invalid_token",
        ),
        (
            "refresh token as access token",
            token(&session, "refresh_token"),
            "token_wrong_type",
        ),
        ("garbage", "not.a.token".into(), "invalid_token"),
    ];
    for (name, attack, code) in attacks {
        let (status, answer, headers) =
            call(&server, "GET", "/api/auth/me", Some(&attack), None).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (401, Some(code)),
            "{name}: {answer}"
        );
        assert!(headers.contains_key("www-authenticate"), "{name}");
    }
    let (status, answer, _) = call(
        &server,
        "GET",
        "/api/auth/me",
        Some("Basic YWRtaW46eA=="),
        None,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("unsupported_credentials"))
    );

    // The genuine token still works: none of the above hurt the session.
    let (status, _, _) = call(&server, "GET", "/api/auth/me", Some(&access), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_family() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let first = login(&server, "admin", ADMIN_PASSWORD).await;
    let refresh = |token: String| {
        let server = &server;
        async move {
            call(
                server,
                "POST",
                "/api/auth/refresh",
                None,
                Some(json!({"refresh_token": token})),
            )
            .await
        }
    };
    let (status, second, _) = refresh(token(&first, "refresh_token")).await;
    assert_eq!(status, 200);
    let (status, stolen, _) = refresh(token(&first, "refresh_token")).await;
    assert_eq!(
        (status, stolen["error"]["code"].as_str()),
        (401, Some("refresh_token_reused"))
    );
    let (status, _, _) = refresh(token(&second, "refresh_token")).await;
    assert_eq!(
        status, 401,
        "the legitimate holder's token died with the family"
    );
    let (status, answer, _) = call(
        &server,
        "GET",
        "/api/auth/me",
        Some(&token(&second, "access_token")),
        None,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("session_ended"))
    );
    // Another session of the same user is untouched.
    let (status, _, _) = call(
        &server,
        "GET",
        "/api/auth/me",
        Some(&server.admin_token),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn logins_are_rate_limited_per_address_and_locked_per_username() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_user(dir.path(), "lena", "viewer", PASSWORD);
    let server = start(
        dir.path(),
        &[
            ("SLUICE_AUTH__LOGIN__LOCKOUT_FAILURES", "3"),
            ("SLUICE_AUTH__LOGIN__PER_IP_PER_MINUTE", "8"),
        ],
    );
    let attempt = |username: &'static str, password: &'static str| {
        let server = &server;
        async move {
            call(
                server,
                "POST",
                "/api/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await
        }
    };
    // Unknown user and wrong password: the same answer.
    let (unknown_status, unknown, _) = attempt("nobody", PASSWORD).await;
    let (wrong_status, wrong, _) = attempt("lena", "Wrong-Pass-Word-1").await;
    assert_eq!((unknown_status, wrong_status), (401, 401));
    assert_eq!(unknown, wrong);

    for _ in 0..2 {
        let (status, _, _) = attempt("lena", "Wrong-Pass-Word-1").await;
        assert_eq!(status, 401);
    }
    // Three failures: locked, even with the right password.
    let (status, locked, headers) = attempt("lena", PASSWORD).await;
    assert_eq!(
        (status, locked["error"]["code"].as_str()),
        (429, Some("login_locked")),
        "{locked}"
    );
    assert!(headers.contains_key("retry-after"));
    // The lock is per username: admin can still log in from here (attempt 6 of 8).
    let (status, _, _) = call(
        &server,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
    )
    .await;
    assert_eq!(status, 200);
    // Past 8 a minute from one address, everything waits.
    let mut last = (0, Value::Null, reqwest::header::HeaderMap::new());
    for _ in 0..3 {
        last = attempt("admin", "Wrong-Pass-Word-1").await;
    }
    assert_eq!(
        (last.0, last.1["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{}",
        last.1
    );
    let wait: u64 = last.2["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn user_administration_follows_the_role_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, role) in [
        ("moe", "moderator"),
        ("vic", "viewer"),
        ("val", "viewer"),
        ("ann", "analyst"),
    ] {
        create_user(dir.path(), name, role, PASSWORD);
    }
    let server = start(dir.path(), &[]);
    let moderator = token(&login(&server, "moe", PASSWORD).await, "access_token");
    let admin = server.admin_token.clone();

    let (status, page, _) = call(
        &server,
        "GET",
        "/api/users?limit=2&offset=1",
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 5);
    assert_eq!(page["users"].as_array().expect("users").len(), 2);
    let (_, viewers, _) = call(
        &server,
        "GET",
        "/api/users?role=viewer",
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(viewers["total"], 2);
    let (status, bad, _) = call(
        &server,
        "GET",
        "/api/users?role=root",
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(
        (status, bad["error"]["field"].as_str()),
        (400, Some("role"))
    );
    let (status, bad, _) = call(
        &server,
        "GET",
        "/api/users?limit=100000",
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(
        (status, bad["error"]["field"].as_str()),
        (400, Some("limit"))
    );

    let id_of = |users: &Value, name: &str| {
        users["users"]
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["username"] == name)
            .map(|u| u["id"].as_str().expect("id").to_owned())
            .expect("listed")
    };
    let (_, all, _) = call(&server, "GET", "/api/users", Some(&admin), None).await;
    let (vic, admin_id) = (id_of(&all, "vic"), id_of(&all, "admin"));

    let put = |path: String, who: String, body: Value| {
        let server = &server;
        async move { call(server, "PUT", &path, Some(&who), Some(body)).await }
    };
    let (status, answer, _) = put(
        format!("/api/users/{vic}"),
        moderator.clone(),
        json!({"role": "admin"}),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, answer, _) = put(
        format!("/api/users/{admin_id}"),
        moderator.clone(),
        json!({"display_name": "x"}),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, answer, _) = put(
        format!("/api/users/{vic}"),
        moderator.clone(),
        json!({"role": "analyst"}),
    )
    .await;
    assert_eq!(
        (status, answer["user"]["role"].as_str()),
        (200, Some("analyst"))
    );
    let (status, _, _) = call(
        &server,
        "DELETE",
        &format!("/api/users/{vic}"),
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(status, 403, "deleting needs admin");

    let (status, answer, _) = put(
        format!("/api/users/{admin_id}"),
        admin.clone(),
        json!({"role": "viewer"}),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("last_admin"))
    );
    let (status, answer, _) = call(
        &server,
        "DELETE",
        &format!("/api/users/{admin_id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("last_admin"))
    );
    let (status, _, _) = call(
        &server,
        "DELETE",
        &format!("/api/users/{vic}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, _) = call(
        &server,
        "GET",
        &format!("/api/users/{vic}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_user(dir.path(), "pat", "viewer", PASSWORD);
    let server = start(dir.path(), &[]);
    let here = token(&login(&server, "pat", PASSWORD).await, "access_token");
    let there = token(&login(&server, "pat", PASSWORD).await, "access_token");
    let (status, answer, _) = call(
        &server,
        "POST",
        "/api/auth/change-password",
        Some(&here),
        Some(json!({"current_password": "Wrong-Pass-Word-1", "new_password": "New-Sturdy-Pass-2"})),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (400, Some("current_password"))
    );
    let (status, answer, _) = call(
        &server,
        "POST",
        "/api/auth/change-password",
        Some(&here),
        Some(json!({"current_password": PASSWORD, "new_password": "New-Sturdy-Pass-2"})),
    )
    .await;
    assert_eq!(
        (status, answer["other_sessions_ended"].as_u64()),
        (200, Some(1)),
        "{answer}"
    );
    assert_eq!(
        call(&server, "GET", "/api/auth/me", Some(&here), None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&server, "GET", "/api/auth/me", Some(&there), None)
            .await
            .0,
        401
    );
    login(&server, "pat", "New-Sturdy-Pass-2").await;
}

#[tokio::test]
async fn api_keys_send_logs_in_both_forms_and_nothing_else_until_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_user(dir.path(), "ship", "analyst", PASSWORD);
    let server = start(dir.path(), &[]);
    let analyst = token(&login(&server, "ship", PASSWORD).await, "access_token");
    let (status, created, _) = call(
        &server,
        "POST",
        "/api/auth/api-keys",
        Some(&analyst),
        Some(json!({"name": "filebeat web-1"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let raw = format!("ApiKey {}", created["api_key"].as_str().expect("key"));
    let encoded = format!("ApiKey {}", created["encoded"].as_str().expect("encoded"));
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(
        STANDARD
            .decode(created["encoded"].as_str().expect("encoded"))
            .expect("base64"),
        format!("{id}:{}", created["api_key"].as_str().expect("key")).into_bytes()
    );

    let (status, listed, _) =
        call(&server, "GET", "/api/auth/api-keys", Some(&analyst), None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["api_keys"][0]["name"], "filebeat web-1");
    assert!(
        !listed
            .to_string()
            .contains(created["api_key"].as_str().expect("key")),
        "shown once only"
    );

    let send = |credential: String| {
        let server = &server;
        async move {
            let response = server
                .anonymous
                .post(server.url("/api/logs/ingest"))
                .header("authorization", credential)
                .header("content-type", "application/x-ndjson")
                .body(ndjson(&[valid_event()]))
                .send()
                .await
                .expect("sent");
            response.status().as_u16()
        }
    };
    assert_eq!(send(raw.clone()).await, 202);
    assert_eq!(send(encoded.clone()).await, 202);
    let bulk = format!("{}\n{}\n", json!({"index": {}}), valid_event());
    let response = server
        .anonymous
        .post(server.url("/logs/_bulk"))
        .header("authorization", &encoded)
        .header("content-type", "application/x-ndjson")
        .body(bulk)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        response.status().as_u16(),
        200,
        "Elasticsearch clients send the encoded form"
    );

    let (status, answer, _) = call(
        &server,
        "POST",
        "/api/logs/search",
        Some(&raw),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("api_key_not_allowed"))
    );

    let other = server.admin_token.clone();
    let (status, _, _) = call(
        &server,
        "DELETE",
        &format!("/api/auth/api-keys/{id}"),
        Some(&other),
        None,
    )
    .await;
    assert_eq!(status, 204, "an admin may revoke anyone's key");
    assert_eq!(send(raw).await, 401);
    assert_eq!(send(encoded).await, 401);
    assert_eq!(send("ApiKey slk_made_up".into()).await, 401);
}

#[tokio::test]
async fn hostile_auth_requests_get_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let post = |path: &'static str, content_type: &'static str, body: String| {
        let server = &server;
        async move {
            let response = server
                .anonymous
                .post(server.url(path))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("sent");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, answer) = post(
        "/api/auth/login",
        "application/json",
        "{\"username\":".into(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );
    let (status, answer) = post(
        "/api/auth/login",
        "application/json",
        json!({"username": "a"}).to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .contains("password"),
        "{answer}"
    );
    let (status, answer) = post(
        "/api/auth/login",
        "application/json",
        json!({"username": 5, "password": []}).to_string(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, answer) = post("/api/auth/login", "text/plain", "admin:pw".into()).await;
    assert_eq!(status, 415, "{answer}");
    let huge =
        json!({"username": "x".repeat(1_000_000), "password": "y".repeat(1_000_000)}).to_string();
    let (status, _) = post("/api/auth/login", "application/json", huge).await;
    assert!(matches!(status, 401 | 413), "{status}");
    let (status, answer) = post(
        "/api/auth/register",
        "application/json",
        json!({"username": "eve\u{0000}", "password": PASSWORD}).to_string(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (400, Some("username"))
    );
    let (status, answer) = post(
        "/api/auth/register",
        "application/json",
        json!({"username": "eve", "password": PASSWORD, "role": "admin"}).to_string(),
    )
    .await;
    assert_eq!(status, 400, "registration cannot choose a role: {answer}");
}

#[test]
fn the_command_line_manages_users_and_keeps_the_last_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_user(dir.path(), "first", "admin", PASSWORD);
    create_user(dir.path(), "second", "viewer", PASSWORD);
    let listed = sluice_command(dir.path(), &["user", "list"], "", &[]);
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success());
    assert!(
        listing.contains("first") && listing.contains("admin"),
        "{listing}"
    );
    assert!(
        listing.contains("second") && listing.contains("viewer"),
        "{listing}"
    );

    let demote = sluice_command(
        dir.path(),
        &["user", "set-role", "first", "viewer"],
        "",
        &[],
    );
    assert!(!demote.status.success());
    assert!(String::from_utf8_lossy(&demote.stderr).contains("last admin"));
    let promote = sluice_command(
        dir.path(),
        &["user", "set-role", "second", "moderator"],
        "",
        &[],
    );
    assert!(
        promote.status.success(),
        "{}",
        String::from_utf8_lossy(&promote.stderr)
    );

    let no_password = sluice_command(
        dir.path(),
        &[
            "user",
            "create",
            "--username",
            "third",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        "",
        &[],
    );
    assert!(!no_password.status.success());
    assert!(String::from_utf8_lossy(&no_password.stderr).contains("standard input"));
    let bad_role = sluice_command(
        dir.path(),
        &[
            "user",
            "create",
            "--username",
            "third",
            "--role",
            "root",
            "--password-stdin",
        ],
        "x\n",
        &[],
    );
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("viewer, analyst"));
}

#[test]
fn serve_on_an_empty_meta_store_says_how_to_make_the_first_admin() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("SLUICE_AUTH__BCRYPT_COST", "4")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let listening = line.starts_with("sluice listening on ");
        lines.push(line);
        if listening {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let printed = lines.join("\n");
    assert!(
        printed.contains("sluice user create --username admin --role admin --password-stdin"),
        "{printed}"
    );
    assert!(printed.contains("--data-dir"), "{printed}");
}
