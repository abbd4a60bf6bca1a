//! `ipvtl._ipvtl`: the native half of the `ipvtl` Python package.
//!
//! A thin layer over `ipvtl-client` (and `ipvtl-sim` for
//! `ipvtl.testing`): each class wraps a client object, every network call
//! waits with the interpreter released, errors go through one mapping
//! (`errors::to_py`). See the `runtime` module for how blocking and asyncio calls
//! wait, and for the exit hook.

mod alerts;
mod cluster;
mod convert;
mod errors;
mod events;
mod models;
mod runtime;
mod sim;

use pyo3::prelude::*;

/// Stops the asyncio executor thread (registered with `atexit` by the
/// package; safe to call more than once).
#[pyfunction]
fn _shutdown(py: Python<'_>) {
    runtime::shutdown(py)
}

/// asyncio calls started and not yet finished or dropped (for tests).
#[pyfunction]
fn _async_in_flight() -> usize {
    runtime::in_flight()
}

#[pymodule]
fn _ipvtl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<cluster::Cluster>()?;
    m.add_class::<events::EventStream>()?;
    m.add_class::<alerts::AlertWatch>()?;
    m.add_class::<models::ServerConfig>()?;
    m.add_class::<models::Channel>()?;
    m.add_class::<models::Server>()?;
    m.add_class::<models::ClusterSnapshot>()?;
    m.add_class::<models::PhaseReport>()?;
    m.add_class::<models::ActionReport>()?;
    m.add_class::<models::BatchReport>()?;
    m.add_class::<models::ReloadSummary>()?;
    m.add_class::<models::Event>()?;
    m.add_class::<sim::SimFleet>()?;
    m.add_function(wrap_pyfunction!(_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(_async_in_flight, m)?)?;
    Ok(())
}
