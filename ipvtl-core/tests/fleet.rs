//! Scenarios of the whole [`Fleet`] in virtual time, through the harness.

mod harness;

use harness::*;
use ipvtl_core::{
    ActionError, ActionKind, BatchFilter, BatchSpec, BatchTarget, ChannelState, Event, Health, Phase, ServerId, Targets,
};

fn sid(s: &str) -> ServerId {
    ServerId::from(s)
}

#[test]
fn restart_through_the_fleet_watches_the_channel() {
    let mut h = Harness::new(
        config(),
        vec![(
            server(1),
            FakeServer::new(&[ChState::Running, ChState::Running]).with_timings(350, 250).with_latency(10),
        )],
    );
    h.run_until(t(100));
    let id = h.submit("s1", 2, ActionKind::Restart).unwrap();
    let busy = h.submit("s1", 2, ActionKind::Stop).unwrap_err();
    assert_eq!(busy, ActionError::Busy { server: sid("s1"), channel: ch(2), holder: id });
    assert!(h.submit("s1", 1, ActionKind::Stop).is_ok(), "another channel is free");
    assert!(h.run_until_idle(t(10_000)));
    let reports = h.reports();
    assert_eq!(reports.len(), 2);
    let r = reports.iter().find(|r| r.action == Some(id)).unwrap();
    assert!(r.is_ok(), "{}", r.summary());
    // Stop at 100 answered at 110; idle seen at the first check at or after
    // 450; start answered 10 ms after; running 250 ms after the start.
    let kinds: Vec<Phase> = r.phases.iter().map(|p| p.phase).collect();
    assert_eq!(kinds, [Phase::Stop, Phase::WaitIdle, Phase::Start, Phase::WaitRunning]);
    assert_eq!(r.phase_duration(Phase::Stop), Some(ms(10)));
    assert_eq!(r.phases.iter().map(|p| p.duration).sum::<std::time::Duration>(), r.duration());
    assert!(r.phase_duration(Phase::WaitIdle).unwrap() >= ms(340));
    assert!(r.phase_duration(Phase::WaitRunning).unwrap() >= ms(240));
    // The server saw stop, then start, once each.
    let commands: Vec<&str> = h.paths_to("s1").into_iter().filter(|p| p.contains("channel2")).collect();
    assert_eq!(commands, ["/channel2?stop", "/channel2?start"]);
    let seen = &h.servers[&sid("s1")].seen;
    let stop_at = seen.iter().find(|(_, p)| p == "/channel2?stop").unwrap().0;
    let start_at = seen.iter().find(|(_, p)| p == "/channel2?start").unwrap().0;
    assert!(stop_at + ms(350) <= start_at, "start only after the channel went idle");
    assert_eq!(h.fleet.state(&sid("s1")).unwrap().status.as_ref().unwrap().channels[1].state, ChannelState::Running);
    // The lock is free again.
    assert!(h.submit("s1", 2, ActionKind::Restart).is_ok());
}

#[test]
fn action_events_come_in_causal_order() {
    let mut h = Harness::simple(config(), 1, 1);
    h.run_until(t(50));
    h.submit("s1", 1, ActionKind::Restart).unwrap();
    assert!(h.run_until_idle(t(10_000)));
    let kinds: Vec<&str> =
        h.events.iter().map(|(_, e)| e.kind()).filter(|k| *k != "sweep_finished" && *k != "health_changed").collect();
    // The channel changes the action saw come before the action's end.
    let last_change = kinds.iter().rposition(|k| *k == "channel_state_changed").unwrap();
    let finished = kinds.iter().position(|k| *k == "action_finished").unwrap();
    assert!(last_change < finished, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "action_started").count(), 1);
    let started = kinds.iter().position(|k| *k == "action_started").unwrap();
    assert!(started < finished);
}

#[test]
fn refusals_send_nothing() {
    let mut h = Harness::simple(config(), 2, 2);
    h.run_until(t(50));
    let before = h.sent.len();
    let table: Vec<(&str, u32, &str)> = vec![("s1", 3, "channel_not_found"), ("nope", 1, "server_not_found")];
    for (server, channel, kind) in table {
        let e = h.submit(server, channel, ActionKind::Restart).unwrap_err();
        assert_eq!(e.kind(), kind);
        assert!(e.is_refusal());
    }
    assert!(h.fleet.set_maintenance(&sid("s2"), true));
    assert_eq!(h.submit("s2", 1, ActionKind::Start).unwrap_err(), ActionError::Maintenance { server: sid("s2") });
    h.pump();
    assert_eq!(h.sent.len(), before);
    assert!(h.events_of("action_started").is_empty());
    assert!(h.fleet.is_idle());
}

#[test]
fn down_and_hung_servers_never_block_the_others() {
    let mut servers = Vec::new();
    for i in 1..=12 {
        let fault = match i % 4 {
            0 => Fault::Hang,
            1 => Fault::Down,
            _ => Fault::None,
        };
        servers.push((server(i), FakeServer::new(&[ChState::Running]).with_fault(fault).with_latency(20)));
    }
    let mut h = Harness::new(config(), servers);
    h.run_until(t(10_500));
    let healthy: Vec<ServerId> = (1..=12).filter(|i| i % 4 >= 2).map(|i| sid(&format!("s{i}"))).collect();
    // Every healthy server is polled in every sweep: 11 sweeps, at 0 s to 10 s.
    for s in &healthy {
        let polls = h.sent.iter().filter(|x| &x.server == s).count();
        assert_eq!(polls, 11, "{s}");
        assert_eq!(h.fleet.state(s).unwrap().health, Health::Online);
    }
    for i in [1, 5, 9] {
        assert_eq!(h.fleet.state(&sid(&format!("s{i}"))).unwrap().health, Health::Offline);
    }
    for i in [4, 8, 12] {
        let state = h.fleet.state(&sid(&format!("s{i}"))).unwrap();
        assert_eq!(state.health, Health::Offline);
        assert_eq!(state.error.as_ref().unwrap().kind(), "timeout");
    }
    // Backed off: the dead ones were polled far less.
    let dead_polls = h.sent.iter().filter(|x| x.server == sid("s4")).count();
    assert!(dead_polls <= 5, "{dead_polls}");
    assert_eq!(h.max_in_flight.0, 4, "the cap was reached and never passed");
    let sweeps = h.events_of("sweep_finished").len();
    assert_eq!(sweeps, 11);
}

#[test]
fn a_blackholed_transport_is_ended_by_the_core() {
    let mut h = Harness::new(
        config(),
        vec![
            (server(1), FakeServer::new(&[ChState::Idle]).with_fault(Fault::Blackhole)),
            (server(2), FakeServer::new(&[ChState::Idle])),
        ],
    );
    h.run_until(t(2_500));
    let state = h.fleet.state(&sid("s1")).unwrap();
    assert_eq!(state.error.as_ref().unwrap().kind(), "timeout");
    assert_eq!(state.health, Health::Offline);
    let Event::SweepFinished { duration, failed, ok, .. } = h.events_of("sweep_finished")[0] else { unreachable!() };
    assert_eq!((*duration, *ok, *failed), (ms(400), 1, 1));
    assert_eq!(h.fleet.poller().in_flight(), (0, 0));
}

#[test]
fn flapping_and_slow_servers_settle() {
    let mut h = Harness::new(
        config(),
        vec![
            (server(1), FakeServer::new(&[ChState::Idle]).with_fault(Fault::Flapping(3_000))),
            (server(2), FakeServer::new(&[ChState::Idle]).with_fault(Fault::Slow(250))),
            (server(3), FakeServer::new(&[ChState::Idle]).with_fault(Fault::Slow(400))),
        ],
    );
    h.run_until(t(12_000));
    let s2 = h.fleet.state(&sid("s2")).unwrap();
    assert_eq!(s2.health, Health::Online);
    assert_eq!(s2.latency, Some(ms(255)));
    assert_eq!(h.fleet.state(&sid("s3")).unwrap().health, Health::Offline, "always past the timeout");
    let flaps: Vec<(Health, Health)> = h
        .events_of("health_changed")
        .into_iter()
        .filter_map(|e| match e {
            Event::HealthChanged { server, from, to, .. } if server.as_str() == "s1" => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert!(flaps.len() >= 3, "{flaps:?}");
}

#[test]
fn refresh_through_the_fleet_answers_with_refreshed() {
    let mut h = Harness::simple(config(), 3, 1);
    h.run_until(t(500));
    h.fleet.refresh(&sid("s2")).unwrap();
    assert!(h.fleet.refresh(&sid("zz")).is_err());
    h.pump();
    let last = h.sent.last().unwrap();
    assert_eq!((last.server.as_str(), last.lane), ("s2", Lane::Priority));
    h.run_until(t(600));
    assert_eq!(h.events_of("refreshed").len(), 1);
}

#[test]
fn batch_runs_every_target_within_max_parallel() {
    let mut servers = Vec::new();
    for i in 1..=4 {
        let mut c = server(i);
        c.tags = vec![if i <= 3 { "edge".into() } else { "core".into() }];
        servers.push((c, FakeServer::new(&[ChState::Running, ChState::Idle, ChState::Running])));
    }
    let mut h = Harness::new(config(), servers);
    h.run_until(t(100));
    let spec = BatchSpec {
        max_parallel: 2,
        ..BatchSpec::new(
            ActionKind::Restart,
            Targets::Filter(BatchFilter {
                tags: vec!["edge".into()],
                states: vec![ChannelState::Running],
                ..Default::default()
            }),
        )
    };
    let plan = h.fleet.plan_batch(&spec).unwrap();
    assert_eq!(plan.len(), 6);
    assert!(plan.iter().all(|t| t.channel != ch(2) && t.server != sid("s4")));
    let batch = h.fleet.submit_batch(spec, h.now).unwrap();
    h.pump();
    assert!(h.run_until_idle(t(60_000)));
    let mut running = 0usize;
    let mut peak = 0usize;
    for (_, e) in &h.events {
        match e {
            Event::ActionStarted { batch: Some(b), .. } if *b == batch => running += 1,
            Event::ActionFinished { report } if report.batch == Some(batch) => running -= 1,
            _ => {}
        }
        peak = peak.max(running);
    }
    assert_eq!(peak, 2);
    let finished = h.events_of("batch_finished");
    assert_eq!(finished.len(), 1);
    let Event::BatchFinished { report } = finished[0] else { unreachable!() };
    let targets: Vec<BatchTarget> =
        report.reports.iter().map(|r| BatchTarget { server: r.server.clone(), channel: r.channel }).collect();
    assert_eq!(targets, plan, "one report per target, in plan order");
    assert_eq!(report.ok(), 6);
    assert!(report.is_ok());
    assert_eq!(h.events_of("batch_progress").len(), 6);
}

#[test]
fn batch_stops_on_the_first_failure() {
    let servers = vec![
        (server(1), FakeServer::new(&[ChState::Running])),
        (server(2), FakeServer::new(&[ChState::Running]).with_fault(Fault::Http(500))),
        (server(3), FakeServer::new(&[ChState::Running])),
        (server(4), FakeServer::new(&[ChState::Running])),
    ];
    let mut h = Harness::new(config(), servers);
    let targets: Vec<BatchTarget> =
        (1..=4).map(|i| BatchTarget { server: sid(&format!("s{i}")), channel: ch(1) }).collect();
    let spec = BatchSpec {
        max_parallel: 1,
        stop_on_failure: true,
        ..BatchSpec::new(ActionKind::Stop, Targets::Channels(targets))
    };
    h.fleet.submit_batch(spec, h.now).unwrap();
    assert!(h.run_until_idle(t(60_000)));
    let Event::BatchFinished { report } = h.events_of("batch_finished")[0] else { unreachable!() };
    assert_eq!(report.reports.len(), 4);
    let kinds: Vec<&str> = report.reports.iter().map(|r| r.outcome.as_ref().err().map_or("ok", |e| e.kind())).collect();
    // s2's status is a 500: the probe fails (its count was never known).
    assert_eq!(kinds, ["ok", "probe_failed", "skipped", "skipped"]);
    assert!(report.stopped_early.is_some());
    assert_eq!((report.ok(), report.failed(), report.skipped()), (1, 1, 2));
    assert!(!report.is_ok());
    assert!(h.paths_to("s3").iter().all(|p| *p == "/status"), "skipped targets get no command");
}

#[test]
fn batch_refusals_are_reported_not_run() {
    let mut h = Harness::simple(config(), 2, 1);
    h.run_until(t(100));
    let holder = h.submit("s1", 1, ActionKind::Stop).unwrap();
    let targets = vec![
        BatchTarget { server: sid("s1"), channel: ch(1) },
        BatchTarget { server: sid("s2"), channel: ch(5) },
        BatchTarget { server: sid("s9"), channel: ch(1) },
        BatchTarget { server: sid("s2"), channel: ch(1) },
    ];
    let dup = BatchSpec::new(ActionKind::Start, Targets::Channels(vec![targets[0].clone(), targets[0].clone()]));
    assert!(h.fleet.submit_batch(dup, h.now).is_err());
    let zero = BatchSpec { max_parallel: 0, ..BatchSpec::new(ActionKind::Start, Targets::Channels(vec![])) };
    assert!(h.fleet.submit_batch(zero, h.now).is_err());
    h.fleet.submit_batch(BatchSpec::new(ActionKind::Restart, Targets::Channels(targets)), h.now).unwrap();
    assert!(h.run_until_idle(t(60_000)));
    let Event::BatchFinished { report } = h.events_of("batch_finished")[0] else { unreachable!() };
    let kinds: Vec<&str> = report.reports.iter().map(|r| r.outcome.as_ref().err().map_or("ok", |e| e.kind())).collect();
    assert_eq!(kinds, ["busy", "channel_not_found", "server_not_found", "ok"]);
    assert!(matches!(&report.reports[0].outcome, Err(ActionError::Busy { holder: hld, .. }) if *hld == holder));
    // An empty plan finishes at once.
    let empty = BatchSpec::new(ActionKind::Start, Targets::Channels(vec![]));
    h.fleet.submit_batch(empty, h.now).unwrap();
    h.pump();
    assert_eq!(h.events_of("batch_finished").len(), 2);
}

#[test]
fn reload_mid_action_lets_the_action_finish() {
    let mut h = Harness::simple(config(), 3, 1);
    h.run_until(t(100));
    h.submit("s2", 1, ActionKind::Restart).unwrap();
    h.run_for(50);
    let summary = h.fleet.reload(vec![server(1), server(3), server(4)], h.now);
    h.servers.insert(sid("s4"), FakeServer::new(&[ChState::Idle]));
    assert_eq!(summary.removed, [sid("s2")]);
    assert!(h.run_until_idle(t(20_000)));
    assert_eq!(h.reports().len(), 1);
    assert!(h.fleet.state(&sid("s2")).is_none());
    assert_eq!(h.fleet.state(&sid("s4")).unwrap().health, Health::Online);
    // Submitting to the removed server is refused now.
    assert_eq!(h.submit("s2", 1, ActionKind::Stop).unwrap_err().kind(), "server_not_found");
}

#[test]
fn snapshot_lists_servers_in_order() {
    let mut h = Harness::simple(config(), 3, 2);
    h.run_until(t(1_500));
    let snap = h.fleet.snapshot(h.now);
    assert_eq!(snap.taken_at, t(1_500));
    assert_eq!(snap.sweep, 2);
    let ids: Vec<&str> = snap.servers.iter().map(|s| s.config.id.as_str()).collect();
    assert_eq!(ids, ["s1", "s2", "s3"]);
    assert!(snap.servers.iter().all(|s| s.state.health == Health::Online));
    assert_eq!(Health::ALL.map(|health| snap.count(health)), [3, 0, 0, 0]);
    assert_eq!(h.fleet.server_snapshot(&sid("s2")).unwrap(), snap.servers[1]);
    assert!(h.fleet.server_snapshot(&sid("s9")).is_none());
}
