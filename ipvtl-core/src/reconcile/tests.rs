//! Table-driven tests of the reconciler's transitions, alone (no Fleet).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use super::*;
use crate::action::ActionError;
use crate::model::{Channel, ChannelStats, Status};

fn ch(n: u32) -> ChannelId {
    ChannelId::new(n).unwrap()
}

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn server(id: &str, tags: &[&str]) -> Arc<ServerConfig> {
    let mut c = ServerConfig::new(id, "192.0.2.1");
    c.tags = tags.iter().map(|t| String::from(*t)).collect();
    Arc::new(c)
}

/// A channel as observed: state, plus a stall.
#[derive(Clone, Copy)]
enum Seen {
    Idle,
    Running,
    Stalled,
    Stopping,
}

fn state(channels: &[Seen]) -> ServerState {
    let mut s = ServerState { health: Health::Online, ..ServerState::default() };
    let mut status = Status::default();
    for (i, seen) in channels.iter().enumerate() {
        let st = match seen {
            Seen::Idle => ChannelState::Idle,
            Seen::Running | Seen::Stalled => ChannelState::Running,
            Seen::Stopping => ChannelState::Stopping,
        };
        let stats = matches!(seen, Seen::Running | Seen::Stalled).then_some(ChannelStats {
            uptime_s: 10,
            fps: if matches!(seen, Seen::Stalled) { 0.0 } else { 25.0 },
            kbps: 1.0,
        });
        if matches!(seen, Seen::Stalled) {
            s.stalled.insert(ChannelId::from_index(i), StallReason::ZeroFps);
        }
        status.channels.push(Channel {
            id: ChannelId::from_index(i),
            state: st,
            status: Default::default(),
            stats,
            extra: Default::default(),
        });
    }
    s.status = Some(alloc::sync::Arc::new(status));
    s
}

fn policy(grace: u64, limit: u32, window: u64, backoff: u64) -> HealPolicy {
    HealPolicy {
        grace: Duration::from_millis(grace),
        limit,
        window: Duration::from_millis(window),
        backoff: Duration::from_millis(backoff),
        backoff_max: Duration::from_millis(backoff * 4),
    }
}

fn events(r: &mut Reconciler) -> Vec<Event> {
    core::iter::from_fn(|| r.poll_event()).collect()
}

fn kinds(r: &mut Reconciler) -> Vec<&'static str> {
    events(r).iter().map(Event::kind).collect()
}

/// A reconciler healing everything on `s1` (running desired), grace 1 s,
/// 2 heals per 60 s, 1 s backoff; storm guard off.
fn healing_s1() -> (Reconciler, Arc<ServerConfig>) {
    let config = ReconcilerConfig { storm_percent: 100, ..ReconcilerConfig::default() };
    let mut r = Reconciler::new(config);
    let s1 = server("s1", &[]);
    r.set_desired(Scope::Server(s1.id.clone()), Desired::Running);
    r.set_healing(Scope::Server(s1.id.clone()), Healing::On(policy(1_000, 2, 60_000, 1_000)));
    (r, s1)
}

fn finished(action: ActionId, server: &ServerId, channel: ChannelId, kind: ActionKind, ok: bool) -> ActionReport {
    let outcome = if ok { Ok(()) } else { Err(ActionError::Maintenance { server: server.clone() }) };
    let mut report = ActionReport::refused(
        Some(action),
        server.clone(),
        channel,
        kind,
        None,
        ActionError::Maintenance { server: server.clone() },
        t(0),
    );
    report.outcome = outcome;
    report
}

/// Settings made, channel asked, the desired state and where it came from.
type ResolveCase<'a> = (&'a [(Scope, Desired)], u32, Desired, Option<Scope>);

/// Name, how the server's state differs, whether the channel is free, whether it heals.
type GuardCase = (&'static str, fn(&mut ServerState), bool, bool);

#[test]
fn narrower_settings_win_and_the_first_tag_breaks_ties() {
    let mut d: Scoped<Desired> = Scoped::default();
    let s = server("s1", &["b", "a"]);
    let other = server("s2", &["a"]);
    let cases: &[ResolveCase<'_>] = &[
        (&[], 1, Desired::Unmanaged, None),
        (&[(Scope::Tag("a".into()), Desired::Idle)], 1, Desired::Idle, Some(Scope::Tag("a".into()))),
        (&[(Scope::Tag("b".into()), Desired::Running)], 1, Desired::Running, Some(Scope::Tag("b".into()))),
        (&[(Scope::Server("s1".into()), Desired::Idle)], 1, Desired::Idle, Some(Scope::Server("s1".into()))),
        (
            &[(Scope::Channel("s1".into(), ch(2)), Desired::Unmanaged)],
            2,
            Desired::Unmanaged,
            Some(Scope::Channel("s1".into(), ch(2))),
        ),
        (&[], 1, Desired::Idle, Some(Scope::Server("s1".into()))),
    ];
    let mut r = Reconciler::default();
    for (sets, channel, want, from) in cases {
        for (scope, v) in sets.iter() {
            d.set(scope.clone(), *v);
            r.set_desired(scope.clone(), *v);
        }
        assert_eq!(d.resolve(&s, ch(*channel)).map(|(v, sc)| (*v, sc)), from.clone().map(|sc| (*want, sc)));
        assert_eq!(d.value(&s, ch(*channel)).copied(), from.as_ref().map(|_| *want), "value() agrees with resolve()");
        assert_eq!(r.desired(&s, ch(*channel)), (*want, from.clone()));
    }
    // Tag "a" still applies where the server has no setting and no "b".
    assert_eq!(r.desired(&other, ch(1)), (Desired::Idle, Some(Scope::Tag("a".into()))));
    assert_eq!(r.clear_desired(&Scope::Server("s1".into())), Some(Desired::Idle));
    assert_eq!(r.desired(&s, ch(1)).0, Desired::Running, "tag b, first in s1's tags, wins over a");
    assert_eq!(Desired::parse("running"), Some(Desired::Running));
    assert_eq!(Desired::parse("Running"), None);
}

#[test]
fn drift_and_the_heal_it_calls_for() {
    use ActionKind::*;
    let cases: &[(Desired, Seen, Option<ActionKind>)] = &[
        (Desired::Running, Seen::Running, None),
        (Desired::Running, Seen::Idle, Some(Start)),
        (Desired::Running, Seen::Stalled, Some(Restart)),
        (Desired::Running, Seen::Stopping, Some(Restart)),
        (Desired::Idle, Seen::Idle, None),
        (Desired::Idle, Seen::Running, Some(Stop)),
        (Desired::Idle, Seen::Stalled, Some(Stop)),
        (Desired::Idle, Seen::Stopping, Some(Stop)),
        (Desired::Unmanaged, Seen::Idle, None),
        (Desired::Unmanaged, Seen::Stalled, None),
    ];
    for (desired, seen, heal) in cases {
        let (mut r, s1) = healing_s1();
        r.set_desired(Scope::Channel(s1.id.clone(), ch(1)), *desired);
        r.handle_server(&s1, &state(&[*seen]), t(0));
        assert_eq!(r.drift(&s1.id, ch(1)).is_some(), heal.is_some(), "{desired} / {}", heal.is_some());
        assert_eq!(r.poll_heal(t(999), |_, _| true), None, "grace holds");
        let got = r.poll_heal(t(1_000), |_, _| true).map(|h| h.kind);
        assert_eq!(got, *heal, "{desired}");
    }
}

#[test]
fn drift_starts_and_ends_with_its_since() {
    let (mut r, s1) = healing_s1();
    r.handle_server(&s1, &state(&[Seen::Running, Seen::Idle]), t(100));
    let ev = events(&mut r);
    assert_eq!(
        ev,
        vec![Event::DriftStarted {
            server: s1.id.clone(),
            channel: ch(2),
            desired: Desired::Running,
            observed: ChannelState::Idle,
            stall: None,
            since: t(100)
        }]
    );
    // Still drifting, now stalled instead of idle: same drift, no event.
    r.handle_server(&s1, &state(&[Seen::Running, Seen::Stalled]), t(500));
    assert!(events(&mut r).is_empty());
    let d = r.drift(&s1.id, ch(2)).unwrap();
    assert_eq!((d.since, d.stall, d.observed), (t(100), Some(StallReason::ZeroFps), ChannelState::Running));
    // Offline: drift kept as it was, nothing ends.
    let mut off = state(&[Seen::Running, Seen::Running]);
    off.health = Health::Offline;
    r.handle_server(&s1, &off, t(700));
    assert!(events(&mut r).is_empty());
    assert_eq!(r.drifts().len(), 1);
    r.handle_server(&s1, &state(&[Seen::Running, Seen::Running]), t(900));
    assert_eq!(
        events(&mut r),
        vec![Event::DriftEnded {
            server: s1.id.clone(),
            channel: ch(2),
            since: t(100),
            lasted: Duration::from_millis(800)
        }]
    );
    // A channel that disappears ends its drift; a server dropped from the list too.
    r.handle_server(&s1, &state(&[Seen::Idle, Seen::Idle]), t(1_000));
    r.handle_server(&s1, &state(&[Seen::Idle]), t(1_100));
    assert_eq!(kinds(&mut r), ["drift_started", "drift_started", "drift_ended"]);
    r.handle_fleet(core::iter::empty(), t(1_200));
    assert_eq!(kinds(&mut r), ["drift_ended"]);
    assert!(r.drifts().is_empty());
    // Changing the desired state ends one drift and starts another.
    r.handle_server(&s1, &state(&[Seen::Idle]), t(1_300));
    r.set_desired(Scope::Server(s1.id.clone()), Desired::Idle);
    r.handle_server(&s1, &state(&[Seen::Running]), t(1_400));
    assert_eq!(kinds(&mut r), ["drift_started", "drift_ended", "drift_started"]);
}

#[test]
fn heals_respect_the_limit_the_backoff_and_degrade() {
    let (mut r, s1) = healing_s1();
    let id = s1.id.clone();
    let stalled = state(&[Seen::Stalled]);
    r.handle_fleet([(&s1, &stalled)], t(0));
    assert_eq!(r.poll_timeout(), Some(t(1_000)), "end of grace");
    let h = r.poll_heal(t(1_000), |_, _| true).unwrap();
    assert_eq!((h.kind, h.since), (ActionKind::Restart, t(0)));
    assert_eq!(r.poll_heal(t(1_000), |_, _| true), None, "one claim at a time");
    r.handle_heal_started(ActionId(7), t(1_000));
    assert!(r.is_heal(ActionId(7)));
    assert_eq!(r.drift(&id, ch(1)).unwrap().healing, Some(ActionId(7)));
    assert_eq!(r.poll_heal(t(1_500), |_, _| true), None, "one heal per channel");
    assert!(r.handle_heal_finished(&finished(ActionId(7), &id, ch(1), ActionKind::Restart, false), t(2_000)));
    assert!(!r.handle_heal_finished(&finished(ActionId(8), &id, ch(1), ActionKind::Restart, false), t(2_000)));
    // Backoff after attempt 1: 1 s.
    assert_eq!(r.poll_timeout(), Some(t(3_000)));
    assert_eq!(r.poll_heal(t(2_999), |_, _| true), None);
    assert!(r.poll_heal(t(3_000), |_, _| true).is_some());
    r.handle_heal_started(ActionId(9), t(3_000));
    r.handle_heal_finished(&finished(ActionId(9), &id, ch(1), ActionKind::Restart, true), t(3_500));
    // Backoff after attempt 2: 2 s; then the limit (2 in 60 s): degraded.
    assert_eq!(r.poll_heal(t(5_499), |_, _| true), None);
    assert_eq!(r.poll_heal(t(5_500), |_, _| true), None);
    let ev = events(&mut r);
    let kinds: Vec<_> = ev.iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        ["drift_started", "heal_started", "heal_finished", "heal_started", "heal_finished", "heal_degraded"]
    );
    assert!(matches!(&ev[1], Event::HealStarted { attempt: 1, action: ActionId(7), .. }));
    assert!(matches!(&ev[4], Event::HealFinished { ok: true, .. }));
    assert!(matches!(&ev[5], Event::HealDegraded { attempts: 2, until, .. } if *until == t(61_000)));
    assert!(r.drift(&id, ch(1)).unwrap().degraded);
    assert_eq!(r.poll_timeout(), Some(t(61_000)), "the window's end");
    // Left alone until the window passes...
    r.handle_timeout(t(60_999));
    assert_eq!(r.poll_heal(t(60_999), |_, _| true), None);
    r.handle_timeout(t(61_000));
    assert!(!r.drift(&id, ch(1)).unwrap().degraded);
    let h = r.poll_heal(t(61_000), |_, _| true);
    assert!(h.is_some(), "one attempt left in the window");
    r.handle_heal_started(ActionId(10), t(61_000));
    r.handle_heal_finished(&finished(ActionId(10), &id, ch(1), ActionKind::Restart, false), t(61_100));
    // The window slides: the heal of t=3 s leaves it at 63 s, so the next
    // one (after a 2 s backoff) is allowed; then two are within 60 s again.
    assert_eq!(r.poll_heal(t(63_099), |_, _| true), None);
    assert!(r.poll_heal(t(63_100), |_, _| true).is_some());
    r.handle_heal_started(ActionId(11), t(63_100));
    r.handle_heal_finished(&finished(ActionId(11), &id, ch(1), ActionKind::Restart, false), t(63_200));
    assert_eq!(r.poll_heal(t(65_200), |_, _| true), None);
    assert!(r.drift(&id, ch(1)).unwrap().degraded);
    // ...or a human clears it.
    assert!(r.clear_degraded(&id, ch(1)));
    assert!(!r.clear_degraded(&id, ch(1)));
    assert!(r.poll_heal(t(65_200), |_, _| true).is_some());
}

#[test]
fn refusals_are_retried_without_counting() {
    let (mut r, s1) = healing_s1();
    r.handle_server(&s1, &state(&[Seen::Idle]), t(0));
    assert!(r.poll_heal(t(1_000), |_, _| true).is_some());
    r.handle_heal_refused(t(1_000));
    assert_eq!(r.poll_heal(t(1_999), |_, _| true), None);
    assert!(r.poll_heal(t(2_000), |_, _| true).is_some());
    r.handle_heal_started(ActionId(1), t(2_000));
    assert_eq!(r.drift(&s1.id, ch(1)).unwrap().attempts, 1);
}

#[test]
fn never_acts_where_it_must_not() {
    let cases: &[GuardCase] = &[
        ("online", |_| {}, true, true),
        ("offline", |s| s.health = Health::Offline, true, false),
        ("error", |s| s.health = Health::Error, true, false),
        ("unknown", |s| s.health = Health::Unknown, true, false),
        ("maintenance", |s| s.maintenance = true, true, false),
        ("held by an action", |_| {}, false, false),
    ];
    for (name, tweak, free, heals) in cases {
        let (mut r, s1) = healing_s1();
        let mut s = state(&[Seen::Idle]);
        tweak(&mut s);
        r.handle_server(&s1, &state(&[Seen::Idle]), t(0));
        r.handle_server(&s1, &s, t(10));
        assert_eq!(r.poll_heal(t(5_000), |_, _| *free).is_some(), *heals, "{name}");
    }
    // No healing policy: drift reported, never healed; Off overrides On.
    let (mut r, s1) = healing_s1();
    r.set_healing(Scope::Channel(s1.id.clone(), ch(1)), Healing::Off);
    r.handle_server(&s1, &state(&[Seen::Idle, Seen::Idle]), t(0));
    assert_eq!(r.drifts().len(), 2);
    assert_eq!(r.poll_heal(t(5_000), |_, _| true).map(|h| h.channel), Some(ch(2)));
    // Paused by an operator.
    let (mut r, s1) = healing_s1();
    r.set_config(ReconcilerConfig { paused: true, storm_percent: 100, ..ReconcilerConfig::default() });
    r.handle_server(&s1, &state(&[Seen::Idle]), t(0));
    assert_eq!(r.poll_heal(t(5_000), |_, _| true), None);
}

#[test]
fn at_most_max_parallel_heals() {
    let (mut r, s1) = healing_s1();
    r.set_config(ReconcilerConfig { max_parallel: 2, storm_percent: 100, ..ReconcilerConfig::default() });
    r.handle_server(&s1, &state(&[Seen::Idle; 5]), t(0));
    for a in 1..=2 {
        assert!(r.poll_heal(t(1_000), |_, _| true).is_some());
        r.handle_heal_started(ActionId(a), t(1_000));
    }
    assert_eq!(r.poll_heal(t(1_000), |_, _| true), None);
    assert_eq!(r.heals_in_flight(), 2);
    r.handle_heal_finished(&finished(ActionId(1), &s1.id, ch(1), ActionKind::Start, true), t(1_100));
    assert_eq!(r.poll_heal(t(1_100), |_, _| true).map(|h| h.channel), Some(ch(3)));
}

#[test]
fn the_storm_guard_pauses_and_resumes() {
    // (channels seen idle out of 10 managed, offline servers' channels,
    // storm?) with storm at 20 % and at least 2.
    let cases: &[(usize, bool, bool)] =
        &[(0, false, false), (1, false, false), (2, false, false), (3, false, true), (0, true, true)];
    for (idle, second_offline, storm) in cases {
        let config = ReconcilerConfig { storm_percent: 20, storm_min: 2, ..ReconcilerConfig::default() };
        let mut r = Reconciler::new(config);
        r.set_desired(Scope::Tag("edge".into()), Desired::Running);
        r.set_healing(Scope::Tag("edge".into()), Healing::On(policy(0, 3, 60_000, 1_000)));
        let (s1, s2) = (server("s1", &["edge"]), server("s2", &["edge"]));
        let mut seen = vec![Seen::Running; 5];
        for s in seen.iter_mut().take(*idle) {
            *s = Seen::Idle;
        }
        let mut second = state(&[Seen::Running; 5]);
        if *second_offline {
            second.health = Health::Offline;
        }
        r.handle_fleet([(&s1, &state(&seen)), (&s2, &second)], t(0));
        assert_eq!(r.is_storm(), *storm, "{idle} idle, offline {second_offline}");
        assert_eq!(r.counts().0, 10);
        assert_eq!(r.poll_heal(t(0), |_, _| true).is_some(), *idle > 0 && !*storm);
        let ev = kinds(&mut r);
        assert_eq!(ev.contains(&"healing_paused"), *storm);
        if *storm {
            // Back under the share: resumed, and healing goes on.
            // One server at a time, after the first full pass.
            r.handle_server(&s2, &state(&[Seen::Running; 5]), t(10));
            r.handle_server(
                &s1,
                &state(&[Seen::Running, Seen::Running, Seen::Running, Seen::Running, Seen::Idle]),
                t(10),
            );
            assert!(!r.is_storm());
            assert!(kinds(&mut r).contains(&"healing_resumed"));
            assert!(r.poll_heal(t(10), |_, _| true).is_some());
        }
    }
}

#[test]
fn dry_run_reports_each_heal_once_and_does_nothing() {
    let (mut r, s1) = healing_s1();
    r.set_config(ReconcilerConfig { dry_run: true, storm_percent: 100, ..ReconcilerConfig::default() });
    r.handle_server(&s1, &state(&[Seen::Idle, Seen::Stalled, Seen::Running]), t(0));
    assert_eq!(r.poll_heal(t(1_000), |_, _| true), None);
    assert_eq!(r.poll_heal(t(2_000), |_, _| true), None);
    let planned = r.planned();
    assert_eq!(
        planned.iter().map(|h| (h.channel, h.kind)).collect::<Vec<_>>(),
        [(ch(1), ActionKind::Start), (ch(2), ActionKind::Restart)]
    );
    assert_eq!(kinds(&mut r), ["drift_started", "drift_started", "heal_planned", "heal_planned"]);
    assert_eq!(r.heals_in_flight(), 0);
    // A new drift episode is planned again.
    r.handle_server(&s1, &state(&[Seen::Running, Seen::Stalled, Seen::Running]), t(3_000));
    r.handle_server(&s1, &state(&[Seen::Idle, Seen::Stalled, Seen::Running]), t(4_000));
    r.poll_heal(t(5_000), |_, _| true);
    assert_eq!(kinds(&mut r), ["drift_ended", "drift_started", "heal_planned"]);
}

#[test]
fn settings_changes_ask_for_a_full_pass() {
    let (mut r, s1) = healing_s1();
    assert!(r.needs_full_pass());
    r.handle_fleet([(&s1, &state(&[Seen::Running]))], t(5));
    assert!(!r.needs_full_pass());
    assert_eq!(r.poll_timeout(), None);
    r.clear_desired(&Scope::Server(s1.id.clone()));
    assert_eq!(r.poll_timeout(), Some(t(5)));
    assert!(r.healing_settings().get(&Scope::Server(s1.id.clone())).is_some());
    assert_eq!(r.desired_settings().iter().count(), 0);
}

#[test]
fn every_new_event_has_a_kind_and_a_sentence() {
    let s = ServerId::from("s1");
    let heal = Heal {
        server: s.clone(),
        channel: ch(1),
        kind: ActionKind::Restart,
        desired: Desired::Running,
        observed: ChannelState::Running,
        stall: Some(StallReason::UptimeFrozen),
        since: t(0),
    };
    let cases = [
        (
            Event::DriftStarted {
                server: s.clone(),
                channel: ch(1),
                desired: Desired::Running,
                observed: ChannelState::Idle,
                stall: None,
                since: t(0),
            },
            "drift_started",
            "s1 channel 1 drifts: should be running, is idle",
        ),
        (
            Event::DriftEnded { server: s.clone(), channel: ch(1), since: t(0), lasted: Duration::from_millis(5) },
            "drift_ended",
            "s1 channel 1 no longer drifts (after 5 ms)",
        ),
        (
            Event::HealPlanned { heal: heal.clone() },
            "heal_planned",
            "dry run: would restart s1 channel 1 (should be running)",
        ),
        (
            Event::HealStarted { heal, action: ActionId(3), attempt: 1 },
            "heal_started",
            "heal 1 of s1 channel 1: restart as action 3 (should be running, is running)",
        ),
        (
            Event::HealFinished {
                server: s.clone(),
                channel: ch(1),
                action: ActionId(3),
                kind: ActionKind::Restart,
                ok: false,
            },
            "heal_finished",
            "heal of s1 channel 1 (restart, action 3) failed",
        ),
        (
            Event::HealDegraded { server: s.clone(), channel: ch(1), attempts: 3, until: t(9) },
            "heal_degraded",
            "s1 channel 1 degraded: still drifting after 3 heals; left alone until t+9ms or cleared",
        ),
        (
            Event::HealingPaused { troubled: 3, managed: 10 },
            "healing_paused",
            "healing paused by the storm guard: 3 of 10 managed channels in trouble",
        ),
        (
            Event::HealingResumed { troubled: 1, managed: 10 },
            "healing_resumed",
            "healing resumed: 1 of 10 managed channels in trouble",
        ),
    ];
    for (e, kind, sentence) in cases {
        assert_eq!(e.kind(), kind);
        assert_eq!(crate::event::describe(&e), sentence);
        assert!(matches!(e, Event::HealingPaused { .. } | Event::HealingResumed { .. }) || e.server() == Some(&s));
    }
}

#[test]
fn each_setting_records_its_source_and_the_api_wins_at_one_scope() {
    let s1 = server("s1", &["eu"]);
    let srv = || Scope::Server(s1.id.clone());
    let chan = |n| Scope::Channel(s1.id.clone(), ch(n));
    let tag = || Scope::Tag("eu".into());
    // (file settings, api settings, channel 1 resolves to, at scope, from source)
    type Row = (Vec<(Scope, Desired)>, Vec<(Scope, Desired)>, Desired, Option<Scope>, Option<Source>);
    let table: Vec<Row> = vec![
        (vec![], vec![], Desired::Unmanaged, None, None),
        (vec![(srv(), Desired::Running)], vec![], Desired::Running, Some(srv()), Some(Source::File)),
        (vec![], vec![(srv(), Desired::Idle)], Desired::Idle, Some(srv()), Some(Source::Api)),
        // Same scope: the API wins.
        (vec![(srv(), Desired::Running)], vec![(srv(), Desired::Idle)], Desired::Idle, Some(srv()), Some(Source::Api)),
        // Narrower wins whatever its source: a file channel over an API server...
        (
            vec![(chan(1), Desired::Running)],
            vec![(srv(), Desired::Idle)],
            Desired::Running,
            Some(chan(1)),
            Some(Source::File),
        ),
        // ...and an API server over a file tag.
        (vec![(tag(), Desired::Running)], vec![(srv(), Desired::Idle)], Desired::Idle, Some(srv()), Some(Source::Api)),
        (
            vec![(tag(), Desired::Running)],
            vec![(chan(2), Desired::Idle)],
            Desired::Running,
            Some(tag()),
            Some(Source::File),
        ),
    ];
    for (i, (file, api, want, at, source)) in table.into_iter().enumerate() {
        let mut r = Reconciler::default();
        for (scope, d) in api {
            r.set_desired(scope, d);
        }
        r.replace_file_settings(file, []);
        assert_eq!(r.desired(&s1, ch(1)), (want, at.clone()), "row {i}");
        let src = at.as_ref().and_then(|a| r.desired_settings().sourced(a)).map(|(_, s)| s);
        assert_eq!(src, source, "row {i}");
    }
}

#[test]
fn a_reload_replaces_the_file_settings_and_keeps_the_api_ones() {
    let s1 = server("s1", &["eu"]);
    let srv = Scope::Server(s1.id.clone());
    let tag = Scope::Tag("eu".into());
    let c1 = Scope::Channel(s1.id.clone(), ch(1));
    let on = Healing::On(HealPolicy::default());
    let mut r = Reconciler::default();
    r.replace_file_settings(
        [(srv.clone(), Desired::Running), (tag.clone(), Desired::Idle)],
        [(tag.clone(), on.clone())],
    );
    r.set_desired(c1.clone(), Desired::Idle);
    r.set_desired(srv.clone(), Desired::Idle);
    r.handle_fleet([(&s1, &state(&[Seen::Running]))], t(0));
    assert!(!r.needs_full_pass());
    let sourced = |r: &Reconciler| -> Vec<(Scope, Desired, Source)> {
        r.desired_settings().iter_sourced().map(|(s, d, src)| (s, *d, src)).collect()
    };
    assert_eq!(
        sourced(&r),
        [
            (c1.clone(), Desired::Idle, Source::Api),
            (srv.clone(), Desired::Idle, Source::Api),
            (tag.clone(), Desired::Idle, Source::File)
        ]
    );
    // The new file drops the tag, changes the server and declares healing per server.
    r.replace_file_settings([(srv.clone(), Desired::Unmanaged)], [(srv.clone(), Healing::Off)]);
    assert!(r.needs_full_pass(), "a reload applies at the next pass");
    assert_eq!(sourced(&r), [(c1.clone(), Desired::Idle, Source::Api), (srv.clone(), Desired::Idle, Source::Api)]);
    assert_eq!(
        r.healing_settings().iter_sourced().map(|(s, h, src)| (s, h.clone(), src)).collect::<Vec<_>>(),
        [(srv.clone(), Healing::Off, Source::File)]
    );
    // Clearing the API setting lets the file's show through; clearing again removes it.
    assert_eq!(r.clear_desired(&srv), Some(Desired::Idle));
    assert_eq!(r.desired_settings().sourced(&srv), Some((&Desired::Unmanaged, Source::File)));
    assert_eq!(r.clear_desired(&srv), Some(Desired::Unmanaged));
    assert_eq!(r.desired_settings().get(&srv), None);
    // An empty file leaves only the API settings.
    r.replace_file_settings([], []);
    assert_eq!(sourced(&r), [(c1, Desired::Idle, Source::Api)]);
    assert!(r.healing_settings().is_empty());
}
