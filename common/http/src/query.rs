//! `QueryParams<T>`: axum's `Query` extractor with its refusal turned into the JSON error body,
//! naming the parameter (`unknown field `form``), instead of plain text.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;

pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryParams(value))
            .map_err(|rejection| {
                ApiError::bad_request(
                    "invalid_request",
                    format!("the query string does not fit: {}", rejection.body_text()),
                )
            })
    }
}
