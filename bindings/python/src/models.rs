//! Read-only models: frozen wrappers over the core's values, with
//! properties and `to_dict()` (JSON-ready plain types).

use std::sync::Arc;

use ipvtl_client::SmolClock;
use ipvtl_core::{self as core, Instant};
use pyo3::prelude::*;
use pyo3::types::PyList;
use serde_json::{json, Value};

use crate::convert::{f, secs, value_to_py, wall};

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

impl ServerConfig {
    fn json(&self) -> Value {
        serde_json::to_value(&*self.0).unwrap_or(Value::Null)
    }
}

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
        value_to_py(py, &self.json())
    }
    fn __repr__(&self) -> String {
        format!("ServerConfig(id={:?}, host={:?}, port={})", self.0.id.as_str(), self.0.host, self.0.port)
    }
}

// ---------------------------------------------------------------- channel

/// One channel of a server, as last seen.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct Channel(pub core::Channel);

impl Channel {
    fn json(&self) -> Value {
        let c = &self.0;
        json!({
            "id": c.id.get(),
            "state": c.state.as_str(),
            "status": c.status,
            "uptime": c.stats.map(|s| s.uptime_s),
            "fps": c.stats.map(|s| f(s.fps)),
            "kbps": c.stats.map(|s| f(s.kbps)),
        })
    }
}

#[pymethods]
impl Channel {
    /// 1-based channel number.
    #[getter]
    fn id(&self) -> u32 {
        self.0.id.get()
    }
    /// `idle`, `running`, `stopping`, or an unknown state as sent.
    #[getter]
    fn state(&self) -> &str {
        self.0.state.as_str()
    }
    /// The raw status text.
    #[getter]
    fn status(&self) -> &str {
        &self.0.status
    }
    /// Seconds running, parsed from the status text.
    #[getter]
    fn uptime(&self) -> Option<u64> {
        self.0.stats.map(|s| s.uptime_s)
    }
    #[getter]
    fn fps(&self) -> Option<f64> {
        self.0.stats.map(|s| f(s.fps))
    }
    #[getter]
    fn kbps(&self) -> Option<f64> {
        self.0.stats.map(|s| f(s.kbps))
    }
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        value_to_py(py, &self.json())
    }
    fn __repr__(&self) -> String {
        format!("Channel(id={}, state={:?}, status={:?})", self.0.id, self.0.state.as_str(), self.0.status)
    }
}

// ---------------------------------------------------------------- server

/// One server and what the poller knows about it, as of a moment.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct Server {
    snap: core::ServerSnapshot,
    at: Instant,
    clock: SmolClock,
}

impl Server {
    pub fn new(snap: core::ServerSnapshot, at: Instant, clock: SmolClock) -> Self {
        Server { snap, at, clock }
    }

    fn json(&self) -> Value {
        let (c, s) = (&self.snap.config, &self.snap.state);
        let status = s.status.as_ref();
        json!({
            "id": c.id.as_str(),
            "name": c.name,
            "host": c.host,
            "port": c.port,
            "description": c.description,
            "tags": c.tags,
            "health": s.health.as_str(),
            "cpu": status.map(|st| st.cpu.iter().map(|c| f(*c)).collect::<Vec<_>>()).unwrap_or_default(),
            "cpu_avg": status.and_then(|st| st.cpu_avg()).map(f),
            "channels": status.map(|st| st.channels.iter().map(|ch| Channel(ch.clone()).json()).collect::<Vec<_>>())
                .unwrap_or_default(),
            "stale": s.is_stale(),
            "age": s.status_age(self.at).map(secs),
            "error": s.error.as_ref().map(|e| e.to_string()),
            "error_kind": s.error.as_ref().map(|e| e.kind()),
            "last_poll_time": s.last_poll_at.map(|t| wall(&self.clock, t)),
            "last_ok_time": s.last_ok_at.map(|t| wall(&self.clock, t)),
            "latency": s.latency.map(secs),
            "consecutive_failures": s.consecutive_failures,
            "maintenance": s.maintenance,
        })
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
        self.snap.state.health.as_str()
    }
    /// Per-core CPU percent from the last good status (empty if none).
    #[getter]
    fn cpu(&self) -> Vec<f64> {
        self.snap.state.status.as_ref().map(|s| s.cpu.iter().map(|c| f(*c)).collect()).unwrap_or_default()
    }
    #[getter]
    fn cpu_avg(&self) -> Option<f64> {
        self.snap.state.status.as_ref().and_then(|s| s.cpu_avg()).map(f)
    }
    /// Channels from the last good status (empty if none).
    #[getter]
    fn channels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let channels = self.snap.state.status.as_ref().map(|s| s.channels.clone()).unwrap_or_default();
        list(py, channels.into_iter().map(Channel))
    }
    /// Channel `n` (1-based), or None.
    fn channel(&self, n: u32) -> Option<Channel> {
        let status = self.snap.state.status.as_ref()?;
        let id = core::ChannelId::new(n)?;
        status.channel(id).cloned().map(Channel)
    }
    /// True when the status shown is older than the last poll (that failed).
    #[getter]
    fn stale(&self) -> bool {
        self.snap.state.is_stale()
    }
    /// Seconds since the last good status, as of the snapshot.
    #[getter]
    fn age(&self) -> Option<f64> {
        self.snap.state.status_age(self.at).map(secs)
    }
    /// Why the last poll failed; None after a good poll.
    #[getter]
    fn error(&self) -> Option<String> {
        self.snap.state.error.as_ref().map(|e| e.to_string())
    }
    /// `connect`, `timeout`, `io`, `http`, `malformed`, `too_large`, or None.
    #[getter]
    fn error_kind(&self) -> Option<&'static str> {
        self.snap.state.error.as_ref().map(|e| e.kind())
    }
    #[getter]
    fn last_poll_time(&self) -> Option<f64> {
        self.snap.state.last_poll_at.map(|t| wall(&self.clock, t))
    }
    #[getter]
    fn last_ok_time(&self) -> Option<f64> {
        self.snap.state.last_ok_at.map(|t| wall(&self.clock, t))
    }
    /// Round trip of the last poll, in seconds.
    #[getter]
    fn latency(&self) -> Option<f64> {
        self.snap.state.latency.map(secs)
    }
    #[getter]
    fn consecutive_failures(&self) -> u32 {
        self.snap.state.consecutive_failures
    }
    #[getter]
    fn maintenance(&self) -> bool {
        self.snap.state.maintenance
    }
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        value_to_py(py, &self.json())
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
        wall(&self.clock, self.snap.taken_at)
    }
    /// Servers per health: `{"online": n, "offline": n, "error": n, "unknown": n}`.
    fn counts(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        value_to_py(py, &self.counts_json())
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
    /// `{"taken_at", "sweep", "counts", "servers": [...]}`.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let servers: Vec<Value> = self.server_objs().map(|s| s.json()).collect();
        let v = json!({
            "taken_at": wall(&self.clock, self.snap.taken_at),
            "sweep": self.snap.sweep,
            "counts": self.counts_json(),
            "servers": servers,
        });
        value_to_py(py, &v)
    }
    fn __repr__(&self) -> String {
        format!("ClusterSnapshot(servers={}, sweep={})", self.snap.servers.len(), self.snap.sweep)
    }
}

impl ClusterSnapshot {
    fn counts_json(&self) -> Value {
        let mut counts = serde_json::Map::new();
        for h in core::Health::ALL {
            counts.insert(h.as_str().into(), self.snap.count(h).into());
        }
        Value::Object(counts)
    }
}

// ---------------------------------------------------------------- reports

/// How long one phase of an action took.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct PhaseReport(core::PhaseReport);

impl PhaseReport {
    fn json(&self) -> Value {
        json!({"phase": self.0.phase.as_str(), "duration": secs(self.0.duration)})
    }
}

#[pymethods]
impl PhaseReport {
    /// `probe`, `stop`, `wait_idle`, `start` or `wait_running`.
    #[getter]
    fn phase(&self) -> &'static str {
        self.0.phase.as_str()
    }
    /// Seconds.
    #[getter]
    fn duration(&self) -> f64 {
        secs(self.0.duration)
    }
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        value_to_py(py, &self.json())
    }
    fn __repr__(&self) -> String {
        format!("PhaseReport(phase={:?}, duration={:.3})", self.0.phase.as_str(), secs(self.0.duration))
    }
}

/// How a start, stop or restart of one channel ended.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct ActionReport {
    report: core::ActionReport,
    clock: SmolClock,
}

impl ActionReport {
    pub fn new(report: core::ActionReport, clock: SmolClock) -> Self {
        ActionReport { report, clock }
    }

    pub fn json(&self) -> Value {
        let r = &self.report;
        let phases: Vec<Value> = r.phases.iter().map(|p| PhaseReport(*p).json()).collect();
        json!({
            "action_id": r.action.0,
            "ok": r.is_ok(),
            "kind": r.kind.as_str(),
            "server_id": r.server.as_str(),
            "channel": r.channel.get(),
            "batch_id": r.batch.map(|b| b.0),
            "phases": phases,
            "duration": secs(r.duration()),
            "started_at": wall(&self.clock, r.started_at),
            "finished_at": wall(&self.clock, r.finished_at),
            "final_state": r.final_state.as_ref().map(|s| s.as_str()),
            "error": r.outcome.as_ref().err().map(|e| e.to_string()),
            "error_kind": r.outcome.as_ref().err().map(|e| e.kind()),
            "cause_kind": r.cause().map(|c| c.kind()),
            "summary": r.summary(),
        })
    }
}

#[pymethods]
impl ActionReport {
    #[getter]
    fn action_id(&self) -> u64 {
        self.report.action.0
    }
    #[getter]
    fn ok(&self) -> bool {
        self.report.is_ok()
    }
    /// `start`, `stop` or `restart`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.report.kind.as_str()
    }
    #[getter]
    fn server_id(&self) -> &str {
        self.report.server.as_str()
    }
    #[getter]
    fn channel(&self) -> u32 {
        self.report.channel.get()
    }
    #[getter]
    fn batch_id(&self) -> Option<u64> {
        self.report.batch.map(|b| b.0)
    }
    /// Each phase in order, with its duration.
    #[getter]
    fn phases<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        list(py, self.report.phases.iter().map(|p| PhaseReport(*p)))
    }
    /// Seconds spent in phase `name` (None if it never ran).
    fn phase_duration(&self, name: &str) -> Option<f64> {
        let phase = self.report.phases.iter().find(|p| p.phase.as_str() == name)?.phase;
        self.report.phase_duration(phase).map(secs)
    }
    /// Seconds from start to end.
    #[getter]
    fn duration(&self) -> f64 {
        secs(self.report.duration())
    }
    #[getter]
    fn started_at(&self) -> f64 {
        wall(&self.clock, self.report.started_at)
    }
    #[getter]
    fn finished_at(&self) -> f64 {
        wall(&self.clock, self.report.finished_at)
    }
    /// The channel state last seen.
    #[getter]
    fn final_state(&self) -> Option<&str> {
        self.report.final_state.as_ref().map(|s| s.as_str())
    }
    /// Why it failed (None on success).
    #[getter]
    fn error(&self) -> Option<String> {
        self.report.outcome.as_ref().err().map(|e| e.to_string())
    }
    /// `probe_failed`, `stop_failed`, `start_failed`, `stop_timeout`,
    /// `start_timeout`, `skipped`, a refusal kind, or None on success.
    #[getter]
    fn error_kind(&self) -> Option<&'static str> {
        self.report.outcome.as_ref().err().map(|e| e.kind())
    }
    /// The request failure behind `error`, if one is: `connect`, `timeout`
    /// or `io` (the server was unreachable), `http`, `malformed` or
    /// `too_large`. None on success and for refusals.
    #[getter]
    fn cause_kind(&self) -> Option<&'static str> {
        self.report.cause().map(|c| c.kind())
    }
    /// One line for humans.
    #[getter]
    fn summary(&self) -> String {
        self.report.summary()
    }
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        value_to_py(py, &self.json())
    }
    fn __repr__(&self) -> String {
        format!("ActionReport({})", self.report.summary())
    }
}

/// How a batch ended: one ActionReport per planned channel.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct BatchReport {
    report: core::BatchReport,
    clock: SmolClock,
}

impl BatchReport {
    pub fn new(report: core::BatchReport, clock: SmolClock) -> Self {
        BatchReport { report, clock }
    }

    pub fn json(&self) -> Value {
        let r = &self.report;
        let reports: Vec<Value> = r.reports.iter().map(|a| ActionReport::new(a.clone(), self.clock).json()).collect();
        json!({
            "batch_id": r.batch.0,
            "kind": r.kind.as_str(),
            "ok": r.is_ok(),
            "succeeded": r.ok(),
            "failed": r.failed(),
            "skipped": r.skipped(),
            "stopped_early": r.stopped_early,
            "started_at": wall(&self.clock, r.started_at),
            "finished_at": wall(&self.clock, r.finished_at),
            "duration": secs(r.finished_at.saturating_since(r.started_at)),
            "reports": reports,
        })
    }
}

#[pymethods]
impl BatchReport {
    #[getter]
    fn batch_id(&self) -> u64 {
        self.report.batch.0
    }
    #[getter]
    fn kind(&self) -> &'static str {
        self.report.kind.as_str()
    }
    /// True when every planned action succeeded.
    #[getter]
    fn ok(&self) -> bool {
        self.report.is_ok()
    }
    #[getter]
    fn succeeded(&self) -> usize {
        self.report.ok()
    }
    #[getter]
    fn failed(&self) -> usize {
        self.report.failed()
    }
    #[getter]
    fn skipped(&self) -> usize {
        self.report.skipped()
    }
    /// Why the batch stopped starting actions early, if it did.
    #[getter]
    fn stopped_early(&self) -> Option<String> {
        self.report.stopped_early.clone()
    }
    #[getter]
    fn started_at(&self) -> f64 {
        wall(&self.clock, self.report.started_at)
    }
    #[getter]
    fn finished_at(&self) -> f64 {
        wall(&self.clock, self.report.finished_at)
    }
    #[getter]
    fn duration(&self) -> f64 {
        secs(self.report.finished_at.saturating_since(self.report.started_at))
    }
    /// One report per planned channel, in plan order.
    #[getter]
    fn reports<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        list(py, self.report.reports.iter().map(|a| ActionReport::new(a.clone(), self.clock)))
    }
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        value_to_py(py, &self.json())
    }
    fn __repr__(&self) -> String {
        format!(
            "BatchReport(batch_id={}, kind={:?}, succeeded={}, failed={}, skipped={})",
            self.report.batch.0,
            self.report.kind.as_str(),
            self.report.ok(),
            self.report.failed(),
            self.report.skipped()
        )
    }
}

/// What a reload changed.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct ReloadSummary(pub core::ReloadSummary);

impl ReloadSummary {
    fn ids(ids: &[core::ServerId]) -> Vec<String> {
        ids.iter().map(|i| i.as_str().to_string()).collect()
    }
}

#[pymethods]
impl ReloadSummary {
    /// Servers that are new.
    #[getter]
    fn added(&self) -> Vec<String> {
        Self::ids(&self.0.added)
    }
    /// Servers that are gone.
    #[getter]
    fn removed(&self) -> Vec<String> {
        Self::ids(&self.0.removed)
    }
    /// Servers whose address changed (their state starts over).
    #[getter]
    fn changed(&self) -> Vec<String> {
        Self::ids(&self.0.changed)
    }
    /// Servers kept with their state.
    #[getter]
    fn kept(&self) -> usize {
        self.0.kept
    }
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v =
            json!({"added": self.added(), "removed": self.removed(), "changed": self.changed(), "kept": self.0.kept});
        value_to_py(py, &v)
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

/// Something that happened in the fleet. `kind` says what; the other
/// properties are None when they do not apply to that kind.
///
/// Kinds: `health_changed` (server_id, old, new, error), `channel_state_changed`
/// (server_id, channel, old, new), `channel_stalled` (server_id, channel,
/// reason), `server_rebooted` (server_id), `refreshed` (server_id, error),
/// `action_started` (action_id, server_id, channel, action, batch_id),
/// `action_finished` (report, ...), `batch_progress` (batch_id, done, total,
/// failed, running), `batch_finished` (report, batch_id),
/// `sweep_finished` (sweep, duration, ok, failed, skipped).
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct Event {
    event: core::Event,
    clock: SmolClock,
    json: Value,
}

impl Event {
    pub fn from_core(event: core::Event, clock: SmolClock) -> Self {
        let json = event_json(&event, &clock);
        Event { event, clock, json }
    }

    fn get(&self, py: Python<'_>, key: &str) -> PyResult<Py<PyAny>> {
        value_to_py(py, self.json.get(key).unwrap_or(&Value::Null))
    }
}

fn event_json(e: &core::Event, clock: &SmolClock) -> Value {
    use core::Event as E;
    let mut v = match e {
        E::HealthChanged { server, from, to, error } => json!({
            "server_id": server.as_str(), "old": from.as_str(), "new": to.as_str(),
            "error": error.as_ref().map(|e| e.to_string()), "error_kind": error.as_ref().map(|e| e.kind()),
        }),
        E::ChannelStateChanged { server, channel, from, to } => json!({
            "server_id": server.as_str(), "channel": channel.get(), "old": from.as_str(), "new": to.as_str(),
        }),
        E::ChannelStalled { server, channel, reason } => {
            let reason = match reason {
                core::StallReason::ZeroFps => "zero_fps",
                core::StallReason::UptimeFrozen => "uptime_frozen",
                _ => "other",
            };
            json!({"server_id": server.as_str(), "channel": channel.get(), "reason": reason})
        }
        E::ServerRebooted { server } => json!({"server_id": server.as_str()}),
        E::Refreshed { server, error } => json!({
            "server_id": server.as_str(),
            "error": error.as_ref().map(|e| e.to_string()), "error_kind": error.as_ref().map(|e| e.kind()),
        }),
        E::ActionStarted { action, server, channel, kind, batch } => json!({
            "action_id": action.0, "server_id": server.as_str(), "channel": channel.get(),
            "action": kind.as_str(), "batch_id": batch.map(|b| b.0),
        }),
        E::ActionFinished { report } => {
            let r = ActionReport::new(report.clone(), *clock).json();
            json!({
                "action_id": report.action.0, "server_id": report.server.as_str(), "channel": report.channel.get(),
                "action": report.kind.as_str(), "batch_id": report.batch.map(|b| b.0),
                "ok": report.is_ok(), "error": r["error"].clone(), "error_kind": r["error_kind"].clone(),
                "report": r,
            })
        }
        E::BatchProgress(p) => json!({
            "batch_id": p.batch.0, "done": p.done, "total": p.total, "failed": p.failed, "running": p.running,
        }),
        E::BatchFinished { report } => {
            let r = BatchReport::new(report.clone(), *clock).json();
            json!({"batch_id": report.batch.0, "ok": r["ok"].clone(), "failed": report.failed(), "report": r})
        }
        E::SweepFinished { sweep, duration, ok, failed, skipped } => json!({
            "sweep": sweep, "duration": secs(*duration), "ok": ok, "failed": failed, "skipped": skipped,
        }),
        _ => json!({}),
    };
    v["kind"] = Value::String(e.kind().into());
    v["message"] = Value::String(core::event::describe(e));
    v
}

#[pymethods]
impl Event {
    /// What happened (see the class doc for the kinds).
    #[getter]
    fn kind(&self) -> &'static str {
        self.event.kind()
    }
    /// A sentence for logs.
    #[getter]
    fn message(&self) -> String {
        core::event::describe(&self.event)
    }
    #[getter]
    fn server_id(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "server_id")
    }
    #[getter]
    fn channel(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "channel")
    }
    /// Health or channel state before (health_changed, channel_state_changed).
    #[getter]
    fn old(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "old")
    }
    /// Health or channel state now (health_changed, channel_state_changed).
    #[getter(new)]
    fn new_value(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "new")
    }
    #[getter]
    fn error(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "error")
    }
    #[getter]
    fn error_kind(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "error_kind")
    }
    #[getter]
    fn reason(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "reason")
    }
    #[getter]
    fn action_id(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "action_id")
    }
    /// `start`, `stop` or `restart` (action events).
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
    /// Seconds (sweep_finished).
    #[getter]
    fn duration(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, "duration")
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
    /// Every field that applies, JSON-ready, with `kind` and `message`.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        value_to_py(py, &self.json)
    }
    fn __repr__(&self) -> String {
        format!("Event({}: {})", self.event.kind(), core::event::describe(&self.event))
    }
}
