//! Routes and handlers.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use ipvtl_client::{ActionKind, ClientError};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::batch::{targets_json, BatchRequest};
use crate::error::ApiError;
use crate::guard::{guard, Who};
use crate::history::HISTORY_LEN;
use crate::state::AppState;
use crate::timefmt::iso_from_ms;
use crate::view::{report_json, server_view, state_view, ViewContext};

/// Largest request body accepted.
pub(crate) const MAX_BODY: usize = 64 * 1024;

const PAGE: &str = include_str!("../static/index.html");

type ApiResult<T = Json<Value>> = Result<T, ApiError>;

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/index.html", get(page))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/config", get(config))
        .route("/api/servers", get(servers))
        .route("/api/servers/reload", post(reload).get(server_named_reload))
        .route("/api/servers/{id}", get(server))
        .route("/api/servers/{id}/status", get(server_status))
        .route("/api/servers/{id}/history", get(server_history))
        .route("/api/servers/{id}/refresh", post(refresh))
        .route("/api/servers/{id}/maintenance", post(maintenance))
        .route("/api/servers/{id}/channels/{channel}/{action}", post(channel_action))
        .route("/api/history", get(history_all))
        .route("/api/actions", get(actions))
        .route("/api/events", get(events))
        .route("/api/batch", post(batch))
        .route("/api/batches", get(batches))
        .route("/api/batches/{id}", get(batch_status))
        .route("/api/audit", get(audit))
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

async fn page() -> Response {
    let mut resp = Html(PAGE).into_response();
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; \
             img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
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
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {MAX_BODY} bytes"))
    })?;
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

fn who_json(who: &Option<Extension<Who>>) -> Value {
    who.as_ref().map_or(Value::Null, |Extension(w)| w.json())
}

fn audit_now(state: &AppState, entry: Value) -> Result<(), ApiError> {
    state.audit().append(entry, true).map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the audit log cannot be written, nothing was done: {e}"),
        )
    })
}

async fn health(State(st): State<AppState>) -> Json<Value> {
    let c = st.cluster();
    Json(json!({
        "status": "ok",
        "version": crate::VERSION,
        "servers_count": c.len(),
        "poll_interval": c.settings().interval.as_secs_f64(),
    }))
}

async fn config(State(st): State<AppState>) -> Json<Value> {
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

async fn metrics(State(st): State<AppState>) -> Response {
    let text = st.inner.metrics.render(&st.cluster().snapshot(), st.inner.hub.clients());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn servers(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let cached = st.inner.cache.get();
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

fn one_server(st: &AppState, id: &str, state_only: bool) -> ApiResult {
    let c = st.cluster();
    let snap = c.server(id).map_err(|e| ApiError::from_client(&e))?;
    let actions = c.actions();
    let cx = ViewContext::new(c.clock(), c.now(), &actions);
    let v = if state_only {
        serde_json::to_value(state_view(&snap, &cx))
    } else {
        serde_json::to_value(server_view(&snap, &cx))
    };
    Ok(Json(v.unwrap_or(Value::Null)))
}

async fn server(State(st): State<AppState>, p: Result<Path<String>, PathRejection>) -> ApiResult {
    one_server(&st, &path(p)?, false)
}

async fn server_named_reload(State(st): State<AppState>) -> ApiResult {
    one_server(&st, "reload", false)
}

async fn server_status(State(st): State<AppState>, p: Result<Path<String>, PathRejection>) -> ApiResult {
    one_server(&st, &path(p)?, true)
}

async fn server_history(State(st): State<AppState>, p: Result<Path<String>, PathRejection>) -> ApiResult {
    let id = path(p)?;
    st.cluster().server(&id).map_err(|e| ApiError::from_client(&e))?;
    let samples: Vec<Value> = st
        .inner
        .history
        .series(&id)
        .into_iter()
        .map(|s| {
            json!({"time": iso_from_ms(s.t), "t": s.t, "cpu_avg": s.cpu_avg,
                   "running_channels": s.running_channels, "status": s.status})
        })
        .collect();
    Ok(Json(json!({"server_id": id, "capacity": HISTORY_LEN, "samples": samples})))
}

#[derive(Deserialize)]
struct PointsQuery {
    points: Option<String>,
}

async fn history_all(State(st): State<AppState>, Query(q): Query<PointsQuery>) -> ApiResult {
    let points =
        match q.points.as_deref() {
            None => 30,
            Some(s) => s.parse::<usize>().ok().filter(|n| (1..=HISTORY_LEN).contains(n)).ok_or_else(|| {
                ApiError::unprocessable(format!("points must be an integer within 1..={HISTORY_LEN}"))
            })?,
        };
    Ok(Json(json!({"points": points, "servers": st.inner.history.cpu_all(points)})))
}

async fn refresh(State(st): State<AppState>, p: Result<Path<String>, PathRejection>) -> ApiResult {
    let id = path(p)?;
    st.cluster().refresh(&id).await.map_err(|e| ApiError::from_client(&e))?;
    one_server(&st, &id, false)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceRequest {
    enabled: bool,
}

async fn maintenance(
    State(st): State<AppState>,
    who: Option<Extension<Who>>,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let id = path(p)?;
    let req: MaintenanceRequest = json_body(&headers, body).await?;
    st.cluster().server(&id).map_err(|e| ApiError::from_client(&e))?;
    audit_now(&st, json!({"event": "maintenance", "who": who_json(&who), "server_id": id, "enabled": req.enabled}))?;
    st.cluster().set_maintenance(&id, req.enabled).map_err(|e| ApiError::from_client(&e))?;
    st.invalidate();
    Ok(Json(json!({"server_id": id, "maintenance": req.enabled})))
}

async fn channel_action(
    State(st): State<AppState>,
    who: Option<Extension<Who>>,
    p: Result<Path<(String, String, String)>, PathRejection>,
) -> ApiResult {
    let (id, channel, action) = path(p)?;
    let kind = ActionKind::parse(&action)
        .ok_or_else(|| ApiError::not_found(format!("unknown action {action:?}: use start, stop or restart")))?;
    let channel = parse_channel(&channel)?;
    let who = who_json(&who);
    let what = json!({"who": who, "server_id": id, "channel_id": channel, "action": kind.as_str()});
    // Write-ahead: the intent is on disk before anything can be sent.
    audit_now(&st, merge(json!({"event": "action_requested"}), &what))?;
    let pending = match st.cluster().submit(&id, channel, kind) {
        Ok(p) => p,
        Err(e) => {
            st.audit()
                .record(merge(json!({"event": "action_refused", "outcome": e.kind(), "detail": e.to_string()}), &what));
            return Err(ApiError::from_client(&e));
        }
    };
    // Await on a task of its own, so the outcome is audited even if the
    // client goes away before the action ends.
    let audit_state = st.clone();
    let result = smol::spawn(async move {
        let result = pending.await;
        let (outcome, report) = match &result {
            Ok(r) => ("ok", report_json(r)),
            Err(ClientError::ActionFailed(r)) => ("failed", report_json(r)),
            Err(e) => (e.kind(), json!({"detail": e.to_string()})),
        };
        audit_state
            .audit()
            .record(merge(json!({"event": "action_finished", "outcome": outcome, "report": report}), &what));
        result
    })
    .await;
    match result {
        Ok(report) => Ok(Json(report_json(&report))),
        Err(ClientError::ActionFailed(report)) => {
            let body = report_json(&report);
            Err(ApiError::new(StatusCode::BAD_GATEWAY, report.summary()).with(body))
        }
        Err(e) => Err(ApiError::from_client(&e)),
    }
}

fn merge(mut a: Value, b: &Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        for (k, v) in b {
            a.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    a
}

async fn reload(State(st): State<AppState>, who: Option<Extension<Who>>) -> ApiResult {
    let Some(path) = st.inner.config.servers_path.clone() else {
        return Err(ApiError::bad_request("nothing to reload: this dashboard was not started from a servers file"));
    };
    let who = who_json(&who);
    match st.cluster().reload_file(&path) {
        Ok(summary) => {
            st.invalidate();
            let count = st.cluster().len();
            let ids = |v: &[ipvtl_client::core::ServerId]| v.iter().map(|s| s.as_str().to_string()).collect::<Vec<_>>();
            let body = json!({
                "message": format!("Reloaded {count} servers from {}", path.display()),
                "count": count,
                "added": ids(&summary.added),
                "removed": ids(&summary.removed),
                "changed": ids(&summary.changed),
                "kept": summary.kept,
            });
            st.audit().record(json!({"event": "reload", "who": who, "outcome": "ok", "count": count}));
            Ok(Json(body))
        }
        Err(e) => {
            st.audit().record(json!({"event": "reload", "who": who, "outcome": "refused", "detail": e.to_string()}));
            Err(ApiError::bad_request(e.to_string()).with(json!({"error_kind": e.kind()})))
        }
    }
}

async fn actions(State(st): State<AppState>) -> Json<Value> {
    let list: Vec<Value> = st
        .cluster()
        .actions()
        .iter()
        .map(|a| {
            json!({"action_id": a.action.0, "server_id": a.server.as_str(), "channel_id": a.channel.get(),
                   "action": a.kind.as_str(), "phase": a.phase.as_str(), "batch_id": a.batch.map(|b| b.0)})
        })
        .collect();
    Json(Value::Array(list))
}

#[derive(Deserialize)]
struct EventsQuery {
    last_event_id: Option<String>,
}

async fn events(State(st): State<AppState>, Query(q): Query<EventsQuery>, req: Request) -> Response {
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

async fn batch(State(st): State<AppState>, who: Option<Extension<Who>>, headers: HeaderMap, body: Body) -> Response {
    match batch_inner(&st, who, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn batch_inner(
    st: &AppState,
    who: Option<Extension<Who>>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: BatchRequest = json_body(headers, body).await?;
    let spec = req.to_spec()?;
    let cluster = st.cluster();
    if let Some(targets) = &req.targets {
        if let Some(t) = targets.iter().find(|t| cluster.server(&t.server_id).is_err()) {
            return Err(ApiError::unprocessable(format!("no server with id {:?} in targets", t.server_id)));
        }
    }
    let plan = cluster.plan(&spec).map_err(|e| ApiError::from_client(&e))?;
    if req.dry_run {
        return Ok(Json(json!({"dry_run": true, "action": spec.kind.as_str(), "count": plan.len(),
                               "targets": targets_json(&plan)}))
        .into_response());
    }
    if plan.is_empty() {
        return Err(ApiError::unprocessable("no channel matches this batch"));
    }
    let who = who_json(&who);
    audit_now(
        st,
        json!({"event": "batch_requested", "who": who, "action": spec.kind.as_str(), "count": plan.len(),
                         "targets": targets_json(&plan)}),
    )?;
    let (id, done) = cluster.submit_batch(spec.clone()).map_err(|e| ApiError::from_client(&e))?;
    st.inner.batches.insert(id.0, spec.kind, plan.len(), who);
    // Progress and the report arrive as events; nobody needs this future.
    drop(done);
    let body = json!({"batch_id": id.0, "action": spec.kind.as_str(), "count": plan.len(),
                      "status_url": format!("/api/batches/{}", id.0), "targets": targets_json(&plan)});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn batches(State(st): State<AppState>) -> Json<Value> {
    Json(Value::Array(st.inner.batches.list()))
}

async fn batch_status(State(st): State<AppState>, p: Result<Path<String>, PathRejection>) -> ApiResult {
    let raw = path(p)?;
    let id = raw.parse::<u64>().map_err(|_| ApiError::not_found(format!("no batch {raw:?}")))?;
    st.inner.batches.get(id).map(Json).ok_or_else(|| ApiError::not_found(format!("no batch {id}")))
}

async fn audit(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let limit = match q.get("limit") {
        None => 100,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::unprocessable("limit must be an integer within 1..=1000"))?,
    };
    let path = st.audit().path().map(|p| p.display().to_string());
    Ok(Json(json!({"path": path, "entries": st.audit().recent(limit)})))
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
