//! A runtime-agnostic async driver for [`Fleet`], built on `futures` only.
//!
//! The driver is dumb on purpose: it sends what the fleet asks, sleeps until
//! the fleet's next deadline, feeds answers back and hands events out. All
//! policy (caps, backoff, phases, locks) stays in the machines.
//!
//! Plug in a runtime with two small traits: [`Clock`] (now and a sleep
//! future) and [`FleetCell`] (shared access to the fleet, so that commands
//! from other tasks can reach it). After changing the fleet from outside
//! (refresh, submit, reload), send `()` on the `wake` stream so the driver
//! looks again. The driver returns when `wake` ends.

use core::future::Future;
use core::pin::Pin;
use core::task::Poll;

use futures::stream::{FuturesUnordered, Stream, StreamExt};

use crate::event::Event;
use crate::fleet::Fleet;
use crate::ids::RequestId;
use crate::time::Instant;
use crate::transport::{Response, Transport, TransportError};

/// Time for the driver: the current [`Instant`] and a sleep until one.
pub trait Clock {
    /// The sleep future.
    type Sleep: Future<Output = ()>;
    /// The current time on the driver's epoch.
    fn now(&self) -> Instant;
    /// Completes at (or soon after) `deadline`; at once if it has passed.
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;
}

/// Shared access to a [`Fleet`] (a mutex in std programs, a `RefCell` on a
/// single-threaded executor). Each call must be short: never hold it across
/// an await.
pub trait FleetCell {
    /// Runs `f` with exclusive access to the fleet.
    fn with<R>(&self, f: impl FnOnce(&mut Fleet) -> R) -> R;
}

enum Wakeup {
    Answer(RequestId, Result<Response, TransportError>),
    Timer,
    Command,
    Closed,
}

/// Runs `fleet` over `transport` until `wake` ends, calling `on_event` for
/// every event in order.
pub async fn drive<F, T, C, W, E>(fleet: &F, transport: &T, clock: &C, mut wake: W, mut on_event: E)
where
    F: FleetCell + ?Sized,
    T: Transport + ?Sized,
    C: Clock,
    W: Stream<Item = ()> + Unpin,
    E: FnMut(Event),
{
    let mut in_flight = FuturesUnordered::new();
    let mut sleep: Option<(Instant, Pin<alloc::boxed::Box<C::Sleep>>)> = None;
    loop {
        let now = clock.now();
        let deadline = fleet.with(|f| {
            f.handle_timeout(now);
            while let Some(t) = f.poll_request(now) {
                in_flight.push(async move {
                    let result = transport.send(&t.server, t.request).await;
                    (t.id, result)
                });
            }
            while let Some(e) = f.poll_event() {
                on_event(e);
            }
            f.poll_timeout()
        });
        match deadline {
            Some(d) if sleep.as_ref().map(|(at, _)| *at) != Some(d) => {
                sleep = Some((d, alloc::boxed::Box::pin(clock.sleep_until(d))));
            }
            Some(_) => {}
            None => sleep = None,
        }
        let wakeup = futures::future::poll_fn(|cx| {
            if let Poll::Ready(Some((id, result))) = in_flight.poll_next_unpin(cx) {
                return Poll::Ready(Wakeup::Answer(id, result));
            }
            match wake.poll_next_unpin(cx) {
                Poll::Ready(Some(())) => return Poll::Ready(Wakeup::Command),
                Poll::Ready(None) => return Poll::Ready(Wakeup::Closed),
                Poll::Pending => {}
            }
            if let Some((_, s)) = sleep.as_mut() {
                if s.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wakeup::Timer);
                }
            }
            Poll::Pending
        })
        .await;
        match wakeup {
            Wakeup::Answer(id, result) => {
                let now = clock.now();
                fleet.with(|f| f.handle_response(id, result, now));
            }
            Wakeup::Timer => sleep = None,
            Wakeup::Command => {}
            Wakeup::Closed => {
                fleet.with(|f| {
                    while let Some(e) = f.poll_event() {
                        on_event(e);
                    }
                });
                return;
            }
        }
    }
}
