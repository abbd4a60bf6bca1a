//! Desired state and healing through the dashboard, over the real binary,
//! a real socket and a SQLite store: settings made through the API survive
//! a restart beside those the servers file declares (and a reload), a heal
//! is an action like a human's in the audit with `who: "reconciler"`, drift
//! shows in `/api/servers`, `/api/drift` and `/metrics`, and the operator's
//! pause switch holds across a restart.

mod common;

use std::path::Path;
use std::time::Duration;

use common::process::{file_args, Dashboard};
use ipvtl_sim::{Action, JsonForm};
use serde_json::{json, Value};

fn start(servers: &Path, store: &str, audit: &Path) -> Dashboard {
    let args = file_args(servers, audit, &["--store", store, "--channel-stop-timeout", "600"]);
    let d = Dashboard::spawn(&args);
    d.wait_first_sweep();
    d
}

fn put(d: &Dashboard, path: &str, body: &Value) -> (u16, Value) {
    d.send("PUT", path, None, Some(body))
}

/// The settings listed at `path`, as (server_id, channel_id, value of
/// `field`, source).
fn listed(d: &Dashboard, path: &str, field: &str) -> Vec<(Value, Value, Value, Value)> {
    let (code, list) = d.get(path);
    assert_eq!(code, 200, "{list}");
    let mut out: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["server_id"].clone(), s["channel_id"].clone(), s[field].clone(), s["source"].clone()))
        .collect();
    out.sort_by_key(|t| format!("{t:?}"));
    out
}

/// Writes the servers file with `desired` declared for channel 2 of
/// server `id` (one channel: a whole server drifting at once would be a
/// storm, and the storm guard would hold every heal).
fn declare(path: &Path, id: &str, desired: Option<&str>) {
    let mut file: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for s in file["servers"].as_array_mut().unwrap() {
        let o = s.as_object_mut().unwrap();
        o.remove("channels");
        if s["id"] == id {
            if let Some(d) = desired {
                s["channels"] = json!({"2": d});
            }
        }
    }
    std::fs::write(path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
}

fn metric(d: &Dashboard, line_start: &str) -> Option<f64> {
    let r = d.request("GET", "/metrics", &[], None);
    r.body.lines().find_map(|l| l.strip_prefix(line_start)).and_then(|v| v.trim().parse().ok())
}

#[test]
fn desired_state_survives_a_restart_and_heals_are_audited_as_the_reconciler() {
    let sim = common::running_sim(3, Duration::from_millis(200), Duration::from_millis(100));
    let (dir, servers) = common::servers_file(&sim, "desired-restart", JsonForm::Object);
    let store = format!("sqlite:{}", dir.join("ipvtl.db").display());
    let ids = sim.ids();
    // The file wants channel 2 of the third server idle (it runs).
    declare(&servers, &ids[2], Some("idle"));

    let mut d = start(&servers, &store, &dir.join("audit-1.jsonl"));
    let ch1 = format!("/api/servers/{}/channels/1", ids[0]);
    let (code, set) = put(&d, &format!("{ch1}/desired"), &json!({"desired": "running"}));
    assert_eq!(code, 200, "{set}");
    assert_eq!((&set["scope"], &set["source"], &set["desired"]), (&json!("channel"), &json!("api"), &json!("running")));
    let policy = json!({"grace_ms": 0, "backoff_ms": 100, "limit": 3});
    let (code, healing) = put(&d, &format!("/api/servers/{}/healing", ids[0]), &policy);
    assert_eq!(code, 200, "{healing}");
    assert_eq!((healing["enabled"].as_bool(), healing["grace_ms"].as_u64()), (Some(true), Some(0)));
    let (code, r) = put(&d, "/api/reconciler", &json!({"max_parallel": 7}));
    assert_eq!((code, r["max_parallel"].as_u64()), (200, Some(7)), "{r}");
    // Bad input changes nothing and says why.
    let (code, bad) = put(&d, &format!("{ch1}/desired"), &json!({"desired": "Running"}));
    assert_eq!(code, 422, "{bad}");
    assert!(bad["detail"].as_str().unwrap().contains("\"Running\""), "{bad}");
    let (code, bad) = put(&d, "/api/servers/nope/desired", &json!({"desired": "idle"}));
    assert_eq!(code, 404, "{bad}");
    let (code, bad) = put(&d, &format!("/api/servers/{}/healing", ids[0]), &json!({"limit": 0}));
    assert_eq!(code, 422, "{bad}");
    d.kill();

    // Second run: the API's settings come from the store, the file's from
    // the file; the third server drifts (healing is off there: only reported).
    let mut d = start(&servers, &store, &dir.join("audit-2.jsonl"));
    let desired = listed(&d, "/api/desired", "desired");
    assert_eq!(
        desired,
        [
            (json!(ids[0]), json!(1), json!("running"), json!("api")),
            (json!(ids[2]), json!(2), json!("idle"), json!("file")),
        ]
    );
    let healing = listed(&d, "/api/healing", "grace_ms");
    assert_eq!(healing, [(json!(ids[0]), Value::Null, json!(0), json!("api"))]);
    assert_eq!(d.get("/api/reconciler").1["max_parallel"], 7);
    common::wait_until("the third server's channel 2 drifts", || {
        let (_, drift) = d.get("/api/drift");
        drift["drifts"].as_array().unwrap().iter().any(|x| x["server_id"] == ids[2].as_str() && x["channel_id"] == 2)
    });
    let (_, third) = d.get(&format!("/api/servers/{}", ids[2]));
    let ch = &third["state"]["channels"][1];
    assert_eq!(
        (&ch["desired"], &ch["drift"]["desired"], &ch["drift"]["observed"]),
        (&json!("idle"), &json!("idle"), &json!("running"))
    );
    let (_, first) = d.get(&format!("/api/servers/{}", ids[0]));
    assert_eq!(first["state"]["channels"][0]["desired"], "running");
    assert!(first["state"]["channels"][1].get("desired").is_none(), "channel 2 is unmanaged: {first}");
    let drift_series = format!("ipvtl_channel_drift{{server=\"{}\",channel=\"2\"}} ", ids[2]);
    assert_eq!(metric(&d, &drift_series), Some(1.0));

    // A human stops the managed channel: the reconciler starts it again,
    // once, and the audit says who did what.
    let before = sim.record(&ids[0]).unwrap().commands.len();
    let (code, stopped) = d.post(&format!("{ch1}/stop"));
    assert_eq!(code, 200, "{stopped}");
    common::wait_until("the reconciler heals channel 1", || {
        let (_, s) = d.get(&format!("/api/servers/{}", ids[0]));
        s["state"]["channels"][0]["state"] == "running" && s["state"]["channels"][0].get("drift").is_none()
    });
    std::thread::sleep(Duration::from_millis(500));
    let sent: Vec<(u32, Action)> =
        sim.record(&ids[0]).unwrap().commands[before..].iter().map(|c| (c.channel, c.action)).collect();
    assert_eq!(sent, [(1, Action::Stop), (1, Action::Start)], "the human's stop, then one heal");
    assert_eq!(metric(&d, "ipvtl_heals_total{outcome=\"ok\"} "), Some(1.0));
    let (_, audit) = d.get("/api/audit?limit=1000");
    let entries = audit["entries"].as_array().unwrap();
    let asked = entries.iter().position(|e| e["event"] == "heal_requested").expect("the heal is recorded first");
    assert_eq!((&entries[asked]["who"], &entries[asked]["action"]), (&json!("reconciler"), &json!("start")));
    let started = entries.iter().position(|e| e["event"] == "heal_started").expect("the heal is audited");
    assert!(asked < started, "requested (write-ahead), then started");
    let heal = &entries[started];
    assert_eq!(
        (&heal["who"], &heal["server_id"], &heal["action"]),
        (&json!("reconciler"), &json!(ids[0]), &json!("start"))
    );
    let action_id = heal["action_id"].clone();
    let end = entries
        .iter()
        .find(|e| e["event"] == "action_finished" && e["report"]["action_id"] == action_id)
        .expect("the heal's end is audited");
    assert_eq!((&end["who"], &end["outcome"]), (&json!("reconciler"), &json!("ok")));
    assert!(sim.record(&ids[2]).unwrap().commands.is_empty(), "drift without healing sends nothing");

    // The pause switch, and clearing a setting, hold across a restart.
    let (code, paused) = d.post("/api/reconciler/pause");
    assert_eq!((code, &paused["paused"]), (200, &json!(true)), "{paused}");
    let (code, cleared) = d.send("DELETE", &format!("{ch1}/desired"), None, None);
    assert_eq!(code, 200, "{cleared}");
    assert_eq!((&cleared["cleared"]["desired"], &cleared["cleared"]["source"]), (&json!("running"), &json!("api")));
    let (_, again) = d.send("DELETE", &format!("{ch1}/desired"), None, None);
    assert_eq!(again["cleared"], Value::Null, "nothing left there");
    // The file no longer declares anything: a reload drops its setting and
    // keeps the API's healing policy.
    declare(&servers, &ids[2], None);
    let (code, reloaded) = d.post("/api/servers/reload");
    assert_eq!(code, 200, "{reloaded}");
    assert!(listed(&d, "/api/desired", "desired").is_empty());
    d.kill();

    let d = start(&servers, &store, &dir.join("audit-3.jsonl"));
    assert_eq!(d.get("/api/reconciler").1["paused"], true, "still paused");
    assert!(listed(&d, "/api/desired", "desired").is_empty(), "the cleared setting stays cleared");
    assert_eq!(listed(&d, "/api/healing", "grace_ms").len(), 1);
    let (_, audit) = d.get("/api/audit?limit=1000");
    let kinds: Vec<&str> = audit["entries"].as_array().unwrap().iter().filter_map(|e| e["event"].as_str()).collect();
    for k in ["desired_set", "healing_set", "reconciler_changed", "setting_cleared", "heal_started"] {
        assert!(kinds.contains(&k), "{k} is in the audit: {kinds:?}");
    }
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}
