//! The alert evaluator alone, in virtual time: one focused test per rule,
//! silences and maintenance, settings, and proptests of its promises.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use super::*;
use crate::action::{ActionError, ActionKind, ActionReport};
use crate::batch::BatchReport;
use crate::event::StallReason;
use crate::fleet::ServerSnapshot;
use crate::ids::BatchId;
use crate::model::{ChannelState, Health, PollError, ServerState, Status};
use crate::reconcile::{Desired, Drift};

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ch(n: u32) -> ChannelId {
    ChannelId::new(n).unwrap()
}

/// One server as a test sees it.
#[derive(Clone, Debug)]
struct Srv {
    id: String,
    tags: Vec<String>,
    health: Health,
    maintenance: bool,
    cpu: Vec<f32>,
    stalled: Vec<u32>,
}

fn srv(id: &str) -> Srv {
    Srv {
        id: id.into(),
        tags: Vec::new(),
        health: Health::Online,
        maintenance: false,
        cpu: vec![10.0],
        stalled: vec![],
    }
}

impl Srv {
    fn health(mut self, h: Health) -> Self {
        self.health = h;
        self
    }
    fn cpu(mut self, cpu: &[f32]) -> Self {
        self.cpu = cpu.to_vec();
        self
    }
    fn stalled(mut self, c: u32) -> Self {
        self.stalled.push(c);
        self
    }
    fn tags(mut self, tags: &[&str]) -> Self {
        self.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }
    fn maintenance(mut self) -> Self {
        self.maintenance = true;
        self
    }
}

fn snapshot(servers: &[Srv], drifts: Vec<Drift>, now: Instant) -> FleetSnapshot {
    let servers = servers
        .iter()
        .map(|s| {
            let mut config = ServerConfig::new(s.id.as_str(), "192.0.2.1");
            config.tags = s.tags.clone();
            let mut state = ServerState {
                health: s.health,
                maintenance: s.maintenance,
                status: Some(alloc::sync::Arc::new(Status { cpu: s.cpu.clone(), ..Status::default() })),
                ..ServerState::default()
            };
            if s.health == Health::Offline {
                state.error = Some(PollError::Timeout { after_ms: 2_000 });
            }
            for c in &s.stalled {
                state.stalled.insert(ch(*c), StallReason::ZeroFps);
            }
            ServerSnapshot { config: Arc::new(config), state }
        })
        .collect();
    FleetSnapshot { taken_at: now, sweep: 1, servers, drifts }
}

fn drift(server: &str, c: u32, degraded: bool) -> Drift {
    Drift {
        server: server.into(),
        channel: ch(c),
        desired: Desired::Running,
        observed: ChannelState::Idle,
        stall: None,
        since: t(0),
        attempts: if degraded { 3 } else { 0 },
        degraded,
        healing: None,
    }
}

fn drain(a: &mut Alerts) -> Vec<Notification> {
    core::iter::from_fn(|| a.poll_event()).collect()
}

/// (kind, alertname, server label) of each notification.
fn brief(n: &[Notification]) -> Vec<(NotificationKind, String, Option<String>)> {
    n.iter().map(|n| (n.kind, n.labels["alertname"].clone(), n.labels.get("server").cloned())).collect()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Runs `a` to `until`, waking at each `poll_timeout`, and returns what it
/// said, with when.
fn run_until(a: &mut Alerts, until: Instant) -> Vec<(Instant, Notification)> {
    let mut out = Vec::new();
    while let Some(at) = a.poll_timeout().filter(|at| *at <= until) {
        a.handle_timeout(at);
        out.extend(drain(a).into_iter().map(|n| (at, n)));
    }
    a.handle_timeout(until);
    out.extend(drain(a).into_iter().map(|n| (until, n)));
    out
}

fn report(server: &str, c: u32, ok: bool) -> ActionReport {
    let mut r = ActionReport::refused(
        Some(ActionId(1)),
        server.into(),
        ch(c),
        ActionKind::Restart,
        None,
        ActionError::Busy { server: server.into(), channel: ch(c), holder: ActionId(9) },
        t(0),
    );
    r.outcome = if ok { Ok(()) } else { Err(ActionError::StartFailed { cause: PollError::Http { code: 500 } }) };
    r
}

fn finished(r: ActionReport) -> Event {
    Event::ActionFinished { report: r }
}

// ---------------------------------------------------------------- identity

#[test]
fn the_fingerprint_is_stable_and_tells_label_sets_apart() {
    assert_eq!(Fingerprint::of(&Labels::new()).to_string(), "cbf29ce484222325", "FNV-1a offset basis");
    let l = labels(&[("alertname", "IpvtlServerDown"), ("server", "edge-1")]);
    // Pinned: the outbox keys on it across versions.
    assert_eq!(Fingerprint::of(&l).to_string(), PINNED);
    assert_eq!(Fingerprint::of(&l), Fingerprint::of(&l.clone()));
    assert_ne!(Fingerprint::of(&labels(&[("a", "bc")])), Fingerprint::of(&labels(&[("ab", "c")])));
    assert_ne!(Fingerprint::of(&labels(&[("a", "b")])), Fingerprint::of(&labels(&[("a", "b"), ("c", "")])));
}

const PINNED: &str = "831499c9ffc91850";

// ---------------------------------------------------------------- the rules

#[test]
fn server_down_fires_after_for_and_resolves_once() {
    let mut a = Alerts::default(); // server_down: 60 s, critical
    let down = [srv("edge-1").tags(&["eu", "hd"]).health(Health::Offline)];
    for s in (0..60).step_by(5) {
        a.handle_snapshot(&snapshot(&down, vec![], t(s * 1_000)), t(s * 1_000));
        assert!(drain(&mut a).is_empty(), "nothing before for, at {s} s");
    }
    assert_eq!(a.alerts()[0].state, AlertState::Pending);
    assert_eq!(a.poll_timeout(), Some(t(60_000)));
    a.handle_timeout(t(59_999));
    assert!(drain(&mut a).is_empty());
    a.handle_timeout(t(60_000));
    let fired = drain(&mut a);
    assert_eq!(fired.len(), 1);
    let want =
        labels(&[("alertname", "IpvtlServerDown"), ("server", "edge-1"), ("severity", "critical"), ("tags", "eu,hd")]);
    assert_eq!(fired[0].labels, want);
    assert_eq!((fired[0].kind, fired[0].starts_at, fired[0].ends_at), (NotificationKind::Firing, t(60_000), None));
    assert_eq!(fired[0].fingerprint, Fingerprint::of(&want));
    assert_eq!(fired[0].annotations["summary"], "edge-1 is offline");
    assert!(fired[0].annotations["description"].contains("no answer within 2000 ms"));
    // Still down: deduplicated. Error instead of offline: the same alert.
    a.handle_snapshot(&snapshot(&down, vec![], t(65_000)), t(65_000));
    let error = [srv("edge-1").tags(&["eu", "hd"]).health(Health::Error)];
    a.handle_snapshot(&snapshot(&error, vec![], t(70_000)), t(70_000));
    assert!(drain(&mut a).is_empty());
    assert_eq!(a.alerts()[0].annotations["summary"], "edge-1 is error");
    // Unknown is not down.
    let unknown = [srv("edge-1").tags(&["eu", "hd"]).health(Health::Unknown)];
    a.handle_snapshot(&snapshot(&unknown, vec![], t(75_000)), t(75_000));
    let resolved = drain(&mut a);
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        (resolved[0].kind, resolved[0].starts_at, resolved[0].ends_at),
        (NotificationKind::Resolved, t(60_000), Some(t(75_000)))
    );
    assert_eq!(resolved[0].fingerprint, fired[0].fingerprint);
    assert!(a.alerts().is_empty());
    assert_eq!(a.history().count(), 1);
}

#[test]
fn a_flapping_server_never_fires() {
    let mut a = Alerts::default();
    let up = [srv("s1")];
    let down = [srv("s1").health(Health::Offline)];
    // Down 55 s, up 5 s, for ten minutes: each down spell is under `for`.
    let mut now = 0;
    for _ in 0..10 {
        a.handle_snapshot(&snapshot(&down, vec![], t(now)), t(now));
        assert!(run_until(&mut a, t(now + 55_000)).is_empty());
        now += 55_000;
        a.handle_snapshot(&snapshot(&up, vec![], t(now)), t(now));
        assert!(run_until(&mut a, t(now + 5_000)).is_empty());
        now += 5_000;
    }
    assert!(a.alerts().is_empty());
    assert_eq!(a.history().count(), 0, "pending alerts that never fired are not history");
}

#[test]
fn a_stalled_channel_fires_and_ends_with_the_evidence() {
    let mut a = Alerts::default(); // channel_stalled: 30 s
    let stalled = [srv("s1").stalled(2)];
    a.handle_snapshot(&snapshot(&stalled, vec![], t(0)), t(0));
    let out = run_until(&mut a, t(30_000));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, t(30_000));
    assert_eq!(out[0].1.labels["channel"], "2");
    assert_eq!(out[0].1.labels["alertname"], "IpvtlChannelStalled");
    assert_eq!(out[0].1.labels["severity"], "warning");
    // The server goes offline: its stale stall ends, the server alert is pending.
    a.handle_snapshot(&snapshot(&[srv("s1").stalled(2).health(Health::Offline)], vec![], t(35_000)), t(35_000));
    assert_eq!(brief(&drain(&mut a)), [(NotificationKind::Resolved, "IpvtlChannelStalled".into(), Some("s1".into()))]);
    assert_eq!(a.alerts().len(), 1);
    assert_eq!(a.alerts()[0].rule, RuleKind::ServerDown);
}

#[test]
fn drift_and_degraded_come_from_the_snapshot_and_degraded_also_from_its_event() {
    let mut a = Alerts::default(); // drift 60 s, heal_degraded at once
    let fleet = [srv("s1").tags(&["eu"])];
    a.handle_snapshot(&snapshot(&fleet, vec![drift("s1", 3, false)], t(0)), t(0));
    assert!(drain(&mut a).is_empty());
    // The degraded event fires at once, before any snapshot shows it.
    let degraded = Event::HealDegraded { server: "s1".into(), channel: ch(3), attempts: 3, until: t(600_000) };
    a.handle_event(&degraded, t(10_000));
    let n = drain(&mut a);
    assert_eq!(brief(&n), [(NotificationKind::Firing, "IpvtlHealDegraded".into(), Some("s1".into()))]);
    assert_eq!(n[0].labels["tags"], "eu", "tags known from the last snapshot");
    assert_eq!(n[0].labels["channel"], "3");
    // The snapshot agrees: nothing new. Drift fires at 60 s.
    a.handle_snapshot(&snapshot(&fleet, vec![drift("s1", 3, true)], t(20_000)), t(20_000));
    let out = run_until(&mut a, t(60_000));
    assert_eq!(brief(&out.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>()).len(), 1);
    assert_eq!(out[0].1.labels["alertname"], "IpvtlChannelDrift");
    assert_eq!(out[0].1.annotations["description"], "s1 channel 3 should be running, is idle");
    // Cleared and healed: both resolve.
    a.handle_snapshot(&snapshot(&fleet, vec![], t(70_000)), t(70_000));
    let mut names: Vec<_> = brief(&drain(&mut a)).into_iter().map(|(k, n, _)| (k, n)).collect();
    names.sort();
    assert_eq!(
        names,
        [
            (NotificationKind::Resolved, "IpvtlChannelDrift".into()),
            (NotificationKind::Resolved, "IpvtlHealDegraded".into())
        ]
    );
}

#[test]
fn healing_paused_by_the_storm_guard_fires_until_it_resumes() {
    let mut a = Alerts::default();
    a.handle_event(&Event::HealingPaused { troubled: 8, managed: 20 }, t(1_000));
    let n = drain(&mut a);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].labels, labels(&[("alertname", "IpvtlHealingPaused"), ("severity", "critical")]));
    assert!(n[0].annotations["description"].starts_with("8 of 20 managed channels"));
    a.handle_event(&Event::HealingPaused { troubled: 9, managed: 20 }, t(2_000));
    assert!(drain(&mut a).is_empty(), "the same alert");
    a.handle_event(&Event::HealingResumed { troubled: 1, managed: 20 }, t(3_000));
    assert_eq!(brief(&drain(&mut a)), [(NotificationKind::Resolved, "IpvtlHealingPaused".into(), None)]);
}

#[test]
fn cpu_high_needs_the_average_at_the_threshold_for_the_whole_for() {
    let mut config = AlertConfig::default();
    config.cpu_high.percent = 80.0;
    config.cpu_high.r#for = secs(60);
    let mut a = Alerts::new(config).unwrap();
    // (time s, cores, fires by then)
    let cases: &[(u64, &[f32], usize)] = &[
        (0, &[70.0, 90.0], 0),   // mean 80: at the threshold, pending
        (30, &[100.0, 50.0], 0), // mean 75: below, forgotten
        (40, &[90.0, 90.0], 0),  // pending again from 40 s
        (90, &[85.0], 0),        // 50 s in
        (100, &[85.0], 1),       // 60 s in: fires
        (110, &[], 1),           // no cores reported: over
    ];
    let mut fired = 0;
    let mut resolved = 0;
    for (s, cpu, want) in cases {
        let now = t(s * 1_000);
        for (_, n) in run_until(&mut a, now) {
            match n.kind {
                NotificationKind::Firing => fired += 1,
                NotificationKind::Resolved => resolved += 1,
            }
        }
        assert_eq!(fired, *want, "at {s} s");
        a.handle_snapshot(&snapshot(&[srv("s1").cpu(cpu)], vec![], now), now);
        for n in drain(&mut a) {
            match n.kind {
                NotificationKind::Firing => fired += 1,
                NotificationKind::Resolved => resolved += 1,
            }
        }
    }
    assert_eq!((fired, resolved), (1, 1));
}

#[test]
fn a_failed_action_fires_at_once_and_resolves_on_success_or_after_its_hold() {
    let mut a = Alerts::default(); // hold 15 min
    a.handle_snapshot(&snapshot(&[srv("s1").tags(&["eu"])], vec![], t(0)), t(0));
    a.handle_event(&finished(report("s1", 2, false)), t(1_000));
    let n = drain(&mut a);
    assert_eq!(n.len(), 1);
    assert_eq!(
        n[0].labels,
        labels(&[
            ("alertname", "IpvtlActionFailed"),
            ("channel", "2"),
            ("server", "s1"),
            ("severity", "warning"),
            ("tags", "eu")
        ])
    );
    assert_eq!(n[0].annotations["summary"], "restart of s1 channel 2 failed");
    // Fails again: the same alert, held 15 min from the last failure.
    a.handle_event(&finished(report("s1", 2, false)), t(60_000));
    assert!(drain(&mut a).is_empty());
    assert_eq!(a.poll_timeout(), Some(t(960_000)));
    // Success on another channel does nothing; on this one it resolves.
    a.handle_event(&finished(report("s1", 3, true)), t(70_000));
    assert!(drain(&mut a).is_empty());
    a.handle_event(&finished(report("s1", 2, true)), t(80_000));
    assert_eq!(drain(&mut a)[0].ends_at, Some(t(80_000)));
    // Another failure, left alone: resolves after the hold.
    a.handle_event(&finished(report("s1", 2, false)), t(100_000));
    assert_eq!(drain(&mut a).len(), 1);
    let out = run_until(&mut a, t(2_000_000));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0, out[0].1.kind), (t(1_000_000), NotificationKind::Resolved));
}

#[test]
fn refusals_heals_and_batch_actions_do_not_raise_action_failed_by_default() {
    let mut a = Alerts::default();
    let mut refused = report("s1", 1, false);
    refused.outcome = Err(ActionError::Maintenance { server: "s1".into() });
    a.handle_event(&finished(refused), t(0));
    let mut in_batch = report("s1", 2, false);
    in_batch.batch = Some(BatchId(4));
    a.handle_event(&finished(in_batch.clone()), t(0));
    let mut heal = report("s1", 3, false);
    heal.action = Some(ActionId(7));
    let heal_started = Event::HealStarted {
        heal: crate::reconcile::Heal {
            server: "s1".into(),
            channel: ch(3),
            kind: ActionKind::Restart,
            desired: Desired::Running,
            observed: ChannelState::Running,
            stall: None,
            since: t(0),
        },
        action: ActionId(7),
        attempt: 1,
    };
    a.handle_event(&heal_started, t(0));
    a.handle_event(&finished(heal.clone()), t(0));
    assert!(drain(&mut a).is_empty());
    assert!(a.alerts().is_empty());
    // Opted in: both raise.
    let mut config = AlertConfig::default();
    config.action_failed.heals = true;
    config.action_failed.batch_actions = true;
    a.set_config(config, t(1)).unwrap();
    a.handle_event(&heal_started, t(1));
    a.handle_event(&finished(heal), t(1));
    a.handle_event(&finished(in_batch), t(1));
    assert_eq!(drain(&mut a).len(), 2);
}

#[test]
fn a_failed_batch_fires_once_and_resolves_after_its_hold() {
    let mut config = AlertConfig::default();
    config.batch_failed.hold = secs(60);
    let mut a = Alerts::new(config).unwrap();
    let batch = |id, ok: &[bool]| BatchReport {
        batch: BatchId(id),
        kind: ActionKind::Restart,
        started_at: t(0),
        finished_at: t(0),
        reports: ok.iter().enumerate().map(|(i, ok)| report("s1", i as u32 + 1, *ok)).collect(),
        stopped_early: None,
    };
    a.handle_event(&Event::BatchFinished { report: batch(1, &[true, true]) }, t(0));
    assert!(drain(&mut a).is_empty(), "a good batch");
    a.handle_event(&Event::BatchFinished { report: batch(2, &[true, false, false]) }, t(1_000));
    let n = drain(&mut a);
    assert_eq!(n[0].labels, labels(&[("alertname", "IpvtlBatchFailed"), ("batch", "2"), ("severity", "warning")]));
    assert_eq!(n[0].annotations["description"], "2 of 3 actions failed");
    let out = run_until(&mut a, t(100_000));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0, out[0].1.kind), (t(61_000), NotificationKind::Resolved));
}

#[test]
fn the_store_failing_fires_after_for() {
    let mut a = Alerts::default(); // 30 s
    a.set_store_failing(true, t(0));
    a.set_store_failing(false, t(20_000));
    assert!(run_until(&mut a, t(100_000)).is_empty(), "a blip");
    a.set_store_failing(true, t(100_000));
    a.set_store_failing(true, t(110_000));
    let out = run_until(&mut a, t(200_000));
    assert_eq!(brief(&[out[0].1.clone()]), [(NotificationKind::Firing, "IpvtlStoreFailing".into(), None)]);
    assert_eq!(out[0].0, t(130_000), "for counts from the first failure");
    a.set_store_failing(false, t(200_000));
    assert_eq!(drain(&mut a)[0].kind, NotificationKind::Resolved);
}

// ---------------------------------------------------------------- silences

#[test]
fn a_silenced_alert_is_tracked_and_fires_when_the_silence_ends() {
    let mut a = Alerts::default();
    let silence = Silence::new(vec![Matcher::equal("server", "s1")], t(300_000));
    let id = a.add_silence(silence, t(0)).unwrap();
    let fleet = [srv("s1").health(Health::Offline), srv("s2").health(Health::Offline)];
    a.handle_snapshot(&snapshot(&fleet, vec![], t(0)), t(0));
    let out = run_until(&mut a, t(299_999));
    assert_eq!(
        brief(&out.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>()),
        [(NotificationKind::Firing, "IpvtlServerDown".into(), Some("s2".into()))]
    );
    let s1 = a.alerts().into_iter().find(|x| x.labels["server"] == "s1").unwrap();
    assert_eq!((s1.state, s1.since, s1.silenced_by), (AlertState::Silenced, t(60_000), Some(Silencer::Silence(id))));
    assert_eq!(a.count(AlertState::Silenced), 1);
    // The silence ends while s1 is still down: it fires then.
    let out = run_until(&mut a, t(400_000));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0, out[0].1.labels["server"].as_str()), (t(300_000), "s1"));
    assert_eq!(a.silences().count(), 0);
}

#[test]
fn an_alert_silenced_after_it_fired_still_resolves_and_one_that_never_fired_never_does() {
    let mut a = Alerts::default();
    a.set_store_failing(true, t(0));
    assert_eq!(run_until(&mut a, t(30_000)).len(), 1);
    let id = a
        .add_silence(Silence::new(vec![Matcher::equal("alertname", "IpvtlStoreFailing")], t(1_000_000)), t(31_000))
        .unwrap();
    assert!(drain(&mut a).is_empty());
    assert_eq!(a.alerts()[0].state, AlertState::Silenced);
    // Expired and silenced again: it fired once, no second firing.
    assert!(a.expire_silence(id, t(40_000)));
    assert!(!a.expire_silence(id, t(40_000)));
    a.add_silence(Silence::new(vec![Matcher::equal("alertname", "IpvtlStoreFailing")], t(1_000_000)), t(41_000))
        .unwrap();
    assert!(drain(&mut a).is_empty());
    a.set_store_failing(false, t(50_000));
    assert_eq!(drain(&mut a)[0].kind, NotificationKind::Resolved, "its firing reached people; so does its end");
    // Silenced from the start: nothing at all, but it is in the history.
    a.set_store_failing(true, t(60_000));
    a.set_store_failing(false, t(200_000));
    assert!(run_until(&mut a, t(300_000)).is_empty());
    let last = a.history().last().unwrap();
    assert!(last.silenced && last.fired_at.is_none());
}

#[test]
fn maintenance_silences_a_server_and_leaving_it_fires_what_is_still_wrong() {
    let mut a = Alerts::default();
    let inside = [srv("s1").health(Health::Offline).maintenance(), srv("s2").health(Health::Offline)];
    a.handle_snapshot(&snapshot(&inside, vec![], t(0)), t(0));
    let out = run_until(&mut a, t(100_000));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.labels["server"], "s2");
    let s1 = a.alerts().into_iter().find(|x| x.labels["server"] == "s1").unwrap();
    assert_eq!((s1.state, s1.silenced_by), (AlertState::Silenced, Some(Silencer::Maintenance)));
    let outside = [srv("s1").health(Health::Offline), srv("s2").health(Health::Offline)];
    a.handle_snapshot(&snapshot(&outside, vec![], t(120_000)), t(120_000));
    let n = drain(&mut a);
    assert_eq!(brief(&n), [(NotificationKind::Firing, "IpvtlServerDown".into(), Some("s1".into()))]);
    assert_eq!(n[0].starts_at, t(120_000));
}

#[test]
fn matchers_parse_and_silences_are_checked() {
    let cases: &[(&str, Result<Matcher, SilenceError>)] = &[
        ("server=edge-1", Ok(Matcher::equal("server", "edge-1"))),
        ("server = \"edge 1\"", Ok(Matcher::equal("server", "edge 1"))),
        ("server=edge 1 ", Ok(Matcher::equal("server", "edge 1"))),
        ("my server=x", Err(SilenceError::Malformed { text: "my server=x".into() })),
        ("server=\"edge 1\"", Ok(Matcher::equal("server", "edge 1"))),
        ("severity!=info", Ok(Matcher::not_equal("severity", "info"))),
        ("tags=", Ok(Matcher::equal("tags", ""))),
        ("server=~edge.*", Err(SilenceError::Regex { text: "server=~edge.*".into() })),
        ("server!~edge", Err(SilenceError::Regex { text: "server!~edge".into() })),
        ("server", Err(SilenceError::Malformed { text: "server".into() })),
        ("=x", Err(SilenceError::Malformed { text: "=x".into() })),
        ("se-rver=x", Err(SilenceError::Malformed { text: "se-rver=x".into() })),
    ];
    for (text, want) in cases {
        assert_eq!(&Matcher::parse(text), want, "{text}");
    }
    let l = labels(&[("server", "edge-1"), ("severity", "critical")]);
    assert!(Matcher::equal("server", "edge-1").matches(&l));
    assert!(Matcher::equal("channel", "").matches(&l), "absent is empty");
    assert!(!Matcher::not_equal("severity", "critical").matches(&l));
    assert!(Matcher::not_equal("channel", "1").matches(&l));

    let now = t(1_000);
    let checks: &[(Vec<Matcher>, Instant, Result<(), SilenceError>)] = &[
        (vec![Matcher::equal("server", "a")], t(2_000), Ok(())),
        (vec![], t(2_000), Err(SilenceError::NoMatchers)),
        (vec![Matcher::not_equal("server", "a")], t(2_000), Err(SilenceError::MatchesEverything)),
        (vec![Matcher::equal("server", "")], t(2_000), Err(SilenceError::MatchesEverything)),
        (vec![Matcher::equal("server", "a")], t(1_000), Err(SilenceError::Ended { ends_at: t(1_000), now })),
        (vec![Matcher::equal("", "a")], t(2_000), Err(SilenceError::Malformed { text: "=\"a\"".into() })),
    ];
    for (matchers, ends_at, want) in checks {
        assert_eq!(&Silence::new(matchers.clone(), *ends_at).validate(now), want, "{matchers:?}");
    }
    let mut a = Alerts::default();
    let s = Silence::new(vec![Matcher::equal("server", "a")], t(5_000));
    assert_eq!(a.add_silence(s.clone(), now), Ok(SilenceId(1)));
    assert_eq!(a.restore_silence(SilenceId(7), s.clone(), now), Ok(()));
    assert_eq!(a.restore_silence(SilenceId(7), s.clone(), now), Err(SilenceError::DuplicateId { id: SilenceId(7) }));
    assert_eq!(a.add_silence(s, now), Ok(SilenceId(8)), "after the restored ids");
    assert!(SilenceError::MatchesEverything.to_string().contains("mute everything"));
}

#[test]
fn alerts_kept_across_a_restart_are_not_fired_again_and_still_resolve() {
    let mut before = Alerts::default();
    let fleet = [srv("s1").health(Health::Offline), srv("s2").health(Health::Offline)];
    before.handle_snapshot(&snapshot(&fleet, vec![], t(0)), t(0));
    before.set_store_failing(true, t(0));
    before.handle_event(&finished(report("s2", 1, false)), t(50_000));
    let fired = run_until(&mut before, t(60_000));
    assert_eq!(fired.len(), 4);
    let kept = before.alerts();

    let mut after = Alerts::default();
    for alert in kept.clone() {
        assert!(after.restore_alert(alert, t(70_000)));
    }
    assert!(!after.restore_alert(kept[0].clone(), t(70_000)), "already there");
    assert!(drain(&mut after).is_empty());
    let fp = kept.iter().find(|a| a.rule == RuleKind::ServerDown).unwrap().fingerprint;
    assert_eq!(after.alert(fp).unwrap().fired_at, Some(t(60_000)));
    // s1 still down, s2 back, the store fine: three resolve, s1 stays.
    let fleet = [srv("s1").health(Health::Offline), srv("s2")];
    after.handle_snapshot(&snapshot(&fleet, vec![], t(80_000)), t(80_000));
    let n = drain(&mut after);
    assert_eq!(n.len(), 2, "{n:?}");
    let mut ended: Vec<_> = n.iter().map(|n| (n.kind, n.labels["alertname"].as_str(), n.starts_at)).collect();
    ended.sort();
    assert_eq!(
        ended,
        [
            (NotificationKind::Resolved, "IpvtlServerDown", t(60_000)),
            // Due at 30 s, noticed by the input at 50 s (no timeout in between).
            (NotificationKind::Resolved, "IpvtlStoreFailing", t(50_000))
        ]
    );
    assert_eq!(after.alerts().len(), 2, "s1 down, and s2's failed action, held");
    let out = run_until(&mut after, t(2_000_000));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0, out[0].1.labels["alertname"].as_str()), (t(950_000), "IpvtlActionFailed"));
    assert_eq!(after.alerts()[0].labels["server"], "s1");
}

// ---------------------------------------------------------------- settings

#[test]
fn settings_are_validated_and_a_refused_change_keeps_the_old() {
    type Case = (fn(&mut AlertConfig), Option<AlertConfigError>);
    let cases: &[Case] = &[
        (|_| {}, None),
        (|c| c.cpu_high.percent = 100.0, None),
        (|c| c.cpu_high.percent = 0.0, Some(AlertConfigError::CpuPercent { percent: 0.0 })),
        (|c| c.cpu_high.percent = 100.5, Some(AlertConfigError::CpuPercent { percent: 100.5 })),
        (|c| c.action_failed.hold = Duration::ZERO, Some(AlertConfigError::ZeroHold { rule: RuleKind::ActionFailed })),
        (|c| c.batch_failed.hold = Duration::ZERO, Some(AlertConfigError::ZeroHold { rule: RuleKind::BatchFailed })),
    ];
    for (change, want) in cases {
        let mut c = AlertConfig::default();
        change(&mut c);
        assert_eq!(c.validate().err(), *want);
        assert_eq!(Alerts::new(c).err(), *want);
    }
    let mut nan = AlertConfig::default();
    nan.cpu_high.percent = f32::NAN;
    assert!(matches!(nan.validate(), Err(AlertConfigError::CpuPercent { .. })));
    assert_eq!(
        AlertConfigError::ZeroHold { rule: RuleKind::BatchFailed }.to_string(),
        "rule batch_failed: hold must be longer than 0 (the alert would resolve as it fires)"
    );
    let mut a = Alerts::default();
    assert!(a.set_config(nan, t(0)).is_err());
    assert_eq!(a.config(), &AlertConfig::default());
}

#[test]
fn a_rule_switched_off_raises_nothing_and_ends_its_alerts() {
    let mut a = Alerts::default();
    a.set_store_failing(true, t(0));
    a.handle_snapshot(&snapshot(&[srv("s1").health(Health::Offline)], vec![], t(0)), t(0));
    assert_eq!(run_until(&mut a, t(60_000)).len(), 2);
    let mut config = AlertConfig::default();
    config.server_down.enabled = false;
    a.set_config(config.clone(), t(70_000)).unwrap();
    assert_eq!(brief(&drain(&mut a)), [(NotificationKind::Resolved, "IpvtlServerDown".into(), Some("s1".into()))]);
    a.handle_snapshot(&snapshot(&[srv("s1").health(Health::Offline)], vec![], t(80_000)), t(80_000));
    assert!(run_until(&mut a, t(500_000)).is_empty());
    // A new severity for the store: a new label set, at once.
    config.store_failing.severity = Severity::Warning;
    a.set_config(config, t(600_000)).unwrap();
    let n = drain(&mut a);
    assert_eq!(n.len(), 1);
    assert_eq!((n[0].kind, n[0].labels["severity"].as_str()), (NotificationKind::Resolved, "critical"));
    assert_eq!(run_until(&mut a, t(630_000))[0].1.labels["severity"], "warning");
}

#[test]
fn the_history_is_a_bounded_ring() {
    let config = AlertConfig { history: 3, ..AlertConfig::default() };
    let mut a = Alerts::new(config).unwrap();
    for i in 0..5u64 {
        let at = i * 100_000;
        a.set_store_failing(true, t(at));
        run_until(&mut a, t(at + 30_000));
        a.set_store_failing(false, t(at + 40_000));
    }
    let ended: Vec<Instant> = a.history().map(|h| h.ended_at).collect();
    assert_eq!(ended, [t(240_000), t(340_000), t(440_000)]);
    assert!(a.history().all(|h| h.rule == RuleKind::StoreFailing && h.fired_at.is_some() && !h.silenced));
}

// ---------------------------------------------------------------- proptest

mod props {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::format;
    use proptest::prelude::*;

    const SERVERS: usize = 3;

    /// One input, at a time offset from the previous one.
    #[derive(Clone, Debug)]
    enum Step {
        /// Every server's (health, cpu, stalled ch1, maintenance).
        Snapshot(Vec<(Health, f32, bool, bool)>),
        Store(bool),
        /// Silence server `i` for this long.
        Silence(usize, u64),
        /// End the `i`-th silence added (if any).
        Expire(usize),
        /// An action on server `i` channel 1 finished, ok or not.
        Action(usize, bool),
    }

    fn health() -> impl Strategy<Value = Health> {
        prop_oneof![3 => Just(Health::Online), 1 => Just(Health::Offline), 1 => Just(Health::Error), 1 => Just(Health::Unknown)]
    }

    fn step() -> impl Strategy<Value = Step> {
        let server =
            (health(), prop_oneof![Just(10.0f32), Just(95.0)], prop::bool::weighted(0.3), prop::bool::weighted(0.15));
        prop_oneof![
            6 => prop::collection::vec(server, SERVERS).prop_map(Step::Snapshot),
            1 => any::<bool>().prop_map(Step::Store),
            1 => (0..SERVERS, 1_000u64..120_000).prop_map(|(i, d)| Step::Silence(i, d)),
            1 => (0usize..4).prop_map(Step::Expire),
            1 => (0..SERVERS, any::<bool>()).prop_map(|(i, ok)| Step::Action(i, ok)),
        ]
    }

    fn config() -> impl Strategy<Value = AlertConfig> {
        (0u64..40_000, 0u64..40_000, 0u64..40_000, 1_000u64..60_000).prop_map(|(down, stall, cpu, hold)| {
            let mut c = AlertConfig::default();
            c.server_down.r#for = Duration::from_millis(down);
            c.channel_stalled.r#for = Duration::from_millis(stall);
            c.cpu_high.r#for = Duration::from_millis(cpu);
            c.store_failing.r#for = Duration::from_millis(stall);
            c.action_failed.hold = Duration::from_millis(hold);
            c
        })
    }

    fn name(i: usize) -> String {
        format!("s{}", i + 1)
    }

    /// What the test knows independently of the evaluator.
    #[derive(Default)]
    struct Oracle {
        /// Per (alertname, server): since when its condition has held.
        since: BTreeMap<(String, String), Instant>,
        /// (server, end) of every silence added, by order; ended ones None.
        silences: Vec<Option<(String, Instant)>>,
        maintenance: BTreeMap<String, bool>,
        /// Open (fired, not resolved) alerts by fingerprint, with starts_at.
        open: BTreeMap<Fingerprint, Instant>,
        fired: usize,
        resolved: usize,
    }

    impl Oracle {
        fn condition(&mut self, alertname: &str, server: &str, on: bool, now: Instant) {
            let key = (alertname.to_string(), server.to_string());
            if !on {
                self.since.remove(&key);
            } else {
                self.since.entry(key).or_insert(now);
            }
        }

        /// Checks notifications emitted at `now`.
        fn check(&mut self, config: &AlertConfig, now: Instant, out: &[Notification]) -> Result<(), TestCaseError> {
            for n in out {
                let alertname = n.labels["alertname"].as_str();
                let server = n.labels.get("server").cloned().unwrap_or_default();
                match n.kind {
                    NotificationKind::Firing => {
                        self.fired += 1;
                        prop_assert!(self.open.insert(n.fingerprint, n.starts_at).is_none(), "fired twice: {:?}", n);
                        prop_assert_eq!(n.starts_at, now);
                        prop_assert_ne!(server.as_str(), "s1", "s1 is silenced for good: {:?}", n);
                        prop_assert!(
                            !self.maintenance.get(&server).copied().unwrap_or(false),
                            "in maintenance: {:?}",
                            n
                        );
                        let silenced = self.silences.iter().flatten().any(|(s, end)| *s == server && now < *end);
                        prop_assert!(!silenced, "silenced: {:?} at {}", n, now);
                        let rule = RuleKind::ALL.into_iter().find(|r| r.alertname() == alertname).unwrap();
                        if !rule.is_event() {
                            let since = self.since.get(&(alertname.to_string(), server.clone()));
                            prop_assert!(since.is_some(), "fired without its condition: {:?}", n);
                            let held = now.saturating_since(*since.unwrap());
                            prop_assert!(held >= config.for_of(rule), "fired after {:?}: {:?}", held, n);
                        }
                    }
                    NotificationKind::Resolved => {
                        self.resolved += 1;
                        let starts = self.open.remove(&n.fingerprint);
                        prop_assert_eq!(starts, Some(n.starts_at), "resolved without firing: {:?}", n);
                        prop_assert_eq!(n.ends_at, Some(now));
                    }
                }
            }
            Ok(())
        }
    }

    fn step_through(a: &mut Alerts, o: &mut Oracle, config: &AlertConfig, until: Instant) -> Result<(), TestCaseError> {
        while let Some(at) = a.poll_timeout().filter(|at| *at <= until) {
            a.handle_timeout(at);
            let out = drain(a);
            o.check(config, at, &out)?;
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Random snapshots, store failures, silences and action results:
        /// no firing before `for`, one resolved per firing (and none
        /// without), nothing for silenced or maintained servers; at the
        /// end, with everything healthy, every firing has resolved.
        #[test]
        fn the_evaluator_keeps_its_promises(
            config in config(),
            steps in prop::collection::vec((0u64..20_000, step()), 1..60),
        ) {
            let mut a = Alerts::new(config.clone()).unwrap();
            let mut o = Oracle::default();
            // s1 silenced for good from the start.
            a.add_silence(Silence::new(vec![Matcher::equal("server", "s1")], t(u64::MAX)), t(0)).unwrap();
            o.silences.push(Some((name(0), t(u64::MAX))));
            let mut ids = vec![SilenceId(1)];
            let mut now = t(0);
            for (wait, step) in &steps {
                let next = now + Duration::from_millis(*wait);
                step_through(&mut a, &mut o, &config, next)?;
                now = next;
                match step {
                    Step::Snapshot(servers) => {
                        let list: Vec<Srv> = servers
                            .iter()
                            .enumerate()
                            .map(|(i, (h, cpu, stalled, maint))| {
                                let mut s = srv(&name(i)).health(*h).cpu(&[*cpu]);
                                if *stalled {
                                    s = s.stalled(1);
                                }
                                s.maintenance = *maint;
                                s
                            })
                            .collect();
                        for s in &list {
                            let online = s.health == Health::Online;
                            o.condition("IpvtlServerDown", &s.id, matches!(s.health, Health::Offline | Health::Error), now);
                            o.condition("IpvtlCpuHigh", &s.id, online && s.cpu[0] >= 90.0, now);
                            o.condition("IpvtlChannelStalled", &s.id, online && !s.stalled.is_empty(), now);
                            o.maintenance.insert(s.id.clone(), s.maintenance);
                        }
                        a.handle_snapshot(&snapshot(&list, vec![], now), now);
                    }
                    Step::Store(on) => {
                        o.condition("IpvtlStoreFailing", "", *on, now);
                        a.set_store_failing(*on, now);
                    }
                    Step::Silence(i, d) => {
                        let end = now + Duration::from_millis(*d);
                        let id = a.add_silence(Silence::new(vec![Matcher::equal("server", name(*i))], end), now).unwrap();
                        ids.push(id);
                        o.silences.push(Some((name(*i), end)));
                    }
                    Step::Expire(k) => {
                        // Never the permanent one (index 0).
                        if let Some(id) = ids.get(k + 1) {
                            a.expire_silence(*id, now);
                            o.silences[k + 1] = None;
                        }
                    }
                    Step::Action(i, ok) => {
                        a.handle_event(&finished(report(&name(*i), 1, *ok)), now);
                    }
                }
                let out = drain(&mut a);
                o.check(&config, now, &out)?;
                // What is open is exactly what the evaluator says fired.
                let firing = a.alerts().iter().filter(|x| x.fired_at.is_some()).count();
                prop_assert_eq!(o.open.len(), firing);
                prop_assert!(a.alerts().iter().all(|x| x.state != AlertState::Firing || x.silenced_by.is_none()));
            }
            // Everything healthy, the store fine, past every hold.
            let healthy: Vec<Srv> = (0..SERVERS).map(|i| srv(&name(i))).collect();
            now += Duration::from_millis(1);
            a.handle_snapshot(&snapshot(&healthy, vec![], now), now);
            a.set_store_failing(false, now);
            let out = drain(&mut a);
            for s in &healthy {
                o.maintenance.insert(s.id.clone(), false);
                for alertname in ["IpvtlServerDown", "IpvtlCpuHigh", "IpvtlChannelStalled"] {
                    o.condition(alertname, &s.id, false, now);
                }
            }
            o.check(&config, now, &out)?;
            step_through(&mut a, &mut o, &config, now + Duration::from_secs(3_600))?;
            prop_assert!(o.open.is_empty(), "never resolved: {:?}", o.open);
            prop_assert_eq!(o.fired, o.resolved);
            prop_assert!(a.alerts().is_empty());
        }

        /// A server that goes down for less than `for` each time, however
        /// often and whatever the snapshots in between, never fires.
        #[test]
        fn a_flapping_server_never_pages(
            r#for in 1_000u64..120_000,
            spells in prop::collection::vec((0.0f64..1.0, 1u64..60_000, 1usize..4), 1..40),
        ) {
            let mut config = AlertConfig::default();
            config.server_down.r#for = Duration::from_millis(r#for);
            let mut a = Alerts::new(config).unwrap();
            let mut now = t(0);
            for (down_share, up, polls) in spells {
                // Down for under `for`, snapshots spread across the spell.
                let down = ((r#for as f64 - 1.0) * down_share) as u64;
                for k in 0..polls as u64 {
                    let at = now + Duration::from_millis(down * k / polls as u64);
                    prop_assert!(run_until(&mut a, at).is_empty());
                    a.handle_snapshot(&snapshot(&[srv("s1").health(Health::Offline)], vec![], at), at);
                }
                now += Duration::from_millis(down);
                prop_assert!(run_until(&mut a, now).is_empty());
                a.handle_snapshot(&snapshot(&[srv("s1")], vec![], now), now);
                now += Duration::from_millis(up);
                prop_assert!(run_until(&mut a, now).is_empty());
            }
            prop_assert!(a.alerts().is_empty());
        }
    }
}
