//! The store over the real binary and a real socket: what the dashboard
//! keeps survives restarts on one SQLite file (the audit, batches with
//! their reports, maintenance flags; a batch cut short by `kill -9` comes
//! back `interrupted`), a store with a newer schema is refused at start,
//! and API keys made with `keys add` (also while it runs) are enforced by
//! role on every route class, named in the audit, never stored as tokens.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::process::{dashboard, file_args, Dashboard};
use ipvtl_sim::{JsonForm, SimFleet};
use serde_json::{json, Value};

fn sim(stopping: Duration) -> SimFleet {
    common::running_sim(3, stopping, Duration::from_millis(100))
}

fn start(servers: &Path, store: &str, audit: &Path, extra: &[&str]) -> Dashboard {
    let mut args = file_args(servers, audit, &["--store", store, "--channel-stop-timeout", "600"]);
    args.extend_from_slice(extra);
    let d = Dashboard::spawn(&args);
    d.wait_first_sweep();
    d
}

fn keys(store: &str, args: &[&str]) -> Output {
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--store", store]);
    dashboard(&all).output().expect("the binary runs")
}

fn audit_events(d: &Dashboard) -> Vec<Value> {
    let (code, audit) = d.get("/api/audit?limit=1000");
    assert_eq!(code, 200, "{audit}");
    audit["entries"].as_array().expect("entries").clone()
}

#[test]
fn a_restart_keeps_the_audit_batches_and_maintenance() {
    let sim = sim(Duration::from_millis(1500));
    let (dir, servers) = common::servers_file(&sim, "store-restart", JsonForm::Object);
    let store = format!("sqlite:{}", dir.join("ipvtl.db").display());
    let ids = sim.ids();

    // First run: maintenance on one server, a batch to its end.
    let mut d = start(&servers, &store, &dir.join("audit-1.jsonl"), &[]);
    let (code, body) = d.post_json(&format!("/api/servers/{}/maintenance", ids[0]), &json!({"enabled": true}));
    assert_eq!(code, 200, "{body}");
    let (code, started) = d.post_json("/api/batch", &json!({"action": "restart", "filter": {"channels": [1]}}));
    assert_eq!(code, 202, "{started}");
    let first = started["batch_id"].as_u64().expect("a batch id");
    common::wait_until("the first batch finishes", || d.get(&format!("/api/batches/{first}")).1["state"] == "finished");
    let (_, report) = d.get(&format!("/api/batches/{first}"));
    d.kill();

    // Second run, another mirror file: everything comes from the store.
    let mut d = start(&servers, &store, &dir.join("audit-2.jsonl"), &[]);
    let (_, one) = d.get(&format!("/api/servers/{}", ids[0]));
    assert_eq!(one["state"]["maintenance"], true, "maintenance is restored: {one}");
    let (_, other) = d.get(&format!("/api/servers/{}", ids[1]));
    assert_eq!(other["state"]["maintenance"], false);
    let (code, kept) = d.get(&format!("/api/batches/{first}"));
    assert_eq!(code, 200, "{kept}");
    assert_eq!(kept, report, "the batch and its report, as they were");
    assert_eq!(kept["report"]["succeeded"], 2, "{kept}");
    let events = audit_events(&d);
    let maintenance = events.iter().find(|e| e["event"] == "maintenance").expect("the maintenance entry is kept");
    assert_eq!((maintenance["server_id"].as_str(), &maintenance["enabled"]), (Some(ids[0].as_str()), &json!(true)));
    let requested = events.iter().position(|e| e["event"] == "batch_requested").expect("the batch request is kept");
    let finished = events.iter().position(|e| e["event"] == "batch_finished" && e["batch_id"] == first);
    assert!(finished.is_some_and(|f| f > requested), "{events:?}");
    // A new batch never takes a kept one's id; kill -9 while it runs.
    let (code, started) = d.post_json("/api/batch", &json!({"action": "restart", "filter": {"channels": [2]}}));
    assert_eq!(code, 202, "{started}");
    let second = started["batch_id"].as_u64().expect("a batch id");
    assert!(second > first, "{second} after {first}");
    common::wait_until("the second batch is under way", || {
        audit_events(&d).iter().any(|e| e["event"] == "action_started" && e["batch_id"] == second)
    });
    d.kill();

    // Third run: both batches answer; the one cut short says so.
    let d = start(&servers, &store, &dir.join("audit-3.jsonl"), &[]);
    assert_eq!(d.get(&format!("/api/batches/{first}")).1, report);
    let (code, cut) = d.get(&format!("/api/batches/{second}"));
    assert_eq!(code, 200, "{cut}");
    assert_eq!(cut["state"], "interrupted", "{cut}");
    let (_, list) = d.get("/api/batches");
    let listed: Vec<u64> = list.as_array().unwrap().iter().filter_map(|b| b["batch_id"].as_u64()).collect();
    assert!(listed.starts_with(&[second, first]), "newest first: {listed:?}");
    let events = audit_events(&d);
    assert_eq!(events.iter().filter(|e| e["event"] == "batch_requested").count(), 2, "both runs' requests");
    assert_eq!(d.get(&format!("/api/servers/{}", ids[0])).1["state"]["maintenance"], true);
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_store_with_a_newer_schema_or_none_at_all_is_refused_at_start() {
    let dir = common::temp_dir("store-newer");
    let file = dir.join("ipvtl.db");
    let store = format!("sqlite:{}", file.display());
    let out = keys(&store, &["list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    smol::block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&store).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', TRUE, x'00', 0)",
        )
        .execute(&mut c)
        .await
        .unwrap();
    });
    let out = dashboard(&["--demo", "1", "--listen", "127.0.0.1:0", "--store", &store]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&file.display().to_string()) && err.contains("version 9999"),
        "names store and version: {err}"
    );
    assert!(err.contains("newer"), "{err}");

    let out = dashboard(&["--demo", "1", "--store", "sqlite:/nonexistent-dir/x.db"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent-dir/x.db") && err.contains("cannot open"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Makes a key and returns its token (printed once, on stdout).
fn add_key(store: &str, name: &str, role: &str) -> String {
    let out = keys(store, &["add", name, "--role", role]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("ipvtl_") && token.len() > 40, "{token:?}");
    token
}

#[test]
fn keys_are_enforced_by_role_on_every_route_class() {
    let sim = sim(Duration::from_millis(200));
    let (dir, servers) = common::servers_file(&sim, "store-roles", JsonForm::Object);
    let file = dir.join("ipvtl.db");
    let store = format!("sqlite:{}", file.display());
    let ids = sim.ids();
    let viewer = add_key(&store, "wall-screen", "viewer");
    let operator = add_key(&store, "night-shift", "operator");
    let d = start(&servers, &store, &dir.join("audit.jsonl"), &["--api-key", "flag-secret"]);
    // Made while it runs.
    let admin = add_key(&store, "lead", "admin");

    let action = format!("/api/servers/{}/channels/1/restart", ids[1]);
    let maintenance = format!("/api/servers/{}/maintenance", ids[2]);
    let refresh = format!("/api/servers/{}/refresh", ids[1]);
    let batch = json!({"action": "restart", "filter": {"servers": [ids[1]], "channels": [2]}, "dry_run": true});
    let on = json!({"enabled": false});
    let desired = format!("/api/servers/{}/channels/3/desired", ids[1]);
    let server_desired = format!("/api/servers/{}/desired", ids[2]);
    let healing = format!("/api/servers/{}/healing", ids[2]);
    let channel_healing = format!("/api/servers/{}/channels/3/healing", ids[1]);
    let degraded = format!("/api/servers/{}/channels/3/degraded", ids[1]);
    let idle = json!({"desired": "unmanaged"});
    let off = json!({"enabled": false});
    let settings = json!({"dry_run": false});
    // (method, path, body, the role it needs)
    let routes: [(&str, &str, Option<&Value>, &str); 18] = [
        ("POST", &action, None, "operator"),
        ("POST", "/api/batch", Some(&batch), "operator"),
        ("POST", &maintenance, Some(&on), "operator"),
        ("POST", &refresh, None, "operator"),
        ("POST", "/api/servers/reload", None, "admin"),
        ("PUT", &desired, Some(&idle), "operator"),
        ("DELETE", &desired, None, "operator"),
        ("PUT", &server_desired, Some(&idle), "operator"),
        ("DELETE", &server_desired, None, "operator"),
        ("PUT", "/api/tags/rack-b/desired", Some(&idle), "operator"),
        ("DELETE", "/api/tags/rack-b/desired", None, "operator"),
        ("DELETE", &degraded, None, "operator"),
        ("POST", "/api/reconciler/pause", None, "operator"),
        ("POST", "/api/reconciler/resume", None, "operator"),
        ("PUT", &healing, Some(&off), "admin"),
        ("PUT", &channel_healing, Some(&off), "admin"),
        ("DELETE", "/api/tags/rack-b/healing", None, "admin"),
        ("PUT", "/api/reconciler", Some(&settings), "admin"),
    ];
    let rank = |r: &str| ["viewer", "operator", "admin"].iter().position(|x| *x == r).unwrap();
    let before = sim.record(&ids[1]).unwrap().commands.len();
    for (method, path, body, need) in routes {
        let (code, answer) = d.send(method, path, None, body);
        assert_eq!(code, 401, "no key, {method} {path}: {answer}");
        let (code, answer) = d.send(method, path, Some("ipvtl_wrong"), body);
        assert_eq!(code, 401, "a wrong key, {method} {path}: {answer}");
        for (key, role) in [(&viewer, "viewer"), (&operator, "operator"), (&admin, "admin")] {
            let (code, answer) = d.send(method, path, Some(key), body);
            if rank(role) < rank(need) {
                assert_eq!(code, 403, "{role} on {path}: {answer}");
                let detail = answer["detail"].as_str().unwrap();
                assert!(detail.contains(role) && detail.contains(need), "says which role is needed: {detail}");
                assert_eq!(answer["role_needed"], need);
            } else {
                assert!(code < 400 || code == 409, "{role} on {path}: {code} {answer}");
            }
        }
        let (code, answer) = d.send(method, path, Some("flag-secret"), body);
        assert!(code < 400 || code == 409, "--api-key is an admin key, {path}: {code} {answer}");
    }
    // Reads need no key.
    assert_eq!(d.send("GET", "/api/servers", None, None).0, 200);
    assert_eq!(d.send("GET", "/api/audit", Some(&viewer), None).0, 200);
    // Only the allowed restarts reached the server: operator, admin, --api-key.
    let restarts = sim.record(&ids[1]).unwrap().commands[before..]
        .iter()
        .filter(|c| c.action == ipvtl_sim::Action::Stop && c.channel == 1)
        .count();
    assert!(restarts <= 3, "nothing sent for refused requests: {restarts}");

    // The audit names the key, never its token; the store holds no token.
    let events = audit_events(&d);
    let requested: Vec<&Value> = events.iter().filter(|e| e["event"] == "action_requested").collect();
    let names: Vec<&str> = requested.iter().filter_map(|e| e["who"]["key"].as_str()).collect();
    assert_eq!(names, ["night-shift", "lead", "--api-key"], "{requested:?}");
    assert_eq!(requested[0]["who"]["role"], "operator");
    let by_viewer: Vec<&Value> = events.iter().filter(|e| e["who"]["key"] == "wall-screen").collect();
    assert!(by_viewer.is_empty(), "a refused request is neither done nor audited: {by_viewer:?}");
    // An operator sets desired state and pauses healing; policies are the admin's.
    let by_operator: Vec<String> = events
        .iter()
        .filter(|e| e["who"]["key"] == "night-shift")
        .map(|e| format!("{} {}", e["event"].as_str().unwrap(), e["setting"].as_str().unwrap_or("")))
        .collect();
    assert!(by_operator.contains(&"desired_set ".to_string()), "{by_operator:?}");
    assert!(by_operator.contains(&"reconciler_changed ".to_string()), "pause and resume: {by_operator:?}");
    assert!(!by_operator.iter().any(|e| e.contains("healing")), "{by_operator:?}");
    let everything = format!("{events:?}");
    for token in [&viewer, &operator, &admin] {
        assert!(!everything.contains(token.as_str()));
    }
    drop(d);
    let raw = std::fs::read(&file).unwrap();
    let wal = std::fs::read(dir.join("ipvtl.db-wal")).unwrap_or_default();
    for token in [&viewer, &operator, &admin] {
        let t = token.as_bytes();
        assert!(!raw.windows(t.len()).any(|w| w == t) && !wal.windows(t.len()).any(|w| w == t), "no token on disk");
    }

    // list and revoke, offline.
    let out = keys(&store, &["list"]);
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.contains("night-shift\toperator") && listed.contains("lead\tadmin"), "{listed}");
    assert!(keys(&store, &["revoke", "night-shift"]).status.success());
    let out = keys(&store, &["revoke", "night-shift"]);
    assert_eq!(out.status.code(), Some(1), "revoking twice says there is none");
    assert!(!String::from_utf8(keys(&store, &["list"]).stdout).unwrap().contains("night-shift"));
    let out = keys(&store, &["add", "lead", "--role", "viewer"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"), "a name is taken once");
    let d = start(&servers, &store, &dir.join("audit.jsonl"), &[]);
    let (code, _) = d.send("POST", &refresh, Some(&operator), None);
    assert_eq!(code, 401, "a revoked key is refused");
    let (code, _) = d.send("POST", &refresh, None, None);
    assert_eq!(code, 401, "keys in the store need a key even without --api-key");
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}
