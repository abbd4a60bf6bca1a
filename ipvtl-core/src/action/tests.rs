//! Table-driven tests of every action transition, in virtual time.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::ids::ServerId;

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ch(n: u32) -> ChannelId {
    ChannelId::new(n).unwrap()
}

/// Stop and start budgets 5 s, checks every 250 ms, 1 s per request.
fn cfg() -> ActionConfig {
    ActionConfig {
        stop_timeout: ms(5_000),
        start_timeout: ms(4_000),
        watch_interval: ms(250),
        request_timeout: ms(1_000),
    }
}

fn server() -> Arc<ServerConfig> {
    Arc::new(ServerConfig::new("edge-1", "192.0.2.10"))
}

fn action(kind: ActionKind, channel: u32, known: Option<usize>) -> Action {
    Action::new(ActionId(7), server(), ch(channel), kind, None, known, cfg(), t(0)).unwrap()
}

fn accepted() -> Result<Response, TransportError> {
    Ok(Response { code: 200, body: b"OK".to_vec() })
}

/// A `/status` answer with channels in these states.
fn status(states: &[&str]) -> Result<Response, TransportError> {
    let chans: Vec<String> = states
        .iter()
        .map(|s| match *s {
            "running" => String::from(r#"{"state":"running","status":"00:00:01 25fps@1000Kbps"}"#),
            other => format!(r#"{{"state":"{other}","status":""}}"#),
        })
        .collect();
    Ok(Response { code: 200, body: format!(r#"{{"channels":[{}],"cpu":[1]}}"#, chans.join(",")).into_bytes() })
}

fn phases(r: &ActionReport) -> Vec<(Phase, u64)> {
    r.phases.iter().map(|p| (p.phase, p.duration.as_millis() as u64)).collect()
}

/// One scripted step: at `at`, expect `poll_request` to give `expect`
/// (or nothing), and if it does, answer with `answer` at `answer_at`.
struct Step {
    at: u64,
    expect: Option<RequestKind>,
    answer_at: u64,
    answer: Option<Result<Response, TransportError>>,
}

fn step(at: u64, expect: RequestKind, answer_at: u64, answer: Result<Response, TransportError>) -> Step {
    Step { at, expect: Some(expect), answer_at, answer: Some(answer) }
}

fn nothing(at: u64) -> Step {
    Step { at, expect: None, answer_at: at, answer: None }
}

/// Runs `steps` (calling `handle_timeout` before each poll) and returns
/// every request kind sent.
fn run(a: &mut Action, steps: Vec<Step>) -> Vec<RequestKind> {
    let mut sent = Vec::new();
    for (i, s) in steps.into_iter().enumerate() {
        a.handle_timeout(t(s.at));
        let req = a.poll_request(t(s.at));
        assert_eq!(req.map(|r| r.kind), s.expect, "step {i} at {}", s.at);
        if let Some(req) = req {
            sent.push(req.kind);
            assert!(a.poll_request(t(s.at)).is_none(), "one request at a time");
            if let Some(answer) = s.answer {
                a.handle_response(answer, t(s.answer_at));
            }
        }
    }
    sent
}

const S: RequestKind = RequestKind::Status;

fn stop(n: u32) -> RequestKind {
    RequestKind::Stop(ch(n))
}

fn start(n: u32) -> RequestKind {
    RequestKind::Start(ch(n))
}

#[test]
fn restart_happy_path_times_each_phase() {
    let mut a = action(ActionKind::Restart, 2, Some(3));
    assert_eq!(a.phase(), Phase::Stop);
    assert_eq!(a.poll_timeout(), Some(t(5_000)));
    let sent = run(
        &mut a,
        vec![
            step(0, stop(2), 40, accepted()),
            step(40, S, 60, status(&["running", "stopping", "idle"])),
            nothing(100),
            step(310, S, 330, status(&["running", "idle", "idle"])),
            step(330, start(2), 400, accepted()),
            step(400, S, 420, status(&["running", "idle", "idle"])),
            step(670, S, 700, status(&["running", "running", "idle"])),
        ],
    );
    assert_eq!(sent, [stop(2), S, S, start(2), S, S]);
    assert!(a.is_finished());
    assert_eq!(a.poll_timeout(), None);
    assert!(a.poll_request(t(800)).is_none());
    let r = a.take_report().unwrap();
    assert!(a.take_report().is_none(), "the report is handed out once");
    assert_eq!(r.outcome, Ok(()));
    assert_eq!(phases(&r), [(Phase::Stop, 40), (Phase::WaitIdle, 290), (Phase::Start, 70), (Phase::WaitRunning, 300)]);
    assert_eq!(r.duration(), ms(700));
    assert_eq!(r.phases.iter().map(|p| p.duration).sum::<Duration>(), r.duration());
    assert_eq!(r.phase_duration(Phase::WaitIdle), Some(ms(290)));
    assert_eq!(r.phase_duration(Phase::Probe), None);
    assert_eq!(r.final_state, Some(ChannelState::Running));
    assert_eq!((r.action, r.channel, r.kind, r.batch), (Some(ActionId(7)), ch(2), ActionKind::Restart, None));
    assert_eq!(r.server, ServerId::from("edge-1"));
    assert_eq!(r.started_at, t(0));
    assert_eq!(r.finished_at, t(700));
    assert!(r.summary().contains("restart edge-1 channel 2: ok in 700 ms"), "{}", r.summary());
}

#[test]
fn watch_waits_for_the_interval_between_checks() {
    let mut a = action(ActionKind::Stop, 1, Some(1));
    run(&mut a, vec![step(0, stop(1), 10, accepted()), step(10, S, 20, status(&["stopping"]))]);
    assert_eq!(a.poll_timeout(), Some(t(270)));
    assert!(a.poll_request(t(269)).is_none());
    assert_eq!(a.poll_request(t(270)).map(|r| r.kind), Some(S));
    // While a check is out, only the budget is a timer.
    assert_eq!(a.poll_timeout(), Some(t(5_000)));
}

#[test]
fn a_failed_stop_aborts_without_start() {
    let table: Vec<(&str, Result<Response, TransportError>, PollError, &str)> = vec![
        (
            "500",
            Ok(Response { code: 500, body: Vec::new() }),
            PollError::Http { code: 500 },
            "server answered HTTP 500",
        ),
        (
            "404",
            Ok(Response { code: 404, body: Vec::new() }),
            PollError::Http { code: 404 },
            "server answered HTTP 404",
        ),
        (
            "connect",
            Err(TransportError::Connect("refused".into())),
            PollError::Connect { message: "refused".into() },
            "connection failed: refused",
        ),
        ("timeout", Err(TransportError::Timeout), PollError::Timeout { after_ms: 1_000 }, "no answer within 1000 ms"),
    ];
    for (name, answer, cause, text) in table {
        let mut a = action(ActionKind::Restart, 1, Some(1));
        let sent = run(&mut a, vec![step(0, stop(1), 30, answer), nothing(30), nothing(10_000)]);
        assert_eq!(sent, [stop(1)], "{name}");
        let r = a.take_report().expect(name);
        let unreachable = cause.is_unreachable();
        assert_eq!(r.outcome, Err(ActionError::StopFailed { cause }), "{name}");
        assert_eq!(phases(&r), [(Phase::Stop, 30)]);
        let err = r.outcome.unwrap_err();
        assert_eq!(err.cause().map(PollError::is_unreachable), Some(unreachable), "{name}");
        assert_eq!(format!("{err}"), format!("stop failed: {text}; channel not started"));
    }
}

#[test]
fn a_channel_stuck_stopping_times_out_and_is_not_started() {
    let mut a = action(ActionKind::Restart, 1, Some(1));
    let mut steps = vec![step(0, stop(1), 100, accepted())];
    let mut now = 100;
    while now < 5_000 {
        steps.push(step(now, S, now + 50, status(&["stopping"])));
        now += 300;
    }
    let sent = run(&mut a, steps);
    assert!(sent.iter().all(|k| *k != start(1)));
    assert!(!a.is_finished());
    assert_eq!(a.poll_timeout(), Some(t(5_000)), "a check is out: only the budget is a timer");
    a.handle_timeout(t(4_999));
    assert!(!a.is_finished());
    a.handle_timeout(t(5_000));
    assert!(a.poll_request(t(5_000)).is_none());
    let r = a.take_report().unwrap();
    assert_eq!(
        r.outcome,
        Err(ActionError::StopTimeout { after: ms(4_900), last_state: Some(ChannelState::Stopping), last_error: None })
    );
    assert_eq!(phases(&r), [(Phase::Stop, 100), (Phase::WaitIdle, 4_900)]);
    assert_eq!(r.duration(), ms(5_000), "the stop budget runs from the stop");
    let text = format!("{}", r.outcome.unwrap_err());
    assert!(text.contains("not idle after 4900 ms; last seen stopping; not started"), "{text}");
}

#[test]
fn a_failed_start_is_reported() {
    let table: Vec<(Result<Response, TransportError>, PollError)> = vec![
        (Ok(Response { code: 500, body: Vec::new() }), PollError::Http { code: 500 }),
        (Err(TransportError::Io("reset".into())), PollError::Io { message: "reset".into() }),
    ];
    for (answer, cause) in table {
        let mut a = action(ActionKind::Restart, 1, Some(1));
        let sent = run(
            &mut a,
            vec![
                step(0, stop(1), 10, accepted()),
                step(10, S, 20, status(&["idle"])),
                step(20, start(1), 30, answer),
                nothing(40),
            ],
        );
        assert_eq!(sent, [stop(1), S, start(1)]);
        let r = a.take_report().unwrap();
        assert_eq!(r.outcome, Err(ActionError::StartFailed { cause }));
        assert_eq!(phases(&r), [(Phase::Stop, 10), (Phase::WaitIdle, 10), (Phase::Start, 10)]);
    }
}

#[test]
fn a_channel_that_never_runs_times_out_on_the_start_budget() {
    let mut a = action(ActionKind::Restart, 1, Some(1));
    run(
        &mut a,
        vec![
            step(0, stop(1), 10, accepted()),
            step(10, S, 20, status(&["idle"])),
            step(20, start(1), 30, accepted()),
            step(30, S, 40, status(&["idle"])),
        ],
    );
    // The start budget (4 s) runs from the start request, at 20.
    a.handle_timeout(t(4_019));
    assert!(!a.is_finished());
    assert_eq!(a.poll_request(t(4_000)).map(|r| r.kind), Some(S));
    a.handle_response(Err(TransportError::Timeout), t(4_010));
    a.handle_timeout(t(4_020));
    let r = a.take_report().unwrap();
    assert_eq!(
        r.outcome,
        Err(ActionError::StartTimeout {
            after: ms(3_990),
            last_state: Some(ChannelState::Idle),
            last_error: Some(PollError::Timeout { after_ms: 1_000 }),
        })
    );
    assert_eq!(r.phase_duration(Phase::Start), Some(ms(10)));
    assert_eq!(r.phase_duration(Phase::WaitRunning), Some(ms(3_990)));
}

#[test]
fn request_timeouts_never_outlast_the_budget() {
    let mut a = action(ActionKind::Stop, 1, Some(1));
    run(&mut a, vec![step(0, stop(1), 10, accepted())]);
    let mut last = None;
    for now in [10, 4_500, 4_999] {
        a.handle_timeout(t(now));
        let req = a.poll_request(t(now)).unwrap();
        last = Some(req.timeout);
        a.handle_response(status(&["stopping"]), t(now));
        a.next_check = t(0); // check again at once
    }
    assert_eq!(last, Some(ms(1)), "1 ms left: the request gets 1 ms");
    let mut b = action(ActionKind::Stop, 1, Some(1));
    assert_eq!(b.poll_request(t(4_500)).unwrap().timeout, ms(500));
}

#[test]
fn unknown_count_probes_first() {
    // (channel, probe answer, expected requests, outcome kind or None for ok)
    type Row = (u32, Result<Response, TransportError>, Vec<RequestKind>, Option<&'static str>);
    let table: Vec<Row> = vec![
        (2, status(&["running", "running"]), vec![S, stop(2), S], None),
        (3, status(&["running", "running"]), vec![S], Some("channel_not_found")),
        (1, status(&[]), vec![S], Some("channel_not_found")),
        (1, Ok(Response { code: 502, body: Vec::new() }), vec![S], Some("probe_failed")),
        (1, Ok(Response { code: 200, body: b"<html>".to_vec() }), vec![S], Some("probe_failed")),
        (1, Err(TransportError::Connect("refused".into())), vec![S], Some("probe_failed")),
    ];
    for (i, (channel, probe, expected, outcome)) in table.into_iter().enumerate() {
        let mut a = action(ActionKind::Stop, channel, None);
        assert_eq!(a.phase(), Phase::Probe);
        let mut sent = Vec::new();
        let req = a.poll_request(t(0)).unwrap();
        assert_eq!(req.timeout, ms(1_000));
        sent.push(req.kind);
        let seen = a.handle_response(probe, t(20));
        assert_eq!(seen.is_some(), expected.len() > 1 || outcome == Some("channel_not_found"), "row {i}");
        if let Some(req) = a.poll_request(t(20)) {
            sent.push(req.kind);
            a.handle_response(accepted(), t(30));
            let req = a.poll_request(t(30)).unwrap();
            sent.push(req.kind);
            a.handle_response(status(&["running", "idle"]), t(40));
        }
        assert_eq!(sent, expected, "row {i}");
        let r = a.take_report().unwrap();
        match outcome {
            None => {
                assert!(r.is_ok(), "row {i}: {:?}", r.outcome);
                assert_eq!(phases(&r), [(Phase::Probe, 20), (Phase::Stop, 10), (Phase::WaitIdle, 10)]);
            }
            Some(kind) => assert_eq!(r.outcome.unwrap_err().kind(), kind, "row {i}"),
        }
    }
}

#[test]
fn probe_for_a_start_goes_straight_to_start_with_the_start_budget() {
    let mut a = action(ActionKind::Start, 1, None);
    run(&mut a, vec![step(0, S, 500, status(&["idle"]))]);
    assert_eq!(a.phase(), Phase::Start);
    assert_eq!(a.poll_timeout(), Some(t(4_500)));
    assert_eq!(a.poll_request(t(500)).unwrap().kind, start(1));
}

#[test]
fn an_unanswered_probe_fails_on_the_request_timeout() {
    let mut a = action(ActionKind::Restart, 1, None);
    assert_eq!(a.poll_request(t(0)).unwrap().kind, S);
    assert_eq!(a.poll_timeout(), Some(t(1_000)));
    a.handle_timeout(t(1_000));
    let r = a.take_report().unwrap();
    assert_eq!(r.outcome.unwrap_err().kind(), "probe_failed");
    // The answer that comes afterwards changes nothing.
    assert!(a.handle_response(status(&["idle"]), t(1_100)).is_none());
    assert!(a.poll_request(t(1_100)).is_none());
}

#[test]
fn a_channel_beyond_the_count_is_refused_before_any_request() {
    let table: &[(u32, usize, bool)] = &[(1, 0, false), (1, 1, true), (4, 3, false), (3, 3, true), (9, 8, false)];
    for &(channel, count, allowed) in table {
        let r = Action::new(ActionId(1), server(), ch(channel), ActionKind::Restart, None, Some(count), cfg(), t(0));
        match r {
            Ok(mut a) => {
                assert!(allowed, "channel {channel} of {count}");
                assert_eq!(a.poll_request(t(0)).unwrap().kind, stop(channel));
            }
            Err(e) => {
                assert!(!allowed, "channel {channel} of {count}");
                assert_eq!(e, ActionError::ChannelNotFound { server: "edge-1".into(), channel: ch(channel), count });
                assert!(e.is_refusal());
                assert_eq!(format!("{e}"), format!("server edge-1 has no channel {channel} (it has {count})"));
            }
        }
    }
}

#[test]
fn a_channel_disappearing_mid_watch_fails_the_action() {
    let mut a = action(ActionKind::Restart, 2, Some(2));
    let sent = run(&mut a, vec![step(0, stop(2), 10, accepted()), step(10, S, 20, status(&["idle"])), nothing(20)]);
    assert_eq!(sent, [stop(2), S]);
    let r = a.take_report().unwrap();
    assert_eq!(r.outcome, Err(ActionError::ChannelNotFound { server: "edge-1".into(), channel: ch(2), count: 1 }));
    assert_eq!(phases(&r), [(Phase::Stop, 10), (Phase::WaitIdle, 10)]);
}

#[test]
fn watch_failures_are_tolerated_until_the_deadline() {
    let bad: Vec<Result<Response, TransportError>> = vec![
        Err(TransportError::Connect("refused".into())),
        Ok(Response { code: 500, body: Vec::new() }),
        Ok(Response { code: 200, body: b"{trunc".to_vec() }),
        Err(TransportError::Timeout),
    ];
    let mut a = action(ActionKind::Restart, 1, Some(1));
    let mut steps = vec![step(0, stop(1), 10, accepted())];
    let mut now = 10;
    for answer in bad {
        steps.push(step(now, S, now + 10, answer));
        now += 260;
    }
    steps.push(step(now, S, now + 10, status(&["idle"])));
    steps.push(step(now + 10, start(1), now + 20, accepted()));
    steps.push(step(now + 20, S, now + 30, status(&["running"])));
    let sent = run(&mut a, steps);
    assert_eq!(sent.iter().filter(|k| **k == S).count(), 6);
    assert!(a.take_report().unwrap().is_ok());

    // Failing to the end: the timeout carries the last error.
    let mut a = action(ActionKind::Stop, 1, Some(1));
    let mut steps = vec![step(0, stop(1), 10, accepted())];
    let mut now = 10;
    while now < 5_000 {
        steps.push(step(now, S, now + 10, Ok(Response { code: 503, body: Vec::new() })));
        now += 260;
    }
    run(&mut a, steps);
    a.handle_timeout(t(5_000));
    let r = a.take_report().unwrap();
    let Err(ActionError::StopTimeout { last_state: None, last_error: Some(e), .. }) = &r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(e, &PollError::Http { code: 503 });
    assert_eq!(r.cause(), Some(&PollError::Http { code: 503 }));
    assert!(
        format!("{}", r.outcome.unwrap_err()).contains("state never seen; last check failed: server answered HTTP 503")
    );
}

#[test]
fn start_only_and_stop_only() {
    // (kind, channel states seen while watching, requests, phases)
    type Row = (ActionKind, &'static str, Vec<RequestKind>, Vec<Phase>);
    let table: Vec<Row> = vec![
        (ActionKind::Start, "running", vec![start(1), S], vec![Phase::Start, Phase::WaitRunning]),
        (ActionKind::Stop, "idle", vec![stop(1), S], vec![Phase::Stop, Phase::WaitIdle]),
    ];
    for (kind, target, requests, expected) in table {
        let mut a = action(kind, 1, Some(1));
        let first = requests[0];
        let sent = run(&mut a, vec![step(0, first, 10, accepted()), step(10, S, 20, status(&[target])), nothing(30)]);
        assert_eq!(sent, requests, "{kind}");
        let r = a.take_report().unwrap();
        assert!(r.is_ok(), "{kind}");
        assert_eq!(r.phases.iter().map(|p| p.phase).collect::<Vec<_>>(), expected);
        assert_eq!(r.final_state.as_ref().map(ChannelState::as_str), Some(target));
    }
    // A start-only action with a known count begins with the start budget.
    let a = action(ActionKind::Start, 1, Some(1));
    assert_eq!(a.phase(), Phase::Start);
    assert_eq!(a.poll_timeout(), Some(t(4_000)), "start budget");
}

#[test]
fn a_start_watch_ignores_other_states_until_running() {
    let mut a = action(ActionKind::Start, 1, Some(1));
    let sent = run(
        &mut a,
        vec![
            step(0, start(1), 10, accepted()),
            step(10, S, 20, status(&["idle"])),
            step(270, S, 280, status(&["starting"])),
            step(530, S, 540, status(&["stopping"])),
            step(790, S, 800, status(&["running"])),
        ],
    );
    assert_eq!(sent.len(), 5);
    let r = a.take_report().unwrap();
    assert!(r.is_ok());
    assert_eq!(r.finished_at, t(800));
}

#[test]
fn kinds_and_phases_have_names() {
    for kind in [ActionKind::Start, ActionKind::Stop, ActionKind::Restart] {
        assert_eq!(ActionKind::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(ActionKind::parse("reboot"), None);
    let names: Vec<&str> = [Phase::Probe, Phase::Stop, Phase::WaitIdle, Phase::Start, Phase::WaitRunning]
        .iter()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(names, ["probe", "stop", "wait_idle", "start", "wait_running"]);
}

#[test]
fn responses_without_a_request_are_ignored() {
    let mut a = action(ActionKind::Restart, 1, Some(1));
    assert!(a.handle_response(status(&["idle"]), t(0)).is_none());
    assert_eq!(a.phase(), Phase::Stop);
    assert_eq!(a.poll_request(t(0)).unwrap().kind, stop(1));
}
