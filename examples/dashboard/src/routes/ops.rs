//! Running the dashboard: health, config, metrics, the event stream, the
//! audit log.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiResult;
use crate::error::ApiError;
use crate::history::HISTORY_LEN;
use crate::state::AppState;

/// `GET /health`: `status` is `degraded` while the store refuses writes
/// (since the last write failed, until one succeeds), `store` says why;
/// `sweeps` tells whether polling goes on (a small answer, unlike
/// `/metrics` at fleet size).
pub(super) async fn health(State(st): State<AppState>) -> Json<Value> {
    let c = st.cluster();
    let writes = st.store().write_health();
    let store = match &writes.error {
        None => json!({"ok": true}),
        Some(error) => json!({"ok": false, "error": error}),
    };
    let mut health = json!({
        "status": if writes.ok() { "ok" } else { "degraded" },
        "version": crate::VERSION,
        "servers_count": c.len(),
        "poll_interval": c.settings().interval.as_secs_f64(),
        "store": store,
        "alerts": st.inner.alerts.health(),
        "sweeps": st.inner.metrics.sweeps(),
    });
    if let Some(instances) = &st.inner.instances {
        health["instance"] = instances.view_json();
    }
    Json(health)
}

/// `GET /api/cluster`: the instances sharing the fleet and this one's
/// leases; 404 when it runs alone.
pub(super) async fn cluster(State(st): State<AppState>) -> ApiResult {
    match &st.inner.instances {
        Some(instances) => Ok(Json(instances.view_json())),
        None => Err(ApiError::not_found(
            "this dashboard runs alone (start it with --instance-id and a PostgreSQL store to share the fleet)",
        )),
    }
}

pub(super) async fn config(State(st): State<AppState>) -> Json<Value> {
    let c = st.cluster();
    Json(json!({
        "version": crate::VERSION,
        "auth_required": st.inner.config.api_key.is_some(),
        "reload_available": st.inner.config.servers_path.is_some(),
        "poll_interval": c.settings().interval.as_secs_f64(),
        "history_len": HISTORY_LEN,
        "servers_count": c.len(),
    }))
}

pub(super) async fn metrics(State(st): State<AppState>) -> Response {
    let c = st.cluster();
    let mut fleet = c.snapshot();
    // Sharing the fleet: each instance exports the servers it owns, so a
    // Prometheus scraping them all sees each server once.
    if let Some(instances) = &st.inner.instances {
        fleet.servers.retain(|s| instances.owns(&s.config.id));
        fleet.drifts.retain(|d| instances.owns(&d.server));
    }
    let mut text =
        st.inner.metrics.render(&fleet, &c.reconciler_status(), st.inner.hub.clients(), &st.store().write_health());
    text.push_str(&st.inner.alerts.metrics());
    if let Some(instances) = &st.inner.instances {
        text.push_str(&instances.metrics());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

#[derive(Deserialize)]
pub(super) struct EventsQuery {
    last_event_id: Option<String>,
}

/// `GET /api/events`: every event as SSE (`event:` its kind, `data:` its
/// wire view), resumable with `Last-Event-ID`.
pub(super) async fn events(State(st): State<AppState>, Query(q): Query<EventsQuery>, req: Request) -> Response {
    let header_id = req.headers().get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let last = header_id.or(q.last_event_id).and_then(|s| s.trim().parse::<u64>().ok());
    let attach = st.inner.hub.attach(last);
    let body = Body::from_stream(crate::events::stream(attach));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn audit(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let limit = match q.get("limit") {
        None => 100,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::unprocessable("limit must be an integer within 1..=1000"))?,
    };
    let path = st.audit().path().map(|p| p.display().to_string());
    let rows = st
        .store()
        .recent_audit(limit)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let entries: Vec<Value> = rows.iter().filter_map(|r| serde_json::from_str(r).ok()).collect();
    Ok(Json(json!({"path": path, "store": st.store().shown(), "entries": entries})))
}
