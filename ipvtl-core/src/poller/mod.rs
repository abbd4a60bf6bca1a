//! The sans-IO poller: owns the `/status` schedule of a whole fleet.
//!
//! Rules it enforces:
//! - A *sweep* starts every `interval`, measured from the previous sweep's
//!   start (not its end). Every eligible server is queued once per sweep; a
//!   sweep never starts while the previous one still has servers waiting for
//!   a slot, so the queue never grows beyond the fleet.
//! - At most `max_concurrent` sweep polls are in flight. On-demand refreshes
//!   use a separate lane of `max_priority` slots so they never wait behind a
//!   sweep; they also jump any backoff.
//! - A server that keeps failing sits out sweeps: after `f` failures in a row
//!   it skips `2^(f-1) - 1` sweeps, capped at `backoff_max`.
//! - Health changes only after `offline_after` failures in a row
//!   (hysteresis); one good answer brings a server back online.
//! - A failed poll keeps the last good status; [`ServerState::is_stale`]
//!   reports it and [`ServerState::status_age`] its age.
//! - Every poll ends exactly once: by `handle_response`, or by
//!   `handle_timeout` when the transport overran `timeout + grace`.

mod observe;
mod schedule;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use crate::event::Event;
use crate::ids::{RequestId, ServerId};
use crate::model::{Health, PollError, ServerConfig, ServerState, Status};
use crate::parse::parse_status_like;
use crate::time::Instant;
use crate::transport::{Request, RequestKind, Response, Transmit, TransportError};
use serde::{Deserialize, Serialize};

pub use schedule::SweepStats;

/// Settings of the poller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollerConfig {
    /// Time between sweep starts.
    pub interval: Duration,
    /// Per-request timeout handed to the transport.
    pub timeout: Duration,
    /// Sweep polls in flight at most.
    pub max_concurrent: usize,
    /// On-demand refreshes in flight at most (a lane of their own).
    pub max_priority: usize,
    /// Longest a failing server is left out.
    pub backoff_max: Duration,
    /// Failures in a row before a server is marked offline or error.
    pub offline_after: u32,
    /// Slack over `timeout` before the poller gives up on a transport that
    /// did not answer at all.
    pub grace: Duration,
}

impl Default for PollerConfig {
    fn default() -> Self {
        PollerConfig {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(3),
            max_concurrent: 64,
            max_priority: 16,
            backoff_max: Duration::from_secs(60),
            offline_after: 2,
            grace: Duration::from_secs(1),
        }
    }
}

/// Whether a poller sweeps a server (see [`Poller::set_sweeping`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweeping {
    /// Always: it runs alone, or owns the server for good.
    Always,
    /// Until this instant (exclusive): the end of what a lease allows.
    Until(Instant),
    /// Never: another instance owns it.
    Never,
}

impl Sweeping {
    /// True when it sweeps at `now`.
    pub fn at(self, now: Instant) -> bool {
        match self {
            Sweeping::Always => true,
            Sweeping::Until(until) => now < until,
            Sweeping::Never => false,
        }
    }
}

/// One server's last poll as its owning instance saw it, for the other
/// instances sharing the fleet (see [`Poller::adopt`]); serialized into the
/// shared store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The status, or why there was none.
    pub outcome: Result<Status, PollError>,
    /// Round-trip time of that poll.
    #[serde(default, with = "opt_ms")]
    pub latency: Option<Duration>,
    /// Polls failed in a row, this one included (0 after a good one).
    #[serde(default)]
    pub consecutive_failures: u32,
    /// How long ago it was polled, as of the reader's `now`.
    #[serde(skip)]
    pub age: Duration,
}

impl Observed {
    /// What `state` says of the last poll: the last good status when the
    /// last poll succeeded, else the error. `None` before any poll ended.
    pub fn of(state: &ServerState) -> Option<Observed> {
        let outcome = match (&state.error, &state.status) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(s)) => Ok(Status::clone(s)),
            (None, None) => return None,
        };
        Some(Observed {
            outcome,
            latency: state.latency,
            consecutive_failures: state.consecutive_failures,
            age: Duration::ZERO,
        })
    }
}

mod opt_ms {
    use core::time::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// What a reload changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Servers that are new.
    pub added: Vec<ServerId>,
    /// Servers that are gone.
    pub removed: Vec<ServerId>,
    /// Servers whose address changed (their state starts over).
    pub changed: Vec<ServerId>,
    /// Servers kept with their state.
    pub kept: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    Sweep,
    Priority,
}

#[derive(Debug)]
struct InFlight {
    server: ServerId,
    sent_at: Instant,
    deadline: Instant,
    lane: Lane,
    /// The sweep this poll counts for, if any.
    sweep: Option<u64>,
    /// Later sweeps that started while this poll was under way and count
    /// its answer instead of sending another (so each waits for it).
    joined: Vec<u64>,
}

#[derive(Debug)]
struct Entry {
    config: Arc<ServerConfig>,
    state: ServerState,
    in_flight: Option<RequestId>,
    /// Queued in the current sweep, not sent yet.
    queued: bool,
    /// Waiting in (or served from) the priority lane.
    refresh: Refresh,
    /// Left out of sweeps up to and including this one.
    skip_until_sweep: u64,
    /// Per channel: stall tracking.
    channels: Vec<ChannelTrack>,
    /// The health last announced by an event.
    announced: Health,
    /// Whether this poller's sweeps poll it; when not, another instance
    /// owns the server and its observations arrive through
    /// [`Poller::adopt`].
    sweeping: Sweeping,
}

/// What the poller remembers of one channel between polls: 16 bytes (a
/// fleet of 10 000 servers of 16 channels holds 160 000 of them).
#[derive(Clone, Copy, Debug, Default)]
struct ChannelTrack {
    /// While running: since when the uptime has had its value.
    since: Instant,
    /// While running: the uptime's low 32 bits (a change by a multiple of
    /// 2^32 s, 136 years, would go unseen).
    uptime: u32,
    /// Running with an uptime: `since` and `uptime` hold.
    running: bool,
    /// Already reported as stalled.
    stalled: bool,
}

impl ChannelTrack {
    /// The uptime's low bits while running, and since when it has had them.
    fn uptime(&self) -> Option<(u32, Instant)> {
        self.running.then_some((self.uptime, self.since))
    }

    /// The uptime seen at `now` (`None` when not running); the time it
    /// was first seen is kept while it does not change.
    fn see_uptime(&mut self, uptime: Option<u64>, now: Instant) {
        let low = uptime.map(|u| u as u32);
        if low.is_none() || self.uptime().map(|(u, _)| u) != low {
            self.running = low.is_some();
            self.uptime = low.unwrap_or(0);
            self.since = now;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refresh {
    None,
    /// Somebody asked; report `Refreshed` when the next poll ends.
    Requested,
    /// Poll soon, but nobody waits for it (a server added by reload).
    Soon,
}

/// The fleet's poll schedule and the state of every server. See the
/// [module docs](self) for the rules.
#[derive(Debug)]
pub struct Poller {
    config: PollerConfig,
    order: Vec<ServerId>,
    servers: BTreeMap<ServerId, Entry>,
    in_flight: BTreeMap<RequestId, InFlight>,
    queue: VecDeque<ServerId>,
    priority: VecDeque<ServerId>,
    sweep_in_flight: usize,
    priority_in_flight: usize,
    schedule: schedule::Schedule,
    events: VecDeque<Event>,
    next_request: u64,
    auto_sweep: bool,
}

impl Poller {
    /// A poller for `servers`; the first sweep starts at `now`.
    pub fn new(config: PollerConfig, servers: Vec<ServerConfig>, now: Instant) -> Self {
        let mut poller = Poller {
            config,
            order: Vec::new(),
            servers: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            queue: VecDeque::new(),
            priority: VecDeque::new(),
            sweep_in_flight: 0,
            priority_in_flight: 0,
            schedule: schedule::Schedule::new(now),
            events: VecDeque::new(),
            next_request: 0,
            auto_sweep: true,
        };
        for server in servers {
            poller.order.push(server.id.clone());
            poller.servers.insert(server.id.clone(), Entry::new(server));
        }
        poller
    }

    /// The settings.
    pub fn config(&self) -> &PollerConfig {
        &self.config
    }

    /// Changes the settings; takes effect from the next request and sweep.
    pub fn set_config(&mut self, config: PollerConfig) {
        self.config = config;
    }

    /// The next poll to send, if a slot is free and one is due.
    pub fn poll_request(&mut self, now: Instant) -> Option<Transmit> {
        self.maybe_start_sweep(now);
        while self.priority_in_flight < self.config.max_priority {
            let Some(id) = self.priority.pop_front() else { break };
            let Some(entry) = self.servers.get_mut(&id) else { continue };
            if entry.in_flight.is_some() {
                continue; // the poll under way serves the refresh
            }
            let sweep = entry.queued.then(|| self.schedule.current());
            entry.queued = false;
            return Some(self.send(id, Lane::Priority, sweep, now));
        }
        while self.sweep_in_flight < self.config.max_concurrent {
            let Some(id) = self.queue.pop_front() else { break };
            let Some(entry) = self.servers.get_mut(&id) else {
                if let Some(done) = self.schedule.skip_queued(now) {
                    self.events.push_back(done);
                }
                continue;
            };
            if !entry.queued {
                continue; // a refresh took it already, and counted for the sweep
            }
            entry.queued = false;
            if !entry.sweeping.at(now) {
                // Its lease lapsed while it waited: not ours to poll.
                if let Some(done) = self.schedule.skip_queued(now) {
                    self.events.push_back(done);
                }
                continue;
            }
            let sweep = Some(self.schedule.current());
            return Some(self.send(id, Lane::Sweep, sweep, now));
        }
        None
    }

    fn send(&mut self, id: ServerId, lane: Lane, sweep: Option<u64>, now: Instant) -> Transmit {
        let request_id = self.next_request_id();
        let entry = self.servers.get_mut(&id).expect("caller checked the server exists");
        entry.in_flight = Some(request_id);
        let server = entry.config.clone();
        match lane {
            Lane::Sweep => self.sweep_in_flight += 1,
            Lane::Priority => self.priority_in_flight += 1,
        }
        let deadline = now + self.config.timeout + self.config.grace;
        self.in_flight
            .insert(request_id, InFlight { server: id, sent_at: now, deadline, lane, sweep, joined: Vec::new() });
        Transmit {
            id: request_id,
            server,
            request: Request { kind: RequestKind::Status, timeout: self.config.timeout },
        }
    }

    /// A fresh request id. The [`crate::Fleet`] takes its action requests'
    /// ids from here too: one id space for every request it sends.
    pub(crate) fn next_request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// Feeds back the outcome of a poll. Unknown or late ids are ignored.
    pub fn handle_response(&mut self, id: RequestId, result: Result<Response, TransportError>, now: Instant) {
        let Some(flight) = self.in_flight.remove(&id) else { return };
        let like = self.servers.get(&flight.server).and_then(|e| e.state.status.as_deref());
        let outcome = classify(result, self.config.timeout, like);
        self.finish(id, flight, outcome, now);
    }

    /// Expires polls the transport never answered and starts a due sweep.
    /// Safe to call at any time.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<RequestId> =
            self.in_flight.iter().filter(|(_, f)| f.deadline <= now).map(|(id, _)| *id).collect();
        for id in expired {
            if let Some(flight) = self.in_flight.remove(&id) {
                let after_ms = self.config.timeout.as_millis() as u64;
                self.finish(id, flight, Err(PollError::Timeout { after_ms }), now);
            }
        }
        self.maybe_start_sweep(now);
    }

    /// When `handle_timeout` next has work: the next sweep or the earliest
    /// poll deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadline = self.in_flight.values().map(|f| f.deadline).min();
        let sweep = (self.auto_sweep && self.queue.is_empty()).then(|| self.schedule.next_start());
        match (deadline, sweep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Asks for a poll of `server` now, ahead of the sweep and any backoff.
    /// A [`Event::Refreshed`] follows when it ends. Returns false for an
    /// unknown server.
    pub fn refresh(&mut self, server: &ServerId) -> bool {
        let Some(entry) = self.servers.get_mut(server) else { return false };
        if entry.refresh == Refresh::None || entry.refresh == Refresh::Soon {
            if entry.refresh == Refresh::None {
                self.priority.push_back(server.clone());
            }
            entry.refresh = Refresh::Requested;
        }
        true
    }

    /// State of one server.
    pub fn state(&self, server: &ServerId) -> Option<&ServerState> {
        self.servers.get(server).map(|e| &e.state)
    }

    /// Configuration of one server.
    pub fn server(&self, server: &ServerId) -> Option<&Arc<ServerConfig>> {
        self.servers.get(server).map(|e| &e.config)
    }

    /// Every server in configuration order, with its state.
    pub fn servers(&self) -> impl Iterator<Item = (&Arc<ServerConfig>, &ServerState)> + '_ {
        self.order.iter().filter_map(|id| self.servers.get(id)).map(|e| (&e.config, &e.state))
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True for an empty fleet.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Polls in flight: (sweep lane, priority lane).
    pub fn in_flight(&self) -> (usize, usize) {
        (self.sweep_in_flight, self.priority_in_flight)
    }

    /// Number of the current (latest started) sweep; 0 before the first.
    pub fn sweep(&self) -> u64 {
        self.schedule.current()
    }

    /// Puts a server in or out of maintenance: still polled, but no health,
    /// stall or reboot events. Returns false for an unknown server.
    pub fn set_maintenance(&mut self, server: &ServerId, on: bool) -> bool {
        match self.servers.get_mut(server) {
            Some(entry) => {
                entry.state.maintenance = on;
                if !on {
                    let error = entry.state.error.clone();
                    observe::announce_health(entry, error, &mut self.events);
                }
                true
            }
            None => false,
        }
    }

    /// Sweeps `server` always (the default), until an instant (a lease
    /// this instance holds on it, renewed by moving the instant), or never
    /// (another instance owns it). A server this poller starts sweeping
    /// joins the sweep under way, in the sweep lane (a takeover of
    /// thousands must not crowd the refreshes' lane), or else the next one:
    /// it is polled within one interval. One it stops sweeping (also by
    /// the instant passing, with nobody calling: self-fencing) is left out
    /// of the next sweeps and the queue, its poll under way ending as
    /// usual. False for an unknown server.
    pub fn set_sweeping(&mut self, server: &ServerId, sweeping: Sweeping, now: Instant) -> bool {
        let Some(entry) = self.servers.get_mut(server) else { return false };
        let was = entry.sweeping.at(now);
        entry.sweeping = sweeping;
        if !was && sweeping.at(now) {
            entry.skip_until_sweep = 0;
            if entry.in_flight.is_none() && !entry.queued && self.schedule.join_current() {
                entry.queued = true;
                self.queue.push_back(server.clone());
            }
        }
        true
    }

    /// How `server` is swept (`None`: unknown).
    pub fn sweeping(&self, server: &ServerId) -> Option<Sweeping> {
        self.servers.get(server).map(|e| e.sweeping)
    }

    /// True when this poller sweeps `server` at `now`.
    pub fn sweeps(&self, server: &ServerId, now: Instant) -> bool {
        self.servers.get(server).is_some_and(|e| e.sweeping.at(now))
    }

    /// Applies what the instance owning `server` observed, as if this
    /// poller had polled it `observed.age` ago: the same state and events
    /// (channel changes, stalls, health with its hysteresis). Ignored for a
    /// server swept here (this poller is its owner) or unknown; returns
    /// whether it was applied.
    pub fn adopt(&mut self, server: &ServerId, observed: Observed, now: Instant) -> bool {
        let Some(entry) = self.servers.get_mut(server).filter(|e| !e.sweeping.at(now)) else { return false };
        let at = Instant::from_millis(now.as_millis().saturating_sub(observed.age.as_millis() as u64));
        let latency = observed.latency;
        match observed.outcome {
            Ok(status) => observe::success(entry, status, latency, at, &mut self.events),
            Err(error) => {
                // The owner counted the failures; one more is this one.
                entry.state.consecutive_failures = observed.consecutive_failures.saturating_sub(1);
                let latency = latency.unwrap_or_default();
                observe::failure(entry, error, latency, at, self.config.offline_after, &mut self.events);
            }
        }
        true
    }

    /// Feeds a status observed outside the schedule (an action watching a
    /// channel): updates the state and emits channel events.
    pub fn observe_status(&mut self, server: &ServerId, status: Status, now: Instant) {
        if let Some(entry) = self.servers.get_mut(server) {
            observe::success(entry, status, None, now, &mut self.events);
        }
    }

    /// Replaces the server list. Servers that remain (same id, host and
    /// port) keep their state; new ones are polled at once.
    pub fn reload(&mut self, servers: Vec<ServerConfig>, now: Instant) -> ReloadSummary {
        let mut summary = ReloadSummary::default();
        // Servers still waiting in the sweep queue (a refresh may have taken
        // some already: their entries are stale and were counted).
        let waiting = self.queue.iter().filter(|id| self.servers.get(*id).is_some_and(|e| e.queued)).count();
        let mut next: BTreeMap<ServerId, Entry> = BTreeMap::new();
        let mut order = Vec::with_capacity(servers.len());
        for server in servers {
            let id = server.id.clone();
            order.push(id.clone());
            let entry = match self.servers.remove(&id) {
                Some(mut old) if old.config.host == server.host && old.config.port == server.port => {
                    summary.kept += 1;
                    old.config = Arc::new(server);
                    old
                }
                Some(old) => {
                    summary.changed.push(id.clone());
                    self.priority.push_back(id.clone());
                    // Whoever asked for a refresh still gets its `Refreshed`.
                    let refresh = if old.refresh == Refresh::Requested { Refresh::Requested } else { Refresh::Soon };
                    Entry::new(server).with_refresh(refresh)
                }
                None => {
                    summary.added.push(id.clone());
                    self.priority.push_back(id.clone());
                    Entry::new(server).with_refresh(Refresh::Soon)
                }
            };
            next.insert(id, entry);
        }
        summary.removed = self.order.iter().filter(|id| self.servers.contains_key(*id)).cloned().collect();
        // Whoever waits for a refresh of a removed server gets an answer.
        for id in &summary.removed {
            if self.servers.get(id).is_some_and(|e| e.refresh == Refresh::Requested) {
                self.events.push_back(Event::Refreshed { server: id.clone(), error: None });
            }
        }
        // Polls still in flight for removed or changed servers end unseen.
        let servers = &next;
        let stale: Vec<RequestId> = self
            .in_flight
            .iter()
            .filter(|(id, f)| servers.get(&f.server).is_none_or(|e| e.in_flight != Some(**id)))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(flight) = self.in_flight.remove(&id) {
                self.release(&flight, None, now);
            }
        }
        self.servers = next;
        self.order = order;
        // Queued servers that went away (or start over) leave the sweep.
        let servers = &self.servers;
        self.queue.retain(|id| servers.get(id).is_some_and(|e| e.queued));
        for _ in self.queue.len()..waiting {
            if let Some(done) = self.schedule.skip_queued(now) {
                self.events.push_back(done);
            }
        }
        summary
    }

    /// Frees the poll's slot and ends it for its sweeps: `Some(ok)` when
    /// it was answered, `None` when it ended unseen (server removed).
    fn release(&mut self, flight: &InFlight, ok: Option<bool>, now: Instant) {
        match flight.lane {
            Lane::Sweep => self.sweep_in_flight -= 1,
            Lane::Priority => self.priority_in_flight -= 1,
        }
        for &sweep in flight.sweep.iter().chain(&flight.joined) {
            if let Some(done) = self.schedule.poll_ended(sweep, ok, now) {
                self.events.push_back(done);
            }
        }
    }

    fn finish(&mut self, id: RequestId, flight: InFlight, outcome: Result<Status, PollError>, now: Instant) {
        let latency = now.saturating_since(flight.sent_at);
        let ok = outcome.is_ok();
        if let Some(entry) = self.servers.get_mut(&flight.server).filter(|e| e.in_flight == Some(id)) {
            entry.in_flight = None;
            let error = match outcome {
                Ok(status) => {
                    observe::success(entry, status, Some(latency), now, &mut self.events);
                    None
                }
                Err(e) => {
                    observe::failure(entry, e.clone(), latency, now, self.config.offline_after, &mut self.events);
                    entry.skip_until_sweep = self.schedule.current()
                        + self::schedule::backoff_skips(
                            entry.state.consecutive_failures,
                            self.config.interval,
                            self.config.backoff_max,
                        );
                    Some(e)
                }
            };
            match entry.refresh {
                Refresh::Requested => {
                    self.events.push_back(Event::Refreshed { server: flight.server.clone(), error });
                    entry.refresh = Refresh::None;
                }
                Refresh::Soon => entry.refresh = Refresh::None,
                Refresh::None => {}
            }
        }
        self.release(&flight, Some(ok), now);
    }

    /// Turns automatic sweeps on (the default) or off. With them off, the
    /// poller only polls on [`Poller::sweep_now`] and refreshes.
    pub fn set_auto_sweep(&mut self, on: bool) {
        self.auto_sweep = on;
    }

    /// Starts a sweep at once, unless one still has servers waiting for a
    /// slot (that one is fresh enough). Returns the number of the sweep to
    /// wait for: a [`Event::SweepFinished`] with that number follows once
    /// every server not backed off has answered, including servers whose
    /// poll was already under way when the sweep started.
    pub fn sweep_now(&mut self, now: Instant) -> u64 {
        if self.queue.is_empty() {
            self.start_sweep(now);
        }
        self.schedule.current()
    }

    fn maybe_start_sweep(&mut self, now: Instant) {
        if self.auto_sweep && self.queue.is_empty() && now >= self.schedule.next_start() {
            self.start_sweep(now);
        }
    }

    fn start_sweep(&mut self, now: Instant) {
        let number = self.schedule.current() + 1;
        let mut queued = 0;
        let mut skipped = 0;
        for id in &self.order {
            let Some(entry) = self.servers.get_mut(id).filter(|e| e.sweeping.at(now)) else { continue };
            if let Some(request) = entry.in_flight {
                // A poll under way (a slow answer, a refresh) serves this
                // sweep too, and every later one that starts before it
                // ends: each waits for it rather than skip it.
                match self.in_flight.get_mut(&request) {
                    Some(flight) => {
                        flight.joined.push(number);
                        queued += 1;
                    }
                    None => skipped += 1,
                }
                continue;
            }
            if entry.skip_until_sweep >= number {
                skipped += 1;
                continue;
            }
            entry.queued = true;
            self.queue.push_back(id.clone());
            queued += 1;
        }
        if let Some(done) = self.schedule.start(now, self.config.interval, queued, skipped) {
            self.events.push_back(done);
        }
    }
}

impl Entry {
    fn new(config: ServerConfig) -> Self {
        Entry {
            config: Arc::new(config),
            state: ServerState::default(),
            in_flight: None,
            queued: false,
            refresh: Refresh::None,
            skip_until_sweep: 0,
            channels: Vec::new(),
            announced: Health::Unknown,
            sweeping: Sweeping::Always,
        }
    }

    fn with_refresh(mut self, refresh: Refresh) -> Self {
        self.refresh = refresh;
        self
    }
}

/// Turns a transport outcome into a status or the reason there is none;
/// `like` is the server's last status, if any, to size the lists by
/// ([`parse_status_like`]).
pub fn classify(
    result: Result<Response, TransportError>,
    timeout: Duration,
    like: Option<&Status>,
) -> Result<Status, PollError> {
    match result {
        Err(e) => Err(e.to_poll_error(timeout)),
        Ok(resp) if !resp.is_success() => Err(PollError::Http { code: resp.code }),
        Ok(resp) => parse_status_like(&resp.body, like)
            .map_err(|e| PollError::Malformed { message: alloc::string::ToString::to_string(&e) }),
    }
}

#[cfg(test)]
mod tests;
