//! Desired state and healing against the simulator, over real sockets:
//! stalled channels are healed once each, a channel that never starts is
//! left alone as degraded, and a fleet losing 40 % of its servers at once
//! gets no restart.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant as WallInstant};

use ipvtl_client::core::Instant as CoreInstant;
use ipvtl_client::{
    blocking, ClientError, Desired, Event, HealPolicy, Healing, PolicyInput, ReconcilerInput, Scope, ScopeInput,
    Settings,
};
use ipvtl_sim::{Action, Fault, SimConfig, SimFleet};

fn settings() -> Settings {
    Settings { background: true, interval: Duration::from_millis(200), ..common::settings() }
}

fn sim(count: usize, channels: u32, running: f64) -> SimFleet {
    let config = SimConfig::new(count)
        .with_channels(channels)
        .with_initial_running(running)
        .with_stopping_time(Duration::from_millis(300))
        .with_start_delay(Duration::from_millis(100));
    SimFleet::start(config).expect("simulator starts on loopback")
}

fn policy(grace_ms: u64, limit: u32, backoff_ms: u64) -> Healing {
    PolicyInput {
        grace_ms: Some(grace_ms),
        limit: Some(limit),
        backoff_ms: Some(backoff_ms),
        window_ms: Some(60_000),
        ..PolicyInput::default()
    }
    .into_healing()
    .expect("a valid policy")
}

/// Collects events until `done` holds for what was collected, or `within`.
fn collect(sub: &blocking::Subscription, within: Duration, done: impl FnMut(&[Event]) -> bool) -> (Vec<Event>, bool) {
    let (seen, ok) = collect_timed(sub, None, within, done);
    (seen.into_iter().map(|(_, e)| e).collect(), ok)
}

/// The same, with the cluster's core time at which each event was received.
fn collect_timed(
    sub: &blocking::Subscription,
    cluster: Option<&blocking::Cluster>,
    within: Duration,
    mut done: impl FnMut(&[Event]) -> bool,
) -> (Vec<(CoreInstant, Event)>, bool) {
    let end = WallInstant::now() + within;
    let mut seen: Vec<(CoreInstant, Event)> = Vec::new();
    let mut events = Vec::new();
    while !done(&events) {
        let left = end.saturating_duration_since(WallInstant::now());
        if left.is_zero() {
            return (seen, false);
        }
        if let Some(e) = sub.recv_timeout(left.min(Duration::from_millis(100))) {
            let at = cluster.map_or(CoreInstant::ZERO, |c| c.as_async().now());
            seen.push((at, e.clone()));
            events.push(e);
        }
    }
    (seen, true)
}

fn count(events: &[Event], kind: &str) -> usize {
    events.iter().filter(|e| e.kind() == kind).count()
}

fn commands(sim: &SimFleet, id: &str) -> Vec<(u32, Action)> {
    sim.record(id).map(|r| r.commands.iter().map(|c| (c.channel, c.action)).collect()).unwrap_or_default()
}

#[test]
fn ten_stalled_channels_of_a_hundred_servers_are_each_restarted_once() {
    let sim = sim(100, 2, 1.0);
    let cluster = common::cluster(&sim, settings()).blocking();
    cluster.poll_all().unwrap();
    let ids = sim.ids();
    let stalled: Vec<String> = ids.iter().step_by(10).cloned().collect();
    assert_eq!(stalled.len(), 10);
    // Every channel should run, except channel 2 of the servers about to
    // stall: left unmanaged, it stalls too and must never be touched.
    for id in &ids {
        cluster.set_desired(ScopeInput::server(id).into_scope().unwrap(), Desired::Running).unwrap();
        cluster.set_healing(Scope::Server(id.as_str().into()), policy(500, 3, 2_000)).unwrap();
    }
    for id in &stalled {
        cluster.set_desired(ScopeInput::channel(id, 2).into_scope().unwrap(), Desired::Unmanaged).unwrap();
    }
    cluster.configure_reconciler(ReconcilerInput { max_parallel: Some(10), ..Default::default() }).unwrap();
    let sub = cluster.subscribe();
    sim.reset_records();
    for id in &stalled {
        sim.set_fault(id, Some(Fault::Stalled));
    }
    let settings = settings();
    let grace = Duration::from_millis(500);
    // Seen within a sweep or two, healed after the grace within a restart's bounds.
    let budget = settings.interval * 3 + grace + settings.stop_timeout + settings.start_timeout;
    let (events, all_healed) = collect_timed(&sub, Some(&cluster), budget, |ev| count(ev, "drift_ended") >= 10);
    let described: Vec<String> = events.iter().map(|(_, e)| ipvtl_client::core::event::describe(e)).collect();
    assert!(all_healed, "healed within {budget:?}: {described:#?}");
    // No second heal afterwards: watch a few more sweeps.
    let (later, _) = collect_timed(&sub, Some(&cluster), Duration::from_millis(1_500), |_| false);
    let timed: Vec<(CoreInstant, Event)> = events.into_iter().chain(later).collect();

    let mut since = BTreeMap::new();
    let mut started = BTreeMap::new();
    for (at, e) in &timed {
        match e {
            Event::DriftStarted { server, channel, since: from, .. } => {
                assert_eq!(channel.get(), 1, "only the managed channel drifts: {server} {channel}");
                assert!(since.insert(server.to_string(), *from).is_none(), "{server} drifts once");
            }
            Event::HealStarted { heal, .. } => {
                assert!(started.insert(heal.server.to_string(), heal.kind).is_none(), "one heal of {}", heal.server);
                assert_eq!(heal.since, since[heal.server.as_str()]);
                assert!(*at >= heal.since + grace, "{}: healed only after the grace", heal.server);
            }
            Event::HealFinished { ok, server, .. } => assert!(ok, "the heal of {server} succeeded"),
            Event::DriftEnded { server, since: from, .. } => {
                let took = at.saturating_since(*from);
                assert!(took <= budget, "{server}: drift over after {took:?}, within {budget:?}");
            }
            _ => {}
        }
    }
    let events: Vec<Event> = timed.into_iter().map(|(_, e)| e).collect();
    assert_eq!(started.len(), 10, "{started:?}");
    assert!(started.values().all(|k| *k == ipvtl_client::ActionKind::Restart));
    assert_eq!(count(&events, "heal_degraded") + count(&events, "healing_paused"), 0);
    for id in &ids {
        let seen = commands(&sim, id);
        if stalled.contains(id) {
            assert_eq!(seen, [(1, Action::Stop), (1, Action::Start)], "{id}: exactly one stop->start of channel 1");
        } else {
            assert!(seen.is_empty(), "{id} was left alone: {seen:?}");
        }
    }
    assert!(cluster.drifts().is_empty(), "{:?}", cluster.drifts());
    let status = cluster.reconciler_status();
    assert_eq!((status.managed, status.troubled, status.storm, status.heals_in_flight), (190, 0, false, 0));
}

#[test]
fn a_channel_that_never_starts_is_degraded_after_the_limit_then_left_alone() {
    let sim = sim(3, 1, 0.0);
    let cluster = common::cluster(&sim, settings()).blocking();
    cluster.poll_all().unwrap();
    let id = sim.ids()[1].clone();
    sim.set_fault(&id, Some(Fault::RejectCommands));
    let sub = cluster.subscribe();
    sim.reset_records();
    let scope = ScopeInput::channel(&id, 1).into_scope().unwrap();
    cluster.set_desired(scope.clone(), Desired::Running).unwrap();
    cluster.set_healing(scope, policy(0, 2, 200)).unwrap();
    let (events, degraded) = collect(&sub, Duration::from_secs(10), |ev| count(ev, "heal_degraded") == 1);
    assert!(degraded, "{events:?}");
    assert_eq!(count(&events, "heal_started"), 2);
    assert_eq!(count(&events, "heal_finished"), 2);
    assert!(events.iter().all(|e| !matches!(e, Event::HealFinished { ok: true, .. })));
    // Left alone: nothing more is sent for several backoffs.
    let (later, _) = collect(&sub, Duration::from_millis(1_500), |_| false);
    assert_eq!(count(&later, "heal_started"), 0, "{later:?}");
    assert_eq!(commands(&sim, &id), [(1, Action::Start), (1, Action::Start)]);
    let drift = cluster.drifts().into_iter().find(|d| d.server.as_str() == id).expect("still drifts");
    assert!(drift.degraded);
    assert_eq!(drift.attempts, 2);
    // A human clears it once the box is fixed: one more heal, which works.
    sim.set_fault(&id, None);
    assert!(cluster.clear_degraded(&id, 1).unwrap());
    assert!(!cluster.clear_degraded(&id, 1).unwrap(), "cleared once: no longer degraded");
    let (events, healed) =
        collect(&sub, Duration::from_secs(10), |ev| count(ev, "drift_ended") == 1 && count(ev, "heal_finished") == 1);
    assert!(healed, "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::HealFinished { ok: true, .. })));
    assert_eq!(commands(&sim, &id), [(1, Action::Start), (1, Action::Start), (1, Action::Start)]);
}

#[test]
fn forty_percent_of_the_servers_going_offline_restart_nothing() {
    let sim = sim(100, 1, 1.0);
    let cluster = common::cluster(&sim, settings()).blocking();
    cluster.poll_all().unwrap();
    for id in sim.ids() {
        cluster.set_desired(Scope::Server(id.as_str().into()), Desired::Running).unwrap();
        cluster
            .set_healing(
                Scope::Server(id.as_str().into()),
                Healing::On(HealPolicy { grace: Duration::ZERO, ..HealPolicy::default() }),
            )
            .unwrap();
    }
    let sub = cluster.subscribe();
    cluster.poll_all().unwrap();
    sim.reset_records();
    let down = sim.set_fault_fraction(Fault::Down, 0.4);
    assert_eq!(down.len(), 40);
    let (events, paused) = collect(&sub, Duration::from_secs(10), |ev| count(ev, "healing_paused") == 1);
    assert!(paused, "{events:?}");
    let (later, _) = collect(&sub, Duration::from_millis(1_500), |_| false);
    let events: Vec<Event> = events.into_iter().chain(later).collect();
    assert_eq!(count(&events, "heal_started") + count(&events, "action_started"), 0, "{events:?}");
    for id in sim.ids() {
        assert!(commands(&sim, &id).is_empty(), "nothing sent to {id}");
    }
    let status = cluster.reconciler_status();
    assert!(status.storm);
    assert_eq!((status.managed, status.troubled), (100, 40));
    // The box comes back: the storm is over, nothing was ever restarted.
    sim.clear_faults();
    let (events, resumed) = collect(&sub, Duration::from_secs(15), |ev| count(ev, "healing_resumed") == 1);
    assert!(resumed, "{events:?}");
    assert_eq!(count(&events, "heal_started"), 0);
}

#[test]
fn settings_are_checked_and_read_back() {
    let sim = sim(2, 2, 0.0);
    let cluster = common::cluster(&sim, common::settings()).blocking();
    let id = sim.ids()[0].clone();
    let unknown = cluster.set_desired(Scope::Server("nope".into()), Desired::Running).unwrap_err();
    assert_eq!(unknown, ClientError::ServerNotFound("nope".into()));
    assert_eq!(cluster.set_healing(Scope::Server("nope".into()), Healing::Off).unwrap_err().kind(), "server_not_found");
    assert_eq!(ipvtl_client::parse_desired("on").unwrap_err().kind(), "invalid");
    cluster.set_desired(Scope::Tag("eu".into()), Desired::Idle).unwrap();
    cluster.set_desired(Scope::Server(id.as_str().into()), Desired::Running).unwrap();
    let (d, from) = cluster.desired(&id, 2).unwrap();
    assert_eq!((d, from), (Desired::Running, Some(Scope::Server(id.as_str().into()))));
    assert_eq!(cluster.desired(&sim.ids()[1], 1).unwrap(), (Desired::Unmanaged, None));
    assert_eq!(cluster.desired(&id, 0).unwrap_err().kind(), "channel_not_found");
    assert_eq!(cluster.desired_settings().len(), 2);
    assert_eq!(cluster.clear_desired(&Scope::Tag("eu".into())), Some(Desired::Idle));
    assert_eq!(cluster.clear_desired(&Scope::Tag("eu".into())), None);
    cluster.set_healing(Scope::Tag("eu".into()), Healing::On(HealPolicy::default())).unwrap();
    assert_eq!(
        cluster.healing_settings(),
        [(Scope::Tag("eu".into()), Healing::On(HealPolicy::default()), ipvtl_core::Source::Api)]
    );
    assert_eq!(cluster.clear_healing(&Scope::Tag("eu".into())), Some(Healing::On(HealPolicy::default())));
    cluster.set_healing_paused(true);
    cluster.set_dry_run(true);
    let c = cluster.reconciler_config();
    assert!(c.paused && c.dry_run);
    let bad = cluster.configure_reconciler(ReconcilerInput {
        max_parallel: Some(0),
        paused: Some(false),
        ..Default::default()
    });
    assert_eq!(bad.unwrap_err().kind(), "invalid");
    assert!(cluster.reconciler_config().paused, "a refused change changes nothing");
    assert!(cluster.planned_heals().is_empty());
    assert!(!cluster.clear_degraded(&id, 1).unwrap());
    assert_eq!(cluster.clear_degraded("nope", 1).unwrap_err().kind(), "server_not_found");
}

#[test]
fn dry_run_reports_the_heal_and_sends_nothing() {
    let sim = sim(2, 1, 0.0);
    let cluster = common::cluster(&sim, settings()).blocking();
    cluster.poll_all().unwrap();
    cluster.set_dry_run(true);
    let id = sim.ids()[0].clone();
    let sub = cluster.subscribe();
    sim.reset_records();
    cluster.set_desired(Scope::Server(id.as_str().into()), Desired::Running).unwrap();
    cluster.set_healing(Scope::Server(id.as_str().into()), policy(0, 3, 100)).unwrap();
    let (events, planned) = collect(&sub, Duration::from_secs(5), |ev| count(ev, "heal_planned") == 1);
    assert!(planned, "{events:?}");
    let (later, _) = collect(&sub, Duration::from_millis(800), |_| false);
    assert_eq!(count(&later, "heal_planned") + count(&later, "action_started"), 0, "planned once per drift");
    let heals = cluster.planned_heals();
    assert_eq!(heals.len(), 1);
    assert_eq!(heals[0].kind, ipvtl_client::ActionKind::Start);
    assert!(commands(&sim, &id).is_empty());
}
