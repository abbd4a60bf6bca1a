//! [`Cluster`]: a fleet polled in the background, with verified channel
//! actions, batches and an event stream.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use ipvtl_core::driver::{drive, Clock, FleetCell};
use ipvtl_core::poller::Sweeping;
use ipvtl_core::{
    parse_servers_file, ActionKind, ActionProgress, ActionReport, BatchId, BatchReport, BatchSpec, BatchTarget,
    ChannelId, Desired, Drift, Fleet, FleetSnapshot, Heal, Healing, Instant, ReconcilerConfig, ReloadSummary, Scope,
    ServerConfig, ServerId, ServerSnapshot, ServersFile, Source, Transport,
};

use crate::dispatch::{Dispatch, Subscription};
use crate::error::ClientError;
use crate::settings::Settings;
use crate::transport::IsahcTransport;

/// The driver's clock: milliseconds since the cluster started, with smol's
/// timers for sleeping.
#[derive(Clone, Copy, Debug)]
pub struct SmolClock {
    epoch: std::time::Instant,
    wall_epoch: SystemTime,
}

impl SmolClock {
    pub(crate) fn new() -> Self {
        SmolClock { epoch: std::time::Instant::now(), wall_epoch: SystemTime::now() }
    }

    /// Wall-clock time of a core instant.
    pub fn to_system_time(&self, at: Instant) -> SystemTime {
        self.wall_epoch + Duration::from_millis(at.as_millis())
    }
}

/// A smol timer that completes with `()`.
#[derive(Debug)]
pub struct Sleep(smol::Timer);

impl std::future::Future for Sleep {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Clock for SmolClock {
    type Sleep = Sleep;
    fn now(&self) -> Instant {
        Instant::from_millis(self.epoch.elapsed().as_millis() as u64)
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep(smol::Timer::at(self.epoch + Duration::from_millis(deadline.as_millis())))
    }
}

struct SharedFleet(Mutex<Fleet>);

impl SharedFleet {
    fn lock(&self) -> MutexGuard<'_, Fleet> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl FleetCell for SharedFleet {
    fn with<R>(&self, f: impl FnOnce(&mut Fleet) -> R) -> R {
        f(&mut self.lock())
    }
}

struct Shared {
    fleet: Arc<SharedFleet>,
    dispatch: Arc<Dispatch>,
    wake: smol::channel::Sender<()>,
    clock: SmolClock,
    settings: Settings,
    driver: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.wake.close();
        let handle = self.driver.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

/// A handle that does not keep the cluster running (for its own helpers,
/// such as an alert watch).
#[derive(Clone)]
pub(crate) struct WeakCluster(std::sync::Weak<Shared>);

impl WeakCluster {
    /// The cluster, unless it has shut down.
    pub(crate) fn upgrade(&self) -> Option<Cluster> {
        self.0.upgrade().map(|shared| Cluster { shared })
    }
}

/// A fleet of IPVTL servers, polled in the background on a driver thread of
/// its own, so it works under any async runtime (or none: see
/// [`crate::blocking`]). Cheap to clone; the driver stops when the last
/// clone is dropped.
///
/// Every method that talks to servers is a future that only waits for the
/// driver; policy (caps, backoff, phases, locks) lives in `ipvtl-core`.
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("servers", &self.len()).finish_non_exhaustive()
    }
}

impl Cluster {
    /// A cluster over `servers` with the isahc transport. The first one in
    /// a process raises its limit of open files (see [`crate::raise_fd_limit`]).
    pub fn new(servers: Vec<ServerConfig>, settings: Settings) -> Result<Self, ClientError> {
        settings.validate()?;
        let fd_limit = crate::limits::raise_fd_limit_once();
        let options = settings.transport_options(servers.len(), fd_limit);
        let transport = IsahcTransport::new(&options).map_err(ClientError::Transport)?;
        Self::with_transport(servers, settings, Arc::new(transport))
    }

    /// A cluster from a `servers.json` file.
    pub fn from_file(path: impl AsRef<Path>, settings: Settings) -> Result<Self, ClientError> {
        Self::from_declared(load_servers_file(path.as_ref())?, settings)
    }

    /// A cluster from a servers file already parsed (see
    /// [`load_servers_file`]): its servers, desired state and healing.
    pub fn from_declared(file: ServersFile, settings: Settings) -> Result<Self, ClientError> {
        let cluster = Self::new(file.servers, settings)?;
        cluster.fleet().reconciler_mut().replace_file_settings(file.desired, file.healing);
        cluster.wake();
        Ok(cluster)
    }

    /// A cluster over any [`Transport`] (bring your own HTTP stack).
    pub fn with_transport(
        servers: Vec<ServerConfig>,
        settings: Settings,
        transport: Arc<dyn Transport>,
    ) -> Result<Self, ClientError> {
        settings.validate()?;
        check_unique(&servers)?;
        let clock = SmolClock::new();
        let mut fleet = Fleet::new(settings.fleet_config(), servers, clock.now());
        fleet.set_auto_sweep(settings.background);
        let fleet = Arc::new(SharedFleet(Mutex::new(fleet)));
        let dispatch = Arc::new(Dispatch::default());
        let (wake, wake_rx) = smol::channel::bounded(1);
        let driver = {
            let (fleet, dispatch) = (fleet.clone(), dispatch.clone());
            std::thread::Builder::new()
                .name("ipvtl-driver".into())
                .spawn(move || {
                    smol::block_on(drive(&*fleet, &*transport, &clock, Box::pin(wake_rx), |e| dispatch.on_event(e)));
                })
                .map_err(|e| ClientError::Internal(format!("cannot start the driver thread: {e}")))?
        };
        Ok(Cluster {
            shared: Arc::new(Shared { fleet, dispatch, wake, clock, settings, driver: Mutex::new(Some(driver)) }),
        })
    }

    fn wake(&self) {
        let _ = self.shared.wake.try_send(());
    }

    fn fleet(&self) -> MutexGuard<'_, Fleet> {
        self.shared.fleet.lock()
    }

    /// The same cluster with blocking methods.
    pub fn blocking(&self) -> crate::blocking::Cluster {
        crate::blocking::Cluster::from(self.clone())
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// The clock: current instant, and wall time of an instant.
    pub fn clock(&self) -> &SmolClock {
        &self.shared.clock
    }

    /// The current core instant (for ages: `now - state.last_ok_at`).
    pub fn now(&self) -> Instant {
        self.shared.clock.now()
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.fleet().poller().len()
    }

    /// True for an empty fleet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every server and its state, as of now. Cheap: no network.
    pub fn snapshot(&self) -> FleetSnapshot {
        let now = self.now();
        self.fleet().snapshot(now)
    }

    /// One server and its state, as of now.
    pub fn server(&self, id: &str) -> Result<ServerSnapshot, ClientError> {
        self.fleet().server_snapshot(&ServerId::from(id)).ok_or_else(|| ClientError::ServerNotFound(id.into()))
    }

    /// Runs a sweep now (or joins the one still queueing) and returns the
    /// fleet once every poll of it has ended.
    pub async fn poll_all(&self) -> Result<FleetSnapshot, ClientError> {
        let now = self.now();
        let done = {
            let mut fleet = self.fleet();
            let sweep = fleet.sweep_now(now);
            self.shared.dispatch.wait_sweep(sweep)
        };
        self.wake();
        done.await.map_err(|_| ClientError::Closed)?;
        Ok(self.snapshot())
    }

    /// Polls one server now, ahead of the sweep, and returns it. A failed
    /// poll is not an error: the state says what failed.
    pub async fn refresh(&self, id: &str) -> Result<ServerSnapshot, ClientError> {
        let server = ServerId::from(id);
        let done = {
            let mut fleet = self.fleet();
            fleet.refresh(&server).map_err(|_| ClientError::ServerNotFound(server.clone()))?;
            self.shared.dispatch.wait_refresh(server)
        };
        self.wake();
        done.await.map_err(|_| ClientError::Closed)?;
        self.server(id)
    }

    /// Starts channel `channel` and waits until it runs.
    pub async fn start(&self, id: &str, channel: u32) -> Result<ActionReport, ClientError> {
        self.action(id, channel, ActionKind::Start).await
    }

    /// Stops channel `channel` and waits until it is idle.
    pub async fn stop(&self, id: &str, channel: u32) -> Result<ActionReport, ClientError> {
        self.action(id, channel, ActionKind::Stop).await
    }

    /// Restarts channel `channel`: stop, wait until idle, start, wait until
    /// running. The report has each phase's timing.
    pub async fn restart(&self, id: &str, channel: u32) -> Result<ActionReport, ClientError> {
        self.action(id, channel, ActionKind::Restart).await
    }

    /// Runs one action and waits for its report. Refusals (unknown server
    /// or channel, busy, maintenance) come back at once with nothing sent;
    /// a failed action is [`ClientError::ActionFailed`] with its report.
    pub async fn action(&self, id: &str, channel: u32, kind: ActionKind) -> Result<ActionReport, ClientError> {
        let pending = self.submit(id, channel, kind)?;
        pending.await
    }

    /// Submits an action now (refusals are immediate) and returns a future
    /// of its report.
    pub fn submit(
        &self,
        id: &str,
        channel: u32,
        kind: ActionKind,
    ) -> Result<impl std::future::Future<Output = Result<ActionReport, ClientError>> + Send + 'static, ClientError>
    {
        let (server, ch) = channel_of(id, channel)?;
        let now = self.now();
        let done = {
            let mut fleet = self.fleet();
            let action = fleet.submit(&server, ch, kind, now).map_err(|e| ClientError::from_action(e, None))?;
            self.shared.dispatch.wait_action(action)
        };
        self.wake();
        Ok(async move {
            let report = done.await.map_err(|_| ClientError::Closed)?;
            match &report.outcome {
                Ok(()) => Ok(report),
                Err(e) => Err(ClientError::from_action(e.clone(), Some(report))),
            }
        })
    }

    /// The channels a batch would act on, without acting (dry run).
    pub fn plan(&self, spec: &BatchSpec) -> Result<Vec<BatchTarget>, ClientError> {
        self.fleet().plan_batch(spec).map_err(ClientError::Batch)
    }

    /// Runs a batch to its end. Progress comes as events.
    pub async fn batch(&self, spec: BatchSpec) -> Result<BatchReport, ClientError> {
        let (_, done) = self.submit_batch(spec)?;
        done.await
    }

    /// Starts a batch now and returns its id and a future of its report.
    pub fn submit_batch(
        &self,
        spec: BatchSpec,
    ) -> Result<
        (BatchId, impl std::future::Future<Output = Result<BatchReport, ClientError>> + Send + 'static),
        ClientError,
    > {
        let now = self.now();
        let (id, done) = {
            let mut fleet = self.fleet();
            // The id is known before submitting, so the waiter is in place
            // even for a batch that finishes inside `submit_batch`.
            let id = fleet.submit_batch(spec, now).map_err(ClientError::Batch)?;
            (id, self.shared.dispatch.wait_batch(id))
        };
        self.wake();
        Ok((id, async move { done.await.map_err(|_| ClientError::Closed) }))
    }

    /// Numbers the next batches after `last` (never lower than now), for a
    /// caller that keeps batches across restarts.
    pub fn number_batches_after(&self, last: u64) {
        self.fleet().number_batches_after(last);
    }

    /// A stream of events from now on. Many subscribers may exist; a slow
    /// one loses events rather than slowing the cluster.
    pub fn subscribe(&self) -> Subscription {
        self.subscribe_with_buffer(self.shared.settings.event_buffer)
    }

    /// Like [`Cluster::subscribe`], with a buffer of `capacity` events for
    /// this subscriber alone (at least 1): a pump that forwards everything
    /// wants a large one, a view that only shows the latest state a small one.
    pub fn subscribe_with_buffer(&self, capacity: usize) -> Subscription {
        self.shared.dispatch.subscribe(capacity.max(1))
    }

    /// Runs the alert rules over this cluster on a thread of their own
    /// (see [`crate::alerts`]): its notifications, active alerts and
    /// silences. Stops when dropped; does not keep the cluster running.
    pub fn watch_alerts(&self, rules: crate::alerts::AlertRules) -> Result<crate::alerts::AlertWatch, ClientError> {
        crate::alerts::AlertWatch::start(self, rules, self.subscribe())
    }

    pub(crate) fn downgrade(&self) -> WeakCluster {
        WeakCluster(Arc::downgrade(&self.shared))
    }

    /// Replaces the server list. Servers that remain keep their state;
    /// actions under way finish. A bad list changes nothing.
    pub fn reload(&self, servers: Vec<ServerConfig>) -> Result<ReloadSummary, ClientError> {
        check_unique(&servers)?;
        let now = self.now();
        let summary = self.fleet().reload(servers, now);
        self.wake();
        Ok(summary)
    }

    /// Re-reads a `servers.json` file; a bad file changes nothing. The
    /// desired state and healing declared in the file replace those of the
    /// previous file; settings made through the API stay (and win over a
    /// file setting at the same scope).
    pub fn reload_file(&self, path: impl AsRef<Path>) -> Result<ReloadSummary, ClientError> {
        self.reload_declared(load_servers_file(path.as_ref())?)
    }

    /// Like [`Cluster::reload_file`] with a file already parsed (see
    /// [`load_servers_file`]): its servers replace the list, its desired
    /// state and healing replace those of the previous file, settings made
    /// through the API stay.
    pub fn reload_declared(&self, file: ServersFile) -> Result<ReloadSummary, ClientError> {
        check_unique(&file.servers)?;
        let now = self.now();
        let summary = {
            let mut fleet = self.fleet();
            fleet.reconciler_mut().replace_file_settings(file.desired, file.healing);
            fleet.reload(file.servers, now)
        };
        self.wake();
        Ok(summary)
    }

    /// Puts a server in or out of maintenance (polled, no alarms, no actions).
    pub fn set_maintenance(&self, id: &str, on: bool) -> Result<(), ClientError> {
        if self.fleet().set_maintenance(&ServerId::from(id), on) {
            Ok(())
        } else {
            Err(ClientError::ServerNotFound(id.into()))
        }
    }

    /// How each server is swept here (several dashboards sharing one
    /// fleet): always, until an instant (what a lease allows: past it, the
    /// core stops polling and healing the server even if nobody calls
    /// again), or never (another instance owns it; its state arrives
    /// through [`Cluster::adopt`]). A server taken over is polled at once.
    /// Returns how many servers changed.
    pub fn set_sweeping(&self, sweeping: impl Fn(&ServerId) -> Sweeping) -> usize {
        let now = self.now();
        let mut fleet = self.fleet();
        let changes: Vec<(ServerId, Sweeping)> = fleet
            .poller()
            .servers()
            .map(|(c, _)| (c.id.clone(), sweeping(&c.id)))
            .filter(|(id, to)| fleet.poller().sweeping(id) != Some(*to))
            .collect();
        for (id, to) in &changes {
            fleet.set_sweeping(id, *to, now);
        }
        drop(fleet);
        if !changes.is_empty() {
            self.wake();
        }
        changes.len()
    }

    /// True when `id` is swept here now (see [`Cluster::set_sweeping`]).
    pub fn sweeps(&self, id: &ServerId) -> bool {
        let now = self.now();
        self.fleet().poller().sweeps(id, now)
    }

    /// Applies the owning instance's observations of servers not swept
    /// here (as the store handed them over), with the same events a poll
    /// would give. Returns how many were applied.
    pub fn adopt(&self, observed: impl IntoIterator<Item = (ServerId, ipvtl_core::poller::Observed)>) -> usize {
        let now = self.now();
        let mut fleet = self.fleet();
        let applied = observed.into_iter().map(|(id, o)| fleet.adopt(&id, o, now)).filter(|applied| *applied).count();
        drop(fleet);
        if applied > 0 {
            self.wake();
        }
        applied
    }

    /// What this instance last observed of each server it sweeps, for the
    /// others sharing the fleet.
    pub fn observed(&self) -> Vec<(ServerId, ipvtl_core::poller::Observed)> {
        let now = self.now();
        let fleet = self.fleet();
        let poller = fleet.poller();
        poller
            .servers()
            .filter(|(c, _)| poller.sweeps(&c.id, now))
            .filter_map(|(c, s)| Some((c.id.clone(), ipvtl_core::poller::Observed::of(s)?)))
            .collect()
    }

    /// Turns background sweeps on or off.
    pub fn set_background(&self, on: bool) {
        self.fleet().set_auto_sweep(on);
        self.wake();
    }

    /// Actions under way.
    pub fn actions(&self) -> Vec<ActionProgress> {
        self.fleet().actions()
    }

    // --- Desired state and healing (see `ipvtl_core::Reconciler`) ---

    /// Refuses a scope naming a server that is not in the fleet.
    fn check_scope(fleet: &Fleet, scope: &Scope) -> Result<(), ClientError> {
        match scope {
            Scope::Channel(s, _) | Scope::Server(s) if fleet.server(s).is_none() => {
                Err(ClientError::ServerNotFound(s.clone()))
            }
            _ => Ok(()),
        }
    }

    /// Refuses a scope naming a server not in the fleet, else lets `set`
    /// change the reconciler at `scope` and wakes the loop (the change
    /// applies at once).
    fn set_at_scope(
        &self,
        scope: Scope,
        set: impl FnOnce(&mut ipvtl_core::Reconciler, Scope),
    ) -> Result<(), ClientError> {
        {
            let mut fleet = self.fleet();
            Self::check_scope(&fleet, &scope)?;
            set(fleet.reconciler_mut(), scope);
        }
        self.wake();
        Ok(())
    }

    /// Sets what the channels of `scope` should be doing (the narrower
    /// scope wins; an explicit [`Desired::Unmanaged`] overrides broader
    /// ones). Applies at once: drift is judged on the next look.
    pub fn set_desired(&self, scope: Scope, desired: Desired) -> Result<(), ClientError> {
        self.set_at_scope(scope, |r, scope| r.set_desired(scope, desired))
    }

    /// Removes the desired state set at `scope` (broader ones apply
    /// again); returns what was set there.
    pub fn clear_desired(&self, scope: &Scope) -> Option<Desired> {
        let old = self.fleet().reconciler_mut().clear_desired(scope);
        self.wake();
        old
    }

    /// Every desired-state setting in force, narrowest scopes first, with
    /// where it came from (the servers file or the API; at one scope the
    /// API's wins).
    pub fn desired_settings(&self) -> Vec<(Scope, Desired, Source)> {
        self.fleet().reconciler().desired_settings().iter_sourced().map(|(s, d, src)| (s, *d, src)).collect()
    }

    /// What `channel` of server `id` should be doing, and the scope that
    /// says so (`None`: nothing does, so unmanaged).
    pub fn desired(&self, id: &str, channel: u32) -> Result<(Desired, Option<Scope>), ClientError> {
        let (server, ch) = channel_of(id, channel)?;
        let fleet = self.fleet();
        let config = fleet.server(&server).ok_or_else(|| ClientError::ServerNotFound(server.clone()))?;
        Ok(fleet.reconciler().desired(config, ch))
    }

    /// What every managed channel should be doing, by server: one lookup
    /// of the settings for the whole fleet (a list of every channel would
    /// resolve each one). Servers with nothing managed are left out.
    pub fn managed(&self) -> HashMap<ServerId, ManagedServer> {
        let fleet = self.fleet();
        let settings = fleet.reconciler().desired_settings();
        let mut by = HashMap::new();
        if settings.is_empty() {
            return by;
        }
        for (config, _) in fleet.poller().servers() {
            if let Some((d, _)) = settings.resolve_server(config) {
                by.insert(config.id.clone(), ManagedServer { all: Some(*d), channels: BTreeMap::new() });
            }
        }
        for (scope, d) in settings.iter() {
            if let Scope::Channel(server, ch) = scope {
                if fleet.server(&server).is_some() {
                    by.entry(server).or_insert_with(ManagedServer::default).channels.insert(ch.get(), *d);
                }
            }
        }
        by
    }

    /// Turns healing on (with a policy) or off for `scope`.
    pub fn set_healing(&self, scope: Scope, healing: Healing) -> Result<(), ClientError> {
        self.set_at_scope(scope, |r, scope| r.set_healing(scope, healing))
    }

    /// Removes the healing set at `scope`; returns what was set there.
    pub fn clear_healing(&self, scope: &Scope) -> Option<Healing> {
        let old = self.fleet().reconciler_mut().clear_healing(scope);
        self.wake();
        old
    }

    /// Every healing setting in force, narrowest scopes first, with where
    /// it came from (the servers file or the API; at one scope the API's
    /// wins).
    pub fn healing_settings(&self) -> Vec<(Scope, Healing, Source)> {
        self.fleet().reconciler().healing_settings().iter_sourced().map(|(s, h, src)| (s, h.clone(), src)).collect()
    }

    /// The reconciler's fleet-wide settings.
    pub fn reconciler_config(&self) -> ReconcilerConfig {
        self.fleet().reconciler().config().clone()
    }

    /// Changes the reconciler's fleet-wide settings: what `input` gives
    /// replaces the current value (checked first; a refusal changes
    /// nothing). Returns the settings now in force.
    pub fn configure_reconciler(
        &self,
        input: crate::reconcile::ReconcilerInput,
    ) -> Result<ReconcilerConfig, ClientError> {
        let config = {
            let mut fleet = self.fleet();
            let config = input.apply(fleet.reconciler().config())?;
            fleet.reconciler_mut().set_config(config.clone());
            config
        };
        self.wake();
        Ok(config)
    }

    /// Pauses (true) or resumes healing fleet-wide; drift is still tracked.
    pub fn set_healing_paused(&self, paused: bool) {
        let input = crate::reconcile::ReconcilerInput { paused: Some(paused), ..Default::default() };
        let _ = self.configure_reconciler(input);
    }

    /// Dry run on (heals are reported as `heal_planned`, not done) or off.
    pub fn set_dry_run(&self, on: bool) {
        let input = crate::reconcile::ReconcilerInput { dry_run: Some(on), ..Default::default() };
        let _ = self.configure_reconciler(input);
    }

    /// Where healing stands fleet-wide: settings, storm guard, counts.
    pub fn reconciler_status(&self) -> ReconcilerStatus {
        let fleet = self.fleet();
        let r = fleet.reconciler();
        let (managed, troubled) = r.counts();
        ReconcilerStatus {
            config: r.config().clone(),
            storm: r.is_storm(),
            managed,
            troubled,
            heals_in_flight: r.heals_in_flight(),
        }
    }

    /// Every managed channel that drifts, by server and channel.
    pub fn drifts(&self) -> Vec<Drift> {
        self.fleet().reconciler().drifts()
    }

    /// In dry run: the heals reported as planned for the current drifts.
    pub fn planned_heals(&self) -> Vec<Heal> {
        self.fleet().reconciler().planned()
    }

    /// With `on`, the reconciler's heals wait for [`Cluster::confirm_heal`]:
    /// each is announced by `heal_requested` with a ticket, and starts when
    /// confirmed (it lapses after [`ipvtl_core::fleet::HEAL_CONFIRM_WAIT`]).
    /// For an owner that records every action before it is sent.
    pub fn set_confirm_heals(&self, on: bool) {
        self.fleet().set_confirm_heals(on);
        self.wake();
    }

    /// Answers `heal_requested` `ticket`: with `go` the heal starts if it
    /// still may. Returns the action's id, `None` when it did not start
    /// (the reconciler tries again later).
    pub fn confirm_heal(&self, ticket: u64, go: bool) -> Option<u64> {
        let now = self.now();
        let started = self.fleet().confirm_heal(ticket, go, now);
        self.wake();
        started.map(|a| a.0)
    }

    /// A human says "try again": clears a degraded channel and its count
    /// of attempts. False when it was not degraded.
    pub fn clear_degraded(&self, id: &str, channel: u32) -> Result<bool, ClientError> {
        let (server, ch) = channel_of(id, channel)?;
        let cleared = {
            let mut fleet = self.fleet();
            if fleet.server(&server).is_none() {
                return Err(ClientError::ServerNotFound(server));
            }
            fleet.reconciler_mut().clear_degraded(&server, ch)
        };
        self.wake();
        Ok(cleared)
    }
}

/// The desired state of one server's channels ([`Cluster::managed`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagedServer {
    /// What a setting for the whole server (its own, or a tag's) says.
    pub all: Option<Desired>,
    /// Settings made for single channels, by channel number (narrower:
    /// they win over `all`).
    pub channels: BTreeMap<u32, Desired>,
}

impl ManagedServer {
    /// What `channel` should be doing; `None` when unmanaged.
    pub fn of(&self, channel: u32) -> Option<Desired> {
        self.channels.get(&channel).copied().or(self.all).filter(|d| *d != Desired::Unmanaged)
    }
}

/// Where healing stands fleet-wide ([`Cluster::reconciler_status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcilerStatus {
    /// The fleet-wide settings (`paused`, `dry_run`, caps).
    pub config: ReconcilerConfig,
    /// True while the storm guard holds every heal.
    pub storm: bool,
    /// Managed channels (not counting servers in maintenance).
    pub managed: usize,
    /// Of those, drifting or on a server not online.
    pub troubled: usize,
    /// Heals under way.
    pub heals_in_flight: usize,
}

/// Server `id`'s channel number `channel`, or `ChannelNotFound` for 0.
fn channel_of(id: &str, channel: u32) -> Result<(ServerId, ChannelId), ClientError> {
    let server = ServerId::from(id);
    match ChannelId::new(channel) {
        Some(ch) => Ok((server, ch)),
        None => Err(ClientError::ChannelNotFound { server, channel, count: None }),
    }
}

fn check_unique(servers: &[ServerConfig]) -> Result<(), ClientError> {
    let mut seen = std::collections::HashSet::new();
    for (index, s) in servers.iter().enumerate() {
        if !seen.insert(&s.id) {
            let error = ipvtl_core::ConfigError::Entry {
                index,
                id: Some(s.id.to_string()),
                reason: "duplicate id (ids must be unique)".into(),
            };
            return Err(ClientError::Config { path: None, error });
        }
    }
    Ok(())
}

/// Reads and parses a `servers.json` file (the servers only; the desired
/// state and healing declared in it are checked and dropped).
pub fn load_servers(path: &Path) -> Result<Vec<ServerConfig>, ClientError> {
    load_servers_file(path).map(|f| f.servers)
}

/// Reads and parses a `servers.json` file with the desired state and
/// healing declared in it.
pub fn load_servers_file(path: &Path) -> Result<ServersFile, ClientError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ClientError::Io { path: path.to_path_buf(), message: e.to_string() })?;
    parse_servers_file(&text).map_err(|error| ClientError::Config { path: Some(path.to_path_buf()), error })
}
