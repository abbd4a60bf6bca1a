//! Desired state, healing and the reconciler: settings per channel, server
//! or tag, the drift list, the fleet-wide switch.
//!
//! A change is validated first (422, 404), then audited (write-ahead),
//! then stored, then applied; a store that refuses it changes nothing
//! (503). Changes are made one at a time, so the store and the cluster
//! never disagree on the last one.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use ipvtl_client::core::{Scope, Source};
use ipvtl_client::reconcile::{parse_desired, PolicyInput, ReconcilerInput, ScopeInput};
use ipvtl_client::wire::{
    DesiredSettingView, DriftView, HealView, HealingSettingView, ReconcilerView, ScopeView, Wall,
};
use serde::Deserialize;
use serde_json::json;

use super::{audit_now, json, json_body, parse_channel, path, ApiResult};
use crate::audit::{AuditEvent, ReconcilerSettings};
use crate::error::ApiError;
use crate::guard::Who;
use crate::reconcile::{scope_key, DESIRED, FLEET_KEY, HEALING, RECONCILER};
use crate::state::AppState;

type Params = Result<Path<HashMap<String, String>>, PathRejection>;

fn client(e: &ipvtl_client::ClientError) -> ApiError {
    ApiError::from_client(e)
}

fn unstored(e: crate::store::StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("nothing was changed: {e}"))
}

fn now_s() -> f64 {
    crate::timefmt::unix_s(std::time::SystemTime::now())
}

/// The scope a path names (`{id}`, `{id}` and `{channel}`, or `{tag}`),
/// its server known to the fleet.
fn scope_of(st: &AppState, p: Params) -> Result<Scope, ApiError> {
    let p = path(p)?;
    let input = match (p.get("id"), p.get("channel"), p.get("tag")) {
        (Some(id), Some(ch), None) => ScopeInput::channel(id, parse_channel(ch)?),
        (Some(id), None, None) => ScopeInput::server(id),
        (None, None, Some(tag)) => ScopeInput::tag(tag),
        _ => return Err(ApiError::not_found("no such scope")),
    };
    let scope = input.into_scope().map_err(|e| client(&e))?;
    if let Scope::Channel(s, _) | Scope::Server(s) = &scope {
        st.cluster().server(s.as_str()).map_err(|e| client(&e))?;
    }
    Ok(scope)
}

fn reconciler_view(st: &AppState) -> ReconcilerView {
    ReconcilerView::from(&st.cluster().reconciler_status())
}

/// `GET /api/reconciler`: where healing stands fleet-wide.
pub(super) async fn reconciler(State(st): State<AppState>) -> ApiResult {
    json(&reconciler_view(&st))
}

/// `PUT /api/reconciler` (admin): changes the fleet-wide settings given
/// (`max_parallel`, `storm_percent`, `storm_min`, `dry_run`, `paused`).
pub(super) async fn configure(
    State(st): State<AppState>,
    who: Option<Extension<Who>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let input: ReconcilerInput = json_body(&headers, body).await?;
    change_reconciler(&st, who, input).await
}

/// `POST /api/reconciler/pause`: healing stops fleet-wide (drift is still
/// tracked) until resumed; kept across restarts.
pub(super) async fn pause(State(st): State<AppState>, who: Option<Extension<Who>>) -> ApiResult {
    let input = ReconcilerInput { paused: Some(true), ..ReconcilerInput::default() };
    change_reconciler(&st, who, input).await
}

/// `POST /api/reconciler/resume`: healing goes on.
pub(super) async fn resume(State(st): State<AppState>, who: Option<Extension<Who>>) -> ApiResult {
    let input = ReconcilerInput { paused: Some(false), ..ReconcilerInput::default() };
    change_reconciler(&st, who, input).await
}

/// Audits `event` (write-ahead), then stores `view` as the `kind` setting
/// at `key`; call with the settings lock held, and apply the change before
/// letting it go. Nothing is changed on an error.
async fn record<V: serde::Serialize>(
    st: &AppState,
    who: Option<Extension<Who>>,
    event: AuditEvent,
    kind: &str,
    key: &str,
    view: &V,
) -> Result<(), ApiError> {
    audit_now(st, &event.by(who.map(|Extension(w)| w))).await?;
    let entry = serde_json::to_string(view).map_err(|e| ApiError::bad_request(e.to_string()))?;
    st.store().put_setting(kind, key, &entry, now_s()).await.map_err(unstored)
}

async fn change_reconciler(st: &AppState, who: Option<Extension<Who>>, input: ReconcilerInput) -> ApiResult {
    // Held from reading the settings in force to applying the new ones.
    let _one_at_a_time = st.inner.settings_lock.lock().await;
    let config = input.apply(&st.cluster().reconciler_config()).map_err(|e| client(&e))?;
    let settings = ReconcilerSettings::from(&config);
    let event = AuditEvent::ReconcilerChanged { settings: settings.clone() };
    record(st, who, event, RECONCILER, FLEET_KEY, &settings).await?;
    st.cluster().configure_reconciler(ReconcilerInput::from(&settings)).map_err(|e| client(&e))?;
    let view = reconciler_view(st);
    st.inner.hub.publish("reconciler", serde_json::to_string(&view).unwrap_or_default());
    json(&view)
}

/// `GET /api/drift`: where healing stands, every managed channel that
/// drifts, and (in dry run) the heals that would be done.
pub(super) async fn drift(State(st): State<AppState>) -> ApiResult {
    let c = st.cluster();
    let (now, wall) = (c.now(), Wall(c.clock()));
    let drifts: Vec<DriftView> = c.drifts().iter().map(|d| DriftView::new(d, now, wall)).collect();
    let planned: Vec<HealView> = c.planned_heals().iter().map(|h| HealView::new(h, wall)).collect();
    Ok(Json(json!({"reconciler": reconciler_view(&st), "drifts": drifts, "planned": planned})))
}

/// `GET /api/desired`: every desired-state setting, narrowest first, with
/// its source (`file` or `api`).
pub(super) async fn desired_list(State(st): State<AppState>) -> ApiResult {
    let list: Vec<DesiredSettingView> =
        st.cluster().desired_settings().iter().map(|(s, d, src)| DesiredSettingView::new(s, *d, *src)).collect();
    json(&list)
}

/// `GET /api/healing`: every healing setting, narrowest first.
pub(super) async fn healing_list(State(st): State<AppState>) -> ApiResult {
    let list: Vec<HealingSettingView> =
        st.cluster().healing_settings().iter().map(|(s, h, src)| HealingSettingView::new(s, h, *src)).collect();
    json(&list)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DesiredRequest {
    desired: String,
}

/// `PUT .../desired` (a channel, a server, a tag): `{"desired": "running"
/// | "idle" | "unmanaged"}`.
pub(super) async fn put_desired(
    State(st): State<AppState>,
    who: Option<Extension<Who>>,
    p: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let scope = scope_of(&st, p)?;
    let req: DesiredRequest = json_body(&headers, body).await?;
    let desired = parse_desired(&req.desired).map_err(|e| client(&e))?;
    let view = DesiredSettingView::new(&scope, desired, Source::Api);
    let event = AuditEvent::DesiredSet { setting: view.clone() };
    let _one_at_a_time = st.inner.settings_lock.lock().await;
    record(&st, who, event, DESIRED, &scope_key(&scope), &view).await?;
    st.cluster().set_desired(scope, desired).map_err(|e| client(&e))?;
    st.invalidate();
    json(&view)
}

/// `PUT .../healing` (admin; a channel, a server, a tag): the policy
/// (`enabled`, `grace_ms`, `limit`, `window_ms`, `backoff_ms`,
/// `backoff_max_ms`; what is not given takes the default).
pub(super) async fn put_healing(
    State(st): State<AppState>,
    who: Option<Extension<Who>>,
    p: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let scope = scope_of(&st, p)?;
    let req: PolicyInput = json_body(&headers, body).await?;
    let healing = req.into_healing().map_err(|e| client(&e))?;
    let view = HealingSettingView::new(&scope, &healing, Source::Api);
    let event = AuditEvent::HealingSet { setting: view.clone() };
    let _one_at_a_time = st.inner.settings_lock.lock().await;
    record(&st, who, event, HEALING, &scope_key(&scope), &view).await?;
    st.cluster().set_healing(scope, healing).map_err(|e| client(&e))?;
    json(&view)
}

/// `DELETE .../desired`: removes the setting in force at that scope (the
/// API's; else the file's, until the next reload declares it again) and
/// answers `{"cleared": setting}` (null: nothing was set there).
pub(super) async fn delete_desired(State(st): State<AppState>, who: Option<Extension<Who>>, p: Params) -> ApiResult {
    clear(&st, who.map(|Extension(w)| w), scope_of(&st, p)?, DESIRED).await
}

/// `DELETE .../healing` (admin).
pub(super) async fn delete_healing(State(st): State<AppState>, who: Option<Extension<Who>>, p: Params) -> ApiResult {
    clear(&st, who.map(|Extension(w)| w), scope_of(&st, p)?, HEALING).await
}

async fn clear(st: &AppState, who: Option<Who>, scope: Scope, kind: &'static str) -> ApiResult {
    let _one_at_a_time = st.inner.settings_lock.lock().await;
    let cleared_event = AuditEvent::SettingCleared { setting: kind, scope: ScopeView::from(&scope) };
    audit_now(st, &cleared_event.by(who)).await?;
    st.store().delete_setting(kind, &scope_key(&scope)).await.map_err(unstored)?;
    // The answer is the setting that was in force there, with its source.
    let c = st.cluster();
    let cleared = if kind == DESIRED {
        let was = c.desired_settings().into_iter().find(|(s, ..)| *s == scope);
        c.clear_desired(&scope);
        was.map(|(s, d, src)| json!(DesiredSettingView::new(&s, d, src)))
    } else {
        let was = c.healing_settings().into_iter().find(|(s, ..)| *s == scope);
        c.clear_healing(&scope);
        was.map(|(s, h, src)| json!(HealingSettingView::new(&s, &h, src)))
    };
    st.invalidate();
    Ok(Json(json!({ "cleared": cleared })))
}

/// `DELETE /api/servers/{id}/channels/{channel}/degraded`: a human says
/// "try again" for a channel healing gave up on.
pub(super) async fn clear_degraded(
    State(st): State<AppState>,
    who: Option<Extension<Who>>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let (id, channel) = path(p)?;
    let channel = parse_channel(&channel)?;
    let cleared = st.cluster().clear_degraded(&id, channel).map_err(|e| client(&e))?;
    let event = AuditEvent::DegradedCleared { server_id: id, channel_id: channel, was_degraded: cleared };
    st.inner.audit_record(&[event.by(who.map(|Extension(w)| w))]).await;
    st.invalidate();
    Ok(Json(json!({ "cleared": cleared })))
}
