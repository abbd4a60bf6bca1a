//! The async driver under `futures::executor::block_on`, with a fake
//! transport and a virtual clock whose sleeps complete at once.

mod harness;

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use harness::{config, ChState, FakeServer};
use ipvtl_core::driver::{drive, Clock, FleetCell};
use ipvtl_core::{
    ActionKind, ChannelId, Event, Fleet, Instant, Request, Response, ServerConfig, ServerId, Transport, TransportError,
};

#[derive(Clone, Default)]
struct VirtualClock(Arc<AtomicU64>);

/// Completes at its first poll, moving the virtual clock to its deadline.
struct Sleep {
    clock: VirtualClock,
    deadline: Instant,
}

impl std::future::Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        self.clock.0.fetch_max(self.deadline.as_millis(), Ordering::SeqCst);
        Poll::Ready(())
    }
}

impl Clock for VirtualClock {
    type Sleep = Sleep;
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.load(Ordering::SeqCst))
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep { clock: self.clone(), deadline }
    }
}

struct Fakes {
    clock: VirtualClock,
    servers: Mutex<Vec<(ServerId, FakeServer)>>,
    log: Mutex<Vec<(u64, String, String)>>,
}

#[async_trait::async_trait]
impl Transport for Fakes {
    async fn send(&self, server: &ServerConfig, request: Request) -> Result<Response, TransportError> {
        let now = self.clock.now();
        self.log.lock().unwrap().push((now.as_millis(), server.id.to_string(), request.path()));
        let mut servers = self.servers.lock().unwrap();
        let Some((_, fake)) = servers.iter_mut().find(|(id, _)| *id == server.id) else {
            return Err(TransportError::Connect("no such host".into()));
        };
        match fake.answer(now, request.kind, request.timeout) {
            Some((_, result)) => result,
            None => Err(TransportError::Timeout),
        }
    }
}

struct Cell(RefCell<Fleet>);

impl FleetCell for Cell {
    fn with<R>(&self, f: impl FnOnce(&mut Fleet) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}

/// A wake stream that stays quiet until the clock reaches `end`, then ends.
struct EndAt {
    clock: VirtualClock,
    end: Instant,
}

impl Stream for EndAt {
    type Item = ();
    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<()>> {
        if self.clock.now() >= self.end {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn drive_sends_feeds_back_and_stops_when_wake_ends() {
    let clock = VirtualClock::default();
    let ids = ["s1", "s2"];
    let configs: Vec<ServerConfig> =
        ids.iter().enumerate().map(|(i, id)| ServerConfig::new(*id, format!("192.0.2.{}", i + 1))).collect();
    let fakes = Fakes {
        clock: clock.clone(),
        servers: Mutex::new(
            ids.iter()
                .map(|id| {
                    (ServerId::from(*id), FakeServer::new(&[ChState::Running, ChState::Idle]).with_timings(150, 150))
                })
                .collect(),
        ),
        log: Mutex::new(Vec::new()),
    };
    let cell = Cell(RefCell::new(Fleet::new(config(), configs, Instant::ZERO)));
    // Unknown channel count: the restart probes first.
    let action =
        cell.0.borrow_mut().submit(&"s1".into(), ChannelId::new(1).unwrap(), ActionKind::Restart, Instant::ZERO);
    let action = action.unwrap();
    let mut events = Vec::new();
    let wake = EndAt { clock: clock.clone(), end: Instant::from_millis(5_000) };
    futures::executor::block_on(drive(&cell, &fakes, &clock, wake, |e| events.push(e)));

    // The loop ended once the wake stream did, at virtual 5 s.
    assert_eq!(clock.now(), Instant::from_millis(5_000));
    let log = fakes.log.lock().unwrap().clone();
    let s1: Vec<&str> = log.iter().filter(|(_, s, _)| s == "s1").map(|(_, _, p)| p.as_str()).collect();
    let stop = s1.iter().position(|p| *p == "/channel1?stop").expect("stop sent");
    let start = s1.iter().position(|p| *p == "/channel1?start").expect("start sent");
    assert!(stop < start);
    assert_eq!(s1.iter().filter(|p| p.contains("channel")).count(), 2);
    assert!(log.iter().any(|(_, s, p)| s == "s2" && p == "/status"));
    // Time only moves forward in the log.
    assert!(log.windows(2).all(|w| w[0].0 <= w[1].0));

    // Events in order: the action starts before it finishes, and sweeps
    // finish in sequence, one per second.
    let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
    let started = kinds.iter().position(|k| *k == "action_started").unwrap();
    let finished = kinds.iter().position(|k| *k == "action_finished").unwrap();
    assert!(started < finished, "{kinds:?}");
    let Event::ActionFinished { report } = &events[finished] else { unreachable!() };
    assert_eq!(report.action, Some(action));
    assert!(report.is_ok(), "{}", report.summary());
    let sweeps: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::SweepFinished { sweep, .. } => Some(*sweep),
            _ => None,
        })
        .collect();
    assert!(sweeps.len() >= 5, "{sweeps:?}");
    assert_eq!(sweeps, (1..=sweeps.len() as u64).collect::<Vec<_>>());
    let online = kinds.iter().position(|k| *k == "health_changed").unwrap();
    assert!(online < kinds.iter().position(|k| *k == "sweep_finished").unwrap());
    assert!(cell.0.borrow().is_idle());
    assert_eq!(report.phases.iter().map(|p| p.duration).sum::<Duration>(), report.duration());
}

#[test]
fn drive_returns_at_once_when_wake_is_already_closed() {
    let clock = VirtualClock::default();
    let fakes = Fakes { clock: clock.clone(), servers: Mutex::new(Vec::new()), log: Mutex::new(Vec::new()) };
    let cell = Cell(RefCell::new(Fleet::new(config(), Vec::new(), Instant::ZERO)));
    let mut events = Vec::new();
    futures::executor::block_on(drive(&cell, &fakes, &clock, futures::stream::empty(), |e| events.push(e)));
    // One turn: the empty first sweep ran and its event was handed out.
    assert_eq!(events.len(), 1);
    assert!(matches!(events[0], Event::SweepFinished { sweep: 1, ok: 0, .. }));
    assert_eq!(clock.now(), Instant::ZERO);
}
