//! The fleet and its servers: lists, one server, history, refresh,
//! maintenance, reload.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ipvtl_client::wire::{ActionProgressView, ReloadView, ServerView, SnapshotView, Wall};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{audit_now, json, json_body, path, ApiResult};
use crate::audit::AuditEvent;
use crate::error::ApiError;
use crate::guard::Who;
use crate::history::HISTORY_LEN;
use crate::legacy::{actions_by_channel, LegacyServer, LegacyState};
use crate::state::AppState;
use crate::timefmt::iso_from_ms;

/// `GET /api/servers`: the original tool's list, served from the cached
/// body. The event pump rebuilds it after polls; after a change made through
/// the API ([`AppState::invalidate`]) the first request rebuilds it if the
/// pump has not yet, so a client always reads what it just did.
pub(super) async fn list(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let mut cached = st.inner.cache.get();
    if st.inner.cache.is_stale(&cached) {
        let st = st.clone();
        cached = smol::unblock(move || st.servers_body()).await;
    }
    let etag = format!("\"{}\"", cached.generation);
    let mut resp = if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], Body::from(cached.bytes.clone())).into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// `GET /api/fleet`: the whole fleet in the wire vocabulary.
pub(super) async fn fleet(State(st): State<AppState>) -> ApiResult {
    let c = st.cluster();
    json(&SnapshotView::new(&c.snapshot(), Wall(c.clock())))
}

fn one_server(st: &AppState, id: &str, state_only: bool) -> ApiResult {
    let c = st.cluster();
    let snap = c.server(id).map_err(|e| ApiError::from_client(&e))?;
    let view = ServerView::new(&snap, c.now(), Wall(c.clock()));
    let actions = actions_by_channel(c.actions().iter().map(ActionProgressView::from));
    if state_only {
        json(&LegacyState::new(&view, &actions))
    } else {
        json(&LegacyServer::new(&view, &actions))
    }
}

pub(super) async fn one(State(st): State<AppState>, p: Result<Path<String>, PathRejection>) -> ApiResult {
    one_server(&st, &path(p)?, false)
}

pub(super) async fn status(State(st): State<AppState>, p: Result<Path<String>, PathRejection>) -> ApiResult {
    one_server(&st, &path(p)?, true)
}

#[derive(Serialize)]
struct SampleView {
    /// Unix milliseconds (kept for the page's charts).
    t: u64,
    /// ISO-8601 UTC.
    time: String,
    cpu_avg: Option<f64>,
    running_channels: usize,
    status: &'static str,
}

pub(super) async fn history(State(st): State<AppState>, p: Result<Path<String>, PathRejection>) -> ApiResult {
    let id = path(p)?;
    st.cluster().server(&id).map_err(|e| ApiError::from_client(&e))?;
    let samples: Vec<SampleView> = st
        .inner
        .history
        .series(&id)
        .into_iter()
        .map(|s| SampleView {
            t: s.t,
            time: iso_from_ms(s.t),
            cpu_avg: s.cpu_avg,
            running_channels: s.running_channels,
            status: s.status,
        })
        .collect();
    Ok(Json(json!({"server_id": id, "capacity": HISTORY_LEN, "samples": samples})))
}

#[derive(Deserialize)]
pub(super) struct PointsQuery {
    points: Option<String>,
}

pub(super) async fn history_all(State(st): State<AppState>, Query(q): Query<PointsQuery>) -> ApiResult {
    let points =
        match q.points.as_deref() {
            None => 30,
            Some(s) => s.parse::<usize>().ok().filter(|n| (1..=HISTORY_LEN).contains(n)).ok_or_else(|| {
                ApiError::unprocessable(format!("points must be an integer within 1..={HISTORY_LEN}"))
            })?,
        };
    Ok(Json(json!({"points": points, "servers": st.inner.history.cpu_all(points)})))
}

pub(super) async fn refresh(State(st): State<AppState>, p: Result<Path<String>, PathRejection>) -> ApiResult {
    let id = path(p)?;
    st.cluster().refresh(&id).await.map_err(|e| ApiError::from_client(&e))?;
    st.invalidate();
    one_server(&st, &id, false)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MaintenanceRequest {
    enabled: bool,
}

pub(super) async fn maintenance(
    State(st): State<AppState>,
    who: Option<Extension<Who>>,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let id = path(p)?;
    let req: MaintenanceRequest = json_body(&headers, body).await?;
    st.cluster().server(&id).map_err(|e| ApiError::from_client(&e))?;
    let who = who.map(|Extension(w)| w);
    audit_now(&st, &AuditEvent::Maintenance { server_id: id.clone(), enabled: req.enabled }.by(who)).await?;
    // Kept first, so a flag that took effect is one that survives a restart.
    let at = crate::timefmt::unix_s(std::time::SystemTime::now());
    st.store()
        .set_maintenance(&id, req.enabled, at)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("nothing was changed: {e}")))?;
    st.cluster().set_maintenance(&id, req.enabled).map_err(|e| ApiError::from_client(&e))?;
    st.invalidate();
    Ok(Json(json!({"server_id": id, "maintenance": req.enabled})))
}

/// The answer to a reload: the original `{message, count}` and what changed.
#[derive(Serialize)]
struct ReloadAnswer {
    message: String,
    count: usize,
    #[serde(flatten)]
    changes: ReloadView,
}

pub(super) async fn reload(State(st): State<AppState>, who: Option<Extension<Who>>) -> ApiResult {
    let Some(path) = st.inner.config.servers_path.clone() else {
        return Err(ApiError::bad_request("nothing to reload: this dashboard was not started from a servers file"));
    };
    let who = who.map(|Extension(w)| w);
    match st.cluster().reload_file(&path) {
        Ok(summary) => {
            st.invalidate();
            let count = st.cluster().len();
            st.inner
                .audit_record(&[AuditEvent::Reload { outcome: "ok", count: Some(count), detail: None }.by(who)])
                .await;
            json(&ReloadAnswer {
                message: format!("Reloaded {count} servers from {}", path.display()),
                count,
                changes: ReloadView::from(&summary),
            })
        }
        Err(e) => {
            let detail = Some(e.to_string());
            st.inner.audit_record(&[AuditEvent::Reload { outcome: "refused", count: None, detail }.by(who)]).await;
            Err(ApiError::bad_request(e.to_string()).with(json!({"error_kind": e.kind()})))
        }
    }
}
