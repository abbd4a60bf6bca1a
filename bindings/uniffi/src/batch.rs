//! Actions and batches: the reports going out, filled from their wire views
//! (`ipvtl_client::wire`), and the batch spec coming in, handed to the
//! core's `BatchInput` as given and validated there, once.

use ipvtl_client::core as core_;
use ipvtl_client::core::batch::{FilterInput, TargetInput};
use ipvtl_client::{wire, ClientError};

use crate::error::IpvtlError;
use crate::records::count;

/// What to do to a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ActionKind {
    /// `start`, then wait until running.
    Start,
    /// `stop`, then wait until idle.
    Stop,
    /// `stop`, wait until idle, `start`, wait until running.
    Restart,
}

impl From<ActionKind> for core_::ActionKind {
    fn from(k: ActionKind) -> Self {
        match k {
            ActionKind::Start => core_::ActionKind::Start,
            ActionKind::Stop => core_::ActionKind::Stop,
            ActionKind::Restart => core_::ActionKind::Restart,
        }
    }
}

/// How long one phase of an action took.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PhaseTiming {
    /// `probe`, `stop`, `wait_idle`, `start` or `wait_running`.
    pub phase: String,
    /// Its duration.
    pub duration_ms: u64,
}

impl From<wire::PhaseView> for PhaseTiming {
    fn from(p: wire::PhaseView) -> Self {
        PhaseTiming { phase: p.phase.to_owned(), duration_ms: p.duration_ms }
    }
}

/// How a start, stop or restart of one channel ended, with each phase.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ActionReport {
    /// The action; absent when it was refused or skipped before it began.
    pub action_id: Option<u64>,
    /// The server.
    pub server_id: String,
    /// The channel.
    pub channel_id: u32,
    /// `start`, `stop` or `restart`.
    pub action: String,
    /// The batch it belonged to, if any.
    pub batch_id: Option<u64>,
    /// True when it succeeded.
    pub ok: bool,
    /// Each phase it went through, in order.
    pub phases: Vec<PhaseTiming>,
    /// When it began, in Unix seconds.
    pub started_at: f64,
    /// When it ended, in Unix seconds.
    pub finished_at: f64,
    /// From start to end.
    pub duration_ms: u64,
    /// The channel's last seen state.
    pub final_state: Option<String>,
    /// Why it failed, for humans.
    pub error: Option<String>,
    /// `probe_failed`, `stop_failed`, `start_failed`, `stop_timeout`,
    /// `start_timeout`, `skipped`, or a refusal (`busy`, `maintenance`,
    /// `server_not_found`, `channel_not_found`).
    pub error_kind: Option<String>,
    /// The request failure behind the error: `connect`, `timeout`, `io`
    /// (unreachable), `http`, `malformed`, `too_large` (answered badly).
    pub cause_kind: Option<String>,
    /// One line for logs.
    pub summary: String,
}

impl From<wire::ActionReportView> for ActionReport {
    fn from(r: wire::ActionReportView) -> Self {
        ActionReport {
            action_id: r.action_id,
            server_id: r.server_id,
            channel_id: r.channel_id,
            action: r.action.to_owned(),
            batch_id: r.batch_id,
            ok: r.ok,
            phases: r.phases.into_iter().map(Into::into).collect(),
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_ms: r.duration_ms,
            final_state: r.final_state,
            error: r.error,
            error_kind: r.error_kind.map(str::to_owned),
            cause_kind: r.cause_kind.map(str::to_owned),
            summary: r.summary,
        }
    }
}

/// One channel of a batch: listed in a spec, or planned by `Cluster.plan`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BatchTarget {
    /// The server.
    pub server_id: String,
    /// The channel, from 1.
    pub channel_id: u32,
}

impl From<wire::BatchTargetView> for BatchTarget {
    fn from(t: wire::BatchTargetView) -> Self {
        BatchTarget { server_id: t.server_id, channel_id: t.channel_id }
    }
}

/// Chooses channels from the fleet's last known state. Empty lists match
/// everything; servers without a known status or in maintenance never match.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct BatchFilter {
    /// Only these servers.
    #[uniffi(default)]
    pub servers: Vec<String>,
    /// Only servers with at least one of these tags.
    #[uniffi(default)]
    pub tags: Vec<String>,
    /// Only channels in one of these states: `idle`, `running`, `stopping`
    /// (any other name is refused, naming the valid ones).
    #[uniffi(default)]
    pub states: Vec<String>,
    /// Only these channel numbers (from 1).
    #[uniffi(default)]
    pub channels: Vec<u32>,
}

/// A batch to run: one action over many channels, a few at a time. Give
/// exactly one of `targets` and `filter`. Fields left out (`None`) take the
/// core's defaults; everything is checked by the core, which names what is
/// wrong (an `IpvtlError.Batch`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BatchSpec {
    /// What to do to each channel.
    pub action: ActionKind,
    /// Exactly these channels, in this order.
    #[uniffi(default = None)]
    pub targets: Option<Vec<BatchTarget>>,
    /// Whatever matches, in fleet order.
    #[uniffi(default = None)]
    pub filter: Option<BatchFilter>,
    /// Actions under way at once.
    #[uniffi(default = None)]
    pub max_parallel: Option<u32>,
    /// Stop starting new actions after the first failure.
    #[uniffi(default = None)]
    pub stop_on_failure: Option<bool>,
    /// Stop starting new actions once this many have failed.
    #[uniffi(default = None)]
    pub failure_threshold: Option<u32>,
}

/// The core's spec, or its reason to refuse (through the one error mapping).
impl TryFrom<BatchSpec> for core_::BatchSpec {
    type Error = IpvtlError;
    fn try_from(s: BatchSpec) -> Result<Self, IpvtlError> {
        let input = core_::BatchInput {
            action: core_::ActionKind::from(s.action).as_str().to_owned(),
            targets: s.targets.map(|list| {
                list.into_iter().map(|t| TargetInput { server_id: t.server_id, channel_id: t.channel_id }).collect()
            }),
            filter: s.filter.map(|f| FilterInput {
                servers: f.servers,
                tags: f.tags,
                states: f.states,
                channels: f.channels,
            }),
            max_parallel: s.max_parallel.map(|n| n as usize),
            stop_on_failure: s.stop_on_failure,
            failure_threshold: s.failure_threshold.map(|n| n as usize),
            dry_run: false,
        };
        input.into_spec().map_err(|e| ClientError::Batch(e).into())
    }
}

/// How a batch ended: one report per planned channel.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct BatchReport {
    /// The batch.
    pub batch_id: u64,
    /// `start`, `stop` or `restart`.
    pub action: String,
    /// True when every planned action ran and succeeded.
    pub ok: bool,
    /// Actions that succeeded.
    pub succeeded: u32,
    /// Actions that failed or were refused.
    pub failed: u32,
    /// Actions not run because the batch stopped early.
    pub skipped: u32,
    /// `first_failure` or `threshold` when the batch stopped early.
    pub stopped_early: Option<String>,
    /// Why it stopped early, for humans.
    pub stopped_reason: Option<String>,
    /// When it began, in Unix seconds.
    pub started_at: f64,
    /// When it ended, in Unix seconds.
    pub finished_at: f64,
    /// From start to end.
    pub duration_ms: u64,
    /// One report per planned channel, in plan order.
    pub reports: Vec<ActionReport>,
}

impl From<wire::BatchReportView> for BatchReport {
    fn from(r: wire::BatchReportView) -> Self {
        BatchReport {
            batch_id: r.batch_id,
            action: r.action.to_owned(),
            ok: r.ok,
            succeeded: count(r.succeeded),
            failed: count(r.failed),
            skipped: count(r.skipped),
            stopped_early: r.stopped_early.map(str::to_owned),
            stopped_reason: r.stopped_reason,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_ms: r.duration_ms,
            reports: r.reports.into_iter().map(Into::into).collect(),
        }
    }
}
