//! Routes, by resource: [`servers`] (the fleet, one server, history,
//! refresh, maintenance, reload), [`actions`] (channel actions and those
//! under way), [`batches`], [`reconcile`] (desired state, healing, drift,
//! the reconciler's switch), and [`ops`] (health, config, metrics, events,
//! audit). The page itself is [`crate::page`]. Shared here: the router,
//! the security headers, and reading paths and bodies.

mod actions;
mod alerts;
mod batches;
mod ops;
mod reconcile;
mod servers;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::audit::AuditEntry;
use crate::error::ApiError;
use crate::guard::guard;
use crate::page;
use crate::state::AppState;

/// Largest request body accepted.
pub(crate) const MAX_BODY: usize = 64 * 1024;

type ApiResult<T = Json<Value>> = Result<T, ApiError>;

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/index.html", get(page::index))
        .route("/app.css", get(page::app_css))
        .route("/app.js", get(page::app_js))
        .route("/i18n.js", get(page::i18n_js))
        .route("/alerts.js", get(page::alerts_js))
        .route("/overview.js", get(page::overview_js))
        .route("/health", get(ops::health))
        .route("/api/cluster", get(ops::cluster))
        .route("/metrics", get(ops::metrics))
        .route("/api/config", get(ops::config))
        .route("/api/events", get(ops::events))
        .route("/api/audit", get(ops::audit))
        .route("/api/fleet", get(servers::fleet))
        .route("/api/overview", get(crate::overview::get))
        .route("/api/overview/history", get(crate::overview::history))
        .route("/api/overview/alerts", get(crate::overview::alerts))
        .route("/api/servers", get(servers::list))
        // POST only: a GET is 405, never a server called "reload".
        .route("/api/servers/reload", post(servers::reload))
        .route("/api/servers/{id}", get(servers::one))
        .route("/api/servers/{id}/status", get(servers::status))
        .route("/api/servers/{id}/history", get(servers::history))
        .route("/api/servers/{id}/refresh", post(servers::refresh))
        .route("/api/servers/{id}/maintenance", post(servers::maintenance))
        .route("/api/history", get(servers::history_all))
        .route("/api/servers/{id}/channels/{channel}/{action}", post(actions::channel_action))
        .route("/api/reconciler", get(reconcile::reconciler).put(reconcile::configure))
        .route("/api/reconciler/pause", post(reconcile::pause))
        .route("/api/reconciler/resume", post(reconcile::resume))
        .route("/api/drift", get(reconcile::drift))
        .route("/api/desired", get(reconcile::desired_list))
        .route("/api/healing", get(reconcile::healing_list))
        .route(
            "/api/servers/{id}/channels/{channel}/desired",
            put(reconcile::put_desired).delete(reconcile::delete_desired),
        )
        .route("/api/servers/{id}/desired", put(reconcile::put_desired).delete(reconcile::delete_desired))
        .route("/api/tags/{tag}/desired", put(reconcile::put_desired).delete(reconcile::delete_desired))
        .route(
            "/api/servers/{id}/channels/{channel}/healing",
            put(reconcile::put_healing).delete(reconcile::delete_healing),
        )
        .route("/api/servers/{id}/healing", put(reconcile::put_healing).delete(reconcile::delete_healing))
        .route("/api/tags/{tag}/healing", put(reconcile::put_healing).delete(reconcile::delete_healing))
        .route("/api/servers/{id}/channels/{channel}/degraded", delete(reconcile::clear_degraded))
        .route("/api/actions", get(actions::list))
        .route("/api/batch", post(batches::submit))
        .route("/api/batches", get(batches::list))
        .route("/api/batches/{id}", get(batches::one))
        .route("/api/alerts", get(alerts::list))
        .route("/api/alerts/test", post(alerts::test))
        .route("/api/alerts/reload", post(alerts::reload))
        .route("/api/silences", get(alerts::silences).post(alerts::add_silence))
        .route("/api/silences/{id}", delete(alerts::delete_silence))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

async fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// A JSON answer of any serializable view.
fn json<T: Serialize>(v: &T) -> ApiResult {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot serialize the answer: {e}")))
}

/// A path parameter the router could not decode (bad percent-encoding).
fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(t)| t).map_err(|e| ApiError::not_found(format!("bad path: {}", e.body_text())))
}

/// A channel number from the path: a positive decimal integer, else 422.
pub(crate) fn parse_channel(s: &str) -> Result<u32, ApiError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::unprocessable(format!(
            "channel must be a positive integer (channels are numbered from 1), got {s:?}"
        )));
    }
    match s.parse::<u32>() {
        Ok(0) => Err(ApiError::unprocessable("channel must be a positive integer: channels are numbered from 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(ApiError::unprocessable(format!("channel number {s} is out of range"))),
    }
}

/// Reads a JSON body: capped, `application/json`, parsed strictly.
async fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<T, ApiError> {
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    // Read by hand so a body over the cap (413) and a body cut short (400)
    // get different answers: `to_bytes` reports both as one error.
    let mut bytes = Vec::new();
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("the request body was cut short: {e}")))?;
        if bytes.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {MAX_BODY} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    if !ctype.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    T::deserialize(value).map_err(|e| ApiError::unprocessable(format!("invalid request: {e}")))
}

/// Commits an audit entry to the store (and syncs its mirror line) before
/// anything is done; when it cannot be recorded, nothing is done (503).
async fn audit_now(state: &AppState, entry: &AuditEntry) -> Result<(), ApiError> {
    state.inner.audit_now(entry).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the audit log cannot be written, nothing was done: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::parse_channel;

    #[test]
    fn channel_numbers_are_positive_decimal_integers() {
        assert_eq!(parse_channel("1").unwrap(), 1);
        assert_eq!(parse_channel("007").unwrap(), 7);
        for bad in ["0", "-1", "abc", "", "1.5", "+1", " 1", "1e3", "99999999999"] {
            assert_eq!(parse_channel(bad).unwrap_err().status.as_u16(), 422, "{bad:?}");
        }
    }
}
