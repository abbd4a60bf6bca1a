//! `Cluster`: the client's cluster with blocking and `*_async` methods.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use ipvtl_client::wire::{self, ActionProgressView};
use ipvtl_client::{ActionKind, ClientError, Cluster as Inner, Settings, SettingsOptions, SmolClock};
use ipvtl_core::batch::{FilterInput, TargetInput};
use ipvtl_core::{BatchInput, BatchSpec};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::alerts::AlertWatch;
use crate::convert::{duration, secs, servers_json, view_to_py};
use crate::errors;
use crate::events::EventStream;
use crate::models::{ActionReport, BatchReport, ClusterSnapshot, ReloadSummary, Server};
use crate::runtime::{self, PyResultSend};

/// A fleet of IPVTL servers polled on a driver thread of its own. Every
/// network call has a blocking form (the interpreter is released while it
/// waits) and an `*_async` form for asyncio.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct Cluster {
    inner: RwLock<Option<Inner>>,
    clock: SmolClock,
    path: Option<PathBuf>,
}

/// A Rust-side error that becomes an exception once attached.
fn later(clock: SmolClock, e: ClientError) -> Box<dyn FnOnce(Python<'_>) -> PyErr + Send> {
    Box::new(move |py| errors::to_py(py, Some(&clock), e))
}

fn send<T>(clock: SmolClock, r: Result<T, ClientError>) -> PyResultSend<T> {
    match r {
        Ok(v) => PyResultSend::Ok(v),
        Err(e) => PyResultSend::Err(later(clock, e)),
    }
}

/// Settings from keyword arguments: None is "not given" and takes the
/// client's default (`Settings::from_options`, which also validates).
/// Seconds become durations; no value is filled in here.
#[allow(clippy::too_many_arguments)]
fn settings(
    interval: Option<f64>,
    timeout: Option<f64>,
    concurrency: Option<usize>,
    priority_concurrency: Option<usize>,
    backoff_max: Option<f64>,
    offline_after: Option<u32>,
    stop_timeout: Option<f64>,
    start_timeout: Option<f64>,
    watch_interval: Option<f64>,
    body_limit: Option<u64>,
    background: Option<bool>,
    event_buffer: Option<usize>,
) -> Result<Settings, ClientError> {
    let dur = |name: &str, v: Option<f64>| v.map(|v| duration(name, v).map_err(ClientError::Settings)).transpose();
    Settings::from_options(SettingsOptions {
        interval: dur("interval", interval)?,
        timeout: dur("timeout", timeout)?,
        concurrency,
        priority_concurrency,
        backoff_max: dur("backoff_max", backoff_max)?,
        offline_after,
        stop_timeout: dur("stop_timeout", stop_timeout)?,
        start_timeout: dur("start_timeout", start_timeout)?,
        watch_interval: dur("watch_interval", watch_interval)?,
        body_limit,
        background,
        event_buffer,
    })
}

/// The keyword arguments shared by `Cluster(...)` and `Cluster.from_file(...)`.
macro_rules! with_settings {
    ($py:expr, $($arg:ident),*) => {
        settings($($arg),*).map_err(|e| errors::to_py($py, None, e))
    };
}

impl Cluster {
    fn wrap(py: Python<'_>, r: Result<Inner, ClientError>, path: Option<PathBuf>) -> PyResult<Self> {
        let inner = r.map_err(|e| errors::to_py(py, None, e))?;
        let clock = *inner.clock();
        Ok(Cluster { inner: RwLock::new(Some(inner)), clock, path })
    }

    fn get(&self, py: Python<'_>) -> PyResult<Inner> {
        let guard = self.inner.read().unwrap_or_else(|p| p.into_inner());
        guard.clone().ok_or_else(|| errors::to_py(py, None, ClientError::Closed))
    }

    fn err(&self, py: Python<'_>, e: ClientError) -> PyErr {
        errors::to_py(py, Some(&self.clock), e)
    }

    fn action(&self, py: Python<'_>, id: &str, channel: u32, kind: ActionKind) -> PyResult<ActionReport> {
        let inner = self.get(py)?;
        let pending = inner.submit(id, channel, kind).map_err(|e| self.err(py, e))?;
        let report = runtime::wait(py, pending)?.map_err(|e| self.err(py, e))?;
        Ok(ActionReport::new(report, self.clock))
    }

    fn action_async<'py>(
        &self,
        py: Python<'py>,
        id: &str,
        channel: u32,
        kind: ActionKind,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.get(py)?;
        let clock = self.clock;
        // Submitted now: refusals and the channel lock take effect at the
        // call, as in the blocking form; the exception arrives on await.
        let pending = inner.submit(id, channel, kind);
        let fut = async move {
            match pending {
                Ok(p) => send(clock, p.await),
                Err(e) => send(clock, Err(e)),
            }
        };
        runtime::spawn(py, fut, Box::new(move |py, r| Ok(Py::new(py, ActionReport::new(r, clock))?.into_any())))
    }
}

#[allow(clippy::too_many_arguments)]
#[pymethods]
impl Cluster {
    /// A cluster over `servers`: a list of dicts (the `servers.json` entry
    /// form) or `ServerConfig` objects. Durations are float seconds; a
    /// setting left out (None) takes the Rust client's default.
    #[new]
    #[pyo3(signature = (servers, *, interval = None, timeout = None, concurrency = None, priority_concurrency = None,
        backoff_max = None, offline_after = None, stop_timeout = None, start_timeout = None, watch_interval = None,
        body_limit = None, background = None, event_buffer = None))]
    fn new(
        py: Python<'_>,
        servers: &Bound<'_, PyAny>,
        interval: Option<f64>,
        timeout: Option<f64>,
        concurrency: Option<usize>,
        priority_concurrency: Option<usize>,
        backoff_max: Option<f64>,
        offline_after: Option<u32>,
        stop_timeout: Option<f64>,
        start_timeout: Option<f64>,
        watch_interval: Option<f64>,
        body_limit: Option<u64>,
        background: Option<bool>,
        event_buffer: Option<usize>,
    ) -> PyResult<Self> {
        let settings = with_settings!(
            py,
            interval,
            timeout,
            concurrency,
            priority_concurrency,
            backoff_max,
            offline_after,
            stop_timeout,
            start_timeout,
            watch_interval,
            body_limit,
            background,
            event_buffer
        )?;
        let text = servers_json(servers)?;
        let list = ipvtl_core::parse_servers(&text).map_err(|error| ClientError::Config { path: None, error });
        Self::wrap(py, list.and_then(|l| Inner::new(l, settings)), None)
    }

    /// A cluster from a `servers.json` file (either form); `reload()` re-reads it.
    #[staticmethod]
    #[pyo3(signature = (path, *, interval = None, timeout = None, concurrency = None, priority_concurrency = None,
        backoff_max = None, offline_after = None, stop_timeout = None, start_timeout = None, watch_interval = None,
        body_limit = None, background = None, event_buffer = None))]
    fn from_file(
        py: Python<'_>,
        path: PathBuf,
        interval: Option<f64>,
        timeout: Option<f64>,
        concurrency: Option<usize>,
        priority_concurrency: Option<usize>,
        backoff_max: Option<f64>,
        offline_after: Option<u32>,
        stop_timeout: Option<f64>,
        start_timeout: Option<f64>,
        watch_interval: Option<f64>,
        body_limit: Option<u64>,
        background: Option<bool>,
        event_buffer: Option<usize>,
    ) -> PyResult<Self> {
        let settings = with_settings!(
            py,
            interval,
            timeout,
            concurrency,
            priority_concurrency,
            backoff_max,
            offline_after,
            stop_timeout,
            start_timeout,
            watch_interval,
            body_limit,
            background,
            event_buffer
        )?;
        Self::wrap(py, Inner::from_file(&path, settings), Some(path))
    }

    /// Number of servers.
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.get(py)?.len())
    }

    /// Server ids in configuration order.
    #[getter]
    fn ids(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let snap = self.get(py)?.snapshot();
        Ok(snap.servers.iter().map(|s| s.config.id.as_str().to_string()).collect())
    }

    /// The settings in force, under the keyword names, durations in seconds.
    #[getter]
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let inner = self.get(py)?;
        let s = inner.settings();
        let d = PyDict::new(py);
        d.set_item("interval", secs(s.interval))?;
        d.set_item("timeout", secs(s.timeout))?;
        d.set_item("concurrency", s.concurrency)?;
        d.set_item("priority_concurrency", s.priority_concurrency)?;
        d.set_item("backoff_max", secs(s.backoff_max))?;
        d.set_item("offline_after", s.offline_after)?;
        d.set_item("stop_timeout", secs(s.stop_timeout))?;
        d.set_item("start_timeout", secs(s.start_timeout))?;
        d.set_item("watch_interval", secs(s.watch_interval))?;
        d.set_item("body_limit", s.body_limit)?;
        d.set_item("background", s.background)?;
        d.set_item("event_buffer", s.event_buffer)?;
        Ok(d)
    }

    /// Runs a sweep now (or joins the one queueing) and returns the fleet
    /// when every poll of it has ended. Never raises for one server: its
    /// `health` and `error` say what failed.
    fn poll(&self, py: Python<'_>) -> PyResult<ClusterSnapshot> {
        let inner = self.get(py)?;
        let snap = runtime::wait(py, async { inner.poll_all().await })?.map_err(|e| self.err(py, e))?;
        Ok(ClusterSnapshot::new(snap, self.clock))
    }

    /// `poll()` for asyncio.
    fn poll_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.get(py)?;
        let clock = self.clock;
        let fut = async move { send(clock, inner.poll_all().await) };
        runtime::spawn(py, fut, Box::new(move |py, s| Ok(Py::new(py, ClusterSnapshot::new(s, clock))?.into_any())))
    }

    /// The fleet as last polled. No network.
    fn snapshot(&self, py: Python<'_>) -> PyResult<ClusterSnapshot> {
        Ok(ClusterSnapshot::new(self.get(py)?.snapshot(), self.clock))
    }

    /// One server as last polled (ServerNotFound otherwise). No network.
    fn server(&self, py: Python<'_>, id: &str) -> PyResult<Server> {
        let inner = self.get(py)?;
        let snap = inner.server(id).map_err(|e| self.err(py, e))?;
        Ok(Server::new(snap, inner.now(), self.clock))
    }

    /// Polls one server now, ahead of the sweep, and returns it. A failed
    /// poll is in the result's `error`, or raised as TransportError when
    /// `raise_on_error` is true.
    #[pyo3(signature = (id, *, raise_on_error = false))]
    fn refresh(&self, py: Python<'_>, id: &str, raise_on_error: bool) -> PyResult<Server> {
        let inner = self.get(py)?;
        let snap = runtime::wait(py, async { inner.refresh(id).await })?.map_err(|e| self.err(py, e))?;
        refreshed(py, snap, inner.now(), self.clock, raise_on_error)
    }

    /// `refresh()` for asyncio.
    #[pyo3(signature = (id, *, raise_on_error = false))]
    fn refresh_async<'py>(&self, py: Python<'py>, id: &str, raise_on_error: bool) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.get(py)?;
        let clock = self.clock;
        let id = id.to_string();
        let fut = async move {
            let r = inner.refresh(&id).await;
            send(clock, r.map(|s| (s, inner.now())))
        };
        runtime::spawn(
            py,
            fut,
            Box::new(move |py, (snap, now)| {
                Ok(Py::new(py, refreshed(py, snap, now, clock, raise_on_error)?)?.into_any())
            }),
        )
    }

    /// Starts channel `channel` (1-based) and waits until it runs.
    fn start(&self, py: Python<'_>, id: &str, channel: u32) -> PyResult<ActionReport> {
        self.action(py, id, channel, ActionKind::Start)
    }

    /// Stops channel `channel` and waits until it is idle.
    fn stop(&self, py: Python<'_>, id: &str, channel: u32) -> PyResult<ActionReport> {
        self.action(py, id, channel, ActionKind::Stop)
    }

    /// Stop, wait until idle, start, wait until running; phases timed.
    fn restart(&self, py: Python<'_>, id: &str, channel: u32) -> PyResult<ActionReport> {
        self.action(py, id, channel, ActionKind::Restart)
    }

    /// `start()` for asyncio.
    fn start_async<'py>(&self, py: Python<'py>, id: &str, channel: u32) -> PyResult<Bound<'py, PyAny>> {
        self.action_async(py, id, channel, ActionKind::Start)
    }

    /// `stop()` for asyncio.
    fn stop_async<'py>(&self, py: Python<'py>, id: &str, channel: u32) -> PyResult<Bound<'py, PyAny>> {
        self.action_async(py, id, channel, ActionKind::Stop)
    }

    /// `restart()` for asyncio. Cancelling stops the waiting, not the
    /// action: it runs to its end and holds the channel until then.
    fn restart_async<'py>(&self, py: Python<'py>, id: &str, channel: u32) -> PyResult<Bound<'py, PyAny>> {
        self.action_async(py, id, channel, ActionKind::Restart)
    }

    /// The channels a batch would act on, as `(server_id, channel_id)`
    /// pairs, without acting. Same arguments as `batch()`.
    #[pyo3(signature = (action, *, targets = None, servers = None, tags = None, states = None, channels = None,
        max_parallel = None, stop_on_failure = None, failure_threshold = None))]
    fn plan(
        &self,
        py: Python<'_>,
        action: String,
        targets: Option<Vec<(String, u32)>>,
        servers: Option<Vec<String>>,
        tags: Option<Vec<String>>,
        states: Option<Vec<String>>,
        channels: Option<Vec<u32>>,
        max_parallel: Option<usize>,
        stop_on_failure: Option<bool>,
        failure_threshold: Option<usize>,
    ) -> PyResult<Vec<(String, u32)>> {
        let input = batch_input(
            action,
            targets,
            servers,
            tags,
            states,
            channels,
            max_parallel,
            stop_on_failure,
            failure_threshold,
        );
        let spec = batch_spec(input).map_err(|e| self.err(py, e))?;
        let plan = self.get(py)?.plan(&spec).map_err(|e| self.err(py, e))?;
        Ok(plan.into_iter().map(|t| (t.server.as_str().to_string(), t.channel.get())).collect())
    }

    /// Runs `action` (`start`, `stop`, `restart`) over many channels,
    /// `max_parallel` at a time, and returns the BatchReport. Channels are
    /// `targets` (explicit `(server_id, channel_id)` pairs) or those
    /// matching the filter: `servers`, `tags`, channel `states`, channel
    /// numbers (empty or None matches all). Failed actions are in the
    /// report, not raised; arguments the batch cannot run with raise
    /// ConfigError. None (the default) takes the core's value.
    #[pyo3(signature = (action, *, targets = None, servers = None, tags = None, states = None, channels = None,
        max_parallel = None, stop_on_failure = None, failure_threshold = None))]
    fn batch(
        &self,
        py: Python<'_>,
        action: String,
        targets: Option<Vec<(String, u32)>>,
        servers: Option<Vec<String>>,
        tags: Option<Vec<String>>,
        states: Option<Vec<String>>,
        channels: Option<Vec<u32>>,
        max_parallel: Option<usize>,
        stop_on_failure: Option<bool>,
        failure_threshold: Option<usize>,
    ) -> PyResult<BatchReport> {
        let input = batch_input(
            action,
            targets,
            servers,
            tags,
            states,
            channels,
            max_parallel,
            stop_on_failure,
            failure_threshold,
        );
        let spec = batch_spec(input).map_err(|e| self.err(py, e))?;
        let inner = self.get(py)?;
        let (_, pending) = inner.submit_batch(spec).map_err(|e| self.err(py, e))?;
        let report = runtime::wait(py, pending)?.map_err(|e| self.err(py, e))?;
        Ok(BatchReport::new(report, self.clock))
    }

    /// `batch()` for asyncio. As for actions, the batch is submitted at the
    /// call and an error (bad arguments included) arrives on await.
    #[pyo3(signature = (action, *, targets = None, servers = None, tags = None, states = None, channels = None,
        max_parallel = None, stop_on_failure = None, failure_threshold = None))]
    fn batch_async<'py>(
        &self,
        py: Python<'py>,
        action: String,
        targets: Option<Vec<(String, u32)>>,
        servers: Option<Vec<String>>,
        tags: Option<Vec<String>>,
        states: Option<Vec<String>>,
        channels: Option<Vec<u32>>,
        max_parallel: Option<usize>,
        stop_on_failure: Option<bool>,
        failure_threshold: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = batch_input(
            action,
            targets,
            servers,
            tags,
            states,
            channels,
            max_parallel,
            stop_on_failure,
            failure_threshold,
        );
        let inner = self.get(py)?;
        let clock = self.clock;
        let submitted = batch_spec(input).and_then(|spec| inner.submit_batch(spec));
        let fut = async move {
            match submitted {
                Ok((_, pending)) => send(clock, pending.await),
                Err(e) => send(clock, Err(e)),
            }
        };
        runtime::spawn(py, fut, Box::new(move |py, r| Ok(Py::new(py, BatchReport::new(r, clock))?.into_any())))
    }

    /// A stream of events from now on: iterate it (blocking), `async for`
    /// it, and close it (or use it as a context manager). `buffer` (at
    /// least 1; default the cluster's `event_buffer`) is how many unread
    /// events it holds before it drops the newest and counts them in
    /// `dropped`; polling never waits for a reader.
    #[pyo3(signature = (buffer = None))]
    fn events(&self, py: Python<'_>, buffer: Option<usize>) -> PyResult<EventStream> {
        let inner = self.get(py)?;
        let subscription = match buffer {
            Some(0) => return Err(self.err(py, ClientError::Settings("events buffer must be at least 1".into()))),
            Some(n) => inner.subscribe_with_buffer(n),
            None => inner.subscribe(),
        };
        Ok(EventStream::new(Arc::new(subscription), self.clock))
    }

    /// Runs the alert rules over this cluster (on a thread of their own)
    /// and returns the AlertWatch that hands out their notifications.
    /// `rules`: None (the defaults), the dashboard's alerts file as TOML
    /// text (its `[rules.*]`, `[[silences]]` and `history`; receivers are
    /// the dashboard's), or a dict of the same document. Refused rules
    /// raise ConfigError naming the line and why.
    #[pyo3(signature = (rules = None))]
    fn watch_alerts(&self, py: Python<'_>, rules: Option<&Bound<'_, PyAny>>) -> PyResult<AlertWatch> {
        let inner = self.get(py)?;
        let rules = crate::alerts::rules(rules)?.map_err(|e| self.err(py, e))?;
        let watch = py.detach(|| inner.watch_alerts(rules)).map_err(|e| self.err(py, e))?;
        Ok(AlertWatch::new(watch, self.clock))
    }

    /// Replaces the server list: with `servers` (a list as for `Cluster()`),
    /// or by re-reading the file the cluster came from. Servers that remain
    /// keep their state; a bad list changes nothing (ConfigError).
    #[pyo3(signature = (servers = None))]
    fn reload(&self, py: Python<'_>, servers: Option<&Bound<'_, PyAny>>) -> PyResult<ReloadSummary> {
        let inner = self.get(py)?;
        let summary = match (servers, &self.path) {
            (Some(list), _) => {
                let text = servers_json(list)?;
                let list = ipvtl_core::parse_servers(&text)
                    .map_err(|error| self.err(py, ClientError::Config { path: None, error }))?;
                inner.reload(list)
            }
            (None, Some(path)) => inner.reload_file(path),
            (None, None) => {
                return Err(PyValueError::new_err("this cluster was not made from a file: pass the new server list"))
            }
        };
        Ok(ReloadSummary::new(&summary.map_err(|e| self.err(py, e))?))
    }

    /// Puts a server in or out of maintenance (polled; no alarms, no actions).
    fn set_maintenance(&self, py: Python<'_>, id: &str, on: bool) -> PyResult<()> {
        self.get(py)?.set_maintenance(id, on).map_err(|e| self.err(py, e))
    }

    /// Turns background sweeps on or off.
    fn set_background(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        self.get(py)?.set_background(on);
        Ok(())
    }

    // --- Desired state and healing: local commands to the driver (no
    // network); the interpreter is released while the fleet is locked.

    /// Sets what channels should be doing: `desired` is "running", "idle"
    /// or "unmanaged"; the scope is `server` (with `channel` for one
    /// channel) or `tag`. The narrower scope wins.
    #[pyo3(signature = (desired, *, server = None, channel = None, tag = None))]
    fn set_desired(
        &self,
        py: Python<'_>,
        desired: &str,
        server: Option<String>,
        channel: Option<u32>,
        tag: Option<String>,
    ) -> PyResult<()> {
        let inner = self.get(py)?;
        let desired = ipvtl_client::parse_desired(desired).map_err(|e| self.err(py, e))?;
        let scope = scope(server, channel, tag).map_err(|e| self.err(py, e))?;
        py.detach(|| inner.set_desired(scope, desired)).map_err(|e| self.err(py, e))
    }

    /// Removes the desired state set at exactly this scope; returns what
    /// was set there (None: nothing was).
    #[pyo3(signature = (*, server = None, channel = None, tag = None))]
    fn clear_desired(
        &self,
        py: Python<'_>,
        server: Option<String>,
        channel: Option<u32>,
        tag: Option<String>,
    ) -> PyResult<Option<&'static str>> {
        let inner = self.get(py)?;
        let scope = scope(server, channel, tag).map_err(|e| self.err(py, e))?;
        Ok(py.detach(|| inner.clear_desired(&scope)).map(|d| d.as_str()))
    }

    /// What a channel should be doing and where that was set:
    /// `{"desired": ..., "scope": {scope, server_id, channel_id, tag} | None}`.
    fn desired(&self, py: Python<'_>, id: &str, channel: u32) -> PyResult<Py<PyAny>> {
        let inner = self.get(py)?;
        let (desired, from) = py.detach(|| inner.desired(id, channel)).map_err(|e| self.err(py, e))?;
        let v = serde_json::json!({
            "desired": desired.as_str(),
            "scope": from.as_ref().map(wire::ScopeView::from),
        });
        view_to_py(py, Ok(v))
    }

    /// Every desired-state setting: `[{scope, server_id, channel_id, tag, desired, source}]`
    /// (`source`: `"file"` or `"api"`).
    fn desired_settings(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.get(py)?;
        let list = py.detach(|| inner.desired_settings());
        let views: Vec<_> = list.iter().map(|(s, d, src)| wire::DesiredSettingView::new(s, *d, *src)).collect();
        view_to_py(py, serde_json::to_value(&views))
    }

    /// Turns healing on for a scope (with a policy: durations in float
    /// seconds; what is left out takes the client's default) or off with
    /// `enabled=False` (drift is then only reported).
    #[pyo3(signature = (*, server = None, channel = None, tag = None, enabled = None, grace = None, limit = None,
        window = None, backoff = None, backoff_max = None))]
    fn set_healing(
        &self,
        py: Python<'_>,
        server: Option<String>,
        channel: Option<u32>,
        tag: Option<String>,
        enabled: Option<bool>,
        grace: Option<f64>,
        limit: Option<u32>,
        window: Option<f64>,
        backoff: Option<f64>,
        backoff_max: Option<f64>,
    ) -> PyResult<()> {
        let inner = self.get(py)?;
        let ms = |name: &str, v: Option<f64>| -> Result<Option<u64>, ClientError> {
            v.map(|v| duration(name, v).map(|d| d.as_millis() as u64).map_err(ClientError::Invalid)).transpose()
        };
        let policy = (|| {
            ipvtl_client::PolicyInput {
                enabled,
                grace_ms: ms("grace", grace)?,
                limit,
                window_ms: ms("window", window)?,
                backoff_ms: ms("backoff", backoff)?,
                backoff_max_ms: ms("backoff_max", backoff_max)?,
            }
            .into_healing()
        })()
        .map_err(|e| self.err(py, e))?;
        let scope = scope(server, channel, tag).map_err(|e| self.err(py, e))?;
        py.detach(|| inner.set_healing(scope, policy)).map_err(|e| self.err(py, e))
    }

    /// Removes the healing set at exactly this scope; True when one was.
    #[pyo3(signature = (*, server = None, channel = None, tag = None))]
    fn clear_healing(
        &self,
        py: Python<'_>,
        server: Option<String>,
        channel: Option<u32>,
        tag: Option<String>,
    ) -> PyResult<bool> {
        let inner = self.get(py)?;
        let scope = scope(server, channel, tag).map_err(|e| self.err(py, e))?;
        Ok(py.detach(|| inner.clear_healing(&scope)).is_some())
    }

    /// Every healing setting: `[{scope, server_id, channel_id, tag, enabled,
    /// grace_ms, limit, window_ms, backoff_ms, backoff_max_ms, source}]`.
    fn healing_settings(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.get(py)?;
        let list = py.detach(|| inner.healing_settings());
        let views: Vec<_> = list.iter().map(|(s, h, src)| wire::HealingSettingView::new(s, h, *src)).collect();
        view_to_py(py, serde_json::to_value(&views))
    }

    /// Where healing stands: `{max_parallel, storm_percent, storm_min,
    /// dry_run, paused, storm, managed, troubled, heals_in_flight}`.
    fn reconciler(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.get(py)?;
        let status = py.detach(|| inner.reconciler_status());
        view_to_py(py, serde_json::to_value(wire::ReconcilerView::from(&status)))
    }

    /// Changes the fleet-wide healing settings given (the rest stay);
    /// returns `reconciler()`. A refused value changes nothing.
    #[pyo3(signature = (*, max_parallel = None, storm_percent = None, storm_min = None, dry_run = None,
        paused = None))]
    fn configure_reconciler(
        &self,
        py: Python<'_>,
        max_parallel: Option<usize>,
        storm_percent: Option<u32>,
        storm_min: Option<usize>,
        dry_run: Option<bool>,
        paused: Option<bool>,
    ) -> PyResult<Py<PyAny>> {
        let inner = self.get(py)?;
        let input = ipvtl_client::ReconcilerInput { max_parallel, storm_percent, storm_min, dry_run, paused };
        py.detach(|| inner.configure_reconciler(input)).map_err(|e| self.err(py, e))?;
        self.reconciler(py)
    }

    /// Pauses (True) or resumes (False) healing fleet-wide; drift is still tracked.
    fn set_healing_paused(&self, py: Python<'_>, paused: bool) -> PyResult<()> {
        let inner = self.get(py)?;
        py.detach(|| inner.set_healing_paused(paused));
        Ok(())
    }

    /// Dry run on (heals are reported as `heal_planned` events, not done) or off.
    fn set_dry_run(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        let inner = self.get(py)?;
        py.detach(|| inner.set_dry_run(on));
        Ok(())
    }

    /// Every managed channel that drifts: `[{server_id, channel_id, desired,
    /// observed, stall, since_at, drift_ms, attempts, degraded, healing_action_id}]`.
    fn drifts(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.get(py)?;
        let (drifts, now) = py.detach(|| (inner.drifts(), inner.now()));
        let views: Vec<_> = drifts.iter().map(|d| wire::DriftView::new(d, now, wire::Wall(&self.clock))).collect();
        view_to_py(py, serde_json::to_value(&views))
    }

    /// In dry run, the heals it would do: `[{server_id, channel_id, action,
    /// desired, observed, stall, since_at}]`.
    fn planned_heals(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.get(py)?;
        let heals = py.detach(|| inner.planned_heals());
        let views: Vec<_> = heals.iter().map(|h| wire::HealView::new(h, wire::Wall(&self.clock))).collect();
        view_to_py(py, serde_json::to_value(&views))
    }

    /// Clears a degraded channel so healing tries it again; False when it
    /// was not degraded.
    fn clear_degraded(&self, py: Python<'_>, id: &str, channel: u32) -> PyResult<bool> {
        let inner = self.get(py)?;
        py.detach(|| inner.clear_degraded(id, channel)).map_err(|e| self.err(py, e))
    }

    /// Actions under way: `[{action_id, server_id, channel_id, action, phase, batch_id}]`.
    fn actions(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let list: Vec<_> = self.get(py)?.actions().iter().map(ActionProgressView::from).collect();
        view_to_py(py, serde_json::to_value(&list))
    }

    /// Stops the cluster: no new calls; the driver thread ends once calls
    /// under way have. Idempotent.
    fn close(&self, py: Python<'_>) {
        let taken = self.inner.write().unwrap_or_else(|p| p.into_inner()).take();
        // Dropping the last handle joins the driver thread: do it detached.
        py.detach(move || drop(taken));
    }

    /// True once `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).is_none()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) {
        self.close(py)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.get(py) {
            Ok(inner) => format!("Cluster(servers={})", inner.len()),
            Err(_) => "Cluster(closed)".into(),
        }
    }
}

/// A scope from keyword arguments, checked by the client (`ScopeInput`).
fn scope(server: Option<String>, channel: Option<u32>, tag: Option<String>) -> Result<ipvtl_core::Scope, ClientError> {
    ipvtl_client::ScopeInput { server_id: server, channel_id: channel, tag }.into_scope()
}

fn refreshed(
    py: Python<'_>,
    snap: ipvtl_core::ServerSnapshot,
    now: ipvtl_core::Instant,
    clock: SmolClock,
    raise_on_error: bool,
) -> PyResult<Server> {
    if raise_on_error {
        if let Some(error) = &snap.state.error {
            return Err(errors::poll_failed(py, snap.config.id.as_str(), error));
        }
    }
    Ok(Server::new(snap, now, clock))
}

/// The batch keyword arguments as the core's loose batch input, passed
/// through as given (None is "not given"). With no `targets`, the filter
/// keywords form the filter, and none of them matches every channel.
#[allow(clippy::too_many_arguments)]
fn batch_input(
    action: String,
    targets: Option<Vec<(String, u32)>>,
    servers: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    states: Option<Vec<String>>,
    channels: Option<Vec<u32>>,
    max_parallel: Option<usize>,
    stop_on_failure: Option<bool>,
    failure_threshold: Option<usize>,
) -> BatchInput {
    let filtered = servers.is_some() || tags.is_some() || states.is_some() || channels.is_some();
    let filter = (filtered || targets.is_none()).then(|| FilterInput {
        servers: servers.unwrap_or_default(),
        tags: tags.unwrap_or_default(),
        states: states.unwrap_or_default(),
        channels: channels.unwrap_or_default(),
    });
    let targets = targets
        .map(|list| list.into_iter().map(|(server_id, channel_id)| TargetInput { server_id, channel_id }).collect());
    BatchInput { action, targets, filter, max_parallel, stop_on_failure, failure_threshold, dry_run: false }
}

/// The spec, validated once by the core (`BatchInput::into_spec`).
fn batch_spec(input: BatchInput) -> Result<BatchSpec, ClientError> {
    input.into_spec().map_err(ClientError::Batch)
}
