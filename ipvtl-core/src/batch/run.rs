//! [`Batch`]: the sans-IO machine that runs one batch.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use super::{BatchProgress, BatchReport, BatchSpec, BatchStop, BatchTarget};
use crate::action::{ActionError, ActionKind, ActionReport};
use crate::ids::{ActionId, BatchId};
use crate::time::Instant;

/// One batch under way. It decides which channel comes next and when the
/// batch stops; whoever owns the channel locks (the [`crate::Fleet`])
/// starts the actions and feeds back what became of them:
///
/// 1. `poll_target()` until `None`, answering each target with
///    `handle_started(action)` or `handle_refused(error, now)`;
/// 2. `handle_finished(report)` when an action of the batch ends;
/// 3. `poll_event()` until `None` (one [`BatchProgress`] per finished or
///    refused action);
/// 4. `take_report(now)` once `is_finished()`.
///
/// Every step costs O(log parallelism): progress is counted as it happens,
/// never recounted over the reports.
#[derive(Debug)]
pub struct Batch {
    id: BatchId,
    kind: ActionKind,
    max_parallel: usize,
    stop_on_failure: bool,
    failure_threshold: Option<usize>,
    plan: Vec<BatchTarget>,
    /// Plan entries before this one were handed out.
    next: usize,
    /// The entry handed out by `poll_target`, not answered yet.
    claimed: Option<usize>,
    running: BTreeMap<ActionId, usize>,
    reports: Vec<Option<ActionReport>>,
    done: usize,
    failed: usize,
    stopped: Option<BatchStop>,
    started_at: Instant,
    events: VecDeque<BatchProgress>,
    reported: bool,
    work: u64,
}

impl Batch {
    /// A batch `id` of `spec` over `plan` (from [`super::plan`]), begun at `now`.
    pub fn new(id: BatchId, spec: &BatchSpec, plan: Vec<BatchTarget>, now: Instant) -> Self {
        let n = plan.len();
        Batch {
            id,
            kind: spec.kind,
            max_parallel: spec.max_parallel.max(1),
            stop_on_failure: spec.stop_on_failure,
            failure_threshold: spec.failure_threshold,
            plan,
            next: 0,
            claimed: None,
            running: BTreeMap::new(),
            reports: (0..n).map(|_| None).collect(),
            done: 0,
            failed: 0,
            stopped: None,
            started_at: now,
            events: VecDeque::new(),
            reported: false,
            work: 0,
        }
    }

    /// The batch's id.
    pub fn id(&self) -> BatchId {
        self.id
    }

    /// What it does to each channel.
    pub fn kind(&self) -> ActionKind {
        self.kind
    }

    /// The channels it acts on, in order.
    pub fn plan(&self) -> &[BatchTarget] {
        &self.plan
    }

    /// Why it stopped early, once it has.
    pub fn stopped(&self) -> Option<&BatchStop> {
        self.stopped.as_ref()
    }

    /// The next channel to act on, while a slot is free, the plan has more
    /// and the batch has not stopped. Answer it with
    /// [`handle_started`](Self::handle_started) or
    /// [`handle_refused`](Self::handle_refused) before asking again.
    pub fn poll_target(&mut self) -> Option<BatchTarget> {
        self.work += 1;
        if self.claimed.is_some()
            || self.stopped.is_some()
            || self.running.len() >= self.max_parallel
            || self.next >= self.plan.len()
        {
            return None;
        }
        let index = self.next;
        self.next += 1;
        self.claimed = Some(index);
        Some(self.plan[index].clone())
    }

    /// The target just handed out is under way as `action`.
    pub fn handle_started(&mut self, action: ActionId) {
        self.work += 1;
        if let Some(index) = self.claimed.take() {
            self.running.insert(action, index);
        }
    }

    /// The target just handed out was refused before anything was sent.
    pub fn handle_refused(&mut self, error: ActionError, now: Instant) {
        self.work += 1;
        let Some(index) = self.claimed.take() else { return };
        let t = &self.plan[index];
        let report = ActionReport::refused(None, t.server.clone(), t.channel, self.kind, Some(self.id), error, now);
        self.record(index, report);
    }

    /// An action ended. Reports of other batches' (or no batch's) actions
    /// are ignored.
    pub fn handle_finished(&mut self, report: ActionReport) {
        self.work += 1;
        let Some(index) = report.action.and_then(|a| self.running.remove(&a)) else { return };
        self.record(index, report);
    }

    fn record(&mut self, index: usize, report: ActionReport) {
        self.done += 1;
        if report.outcome.is_err() {
            self.failed += 1;
            if self.stopped.is_none() {
                if self.stop_on_failure {
                    self.stopped = Some(BatchStop::FirstFailure { target: self.plan[index].clone() });
                } else if self.failure_threshold.is_some_and(|t| self.failed >= t) {
                    self.stopped = Some(BatchStop::Threshold { failed: self.failed });
                }
            }
        }
        self.events.push_back(BatchProgress { last: Some(report.clone()), ..self.progress() });
        self.reports[index] = Some(report);
    }

    /// The next progress report, in the order actions ended.
    pub fn poll_event(&mut self) -> Option<BatchProgress> {
        self.events.pop_front()
    }

    /// Where the batch is now.
    pub fn progress(&self) -> BatchProgress {
        BatchProgress {
            batch: self.id,
            done: self.done,
            total: self.plan.len(),
            failed: self.failed,
            running: self.running.len(),
            last: None,
        }
    }

    /// True when nothing runs and nothing more will start.
    pub fn is_finished(&self) -> bool {
        self.running.is_empty() && self.claimed.is_none() && (self.next >= self.plan.len() || self.stopped.is_some())
    }

    /// The final report, once finished (`None` before, and after it was
    /// taken). Channels never started are reported skipped.
    pub fn take_report(&mut self, now: Instant) -> Option<BatchReport> {
        if !self.is_finished() || self.reported {
            return None;
        }
        self.reported = true;
        let mut reports = core::mem::take(&mut self.reports);
        if let Some(stop) = &self.stopped {
            for (t, slot) in self.plan.iter().zip(reports.iter_mut()).skip(self.next) {
                self.work += 1;
                let skipped = ActionError::Skipped { reason: stop.clone() };
                let report =
                    ActionReport::refused(None, t.server.clone(), t.channel, self.kind, Some(self.id), skipped, now);
                *slot = Some(report);
            }
        }
        self.work += reports.len() as u64;
        Some(BatchReport {
            batch: self.id,
            kind: self.kind,
            started_at: self.started_at,
            finished_at: now,
            reports: reports.into_iter().flatten().collect(),
            stopped_early: self.stopped.clone(),
        })
    }

    /// Steps taken so far (calls and entries visited): how tests prove a
    /// batch advances in time linear in its size, counting work, not time.
    #[doc(hidden)]
    pub fn work(&self) -> u64 {
        self.work
    }
}
