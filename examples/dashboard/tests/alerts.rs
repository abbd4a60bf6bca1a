//! Alerts over the real binary, a simulated fleet and a loopback webhook
//! receiver written here: it checks every request's HMAC-SHA256
//! signature, refuses the first deliveries (500), and is down across a
//! restart of the dashboard. A server going down and coming back must
//! reach it as one `firing` then one `resolved`, each acknowledged
//! exactly once, the resolve after the restart from the durable outbox.
//! Also: the alerts file is checked at start and on reload, silences
//! through the API, the test alert, and delivery failures on `/health`
//! and `/metrics`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::process::{dashboard, file_args, Dashboard};
use common::receiver::{Receiver, SECRET};
use ipvtl_sim::{Fault, JsonForm};
use serde_json::{json, Value};

fn wait_long(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The alerts file of these tests: servers down after 1 s, no CPU or
/// stall alerts.
fn alerts_file(dir: &Path, hook: SocketAddr) -> std::path::PathBuf {
    common::receiver::alerts_file(
        dir,
        hook,
        "[rules.server_down]\nfor = \"1s\"\n[rules.cpu_high]\nenabled = false\n[rules.channel_stalled]\nenabled = false\n",
    )
}

fn start(servers: &Path, store: &str, audit: &Path, alerts: &Path) -> Dashboard {
    let args = file_args(
        servers,
        audit,
        &["--store", store, "--alerts", alerts.to_str().unwrap(), "--poll-interval", "0.3", "--poll-timeout", "0.5"],
    );
    let d = Dashboard::spawn_with_env(&args, &[("IPVTL_TEST_HOOK_SECRET", SECRET)]);
    // Every server polled (some may be down).
    wait_long("the first sweep is listed", 30, || {
        let (_, list) = d.get("/api/servers");
        list.as_array().is_some_and(|l| l.iter().all(|s| s["state"]["status"] != "unknown"))
    });
    d
}

/// The acknowledged notifications about `server`: (kind, id), in order.
fn about(events: &[Value], server: &str) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["data"]["labels"]["server"] == server && e["data"]["labels"]["alertname"] == "IpvtlServerDown")
        .map(|e| (e["data"]["kind"].as_str().unwrap().to_string(), e["id"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn a_server_down_reaches_a_webhook_once_firing_then_once_resolved_across_a_restart() {
    let sim = common::running_sim(3, Duration::from_millis(100), Duration::from_millis(100));
    let (dir, servers) = common::servers_file(&sim, "alerts-webhook", JsonForm::Object);
    let store = format!("sqlite:{}", dir.join("ipvtl.db").display());
    let mut hook = Receiver::start("127.0.0.1:0".parse().unwrap(), 2);
    let alerts = alerts_file(&dir, hook.addr);
    let down = sim.ids()[1].clone();

    let mut d = start(&servers, &store, &dir.join("audit-1.jsonl"), &alerts);
    sim.set_fault(&down, Some(Fault::Down));
    // Two refusals (500), then the firing is acknowledged.
    wait_long("the firing is acknowledged", 60, || !about(&hook.acknowledged(), &down).is_empty());
    assert!(hook.seen.load(Ordering::SeqCst) >= 3, "the first two deliveries were refused and retried");
    wait_long("the outbox is empty", 10, || d.get("/health").1["alerts"]["pending"] == 0);
    let (_, overview) = d.get("/api/alerts");
    let active = overview["active"].as_array().unwrap();
    assert!(active.iter().any(|a| a["labels"]["server"] == down.as_str() && a["state"] == "firing"), "{overview}");

    // The receiver goes away; the server comes back: the resolve waits in
    // the outbox, and the dashboard is killed meanwhile.
    hook.down();
    sim.set_fault(&down, None);
    wait_long("the resolve is pending in the outbox", 60, || {
        let (_, health) = d.get("/health");
        health["alerts"]["pending"].as_i64().unwrap_or(0) >= 1
            && health["alerts"]["failing_receivers"].as_array().is_some_and(|f| !f.is_empty())
    });
    let metrics = d.request("GET", "/metrics", &[], None).body;
    assert!(metrics.contains("ipvtl_alert_outbox_pending 1"), "{metrics}");
    assert!(metrics.contains("ipvtl_alert_notifications_total{receiver=\"hook\",outcome=\"failed\"}"), "{metrics}");
    d.kill();

    // A new run on the same store, the receiver back: the resolve arrives.
    hook.up();
    let d = start(&servers, &store, &dir.join("audit-2.jsonl"), &alerts);
    wait_long("the resolve is acknowledged", 60, || about(&hook.acknowledged(), &down).len() >= 2);
    // Nothing more about it comes: no second firing from the restored alert.
    std::thread::sleep(Duration::from_secs(2));
    let got = about(&hook.acknowledged(), &down);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "firing");
    assert_eq!(got[1].0, "resolved");
    assert_ne!(got[0].1, got[1].1, "each notification has its own id");
    // Every acknowledged notification exactly once, every request signed.
    let acked = hook.acknowledged();
    let mut ids: Vec<&str> = acked.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "an acknowledged notification was sent again: {acked:#?}");
    assert_eq!(hook.bad_signatures.load(Ordering::SeqCst), 0);
    for e in &acked {
        assert_eq!(e["specversion"], "1.0");
        assert!(e["type"].as_str().unwrap().starts_with("io.ipvtl.alert."), "{e}");
    }
    wait_long("the outbox is empty", 10, || d.get("/health").1["alerts"]["pending"] == 0);
    let (_, health) = d.get("/health");
    assert_eq!(health["alerts"]["failing_receivers"], json!([]), "{health}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn silences_mute_and_are_kept_and_audited() {
    let sim = common::running_sim(3, Duration::from_millis(100), Duration::from_millis(100));
    let (dir, servers) = common::servers_file(&sim, "alerts-silences", JsonForm::Object);
    let store = format!("sqlite:{}", dir.join("ipvtl.db").display());
    let hook = Receiver::start("127.0.0.1:0".parse().unwrap(), 0);
    let alerts = alerts_file(&dir, hook.addr);
    let ids = sim.ids();

    let mut d = start(&servers, &store, &dir.join("audit.jsonl"), &alerts);
    for bad in [
        json!({"matchers": ["server=~x.*"], "duration_s": 60}),
        json!({"matchers": ["server!=x"], "duration_s": 60}),
        json!({"matchers": [], "duration_s": 60}),
        json!({"matchers": ["server=x"]}),
        json!({"matchers": ["server=x"], "ends_at": 1.0}),
        json!({"matchers": ["server=x"], "duration_s": 60, "extra": 1}),
    ] {
        let (code, body) = d.send("POST", "/api/silences", None, Some(&bad));
        assert_eq!(code, 422, "{bad}: {body}");
    }
    let (code, silence) = d.send(
        "POST",
        "/api/silences",
        None,
        Some(&json!({"matchers": [format!("server={}", ids[0])], "duration_s": 3600, "comment": "rebuild"})),
    );
    assert_eq!(code, 200, "{silence}");
    let id = silence["id"].as_u64().unwrap();
    sim.set_fault(&ids[0], Some(Fault::Down));
    sim.set_fault(&ids[2], Some(Fault::Down));
    wait_long("the unsilenced server fires", 60, || !about(&hook.acknowledged(), &ids[2]).is_empty());
    wait_long("the silenced one is silenced", 30, || {
        let (_, o) = d.get("/api/alerts");
        o["active"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["server"] == ids[0].as_str() && a["state"] == "silenced")
    });
    assert!(about(&hook.acknowledged(), &ids[0]).is_empty());

    // The answers are the wire views (SPEC §12): exactly their fields.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/wire-schema.json")).unwrap(),
    )
    .unwrap();
    let fields = |def: &str| -> Vec<String> {
        let mut f: Vec<String> = schema["$defs"][def]["properties"].as_object().unwrap().keys().cloned().collect();
        f.sort();
        f
    };
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let (_, overview) = d.get("/api/alerts");
    for a in overview["active"].as_array().unwrap() {
        assert_eq!(keys(a), fields("AlertView"), "{a}");
    }
    let (_, list) = d.get("/api/silences");
    assert_eq!(keys(&list["silences"][0]), fields("SilenceView"), "{list}");

    // Kept across a restart.
    d.kill();
    let d = start(&servers, &store, &dir.join("audit.jsonl"), &alerts);
    let (_, list) = d.get("/api/silences");
    let kept = list["silences"].as_array().unwrap();
    assert!(kept.iter().any(|s| s["id"] == id && s["comment"] == "rebuild" && s["origin"] == "api"), "{list}");
    // Ended: what it held fires.
    let (code, body) = d.send("DELETE", &format!("/api/silences/{id}"), None, None);
    assert_eq!(code, 200, "{body}");
    let (code, _) = d.send("DELETE", &format!("/api/silences/{id}"), None, None);
    assert_eq!(code, 404);
    wait_long("the formerly silenced server fires", 60, || !about(&hook.acknowledged(), &ids[0]).is_empty());
    // The server down all along fired once, before the restart, and was
    // neither resolved nor fired again by the new run.
    let third = about(&hook.acknowledged(), &ids[2]);
    assert_eq!(third.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["firing"], "{third:?}");
    let (_, audit) = d.get("/api/audit?limit=1000");
    let events: Vec<&str> = audit["entries"].as_array().unwrap().iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(events.contains(&"silence_added") && events.contains(&"silence_expired"), "{events:?}");

    // The test alert, per receiver.
    let (code, test) = d.send("POST", "/api/alerts/test", None, None);
    assert_eq!(code, 200, "{test}");
    assert_eq!(test["receivers"][0]["receiver"], "hook");
    assert_eq!(test["receivers"][0]["accepted"], true, "{test}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_alerts_file_is_refused_at_start_and_on_reload() {
    let sim = common::running_sim(1, Duration::from_millis(100), Duration::from_millis(100));
    let (dir, servers) = common::servers_file(&sim, "alerts-file", JsonForm::Object);
    let alerts = dir.join("alerts.toml");
    std::fs::write(&alerts, "[rules.server_down]\nfor = \"1s\"\n\n[rules.cpu_high]\npercent = 250\n").unwrap();
    let audit = dir.join("audit.jsonl");
    let args = file_args(&servers, &audit, &["--alerts", alerts.to_str().unwrap()]);
    let out = dashboard(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("alerts.toml") && err.contains("line 4") && err.contains("percent"), "{err}");

    // A good file; then a bad one on reload keeps the good one.
    std::fs::write(&alerts, "[rules.server_down]\nfor = \"1s\"\n").unwrap();
    let d = Dashboard::spawn(&args);
    std::fs::write(&alerts, "[rules.server_down]\nfor = \"soon\"\n").unwrap();
    let (code, body) = d.send("POST", "/api/alerts/reload", None, None);
    assert_eq!(code, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("line 2"), "{body}");
    std::fs::write(&alerts, "[rules.server_down]\nfor = \"2s\"\n").unwrap();
    let (code, body) = d.send("POST", "/api/alerts/reload", None, None);
    assert_eq!(code, 200, "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}
