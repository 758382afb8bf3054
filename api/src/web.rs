//! The web UI, built into the binary so `sluice serve` needs nothing beside it and works offline.
//!
//! The shell (`/ui/`), its script, styles and the vendored libraries (Chart.js, flatpickr, from
//! npm with a lockfile: `api/web/package-lock.json`) are public: they hold no data. Each page is a
//! script of its own under `/ui/pages/`, with its own rule in the access policy, and the shell
//! fetches it with the user's token: a page a role may not use is neither linked (`/api/ui` lists
//! only the pages the caller may open) nor served (the guard answers 403).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Serialize;
use sluice_auth::Role;
use sluice_auth::accounts::PublicUser;
use sluice_auth::policy::{self, Access};
use sluice_http::ApiError;
use sluice_http::responses::Unavailable;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ApiState;
use crate::auth::CurrentUser;

/// A file served as it was built in.
struct Asset {
    name: &'static str,
    body: &'static [u8],
}

impl Asset {
    /// By the name's extension: the UI has scripts, styles, one icon and the shell.
    fn content_type(&self) -> &'static str {
        match self.name.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some("html") => "text/html; charset=utf-8",
            _ => "application/octet-stream",
        }
    }
}

macro_rules! asset {
    ($dir:literal, $name:literal) => {
        Asset {
            name: $name,
            body: include_bytes!(concat!("../web/", $dir, "/", $name)),
        }
    };
}

/// What `/ui/assets/…` serves.
const ASSETS: &[Asset] = &[
    asset!("static", "app.js"),
    asset!("static", "app.css"),
    asset!("static", "favicon.svg"),
    asset!("static", "vendor/chart.umd.min.js"),
    asset!("static", "vendor/flatpickr.min.js"),
    asset!("static", "vendor/flatpickr.min.css"),
    asset!("static", "api-docs.js"),
    asset!("static", "vendor/swagger-ui-bundle.js"),
    asset!("static", "vendor/swagger-ui.css"),
];

/// The pages, in the order the menu shows them. Who may open each is the policy's rule for
/// `/ui/pages/<name>.js`.
const PAGES: &[Asset] = &[
    asset!("pages", "dashboard.js"),
    asset!("pages", "search.js"),
    asset!("pages", "upload.js"),
    asset!("pages", "fraud.js"),
    asset!("pages", "performance.js"),
    asset!("pages", "kibana.js"),
    asset!("pages", "users.js"),
    asset!("pages", "dead-letters.js"),
    asset!("pages", "profile.js"),
];

const SHELL: Asset = asset!("static", "index.html");

/// The interactive API reference (Swagger UI over `/api/openapi.json`).
const API_DOCS: Asset = asset!("static", "api-docs.html");

/// Every file, in one order: the assets, the pages, the shell, the API reference. A file's place
/// in it indexes [`TAGS`] and [`GZIPPED`].
fn bodies() -> impl Iterator<Item = &'static [u8]> {
    ASSETS
        .iter()
        .chain(PAGES)
        .map(|asset| asset.body)
        .chain([SHELL.body, API_DOCS.body])
}

const SHELL_INDEX: usize = ASSETS.len() + PAGES.len();
const API_DOCS_INDEX: usize = SHELL_INDEX + 1;

/// Content hashes, for conditional requests: an unchanged file costs a 304.
static TAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    bodies()
        .map(|body| {
            let mut hasher = DefaultHasher::new();
            body.hash(&mut hasher);
            format!("{:016x}", hasher.finish())
        })
        .collect()
});

/// Each file gzipped, once, on first use: the UI's first load shrinks to about a third (Chart.js
/// alone from 208 KB to about 70 KB). None where compressing failed: that file goes as it is.
static GZIPPED: LazyLock<Vec<Option<Vec<u8>>>> = LazyLock::new(|| bodies().map(gzip).collect());

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// The UI's files (pages for browsers, not API, so left out of the OpenAPI document) and
/// `/api/ui`, which is API.
pub fn router(kibana_dashboard_url: Option<&str>) -> OpenApiRouter<ApiState> {
    let security = HeaderValue::try_from(content_security_policy(kibana_dashboard_url))
        .unwrap_or(HeaderValue::from_static("default-src 'self'"));
    let mut router = OpenApiRouter::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route(
            "/ui/",
            get(move |headers: HeaderMap| async move { shell(&headers, security) }),
        )
        .route("/ui/assets/{*file}", get(asset))
        .routes(routes!(pages_for_caller))
        .routes(routes!(api_docs));
    for (index, page) in PAGES.iter().enumerate() {
        router = router.route(
            &page_route(page),
            get(move |headers: HeaderMap| async move {
                file(&headers, page, ASSETS.len() + index, "private, no-cache")
            }),
        );
    }
    router
}

fn page_route(page: &Asset) -> String {
    format!("/ui/pages/{}", page.name)
}

fn page_name(page: &Asset) -> &'static str {
    page.name.trim_end_matches(".js")
}

/// Scripts only from Sluice (and the page scripts it hands over as blobs), no inline code, and
/// frames only from the configured Kibana; nothing may frame Sluice itself.
fn content_security_policy(kibana_dashboard_url: Option<&str>) -> String {
    let frames = kibana_dashboard_url
        .and_then(sluice_config::web_origin)
        .unwrap_or("'none'");
    format!(
        "default-src 'self'; script-src 'self' blob:; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; frame-src {frames}; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'self'; object-src 'none'"
    )
}

fn shell(headers: &HeaderMap, security: HeaderValue) -> Response {
    let mut response = file(headers, &SHELL, SHELL_INDEX, "no-cache");
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, security);
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

async fn asset(headers: HeaderMap, Path(name): Path<String>) -> Response {
    match ASSETS.iter().position(|asset| asset.name == name) {
        Some(index) => file(&headers, &ASSETS[index], index, "no-cache"),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the web UI has no file {name:?}"),
        )
        .into_response(),
    }
}

/// The file (gzipped when the browser takes it), or 304 when the browser's copy is current.
/// `index` is the file's place in [`bodies`].
fn file(headers: &HeaderMap, asset: &Asset, index: usize, cache: &'static str) -> Response {
    let gzipped = GZIPPED[index].as_deref().filter(|_| accepts_gzip(headers));
    // A representation of its own, so its own tag.
    let etag = match gzipped {
        Some(_) => format!("\"{}-gzip\"", TAGS[index]),
        None => format!("\"{}\"", TAGS[index]),
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let common = [
        (header::CACHE_CONTROL, cache),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::VARY, "authorization, accept-encoding"),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)], common).into_response();
    }
    match gzipped {
        Some(body) => (
            [(header::ETAG, etag)],
            common,
            [
                (header::CONTENT_TYPE, asset.content_type()),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            body,
        )
            .into_response(),
        None => (
            [(header::ETAG, etag)],
            common,
            [(header::CONTENT_TYPE, asset.content_type())],
            asset.body,
        )
            .into_response(),
    }
}

/// The interactive API reference. Swagger UI sets styles inline, so this page (and only this
/// one, which shows no data of its own) allows them.
#[utoipa::path(
    get,
    path = "/api/docs",
    tag = "meta",
    summary = "The interactive API reference (Swagger UI over /api/openapi.json)",
    responses((status = 200, description = "An HTML page", content_type = "text/html"))
)]
async fn api_docs(headers: HeaderMap) -> Response {
    let mut response = file(&headers, &API_DOCS, API_DOCS_INDEX, "no-cache");
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'self'; object-src 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UiPages {
    user: PublicUser,
    /// The pages the caller may open, in menu order.
    pages: Vec<&'static str>,
    /// Present when the caller may open the Kibana page.
    kibana: Option<KibanaLink>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KibanaLink {
    /// Null when `kibana.dashboard_url` is not configured.
    dashboard_url: Option<String>,
}

/// The pages the caller may open, in menu order, and what they need to know of the deployment.
#[utoipa::path(
    get,
    path = "/api/ui",
    tag = "meta",
    summary = "The web UI pages the caller may open, and what they need of the deployment",
    responses((status = 200, body = UiPages), Unavailable)
)]
async fn pages_for_caller(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
) -> Result<Json<UiPages>, ApiError> {
    let user = crate::auth::current_user(&state, &claims).await?;
    let pages: Vec<&str> = PAGES
        .iter()
        .filter(|page| may_open(user.role, page))
        .map(page_name)
        .collect();
    let kibana = pages.contains(&"kibana").then(|| KibanaLink {
        dashboard_url: state.kibana_dashboard_url.clone(),
    });
    Ok(Json(UiPages {
        user: user.public(),
        pages,
        kibana,
    }))
}

fn may_open(role: Role, page: &Asset) -> bool {
    matches!(
        policy::access_for("GET", &page_route(page)),
        Some(Access::User(needed)) if role >= needed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page without a rule would be refused to everyone; a rule without a page is dead.
    #[test]
    fn every_page_has_a_rule_and_every_page_rule_a_page() {
        for page in PAGES {
            assert!(
                matches!(
                    policy::access_for("GET", &page_route(page)),
                    Some(Access::User(_))
                ),
                "{} has no user rule in the policy",
                page.name
            );
        }
        for (_, route, _) in policy::ROUTES {
            if let Some(name) = route.strip_prefix("/ui/pages/") {
                assert!(
                    PAGES.iter().any(|page| page.name == name),
                    "the policy names {route}, which is not a page"
                );
            }
        }
    }

    #[test]
    fn roles_open_the_pages_the_issue_gives_them() {
        let names = |role| -> Vec<&str> {
            PAGES
                .iter()
                .filter(|page| may_open(role, page))
                .map(page_name)
                .collect()
        };
        assert_eq!(names(Role::Viewer), ["dashboard", "profile"]);
        assert_eq!(
            names(Role::Analyst),
            [
                "dashboard",
                "search",
                "upload",
                "fraud",
                "performance",
                "kibana",
                "profile"
            ]
        );
        assert!(names(Role::Moderator).contains(&"users"));
        assert!(!names(Role::Moderator).contains(&"dead-letters"));
        assert_eq!(names(Role::Admin).len(), PAGES.len());
    }

    #[test]
    fn gzip_is_sent_only_to_browsers_that_take_it() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            accepts_gzip(&headers)
        };
        assert!(with("gzip, deflate, br, zstd"));
        assert!(with("br;q=1.0, GZIP;q=0.5"));
        assert!(!with("gzip;q=0, identity"));
        assert!(!with("br"));
        assert!(!accepts_gzip(&HeaderMap::new()));
        let chart = ASSETS
            .iter()
            .position(|asset| asset.name == "vendor/chart.umd.min.js")
            .expect("Chart.js is served");
        let gzipped = GZIPPED[chart].as_deref().expect("compressed");
        assert!(
            gzipped.len() * 2 < ASSETS[chart].body.len(),
            "{}",
            gzipped.len()
        );
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gzipped), &mut plain)
            .expect("gunzip");
        assert_eq!(plain, ASSETS[chart].body);
    }

    #[test]
    fn frames_come_only_from_the_configured_kibana() {
        let none = content_security_policy(None);
        assert!(none.contains("frame-src 'none'"), "{none}");
        let kibana = content_security_policy(Some("https://kibana.example:5601/app/dashboards#/x"));
        assert!(
            kibana.contains("frame-src https://kibana.example:5601;"),
            "{kibana}"
        );
        assert!(HeaderValue::try_from(kibana).is_ok());
    }
}
