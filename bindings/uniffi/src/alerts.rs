//! Alerts over a cluster: [`Cluster::watch_alerts`] runs the client's
//! alert watch (`ipvtl_client::alerts`) and returns an [`AlertWatch`] that
//! hands out its notifications, pulled one at a time (`next`,
//! `next_blocking`), with its active alerts, history and silences.
//! Records mirror the wire views (`NotificationView`, `AlertView`,
//! `AlertHistoryView`, `SilenceView`); a silence given
//! ([`SilenceSpec`]) goes to the client's `SilenceInput` as given and is
//! checked there.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use ipvtl_client::alerts::{AlertRules, AlertWatch as Inner, SilenceInput};
use ipvtl_client::core::alert::{Notification, SilenceId};
use ipvtl_client::wire::{self, Wall};
use ipvtl_client::SmolClock;

use crate::cluster::Cluster;
use crate::error::IpvtlError;

/// A notification: an alert began (`firing`) or is over (`resolved`).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct AlertNotification {
    /// Stable and unique per notification: `FINGERPRINT-KIND-STARTS_AT_MS`.
    pub id: String,
    /// `firing` or `resolved`.
    pub kind: String,
    /// The alert's identity (16 hex digits).
    pub fingerprint: String,
    /// The alert's labels (`alertname`, `severity`, `server`, ...).
    pub labels: HashMap<String, String>,
    /// `summary` and `description`.
    pub annotations: HashMap<String, String>,
    /// When the alert fired (Unix seconds).
    pub starts_at: f64,
    /// When it resolved; `None` while firing.
    pub ends_at: Option<f64>,
}

impl From<wire::NotificationView> for AlertNotification {
    fn from(v: wire::NotificationView) -> Self {
        AlertNotification {
            id: v.id,
            kind: v.kind,
            fingerprint: v.fingerprint,
            labels: v.labels.into_iter().collect(),
            annotations: v.annotations.into_iter().collect(),
            starts_at: v.starts_at,
            ends_at: v.ends_at,
        }
    }
}

/// An active alert: pending, firing or silenced.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ActiveAlert {
    /// Its identity.
    pub fingerprint: String,
    /// The rule that raised it (`server_down`, ...).
    pub rule: String,
    /// Its `alertname` label (`IpvtlServerDown`, ...).
    pub alertname: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// `summary` and `description`.
    pub annotations: HashMap<String, String>,
    /// `pending`, `firing` or `silenced`.
    pub state: String,
    /// In `state` since (Unix seconds).
    pub state_since_at: f64,
    /// When its condition was first seen.
    pub active_since_at: f64,
    /// When it fired, if it did.
    pub fired_at: Option<f64>,
    /// What mutes it: `maintenance` or `silence` (then `silence_id`).
    pub silenced_by: Option<String>,
    /// The silence that mutes it.
    pub silence_id: Option<u64>,
    /// For a failure rule: when it resolves unless it fails again.
    pub until_at: Option<f64>,
}

impl From<wire::AlertView> for ActiveAlert {
    fn from(v: wire::AlertView) -> Self {
        ActiveAlert {
            fingerprint: v.fingerprint,
            rule: v.rule.into(),
            alertname: v.alertname.into(),
            labels: v.labels.into_iter().collect(),
            annotations: v.annotations.into_iter().collect(),
            state: v.state.into(),
            state_since_at: v.state_since_at,
            active_since_at: v.active_since_at,
            fired_at: v.fired_at,
            silenced_by: v.silenced_by.map(Into::into),
            silence_id: v.silence_id,
            until_at: v.until_at,
        }
    }
}

/// An alert that ended after it fired, or would have (silenced).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct EndedAlert {
    /// Its identity.
    pub fingerprint: String,
    /// The rule that raised it.
    pub rule: String,
    /// Its `alertname` label.
    pub alertname: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// Its last annotations.
    pub annotations: HashMap<String, String>,
    /// When its condition was first seen (Unix seconds).
    pub active_since_at: f64,
    /// When it fired, if it was notified.
    pub fired_at: Option<f64>,
    /// When it ended.
    pub ended_at: f64,
    /// It ended while silenced (never notified).
    pub silenced: bool,
}

impl From<wire::AlertHistoryView> for EndedAlert {
    fn from(v: wire::AlertHistoryView) -> Self {
        EndedAlert {
            fingerprint: v.fingerprint,
            rule: v.rule.into(),
            alertname: v.alertname.into(),
            labels: v.labels.into_iter().collect(),
            annotations: v.annotations.into_iter().collect(),
            active_since_at: v.active_since_at,
            fired_at: v.fired_at,
            ended_at: v.ended_at,
            silenced: v.silenced,
        }
    }
}

/// A silence in force.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct AlertSilence {
    /// Its id.
    pub id: u64,
    /// All must match: `name="value"` or `name!="value"`.
    pub matchers: Vec<String>,
    /// When it ends (Unix seconds); `None`: as long as the watch (a
    /// silence of the rules without an end).
    pub ends_at: Option<f64>,
    /// Why.
    pub comment: String,
    /// `file` (came with the rules) or `api` (added with `silence`).
    pub origin: String,
}

impl From<wire::SilenceView> for AlertSilence {
    fn from(v: wire::SilenceView) -> Self {
        AlertSilence { id: v.id, matchers: v.matchers, ends_at: v.ends_at, comment: v.comment, origin: v.origin.into() }
    }
}

/// A silence to add: matchers (`name=value`, `name!=value`) and its end,
/// `ends_at` (Unix seconds) or `duration_ms`, exactly one.
#[derive(Debug, Clone, Default, PartialEq, uniffi::Record)]
pub struct SilenceSpec {
    /// All must match.
    pub matchers: Vec<String>,
    /// When it ends, Unix seconds.
    #[uniffi(default = None)]
    pub ends_at: Option<f64>,
    /// Or how long from now.
    #[uniffi(default = None)]
    pub duration_ms: Option<u64>,
    /// Why, and who asked.
    #[uniffi(default = None)]
    pub comment: Option<String>,
}

impl From<SilenceSpec> for SilenceInput {
    fn from(s: SilenceSpec) -> Self {
        SilenceInput { matchers: s.matchers, ends_at: s.ends_at, duration_ms: s.duration_ms, comment: s.comment }
    }
}

/// Alerts evaluated over a cluster on a thread of their own. Notifications
/// come in order and queue until read. `cancel()` (or dropping it: Kotlin
/// `close()`) stops it; it also ends when its cluster shuts down.
#[derive(uniffi::Object)]
pub struct AlertWatch {
    inner: Inner,
    clock: SmolClock,
}

impl AlertWatch {
    fn note(&self, n: Option<Notification>) -> Option<AlertNotification> {
        n.map(|n| wire::NotificationView::new(&n, None, Wall(&self.clock)).into())
    }
}

#[uniffi::export]
impl AlertWatch {
    /// The next notification; `None` once the watch has ended.
    pub async fn next(&self) -> Option<AlertNotification> {
        self.note(self.inner.recv().await)
    }

    /// Waits at most `timeout_ms` for the next notification.
    pub fn next_blocking(&self, timeout_ms: u64) -> Option<AlertNotification> {
        let timeout = Duration::from_millis(timeout_ms);
        let n = smol::block_on(async {
            futures::select! {
                n = self.inner.recv().fuse() => n,
                _ = FutureExt::fuse(smol::Timer::after(timeout)) => None,
            }
        });
        self.note(n)
    }

    /// The next notification if one is waiting.
    pub fn try_next(&self) -> Option<AlertNotification> {
        self.note(self.inner.try_recv())
    }

    /// Every active alert (pending, firing or silenced).
    pub fn alerts(&self) -> Vec<ActiveAlert> {
        self.inner.alert_views().into_iter().map(Into::into).collect()
    }

    /// Recent ended alerts, oldest first.
    pub fn history(&self) -> Vec<EndedAlert> {
        self.inner.history_views().into_iter().map(Into::into).collect()
    }

    /// The silences in force.
    pub fn silences(&self) -> Vec<AlertSilence> {
        self.inner.silence_views().into_iter().map(Into::into).collect()
    }

    /// Adds a silence; returns its id. A malformed matcher, one that would
    /// mute everything, or a missing or past end is `Invalid`, saying why.
    pub fn silence(&self, spec: SilenceSpec) -> Result<u64, IpvtlError> {
        Ok(self.inner.add_silence(spec.into())?.0)
    }

    /// Ends silence `id` now (what it held and still holds fires); false
    /// when there is no such silence in force.
    pub fn expire_silence(&self, id: u64) -> bool {
        self.inner.expire_silence(SilenceId(id))
    }

    /// Times the watch fell behind the cluster's events and judged a fresh
    /// snapshot instead.
    pub fn resyncs(&self) -> u64 {
        self.inner.resyncs()
    }

    /// True until the watch has ended.
    pub fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    /// Stops the watch now: readers get what is queued, then `None`.
    /// Idempotent. (Not `close`: Kotlin's `AutoCloseable.close()` frees the
    /// object.)
    pub fn cancel(&self) {
        self.inner.close()
    }
}

#[uniffi::export]
impl Cluster {
    /// Runs the alert rules over this cluster and returns the watch that
    /// hands out their notifications. `rules_toml`: the dashboard's alerts
    /// file (its `[rules.*]`, `[[silences]]` and `history`), `None` for the
    /// defaults; refused rules are `Invalid`, naming the line and why.
    #[uniffi::method(default(rules_toml = None))]
    pub fn watch_alerts(&self, rules_toml: Option<String>) -> Result<Arc<AlertWatch>, IpvtlError> {
        let rules = match rules_toml {
            Some(text) => AlertRules::from_toml_str(&text)?,
            None => AlertRules::default(),
        };
        let inner = self.client().watch_alerts(rules)?;
        Ok(Arc::new(AlertWatch { inner, clock: *self.client().clock() }))
    }
}
