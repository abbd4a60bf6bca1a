//! The reconciler inside the Fleet, in virtual time: fake servers that
//! stall, fail to start or vanish, and the heals that follow (or not).

mod harness;

use std::collections::BTreeMap;

use harness::*;
use ipvtl_core::{
    ActionKind, ChannelId, Desired, Event, HealPolicy, Healing, ReconcilerConfig, RequestKind, Scope, ServerId,
};

fn sid(s: &str) -> ServerId {
    ServerId::from(s)
}

fn policy() -> HealPolicy {
    HealPolicy { grace: ms(2_000), limit: 3, window: ms(60_000), backoff: ms(1_000), backoff_max: ms(4_000) }
}

/// Every server desired running and healed under [`policy`].
fn manage_all(h: &mut Harness, config: ReconcilerConfig) {
    let ids: Vec<ServerId> = h.servers.keys().cloned().collect();
    let r = h.fleet.reconciler_mut();
    r.set_config(config);
    for id in ids {
        r.set_desired(Scope::Server(id.clone()), Desired::Running);
        r.set_healing(Scope::Server(id), Healing::On(policy()));
    }
}

/// Commands (stop/start) per channel, in order.
fn commands(h: &Harness) -> BTreeMap<(ServerId, ChannelId), Vec<&'static str>> {
    let mut out: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for s in &h.sent {
        match s.kind {
            RequestKind::Stop(c) => out.entry((s.server.clone(), c)).or_default().push("stop"),
            RequestKind::Start(c) => out.entry((s.server.clone(), c)).or_default().push("start"),
            _ => {}
        }
    }
    out
}

#[test]
fn stalled_channels_heal_once_each_within_grace_and_restart_time() {
    let mut h = Harness::simple(config(), 10, 4);
    manage_all(&mut h, ReconcilerConfig::default());
    h.run_until(t(3_000));
    assert!(h.fleet.reconciler().drifts().is_empty());
    let stalled = [("s2", 1), ("s5", 3), ("s9", 4)];
    for (s, c) in stalled {
        h.server_mut(s).stall(c);
    }
    h.run_until(t(20_000));
    let cmds = commands(&h);
    assert_eq!(cmds.len(), 3, "{cmds:?}");
    for (s, c) in stalled {
        assert_eq!(cmds[&(sid(s), ch(c))], ["stop", "start"], "{s}/{c}");
    }
    assert_eq!(h.events_of("heal_started").len(), 3);
    assert_eq!(h.events_of("heal_finished").len(), 3);
    assert!(h.events_of("heal_finished").iter().all(|e| matches!(e, Event::HealFinished { ok: true, .. })));
    assert_eq!(h.events_of("drift_started").len(), 3);
    assert_eq!(h.events_of("drift_ended").len(), 3);
    assert!(h.fleet.reconciler().drifts().is_empty());
    assert!(h.fleet.snapshot(h.now).drifts.is_empty());
    // Each heal started after the grace, and the drift ended soon after.
    for (at, e) in &h.events {
        if let Event::HealStarted { heal, .. } = e {
            assert_eq!(heal.kind, ActionKind::Restart);
            assert!(*at >= heal.since + ms(2_000));
            assert!(*at <= heal.since + ms(3_000), "within grace + one sweep: {at} for {heal:?}");
        }
    }
    // HealStarted right after its ActionStarted; HealFinished after ActionFinished.
    let kinds: Vec<&str> = h.events.iter().map(|(_, e)| e.kind()).collect();
    for (i, k) in kinds.iter().enumerate() {
        if *k == "heal_started" {
            assert_eq!(kinds[i - 1], "action_started");
        }
    }
}

#[test]
fn a_channel_that_never_starts_is_degraded_after_the_limit_then_left_alone() {
    let mut h = Harness::simple(config(), 3, 2);
    h.server_mut("s1").start_fails = true;
    manage_all(&mut h, ReconcilerConfig::default());
    h.run_until(t(2_000));
    h.submit("s1", 2, ActionKind::Stop).unwrap();
    h.run_until(t(40_000));
    let cmds = commands(&h);
    // The human stop, then 3 heals (a start each: the channel is idle).
    assert_eq!(cmds[&(sid("s1"), ch(2))], ["stop", "start", "start", "start"]);
    assert_eq!(cmds.len(), 1);
    let degraded = h.events_of("heal_degraded");
    assert_eq!(degraded.len(), 1);
    assert!(matches!(degraded[0], Event::HealDegraded { attempts: 3, .. }));
    assert!(h.fleet.reconciler().drift(&sid("s1"), ch(2)).unwrap().degraded);
    let snap = h.fleet.snapshot(h.now);
    assert_eq!(snap.drifts.len(), 1);
    // A human clears it: `limit` more tries, then degraded again.
    assert!(h.fleet.reconciler_mut().clear_degraded(&sid("s1"), ch(2)));
    h.run_until(t(90_000));
    assert_eq!(commands(&h)[&(sid("s1"), ch(2))].len(), 7);
    assert_eq!(h.events_of("heal_degraded").len(), 2);
}

#[test]
fn servers_going_offline_at_once_trigger_no_restart() {
    let mut h = Harness::simple(config(), 10, 2);
    manage_all(&mut h, ReconcilerConfig::default());
    h.run_until(t(3_000));
    for i in 1..=4 {
        h.server_mut(&format!("s{i}")).fault = Fault::Down;
    }
    // And one channel stalls on a live server during the outage.
    h.server_mut("s7").stall(1);
    h.run_until(t(15_000));
    assert!(commands(&h).is_empty(), "{:?}", commands(&h));
    assert_eq!(h.events_of("healing_paused").len(), 1);
    assert!(h.fleet.reconciler().is_storm());
    // The switch comes back: healing resumes and the stall is healed.
    for i in 1..=4 {
        h.server_mut(&format!("s{i}")).fault = Fault::None;
    }
    h.run_until(t(30_000));
    assert_eq!(h.events_of("healing_resumed").len(), 1);
    let cmds = commands(&h);
    assert_eq!(cmds.len(), 1);
    assert_eq!(cmds[&(sid("s7"), ch(1))], ["stop", "start"]);
}

#[test]
fn maintenance_holds_dry_run_and_unmanaged_channels_are_never_touched() {
    let mut h = Harness::simple(config(), 4, 3);
    let r = h.fleet.reconciler_mut();
    r.set_config(ReconcilerConfig { dry_run: false, ..ReconcilerConfig::default() });
    r.set_desired(Scope::Tag("none".into()), Desired::Running);
    for s in ["s1", "s2"] {
        r.set_desired(Scope::Server(sid(s)), Desired::Running);
        r.set_healing(Scope::Server(sid(s)), Healing::On(policy()));
    }
    r.set_desired(Scope::Channel(sid("s2"), ch(3)), Desired::Unmanaged);
    h.fleet.set_maintenance(&sid("s1"), true);
    h.run_until(t(2_000));
    h.server_mut("s1").stall(1);
    h.server_mut("s2").stall(3); // unmanaged
    h.server_mut("s3").stall(1); // unmanaged (no setting)
                                 // A human holds s2/2 (a stop, then the channel must run again).
    h.submit("s2", 2, ActionKind::Stop).unwrap();
    h.run_until(t(20_000));
    let cmds = commands(&h);
    assert_eq!(cmds.keys().cloned().collect::<Vec<_>>(), [(sid("s2"), ch(2))]);
    // The human stop, then the heal (a start) once the lock was free.
    assert_eq!(cmds[&(sid("s2"), ch(2))], ["stop", "start"]);
    let drifts: Vec<_> = h.fleet.reconciler().drifts().iter().map(|d| (d.server.clone(), d.channel)).collect();
    assert_eq!(drifts, [(sid("s1"), ch(1))], "maintenance: drift shown, never healed");

    // Dry run: planned, reported once, nothing sent.
    let mut h = Harness::simple(config(), 3, 2);
    manage_all(&mut h, ReconcilerConfig { dry_run: true, ..ReconcilerConfig::default() });
    h.run_until(t(2_000));
    h.server_mut("s3").stall(2);
    h.run_until(t(20_000));
    assert!(commands(&h).is_empty());
    let planned = h.events_of("heal_planned");
    assert_eq!(planned.len(), 1);
    assert!(
        matches!(planned[0], Event::HealPlanned { heal } if heal.channel == ch(2) && heal.kind == ActionKind::Restart)
    );
    assert_eq!(h.fleet.reconciler().planned().len(), 1);
}

#[test]
fn with_nothing_desired_the_fleet_behaves_as_before() {
    let mut h = Harness::simple(config(), 5, 2);
    h.server_mut("s1").stall(1);
    h.run_until(t(10_000));
    assert!(commands(&h).is_empty());
    assert!(
        h.events
            .iter()
            .all(|(_, e)| !e.kind().starts_with("drift_") && !e.kind().starts_with("heal")
                || e.kind() == "health_changed")
    );
    assert_eq!(h.fleet.reconciler().counts(), (0, 0));
}

mod props {
    use super::*;
    use ipvtl_core::{Health, ServerConfig};
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    struct Spec {
        channels: Vec<(ChState, bool)>,
        fault: Fault,
        maintenance: bool,
        start_fails: bool,
        desired: Option<Desired>,
        healing: bool,
    }

    fn desired() -> impl Strategy<Value = Desired> {
        prop_oneof![Just(Desired::Running), Just(Desired::Idle), Just(Desired::Unmanaged)]
    }

    fn fault() -> impl Strategy<Value = Fault> {
        prop_oneof![
            5 => Just(Fault::None),
            1 => Just(Fault::Down),
            1 => Just(Fault::Hang),
            1 => Just(Fault::Http(500)),
            1 => (300u64..4_000).prop_map(Fault::Flapping),
        ]
    }

    fn spec() -> impl Strategy<Value = Spec> {
        let ch = (prop_oneof![Just(ChState::Idle), Just(ChState::Running), Just(ChState::Stopping)], any::<bool>());
        (
            prop::collection::vec(ch, 0..4),
            fault(),
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.15),
            prop::option::weighted(0.8, desired()),
            prop::bool::weighted(0.8),
        )
            .prop_map(|(channels, fault, maintenance, start_fails, desired, healing)| Spec {
                channels,
                fault,
                maintenance,
                start_fails,
                desired,
                healing,
            })
    }

    fn heal_policy() -> impl Strategy<Value = HealPolicy> {
        (0u64..3_000, 1u32..4, 2_000u64..20_000, 0u64..2_000).prop_map(|(grace, limit, window, backoff)| HealPolicy {
            grace: ms(grace),
            limit,
            window: ms(window),
            backoff: ms(backoff),
            backoff_max: ms(backoff * 4),
        })
    }

    fn rec_config() -> impl Strategy<Value = ReconcilerConfig> {
        (1usize..4, prop_oneof![Just(20u32), Just(50), Just(100)], 1usize..6).prop_map(
            |(max_parallel, storm_percent, storm_min)| ReconcilerConfig {
                max_parallel,
                storm_percent,
                storm_min,
                ..ReconcilerConfig::default()
            },
        )
    }

    fn build(specs: &[Spec]) -> Harness {
        let servers = specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let states: Vec<ChState> = s.channels.iter().map(|c| c.0).collect();
                let mut fake = FakeServer::new(&states).with_fault(s.fault);
                fake.start_fails = s.start_fails;
                for (n, (_, stalled)) in s.channels.iter().enumerate() {
                    if *stalled {
                        fake.stall(n as u32 + 1);
                    }
                }
                (server(i + 1), fake)
            })
            .collect();
        Harness::new(config(), servers)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// Over random fleets, faults, settings and policies: unmanaged
        /// channels, maintenance and non-online servers are never acted
        /// on; the limit per window, the parallel cap and the storm guard
        /// hold.
        #[test]
        fn the_reconciler_keeps_its_promises(
            specs in prop::collection::vec(spec(), 1..7),
            overrides in prop::collection::vec((0usize..7, 1u32..4, desired()), 0..4),
            policy in heal_policy(),
            rc in rec_config(),
            later in prop::collection::vec((0usize..7, fault(), 1u32..4), 0..4),
            confirm in prop_oneof![Just(None), Just(Some(0u64)), Just(Some(3u64))],
        ) {
            let mut h = build(&specs);
            // Heals started at once, or each confirmed first (every third
            // refused): the promises are the same.
            h.fleet.set_confirm_heals(confirm.is_some());
            h.auto_confirm = confirm;
            let n = specs.len();
            {
                let r = h.fleet.reconciler_mut();
                r.set_config(rc.clone());
                for (i, s) in specs.iter().enumerate() {
                    let id = server(i + 1).id;
                    if let Some(d) = s.desired {
                        r.set_desired(Scope::Server(id.clone()), d);
                    }
                    if s.healing {
                        r.set_healing(Scope::Server(id), Healing::On(policy.clone()));
                    }
                }
                for (i, c, d) in &overrides {
                    r.set_desired(Scope::Channel(server(i % n + 1).id, ch(*c)), *d);
                }
            }
            for (i, s) in specs.iter().enumerate() {
                if s.maintenance {
                    h.fleet.set_maintenance(&server(i + 1).id, true);
                }
            }
            h.run_until(t(6_000));
            for (i, f, c) in &later {
                let fake = h.server_mut(&format!("s{}", i % n + 1));
                fake.fault = *f;
                if (*c as usize) <= fake.channels.len() {
                    fake.stall(*c);
                }
            }
            h.run_until(t(30_000));

            let configs: BTreeMap<ServerId, ServerConfig> =
                (1..=n).map(|i| (server(i).id, server(i))).collect();
            let r = h.fleet.reconciler();
            // Every command went to a managed, healed channel of a server
            // not in maintenance.
            for s in h.sent.iter().filter(|s| !matches!(s.kind, RequestKind::Status)) {
                let (RequestKind::Stop(c) | RequestKind::Start(c)) = s.kind else { continue };
                let i: usize = s.server.as_str()[1..].parse().unwrap();
                prop_assert!(!specs[i - 1].maintenance, "command to {} in maintenance", s.server);
                let (d, _) = r.desired(&configs[&s.server], c);
                prop_assert_ne!(d, Desired::Unmanaged, "command to unmanaged {}/{}", s.server, c);
                prop_assert!(r.policy(&configs[&s.server], c).is_some());
            }
            // Walk the events in order.
            let mut health: BTreeMap<ServerId, Health> = BTreeMap::new();
            let mut paused = false;
            let mut in_flight = 0usize;
            let mut starts: BTreeMap<(ServerId, ChannelId), Vec<ipvtl_core::Instant>> = BTreeMap::new();
            let mut last_action_started = None;
            for (at, e) in &h.events {
                match e {
                    Event::HealthChanged { server, to, .. } => {
                        health.insert(server.clone(), *to);
                    }
                    Event::HealingPaused { .. } => paused = true,
                    Event::HealingResumed { .. } => paused = false,
                    Event::ActionStarted { server, channel, action, .. } => {
                        prop_assert_eq!(health.get(server).copied(), Some(Health::Online), "action on {} not online", server);
                        last_action_started = Some((server.clone(), *channel, *action));
                    }
                    Event::HealStarted { heal, action, attempt } => {
                        prop_assert!(!paused, "heal started during a storm at {}", at);
                        prop_assert_eq!(last_action_started.take(), Some((heal.server.clone(), heal.channel, *action)));
                        in_flight += 1;
                        prop_assert!(in_flight <= rc.max_parallel, "{} heals at once", in_flight);
                        let list = starts.entry((heal.server.clone(), heal.channel)).or_default();
                        list.push(*at);
                        let within = list.iter().filter(|s| at.saturating_since(**s) < policy.window).count();
                        prop_assert!(within <= policy.limit as usize, "{} heals within the window", within);
                        prop_assert!(*attempt as usize == within);
                    }
                    Event::HealFinished { .. } => in_flight -= 1,
                    _ => {}
                }
            }
            prop_assert_eq!(in_flight, r.heals_in_flight());
        }

        /// A healthy fleet where some channels drift once (stall, or idle
        /// while desired running): each is healed exactly once, the others
        /// never.
        #[test]
        fn a_channel_that_drifts_once_is_healed_once(
            fleet in prop::collection::vec(prop::collection::vec((any::<bool>(), 0u8..4), 1..4), 1..6),
            grace in 0u64..3_000,
            limit in 1u32..4,
            max_parallel in 1usize..4,
        ) {
            // Per channel: (starts running?, 0 = fine, 1 = stalls later, else fine).
            let servers = fleet
                .iter()
                .enumerate()
                .map(|(i, chans)| {
                    let states: Vec<ChState> =
                        chans.iter().map(|(run, _)| if *run { ChState::Running } else { ChState::Idle }).collect();
                    (server(i + 1), FakeServer::new(&states))
                })
                .collect();
            let mut h = Harness::new(config(), servers);
            let p = HealPolicy { grace: ms(grace), limit, window: ms(60_000), backoff: ms(500), backoff_max: ms(2_000) };
            {
                let r = h.fleet.reconciler_mut();
                r.set_config(ReconcilerConfig { max_parallel, storm_percent: 100, ..ReconcilerConfig::default() });
                for i in 0..fleet.len() {
                    r.set_desired(Scope::Server(server(i + 1).id), Desired::Running);
                    r.set_healing(Scope::Server(server(i + 1).id), Healing::On(p.clone()));
                }
            }
            h.run_until(t(4_000));
            for (i, chans) in fleet.iter().enumerate() {
                for (c, (run, later)) in chans.iter().enumerate() {
                    if *run && *later == 1 {
                        h.server_mut(&format!("s{}", i + 1)).stall(c as u32 + 1);
                    }
                }
            }
            h.run_until(t(40_000));
            let cmds = commands(&h);
            for (i, chans) in fleet.iter().enumerate() {
                for (c, (run, later)) in chans.iter().enumerate() {
                    let key = (server(i + 1).id, ch(c as u32 + 1));
                    let want: &[&str] = match (run, later) {
                        (false, _) => &["start"],
                        (true, 1) => &["stop", "start"],
                        _ => &[],
                    };
                    prop_assert_eq!(cmds.get(&key).map(|v| v.as_slice()).unwrap_or(&[]), want, "{:?}", key);
                }
            }
            prop_assert_eq!(h.events_of("heal_started").len(), cmds.len());
            prop_assert!(h.fleet.reconciler().drifts().is_empty());
            prop_assert!(h.events_of("heal_degraded").is_empty());
        }
    }
}

/// The ticket of every `heal_requested` so far, in order.
fn tickets(h: &Harness) -> Vec<u64> {
    h.events_of("heal_requested")
        .iter()
        .filter_map(|e| match e {
            Event::HealRequested { ticket, .. } => Some(*ticket),
            _ => None,
        })
        .collect()
}

#[test]
fn with_confirmation_a_heal_waits_for_the_go_ahead_and_lapses_without_it() {
    let mut h = Harness::simple(config(), 3, 2);
    manage_all(&mut h, ReconcilerConfig::default());
    h.fleet.set_confirm_heals(true);
    h.run_until(t(3_000));
    h.server_mut("s2").stall(1);
    h.run_until(t(8_000));
    // Asked once; nothing sent while it waits, and nothing else asked.
    assert_eq!(tickets(&h).len(), 1, "{:?}", h.events_of("heal_requested"));
    assert!(commands(&h).is_empty(), "nothing is sent before the go-ahead");
    let first = tickets(&h)[0];
    // A refusal: nothing starts, no attempt is counted, it is asked again.
    assert_eq!(h.fleet.confirm_heal(first, false, h.now), None);
    assert_eq!(h.fleet.confirm_heal(first, true, h.now), None, "a ticket is answered once");
    h.run_until(t(11_000));
    assert_eq!(tickets(&h).len(), 2);
    assert_eq!(h.fleet.reconciler().drift(&sid("s2"), ch(1)).unwrap().attempts, 0);
    // Unanswered, it lapses after HEAL_CONFIRM_WAIT and is asked again.
    let second = tickets(&h)[1];
    h.run_until(t(11_000) + ipvtl_core::fleet::HEAL_CONFIRM_WAIT + ms(1_500));
    assert_eq!(tickets(&h).len(), 3, "asked again after the lapse");
    assert_eq!(h.fleet.confirm_heal(second, true, h.now), None, "a lapsed ticket starts nothing");
    assert!(commands(&h).is_empty());
    // The go-ahead: the heal starts at once, and heals the channel.
    let third = tickets(&h)[2];
    let action = h.fleet.confirm_heal(third, true, h.now).expect("the heal starts");
    h.run_until(h.now + ms(10_000));
    assert_eq!(commands(&h)[&(sid("s2"), ch(1))], ["stop", "start"]);
    assert!(h
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::HealStarted { action: a, attempt: 1, .. } if *a == action)));
    assert!(h.fleet.reconciler().drifts().is_empty());
    assert_eq!(tickets(&h).len(), 3, "nothing more to ask");
}

#[test]
fn a_go_ahead_for_a_drift_that_ended_meanwhile_starts_nothing() {
    let mut h = Harness::simple(config(), 2, 2);
    manage_all(&mut h, ReconcilerConfig::default());
    h.fleet.set_confirm_heals(true);
    h.run_until(t(3_000));
    h.server_mut("s1").stall(2);
    h.run_until(t(8_000));
    let ticket = tickets(&h)[0];
    // A human restarts it first.
    h.submit("s1", 2, ActionKind::Restart).unwrap();
    h.run_until(t(14_000));
    assert!(h.fleet.reconciler().drifts().is_empty());
    assert_eq!(h.fleet.confirm_heal(ticket, true, h.now), None);
    h.run_until(t(20_000));
    assert_eq!(commands(&h)[&(sid("s1"), ch(2))], ["stop", "start"], "the human's restart only");
}

use ipvtl_core::poller::Sweeping;

/// Hands `from`'s observations of the servers it owns to `to`.
fn share(from: &Harness, to: &mut Harness, owned: [&str; 2], now: ipvtl_core::Instant) {
    for s in owned {
        if let Some(o) = from.fleet.state(&sid(s)).and_then(ipvtl_core::poller::Observed::of) {
            assert!(to.fleet.adopt(&sid(s), o, now));
        }
    }
}

/// Two instances share four servers: each sweeps two and adopts the other's
/// observations of the rest. A stalled channel is healed once, by its
/// owner; the other sees the drift and sends nothing.
#[test]
fn with_two_instances_only_the_owner_heals() {
    let mut a = Harness::simple(config(), 4, 2);
    let mut b = Harness::simple(config(), 4, 2);
    manage_all(&mut a, ReconcilerConfig::default());
    manage_all(&mut b, ReconcilerConfig::default());
    let (of_a, of_b) = (["s1", "s2"], ["s3", "s4"]);
    for s in of_b {
        a.fleet.set_sweeping(&sid(s), Sweeping::Never, t(0));
    }
    for s in of_a {
        b.fleet.set_sweeping(&sid(s), Sweeping::Never, t(0));
    }
    let mut b_saw_drift = false;
    for step in 1..=80u64 {
        if step == 12 {
            a.server_mut("s1").stall(1);
        }
        let now = t(step * 250);
        a.run_until(now);
        b.run_until(now);
        share(&a, &mut b, of_a, now);
        share(&b, &mut a, of_b, now);
        b_saw_drift |= b.fleet.reconciler().drift(&sid("s1"), ch(1)).is_some();
    }
    assert_eq!(commands(&a), BTreeMap::from([((sid("s1"), ch(1)), vec!["stop", "start"])]));
    assert!(commands(&b).is_empty(), "{:?}", commands(&b));
    assert!(b_saw_drift, "the other instance sees the drift");
    assert!(b.sent.iter().all(|s| of_b.contains(&s.server.as_str())), "b polls only its own servers");
    assert_eq!(a.events_of("heal_finished").len(), 1);
    assert!(b.events_of("heal_started").is_empty());
    assert!(b.fleet.reconciler().drift(&sid("s1"), ch(1)).is_none(), "healed, as b sees it too");
}
