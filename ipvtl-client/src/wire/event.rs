//! Events.

use ipvtl_core::event::describe;
use ipvtl_core::Event;
use schemars::JsonSchema;
use serde::Serialize;

use super::{ms, ActionReportView, BatchProgressView, BatchReportView, Wall};

/// What happened, tagged by `kind` (the same name as SSE's `event:` line).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventBody {
    /// A server's health changed.
    HealthChanged {
        /// The server.
        server_id: String,
        /// Health before.
        from: &'static str,
        /// Health now.
        to: &'static str,
        /// The failure behind it, when going offline or error.
        error: Option<String>,
        /// The failure's kind.
        error_kind: Option<&'static str>,
    },
    /// A channel's state changed between two observations.
    ChannelStateChanged {
        /// The server.
        server_id: String,
        /// The channel.
        channel_id: u32,
        /// State before.
        from: String,
        /// State now.
        to: String,
    },
    /// A running channel stopped making progress.
    ChannelStalled {
        /// The server.
        server_id: String,
        /// The channel.
        channel_id: u32,
        /// `zero_fps` or `uptime_frozen`.
        reason: &'static str,
    },
    /// Every running channel's uptime went back: the box restarted.
    ServerRebooted {
        /// The server.
        server_id: String,
    },
    /// An on-demand refresh finished.
    Refreshed {
        /// The server.
        server_id: String,
        /// Why the poll failed, if it did.
        error: Option<String>,
        /// The failure's kind.
        error_kind: Option<&'static str>,
    },
    /// A channel action began.
    ActionStarted {
        /// The action.
        action_id: u64,
        /// The server.
        server_id: String,
        /// The channel.
        channel_id: u32,
        /// `start`, `stop` or `restart`.
        action: &'static str,
        /// Its batch.
        batch_id: Option<u64>,
    },
    /// A channel action finished: its report.
    ActionFinished(ActionReportView),
    /// A batch made progress.
    BatchProgress(BatchProgressView),
    /// A batch finished: its report.
    BatchFinished(BatchReportView),
    /// Every poll of a sweep finished.
    SweepFinished {
        /// Sweep number, from 1.
        sweep: u64,
        /// From sweep start to its last answer.
        duration_ms: u64,
        /// Polls that gave a good status.
        ok: usize,
        /// Polls that failed.
        failed: usize,
        /// Servers left out (backed off or still busy).
        skipped: usize,
    },
    /// An event this version has no view for.
    Other {},
}

/// An event: its body, tagged by `kind`, and a sentence for logs.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct EventView {
    /// What happened.
    #[serde(flatten)]
    pub body: EventBody,
    /// A sentence for logs.
    pub message: String,
}

impl EventView {
    /// The view of a core event.
    pub fn new(e: &Event, wall: Wall<'_>) -> Self {
        let error =
            |e: &Option<ipvtl_core::PollError>| (e.as_ref().map(|e| e.to_string()), e.as_ref().map(|e| e.kind()));
        let body = match e {
            Event::HealthChanged { server, from, to, error: err } => {
                let (error, error_kind) = error(err);
                EventBody::HealthChanged {
                    server_id: server.to_string(),
                    from: from.as_str(),
                    to: to.as_str(),
                    error,
                    error_kind,
                }
            }
            Event::ChannelStateChanged { server, channel, from, to } => EventBody::ChannelStateChanged {
                server_id: server.to_string(),
                channel_id: channel.get(),
                from: from.as_str().to_owned(),
                to: to.as_str().to_owned(),
            },
            Event::ChannelStalled { server, channel, reason } => EventBody::ChannelStalled {
                server_id: server.to_string(),
                channel_id: channel.get(),
                reason: reason.as_str(),
            },
            Event::ServerRebooted { server } => EventBody::ServerRebooted { server_id: server.to_string() },
            Event::Refreshed { server, error: err } => {
                let (error, error_kind) = error(err);
                EventBody::Refreshed { server_id: server.to_string(), error, error_kind }
            }
            Event::ActionStarted { action, server, channel, kind, batch } => EventBody::ActionStarted {
                action_id: action.0,
                server_id: server.to_string(),
                channel_id: channel.get(),
                action: kind.as_str(),
                batch_id: batch.map(|b| b.0),
            },
            Event::ActionFinished { report } => EventBody::ActionFinished(ActionReportView::new(report, wall)),
            Event::BatchProgress(p) => EventBody::BatchProgress(BatchProgressView::new(p, wall)),
            Event::BatchFinished { report } => EventBody::BatchFinished(BatchReportView::new(report, wall)),
            Event::SweepFinished { sweep, duration, ok, failed, skipped } => EventBody::SweepFinished {
                sweep: *sweep,
                duration_ms: ms(*duration),
                ok: *ok,
                failed: *failed,
                skipped: *skipped,
            },
            _ => EventBody::Other {},
        };
        EventView { body, message: describe(e) }
    }
}
