//! Waiting for the client's futures from Python.
//!
//! The network work already runs on each cluster's driver thread; the
//! client's futures only wait for it. So:
//!
//! - **blocking** calls wait with the interpreter detached (`py.detach`),
//!   waking every 100 ms to let Ctrl-C through (`check_signals`);
//! - **asyncio** calls create a future on the running loop, and one executor
//!   thread owned by this module waits for the client's future and then
//!   completes the asyncio future with `loop.call_soon_threadsafe`, attached
//!   only for that call. The executor's wakers never touch Python, so
//!   nothing holding a Rust lock ever waits for the interpreter (the
//!   deadlock of awaiting these futures directly from a pyo3 `async fn`).
//!   Cancelling the asyncio future aborts the Rust future; the executor drops
//!   it on its own thread.
//! - at interpreter exit an `atexit` hook ([`shutdown`]) refuses new work,
//!   drops every task still in flight and joins the executor thread before
//!   Python tears down.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use futures::future::{AbortHandle, Abortable};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyCFunction;

/// How often a blocking wait checks for signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `next`, or `None` once `limit` has passed (no limit: as long as it
/// takes): the blocking `next(timeout=)` of the streams.
pub async fn within<T>(limit: Option<Duration>, next: impl Future<Output = Option<T>>) -> Option<T> {
    match limit {
        Some(limit) => {
            smol::future::or(next, async {
                smol::Timer::after(limit).await;
                None
            })
            .await
        }
        None => next.await,
    }
}

/// Runs `fut` to completion with the interpreter detached. Signals (Ctrl-C)
/// are checked between slices; a pending exception drops the future (with
/// the interpreter detached) and is raised.
pub fn wait<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = T> + Send,
    T: Send,
{
    let mut fut = Box::pin(fut);
    loop {
        let slice = py.detach(|| {
            smol::block_on(smol::future::or(async { Some(fut.as_mut().await) }, async {
                smol::Timer::after(SIGNAL_CHECK).await;
                None
            }))
        });
        if let Some(value) = slice {
            return Ok(value);
        }
        if let Err(e) = py.check_signals() {
            py.detach(move || drop(fut));
            return Err(e);
        }
    }
}

/// Converts a finished Rust value into the Python result (with the
/// interpreter attached).
pub type Convert<T> = Box<dyn FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send>;

struct Executor {
    executor: Arc<smol::Executor<'static>>,
    stop: smol::channel::Sender<()>,
    thread: JoinHandle<()>,
}

static EXECUTOR: Mutex<Option<Executor>> = Mutex::new(None);
static CLOSED: AtomicBool = AtomicBool::new(false);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

fn executor() -> PyResult<Arc<smol::Executor<'static>>> {
    if CLOSED.load(Ordering::SeqCst) {
        return Err(PyRuntimeError::new_err("ipvtl's async executor has shut down (interpreter exit)"));
    }
    let mut slot = lock(&EXECUTOR);
    if let Some(ex) = slot.as_ref() {
        return Ok(ex.executor.clone());
    }
    let executor = Arc::new(smol::Executor::new());
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let ex = executor.clone();
    let thread = std::thread::Builder::new()
        .name("ipvtl-asyncio".into())
        .spawn(move || {
            smol::block_on(ex.run(async move {
                let _ = stopped.recv().await;
            }))
        })
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start ipvtl's async executor thread: {e}")))?;
    *slot = Some(Executor { executor: executor.clone(), stop, thread });
    Ok(executor)
}

/// Tasks started and not yet dropped (finished, cancelled or shut down).
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::SeqCst)
}

struct InFlightGuard;

impl InFlightGuard {
    fn new() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlightGuard
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Stops the executor: refuses new work, drops every task still in flight
/// (their asyncio futures are never completed) and joins the thread. Called
/// by `atexit`; idempotent.
pub fn shutdown(py: Python<'_>) {
    CLOSED.store(true, Ordering::SeqCst);
    let Some(ex) = lock(&EXECUTOR).take() else { return };
    py.detach(move || {
        drop(ex.stop);
        let _ = ex.thread.join();
        // Dropping the executor drops the tasks left in it, and with them
        // their futures (Python references go to pyo3's release pool).
        drop(ex.executor);
    });
}

/// The callback that cancelling the asyncio future runs: aborts the Rust
/// task. Aborting only flags the task and wakes it; the executor thread
/// drops the future.
#[pyclass(frozen)]
pub struct AbortOnDone(AbortHandle);

#[pymethods]
impl AbortOnDone {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            self.0.abort();
        }
        Ok(())
    }
}

/// Completes an asyncio future from its loop's thread, unless it is done
/// (cancelled) already.
fn resolve(future: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if future.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    let method = if ok { "set_result" } else { "set_exception" };
    future.call_method1(method, (value,))?;
    Ok(())
}

/// Starts `fut` on the executor and returns an asyncio future (of the
/// running loop) that completes with `convert(result)`.
pub fn spawn<'py, T, F>(py: Python<'py>, fut: F, convert: Convert<T>) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResultSend<T>> + Send + 'static,
    T: Send + 'static,
{
    let asyncio = py.import("asyncio")?;
    let event_loop = asyncio.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    let executor = executor()?;
    let (abort, registration) = AbortHandle::new_pair();
    future.call_method1("add_done_callback", (Py::new(py, AbortOnDone(abort))?,))?;
    let resolve = PyCFunction::new_closure(py, None, None, |args, _kwargs| -> PyResult<()> {
        let (future, ok, value): (Bound<'_, PyAny>, bool, Bound<'_, PyAny>) = args.extract()?;
        resolve(&future, ok, &value)
    })?
    .unbind();
    let (event_loop, target) = (event_loop.unbind(), future.clone().unbind());
    let guard = InFlightGuard::new();
    let task: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        let _guard = guard;
        let Ok(result) = Abortable::new(fut, registration).await else {
            return; // cancelled from Python
        };
        Python::attach(|py| {
            let (ok, value) = match result.into_py(py).and_then(|v| convert(py, v)) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_any()),
            };
            // Fails only when the loop is closed: nobody is waiting then.
            let _ = event_loop.bind(py).call_method1("call_soon_threadsafe", (resolve, target, ok, value));
        });
    });
    executor.spawn(task).detach();
    Ok(future)
}

/// A result whose error is built once attached: the client's futures run
/// detached, so their errors stay Rust values until then.
pub enum PyResultSend<T> {
    /// The value.
    Ok(T),
    /// An error, turned into an exception once attached.
    Err(Box<dyn FnOnce(Python<'_>) -> PyErr + Send>),
}

impl<T> PyResultSend<T> {
    fn into_py(self, py: Python<'_>) -> PyResult<T> {
        match self {
            PyResultSend::Ok(v) => Ok(v),
            PyResultSend::Err(f) => Err(f(py)),
        }
    }
}
