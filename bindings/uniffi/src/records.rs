//! Records and enums that mirror the core models, each filled by a `From`
//! impl (or `TryFrom` where foreign input must be checked). No logic here:
//! only shape changes (ids to strings and numbers, durations and core
//! instants to milliseconds).

use std::time::Duration;

use ipvtl_client::core as core_;
use ipvtl_client::Settings;

use crate::error::IpvtlError;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Cluster settings; times in milliseconds. Start from `default_settings()`
/// and change what you need.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ClusterSettings {
    /// Time between sweep starts.
    pub interval_ms: u64,
    /// Per-request timeout.
    pub timeout_ms: u64,
    /// Sweep polls in flight at most.
    pub concurrency: u32,
    /// Refreshes in flight at most (a lane beside the sweep's).
    pub priority_concurrency: u32,
    /// Longest a failing server is left out of sweeps.
    pub backoff_max_ms: u64,
    /// Failures in a row before a server is offline (or error).
    pub offline_after: u32,
    /// Bound from `stop` until the channel is idle.
    pub stop_timeout_ms: u64,
    /// Bound from `start` until the channel is running.
    pub start_timeout_ms: u64,
    /// Time between checks while an action watches a channel.
    pub watch_interval_ms: u64,
    /// Largest `/status` body accepted, in bytes.
    pub body_limit: u64,
    /// Sweep automatically every interval (otherwise only on `poll`).
    pub background: bool,
    /// Events buffered per subscriber before the oldest are dropped for it.
    pub event_buffer: u32,
}

impl From<Settings> for ClusterSettings {
    fn from(s: Settings) -> Self {
        ClusterSettings {
            interval_ms: ms(s.interval),
            timeout_ms: ms(s.timeout),
            concurrency: count(s.concurrency),
            priority_concurrency: count(s.priority_concurrency),
            backoff_max_ms: ms(s.backoff_max),
            offline_after: s.offline_after,
            stop_timeout_ms: ms(s.stop_timeout),
            start_timeout_ms: ms(s.start_timeout),
            watch_interval_ms: ms(s.watch_interval),
            body_limit: s.body_limit,
            background: s.background,
            event_buffer: count(s.event_buffer),
        }
    }
}

impl From<ClusterSettings> for Settings {
    fn from(s: ClusterSettings) -> Self {
        Settings {
            interval: Duration::from_millis(s.interval_ms),
            timeout: Duration::from_millis(s.timeout_ms),
            concurrency: s.concurrency as usize,
            priority_concurrency: s.priority_concurrency as usize,
            backoff_max: Duration::from_millis(s.backoff_max_ms),
            offline_after: s.offline_after,
            stop_timeout: Duration::from_millis(s.stop_timeout_ms),
            start_timeout: Duration::from_millis(s.start_timeout_ms),
            watch_interval: Duration::from_millis(s.watch_interval_ms),
            body_limit: s.body_limit,
            background: s.background,
            event_buffer: s.event_buffer as usize,
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

impl From<&core_::ServerConfig> for ServerConfig {
    fn from(c: &core_::ServerConfig) -> Self {
        ServerConfig {
            id: c.id.to_string(),
            name: c.name.clone(),
            host: c.host.clone(),
            port: c.port,
            description: c.description.clone(),
            tags: c.tags.clone(),
        }
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

/// A server's health as the poller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Health {
    /// Not polled yet (or not enough results to decide).
    Unknown,
    /// Answering `/status` with a good body.
    Online,
    /// Not reachable (refused, timed out, reset) for `offline_after` polls.
    Offline,
    /// Reachable but answering garbage (HTTP error, malformed or huge body).
    Error,
}

impl From<core_::Health> for Health {
    fn from(h: core_::Health) -> Self {
        match h {
            core_::Health::Online => Health::Online,
            core_::Health::Offline => Health::Offline,
            core_::Health::Error => Health::Error,
            _ => Health::Unknown,
        }
    }
}

/// Numbers parsed from a running channel's status text.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct ChannelStats {
    /// Time running, in seconds.
    pub uptime_s: u64,
    /// Frames per second.
    pub fps: f32,
    /// Output bitrate in kbit/s.
    pub kbps: f32,
}

impl From<core_::ChannelStats> for ChannelStats {
    fn from(s: core_::ChannelStats) -> Self {
        ChannelStats { uptime_s: s.uptime_s, fps: s.fps, kbps: s.kbps }
    }
}

/// One channel of a server.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ChannelInfo {
    /// 1-based channel number.
    pub id: u32,
    /// `idle`, `running`, `stopping`, or an unknown state verbatim.
    pub state: String,
    /// The raw status text (`HH:MM:SS <fps>fps@<kbps>Kbps` while running).
    pub status: String,
    /// Numbers parsed from `status`, when it has the usual format.
    pub stats: Option<ChannelStats>,
}

impl From<&core_::Channel> for ChannelInfo {
    fn from(c: &core_::Channel) -> Self {
        ChannelInfo {
            id: c.id.get(),
            state: c.state.as_str().to_owned(),
            status: c.status.clone(),
            stats: c.stats.map(Into::into),
        }
    }
}

/// One `/status` answer.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ServerStatus {
    /// Per-core CPU usage in percent.
    pub cpu: Vec<f32>,
    /// Mean of `cpu`; absent when no core is reported.
    pub cpu_avg: Option<f32>,
    /// Channels in server order.
    pub channels: Vec<ChannelInfo>,
}

impl From<&core_::Status> for ServerStatus {
    fn from(s: &core_::Status) -> Self {
        ServerStatus { cpu: s.cpu.clone(), cpu_avg: s.cpu_avg(), channels: s.channels.iter().map(Into::into).collect() }
    }
}

/// Why one poll failed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PollFailure {
    /// `connect`, `timeout`, `io`, `http`, `malformed` or `too_large`.
    pub kind: String,
    /// What went wrong, for humans.
    pub message: String,
    /// True when the server could not be reached at all.
    pub unreachable: bool,
}

impl From<&core_::PollError> for PollFailure {
    fn from(e: &core_::PollError) -> Self {
        PollFailure { kind: e.kind().to_owned(), message: e.to_string(), unreachable: e.is_unreachable() }
    }
}

/// Everything the poller knows about one server. Times are milliseconds on
/// the cluster's clock (`FleetSnapshot.taken_at_ms` is "now").
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ServerState {
    /// Current health.
    pub health: Health,
    /// The last good status, kept when a later poll fails.
    pub status: Option<ServerStatus>,
    /// True when `status` is older than the last poll (that poll failed).
    pub stale: bool,
    /// When the last good status arrived.
    pub last_ok_at_ms: Option<u64>,
    /// When the last poll (good or bad) finished.
    pub last_poll_at_ms: Option<u64>,
    /// Round-trip time of the last poll.
    pub latency_ms: Option<u64>,
    /// Polls failed in a row.
    pub consecutive_failures: u32,
    /// Why the last poll failed; absent after a good poll.
    pub error: Option<PollFailure>,
    /// In maintenance: polled, no health alarms, no actions.
    pub maintenance: bool,
}

impl From<&core_::ServerState> for ServerState {
    fn from(s: &core_::ServerState) -> Self {
        ServerState {
            health: s.health.into(),
            status: s.status.as_ref().map(Into::into),
            stale: s.is_stale(),
            last_ok_at_ms: s.last_ok_at.map(core_::Instant::as_millis),
            last_poll_at_ms: s.last_poll_at.map(core_::Instant::as_millis),
            latency_ms: s.latency.map(ms),
            consecutive_failures: s.consecutive_failures,
            error: s.error.as_ref().map(Into::into),
            maintenance: s.maintenance,
        }
    }
}

/// One server and its state.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ServerSnapshot {
    /// How it is configured.
    pub config: ServerConfig,
    /// What is known about it.
    pub state: ServerState,
}

impl From<&core_::ServerSnapshot> for ServerSnapshot {
    fn from(s: &core_::ServerSnapshot) -> Self {
        ServerSnapshot { config: (&*s.config).into(), state: (&s.state).into() }
    }
}

/// The whole fleet at one moment.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct FleetSnapshot {
    /// When it was taken, in milliseconds on the cluster's clock.
    pub taken_at_ms: u64,
    /// Sweeps started so far.
    pub sweep: u64,
    /// Every server, in configuration order.
    pub servers: Vec<ServerSnapshot>,
}

impl From<&core_::FleetSnapshot> for FleetSnapshot {
    fn from(s: &core_::FleetSnapshot) -> Self {
        FleetSnapshot {
            taken_at_ms: s.taken_at.as_millis(),
            sweep: s.sweep,
            servers: s.servers.iter().map(Into::into).collect(),
        }
    }
}

/// What to do to a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ActionKind {
    /// `start`, then wait until running.
    Start,
    /// `stop`, then wait until idle.
    Stop,
    /// `stop`, wait until idle, `start`, wait until running.
    Restart,
}

impl From<core_::ActionKind> for ActionKind {
    fn from(k: core_::ActionKind) -> Self {
        match k {
            core_::ActionKind::Start => ActionKind::Start,
            core_::ActionKind::Stop => ActionKind::Stop,
            _ => ActionKind::Restart,
        }
    }
}

impl From<ActionKind> for core_::ActionKind {
    fn from(k: ActionKind) -> Self {
        match k {
            ActionKind::Start => core_::ActionKind::Start,
            ActionKind::Stop => core_::ActionKind::Stop,
            ActionKind::Restart => core_::ActionKind::Restart,
        }
    }
}

/// How long one phase of an action took.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PhaseTiming {
    /// `probe`, `stop`, `wait_idle`, `start` or `wait_running`.
    pub phase: String,
    /// Its duration.
    pub duration_ms: u64,
}

impl From<&core_::PhaseReport> for PhaseTiming {
    fn from(p: &core_::PhaseReport) -> Self {
        PhaseTiming { phase: p.phase.as_str().to_owned(), duration_ms: ms(p.duration) }
    }
}

/// How an action ended, with the timing of each phase.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ActionReport {
    /// The action's id.
    pub action_id: u64,
    /// The server.
    pub server_id: String,
    /// The channel.
    pub channel: u32,
    /// Start, stop or restart.
    pub kind: ActionKind,
    /// The batch it belonged to, if any.
    pub batch_id: Option<u64>,
    /// True when it succeeded.
    pub ok: bool,
    /// Why it failed (`stop_failed`, `stop_timeout`, `busy`, ...).
    pub error_kind: Option<String>,
    /// Why it failed, for humans.
    pub error: Option<String>,
    /// The request failure behind `error`, if one is (`unreachable` tells
    /// a server that could not be reached from one that answered badly).
    pub cause: Option<PollFailure>,
    /// The channel's last seen state.
    pub final_state: Option<String>,
    /// Each phase, in order.
    pub phases: Vec<PhaseTiming>,
    /// Start to finish.
    pub duration_ms: u64,
    /// When it started, on the cluster's clock.
    pub started_at_ms: u64,
    /// When it finished, on the cluster's clock.
    pub finished_at_ms: u64,
    /// One line for logs.
    pub summary: String,
}

impl From<&core_::ActionReport> for ActionReport {
    fn from(r: &core_::ActionReport) -> Self {
        let error = r.outcome.as_ref().err();
        ActionReport {
            action_id: r.action.0,
            server_id: r.server.to_string(),
            channel: r.channel.get(),
            kind: r.kind.into(),
            batch_id: r.batch.map(|b| b.0),
            ok: r.is_ok(),
            error_kind: error.map(|e| e.kind().to_owned()),
            error: error.map(ToString::to_string),
            cause: r.cause().map(Into::into),
            final_state: r.final_state.as_ref().map(|s| s.as_str().to_owned()),
            phases: r.phases.iter().map(Into::into).collect(),
            duration_ms: ms(r.duration()),
            started_at_ms: r.started_at.as_millis(),
            finished_at_ms: r.finished_at.as_millis(),
            summary: r.summary(),
        }
    }
}

/// One channel of a batch.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BatchTarget {
    /// The server.
    pub server_id: String,
    /// The channel (from 1).
    pub channel: u32,
}

impl From<&core_::BatchTarget> for BatchTarget {
    fn from(t: &core_::BatchTarget) -> Self {
        BatchTarget { server_id: t.server.to_string(), channel: t.channel.get() }
    }
}

fn channel_id(server: &str, channel: u32) -> Result<core_::ChannelId, IpvtlError> {
    core_::ChannelId::new(channel).ok_or_else(|| {
        IpvtlError::ChannelNotFound(format!("server {server}: channel 0 does not exist (channels are numbered from 1)"))
    })
}

impl TryFrom<BatchTarget> for core_::BatchTarget {
    type Error = IpvtlError;
    fn try_from(t: BatchTarget) -> Result<Self, IpvtlError> {
        let channel = channel_id(&t.server_id, t.channel)?;
        Ok(core_::BatchTarget { server: t.server_id.into(), channel })
    }
}

/// Chooses channels from the fleet's last known state. Empty lists match
/// everything; servers without a known status or in maintenance never match.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct BatchFilter {
    /// Only these servers.
    #[uniffi(default)]
    pub servers: Vec<String>,
    /// Only servers with at least one of these tags.
    #[uniffi(default)]
    pub tags: Vec<String>,
    /// Only channels in one of these states (`idle`, `running`, ...).
    #[uniffi(default)]
    pub states: Vec<String>,
    /// Only these channel numbers.
    #[uniffi(default)]
    pub channels: Vec<u32>,
}

impl TryFrom<BatchFilter> for core_::BatchFilter {
    type Error = IpvtlError;
    fn try_from(f: BatchFilter) -> Result<Self, IpvtlError> {
        Ok(core_::BatchFilter {
            servers: f.servers.into_iter().map(Into::into).collect(),
            tags: f.tags,
            states: f.states.iter().map(|s| core_::ChannelState::parse(s)).collect(),
            channels: f.channels.into_iter().map(|c| channel_id("filter", c)).collect::<Result<_, _>>()?,
        })
    }
}

/// Which channels a batch acts on.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum BatchTargets {
    /// Exactly these channels, in this order.
    Channels {
        /// The channels.
        targets: Vec<BatchTarget>,
    },
    /// Whatever matches, in fleet order.
    Filter {
        /// The filter.
        filter: BatchFilter,
    },
}

/// A batch to run: one kind of action over many channels, a few at a time.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BatchSpec {
    /// What to do to each channel.
    pub kind: ActionKind,
    /// Which channels.
    pub targets: BatchTargets,
    /// Actions under way at once, at least 1.
    #[uniffi(default = 4)]
    pub max_parallel: u32,
    /// Stop starting new actions after the first failure.
    #[uniffi(default = false)]
    pub stop_on_failure: bool,
    /// Stop starting new actions once this many have failed.
    #[uniffi(default = None)]
    pub failure_threshold: Option<u32>,
}

impl TryFrom<BatchSpec> for core_::BatchSpec {
    type Error = IpvtlError;
    fn try_from(s: BatchSpec) -> Result<Self, IpvtlError> {
        let targets = match s.targets {
            BatchTargets::Channels { targets } => {
                core_::Targets::Channels(targets.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?)
            }
            BatchTargets::Filter { filter } => core_::Targets::Filter(filter.try_into()?),
        };
        Ok(core_::BatchSpec {
            max_parallel: s.max_parallel as usize,
            stop_on_failure: s.stop_on_failure,
            failure_threshold: s.failure_threshold.map(|n| n as usize),
            ..core_::BatchSpec::new(s.kind.into(), targets)
        })
    }
}

/// How a batch ended: one report per channel.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BatchReport {
    /// The batch's id.
    pub batch_id: u64,
    /// What it did.
    pub kind: ActionKind,
    /// One report per channel, in target order.
    pub reports: Vec<ActionReport>,
    /// Actions that succeeded.
    pub ok: u32,
    /// Actions that ran and failed.
    pub failed: u32,
    /// Actions not run because the batch stopped first.
    pub skipped: u32,
    /// Why the batch stopped early, if it did.
    pub stopped_early: Option<String>,
    /// Start to finish.
    pub duration_ms: u64,
}

impl From<&core_::BatchReport> for BatchReport {
    fn from(r: &core_::BatchReport) -> Self {
        BatchReport {
            batch_id: r.batch.0,
            kind: r.kind.into(),
            reports: r.reports.iter().map(Into::into).collect(),
            ok: count(r.ok()),
            failed: count(r.failed()),
            skipped: count(r.skipped()),
            stopped_early: r.stopped_early.clone(),
            duration_ms: r.finished_at.as_millis().saturating_sub(r.started_at.as_millis()),
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

impl From<&core_::ReloadSummary> for ReloadSummary {
    fn from(r: &core_::ReloadSummary) -> Self {
        let ids = |v: &[core_::ServerId]| v.iter().map(ToString::to_string).collect();
        ReloadSummary { added: ids(&r.added), removed: ids(&r.removed), changed: ids(&r.changed), kept: count(r.kept) }
    }
}
