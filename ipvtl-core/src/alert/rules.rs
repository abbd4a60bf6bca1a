//! The built-in rules: their settings, and what each sees in a snapshot.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use super::labels::Labels;
use crate::action::ActionReport;
use crate::batch::BatchReport;
use crate::fleet::FleetSnapshot;
use crate::ids::{ChannelId, ServerId};
use crate::model::{Health, ServerConfig};
use crate::reconcile::Drift;

/// How urgent an alert is (its `severity` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// Someone should look now.
    Critical,
    /// Someone should look soon.
    Warning,
    /// For the record.
    Info,
}

impl Severity {
    /// `critical`, `warning` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The built-in rules. Each gives its alerts an `alertname` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RuleKind {
    /// A server offline or in error (`IpvtlServerDown`).
    ServerDown,
    /// A running channel that makes no progress (`IpvtlChannelStalled`).
    ChannelStalled,
    /// A managed channel not doing what it should (`IpvtlChannelDrift`).
    Drift,
    /// A channel still drifting after its heal limit (`IpvtlHealDegraded`).
    HealDegraded,
    /// Healing paused fleet-wide by the storm guard (`IpvtlHealingPaused`).
    HealingPaused,
    /// A server's average CPU above a threshold (`IpvtlCpuHigh`).
    CpuHigh,
    /// A start, stop or restart failed (`IpvtlActionFailed`).
    ActionFailed,
    /// A batch ended with failures (`IpvtlBatchFailed`).
    BatchFailed,
    /// The dashboard's store refuses writes (`IpvtlStoreFailing`).
    StoreFailing,
}

impl RuleKind {
    /// Every rule.
    pub const ALL: [RuleKind; 9] = [
        RuleKind::ServerDown,
        RuleKind::ChannelStalled,
        RuleKind::Drift,
        RuleKind::HealDegraded,
        RuleKind::HealingPaused,
        RuleKind::CpuHigh,
        RuleKind::ActionFailed,
        RuleKind::BatchFailed,
        RuleKind::StoreFailing,
    ];

    /// The rules judged from each [`FleetSnapshot`]: an alert of these
    /// ends when a snapshot no longer shows its condition.
    pub(crate) const FROM_SNAPSHOT: [RuleKind; 5] =
        [RuleKind::ServerDown, RuleKind::ChannelStalled, RuleKind::Drift, RuleKind::HealDegraded, RuleKind::CpuHigh];

    /// The rule's name in settings: `server_down`, `channel_stalled`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::ServerDown => "server_down",
            RuleKind::ChannelStalled => "channel_stalled",
            RuleKind::Drift => "drift",
            RuleKind::HealDegraded => "heal_degraded",
            RuleKind::HealingPaused => "healing_paused",
            RuleKind::CpuHigh => "cpu_high",
            RuleKind::ActionFailed => "action_failed",
            RuleKind::BatchFailed => "batch_failed",
            RuleKind::StoreFailing => "store_failing",
        }
    }

    /// The `alertname` label of its alerts: `IpvtlServerDown`, ...
    pub fn alertname(self) -> &'static str {
        match self {
            RuleKind::ServerDown => "IpvtlServerDown",
            RuleKind::ChannelStalled => "IpvtlChannelStalled",
            RuleKind::Drift => "IpvtlChannelDrift",
            RuleKind::HealDegraded => "IpvtlHealDegraded",
            RuleKind::HealingPaused => "IpvtlHealingPaused",
            RuleKind::CpuHigh => "IpvtlCpuHigh",
            RuleKind::ActionFailed => "IpvtlActionFailed",
            RuleKind::BatchFailed => "IpvtlBatchFailed",
            RuleKind::StoreFailing => "IpvtlStoreFailing",
        }
    }

    /// True for the rules fed by a single event (a failed action or
    /// batch): they fire at once and resolve after their `hold`.
    pub fn is_event(self) -> bool {
        matches!(self, RuleKind::ActionFailed | RuleKind::BatchFailed)
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings of a rule about a lasting condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Off: the rule raises nothing (and its alerts end).
    pub enabled: bool,
    /// How long the condition must hold before the alert fires; until
    /// then it is pending, and it is forgotten if the condition ends.
    pub r#for: Duration,
    /// The `severity` label.
    pub severity: Severity,
}

impl Rule {
    /// An enabled rule.
    pub const fn new(r#for: Duration, severity: Severity) -> Self {
        Rule { enabled: true, r#for, severity }
    }
}

/// Settings of [`RuleKind::CpuHigh`].
#[derive(Clone, Debug, PartialEq)]
pub struct CpuRule {
    /// Off: the rule raises nothing.
    pub enabled: bool,
    /// How long the average must stay at or above `percent`.
    pub r#for: Duration,
    /// The `severity` label.
    pub severity: Severity,
    /// The threshold: the mean over all cores, in percent (0 < x ≤ 100).
    pub percent: f32,
}

/// Settings of a rule fed by single events (a failure): the alert fires
/// at once and resolves `hold` after the last failure, or earlier when
/// the thing that failed succeeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureRule {
    /// Off: the rule raises nothing.
    pub enabled: bool,
    /// How long the alert stays after the last failure (> 0).
    pub hold: Duration,
    /// The `severity` label.
    pub severity: Severity,
}

/// Settings of [`RuleKind::ActionFailed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionFailedRule {
    /// Off: the rule raises nothing.
    pub enabled: bool,
    /// How long the alert stays after the channel's last failure (> 0);
    /// a later successful action on the channel resolves it at once.
    pub hold: Duration,
    /// The `severity` label.
    pub severity: Severity,
    /// Also alert on failed heals (off by default: a channel that heals
    /// in vain ends [`RuleKind::HealDegraded`]).
    pub heals: bool,
    /// Also alert per action of a batch (off by default: the batch's own
    /// [`RuleKind::BatchFailed`] alert tells, once).
    pub batch_actions: bool,
}

/// Every rule's settings, and the size of the history. Validate with
/// [`validate`](Self::validate) (the [`super::Alerts`] does on `new` and
/// `set_config`).
#[derive(Clone, Debug, PartialEq)]
pub struct AlertConfig {
    /// Offline or error for `for` (default 60 s, critical).
    pub server_down: Rule,
    /// Stalled (0 fps or frozen uptime) for `for` (default 30 s, warning).
    pub channel_stalled: Rule,
    /// Drifting for `for` (default 60 s, warning).
    pub drift: Rule,
    /// Degraded (default at once, critical).
    pub heal_degraded: Rule,
    /// Healing paused by the storm guard (default at once, critical).
    pub healing_paused: Rule,
    /// Average CPU ≥ 90 % for 5 minutes (warning).
    pub cpu_high: CpuRule,
    /// A failed action, held 15 minutes (warning).
    pub action_failed: ActionFailedRule,
    /// A batch with failures, held 15 minutes (warning).
    pub batch_failed: FailureRule,
    /// The store failing for `for` (default 30 s, critical).
    pub store_failing: Rule,
    /// Ended alerts kept in [`super::Alerts::history`] (default 256).
    pub history: usize,
}

impl Default for AlertConfig {
    fn default() -> Self {
        let s = Duration::from_secs;
        AlertConfig {
            server_down: Rule::new(s(60), Severity::Critical),
            channel_stalled: Rule::new(s(30), Severity::Warning),
            drift: Rule::new(s(60), Severity::Warning),
            heal_degraded: Rule::new(Duration::ZERO, Severity::Critical),
            healing_paused: Rule::new(Duration::ZERO, Severity::Critical),
            cpu_high: CpuRule { enabled: true, r#for: s(300), severity: Severity::Warning, percent: 90.0 },
            action_failed: ActionFailedRule {
                enabled: true,
                hold: s(900),
                severity: Severity::Warning,
                heals: false,
                batch_actions: false,
            },
            batch_failed: FailureRule { enabled: true, hold: s(900), severity: Severity::Warning },
            store_failing: Rule::new(s(30), Severity::Critical),
            history: 256,
        }
    }
}

impl AlertConfig {
    /// Checks the settings: a CPU threshold above 0 and at most 100, holds
    /// longer than zero. The first problem is returned.
    pub fn validate(&self) -> Result<(), AlertConfigError> {
        let p = self.cpu_high.percent;
        if !(p > 0.0 && p <= 100.0) {
            return Err(AlertConfigError::CpuPercent { percent: p });
        }
        if self.action_failed.hold.is_zero() {
            return Err(AlertConfigError::ZeroHold { rule: RuleKind::ActionFailed });
        }
        if self.batch_failed.hold.is_zero() {
            return Err(AlertConfigError::ZeroHold { rule: RuleKind::BatchFailed });
        }
        Ok(())
    }

    /// Whether `rule` is on.
    pub fn enabled(&self, rule: RuleKind) -> bool {
        match rule {
            RuleKind::ServerDown => self.server_down.enabled,
            RuleKind::ChannelStalled => self.channel_stalled.enabled,
            RuleKind::Drift => self.drift.enabled,
            RuleKind::HealDegraded => self.heal_degraded.enabled,
            RuleKind::HealingPaused => self.healing_paused.enabled,
            RuleKind::CpuHigh => self.cpu_high.enabled,
            RuleKind::ActionFailed => self.action_failed.enabled,
            RuleKind::BatchFailed => self.batch_failed.enabled,
            RuleKind::StoreFailing => self.store_failing.enabled,
        }
    }

    /// How long `rule`'s condition must hold before firing (zero for the
    /// event rules).
    pub fn for_of(&self, rule: RuleKind) -> Duration {
        match rule {
            RuleKind::ServerDown => self.server_down.r#for,
            RuleKind::ChannelStalled => self.channel_stalled.r#for,
            RuleKind::Drift => self.drift.r#for,
            RuleKind::HealDegraded => self.heal_degraded.r#for,
            RuleKind::HealingPaused => self.healing_paused.r#for,
            RuleKind::CpuHigh => self.cpu_high.r#for,
            RuleKind::ActionFailed | RuleKind::BatchFailed => Duration::ZERO,
            RuleKind::StoreFailing => self.store_failing.r#for,
        }
    }

    /// The `severity` of `rule`'s alerts.
    pub fn severity(&self, rule: RuleKind) -> Severity {
        match rule {
            RuleKind::ServerDown => self.server_down.severity,
            RuleKind::ChannelStalled => self.channel_stalled.severity,
            RuleKind::Drift => self.drift.severity,
            RuleKind::HealDegraded => self.heal_degraded.severity,
            RuleKind::HealingPaused => self.healing_paused.severity,
            RuleKind::CpuHigh => self.cpu_high.severity,
            RuleKind::ActionFailed => self.action_failed.severity,
            RuleKind::BatchFailed => self.batch_failed.severity,
            RuleKind::StoreFailing => self.store_failing.severity,
        }
    }
}

/// Why an [`AlertConfig`] was refused.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AlertConfigError {
    /// `cpu_high.percent` is not above 0 and at most 100.
    CpuPercent {
        /// The value given.
        percent: f32,
    },
    /// An event rule's `hold` is zero: its alert would end as it fires.
    ZeroHold {
        /// The rule.
        rule: RuleKind,
    },
}

impl fmt::Display for AlertConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlertConfigError::CpuPercent { percent } => {
                write!(f, "rule cpu_high: percent must be above 0 and at most 100, got {percent}")
            }
            AlertConfigError::ZeroHold { rule } => {
                write!(f, "rule {rule}: hold must be longer than 0 (the alert would resolve as it fires)")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AlertConfigError {}

/// A condition a rule sees now: the alert it calls for.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub rule: RuleKind,
    pub labels: Labels,
    pub annotations: Labels,
    pub server: Option<ServerId>,
    pub channel: Option<ChannelId>,
}

fn label(labels: &mut Labels, name: &str, value: impl Into<String>) {
    labels.insert(String::from(name), value.into());
}

fn base(config: &AlertConfig, rule: RuleKind) -> Labels {
    let mut l = Labels::new();
    label(&mut l, "alertname", rule.alertname());
    label(&mut l, "severity", config.severity(rule).as_str());
    l
}

fn notes(summary: String, description: String) -> Labels {
    let mut a = Labels::new();
    label(&mut a, "summary", summary);
    label(&mut a, "description", description);
    a
}

/// An alert about `server` (and `channel`): labels `alertname`,
/// `severity`, `server`, `channel`, and `tags` (comma-joined, in the
/// server's order; absent when it has none).
pub(crate) fn about(
    config: &AlertConfig,
    rule: RuleKind,
    server: &ServerId,
    server_config: Option<&ServerConfig>,
    channel: Option<ChannelId>,
    summary: String,
    description: String,
) -> Candidate {
    let mut labels = base(config, rule);
    label(&mut labels, "server", server.as_str());
    if let Some(c) = channel {
        label(&mut labels, "channel", c.to_string());
    }
    if let Some(tags) = server_config.map(|c| c.tags.join(",")).filter(|t| !t.is_empty()) {
        label(&mut labels, "tags", tags);
    }
    Candidate { rule, labels, annotations: notes(summary, description), server: Some(server.clone()), channel }
}

/// A fleet-wide alert: labels `alertname` and `severity` only.
pub(crate) fn fleet_wide(config: &AlertConfig, rule: RuleKind, summary: String, description: String) -> Candidate {
    Candidate {
        rule,
        labels: base(config, rule),
        annotations: notes(summary, description),
        server: None,
        channel: None,
    }
}

/// What the snapshot rules see in `snapshot`.
pub(crate) fn judge(config: &AlertConfig, snapshot: &FleetSnapshot) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut configs: BTreeMap<&ServerId, &ServerConfig> = BTreeMap::new();
    for s in &snapshot.servers {
        let (c, state) = (&*s.config, &s.state);
        configs.insert(&c.id, c);
        let down = matches!(state.health, Health::Offline | Health::Error);
        if down && config.server_down.enabled {
            let why = state.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
            out.push(about(
                config,
                RuleKind::ServerDown,
                &c.id,
                Some(c),
                None,
                format!("{} is {}", c.name, state.health),
                format!("{} ({}:{}) is {}{why}", c.name, c.host, c.port, state.health),
            ));
        }
        // Channel and CPU rules judge fresh evidence only: the status of a
        // server that is not online is stale, so its conditions end.
        if state.health != Health::Online {
            continue;
        }
        if config.channel_stalled.enabled {
            for (channel, reason) in &state.stalled {
                out.push(about(
                    config,
                    RuleKind::ChannelStalled,
                    &c.id,
                    Some(c),
                    Some(*channel),
                    format!("{} channel {channel} is stalled", c.name),
                    format!("{} channel {channel} is running but makes no progress ({reason})", c.name),
                ));
            }
        }
        let cpu = state.status.as_ref().and_then(|s| s.cpu_avg());
        if let Some(avg) = cpu.filter(|a| config.cpu_high.enabled && *a >= config.cpu_high.percent) {
            out.push(about(
                config,
                RuleKind::CpuHigh,
                &c.id,
                Some(c),
                None,
                format!("{} CPU at {avg:.0} %", c.name),
                format!("{} average CPU is {avg:.1} %, at or above {} %", c.name, config.cpu_high.percent),
            ));
        }
    }
    for d in &snapshot.drifts {
        let sc = configs.get(&d.server).copied();
        if config.drift.enabled {
            out.push(drift(config, d, sc));
        }
        if d.degraded && config.heal_degraded.enabled {
            out.push(degraded(config, &d.server, d.channel, d.attempts, sc));
        }
    }
    out
}

fn drift(config: &AlertConfig, d: &Drift, sc: Option<&ServerConfig>) -> Candidate {
    let name = sc.map_or(d.server.as_str(), |c| c.name.as_str());
    let observed = match d.stall {
        Some(reason) => format!("stalled ({reason})"),
        None => d.observed.to_string(),
    };
    about(
        config,
        RuleKind::Drift,
        &d.server,
        sc,
        Some(d.channel),
        format!("{name} channel {} drifts", d.channel),
        format!("{name} channel {} should be {}, is {observed}", d.channel, d.desired),
    )
}

pub(crate) fn degraded(
    config: &AlertConfig,
    server: &ServerId,
    channel: ChannelId,
    attempts: u32,
    sc: Option<&ServerConfig>,
) -> Candidate {
    let name = sc.map_or(server.as_str(), |c| c.name.as_str());
    about(
        config,
        RuleKind::HealDegraded,
        server,
        sc,
        Some(channel),
        format!("{name} channel {channel} degraded"),
        format!("{name} channel {channel} still drifts after {attempts} heals: left alone until cleared"),
    )
}

pub(crate) fn action_failed(config: &AlertConfig, report: &ActionReport, sc: Option<&ServerConfig>) -> Candidate {
    let name = sc.map_or(report.server.as_str(), |c| c.name.as_str());
    about(
        config,
        RuleKind::ActionFailed,
        &report.server,
        sc,
        Some(report.channel),
        format!("{} of {name} channel {} failed", report.kind, report.channel),
        report.summary(),
    )
}

pub(crate) fn batch_failed(config: &AlertConfig, report: &BatchReport) -> Candidate {
    let mut c = fleet_wide(
        config,
        RuleKind::BatchFailed,
        format!("batch {} ({}) failed", report.batch, report.kind),
        match &report.stopped_early {
            Some(stop) => format!(
                "{} of {} actions failed, {} skipped: {stop}",
                report.failed(),
                report.reports.len(),
                report.skipped()
            ),
            None => format!("{} of {} actions failed", report.failed(), report.reports.len()),
        },
    );
    label(&mut c.labels, "batch", report.batch.to_string());
    c
}
