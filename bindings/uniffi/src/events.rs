//! [`ClusterEvent`]: the wire's `EventBody` as a uniffi enum, one variant
//! per kind, with the view's field names and values.

use ipvtl_client::core as core_;
use ipvtl_client::wire::{self, EventBody, Wall};
use ipvtl_client::SmolClock;

use crate::batch::{ActionReport, BatchReport};
use crate::reconcile::Heal;
use crate::records::count;

/// Something that happened in the fleet.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum ClusterEvent {
    /// A server's health changed.
    HealthChanged {
        /// The server.
        server_id: String,
        /// Health before: `unknown`, `online`, `offline` or `error`.
        from: String,
        /// Health now.
        to: String,
        /// The failure behind it, when going offline or error.
        error: Option<String>,
        /// The failure's kind (`connect`, `timeout`, `http`, ...).
        error_kind: Option<String>,
    },
    /// A channel's state changed between two observations.
    ChannelStateChanged {
        /// The server.
        server_id: String,
        /// The channel.
        channel_id: u32,
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
        channel_id: u32,
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
        /// Why the poll failed, if it did.
        error: Option<String>,
        /// The failure's kind.
        error_kind: Option<String>,
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
        action: String,
        /// The batch it belongs to, if any.
        batch_id: Option<u64>,
    },
    /// A channel action finished, successfully or not.
    ActionFinished {
        /// The full report.
        report: ActionReport,
    },
    /// A batch made progress (after each action).
    BatchProgress {
        /// The batch.
        batch_id: u64,
        /// Actions finished (including refused and skipped).
        done: u32,
        /// Actions in the plan.
        total: u32,
        /// Of those done, how many failed.
        failed: u32,
        /// Actions under way.
        running: u32,
        /// The action that just finished.
        last: Option<ActionReport>,
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
    /// A managed channel is not doing what it should.
    DriftStarted {
        /// The server.
        server_id: String,
        /// The channel.
        channel_id: u32,
        /// `running` or `idle`.
        desired: String,
        /// What it was seen doing.
        observed: String,
        /// `zero_fps` or `uptime_frozen` when it looks stalled.
        stall: Option<String>,
        /// When the drift was first seen (Unix seconds).
        since_at: f64,
    },
    /// A drift is over.
    DriftEnded {
        /// The server.
        server_id: String,
        /// The channel.
        channel_id: u32,
        /// When the drift began (Unix seconds).
        since_at: f64,
        /// How long it lasted.
        lasted_ms: u64,
    },
    /// Dry run: the reconciler would do this heal now.
    HealPlanned {
        /// The heal.
        heal: Heal,
    },
    /// The reconciler waits for the go-ahead for this heal (only when
    /// heals are confirmed by the owner).
    HealRequested {
        /// The heal.
        heal: Heal,
        /// What to confirm it by.
        ticket: u64,
    },
    /// The reconciler began a heal.
    HealStarted {
        /// The heal.
        heal: Heal,
        /// The action doing it.
        action_id: u64,
        /// Its number within the policy's window, from 1.
        attempt: u32,
    },
    /// A heal's action ended.
    HealFinished {
        /// The server.
        server_id: String,
        /// The channel.
        channel_id: u32,
        /// The action.
        action_id: u64,
        /// `start`, `stop` or `restart`.
        action: String,
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
        /// When healing may resume (Unix seconds).
        until_at: f64,
    },
    /// The storm guard paused healing fleet-wide.
    HealingPaused {
        /// Managed channels in trouble.
        troubled: u32,
        /// Managed channels.
        managed: u32,
    },
    /// The storm is over; healing resumes.
    HealingResumed {
        /// Managed channels in trouble.
        troubled: u32,
        /// Managed channels.
        managed: u32,
    },
    /// An event this version of the bindings has no variant for.
    Other {
        /// A sentence for logs.
        message: String,
    },
}

impl From<wire::EventView> for ClusterEvent {
    fn from(e: wire::EventView) -> Self {
        let text = |s: Option<&'static str>| s.map(str::to_owned);
        match e.body {
            EventBody::HealthChanged { server_id, from, to, error, error_kind } => ClusterEvent::HealthChanged {
                server_id,
                from: from.to_owned(),
                to: to.to_owned(),
                error,
                error_kind: text(error_kind),
            },
            EventBody::ChannelStateChanged { server_id, channel_id, from, to } => {
                ClusterEvent::ChannelStateChanged { server_id, channel_id, from, to }
            }
            EventBody::ChannelStalled { server_id, channel_id, reason } => {
                ClusterEvent::ChannelStalled { server_id, channel_id, reason: reason.to_owned() }
            }
            EventBody::ServerRebooted { server_id } => ClusterEvent::ServerRebooted { server_id },
            EventBody::Refreshed { server_id, error, error_kind } => {
                ClusterEvent::Refreshed { server_id, error, error_kind: text(error_kind) }
            }
            EventBody::ActionStarted { action_id, server_id, channel_id, action, batch_id } => {
                ClusterEvent::ActionStarted { action_id, server_id, channel_id, action: action.to_owned(), batch_id }
            }
            EventBody::ActionFinished(report) => ClusterEvent::ActionFinished { report: report.into() },
            EventBody::BatchProgress(p) => ClusterEvent::BatchProgress {
                batch_id: p.batch_id,
                done: count(p.done),
                total: count(p.total),
                failed: count(p.failed),
                running: count(p.running),
                last: p.last.map(Into::into),
            },
            EventBody::BatchFinished(report) => ClusterEvent::BatchFinished { report: report.into() },
            EventBody::SweepFinished { sweep, duration_ms, ok, failed, skipped } => ClusterEvent::SweepFinished {
                sweep,
                duration_ms,
                ok: count(ok),
                failed: count(failed),
                skipped: count(skipped),
            },
            EventBody::DriftStarted { server_id, channel_id, desired, observed, stall, since_at } => {
                ClusterEvent::DriftStarted {
                    server_id,
                    channel_id,
                    desired: desired.to_owned(),
                    observed,
                    stall: text(stall),
                    since_at,
                }
            }
            EventBody::DriftEnded { server_id, channel_id, since_at, lasted_ms } => {
                ClusterEvent::DriftEnded { server_id, channel_id, since_at, lasted_ms }
            }
            EventBody::HealPlanned(heal) => ClusterEvent::HealPlanned { heal: heal.into() },
            EventBody::HealRequested { heal, ticket } => ClusterEvent::HealRequested { heal: heal.into(), ticket },
            EventBody::HealStarted { heal, action_id, attempt } => {
                ClusterEvent::HealStarted { heal: heal.into(), action_id, attempt }
            }
            EventBody::HealFinished { server_id, channel_id, action_id, action, ok } => {
                ClusterEvent::HealFinished { server_id, channel_id, action_id, action: action.to_owned(), ok }
            }
            EventBody::HealDegraded { server_id, channel_id, attempts, until_at } => {
                ClusterEvent::HealDegraded { server_id, channel_id, attempts, until_at }
            }
            EventBody::HealingPaused { troubled, managed } => {
                ClusterEvent::HealingPaused { troubled: count(troubled), managed: count(managed) }
            }
            EventBody::HealingResumed { troubled, managed } => {
                ClusterEvent::HealingResumed { troubled: count(troubled), managed: count(managed) }
            }
            // `Other`, and any kind the views add later.
            _ => ClusterEvent::Other { message: e.message },
        }
    }
}

impl ClusterEvent {
    /// The event of a core event, its times read on `clock`.
    pub fn new(e: &core_::Event, clock: &SmolClock) -> Self {
        wire::EventView::new(e, Wall(clock)).into()
    }
}
