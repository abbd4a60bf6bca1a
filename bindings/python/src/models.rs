//! Read-only models: frozen wrappers over the client's wire views
//! (`ipvtl_client::wire`). `to_dict()` is the view's serialization and every
//! property reads the same view, so a property and the dict key of the same
//! name always agree, and both agree with the dashboard's JSON (SPEC §12).

use std::sync::{Arc, OnceLock};

use ipvtl_client::wire::{self, Wall};
use ipvtl_client::SmolClock;
use ipvtl_core::{self as core, Instant};
use pyo3::prelude::*;
use pyo3::types::PyList;
use serde_json::{json, Value};

use crate::convert::{value_to_py, view_to_py};

fn list<'py, T: pyo3::PyClass + Into<PyClassInitializer<T>>>(
    py: Python<'py>,
    items: impl IntoIterator<Item = T>,
) -> PyResult<Bound<'py, PyList>> {
    let objs = items.into_iter().map(|i| Py::new(py, i)).collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, objs)
}

// ---------------------------------------------------------------- config

/// One server of the fleet, as in `servers.json`.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
#[derive(Clone)]
pub struct ServerConfig(pub Arc<core::ServerConfig>);

#[pymethods]
impl ServerConfig {
    /// Validated like an entry of `servers.json` (ConfigError otherwise).
    #[new]
    #[pyo3(signature = (id, host, port = 9527, name = None, description = String::new(), tags = Vec::new()))]
    fn new(
        py: Python<'_>,
        id: String,
        host: String,
        port: i64,
        name: Option<String>,
        description: String,
        tags: Vec<String>,
    ) -> PyResult<Self> {
        // Input, not output: the entry is handed to the core's parser, so it
        // is validated exactly as a line of `servers.json` is.
        let mut entry = json!({"id": id, "host": host, "port": port, "description": description, "tags": tags});
        if let Some(name) = name {
            entry["name"] = Value::String(name);
        }
        let parsed = core::parse_servers(&Value::Array(vec![entry]).to_string());
        let mut servers = parsed
            .map_err(|error| crate::errors::to_py(py, None, ipvtl_client::ClientError::Config { path: None, error }))?;
        let config = servers.pop().ok_or_else(|| pyo3::exceptions::PyValueError::new_err("no server"))?;
        Ok(ServerConfig(Arc::new(config)))
    }
    #[getter]
    fn id(&self) -> &str {
        self.0.id.as_str()
    }
    #[getter]
    fn name(&self) -> &str {
        &self.0.name
    }
    #[getter]
    fn host(&self) -> &str {
        &self.0.host
    }
    #[getter]
    fn port(&self) -> u16 {
        self.0.port
    }
    #[getter]
    fn description(&self) -> &str {
        &self.0.description
    }
    #[getter]
    fn tags(&self) -> Vec<String> {
        self.0.tags.clone()
    }
    /// `{id, name, host, port, description, tags}`.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        view_to_py(py, serde_json::to_value(wire::ServerConfigView::from(&*self.0)))
    }
    fn __repr__(&self) -> String {
        format!("ServerConfig(id={:?}, host={:?}, port={})", self.0.id.as_str(), self.0.host, self.0.port)
    }
}

// ---------------------------------------------------------------- channel

/// One channel of a server, as last seen.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct Channel(wire::ChannelView);

#[pymethods]
impl Channel {
    /// 1-based channel number.
    #[getter]
    fn id(&self) -> u32 {
        self.0.id
    }
    /// `idle`, `running`, `stopping`, or an unknown state as sent.
    #[getter]
    fn state(&self) -> &str {
        &self.0.state
    }
    /// The raw status text.
    #[getter]
    fn status(&self) -> &str {
        &self.0.status
    }
    /// Seconds running, parsed from the status text.
    #[getter]
    fn uptime_s(&self) -> Option<u64> {
        self.0.uptime_s
    }
    /// Frames per second, parsed from the status text.
    #[getter]
    fn fps(&self) -> Option<f64> {
        self.0.fps
    }
    /// Output bitrate in kbit/s, parsed from the status text.
    #[getter]
    fn kbps(&self) -> Option<f64> {
        self.0.kbps
    }
    /// `zero_fps` or `uptime_frozen` while the channel looks stalled, else None.
    #[getter]
    fn stall(&self) -> Option<&'static str> {
        self.0.stall
    }
    /// `{id, state, status, uptime_s, fps, kbps, stall}`.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        view_to_py(py, serde_json::to_value(&self.0))
    }
    fn __repr__(&self) -> String {
        format!("Channel(id={}, state={:?}, status={:?})", self.0.id, self.0.state, self.0.status)
    }
}

// ---------------------------------------------------------------- server

/// One server and what the poller knows about it, as of a moment.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct Server {
    snap: core::ServerSnapshot,
    at: Instant,
    clock: SmolClock,
    /// Built on first use: a snapshot of a large fleet makes many of these
    /// and a script often reads one or two properties of each.
    view: OnceLock<wire::ServerView>,
}

impl Server {
    pub fn new(snap: core::ServerSnapshot, at: Instant, clock: SmolClock) -> Self {
        Server { snap, at, clock, view: OnceLock::new() }
    }

    fn view(&self) -> &wire::ServerView {
        self.view.get_or_init(|| wire::ServerView::new(&self.snap, self.at, Wall(&self.clock)))
    }

    fn state(&self) -> &wire::ServerStateView {
        &self.view().state
    }

    fn poll(&self) -> &wire::PollView {
        &self.view().state.poll
    }
}

#[pymethods]
impl Server {
    #[getter]
    fn id(&self) -> &str {
        self.snap.config.id.as_str()
    }
    #[getter]
    fn name(&self) -> &str {
        &self.snap.config.name
    }
    #[getter]
    fn host(&self) -> &str {
        &self.snap.config.host
    }
    #[getter]
    fn port(&self) -> u16 {
        self.snap.config.port
    }
    #[getter]
    fn description(&self) -> &str {
        &self.snap.config.description
    }
    #[getter]
    fn tags(&self) -> Vec<String> {
        self.snap.config.tags.clone()
    }
    /// The configuration alone.
    #[getter]
    fn config(&self) -> ServerConfig {
        ServerConfig(self.snap.config.clone())
    }
    /// `unknown` (not polled yet), `online`, `offline` or `error`.
    #[getter]
    fn health(&self) -> &'static str {
        self.state().health
    }
    /// Per-core CPU percent from the last good status (empty if none).
    #[getter]
    fn cpu(&self) -> Vec<f64> {
        self.state().cpu.clone()
    }
    /// Mean CPU percent over the cores.
    #[getter]
    fn cpu_avg(&self) -> Option<f64> {
        self.state().cpu_avg
    }
    /// Channels from the last good status (empty if none).
    #[getter]
    fn channels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        list(py, self.state().channels.iter().cloned().map(Channel))
    }
    /// Channel `n` (1-based), or None.
    fn channel(&self, n: u32) -> Option<Channel> {
        self.state().channels.iter().find(|c| c.id == n).cloned().map(Channel)
    }
    /// True when the status shown is older than the last poll (that failed).
    #[getter]
    fn stale(&self) -> bool {
        self.poll().stale
    }
    /// Milliseconds since the last good status, as of the snapshot.
    #[getter]
    fn status_age_ms(&self) -> Option<u64> {
        self.poll().status_age_ms
    }
    /// Why the last poll failed; None after a good poll.
    #[getter]
    fn error(&self) -> Option<String> {
        self.poll().error.clone()
    }
    /// `connect`, `timeout`, `io`, `http`, `malformed`, `too_large`, or None.
    #[getter]
    fn error_kind(&self) -> Option<&'static str> {
        self.poll().error_kind
    }
    /// When the last poll (good or bad) finished, in Unix seconds.
    #[getter]
    fn last_poll_at(&self) -> Option<f64> {
        self.poll().last_poll_at
    }
    /// When the last good status arrived, in Unix seconds.
    #[getter]
    fn last_ok_at(&self) -> Option<f64> {
        self.poll().last_ok_at
    }
    /// Round trip of the last poll, in milliseconds.
    #[getter]
    fn latency_ms(&self) -> Option<u64> {
        self.poll().latency_ms
    }
    /// Polls failed in a row.
    #[getter]
    fn consecutive_failures(&self) -> u32 {
        self.poll().consecutive_failures
    }
    /// True while in maintenance: polled, no alarms, no actions.
    #[getter]
    fn maintenance(&self) -> bool {
        self.poll().maintenance
    }
    /// The configuration and the state in one flat dict (the dashboard's
    /// server object).
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        view_to_py(py, serde_json::to_value(self.view()))
    }
    fn __repr__(&self) -> String {
        format!("Server(id={:?}, health={:?})", self.snap.config.id.as_str(), self.snap.state.health.as_str())
    }
}

// ---------------------------------------------------------------- snapshot

/// The whole fleet as of a moment.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct ClusterSnapshot {
    snap: core::FleetSnapshot,
    clock: SmolClock,
}

impl ClusterSnapshot {
    pub fn new(snap: core::FleetSnapshot, clock: SmolClock) -> Self {
        ClusterSnapshot { snap, clock }
    }

    fn server_objs(&self) -> impl Iterator<Item = Server> + '_ {
        self.snap.servers.iter().map(|s| Server::new(s.clone(), self.snap.taken_at, self.clock))
    }
}

#[pymethods]
impl ClusterSnapshot {
    /// Every server, in configuration order.
    #[getter]
    fn servers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        list(py, self.server_objs())
    }
    /// The latest sweep number started.
    #[getter]
    fn sweep(&self) -> u64 {
        self.snap.sweep
    }
    /// When it was taken (seconds since the Unix epoch).
    #[getter]
    fn taken_at(&self) -> f64 {
        Wall(&self.clock).at(self.snap.taken_at)
    }
    /// Every managed channel that drifts, as dicts (the `drifts` of
    /// `to_dict()`): server_id, channel_id, desired, observed, stall,
    /// since_at, drift_ms, attempts, degraded, healing_action_id.
    #[getter]
    fn drifts(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let list: Vec<_> =
            self.snap.drifts.iter().map(|d| wire::DriftView::new(d, self.snap.taken_at, Wall(&self.clock))).collect();
        view_to_py(py, serde_json::to_value(&list))
    }
    /// Servers per health: `{"online": n, "offline": n, "error": n, "unknown": n}`.
    fn counts(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        view_to_py(py, serde_json::to_value(wire::HealthCounts::of(&self.snap)))
    }
    /// One server by id (ServerNotFound otherwise).
    fn server(&self, py: Python<'_>, id: &str) -> PyResult<Server> {
        let found = self.snap.servers.iter().find(|s| s.config.id.as_str() == id);
        match found {
            Some(s) => Ok(Server::new(s.clone(), self.snap.taken_at, self.clock)),
            None => Err(crate::errors::to_py(py, None, ipvtl_client::ClientError::ServerNotFound(id.into()))),
        }
    }
    fn __len__(&self) -> usize {
        self.snap.servers.len()
    }
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.servers(py)?.try_iter().map(Bound::into_any)
    }
    /// `{"taken_at", "sweep", "counts", "servers": [...], "drifts": [...]}`.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        view_to_py(py, serde_json::to_value(wire::SnapshotView::new(&self.snap, Wall(&self.clock))))
    }
    fn __repr__(&self) -> String {
        format!("ClusterSnapshot(servers={}, sweep={})", self.snap.servers.len(), self.snap.sweep)
    }
}

// ---------------------------------------------------------------- reports

/// How long one phase of an action took.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct PhaseReport(wire::PhaseView);

#[pymethods]
impl PhaseReport {
    /// `probe`, `stop`, `wait_idle`, `start` or `wait_running`.
    #[getter]
    fn phase(&self) -> &'static str {
        self.0.phase
    }
    /// Milliseconds.
    #[getter]
    fn duration_ms(&self) -> u64 {
        self.0.duration_ms
    }
    /// `{phase, duration_ms}`.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        view_to_py(py, serde_json::to_value(&self.0))
    }
    fn __repr__(&self) -> String {
        format!("PhaseReport(phase={:?}, duration_ms={})", self.0.phase, self.0.duration_ms)
    }
}

/// How a start, stop or restart of one channel ended.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct ActionReport {
    report: core::ActionReport,
    view: wire::ActionReportView,
}

impl ActionReport {
    pub fn new(report: core::ActionReport, clock: SmolClock) -> Self {
        let view = wire::ActionReportView::new(&report, Wall(&clock));
        ActionReport { report, view }
    }
}

#[pymethods]
impl ActionReport {
    /// The action; None when it was refused or skipped before it began.
    #[getter]
    fn action_id(&self) -> Option<u64> {
        self.view.action_id
    }
    /// True on success.
    #[getter]
    fn ok(&self) -> bool {
        self.view.ok
    }
    /// `start`, `stop` or `restart`.
    #[getter]
    fn action(&self) -> &'static str {
        self.view.action
    }
    #[getter]
    fn server_id(&self) -> &str {
        &self.view.server_id
    }
    #[getter]
    fn channel_id(&self) -> u32 {
        self.view.channel_id
    }
    /// The batch it belonged to, if any.
    #[getter]
    fn batch_id(&self) -> Option<u64> {
        self.view.batch_id
    }
    /// Each phase in order, with its duration.
    #[getter]
    fn phases<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        list(py, self.view.phases.iter().cloned().map(PhaseReport))
    }
    /// Milliseconds spent in phase `name` (None if it never ran).
    fn phase_duration_ms(&self, name: &str) -> Option<u64> {
        let phase = self.report.phases.iter().find(|p| p.phase.as_str() == name)?.phase;
        self.report.phase_duration(phase).map(wire::ms)
    }
    /// Milliseconds from start to end.
    #[getter]
    fn duration_ms(&self) -> u64 {
        self.view.duration_ms
    }
    /// When it began, in Unix seconds.
    #[getter]
    fn started_at(&self) -> f64 {
        self.view.started_at
    }
    /// When it ended, in Unix seconds.
    #[getter]
    fn finished_at(&self) -> f64 {
        self.view.finished_at
    }
    /// The channel state last seen.
    #[getter]
    fn final_state(&self) -> Option<&str> {
        self.view.final_state.as_deref()
    }
    /// Why it failed (None on success).
    #[getter]
    fn error(&self) -> Option<&str> {
        self.view.error.as_deref()
    }
    /// `probe_failed`, `stop_failed`, `start_failed`, `stop_timeout`,
    /// `start_timeout`, `skipped`, a refusal kind, or None on success.
    #[getter]
    fn error_kind(&self) -> Option<&'static str> {
        self.view.error_kind
    }
    /// The request failure behind `error`, if one is: `connect`, `timeout`
    /// or `io` (the server was unreachable), `http`, `malformed` or
    /// `too_large`. None on success and for refusals.
    #[getter]
    fn cause_kind(&self) -> Option<&'static str> {
        self.view.cause_kind
    }
    /// One line for humans.
    #[getter]
    fn summary(&self) -> &str {
        &self.view.summary
    }
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        view_to_py(py, serde_json::to_value(&self.view))
    }
    fn __repr__(&self) -> String {
        format!("ActionReport({})", self.view.summary)
    }
}

/// How a batch ended: one ActionReport per planned channel.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct BatchReport {
    report: core::BatchReport,
    clock: SmolClock,
    view: wire::BatchReportView,
}

impl BatchReport {
    pub fn new(report: core::BatchReport, clock: SmolClock) -> Self {
        let view = wire::BatchReportView::new(&report, Wall(&clock));
        BatchReport { report, clock, view }
    }
}

#[pymethods]
impl BatchReport {
    #[getter]
    fn batch_id(&self) -> u64 {
        self.view.batch_id
    }
    /// `start`, `stop` or `restart`.
    #[getter]
    fn action(&self) -> &'static str {
        self.view.action
    }
    /// True when every planned action ran and succeeded.
    #[getter]
    fn ok(&self) -> bool {
        self.view.ok
    }
    #[getter]
    fn succeeded(&self) -> usize {
        self.view.succeeded
    }
    /// Actions that failed or were refused.
    #[getter]
    fn failed(&self) -> usize {
        self.view.failed
    }
    /// Actions not run because the batch stopped early.
    #[getter]
    fn skipped(&self) -> usize {
        self.view.skipped
    }
    /// `first_failure` or `threshold` when the batch stopped starting
    /// actions early, else None.
    #[getter]
    fn stopped_early(&self) -> Option<&'static str> {
        self.view.stopped_early
    }
    /// Why it stopped early, for humans.
    #[getter]
    fn stopped_reason(&self) -> Option<&str> {
        self.view.stopped_reason.as_deref()
    }
    /// When it began, in Unix seconds.
    #[getter]
    fn started_at(&self) -> f64 {
        self.view.started_at
    }
    /// When it ended, in Unix seconds.
    #[getter]
    fn finished_at(&self) -> f64 {
        self.view.finished_at
    }
    /// Milliseconds from start to end.
    #[getter]
    fn duration_ms(&self) -> u64 {
        self.view.duration_ms
    }
    /// One report per planned channel, in plan order.
    #[getter]
    fn reports<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        list(py, self.report.reports.iter().map(|a| ActionReport::new(a.clone(), self.clock)))
    }
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        view_to_py(py, serde_json::to_value(&self.view))
    }
    fn __repr__(&self) -> String {
        format!(
            "BatchReport(batch_id={}, action={:?}, succeeded={}, failed={}, skipped={})",
            self.view.batch_id, self.view.action, self.view.succeeded, self.view.failed, self.view.skipped
        )
    }
}

/// What a reload changed.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct ReloadSummary(wire::ReloadView);

impl ReloadSummary {
    pub fn new(summary: &core::ReloadSummary) -> Self {
        ReloadSummary(wire::ReloadView::from(summary))
    }
}

#[pymethods]
impl ReloadSummary {
    /// Servers that are new.
    #[getter]
    fn added(&self) -> Vec<String> {
        self.0.added.clone()
    }
    /// Servers that are gone.
    #[getter]
    fn removed(&self) -> Vec<String> {
        self.0.removed.clone()
    }
    /// Servers whose address changed (their state starts over).
    #[getter]
    fn changed(&self) -> Vec<String> {
        self.0.changed.clone()
    }
    /// Servers kept with their state.
    #[getter]
    fn kept(&self) -> usize {
        self.0.kept
    }
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        view_to_py(py, serde_json::to_value(&self.0))
    }
    fn __repr__(&self) -> String {
        format!(
            "ReloadSummary(added={}, removed={}, changed={}, kept={})",
            self.0.added.len(),
            self.0.removed.len(),
            self.0.changed.len(),
            self.0.kept
        )
    }
}

// ---------------------------------------------------------------- events

/// Something that happened in the fleet. `kind` says what; `to_dict()` is
/// the event as the dashboard's SSE sends it, and each property is the dict
/// key of the same name (`from_` is the key `from`), None when that kind has
/// no such key.
///
/// Kinds: `health_changed` (server_id, from, to, error, error_kind),
/// `channel_state_changed` (server_id, channel_id, from, to),
/// `channel_stalled` (server_id, channel_id, reason), `server_rebooted`
/// (server_id), `refreshed` (server_id, error, error_kind), `action_started`
/// (action_id, server_id, channel_id, action, batch_id), `action_finished`
/// (every key of the ActionReport; `report`), `batch_progress` (batch_id,
/// done, total, failed, running, last), `batch_finished` (every key of the
/// BatchReport; `report`), `sweep_finished` (sweep, duration_ms, ok, failed,
/// skipped).
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct Event {
    event: core::Event,
    clock: SmolClock,
    /// The serialized `EventView`.
    json: Value,
}

impl Event {
    pub fn from_core(event: core::Event, clock: SmolClock) -> Self {
        // The views serialize without fail; see `convert::view_to_py`.
        let json = serde_json::to_value(wire::EventView::new(&event, Wall(&clock))).unwrap_or(Value::Null);
        Event { event, clock, json }
    }

    fn get(&self, py: Python<'_>, key: &str) -> PyResult<Py<PyAny>> {
        value_to_py(py, self.json.get(key).unwrap_or(&Value::Null))
    }

    fn text(&self, key: &str) -> String {
        self.json.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
    }
}

#[pymethods]
impl Event {
    /// What happened (see the class doc for the kinds).
    #[getter]
    fn kind(&self) -> String {
        self.text("kind")
    }
    /// A sentence for logs.
    #[getter]
    fn message(&self) -> String {
        self.text("message")
    }
    #[getter]
    fn server_id(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "server_id")
    }
    #[getter]
    fn channel_id(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "channel_id")
    }
    /// Health or channel state before (health_changed,
    /// channel_state_changed): the dict key `from`.
    #[getter(from_)]
    fn from_(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "from")
    }
    /// Health or channel state now (health_changed, channel_state_changed).
    #[getter]
    fn to(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "to")
    }
    #[getter]
    fn error(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "error")
    }
    #[getter]
    fn error_kind(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "error_kind")
    }
    /// `zero_fps` or `uptime_frozen` (channel_stalled).
    #[getter]
    fn reason(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "reason")
    }
    #[getter]
    fn action_id(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "action_id")
    }
    /// `start`, `stop` or `restart` (action and batch events).
    #[getter]
    fn action(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "action")
    }
    #[getter]
    fn batch_id(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "batch_id")
    }
    /// ActionReport (action_finished) or BatchReport (batch_finished).
    #[getter]
    fn report(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match &self.event {
            core::Event::ActionFinished { report } => {
                Ok(Py::new(py, ActionReport::new(report.clone(), self.clock))?.into_any())
            }
            core::Event::BatchFinished { report } => {
                Ok(Py::new(py, BatchReport::new(report.clone(), self.clock))?.into_any())
            }
            _ => Ok(py.None()),
        }
    }
    #[getter]
    fn sweep(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "sweep")
    }
    /// Milliseconds (sweep_finished, action_finished, batch_finished).
    #[getter]
    fn duration_ms(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "duration_ms")
    }
    /// Good polls (sweep_finished, int) or success (action/batch finished, bool).
    #[getter]
    fn ok(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "ok")
    }
    #[getter]
    fn failed(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "failed")
    }
    #[getter]
    fn skipped(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "skipped")
    }
    #[getter]
    fn done(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "done")
    }
    #[getter]
    fn total(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "total")
    }
    #[getter]
    fn running(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "running")
    }
    /// Every key of this kind, JSON-ready, with `kind` and `message`.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        value_to_py(py, &self.json)
    }
    fn __repr__(&self) -> String {
        format!("Event({}: {})", self.text("kind"), self.text("message"))
    }
}
