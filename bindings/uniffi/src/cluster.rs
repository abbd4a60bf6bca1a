//! The [`Cluster`] object: the client's `Cluster` behind uniffi. Each
//! network call comes twice: `async` (a Kotlin `suspend fun`, a Python
//! coroutine) and `*_blocking` (for hosts or call sites without async, and
//! for generators that skip async methods). Both wait on the client's
//! driver thread; neither starts a runtime.

use std::sync::Arc;

use ipvtl_client::core as core_;

use crate::error::IpvtlError;
use crate::records::{
    ActionKind, ActionReport, BatchReport, BatchSpec, BatchTarget, ClusterSettings, FleetSnapshot, ReloadSummary,
    ServerConfig, ServerSnapshot,
};
use crate::watch::{ClusterObserver, EventStream, WatchHandle};

type Result<T> = std::result::Result<T, IpvtlError>;

/// The settings a cluster uses when given none.
#[uniffi::export]
pub fn default_settings() -> ClusterSettings {
    ipvtl_client::Settings::default().into()
}

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

fn settings(s: Option<ClusterSettings>) -> ipvtl_client::Settings {
    s.map(Into::into).unwrap_or_default()
}

#[uniffi::export]
impl Cluster {
    /// A cluster over `servers`; `settings` defaults to `default_settings()`.
    #[uniffi::constructor(default(settings = None))]
    pub fn new(servers: Vec<ServerConfig>, settings: Option<ClusterSettings>) -> Result<Arc<Self>> {
        let servers = servers.into_iter().map(Into::into).collect();
        let inner = ipvtl_client::Cluster::new(servers, self::settings(settings))?;
        Ok(Arc::new(Cluster { inner }))
    }

    /// A cluster from a `servers.json` file.
    #[uniffi::constructor(default(settings = None))]
    pub fn from_file(path: String, settings: Option<ClusterSettings>) -> Result<Arc<Self>> {
        let inner = ipvtl_client::Cluster::from_file(path, self::settings(settings))?;
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

    /// The settings it runs with.
    pub fn settings(&self) -> ClusterSettings {
        self.inner.settings().clone().into()
    }

    /// The cluster clock now, in milliseconds (the clock of every `*_at_ms`).
    pub fn now_ms(&self) -> u64 {
        self.inner.now().as_millis()
    }

    /// Every server and its state as of now. No network.
    pub fn snapshot(&self) -> FleetSnapshot {
        (&self.inner.snapshot()).into()
    }

    /// One server and its state as of now. No network.
    pub fn server(&self, id: String) -> Result<ServerSnapshot> {
        Ok((&self.inner.server(&id)?).into())
    }

    /// Runs a sweep now and returns the fleet once every poll of it ended.
    pub async fn poll(&self) -> Result<FleetSnapshot> {
        Ok((&self.inner.poll_all().await?).into())
    }

    /// Blocking `poll`.
    pub fn poll_blocking(&self) -> Result<FleetSnapshot> {
        Ok((&self.inner.blocking().poll_all()?).into())
    }

    /// Polls one server now, ahead of the sweep. A failed poll is not an
    /// error: the state says what failed.
    pub async fn refresh(&self, id: String) -> Result<ServerSnapshot> {
        Ok((&self.inner.refresh(&id).await?).into())
    }

    /// Blocking `refresh`.
    pub fn refresh_blocking(&self, id: String) -> Result<ServerSnapshot> {
        Ok((&self.inner.blocking().refresh(&id)?).into())
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
        Ok((&self.inner.action(&id, channel, kind.into()).await?).into())
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
        Ok((&self.inner.blocking().action(&id, channel, kind.into())?).into())
    }

    /// The channels a batch would act on, without acting (dry run).
    pub fn plan(&self, spec: BatchSpec) -> Result<Vec<BatchTarget>> {
        let spec = spec.try_into()?;
        Ok(self.inner.plan(&spec)?.iter().map(Into::into).collect())
    }

    /// Runs a batch to its end; progress comes as events.
    pub async fn batch(&self, spec: BatchSpec) -> Result<BatchReport> {
        Ok((&self.inner.batch(spec.try_into()?).await?).into())
    }

    /// Blocking `batch`.
    pub fn batch_blocking(&self, spec: BatchSpec) -> Result<BatchReport> {
        Ok((&self.inner.blocking().batch(spec.try_into()?)?).into())
    }

    /// Replaces the server list; servers that remain keep their state. A bad
    /// list changes nothing.
    pub fn reload(&self, servers: Vec<ServerConfig>) -> Result<ReloadSummary> {
        let servers = servers.into_iter().map(Into::into).collect();
        Ok((&self.inner.reload(servers)?).into())
    }

    /// Re-reads a `servers.json` file; a bad file changes nothing.
    pub fn reload_file(&self, path: String) -> Result<ReloadSummary> {
        Ok((&self.inner.reload_file(path)?).into())
    }

    /// Puts a server in or out of maintenance (polled, no alarms, no actions).
    pub fn set_maintenance(&self, id: String, on: bool) -> Result<()> {
        Ok(self.inner.set_maintenance(&id, on)?)
    }

    /// Turns background sweeps on or off.
    pub fn set_background(&self, on: bool) {
        self.inner.set_background(on)
    }

    /// Events from now on, pulled one at a time (`next`, `next_blocking`).
    pub fn subscribe(&self) -> Arc<EventStream> {
        EventStream::new(self.inner.subscribe())
    }

    /// Delivers every event from now on to `observer`, on a thread of its
    /// own, until the returned handle is cancelled or dropped.
    pub fn watch(&self, observer: Arc<dyn ClusterObserver>) -> Result<Arc<WatchHandle>> {
        WatchHandle::spawn(self.inner.subscribe(), observer)
    }
}

impl Cluster {
    /// The client cluster behind this object (for Rust callers and tests).
    pub fn client(&self) -> &ipvtl_client::Cluster {
        &self.inner
    }
}
