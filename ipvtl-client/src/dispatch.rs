//! Hands the driver's events out: to callers waiting for one outcome
//! (an action, a refresh, a sweep, a batch) and to every subscriber.
//! Never blocks the driver: a subscriber that falls behind loses events
//! (counted), it does not slow polling.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::channel::oneshot;
use futures::Stream;
use ipvtl_core::{ActionId, ActionReport, BatchId, BatchReport, Event, PollError, ServerId};
use smol::channel::{self, Receiver, Sender, TrySendError};

#[derive(Default)]
struct Waiters {
    actions: HashMap<ActionId, oneshot::Sender<ActionReport>>,
    refreshes: HashMap<ServerId, Vec<oneshot::Sender<Option<PollError>>>>,
    sweeps: Vec<(u64, oneshot::Sender<()>)>,
    batches: HashMap<BatchId, oneshot::Sender<BatchReport>>,
}

struct Subscriber {
    sender: Sender<Event>,
    /// Events it may hold unread; beyond, new ones are dropped for it.
    capacity: usize,
    dropped: Arc<AtomicU64>,
}

#[derive(Default)]
pub(crate) struct Dispatch {
    waiters: Mutex<Waiters>,
    subscribers: Mutex<Vec<Subscriber>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Dispatch {
    pub(crate) fn wait_action(&self, id: ActionId) -> oneshot::Receiver<ActionReport> {
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).actions.insert(id, tx);
        rx
    }

    pub(crate) fn wait_refresh(&self, server: ServerId) -> oneshot::Receiver<Option<PollError>> {
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).refreshes.entry(server).or_default().push(tx);
        rx
    }

    pub(crate) fn wait_sweep(&self, sweep: u64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).sweeps.push((sweep, tx));
        rx
    }

    pub(crate) fn wait_batch(&self, id: BatchId) -> oneshot::Receiver<BatchReport> {
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).batches.insert(id, tx);
        rx
    }

    /// A subscriber that may hold up to `capacity` unread events. Its queue
    /// grows and shrinks with what it holds (an unbounded channel, capped
    /// here), so a large cap costs nothing until it is used: a bounded
    /// channel would allocate every slot up front (16 MiB for the
    /// dashboard's 65 536 events).
    pub(crate) fn subscribe(&self, capacity: usize) -> Subscription {
        let (sender, receiver) = channel::unbounded();
        let dropped = Arc::new(AtomicU64::new(0));
        lock(&self.subscribers).push(Subscriber { sender, capacity, dropped: dropped.clone() });
        Subscription { receiver: Box::pin(receiver), dropped }
    }

    /// Called by the driver for every event, in order. Subscribers get the
    /// event before anyone waiting for it is woken, so a caller whose
    /// action just finished finds its events already in its subscription.
    pub(crate) fn on_event(&self, event: Event) {
        // The driver is the only sender, so a queue below its cap here
        // stays below it until this event is in.
        lock(&self.subscribers).retain(|s| {
            if s.sender.is_closed() {
                return false;
            }
            if s.sender.len() >= s.capacity {
                s.dropped.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            !matches!(s.sender.try_send(event.clone()), Err(TrySendError::Closed(_)))
        });
        let mut w = lock(&self.waiters);
        match event {
            Event::ActionFinished { report } => {
                if let Some(tx) = report.action.and_then(|a| w.actions.remove(&a)) {
                    let _ = tx.send(report);
                }
            }
            Event::Refreshed { server, error } => {
                for tx in w.refreshes.remove(&server).unwrap_or_default() {
                    let _ = tx.send(error.clone());
                }
            }
            Event::SweepFinished { sweep, .. } => {
                let (done, rest): (Vec<_>, Vec<_>) = w.sweeps.drain(..).partition(|(n, _)| *n == sweep);
                w.sweeps = rest;
                for (_, tx) in done {
                    let _ = tx.send(());
                }
            }
            Event::BatchFinished { report } => {
                if let Some(tx) = w.batches.remove(&report.batch) {
                    let _ = tx.send(report);
                }
            }
            _ => {}
        }
    }
}

/// A stream of the cluster's events, from the moment of subscribing.
/// Dropping it unsubscribes. If it is not read fast enough, events are
/// dropped for it (see [`Subscription::dropped`]); polling never waits.
#[derive(Debug)]
pub struct Subscription {
    receiver: Pin<Box<Receiver<Event>>>,
    dropped: Arc<AtomicU64>,
}

impl Subscription {
    /// Events lost so far because this subscriber fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The next event; `None` once the cluster has shut down.
    pub async fn recv(&self) -> Option<Event> {
        self.receiver.recv().await.ok()
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        self.receiver.try_recv().ok()
    }

    /// Stops receiving; further `recv` calls return `None`.
    pub fn close(&self) {
        self.receiver.close();
    }
}

impl Stream for Subscription {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.receiver.as_mut().poll_next(cx)
    }
}
