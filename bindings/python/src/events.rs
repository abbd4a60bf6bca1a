//! `EventStream`: one subscription to a cluster's events, as a blocking
//! iterator and an async iterator.

use std::sync::Arc;

use ipvtl_client::{SmolClock, Subscription};
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;

use crate::convert::duration;
use crate::models::Event;
use crate::runtime::{self, PyResultSend};

/// Events from the moment `Cluster.events()` was called. A reader that
/// falls behind loses the oldest events (counted in `dropped`) rather than
/// slowing the cluster. Ends when closed or when the cluster shuts down.
#[pyclass(frozen, module = "ipvtl._ipvtl")]
pub struct EventStream {
    sub: Arc<Subscription>,
    clock: SmolClock,
}

impl EventStream {
    pub fn new(sub: Arc<Subscription>, clock: SmolClock) -> Self {
        EventStream { sub, clock }
    }
}

#[pymethods]
impl EventStream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next event, waiting with the interpreter released.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Event>> {
        let sub = self.sub.clone();
        let event = runtime::wait(py, async move { sub.recv().await })?;
        Ok(event.map(|e| Event::from_core(e, self.clock)))
    }

    /// The next event, or None after `timeout` seconds (None: wait as long
    /// as it takes) or once the stream has ended.
    #[pyo3(signature = (timeout = None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Event>> {
        let limit = match timeout {
            Some(t) => Some(duration("timeout", t).map_err(pyo3::exceptions::PyValueError::new_err)?),
            None => None,
        };
        let sub = self.sub.clone();
        let event = runtime::wait(py, async move { runtime::within(limit, sub.recv()).await })?;
        Ok(event.map(|e| Event::from_core(e, self.clock)))
    }

    /// The next event if one is waiting, else None. Never blocks.
    fn try_next(&self) -> Option<Event> {
        self.sub.try_recv().map(|e| Event::from_core(e, self.clock))
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// An awaitable of the next event (StopAsyncIteration once ended).
    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let sub = self.sub.clone();
        let clock = self.clock;
        let fut = async move {
            match sub.recv().await {
                Some(e) => PyResultSend::Ok(e),
                None => PyResultSend::Err(Box::new(|_py| PyStopAsyncIteration::new_err(()))),
            }
        };
        runtime::spawn(py, fut, Box::new(move |py, e| Ok(Py::new(py, Event::from_core(e, clock))?.into_any())))
    }

    /// Events lost so far because this reader fell behind.
    #[getter]
    fn dropped(&self) -> u64 {
        self.sub.dropped()
    }

    /// Ends the stream: waiting readers get the end (StopIteration /
    /// StopAsyncIteration / None). Idempotent.
    fn close(&self) {
        self.sub.close()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) {
        self.close()
    }
}
