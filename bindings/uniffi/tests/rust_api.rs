//! The ffi layer from Rust: conversions, the error mapping, and the watch
//! handle's cancel-on-drop, against the simulator on loopback. The
//! generated bindings are tested per language by scripts/test.d/30-uniffi.sh.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipvtl_client::core::{
    parse_status, ActionError, ActionId, ActionKind as CoreKind, ActionReport as CoreReport, ChannelId,
    ChannelState as CoreState, ConfigError, Event, Instant as CoreInstant, ServerId,
};
use ipvtl_client::ClientError;
use ipvtl_ffi::{
    ActionKind, BatchFilter, BatchSpec, BatchTarget, BatchTargets, Cluster, ClusterEvent, ClusterObserver,
    ClusterSettings, Health, IpvtlError, ObserverError, ServerStatus, SimFleet, SimOptions,
};

fn settings() -> ClusterSettings {
    ClusterSettings {
        background: false,
        timeout_ms: 1_500,
        offline_after: 1,
        watch_interval_ms: 50,
        ..ipvtl_ffi::default_settings()
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

#[test]
fn every_client_error_maps_to_the_variant_of_its_kind() {
    let report = CoreReport::refused(
        ActionId(1),
        ServerId::from("a"),
        ChannelId::new(1).unwrap(),
        CoreKind::Stop,
        None,
        ActionError::StopFailed { cause: ipvtl_client::core::PollError::Http { code: 500 } },
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
        ClientError::Io { path: "/x".into(), message: "gone".into() },
        ClientError::Closed,
    ];
    for e in cases {
        let mapped = IpvtlError::from(e.clone());
        assert_eq!(mapped.kind(), e.kind(), "{e:?} -> {mapped:?}");
        assert_eq!(mapped.to_string(), e.to_string(), "the message is the client's");
    }
}

#[test]
fn a_status_body_mirrors_into_records() {
    let status = parse_status(
        br#"{"channels":[{"state":"running","status":"01:02:03 25fps@2500Kbps"},{"state":"warming","status":""}],"cpu":[10,30]}"#,
    )
    .unwrap();
    let s = ServerStatus::from(&status);
    assert_eq!(s.cpu_avg, Some(20.0));
    assert_eq!(s.channels[0].id, 1);
    assert_eq!(s.channels[0].state, "running");
    assert_eq!(s.channels[0].stats.map(|st| (st.uptime_s, st.fps, st.kbps)), Some((3723, 25.0, 2500.0)));
    assert_eq!(s.channels[1].state, "warming", "unknown states pass through verbatim");
    assert_eq!(s.channels[1].stats, None);

    let event = Event::ChannelStateChanged {
        server: "a".into(),
        channel: ChannelId::new(2).unwrap(),
        from: CoreState::Running,
        to: CoreState::Stopping,
    };
    assert_eq!(
        ClusterEvent::from(&event),
        ClusterEvent::ChannelStateChanged {
            server_id: "a".into(),
            channel: 2,
            from: "running".into(),
            to: "stopping".into()
        }
    );
}

#[test]
fn channel_zero_in_a_batch_is_refused_before_anything_runs() {
    let sim = sim(1);
    let cluster = Cluster::new(sim.servers(), Some(settings())).unwrap();
    let spec = BatchSpec {
        kind: ActionKind::Restart,
        targets: BatchTargets::Channels { targets: vec![BatchTarget { server_id: sim.ids()[0].clone(), channel: 0 }] },
        max_parallel: 1,
        stop_on_failure: false,
        failure_threshold: None,
    };
    assert!(matches!(cluster.plan(spec.clone()), Err(IpvtlError::ChannelNotFound(_))));
    assert!(matches!(cluster.batch_blocking(spec), Err(IpvtlError::ChannelNotFound(_))));
    let filter = BatchTargets::Filter { filter: BatchFilter { channels: vec![0], ..BatchFilter::default() } };
    let spec = BatchSpec {
        kind: ActionKind::Stop,
        targets: filter,
        max_parallel: 1,
        stop_on_failure: false,
        failure_threshold: None,
    };
    assert!(matches!(cluster.plan(spec), Err(IpvtlError::ChannelNotFound(_))));
    assert_eq!(sim.total_requests(sim.ids()[0].clone()).unwrap(), 0);
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
    assert!(snap.servers.iter().all(|s| s.state.health == Health::Online));
    wait_until("the sweep's events", || {
        recorder.events.lock().unwrap().iter().any(|e| matches!(e, ClusterEvent::SweepFinished { ok: 2, .. }))
    });
    let online = recorder
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, ClusterEvent::HealthChanged { to: Health::Online, .. }))
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
