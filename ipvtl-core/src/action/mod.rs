//! The sans-IO channel action: start, stop, or a verified restart.
//!
//! A restart is `stop` → watch the channel until `idle` (bounded by
//! `stop_timeout`) → `start` → watch until `running` (bounded by
//! `start_timeout`). A failed stop aborts without starting. When the
//! server's channel count is not known yet, a `/status` probe comes first,
//! and a channel beyond the count is refused before any command is sent.
//!
//! An action has at most one request outstanding; drive it with
//! [`Action::poll_request`], [`Action::handle_response`],
//! [`Action::handle_timeout`] and [`Action::poll_timeout`] until
//! [`Action::take_report`] yields the report.

mod report;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::ids::{ActionId, BatchId, ChannelId};
use crate::model::{ChannelState, PollError, ServerConfig, Status};
use crate::poller::classify;
use crate::time::Instant;
use crate::transport::{Request, RequestKind, Response, TransportError};

pub use report::{ActionError, ActionReport, PhaseReport};

/// What to do to a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ActionKind {
    /// `start`, then wait until running.
    Start,
    /// `stop`, then wait until idle.
    Stop,
    /// `stop`, wait until idle, `start`, wait until running.
    Restart,
}

impl ActionKind {
    /// `start`, `stop` or `restart`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Start => "start",
            ActionKind::Stop => "stop",
            ActionKind::Restart => "restart",
        }
    }

    /// Parses `start`, `stop` or `restart`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "start" => Some(ActionKind::Start),
            "stop" => Some(ActionKind::Stop),
            "restart" => Some(ActionKind::Restart),
            _ => None,
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bounds of an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionConfig {
    /// From sending `stop` until the channel must be idle.
    pub stop_timeout: Duration,
    /// From sending `start` until the channel must be running.
    pub start_timeout: Duration,
    /// Time between `/status` checks while watching.
    pub watch_interval: Duration,
    /// Timeout of each single request.
    pub request_timeout: Duration,
}

impl Default for ActionConfig {
    fn default() -> Self {
        ActionConfig {
            stop_timeout: Duration::from_secs(30),
            start_timeout: Duration::from_secs(30),
            watch_interval: Duration::from_millis(250),
            request_timeout: Duration::from_secs(3),
        }
    }
}

/// A step of an action, as timed in its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Reading `/status` to learn the channel count.
    Probe,
    /// Sending `stop`.
    Stop,
    /// Watching until the channel is idle.
    WaitIdle,
    /// Sending `start`.
    Start,
    /// Watching until the channel is running.
    WaitRunning,
}

impl Phase {
    /// Snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Probe => "probe",
            Phase::Stop => "stop",
            Phase::WaitIdle => "wait_idle",
            Phase::Start => "start",
            Phase::WaitRunning => "wait_running",
        }
    }

    fn target(self) -> Option<ChannelState> {
        match self {
            Phase::WaitIdle => Some(ChannelState::Idle),
            Phase::WaitRunning => Some(ChannelState::Running),
            _ => None,
        }
    }
}

/// One channel action in progress. See the [module docs](self).
#[derive(Debug)]
pub struct Action {
    id: ActionId,
    server: Arc<ServerConfig>,
    channel: ChannelId,
    kind: ActionKind,
    batch: Option<BatchId>,
    config: ActionConfig,
    phase: Phase,
    started_at: Instant,
    phase_started_at: Instant,
    /// End of the stop or start budget.
    deadline: Instant,
    next_check: Instant,
    outstanding: Option<RequestKind>,
    phases: Vec<PhaseReport>,
    last_state: Option<ChannelState>,
    last_error: Option<PollError>,
    report: Option<ActionReport>,
    finished: bool,
}

impl Action {
    /// Begins an action. `known_channels` is the server's last known channel
    /// count: a channel beyond it is refused here, before any request; with
    /// `None` the action probes `/status` first.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: ActionId,
        server: Arc<ServerConfig>,
        channel: ChannelId,
        kind: ActionKind,
        batch: Option<BatchId>,
        known_channels: Option<usize>,
        config: ActionConfig,
        now: Instant,
    ) -> Result<Self, ActionError> {
        if let Some(count) = known_channels {
            check_channel(&server, channel, count)?;
        }
        let phase = match (known_channels, kind) {
            (None, _) => Phase::Probe,
            (Some(_), ActionKind::Start) => Phase::Start,
            (Some(_), _) => Phase::Stop,
        };
        let mut action = Action {
            id,
            server,
            channel,
            kind,
            batch,
            config,
            phase,
            started_at: now,
            phase_started_at: now,
            deadline: now,
            next_check: now,
            outstanding: None,
            phases: Vec::new(),
            last_state: None,
            last_error: None,
            report: None,
            finished: false,
        };
        action.deadline = action.budget_end(phase, now);
        Ok(action)
    }

    /// The action's id.
    pub fn id(&self) -> ActionId {
        self.id
    }

    /// The server.
    pub fn server(&self) -> &Arc<ServerConfig> {
        &self.server
    }

    /// The channel.
    pub fn channel(&self) -> ChannelId {
        self.channel
    }

    /// Start, stop or restart.
    pub fn kind(&self) -> ActionKind {
        self.kind
    }

    /// The batch it belongs to.
    pub fn batch(&self) -> Option<BatchId> {
        self.batch
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True once the report is ready (or taken).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn budget_end(&self, phase: Phase, now: Instant) -> Instant {
        match phase {
            Phase::Probe => now + self.config.request_timeout,
            Phase::Stop | Phase::WaitIdle => now + self.config.stop_timeout,
            Phase::Start | Phase::WaitRunning => now + self.config.start_timeout,
        }
    }

    /// The next request to send, if one is due. At most one is outstanding.
    pub fn poll_request(&mut self, now: Instant) -> Option<Request> {
        if self.finished || self.outstanding.is_some() {
            return None;
        }
        let kind = match self.phase {
            Phase::Stop => RequestKind::Stop(self.channel),
            Phase::Start => RequestKind::Start(self.channel),
            Phase::Probe => RequestKind::Status,
            Phase::WaitIdle | Phase::WaitRunning if now >= self.next_check => RequestKind::Status,
            Phase::WaitIdle | Phase::WaitRunning => return None,
        };
        self.outstanding = Some(kind);
        let remaining = self.deadline.saturating_since(now).max(Duration::from_millis(1));
        Some(Request { kind, timeout: self.config.request_timeout.min(remaining) })
    }

    /// Feeds back the answer to the outstanding request. Returns the status
    /// it carried, if it was a good `/status` answer, so the caller can
    /// share it with the poller.
    pub fn handle_response(&mut self, result: Result<Response, TransportError>, now: Instant) -> Option<Status> {
        let kind = self.outstanding.take()?;
        if self.finished {
            return None;
        }
        match kind {
            RequestKind::Stop(_) | RequestKind::Start(_) => {
                let failure = match result {
                    Ok(resp) if resp.is_success() => None,
                    Ok(resp) => Some(PollError::Http { code: resp.code }),
                    Err(e) => Some(e.to_poll_error(self.config.request_timeout)),
                };
                match (failure, self.phase) {
                    (None, Phase::Stop) => self.advance(Phase::WaitIdle, now),
                    (None, _) => self.advance(Phase::WaitRunning, now),
                    (Some(cause), Phase::Stop) => self.fail(ActionError::StopFailed { cause }, now),
                    (Some(cause), _) => self.fail(ActionError::StartFailed { cause }, now),
                }
                None
            }
            _ => {
                let status = match classify(result, self.config.request_timeout, None) {
                    Ok(status) => status,
                    Err(e) => {
                        if self.phase == Phase::Probe {
                            self.fail(ActionError::ProbeFailed { cause: e }, now);
                        } else {
                            self.last_error = Some(e);
                            self.next_check = now + self.config.watch_interval;
                        }
                        return None;
                    }
                };
                self.observe(&status, now);
                Some(status)
            }
        }
    }

    fn observe(&mut self, status: &Status, now: Instant) {
        let Some(channel) = status.channel(self.channel) else {
            let err = ActionError::ChannelNotFound {
                server: self.server.id.clone(),
                channel: self.channel,
                count: status.channels.len(),
            };
            self.fail(err, now);
            return;
        };
        self.last_state = Some(channel.state.clone());
        self.last_error = None;
        match self.phase {
            Phase::Probe if self.kind == ActionKind::Start => self.advance(Phase::Start, now),
            Phase::Probe => self.advance(Phase::Stop, now),
            phase if phase.target().as_ref() == Some(&channel.state) => match (phase, self.kind) {
                (Phase::WaitIdle, ActionKind::Restart) => self.advance(Phase::Start, now),
                _ => self.succeed(now),
            },
            _ => self.next_check = now + self.config.watch_interval,
        }
    }

    /// Fails the action if its current budget ran out. Safe to call early.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.finished || now < self.deadline {
            return;
        }
        let after = now.saturating_since(self.phase_started_at);
        let last_state = self.last_state.clone();
        let last_error = self.last_error.clone();
        let no_answer = PollError::Timeout { after_ms: after.as_millis() as u64 };
        let err = match self.phase {
            Phase::Probe => ActionError::ProbeFailed { cause: no_answer },
            Phase::Stop => ActionError::StopFailed { cause: no_answer },
            Phase::Start => ActionError::StartFailed { cause: no_answer },
            Phase::WaitIdle => ActionError::StopTimeout { after, last_state, last_error },
            Phase::WaitRunning => ActionError::StartTimeout { after, last_state, last_error },
        };
        self.outstanding = None;
        self.fail(err, now);
    }

    /// When [`Action::handle_timeout`] or [`Action::poll_request`] next has
    /// work; `None` once finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        let watching = matches!(self.phase, Phase::WaitIdle | Phase::WaitRunning) && self.outstanding.is_none();
        Some(if watching { self.deadline.min(self.next_check) } else { self.deadline })
    }

    /// The final report, once; `None` while running.
    pub fn take_report(&mut self) -> Option<ActionReport> {
        self.report.take()
    }

    /// A copy of the report, once finished.
    pub fn report(&self) -> Option<&ActionReport> {
        self.report.as_ref()
    }

    fn close_phase(&mut self, now: Instant) {
        self.phases.push(PhaseReport { phase: self.phase, duration: now.saturating_since(self.phase_started_at) });
        self.phase_started_at = now;
    }

    fn advance(&mut self, next: Phase, now: Instant) {
        self.close_phase(now);
        let new_budget = matches!((self.phase, next), (Phase::Probe, _) | (Phase::WaitIdle, Phase::Start));
        self.phase = next;
        if new_budget {
            self.deadline = self.budget_end(next, now);
        }
        self.next_check = now;
    }

    fn succeed(&mut self, now: Instant) {
        self.close_phase(now);
        self.finish(Ok(()), now);
    }

    fn fail(&mut self, error: ActionError, now: Instant) {
        self.close_phase(now);
        self.finish(Err(error), now);
    }

    fn finish(&mut self, outcome: Result<(), ActionError>, now: Instant) {
        self.finished = true;
        self.report = Some(ActionReport {
            action: Some(self.id),
            server: self.server.id.clone(),
            channel: self.channel,
            kind: self.kind,
            batch: self.batch,
            started_at: self.started_at,
            finished_at: now,
            phases: core::mem::take(&mut self.phases),
            final_state: self.last_state.clone(),
            outcome,
        });
    }
}

/// Refuses a channel beyond `count`.
pub fn check_channel(server: &ServerConfig, channel: ChannelId, count: usize) -> Result<(), ActionError> {
    if channel.index() >= count {
        return Err(ActionError::ChannelNotFound { server: server.id.clone(), channel, count });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
