//! Server-sent events: every core event gets a sequence number, goes into a
//! bounded replay buffer (for `Last-Event-ID`), and out to each connected
//! client through a bounded queue. A client that falls behind is cut off
//! (it reconnects and resumes from the buffer); it never slows the pump.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use futures::Stream;
use smol::channel::{Receiver, Sender, TrySendError};

/// Events kept for `Last-Event-ID` resumption.
pub(crate) const REPLAY_LEN: usize = 1024;
/// Events queued per client before it is cut off.
const CLIENT_QUEUE: usize = 512;
/// Time between keep-alive comments.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub(crate) struct SseItem {
    pub seq: u64,
    pub kind: String,
    pub data: String,
}

impl SseItem {
    fn frame(&self) -> Bytes {
        Bytes::from(format!("id: {}\nevent: {}\ndata: {}\n\n", self.seq, self.kind, self.data))
    }
}

#[derive(Default)]
pub(crate) struct EventHub {
    inner: Mutex<HubInner>,
}

#[derive(Default)]
struct HubInner {
    last_seq: u64,
    ring: VecDeque<Arc<SseItem>>,
    clients: Vec<Sender<Arc<SseItem>>>,
}

/// What a new client gets: the events it missed and its live queue.
pub(crate) struct Attach {
    pub replay: Vec<Arc<SseItem>>,
    /// The client asked to resume from an event no longer buffered.
    pub gap: bool,
    pub live: Receiver<Arc<SseItem>>,
}

impl EventHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes one event; returns how many clients were cut off for
    /// falling behind.
    pub fn publish(&self, kind: &str, data: String) -> usize {
        let mut h = self.lock();
        h.last_seq += 1;
        let item = Arc::new(SseItem { seq: h.last_seq, kind: kind.to_string(), data });
        if h.ring.len() == REPLAY_LEN {
            h.ring.pop_front();
        }
        h.ring.push_back(item.clone());
        let before = h.clients.len();
        let mut cut = 0;
        h.clients.retain(|c| match c.try_send(item.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                c.close();
                cut += 1;
                false
            }
            Err(TrySendError::Closed(_)) => false,
        });
        debug_assert!(h.clients.len() + cut <= before);
        cut
    }

    /// Registers a client resuming after `last_id` (if given).
    pub fn attach(&self, last_id: Option<u64>) -> Attach {
        let mut h = self.lock();
        let (tx, rx) = smol::channel::bounded(CLIENT_QUEUE);
        h.clients.push(tx);
        let (replay, gap) = match last_id {
            None => (Vec::new(), false),
            Some(last) => {
                let oldest = h.ring.front().map_or(h.last_seq + 1, |i| i.seq);
                let gap = last.saturating_add(1) < oldest || last > h.last_seq;
                (h.ring.iter().filter(|i| i.seq > last).cloned().collect(), gap)
            }
        };
        Attach { replay, gap, live: rx }
    }

    pub fn clients(&self) -> usize {
        let mut h = self.lock();
        h.clients.retain(|c| !c.is_closed());
        h.clients.len()
    }
}

enum Step {
    Hello(Attach),
    Live(Receiver<Arc<SseItem>>),
}

/// The response body of `GET /api/events`.
pub(crate) fn stream(attach: Attach) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
    futures::stream::unfold(Some(Step::Hello(attach)), |step| async move {
        match step? {
            Step::Hello(a) => {
                let mut first = String::from("retry: 2000\n: ipvtl events\n\n");
                if a.gap {
                    // Too far behind for the buffer: the page must reload its state.
                    first.push_str("event: resync\ndata: {}\n\n");
                }
                let mut chunk = first.into_bytes();
                for item in &a.replay {
                    chunk.extend_from_slice(&item.frame());
                }
                Some((Ok(Bytes::from(chunk)), Some(Step::Live(a.live))))
            }
            Step::Live(rx) => {
                let next = smol::future::or(async { rx.recv().await.ok().map(Some) }, async {
                    smol::Timer::after(KEEP_ALIVE).await;
                    Some(None)
                })
                .await;
                match next {
                    Some(Some(item)) => Some((Ok(item.frame()), Some(Step::Live(rx)))),
                    Some(None) => Some((Ok(Bytes::from_static(b": keep-alive\n\n")), Some(Step::Live(rx)))),
                    // Cut off or shutting down: end the stream; the client
                    // reconnects with Last-Event-ID.
                    None => None,
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_replays_only_newer_events_and_flags_gaps() {
        let hub = EventHub::default();
        for i in 0..5 {
            hub.publish("x", format!("{i}"));
        }
        let a = hub.attach(Some(3));
        assert_eq!(a.replay.iter().map(|i| i.seq).collect::<Vec<_>>(), [4, 5]);
        assert!(!a.gap);
        for i in 0..REPLAY_LEN {
            hub.publish("x", format!("{i}"));
        }
        let b = hub.attach(Some(2));
        assert!(b.gap, "event 3 is gone from the buffer");
        assert_eq!(b.replay.len(), REPLAY_LEN);
    }

    #[test]
    fn a_client_that_does_not_read_is_cut_off_not_waited_for() {
        let hub = EventHub::default();
        let a = hub.attach(None);
        let mut cut = 0;
        for i in 0..CLIENT_QUEUE + 1 {
            cut += hub.publish("x", format!("{i}"));
        }
        assert_eq!(cut, 1);
        assert!(a.live.is_closed());
        assert_eq!(hub.clients(), 0);
    }
}
