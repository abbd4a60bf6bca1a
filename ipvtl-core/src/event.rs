//! What the machines tell the outside world.

use alloc::string::String;
use core::time::Duration;

use crate::action::{ActionKind, ActionReport};
use crate::batch::{BatchProgress, BatchReport};
use crate::ids::{ActionId, BatchId, ChannelId, ServerId};
use crate::model::{ChannelState, Health, PollError};

/// Why a running channel looks stalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum StallReason {
    /// Running, but reporting 0 fps.
    ZeroFps,
    /// Running, but its uptime did not advance between two polls.
    UptimeFrozen,
}

impl StallReason {
    /// `zero_fps` or `uptime_frozen`.
    pub fn as_str(self) -> &'static str {
        match self {
            StallReason::ZeroFps => "zero_fps",
            StallReason::UptimeFrozen => "uptime_frozen",
        }
    }
}

impl core::fmt::Display for StallReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened in the fleet.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A server's health changed (online, offline, error).
    HealthChanged {
        /// The server.
        server: ServerId,
        /// Health before.
        from: Health,
        /// Health now.
        to: Health,
        /// The failure that caused it, when going offline or error.
        error: Option<PollError>,
    },
    /// A channel's state changed between two observations.
    ChannelStateChanged {
        /// The server.
        server: ServerId,
        /// The channel.
        channel: ChannelId,
        /// State before.
        from: ChannelState,
        /// State now.
        to: ChannelState,
    },
    /// A running channel stopped making progress.
    ChannelStalled {
        /// The server.
        server: ServerId,
        /// The channel.
        channel: ChannelId,
        /// What gave it away.
        reason: StallReason,
    },
    /// Every running channel's uptime went backwards: the box restarted.
    ServerRebooted {
        /// The server.
        server: ServerId,
    },
    /// An on-demand refresh finished (successfully or not).
    Refreshed {
        /// The server.
        server: ServerId,
        /// The error, when the poll failed.
        error: Option<PollError>,
    },
    /// A channel action began.
    ActionStarted {
        /// The action.
        action: ActionId,
        /// The server.
        server: ServerId,
        /// The channel.
        channel: ChannelId,
        /// Start, stop or restart.
        kind: ActionKind,
        /// The batch it belongs to, if any.
        batch: Option<BatchId>,
    },
    /// A channel action finished, successfully or not.
    ActionFinished {
        /// The full report.
        report: ActionReport,
    },
    /// A batch made progress.
    BatchProgress(BatchProgress),
    /// A batch finished.
    BatchFinished {
        /// The full report.
        report: BatchReport,
    },
    /// Every poll of a sweep has finished.
    SweepFinished {
        /// Sweep number, from 1.
        sweep: u64,
        /// From sweep start to its last answer.
        duration: Duration,
        /// Polls that gave a good status.
        ok: usize,
        /// Polls that failed.
        failed: usize,
        /// Servers left out because they were backed off or still busy.
        skipped: usize,
    },
}

impl Event {
    /// A short name for the event kind (`health_changed`, ...), as used in
    /// SSE `event:` lines and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::HealthChanged { .. } => "health_changed",
            Event::ChannelStateChanged { .. } => "channel_state_changed",
            Event::ChannelStalled { .. } => "channel_stalled",
            Event::ServerRebooted { .. } => "server_rebooted",
            Event::Refreshed { .. } => "refreshed",
            Event::ActionStarted { .. } => "action_started",
            Event::ActionFinished { .. } => "action_finished",
            Event::BatchProgress(_) => "batch_progress",
            Event::BatchFinished { .. } => "batch_finished",
            Event::SweepFinished { .. } => "sweep_finished",
        }
    }

    /// The server the event is about, if it is about one.
    pub fn server(&self) -> Option<&ServerId> {
        match self {
            Event::HealthChanged { server, .. }
            | Event::ChannelStateChanged { server, .. }
            | Event::ChannelStalled { server, .. }
            | Event::ServerRebooted { server }
            | Event::Refreshed { server, .. }
            | Event::ActionStarted { server, .. } => Some(server),
            Event::ActionFinished { report } => Some(&report.server),
            _ => None,
        }
    }
}

/// A human sentence for an event, for logs.
pub fn describe(event: &Event) -> String {
    use alloc::format;
    match event {
        Event::HealthChanged { server, from, to, error: Some(e) } => format!("{server}: {from} -> {to} ({e})"),
        Event::HealthChanged { server, from, to, error: None } => format!("{server}: {from} -> {to}"),
        Event::ChannelStateChanged { server, channel, from, to } => {
            format!("{server} channel {channel}: {from} -> {to}")
        }
        Event::ChannelStalled { server, channel, reason } => format!("{server} channel {channel} stalled ({reason})"),
        Event::ServerRebooted { server } => format!("{server} rebooted"),
        Event::Refreshed { server, error: None } => format!("{server} refreshed"),
        Event::Refreshed { server, error: Some(e) } => format!("{server} refresh failed: {e}"),
        Event::ActionStarted { action, server, channel, kind, .. } => {
            format!("action {action}: {kind} {server} channel {channel} started")
        }
        Event::ActionFinished { report } => match report.action {
            Some(id) => format!("action {id}: {}", report.summary()),
            None => report.summary(),
        },
        Event::BatchProgress(p) => format!("batch {}: {}/{} done, {} failed", p.batch, p.done, p.total, p.failed),
        Event::BatchFinished { report } => {
            format!(
                "batch {} finished: {} ok, {} failed, {} skipped",
                report.batch,
                report.ok(),
                report.failed(),
                report.skipped()
            )
        }
        Event::SweepFinished { sweep, duration, ok, failed, skipped } => {
            format!("sweep {sweep} took {} ms: {ok} ok, {failed} failed, {skipped} skipped", duration.as_millis())
        }
    }
}
