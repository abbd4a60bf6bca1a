//! Batches: one kind of action over many channels, a few at a time.

use alloc::collections::{BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::action::{ActionError, ActionKind, ActionReport};
use crate::ids::{ActionId, BatchId, ChannelId, ServerId};
use crate::model::{ChannelState, ServerConfig, ServerState};
use crate::time::Instant;

/// One channel a batch acts on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BatchTarget {
    /// The server.
    pub server: ServerId,
    /// The channel.
    pub channel: ChannelId,
}

/// Chooses channels from the fleet's last known state. Empty lists match
/// everything; servers without a known status and servers in maintenance
/// never match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchFilter {
    /// Only these servers.
    pub servers: Vec<ServerId>,
    /// Only servers carrying at least one of these tags.
    pub tags: Vec<String>,
    /// Only channels currently in one of these states.
    pub states: Vec<ChannelState>,
    /// Only these channel numbers.
    pub channels: Vec<ChannelId>,
}

impl BatchFilter {
    fn matches_server(&self, config: &ServerConfig, state: &ServerState) -> bool {
        !state.maintenance
            && (self.servers.is_empty() || self.servers.contains(&config.id))
            && (self.tags.is_empty() || config.tags.iter().any(|t| self.tags.contains(t)))
    }
}

/// Which channels a batch acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Targets {
    /// Exactly these channels, in this order.
    Channels(Vec<BatchTarget>),
    /// Whatever matches, in fleet order.
    Filter(BatchFilter),
}

/// A batch to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchSpec {
    /// What to do to each channel.
    pub kind: ActionKind,
    /// Which channels.
    pub targets: Targets,
    /// Actions under way at once, at least 1.
    pub max_parallel: usize,
    /// Stop starting new actions after the first failure.
    pub stop_on_failure: bool,
    /// Stop starting new actions once this many have failed.
    pub failure_threshold: Option<usize>,
}

impl BatchSpec {
    /// A batch of `kind` over `targets`, 4 at a time, running to the end.
    pub fn new(kind: ActionKind, targets: Targets) -> Self {
        BatchSpec { kind, targets, max_parallel: 4, stop_on_failure: false, failure_threshold: None }
    }
}

/// Why a batch was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchError {
    /// `max_parallel` is 0.
    ZeroParallel,
    /// The same channel is listed twice.
    Duplicate(BatchTarget),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::ZeroParallel => f.write_str("max_parallel must be at least 1"),
            BatchError::Duplicate(t) => write!(f, "channel {} of {} is listed twice", t.channel, t.server),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BatchError {}

/// Resolves a spec against the fleet: the channels it would act on, in order.
pub fn plan<'a>(
    spec: &BatchSpec,
    fleet: impl Iterator<Item = (&'a ServerConfig, &'a ServerState)>,
) -> Result<Vec<BatchTarget>, BatchError> {
    if spec.max_parallel == 0 {
        return Err(BatchError::ZeroParallel);
    }
    match &spec.targets {
        Targets::Channels(list) => {
            let mut seen = BTreeSet::new();
            for t in list {
                if !seen.insert(t) {
                    return Err(BatchError::Duplicate(t.clone()));
                }
            }
            Ok(list.clone())
        }
        Targets::Filter(filter) => {
            let mut out = Vec::new();
            for (config, state) in fleet.filter(|(c, s)| filter.matches_server(c, s)) {
                let Some(status) = &state.status else { continue };
                for ch in &status.channels {
                    let state_ok = filter.states.is_empty() || filter.states.contains(&ch.state);
                    let channel_ok = filter.channels.is_empty() || filter.channels.contains(&ch.id);
                    if state_ok && channel_ok {
                        out.push(BatchTarget { server: config.id.clone(), channel: ch.id });
                    }
                }
            }
            Ok(out)
        }
    }
}

/// A batch's progress, as reported after every action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchProgress {
    /// The batch.
    pub batch: BatchId,
    /// Actions finished (including refused and skipped).
    pub done: usize,
    /// Actions in the plan.
    pub total: usize,
    /// Of those done, how many failed.
    pub failed: usize,
    /// Actions under way.
    pub running: usize,
    /// The report of the action that just finished.
    pub last: Option<ActionReport>,
}

/// How a batch ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchReport {
    /// The batch.
    pub batch: BatchId,
    /// What it did.
    pub kind: ActionKind,
    /// When it began.
    pub started_at: Instant,
    /// When it ended.
    pub finished_at: Instant,
    /// One report per planned channel, in plan order.
    pub reports: Vec<ActionReport>,
    /// Why it stopped early, if it did.
    pub stopped_early: Option<String>,
}

impl BatchReport {
    /// True when every planned action ran and succeeded.
    pub fn is_ok(&self) -> bool {
        self.failed() == 0 && self.skipped() == 0
    }

    /// Actions that succeeded.
    pub fn ok(&self) -> usize {
        self.reports.iter().filter(|r| r.is_ok()).count()
    }

    /// Actions that ran or were refused and failed (not skipped).
    pub fn failed(&self) -> usize {
        self.reports
            .iter()
            .filter(|r| matches!(&r.outcome, Err(e) if !matches!(e, ActionError::Skipped { .. })))
            .count()
    }

    /// Actions not run because the batch stopped early.
    pub fn skipped(&self) -> usize {
        self.reports.iter().filter(|r| matches!(r.outcome, Err(ActionError::Skipped { .. }))).count()
    }
}

/// A batch under way (kept by [`crate::Fleet`]).
#[derive(Debug)]
pub(crate) struct BatchRun {
    pub(crate) id: BatchId,
    pub(crate) spec: BatchSpec,
    pub(crate) plan: Vec<BatchTarget>,
    pub(crate) pending: VecDeque<usize>,
    pub(crate) running: BTreeSet<ActionId>,
    pub(crate) reports: Vec<Option<ActionReport>>,
    pub(crate) index_of: alloc::collections::BTreeMap<ActionId, usize>,
    pub(crate) failed: usize,
    pub(crate) stopped: Option<String>,
    pub(crate) started_at: Instant,
}

impl BatchRun {
    pub(crate) fn new(id: BatchId, spec: BatchSpec, plan: Vec<BatchTarget>, now: Instant) -> Self {
        let n = plan.len();
        BatchRun {
            id,
            spec,
            plan,
            pending: (0..n).collect(),
            running: BTreeSet::new(),
            reports: (0..n).map(|_| None).collect(),
            index_of: alloc::collections::BTreeMap::new(),
            failed: 0,
            stopped: None,
            started_at: now,
        }
    }

    /// Records a finished (or refused) action of plan entry `index`; returns
    /// the progress to report.
    pub(crate) fn record(&mut self, index: usize, report: ActionReport) -> BatchProgress {
        self.running.remove(&report.action);
        if report.outcome.is_err() {
            self.failed += 1;
            if self.stopped.is_none() {
                if self.spec.stop_on_failure {
                    self.stopped = Some(alloc::format!("stopped on the first failure ({})", report.summary()));
                } else if self.spec.failure_threshold.is_some_and(|t| self.failed >= t) {
                    self.stopped = Some(alloc::format!("{} actions failed, the threshold", self.failed));
                }
            }
        }
        self.reports[index] = Some(report.clone());
        self.progress(Some(report))
    }

    pub(crate) fn progress(&self, last: Option<ActionReport>) -> BatchProgress {
        BatchProgress {
            batch: self.id,
            done: self.reports.iter().filter(|r| r.is_some()).count(),
            total: self.plan.len(),
            failed: self.failed,
            running: self.running.len(),
            last,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.running.is_empty() && (self.pending.is_empty() || self.stopped.is_some())
    }

    pub(crate) fn into_report(mut self, now: Instant) -> BatchReport {
        let reason = self.stopped.clone().unwrap_or_default();
        for index in core::mem::take(&mut self.pending) {
            let t = &self.plan[index];
            let skipped = ActionError::Skipped { reason: reason.clone() };
            self.reports[index] = Some(ActionReport::refused(
                ActionId(0),
                t.server.clone(),
                t.channel,
                self.spec.kind,
                Some(self.id),
                skipped,
                now,
            ));
        }
        BatchReport {
            batch: self.id,
            kind: self.spec.kind,
            started_at: self.started_at,
            finished_at: now,
            reports: self.reports.into_iter().flatten().collect(),
            stopped_early: self.stopped,
        }
    }
}
