//! Property tests of the machines' invariants over random fleets, faults,
//! latencies and interleavings (STYLE.md, Tests item 3). The harness itself
//! checks the caps and the coherence of health events at every step.

mod harness;

use std::collections::{BTreeMap, BTreeSet};

use harness::*;
use ipvtl_core::{
    ActionError, ActionId, ActionKind, BatchFilter, BatchSpec, BatchTarget, ChannelState, Event, FleetConfig, Health,
    RequestKind, ServerId, Targets,
};
use proptest::prelude::*;

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::None),
        1 => Just(Fault::Down),
        1 => Just(Fault::Hang),
        1 => Just(Fault::Http(500)),
        1 => Just(Fault::Malformed),
        1 => Just(Fault::TooLarge),
        1 => (0u64..500).prop_map(Fault::Slow),
        1 => (300u64..4_000).prop_map(Fault::Flapping),
    ]
}

fn ch_state() -> impl Strategy<Value = ChState> {
    prop_oneof![Just(ChState::Idle), Just(ChState::Running), Just(ChState::Stopping)]
}

#[derive(Clone, Debug)]
struct FakeSpec {
    fault: Fault,
    latency: u64,
    channels: Vec<ChState>,
    stop_ms: u64,
    start_ms: u64,
}

fn fake_spec(max_channels: usize) -> impl Strategy<Value = FakeSpec> {
    (fault(), 0u64..350, prop::collection::vec(ch_state(), 0..=max_channels), 0u64..2_500, 0u64..2_500).prop_map(
        |(fault, latency, channels, stop_ms, start_ms)| FakeSpec { fault, latency, channels, stop_ms, start_ms },
    )
}

fn build(config: FleetConfig, specs: &[FakeSpec]) -> Harness {
    let servers = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let fake = FakeServer::new(&s.channels)
                .with_fault(s.fault)
                .with_latency(s.latency)
                .with_timings(s.stop_ms, s.start_ms);
            (server(i + 1), fake)
        })
        .collect();
    Harness::new(config, servers)
}

fn poller_config() -> impl Strategy<Value = FleetConfig> {
    (1usize..5, 1usize..3, 0u32..4, 1u64..6).prop_map(|(cap, prio, offline_after, backoff)| {
        let mut c = config();
        c.poller.max_concurrent = cap;
        c.poller.max_priority = prio;
        c.poller.offline_after = offline_after;
        c.poller.backoff_max = ms(backoff * 1_000);
        c
    })
}

/// Sweeps a server sits out after `f` failures in a row (the documented rule).
fn model_skips(f: u32, c: &FleetConfig) -> u64 {
    if f <= 1 {
        return 0;
    }
    let exp = (1u64 << (f - 1).min(32)) - 1;
    let cap = (c.poller.backoff_max.as_millis() / c.poller.interval.as_millis()) as u64;
    exp.min(cap.saturating_sub(1))
}

#[derive(Default, Clone)]
struct Model {
    failures: u32,
    skip_until: u64,
    health: Option<Health>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Caps hold; every eligible server is polled exactly once per sweep
    /// and no server twice; sweep counts add up; health follows the
    /// hysteresis rule; refreshes are answered once.
    #[test]
    fn poll_schedule_matches_the_model(
        config in poller_config(),
        specs in prop::collection::vec(fake_spec(2), 1..9),
        refreshes in prop::collection::vec((0u64..8_000, 0usize..9), 0..6),
    ) {
        let mut h = build(config.clone(), &specs);
        let n = specs.len();
        let mut refreshes = refreshes;
        refreshes.sort();
        let mut asked = 0usize;
        for (at, i) in &refreshes {
            h.run_until(t(*at));
            let id = ServerId::from(format!("s{}", i % n + 1));
            h.fleet.refresh(&id).unwrap();
            asked += 1;
            h.pump();
        }
        h.run_until(t(9_000));

        // Replay the schedule against the model.
        let mut model: BTreeMap<ServerId, Model> =
            (1..=n).map(|i| (ServerId::from(format!("s{i}")), Model::default())).collect();
        let mut eligible: BTreeMap<u64, BTreeSet<ServerId>> = BTreeMap::new();
        let mut counted: BTreeMap<u64, Vec<ServerId>> = BTreeMap::new();
        // A poll under way when a sweep starts serves that sweep too, and
        // every other sweep that starts before it ends.
        let mut current = 0;
        for tick in &h.timeline {
            match tick {
                Tick::SweepStart { sweep, in_flight } => {
                    // Sweeps start only once the previous one left its queue.
                    if let Some(prev) = eligible.get(&current) {
                        let polled: BTreeSet<ServerId> = counted.get(&current).cloned().unwrap_or_default().into_iter().collect();
                        prop_assert_eq!(&polled, prev, "sweep {} started before {} was sent out", sweep, current);
                    }
                    current = *sweep;
                    let mut set: BTreeSet<ServerId> = model
                        .iter()
                        .filter(|(id, m)| !in_flight.contains(*id) && m.skip_until < *sweep)
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in in_flight {
                        set.insert(id.clone());
                        counted.entry(current).or_default().push(id.clone());
                    }
                    eligible.insert(*sweep, set);
                }
                Tick::Sent { server, lane, sweep } => {
                    prop_assert_eq!(*sweep, current);
                    let list = counted.entry(current).or_default();
                    let is_eligible = eligible.get(&current).is_some_and(|e| e.contains(server));
                    match lane {
                        Lane::Sweep => {
                            prop_assert!(is_eligible, "{} polled in sweep {} but not eligible", server, current);
                            prop_assert!(!list.contains(server), "{} polled twice in sweep {}", server, current);
                            list.push(server.clone());
                        }
                        _ => {
                            if is_eligible && !list.contains(server) {
                                list.push(server.clone());
                            }
                        }
                    }
                }
                Tick::Done { server, ok, unreachable, sweep } => {
                    let m = model.get_mut(server).unwrap();
                    if *ok {
                        *m = Model { health: Some(Health::Online), ..Model::default() };
                    } else {
                        m.failures += 1;
                        m.skip_until = sweep + model_skips(m.failures, &config);
                        if m.failures >= config.poller.offline_after.max(1) {
                            m.health = Some(if *unreachable { Health::Offline } else { Health::Error });
                        }
                    }
                }
            }
        }
        // Every sweep that finished: its counts add up to the fleet, and it
        // polled exactly its eligible servers.
        let mut finished = 0;
        for (_, e) in &h.events {
            if let Event::SweepFinished { sweep, ok, failed, skipped, .. } = e {
                finished += 1;
                prop_assert_eq!(ok + failed + skipped, n, "sweep {}", sweep);
                let polled = counted.get(sweep).map_or(0, Vec::len);
                prop_assert_eq!(ok + failed, polled, "sweep {}", sweep);
                prop_assert_eq!(eligible[sweep].len(), polled, "sweep {}", sweep);
            }
        }
        prop_assert!(finished >= 2, "{} sweeps finished in 9 s", finished);
        for (id, m) in &model {
            let state = h.fleet.state(id).unwrap();
            prop_assert_eq!(state.health, m.health.unwrap_or(Health::Unknown), "{}", id);
            prop_assert_eq!(state.consecutive_failures, m.failures, "{}", id);
            prop_assert_eq!(state.health, h.told_health.get(id).copied().unwrap_or(Health::Unknown));
        }
        let refreshed = h.events_of("refreshed").len();
        prop_assert!(refreshed <= asked && (asked == 0) == (refreshed == 0), "{} refreshed for {} asked", refreshed, asked);
        prop_assert!(h.max_in_flight.0 <= config.poller.max_concurrent);
    }

    /// Actions: one per channel (a second submit is Busy), stop before
    /// start and each at most once, a restart starts only an idle channel,
    /// every action finishes exactly once.
    #[test]
    fn actions_keep_their_promises(
        specs in prop::collection::vec(fake_spec(3), 1..4),
        commands in prop::collection::vec((0u64..6_000, 0usize..4, 1u32..5, 0u8..3), 1..14),
        probe_first in any::<bool>(),
    ) {
        let mut h = build(config(), &specs);
        let n = specs.len();
        if !probe_first {
            h.run_until(t(600));
        }
        let mut commands = commands;
        commands.sort();
        let mut accepted: BTreeSet<ActionId> = BTreeSet::new();
        let mut kinds: BTreeMap<ActionId, ActionKind> = BTreeMap::new();
        for (at, s, channel, k) in commands {
            h.run_until(t(at));
            let kind = [ActionKind::Start, ActionKind::Stop, ActionKind::Restart][k as usize];
            let server = format!("s{}", s % n + 1);
            let holder = h.fleet.actions().into_iter().find(|a| a.server.as_str() == server && a.channel.get() == channel);
            match h.submit(&server, channel, kind) {
                Ok(id) => {
                    prop_assert!(holder.is_none(), "a second action on a held channel");
                    accepted.insert(id);
                    kinds.insert(id, kind);
                }
                Err(ActionError::Busy { holder: who, .. }) => {
                    prop_assert_eq!(Some(who), holder.map(|a| a.action));
                }
                Err(e) => {
                    prop_assert!(holder.is_none(), "a held channel must answer Busy, not {}", e);
                    prop_assert_eq!(e.kind(), "channel_not_found");
                }
            }
        }
        prop_assert!(h.run_until_idle(t(120_000)), "actions never finished");
        let started: Vec<ActionId> = h.events.iter().filter_map(|(_, e)| match e {
            Event::ActionStarted { action, .. } => Some(*action),
            _ => None,
        }).collect();
        let reports = h.reports();
        let finished: Vec<ActionId> = reports.iter().map(|r| r.action.expect("an accepted action has an id")).collect();
        prop_assert_eq!(started.len(), accepted.len());
        prop_assert_eq!(finished.len(), accepted.len(), "one ActionFinished per ActionStarted");
        prop_assert_eq!(finished.iter().copied().collect::<BTreeSet<_>>(), accepted.clone());
        for r in &reports {
            let commands: Vec<RequestKind> =
                h.sent.iter().filter(|s| s.action == r.action).map(|s| s.kind).collect();
            let names: Vec<&str> = commands.iter().map(|k| match k {
                RequestKind::Stop(_) => "stop",
                RequestKind::Start(_) => "start",
                _ => "?",
            }).collect();
            let ok = r.is_ok();
            match kinds[&r.action.expect("an accepted action has an id")] {
                ActionKind::Restart => {
                    prop_assert!(names.is_empty() || names == ["stop"] || names == ["stop", "start"], "{:?}", names);
                    if ok { prop_assert_eq!(&names, &["stop", "start"]); }
                    if matches!(r.outcome, Err(ActionError::StopFailed { .. } | ActionError::StopTimeout { .. })) {
                        prop_assert!(!names.contains(&"start"), "started after a failed stop");
                    }
                }
                ActionKind::Stop => prop_assert!(names.is_empty() || names == ["stop"], "{:?}", names),
                ActionKind::Start => prop_assert!(names.is_empty() || names == ["start"], "{:?}", names),
                _ => unreachable!(),
            }
            // A restart's start reaches a channel the action saw idle.
            if kinds[&r.action.expect("an accepted action has an id")] == ActionKind::Restart {
                for s in h.sent.iter().filter(|s| s.action == r.action && matches!(s.kind, RequestKind::Start(_))) {
                    prop_assert!(
                        matches!(s.state_at_server, Some(ChState::Idle) | None),
                        "start sent to a channel in {:?}", s.state_at_server
                    );
                }
            }
            prop_assert_eq!(r.phases.iter().map(|p| p.duration).sum::<std::time::Duration>(), r.duration());
            if ok {
                let want = if kinds[&r.action.expect("an accepted action has an id")] == ActionKind::Stop { ChannelState::Idle } else { ChannelState::Running };
                prop_assert_eq!(r.final_state.clone(), Some(want));
            }
        }
        // No lock outlives its action.
        prop_assert!(h.fleet.actions().is_empty());
    }

    /// Batches: one report per planned target in plan order, never more
    /// than max_parallel actions at once, one BatchFinished, progress
    /// counting up to the total.
    #[test]
    fn batches_report_every_target(
        specs in prop::collection::vec(fake_spec(3), 1..4),
        kind in 0u8..3,
        max_parallel in 1usize..4,
        stop_on_failure in any::<bool>(),
        explicit in prop::collection::vec((0usize..4, 1u32..5), 0..8),
        use_filter in any::<bool>(),
        states in prop::collection::vec(ch_state(), 0..2),
        blocker in prop::option::of((0usize..4, 1u32..4)),
    ) {
        let mut h = build(config(), &specs);
        let n = specs.len();
        h.run_until(t(600));
        if let Some((s, c)) = blocker {
            let _ = h.submit(&format!("s{}", s % n + 1), c, ActionKind::Stop);
        }
        let kind = [ActionKind::Start, ActionKind::Stop, ActionKind::Restart][kind as usize];
        let targets = if use_filter {
            let states = states.iter().map(|s| match s {
                ChState::Idle => ChannelState::Idle,
                ChState::Running => ChannelState::Running,
                ChState::Stopping => ChannelState::Stopping,
            }).collect();
            Targets::Filter(BatchFilter { states, ..Default::default() })
        } else {
            let mut seen = BTreeSet::new();
            let list = explicit
                .iter()
                .map(|(s, c)| BatchTarget { server: ServerId::from(format!("s{}", s % n + 1)), channel: ch(*c) })
                .filter(|t| seen.insert(t.clone()))
                .collect();
            Targets::Channels(list)
        };
        let spec = BatchSpec { max_parallel, stop_on_failure, ..BatchSpec::new(kind, targets) };
        let plan = h.fleet.plan_batch(&spec).unwrap();
        let batch = h.fleet.submit_batch(spec, h.now).unwrap();
        h.pump();
        prop_assert!(h.run_until_idle(t(200_000)));
        let mut running = 0usize;
        let mut last_done = 0usize;
        let mut finished = Vec::new();
        for (_, e) in &h.events {
            match e {
                Event::ActionStarted { batch: Some(b), .. } if *b == batch => {
                    running += 1;
                    prop_assert!(running <= max_parallel, "{} actions of the batch at once", running);
                }
                Event::ActionFinished { report } if report.batch == Some(batch) => running -= 1,
                Event::BatchProgress(p) if p.batch == batch => {
                    prop_assert_eq!(p.done, last_done + 1);
                    prop_assert_eq!(p.total, plan.len());
                    prop_assert!(p.running <= max_parallel);
                    last_done = p.done;
                }
                Event::BatchFinished { report } if report.batch == batch => finished.push(report.clone()),
                _ => {}
            }
        }
        prop_assert_eq!(finished.len(), 1);
        let report = &finished[0];
        let got: Vec<BatchTarget> =
            report.reports.iter().map(|r| BatchTarget { server: r.server.clone(), channel: r.channel }).collect();
        prop_assert_eq!(&got, &plan);
        prop_assert_eq!(report.ok() + report.failed() + report.skipped(), plan.len());
        prop_assert_eq!(last_done + report.skipped(), plan.len());
        if !stop_on_failure {
            prop_assert_eq!(report.skipped(), 0);
        }
        prop_assert!(report.reports.iter().all(|r| r.batch == Some(batch) && r.kind == kind));
    }
}
