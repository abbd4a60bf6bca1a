//! The [`Cluster`] object: the client's `Cluster` behind uniffi. Each
//! network call comes twice: `async` (a Kotlin `suspend fun`, a Python
//! coroutine) and `*_blocking` (for hosts or call sites without async, and
//! for generators that skip async methods). Both wait on the client's
//! driver thread; neither starts a runtime.

use std::sync::Arc;

use ipvtl_client::core as core_;
use ipvtl_client::wire::{self, Wall};
use ipvtl_client::{ScopeInput, Settings, SettingsOptions};

use crate::batch::{ActionKind, ActionReport, BatchReport, BatchSpec, BatchTarget};
use crate::error::IpvtlError;
use crate::reconcile::{
    DesiredSetting, Drift, Heal, HealingPolicy, HealingSetting, ReconcilerSettings, ReconcilerStatus, SettingScope,
};
use crate::records::{ClusterSettings, FleetSnapshot, ReloadSummary, ServerConfig, ServerSnapshot};
use crate::watch::{ClusterObserver, EventStream, WatchHandle};

type Result<T> = std::result::Result<T, IpvtlError>;

/// Parses a `servers.json` text (an array of servers or `{"servers": [...]}`).
#[uniffi::export]
pub fn parse_servers(json: String) -> Result<Vec<ServerConfig>> {
    core_::parse_servers(&json)
        .map(|list| list.iter().map(Into::into).collect())
        .map_err(|error| ipvtl_client::ClientError::Config { path: None, error }.into())
}

/// A fleet of IPVTL servers, polled on a driver thread of its own.
#[derive(uniffi::Object)]
pub struct Cluster {
    inner: ipvtl_client::Cluster,
}

/// What was given (`None`, or a record of `None`s, for the defaults), as
/// the client checks and completes it.
fn settings(s: Option<ClusterSettings>) -> Result<Settings> {
    Ok(Settings::from_options(s.map(SettingsOptions::from).unwrap_or_default())?)
}

#[uniffi::export]
impl Cluster {
    /// A cluster over `servers`; settings not given take the defaults.
    #[uniffi::constructor(default(settings = None))]
    pub fn new(servers: Vec<ServerConfig>, settings: Option<ClusterSettings>) -> Result<Arc<Self>> {
        let servers = servers.into_iter().map(Into::into).collect();
        let inner = ipvtl_client::Cluster::new(servers, self::settings(settings)?)?;
        Ok(Arc::new(Cluster { inner }))
    }

    /// A cluster from a `servers.json` file.
    #[uniffi::constructor(default(settings = None))]
    pub fn from_file(path: String, settings: Option<ClusterSettings>) -> Result<Arc<Self>> {
        let inner = ipvtl_client::Cluster::from_file(path, self::settings(settings)?)?;
        Ok(Arc::new(Cluster { inner }))
    }

    /// Number of servers.
    pub fn len(&self) -> u32 {
        u32::try_from(self.inner.len()).unwrap_or(u32::MAX)
    }

    /// True for an empty fleet.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The settings it runs with, every field set.
    pub fn settings(&self) -> ClusterSettings {
        self.inner.settings().into()
    }

    /// Now, in Unix seconds (the clock of every `*_at`).
    pub fn now(&self) -> f64 {
        self.wall().at(self.inner.now())
    }

    /// Every server and its state as of now. No network.
    pub fn snapshot(&self) -> FleetSnapshot {
        self.fleet(&self.inner.snapshot())
    }

    /// One server and its state as of now. No network.
    pub fn server(&self, id: String) -> Result<ServerSnapshot> {
        Ok(self.one(&self.inner.server(&id)?))
    }

    /// Runs a sweep now and returns the fleet once every poll of it ended.
    pub async fn poll(&self) -> Result<FleetSnapshot> {
        Ok(self.fleet(&self.inner.poll_all().await?))
    }

    /// Blocking `poll`.
    pub fn poll_blocking(&self) -> Result<FleetSnapshot> {
        Ok(self.fleet(&self.inner.blocking().poll_all()?))
    }

    /// Polls one server now, ahead of the sweep. A failed poll is not an
    /// error: the state says what failed.
    pub async fn refresh(&self, id: String) -> Result<ServerSnapshot> {
        Ok(self.one(&self.inner.refresh(&id).await?))
    }

    /// Blocking `refresh`.
    pub fn refresh_blocking(&self, id: String) -> Result<ServerSnapshot> {
        Ok(self.one(&self.inner.blocking().refresh(&id)?))
    }

    /// Starts a channel and waits until it runs.
    pub async fn start(&self, id: String, channel: u32) -> Result<ActionReport> {
        self.act(id, channel, ActionKind::Start).await
    }

    /// Stops a channel and waits until it is idle.
    pub async fn stop(&self, id: String, channel: u32) -> Result<ActionReport> {
        self.act(id, channel, ActionKind::Stop).await
    }

    /// Restarts a channel: stop, wait until idle, start, wait until running.
    pub async fn restart(&self, id: String, channel: u32) -> Result<ActionReport> {
        self.act(id, channel, ActionKind::Restart).await
    }

    /// Runs one action and waits for its report. Refusals (unknown server or
    /// channel, busy, maintenance) come at once with nothing sent; an action
    /// that ran and failed is `ActionFailed`.
    pub async fn act(&self, id: String, channel: u32, kind: ActionKind) -> Result<ActionReport> {
        Ok(self.report(&self.inner.action(&id, channel, kind.into()).await?))
    }

    /// Blocking `start`.
    pub fn start_blocking(&self, id: String, channel: u32) -> Result<ActionReport> {
        self.act_blocking(id, channel, ActionKind::Start)
    }

    /// Blocking `stop`.
    pub fn stop_blocking(&self, id: String, channel: u32) -> Result<ActionReport> {
        self.act_blocking(id, channel, ActionKind::Stop)
    }

    /// Blocking `restart`.
    pub fn restart_blocking(&self, id: String, channel: u32) -> Result<ActionReport> {
        self.act_blocking(id, channel, ActionKind::Restart)
    }

    /// Blocking `act`.
    pub fn act_blocking(&self, id: String, channel: u32, kind: ActionKind) -> Result<ActionReport> {
        Ok(self.report(&self.inner.blocking().action(&id, channel, kind.into())?))
    }

    /// The channels a batch would act on, without acting (dry run). A spec
    /// the core refuses is `IpvtlError.Batch`, naming what is wrong.
    pub fn plan(&self, spec: BatchSpec) -> Result<Vec<BatchTarget>> {
        let spec = spec.try_into()?;
        Ok(self.inner.plan(&spec)?.iter().map(|t| wire::BatchTargetView::from(t).into()).collect())
    }

    /// Runs a batch to its end; progress comes as events.
    pub async fn batch(&self, spec: BatchSpec) -> Result<BatchReport> {
        Ok(self.batch_report(&self.inner.batch(spec.try_into()?).await?))
    }

    /// Blocking `batch`.
    pub fn batch_blocking(&self, spec: BatchSpec) -> Result<BatchReport> {
        Ok(self.batch_report(&self.inner.blocking().batch(spec.try_into()?)?))
    }

    /// Replaces the server list; servers that remain keep their state. A bad
    /// list changes nothing.
    pub fn reload(&self, servers: Vec<ServerConfig>) -> Result<ReloadSummary> {
        let servers = servers.into_iter().map(Into::into).collect();
        Ok(wire::ReloadView::from(&self.inner.reload(servers)?).into())
    }

    /// Re-reads a `servers.json` file; a bad file changes nothing.
    pub fn reload_file(&self, path: String) -> Result<ReloadSummary> {
        Ok(wire::ReloadView::from(&self.inner.reload_file(path)?).into())
    }

    /// Puts a server in or out of maintenance (polled, no alarms, no actions).
    pub fn set_maintenance(&self, id: String, on: bool) -> Result<()> {
        Ok(self.inner.set_maintenance(&id, on)?)
    }

    /// Turns background sweeps on or off.
    pub fn set_background(&self, on: bool) {
        self.inner.set_background(on)
    }

    /// Sets what the channels of `scope` should be doing: `running`, `idle`
    /// or `unmanaged` (anything else is `Invalid`, naming the valid ones).
    /// The narrower scope wins.
    pub fn set_desired(&self, scope: SettingScope, desired: String) -> Result<()> {
        let desired = ipvtl_client::parse_desired(&desired)?;
        Ok(self.inner.set_desired(ScopeInput::from(scope).into_scope()?, desired)?)
    }

    /// Removes the desired state set at exactly `scope`; returns it.
    pub fn clear_desired(&self, scope: SettingScope) -> Result<Option<String>> {
        let scope = ScopeInput::from(scope).into_scope()?;
        Ok(self.inner.clear_desired(&scope).map(|d| d.as_str().to_owned()))
    }

    /// What a channel should be doing and the scope that says so (`None`:
    /// none does, so `unmanaged`).
    pub fn desired(&self, id: String, channel: u32) -> Result<DesiredSetting> {
        let (desired, scope) = self.inner.desired(&id, channel)?;
        Ok(DesiredSetting {
            scope: scope.as_ref().map(|s| wire::ScopeView::from(s).into()),
            desired: desired.as_str().to_owned(),
            source: None,
        })
    }

    /// Every desired-state setting, narrowest scopes first.
    pub fn desired_settings(&self) -> Vec<DesiredSetting> {
        self.inner
            .desired_settings()
            .iter()
            .map(|(s, d, src)| wire::DesiredSettingView::new(s, *d, *src).into())
            .collect()
    }

    /// Turns healing on for `scope` with `policy` (fields not given take
    /// the defaults), or off with `enabled = false`.
    pub fn set_healing(&self, scope: SettingScope, policy: HealingPolicy) -> Result<()> {
        let healing = ipvtl_client::PolicyInput::from(policy).into_healing()?;
        Ok(self.inner.set_healing(ScopeInput::from(scope).into_scope()?, healing)?)
    }

    /// Removes the healing set at exactly `scope`; true when one was.
    pub fn clear_healing(&self, scope: SettingScope) -> Result<bool> {
        let scope = ScopeInput::from(scope).into_scope()?;
        Ok(self.inner.clear_healing(&scope).is_some())
    }

    /// Every healing setting, narrowest scopes first.
    pub fn healing_settings(&self) -> Vec<HealingSetting> {
        self.inner
            .healing_settings()
            .iter()
            .map(|(s, h, src)| wire::HealingSettingView::new(s, h, *src).into())
            .collect()
    }

    /// Where healing stands fleet-wide.
    pub fn reconciler(&self) -> ReconcilerStatus {
        wire::ReconcilerView::from(&self.inner.reconciler_status()).into()
    }

    /// Changes the fleet-wide healing settings given; a refused value
    /// changes nothing. Returns where healing stands.
    pub fn configure_reconciler(&self, settings: ReconcilerSettings) -> Result<ReconcilerStatus> {
        self.inner.configure_reconciler(settings.into())?;
        Ok(self.reconciler())
    }

    /// Pauses (true) or resumes healing fleet-wide; drift is still tracked.
    pub fn set_healing_paused(&self, paused: bool) {
        self.inner.set_healing_paused(paused)
    }

    /// Dry run on (heals reported as `HealPlanned`, not done) or off.
    pub fn set_dry_run(&self, on: bool) {
        self.inner.set_dry_run(on)
    }

    /// Every managed channel that drifts.
    pub fn drifts(&self) -> Vec<Drift> {
        let now = self.inner.now();
        self.inner.drifts().iter().map(|d| wire::DriftView::new(d, now, self.wall()).into()).collect()
    }

    /// In dry run: the heals it would do.
    pub fn planned_heals(&self) -> Vec<Heal> {
        self.inner.planned_heals().iter().map(|h| wire::HealView::new(h, self.wall()).into()).collect()
    }

    /// Clears a degraded channel so healing tries it again; false when it
    /// was not degraded.
    pub fn clear_degraded(&self, id: String, channel: u32) -> Result<bool> {
        Ok(self.inner.clear_degraded(&id, channel)?)
    }

    /// Events from now on, pulled one at a time (`next`, `next_blocking`).
    pub fn subscribe(&self) -> Arc<EventStream> {
        EventStream::new(self.inner.subscribe(), *self.inner.clock())
    }

    /// Delivers every event from now on to `observer`, on a thread of its
    /// own, until the returned handle is cancelled or dropped.
    pub fn watch(&self, observer: Arc<dyn ClusterObserver>) -> Result<Arc<WatchHandle>> {
        WatchHandle::spawn(self.inner.subscribe(), *self.inner.clock(), observer)
    }
}

impl Cluster {
    /// The client cluster behind this object (for Rust callers and tests).
    pub fn client(&self) -> &ipvtl_client::Cluster {
        &self.inner
    }

    fn wall(&self) -> Wall<'_> {
        Wall(self.inner.clock())
    }

    fn fleet(&self, snap: &core_::FleetSnapshot) -> FleetSnapshot {
        wire::SnapshotView::new(snap, self.wall()).into()
    }

    fn one(&self, server: &core_::ServerSnapshot) -> ServerSnapshot {
        wire::ServerView::new(server, self.inner.now(), self.wall()).into()
    }

    fn report(&self, report: &core_::ActionReport) -> ActionReport {
        wire::ActionReportView::new(report, self.wall()).into()
    }

    fn batch_report(&self, report: &core_::BatchReport) -> BatchReport {
        wire::BatchReportView::new(report, self.wall()).into()
    }
}
