//! What the machines tell the outside world.

use alloc::string::String;
use core::time::Duration;

use crate::action::{ActionKind, ActionReport};
use crate::batch::{BatchProgress, BatchReport};
use crate::ids::{ActionId, BatchId, ChannelId, ServerId};
use crate::model::{ChannelState, Health, PollError};
use crate::reconcile::{Desired, Heal};
use crate::time::Instant;

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
    /// A managed channel is not doing what it should (reconciler).
    DriftStarted {
        /// The server.
        server: ServerId,
        /// The channel.
        channel: ChannelId,
        /// What it should be doing.
        desired: Desired,
        /// What it was seen doing.
        observed: ChannelState,
        /// Why it looks stalled, when it does.
        stall: Option<StallReason>,
        /// When the drift was first seen.
        since: Instant,
    },
    /// A drift is over: the channel does what it should, or is no longer
    /// managed, or is gone.
    DriftEnded {
        /// The server.
        server: ServerId,
        /// The channel.
        channel: ChannelId,
        /// When the drift began.
        since: Instant,
        /// How long it lasted.
        lasted: Duration,
    },
    /// Dry run: the reconciler would do this heal now.
    HealPlanned {
        /// The heal.
        heal: Heal,
    },
    /// The reconciler wants to do this heal and waits for the owner's
    /// go-ahead ([`crate::Fleet::confirm_heal`]), when the fleet was told
    /// to ask ([`crate::Fleet::set_confirm_heals`]): an owner that records
    /// every action before it is sent (a write-ahead audit) records it,
    /// then confirms. Unanswered, it lapses after [`crate::fleet::HEAL_CONFIRM_WAIT`].
    HealRequested {
        /// The heal.
        heal: Heal,
        /// What to confirm it by.
        ticket: u64,
    },
    /// The reconciler began a heal (right after its action's
    /// [`Event::ActionStarted`]).
    HealStarted {
        /// The heal.
        heal: Heal,
        /// The action doing it.
        action: ActionId,
        /// Its number within the policy's window, from 1.
        attempt: u32,
    },
    /// A heal's action ended (the full report is in its
    /// [`Event::ActionFinished`]).
    HealFinished {
        /// The server.
        server: ServerId,
        /// The channel.
        channel: ChannelId,
        /// The action.
        action: ActionId,
        /// Start, stop or restart.
        kind: ActionKind,
        /// Whether the action succeeded.
        ok: bool,
    },
    /// A channel still drifts after its policy's `limit` heals within the
    /// window: left alone until cleared or `until`.
    HealDegraded {
        /// The server.
        server: ServerId,
        /// The channel.
        channel: ChannelId,
        /// Heals tried within the window.
        attempts: u32,
        /// When the window has passed and healing may resume.
        until: Instant,
    },
    /// The storm guard paused healing fleet-wide: too many managed
    /// channels are in trouble at once.
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
            Event::DriftStarted { .. } => "drift_started",
            Event::DriftEnded { .. } => "drift_ended",
            Event::HealPlanned { .. } => "heal_planned",
            Event::HealRequested { .. } => "heal_requested",
            Event::HealStarted { .. } => "heal_started",
            Event::HealFinished { .. } => "heal_finished",
            Event::HealDegraded { .. } => "heal_degraded",
            Event::HealingPaused { .. } => "healing_paused",
            Event::HealingResumed { .. } => "healing_resumed",
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
            | Event::ActionStarted { server, .. }
            | Event::DriftStarted { server, .. }
            | Event::DriftEnded { server, .. }
            | Event::HealFinished { server, .. }
            | Event::HealDegraded { server, .. } => Some(server),
            Event::HealPlanned { heal } | Event::HealRequested { heal, .. } | Event::HealStarted { heal, .. } => {
                Some(&heal.server)
            }
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
        Event::DriftStarted { server, channel, desired, observed, stall, .. } => match stall {
            Some(reason) => format!("{server} channel {channel} drifts: should be {desired}, is stalled ({reason})"),
            None => format!("{server} channel {channel} drifts: should be {desired}, is {observed}"),
        },
        Event::DriftEnded { server, channel, lasted, .. } => {
            format!("{server} channel {channel} no longer drifts (after {} ms)", lasted.as_millis())
        }
        Event::HealPlanned { heal } => {
            format!("dry run: would {} {} channel {} (should be {})", heal.kind, heal.server, heal.channel, heal.desired)
        }
        Event::HealRequested { heal, ticket } => format!(
            "heal of {} channel {} asked for ({}, ticket {ticket}): waiting for the go-ahead",
            heal.server, heal.channel, heal.kind
        ),
        Event::HealStarted { heal, action, attempt } => format!(
            "heal {attempt} of {} channel {}: {} as action {action} (should be {}, is {})",
            heal.server, heal.channel, heal.kind, heal.desired, heal.observed
        ),
        Event::HealFinished { server, channel, action, kind, ok } => {
            let outcome = if *ok { "succeeded" } else { "failed" };
            format!("heal of {server} channel {channel} ({kind}, action {action}) {outcome}")
        }
        Event::HealDegraded { server, channel, attempts, until } => format!(
            "{server} channel {channel} degraded: still drifting after {attempts} heals; left alone until {until} or cleared"
        ),
        Event::HealingPaused { troubled, managed } => {
            format!("healing paused by the storm guard: {troubled} of {managed} managed channels in trouble")
        }
        Event::HealingResumed { troubled, managed } => {
            format!("healing resumed: {troubled} of {managed} managed channels in trouble")
        }
    }
}
