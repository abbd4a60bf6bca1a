//! Servers, channels and the fleet snapshot.

use ipvtl_core::{
    Channel, FleetSnapshot, Health, Instant, ReloadSummary, ServerConfig, ServerSnapshot, ServerState, StatusText,
};
use schemars::JsonSchema;
use serde::Serialize;

use super::{ms, round2, DriftView, Wall};

/// A server as configured (an entry of `servers.json`).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ServerConfigView {
    /// Unique id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Free text.
    pub description: String,
    /// Free labels.
    pub tags: Vec<String>,
}

impl From<&ServerConfig> for ServerConfigView {
    fn from(c: &ServerConfig) -> Self {
        ServerConfigView {
            id: c.id.to_string(),
            name: c.name.clone(),
            host: c.host.clone(),
            port: c.port,
            description: c.description.clone(),
            tags: c.tags.clone(),
        }
    }
}

/// One channel, as last seen.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ChannelView {
    /// 1-based channel number.
    pub id: u32,
    /// `idle`, `running`, `stopping`, or an unknown state as the server sent it.
    pub state: String,
    /// The raw status text.
    #[schemars(with = "String")]
    pub status: StatusText,
    /// Seconds running, parsed from the status text.
    pub uptime_s: Option<u64>,
    /// Frames per second, parsed from the status text.
    pub fps: Option<f64>,
    /// Output bitrate in kbit/s, parsed from the status text.
    pub kbps: Option<f64>,
    /// `zero_fps` or `uptime_frozen` while the channel looks stalled.
    pub stall: Option<&'static str>,
}

impl ChannelView {
    /// The view of `ch` on a server in `state`.
    pub fn new(ch: &Channel, state: &ServerState) -> Self {
        ChannelView {
            id: ch.id.get(),
            state: ch.state.as_str().to_owned(),
            status: ch.status.clone(),
            uptime_s: ch.stats.map(|s| s.uptime_s),
            fps: ch.stats.map(|s| round2(s.fps)),
            kbps: ch.stats.map(|s| round2(s.kbps)),
            stall: state.stall(ch.id).map(|r| r.as_str()),
        }
    }
}

/// What the poller knows of a server.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ServerStateView {
    /// `unknown` (not polled yet), `online`, `offline` or `error`.
    pub health: &'static str,
    /// Per-core CPU percent from the last good status (empty if none).
    pub cpu: Vec<f64>,
    /// Mean CPU percent over the cores.
    pub cpu_avg: Option<f64>,
    /// Channels from the last good status (empty if none).
    pub channels: Vec<ChannelView>,
    /// How the polls of it go.
    #[serde(flatten)]
    pub poll: PollView,
}

/// How a server's polls go: freshness, errors, maintenance.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct PollView {
    /// True when the status shown is older than the last poll (which failed).
    pub stale: bool,
    /// Age of the last good status, as of the view.
    pub status_age_ms: Option<u64>,
    /// When the last poll (good or bad) finished.
    pub last_poll_at: Option<f64>,
    /// When the last good status arrived.
    pub last_ok_at: Option<f64>,
    /// Round trip of the last poll.
    pub latency_ms: Option<u64>,
    /// Polls failed in a row.
    pub consecutive_failures: u32,
    /// Why the last poll failed; `null` after a good poll.
    pub error: Option<String>,
    /// `connect`, `timeout`, `io` (unreachable), `http`, `malformed`,
    /// `too_large` (answered badly).
    pub error_kind: Option<&'static str>,
    /// True while in maintenance: polled, no alarms, no actions.
    pub maintenance: bool,
}

impl ServerStateView {
    /// The view of `state` as of `now`.
    pub fn new(state: &ServerState, now: Instant, wall: Wall<'_>) -> Self {
        let status = state.status.as_ref();
        ServerStateView {
            health: state.health.as_str(),
            cpu: status.map(|s| s.cpu.iter().copied().map(round2).collect()).unwrap_or_default(),
            cpu_avg: status.and_then(|s| s.cpu_avg()).map(round2),
            channels: status
                .map(|s| s.channels.iter().map(|ch| ChannelView::new(ch, state)).collect())
                .unwrap_or_default(),
            poll: PollView {
                stale: state.is_stale(),
                status_age_ms: state.status_age(now).map(ms),
                last_poll_at: state.last_poll_at.map(|t| wall.at(t)),
                last_ok_at: state.last_ok_at.map(|t| wall.at(t)),
                latency_ms: state.latency.map(ms),
                consecutive_failures: state.consecutive_failures,
                error: state.error.as_ref().map(|e| e.to_string()),
                error_kind: state.error.as_ref().map(|e| e.kind()),
                maintenance: state.maintenance,
            },
        }
    }
}

/// A server: its configuration and its state, in one flat object.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ServerView {
    /// The configuration.
    #[serde(flatten)]
    pub config: ServerConfigView,
    /// The state.
    #[serde(flatten)]
    pub state: ServerStateView,
}

impl ServerView {
    /// The view of one server as of `now`.
    pub fn new(s: &ServerSnapshot, now: Instant, wall: Wall<'_>) -> Self {
        ServerView { config: ServerConfigView::from(&*s.config), state: ServerStateView::new(&s.state, now, wall) }
    }
}

/// Servers per health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HealthCounts {
    /// Answering with a good status.
    pub online: usize,
    /// Not reachable.
    pub offline: usize,
    /// Answering badly.
    pub error: usize,
    /// Not polled yet.
    pub unknown: usize,
}

impl HealthCounts {
    /// Counts the servers of a snapshot.
    pub fn of(snap: &FleetSnapshot) -> Self {
        HealthCounts {
            online: snap.count(Health::Online),
            offline: snap.count(Health::Offline),
            error: snap.count(Health::Error),
            unknown: snap.count(Health::Unknown),
        }
    }
}

/// The whole fleet as of a moment.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct SnapshotView {
    /// When it was taken.
    pub taken_at: f64,
    /// The latest sweep started.
    pub sweep: u64,
    /// Servers per health.
    pub counts: HealthCounts,
    /// Every server, in configuration order.
    pub servers: Vec<ServerView>,
    /// Every managed channel that drifts, by server and channel.
    pub drifts: Vec<DriftView>,
}

impl SnapshotView {
    /// The view of a snapshot.
    pub fn new(snap: &FleetSnapshot, wall: Wall<'_>) -> Self {
        SnapshotView {
            taken_at: wall.at(snap.taken_at),
            sweep: snap.sweep,
            counts: HealthCounts::of(snap),
            servers: snap.servers.iter().map(|s| ServerView::new(s, snap.taken_at, wall)).collect(),
            drifts: snap.drifts.iter().map(|d| DriftView::new(d, snap.taken_at, wall)).collect(),
        }
    }
}

/// What a reload changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ReloadView {
    /// Servers that are new.
    pub added: Vec<String>,
    /// Servers that are gone.
    pub removed: Vec<String>,
    /// Servers whose address changed (their state starts over).
    pub changed: Vec<String>,
    /// Servers kept with their state.
    pub kept: usize,
}

impl From<&ReloadSummary> for ReloadView {
    fn from(r: &ReloadSummary) -> Self {
        let ids = |v: &[ipvtl_core::ServerId]| v.iter().map(|i| i.to_string()).collect();
        ReloadView { added: ids(&r.added), removed: ids(&r.removed), changed: ids(&r.changed), kept: r.kept }
    }
}
