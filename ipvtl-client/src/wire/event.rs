//! Events.

use ipvtl_core::event::describe;
use ipvtl_core::Event;
use schemars::JsonSchema;
use serde::Serialize;

use super::{ms, ActionReportView, BatchProgressView, BatchReportView, HealView, Wall};

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
    /// A managed channel is not doing what it should.
    DriftStarted {
        /// The server.
        server_id: String,
        /// The channel.
        channel_id: u32,
        /// `running` or `idle`.
        desired: &'static str,
        /// What it was seen doing.
        observed: String,
        /// `zero_fps` or `uptime_frozen` when it looks stalled.
        stall: Option<&'static str>,
        /// When the drift was first seen.
        since_at: f64,
    },
    /// A drift is over (healed, no longer managed, or gone).
    DriftEnded {
        /// The server.
        server_id: String,
        /// The channel.
        channel_id: u32,
        /// When the drift began.
        since_at: f64,
        /// How long it lasted.
        lasted_ms: u64,
    },
    /// Dry run: the reconciler would do this heal now.
    HealPlanned(HealView),
    /// The reconciler wants this heal and waits for the owner's go-ahead
    /// (`Cluster::confirm_heal`; only when the owner asked to confirm heals).
    HealRequested {
        /// The heal.
        #[serde(flatten)]
        heal: HealView,
        /// What to confirm it by.
        ticket: u64,
    },
    /// The reconciler began a heal.
    HealStarted {
        /// The heal.
        #[serde(flatten)]
        heal: HealView,
        /// The action doing it.
        action_id: u64,
        /// Its number within the policy's window, from 1.
        attempt: u32,
    },
    /// A heal's action ended (its report is in `action_finished`).
    HealFinished {
        /// The server.
        server_id: String,
        /// The channel.
        channel_id: u32,
        /// The action.
        action_id: u64,
        /// `start`, `stop` or `restart`.
        action: &'static str,
        /// Whether it succeeded.
        ok: bool,
    },
    /// Still drifting after the policy's limit of heals: left alone.
    HealDegraded {
        /// The server.
        server_id: String,
        /// The channel.
        channel_id: u32,
        /// Heals tried within the window.
        attempts: u32,
        /// When the window has passed and healing may resume.
        until_at: f64,
    },
    /// The storm guard paused healing fleet-wide.
    HealingPaused {
        /// Managed channels drifting or on a server not online.
        troubled: usize,
        /// Managed channels.
        managed: usize,
    },
    /// The storm is over; healing resumes.
    HealingResumed {
        /// Managed channels drifting or on a server not online.
        troubled: usize,
        /// Managed channels.
        managed: usize,
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
            Event::DriftStarted { server, channel, desired, observed, stall, since } => EventBody::DriftStarted {
                server_id: server.to_string(),
                channel_id: channel.get(),
                desired: desired.as_str(),
                observed: observed.as_str().to_owned(),
                stall: stall.map(|s| s.as_str()),
                since_at: wall.at(*since),
            },
            Event::DriftEnded { server, channel, since, lasted } => EventBody::DriftEnded {
                server_id: server.to_string(),
                channel_id: channel.get(),
                since_at: wall.at(*since),
                lasted_ms: ms(*lasted),
            },
            Event::HealPlanned { heal } => EventBody::HealPlanned(HealView::new(heal, wall)),
            Event::HealRequested { heal, ticket } => {
                EventBody::HealRequested { heal: HealView::new(heal, wall), ticket: *ticket }
            }
            Event::HealStarted { heal, action, attempt } => {
                EventBody::HealStarted { heal: HealView::new(heal, wall), action_id: action.0, attempt: *attempt }
            }
            Event::HealFinished { server, channel, action, kind, ok } => EventBody::HealFinished {
                server_id: server.to_string(),
                channel_id: channel.get(),
                action_id: action.0,
                action: kind.as_str(),
                ok: *ok,
            },
            Event::HealDegraded { server, channel, attempts, until } => EventBody::HealDegraded {
                server_id: server.to_string(),
                channel_id: channel.get(),
                attempts: *attempts,
                until_at: wall.at(*until),
            },
            Event::HealingPaused { troubled, managed } => {
                EventBody::HealingPaused { troubled: *troubled, managed: *managed }
            }
            Event::HealingResumed { troubled, managed } => {
                EventBody::HealingResumed { troubled: *troubled, managed: *managed }
            }
            _ => EventBody::Other {},
        };
        EventView { body, message: describe(e) }
    }
}
