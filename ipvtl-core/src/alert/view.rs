//! What the evaluator shows: active alerts, notifications, history.

use core::fmt;

use super::labels::{Fingerprint, Labels};
use super::rules::RuleKind;
use super::silence::SilenceId;
use crate::time::Instant;

/// Where an alert is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum AlertState {
    /// The condition holds, for less than the rule's `for`.
    Pending,
    /// Fired and notified.
    Firing,
    /// Would fire, but a silence or maintenance holds it.
    Silenced,
}

impl AlertState {
    /// `pending`, `firing` or `silenced`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Silenced => "silenced",
        }
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What mutes an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Silencer {
    /// A silence (the oldest active one that matches).
    Silence(SilenceId),
    /// Its server is in maintenance.
    Maintenance,
}

/// An active alert, as the evaluator tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Its identity.
    pub fingerprint: Fingerprint,
    /// The rule that raised it.
    pub rule: RuleKind,
    /// Its labels.
    pub labels: Labels,
    /// `summary` and `description`, as of the latest observation.
    pub annotations: Labels,
    /// Pending, firing or silenced.
    pub state: AlertState,
    /// In `state` since.
    pub since: Instant,
    /// When the condition was first seen.
    pub active_since: Instant,
    /// When its `firing` notification was emitted, if it was.
    pub fired_at: Option<Instant>,
    /// What mutes it now, if anything (also while pending).
    pub silenced_by: Option<Silencer>,
    /// For the failure rules: when it resolves unless it fails again.
    pub until: Option<Instant>,
}

/// Firing or resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum NotificationKind {
    /// The alert began.
    Firing,
    /// The alert is over.
    Resolved,
}

impl NotificationKind {
    /// `firing` or `resolved`, as in Alertmanager's payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Firing => "firing",
            NotificationKind::Resolved => "resolved",
        }
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something to deliver: one per firing, one per resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Firing or resolved.
    pub kind: NotificationKind,
    /// The alert's identity.
    pub fingerprint: Fingerprint,
    /// The alert's labels.
    pub labels: Labels,
    /// `summary` and `description`.
    pub annotations: Labels,
    /// When the alert fired (Alertmanager's `startsAt`).
    pub starts_at: Instant,
    /// When it resolved (`endsAt`); `None` while firing.
    pub ends_at: Option<Instant>,
}

/// An alert that ended after it fired or would have (silenced).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Its identity.
    pub fingerprint: Fingerprint,
    /// The rule that raised it.
    pub rule: RuleKind,
    /// Its labels.
    pub labels: Labels,
    /// Its last annotations.
    pub annotations: Labels,
    /// When the condition was first seen.
    pub active_since: Instant,
    /// When it fired, if it was notified.
    pub fired_at: Option<Instant>,
    /// When it ended.
    pub ended_at: Instant,
    /// True when it ended while silenced.
    pub silenced: bool,
}
