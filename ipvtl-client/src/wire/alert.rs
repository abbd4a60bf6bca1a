//! Alerts: the active ones, the ended ones, notifications as receivers get
//! them, and silences.

use std::collections::BTreeMap;

use ipvtl_core::alert::{Alert, HistoryEntry, Notification, Silence, SilenceId, Silencer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Wall;

/// An active alert: pending, firing or silenced.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct AlertView {
    /// Its identity: a stable hash of its labels, 16 hex digits.
    pub fingerprint: String,
    /// The rule that raised it (`server_down`, `channel_stalled`, ...).
    pub rule: &'static str,
    /// Its `alertname` label (`IpvtlServerDown`, ...).
    pub alertname: &'static str,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// `summary` and `description`.
    pub annotations: BTreeMap<String, String>,
    /// `pending`, `firing` or `silenced`.
    pub state: &'static str,
    /// In `state` since.
    pub state_since_at: f64,
    /// When its condition was first seen.
    pub active_since_at: f64,
    /// When it fired (its `firing` notification), if it did.
    pub fired_at: Option<f64>,
    /// What mutes it: `maintenance` or `silence` (then `silence_id`).
    pub silenced_by: Option<&'static str>,
    /// The silence that mutes it.
    pub silence_id: Option<u64>,
    /// For a failure rule: when it resolves unless it fails again.
    pub until_at: Option<f64>,
}

impl AlertView {
    /// The view of an active alert.
    pub fn new(a: &Alert, wall: Wall<'_>) -> Self {
        let (silenced_by, silence_id) = match a.silenced_by {
            Some(Silencer::Maintenance) => (Some("maintenance"), None),
            Some(Silencer::Silence(id)) => (Some("silence"), Some(id.0)),
            _ => (None, None),
        };
        AlertView {
            fingerprint: a.fingerprint.to_string(),
            rule: a.rule.as_str(),
            alertname: a.rule.alertname(),
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            state: a.state.as_str(),
            state_since_at: wall.at(a.since),
            active_since_at: wall.at(a.active_since),
            fired_at: a.fired_at.map(|t| wall.at(t)),
            silenced_by,
            silence_id,
            until_at: a.until.map(|t| wall.at(t)),
        }
    }
}

/// An alert that ended after it fired, or would have (silenced).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct AlertHistoryView {
    /// Its identity.
    pub fingerprint: String,
    /// The rule that raised it.
    pub rule: &'static str,
    /// Its `alertname` label.
    pub alertname: &'static str,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its last annotations.
    pub annotations: BTreeMap<String, String>,
    /// When its condition was first seen.
    pub active_since_at: f64,
    /// When it fired, if it was notified.
    pub fired_at: Option<f64>,
    /// When it ended.
    pub ended_at: f64,
    /// True when it ended while silenced (never notified).
    pub silenced: bool,
}

impl AlertHistoryView {
    /// The view of an ended alert.
    pub fn new(h: &HistoryEntry, wall: Wall<'_>) -> Self {
        AlertHistoryView {
            fingerprint: h.fingerprint.to_string(),
            rule: h.rule.as_str(),
            alertname: h.rule.alertname(),
            labels: h.labels.clone(),
            annotations: h.annotations.clone(),
            active_since_at: wall.at(h.active_since),
            fired_at: h.fired_at.map(|t| wall.at(t)),
            ended_at: wall.at(h.ended_at),
            silenced: h.silenced,
        }
    }
}

/// A notification, as kept in the dashboard's outbox and sent to
/// receivers (a CloudEvent's `data`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NotificationView {
    /// Stable and unique per notification, the same for every receiver and
    /// retry: `FINGERPRINT-KIND-STARTS_AT_MS`.
    pub id: String,
    /// `firing` or `resolved`.
    pub kind: String,
    /// The alert's fingerprint.
    pub fingerprint: String,
    /// The alert's labels.
    pub labels: BTreeMap<String, String>,
    /// `summary` and `description`.
    pub annotations: BTreeMap<String, String>,
    /// When the alert fired.
    pub starts_at: f64,
    /// When it resolved (`null` while firing).
    pub ends_at: Option<f64>,
}

impl NotificationView {
    /// The view of a notification; `starts_at` when the driver knows
    /// better than the clock (an alert fired before this run started).
    pub fn new(n: &Notification, starts_at: Option<f64>, wall: Wall<'_>) -> Self {
        let fingerprint = n.fingerprint.to_string();
        let kind = n.kind.as_str().to_owned();
        let starts_at = starts_at.unwrap_or_else(|| wall.at(n.starts_at));
        NotificationView {
            id: Self::id_of(&fingerprint, &kind, starts_at),
            kind,
            fingerprint,
            labels: n.labels.clone(),
            annotations: n.annotations.clone(),
            starts_at,
            ends_at: n.ends_at.map(|t| wall.at(t)),
        }
    }

    /// The id of notification `kind` of alert `fingerprint` fired at
    /// `starts_at` (Unix seconds).
    pub fn id_of(fingerprint: &str, kind: &str, starts_at: f64) -> String {
        format!("{fingerprint}-{kind}-{}", (starts_at.max(0.0) * 1000.0).round() as u64)
    }
}

/// A silence in force.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct SilenceView {
    /// Its id.
    pub id: u64,
    /// All must match: `name="value"` or `name!="value"`.
    pub matchers: Vec<String>,
    /// When it ends (`null`: as long as the file that set it).
    pub ends_at: Option<f64>,
    /// Why.
    pub comment: String,
    /// Who made it (a key's name or an address), for those made through
    /// the API.
    pub created_by: Option<String>,
    /// When it was made through the API.
    pub created_at: Option<f64>,
    /// `api` or `file`.
    pub origin: &'static str,
}

impl SilenceView {
    /// The view of silence `id`; `ends_at` `None` for one without an end.
    pub fn new(id: SilenceId, s: &Silence, ends_at: Option<f64>, origin: &'static str) -> Self {
        SilenceView {
            id: id.0,
            matchers: s.matchers.iter().map(ToString::to_string).collect(),
            ends_at,
            comment: s.comment.clone(),
            created_by: None,
            created_at: None,
            origin,
        }
    }
}
