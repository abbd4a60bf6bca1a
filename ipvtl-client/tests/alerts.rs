//! Alerts over a cluster against the simulator, over real sockets: a
//! server taken down fires `IpvtlServerDown` after its `for` and resolves
//! when it is back; a silence (or maintenance) holds it, and expiring the
//! silence lets it fire; the watch ends with the cluster and stops when
//! dropped.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant as WallInstant};

use ipvtl_client::alerts::{AlertRules, AlertWatch, SilenceInput};
use ipvtl_client::core::alert::{AlertState, NotificationKind, Silencer};
use ipvtl_client::Cluster;
use ipvtl_sim::{Fault, SimFleet};

/// Long enough for any wait of these tests on a loaded machine.
const WAIT: Duration = Duration::from_secs(10);
/// The rule's `for` in these tests.
const FOR: Duration = Duration::from_millis(400);

/// The tests count the watch threads of the process: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// `server_down` with a short `for`; `cpu_high` off (the simulator's
/// servers run hot).
const RULES: &str = "[rules.server_down]\nfor = \"400ms\"\n[rules.cpu_high]\nenabled = false\n";

fn rules() -> AlertRules {
    AlertRules::from_toml_str(RULES).expect("valid rules")
}

fn setup(count: usize) -> (SimFleet, Cluster, String) {
    let sim = common::sim(count);
    let cluster = common::cluster(&sim, common::settings());
    let id = sim.servers()[0].id.to_string();
    cluster.blocking().poll_all().expect("first sweep");
    (sim, cluster, id)
}

/// Waits (bounded) until `f` holds for the watch.
fn wait_until(watch: &AlertWatch, what: &str, f: impl Fn(&AlertWatch) -> bool) {
    let end = WallInstant::now() + WAIT;
    while !f(watch) {
        assert!(WallInstant::now() < end, "timed out waiting for: {what}; alerts {:?}", watch.alerts());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_server_down_fires_after_its_for_and_resolves_when_back() {
    let _serial = serial();
    let (sim, cluster, id) = setup(3);
    let watch = cluster.watch_alerts(rules()).expect("watch starts");
    assert!(watch.alerts().is_empty(), "an online fleet has no alert: {:?}", watch.alerts());

    sim.set_fault(&id, Some(Fault::Down));
    let down_at = cluster.now();
    cluster.blocking().poll_all().expect("sweep");
    wait_until(&watch, "a pending alert", |w| w.alerts().iter().any(|a| a.state == AlertState::Pending));
    assert_eq!(watch.try_recv(), None, "nothing fires before its `for`");

    let firing = watch.recv_timeout(WAIT).expect("IpvtlServerDown fires");
    assert_eq!(firing.kind, NotificationKind::Firing);
    assert_eq!(firing.labels["alertname"], "IpvtlServerDown");
    assert_eq!(firing.labels["server"], id);
    assert_eq!(firing.labels["severity"], "critical");
    assert!(firing.starts_at >= down_at + FOR, "fired at {} before for ended ({down_at} + {FOR:?})", firing.starts_at);
    let active = watch.alerts();
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!((active[0].state, active[0].fingerprint), (AlertState::Firing, firing.fingerprint));
    let view = watch.notification_view(&firing);
    assert_eq!(view.kind, "firing");
    assert!(view.id.starts_with(&format!("{}-firing-", firing.fingerprint)), "{}", view.id);

    sim.set_fault(&id, None);
    cluster.blocking().poll_all().expect("sweep");
    let resolved = watch.recv_timeout(WAIT).expect("resolved once the server is back");
    assert_eq!(resolved.kind, NotificationKind::Resolved);
    assert_eq!((resolved.fingerprint, resolved.starts_at), (firing.fingerprint, firing.starts_at));
    assert!(resolved.ends_at.is_some_and(|t| t >= firing.starts_at));
    assert!(watch.alerts().is_empty());
    let history = watch.history();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].fingerprint, history[0].fired_at), (firing.fingerprint, Some(firing.starts_at)));
    assert_eq!(watch.try_recv(), None, "one firing, one resolved");
}

#[test]
fn a_silence_holds_the_alert_and_expiring_it_lets_it_fire() {
    let _serial = serial();
    let (sim, cluster, id) = setup(3);
    let watch = cluster.watch_alerts(rules()).expect("watch starts");
    let input = |matchers: &[&str], duration_ms: Option<u64>| SilenceInput {
        matchers: matchers.iter().map(|m| m.to_string()).collect(),
        duration_ms,
        comment: Some("test".into()),
        ..SilenceInput::default()
    };
    for bad in [
        input(&["server=~x"], Some(60_000)),
        input(&["server!=x"], Some(60_000)),
        input(&[], Some(60_000)),
        input(&["server=x"], None),
        input(&["server=x"], Some(0)),
        SilenceInput { ends_at: Some(1.0), ..input(&["server=x"], None) },
    ] {
        let e = watch.add_silence(bad.clone()).expect_err("refused");
        assert_eq!(e.kind(), "invalid", "{bad:?}: {e}");
    }
    let silence = watch.add_silence(input(&[&format!("server={id}")], Some(60_000))).expect("a silence");
    let views = watch.silence_views();
    assert_eq!(views.len(), 1);
    assert_eq!((views[0].id, views[0].origin, views[0].comment.as_str()), (silence.0, "api", "test"));
    assert_eq!(views[0].matchers, vec![format!("server=\"{id}\"")]);

    sim.set_fault(&id, Some(Fault::Down));
    cluster.blocking().poll_all().expect("sweep");
    wait_until(&watch, "the alert silenced", |w| w.alerts().iter().any(|a| a.state == AlertState::Silenced));
    assert_eq!(watch.alerts()[0].silenced_by, Some(Silencer::Silence(silence)));
    assert_eq!(watch.try_recv(), None, "a silenced alert is not notified");

    assert!(watch.expire_silence(silence));
    assert!(!watch.expire_silence(silence), "already ended");
    assert!(watch.silences().is_empty());
    let firing = watch.recv_timeout(WAIT).expect("fires once the silence ends");
    assert_eq!((firing.kind, firing.labels["server"].as_str()), (NotificationKind::Firing, id.as_str()));
}

#[test]
fn maintenance_and_the_rules_silences_hold_alerts() {
    let _serial = serial();
    let (sim, cluster, _) = setup(3);
    let ids: Vec<String> = sim.servers().iter().map(|s| s.id.to_string()).collect();
    let text = format!("{RULES}[[silences]]\nmatchers = [\"server={}\"]\ncomment = \"lab\"\n", ids[1]);
    let watch = cluster.watch_alerts(AlertRules::from_toml_str(&text).expect("valid")).expect("watch starts");
    let views = watch.silence_views();
    assert_eq!((views.len(), views[0].origin, views[0].ends_at), (1, "file", None));
    cluster.set_maintenance(&ids[0], true).expect("known server");
    for id in &ids {
        sim.set_fault(id, Some(Fault::Down));
    }
    cluster.blocking().poll_all().expect("sweep");
    let firing = watch.recv_timeout(WAIT).expect("the third server fires");
    assert_eq!(firing.labels["server"], ids[2]);
    wait_until(&watch, "two silenced", |w| w.alerts().iter().filter(|a| a.state == AlertState::Silenced).count() == 2);
    let by = |id: &str| watch.alerts().into_iter().find(|a| a.labels["server"] == id).and_then(|a| a.silenced_by);
    assert_eq!(by(&ids[0]), Some(Silencer::Maintenance));
    assert!(matches!(by(&ids[1]), Some(Silencer::Silence(_))));
    assert_eq!(watch.try_recv(), None, "only the third server was notified");
}

#[test]
fn refused_rules_are_an_invalid_error() {
    let e = AlertRules::from_toml_str("[rules.cpu_high]\npercent = 150\n").expect_err("refused");
    assert_eq!(e.kind(), "invalid");
    assert!(e.to_string().contains("line 1") && e.to_string().contains("percent"), "{e}");
}

/// Threads of this process named `ipvtl-alerts`.
#[cfg(target_os = "linux")]
fn watch_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.trim() == "ipvtl-alerts")
                .count()
        })
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
#[test]
fn dropping_the_watch_stops_its_thread() {
    let _serial = serial();
    let (sim, cluster, id) = setup(2);
    let before = watch_threads();
    let watch = cluster.watch_alerts(rules()).expect("watch starts");
    assert!(watch.is_active());
    // A thread names itself once it runs: wait for it (bounded).
    let deadline = WallInstant::now() + Duration::from_secs(5);
    while watch_threads() != before + 1 && WallInstant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(watch_threads(), before + 1, "the watch runs on a thread of its own");
    drop(watch);
    assert_eq!(watch_threads(), before, "the thread is joined on drop");
    // The cluster goes on without it.
    sim.set_fault(&id, Some(Fault::Down));
    let fleet = cluster.blocking().poll_all().expect("sweep");
    assert_eq!(fleet.servers.iter().filter(|s| s.state.error.is_some()).count(), 1);
}

#[test]
fn the_watch_ends_with_the_cluster_and_keeps_what_it_decided() {
    let _serial = serial();
    let (sim, cluster, id) = setup(2);
    let watch = cluster.watch_alerts(rules()).expect("watch starts");
    let events = cluster.subscribe();
    sim.set_fault(&id, Some(Fault::Down));
    cluster.blocking().poll_all().expect("sweep");
    let firing = watch.recv_timeout(WAIT).expect("fires");
    assert_eq!(firing.kind, NotificationKind::Firing);
    drop(events);
    drop(cluster);
    // The watch does not keep the cluster running: its events end, and so
    // does the watch.
    let end = WallInstant::now() + WAIT;
    while watch.is_active() {
        assert!(WallInstant::now() < end, "the watch outlived its cluster");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(watch.recv_blocking(), None);
    assert_eq!(watch.alerts().len(), 1, "what it knew stays readable");
}

#[test]
fn a_watch_that_falls_behind_resyncs_from_a_snapshot() {
    let _serial = serial();
    let sim = common::sim(40);
    // One event of buffer: the watch loses most of a sweep's events,
    // its SweepFinished among them at times.
    let settings = ipvtl_client::Settings { event_buffer: 1, ..common::settings() };
    let cluster = common::cluster(&sim, settings);
    cluster.blocking().poll_all().expect("first sweep");
    let watch = cluster.watch_alerts(rules()).expect("watch starts");
    for s in sim.servers() {
        sim.set_fault(s.id.as_str(), Some(Fault::Down));
    }
    cluster.blocking().poll_all().expect("sweep");
    let mut fired = std::collections::BTreeSet::new();
    let end = WallInstant::now() + WAIT;
    while fired.len() < 40 {
        let left = end.saturating_duration_since(WallInstant::now());
        let n = watch.recv_timeout(left).unwrap_or_else(|| panic!("{} of 40 fired", fired.len()));
        fired.insert(n.labels["server"].clone());
    }
}
