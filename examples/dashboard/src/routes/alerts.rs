//! Alerts: the active ones and their history, silences, a test alert to
//! every receiver, and reloading the alerts file.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use ipvtl_client::core::alert::{Matcher, Silence, SilenceId};
use serde::Deserialize;
use serde_json::json;

use super::{audit_now, json_body, path, ApiResult};
use crate::alerts::AlertsFile;
use crate::audit::AuditEvent;
use crate::error::ApiError;
use crate::guard::Who;
use crate::state::AppState;

/// `GET /api/alerts`: active alerts (pending, firing, silenced) with their
/// state, recent ended ones, counts, and the receivers' delivery state.
pub(super) async fn list(State(st): State<AppState>) -> ApiResult {
    Ok(Json(st.inner.alerts.overview()))
}

/// `GET /api/silences`: those in force, from the API and the alerts file.
pub(super) async fn silences(State(st): State<AppState>) -> ApiResult {
    Ok(Json(json!({"silences": st.inner.alerts.silences_view()})))
}

/// The body of `POST /api/silences`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SilenceRequest {
    /// `name=value` or `name!=value`, all must match.
    matchers: Vec<String>,
    /// Its end, Unix seconds; or `duration_s` from now.
    ends_at: Option<f64>,
    duration_s: Option<f64>,
    #[serde(default)]
    comment: String,
}

/// Longest silence: a year.
const MAX_SILENCE_S: f64 = 366.0 * 86_400.0;

/// `POST /api/silences` (operator): mutes alerts whose labels match until
/// its end; kept in the store and audited.
pub(super) async fn add_silence(
    State(st): State<AppState>,
    who: Option<Extension<Who>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let req: SilenceRequest = json_body(&headers, body).await?;
    let who = who.map(|Extension(w)| w);
    if req.matchers.is_empty() || req.matchers.len() > 32 {
        return Err(ApiError::unprocessable("matchers: give 1 to 32, like [\"server=edge-1\"]"));
    }
    if req.comment.len() > 1000 {
        return Err(ApiError::unprocessable("comment: at most 1000 bytes"));
    }
    let matchers: Vec<Matcher> = req
        .matchers
        .iter()
        .map(|m| Matcher::parse(m))
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::unprocessable(format!("matchers: {e}")))?;
    let hub = &st.inner.alerts;
    let now_unix = crate::timefmt::unix_s(std::time::SystemTime::now());
    let ends_at = match (req.ends_at, req.duration_s) {
        (Some(t), None) if t.is_finite() => t,
        (None, Some(d)) if d.is_finite() && d > 0.0 => now_unix + d,
        (None, Some(_)) => return Err(ApiError::unprocessable("duration_s must be a number of seconds above 0")),
        (None, None) | (Some(_), Some(_)) | (Some(_), None) => {
            return Err(ApiError::unprocessable("give ends_at (Unix seconds) or duration_s, one of them"))
        }
    };
    if ends_at <= now_unix {
        return Err(ApiError::unprocessable(format!("ends_at {ends_at} is not in the future")));
    }
    if ends_at - now_unix > MAX_SILENCE_S {
        return Err(ApiError::unprocessable("a silence lasts at most a year"));
    }
    let silence = Silence { matchers, ends_at: hub.at_unix(ends_at), comment: req.comment.clone() };
    silence.validate(hub.now()).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let by = who.as_ref().map(|w| w.key_name.clone().unwrap_or_else(|| w.addr.clone())).unwrap_or_default();
    let (id, stored) = hub.add_silence(silence, by).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let undo = |e: String| {
        let _ = hub.expire_silence(id);
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the silence is not kept, nothing was changed: {e}"))
    };
    st.store().put_silence(&stored).await.map_err(|e| undo(e.to_string()))?;
    let added = AuditEvent::SilenceAdded {
        silence_id: id.0,
        matchers: req.matchers.clone(),
        ends_at: stored.ends_at,
        comment: req.comment,
    };
    if let Err(e) = audit_now(&st, &added.by(who)).await {
        let _ = hub.expire_silence(id);
        let _ = st.store().delete_silence(id.0).await;
        return Err(e);
    }
    let view: serde_json::Value = serde_json::from_str(&stored.entry).unwrap_or_default();
    Ok(Json(view))
}

/// `DELETE /api/silences/{id}` (operator): ends a silence made through the
/// API; what it held and still holds fires.
pub(super) async fn delete_silence(
    State(st): State<AppState>,
    who: Option<Extension<Who>>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let raw = path(p)?;
    let id: u64 = raw.parse().map_err(|_| ApiError::not_found(format!("no silence {raw:?}")))?;
    let hub = &st.inner.alerts;
    if !hub.has_silence(SilenceId(id)) {
        return Err(ApiError::not_found(format!("no silence {id} in force")));
    }
    let who = who.map(|Extension(w)| w);
    audit_now(&st, &AuditEvent::SilenceExpired { silence_id: id }.by(who)).await?;
    match hub.expire_silence(SilenceId(id)) {
        Err(why) => return Err(ApiError::new(StatusCode::CONFLICT, why)),
        Ok(false) => return Err(ApiError::not_found(format!("no silence {id} in force"))),
        Ok(true) => {}
    }
    if let Err(e) = st.store().delete_silence(id).await {
        eprintln!("ipvtl-dashboard: silence {id} ended but still kept (it ends at its time): {e}");
    }
    Ok(Json(json!({"id": id, "expired": true})))
}

/// `POST /api/alerts/test` (operator): a test alert to every receiver, at
/// once (not through the outbox); per receiver, whether it was accepted.
pub(super) async fn test(State(st): State<AppState>) -> ApiResult {
    let results = st.inner.alerts.test().await;
    let all = results.iter().all(|r| r["accepted"] == true);
    Ok(Json(json!({"ok": all, "receivers": results})))
}

/// `POST /api/alerts/reload` (admin): re-reads the alerts file; a bad file
/// changes nothing and gets 400 with the error.
pub(super) async fn reload(State(st): State<AppState>, who: Option<Extension<Who>>) -> ApiResult {
    let hub = &st.inner.alerts;
    let Some(path) = hub.file().path.clone() else {
        return Err(ApiError::bad_request("nothing to reload: this dashboard was started without --alerts"));
    };
    let who = who.map(|Extension(w)| w);
    let loaded = smol::unblock({
        let path = path.clone();
        move || AlertsFile::load(&path, |k| std::env::var(k).ok())
    })
    .await;
    let result = loaded.and_then(|file| {
        let receivers = file.receivers.len();
        hub.reload(file).map(|()| receivers)
    });
    match result {
        Ok(receivers) => {
            let ok = AuditEvent::AlertsReload { outcome: "ok", detail: None };
            st.inner.audit_record(&[ok.by(who)]).await;
            Ok(Json(json!({
                "message": format!("Reloaded the alerts file {}", path.display()),
                "receivers": receivers,
            })))
        }
        Err(e) => {
            let refused = AuditEvent::AlertsReload { outcome: "refused", detail: Some(e.clone()) };
            st.inner.audit_record(&[refused.by(who)]).await;
            Err(ApiError::bad_request(e))
        }
    }
}
