//! Channel actions, and the actions under way.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use ipvtl_client::wire::{ActionProgressView, ActionReportView, Wall};
use ipvtl_client::{ActionKind, ClientError};

use super::{audit_now, json, parse_channel, path, ApiResult};
use crate::audit::AuditEvent;
use crate::error::ApiError;
use crate::guard::Who;
use crate::instances::LockError;
use crate::legacy::LegacyActionAnswer;
use crate::state::AppState;

pub(super) async fn channel_action(
    State(st): State<AppState>,
    who: Option<Extension<Who>>,
    p: Result<Path<(String, String, String)>, PathRejection>,
) -> ApiResult {
    let (id, channel, action) = path(p)?;
    let kind = ActionKind::parse(&action)
        .ok_or_else(|| ApiError::not_found(format!("unknown action {action:?}: use start, stop or restart")))?;
    let channel = parse_channel(&channel)?;
    let who = who.map(|Extension(w)| w);
    let action = kind.as_str();
    // Write-ahead: the intent is on disk before anything can be sent, and
    // the action is in the store's ledger of those under way until its
    // end is recorded (a crash in between leaves it there: see restore).
    let key = st.inner.request_key();
    let requested = AuditEvent::ActionRequested { server_id: id.clone(), channel_id: channel, action };
    audit_now(&st, &requested.by(who.clone()).opening(&key)).await?;
    // Sharing the fleet: the channel's lock holds across instances.
    if let Some(instances) = &st.inner.instances {
        if let Err(e) = instances.lock_channels(st.store(), st.cluster(), &[(id.clone(), channel)]).await {
            let (outcome, status, detail) = match e {
                LockError::Held(h) => ("busy", StatusCode::CONFLICT, h.to_string()),
                LockError::Store(e) => {
                    ("store_unavailable", StatusCode::SERVICE_UNAVAILABLE, format!("cannot lock the channel: {e}"))
                }
            };
            let refused = AuditEvent::ActionRefused {
                server_id: id.clone(),
                channel_id: channel,
                action,
                outcome,
                detail: detail.clone(),
            };
            st.inner.audit_record(&[refused.by(who).closing(&key)]).await;
            return Err(ApiError::new(status, detail));
        }
    }
    let pending = match st.cluster().submit(&id, channel, kind) {
        Ok(p) => p,
        Err(e) => {
            let refused = AuditEvent::ActionRefused {
                server_id: id.clone(),
                channel_id: channel,
                action,
                outcome: e.kind(),
                detail: e.to_string(),
            };
            st.inner.audit_record(&[refused.by(who).closing(&key)]).await;
            if let Some(instances) = &st.inner.instances {
                instances.unlock(st.store(), &id, channel).await;
            }
            return Err(ApiError::from_client(&e));
        }
    };
    // Under way: the list shows it on its channel.
    st.invalidate();
    // Await on a task of its own, so the outcome is audited even if the
    // client goes away before the action ends.
    let audit_state = st.clone();
    let result = smol::spawn(async move {
        let result = pending.await;
        // Over: the list shows the channel as the action left it.
        audit_state.invalidate();
        let wall = Wall(audit_state.cluster().clock());
        let event = match &result {
            Ok(r) => AuditEvent::ActionFinished { outcome: "ok", report: ActionReportView::new(r, wall) },
            Err(ClientError::ActionFailed(r)) => {
                AuditEvent::ActionFinished { outcome: "failed", report: ActionReportView::new(r, wall) }
            }
            Err(e) => AuditEvent::ActionLost {
                server_id: id,
                channel_id: channel,
                action,
                outcome: e.kind(),
                detail: e.to_string(),
            },
        };
        audit_state.inner.audit_record(&[event.by(who).closing(&key)]).await;
        result
    })
    .await;
    let wall = Wall(st.cluster().clock());
    match result {
        Ok(report) => json(&LegacyActionAnswer::new(&ActionReportView::new(&report, wall))),
        Err(ClientError::ActionFailed(report)) => {
            let view = ActionReportView::new(&report, wall);
            let body = serde_json::to_value(LegacyActionAnswer::new(&view)).unwrap_or_default();
            Err(ApiError::new(StatusCode::BAD_GATEWAY, report.summary()).with(body))
        }
        Err(e) => Err(ApiError::from_client(&e)),
    }
}

/// `GET /api/actions`: the actions under way.
pub(super) async fn list(State(st): State<AppState>) -> Json<Vec<ActionProgressView>> {
    Json(st.cluster().actions().iter().map(ActionProgressView::from).collect())
}
