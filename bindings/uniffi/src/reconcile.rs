//! Desired state and healing as records: what is given (`SettingScope`,
//! `HealingPolicy`, `ReconcilerSettings`) is passed to the client's
//! `ScopeInput`/`PolicyInput`/`ReconcilerInput` as given and checked there,
//! once; what comes back mirrors the wire views.

use ipvtl_client::wire;
use ipvtl_client::{PolicyInput, ReconcilerInput, ScopeInput};

use crate::records::count;

/// Where a setting applies: a server (with `channel_id` for one channel)
/// or a tag, never both.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SettingScope {
    /// A server's id.
    #[uniffi(default = None)]
    pub server_id: Option<String>,
    /// One channel of that server, from 1.
    #[uniffi(default = None)]
    pub channel_id: Option<u32>,
    /// A tag: every channel of the servers carrying it.
    #[uniffi(default = None)]
    pub tag: Option<String>,
}

impl From<SettingScope> for ScopeInput {
    fn from(s: SettingScope) -> Self {
        ScopeInput { server_id: s.server_id, channel_id: s.channel_id, tag: s.tag }
    }
}

impl From<wire::ScopeView> for SettingScope {
    fn from(s: wire::ScopeView) -> Self {
        SettingScope { server_id: s.server_id, channel_id: s.channel_id, tag: s.tag }
    }
}

/// A healing policy as given; a field left `None` takes the client's
/// default. `enabled = false` only reports drift.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct HealingPolicy {
    /// Heal (true, the default) or only report drift.
    #[uniffi(default = None)]
    pub enabled: Option<bool>,
    /// How long drift must last before the first attempt.
    #[uniffi(default = None)]
    pub grace_ms: Option<u64>,
    /// Most heals of one channel within the window (at least 1).
    #[uniffi(default = None)]
    pub limit: Option<u32>,
    /// The sliding window the limit counts in.
    #[uniffi(default = None)]
    pub window_ms: Option<u64>,
    /// Wait after a heal, doubled for each further attempt.
    #[uniffi(default = None)]
    pub backoff_ms: Option<u64>,
    /// Cap of the backoff.
    #[uniffi(default = None)]
    pub backoff_max_ms: Option<u64>,
}

impl From<HealingPolicy> for PolicyInput {
    fn from(p: HealingPolicy) -> Self {
        PolicyInput {
            enabled: p.enabled,
            grace_ms: p.grace_ms,
            limit: p.limit,
            window_ms: p.window_ms,
            backoff_ms: p.backoff_ms,
            backoff_max_ms: p.backoff_max_ms,
        }
    }
}

/// Changes to the fleet-wide healing settings; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct ReconcilerSettings {
    /// Heals under way at once, fleet-wide (at least 1).
    #[uniffi(default = None)]
    pub max_parallel: Option<u32>,
    /// The storm guard's share of managed channels in trouble, 0 to 100.
    #[uniffi(default = None)]
    pub storm_percent: Option<u32>,
    /// The least number of channels in trouble that is a storm.
    #[uniffi(default = None)]
    pub storm_min: Option<u32>,
    /// Report heals instead of doing them.
    #[uniffi(default = None)]
    pub dry_run: Option<bool>,
    /// Healing switched off by an operator.
    #[uniffi(default = None)]
    pub paused: Option<bool>,
}

impl From<ReconcilerSettings> for ReconcilerInput {
    fn from(s: ReconcilerSettings) -> Self {
        ReconcilerInput {
            max_parallel: s.max_parallel.map(|n| n as usize),
            storm_percent: s.storm_percent,
            storm_min: s.storm_min.map(|n| n as usize),
            dry_run: s.dry_run,
            paused: s.paused,
        }
    }
}

/// Where healing stands fleet-wide.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReconcilerStatus {
    /// Heals under way at once, fleet-wide.
    pub max_parallel: u32,
    /// The storm guard's share (percent).
    pub storm_percent: u32,
    /// The least number of channels in trouble that is a storm.
    pub storm_min: u32,
    /// Heals are reported, not done.
    pub dry_run: bool,
    /// Healing switched off by an operator.
    pub paused: bool,
    /// The storm guard holds every heal.
    pub storm: bool,
    /// Managed channels.
    pub managed: u32,
    /// Of those, drifting or on a server not online.
    pub troubled: u32,
    /// Heals under way.
    pub heals_in_flight: u32,
}

impl From<wire::ReconcilerView> for ReconcilerStatus {
    fn from(v: wire::ReconcilerView) -> Self {
        ReconcilerStatus {
            max_parallel: count(v.max_parallel),
            storm_percent: v.storm_percent,
            storm_min: count(v.storm_min),
            dry_run: v.dry_run,
            paused: v.paused,
            storm: v.storm,
            managed: count(v.managed),
            troubled: count(v.troubled),
            heals_in_flight: count(v.heals_in_flight),
        }
    }
}

/// A desired-state setting.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DesiredSetting {
    /// Where it applies (`None` in `ChannelDesired`: nowhere, so unmanaged).
    pub scope: Option<SettingScope>,
    /// `running`, `idle` or `unmanaged`.
    pub desired: String,
    /// Where the setting came from: `file` (the servers file, replaced by
    /// a reload) or `api` (kept across reloads; wins at the same scope).
    /// `None` in `ChannelDesired`'s answer, which resolves scopes.
    pub source: Option<String>,
}

impl From<wire::DesiredSettingView> for DesiredSetting {
    fn from(v: wire::DesiredSettingView) -> Self {
        DesiredSetting { scope: Some(v.scope.into()), desired: v.desired.to_owned(), source: Some(v.source.into()) }
    }
}

/// A healing setting; with `enabled` false the policy fields are `None`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HealingSetting {
    /// Where it applies.
    pub scope: SettingScope,
    /// Heal (true) or only report drift.
    pub enabled: bool,
    /// Grace before the first attempt.
    pub grace_ms: Option<u64>,
    /// Most heals within the window.
    pub limit: Option<u32>,
    /// The sliding window.
    pub window_ms: Option<u64>,
    /// Backoff after a heal.
    pub backoff_ms: Option<u64>,
    /// Cap of the backoff.
    pub backoff_max_ms: Option<u64>,
    /// Where the setting came from: `file` or `api`.
    pub source: String,
}

impl From<wire::HealingSettingView> for HealingSetting {
    fn from(v: wire::HealingSettingView) -> Self {
        HealingSetting {
            scope: v.scope.into(),
            enabled: v.enabled,
            grace_ms: v.grace_ms,
            limit: v.limit,
            window_ms: v.window_ms,
            backoff_ms: v.backoff_ms,
            backoff_max_ms: v.backoff_max_ms,
            source: v.source.into(),
        }
    }
}

/// A managed channel whose observed state differs from its desired one.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Drift {
    /// The server.
    pub server_id: String,
    /// The channel.
    pub channel_id: u32,
    /// `running` or `idle`.
    pub desired: String,
    /// What it was last seen doing.
    pub observed: String,
    /// `zero_fps` or `uptime_frozen` when it looks stalled.
    pub stall: Option<String>,
    /// When the drift was first seen (Unix seconds).
    pub since_at: f64,
    /// How long it has lasted.
    pub drift_ms: u64,
    /// Heals within the current window.
    pub attempts: u32,
    /// The restart limit was reached: left alone until cleared.
    pub degraded: bool,
    /// The heal under way, if any.
    pub healing_action_id: Option<u64>,
}

impl From<wire::DriftView> for Drift {
    fn from(v: wire::DriftView) -> Self {
        Drift {
            server_id: v.server_id,
            channel_id: v.channel_id,
            desired: v.desired.to_owned(),
            observed: v.observed,
            stall: v.stall.map(str::to_owned),
            since_at: v.since_at,
            drift_ms: v.drift_ms,
            attempts: v.attempts,
            degraded: v.degraded,
            healing_action_id: v.healing_action_id,
        }
    }
}

/// A heal the reconciler does, or in dry run would do.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Heal {
    /// The server.
    pub server_id: String,
    /// The channel.
    pub channel_id: u32,
    /// `start`, `stop` or `restart`.
    pub action: String,
    /// What the channel should be doing.
    pub desired: String,
    /// What it was last seen doing.
    pub observed: String,
    /// `zero_fps` or `uptime_frozen` when it looks stalled.
    pub stall: Option<String>,
    /// When its drift began (Unix seconds).
    pub since_at: f64,
}

impl From<wire::HealView> for Heal {
    fn from(v: wire::HealView) -> Self {
        Heal {
            server_id: v.server_id,
            channel_id: v.channel_id,
            action: v.action.to_owned(),
            desired: v.desired.to_owned(),
            observed: v.observed,
            stall: v.stall.map(str::to_owned),
            since_at: v.since_at,
        }
    }
}
