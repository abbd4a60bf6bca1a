//! The ffi layer from Rust: conversions from the wire views, settings and
//! batch specs passed through to the client and core, the error mapping,
//! and the watch handle's cancel-on-drop, against the simulator on
//! loopback. The generated bindings are tested per language by
//! scripts/test.d/30-uniffi.sh.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipvtl_client::core::{
    ActionError, ActionKind as CoreKind, ActionReport as CoreReport, BatchError, ChannelId, ChannelState as CoreState,
    ConfigError, Event, Health as CoreHealth, Instant as CoreInstant, PollError, ServerId, StallReason,
};
use ipvtl_client::{ClientError, Settings};
use ipvtl_ffi::{
    ActionKind, BatchFilter, BatchSpec, BatchTarget, Cluster, ClusterEvent, ClusterObserver, ClusterSettings,
    IpvtlError, ObserverError, SimFleet, SimOptions,
};

fn settings() -> ClusterSettings {
    ClusterSettings {
        background: Some(false),
        timeout_ms: Some(1_500),
        offline_after: Some(1),
        watch_interval_ms: Some(50),
        ..ClusterSettings::default()
    }
}

fn sim(count: u32) -> Arc<SimFleet> {
    let options = SimOptions { stopping_time_ms: Some(300), start_delay_ms: Some(100), ..SimOptions::default() };
    SimFleet::with_options(count, options).expect("simulator starts")
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn spec(action: ActionKind) -> BatchSpec {
    BatchSpec {
        action,
        targets: None,
        filter: None,
        max_parallel: None,
        stop_on_failure: None,
        failure_threshold: None,
    }
}

#[test]
fn every_client_error_maps_to_the_variant_of_its_kind() {
    let report = CoreReport::refused(
        None,
        ServerId::from("a"),
        ChannelId::new(1).unwrap(),
        CoreKind::Stop,
        None,
        ActionError::StopFailed { cause: PollError::Http { code: 500 } },
        CoreInstant::ZERO,
    );
    let cases = [
        ClientError::Settings("x".into()),
        ClientError::Config {
            path: None,
            error: ConfigError::Entry { index: 1, id: Some("a".into()), reason: "duplicate id".into() },
        },
        ClientError::ServerNotFound("a".into()),
        ClientError::ChannelNotFound { server: "a".into(), channel: 9, count: Some(4) },
        ClientError::Busy { server: "a".into(), channel: ChannelId::new(1).unwrap() },
        ClientError::Maintenance("a".into()),
        ClientError::ActionFailed(Box::new(report)),
        ClientError::Batch(BatchError::NoTargets),
        ClientError::Io { path: "/x".into(), message: "gone".into() },
        ClientError::Closed,
        ClientError::Internal("no driver".into()),
    ];
    for e in cases {
        let mapped = IpvtlError::from(e.clone());
        assert_eq!(mapped.kind(), e.kind(), "{e:?} -> {mapped:?}");
        assert_eq!(mapped.to_string(), e.to_string(), "the message is the client's");
    }
    assert!(matches!(IpvtlError::from(ClientError::Internal("x".into())), IpvtlError::Internal(_)));
}

#[test]
fn settings_left_out_are_the_clients_defaults_and_given_ones_pass_through() {
    let sim = sim(1);
    let plain = Cluster::new(sim.servers(), None).unwrap();
    let empty = Cluster::new(sim.servers(), Some(ClusterSettings::default())).unwrap();
    let expected = ClusterSettings::from(&Settings::default());
    assert_eq!(plain.settings(), expected);
    assert_eq!(empty.settings(), expected);
    assert!(expected.timeout_ms.is_some() && expected.background.is_some(), "the running settings are all set");

    let given = Cluster::new(sim.servers(), Some(settings())).unwrap();
    let s = given.settings();
    assert_eq!((s.timeout_ms, s.offline_after, s.background), (Some(1_500), Some(1), Some(false)));
    assert_eq!(s.interval_ms, expected.interval_ms, "what was not given is the default");
    assert_eq!(given.client().settings().timeout, Duration::from_millis(1_500));

    let zero = ClusterSettings { concurrency: Some(0), ..ClusterSettings::default() };
    assert!(matches!(Cluster::new(sim.servers(), Some(zero)), Err(IpvtlError::Settings(_))));
}

#[test]
fn records_carry_the_wire_names_and_values() {
    let sim = sim(1);
    let cluster = Cluster::new(sim.servers(), Some(settings())).unwrap();
    let id = sim.ids()[0].clone();
    let before = cluster.snapshot();
    assert_eq!(before.servers[0].state.health, "unknown");
    assert_eq!(before.counts.unknown, 1);
    assert!(before.servers[0].state.channels.is_empty());

    let snap = cluster.poll_blocking().unwrap();
    let now = unix_now();
    assert!((snap.taken_at - now).abs() < 5.0, "taken_at is Unix seconds: {} vs {now}", snap.taken_at);
    assert_eq!((snap.counts.online, snap.counts.offline, snap.counts.unknown), (1, 0, 0));
    let s = &snap.servers[0];
    assert_eq!(s.config.id, id);
    assert_eq!(s.state.health, "online");
    assert!(s.state.last_ok_at.is_some_and(|t| (t - now).abs() < 5.0), "{:?}", s.state.last_ok_at);
    assert!(s.state.status_age_ms.is_some() && s.state.latency_ms.is_some());
    assert_eq!((s.state.error.as_deref(), s.state.error_kind.as_deref()), (None, None));
    assert_eq!(s.state.channels.len() as u32, sim.channels());
    for ch in &s.state.channels {
        assert_eq!(ch.stall, None, "no stall on a healthy server: {ch:?}");
        if ch.state == "running" {
            assert!(ch.uptime_s.is_some() && ch.fps.is_some_and(|f| f > 0.0) && ch.kbps.is_some(), "{ch:?}");
        }
    }
    assert!((cluster.now() - now).abs() < 5.0);

    let ch = ChannelId::new(2).unwrap();
    let events = [
        (
            Event::HealthChanged {
                server: id.as_str().into(),
                from: CoreHealth::Online,
                to: CoreHealth::Offline,
                error: Some(PollError::Http { code: 503 }),
            },
            ClusterEvent::HealthChanged {
                server_id: id.clone(),
                from: "online".into(),
                to: "offline".into(),
                error: Some("server answered HTTP 503".into()),
                error_kind: Some("http".into()),
            },
        ),
        (
            Event::ChannelStateChanged {
                server: id.as_str().into(),
                channel: ch,
                from: CoreState::Running,
                to: CoreState::Stopping,
            },
            ClusterEvent::ChannelStateChanged {
                server_id: id.clone(),
                channel_id: 2,
                from: "running".into(),
                to: "stopping".into(),
            },
        ),
        (
            Event::ChannelStalled { server: id.as_str().into(), channel: ch, reason: StallReason::UptimeFrozen },
            ClusterEvent::ChannelStalled { server_id: id.clone(), channel_id: 2, reason: "uptime_frozen".into() },
        ),
    ];
    for (core, want) in events {
        assert_eq!(ClusterEvent::new(&core, cluster.client().clock()), want);
    }
}

#[test]
fn a_stalled_channel_says_zero_fps_in_its_record_and_its_event() {
    let sim = SimFleet::with_options(1, SimOptions { initial_running: Some(1.0), ..SimOptions::default() }).unwrap();
    let id = sim.ids()[0].clone();
    let cluster = Cluster::new(sim.servers(), Some(settings())).unwrap();
    cluster.poll_blocking().unwrap();
    let stream = cluster.subscribe();
    sim.set_fault(id.clone(), Some("stalled".into())).unwrap();
    let state = cluster.refresh_blocking(id.clone()).unwrap().state;
    let running: Vec<_> = state.channels.iter().filter(|c| c.state == "running").collect();
    assert!(!running.is_empty(), "the simulator runs some channels: {state:?}");
    for ch in &running {
        assert_eq!(ch.stall.as_deref(), Some("zero_fps"), "{ch:?}");
        assert_eq!(ch.fps, Some(0.0));
    }
    let mut stalled = Vec::new();
    while let Some(e) = stream.next_blocking(2_000) {
        if let ClusterEvent::ChannelStalled { server_id, channel_id, reason } = e {
            assert_eq!((server_id.as_str(), reason.as_str()), (id.as_str(), "zero_fps"));
            stalled.push(channel_id);
        }
        if stalled.len() == running.len() {
            break;
        }
    }
    assert_eq!(stalled, running.iter().map(|c| c.id).collect::<Vec<_>>());
    sim.set_fault(id, None).unwrap();
}

#[test]
fn a_batch_spec_is_checked_by_the_core_and_its_errors_name_the_problem() {
    let sim = sim(1);
    let id = sim.ids()[0].clone();
    let cluster = Cluster::new(sim.servers(), Some(settings())).unwrap();
    cluster.poll_blocking().unwrap();
    let refused = |spec: BatchSpec| match cluster.plan(spec) {
        Err(IpvtlError::Batch(m)) => m,
        other => panic!("not a Batch error: {other:?}"),
    };

    let zero = BatchSpec {
        targets: Some(vec![BatchTarget { server_id: id.clone(), channel_id: 0 }]),
        ..spec(ActionKind::Restart)
    };
    assert!(refused(zero.clone()).contains("start at 1"));
    assert!(matches!(cluster.batch_blocking(zero), Err(IpvtlError::Batch(_))));
    let filter_zero = BatchSpec {
        filter: Some(BatchFilter { channels: vec![0], ..BatchFilter::default() }),
        ..spec(ActionKind::Stop)
    };
    assert!(refused(filter_zero).contains("start at 1"));
    let misspelt = BatchSpec {
        filter: Some(BatchFilter { states: vec!["runing".into()], ..BatchFilter::default() }),
        ..spec(ActionKind::Stop)
    };
    assert_eq!(
        refused(misspelt),
        "batch refused: unknown channel state \"runing\"; valid states: idle, running, stopping"
    );
    assert!(refused(spec(ActionKind::Start)).contains("exactly one of"));
    let both = BatchSpec { targets: Some(vec![]), filter: Some(BatchFilter::default()), ..spec(ActionKind::Start) };
    assert!(refused(both).contains("exactly one of"));
    let wide = BatchSpec { filter: Some(BatchFilter::default()), max_parallel: Some(0), ..spec(ActionKind::Start) };
    assert!(refused(wide).contains("max_parallel"));
    assert_eq!(sim.total_requests(id.clone()).unwrap(), 1, "only the poll reached the server");

    // Left out, max_parallel and the stop rules are the core's defaults.
    let all = BatchSpec { filter: Some(BatchFilter::default()), ..spec(ActionKind::Stop) };
    let plan = cluster.plan(all).unwrap();
    assert_eq!(plan.len() as u32, sim.channels());
    assert_eq!((plan[0].server_id.as_str(), plan[0].channel_id), (id.as_str(), 1));
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<ClusterEvent>>,
    fail: bool,
    calls: AtomicUsize,
}

impl ClusterObserver for Recorder {
    fn on_event(&self, event: ClusterEvent) -> Result<(), ObserverError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.events.lock().unwrap().push(event);
        if self.fail {
            return Err(ObserverError::Failed { reason: "on purpose".into() });
        }
        Ok(())
    }
}

#[test]
fn a_watch_delivers_until_its_handle_is_dropped() {
    let sim = sim(2);
    let cluster = Cluster::new(sim.servers(), Some(settings())).unwrap();
    let recorder = Arc::new(Recorder::default());
    let handle = cluster.watch(recorder.clone()).unwrap();
    let snap = cluster.poll_blocking().unwrap();
    assert!(snap.servers.iter().all(|s| s.state.health == "online"));
    wait_until("the sweep's events", || {
        recorder.events.lock().unwrap().iter().any(|e| matches!(e, ClusterEvent::SweepFinished { ok: 2, .. }))
    });
    let online = recorder
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, ClusterEvent::HealthChanged { from, to, .. } if from == "unknown" && to == "online"))
        .count();
    assert_eq!(online, 2);
    wait_until("the delivered count", || handle.delivered() as usize == recorder.calls.load(Ordering::SeqCst));
    assert!(handle.is_active());
    drop(handle);
    // The thread ends by itself; after it, nothing more arrives.
    std::thread::sleep(Duration::from_millis(100));
    let calls = recorder.calls.load(Ordering::SeqCst);
    cluster.poll_blocking().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(recorder.calls.load(Ordering::SeqCst), calls, "no delivery after the handle was dropped");
}

#[test]
fn an_observer_error_is_counted_and_delivery_goes_on() {
    let sim = sim(1);
    let cluster = Cluster::new(sim.servers(), Some(settings())).unwrap();
    let recorder = Arc::new(Recorder { fail: true, ..Recorder::default() });
    let handle = cluster.watch(recorder.clone()).unwrap();
    cluster.refresh_blocking(sim.ids()[0].clone()).unwrap();
    cluster.refresh_blocking(sim.ids()[0].clone()).unwrap();
    wait_until("two failures", || handle.failures() >= 2);
    assert_eq!(handle.delivered(), 0);
    handle.cancel();
    wait_until("the watch to end", || !handle.is_active());
}

/// `server_down` after 0.4 s; `cpu_high` off (the simulator runs hot).
const ALERT_RULES: &str = "[rules.server_down]\nfor = \"400ms\"\n[rules.cpu_high]\nenabled = false\n";

#[test]
fn alerts_fire_resolve_and_are_held_by_a_silence_as_records() {
    let sim = sim(2);
    let cluster = Cluster::new(sim.servers(), Some(settings())).unwrap();
    cluster.poll_blocking().unwrap();
    let bad = cluster.watch_alerts(Some("[rules.cpu_high]\npercent = 0\n".into())).err().expect("refused");
    assert!(matches!(&bad, IpvtlError::Invalid(m) if m.contains("line 1") && m.contains("percent")), "{bad:?}");
    let watch = cluster.watch_alerts(Some(ALERT_RULES.into())).unwrap();
    let (down, held) = (sim.ids()[0].clone(), sim.ids()[1].clone());

    let refused = watch.silence(ipvtl_ffi::SilenceSpec { matchers: vec!["server!=x".into()], ..Default::default() });
    assert!(matches!(refused, Err(IpvtlError::Invalid(_))), "{refused:?}");
    let silence = watch
        .silence(ipvtl_ffi::SilenceSpec {
            matchers: vec![format!("server={held}")],
            duration_ms: Some(60_000),
            comment: Some("held".into()),
            ..Default::default()
        })
        .unwrap();
    let silences = watch.silences();
    assert_eq!(silences.len(), 1);
    assert_eq!((silences[0].id, silences[0].origin.as_str()), (silence, "api"));
    assert!(silences[0].ends_at.is_some_and(|t| t > unix_now() + 50.0));

    let t0 = unix_now();
    sim.set_fault(down.clone(), Some("down".into())).unwrap();
    sim.set_fault(held.clone(), Some("down".into())).unwrap();
    cluster.poll_blocking().unwrap();
    let firing = watch.next_blocking(10_000).expect("fires");
    assert_eq!((firing.kind.as_str(), firing.ends_at), ("firing", None));
    assert_eq!(firing.labels["alertname"], "IpvtlServerDown");
    assert_eq!(firing.labels["server"], down);
    assert!(firing.starts_at >= t0 + 0.4 - 0.002, "{} vs {t0}", firing.starts_at);
    assert!(firing.id.starts_with(&firing.fingerprint), "{}", firing.id);
    wait_until("the held alert silenced", || watch.alerts().iter().any(|a| a.state == "silenced"));
    let held_alert = watch.alerts().into_iter().find(|a| a.labels["server"] == held).unwrap();
    assert_eq!((held_alert.silenced_by.as_deref(), held_alert.silence_id), (Some("silence"), Some(silence)));
    assert_eq!(watch.try_next(), None, "the silenced alert is not notified");

    sim.set_fault(down.clone(), None).unwrap();
    cluster.poll_blocking().unwrap();
    let resolved = watch.next_blocking(10_000).expect("resolves");
    assert_eq!((resolved.kind.as_str(), resolved.fingerprint.as_str()), ("resolved", firing.fingerprint.as_str()));
    assert_eq!(watch.history().len(), 1);
    assert!(watch.expire_silence(silence));
    assert!(!watch.expire_silence(silence));
    let fired = watch.next_blocking(10_000).expect("the held alert fires once its silence ends");
    assert_eq!(fired.labels["server"], held);
    assert!(watch.is_active());
    watch.cancel();
    wait_until("the watch to end", || !watch.is_active());
    assert_eq!(watch.next_blocking(1_000), None);
}
