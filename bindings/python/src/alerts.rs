//! `AlertWatch`: the client's alert watch (`ipvtl_client::alerts`) over a
//! cluster, as a blocking iterator and an async iterator of notification
//! dicts, with its active alerts, history and silences.
//!
//! Everything it returns is a wire view's serialization (`to_dict()`
//! shape): notifications are `NotificationView`s (what the dashboard's
//! receivers get), alerts `AlertView`s, history `AlertHistoryView`s,
//! silences `SilenceView`s.

use std::sync::{Arc, RwLock};

use ipvtl_client::alerts::{AlertRules, AlertWatch as Inner, SilenceInput};
use ipvtl_client::core::alert::{Notification, SilenceId};
use ipvtl_client::wire::{NotificationView, Wall};
use ipvtl_client::{ClientError, SmolClock};
use pyo3::exceptions::{PyStopAsyncIteration, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::convert::{duration, view_to_py};
use crate::errors;
use crate::runtime::{self, PyResultSend};

/// The rules from what Python gave: None (the defaults), the alerts
/// file's TOML text, or a dict of the same document
/// (`{"rules": {"server_down": {"for": 30}}, "silences": [...]}`).
pub fn rules(rules: Option<&Bound<'_, PyAny>>) -> PyResult<Result<AlertRules, ClientError>> {
    let Some(rules) = rules.filter(|r| !r.is_none()) else { return Ok(Ok(AlertRules::default())) };
    if rules.is_instance_of::<PyString>() {
        let text: String = rules.extract()?;
        return Ok(AlertRules::from_toml_str(&text));
    }
    if rules.is_instance_of::<PyDict>() {
        let json: String = rules.py().import("json")?.getattr("dumps")?.call1((rules,))?.extract()?;
        return Ok(AlertRules::from_json_str(&json));
    }
    Err(PyTypeError::new_err("rules must be None, the alerts file's TOML text, or a dict of the same document"))
}

/// Alerts evaluated over a cluster on a thread of their own
/// (`Cluster.watch_alerts()`): iterate it (blocking) or `async for` it for
/// notification dicts, in order; read its active alerts, history and
/// silences. `close()` (or the end of a `with` block) stops it; it also
/// ends when the cluster is closed.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct AlertWatch {
    inner: RwLock<Option<Arc<Inner>>>,
    clock: SmolClock,
}

fn note(n: Notification, clock: SmolClock) -> serde_json::Result<serde_json::Value> {
    serde_json::to_value(NotificationView::new(&n, None, Wall(&clock)))
}

impl AlertWatch {
    pub fn new(inner: Inner, clock: SmolClock) -> Self {
        AlertWatch { inner: RwLock::new(Some(Arc::new(inner))), clock }
    }

    fn get(&self, py: Python<'_>) -> PyResult<Arc<Inner>> {
        let guard = self.inner.read().unwrap_or_else(|p| p.into_inner());
        guard.clone().ok_or_else(|| errors::to_py(py, None, ClientError::Closed))
    }

    fn err(&self, py: Python<'_>, e: ClientError) -> PyErr {
        errors::to_py(py, Some(&self.clock), e)
    }

    fn note(&self, py: Python<'_>, n: Option<Notification>) -> PyResult<Option<Py<PyAny>>> {
        n.map(|n| view_to_py(py, note(n, self.clock))).transpose()
    }
}

#[pymethods]
impl AlertWatch {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next notification, waiting with the interpreter released.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let inner = self.get(py)?;
        let n = runtime::wait(py, async move { inner.recv().await })?;
        self.note(py, n)
    }

    /// The next notification, or None after `timeout` seconds (None: wait
    /// as long as it takes) or once the watch has ended.
    #[pyo3(signature = (timeout = None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        let limit = timeout.map(|t| duration("timeout", t).map_err(PyValueError::new_err)).transpose()?;
        let inner = self.get(py)?;
        let n = runtime::wait(py, async move { runtime::within(limit, inner.recv()).await })?;
        self.note(py, n)
    }

    /// The next notification if one is waiting, else None. Never blocks.
    fn try_next(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let n = self.get(py)?.try_recv();
        self.note(py, n)
    }

    /// An awaitable of the next notification (None once the watch ended).
    fn next_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.get(py)?;
        let clock = self.clock;
        let fut = async move { PyResultSend::Ok(inner.recv().await) };
        runtime::spawn(
            py,
            fut,
            Box::new(move |py, n| match n {
                Some(n) => view_to_py(py, note(n, clock)),
                None => Ok(py.None()),
            }),
        )
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// An awaitable of the next notification (StopAsyncIteration once ended).
    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.get(py)?;
        let clock = self.clock;
        let fut = async move {
            match inner.recv().await {
                Some(n) => PyResultSend::Ok(n),
                None => PyResultSend::Err(Box::new(|_py| PyStopAsyncIteration::new_err(()))),
            }
        };
        runtime::spawn(py, fut, Box::new(move |py, n| view_to_py(py, note(n, clock))))
    }

    /// Every active alert (pending, firing or silenced): `[{fingerprint,
    /// rule, alertname, labels, annotations, state, state_since_at,
    /// active_since_at, fired_at, silenced_by, silence_id, until_at}]`.
    fn alerts(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.get(py)?;
        view_to_py(py, serde_json::to_value(inner.alert_views()))
    }

    /// Recent ended alerts, oldest first: `[{fingerprint, rule, alertname,
    /// labels, annotations, active_since_at, fired_at, ended_at, silenced}]`.
    fn history(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.get(py)?;
        view_to_py(py, serde_json::to_value(inner.history_views()))
    }

    /// The silences in force: `[{id, matchers, ends_at, comment,
    /// created_by, created_at, origin}]` (`origin` `"file"` for those of
    /// the rules, `"api"` for those of `silence()`).
    fn silences(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.get(py)?;
        view_to_py(py, serde_json::to_value(inner.silence_views()))
    }

    /// Silences the alerts matching every one of `matchers` (`"name=value"`
    /// or `"name!=value"`) for `duration` seconds or until `ends_at` (Unix
    /// seconds), exactly one of them. Returns its id. A refused silence
    /// raises ConfigError (kind `invalid`) saying why.
    #[pyo3(signature = (matchers, *, duration = None, ends_at = None, comment = None))]
    fn silence(
        &self,
        py: Python<'_>,
        matchers: Vec<String>,
        duration: Option<f64>,
        ends_at: Option<f64>,
        comment: Option<String>,
    ) -> PyResult<u64> {
        let inner = self.get(py)?;
        let duration_ms = duration
            .map(|d| crate::convert::duration("duration", d).map(|d| d.as_millis() as u64))
            .transpose()
            .map_err(|e| self.err(py, ClientError::Invalid(e)))?;
        let input = SilenceInput { matchers, ends_at, duration_ms, comment };
        let id = inner.add_silence(input).map_err(|e| self.err(py, e))?;
        Ok(id.0)
    }

    /// Ends silence `id` now (what it held and still holds fires); False
    /// when there is no such silence in force.
    fn expire_silence(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        Ok(self.get(py)?.expire_silence(SilenceId(id)))
    }

    /// Times the watch fell behind the cluster's events and judged a
    /// fresh snapshot instead.
    #[getter]
    fn resyncs(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.get(py)?.resyncs())
    }

    /// True until the watch has ended (closed, or its cluster closed).
    #[getter]
    fn active(&self) -> bool {
        let guard = self.inner.read().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().is_some_and(|w| w.is_active())
    }

    /// Stops the watch: its thread ends; waiting readers get the end (None
    /// / StopIteration / StopAsyncIteration). Idempotent.
    fn close(&self, py: Python<'_>) {
        let taken = self.inner.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = &taken {
            w.close();
        }
        // The last handle joins the watch thread: do it detached.
        py.detach(move || drop(taken));
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) {
        self.close(py)
    }

    fn __repr__(&self) -> String {
        let guard = self.inner.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(w) => format!("AlertWatch(active={})", w.alerts().len()),
            None => "AlertWatch(closed)".into(),
        }
    }
}
