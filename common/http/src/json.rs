//! `JsonBody<T>`: axum's `Json` extractor with its refusals turned into the JSON error body,
//! naming the field and the problem (`missing field `password``), instead of plain text. The
//! body must be a JSON object: serde would otherwise read a struct from an array of its fields
//! in order (`[null, null]`), which no client means.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::ApiError;

pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::bad_request("unreadable_body", rejection.body_text()))?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::bad_request(
                "invalid_request",
                "the request body must be a JSON object",
            ));
        }
        match Json::<T>::from_bytes(&bytes) {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(e) => ApiError::bad_request(
                    "invalid_request",
                    format!("the request body does not fit: {}", e.body_text()),
                ),
                JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
                    "malformed_json",
                    format!("the request body is not valid JSON: {}", e.body_text()),
                ),
                other => ApiError::bad_request("unreadable_body", other.body_text()),
            }),
        }
    }
}

/// `application/json` or a `+json` type, as axum's `Json` accepts them.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}
