//! `SimFleet`: the `ipvtl-sim` fleet for testing scripts offline
//! (re-exported as `ipvtl.testing.SimFleet`).

use std::path::PathBuf;

use ipvtl_sim::{Addressing, Fault, JsonForm, SimConfig, SimFleet as Inner};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use serde_json::Value;

use crate::convert::{duration, value_to_py};
use crate::errors;

/// A simulated fleet on loopback (127.20.x.y addresses, or ports of
/// 127.0.0.1), serving the IPVTL API with changing status, a visible
/// `stopping` phase, and faults set at run time. Use it as a context
/// manager; `servers` feeds `ipvtl.Cluster` directly.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct SimFleet(Inner);

fn value_err(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A fault from Python: None (clear), a name (`"hang"`, `"down"`,
/// `"http500"`, `"malformed"`, `"oversized"`, `"reset"`, `"stuck_stopping"`,
/// `"reject_commands"`, `"stalled"`, `"slow"`, `"flapping"`), or
/// `(name, seconds)` for `slow` and `flapping`.
fn fault(spec: &Bound<'_, PyAny>) -> PyResult<Option<Fault>> {
    if spec.is_none() {
        return Ok(None);
    }
    let text = if let Ok((name, seconds)) = spec.extract::<(String, f64)>() {
        let d = duration("fault duration", seconds).map_err(PyValueError::new_err)?;
        format!("{name}={}", d.as_millis())
    } else {
        spec.extract::<String>().map_err(|_| PyValueError::new_err("a fault is None, a name, or (name, seconds)"))?
    };
    text.parse::<Fault>().map(Some).map_err(value_err)
}

fn form(name: &str) -> PyResult<JsonForm> {
    match name {
        "array" => Ok(JsonForm::Array),
        "object" => Ok(JsonForm::Object),
        other => Err(PyValueError::new_err(format!("form must be \"array\" or \"object\", not {other:?}"))),
    }
}

impl SimFleet {
    fn known(&self, py: Python<'_>, id: &str) -> PyResult<()> {
        match self.0.addr(id) {
            Some(_) => Ok(()),
            None => Err(errors::to_py(py, None, ipvtl_client::ClientError::ServerNotFound(id.into()))),
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[pymethods]
impl SimFleet {
    /// Starts `count` servers with `channels` channels each. Times in
    /// seconds. `addressing`: `"ips"` (one 127.20.x.y address per server)
    /// or `"ports"` (one port of 127.0.0.1 per server).
    #[new]
    #[pyo3(signature = (count = 20, *, channels = 4, cores = 8, stopping_time = 1.5, start_delay = 0.2,
        initial_running = 0.75, seed = 1, addressing = "ips"))]
    fn new(
        py: Python<'_>,
        count: usize,
        channels: u32,
        cores: u32,
        stopping_time: f64,
        start_delay: f64,
        initial_running: f64,
        seed: u64,
        addressing: &str,
    ) -> PyResult<Self> {
        let addressing = match addressing {
            "ips" => Addressing::DistinctIps,
            "ports" => Addressing::DistinctPorts,
            other => {
                return Err(PyValueError::new_err(format!("addressing must be \"ips\" or \"ports\", not {other:?}")))
            }
        };
        let config = SimConfig::new(count)
            .with_channels(channels)
            .with_cores(cores)
            .with_stopping_time(duration("stopping_time", stopping_time).map_err(value_err)?)
            .with_start_delay(duration("start_delay", start_delay).map_err(value_err)?)
            .with_initial_running(initial_running)
            .with_seed(seed)
            .with_addressing(addressing);
        let fleet = py.detach(move || Inner::start(config)).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => value_err(e),
            _ => PyOSError::new_err(format!("cannot start the simulated fleet: {e}")),
        })?;
        Ok(SimFleet(fleet))
    }

    /// Every server as a `servers.json` entry (dicts), for `ipvtl.Cluster`.
    #[getter]
    fn servers(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = serde_json::to_value(self.0.servers()).unwrap_or(Value::Null);
        value_to_py(py, &v)
    }

    /// Server ids in order (`sim-0001`, ...).
    #[getter]
    fn ids(&self) -> Vec<String> {
        self.0.ids()
    }

    /// Channels per server.
    #[getter]
    fn channels(&self) -> u32 {
        self.0.channels()
    }

    /// `host:port` of the control endpoint (JSON over HTTP).
    #[getter]
    fn control_addr(&self) -> String {
        self.0.control_addr().to_string()
    }

    /// `(host, port)` of server `id`.
    fn addr(&self, py: Python<'_>, id: &str) -> PyResult<(String, u16)> {
        self.known(py, id)?;
        let a = self.0.addr(id).ok_or_else(|| value_err("unknown server"))?;
        Ok((a.ip().to_string(), a.port()))
    }

    fn __len__(&self) -> usize {
        self.0.len()
    }

    /// Gives server `id` a fault (see the module docs for the forms), or
    /// clears it with None. Returns once a listener change has taken effect.
    fn set_fault(&self, py: Python<'_>, id: &str, fault: &Bound<'_, PyAny>) -> PyResult<()> {
        self.known(py, id)?;
        let f = self::fault(fault)?;
        let id = id.to_string();
        py.detach(|| self.0.set_fault(&id, f));
        Ok(())
    }

    /// Gives `fault` to `round(fraction * len)` servers chosen from the
    /// seed; returns their ids.
    fn set_fault_fraction(&self, py: Python<'_>, fault: &Bound<'_, PyAny>, fraction: f64) -> PyResult<Vec<String>> {
        let f = self::fault(fault)?.ok_or_else(|| value_err("set_fault_fraction needs a fault, not None"))?;
        if !(0.0..=1.0).contains(&fraction) {
            return Err(value_err("fraction must be within 0..=1"));
        }
        Ok(py.detach(|| self.0.set_fault_fraction(f, fraction)))
    }

    /// Server `id`'s fault in text form (`"hang"`, `"slow=2000"`), or None.
    fn fault(&self, py: Python<'_>, id: &str) -> PyResult<Option<String>> {
        self.known(py, id)?;
        Ok(self.0.fault(id).map(|f| f.to_string()))
    }

    /// `{id: fault}` for every server that has one.
    fn faults(&self) -> std::collections::BTreeMap<String, String> {
        self.0.faults().into_iter().map(|(id, f)| (id, f.to_string())).collect()
    }

    /// Clears every fault.
    fn clear_faults(&self, py: Python<'_>) {
        py.detach(|| self.0.clear_faults())
    }

    /// What server `id` received: `{total_requests, status_requests,
    /// commands: [{channel, action, at_ms}], max_concurrent, request_times_ms}`.
    fn record(&self, py: Python<'_>, id: &str) -> PyResult<Py<PyAny>> {
        self.known(py, id)?;
        let v = self.0.record(id).map(|r| r.to_json(true)).unwrap_or(Value::Null);
        value_to_py(py, &v)
    }

    /// Clears every record and the fleet-wide concurrency peak.
    fn reset_records(&self) {
        self.0.reset_records()
    }

    /// The most requests in flight at once over the whole fleet.
    fn max_concurrent_total(&self) -> usize {
        self.0.max_concurrent_total()
    }

    /// Channel `channel` (1-based) of server `id` as `/status` shows it now
    /// (None for a channel beyond the count).
    fn channel_state(&self, py: Python<'_>, id: &str, channel: u32) -> PyResult<Option<String>> {
        self.known(py, id)?;
        Ok(self.0.channel_state(id, channel).map(|s| s.as_str().to_string()))
    }

    /// `servers.json` text, `form` `"array"` or `"object"`.
    #[pyo3(signature = (form = "array"))]
    fn servers_json(&self, form: &str) -> PyResult<String> {
        Ok(self.0.servers_json(self::form(form)?))
    }

    /// Writes `servers.json` for the fleet.
    #[pyo3(signature = (path, form = "array"))]
    fn write_servers_json(&self, path: PathBuf, form: &str) -> PyResult<()> {
        let form = self::form(form)?;
        self.0.write_servers_json(&path, form).map_err(|e| PyOSError::new_err(format!("{}: {e}", path.display())))
    }

    /// True until `close()`.
    #[getter]
    fn running(&self) -> bool {
        self.0.is_running()
    }

    /// Stops every server and closes its sockets. Records stay readable.
    /// Idempotent.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.0.shutdown())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) {
        self.close(py)
    }

    fn __repr__(&self) -> String {
        format!("SimFleet(servers={}, running={})", self.0.len(), self.0.is_running())
    }
}
