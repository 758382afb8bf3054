//! The error answers handlers name in their OpenAPI `responses(...)`, one type per status, so
//! every operation describes its errors with the same body and words. The body is
//! [`ErrorBody`], which is what [`ApiError`](super::ApiError) serializes.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

/// Every error answer: `{"error": {"code", "message", …}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorObject {
    /// Stable and machine-readable (`invalid_request`, `missing_credentials`, `queue_full` …).
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Further facts, by error (the path and free bytes of a full disk, for example).
    #[serde(flatten)]
    pub details: BTreeMap<String, serde_json::Value>,
}

macro_rules! error_response {
    ($(#[doc = $doc:literal])* $name:ident, $status:literal, $description:literal) => {
        $(#[doc = $doc])*
        #[derive(IntoResponses)]
        #[response(status = $status, description = $description)]
        pub struct $name(#[allow(dead_code)] ErrorBody);
    };
}

error_response!(
    BadRequest,
    400,
    "The request does not fit: the error names the parameter or field and what is accepted"
);
error_response!(
    Unauthorized,
    401,
    "No credentials, or ones that are wrong, expired or revoked (with a WWW-Authenticate challenge)"
);
error_response!(
    Forbidden,
    403,
    "The caller's role is too small for this, or an API key was used off the ingest routes"
);
error_response!(NotFound, 404, "No such resource");
error_response!(
    Conflict,
    409,
    "The change clashes with what is stored (a taken username or email, the last admin)"
);
error_response!(
    PayloadTooLarge,
    413,
    "The body (after decompression) is over the configured limit"
);
error_response!(
    UnsupportedMediaType,
    415,
    "A Content-Type or Content-Encoding this route does not read"
);
error_response!(
    TooManyRequests,
    429,
    "Too many attempts; Retry-After says when to try again"
);
error_response!(
    Unavailable,
    503,
    "A backend (store, queue, meta store) is unavailable or the queue is full; Retry-After says when to try again"
);
error_response!(
    InsufficientStorage,
    507,
    "The disk is below its free-space floor; nothing was accepted"
);
