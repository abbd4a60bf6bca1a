//! Batches: submit (or plan, with `dry_run`), list, one.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ipvtl_client::wire::BatchTargetView;
use ipvtl_client::{BatchInput, ClientError};
use serde::Serialize;

use super::{audit_now, json, json_body, path, ApiResult};
use crate::audit::AuditEvent;
use crate::error::ApiError;
use crate::guard::Who;
use crate::instances::LockError;
use crate::state::AppState;

/// The answer to a batch: accepted (202, with where to follow it) or, for
/// a dry run, the plan alone.
#[derive(Serialize)]
struct BatchAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_url: Option<String>,
    dry_run: bool,
    action: &'static str,
    count: usize,
    targets: Vec<BatchTargetView>,
}

pub(super) async fn submit(
    State(st): State<AppState>,
    who: Option<Extension<Who>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let input: BatchInput = json_body(&headers, body).await?;
    let dry_run = input.dry_run;
    let listed: Vec<String> = input.targets.iter().flatten().map(|t| t.server_id.clone()).collect();
    let spec = input.into_spec().map_err(|e| ApiError::from_client(&ClientError::Batch(e)))?;
    let cluster = st.cluster();
    if let Some(id) = listed.iter().find(|id| cluster.server(id).is_err()) {
        return Err(ApiError::unprocessable(format!("no server with id {id:?} in targets")));
    }
    let plan = cluster.plan(&spec).map_err(|e| ApiError::from_client(&e))?;
    let targets: Vec<BatchTargetView> = plan.iter().map(BatchTargetView::from).collect();
    let action = spec.kind.as_str();
    let mut answer = BatchAnswer { batch_id: None, status_url: None, dry_run, action, count: plan.len(), targets };
    if dry_run {
        return Ok(json(&answer)?.into_response());
    }
    if plan.is_empty() {
        return Err(ApiError::unprocessable("no channel matches this batch"));
    }
    let who = who.map(|Extension(w)| w);
    let requested = AuditEvent::BatchRequested { action, count: plan.len(), targets: answer.targets.clone() };
    audit_now(&st, &requested.by(who.clone())).await?;
    // Sharing the fleet: every channel of the batch is locked across
    // instances first (all or none), and batch numbers come from the store.
    let channels: Vec<(String, u32)> = answer.targets.iter().map(|t| (t.server_id.clone(), t.channel_id)).collect();
    if let Some(instances) = &st.inner.instances {
        if let Err(e) = instances.lock_channels(st.store(), cluster, &channels).await {
            return Err(match e {
                LockError::Held(h) => ApiError::new(StatusCode::CONFLICT, format!("batch refused: {h}")),
                LockError::Store(e) => {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("cannot lock the batch's channels: {e}"))
                }
            });
        }
    }
    let submitted = match &st.inner.instances {
        Some(_) => match st.store().reserve_batch_id().await {
            Ok(id) => {
                let _numbering = st.inner.batch_numbering.lock().await;
                cluster.number_batches_after(id.saturating_sub(1));
                cluster.submit_batch(spec.clone()).map_err(|e| ApiError::from_client(&e))
            }
            Err(e) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("cannot number the batch: {e}"))),
        },
        None => cluster.submit_batch(spec.clone()).map_err(|e| ApiError::from_client(&e)),
    };
    let (id, done) = match submitted {
        Ok(s) => s,
        Err(e) => {
            if let Some(instances) = &st.inner.instances {
                for (server, channel) in &channels {
                    instances.unlock(st.store(), server, *channel).await;
                }
            }
            return Err(e);
        }
    };
    st.inner.batches.insert(id.0, spec.kind, plan.len(), who);
    st.inner.persist_batch(id.0).await;
    // Its first actions are under way: the list shows them.
    st.invalidate();
    // Progress and the report arrive as events; nobody needs this future.
    drop(done);
    answer.batch_id = Some(id.0);
    answer.status_url = Some(format!("/api/batches/{}", id.0));
    Ok((StatusCode::ACCEPTED, json(&answer)?).into_response())
}

pub(super) async fn list(State(st): State<AppState>) -> Json<Vec<serde_json::Value>> {
    Json(st.inner.batches.list())
}

pub(super) async fn one(State(st): State<AppState>, p: Result<Path<String>, PathRejection>) -> ApiResult {
    let raw = path(p)?;
    let id = raw.parse::<u64>().map_err(|_| ApiError::not_found(format!("no batch {raw:?}")))?;
    if let Some(entry) = st.inner.batches.get(id) {
        return Ok(Json(entry));
    }
    // Older than those in memory: the store has it, as it last was.
    let stored =
        st.store().batch(id).await.map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let entry = stored.and_then(|s| serde_json::from_str(&s).ok());
    entry.map(Json).ok_or_else(|| ApiError::not_found(format!("no batch {id}")))
}
