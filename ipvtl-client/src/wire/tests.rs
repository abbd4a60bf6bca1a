//! The views' names, and the committed schema.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipvtl_core::{
    parse_status, ActionError, ActionKind, ActionReport, BatchReport, BatchStop, BatchTarget, ChannelId, Event, Health,
    Instant, PhaseReport, PollError, ServerConfig, ServerSnapshot, ServerState, StallReason,
};
use serde_json::{json, Value};

use super::*;

fn clock() -> SmolClock {
    SmolClock::new()
}

fn snapshot() -> ServerSnapshot {
    let body = br#"{"channels":[{"state":"running","status":"01:00:00 0fps@0Kbps"},{"state":"idle","status":""}],
                   "cpu":[12.345,30]}"#;
    let mut state = ServerState {
        health: Health::Online,
        status: Some(std::sync::Arc::new(parse_status(body).unwrap())),
        last_ok_at: Some(Instant::from_millis(1_000)),
        last_poll_at: Some(Instant::from_millis(4_000)),
        latency: Some(Duration::from_micros(12_700)),
        consecutive_failures: 1,
        error: Some(PollError::Http { code: 500 }),
        ..ServerState::default()
    };
    state.stalled.insert(ChannelId::new(1).unwrap(), StallReason::ZeroFps);
    ServerSnapshot { config: Arc::new(ServerConfig::new("edge-1", "127.0.0.1")), state }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn a_server_is_one_flat_object_with_ms_durations_and_unix_times() {
    let clock = clock();
    let v = serde_json::to_value(ServerView::new(&snapshot(), Instant::from_millis(6_000), Wall(&clock))).unwrap();
    assert_eq!(
        keys(&v),
        [
            "channels",
            "consecutive_failures",
            "cpu",
            "cpu_avg",
            "description",
            "error",
            "error_kind",
            "health",
            "host",
            "id",
            "last_ok_at",
            "last_poll_at",
            "latency_ms",
            "maintenance",
            "name",
            "port",
            "stale",
            "status_age_ms",
            "tags",
        ]
    );
    assert_eq!(v["health"], "online");
    assert_eq!(v["cpu"], json!([12.35, 30.0]));
    assert_eq!(v["cpu_avg"], json!(21.17));
    assert_eq!(v["status_age_ms"], 5_000);
    assert_eq!(v["latency_ms"], 12);
    assert_eq!((v["stale"].clone(), v["error_kind"].clone()), (json!(true), json!("http")));
    let wall_ok = v["last_ok_at"].as_f64().unwrap();
    let wall_poll = v["last_poll_at"].as_f64().unwrap();
    assert!((wall_poll - wall_ok - 3.0).abs() < 1e-6, "{wall_ok} {wall_poll}");
    assert!(wall_ok > 1.7e9, "Unix seconds: {wall_ok}");
    assert_eq!(
        v["channels"],
        json!([
            {"id": 1, "state": "running", "status": "01:00:00 0fps@0Kbps", "uptime_s": 3600, "fps": 0.0, "kbps": 0.0,
             "stall": "zero_fps"},
            {"id": 2, "state": "idle", "status": "", "uptime_s": null, "fps": null, "kbps": null, "stall": null},
        ])
    );
}

#[test]
fn events_are_tagged_by_kind_with_one_name_per_thing() {
    let clock = clock();
    let wall = Wall(&clock);
    let ev = |e: Event| serde_json::to_value(EventView::new(&e, wall)).unwrap();
    let stalled = ev(Event::ChannelStalled {
        server: "edge-1".into(),
        channel: ChannelId::new(3).unwrap(),
        reason: StallReason::UptimeFrozen,
    });
    assert_eq!(
        stalled,
        json!({"kind": "channel_stalled", "server_id": "edge-1", "channel_id": 3, "reason": "uptime_frozen",
               "message": "edge-1 channel 3 stalled (uptime_frozen)"})
    );
    let changed = ev(Event::HealthChanged {
        server: "edge-1".into(),
        from: Health::Online,
        to: Health::Offline,
        error: Some(PollError::Timeout { after_ms: 3000 }),
    });
    assert_eq!(keys(&changed), ["error", "error_kind", "from", "kind", "message", "server_id", "to"]);
    assert_eq!((changed["from"].clone(), changed["to"].clone()), (json!("online"), json!("offline")));
    let sweep =
        ev(Event::SweepFinished { sweep: 4, duration: Duration::from_millis(1234), ok: 3, failed: 1, skipped: 0 });
    assert_eq!(sweep["duration_ms"], 1234);
}

#[test]
fn batch_reports_name_why_they_stopped_and_unstarted_actions_have_no_id() {
    let clock = clock();
    let target = BatchTarget { server: "edge-1".into(), channel: ChannelId::new(1).unwrap() };
    let stop = BatchStop::FirstFailure { target: target.clone() };
    let failed = ActionReport {
        phases: vec![PhaseReport { phase: ipvtl_core::Phase::Stop, duration: Duration::from_millis(40) }],
        ..ActionReport::refused(
            Some(ipvtl_core::ActionId(7)),
            "edge-1".into(),
            target.channel,
            ActionKind::Restart,
            Some(ipvtl_core::BatchId(2)),
            ActionError::StopFailed { cause: PollError::Connect { message: "refused".into() } },
            Instant::from_millis(10),
        )
    };
    let skipped = ActionReport::refused(
        None,
        "edge-2".into(),
        target.channel,
        ActionKind::Restart,
        Some(ipvtl_core::BatchId(2)),
        ActionError::Skipped { reason: stop.clone() },
        Instant::from_millis(50),
    );
    let report = BatchReport {
        batch: ipvtl_core::BatchId(2),
        kind: ActionKind::Restart,
        started_at: Instant::from_millis(10),
        finished_at: Instant::from_millis(50),
        reports: vec![failed, skipped],
        stopped_early: Some(stop),
    };
    let v = serde_json::to_value(BatchReportView::new(&report, Wall(&clock))).unwrap();
    assert_eq!(v["stopped_early"], "first_failure");
    assert_eq!(v["stopped_reason"], "stopped on the first failure (channel 1 of edge-1)");
    assert_eq!(
        (v["ok"].clone(), v["succeeded"].clone(), v["failed"].clone(), v["skipped"].clone()),
        (json!(false), json!(0), json!(1), json!(1))
    );
    assert_eq!(v["duration_ms"], 40);
    assert_eq!(v["reports"][0]["action_id"], 7);
    assert_eq!(v["reports"][0]["phases"], json!([{"phase": "stop", "duration_ms": 40}]));
    assert_eq!(v["reports"][0]["cause_kind"], "connect");
    assert_eq!(v["reports"][1]["action_id"], Value::Null);
    assert_eq!(v["reports"][1]["error_kind"], "skipped");
}

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/wire-schema.json")
}

/// The committed schema is what the code generates. To update it after a
/// deliberate change: `IPVTL_WRITE_SCHEMA=1 cargo test -p ipvtl-client wire`.
#[test]
fn the_committed_schema_matches_the_views() {
    let generated = serde_json::to_string_pretty(&schema()).unwrap() + "\n";
    if std::env::var_os("IPVTL_WRITE_SCHEMA").is_some() {
        std::fs::write(schema_path(), &generated).unwrap();
    }
    let committed = std::fs::read_to_string(schema_path()).expect("docs/wire-schema.json is committed");
    assert!(
        committed == generated,
        "docs/wire-schema.json differs from the views; if the change is deliberate, regenerate it with \
         IPVTL_WRITE_SCHEMA=1 cargo test -p ipvtl-client wire, and list the renamed fields in the changelog"
    );
}

/// Every field a view writes is in the schema, and the schema has no field
/// the view does not write.
#[test]
fn the_schema_describes_exactly_the_fields_written() {
    let clock = clock();
    let schema = schema();
    let defs = &schema["$defs"];
    let props = |name: &str| -> Vec<String> {
        let def = &defs[name];
        let mut k: Vec<String> =
            def["properties"].as_object().unwrap_or_else(|| panic!("{name}: {def}")).keys().cloned().collect();
        k.sort();
        k
    };
    let server = serde_json::to_value(ServerView::new(&snapshot(), Instant::ZERO, Wall(&clock))).unwrap();
    assert_eq!(props("ServerView"), keys(&server));
    assert_eq!(props("ChannelView"), keys(&server["channels"][0]));
}

fn heal() -> ipvtl_core::Heal {
    ipvtl_core::Heal {
        server: "edge-1".into(),
        channel: ChannelId::new(2).unwrap(),
        kind: ActionKind::Restart,
        desired: ipvtl_core::Desired::Running,
        observed: ipvtl_core::ChannelState::Running,
        stall: Some(StallReason::ZeroFps),
        since: Instant::from_millis(1_000),
    }
}

fn drift() -> ipvtl_core::Drift {
    ipvtl_core::Drift {
        server: "edge-1".into(),
        channel: ChannelId::new(2).unwrap(),
        desired: ipvtl_core::Desired::Running,
        observed: ipvtl_core::ChannelState::Idle,
        stall: None,
        since: Instant::from_millis(1_000),
        attempts: 2,
        degraded: true,
        healing: Some(ipvtl_core::ActionId(9)),
    }
}

#[test]
fn a_drift_says_what_is_desired_and_observed_and_since_when() {
    let clock = clock();
    let v = serde_json::to_value(DriftView::new(&drift(), Instant::from_millis(4_500), Wall(&clock))).unwrap();
    assert_eq!(
        keys(&v),
        [
            "attempts",
            "channel_id",
            "degraded",
            "desired",
            "drift_ms",
            "healing_action_id",
            "observed",
            "server_id",
            "since_at",
            "stall"
        ]
    );
    assert_eq!((v["desired"].clone(), v["observed"].clone()), (json!("running"), json!("idle")));
    assert_eq!((v["drift_ms"].clone(), v["attempts"].clone()), (json!(3_500), json!(2)));
    assert_eq!((v["degraded"].clone(), v["healing_action_id"].clone()), (json!(true), json!(9)));
    assert!(v["since_at"].as_f64().unwrap() > 1.7e9);
    let snap = ipvtl_core::FleetSnapshot {
        taken_at: Instant::from_millis(2_000),
        sweep: 1,
        servers: vec![snapshot()],
        drifts: vec![drift()],
    };
    let s = serde_json::to_value(SnapshotView::new(&snap, Wall(&clock))).unwrap();
    assert_eq!(s["drifts"][0]["drift_ms"], 1_000);
    assert_eq!(s["drifts"][0]["channel_id"], 2);
}

#[test]
fn every_reconciler_event_has_a_body_with_snake_case_names() {
    use ipvtl_core::{ActionId, ChannelState, Desired};
    let clock = clock();
    let wall = Wall(&clock);
    let ev = |e: Event| serde_json::to_value(EventView::new(&e, wall)).unwrap();
    let (server, channel) = (ipvtl_core::ServerId::from("edge-1"), ChannelId::new(2).unwrap());
    let started = ev(Event::DriftStarted {
        server: server.clone(),
        channel,
        desired: Desired::Idle,
        observed: ChannelState::Running,
        stall: None,
        since: Instant::from_millis(1_000),
    });
    assert_eq!(
        keys(&started),
        ["channel_id", "desired", "kind", "message", "observed", "server_id", "since_at", "stall"]
    );
    assert_eq!((started["kind"].clone(), started["desired"].clone()), (json!("drift_started"), json!("idle")));
    let ended = ev(Event::DriftEnded {
        server: server.clone(),
        channel,
        since: Instant::from_millis(1_000),
        lasted: Duration::from_millis(2_500),
    });
    assert_eq!(keys(&ended), ["channel_id", "kind", "lasted_ms", "message", "server_id", "since_at"]);
    assert_eq!(ended["lasted_ms"], 2_500);
    let planned = ev(Event::HealPlanned { heal: heal() });
    let heal_keys =
        ["action", "channel_id", "desired", "kind", "message", "observed", "server_id", "since_at", "stall"];
    assert_eq!(keys(&planned), heal_keys);
    assert_eq!((planned["action"].clone(), planned["stall"].clone()), (json!("restart"), json!("zero_fps")));
    let hr = ev(Event::HealRequested { heal: heal(), ticket: 9 });
    let mut with_ticket: Vec<&str> = heal_keys.to_vec();
    with_ticket.push("ticket");
    with_ticket.sort();
    assert_eq!(keys(&hr), with_ticket);
    assert_eq!((hr["kind"].clone(), hr["ticket"].clone()), (json!("heal_requested"), json!(9)));
    let hs = ev(Event::HealStarted { heal: heal(), action: ActionId(5), attempt: 2 });
    let mut with_action: Vec<&str> = heal_keys.to_vec();
    with_action.extend(["action_id", "attempt"]);
    with_action.sort();
    assert_eq!(keys(&hs), with_action);
    assert_eq!(
        (hs["kind"].clone(), hs["action_id"].clone(), hs["attempt"].clone()),
        (json!("heal_started"), json!(5), json!(2))
    );
    let hf = ev(Event::HealFinished {
        server: server.clone(),
        channel,
        action: ActionId(5),
        kind: ActionKind::Start,
        ok: false,
    });
    assert_eq!(keys(&hf), ["action", "action_id", "channel_id", "kind", "message", "ok", "server_id"]);
    assert_eq!((hf["action"].clone(), hf["ok"].clone()), (json!("start"), json!(false)));
    let deg = ev(Event::HealDegraded { server, channel, attempts: 3, until: Instant::from_millis(601_000) });
    assert_eq!(keys(&deg), ["attempts", "channel_id", "kind", "message", "server_id", "until_at"]);
    assert!(deg["until_at"].as_f64().unwrap() > 1.7e9);
    let paused = ev(Event::HealingPaused { troubled: 40, managed: 100 });
    assert_eq!(
        paused,
        json!({"kind": "healing_paused", "troubled": 40, "managed": 100,
        "message": "healing paused by the storm guard: 40 of 100 managed channels in trouble"})
    );
    assert_eq!(ev(Event::HealingResumed { troubled: 1, managed: 100 })["kind"], "healing_resumed");
}

#[test]
fn settings_name_their_scope() {
    use ipvtl_core::{Desired, HealPolicy, Healing, Scope, Source};
    let ch = Scope::Channel("edge-1".into(), ChannelId::new(3).unwrap());
    let v = serde_json::to_value(DesiredSettingView::new(&ch, Desired::Running, Source::File)).unwrap();
    assert_eq!(
        v,
        json!({"scope": "channel", "server_id": "edge-1", "channel_id": 3, "tag": null, "desired": "running",
               "source": "file"})
    );
    let v = serde_json::to_value(HealingSettingView::new(
        &Scope::Tag("eu".into()),
        &Healing::On(HealPolicy::default()),
        Source::Api,
    ))
    .unwrap();
    assert_eq!(
        v,
        json!({"scope": "tag", "server_id": null, "channel_id": null, "tag": "eu", "enabled": true,
               "grace_ms": 10_000, "limit": 3, "window_ms": 600_000, "backoff_ms": 5_000, "backoff_max_ms": 60_000,
               "source": "api"})
    );
    let v = serde_json::to_value(HealingSettingView::new(&Scope::Server("edge-1".into()), &Healing::Off, Source::Api))
        .unwrap();
    assert_eq!(
        (v["scope"].clone(), v["enabled"].clone(), v["limit"].clone()),
        (json!("server"), json!(false), Value::Null)
    );
    let status = crate::ReconcilerStatus {
        config: ipvtl_core::ReconcilerConfig::default(),
        storm: true,
        managed: 10,
        troubled: 4,
        heals_in_flight: 0,
    };
    let v = serde_json::to_value(ReconcilerView::from(&status)).unwrap();
    assert_eq!(
        (v["storm"].clone(), v["paused"].clone(), v["max_parallel"].clone()),
        (json!(true), json!(false), json!(4))
    );
}

#[test]
fn the_schema_describes_the_reconciler_views() {
    let clock = clock();
    let schema = schema();
    let defs = &schema["$defs"];
    let props = |name: &str| -> Vec<String> {
        let mut k: Vec<String> = defs[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: {}", defs[name]))
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    let d = serde_json::to_value(DriftView::new(&drift(), Instant::ZERO, Wall(&clock))).unwrap();
    assert_eq!(props("DriftView"), keys(&d));
    let h = serde_json::to_value(HealView::new(&heal(), Wall(&clock))).unwrap();
    assert_eq!(props("HealView"), keys(&h));
    let text = serde_json::to_string(&schema).unwrap();
    for kind in [
        "drift_started",
        "drift_ended",
        "heal_planned",
        "heal_requested",
        "heal_started",
        "heal_finished",
        "heal_degraded",
        "healing_paused",
        "healing_resumed",
    ] {
        assert!(text.contains(&format!("\"{kind}\"")), "{kind} is in the schema");
    }
}
