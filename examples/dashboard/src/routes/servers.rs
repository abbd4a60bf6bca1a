//! The fleet and its servers: lists, one server, history, refresh,
//! maintenance, reload.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ipvtl_client::wire::{ReloadView, ServerView, SnapshotView, Wall};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{audit_now, json, json_body, path, ApiResult};
use crate::audit::AuditEvent;
use crate::cache::{CachedBody, Variant};
use crate::error::ApiError;
use crate::guard::Who;
use crate::history::HISTORY_LEN;
use crate::legacy::{ChannelContext, LegacyServer, LegacyState};
use crate::list::{compress, negotiate, Encoding, ListQuery, FILTERED_COMPRESS_MAX};
use crate::state::AppState;
use crate::store::HistoryStep;
use crate::timefmt::iso_from_ms;

/// `GET /api/servers`: the original tool's list, served from the cached
/// body. The event pump rebuilds it after polls; after a change made through
/// the API ([`AppState::invalidate`]) the first request rebuilds it if the
/// pump has not yet, so a client always reads what it just did.
///
/// Compressed (br or gzip) when `Accept-Encoding` asks, from variants made
/// once per body. With `status`, `tag`, `q`, `limit`, `cursor` or `fields`
/// in the query, the answer is `{"servers": [...], "next_cursor", "total"}`
/// made of the body's per-server fragments ([`crate::list`]).
pub(super) async fn list(State(st): State<AppState>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let query = match ListQuery::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    st.inner.cache.note_read();
    let mut cached = st.inner.cache.get();
    if st.inner.cache.is_stale(&cached) {
        let st = st.clone();
        cached = smol::unblock(move || st.servers_body()).await;
    }
    let encoding = negotiate(headers.get(header::ACCEPT_ENCODING));
    let mut resp = match query {
        None => whole(&st, cached, encoding, &headers).await,
        Some(query) => {
            let etag = query.etag(cached.generation, encoding);
            if none_match(&headers, &etag) {
                not_modified(&etag)
            } else {
                // Small pages are compressed here, per request; large
                // answers go out as they are (see `FILTERED_COMPRESS_MAX`).
                let (bytes, encoding) = smol::unblock(move || {
                    let page = query.answer(&cached.bytes, &cached.index);
                    if encoding != Encoding::Identity && page.len() <= FILTERED_COMPRESS_MAX {
                        (compress(encoding, &page), encoding)
                    } else {
                        (Bytes::from(page), Encoding::Identity)
                    }
                })
                .await;
                json_bytes(bytes, encoding, &etag)
            }
        }
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    resp
}

/// The whole list in `encoding`, or 304. A compressed variant is made once
/// per body by the first request that asks (off the executor); while it is
/// made, the others are served the previous one if it is not stale
/// ([`crate::cache::ServersCache::variant`]).
async fn whole(st: &AppState, cached: Arc<CachedBody>, encoding: Encoding, headers: &HeaderMap) -> Response {
    let etag_of = |generation: u64| format!("\"{generation}{}\"", encoding.etag_suffix());
    let variant = match encoding {
        Encoding::Identity => Variant::Ready(cached.generation, cached.bytes.clone()),
        _ => {
            let found = st.inner.cache.variant(&cached, encoding);
            if found.first {
                let (st, cached) = (st.clone(), cached.clone());
                smol::unblock(move || st.inner.cache.encoded(&cached, encoding)).detach();
            }
            found.variant
        }
    };
    let (etag, bytes) = match variant {
        Variant::Ready(generation, bytes) | Variant::Meanwhile(generation, bytes) => (etag_of(generation), bytes),
        Variant::Wait => {
            let etag = etag_of(cached.generation);
            if none_match(headers, &etag) {
                return not_modified(&etag);
            }
            let st = st.clone();
            // Waits for the one compression of this body (under way).
            (etag, smol::unblock(move || st.inner.cache.encoded(&cached, encoding)).await)
        }
    };
    if none_match(headers, &etag) {
        return not_modified(&etag);
    }
    json_bytes(bytes, encoding, &etag)
}

fn not_modified(etag: &str) -> Response {
    let mut resp = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(v) = HeaderValue::from_str(etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

fn json_bytes(bytes: Bytes, encoding: Encoding, etag: &str) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, "application/json")], Body::from(bytes)).into_response();
    let h = resp.headers_mut();
    if let Some(v) = encoding.header() {
        h.insert(header::CONTENT_ENCODING, v);
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

/// True when `If-None-Match` names `etag` (or is `*`); weak tags compare
/// as strong ones (RFC 9110 §13.1.2).
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|t| {
        let t = t.trim();
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
    })
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
    let context = ChannelContext::of(c);
    if state_only {
        json(&LegacyState::new(&view, &context))
    } else {
        json(&LegacyServer::new(&view, &context))
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

/// `GET /api/servers/{id}/history`: without a query, the ring of recent
/// polls the page draws (`samples`); with `since` (Unix seconds, default an
/// hour ago) and/or `step` (`10s` or `1m`, or 10 or 60 seconds; default
/// 10 s), the store's downsampled points from `since` on.
pub(super) async fn history(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult {
    let id = path(p)?;
    st.cluster().server(&id).map_err(|e| ApiError::from_client(&e))?;
    let Query(q) = q.map_err(|e| ApiError::unprocessable(format!("history query: {}", e.body_text())))?;
    if q.since.is_none() && q.step.is_none() {
        return Ok(ring(&st, id));
    }
    let step = match q.step.as_deref() {
        None => HistoryStep::TenSeconds,
        Some(s) => HistoryStep::parse(s).ok_or_else(|| {
            ApiError::unprocessable(format!("step: {s:?} is not a history step: use 10s or 1m (or 10 or 60 seconds)"))
        })?,
    };
    let since = match q.since.as_deref() {
        None => crate::timefmt::unix_now_s() - 3600,
        Some(s) => s.trim().parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
            ApiError::unprocessable(format!("since: {s:?} must be a time in Unix seconds (a whole number, 0 or more)"))
        })?,
    };
    let kept = st.inner.config.history.of(step);
    if kept.is_zero() {
        let flag = match step {
            HistoryStep::TenSeconds => "--history-keep-10s",
            HistoryStep::OneMinute => "--history-keep-1m",
        };
        return Err(ApiError::unprocessable(format!(
            "step: {} points are not kept by this dashboard ({flag} is 0)",
            step.as_str()
        )));
    }
    // The polls held for this server, open buckets too: the answer has
    // every poll reported so far.
    if let Err(e) = st.inner.history.write_server(st.store(), &id).await {
        eprintln!("ipvtl-dashboard: {e}");
    }
    let points = st
        .store()
        .history(&id, step, since)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(json!({"server_id": id, "step": step.as_str(), "since": since, "points": points})))
}

/// The ring of recent polls, as the page reads it.
fn ring(st: &AppState, id: String) -> Json<serde_json::Value> {
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
    Json(json!({"server_id": id, "capacity": HISTORY_LEN, "samples": samples}))
}

/// The stored history's query (`?since=&step=`), checked by the handler.
#[derive(Deserialize)]
pub(super) struct HistoryQuery {
    since: Option<String>,
    step: Option<String>,
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
    match st.reload_servers(&path) {
        Ok(summary) => {
            // Sharing the fleet: the other instances reload their files too.
            if let Some(instances) = &st.inner.instances {
                if let Err(e) = st.store().note_reload(&instances.config.id).await {
                    eprintln!("ipvtl-dashboard: the other instances will not reload: {e}");
                }
            }
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
