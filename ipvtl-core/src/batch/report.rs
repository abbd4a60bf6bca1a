//! What a batch tells along the way and at its end.

use alloc::vec::Vec;
use core::fmt;

use super::BatchTarget;
use crate::action::{ActionError, ActionKind, ActionReport};
use crate::ids::BatchId;
use crate::time::Instant;

/// Why a batch stopped starting actions before the end of its plan.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchStop {
    /// `stop_on_failure` was set and this action failed.
    FirstFailure {
        /// The channel whose action failed.
        target: BatchTarget,
    },
    /// `failure_threshold` actions failed.
    Threshold {
        /// The threshold reached.
        failed: usize,
    },
}

impl BatchStop {
    /// `first_failure` or `threshold`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BatchStop::FirstFailure { .. } => "first_failure",
            BatchStop::Threshold { .. } => "threshold",
        }
    }
}

impl fmt::Display for BatchStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchStop::FirstFailure { target } => {
                write!(f, "stopped on the first failure (channel {} of {})", target.channel, target.server)
            }
            BatchStop::Threshold { failed } => write!(f, "stopped after {failed} failed actions, the threshold"),
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
    pub stopped_early: Option<BatchStop>,
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
