//! [`ClusterEvent`]: the core's `Event` as a uniffi enum.

use ipvtl_client::core as core_;

use crate::records::{ActionKind, ActionReport, BatchReport, Health, PollFailure};

/// Something that happened in the fleet.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum ClusterEvent {
    /// A server's health changed.
    HealthChanged {
        /// The server.
        server_id: String,
        /// Health before.
        from: Health,
        /// Health now.
        to: Health,
        /// The failure that caused it, when going offline or error.
        error: Option<PollFailure>,
    },
    /// A channel's state changed between two observations.
    ChannelStateChanged {
        /// The server.
        server_id: String,
        /// The channel.
        channel: u32,
        /// State before (`idle`, `running`, `stopping`, ...).
        from: String,
        /// State now.
        to: String,
    },
    /// A running channel stopped making progress.
    ChannelStalled {
        /// The server.
        server_id: String,
        /// The channel.
        channel: u32,
        /// `zero_fps` or `uptime_frozen`.
        reason: String,
    },
    /// Every running channel's uptime went backwards: the box restarted.
    ServerRebooted {
        /// The server.
        server_id: String,
    },
    /// An on-demand refresh finished.
    Refreshed {
        /// The server.
        server_id: String,
        /// The error, when the poll failed.
        error: Option<PollFailure>,
    },
    /// A channel action began.
    ActionStarted {
        /// The action.
        action_id: u64,
        /// The server.
        server_id: String,
        /// The channel.
        channel: u32,
        /// Start, stop or restart.
        kind: ActionKind,
        /// The batch it belongs to, if any.
        batch_id: Option<u64>,
    },
    /// A channel action finished, successfully or not.
    ActionFinished {
        /// The full report.
        report: ActionReport,
    },
    /// A batch made progress.
    BatchProgress {
        /// The batch.
        batch_id: u64,
        /// Actions finished.
        done: u32,
        /// Actions in the batch.
        total: u32,
        /// Actions that failed so far.
        failed: u32,
        /// Actions under way.
        running: u32,
    },
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
        duration_ms: u64,
        /// Polls that gave a good status.
        ok: u32,
        /// Polls that failed.
        failed: u32,
        /// Servers left out (backed off or still busy).
        skipped: u32,
    },
    /// An event this version of the bindings does not know yet.
    Other {
        /// Its kind (as in the dashboard's SSE `event:` lines).
        kind: String,
        /// A sentence for logs.
        description: String,
    },
}

fn n(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl From<&core_::Event> for ClusterEvent {
    fn from(e: &core_::Event) -> Self {
        use core_::Event as E;
        match e {
            E::HealthChanged { server, from, to, error } => ClusterEvent::HealthChanged {
                server_id: server.to_string(),
                from: (*from).into(),
                to: (*to).into(),
                error: error.as_ref().map(Into::into),
            },
            E::ChannelStateChanged { server, channel, from, to } => ClusterEvent::ChannelStateChanged {
                server_id: server.to_string(),
                channel: channel.get(),
                from: from.as_str().to_owned(),
                to: to.as_str().to_owned(),
            },
            E::ChannelStalled { server, channel, reason } => ClusterEvent::ChannelStalled {
                server_id: server.to_string(),
                channel: channel.get(),
                reason: match reason {
                    core_::StallReason::ZeroFps => "zero_fps".to_owned(),
                    core_::StallReason::UptimeFrozen => "uptime_frozen".to_owned(),
                    other => format!("{other:?}"),
                },
            },
            E::ServerRebooted { server } => ClusterEvent::ServerRebooted { server_id: server.to_string() },
            E::Refreshed { server, error } => {
                ClusterEvent::Refreshed { server_id: server.to_string(), error: error.as_ref().map(Into::into) }
            }
            E::ActionStarted { action, server, channel, kind, batch } => ClusterEvent::ActionStarted {
                action_id: action.0,
                server_id: server.to_string(),
                channel: channel.get(),
                kind: (*kind).into(),
                batch_id: batch.map(|b| b.0),
            },
            E::ActionFinished { report } => ClusterEvent::ActionFinished { report: report.into() },
            E::BatchProgress(p) => ClusterEvent::BatchProgress {
                batch_id: p.batch.0,
                done: n(p.done),
                total: n(p.total),
                failed: n(p.failed),
                running: n(p.running),
            },
            E::BatchFinished { report } => ClusterEvent::BatchFinished { report: report.into() },
            E::SweepFinished { sweep, duration, ok, failed, skipped } => ClusterEvent::SweepFinished {
                sweep: *sweep,
                duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                ok: n(*ok),
                failed: n(*failed),
                skipped: n(*skipped),
            },
            other => ClusterEvent::Other { kind: other.kind().to_owned(), description: core_::event::describe(other) },
        }
    }
}
