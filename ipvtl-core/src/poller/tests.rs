//! Table-driven tests of every poller transition, in virtual time.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::*;
use crate::event::StallReason;
use crate::ids::ChannelId;
use crate::model::{ChannelState, Health};
use crate::parse::parse_status;

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn sid(s: &str) -> ServerId {
    ServerId::from(s)
}

fn fleet(n: usize) -> Vec<ServerConfig> {
    (1..=n).map(|i| ServerConfig::new(format!("s{i}"), format!("192.0.2.{i}"))).collect()
}

/// Interval 1 s, timeout 300 ms + 100 ms grace, 2 sweep slots, 1 priority
/// slot, backoff capped at 8 s (8 sweeps), offline after 2 failures.
fn cfg() -> PollerConfig {
    PollerConfig {
        interval: ms(1_000),
        timeout: ms(300),
        max_concurrent: 2,
        max_priority: 1,
        backoff_max: ms(8_000),
        offline_after: 2,
        grace: ms(100),
    }
}

fn poller(n: usize) -> Poller {
    Poller::new(cfg(), fleet(n), Instant::ZERO)
}

/// A `/status` body with the given (state, status text) channels.
/// Channels of a `/status` body: (state, status text).
type Chans<'a> = &'a [(&'a str, &'a str)];

fn body(channels: &[(&str, &str)]) -> Vec<u8> {
    let chans: Vec<String> =
        channels.iter().map(|(state, status)| format!(r#"{{"state":"{state}","status":"{status}"}}"#)).collect();
    format!(r#"{{"channels":[{}],"cpu":[10,20]}}"#, chans.join(",")).into_bytes()
}

fn running(uptime_s: u64, fps: u32) -> String {
    format!("{:02}:{:02}:{:02} {fps}fps@2500Kbps", uptime_s / 3600, uptime_s / 60 % 60, uptime_s % 60)
}

fn ok_body(channels: &[(&str, &str)]) -> Result<Response, TransportError> {
    Ok(Response { code: 200, body: body(channels) })
}

fn ok() -> Result<Response, TransportError> {
    ok_body(&[("idle", "")])
}

fn connect() -> Result<Response, TransportError> {
    Err(TransportError::Connect("connection refused".into()))
}

fn drain(p: &mut Poller, now: Instant) -> Vec<Transmit> {
    let mut out = Vec::new();
    while let Some(r) = p.poll_request(now) {
        out.push(r);
    }
    out
}

fn names(reqs: &[Transmit]) -> Vec<&str> {
    reqs.iter().map(|r| r.server.id.as_str()).collect()
}

fn events(p: &mut Poller) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(e) = p.poll_event() {
        out.push(e);
    }
    out
}

fn sweeps_finished(evs: &[Event]) -> Vec<(u64, u64, usize, usize, usize)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::SweepFinished { sweep, duration, ok, failed, skipped } => {
                Some((*sweep, duration.as_millis() as u64, *ok, *failed, *skipped))
            }
            _ => None,
        })
        .collect()
}

fn health_changes(evs: &[Event]) -> Vec<(String, Health, Health)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::HealthChanged { server, from, to, .. } => Some((server.to_string(), *from, *to)),
            _ => None,
        })
        .collect()
}

/// Answers every request of `reqs` with `result` at `now`.
fn answer_all(p: &mut Poller, reqs: &[Transmit], now: Instant, result: impl Fn() -> Result<Response, TransportError>) {
    for r in reqs {
        p.handle_response(r.id, result(), now);
    }
}

/// Runs one sweep of a one-server poller at its due time, answering with
/// `result` at once. Returns whether the server was polled.
fn one_sweep(p: &mut Poller, result: Result<Response, TransportError>) -> bool {
    let now = p.poll_timeout().unwrap();
    p.handle_timeout(now);
    let reqs = drain(p, now);
    assert!(reqs.len() <= 1);
    let polled = !reqs.is_empty();
    if let Some(r) = reqs.first() {
        p.handle_response(r.id, result, now);
    }
    polled
}

#[test]
fn first_sweep_polls_everyone_with_status_requests() {
    let mut p = poller(2);
    assert_eq!(p.sweep(), 0);
    assert_eq!(p.poll_timeout(), Some(Instant::ZERO));
    let reqs = drain(&mut p, Instant::ZERO);
    assert_eq!(names(&reqs), ["s1", "s2"]);
    assert_eq!(p.sweep(), 1);
    for r in &reqs {
        assert_eq!(r.request.kind, RequestKind::Status);
        assert_eq!(r.request.timeout, ms(300));
        assert_eq!(r.request.path(), "/status");
    }
    assert_ne!(reqs[0].id, reqs[1].id);
    // Deadline of the polls: timeout + grace.
    assert_eq!(p.poll_timeout(), Some(t(400)));
}

#[test]
fn sweep_interval_is_measured_from_sweep_start() {
    // (answer latency in ms, expected start of the next sweep)
    let table: &[(u64, u64)] = &[(0, 1_000), (50, 1_000), (250, 1_000)];
    for &(latency, next) in table {
        let mut p = poller(1);
        let reqs = drain(&mut p, t(0));
        p.handle_response(reqs[0].id, ok(), t(latency));
        assert_eq!(p.poll_timeout(), Some(t(next)), "latency {latency}");
        assert!(drain(&mut p, t(next - 1)).is_empty(), "no sweep before its time");
        p.handle_timeout(t(next - 1));
        assert_eq!(p.sweep(), 1);
        assert_eq!(drain(&mut p, t(next)).len(), 1);
        assert_eq!(p.sweep(), 2);
    }
}

#[test]
fn late_sweep_start_moves_the_next_one() {
    let mut p = poller(1);
    let reqs = drain(&mut p, t(0));
    p.handle_response(reqs[0].id, ok(), t(10));
    // The driver wakes late, at 1 700: the sweep starts then, and the next
    // one is an interval after that.
    let reqs = drain(&mut p, t(1_700));
    assert_eq!(reqs.len(), 1);
    p.handle_response(reqs[0].id, ok(), t(1_710));
    assert_eq!(p.poll_timeout(), Some(t(2_700)));
}

#[test]
fn next_sweep_waits_while_the_queue_is_not_drained() {
    let mut p = Poller::new(PollerConfig { max_concurrent: 1, timeout: ms(5_000), ..cfg() }, fleet(3), Instant::ZERO);
    let first = drain(&mut p, t(0));
    assert_eq!(names(&first), ["s1"]);
    // The interval passes while s2 and s3 still wait for the one slot.
    p.handle_timeout(t(1_500));
    assert!(drain(&mut p, t(1_500)).is_empty());
    assert_eq!(p.sweep(), 1, "no new sweep while the queue is not drained");
    // Only the poll deadline is a timer now, not the overdue sweep.
    assert_eq!(p.poll_timeout(), Some(t(5_100)));
    p.handle_response(first[0].id, ok(), t(1_600));
    let second = drain(&mut p, t(1_600));
    assert_eq!(names(&second), ["s2"]);
    assert_eq!(p.sweep(), 1);
    p.handle_response(second[0].id, ok(), t(1_700));
    let third = drain(&mut p, t(1_700));
    assert_eq!(names(&third), ["s3"]);
    // s3 left the queue: the queue is drained, and the overdue sweep 2
    // starts on the next call. s3 is in flight: its answer counts for
    // sweep 2 as well, and no second request is sent.
    assert!(drain(&mut p, t(1_700)).is_empty());
    assert_eq!(p.sweep(), 2);
    p.handle_response(third[0].id, ok(), t(1_800));
    let next = drain(&mut p, t(1_800));
    assert_eq!(names(&next), ["s1"]);
    p.handle_response(next[0].id, ok(), t(1_850));
    let next = drain(&mut p, t(1_850));
    assert_eq!(names(&next), ["s2"]);
    p.handle_response(next[0].id, ok(), t(1_900));
    let evs = sweeps_finished(&events(&mut p));
    // (sweep, duration, ok, failed, skipped)
    assert_eq!(evs, [(1, 1_800, 3, 0, 0), (2, 200, 3, 0, 0)]);
    assert_eq!(p.poll_timeout(), Some(t(2_700)));
}

#[test]
fn sweep_lane_respects_the_cap() {
    // (max_concurrent, servers, requests sent at once)
    let table: &[(usize, usize, usize)] = &[(1, 5, 1), (2, 5, 2), (5, 5, 5), (8, 5, 5)];
    for &(cap, n, expected) in table {
        let mut p = Poller::new(PollerConfig { max_concurrent: cap, ..cfg() }, fleet(n), Instant::ZERO);
        let mut reqs = drain(&mut p, t(0));
        assert_eq!(reqs.len(), expected, "cap {cap}");
        assert_eq!(p.in_flight(), (expected, 0));
        let mut polled = names(&reqs).iter().map(|s| String::from(*s)).collect::<Vec<_>>();
        let mut now = 0;
        while let Some(r) = reqs.pop() {
            now += 10;
            p.handle_response(r.id, ok(), t(now));
            let more = drain(&mut p, t(now));
            assert!(more.len() <= 1);
            polled.extend(more.iter().map(|r| r.server.id.to_string()));
            reqs.extend(more);
            assert!(p.in_flight().0 <= cap);
        }
        polled.sort();
        let mut all: Vec<String> = fleet(n).into_iter().map(|s| s.id.to_string()).collect();
        all.sort();
        assert_eq!(polled, all, "every server once");
    }
}

#[test]
fn refresh_jumps_the_queue_and_counts_for_the_sweep() {
    let mut p = poller(5);
    let sweep = drain(&mut p, t(0));
    assert_eq!(names(&sweep), ["s1", "s2"]);
    assert!(p.refresh(&sid("s5")));
    let prio = drain(&mut p, t(10));
    assert_eq!(names(&prio), ["s5"], "the refresh goes before s3 and s4, beyond the full sweep lane");
    assert_eq!(p.in_flight(), (2, 1));
    p.handle_response(prio[0].id, ok(), t(20));
    let evs = events(&mut p);
    assert_eq!(evs.iter().filter(|e| matches!(e, Event::Refreshed { .. })).count(), 1);
    assert!(evs.contains(&Event::Refreshed { server: sid("s5"), error: None }));
    // The rest of the sweep: s5 is not polled again.
    let mut rest = Vec::new();
    for r in sweep {
        p.handle_response(r.id, ok(), t(30));
        rest.extend(drain(&mut p, t(30)));
    }
    assert_eq!(names(&rest), ["s3", "s4"]);
    answer_all(&mut p, &rest, t(40), ok);
    assert!(drain(&mut p, t(40)).is_empty());
    assert_eq!(sweeps_finished(&events(&mut p)), [(1, 40, 5, 0, 0)]);
}

#[test]
fn refresh_outside_a_sweep_does_not_count_for_it() {
    let mut p = poller(1);
    let r = drain(&mut p, t(0));
    p.handle_response(r[0].id, ok(), t(10));
    assert_eq!(sweeps_finished(&events(&mut p)), [(1, 10, 1, 0, 0)]);
    p.refresh(&sid("s1"));
    let r = drain(&mut p, t(500));
    assert_eq!(names(&r), ["s1"]);
    assert_eq!(p.in_flight(), (0, 1));
    p.handle_response(r[0].id, connect(), t(510));
    let evs = events(&mut p);
    assert_eq!(
        evs,
        [Event::Refreshed {
            server: sid("s1"),
            error: Some(PollError::Connect { message: "connection refused".into() })
        }]
    );
    assert_eq!(p.sweep(), 1);
}

#[test]
fn priority_lane_has_its_own_cap() {
    let mut p = Poller::new(PollerConfig { max_priority: 2, ..cfg() }, fleet(6), Instant::ZERO);
    let sweep = drain(&mut p, t(0));
    assert_eq!(sweep.len(), 2);
    for s in ["s3", "s4", "s5", "s6"] {
        p.refresh(&sid(s));
    }
    let prio = drain(&mut p, t(1));
    assert_eq!(names(&prio), ["s3", "s4"]);
    assert_eq!(p.in_flight(), (2, 2));
    p.handle_response(prio[0].id, ok(), t(2));
    assert_eq!(names(&drain(&mut p, t(2))), ["s5"]);
    assert_eq!(p.in_flight(), (2, 2));
}

#[test]
fn refresh_bypasses_backoff() {
    let mut p = poller(1);
    assert!(one_sweep(&mut p, connect()));
    assert!(one_sweep(&mut p, connect()));
    let _ = events(&mut p);
    let now = p.poll_timeout().unwrap();
    p.handle_timeout(now);
    assert!(drain(&mut p, now).is_empty(), "two failures: sweep 3 is sat out");
    assert_eq!(p.sweep(), 3);
    assert!(p.refresh(&sid("s1")));
    let r = drain(&mut p, now);
    assert_eq!(names(&r), ["s1"]);
    assert_eq!(p.in_flight(), (0, 1));
    p.handle_response(r[0].id, ok(), now);
    let evs = events(&mut p);
    assert!(evs.contains(&Event::Refreshed { server: sid("s1"), error: None }));
    assert_eq!(health_changes(&evs), [(String::from("s1"), Health::Offline, Health::Online)]);
}

#[test]
fn refresh_of_a_server_in_flight_attaches_to_that_poll() {
    let mut p = poller(1);
    let r = drain(&mut p, t(0));
    assert!(p.refresh(&sid("s1")));
    assert!(p.refresh(&sid("s1")), "a second ask merges");
    assert!(drain(&mut p, t(10)).is_empty(), "no second poll while one is in flight");
    assert_eq!(p.in_flight(), (1, 0));
    p.handle_response(r[0].id, ok(), t(20));
    let evs = events(&mut p);
    let refreshed = evs.iter().filter(|e| matches!(e, Event::Refreshed { .. })).count();
    assert_eq!(refreshed, 1);
    assert!(drain(&mut p, t(30)).is_empty(), "the merged refresh was served");
    assert!(!p.refresh(&sid("nope")));
}

#[test]
fn every_sweep_started_during_a_slow_poll_waits_for_its_answer() {
    let mut p = poller(2);
    let first = drain(&mut p, t(0));
    assert_eq!(names(&first), ["s1", "s2"]);
    p.handle_response(first[1].id, ok(), t(5));
    assert_eq!(sweeps_finished(&events(&mut p)), []);
    // Three sweeps asked for while s1 is still answering: each sends s2
    // again, none sends s1 again, and none ends before s1 answers.
    let mut numbers = Vec::new();
    for at in [10, 20, 30] {
        numbers.push(p.sweep_now(t(at)));
        let sent = drain(&mut p, t(at));
        assert_eq!(names(&sent), ["s2"], "sweep at {at} ms");
        p.handle_response(sent[0].id, ok(), t(at + 1));
    }
    assert_eq!(numbers, [2, 3, 4]);
    assert_eq!(sweeps_finished(&events(&mut p)), [], "all four wait for s1");
    p.handle_response(first[0].id, ok(), t(40));
    let done = sweeps_finished(&events(&mut p));
    assert_eq!(done, [(1, 40, 2, 0, 0), (2, 30, 2, 0, 0), (3, 20, 2, 0, 0), (4, 10, 2, 0, 0)]);
}

#[test]
fn backoff_skips_1_3_7_then_caps() {
    let mut p = poller(1);
    let mut polled = Vec::new();
    for sweep in 1..=40u64 {
        if one_sweep(&mut p, connect()) {
            polled.push(sweep);
        }
        assert_eq!(p.sweep(), sweep);
    }
    // Fails at 1 (skip 0), 2 (skip 1), 4 (skip 3), 8 (skip 7), then every
    // 8th sweep: backoff_max 8 s / interval 1 s.
    assert_eq!(polled, [1, 2, 4, 8, 16, 24, 32, 40]);
    let skipped: Vec<usize> = sweeps_finished(&events(&mut p)).iter().map(|s| s.4).collect();
    assert_eq!(skipped.len(), 40);
    assert_eq!(skipped.iter().filter(|s| **s == 1).count(), 32);
}

#[test]
fn backoff_formula() {
    let i = ms(1_000);
    let table: &[(u32, u64, u64)] =
        &[(0, 8_000, 0), (1, 8_000, 0), (2, 8_000, 1), (3, 8_000, 3), (4, 8_000, 7), (5, 8_000, 7), (40, 8_000, 7)];
    for &(failures, max, skips) in table {
        assert_eq!(schedule::backoff_skips(failures, i, ms(max)), skips, "failures {failures}");
    }
    // backoff_max below the interval: never skip.
    assert_eq!(schedule::backoff_skips(9, i, ms(500)), 0);
    assert_eq!(schedule::backoff_skips(9, Duration::ZERO, ms(500)), 0);
    assert_eq!(schedule::backoff_skips(u32::MAX, i, Duration::MAX), u64::from(u32::MAX));
}

#[test]
fn a_good_answer_ends_the_backoff() {
    let mut p = poller(1);
    for _ in 0..4 {
        p.refresh(&sid("s1"));
        let now = p.poll_timeout().unwrap().max(t(1));
        let r = drain(&mut p, now);
        p.handle_response(r[0].id, connect(), now);
    }
    assert!(p.state(&sid("s1")).unwrap().consecutive_failures >= 4);
    p.refresh(&sid("s1"));
    let r = drain(&mut p, t(5_000));
    p.handle_response(r[0].id, ok(), t(5_000));
    // Back online: every following sweep polls it again.
    for _ in 0..3 {
        assert!(one_sweep(&mut p, ok()));
    }
}

#[test]
fn hysteresis_needs_offline_after_failures_in_a_row() {
    // (offline_after, outcomes: true = good, expected health after each)
    type Row = (u32, &'static [bool], &'static [Health]);
    use Health::*;
    let table: &[Row] = &[
        (1, &[false], &[Offline]),
        (2, &[false, false], &[Unknown, Offline]),
        (2, &[true, false, false], &[Online, Online, Offline]),
        (
            3,
            &[true, false, false, true, false, false, false],
            &[Online, Online, Online, Online, Online, Online, Offline],
        ),
        (2, &[false, false, true, false], &[Unknown, Offline, Online, Online]),
        (0, &[true, false], &[Online, Offline]),
    ];
    for &(offline_after, outcomes, expected) in table {
        let mut p = Poller::new(PollerConfig { offline_after, ..cfg() }, fleet(1), Instant::ZERO);
        let mut seen = Vec::new();
        let mut last = Unknown;
        for (i, good) in outcomes.iter().enumerate() {
            p.refresh(&sid("s1"));
            let now = t(10 * i as u64);
            let r = drain(&mut p, now);
            let id = r.last().unwrap().id;
            p.handle_response(id, if *good { ok() } else { connect() }, now);
            // Answer the sweep poll too, if one went out, the same way.
            if r.len() > 1 {
                p.handle_response(r[0].id, if *good { ok() } else { connect() }, now);
            }
            seen.push(p.state(&sid("s1")).unwrap().health);
            for (_, from, to) in health_changes(&events(&mut p)) {
                assert_eq!(from, last, "events chain");
                last = to;
            }
        }
        assert_eq!(seen, expected, "offline_after {offline_after}, outcomes {outcomes:?}");
        assert_eq!(last, *expected.last().unwrap());
    }
}

#[test]
fn failures_are_classified_offline_or_error() {
    type Row = (&'static str, fn() -> Result<Response, TransportError>, Health, &'static str);
    let table: &[Row] = &[
        ("connect", connect, Health::Offline, "connect"),
        ("timeout", || Err(TransportError::Timeout), Health::Offline, "timeout"),
        ("io", || Err(TransportError::Io("reset by peer".into())), Health::Offline, "io"),
        ("invalid", || Err(TransportError::Invalid("bad host".into())), Health::Offline, "connect"),
        ("500", || Ok(Response { code: 500, body: b"oops".to_vec() }), Health::Error, "http"),
        ("404", || Ok(Response { code: 404, body: Vec::new() }), Health::Error, "http"),
        ("malformed", || Ok(Response { code: 200, body: b"{\"channels\": [".to_vec() }), Health::Error, "malformed"),
        ("not an object", || Ok(Response { code: 200, body: b"[1,2]".to_vec() }), Health::Error, "malformed"),
        ("empty body", || Ok(Response { code: 200, body: Vec::new() }), Health::Error, "malformed"),
        ("too large", || Err(TransportError::TooLarge { limit: 1 << 20 }), Health::Error, "too_large"),
    ];
    for &(name, result, health, kind) in table {
        let mut p = poller(1);
        let r = drain(&mut p, t(0));
        p.handle_response(r[0].id, result(), t(100));
        assert_eq!(p.state(&sid("s1")).unwrap().health, Health::Unknown, "{name}: one failure is not enough");
        p.refresh(&sid("s1"));
        let r = drain(&mut p, t(200));
        p.handle_response(r[0].id, result(), t(300));
        let state = p.state(&sid("s1")).unwrap().clone();
        assert_eq!(state.health, health, "{name}");
        assert_eq!(state.error.as_ref().unwrap().kind(), kind, "{name}");
        assert_eq!(state.consecutive_failures, 2);
        assert_eq!(state.latency, Some(ms(100)));
        let evs = events(&mut p);
        let change = evs.iter().find_map(|e| match e {
            Event::HealthChanged { from, to, error, .. } => Some((*from, *to, error.clone())),
            _ => None,
        });
        assert_eq!(change, Some((Health::Unknown, health, state.error.clone())), "{name}");
    }
}

#[test]
fn poll_errors_carry_details() {
    let table: &[(Result<Response, TransportError>, PollError)] = &[
        (Err(TransportError::Timeout), PollError::Timeout { after_ms: 300 }),
        (Err(TransportError::TooLarge { limit: 77 }), PollError::TooLarge { limit: 77 }),
        (Ok(Response { code: 503, body: Vec::new() }), PollError::Http { code: 503 }),
        (connect(), PollError::Connect { message: "connection refused".into() }),
    ];
    for (result, expected) in table {
        assert_eq!(classify(result.clone(), ms(300), None).unwrap_err(), *expected);
    }
    let Err(PollError::Malformed { message }) =
        classify(Ok(Response { code: 200, body: b"{".to_vec() }), ms(300), None)
    else {
        panic!("expected malformed")
    };
    assert!(message.contains("line 1 column 1"), "{message}");
    // Any 2xx with a good body is fine.
    assert!(classify(Ok(Response { code: 204, body: b"{}".to_vec() }), ms(300), None).is_ok());
}

#[test]
fn a_failed_poll_keeps_the_last_good_status_as_stale() {
    let mut p = poller(1);
    let r = drain(&mut p, t(0));
    let good = ok_body(&[("running", &running(3_723, 25))]);
    p.handle_response(r[0].id, good, t(40));
    let state = p.state(&sid("s1")).unwrap().clone();
    assert!(!state.is_stale());
    assert_eq!(state.last_ok_at, Some(t(40)));
    assert_eq!(state.latency, Some(ms(40)));
    assert_eq!(state.status_age(t(40)), Some(Duration::ZERO));
    let kept = state.status.clone().unwrap();
    assert_eq!(kept.channels[0].stats.unwrap().uptime_s, 3_723);

    let r = drain(&mut p, t(1_000));
    p.handle_response(r[0].id, Err(TransportError::Io("reset".into())), t(1_100));
    let state = p.state(&sid("s1")).unwrap();
    assert_eq!(state.status.as_ref(), Some(&kept), "the last good status survives");
    assert!(state.is_stale());
    assert_eq!(state.health, Health::Online, "one failure: hysteresis holds");
    assert_eq!(state.last_ok_at, Some(t(40)));
    assert_eq!(state.last_poll_at, Some(t(1_100)));
    assert_eq!(state.status_age(t(1_500)), Some(ms(1_460)));
    assert_eq!(state.error, Some(PollError::Io { message: "reset".into() }));

    // Malformed answer: same.
    let r = drain(&mut p, t(2_000));
    p.handle_response(r[0].id, Ok(Response { code: 200, body: b"garbage".to_vec() }), t(2_010));
    let state = p.state(&sid("s1")).unwrap();
    assert_eq!(state.status.as_ref(), Some(&kept));
    assert_eq!(state.health, Health::Error);
    assert_eq!(state.status_age(t(2_040)), Some(ms(2_000)));
}

#[test]
fn never_polled_server_is_unknown_without_status() {
    let p = poller(1);
    let state = p.state(&sid("s1")).unwrap();
    assert_eq!(state.health, Health::Unknown);
    assert!(!state.is_stale());
    assert_eq!(state.status_age(t(100)), None);
    assert!(p.state(&sid("s9")).is_none());
    assert_eq!(p.len(), 1);
    assert!(!p.is_empty());
}

#[test]
fn health_recovers_on_one_good_answer() {
    let mut p = poller(1);
    for i in 0..2 {
        p.refresh(&sid("s1"));
        let r = drain(&mut p, t(i));
        for r in &r {
            p.handle_response(r.id, Err(TransportError::Timeout), t(i));
        }
    }
    assert_eq!(p.state(&sid("s1")).unwrap().health, Health::Offline);
    let _ = events(&mut p);
    p.refresh(&sid("s1"));
    let r = drain(&mut p, t(50));
    p.handle_response(r[0].id, ok(), t(60));
    let state = p.state(&sid("s1")).unwrap();
    assert_eq!(state.health, Health::Online);
    assert_eq!(state.consecutive_failures, 0);
    assert_eq!(state.error, None);
    let evs = events(&mut p);
    assert_eq!(
        evs[0],
        Event::HealthChanged { server: sid("s1"), from: Health::Offline, to: Health::Online, error: None }
    );
}

#[test]
fn core_gives_up_on_a_transport_that_never_answers() {
    let mut p = poller(2);
    let r = drain(&mut p, t(0));
    p.handle_response(r[1].id, ok(), t(10));
    assert_eq!(p.poll_timeout(), Some(t(400)));
    p.handle_timeout(t(399));
    assert_eq!(p.in_flight(), (1, 0), "not yet: timeout + grace");
    p.handle_timeout(t(400));
    assert_eq!(p.in_flight(), (0, 0));
    let state = p.state(&sid("s1")).unwrap().clone();
    assert_eq!(state.error, Some(PollError::Timeout { after_ms: 300 }));
    assert_eq!(state.consecutive_failures, 1);
    assert_eq!(state.latency, Some(ms(400)));
    assert_eq!(sweeps_finished(&events(&mut p)), [(1, 400, 1, 1, 0)]);
    // The answer that finally comes is ignored.
    p.handle_response(r[0].id, ok(), t(450));
    assert_eq!(p.state(&sid("s1")).unwrap(), &state);
    assert!(events(&mut p).is_empty());
    assert_eq!(p.in_flight(), (0, 0));
}

#[test]
fn unknown_and_duplicate_responses_are_ignored() {
    let mut p = poller(1);
    let r = drain(&mut p, t(0));
    p.handle_response(RequestId(9_999), connect(), t(1));
    assert_eq!(p.in_flight(), (1, 0));
    assert_eq!(p.state(&sid("s1")).unwrap().last_poll_at, None);
    p.handle_response(r[0].id, ok(), t(2));
    let state = p.state(&sid("s1")).unwrap().clone();
    p.handle_response(r[0].id, connect(), t(3));
    assert_eq!(p.state(&sid("s1")).unwrap(), &state);
    assert_eq!(p.in_flight(), (0, 0));
}

#[test]
fn reload_keeps_resets_and_drops() {
    let mut p = Poller::new(PollerConfig { max_concurrent: 2, timeout: ms(5_000), ..cfg() }, fleet(5), t(0));
    let first = drain(&mut p, t(0));
    assert_eq!(names(&first), ["s1", "s2"]);
    p.handle_response(first[0].id, ok(), t(10));
    let second = drain(&mut p, t(10));
    assert_eq!(names(&second), ["s3"]);
    // In flight: s2, s3. Queued: s4, s5. Polled: s1.
    let mut next = fleet(5);
    next.remove(4); // s5 (queued) goes away
    next.remove(2); // s3 (in flight) goes away
    next[1].host = "198.51.100.2".into(); // s2 (in flight) moves
    next[0].name = "renamed".into(); // s1 stays: a new name keeps the state
    next.push(ServerConfig::new("s6", "192.0.2.6"));
    let summary = p.reload(next, t(20));
    assert_eq!(summary.kept, 2);
    assert_eq!(summary.added, [sid("s6")]);
    assert_eq!(summary.changed, [sid("s2")]);
    assert_eq!(summary.removed, [sid("s3"), sid("s5")]);
    assert_eq!(p.len(), 4);
    assert_eq!(p.server(&sid("s1")).unwrap().name, "renamed");
    assert_eq!(p.state(&sid("s1")).unwrap().health, Health::Online, "kept state");
    assert_eq!(p.state(&sid("s2")).unwrap(), &ServerState::default(), "changed starts over");
    assert!(p.state(&sid("s3")).is_none());
    assert_eq!(p.in_flight(), (0, 0), "polls of removed and changed servers are dropped");
    // The new and changed servers are polled at once in the priority lane;
    // s4 (still queued) in the sweep lane.
    let mut reqs = drain(&mut p, t(20));
    reqs.sort_by(|a, b| a.server.id.cmp(&b.server.id));
    assert_eq!(names(&reqs), ["s2", "s4"], "one priority slot: s6 waits behind s2");
    assert_eq!(p.in_flight(), (1, 1));
    // Late answers for dropped polls change nothing.
    p.handle_response(first[1].id, ok(), t(30));
    p.handle_response(second[0].id, ok(), t(30));
    assert_eq!(p.state(&sid("s2")).unwrap().health, Health::Unknown);
    let mut now = 30;
    while !reqs.is_empty() {
        for r in core::mem::take(&mut reqs) {
            p.handle_response(r.id, ok(), t(now));
        }
        now += 10;
        reqs = drain(&mut p, t(now));
    }
    let evs = events(&mut p);
    // Sweep 1 still finishes: s1 and s4 answered, s2, s3 and s5 left.
    assert_eq!(sweeps_finished(&evs), [(1, 30, 2, 0, 3)]);
    assert!(!evs.iter().any(|e| matches!(e, Event::Refreshed { .. })), "nobody asked for those polls");
    for s in ["s1", "s2", "s4", "s6"] {
        assert_eq!(p.state(&sid(s)).unwrap().health, Health::Online, "{s}");
    }
}

#[test]
fn reload_after_a_refresh_took_a_queued_server_counts_the_sweep_right() {
    let mut p = Poller::new(PollerConfig { max_concurrent: 1, timeout: ms(5_000), ..cfg() }, fleet(3), t(0));
    let first = drain(&mut p, t(0));
    assert_eq!(names(&first), ["s1"]);
    p.refresh(&sid("s3"));
    let prio = drain(&mut p, t(1));
    assert_eq!(names(&prio), ["s3"]);
    // s3's stale queue entry is still behind s2; a reload that keeps
    // everyone must not count s3 as left out of the sweep.
    let summary = p.reload(fleet(3), t(2));
    assert_eq!(summary.kept, 3);
    p.handle_response(first[0].id, ok(), t(3));
    p.handle_response(prio[0].id, ok(), t(3));
    assert!(sweeps_finished(&events(&mut p)).is_empty(), "s2 has not been polled yet");
    let r = drain(&mut p, t(3));
    assert_eq!(names(&r), ["s2"]);
    p.handle_response(r[0].id, ok(), t(4));
    assert_eq!(sweeps_finished(&events(&mut p)), [(1, 4, 3, 0, 0)]);
}

#[test]
fn reload_to_an_empty_fleet_finishes_the_sweep() {
    let mut p = poller(3);
    let r = drain(&mut p, t(0));
    assert_eq!(r.len(), 2);
    let summary = p.reload(Vec::new(), t(5));
    assert_eq!(summary.removed.len(), 3);
    assert!(p.is_empty());
    assert_eq!(p.in_flight(), (0, 0));
    assert_eq!(sweeps_finished(&events(&mut p)), [(1, 5, 0, 0, 3)]);
    // Empty sweeps keep coming, and finish at once.
    assert_eq!(p.poll_timeout(), Some(t(1_000)));
    assert!(drain(&mut p, t(1_000)).is_empty());
    assert_eq!(sweeps_finished(&events(&mut p)), [(2, 0, 0, 0, 0)]);
}

#[test]
fn maintenance_suppresses_alarms_but_keeps_polling() {
    let mut p = poller(1);
    let s1 = sid("s1");
    assert!(p.set_maintenance(&s1, true));
    assert!(!p.set_maintenance(&sid("nope"), true));
    let r = drain(&mut p, t(0));
    p.handle_response(r[0].id, ok_body(&[("running", &running(100, 0))]), t(10));
    assert_eq!(p.state(&s1).unwrap().health, Health::Online);
    assert!(p.state(&s1).unwrap().maintenance);
    let evs = events(&mut p);
    assert!(
        evs.iter().all(|e| matches!(e, Event::SweepFinished { .. })),
        "no health or stall alarm in maintenance: {evs:?}"
    );
    // A channel change is not an alarm: it is still reported.
    let r = drain(&mut p, t(1_000));
    p.handle_response(r[0].id, ok_body(&[("idle", "")]), t(1_010));
    let evs = events(&mut p);
    assert!(evs.iter().any(|e| matches!(e, Event::ChannelStateChanged { .. })));
    assert!(one_sweep(&mut p, connect()));
    assert!(one_sweep(&mut p, connect()));
    assert_eq!(p.state(&s1).unwrap().health, Health::Offline);
    assert!(health_changes(&events(&mut p)).is_empty());
    // Leaving maintenance announces what changed silently meanwhile, so the
    // chain of health events stays unbroken.
    p.set_maintenance(&s1, false);
    assert_eq!(health_changes(&events(&mut p)), [(String::from("s1"), Health::Unknown, Health::Offline)]);
    p.refresh(&s1);
    let r = drain(&mut p, t(3_500));
    assert_eq!(names(&r), ["s1"]);
    p.handle_response(r[0].id, ok(), t(3_500));
    assert_eq!(health_changes(&events(&mut p)), [(String::from("s1"), Health::Offline, Health::Online)]);
}

#[test]
fn channel_state_changes_are_reported_from_to() {
    let mut p = poller(1);
    type Changes<'a> = &'a [(u32, &'a str, &'a str)];
    let steps: &[(Chans, Changes)] = &[
        (&[("running", "00:00:10 25fps@100Kbps"), ("idle", "")], &[]),
        (&[("stopping", ""), ("idle", "")], &[(1, "running", "stopping")]),
        (&[("idle", ""), ("running", "00:00:01 25fps@100Kbps")], &[(1, "stopping", "idle"), (2, "idle", "running")]),
        (&[("idle", ""), ("weird", "")], &[(2, "running", "weird")]),
        // A channel appears: no change reported for it.
        (&[("idle", ""), ("weird", ""), ("running", "")], &[]),
        // One disappears: nothing either.
        (&[("idle", "")], &[]),
    ];
    for (i, (channels, expected)) in steps.iter().enumerate() {
        let now = t(1_000 * i as u64);
        p.handle_timeout(now);
        let r = drain(&mut p, now);
        p.handle_response(r[0].id, ok_body(channels), now);
        let got: Vec<(u32, String, String)> = events(&mut p)
            .into_iter()
            .filter_map(|e| match e {
                Event::ChannelStateChanged { server, channel, from, to } => {
                    assert_eq!(server, sid("s1"));
                    Some((channel.get(), from.to_string(), to.to_string()))
                }
                _ => None,
            })
            .collect();
        let expected: Vec<(u32, String, String)> =
            expected.iter().map(|(c, f, t)| (*c, String::from(*f), String::from(*t))).collect();
        assert_eq!(got, expected, "step {i}");
    }
    assert_eq!(p.state(&sid("s1")).unwrap().status.as_ref().unwrap().channels[0].state, ChannelState::Idle);
}

fn stalls(evs: &[Event]) -> Vec<(u32, StallReason)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::ChannelStalled { channel, reason, .. } => Some((channel.get(), *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn stalls_are_reported_once() {
    use StallReason::*;
    // Polls every two seconds: (channel 1 status text, stalls reported,
    // the stall published in the server's state).
    type Step<'a> = (&'a str, &'a [(u32, StallReason)], Option<StallReason>);
    let table: &[Step] = &[
        ("00:01:00 25fps@100Kbps", &[], None),
        ("00:01:01 0fps@100Kbps", &[(1, ZeroFps)], Some(ZeroFps)),
        ("00:01:02 0fps@100Kbps", &[], Some(ZeroFps)), // still stalled: not again
        ("00:01:03 25fps@100Kbps", &[], None),         // recovered
        ("00:01:03 25fps@100Kbps", &[(1, UptimeFrozen)], Some(UptimeFrozen)),
        ("00:01:03 25fps@100Kbps", &[], Some(UptimeFrozen)), // still frozen: not again
        ("00:01:06 25fps@100Kbps", &[], None),               // recovered
        ("00:01:06 0.0fps@100Kbps", &[(1, ZeroFps)], Some(ZeroFps)),
    ];
    let mut p = poller(1);
    for (i, (text, expected, published)) in table.iter().enumerate() {
        let now = t(2_000 * i as u64);
        p.handle_timeout(now);
        let r = drain(&mut p, now);
        p.handle_response(r[0].id, ok_body(&[("running", text)]), now);
        assert_eq!(stalls(&events(&mut p)), *expected, "step {i}: {text}");
        let state = p.state(&sid("s1")).unwrap();
        assert_eq!(state.stall(ChannelId::new(1).unwrap()), *published, "step {i}: {text}");
        assert_eq!(state.stalled.len(), usize::from(published.is_some()));
    }
}

#[test]
fn a_channel_stalled_when_first_seen_is_reported_and_published() {
    let mut p = poller(1);
    let r = drain(&mut p, t(0));
    let body = ok_body(&[("running", "00:05:00 0fps@0Kbps"), ("idle", ""), ("running", "00:05:00 25fps@9Kbps")]);
    p.handle_response(r[0].id, body, t(0));
    assert_eq!(stalls(&events(&mut p)), [(1, StallReason::ZeroFps)]);
    let state = p.state(&sid("s1")).unwrap();
    assert_eq!(state.stalled.iter().map(|(c, r)| (c.get(), *r)).collect::<Vec<_>>(), [(1, StallReason::ZeroFps)]);
}

#[test]
fn frozen_uptime_needs_time_to_pass() {
    // Two polls 500 ms apart with the same uptime are not a stall: the text
    // has a one-second resolution.
    let mut p = poller(1);
    let body = || ok_body(&[("running", "00:01:00 25fps@100Kbps")]);
    let r = drain(&mut p, t(0));
    p.handle_response(r[0].id, body(), t(0));
    p.refresh(&sid("s1"));
    let r = drain(&mut p, t(500));
    p.handle_response(r[0].id, body(), t(500));
    assert!(stalls(&events(&mut p)).is_empty());
    // Not running: not a stall either.
    p.refresh(&sid("s1"));
    let r = drain(&mut p, t(2_500));
    p.handle_response(r[0].id, ok_body(&[("stopping", "00:01:00 0fps@0Kbps")]), t(2_500));
    assert!(stalls(&events(&mut p)).is_empty());
}

#[test]
fn reboot_is_detected_when_every_running_uptime_goes_back() {
    // (before, after, rebooted?)
    let table: &[(Chans, Chans, bool)] = &[
        (&[("running", "10:00:00 25fps@1Kbps")], &[("running", "00:00:05 25fps@1Kbps")], true),
        (
            &[("running", "10:00:00 25fps@1Kbps"), ("running", "09:00:00 25fps@1Kbps")],
            &[("running", "00:00:05 25fps@1Kbps"), ("running", "09:00:01 25fps@1Kbps")],
            false,
        ),
        (&[("running", "10:00:00 25fps@1Kbps")], &[("idle", "")], false),
        (&[("idle", "")], &[("running", "00:00:01 25fps@1Kbps")], false),
        (&[("running", "10:00:00 25fps@1Kbps")], &[("running", "10:00:01 25fps@1Kbps")], false),
        (&[("running", "garbage")], &[("running", "00:00:01 25fps@1Kbps")], false),
    ];
    for (i, (before, after, rebooted)) in table.iter().enumerate() {
        let mut p = poller(1);
        let r = drain(&mut p, t(0));
        p.handle_response(r[0].id, ok_body(before), t(0));
        let _ = events(&mut p);
        let r = drain(&mut p, t(1_000));
        p.handle_response(r[0].id, ok_body(after), t(1_000));
        let got = events(&mut p).iter().filter(|e| matches!(e, Event::ServerRebooted { .. })).count();
        assert_eq!(got, usize::from(*rebooted), "row {i}");
    }
}

#[test]
fn sweep_finished_counts_ok_failed_skipped() {
    let mut p = Poller::new(PollerConfig { max_concurrent: 8, ..cfg() }, fleet(4), t(0));
    // Sweep 1: s1 ok, s2 fails twice in a row over two sweeps (backed off for
    // sweep 3), s3 500, s4 never answers.
    let r = drain(&mut p, t(0));
    p.handle_response(r[0].id, ok(), t(5));
    p.handle_response(r[1].id, connect(), t(7));
    p.handle_response(r[2].id, Ok(Response { code: 500, body: Vec::new() }), t(9));
    p.handle_timeout(t(400));
    assert_eq!(sweeps_finished(&events(&mut p)), [(1, 400, 1, 3, 0)]);
    let r = drain(&mut p, t(1_000));
    assert_eq!(names(&r), ["s1", "s2", "s3", "s4"]);
    p.handle_response(r[0].id, ok(), t(1_010));
    p.handle_response(r[1].id, connect(), t(1_010));
    p.handle_response(r[2].id, ok(), t(1_010));
    p.handle_response(r[3].id, ok(), t(1_020));
    assert_eq!(sweeps_finished(&events(&mut p)), [(2, 20, 3, 1, 0)]);
    let r = drain(&mut p, t(2_000));
    assert_eq!(names(&r), ["s1", "s3", "s4"], "s2 sits out one sweep");
    answer_all(&mut p, &r, t(2_001), ok);
    assert_eq!(sweeps_finished(&events(&mut p)), [(3, 1, 3, 0, 1)]);
}

#[test]
fn an_empty_fleet_still_sweeps() {
    let mut p = Poller::new(cfg(), Vec::new(), t(0));
    assert!(drain(&mut p, t(0)).is_empty());
    assert_eq!(sweeps_finished(&events(&mut p)), [(1, 0, 0, 0, 0)]);
    assert_eq!(p.poll_timeout(), Some(t(1_000)));
}

#[test]
fn observed_status_updates_state_and_reports_changes() {
    let mut p = poller(1);
    let r = drain(&mut p, t(0));
    p.handle_response(r[0].id, ok_body(&[("running", "00:00:01 25fps@1Kbps")]), t(10));
    let _ = events(&mut p);
    let status = parse_status(&body(&[("stopping", "")])).unwrap();
    p.observe_status(&sid("s1"), status.clone(), t(50));
    p.observe_status(&sid("nope"), status.clone(), t(50));
    let state = p.state(&sid("s1")).unwrap();
    assert_eq!(state.status.as_deref(), Some(&status));
    assert_eq!(state.last_ok_at, Some(t(50)));
    assert_eq!(state.latency, Some(ms(10)), "an observation has no latency of its own");
    let evs = events(&mut p);
    assert_eq!(evs.len(), 1);
    assert!(matches!(
        &evs[0],
        Event::ChannelStateChanged { from: ChannelState::Running, to: ChannelState::Stopping, .. }
    ));
}

#[test]
fn set_config_applies_to_the_next_request() {
    let mut p = poller(3);
    p.set_config(PollerConfig { max_concurrent: 3, timeout: ms(900), ..cfg() });
    assert_eq!(p.config().max_concurrent, 3);
    let r = drain(&mut p, t(0));
    assert_eq!(r.len(), 3);
    assert!(r.iter().all(|r| r.request.timeout == ms(900)));
    let servers: Vec<&str> = p.servers().map(|(c, _)| c.id.as_str()).collect();
    assert_eq!(servers, ["s1", "s2", "s3"]);
}

#[test]
fn a_refresh_asked_before_an_address_change_is_still_answered() {
    let mut p = poller(1);
    let r = drain(&mut p, t(0));
    p.refresh(&sid("s1")); // attaches to the poll in flight
    let mut moved = fleet(1);
    moved[0].host = "198.51.100.1".into();
    p.reload(moved, t(10));
    p.handle_response(r[0].id, ok(), t(20)); // the old address answers: dropped
    assert!(events(&mut p).iter().all(|e| !matches!(e, Event::Refreshed { .. })));
    let r = drain(&mut p, t(20));
    assert_eq!(names(&r), ["s1"]);
    assert_eq!(r[0].server.host, "198.51.100.1");
    p.handle_response(r[0].id, ok(), t(30));
    let evs = events(&mut p);
    assert_eq!(evs.iter().filter(|e| matches!(e, Event::Refreshed { .. })).count(), 1);
}

// ------------------------------------------------- several instances

#[test]
fn a_server_owned_elsewhere_is_left_out_of_sweeps_and_joins_one_when_taken_over() {
    let mut p = Poller::new(PollerConfig { max_concurrent: 8, ..cfg() }, fleet(3), Instant::ZERO);
    assert!(p.set_sweeping(&sid("s2"), Sweeping::Never, t(0)));
    assert!(!p.sweeps(&sid("s2"), t(0)) && p.sweeps(&sid("s1"), t(0)));
    let r = drain(&mut p, t(0));
    assert_eq!(names(&r), ["s1", "s3"]);
    answer_all(&mut p, &r, t(10), ok);
    let evs = events(&mut p);
    assert_eq!(sweeps_finished(&evs), [(1, 10, 2, 0, 0)], "the sweep counts only its own servers");
    assert!(!p.set_sweeping(&sid("nope"), Sweeping::Always, t(20)));
    // Taken over between sweeps: polled by the next one, within an interval.
    assert!(p.set_sweeping(&sid("s2"), Sweeping::Always, t(20)));
    assert!(drain(&mut p, t(20)).is_empty(), "the refreshes' lane is left alone");
    p.handle_timeout(t(1_000));
    let r = drain(&mut p, t(1_000));
    assert_eq!(names(&r), ["s1", "s2", "s3"]);
    answer_all(&mut p, &r, t(1_010), ok);
    assert!(p.state(&sid("s2")).unwrap().status.is_some());
    // Given up and taken again while a sweep is under way: it joins it and
    // counts for it.
    p.set_sweeping(&sid("s2"), Sweeping::Never, t(1_500));
    events(&mut p);
    p.handle_timeout(t(2_000));
    let r = drain(&mut p, t(2_000));
    assert_eq!(names(&r), ["s1", "s3"]);
    p.set_sweeping(&sid("s2"), Sweeping::Always, t(2_005));
    let joined = drain(&mut p, t(2_005));
    assert_eq!(names(&joined), ["s2"], "joins the sweep under way");
    answer_all(&mut p, &r, t(2_010), ok);
    assert!(sweeps_finished(&events(&mut p)).is_empty(), "the sweep waits for the joined poll");
    answer_all(&mut p, &joined, t(2_020), ok);
    assert_eq!(sweeps_finished(&events(&mut p)), [(3, 20, 3, 0, 0)]);
}

#[test]
fn adopting_the_owners_observations_gives_the_same_state_and_events() {
    let mut owner = poller(1);
    let mut follower = poller(1);
    follower.set_sweeping(&sid("s1"), Sweeping::Never, t(0));
    assert!(drain(&mut follower, t(0)).is_empty(), "the follower never polls it");
    let mut owner_evs = Vec::new();
    let mut follower_evs = Vec::new();
    let answers = [
        ok_body(&[("running", &running(10, 25)), ("idle", "")]),
        ok_body(&[("idle", ""), ("idle", "")]),
        connect(),
        connect(),
        ok_body(&[("running", &running(30, 0))]),
    ];
    for (i, answer) in answers.into_iter().enumerate() {
        let now = t(1_000 * i as u64);
        owner.handle_timeout(now);
        owner.refresh(&sid("s1")); // past any backoff
        let r = drain(&mut owner, now);
        assert_eq!(names(&r), ["s1"]);
        owner.handle_response(r[0].id, answer, now);
        owner_evs.extend(events(&mut owner).into_iter().filter(|e| !matches!(e, Event::Refreshed { .. })));
        let observed = Observed::of(owner.state(&sid("s1")).unwrap()).expect("polled");
        // Through the store: serialized and read back.
        let text = serde_json::to_string(&observed).unwrap();
        let read: Observed = serde_json::from_str(&text).unwrap();
        assert!(follower.adopt(&sid("s1"), read, now));
        follower_evs.extend(events(&mut follower));
        let (a, b) = (owner.state(&sid("s1")).unwrap(), follower.state(&sid("s1")).unwrap());
        assert_eq!(
            (a.health, &a.status, &a.error, a.consecutive_failures),
            (b.health, &b.status, &b.error, b.consecutive_failures)
        );
        assert_eq!(a.stalled, b.stalled);
    }
    let kinds = |evs: &[Event]| -> Vec<String> {
        evs.iter().filter(|e| !matches!(e, Event::SweepFinished { .. })).map(|e| format!("{e:?}")).collect()
    };
    assert_eq!(kinds(&owner_evs), kinds(&follower_evs));
    assert!(health_changes(&follower_evs).iter().any(|(_, _, to)| *to == Health::Offline));
    // The owner ignores what others say of its own server.
    let observed = Observed::of(owner.state(&sid("s1")).unwrap()).unwrap();
    assert!(!owner.adopt(&sid("s1"), observed, t(60_000)));
}

#[test]
fn an_adopted_observation_is_dated_by_its_age() {
    let mut p = poller(1);
    p.set_sweeping(&sid("s1"), Sweeping::Never, t(0));
    let observed =
        Observed { outcome: Ok(Status::default()), latency: Some(ms(12)), consecutive_failures: 0, age: ms(1_500) };
    assert!(p.adopt(&sid("s1"), observed, t(10_000)));
    let s = p.state(&sid("s1")).unwrap();
    assert_eq!((s.last_ok_at, s.latency, s.health), (Some(t(8_500)), Some(ms(12)), Health::Online));
}

mod ownership_prop {
    use super::*;
    use proptest::prelude::*;

    fn answer(kind: u8, up: u64) -> Result<Response, TransportError> {
        match kind % 5 {
            0 => connect(),
            1 => Ok(Response { code: 500, body: Vec::new() }),
            2 => ok_body(&[("running", &running(up, 25)), ("idle", "")]),
            3 => ok_body(&[("running", &running(up, 0)), ("running", &running(up, 30))]),
            _ => ok_body(&[("idle", ""), ("starting", "")]),
        }
    }

    proptest! {
        /// Whatever the owner sees, a follower fed its observations (through
        /// their serialized form) holds the same health, status, error,
        /// failure count and stalls, and announces the same events.
        #[test]
        fn a_follower_matches_its_owner(polls in proptest::collection::vec((0u8..5, 0u64..4), 1..30)) {
            let mut owner = poller(1);
            let mut follower = poller(1);
            follower.set_sweeping(&sid("s1"), Sweeping::Never, t(0));
            let mut up = 0;
            let (mut oe, mut fe) = (Vec::new(), Vec::new());
            for (kind, step) in polls {
                up += step;
                let now = owner.poll_timeout().unwrap();
                owner.handle_timeout(now);
                for r in drain(&mut owner, now) {
                    owner.handle_response(r.id, answer(kind, up), now);
                }
                owner.refresh(&sid("s1")); // past any backoff
                for r in drain(&mut owner, now) {
                    owner.handle_response(r.id, answer(kind, up), now);
                }
                oe.extend(events(&mut owner).into_iter().filter(|e| !matches!(e, Event::SweepFinished { .. } | Event::Refreshed { .. })).map(|e| format!("{e:?}")));
                let Some(o) = Observed::of(owner.state(&sid("s1")).unwrap()) else { continue };
                let text = serde_json::to_string(&o).unwrap();
                follower.adopt(&sid("s1"), serde_json::from_str(&text).unwrap(), now);
                fe.extend(events(&mut follower).into_iter().map(|e| format!("{e:?}")));
                let (a, b) = (owner.state(&sid("s1")).unwrap(), follower.state(&sid("s1")).unwrap());
                prop_assert_eq!((a.health, &a.status, &a.error, a.consecutive_failures), (b.health, &b.status, &b.error, b.consecutive_failures));
                prop_assert_eq!(&a.stalled, &b.stalled);
            }
            prop_assert_eq!(oe, fe);
        }
    }
}

#[test]
fn a_lease_that_lapses_stops_the_sweeps_with_nobody_calling() {
    let mut p = poller(2);
    // s2 is ours until 2.5 s (a lease), then not renewed.
    assert!(p.set_sweeping(&sid("s2"), Sweeping::Until(t(2_500)), t(0)));
    for at in [0, 1_000, 2_000] {
        p.handle_timeout(t(at));
        let r = drain(&mut p, t(at));
        assert_eq!(names(&r), ["s1", "s2"], "at {at} ms");
        answer_all(&mut p, &r, t(at + 10), ok);
    }
    p.handle_timeout(t(3_000));
    let r = drain(&mut p, t(3_000));
    assert_eq!(names(&r), ["s1"], "lapsed: fenced by the core itself");
    answer_all(&mut p, &r, t(3_010), ok);
    assert!(!p.sweeps(&sid("s2"), t(3_000)));
    p.set_sweeping(&sid("s2"), Sweeping::Until(t(4_005)), t(3_900));
    p.handle_timeout(t(4_000));
    let r = drain(&mut p, t(4_000));
    assert_eq!(names(&r), ["s1", "s2"], "taken again: in the next sweep");
    answer_all(&mut p, &r, t(4_010), ok);
    p.handle_timeout(t(5_000));
    assert_eq!(names(&drain(&mut p, t(5_000))), ["s1"], "lapsed again at 4 005 ms");
    let mut cfg1 = cfg();
    cfg1.max_concurrent = 1;
    let mut q = Poller::new(cfg1, fleet(2), Instant::ZERO);
    q.set_sweeping(&sid("s2"), Sweeping::Until(t(50)), t(0));
    // Queued before the lapse, sent after: left out too.
    let first = drain(&mut q, t(0));
    assert_eq!(names(&first), ["s1"], "one slot: s2 waits in the queue");
    q.handle_response(first[0].id, ok(), t(100));
    assert!(drain(&mut q, t(100)).is_empty(), "s2's lease lapsed while it waited");
    let evs = events(&mut q);
    assert_eq!(sweeps_finished(&evs), [(1, 100, 1, 0, 1)]);
}

#[test]
fn a_channel_track_is_16_bytes() {
    // 160 000 of them at 10 000 servers of 16 channels.
    assert_eq!(core::mem::size_of::<super::ChannelTrack>(), 16);
}
