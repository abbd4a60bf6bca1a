//! A virtual-time harness for [`Fleet`], after quinn's `Pair`: a fake fleet
//! of scripted IPVTL servers, a clock moved by hand, and the documented
//! driving loop run to a point in time without sleeping. It records every
//! request and event, and checks the concurrency caps at every step.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ipvtl_core::{
    ChannelId, Event, Fleet, FleetConfig, Health, Instant, RequestId, RequestKind, Response, ServerConfig, ServerId,
    TransportError,
};

/// What a fake channel is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChState {
    Idle,
    Running,
    Stopping,
}

/// One channel of a fake server, evaluated lazily at the time it is asked.
#[derive(Clone, Debug)]
pub struct FakeChannel {
    state: ChState,
    /// When a pending transition completes (stopping → idle, idle → running).
    until: Option<Instant>,
    /// When it last started running (for the uptime).
    since: Instant,
    /// Running at 0 fps until it is stopped.
    pub stalled: bool,
}

impl FakeChannel {
    pub fn new(state: ChState) -> Self {
        FakeChannel { state, until: None, since: Instant::ZERO, stalled: false }
    }

    fn settle(&mut self, now: Instant) {
        if let Some(until) = self.until {
            if now >= until {
                self.until = None;
                match self.state {
                    ChState::Stopping => self.state = ChState::Idle,
                    ChState::Idle => {
                        self.state = ChState::Running;
                        self.since = until;
                    }
                    ChState::Running => {}
                }
            }
        }
    }
}

/// What goes wrong with a fake server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answers normally.
    None,
    /// Refuses connections: `TransportError::Connect`.
    Down,
    /// Accepts and never answers: the transport gives up at the request's
    /// timeout with `TransportError::Timeout`.
    Hang,
    /// The transport itself never reports back (breaks its contract); only
    /// the core's own deadline ends the request.
    Blackhole,
    /// Answers every request with this HTTP code.
    Http(u16),
    /// Answers 200 with a truncated JSON body.
    Malformed,
    /// Answers a body larger than the cap: `TransportError::TooLarge`.
    TooLarge,
    /// Answers normally after this many extra milliseconds (a timeout if
    /// that is past the request's timeout).
    Slow(u64),
    /// Down for `period` ms, up for `period` ms, and so on (up first).
    Flapping(u64),
}

/// A scripted IPVTL server.
#[derive(Clone, Debug)]
pub struct FakeServer {
    pub channels: Vec<FakeChannel>,
    pub cpu: Vec<f32>,
    pub fault: Fault,
    /// `stop` takes this long to reach idle.
    pub stop_ms: u64,
    /// `start` takes this long to reach running.
    pub start_ms: u64,
    /// Base latency of every answer.
    pub latency_ms: u64,
    /// Every request that reached the server: (time, path).
    pub seen: Vec<(Instant, String)>,
    /// `start` is accepted but the channel never runs.
    pub start_fails: bool,
}

impl FakeServer {
    pub fn new(states: &[ChState]) -> Self {
        FakeServer {
            channels: states.iter().map(|s| FakeChannel::new(*s)).collect(),
            cpu: vec![12.0, 30.5],
            fault: Fault::None,
            stop_ms: 300,
            start_ms: 200,
            latency_ms: 5,
            seen: Vec::new(),
            start_fails: false,
        }
    }

    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }

    pub fn with_latency(mut self, ms: u64) -> Self {
        self.latency_ms = ms;
        self
    }

    pub fn with_timings(mut self, stop_ms: u64, start_ms: u64) -> Self {
        self.stop_ms = stop_ms;
        self.start_ms = start_ms;
        self
    }

    /// Channel `n` (1-based) runs at 0 fps until stopped.
    pub fn stall(&mut self, n: u32) {
        self.channels[n as usize - 1].stalled = true;
    }

    /// The channel states at `now`.
    pub fn states(&mut self, now: Instant) -> Vec<ChState> {
        self.channels
            .iter_mut()
            .map(|c| {
                c.settle(now);
                c.state
            })
            .collect()
    }

    fn status_body(&mut self, now: Instant) -> Vec<u8> {
        let mut chans = Vec::new();
        for c in &mut self.channels {
            c.settle(now);
            let (state, text) = match c.state {
                ChState::Idle => ("idle", String::new()),
                ChState::Stopping => ("stopping", String::new()),
                ChState::Running => {
                    let up = now.saturating_since(c.since).as_secs();
                    let fps = if c.stalled { 0 } else { 25 };
                    ("running", format!("{:02}:{:02}:{:02} {fps}fps@2500Kbps", up / 3600, up / 60 % 60, up % 60))
                }
            };
            chans.push(format!(r#"{{"state":"{state}","status":"{text}"}}"#));
        }
        let cpu: Vec<String> = self.cpu.iter().map(|c| c.to_string()).collect();
        format!(r#"{{"channels":[{}],"cpu":[{}]}}"#, chans.join(","), cpu.join(",")).into_bytes()
    }

    /// Handles one request sent at `now`: `None` for no answer ever, else
    /// the delay after which the transport reports, and what.
    pub fn answer(
        &mut self,
        now: Instant,
        kind: RequestKind,
        timeout: Duration,
    ) -> Option<(u64, Result<Response, TransportError>)> {
        let timeout_ms = timeout.as_millis() as u64;
        let lat = self.latency_ms;
        let slow = |delay: u64, r: Result<Response, TransportError>| {
            if delay >= timeout_ms {
                (timeout_ms, Err(TransportError::Timeout))
            } else {
                (delay, r)
            }
        };
        let down = match self.fault {
            Fault::Down => true,
            Fault::Flapping(period) => (now.as_millis() / period.max(1)) % 2 == 1,
            _ => false,
        };
        if down {
            return Some(slow(lat.min(1), Err(TransportError::Connect("connection refused".into()))));
        }
        match self.fault {
            Fault::Blackhole => {
                self.seen.push((now, kind.path()));
                return None;
            }
            Fault::Hang => {
                self.seen.push((now, kind.path()));
                return Some((timeout_ms, Err(TransportError::Timeout)));
            }
            Fault::TooLarge => {
                self.seen.push((now, kind.path()));
                return Some(slow(lat, Err(TransportError::TooLarge { limit: 1 << 20 })));
            }
            _ => {}
        }
        self.seen.push((now, kind.path()));
        if let Fault::Http(code) = self.fault {
            return Some(slow(lat, Ok(Response { code, body: b"Internal Server Error".to_vec() })));
        }
        let body = match kind {
            RequestKind::Status if self.fault == Fault::Malformed => br#"{"channels":[{"state":"runn"#.to_vec(),
            RequestKind::Status => self.status_body(now),
            RequestKind::Stop(ch) | RequestKind::Start(ch) => {
                let Some(c) = self.channels.get_mut(ch.index()) else {
                    return Some(slow(lat, Ok(Response { code: 404, body: b"no such channel".to_vec() })));
                };
                c.settle(now);
                match (kind, c.state) {
                    (RequestKind::Stop(_), ChState::Running) => {
                        c.stalled = false;
                        c.state = ChState::Stopping;
                        c.until = Some(now + Duration::from_millis(self.stop_ms));
                    }
                    // A stop cancels a start still under way.
                    (RequestKind::Stop(_), ChState::Idle) => c.until = None,
                    (RequestKind::Start(_), ChState::Idle) if self.start_fails => {}
                    (RequestKind::Start(_), ChState::Idle) if c.until.is_none() => {
                        c.until = Some(now + Duration::from_millis(self.start_ms));
                    }
                    _ => {}
                }
                b"OK".to_vec()
            }
            _ => b"?".to_vec(),
        };
        let extra = match self.fault {
            Fault::Slow(ms) => ms,
            _ => 0,
        };
        Some(slow(lat + extra, Ok(Response { code: 200, body })))
    }
}

/// Which lane a request went out in, as seen from the poller's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Sweep,
    Priority,
    Action,
}

/// One request the fleet sent.
#[derive(Clone, Debug)]
pub struct Sent {
    pub at: Instant,
    pub id: RequestId,
    pub server: ServerId,
    pub kind: RequestKind,
    pub path: String,
    pub timeout: Duration,
    pub lane: Lane,
    /// The poller's sweep number right after it was sent.
    pub sweep: u64,
    /// For a stop or start: the action holding the channel when it was sent.
    pub action: Option<ipvtl_core::ActionId>,
    /// For a stop or start: the fake channel's state when it arrived.
    pub state_at_server: Option<ChState>,
}

/// What happened to the poll schedule, in order (for model checks).
#[derive(Clone, Debug)]
pub enum Tick {
    /// Sweep `sweep` started; these servers had a poll in flight.
    SweepStart { sweep: u64, in_flight: BTreeSet<ServerId> },
    /// A poll went out.
    Sent { server: ServerId, lane: Lane, sweep: u64 },
    /// A poll's answer was fed back: good or not, and the sweep number just
    /// before.
    Done { server: ServerId, ok: bool, unreachable: bool, sweep: u64 },
}

#[derive(Debug)]
struct Flight {
    lane: Lane,
    server: ServerId,
    /// For a blackhole (no answer ever), when the core gives up on it.
    gives_up: Option<Instant>,
}

impl Flight {
    /// Still in flight at `now`: not answered yet, or blackholed and not
    /// expired by the core yet.
    fn open(&self, now: Instant) -> bool {
        self.gives_up.is_none_or(|at| at > now)
    }
}

/// The fleet, its fake servers and a virtual clock.
pub struct Harness {
    pub fleet: Fleet,
    pub config: FleetConfig,
    pub now: Instant,
    pub servers: BTreeMap<ServerId, FakeServer>,
    pub sent: Vec<Sent>,
    pub events: Vec<(Instant, Event)>,
    /// Answers scheduled: (time, sequence) → (request, result).
    answers: BTreeMap<(Instant, u64), (RequestId, Result<Response, TransportError>)>,
    flights: BTreeMap<RequestId, Flight>,
    seq: u64,
    /// Highest (sweep, priority) in flight seen.
    pub max_in_flight: (usize, usize),
    /// Health per server as told by the events (for coherence).
    pub told_health: BTreeMap<ServerId, Health>,
    /// The schedule's history.
    pub timeline: Vec<Tick>,
    last_sweep: u64,
    steps: u64,
    /// Answers every `heal_requested` as it comes (for a fleet told to
    /// confirm heals), refusing each ticket divisible by `n` (`Some(0)`:
    /// none); `None` leaves them unanswered.
    pub auto_confirm: Option<u64>,
}

impl Harness {
    /// A fleet of `servers` (ids and fakes); the first sweep starts at 0.
    pub fn new(config: FleetConfig, servers: Vec<(ServerConfig, FakeServer)>) -> Self {
        let configs: Vec<ServerConfig> = servers.iter().map(|(c, _)| c.clone()).collect();
        Harness {
            fleet: Fleet::new(config.clone(), configs, Instant::ZERO),
            config,
            now: Instant::ZERO,
            servers: servers.into_iter().map(|(c, f)| (c.id, f)).collect(),
            sent: Vec::new(),
            events: Vec::new(),
            answers: BTreeMap::new(),
            flights: BTreeMap::new(),
            seq: 0,
            max_in_flight: (0, 0),
            told_health: BTreeMap::new(),
            timeline: Vec::new(),
            last_sweep: 0,
            steps: 0,
            auto_confirm: None,
        }
    }

    /// `n` healthy servers `s1..sn` with `channels` running channels each.
    pub fn simple(config: FleetConfig, n: usize, channels: usize) -> Self {
        Self::new(config, (1..=n).map(|i| (server(i), FakeServer::new(&vec![ChState::Running; channels]))).collect())
    }

    pub fn server_mut(&mut self, id: &str) -> &mut FakeServer {
        self.servers.get_mut(id).expect("no such fake server")
    }

    /// Sends what the fleet wants sent and collects its events: steps 2 and
    /// 3 of the loop.
    pub fn pump(&mut self) {
        loop {
            let before = self.fleet.poller().in_flight();
            let Some(t) = self.fleet.poll_request(self.now) else { break };
            let after = self.fleet.poller().in_flight();
            self.note_sweep();
            let lane = if after.0 == before.0 + 1 && after.1 == before.1 {
                Lane::Sweep
            } else if after.1 == before.1 + 1 && after.0 == before.0 {
                Lane::Priority
            } else {
                assert_eq!(after, before, "a request moved the poll counters oddly");
                Lane::Action
            };
            assert!(lane == Lane::Action || t.request.kind == RequestKind::Status, "polls are /status");
            let path = t.request.path();
            let (action, state_at_server) = match t.request.kind {
                RequestKind::Stop(c) | RequestKind::Start(c) => {
                    let holders: Vec<_> = self
                        .fleet
                        .actions()
                        .into_iter()
                        .filter(|a| a.server == t.server.id && a.channel == c)
                        .map(|a| a.action)
                        .collect();
                    assert_eq!(
                        holders.len(),
                        1,
                        "a command for {} channel {c} without exactly one holder",
                        t.server.id
                    );
                    let state = self.servers.get_mut(&t.server.id).and_then(|f| {
                        let states = f.states(self.now);
                        states.get(c.index()).copied()
                    });
                    (Some(holders[0]), state)
                }
                _ => (None, None),
            };
            let fake = self.servers.get_mut(&t.server.id);
            let answer = fake.and_then(|f| f.answer(self.now, t.request.kind, t.request.timeout));
            let gives_up = match &answer {
                Some((delay, result)) => {
                    let at = self.now + Duration::from_millis(*delay);
                    self.seq += 1;
                    self.answers.insert((at, self.seq), (t.id, result.clone()));
                    None
                }
                None => Some(self.now + t.request.timeout + self.config.poller.grace),
            };
            self.flights.insert(t.id, Flight { lane, server: t.server.id.clone(), gives_up });
            if lane != Lane::Action {
                let sweep = self.fleet.poller().sweep();
                self.timeline.push(Tick::Sent { server: t.server.id.clone(), lane, sweep });
            }
            self.sent.push(Sent {
                at: self.now,
                id: t.id,
                server: t.server.id.clone(),
                kind: t.request.kind,
                path,
                timeout: t.request.timeout,
                lane,
                sweep: self.fleet.poller().sweep(),
                action,
                state_at_server,
            });
            self.check();
        }
        self.note_sweep();
        let mut asked = Vec::new();
        while let Some(e) = self.fleet.poll_event() {
            self.check_event(&e);
            if let Event::HealRequested { ticket, .. } = &e {
                asked.push(*ticket);
            }
            self.events.push((self.now, e));
        }
        self.check();
        if let (Some(n), false) = (self.auto_confirm, asked.is_empty()) {
            for ticket in asked {
                self.fleet.confirm_heal(ticket, n == 0 || ticket % n != 0, self.now);
            }
            self.pump();
        }
    }

    /// Records a sweep start (call before the new sweep's first request is
    /// recorded as in flight).
    fn note_sweep(&mut self) {
        let sweep = self.fleet.poller().sweep();
        while self.last_sweep < sweep {
            self.last_sweep += 1;
            let in_flight = self.polls_in_flight();
            self.timeline.push(Tick::SweepStart { sweep: self.last_sweep, in_flight });
        }
    }

    /// The caps, checked by the poller's counters and independently by
    /// counting what the harness has in flight.
    fn check(&mut self) {
        let caps = (self.config.poller.max_concurrent, self.config.poller.max_priority);
        let (sweep, priority) = self.fleet.poller().in_flight();
        assert!(sweep <= caps.0, "sweep polls in flight {sweep} > cap {} at {}", caps.0, self.now);
        assert!(priority <= caps.1, "priority polls in flight {priority} > cap {} at {}", caps.1, self.now);
        let now = self.now;
        let mut counted = (0, 0);
        let mut per_server: BTreeMap<&ServerId, usize> = BTreeMap::new();
        for f in self.flights.values().filter(|f| f.open(now)) {
            match f.lane {
                Lane::Sweep => counted.0 += 1,
                Lane::Priority => counted.1 += 1,
                Lane::Action => continue,
            }
            *per_server.entry(&f.server).or_default() += 1;
        }
        assert!(counted.0 <= caps.0, "harness counts {} sweep polls in flight at {now}", counted.0);
        assert!(counted.1 <= caps.1, "harness counts {} priority polls in flight at {now}", counted.1);
        for (server, n) in per_server {
            assert!(n <= 1, "{n} polls of {server} in flight at {now}");
        }
        self.max_in_flight = (self.max_in_flight.0.max(sweep), self.max_in_flight.1.max(priority));
    }

    fn check_event(&mut self, e: &Event) {
        if let Event::HealthChanged { server, from, to, .. } = e {
            let told = self.told_health.get(server).copied().unwrap_or(Health::Unknown);
            assert_eq!(*from, told, "HealthChanged of {server} from {from} but last told {told}");
            assert_ne!(from, to);
            self.told_health.insert(server.clone(), *to);
        }
    }

    /// Forgets the told health of servers that start over (after a reload).
    pub fn forget_health(&mut self, server: &ServerId) {
        self.told_health.remove(server);
    }

    /// One turn: move the clock to the next answer or timer (not past
    /// `limit`), deliver the answers due, then `handle_timeout`, pump.
    /// Returns false when nothing was due before `limit`.
    pub fn step(&mut self, limit: Instant) -> bool {
        self.steps += 1;
        assert!(self.steps < 5_000_000, "the loop does not make progress");
        let next_answer = self.answers.keys().next().map(|(at, _)| *at);
        let next_timer = self.fleet.poll_timeout();
        let next = match (next_answer, next_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(next) = next.filter(|n| *n <= limit) else {
            self.now = self.now.max(limit);
            self.fleet.handle_timeout(self.now);
            self.note_sweep();
            self.pump();
            return false;
        };
        self.now = self.now.max(next);
        while let Some(entry) = self.answers.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (id, result) = entry.remove();
            if let Some(f) = self.flights.remove(&id) {
                if f.lane != Lane::Action {
                    let ok = matches!(&result, Ok(r) if r.is_success() && ipvtl_core::parse_status(&r.body).is_ok());
                    let unreachable = matches!(
                        &result,
                        Err(TransportError::Connect(_) | TransportError::Timeout | TransportError::Io(_))
                    );
                    let sweep = self.fleet.poller().sweep();
                    self.timeline.push(Tick::Done { server: f.server, ok, unreachable, sweep });
                }
            }
            self.fleet.handle_response(id, result, self.now);
            self.pump();
        }
        self.fleet.handle_timeout(self.now);
        self.note_sweep();
        self.pump();
        true
    }

    /// Runs the loop until virtual time `t`.
    pub fn run_until(&mut self, t: Instant) {
        self.pump();
        while self.step(t) {}
    }

    /// Runs for `ms` more milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        self.run_until(self.now + Duration::from_millis(ms));
    }

    /// Runs until no action or batch is under way and no answer is pending,
    /// at most until `limit`. Returns whether it got idle.
    pub fn run_until_idle(&mut self, limit: Instant) -> bool {
        self.pump();
        loop {
            if self.fleet.is_idle() && self.answers.is_empty() {
                return true;
            }
            if !self.step(limit) {
                return self.fleet.is_idle() && self.answers.is_empty();
            }
        }
    }

    /// Submits an action now.
    pub fn submit(
        &mut self,
        server: &str,
        channel: u32,
        kind: ipvtl_core::ActionKind,
    ) -> Result<ipvtl_core::ActionId, ipvtl_core::ActionError> {
        let r = self.fleet.submit(&ServerId::from(server), ch(channel), kind, self.now);
        self.pump();
        r
    }

    /// Requests sent to `server`, as paths.
    pub fn paths_to(&self, server: &str) -> Vec<&str> {
        self.sent.iter().filter(|s| s.server.as_str() == server).map(|s| s.path.as_str()).collect()
    }

    /// Events of one kind.
    pub fn events_of(&self, kind: &str) -> Vec<&Event> {
        self.events.iter().map(|(_, e)| e).filter(|e| e.kind() == kind).collect()
    }

    /// Every action report, in finishing order.
    pub fn reports(&self) -> Vec<&ipvtl_core::ActionReport> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::ActionFinished { report } => Some(report),
                _ => None,
            })
            .collect()
    }

    /// Sweep-lane polls per sweep number.
    pub fn polls_by_sweep(&self) -> BTreeMap<u64, Vec<ServerId>> {
        let mut out: BTreeMap<u64, Vec<ServerId>> = BTreeMap::new();
        for s in self.sent.iter().filter(|s| s.lane == Lane::Sweep) {
            out.entry(s.sweep).or_default().push(s.server.clone());
        }
        out
    }

    /// Servers with a poll in flight (harness view).
    pub fn polls_in_flight(&self) -> BTreeSet<ServerId> {
        self.flights.values().filter(|f| f.lane != Lane::Action && f.open(self.now)).map(|f| f.server.clone()).collect()
    }
}

pub fn server(i: usize) -> ServerConfig {
    ServerConfig::new(format!("s{i}"), format!("192.0.2.{}", i % 250 + 1))
}

pub fn ch(n: u32) -> ChannelId {
    ChannelId::new(n).expect("channel numbers start at 1")
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn t(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// Interval 1 s, timeout 300 ms + 100 ms grace, caps 4 and 2, backoff up to
/// 8 s, offline after 2; actions: 2 s stop and start budgets, checks every
/// 100 ms, 300 ms per request.
pub fn config() -> FleetConfig {
    FleetConfig {
        poller: ipvtl_core::PollerConfig {
            interval: ms(1_000),
            timeout: ms(300),
            max_concurrent: 4,
            max_priority: 2,
            backoff_max: ms(8_000),
            offline_after: 2,
            grace: ms(100),
        },
        action: ipvtl_core::ActionConfig {
            stop_timeout: ms(2_000),
            start_timeout: ms(2_000),
            watch_interval: ms(100),
            request_timeout: ms(300),
        },
    }
}
