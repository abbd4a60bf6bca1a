//! Alert rules: the sans-IO evaluator [`Alerts`].
//!
//! It watches what the fleet machines report and tells when something
//! needs a person: a [`Notification`] `firing` when a problem has lasted,
//! `resolved` when it is over. Delivery (Alertmanager, webhooks, the
//! outbox) is the driver's job; the evaluator decides what and when.
//!
//! ## Alerts
//!
//! An alert is identified by its **label set** ([`Labels`]: `alertname`,
//! `severity`, and `server`, `channel`, `tags`, `batch` where they apply),
//! hashed into a stable [`Fingerprint`]. The same label set is one alert:
//! a condition seen again while its alert is active changes nothing but
//! the annotations (`summary`, `description`). Its life:
//!
//! - **pending** from the moment the condition is first seen, for the
//!   rule's `for`; if the condition ends meanwhile, the alert is forgotten
//!   without a word (a box flapping faster than `for` never pages);
//! - **firing** once `for` has passed: one `firing` notification;
//! - **silenced** instead of firing while a [`Silence`] matches its labels
//!   (matchers `=` and `!=`; no regular expressions, the core has no
//!   regex engine) or its server is in maintenance. Nothing is notified;
//!   when the last silence ends and the condition still holds, it fires
//!   then;
//! - **resolved** when the condition ends: one `resolved` notification,
//!   for every `firing` one and only then. An alert silenced after it
//!   fired stays delivered (no second `firing` when the silence ends) and
//!   its `resolved` is still sent, so no receiver is left with an alert
//!   that never ends; a driver that re-sends active alerts (Alertmanager's
//!   contract) re-sends those in state firing only.
//!
//! Active alerts ([`Alerts::alerts`]) and the recent ended ones
//! ([`Alerts::history`], a bounded ring) are there to read; an alert kept
//! across a restart goes back with [`Alerts::restore_alert`].
//!
//! ## The rules ([`RuleKind`], set in [`AlertConfig`])
//!
//! | rule | condition | labels |
//! |------|-----------|--------|
//! | `server_down` | health offline or error | server, tags |
//! | `channel_stalled` | a running channel stalled, on an online server | server, channel, tags |
//! | `drift` | a managed channel drifts | server, channel, tags |
//! | `heal_degraded` | a drift degraded (snapshot, or [`Event::HealDegraded`] at once) | server, channel, tags |
//! | `healing_paused` | [`Event::HealingPaused`] until [`Event::HealingResumed`] | — |
//! | `cpu_high` | mean CPU ≥ `percent` on an online server | server, tags |
//! | `action_failed` | [`Event::ActionFinished`] failed (not refused) | server, channel, tags |
//! | `batch_failed` | [`Event::BatchFinished`] with failures or stopped early | batch |
//! | `store_failing` | [`Alerts::set_store_failing`] | — |
//!
//! The first five are judged from each [`FleetSnapshot`]: what a snapshot
//! no longer shows has ended (the status of a server that is not online
//! is stale, so its channel and CPU conditions end with it). The two
//! failure rules are fed by single events: they fire at once and resolve
//! `hold` after the last failure, or, for an action, at once when a later
//! action on the same channel succeeds, whichever comes first.
//!
//! ## Driving it
//!
//! Inputs, each with `now`: [`handle_snapshot`](Alerts::handle_snapshot)
//! (after every sweep, or whenever the fleet changed),
//! [`handle_event`](Alerts::handle_event) for every fleet [`Event`],
//! [`set_store_failing`](Alerts::set_store_failing), the silences, and
//! [`handle_timeout`](Alerts::handle_timeout) (safe to call early).
//! Outputs: [`poll_event`](Alerts::poll_event) until `None`, then sleep
//! until [`poll_timeout`](Alerts::poll_timeout) or the next input. Every
//! input first brings the evaluator up to its `now`, so a driver that
//! wakes late loses nothing: an alert whose `for` had passed fires before
//! the input that ends it resolves it.
//!
//! ```
//! use core::time::Duration;
//! use ipvtl_core::alert::{AlertConfig, Alerts, NotificationKind};
//! use ipvtl_core::Instant;
//!
//! let mut config = AlertConfig::default();
//! config.store_failing.r#for = Duration::from_secs(30);
//! let mut alerts = Alerts::new(config).unwrap();
//! alerts.set_store_failing(true, Instant::from_millis(0));
//! assert_eq!(alerts.poll_event(), None, "pending for 30 s");
//! let due = alerts.poll_timeout().unwrap();
//! assert_eq!(due, Instant::from_millis(30_000));
//! alerts.handle_timeout(due);
//! let firing = alerts.poll_event().unwrap();
//! assert_eq!(firing.kind, NotificationKind::Firing);
//! assert_eq!(firing.labels["alertname"], "IpvtlStoreFailing");
//! alerts.set_store_failing(false, Instant::from_millis(45_000));
//! assert_eq!(alerts.poll_event().unwrap().kind, NotificationKind::Resolved);
//! ```

mod labels;
mod rules;
mod silence;
mod view;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

pub use labels::{Fingerprint, Labels};
pub use rules::{ActionFailedRule, AlertConfig, AlertConfigError, CpuRule, FailureRule, Rule, RuleKind, Severity};
pub use silence::{MatchOp, Matcher, Silence, SilenceError, SilenceId};
pub use view::{Alert, AlertState, HistoryEntry, Notification, NotificationKind, Silencer};

use crate::event::Event;
use crate::fleet::FleetSnapshot;
use crate::ids::{ActionId, ChannelId, ServerId};
use crate::model::ServerConfig;
use crate::time::Instant;
use rules::Candidate;

#[derive(Clone, Debug)]
struct Track {
    rule: RuleKind,
    fingerprint: Fingerprint,
    annotations: Labels,
    server: Option<ServerId>,
    channel: Option<ChannelId>,
    active_since: Instant,
    state: AlertState,
    since: Instant,
    fired_at: Option<Instant>,
    silenced_by: Option<Silencer>,
    /// Event alerts: resolves at.
    until: Option<Instant>,
}

/// The sans-IO alert evaluator. See the [module docs](self).
#[derive(Debug)]
pub struct Alerts {
    config: AlertConfig,
    tracks: BTreeMap<Labels, Track>,
    silences: BTreeMap<SilenceId, Silence>,
    next_silence: u64,
    /// Servers in maintenance, as of the last snapshot.
    maintenance: BTreeSet<ServerId>,
    /// Server settings as of the last snapshot (for names and tags).
    servers: BTreeMap<ServerId, Arc<ServerConfig>>,
    /// Healing paused by the storm guard: (troubled, managed).
    storm: Option<(usize, usize)>,
    store_failing: bool,
    /// Actions started as heals, until they finish.
    heals: BTreeSet<ActionId>,
    events: VecDeque<Notification>,
    history: VecDeque<HistoryEntry>,
    now: Instant,
}

impl Default for Alerts {
    /// The default rules.
    fn default() -> Self {
        Alerts {
            config: AlertConfig::default(),
            tracks: BTreeMap::new(),
            silences: BTreeMap::new(),
            next_silence: 0,
            maintenance: BTreeSet::new(),
            servers: BTreeMap::new(),
            storm: None,
            store_failing: false,
            heals: BTreeSet::new(),
            events: VecDeque::new(),
            history: VecDeque::new(),
            now: Instant::ZERO,
        }
    }
}

impl Alerts {
    /// An evaluator with `config` (validated) and no alert.
    pub fn new(config: AlertConfig) -> Result<Self, AlertConfigError> {
        config.validate()?;
        Ok(Alerts { config, ..Alerts::default() })
    }

    /// The settings.
    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// Replaces the settings; refused (the old ones stay) when `config`
    /// does not [validate](AlertConfig::validate). Alerts of a rule now
    /// off end (resolved if they fired); a changed `for` applies to pending
    /// alerts at once; a changed severity is a new label set, taken by the
    /// snapshot rules at the next snapshot and by the failure rules at
    /// their next failure.
    pub fn set_config(&mut self, config: AlertConfig, now: Instant) -> Result<(), AlertConfigError> {
        config.validate()?;
        self.settle(now);
        self.config = config;
        let off: Vec<Labels> =
            self.tracks.iter().filter(|(_, t)| !self.config.enabled(t.rule)).map(|(l, _)| l.clone()).collect();
        for labels in off {
            self.end(&labels, now);
        }
        while self.history.len() > self.config.history {
            self.history.pop_front();
        }
        self.refresh_levels(now);
        self.settle(now);
        Ok(())
    }

    /// Judges a snapshot of the fleet: the snapshot rules' conditions
    /// start, go on or end; maintenance is taken from each server's state.
    pub fn handle_snapshot(&mut self, snapshot: &FleetSnapshot, now: Instant) {
        self.settle(now);
        self.maintenance =
            snapshot.servers.iter().filter(|s| s.state.maintenance).map(|s| s.config.id.clone()).collect();
        self.servers = snapshot.servers.iter().map(|s| (s.config.id.clone(), s.config.clone())).collect();
        let seen = rules::judge(&self.config, snapshot);
        self.replace(&RuleKind::FROM_SNAPSHOT, seen, now);
        self.refresh_levels(now);
        self.settle(now);
    }

    /// Takes one fleet event: failures, heals, the storm guard. Events that
    /// concern no rule are ignored.
    pub fn handle_event(&mut self, event: &Event, now: Instant) {
        let concerns = matches!(
            event,
            Event::HealStarted { .. }
                | Event::ActionFinished { .. }
                | Event::BatchFinished { .. }
                | Event::HealDegraded { .. }
                | Event::HealingPaused { .. }
                | Event::HealingResumed { .. }
        );
        if !concerns {
            return;
        }
        self.settle(now);
        match event {
            Event::HealStarted { action, .. } => {
                self.heals.insert(*action);
                return;
            }
            Event::ActionFinished { report } => {
                let heal = report.action.is_some_and(|a| self.heals.remove(&a));
                let key = (report.server.clone(), report.channel);
                match &report.outcome {
                    Ok(()) => self.end_where(now, |t| {
                        t.rule == RuleKind::ActionFailed
                            && t.server.as_ref() == Some(&key.0)
                            && t.channel == Some(key.1)
                    }),
                    Err(e) => {
                        let rule = &self.config.action_failed;
                        let wanted = rule.enabled
                            && !e.is_refusal()
                            && (rule.heals || !heal)
                            && (rule.batch_actions || report.batch.is_none());
                        if wanted {
                            let until = now + rule.hold;
                            let sc = self.servers.get(&report.server).map(|c| &**c);
                            let c = rules::action_failed(&self.config, report, sc);
                            self.raise(c, Some(until), now);
                        }
                    }
                }
            }
            Event::BatchFinished { report } => {
                let failed = report.failed() > 0 || report.stopped_early.is_some();
                if failed && self.config.batch_failed.enabled {
                    let until = now + self.config.batch_failed.hold;
                    self.raise(rules::batch_failed(&self.config, report), Some(until), now);
                }
            }
            Event::HealDegraded { server, channel, attempts, .. } if self.config.heal_degraded.enabled => {
                let sc = self.servers.get(server).map(|c| &**c);
                self.raise(rules::degraded(&self.config, server, *channel, *attempts, sc), None, now);
            }
            Event::HealingPaused { troubled, managed } => {
                self.storm = Some((*troubled, *managed));
                self.refresh_levels(now);
            }
            Event::HealingResumed { .. } => {
                self.storm = None;
                self.refresh_levels(now);
            }
            _ => {}
        }
        self.settle(now);
    }

    /// Tells whether the store (the dashboard's) is failing now.
    pub fn set_store_failing(&mut self, failing: bool, now: Instant) {
        self.settle(now);
        self.store_failing = failing;
        self.refresh_levels(now);
        self.settle(now);
    }

    /// Fires what has waited its `for`, ends held failures and silences
    /// that are over. Safe to call early.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.settle(now);
    }

    /// Puts back an alert kept across a restart, as [`alerts`](Self::alerts)
    /// gave it (its times moved to this run's epoch), so that one that
    /// fired is not fired again and gets its `resolved`. False when its
    /// label set is already active (nothing changes).
    ///
    /// Its condition is then judged like any other: feed a snapshot (and
    /// the store's state) soon after; an alert of the snapshot rules, or
    /// of `healing_paused` / `store_failing`, that the next snapshot does
    /// not show ends then, and a failure alert at its `until`. An alert
    /// of a rule now off ends at once.
    pub fn restore_alert(&mut self, alert: Alert, now: Instant) -> bool {
        if self.tracks.contains_key(&alert.labels) {
            return false;
        }
        let server = alert.labels.get("server").map(|s| ServerId::from(s.as_str()));
        let channel = alert.labels.get("channel").and_then(|c| c.parse().ok()).and_then(ChannelId::new);
        let track = Track {
            rule: alert.rule,
            fingerprint: Fingerprint::of(&alert.labels),
            annotations: alert.annotations,
            server,
            channel,
            active_since: alert.active_since,
            state: alert.state,
            since: alert.since,
            fired_at: alert.fired_at,
            silenced_by: None,
            until: match alert.rule {
                RuleKind::ActionFailed => Some(alert.until.unwrap_or(now + self.config.action_failed.hold)),
                RuleKind::BatchFailed => Some(alert.until.unwrap_or(now + self.config.batch_failed.hold)),
                _ => None,
            },
        };
        let enabled = self.config.enabled(alert.rule);
        self.tracks.insert(alert.labels.clone(), track);
        if !enabled {
            self.end(&alert.labels, now);
        }
        self.settle(now);
        true
    }

    /// Adds a silence; its id is new. Refused when it does not
    /// [validate](Silence::validate).
    pub fn add_silence(&mut self, silence: Silence, now: Instant) -> Result<SilenceId, SilenceError> {
        silence.validate(now)?;
        self.next_silence += 1;
        let id = SilenceId(self.next_silence);
        self.silences.insert(id, silence);
        self.settle(now);
        Ok(id)
    }

    /// Puts back a silence kept across a restart, with its id (later
    /// [`add_silence`](Self::add_silence) ids come after it). Refused when
    /// the id is taken or the silence does not validate (one that ended
    /// meanwhile included).
    pub fn restore_silence(&mut self, id: SilenceId, silence: Silence, now: Instant) -> Result<(), SilenceError> {
        if self.silences.contains_key(&id) {
            return Err(SilenceError::DuplicateId { id });
        }
        silence.validate(now)?;
        self.next_silence = self.next_silence.max(id.0);
        self.silences.insert(id, silence);
        self.settle(now);
        Ok(())
    }

    /// Ends a silence now; what it held and still holds fires. False for
    /// an unknown (or already ended) silence.
    pub fn expire_silence(&mut self, id: SilenceId, now: Instant) -> bool {
        let known = self.silences.remove(&id).is_some();
        self.settle(now);
        known
    }

    /// The silences still in force, by id.
    pub fn silences(&self) -> impl Iterator<Item = (SilenceId, &Silence)> + '_ {
        self.silences.iter().map(|(id, s)| (*id, s))
    }

    /// The next notification, in the order things happened.
    pub fn poll_event(&mut self) -> Option<Notification> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work: a
    /// pending alert's `for` ends, a held failure ends, a silence ends.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tracks = self.tracks.values().flat_map(|t| {
            let due = (t.state == AlertState::Pending).then(|| t.active_since + self.config.for_of(t.rule));
            due.into_iter().chain(t.until)
        });
        tracks.chain(self.silences.values().map(|s| s.ends_at)).filter(|at| *at > self.now).min()
    }

    /// Every active alert (pending, firing or silenced), by label set.
    pub fn alerts(&self) -> Vec<Alert> {
        self.tracks.iter().map(|(l, t)| view(l, t)).collect()
    }

    /// The active alert with `fingerprint`.
    pub fn alert(&self, fingerprint: Fingerprint) -> Option<Alert> {
        self.tracks.iter().find(|(_, t)| t.fingerprint == fingerprint).map(|(l, t)| view(l, t))
    }

    /// How many active alerts are in `state`.
    pub fn count(&self, state: AlertState) -> usize {
        self.tracks.values().filter(|t| t.state == state).count()
    }

    /// Recent ended alerts, oldest first (at most `config.history`).
    pub fn history(&self) -> impl Iterator<Item = &HistoryEntry> + '_ {
        self.history.iter()
    }

    /// The conditions of `rules` are now exactly `seen`: the others end,
    /// the new ones start.
    fn replace(&mut self, rules: &[RuleKind], seen: Vec<Candidate>, now: Instant) {
        let seen: BTreeMap<Labels, Candidate> = seen.into_iter().map(|c| (c.labels.clone(), c)).collect();
        let gone: Vec<Labels> = self
            .tracks
            .iter()
            .filter(|(l, t)| rules.contains(&t.rule) && !seen.contains_key(*l))
            .map(|(l, _)| l.clone())
            .collect();
        for labels in gone {
            self.end(&labels, now);
        }
        for c in seen.into_values() {
            self.raise(c, None, now);
        }
    }

    /// Starts (pending) or refreshes the alert `c` calls for; `until` for
    /// the failure rules.
    fn raise(&mut self, c: Candidate, until: Option<Instant>, now: Instant) {
        if let Some(t) = self.tracks.get_mut(&c.labels) {
            t.annotations = c.annotations;
            if until.is_some() {
                t.until = until;
            }
            return;
        }
        let track = Track {
            rule: c.rule,
            fingerprint: Fingerprint::of(&c.labels),
            annotations: c.annotations,
            server: c.server,
            channel: c.channel,
            active_since: now,
            state: AlertState::Pending,
            since: now,
            fired_at: None,
            silenced_by: None,
            until,
        };
        self.tracks.insert(c.labels, track);
    }

    /// The fleet-wide conditions kept here: the storm guard and the store.
    fn refresh_levels(&mut self, now: Instant) {
        let mut storm = Vec::new();
        if let (Some((troubled, managed)), true) = (self.storm, self.config.healing_paused.enabled) {
            storm.push(rules::fleet_wide(
                &self.config,
                RuleKind::HealingPaused,
                String::from("healing paused by the storm guard"),
                format!(
                    "{troubled} of {managed} managed channels are in trouble: no channel is healed until it passes"
                ),
            ));
        }
        self.replace(&[RuleKind::HealingPaused], storm, now);
        let mut store = Vec::new();
        if self.store_failing && self.config.store_failing.enabled {
            store.push(rules::fleet_wide(
                &self.config,
                RuleKind::StoreFailing,
                String::from("the store is failing"),
                String::from("writes to the dashboard's store fail: audit, history and alert state may not be kept"),
            ));
        }
        self.replace(&[RuleKind::StoreFailing], store, now);
    }

    fn end_where(&mut self, now: Instant, pred: impl Fn(&Track) -> bool) {
        let gone: Vec<Labels> = self.tracks.iter().filter(|(_, t)| pred(t)).map(|(l, _)| l.clone()).collect();
        for labels in gone {
            self.end(&labels, now);
        }
    }

    /// The alert's condition is over: resolved if it fired, into the
    /// history if it fired or would have.
    fn end(&mut self, labels: &Labels, now: Instant) {
        let Some(t) = self.tracks.remove(labels) else { return };
        if let Some(fired) = t.fired_at {
            self.events.push_back(Notification {
                kind: NotificationKind::Resolved,
                fingerprint: t.fingerprint,
                labels: labels.clone(),
                annotations: t.annotations.clone(),
                starts_at: fired,
                ends_at: Some(now),
            });
        }
        if t.fired_at.is_some() || t.state == AlertState::Silenced {
            if self.config.history == 0 {
                return;
            }
            if self.history.len() >= self.config.history {
                self.history.pop_front();
            }
            self.history.push_back(HistoryEntry {
                fingerprint: t.fingerprint,
                rule: t.rule,
                labels: labels.clone(),
                annotations: t.annotations,
                active_since: t.active_since,
                fired_at: t.fired_at,
                ended_at: now,
                silenced: t.state == AlertState::Silenced,
            });
        }
    }

    /// Brings every alert up to `now`: held failures and silences that are
    /// over end; what waited its `for` fires, or is silenced.
    fn settle(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let now = self.now;
        self.silences.retain(|_, s| s.is_active(now));
        let over: Vec<Labels> =
            self.tracks.iter().filter(|(_, t)| t.until.is_some_and(|u| u <= now)).map(|(l, _)| l.clone()).collect();
        for labels in over {
            self.end(&labels, now);
        }
        for (labels, t) in self.tracks.iter_mut() {
            t.silenced_by = silencer(&self.silences, &self.maintenance, labels, t.server.as_ref());
            let due = t.active_since + self.config.for_of(t.rule);
            let state = if now < due {
                AlertState::Pending
            } else if t.silenced_by.is_some() {
                AlertState::Silenced
            } else {
                AlertState::Firing
            };
            if state != t.state {
                t.state = state;
                t.since = now;
            }
            if state == AlertState::Firing && t.fired_at.is_none() {
                t.fired_at = Some(now);
                self.events.push_back(Notification {
                    kind: NotificationKind::Firing,
                    fingerprint: t.fingerprint,
                    labels: labels.clone(),
                    annotations: t.annotations.clone(),
                    starts_at: now,
                    ends_at: None,
                });
            }
        }
    }
}

fn silencer(
    silences: &BTreeMap<SilenceId, Silence>,
    maintenance: &BTreeSet<ServerId>,
    labels: &Labels,
    server: Option<&ServerId>,
) -> Option<Silencer> {
    if server.is_some_and(|s| maintenance.contains(s)) {
        return Some(Silencer::Maintenance);
    }
    silences.iter().find(|(_, s)| s.matches(labels)).map(|(id, _)| Silencer::Silence(*id))
}

fn view(labels: &Labels, t: &Track) -> Alert {
    Alert {
        fingerprint: t.fingerprint,
        rule: t.rule,
        labels: labels.clone(),
        annotations: t.annotations.clone(),
        state: t.state,
        since: t.since,
        active_since: t.active_since,
        fired_at: t.fired_at,
        silenced_by: t.silenced_by,
        until: t.until,
    }
}

#[cfg(test)]
mod tests;
