//! The OpenAPI document of all of Sluice, put together here because only the binary knows every
//! role. Each role's routes describe themselves, from the handlers' own types (utoipa): paths,
//! parameters, bodies, answers and the errors the handlers return. What the layers in front of
//! every route answer comes from the one access policy (`sluice_auth::policy`): which
//! credentials a route takes, its 401 and 403, and `x-sluice-access`. So neither part can drift
//! from what the server does.

use sluice_auth::policy::{self, Access};
use sluice_http::responses::{Forbidden, Unauthorized};
use utoipa::IntoResponses;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder};

/// Every route of every role, with the access the policy gives it.
pub fn document() -> OpenApi {
    let mut document = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Sluice")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Streaming log pipeline and analytics for e-commerce. Producers send events \
                     (`/api/logs/ingest`, `/api/logs/upload`, the Elasticsearch `_bulk` API); \
                     analysts search and analyse them. Errors are `{\"error\": {\"code\", \
                     \"message\", \"field\"?}}`. Log in at `/api/auth/login` and send \
                     `Authorization: Bearer <access_token>`; producers may send \
                     `Authorization: ApiKey <key>` instead.",
                ))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    BEARER,
                    SecurityScheme::Http(
                        HttpBuilder::new()
                            .scheme(HttpAuthScheme::Bearer)
                            .bearer_format("JWT")
                            .description(Some("An access token from `POST /api/auth/login`"))
                            .build(),
                    ),
                )
                .security_scheme(
                    API_KEY,
                    SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                        "Authorization",
                        "`ApiKey <key>` (or `ApiKey base64(id:key)`, as Elasticsearch clients \
                         send it): a producer key from `POST /api/auth/api-keys`, ingest only",
                    ))),
                )
                .build(),
        ))
        .build();
    document.merge(sluice_api::openapi());
    document.merge(sluice_ingest::openapi());
    document.merge(crate::ops::openapi());
    for (path, item) in document.paths.paths.iter_mut() {
        let operations = [
            ("GET", &mut item.get),
            ("PUT", &mut item.put),
            ("POST", &mut item.post),
            ("DELETE", &mut item.delete),
            ("HEAD", &mut item.head),
            ("PATCH", &mut item.patch),
            ("OPTIONS", &mut item.options),
            ("TRACE", &mut item.trace),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                guard(operation, method, path);
            }
        }
    }
    document
}

/// The document as `/api/openapi.json` serves it.
pub fn json() -> anyhow::Result<String> {
    Ok(document().to_pretty_json()?)
}

const BEARER: &str = "bearer";
const API_KEY: &str = "apiKey";

/// What the guard in front of the route adds to its operation. A route without a rule is
/// refused to everyone; its operation says so (`x-sluice-access: none`), and the test below
/// fails.
fn guard(operation: &mut Operation, method: &str, path: &str) {
    // One operation may serve several methods (`POST` and `PUT` of `_bulk`); ids must be unique.
    operation.operation_id = Some(operation_id(method, path));
    let access = policy::access_for(method, path);
    let (name, security) = match access {
        None => ("none", Vec::new()),
        Some(Access::Public) => ("public", Vec::new()),
        Some(Access::User(role)) => (
            role.as_str(),
            vec![SecurityRequirement::new(BEARER, Vec::<String>::new())],
        ),
        Some(Access::Ingest) => (
            "ingest",
            vec![
                SecurityRequirement::new(BEARER, Vec::<String>::new()),
                SecurityRequirement::new(API_KEY, Vec::<String>::new()),
            ],
        ),
    };
    operation.extensions = Some(
        ExtensionsBuilder::new()
            .add("x-sluice-access", name)
            .build(),
    );
    operation.security = Some(security);
    if matches!(access, Some(Access::User(_) | Access::Ingest)) {
        for (status, response) in Unauthorized::responses()
            .into_iter()
            .chain(Forbidden::responses())
        {
            operation
                .responses
                .responses
                .entry(status)
                .or_insert(response);
        }
    }
}

/// `get_api_logs_search`, `post_index_bulk`: the method and the path's words.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<String> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect();
    if words.is_empty() {
        method.to_ascii_lowercase()
    } else {
        format!("{}_{}", method.to_ascii_lowercase(), words.join("_"))
    }
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
            serde_json::from_str(&super::json().expect("serializes")).expect("is JSON");
        assert_eq!(document["openapi"], "3.1.0");
        let mut described = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for (path, operations) in document["paths"].as_object().expect("paths") {
            for (method, operation) in operations.as_object().expect("operations") {
                let access = operation["x-sluice-access"]
                    .as_str()
                    .expect("access")
                    .to_owned();
                assert!(operation["summary"].is_string(), "{method} {path}");
                assert!(operation["responses"].is_object(), "{method} {path}");
                let id = operation["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_owned()), "{id} is not unique");
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
        // The document and its page are public, so they are in the policy too.
        for page in ["/api/openapi.json", "/api/docs"] {
            assert!(policy.contains(&("GET".to_owned(), page.to_owned(), "public".to_owned())));
        }
    }

    /// Routes behind the guard say what it answers; public ones take no credentials.
    #[test]
    fn guarded_routes_document_the_guards_answers() {
        let document: serde_json::Value =
            serde_json::from_str(&super::json().expect("serializes")).expect("is JSON");
        let search = &document["paths"]["/api/logs/search"]["post"];
        assert!(search["responses"]["401"].is_object());
        assert!(search["responses"]["403"].is_object());
        assert_eq!(search["security"], serde_json::json!([{"bearer": []}]));
        let bulk = &document["paths"]["/_bulk"]["put"];
        assert_eq!(
            bulk["security"],
            serde_json::json!([{"bearer": []}, {"apiKey": []}])
        );
        let health = &document["paths"]["/health"]["get"];
        assert_eq!(health["security"], serde_json::json!([]));
        assert!(health["responses"]["401"].is_null());
    }
}
