//! [`Fleet`]: the poller, the channel actions and the batches as one
//! machine with one driving vocabulary. This is what drivers run.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use crate::action::{Action, ActionConfig, ActionError, ActionKind, Phase};
use crate::batch::{plan, Batch, BatchError, BatchSpec, BatchTarget};
use crate::event::Event;
use crate::ids::{ActionId, BatchId, ChannelId, RequestId, ServerId};
use crate::model::{Health, ServerConfig, ServerState};
use crate::poller::{Poller, PollerConfig, ReloadSummary};
use crate::reconcile::{Drift, Heal, Reconciler};
use crate::time::Instant;
use crate::transport::{Response, Transmit, TransportError};

/// Settings of a [`Fleet`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetConfig {
    /// The poll schedule.
    pub poller: PollerConfig,
    /// Bounds of channel actions.
    pub action: ActionConfig,
}

/// One server as seen at a moment.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerSnapshot {
    /// Its configuration.
    pub config: Arc<ServerConfig>,
    /// Its state.
    pub state: ServerState,
}

/// The whole fleet as seen at a moment.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetSnapshot {
    /// When it was taken.
    pub taken_at: Instant,
    /// The latest sweep started.
    pub sweep: u64,
    /// Every server, in configuration order.
    pub servers: Vec<ServerSnapshot>,
    /// Every managed channel that drifts (see [`Reconciler`]).
    pub drifts: Vec<Drift>,
}

impl FleetSnapshot {
    /// How many servers have `health`.
    pub fn count(&self, health: Health) -> usize {
        self.servers.iter().filter(|s| s.state.health == health).count()
    }
}

/// An action under way, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionProgress {
    /// The action.
    pub action: ActionId,
    /// The server.
    pub server: ServerId,
    /// The channel.
    pub channel: ChannelId,
    /// What it does.
    pub kind: ActionKind,
    /// Where it is.
    pub phase: Phase,
    /// Its batch.
    pub batch: Option<BatchId>,
}

/// Poller, actions, batches and the reconciler of one fleet. Inputs:
/// `handle_response`, `handle_timeout`, and the commands (`refresh`,
/// `submit`, `submit_batch`, `reload`, `set_maintenance`,
/// `reconciler_mut`); outputs: `poll_request`, `poll_event`,
/// `poll_timeout`. See the [crate docs](crate) for the loop.
///
/// The [`Reconciler`] sees every server when a sweep finishes, and a server
/// at once when something happens to it (health, channel change, refresh,
/// an action's end); its heals are actions like a human's, through the same
/// per-channel lock, told apart by [`Event::HealStarted`] and
/// [`Reconciler::is_heal`]. With no desired state set (the default) it never
/// acts.
#[derive(Debug)]
pub struct Fleet {
    config: FleetConfig,
    poller: Poller,
    actions: BTreeMap<ActionId, Action>,
    locks: BTreeMap<(ServerId, ChannelId), ActionId>,
    batches: BTreeMap<BatchId, Batch>,
    /// Requests sent for actions; every other id is the poller's (one id
    /// space: the poller hands out the ids for both).
    action_requests: BTreeMap<RequestId, ActionId>,
    events: VecDeque<Event>,
    next_action: u64,
    next_batch: u64,
    reconciler: Reconciler,
    /// Servers the reconciler should look at again.
    touched: BTreeSet<ServerId>,
    /// A sweep finished (or the list changed): the reconciler looks at all.
    full_pass: bool,
    /// Heals wait for the owner's go-ahead ([`Fleet::set_confirm_heals`]).
    confirm_heals: bool,
    /// The heal waiting for it, if any.
    awaiting: Option<AwaitingHeal>,
    next_ticket: u64,
}

/// How long a heal waits for the owner's go-ahead
/// ([`Fleet::confirm_heal`]) before it lapses (it is then tried again
/// later, not counted as an attempt).
pub const HEAL_CONFIRM_WAIT: Duration = Duration::from_secs(10);

/// A heal handed out by the reconciler, waiting for the owner's go-ahead.
#[derive(Debug)]
struct AwaitingHeal {
    ticket: u64,
    heal: Heal,
    until: Instant,
}

impl Fleet {
    /// A fleet of `servers`; the first sweep starts at `now`.
    pub fn new(config: FleetConfig, servers: Vec<ServerConfig>, now: Instant) -> Self {
        Fleet {
            poller: Poller::new(config.poller.clone(), servers, now),
            config,
            actions: BTreeMap::new(),
            locks: BTreeMap::new(),
            batches: BTreeMap::new(),
            action_requests: BTreeMap::new(),
            events: VecDeque::new(),
            next_action: 0,
            next_batch: 0,
            reconciler: Reconciler::default(),
            touched: BTreeSet::new(),
            full_pass: false,
            confirm_heals: false,
            awaiting: None,
            next_ticket: 0,
        }
    }

    /// With `on`, a heal is not started when the reconciler wants it: an
    /// [`Event::HealRequested`] asks the owner first, and the heal starts
    /// when [`confirm_heal`](Self::confirm_heal) says so (one heal waits at
    /// a time). For an owner that must record an action before anything
    /// is sent.
    pub fn set_confirm_heals(&mut self, on: bool) {
        self.confirm_heals = on;
    }

    /// The owner's answer to [`Event::HealRequested`] `ticket`: with `go`,
    /// the heal starts now if it still may (the channel still drifts, is
    /// not held, its server online and not in maintenance). Returns the
    /// action doing it; `None` when it did not start (refused, lapsed, an
    /// unknown ticket): the reconciler tries again later, without counting
    /// an attempt.
    pub fn confirm_heal(&mut self, ticket: u64, go: bool, now: Instant) -> Option<ActionId> {
        if self.awaiting.as_ref().is_none_or(|a| a.ticket != ticket) {
            return None;
        }
        let heal = self.awaiting.take()?.heal;
        let still = go
            && self.poller.sweeps(&heal.server, now)
            && self.reconciler.drift(&heal.server, heal.channel).is_some()
            && !self.locks.contains_key(&(heal.server.clone(), heal.channel))
            && self.poller.state(&heal.server).is_some_and(|s| s.health == Health::Online && !s.maintenance);
        let started =
            if still { self.submit_inner(&heal.server, heal.channel, heal.kind, None, now).ok() } else { None };
        match started {
            Some(action) => self.reconciler.handle_heal_started(action, now),
            None => self.reconciler.handle_heal_refused(now),
        }
        self.reconcile(now);
        started
    }

    /// The settings.
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// The poller, for reading.
    pub fn poller(&self) -> &Poller {
        &self.poller
    }

    /// The next request to send. Action requests come first: they never
    /// wait behind a sweep.
    pub fn poll_request(&mut self, now: Instant) -> Option<Transmit> {
        for (id, action) in self.actions.iter_mut() {
            if let Some(request) = action.poll_request(now) {
                let request_id = self.poller.next_request_id();
                self.action_requests.insert(request_id, *id);
                return Some(Transmit { id: request_id, server: action.server().clone(), request });
            }
        }
        let poll = self.poller.poll_request(now);
        self.pump();
        poll
    }

    /// Feeds back the outcome of a request. Unknown ids are ignored.
    pub fn handle_response(&mut self, id: RequestId, result: Result<Response, TransportError>, now: Instant) {
        match self.action_requests.remove(&id) {
            None => self.poller.handle_response(id, result, now),
            Some(action) => {
                if let Some(a) = self.actions.get_mut(&action) {
                    if let Some(status) = a.handle_response(result, now) {
                        let server = a.server().id.clone();
                        self.poller.observe_status(&server, status, now);
                        // Channel changes first, then the action's end.
                        while let Some(e) = self.poller.poll_event() {
                            self.events.push_back(e);
                        }
                    }
                    if a.is_finished() {
                        self.finish_action(action, now);
                    }
                }
            }
        }
        self.pump();
        self.reconcile(now);
    }

    /// Expires what is overdue and starts what is due. Safe to call early.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.poller.handle_timeout(now);
        self.pump();
        let mut done = Vec::new();
        for (id, action) in self.actions.iter_mut() {
            action.handle_timeout(now);
            if action.is_finished() {
                done.push(*id);
            }
        }
        for id in done {
            self.finish_action(id, now);
        }
        self.pump();
        self.reconcile(now);
    }

    /// When `handle_timeout` or `poll_request` next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.actions
            .values()
            .filter_map(Action::poll_timeout)
            .chain(self.poller.poll_timeout())
            .chain(self.reconciler.poll_timeout())
            .chain(self.awaiting.as_ref().map(|a| a.until))
            .min()
    }

    /// The next event, in the order things happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.pump();
        self.events.pop_front()
    }

    fn pump(&mut self) {
        while let Some(e) = self.poller.poll_event() {
            self.note(&e);
            self.events.push_back(e);
        }
    }

    /// Remembers what the reconciler must look at again.
    fn note(&mut self, e: &Event) {
        match e {
            Event::SweepFinished { .. } => self.full_pass = true,
            e => {
                if let Some(server) = e.server() {
                    if !self.touched.contains(server) {
                        self.touched.insert(server.clone());
                    }
                }
            }
        }
    }

    /// Lets the reconciler observe what changed, then starts the heals it
    /// wants (through the per-channel lock) and passes on its events.
    fn reconcile(&mut self, now: Instant) {
        if self.full_pass || self.reconciler.needs_full_pass() {
            self.full_pass = false;
            self.touched.clear();
            self.reconciler.handle_fleet(self.poller.servers(), now);
        } else {
            for server in core::mem::take(&mut self.touched) {
                if let (Some(c), Some(s)) = (self.poller.server(&server), self.poller.state(&server)) {
                    self.reconciler.handle_server(c, s, now);
                }
            }
        }
        self.reconciler.handle_timeout(now);
        if self.awaiting.as_ref().is_some_and(|a| now >= a.until) {
            self.awaiting = None;
            self.reconciler.handle_heal_refused(now);
        }
        loop {
            while let Some(e) = self.reconciler.poll_event() {
                self.events.push_back(e);
            }
            let (poller, locks) = (&self.poller, &self.locks);
            let heal = self.reconciler.poll_heal(now, |server, channel| {
                !locks.contains_key(&(server.clone(), channel))
                    && poller.sweeps(server, now)
                    && poller.state(server).is_some_and(|s| s.health == Health::Online && !s.maintenance)
            });
            let Some(heal) = heal else { break };
            if self.confirm_heals {
                self.next_ticket += 1;
                let ticket = self.next_ticket;
                self.events.push_back(Event::HealRequested { heal: heal.clone(), ticket });
                self.awaiting = Some(AwaitingHeal { ticket, heal, until: now + HEAL_CONFIRM_WAIT });
                break;
            }
            match self.submit_inner(&heal.server, heal.channel, heal.kind, None, now) {
                Ok(action) => self.reconciler.handle_heal_started(action, now),
                Err(_) => self.reconciler.handle_heal_refused(now),
            }
        }
    }

    /// The reconciler, for reading: drifts, desired state, policies.
    pub fn reconciler(&self) -> &Reconciler {
        &self.reconciler
    }

    /// The reconciler, to set desired state, policies and its settings.
    /// Changes to desired state and healing apply at the next
    /// `handle_timeout` (which [`poll_timeout`](Self::poll_timeout) asks for
    /// at once).
    pub fn reconciler_mut(&mut self) -> &mut Reconciler {
        &mut self.reconciler
    }

    /// Asks for a poll of `server` now; [`Event::Refreshed`] follows.
    pub fn refresh(&mut self, server: &ServerId) -> Result<(), ActionError> {
        if self.poller.refresh(server) {
            Ok(())
        } else {
            Err(ActionError::ServerNotFound { server: server.clone() })
        }
    }

    /// Starts an action on one channel. Refused at once (no request sent)
    /// for an unknown server, a server in maintenance, a channel beyond the
    /// known count, or a channel another action holds ([`ActionError::Busy`]).
    /// [`Event::ActionFinished`] carries the outcome.
    pub fn submit(
        &mut self,
        server: &ServerId,
        channel: ChannelId,
        kind: ActionKind,
        now: Instant,
    ) -> Result<ActionId, ActionError> {
        self.submit_inner(server, channel, kind, None, now)
    }

    fn submit_inner(
        &mut self,
        server: &ServerId,
        channel: ChannelId,
        kind: ActionKind,
        batch: Option<BatchId>,
        now: Instant,
    ) -> Result<ActionId, ActionError> {
        let (Some(config), Some(state)) = (self.poller.server(server), self.poller.state(server)) else {
            return Err(ActionError::ServerNotFound { server: server.clone() });
        };
        if state.maintenance {
            return Err(ActionError::Maintenance { server: server.clone() });
        }
        if let Some(holder) = self.locks.get(&(server.clone(), channel)) {
            return Err(ActionError::Busy { server: server.clone(), channel, holder: *holder });
        }
        let known = state.status.as_ref().map(|s| s.channels.len());
        self.next_action += 1;
        let id = ActionId(self.next_action);
        let action = Action::new(id, config.clone(), channel, kind, batch, known, self.config.action.clone(), now)?;
        self.locks.insert((server.clone(), channel), id);
        self.actions.insert(id, action);
        self.events.push_back(Event::ActionStarted { action: id, server: server.clone(), channel, kind, batch });
        Ok(id)
    }

    fn finish_action(&mut self, id: ActionId, now: Instant) {
        let Some(mut action) = self.actions.remove(&id) else { return };
        self.locks.remove(&(action.server().id.clone(), action.channel()));
        let Some(report) = action.take_report() else { return };
        self.events.push_back(Event::ActionFinished { report: report.clone() });
        self.reconciler.handle_heal_finished(&report, now);
        self.touched.insert(report.server.clone());
        if let Some(batch_id) = report.batch {
            if let Some(mut batch) = self.batches.remove(&batch_id) {
                batch.handle_finished(report);
                self.advance_batch(batch, now);
            }
        }
    }

    /// The channels a batch would act on, without running it (dry run).
    pub fn plan_batch(&self, spec: &BatchSpec) -> Result<Vec<BatchTarget>, BatchError> {
        plan(spec, self.poller.servers().map(|(c, s)| (&**c, s)))
    }

    /// Numbers the next batches after `last` (never lower than now): a
    /// driver that keeps batches across restarts calls it once at start so
    /// a new batch never takes a kept one's id.
    pub fn number_batches_after(&mut self, last: u64) {
        self.next_batch = self.next_batch.max(last);
    }

    /// Starts a batch. Progress and the final report come as events.
    pub fn submit_batch(&mut self, spec: BatchSpec, now: Instant) -> Result<BatchId, BatchError> {
        let plan = self.plan_batch(&spec)?;
        self.next_batch += 1;
        let id = BatchId(self.next_batch);
        self.advance_batch(Batch::new(id, &spec, plan, now), now);
        Ok(id)
    }

    /// Starts what the batch wants started, reports its progress, and
    /// keeps it (or reports its end).
    fn advance_batch(&mut self, mut batch: Batch, now: Instant) {
        let id = batch.id();
        while let Some(target) = batch.poll_target() {
            match self.submit_inner(&target.server, target.channel, batch.kind(), Some(id), now) {
                Ok(action) => batch.handle_started(action),
                Err(error) => batch.handle_refused(error, now),
            }
            while let Some(progress) = batch.poll_event() {
                self.events.push_back(Event::BatchProgress(progress));
            }
        }
        while let Some(progress) = batch.poll_event() {
            self.events.push_back(Event::BatchProgress(progress));
        }
        match batch.take_report(now) {
            Some(report) => self.events.push_back(Event::BatchFinished { report }),
            None => {
                self.batches.insert(id, batch);
            }
        }
    }

    /// A batch under way, for reading its progress.
    pub fn batch(&self, id: BatchId) -> Option<&Batch> {
        self.batches.get(&id)
    }

    /// Replaces the server list; servers that remain keep their state.
    /// Actions under way run to their end.
    pub fn reload(&mut self, servers: Vec<ServerConfig>, now: Instant) -> ReloadSummary {
        let summary = self.poller.reload(servers, now);
        self.pump();
        self.full_pass = true;
        self.reconcile(now);
        summary
    }

    /// Turns automatic sweeps on or off (see [`Poller::set_auto_sweep`]).
    pub fn set_auto_sweep(&mut self, on: bool) {
        self.poller.set_auto_sweep(on);
    }

    /// Starts a sweep now; returns the sweep number whose
    /// [`Event::SweepFinished`] to wait for (see [`Poller::sweep_now`]).
    pub fn sweep_now(&mut self, now: Instant) -> u64 {
        let sweep = self.poller.sweep_now(now);
        self.pump();
        sweep
    }

    /// Sweeps `server` here always (the default), until an instant (a
    /// lease), or never, leaving its polling, healing and alerting to the
    /// instance that owns it (several instances share one fleet): see
    /// [`Poller::set_sweeping`]. False for an unknown server.
    pub fn set_sweeping(&mut self, server: &ServerId, sweeping: crate::poller::Sweeping, now: Instant) -> bool {
        let known = self.poller.set_sweeping(server, sweeping, now);
        if known {
            self.touched.insert(server.clone());
        }
        known
    }

    /// Applies the owning instance's observation of a server this fleet
    /// does not sweep ([`Poller::adopt`]); the reconciler sees it at the
    /// next `handle_timeout` (it watches drift there, but heals only
    /// servers swept here), so a driver adopting many at once pays for
    /// one pass.
    pub fn adopt(&mut self, server: &ServerId, observed: crate::poller::Observed, now: Instant) -> bool {
        let applied = self.poller.adopt(server, observed, now);
        if applied {
            self.touched.insert(server.clone());
            self.pump();
        }
        applied
    }

    /// Puts a server in or out of maintenance. False for an unknown server.
    pub fn set_maintenance(&mut self, server: &ServerId, on: bool) -> bool {
        let known = self.poller.set_maintenance(server, on);
        if known {
            self.touched.insert(server.clone());
        }
        known
    }

    /// The state of one server.
    pub fn state(&self, server: &ServerId) -> Option<&ServerState> {
        self.poller.state(server)
    }

    /// The configuration of one server.
    pub fn server(&self, server: &ServerId) -> Option<&Arc<ServerConfig>> {
        self.poller.server(server)
    }

    /// One server as seen now.
    pub fn server_snapshot(&self, server: &ServerId) -> Option<ServerSnapshot> {
        let config = self.poller.server(server)?.clone();
        let state = self.poller.state(server)?.clone();
        Some(ServerSnapshot { config, state })
    }

    /// Every server, with its state, as seen now.
    pub fn snapshot(&self, now: Instant) -> FleetSnapshot {
        FleetSnapshot {
            taken_at: now,
            sweep: self.poller.sweep(),
            servers: self
                .poller
                .servers()
                .map(|(c, s)| ServerSnapshot { config: c.clone(), state: s.clone() })
                .collect(),
            drifts: self.reconciler.drifts(),
        }
    }

    /// Actions under way.
    pub fn actions(&self) -> Vec<ActionProgress> {
        self.actions
            .values()
            .map(|a| ActionProgress {
                action: a.id(),
                server: a.server().id.clone(),
                channel: a.channel(),
                kind: a.kind(),
                phase: a.phase(),
                batch: a.batch(),
            })
            .collect()
    }

    /// True when the fleet has no action or batch under way.
    pub fn is_idle(&self) -> bool {
        self.actions.is_empty() && self.batches.is_empty()
    }
}
