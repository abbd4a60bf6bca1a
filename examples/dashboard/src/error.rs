//! API errors: a status code and a `{"detail": "..."}` body, as the original
//! tool answered.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ipvtl_client::ClientError;
use serde_json::{json, Value};

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// Extra fields merged into the body (e.g. the action report).
    pub extra: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError { status, detail: detail.into(), extra: None }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    pub fn with(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }

    /// The answer for a refused or failed cluster call.
    pub fn from_client(e: &ClientError) -> Self {
        let status = match e {
            ClientError::ServerNotFound(_) | ClientError::ChannelNotFound { .. } => StatusCode::NOT_FOUND,
            ClientError::Busy { .. } => StatusCode::CONFLICT,
            // 423 Locked: the server is in maintenance; nothing was sent.
            ClientError::Maintenance(_) => StatusCode::LOCKED,
            ClientError::ActionFailed(_) => StatusCode::BAD_GATEWAY,
            ClientError::Config { .. } | ClientError::Io { .. } => StatusCode::BAD_REQUEST,
            ClientError::Batch(_) | ClientError::Settings(_) | ClientError::Invalid(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ClientError::Closed => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string()).with(json!({"error_kind": e.kind()}))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"detail": self.detail});
        if let (Some(Value::Object(extra)), Value::Object(map)) = (self.extra, &mut body) {
            for (k, v) in extra {
                map.entry(k).or_insert(v);
            }
        }
        (self.status, axum::Json(body)).into_response()
    }
}
