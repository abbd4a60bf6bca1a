//! Events for foreign code: pulled from an [`EventStream`], or pushed to a
//! foreign-implemented [`ClusterObserver`] by a watch whose
//! [`WatchHandle`] cancels on drop.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use futures::FutureExt;
use ipvtl_client::{SmolClock, Subscription};

use crate::error::{IpvtlError, ObserverError};
use crate::events::ClusterEvent;

/// Implemented by foreign code to receive events. `on_event` runs on the
/// watch's own thread, one event at a time, in order; whatever it throws
/// is counted (`WatchHandle.failures()`) and delivery goes on.
#[uniffi::export(with_foreign)]
pub trait ClusterObserver: Send + Sync {
    /// One event.
    fn on_event(&self, event: ClusterEvent) -> Result<(), ObserverError>;
}

struct WatchState {
    subscription: Subscription,
    clock: SmolClock,
    cancelled: AtomicBool,
    delivered: AtomicU64,
    failures: AtomicU64,
}

/// A running watch. `cancel()` (or dropping the handle: Kotlin `close()`,
/// Python `del`, garbage collection) stops it.
///
/// `cancel()` returns at once and never waits for the observer: a host with
/// a global lock (Python's GIL, Ruby's GVL) may hold it while calling
/// `cancel()` while the watch thread waits for it to run `on_event`, and
/// waiting there would deadlock. An event already being handed over is
/// delivered; no further one is. `is_active()` turns false once the watch
/// thread has ended.
#[derive(uniffi::Object)]
pub struct WatchHandle {
    state: Arc<WatchState>,
    thread: JoinHandle<()>,
}

impl WatchHandle {
    pub(crate) fn spawn(
        subscription: Subscription,
        clock: SmolClock,
        observer: Arc<dyn ClusterObserver>,
    ) -> Result<Arc<WatchHandle>, IpvtlError> {
        let state = Arc::new(WatchState {
            subscription,
            clock,
            cancelled: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        });
        let thread = {
            let state = state.clone();
            std::thread::Builder::new()
                .name("ipvtl-watch".into())
                .spawn(move || deliver(&state, &*observer))
                .map_err(|e| IpvtlError::Internal(format!("cannot start the watch thread: {e}")))?
        };
        Ok(Arc::new(WatchHandle { state, thread }))
    }
}

fn deliver(state: &WatchState, observer: &dyn ClusterObserver) {
    while let Some(event) = smol::block_on(state.subscription.recv()) {
        if state.cancelled.load(Ordering::SeqCst) {
            break;
        }
        let event = ClusterEvent::new(&event, &state.clock);
        // A foreign exception arrives as `Err`; the panic guard is for a
        // foreign side that breaks the call contract: it must not end the
        // thread silently, let alone unwind into foreign frames.
        match catch_unwind(AssertUnwindSafe(|| observer.on_event(event))) {
            Ok(Ok(())) => state.delivered.fetch_add(1, Ordering::Relaxed),
            _ => state.failures.fetch_add(1, Ordering::Relaxed),
        };
    }
}

#[uniffi::export]
impl WatchHandle {
    /// Stops the watch. Returns at once; idempotent.
    pub fn cancel(&self) {
        self.state.cancelled.store(true, Ordering::SeqCst);
        // Wakes the watch thread, which then sees the flag (or the end of
        // the stream) and ends.
        self.state.subscription.close();
    }

    /// True until the watch thread has ended (after `cancel()`, or when the
    /// cluster shut down).
    pub fn is_active(&self) -> bool {
        !self.thread.is_finished()
    }

    /// Events handed to the observer that it handled without error.
    pub fn delivered(&self) -> u64 {
        self.state.delivered.load(Ordering::Relaxed)
    }

    /// Events the observer threw on.
    pub fn failures(&self) -> u64 {
        self.state.failures.load(Ordering::Relaxed)
    }

    /// Events lost because the observer fell behind the cluster.
    pub fn dropped(&self) -> u64 {
        self.state.subscription.dropped()
    }
}

impl Drop for WatchHandle {
    /// Cancel on drop; the thread is left to end by itself (see `cancel`).
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Events from the moment of `Cluster.subscribe()`, pulled one at a time.
/// If not read fast enough, events are dropped for it (`dropped()`); the
/// cluster never waits for a reader.
#[derive(uniffi::Object)]
pub struct EventStream {
    inner: Subscription,
    clock: SmolClock,
}

impl EventStream {
    pub(crate) fn new(inner: Subscription, clock: SmolClock) -> Arc<Self> {
        Arc::new(EventStream { inner, clock })
    }

    fn event(&self, e: Option<ipvtl_client::Event>) -> Option<ClusterEvent> {
        e.map(|e| ClusterEvent::new(&e, &self.clock))
    }
}

#[uniffi::export]
impl EventStream {
    /// The next event; none once the cluster shut down or after `unsubscribe()`.
    pub async fn next(&self) -> Option<ClusterEvent> {
        self.event(self.inner.recv().await)
    }

    /// Waits at most `timeout_ms` for the next event.
    pub fn next_blocking(&self, timeout_ms: u64) -> Option<ClusterEvent> {
        let timeout = Duration::from_millis(timeout_ms);
        let event = smol::block_on(async {
            futures::select! {
                e = self.inner.recv().fuse() => e,
                _ = FutureExt::fuse(smol::Timer::after(timeout)) => None,
            }
        });
        self.event(event)
    }

    /// The next event if one is waiting.
    pub fn try_next(&self) -> Option<ClusterEvent> {
        self.event(self.inner.try_recv())
    }

    /// Events lost because this stream fell behind.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped()
    }

    /// Stops receiving (not `close`: Kotlin's `AutoCloseable.close()` frees
    /// the object).
    pub fn unsubscribe(&self) {
        self.inner.close()
    }
}
