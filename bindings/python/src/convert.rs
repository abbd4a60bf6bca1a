//! Plain conversions: JSON values to Python objects, Python server lists to
//! JSON text, times to floats, seconds to durations.
//!
//! Conventions of the whole module: durations are float seconds; points in
//! time are float seconds since the Unix epoch (like `time.time()`).

use std::time::{Duration, UNIX_EPOCH};

use ipvtl_client::SmolClock;
use ipvtl_core::Instant;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

/// A JSON value as plain Python objects (dict, list, str, int, float, bool,
/// None).
pub fn value_to_py(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Value::Null => py.None(),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any().unbind()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any().unbind()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any().unbind()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any().unbind(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(value_to_py(py, item)?)?;
            }
            list.into_any().unbind()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(k, value_to_py(py, item)?)?;
            }
            dict.into_any().unbind()
        }
    })
}

/// Seconds, as a float.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Wall-clock time of a core instant, in seconds since the Unix epoch.
pub fn wall(clock: &SmolClock, at: Instant) -> f64 {
    clock.to_system_time(at).duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A float number of seconds from Python as a duration; refuses negative,
/// NaN and infinite values.
pub fn duration(name: &str, seconds: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{name} must be a finite number of seconds >= 0"))
}

/// JSON text of a Python list of servers: each item a dict, or anything with
/// a `to_dict()` method (such as `ServerConfig`). Validation is the core
/// parser's (`parse_servers`), so errors name the entry as for a file.
pub fn servers_json(servers: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = servers.py();
    let dumps = py.import("json")?.getattr("dumps")?;
    let mut items = Vec::new();
    for item in servers.try_iter()? {
        let item = item?;
        let item = if item.hasattr("to_dict")? { item.call_method0("to_dict")? } else { item };
        let text: String = dumps.call1((item,))?.extract()?;
        items.push(text);
    }
    Ok(format!("[{}]", items.join(",")))
}

/// An `f32` as the `f64` with the same shortest decimal form (25.47, not
/// 25.469999313354492).
pub fn f(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}
