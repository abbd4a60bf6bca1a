//! Channel actions against the simulator: order, timings, locks, events.

mod common;

use std::time::Duration;

use ipvtl_client::core::{Phase, RequestKind};
use ipvtl_client::{ActionKind, BatchFilter, BatchSpec, ChannelState, ClientError, Event, Settings, Targets};
use ipvtl_sim::{Action, Fault};

fn running_channel(sim: &ipvtl_sim::SimFleet, id: &str) -> u32 {
    (1..=sim.channels())
        .find(|&ch| sim.channel_state(id, ch) == Some(ChannelState::Running))
        .expect("a running channel")
}

#[test]
fn restart_sends_stop_then_start_once_and_times_each_phase() {
    let sim = common::sim(3);
    let cluster = common::cluster(&sim, common::settings());
    let id = sim.ids()[1].clone();
    let ch = running_channel(&sim, &id);
    sim.reset_records();
    let report = cluster.blocking().restart(&id, ch).expect("restart succeeds");
    assert!(report.is_ok());
    assert_eq!(report.final_state, Some(ChannelState::Running));
    let phases: Vec<Phase> = report.phases.iter().map(|p| p.phase).collect();
    // The channel count was unknown (never polled): the action probed first.
    assert_eq!(phases, [Phase::Probe, Phase::Stop, Phase::WaitIdle, Phase::Start, Phase::WaitRunning]);
    let commands = sim.record(&id).unwrap().commands;
    let seen: Vec<(u32, Action)> = commands.iter().map(|c| (c.channel, c.action)).collect();
    assert_eq!(seen, [(ch, Action::Stop), (ch, Action::Start)]);
    // It watched for idle instead of sleeping a fixed time: start went out
    // only after the simulator's 300 ms of `stopping`.
    let gap = commands[1].at - commands[0].at;
    assert!(gap >= Duration::from_millis(300), "start sent {gap:?} after stop");
    let wait_idle = report.phase_duration(Phase::WaitIdle).unwrap();
    assert!(wait_idle >= Duration::from_millis(250), "wait_idle {wait_idle:?}");
    assert_eq!(sim.channel_state(&id, ch), Some(ChannelState::Running));
    assert_eq!(RequestKind::Stop(ipvtl_client::core::ChannelId::new(ch).unwrap()).path(), format!("/channel{ch}?stop"));
}

#[test]
fn a_second_restart_of_the_same_channel_is_busy() {
    let sim = common::sim(2);
    let cluster = common::cluster(&sim, common::settings());
    let id = sim.ids()[0].clone();
    cluster.blocking().poll_all().unwrap();
    let ch = running_channel(&sim, &id);
    sim.reset_records();
    let first = cluster.submit(&id, ch, ActionKind::Restart).expect("first is accepted");
    let second = cluster.submit(&id, ch, ActionKind::Restart);
    assert!(matches!(second, Err(ClientError::Busy { .. })), "second: {:?}", second.err());
    let report = smol::block_on(first).expect("first succeeds");
    assert!(report.is_ok());
    let seen: Vec<Action> = sim.record(&id).unwrap().commands.iter().map(|c| c.action).collect();
    assert_eq!(seen, [Action::Stop, Action::Start], "the server saw stop,start once");
    // Once finished the channel is free again.
    assert!(cluster.blocking().stop(&id, ch).is_ok());
}

#[test]
fn refusals_send_nothing() {
    let sim = common::sim(1);
    let cluster = common::cluster(&sim, common::settings());
    let id = sim.ids()[0].clone();
    cluster.blocking().poll_all().unwrap();
    sim.reset_records();
    let zero = cluster.blocking().restart(&id, 0);
    assert!(matches!(zero, Err(ClientError::ChannelNotFound { channel: 0, count: None, .. })));
    let beyond = cluster.blocking().restart(&id, 5);
    assert!(matches!(beyond, Err(ClientError::ChannelNotFound { channel: 5, count: Some(4), .. })), "{beyond:?}");
    cluster.set_maintenance(&id, true).unwrap();
    assert!(matches!(cluster.blocking().restart(&id, 1), Err(ClientError::Maintenance(_))));
    assert_eq!(sim.record(&id).unwrap().total_requests, 0, "nothing reached the server");
}

#[test]
fn a_failed_stop_aborts_without_starting() {
    let sim = common::sim(1);
    let cluster = common::cluster(&sim, common::settings());
    let id = sim.ids()[0].clone();
    cluster.blocking().poll_all().unwrap();
    sim.set_fault(&id, Some(Fault::RejectCommands));
    sim.reset_records();
    let err = cluster.blocking().restart(&id, 1).unwrap_err();
    let ClientError::ActionFailed(report) = err else { panic!("expected ActionFailed, got {err:?}") };
    assert_eq!(report.outcome.as_ref().unwrap_err().kind(), "stop_failed");
    let starts = sim.record(&id).unwrap().commands.iter().filter(|c| c.action == Action::Start).count();
    assert_eq!(starts, 0, "no start after a failed stop");
}

#[test]
fn a_channel_stuck_stopping_times_out_and_is_not_started() {
    let sim = common::sim(1);
    let settings = Settings { stop_timeout: Duration::from_millis(800), ..common::settings() };
    let cluster = common::cluster(&sim, settings);
    let id = sim.ids()[0].clone();
    cluster.blocking().poll_all().unwrap();
    let ch = running_channel(&sim, &id);
    sim.set_fault(&id, Some(Fault::StuckStopping));
    let err = cluster.blocking().restart(&id, ch).unwrap_err();
    let ClientError::ActionFailed(report) = err else { panic!("expected ActionFailed, got {err:?}") };
    assert_eq!(report.outcome.as_ref().unwrap_err().kind(), "stop_timeout");
    assert_eq!(report.final_state, Some(ChannelState::Stopping));
    let actions: Vec<Action> = sim.record(&id).unwrap().commands.iter().map(|c| c.action).collect();
    assert_eq!(actions, [Action::Stop]);
}

#[test]
fn a_subscriber_sees_the_channel_go_down_and_up() {
    let sim = common::sim(2);
    let cluster = common::cluster(&sim, common::settings());
    let id = sim.ids()[0].clone();
    cluster.blocking().poll_all().unwrap();
    let ch = running_channel(&sim, &id);
    let events = cluster.blocking().subscribe();
    cluster.blocking().restart(&id, ch).unwrap();
    let mut changes = Vec::new();
    let mut finished = false;
    while let Some(e) = events.recv_timeout(Duration::from_secs(2)) {
        match e {
            Event::ChannelStateChanged { server, channel, from, to }
                if server.as_str() == id && channel.get() == ch =>
            {
                changes.push((from, to))
            }
            Event::ActionFinished { report } => {
                finished = report.is_ok();
                break;
            }
            _ => {}
        }
    }
    assert!(finished, "ActionFinished arrives");
    assert_eq!(changes.first().map(|c| c.0.clone()), Some(ChannelState::Running), "{changes:?}");
    assert_eq!(changes.last().map(|c| c.1.clone()), Some(ChannelState::Running), "{changes:?}");
    assert!(changes.iter().any(|c| c.1 == ChannelState::Idle), "went through idle: {changes:?}");
}

#[test]
fn a_restart_does_not_queue_behind_a_slow_sweep() {
    let sim = common::sim(400);
    for id in sim.ids().iter().skip(1) {
        sim.set_fault(id, Some(Fault::Slow(Duration::from_millis(150))));
    }
    let cluster = common::cluster(&sim, Settings { concurrency: 8, ..common::settings() });
    let target = sim.ids()[0].clone();
    cluster.blocking().refresh(&target).unwrap();
    let ch = running_channel(&sim, &target);
    let events = cluster.blocking().subscribe();
    // A sweep of 400 x 150 ms at 8 in flight takes about 7.5 s.
    let sweep = {
        let c = cluster.clone();
        std::thread::spawn(move || c.blocking().poll_all().unwrap())
    };
    std::thread::sleep(Duration::from_millis(200));
    let report = cluster.blocking().restart(&target, ch).unwrap();
    assert!(report.is_ok());
    // The restart ended while the sweep was still going.
    let mut sweep_done_first = false;
    while let Some(e) = events.try_recv() {
        if matches!(e, Event::SweepFinished { .. }) {
            sweep_done_first = true;
        }
    }
    assert!(!sweep_done_first, "the restart waited for the sweep");
    sweep.join().unwrap();
}

#[test]
fn batch_restarts_matching_channels_with_a_parallel_cap() {
    let sim = common::sim(6);
    let cluster = common::cluster(&sim, common::settings());
    cluster.blocking().poll_all().unwrap();
    let tag = sim.servers()[0].tags[1].clone();
    let spec = BatchSpec {
        max_parallel: 2,
        ..BatchSpec::new(
            ActionKind::Restart,
            Targets::Filter(BatchFilter {
                tags: vec![tag.clone()],
                channels: vec![ipvtl_client::core::ChannelId::new(1).unwrap()],
                ..Default::default()
            }),
        )
    };
    let plan = cluster.plan(&spec).unwrap();
    let expected: Vec<String> =
        sim.servers().iter().filter(|s| s.tags.contains(&tag)).map(|s| s.id.to_string()).collect();
    assert_eq!(plan.iter().map(|t| t.server.to_string()).collect::<Vec<_>>(), expected);
    assert!(!plan.is_empty());
    let events = cluster.blocking().subscribe();
    let report = cluster.blocking().batch(spec).unwrap();
    assert_eq!(report.reports.len(), plan.len());
    assert_eq!(report.ok(), plan.len(), "{report:?}");
    let mut running = 0usize;
    let mut peak = 0usize;
    while let Some(e) = events.try_recv() {
        match e {
            Event::ActionStarted { batch: Some(_), .. } => {
                running += 1;
                peak = peak.max(running);
            }
            Event::ActionFinished { report } if report.batch.is_some() => running -= 1,
            _ => {}
        }
    }
    assert!(peak <= 2, "at most 2 actions at once, saw {peak}");
    for t in &plan {
        let seen: Vec<Action> = sim.record(t.server.as_str()).unwrap().commands.iter().map(|c| c.action).collect();
        assert_eq!(seen, [Action::Stop, Action::Start]);
    }
}

#[test]
fn a_stalled_server_reports_each_running_channel_once_and_a_restart_cures_one() {
    let sim = common::sim(2);
    let cluster = common::cluster(&sim, common::settings());
    let id = sim.ids()[0].clone();
    cluster.blocking().poll_all().unwrap();
    let running: Vec<u32> =
        (1..=sim.channels()).filter(|&ch| sim.channel_state(&id, ch) == Some(ChannelState::Running)).collect();
    assert!(running.len() >= 2, "the test needs two running channels: {running:?}");
    let events = cluster.blocking().subscribe();
    sim.set_fault(&id, Some(Fault::Stalled));
    // Two sweeps: the first sees 0 fps, the second must not repeat the alarm.
    cluster.blocking().poll_all().unwrap();
    cluster.blocking().poll_all().unwrap();
    let stalled = |events: &ipvtl_client::blocking::Subscription| {
        std::iter::from_fn(|| events.try_recv())
            .filter_map(|e| match e {
                Event::ChannelStalled { server, channel, reason } if server.as_str() == id => {
                    Some((channel.get(), reason))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let seen = stalled(&events);
    let expected: Vec<_> = running.iter().map(|&ch| (ch, ipvtl_client::core::StallReason::ZeroFps)).collect();
    assert_eq!(seen, expected, "one alarm per running channel, none for idle ones, none repeated");
    let snapshot = cluster.server(&id).unwrap();
    let status = snapshot.state.status.as_ref().unwrap();
    assert!(running.iter().all(|&ch| status.channels[ch as usize - 1].stats.is_some_and(|s| s.fps == 0.0)));

    // Restarting one channel cures it (the fault stays on for the others).
    let cured = running[0];
    assert!(cluster.blocking().restart(&id, cured).unwrap().is_ok());
    cluster.blocking().poll_all().unwrap();
    let status = cluster.server(&id).unwrap().state.status.unwrap();
    assert!(status.channels[cured as usize - 1].stats.is_some_and(|s| s.fps > 0.0));
    assert!(status.channels[running[1] as usize - 1].stats.is_some_and(|s| s.fps == 0.0));
    assert_eq!(stalled(&events), [], "the cured channel raised nothing new, the others no repeat");
}
