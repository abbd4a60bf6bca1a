//! The exception tree and the one function that maps client errors into it.

use ipvtl_client::ClientError;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::BoundObject;

use crate::models::ActionReport;

pyo3::create_exception!(
    _ipvtl,
    IpvtlError,
    PyException,
    "Base of every ipvtl error. `kind` is a short machine-readable name."
);
pyo3::create_exception!(
    _ipvtl,
    ConfigError,
    IpvtlError,
    "A server list, a file or a setting was refused; nothing changed."
);
pyo3::create_exception!(_ipvtl, ServerNotFound, IpvtlError, "No server with that id. Nothing was sent.");
pyo3::create_exception!(
    _ipvtl,
    ChannelNotFound,
    IpvtlError,
    "Channel 0, or beyond the server's channels. Nothing was sent."
);
pyo3::create_exception!(_ipvtl, Busy, IpvtlError, "Another action holds the channel. Nothing was sent.");
pyo3::create_exception!(
    _ipvtl,
    MaintenanceError,
    IpvtlError,
    "The server is in maintenance: no actions. Nothing was sent."
);
pyo3::create_exception!(
    _ipvtl,
    ActionFailed,
    IpvtlError,
    "The action ran and failed; `report` (an ActionReport) says where and why."
);
pyo3::create_exception!(
    _ipvtl,
    TransportError,
    IpvtlError,
    "A server could not be reached or answered badly (`kind`: connect, timeout, io, http, malformed, too_large)."
);

static SERVER_UNREACHABLE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `ServerUnreachable(ActionFailed, TransportError)`: an action that failed
/// because its server could not be reached is both, so either `except`
/// catches it. Built with `type()` since `create_exception!` takes one base.
fn server_unreachable(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    SERVER_UNREACHABLE
        .get_or_try_init(py, || {
            let bases = PyTuple::new(py, [py.get_type::<ActionFailed>(), py.get_type::<TransportError>()])?;
            let namespace = PyDict::new(py);
            namespace.set_item("__module__", "ipvtl._ipvtl")?;
            namespace.set_item(
                "__doc__",
                "An action could not reach its server (connection refused, no answer in time, connection \
                 broken). Both an ActionFailed (`report`) and a TransportError: `kind` is the cause (connect, \
                 timeout, io), `unreachable` is True, `server_id` names the server.",
            )?;
            let made = py.get_type::<PyType>().call1(("ServerUnreachable", bases, namespace))?;
            Ok::<_, PyErr>(made.cast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py))
}

/// Registers the exception classes in the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("IpvtlError", py.get_type::<IpvtlError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("ServerNotFound", py.get_type::<ServerNotFound>())?;
    m.add("ChannelNotFound", py.get_type::<ChannelNotFound>())?;
    m.add("Busy", py.get_type::<Busy>())?;
    m.add("MaintenanceError", py.get_type::<MaintenanceError>())?;
    m.add("ActionFailed", py.get_type::<ActionFailed>())?;
    m.add("TransportError", py.get_type::<TransportError>())?;
    m.add("ServerUnreachable", server_unreachable(py)?)?;
    Ok(())
}

/// Sets attributes on an exception instance; an attribute that cannot be set
/// is left out rather than hiding the error itself.
fn with_attrs(py: Python<'_>, err: PyErr, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    let value = err.value(py);
    for (name, v) in attrs {
        let _ = value.setattr(*name, v.bind(py));
    }
    err
}

fn obj<'py, T>(py: Python<'py>, v: T) -> Py<PyAny>
where
    T: IntoPyObject<'py>,
{
    v.into_pyobject(py).map(|b| b.into_any().unbind()).unwrap_or_else(|_| py.None())
}

/// The one mapping from [`ClientError`] to a Python exception. Every
/// exception carries `kind` (the client's stable kind name); the others
/// carry what a script needs to react (`server_id`, `channel_id`, `report`).
pub fn to_py(py: Python<'_>, clock: Option<&ipvtl_client::SmolClock>, e: ClientError) -> PyErr {
    let message = e.to_string();
    let kind = obj(py, e.kind());
    match e {
        ClientError::Config { .. }
        | ClientError::Io { .. }
        | ClientError::Settings(_)
        | ClientError::Invalid(_)
        | ClientError::Batch(_) => with_attrs(py, ConfigError::new_err(message), &[("kind", kind)]),
        ClientError::ServerNotFound(id) => {
            with_attrs(py, ServerNotFound::new_err(message), &[("kind", kind), ("server_id", obj(py, id.as_str()))])
        }
        ClientError::ChannelNotFound { server, channel, count } => with_attrs(
            py,
            ChannelNotFound::new_err(message),
            &[
                ("kind", kind),
                ("server_id", obj(py, server.as_str())),
                ("channel_id", obj(py, channel)),
                ("count", obj(py, count)),
            ],
        ),
        ClientError::Busy { server, channel } => with_attrs(
            py,
            Busy::new_err(message),
            &[("kind", kind), ("server_id", obj(py, server.as_str())), ("channel_id", obj(py, channel.get()))],
        ),
        ClientError::Maintenance(id) => {
            with_attrs(py, MaintenanceError::new_err(message), &[("kind", kind), ("server_id", obj(py, id.as_str()))])
        }
        ClientError::ActionFailed(report) => {
            let cause = report.cause().filter(|c| c.is_unreachable()).cloned();
            let server = obj(py, report.server.as_str());
            let report = match clock {
                Some(clock) => Py::new(py, ActionReport::new(*report, *clock)).map(Py::into_any).unwrap_or(py.None()),
                None => py.None(),
            };
            match (cause, server_unreachable(py)) {
                (Some(cause), Ok(ty)) => with_attrs(
                    py,
                    PyErr::from_type(ty.clone(), message),
                    &[
                        ("kind", obj(py, cause.kind())),
                        ("report", report),
                        ("server_id", server),
                        ("unreachable", obj(py, true)),
                    ],
                ),
                _ => with_attrs(py, ActionFailed::new_err(message), &[("kind", kind), ("report", report)]),
            }
        }
        ClientError::Transport(_) => with_attrs(py, TransportError::new_err(message), &[("kind", kind)]),
        // The cluster is closed, or something failed inside ipvtl that no
        // argument caused: the base class, with the client's kind.
        ClientError::Closed | ClientError::Internal(_) => {
            with_attrs(py, IpvtlError::new_err(message), &[("kind", kind)])
        }
        // Any kind a newer client adds.
        _ => with_attrs(py, IpvtlError::new_err(message), &[("kind", kind)]),
    }
}

/// A failed poll of one server, raised by `refresh(..., raise_on_error=True)`.
pub fn poll_failed(py: Python<'_>, server: &str, error: &ipvtl_core::PollError) -> PyErr {
    with_attrs(
        py,
        TransportError::new_err(format!("{server}: {error}")),
        &[
            ("kind", obj(py, error.kind())),
            ("server_id", obj(py, server)),
            ("unreachable", obj(py, error.is_unreachable())),
        ],
    )
}
