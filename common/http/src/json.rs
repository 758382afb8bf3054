//! `JsonBody<T>`: axum's `Json` extractor with its refusals turned into the JSON error body,
//! naming the field and the problem (`missing field `password``), instead of plain text.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::ApiError;

pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the body as JSON with Content-Type: application/json",
                ),
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
