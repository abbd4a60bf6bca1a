//! Desired state, drift, heals and the reconciler's settings.

use ipvtl_core::{Desired, Drift, Heal, Healing, Instant, ReconcilerConfig, Scope, Source};
use schemars::JsonSchema;
use serde::Serialize;

use super::{ms, Wall};
use crate::ReconcilerStatus;

/// A managed channel whose observed state differs from its desired one.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct DriftView {
    /// The server.
    pub server_id: String,
    /// The channel.
    pub channel_id: u32,
    /// `running` or `idle`: what it should be doing.
    pub desired: &'static str,
    /// What it was last seen doing (`idle`, `running`, `stopping`, or as sent).
    pub observed: String,
    /// `zero_fps` or `uptime_frozen` when it looks stalled.
    pub stall: Option<&'static str>,
    /// When the drift was first seen.
    pub since_at: f64,
    /// How long it has lasted, as of the view.
    pub drift_ms: u64,
    /// Heals within the policy's current window.
    pub attempts: u32,
    /// True when the restart limit was reached: left alone until cleared.
    pub degraded: bool,
    /// The heal under way, if any.
    pub healing_action_id: Option<u64>,
}

impl DriftView {
    /// The view of a drift as of `now`.
    pub fn new(d: &Drift, now: Instant, wall: Wall<'_>) -> Self {
        DriftView {
            server_id: d.server.to_string(),
            channel_id: d.channel.get(),
            desired: d.desired.as_str(),
            observed: d.observed.as_str().to_owned(),
            stall: d.stall.map(|s| s.as_str()),
            since_at: wall.at(d.since),
            drift_ms: ms(now.saturating_since(d.since)),
            attempts: d.attempts,
            degraded: d.degraded,
            healing_action_id: d.healing.map(|a| a.0),
        }
    }
}

/// A heal the reconciler does, or in dry run would do.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct HealView {
    /// The server.
    pub server_id: String,
    /// The channel.
    pub channel_id: u32,
    /// `start`, `stop` or `restart`.
    pub action: &'static str,
    /// What the channel should be doing.
    pub desired: &'static str,
    /// What it was last seen doing.
    pub observed: String,
    /// `zero_fps` or `uptime_frozen` when it looks stalled.
    pub stall: Option<&'static str>,
    /// When its drift began.
    pub since_at: f64,
}

impl HealView {
    /// The view of a heal.
    pub fn new(h: &Heal, wall: Wall<'_>) -> Self {
        HealView {
            server_id: h.server.to_string(),
            channel_id: h.channel.get(),
            action: h.kind.as_str(),
            desired: h.desired.as_str(),
            observed: h.observed.as_str().to_owned(),
            stall: h.stall.map(|s| s.as_str()),
            since_at: wall.at(h.since),
        }
    }
}

/// Where a setting applies: `scope` is `channel` (with `server_id` and
/// `channel_id`), `server` (with `server_id`) or `tag` (with `tag`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ScopeView {
    /// `channel`, `server` or `tag`.
    pub scope: &'static str,
    /// The server, for `channel` and `server`.
    pub server_id: Option<String>,
    /// The channel, for `channel`.
    pub channel_id: Option<u32>,
    /// The tag, for `tag`.
    pub tag: Option<String>,
}

impl From<&Scope> for ScopeView {
    fn from(s: &Scope) -> Self {
        match s {
            Scope::Channel(server, ch) => ScopeView {
                scope: "channel",
                server_id: Some(server.to_string()),
                channel_id: Some(ch.get()),
                tag: None,
            },
            Scope::Server(server) => {
                ScopeView { scope: "server", server_id: Some(server.to_string()), channel_id: None, tag: None }
            }
            Scope::Tag(t) => ScopeView { scope: "tag", server_id: None, channel_id: None, tag: Some(t.clone()) },
            _ => ScopeView { scope: "other", server_id: None, channel_id: None, tag: None },
        }
    }
}

/// A desired-state setting and where it applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DesiredSettingView {
    /// Where it applies.
    #[serde(flatten)]
    pub scope: ScopeView,
    /// `running`, `idle` or `unmanaged`.
    pub desired: &'static str,
    /// Where the setting came from: `file` (the servers file, replaced by
    /// a reload) or `api` (kept across reloads; wins over a file setting at
    /// the same scope).
    pub source: &'static str,
}

impl DesiredSettingView {
    /// The view of one setting.
    pub fn new(scope: &Scope, desired: Desired, source: Source) -> Self {
        DesiredSettingView { scope: scope.into(), desired: desired.as_str(), source: source.as_str() }
    }
}

/// A healing setting and where it applies. With `enabled` false the
/// policy fields are null (drift is only reported).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HealingSettingView {
    /// Where it applies.
    #[serde(flatten)]
    pub scope: ScopeView,
    /// True when drift is healed, false when only reported.
    pub enabled: bool,
    /// How long drift must last before the first attempt.
    pub grace_ms: Option<u64>,
    /// Most heals of one channel within the window.
    pub limit: Option<u32>,
    /// The sliding window the limit counts in.
    pub window_ms: Option<u64>,
    /// Wait after a heal, doubled for each further attempt.
    pub backoff_ms: Option<u64>,
    /// Cap of the backoff.
    pub backoff_max_ms: Option<u64>,
    /// Where the setting came from: `file` or `api` (see
    /// [`DesiredSettingView::source`]).
    pub source: &'static str,
}

impl HealingSettingView {
    /// The view of one setting.
    pub fn new(scope: &Scope, healing: &Healing, source: Source) -> Self {
        let scope = scope.into();
        let source = source.as_str();
        match healing {
            Healing::On(p) => HealingSettingView {
                scope,
                enabled: true,
                grace_ms: Some(ms(p.grace)),
                limit: Some(p.limit),
                window_ms: Some(ms(p.window)),
                backoff_ms: Some(ms(p.backoff)),
                backoff_max_ms: Some(ms(p.backoff_max)),
                source,
            },
            _ => HealingSettingView {
                scope,
                enabled: false,
                grace_ms: None,
                limit: None,
                window_ms: None,
                backoff_ms: None,
                backoff_max_ms: None,
                source,
            },
        }
    }
}

/// Where healing stands fleet-wide: its settings, the storm guard, counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ReconcilerView {
    /// Heals under way at once, fleet-wide.
    pub max_parallel: usize,
    /// The storm guard's share of managed channels in trouble (percent).
    pub storm_percent: u32,
    /// The least number of channels in trouble that is a storm.
    pub storm_min: usize,
    /// Heals are reported, not done.
    pub dry_run: bool,
    /// Healing switched off by an operator.
    pub paused: bool,
    /// The storm guard holds every heal.
    pub storm: bool,
    /// Managed channels (not counting servers in maintenance).
    pub managed: usize,
    /// Of those, drifting or on a server not online.
    pub troubled: usize,
    /// Heals under way.
    pub heals_in_flight: usize,
}

impl From<&ReconcilerStatus> for ReconcilerView {
    fn from(s: &ReconcilerStatus) -> Self {
        let ReconcilerConfig { max_parallel, storm_percent, storm_min, dry_run, paused, .. } = s.config.clone();
        ReconcilerView {
            max_parallel,
            storm_percent,
            storm_min,
            dry_run,
            paused,
            storm: s.storm,
            managed: s.managed,
            troubled: s.troubled,
            heals_in_flight: s.heals_in_flight,
        }
    }
}
