//! What an action ends with.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use super::{ActionKind, Phase};
use crate::batch::BatchStop;
use crate::ids::{ActionId, BatchId, ChannelId, ServerId};
use crate::model::{ChannelState, PollError};
use crate::time::Instant;

/// Why an action was refused or failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionError {
    /// No server with that id.
    ServerNotFound {
        /// The id asked for.
        server: ServerId,
    },
    /// The channel number is beyond the server's channels.
    ChannelNotFound {
        /// The server.
        server: ServerId,
        /// The channel asked for.
        channel: ChannelId,
        /// How many channels the server has.
        count: usize,
    },
    /// Another action on the same channel is under way.
    Busy {
        /// The server.
        server: ServerId,
        /// The channel.
        channel: ChannelId,
        /// The action holding it.
        holder: ActionId,
    },
    /// The server is in maintenance: no actions.
    Maintenance {
        /// The server.
        server: ServerId,
    },
    /// The `/status` probe that learns the channel count failed.
    ProbeFailed {
        /// Why: unreachable, timed out, HTTP error or a bad body.
        cause: PollError,
    },
    /// `stop` was not accepted; nothing was started.
    StopFailed {
        /// Why: unreachable, timed out or an HTTP error status.
        cause: PollError,
    },
    /// `start` was not accepted.
    StartFailed {
        /// Why: unreachable, timed out or an HTTP error status.
        cause: PollError,
    },
    /// The channel did not become idle within `stop_timeout`; not started.
    StopTimeout {
        /// How long it was watched.
        after: Duration,
        /// The last state seen.
        last_state: Option<ChannelState>,
        /// The last watch error, if the last check failed.
        last_error: Option<PollError>,
    },
    /// The channel did not become running within `start_timeout`.
    StartTimeout {
        /// How long it was watched.
        after: Duration,
        /// The last state seen.
        last_state: Option<ChannelState>,
        /// The last watch error, if the last check failed.
        last_error: Option<PollError>,
    },
    /// Not run: the batch it belonged to stopped first.
    Skipped {
        /// Why the batch stopped.
        reason: BatchStop,
    },
}

impl ActionError {
    /// A short machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ActionError::ServerNotFound { .. } => "server_not_found",
            ActionError::ChannelNotFound { .. } => "channel_not_found",
            ActionError::Busy { .. } => "busy",
            ActionError::Maintenance { .. } => "maintenance",
            ActionError::ProbeFailed { .. } => "probe_failed",
            ActionError::StopFailed { .. } => "stop_failed",
            ActionError::StartFailed { .. } => "start_failed",
            ActionError::StopTimeout { .. } => "stop_timeout",
            ActionError::StartTimeout { .. } => "start_timeout",
            ActionError::Skipped { .. } => "skipped",
        }
    }

    /// The request failure behind this error, if one is: the cause of a
    /// failed probe, stop or start, or the last failed check of a watch
    /// that timed out. Tells an unreachable server
    /// ([`PollError::is_unreachable`]) from one that answered badly.
    pub fn cause(&self) -> Option<&PollError> {
        match self {
            ActionError::ProbeFailed { cause }
            | ActionError::StopFailed { cause }
            | ActionError::StartFailed { cause } => Some(cause),
            ActionError::StopTimeout { last_error, .. } | ActionError::StartTimeout { last_error, .. } => {
                last_error.as_ref()
            }
            _ => None,
        }
    }

    /// True when refused before anything was sent.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ActionError::ServerNotFound { .. }
                | ActionError::ChannelNotFound { .. }
                | ActionError::Busy { .. }
                | ActionError::Maintenance { .. }
                | ActionError::Skipped { .. }
        )
    }
}

fn last_seen(f: &mut fmt::Formatter<'_>, state: &Option<ChannelState>, error: &Option<PollError>) -> fmt::Result {
    match state {
        Some(s) => write!(f, "; last seen {s}")?,
        None => f.write_str("; state never seen")?,
    }
    if let Some(e) = error {
        write!(f, "; last check failed: {e}")?;
    }
    Ok(())
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionError::ServerNotFound { server } => write!(f, "no server with id {server:?}"),
            ActionError::ChannelNotFound { server, channel, count } => {
                write!(f, "server {server} has no channel {channel} (it has {count})")
            }
            ActionError::Busy { server, channel, holder } => {
                write!(f, "channel {channel} of {server} is busy with action {holder}")
            }
            ActionError::Maintenance { server } => write!(f, "server {server} is in maintenance"),
            ActionError::ProbeFailed { cause } => write!(f, "could not read the channel list: {cause}"),
            ActionError::StopFailed { cause } => write!(f, "stop failed: {cause}; channel not started"),
            ActionError::StartFailed { cause } => write!(f, "start failed: {cause}"),
            ActionError::StopTimeout { after, last_state, last_error } => {
                write!(f, "channel not idle after {} ms", after.as_millis())?;
                last_seen(f, last_state, last_error)?;
                f.write_str("; not started")
            }
            ActionError::StartTimeout { after, last_state, last_error } => {
                write!(f, "channel not running after {} ms", after.as_millis())?;
                last_seen(f, last_state, last_error)
            }
            ActionError::Skipped { reason } => write!(f, "skipped: {reason}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ActionError {}

/// How long one phase took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseReport {
    /// The phase.
    pub phase: Phase,
    /// Its duration.
    pub duration: Duration,
}

/// How an action ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionReport {
    /// The action; `None` when it was refused or skipped before it began.
    pub action: Option<ActionId>,
    /// The server.
    pub server: ServerId,
    /// The channel.
    pub channel: ChannelId,
    /// Start, stop or restart.
    pub kind: ActionKind,
    /// The batch it belonged to.
    pub batch: Option<BatchId>,
    /// When it began.
    pub started_at: Instant,
    /// When it ended.
    pub finished_at: Instant,
    /// Each phase it went through, in order, with its duration.
    pub phases: Vec<PhaseReport>,
    /// The channel state last seen.
    pub final_state: Option<ChannelState>,
    /// Success, or why not.
    pub outcome: Result<(), ActionError>,
}

impl ActionReport {
    /// True on success.
    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The request failure behind a failed outcome, if one is (see
    /// [`ActionError::cause`]).
    pub fn cause(&self) -> Option<&PollError> {
        self.outcome.as_ref().err().and_then(ActionError::cause)
    }

    /// From start to end.
    pub fn duration(&self) -> Duration {
        self.finished_at.saturating_since(self.started_at)
    }

    /// Total time spent in `phase`.
    pub fn phase_duration(&self, phase: Phase) -> Option<Duration> {
        let mut found = None;
        for p in self.phases.iter().filter(|p| p.phase == phase) {
            found = Some(found.unwrap_or(Duration::ZERO) + p.duration);
        }
        found
    }

    /// A report for an action refused before it began.
    pub fn refused(
        action: Option<ActionId>,
        server: ServerId,
        channel: ChannelId,
        kind: ActionKind,
        batch: Option<BatchId>,
        error: ActionError,
        now: Instant,
    ) -> Self {
        ActionReport {
            action,
            server,
            channel,
            kind,
            batch,
            started_at: now,
            finished_at: now,
            phases: Vec::new(),
            final_state: None,
            outcome: Err(error),
        }
    }

    /// One line for humans: what, where, outcome, timings.
    pub fn summary(&self) -> String {
        let timings: Vec<String> =
            self.phases.iter().map(|p| format!("{} {} ms", p.phase.as_str(), p.duration.as_millis())).collect();
        let outcome = match &self.outcome {
            Ok(()) => String::from("ok"),
            Err(e) => format!("failed: {e}"),
        };
        format!(
            "{} {} channel {}: {} in {} ms [{}]",
            self.kind,
            self.server,
            self.channel,
            outcome,
            self.duration().as_millis(),
            timings.join(", ")
        )
    }
}
