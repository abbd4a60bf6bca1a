//! Actions and batches.

use ipvtl_core::{ActionProgress, ActionReport, BatchProgress, BatchReport, BatchTarget, PhaseReport};
use schemars::JsonSchema;
use serde::Serialize;

use super::{ms, Wall};

/// How long one phase of an action took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PhaseView {
    /// `probe`, `stop`, `wait_idle`, `start` or `wait_running`.
    pub phase: &'static str,
    /// Its duration.
    pub duration_ms: u64,
}

impl From<&PhaseReport> for PhaseView {
    fn from(p: &PhaseReport) -> Self {
        PhaseView { phase: p.phase.as_str(), duration_ms: ms(p.duration) }
    }
}

/// How a start, stop or restart of one channel ended.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ActionReportView {
    /// The action; `null` when it was refused or skipped before it began.
    pub action_id: Option<u64>,
    /// The server.
    pub server_id: String,
    /// The channel.
    pub channel_id: u32,
    /// `start`, `stop` or `restart`.
    pub action: &'static str,
    /// The batch it belonged to.
    pub batch_id: Option<u64>,
    /// True on success.
    pub ok: bool,
    /// Each phase it went through, in order.
    pub phases: Vec<PhaseView>,
    /// When it began.
    pub started_at: f64,
    /// When it ended.
    pub finished_at: f64,
    /// From start to end.
    pub duration_ms: u64,
    /// The channel state last seen.
    pub final_state: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// `probe_failed`, `stop_failed`, `start_failed`, `stop_timeout`,
    /// `start_timeout`, `skipped`, or a refusal (`busy`, `maintenance`,
    /// `server_not_found`, `channel_not_found`).
    pub error_kind: Option<&'static str>,
    /// The request failure behind the error: `connect`, `timeout`, `io`
    /// (unreachable), `http`, `malformed`, `too_large` (answered badly).
    pub cause_kind: Option<&'static str>,
    /// One line for humans.
    pub summary: String,
}

impl ActionReportView {
    /// The view of a report.
    pub fn new(r: &ActionReport, wall: Wall<'_>) -> Self {
        let error = r.outcome.as_ref().err();
        ActionReportView {
            action_id: r.action.map(|a| a.0),
            server_id: r.server.to_string(),
            channel_id: r.channel.get(),
            action: r.kind.as_str(),
            batch_id: r.batch.map(|b| b.0),
            ok: r.is_ok(),
            phases: r.phases.iter().map(PhaseView::from).collect(),
            started_at: wall.at(r.started_at),
            finished_at: wall.at(r.finished_at),
            duration_ms: ms(r.duration()),
            final_state: r.final_state.as_ref().map(|s| s.as_str().to_owned()),
            error: error.map(|e| e.to_string()),
            error_kind: error.map(|e| e.kind()),
            cause_kind: r.cause().map(|c| c.kind()),
            summary: r.summary(),
        }
    }
}

/// An action under way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ActionProgressView {
    /// The action.
    pub action_id: u64,
    /// The server.
    pub server_id: String,
    /// The channel.
    pub channel_id: u32,
    /// `start`, `stop` or `restart`.
    pub action: &'static str,
    /// `probe`, `stop`, `wait_idle`, `start` or `wait_running`.
    pub phase: &'static str,
    /// Its batch.
    pub batch_id: Option<u64>,
}

impl From<&ActionProgress> for ActionProgressView {
    fn from(a: &ActionProgress) -> Self {
        ActionProgressView {
            action_id: a.action.0,
            server_id: a.server.to_string(),
            channel_id: a.channel.get(),
            action: a.kind.as_str(),
            phase: a.phase.as_str(),
            batch_id: a.batch.map(|b| b.0),
        }
    }
}

/// One channel a batch acts on (a dry run's plan).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BatchTargetView {
    /// The server.
    pub server_id: String,
    /// The channel.
    pub channel_id: u32,
}

impl From<&BatchTarget> for BatchTargetView {
    fn from(t: &BatchTarget) -> Self {
        BatchTargetView { server_id: t.server.to_string(), channel_id: t.channel.get() }
    }
}

/// A batch's progress, after each action.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct BatchProgressView {
    /// The batch.
    pub batch_id: u64,
    /// Actions finished (including refused and skipped).
    pub done: usize,
    /// Actions in the plan.
    pub total: usize,
    /// Of those done, how many failed.
    pub failed: usize,
    /// Actions under way.
    pub running: usize,
    /// The action that just finished.
    pub last: Option<ActionReportView>,
}

impl BatchProgressView {
    /// The view of a progress report.
    pub fn new(p: &BatchProgress, wall: Wall<'_>) -> Self {
        BatchProgressView {
            batch_id: p.batch.0,
            done: p.done,
            total: p.total,
            failed: p.failed,
            running: p.running,
            last: p.last.as_ref().map(|r| ActionReportView::new(r, wall)),
        }
    }
}

/// How a batch ended.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct BatchReportView {
    /// The batch.
    pub batch_id: u64,
    /// `start`, `stop` or `restart`.
    pub action: &'static str,
    /// True when every planned action ran and succeeded.
    pub ok: bool,
    /// Actions that succeeded.
    pub succeeded: usize,
    /// Actions that failed or were refused.
    pub failed: usize,
    /// Actions not run because the batch stopped early.
    pub skipped: usize,
    /// `first_failure` or `threshold` when the batch stopped early.
    pub stopped_early: Option<&'static str>,
    /// Why it stopped early, for humans.
    pub stopped_reason: Option<String>,
    /// When it began.
    pub started_at: f64,
    /// When it ended.
    pub finished_at: f64,
    /// From start to end.
    pub duration_ms: u64,
    /// One report per planned channel, in plan order.
    pub reports: Vec<ActionReportView>,
}

impl BatchReportView {
    /// The view of a batch report.
    pub fn new(r: &BatchReport, wall: Wall<'_>) -> Self {
        BatchReportView {
            batch_id: r.batch.0,
            action: r.kind.as_str(),
            ok: r.is_ok(),
            succeeded: r.ok(),
            failed: r.failed(),
            skipped: r.skipped(),
            stopped_early: r.stopped_early.as_ref().map(|s| s.as_str()),
            stopped_reason: r.stopped_early.as_ref().map(|s| s.to_string()),
            started_at: wall.at(r.started_at),
            finished_at: wall.at(r.finished_at),
            duration_ms: ms(r.finished_at.saturating_since(r.started_at)),
            reports: r.reports.iter().map(|a| ActionReportView::new(a, wall)).collect(),
        }
    }
}
