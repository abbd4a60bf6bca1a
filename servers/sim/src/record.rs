//! What clients sent: counts, channel commands in order, concurrency seen.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

/// How many request times a record keeps (the most recent ones).
pub const KEPT_REQUEST_TIMES: usize = 1000;
/// How many commands a record keeps (the most recent ones).
pub const KEPT_COMMANDS: usize = 100_000;

/// A channel command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// `GET /channel{N}?start`.
    Start,
    /// `GET /channel{N}?stop`.
    Stop,
}

impl Action {
    /// `start` or `stop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
        }
    }
}

/// One channel command a server received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Command {
    /// 1-based channel number.
    pub channel: u32,
    /// Start or stop.
    pub action: Action,
    /// When it arrived, since the fleet started.
    pub at: Duration,
}

/// What one server received since start (or the last reset).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerRecord {
    /// Every request read, whatever its path or answer.
    pub total_requests: u64,
    /// `GET /status` requests.
    pub status_requests: u64,
    /// Channel commands for existing channels, in arrival order (the last
    /// [`KEPT_COMMANDS`]).
    pub commands: Vec<Command>,
    /// The most requests this server had in flight at once (read, not yet
    /// answered or abandoned).
    pub max_concurrent: usize,
    /// Arrival time of each request since the fleet started (the last
    /// [`KEPT_REQUEST_TIMES`]).
    pub request_times: Vec<Duration>,
}

impl ServerRecord {
    /// The JSON form served by the control endpoint; times in milliseconds.
    /// `request_times` only when `with_times`.
    pub fn to_json(&self, with_times: bool) -> Value {
        let commands: Vec<Value> = self
            .commands
            .iter()
            .map(|c| json!({"channel": c.channel, "action": c.action.as_str(), "at_ms": ms(c.at)}))
            .collect();
        let mut v = json!({
            "total_requests": self.total_requests,
            "status_requests": self.status_requests,
            "commands": commands,
            "max_concurrent": self.max_concurrent,
        });
        if with_times {
            let times: Vec<f64> = self.request_times.iter().map(|d| ms(*d)).collect();
            v["request_times_ms"] = json!(times);
        }
        v
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The mutable record of one server.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    total_requests: u64,
    status_requests: u64,
    commands: VecDeque<Command>,
    max_concurrent: usize,
    request_times: VecDeque<Duration>,
}

/// What kind of request arrived, for the record.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Seen {
    Status,
    Command(u32, Action),
    Other,
}

impl Recorder {
    /// Notes one request arriving at `at` with `in_flight` requests (itself
    /// included) now in flight on the server.
    pub fn note(&mut self, seen: Seen, at: Duration, in_flight: usize) {
        self.total_requests += 1;
        match seen {
            Seen::Status => self.status_requests += 1,
            Seen::Command(channel, action) => {
                if self.commands.len() == KEPT_COMMANDS {
                    self.commands.pop_front();
                }
                self.commands.push_back(Command { channel, action, at });
            }
            Seen::Other => {}
        }
        if self.request_times.len() == KEPT_REQUEST_TIMES {
            self.request_times.pop_front();
        }
        self.request_times.push_back(at);
        self.max_concurrent = self.max_concurrent.max(in_flight);
    }

    pub fn snapshot(&self) -> ServerRecord {
        ServerRecord {
            total_requests: self.total_requests,
            status_requests: self.status_requests,
            commands: self.commands.iter().copied().collect(),
            max_concurrent: self.max_concurrent,
            request_times: self.request_times.iter().copied().collect(),
        }
    }

    pub fn reset(&mut self) {
        *self = Recorder::default();
    }
}

/// Counts requests in flight on a server and fleet-wide, remembering the
/// fleet-wide peak.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl InFlight {
    /// One more in flight; returns the count including it.
    pub fn enter(&self) -> usize {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        n
    }

    /// One fewer in flight.
    pub fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    /// The peak since start or the last [`InFlight::reset_peak`].
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Forgets the peak (requests still in flight count again only when
    /// new ones arrive).
    pub fn reset_peak(&self) {
        self.peak.store(0, Ordering::SeqCst);
    }
}

/// Leaves the server's and the fleet's [`InFlight`] when dropped, so a
/// cancelled or failed request is never counted forever.
pub(crate) struct InFlightGuard<'a> {
    server: &'a InFlight,
    fleet: &'a InFlight,
}

impl<'a> InFlightGuard<'a> {
    /// Enters both counters; returns the guard and the server's count.
    pub fn enter(server: &'a InFlight, fleet: &'a InFlight) -> (Self, usize) {
        let n = server.enter();
        fleet.enter();
        (InFlightGuard { server, fleet }, n)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.server.leave();
        self.fleet.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_counts_and_bounds() {
        let mut r = Recorder::default();
        for i in 0..(KEPT_REQUEST_TIMES as u64 + 5) {
            r.note(Seen::Status, Duration::from_millis(i), 1);
        }
        r.note(Seen::Command(2, Action::Stop), Duration::from_secs(9), 3);
        r.note(Seen::Command(2, Action::Start), Duration::from_secs(10), 1);
        let s = r.snapshot();
        assert_eq!(s.total_requests, KEPT_REQUEST_TIMES as u64 + 7);
        assert_eq!(s.status_requests, KEPT_REQUEST_TIMES as u64 + 5);
        assert_eq!(s.request_times.len(), KEPT_REQUEST_TIMES);
        assert_eq!(s.request_times.last(), Some(&Duration::from_secs(10)));
        assert_eq!(s.max_concurrent, 3);
        let actions: Vec<_> = s.commands.iter().map(|c| (c.channel, c.action)).collect();
        assert_eq!(actions, [(2, Action::Stop), (2, Action::Start)]);
        r.reset();
        assert_eq!(r.snapshot(), ServerRecord::default());
    }

    #[test]
    fn guard_leaves_on_drop() {
        let (server, fleet) = (InFlight::default(), InFlight::default());
        {
            let (_a, n1) = InFlightGuard::enter(&server, &fleet);
            let (_b, n2) = InFlightGuard::enter(&server, &fleet);
            assert_eq!((n1, n2), (1, 2));
        }
        assert_eq!(server.enter(), 1);
        assert_eq!(fleet.peak(), 2);
    }
}
