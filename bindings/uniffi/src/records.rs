//! Settings, servers, channels and the fleet snapshot. Every record going
//! out is filled from its wire view (`ipvtl_client::wire`) by `From`, with
//! the view's field names and values (SPEC §12): enums as their `as_str`
//! text, durations as integer `*_ms`, times as Unix seconds `*_at`. Records
//! coming in are passed to the client as given; `None` means "not given"
//! and the client picks the default.

use std::time::Duration;

use ipvtl_client::core as core_;
use ipvtl_client::wire;
use ipvtl_client::{Settings, SettingsOptions};

/// A count for the foreign side (u32, saturating).
pub(crate) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Cluster settings; times in milliseconds. Every field left out (`None`)
/// takes the client's default: `ClusterSettings(timeout_ms = 3000)`
/// (Kotlin: `timeoutMs = 3000uL`) changes the timeout only.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct ClusterSettings {
    /// Time between sweep starts.
    #[uniffi(default = None)]
    pub interval_ms: Option<u64>,
    /// Per-request timeout.
    #[uniffi(default = None)]
    pub timeout_ms: Option<u64>,
    /// Sweep polls in flight at most.
    #[uniffi(default = None)]
    pub concurrency: Option<u32>,
    /// Refreshes in flight at most (a lane beside the sweep's).
    #[uniffi(default = None)]
    pub priority_concurrency: Option<u32>,
    /// Longest a failing server is left out of sweeps.
    #[uniffi(default = None)]
    pub backoff_max_ms: Option<u64>,
    /// Failures in a row before a server is offline (or error).
    #[uniffi(default = None)]
    pub offline_after: Option<u32>,
    /// Bound from `stop` until the channel is idle.
    #[uniffi(default = None)]
    pub stop_timeout_ms: Option<u64>,
    /// Bound from `start` until the channel is running.
    #[uniffi(default = None)]
    pub start_timeout_ms: Option<u64>,
    /// Time between checks while an action watches a channel.
    #[uniffi(default = None)]
    pub watch_interval_ms: Option<u64>,
    /// Largest `/status` body accepted, in bytes.
    #[uniffi(default = None)]
    pub body_limit: Option<u64>,
    /// Sweep automatically every interval (otherwise only on `poll`).
    #[uniffi(default = None)]
    pub background: Option<bool>,
    /// Events buffered per subscriber before the oldest are dropped for it.
    #[uniffi(default = None)]
    pub event_buffer: Option<u32>,
}

/// What was given, untouched; the client fills in and checks the rest.
impl From<ClusterSettings> for SettingsOptions {
    fn from(s: ClusterSettings) -> Self {
        SettingsOptions {
            interval: s.interval_ms.map(Duration::from_millis),
            timeout: s.timeout_ms.map(Duration::from_millis),
            concurrency: s.concurrency.map(|n| n as usize),
            priority_concurrency: s.priority_concurrency.map(|n| n as usize),
            backoff_max: s.backoff_max_ms.map(Duration::from_millis),
            offline_after: s.offline_after,
            stop_timeout: s.stop_timeout_ms.map(Duration::from_millis),
            start_timeout: s.start_timeout_ms.map(Duration::from_millis),
            watch_interval: s.watch_interval_ms.map(Duration::from_millis),
            body_limit: s.body_limit,
            background: s.background,
            event_buffer: s.event_buffer.map(|n| n as usize),
        }
    }
}

/// The settings a cluster runs with (`Cluster.settings()`): every field set.
impl From<&Settings> for ClusterSettings {
    fn from(s: &Settings) -> Self {
        ClusterSettings {
            interval_ms: Some(wire::ms(s.interval)),
            timeout_ms: Some(wire::ms(s.timeout)),
            concurrency: Some(count(s.concurrency)),
            priority_concurrency: Some(count(s.priority_concurrency)),
            backoff_max_ms: Some(wire::ms(s.backoff_max)),
            offline_after: Some(s.offline_after),
            stop_timeout_ms: Some(wire::ms(s.stop_timeout)),
            start_timeout_ms: Some(wire::ms(s.start_timeout)),
            watch_interval_ms: Some(wire::ms(s.watch_interval)),
            body_limit: Some(s.body_limit),
            background: Some(s.background),
            event_buffer: Some(count(s.event_buffer)),
        }
    }
}

/// One server as configured (an entry of `servers.json`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ServerConfig {
    /// Unique id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Host name or IP address, without scheme, port or path.
    pub host: String,
    /// TCP port (9527 by default in `servers.json`).
    pub port: u16,
    /// Free text.
    pub description: String,
    /// Free labels, used by batch filters.
    pub tags: Vec<String>,
}

impl From<wire::ServerConfigView> for ServerConfig {
    fn from(c: wire::ServerConfigView) -> Self {
        ServerConfig { id: c.id, name: c.name, host: c.host, port: c.port, description: c.description, tags: c.tags }
    }
}

impl From<&core_::ServerConfig> for ServerConfig {
    fn from(c: &core_::ServerConfig) -> Self {
        wire::ServerConfigView::from(c).into()
    }
}

impl From<ServerConfig> for core_::ServerConfig {
    fn from(c: ServerConfig) -> Self {
        core_::ServerConfig {
            id: c.id.into(),
            name: c.name,
            host: c.host,
            port: c.port,
            description: c.description,
            tags: c.tags,
        }
    }
}

/// One channel, as last seen.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ChannelInfo {
    /// 1-based channel number.
    pub id: u32,
    /// `idle`, `running`, `stopping`, or an unknown state verbatim.
    pub state: String,
    /// The raw status text (`HH:MM:SS <fps>fps@<kbps>Kbps` while running).
    pub status: String,
    /// Seconds running, parsed from `status`.
    pub uptime_s: Option<u64>,
    /// Frames per second, parsed from `status` (two decimals).
    pub fps: Option<f64>,
    /// Output bitrate in kbit/s, parsed from `status` (two decimals).
    pub kbps: Option<f64>,
    /// `zero_fps` or `uptime_frozen` while the channel looks stalled.
    pub stall: Option<String>,
}

impl From<wire::ChannelView> for ChannelInfo {
    fn from(c: wire::ChannelView) -> Self {
        ChannelInfo {
            id: c.id,
            state: c.state,
            status: c.status.into(),
            uptime_s: c.uptime_s,
            fps: c.fps,
            kbps: c.kbps,
            stall: c.stall.map(str::to_owned),
        }
    }
}

/// Everything the poller knows about one server.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ServerState {
    /// `unknown` (not polled yet), `online`, `offline` or `error`.
    pub health: String,
    /// Per-core CPU percent from the last good status (empty if none).
    pub cpu: Vec<f64>,
    /// Mean CPU percent over the cores.
    pub cpu_avg: Option<f64>,
    /// Channels from the last good status (empty if none), in server order.
    pub channels: Vec<ChannelInfo>,
    /// True when the status shown is older than the last poll (which failed).
    pub stale: bool,
    /// Age of the last good status, as of the snapshot.
    pub status_age_ms: Option<u64>,
    /// When the last poll (good or bad) finished, in Unix seconds.
    pub last_poll_at: Option<f64>,
    /// When the last good status arrived, in Unix seconds.
    pub last_ok_at: Option<f64>,
    /// Round-trip time of the last poll.
    pub latency_ms: Option<u64>,
    /// Polls failed in a row.
    pub consecutive_failures: u32,
    /// Why the last poll failed, for humans; absent after a good poll.
    pub error: Option<String>,
    /// `connect`, `timeout`, `io` (unreachable), `http`, `malformed`,
    /// `too_large` (answered badly).
    pub error_kind: Option<String>,
    /// In maintenance: polled, no health alarms, no actions.
    pub maintenance: bool,
}

/// Flat, like the JSON (the view's `poll` part is flattened there too).
impl From<wire::ServerStateView> for ServerState {
    fn from(s: wire::ServerStateView) -> Self {
        let p = s.poll;
        ServerState {
            health: s.health.to_owned(),
            cpu: s.cpu,
            cpu_avg: s.cpu_avg,
            channels: s.channels.into_iter().map(Into::into).collect(),
            stale: p.stale,
            status_age_ms: p.status_age_ms,
            last_poll_at: p.last_poll_at,
            last_ok_at: p.last_ok_at,
            latency_ms: p.latency_ms,
            consecutive_failures: p.consecutive_failures,
            error: p.error,
            error_kind: p.error_kind.map(str::to_owned),
            maintenance: p.maintenance,
        }
    }
}

/// One server: its configuration and its state.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ServerSnapshot {
    /// How it is configured.
    pub config: ServerConfig,
    /// What is known about it.
    pub state: ServerState,
}

impl From<wire::ServerView> for ServerSnapshot {
    fn from(s: wire::ServerView) -> Self {
        ServerSnapshot { config: s.config.into(), state: s.state.into() }
    }
}

/// Servers per health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct HealthCounts {
    /// Answering with a good status.
    pub online: u32,
    /// Not reachable.
    pub offline: u32,
    /// Answering badly.
    pub error: u32,
    /// Not polled yet.
    pub unknown: u32,
}

impl From<wire::HealthCounts> for HealthCounts {
    fn from(c: wire::HealthCounts) -> Self {
        HealthCounts {
            online: count(c.online),
            offline: count(c.offline),
            error: count(c.error),
            unknown: count(c.unknown),
        }
    }
}

/// The whole fleet at one moment.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct FleetSnapshot {
    /// When it was taken, in Unix seconds.
    pub taken_at: f64,
    /// The latest sweep started.
    pub sweep: u64,
    /// Servers per health.
    pub counts: HealthCounts,
    /// Every server, in configuration order.
    pub servers: Vec<ServerSnapshot>,
    /// Every managed channel that drifts.
    pub drifts: Vec<crate::reconcile::Drift>,
}

impl From<wire::SnapshotView> for FleetSnapshot {
    fn from(s: wire::SnapshotView) -> Self {
        FleetSnapshot {
            taken_at: s.taken_at,
            sweep: s.sweep,
            counts: s.counts.into(),
            servers: s.servers.into_iter().map(Into::into).collect(),
            drifts: s.drifts.into_iter().map(Into::into).collect(),
        }
    }
}

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReloadSummary {
    /// Servers that are new.
    pub added: Vec<String>,
    /// Servers that are gone.
    pub removed: Vec<String>,
    /// Servers whose address changed (their state starts over).
    pub changed: Vec<String>,
    /// Servers kept with their state.
    pub kept: u32,
}

impl From<wire::ReloadView> for ReloadSummary {
    fn from(r: wire::ReloadView) -> Self {
        ReloadSummary { added: r.added, removed: r.removed, changed: r.changed, kept: count(r.kept) }
    }
}
