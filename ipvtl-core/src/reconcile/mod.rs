//! Desired state and self-healing: the [`Reconciler`].
//!
//! Each channel has a [`Desired`] state (`running`, `idle`, or the default
//! `unmanaged`, which is never touched), set per channel, per server or per
//! tag through a [`Scope`]; the narrower setting wins, and between two tags
//! the one first in the server's `tags`. A managed channel **drifts** when
//! what is observed differs from what is desired, or when it is stalled
//! while desired `running`.
//!
//! Healing is opt-in per scope ([`Healing::On`] with a [`HealPolicy`]):
//! drift must last `grace`; a channel is healed at most `limit` times within
//! `window`, with a doubling backoff between attempts; past the limit it is
//! **degraded** and left alone until [`Reconciler::clear_degraded`] or
//! until the window has passed. The heal is:
//!
//! | desired | observed                    | heal      |
//! |---------|-----------------------------|-----------|
//! | running | idle                        | `start`   |
//! | running | stalled, stopping, other    | `restart` |
//! | idle    | running, stopping, other    | `stop`    |
//!
//! (An idle channel is started rather than restarted: a stop of an idle
//! channel does nothing but cost a phase.)
//!
//! Fleet-wide: at most `max_parallel` heals at once; the **storm guard**
//! pauses every new heal while more than `storm_percent` of the managed
//! channels (and at least `storm_min`) are in trouble — drifting, or on a
//! server that is not online — as after a network split; it never restarts
//! half the fleet. Nothing is ever done on a server in maintenance, on a
//! server that is not online, or to a channel an action or batch holds.
//! In `dry_run`, heals are reported ([`Event::HealPlanned`],
//! [`Reconciler::planned`]) and not done.
//!
//! ## Where settings come from
//!
//! Desired state and healing are set through the API
//! ([`Reconciler::set_desired`], [`Reconciler::set_healing`]) or declared
//! in the servers file ([`crate::parse_servers_file`], applied with
//! [`Reconciler::replace_file_settings`]); each setting records its
//! [`Source`]. A reload replaces every file setting with the new file's
//! and keeps the API ones. At one scope, **the API setting wins** over the
//! file's; scopes still resolve narrowest first, whatever their source (a
//! channel declared in the file beats a server set through the API).
//!
//! ## Driving it
//!
//! The [`crate::Fleet`] drives its reconciler; used alone, the loop is:
//!
//! 1. `handle_server(config, state, now)` for a server whose state changed
//!    (or `handle_fleet(servers, now)` for all, which also forgets servers
//!    no longer listed; due whenever `needs_full_pass()`);
//! 2. `handle_timeout(now)`;
//! 3. `poll_heal(now, can_act)` until `None`, answering each heal with
//!    `handle_heal_started(action, now)` or `handle_heal_refused(now)`;
//!    `can_act(server, channel)` is the owner's live check (lock held,
//!    maintenance, health);
//! 4. `handle_heal_finished(report, now)` for every action report (reports
//!    of other actions are ignored);
//! 5. `poll_event()` until `None`; wake at `poll_timeout()`.

mod desired;
mod policy;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

pub use desired::{Desired, Scope, Scoped, Source};
pub use policy::{HealPolicy, Healing, ReconcilerConfig};

use crate::action::{ActionKind, ActionReport};
use crate::event::{Event, StallReason};
use crate::ids::{ActionId, ChannelId, ServerId};
use crate::model::{ChannelState, Health, ServerConfig, ServerState};
use crate::time::Instant;

/// A channel whose observed state differs from its desired one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    /// The server.
    pub server: ServerId,
    /// The channel.
    pub channel: ChannelId,
    /// What it should be doing.
    pub desired: Desired,
    /// What it was last seen doing.
    pub observed: ChannelState,
    /// Why it looks stalled, when it does.
    pub stall: Option<StallReason>,
    /// When the drift was first seen.
    pub since: Instant,
    /// Heals within the current window.
    pub attempts: u32,
    /// True when the restart limit was reached: left alone.
    pub degraded: bool,
    /// The heal under way, if any.
    pub healing: Option<ActionId>,
}

/// A heal the reconciler wants done (or, in dry run, would do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heal {
    /// The server.
    pub server: ServerId,
    /// The channel.
    pub channel: ChannelId,
    /// The action that heals it.
    pub kind: ActionKind,
    /// What the channel should be doing.
    pub desired: Desired,
    /// What it was last seen doing.
    pub observed: ChannelState,
    /// Why it looks stalled, when it does.
    pub stall: Option<StallReason>,
    /// When its drift began.
    pub since: Instant,
}

type Key = (ServerId, ChannelId);

#[derive(Clone, Debug)]
struct Observed {
    desired: Desired,
    state: ChannelState,
    stall: Option<StallReason>,
    since: Instant,
}

#[derive(Clone, Debug, Default)]
struct Track {
    drift: Option<Observed>,
    /// Start times of the heals within the window, oldest first.
    attempts: VecDeque<Instant>,
    /// No attempt before this.
    next_attempt: Instant,
    degraded: bool,
    /// The heal under way and the backoff to apply after it.
    heal: Option<(ActionId, Duration)>,
    /// Reported as planned (dry run) during this drift.
    planned: bool,
}

impl Track {
    fn prune(&mut self, window: Duration, now: Instant) {
        while self.attempts.front().is_some_and(|t| now.saturating_since(*t) >= window) {
            self.attempts.pop_front();
        }
    }

    fn is_empty(&self) -> bool {
        self.drift.is_none() && self.heal.is_none() && self.attempts.is_empty()
    }
}

#[derive(Clone, Debug)]
struct ServerView {
    config: Arc<ServerConfig>,
    health: Health,
    maintenance: bool,
    /// Managed channels (none while in maintenance).
    managed: usize,
    /// Of those, drifting or unobservable.
    troubled: usize,
}

/// The sans-IO reconciler. See the [module docs](self).
#[derive(Debug, Default)]
pub struct Reconciler {
    config: ReconcilerConfig,
    desired: Scoped<Desired>,
    healing: Scoped<Healing>,
    tracks: BTreeMap<Key, Track>,
    servers: BTreeMap<ServerId, ServerView>,
    managed: usize,
    troubled: usize,
    storm: bool,
    heals: BTreeMap<ActionId, Key>,
    claimed: Option<Heal>,
    events: VecDeque<Event>,
    now: Instant,
    dirty: bool,
    /// Inside `handle_fleet`: the storm is judged once, at the end.
    in_pass: bool,
    /// A full pass was made: the storm counts cover the whole fleet.
    primed: bool,
}

impl Reconciler {
    /// A reconciler with nothing desired: it never acts until told to.
    pub fn new(config: ReconcilerConfig) -> Self {
        Reconciler { config, ..Reconciler::default() }
    }

    /// The fleet-wide settings.
    pub fn config(&self) -> &ReconcilerConfig {
        &self.config
    }

    /// Replaces the fleet-wide settings.
    pub fn set_config(&mut self, config: ReconcilerConfig) {
        self.config = config;
        self.update_storm();
    }

    /// Sets the desired state of `scope` (an explicit [`Desired::Unmanaged`]
    /// overrides broader scopes). Applies at the next full pass.
    pub fn set_desired(&mut self, scope: Scope, desired: Desired) {
        self.desired.set(scope, desired);
        self.dirty = true;
    }

    /// Removes the desired state set at `scope`. Applies at the next full pass.
    pub fn clear_desired(&mut self, scope: &Scope) -> Option<Desired> {
        self.dirty = true;
        self.desired.clear(scope)
    }

    /// Every desired-state setting, by scope.
    pub fn desired_settings(&self) -> &Scoped<Desired> {
        &self.desired
    }

    /// The desired state of `channel` of `server`, and where it was set
    /// (`None`: nowhere, so unmanaged).
    pub fn desired(&self, server: &ServerConfig, channel: ChannelId) -> (Desired, Option<Scope>) {
        match self.desired.resolve(server, channel) {
            Some((d, scope)) => (*d, Some(scope)),
            None => (Desired::Unmanaged, None),
        }
    }

    /// Sets the healing of `scope`.
    pub fn set_healing(&mut self, scope: Scope, healing: Healing) {
        self.healing.set(scope, healing);
        self.dirty = true;
    }

    /// Removes the healing set at `scope`.
    pub fn clear_healing(&mut self, scope: &Scope) -> Option<Healing> {
        self.dirty = true;
        self.healing.clear(scope)
    }

    /// Replaces the settings declared in the servers file (a reload):
    /// every [`Source::File`] setting goes, these come in; settings made
    /// through the API stay, and win over a file setting at the same
    /// scope. Applies at the next full pass.
    pub fn replace_file_settings(
        &mut self,
        desired: impl IntoIterator<Item = (Scope, Desired)>,
        healing: impl IntoIterator<Item = (Scope, Healing)>,
    ) {
        self.desired.replace_file(desired);
        self.healing.replace_file(healing);
        self.dirty = true;
    }

    /// Every healing setting, by scope.
    pub fn healing_settings(&self) -> &Scoped<Healing> {
        &self.healing
    }

    /// The policy healing `channel` of `server`, if healing is on for it.
    pub fn policy(&self, server: &ServerConfig, channel: ChannelId) -> Option<&HealPolicy> {
        match self.healing.resolve(server, channel) {
            Some((Healing::On(p), _)) => Some(p),
            _ => None,
        }
    }

    /// True when settings changed since the last `handle_fleet`.
    pub fn needs_full_pass(&self) -> bool {
        self.dirty
    }

    /// Observes every server: [`handle_server`](Self::handle_server) for
    /// each; servers not listed are forgotten (their drifts end).
    pub fn handle_fleet<'a>(
        &mut self,
        servers: impl IntoIterator<Item = (&'a Arc<ServerConfig>, &'a ServerState)>,
        now: Instant,
    ) {
        self.dirty = false;
        self.in_pass = true;
        let mut seen = BTreeMap::new();
        for (config, state) in servers {
            seen.insert(config.id.clone(), ());
            self.handle_server(config, state, now);
        }
        let gone: Vec<ServerId> = self.servers.keys().filter(|s| !seen.contains_key(*s)).cloned().collect();
        for server in gone {
            self.forget(&server, now);
        }
        self.in_pass = false;
        self.primed = true;
        self.update_storm();
    }

    fn forget(&mut self, server: &ServerId, now: Instant) {
        if let Some(view) = self.servers.remove(server) {
            self.managed -= view.managed;
            self.troubled -= view.troubled;
        }
        let keys: Vec<Key> = self.tracks_of(server).collect();
        for key in keys {
            self.end_drift(&key, now);
            self.tracks.remove(&key);
        }
        self.update_storm();
    }

    fn tracks_of<'a>(&'a self, server: &'a ServerId) -> impl Iterator<Item = Key> + 'a {
        self.tracks
            .range((server.clone(), ChannelId::from_index(0))..)
            .take_while(move |(k, _)| &k.0 == server)
            .map(|(k, _)| k.clone())
    }

    /// Observes one server's state: drift starts and ends, storm counts.
    /// Drift is judged on online servers only; on others it is kept as it
    /// was (the box is gone, not the channel). The storm guard is judged
    /// once a full pass ([`handle_fleet`](Self::handle_fleet)) has counted
    /// the whole fleet.
    pub fn handle_server(&mut self, config: &Arc<ServerConfig>, state: &ServerState, now: Instant) {
        self.now = self.now.max(now);
        let id = &config.id;
        let online = state.health == Health::Online;
        let counted = !state.maintenance;
        let (mut managed, mut troubled) = (0, 0);
        let count = state.status.as_ref().map_or(0, |s| s.channels.len());
        // Nothing set, nothing tracked (the usual case for most servers):
        // no channel to judge, no key to make.
        let nothing_set = self.desired.is_empty();
        let tracked = self.tracks_of(id).next().is_some();
        if let Some(status) = &state.status {
            for (i, ch) in status.channels.iter().enumerate() {
                let channel = ChannelId::from_index(i);
                let desired = if nothing_set { None } else { self.desired.value(config, channel) }
                    .map_or(Desired::Unmanaged, |d| *d);
                if desired == Desired::Unmanaged {
                    if tracked {
                        self.end_drift(&(id.clone(), channel), now);
                    }
                    continue;
                }
                let key = (id.clone(), channel);
                managed += 1;
                if !online {
                    troubled += 1;
                    continue;
                }
                let stall = state.stall(channel);
                let drifting = match desired {
                    Desired::Running => ch.state != ChannelState::Running || stall.is_some(),
                    Desired::Idle => ch.state != ChannelState::Idle,
                    Desired::Unmanaged => false,
                };
                if drifting {
                    troubled += 1;
                    self.see_drift(key, desired, &ch.state, stall, now);
                } else {
                    self.end_drift(&key, now);
                }
            }
        }
        // Channels the server no longer has, and expired histories.
        let keys: Vec<Key> = if tracked || !nothing_set { self.tracks_of(id).collect() } else { Vec::new() };
        for key in keys {
            if key.1.index() >= count {
                self.end_drift(&key, now);
            }
            let window = self.policy(config, key.1).map(|p| p.window);
            if let Some(track) = self.tracks.get_mut(&key) {
                if let Some(window) = window {
                    track.prune(window, now);
                } else if track.heal.is_none() {
                    track.attempts.clear();
                }
                if track.is_empty() {
                    self.tracks.remove(&key);
                }
            }
        }
        let view = ServerView {
            config: config.clone(),
            health: state.health,
            maintenance: state.maintenance,
            managed: if counted { managed } else { 0 },
            troubled: if counted { troubled } else { 0 },
        };
        if let Some(old) = self.servers.insert(id.clone(), view.clone()) {
            self.managed -= old.managed;
            self.troubled -= old.troubled;
        }
        self.managed += view.managed;
        self.troubled += view.troubled;
        self.update_storm();
    }

    fn see_drift(
        &mut self,
        key: Key,
        desired: Desired,
        state: &ChannelState,
        stall: Option<StallReason>,
        now: Instant,
    ) {
        let track = self.tracks.entry(key.clone()).or_default();
        if let Some(d) = &mut track.drift {
            if d.desired == desired {
                d.state = state.clone();
                d.stall = stall;
                return;
            }
        }
        self.end_drift(&key, now);
        let track = self.tracks.entry(key.clone()).or_default();
        track.drift = Some(Observed { desired, state: state.clone(), stall, since: now });
        self.events.push_back(Event::DriftStarted {
            server: key.0,
            channel: key.1,
            desired,
            observed: state.clone(),
            stall,
            since: now,
        });
    }

    fn end_drift(&mut self, key: &Key, now: Instant) {
        let Some(track) = self.tracks.get_mut(key) else { return };
        track.degraded = false;
        track.planned = false;
        if let Some(d) = track.drift.take() {
            self.events.push_back(Event::DriftEnded {
                server: key.0.clone(),
                channel: key.1,
                since: d.since,
                lasted: now.saturating_since(d.since),
            });
        }
        if track.is_empty() {
            self.tracks.remove(key);
        }
    }

    /// Judges the storm guard (only over a whole fleet: after a first full
    /// pass, and at the end of each one).
    fn update_storm(&mut self) {
        if self.in_pass || !self.primed {
            return;
        }
        let troubled = self.troubled as u64;
        let over = self.troubled >= self.config.storm_min.max(1)
            && troubled * 100 > self.managed as u64 * u64::from(self.config.storm_percent);
        if over != self.storm {
            self.storm = over;
            let (troubled, managed) = (self.troubled, self.managed);
            self.events.push_back(if over {
                Event::HealingPaused { troubled, managed }
            } else {
                Event::HealingResumed { troubled, managed }
            });
        }
    }

    /// Time-driven changes: a degraded channel whose window has passed may
    /// be healed again. Safe to call early.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let Reconciler { tracks, servers, healing, .. } = self;
        for ((server, channel), track) in tracks.iter_mut().filter(|(_, t)| t.degraded) {
            let Some(view) = servers.get(server) else { continue };
            let Some((Healing::On(policy), _)) = healing.resolve(&view.config, *channel) else { continue };
            track.prune(policy.window, now);
            if (track.attempts.len() as u64) < u64::from(policy.limit.max(1)) {
                track.degraded = false;
            }
        }
    }

    /// The next heal to do, if any may start now. `can_act` is the owner's
    /// live check of the server and channel (not held, not in maintenance,
    /// online). Answer with [`handle_heal_started`](Self::handle_heal_started)
    /// or [`handle_heal_refused`](Self::handle_heal_refused) before asking
    /// again. In dry run this reports [`Event::HealPlanned`] instead and
    /// returns `None`.
    pub fn poll_heal(&mut self, now: Instant, mut can_act: impl FnMut(&ServerId, ChannelId) -> bool) -> Option<Heal> {
        self.now = self.now.max(now);
        let dry_run = self.config.dry_run;
        if self.claimed.is_some()
            || self.config.paused
            || self.storm
            || (!dry_run && self.heals.len() >= self.config.max_parallel.max(1))
        {
            return None;
        }
        let Reconciler { tracks, servers, healing, events, claimed, .. } = self;
        for ((server, channel), track) in tracks.iter_mut() {
            let Some(since) = track.drift.as_ref().map(|d| d.since) else { continue };
            if track.heal.is_some() || track.degraded || (dry_run && track.planned) || now < track.next_attempt {
                continue;
            }
            let Some(view) = servers.get(server) else { continue };
            if view.health != Health::Online || view.maintenance {
                continue;
            }
            let Some((Healing::On(policy), _)) = healing.resolve(&view.config, *channel) else { continue };
            if now < since + policy.grace {
                continue;
            }
            track.prune(policy.window, now);
            let limit = policy.limit.max(1);
            if track.attempts.len() as u64 >= u64::from(limit) && !dry_run {
                track.degraded = true;
                let until = track.attempts.front().map_or(now, |t| *t + policy.window);
                events.push_back(Event::HealDegraded {
                    server: server.clone(),
                    channel: *channel,
                    attempts: limit,
                    until,
                });
                continue;
            }
            if !can_act(server, *channel) {
                continue;
            }
            let Some(drift) = &track.drift else { continue };
            let heal = heal_for(server, *channel, drift);
            if dry_run {
                track.planned = true;
                events.push_back(Event::HealPlanned { heal });
                continue;
            }
            *claimed = Some(heal.clone());
            return Some(heal);
        }
        None
    }

    /// The heal just handed out is under way as `action`.
    pub fn handle_heal_started(&mut self, action: ActionId, now: Instant) {
        let Some(heal) = self.claimed.take() else { return };
        let key = (heal.server.clone(), heal.channel);
        let backoff = self
            .servers
            .get(&heal.server)
            .and_then(|v| self.healing.resolve(&v.config, heal.channel))
            .and_then(|(h, _)| match h {
                Healing::On(p) => Some(p.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let track = self.tracks.entry(key.clone()).or_default();
        track.attempts.push_back(now);
        let attempt = track.attempts.len() as u32;
        track.heal = Some((action, backoff.backoff_after(track.attempts.len())));
        self.heals.insert(action, key);
        self.events.push_back(Event::HealStarted { heal, action, attempt });
    }

    /// The heal just handed out was refused by the owner (nothing was sent):
    /// it is tried again after a second, and not counted as an attempt.
    pub fn handle_heal_refused(&mut self, now: Instant) {
        let Some(heal) = self.claimed.take() else { return };
        if let Some(track) = self.tracks.get_mut(&(heal.server, heal.channel)) {
            track.next_attempt = now + Duration::from_secs(1);
        }
    }

    /// An action ended; true when it was one of the reconciler's heals.
    pub fn handle_heal_finished(&mut self, report: &ActionReport, now: Instant) -> bool {
        let Some(key) = report.action.and_then(|a| self.heals.remove(&a)) else { return false };
        if let Some(track) = self.tracks.get_mut(&key) {
            if let Some((_, backoff)) = track.heal.take() {
                track.next_attempt = now + backoff;
            }
        }
        self.events.push_back(Event::HealFinished {
            server: key.0,
            channel: key.1,
            action: report.action.unwrap_or(ActionId(0)),
            kind: report.kind,
            ok: report.is_ok(),
        });
        true
    }

    /// True when `action` is one of the reconciler's heals under way.
    pub fn is_heal(&self, action: ActionId) -> bool {
        self.heals.contains_key(&action)
    }

    /// Heals under way.
    pub fn heals_in_flight(&self) -> usize {
        self.heals.len()
    }

    /// Clears a degraded channel (and its count of attempts): a human says
    /// "try again". False when it was not degraded.
    pub fn clear_degraded(&mut self, server: &ServerId, channel: ChannelId) -> bool {
        match self.tracks.get_mut(&(server.clone(), channel)) {
            Some(track) if track.degraded => {
                track.degraded = false;
                track.attempts.clear();
                track.next_attempt = Instant::ZERO;
                true
            }
            _ => false,
        }
    }

    /// True while the storm guard holds healing.
    pub fn is_storm(&self) -> bool {
        self.storm
    }

    /// Managed channels and, of those, the ones in trouble (drifting or on
    /// a server not online), as the storm guard counts them.
    pub fn counts(&self) -> (usize, usize) {
        (self.managed, self.troubled)
    }

    /// Every current drift, by server and channel.
    pub fn drifts(&self) -> Vec<Drift> {
        self.tracks.iter().filter_map(|(k, t)| self.drift_of(k, t)).collect()
    }

    /// The drift of one channel, if it drifts.
    pub fn drift(&self, server: &ServerId, channel: ChannelId) -> Option<Drift> {
        let key = (server.clone(), channel);
        self.tracks.get(&key).and_then(|t| self.drift_of(&key, t))
    }

    fn drift_of(&self, key: &Key, t: &Track) -> Option<Drift> {
        let d = t.drift.as_ref()?;
        Some(Drift {
            server: key.0.clone(),
            channel: key.1,
            desired: d.desired,
            observed: d.state.clone(),
            stall: d.stall,
            since: d.since,
            attempts: t.attempts.len() as u32,
            degraded: t.degraded,
            healing: t.heal.map(|(a, _)| a),
        })
    }

    /// In dry run: the heals reported as planned for the current drifts.
    pub fn planned(&self) -> Vec<Heal> {
        self.tracks
            .iter()
            .filter(|(_, t)| t.planned)
            .filter_map(|((s, c), t)| t.drift.as_ref().map(|d| heal_for(s, *c, d)))
            .collect()
    }

    /// The next event, in the order things happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When a waiting drift next becomes due (end of grace or backoff, end
    /// of a degraded window); the last `now` when settings changed and a
    /// full pass is due. Heals held by the cap, the storm guard, a lock or
    /// a server's health wait for an observation, not a timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.dirty {
            return Some(self.now);
        }
        let mut next: Option<Instant> = None;
        for ((server, channel), t) in &self.tracks {
            let Some(d) = &t.drift else { continue };
            if t.heal.is_some() {
                continue;
            }
            let Some(view) = self.servers.get(server) else { continue };
            let Some((Healing::On(p), _)) = self.healing.resolve(&view.config, *channel) else { continue };
            let at = if t.degraded {
                t.attempts.front().map(|a| *a + p.window)
            } else {
                Some((d.since + p.grace).max(t.next_attempt))
            };
            if let Some(at) = at.filter(|at| *at > self.now) {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        next
    }
}

fn heal_for(server: &ServerId, channel: ChannelId, d: &Observed) -> Heal {
    let kind = match (d.desired, &d.state, d.stall) {
        (Desired::Idle, _, _) => ActionKind::Stop,
        (_, ChannelState::Idle, None) => ActionKind::Start,
        _ => ActionKind::Restart,
    };
    Heal {
        server: server.clone(),
        channel,
        kind,
        desired: d.desired,
        observed: d.state.clone(),
        stall: d.stall,
        since: d.since,
    }
}

#[cfg(test)]
mod tests;
