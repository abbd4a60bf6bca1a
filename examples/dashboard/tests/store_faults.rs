//! A store that refuses writes, against the real binary on SQLite: actions
//! are refused with 503 and nothing is sent (the intent cannot be
//! recorded), reads and polling go on, `/health` says `degraded` with the
//! reason and `/metrics` counts the failures; once the store takes writes
//! again, actions work and `/health` is `ok`.
//!
//! The refusal is made from the test through a second connection to the
//! same file: triggers that `RAISE` on every insert into the tables the
//! dashboard writes (what a full disk or a read-only store does to them).

mod common;

use std::time::Duration;

use common::process::{file_args, Dashboard};
use ipvtl_sim::{JsonForm, SimFleet};
use serde_json::Value;
use sqlx::{Connection, SqliteConnection};

const TABLES: [&str; 4] = ["audit", "batches", "maintenance", "history"];

fn refuse_writes(db: &str, refuse: bool) {
    refuse_writes_to(db, &TABLES, refuse);
}

fn refuse_writes_to(db: &str, tables: &[&str], refuse: bool) {
    smol::block_on(async {
        let mut c = SqliteConnection::connect(db).await.expect("a second connection to the store");
        for table in tables {
            let sql = if refuse {
                format!(
                    "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} \
                     BEGIN SELECT RAISE(ABORT, 'the test refuses writes'); END"
                )
            } else {
                format!("DROP TRIGGER refuse_{table}")
            };
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.expect("the trigger is changed");
        }
        c.close().await.expect("closes");
    });
}

/// `name`'s value in a Prometheus exposition.
fn metric(d: &Dashboard, name: &str) -> f64 {
    let (code, text) = common::process::http(d.addr, "GET", "/metrics", None);
    assert_eq!(code, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is exposed: {text}"))
}

fn commands(sim: &SimFleet) -> usize {
    sim.ids().iter().map(|id| sim.record(id).expect("a simulated server").commands.len()).sum()
}

fn status_requests(sim: &SimFleet) -> u64 {
    sim.ids().iter().map(|id| sim.record(id).expect("a simulated server").status_requests).sum()
}

#[test]
fn a_store_refusing_writes_refuses_actions_and_shows_on_health_and_metrics() {
    let sim = common::running_sim(2, Duration::from_millis(100), Duration::from_millis(50));
    let (dir, servers) = common::servers_file(&sim, "store-refuses", JsonForm::Object);
    let path = dir.join("ipvtl.db");
    let store = format!("sqlite:{}", path.display());
    let audit = dir.join("audit.jsonl");
    let d = Dashboard::spawn(&file_args(&servers, &audit, &["--store", &store, "--poll-interval", "0.2"]));
    d.wait_first_sweep();
    let (_, health) = d.get("/health");
    assert_eq!((&health["status"], &health["store"]["ok"]), (&Value::from("ok"), &Value::from(true)), "{health}");
    assert_eq!(metric(&d, "ipvtl_store_up"), 1.0);
    assert_eq!(metric(&d, "ipvtl_store_errors_total"), 0.0);
    let id = sim.ids()[0].clone();

    refuse_writes(&store, true);
    sim.reset_records();
    let (code, body) = d.post(&format!("/api/servers/{id}/channels/1/stop"));
    assert_eq!(code, 503, "{body}");
    assert!(body.to_string().contains("the test refuses writes"), "says why: {body}");
    let (code, body) = d.post_json(&format!("/api/servers/{id}/maintenance"), &serde_json::json!({"enabled": true}));
    assert_eq!(code, 503, "{body}");
    let (code, list) = d.get("/api/servers");
    assert_eq!(code, 200, "reads go on: {list}");
    assert_eq!(list[0]["state"]["maintenance"], false, "{list}");
    let polled = status_requests(&sim);
    common::wait_until("polling goes on", || status_requests(&sim) >= polled + 4);
    assert_eq!(commands(&sim), 0, "nothing was sent to any server");
    let (code, health) = d.get("/health");
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["store"]["ok"], false, "{health}");
    assert!(health["store"]["error"].as_str().is_some_and(|e| e.contains("the test refuses writes")), "{health}");
    assert!(health["servers_count"] == 2 && health["version"].is_string(), "the other fields stay: {health}");
    assert_eq!(metric(&d, "ipvtl_store_up"), 0.0);
    assert!(metric(&d, "ipvtl_store_errors_total") >= 2.0);

    refuse_writes(&store, false);
    let (code, body) = d.post(&format!("/api/servers/{id}/channels/1/stop"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(commands(&sim), 1, "sent once the intent is recorded");
    let (_, health) = d.get("/health");
    assert_eq!(
        (&health["status"], &health["store"]),
        (&Value::from("ok"), &serde_json::json!({"ok": true})),
        "{health}"
    );
    assert_eq!(metric(&d, "ipvtl_store_up"), 1.0);
    let (_, audit) = d.get("/api/audit?limit=1000");
    let events: Vec<&str> = audit["entries"].as_array().unwrap().iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(events, ["action_requested", "action_finished"], "only what was done is recorded: {audit}");

    // A desired state the store cannot keep is not applied either: it
    // would be lost at the next restart.
    refuse_writes_to(&store, &["reconcile_settings"], true);
    let desired = format!("/api/servers/{id}/channels/2/desired");
    let (code, body) = d.send("PUT", &desired, None, Some(&serde_json::json!({"desired": "idle"})));
    assert_eq!(code, 503, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("nothing was changed"), "{body}");
    assert_eq!(d.get("/api/desired").1, serde_json::json!([]), "not applied");
    let (code, body) = d.post("/api/reconciler/pause");
    assert_eq!(code, 503, "{body}");
    assert_eq!(d.get("/api/reconciler").1["paused"], false);
    refuse_writes_to(&store, &["reconcile_settings"], false);
    let (code, body) = d.send("PUT", &desired, None, Some(&serde_json::json!({"desired": "idle"})));
    assert_eq!(code, 200, "{body}");
    assert_eq!(d.get("/api/desired").1.as_array().map(Vec::len), Some(1));
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}

/// The write-ahead rule holds for heals: while the store refuses writes,
/// a heal the reconciler wants cannot be recorded, so it is not started and
/// nothing is sent; once the store takes writes, it is recorded, then done.
#[test]
fn a_heal_that_cannot_be_recorded_is_not_started() {
    let sim = common::running_sim(2, Duration::from_millis(100), Duration::from_millis(50));
    let (dir, servers) = common::servers_file(&sim, "store-refuses-heals", JsonForm::Object);
    let path = dir.join("ipvtl.db");
    let store = format!("sqlite:{}", path.display());
    let audit = dir.join("audit.jsonl");
    let d = Dashboard::spawn(&file_args(&servers, &audit, &["--store", &store, "--poll-interval", "0.2"]));
    d.wait_first_sweep();
    let id = sim.ids()[0].clone();

    refuse_writes(&store, true);
    sim.reset_records();
    // The file now wants channel 3 idle (it runs), healed at once.
    let mut file: Value = serde_json::from_slice(&std::fs::read(&servers).unwrap()).unwrap();
    file["servers"][0]["channels"] = serde_json::json!({"3": "idle"});
    file["servers"][0]["healing"] = serde_json::json!({"grace": 0, "limit": 3, "backoff": 0.1});
    std::fs::write(&servers, serde_json::to_vec(&file).unwrap()).unwrap();
    let (code, body) = d.post("/api/servers/reload");
    assert_eq!(code, 200, "{body}");
    common::wait_until("channel 3 drifts", || {
        d.get("/api/drift").1["drifts"].as_array().is_some_and(|v| v.iter().any(|x| x["channel_id"] == 3))
    });
    let polled = status_requests(&sim);
    common::wait_until("a few more polls", || status_requests(&sim) >= polled + 6);
    assert_eq!(commands(&sim), 0, "no heal is sent while its request cannot be recorded");

    refuse_writes(&store, false);
    common::wait_until("the heal is done", || {
        sim.record(&id).unwrap().commands.iter().any(|c| c.channel == 3 && c.action == ipvtl_sim::Action::Stop)
    });
    common::wait_until("the heal's end is audited", || {
        let (_, audit) = d.get("/api/audit?limit=1000");
        audit["entries"].as_array().unwrap().iter().any(|e| e["event"] == "action_finished" && e["who"] == "reconciler")
    });
    let (_, audit) = d.get("/api/audit?limit=1000");
    let events: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["who"] == "reconciler")
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(events, ["heal_requested", "heal_started", "action_finished"], "recorded first, then done");
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}
