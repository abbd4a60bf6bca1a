//! The [`Cluster`](crate::Cluster) surface for callers without an async
//! runtime. Each call blocks the calling thread only while it waits for the
//! driver thread; nothing here spins up a runtime per call.

use std::path::Path;
use std::time::Duration;

use futures::FutureExt;
use ipvtl_core::{
    ActionKind, ActionProgress, ActionReport, BatchReport, BatchSpec, BatchTarget, Desired, Drift, Event,
    FleetSnapshot, Heal, Healing, ReconcilerConfig, ReloadSummary, Scope, ServerConfig, ServerSnapshot, ServersFile,
    Source,
};

use crate::error::ClientError;
use crate::settings::Settings;

/// Blocking twin of [`crate::Cluster`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Cluster {
    inner: crate::Cluster,
}

impl From<crate::Cluster> for Cluster {
    fn from(inner: crate::Cluster) -> Self {
        Cluster { inner }
    }
}

impl Cluster {
    /// A cluster over `servers`.
    pub fn new(servers: Vec<ServerConfig>, settings: Settings) -> Result<Self, ClientError> {
        crate::Cluster::new(servers, settings).map(|inner| Cluster { inner })
    }

    /// A cluster from a `servers.json` file.
    pub fn from_file(path: impl AsRef<Path>, settings: Settings) -> Result<Self, ClientError> {
        crate::Cluster::from_file(path, settings).map(|inner| Cluster { inner })
    }

    /// The async cluster behind this one.
    pub fn as_async(&self) -> &crate::Cluster {
        &self.inner
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// True for an empty fleet.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// See [`crate::Cluster::poll_all`].
    pub fn poll_all(&self) -> Result<FleetSnapshot, ClientError> {
        smol::block_on(self.inner.poll_all())
    }

    /// See [`crate::Cluster::snapshot`].
    pub fn snapshot(&self) -> FleetSnapshot {
        self.inner.snapshot()
    }

    /// See [`crate::Cluster::server`].
    pub fn server(&self, id: &str) -> Result<ServerSnapshot, ClientError> {
        self.inner.server(id)
    }

    /// See [`crate::Cluster::refresh`].
    pub fn refresh(&self, id: &str) -> Result<ServerSnapshot, ClientError> {
        smol::block_on(self.inner.refresh(id))
    }

    /// See [`crate::Cluster::start`].
    pub fn start(&self, id: &str, channel: u32) -> Result<ActionReport, ClientError> {
        self.action(id, channel, ActionKind::Start)
    }

    /// See [`crate::Cluster::stop`].
    pub fn stop(&self, id: &str, channel: u32) -> Result<ActionReport, ClientError> {
        self.action(id, channel, ActionKind::Stop)
    }

    /// See [`crate::Cluster::restart`].
    pub fn restart(&self, id: &str, channel: u32) -> Result<ActionReport, ClientError> {
        self.action(id, channel, ActionKind::Restart)
    }

    /// See [`crate::Cluster::action`].
    pub fn action(&self, id: &str, channel: u32, kind: ActionKind) -> Result<ActionReport, ClientError> {
        smol::block_on(self.inner.action(id, channel, kind))
    }

    /// See [`crate::Cluster::plan`].
    pub fn plan(&self, spec: &BatchSpec) -> Result<Vec<BatchTarget>, ClientError> {
        self.inner.plan(spec)
    }

    /// See [`crate::Cluster::batch`].
    pub fn batch(&self, spec: BatchSpec) -> Result<BatchReport, ClientError> {
        smol::block_on(self.inner.batch(spec))
    }

    /// See [`crate::Cluster::reload`].
    pub fn reload(&self, servers: Vec<ServerConfig>) -> Result<ReloadSummary, ClientError> {
        self.inner.reload(servers)
    }

    /// See [`crate::Cluster::reload_file`].
    pub fn reload_file(&self, path: impl AsRef<Path>) -> Result<ReloadSummary, ClientError> {
        self.inner.reload_file(path)
    }

    /// See [`crate::Cluster::reload_declared`].
    pub fn reload_declared(&self, file: ServersFile) -> Result<ReloadSummary, ClientError> {
        self.inner.reload_declared(file)
    }

    /// See [`crate::Cluster::set_maintenance`].
    pub fn set_maintenance(&self, id: &str, on: bool) -> Result<(), ClientError> {
        self.inner.set_maintenance(id, on)
    }

    /// See [`crate::Cluster::set_background`].
    pub fn set_background(&self, on: bool) {
        self.inner.set_background(on)
    }

    /// See [`crate::Cluster::actions`].
    pub fn actions(&self) -> Vec<ActionProgress> {
        self.inner.actions()
    }

    /// See [`crate::Cluster::set_desired`].
    pub fn set_desired(&self, scope: Scope, desired: Desired) -> Result<(), ClientError> {
        self.inner.set_desired(scope, desired)
    }

    /// See [`crate::Cluster::clear_desired`].
    pub fn clear_desired(&self, scope: &Scope) -> Option<Desired> {
        self.inner.clear_desired(scope)
    }

    /// See [`crate::Cluster::desired_settings`].
    pub fn desired_settings(&self) -> Vec<(Scope, Desired, Source)> {
        self.inner.desired_settings()
    }

    /// See [`crate::Cluster::desired`].
    pub fn desired(&self, id: &str, channel: u32) -> Result<(Desired, Option<Scope>), ClientError> {
        self.inner.desired(id, channel)
    }

    /// See [`crate::Cluster::set_healing`].
    pub fn set_healing(&self, scope: Scope, healing: Healing) -> Result<(), ClientError> {
        self.inner.set_healing(scope, healing)
    }

    /// See [`crate::Cluster::clear_healing`].
    pub fn clear_healing(&self, scope: &Scope) -> Option<Healing> {
        self.inner.clear_healing(scope)
    }

    /// See [`crate::Cluster::healing_settings`].
    pub fn healing_settings(&self) -> Vec<(Scope, Healing, Source)> {
        self.inner.healing_settings()
    }

    /// See [`crate::Cluster::reconciler_config`].
    pub fn reconciler_config(&self) -> ReconcilerConfig {
        self.inner.reconciler_config()
    }

    /// See [`crate::Cluster::configure_reconciler`].
    pub fn configure_reconciler(
        &self,
        input: crate::reconcile::ReconcilerInput,
    ) -> Result<ReconcilerConfig, ClientError> {
        self.inner.configure_reconciler(input)
    }

    /// See [`crate::Cluster::set_healing_paused`].
    pub fn set_healing_paused(&self, paused: bool) {
        self.inner.set_healing_paused(paused)
    }

    /// See [`crate::Cluster::set_dry_run`].
    pub fn set_dry_run(&self, on: bool) {
        self.inner.set_dry_run(on)
    }

    /// See [`crate::Cluster::reconciler_status`].
    pub fn reconciler_status(&self) -> crate::ReconcilerStatus {
        self.inner.reconciler_status()
    }

    /// See [`crate::Cluster::drifts`].
    pub fn drifts(&self) -> Vec<Drift> {
        self.inner.drifts()
    }

    /// See [`crate::Cluster::planned_heals`].
    pub fn planned_heals(&self) -> Vec<Heal> {
        self.inner.planned_heals()
    }

    /// See [`crate::Cluster::clear_degraded`].
    pub fn clear_degraded(&self, id: &str, channel: u32) -> Result<bool, ClientError> {
        self.inner.clear_degraded(id, channel)
    }

    /// Events from now on, as a blocking iterator.
    pub fn subscribe(&self) -> Subscription {
        Subscription { inner: self.inner.subscribe() }
    }

    /// See [`crate::Cluster::subscribe_with_buffer`].
    pub fn subscribe_with_buffer(&self, capacity: usize) -> Subscription {
        Subscription { inner: self.inner.subscribe_with_buffer(capacity) }
    }
}

/// Blocking iterator over events. Ends when the cluster shuts down.
#[derive(Debug)]
pub struct Subscription {
    inner: crate::Subscription,
}

impl Subscription {
    /// Waits for the next event; `None` once the cluster is gone.
    pub fn recv(&self) -> Option<Event> {
        smol::block_on(self.inner.recv())
    }

    /// Waits at most `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        smol::block_on(async {
            futures::select! {
                e = self.inner.recv().fuse() => e,
                _ = FutureExt::fuse(smol::Timer::after(timeout)) => None,
            }
        })
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        self.inner.try_recv()
    }

    /// Events lost because this subscriber fell behind.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped()
    }

    /// Stops receiving.
    pub fn close(&self) {
        self.inner.close()
    }
}

impl Iterator for Subscription {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        self.recv()
    }
}
