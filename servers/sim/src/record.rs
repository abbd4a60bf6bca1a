//! What clients sent: counts, channel commands in order, concurrency seen.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Map, Value};

/// How many request times a record keeps (the most recent ones).
pub const KEPT_REQUEST_TIMES: usize = 1000;
/// How many commands a record keeps (the most recent ones).
pub const KEPT_COMMANDS: usize = 100_000;
/// How many distinct clients a record tells apart; `/status` requests of
/// any further client count under [`OTHER_CLIENTS`].
pub const KEPT_CLIENTS: usize = 64;
/// The client of a `/status` request without a `User-Agent` (or an empty one).
pub const NO_CLIENT: &str = "-";
/// The client under which clients past [`KEPT_CLIENTS`] are counted.
pub const OTHER_CLIENTS: &str = "(other)";

// A client's index, including OTHER_CLIENTS', fits the 8 bits of a StatusArrival.
const _: () = assert!(KEPT_CLIENTS < u8::MAX as usize);

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
    /// `GET /status` requests by client: the request's `User-Agent`,
    /// [`NO_CLIENT`] without one, [`OTHER_CLIENTS`] past [`KEPT_CLIENTS`]
    /// distinct clients. The counts add up to `status_requests`.
    pub status_by_client: BTreeMap<String, u64>,
    /// Arrival times of the last [`KEPT_REQUEST_TIMES`] `GET /status`
    /// requests (of all clients together) since the fleet started, by
    /// client, each in arrival order.
    pub status_times_by_client: BTreeMap<String, Vec<Duration>>,
}

impl ServerRecord {
    /// The JSON form served by the control endpoint; times in milliseconds.
    /// `request_times_ms` and `status_times_ms_by_client` only when
    /// `with_times`.
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
            "status_by_client": self.status_by_client,
        });
        if with_times {
            let times: Vec<f64> = self.request_times.iter().map(|d| ms(*d)).collect();
            v["request_times_ms"] = json!(times);
            let by_client: Map<String, Value> = self
                .status_times_by_client
                .iter()
                .map(|(client, times)| (client.clone(), times.iter().map(|d| ms(*d)).collect()))
                .collect();
            v["status_times_ms_by_client"] = Value::Object(by_client);
        }
        v
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One `/status` arrival in 8 bytes (a record keeps a thousand per
/// server, and a fleet has up to 10 000 servers): nanoseconds since the
/// fleet started in the low 56 bits (over two years), the client's index in
/// [`Recorder::clients`] in the high 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StatusArrival(u64);

impl StatusArrival {
    const AT_BITS: u32 = 56;
    const AT_MASK: u64 = (1 << Self::AT_BITS) - 1;

    fn new(at: Duration, client: usize) -> Self {
        let nanos = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX).min(Self::AT_MASK);
        StatusArrival(nanos | (client as u64) << Self::AT_BITS)
    }

    fn at(self) -> Duration {
        Duration::from_nanos(self.0 & Self::AT_MASK)
    }

    fn client(self) -> usize {
        (self.0 >> Self::AT_BITS) as usize
    }
}

/// The mutable record of one server.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    total_requests: u64,
    status_requests: u64,
    commands: VecDeque<Command>,
    max_concurrent: usize,
    request_times: VecDeque<Duration>,
    /// Clients that asked for `/status`, interned (each key once, at most
    /// [`KEPT_CLIENTS`] + 1 of them), with their counts.
    clients: Vec<(String, u64)>,
    /// Index in `clients` of the last client: a connection's requests, and
    /// so most in a row, come from one client.
    last_client: usize,
    status_times: VecDeque<StatusArrival>,
}

/// What kind of request arrived, for the record.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Seen<'a> {
    /// `GET /status`, from the client with this `User-Agent` (empty: none).
    Status(&'a str),
    Command(u32, Action),
    Other,
}

impl Recorder {
    /// Notes one request arriving at `at` with `in_flight` requests (itself
    /// included) now in flight on the server.
    pub fn note(&mut self, seen: Seen<'_>, at: Duration, in_flight: usize) {
        self.total_requests += 1;
        match seen {
            Seen::Status(user_agent) => {
                self.status_requests += 1;
                let client = self.client(user_agent);
                self.clients[client].1 += 1;
                if self.status_times.len() == KEPT_REQUEST_TIMES {
                    self.status_times.pop_front();
                }
                self.status_times.push_back(StatusArrival::new(at, client));
            }
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

    /// The index in `clients` of the client with `user_agent`, added if
    /// new: allocates only for a client not seen before.
    fn client(&mut self, user_agent: &str) -> usize {
        let key = if user_agent.is_empty() { NO_CLIENT } else { user_agent };
        if self.clients.get(self.last_client).is_some_and(|(k, _)| k == key) {
            return self.last_client;
        }
        let find = |clients: &[(String, u64)], key: &str| clients.iter().position(|(k, _)| k == key);
        let i = match find(&self.clients, key) {
            Some(i) => i,
            None => {
                let key = if self.clients.len() < KEPT_CLIENTS { key } else { OTHER_CLIENTS };
                find(&self.clients, key).unwrap_or_else(|| {
                    self.clients.push((key.to_string(), 0));
                    self.clients.len() - 1
                })
            }
        };
        self.last_client = i;
        i
    }

    /// The whole record.
    pub fn snapshot(&self) -> ServerRecord {
        self.snapshot_with(true)
    }

    /// The record; without its request times (left empty) unless
    /// `with_times`, which spares copying them for every server of a fleet.
    pub fn snapshot_with(&self, with_times: bool) -> ServerRecord {
        let status_by_client = self.clients.iter().map(|(k, n)| (k.clone(), *n)).collect();
        let (request_times, status_times_by_client) = if with_times {
            let mut by_index: Vec<Vec<Duration>> = vec![Vec::new(); self.clients.len()];
            for a in &self.status_times {
                by_index[a.client()].push(a.at());
            }
            let by_client = self
                .clients
                .iter()
                .zip(by_index)
                .filter(|(_, times)| !times.is_empty())
                .map(|((k, _), times)| (k.clone(), times))
                .collect();
            (self.request_times.iter().copied().collect(), by_client)
        } else {
            (Vec::new(), BTreeMap::new())
        };
        ServerRecord {
            total_requests: self.total_requests,
            status_requests: self.status_requests,
            commands: self.commands.iter().copied().collect(),
            max_concurrent: self.max_concurrent,
            request_times,
            status_by_client,
            status_times_by_client,
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
            r.note(Seen::Status(""), Duration::from_millis(i), 1);
        }
        r.note(Seen::Command(2, Action::Stop), Duration::from_secs(9), 3);
        r.note(Seen::Command(2, Action::Start), Duration::from_secs(10), 1);
        let s = r.snapshot();
        assert_eq!(s.total_requests, KEPT_REQUEST_TIMES as u64 + 7);
        assert_eq!(s.status_requests, KEPT_REQUEST_TIMES as u64 + 5);
        assert_eq!(s.request_times.len(), KEPT_REQUEST_TIMES);
        assert_eq!(s.request_times.last(), Some(&Duration::from_secs(10)));
        assert_eq!(s.max_concurrent, 3);
        assert_eq!(s.status_by_client, BTreeMap::from([(NO_CLIENT.to_string(), KEPT_REQUEST_TIMES as u64 + 5)]));
        let actions: Vec<_> = s.commands.iter().map(|c| (c.channel, c.action)).collect();
        assert_eq!(actions, [(2, Action::Stop), (2, Action::Start)]);
        r.reset();
        assert_eq!(r.snapshot(), ServerRecord::default());
    }

    #[test]
    fn status_requests_are_told_apart_by_client_and_their_times_bounded() {
        let mut r = Recorder::default();
        let n = KEPT_REQUEST_TIMES as u64 + 10;
        for i in 0..n {
            let client = if i % 3 == 0 { "dash-a" } else { "dash-b" };
            r.note(Seen::Status(client), Duration::from_millis(i), 1);
            // Not a status request: counted, but no client's.
            r.note(Seen::Command(1, Action::Stop), Duration::from_millis(i), 1);
        }
        r.note(Seen::Status(""), Duration::from_secs(3600 * 24 * 365), 1);
        assert_eq!(r.clients.len(), 3, "each client interned once");
        let s = r.snapshot();
        let a = n.div_ceil(3);
        let want = BTreeMap::from([("-".to_string(), 1), ("dash-a".to_string(), a), ("dash-b".to_string(), n - a)]);
        assert_eq!(s.status_by_client, want);
        assert_eq!(s.status_by_client.values().sum::<u64>(), s.status_requests);
        let kept: usize = s.status_times_by_client.values().map(Vec::len).sum();
        assert_eq!(kept, KEPT_REQUEST_TIMES, "the last KEPT_REQUEST_TIMES status arrivals, not more");
        assert_eq!(s.status_times_by_client["-"], [Duration::from_secs(3600 * 24 * 365)]);
        let a_times = &s.status_times_by_client["dash-a"];
        assert!(a_times.windows(2).all(|w| w[1] - w[0] == Duration::from_millis(3)), "in order, a's own");
        assert_eq!(a_times.last(), Some(&Duration::from_millis((n - 1) / 3 * 3)));
        assert!(s.status_times_by_client["dash-b"].iter().all(|t| t.as_millis() % 3 != 0));

        let summary = r.snapshot_with(false);
        assert_eq!(summary.status_by_client, s.status_by_client);
        assert!(summary.request_times.is_empty() && summary.status_times_by_client.is_empty());
        r.reset();
        assert_eq!(r.snapshot(), ServerRecord::default());
    }

    #[test]
    fn clients_past_the_cap_count_together() {
        let mut r = Recorder::default();
        for i in 0..KEPT_CLIENTS + 10 {
            r.note(Seen::Status(&format!("client-{i}")), Duration::from_millis(i as u64), 1);
        }
        r.note(Seen::Status("client-0"), Duration::from_secs(1), 1);
        let s = r.snapshot();
        assert_eq!(s.status_by_client.len(), KEPT_CLIENTS + 1);
        assert_eq!(s.status_by_client[OTHER_CLIENTS], 10);
        assert_eq!(s.status_by_client["client-0"], 2);
        assert_eq!(s.status_times_by_client[OTHER_CLIENTS].len(), 10);
    }

    #[test]
    fn arrivals_pack_time_and_client() {
        let a = StatusArrival::new(Duration::new(12, 345_678_901), 64);
        assert_eq!((a.at(), a.client()), (Duration::new(12, 345_678_901), 64));
        let far = StatusArrival::new(Duration::from_secs(u64::MAX), 3);
        assert_eq!((far.at(), far.client()), (Duration::from_nanos(StatusArrival::AT_MASK), 3));
        assert_eq!(std::mem::size_of::<StatusArrival>(), 8);
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
