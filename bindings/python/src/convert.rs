//! Plain conversions: wire views and JSON values to Python objects, Python
//! server lists to JSON text, seconds to durations.
//!
//! What the module returns follows the wire views (`ipvtl_client::wire`):
//! durations are integer milliseconds in `*_ms` names, points in time are
//! float seconds since the Unix epoch (like `time.time()`) in `*_at` names.
//! What it takes (settings, timeouts) is float seconds.

use std::time::Duration;

use ipvtl_client::ClientError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

/// A wire view, serialized (`serde_json::to_value(&view)`), as plain
/// Python objects: what every `to_dict()` returns. The views serialize
/// without fail (string keys only); were one not to, the error is the base
/// `IpvtlError`, not a panic.
pub fn view_to_py(py: Python<'_>, view: serde_json::Result<Value>) -> PyResult<Py<PyAny>> {
    match view {
        Ok(v) => value_to_py(py, &v),
        Err(e) => Err(crate::errors::to_py(py, None, ClientError::Internal(format!("serializing a view: {e}")))),
    }
}

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
