//! Read your writes: a client that changes something and then reads
//! `GET /api/servers` sees its change in that read, never an older cached
//! body (reload, maintenance, refresh, actions), over a real socket against
//! the binary. And what the list shows of a server that died after a good
//! poll: its last good channels, `stale`, a growing `status_age_ms`, why,
//! and `offline` once the hysteresis has run out.

mod common;

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use common::process::{file_args, Dashboard};
use common::Harness;
use ipvtl_client::{Cluster, ServerConfig, Settings};
use ipvtl_dashboard::{app, AppState, StateConfig};
use ipvtl_sim::{Fault, JsonForm};
use serde_json::{json, Value};

fn config_json(s: &ServerConfig) -> Value {
    json!({
        "id": s.id.as_str(),
        "name": s.name,
        "host": s.host,
        "port": s.port,
        "description": s.description,
        "tags": s.tags,
    })
}

fn write_servers(path: &Path, servers: &[ServerConfig]) {
    let list: Vec<Value> = servers.iter().map(config_json).collect();
    std::fs::write(path, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
}

fn configs(list: &Value) -> Vec<Value> {
    list.as_array().expect("a list").iter().map(|s| s["config"].clone()).collect()
}

fn server<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|s| s["config"]["id"] == id).unwrap_or_else(|| panic!("{id} listed: {list}"))
}

/// Reload after reload, each followed at once by a read: every read lists
/// exactly the file just loaded (a server removed, added back, and one
/// whose description changes every time), while background sweeps run.
#[test]
fn a_reload_is_seen_by_the_very_next_list() {
    let sim = common::sim(5);
    let dir = common::temp_dir("ryw-reload");
    let path = dir.join("servers.json");
    let all = sim.servers();
    write_servers(&path, &all);
    let audit = dir.join("audit.jsonl");
    let d = Dashboard::spawn(&file_args(&path, &audit, &["--poll-interval", "1"]));
    let mut stale = Vec::new();
    for i in 0..200u32 {
        let mut servers = if i.is_multiple_of(2) { all[..4].to_vec() } else { all.clone() };
        servers[0].description = format!("revision {i}");
        write_servers(&path, &servers);
        let (code, body) = d.post("/api/servers/reload");
        assert_eq!(code, 200, "reload {i}: {body}");
        assert_eq!(body["count"], servers.len(), "reload {i}: {body}");
        let (code, list) = d.get("/api/servers");
        assert_eq!(code, 200, "{list}");
        let want: Vec<Value> = servers.iter().map(config_json).collect();
        if configs(&list) != want {
            stale.push((i, configs(&list).len(), configs(&list)[0]["description"].clone()));
        }
    }
    assert!(
        stale.is_empty(),
        "{} of 200 reads after a reload did not show the file just loaded; (iteration, servers listed, \
         first description): {stale:?}",
        stale.len()
    );
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}

/// Maintenance on and off, a refresh, a channel action: each followed at
/// once by a read of the list that shows it.
#[test]
fn maintenance_refresh_and_actions_are_seen_by_the_very_next_list() {
    let sim = common::sim(3);
    let (dir, path) = common::servers_file(&sim, "ryw-changes", JsonForm::Array);
    let audit = dir.join("audit.jsonl");
    let d = Dashboard::spawn(&file_args(&path, &audit, &["--poll-interval", "1"]));
    let ids = sim.ids();

    for i in 0..40 {
        let id = &ids[i % ids.len()];
        let on = (i / ids.len()).is_multiple_of(2);
        let (code, body) = d.post_json(&format!("/api/servers/{id}/maintenance"), &json!({"enabled": on}));
        assert_eq!(code, 200, "{body}");
        let (_, list) = d.get("/api/servers");
        assert_eq!(server(&list, id)["state"]["maintenance"], on, "maintenance {on} on {id}, round {i}: {list}");
    }
    for id in &ids {
        d.post_json(&format!("/api/servers/{id}/maintenance"), &json!({"enabled": false}));
    }

    for i in 0..30 {
        let id = &ids[i % ids.len()];
        let (code, answer) = d.post(&format!("/api/servers/{id}/refresh"));
        assert_eq!(code, 200, "{answer}");
        let polled = answer["state"]["last_poll_at"].as_f64().expect("the refresh polled");
        assert_eq!(answer["state"]["status"], "online", "{answer}");
        let (_, list) = d.get("/api/servers");
        let listed = server(&list, id)["state"]["last_poll_at"].as_f64().expect("listed as polled");
        assert!(listed >= polled, "round {i}: the list shows {id} polled at {listed}, the refresh said {polled}");
    }

    // An action: once answered, the list no longer shows it under way and
    // shows the channel as the answer left it.
    for i in 0..6 {
        let id = &ids[i % ids.len()];
        let (_, one) = d.get(&format!("/api/servers/{id}"));
        let ch = one["state"]["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["state"] == "running")
            .map(|c| c["id"].as_u64().unwrap())
            .expect("a running channel");
        let (code, answer) = d.post(&format!("/api/servers/{id}/channels/{ch}/restart"));
        assert_eq!(code, 200, "{answer}");
        assert_eq!(answer["final_state"], "running", "{answer}");
        let (_, list) = d.get("/api/servers");
        let channel =
            server(&list, id)["state"]["channels"].as_array().unwrap().iter().find(|c| c["id"] == ch).cloned().unwrap();
        assert_eq!(channel["action"], Value::Null, "round {i}: the restart is over: {channel}");
        assert_eq!(channel["state"], "running", "round {i}: {channel}");
    }
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}

/// A server that dies after a good poll: the list keeps its last good
/// channels, marks them stale with a growing age and says why; health
/// stays until `offline_after` failures in a row, then is `offline`.
#[test]
fn a_server_that_dies_is_shown_stale_with_its_age_then_offline() {
    let sim = common::sim(2);
    let servers = sim.servers();
    let settings = Settings { offline_after: 3, ..common::settings() };
    let cluster = Cluster::new(servers, settings).expect("cluster starts");
    let state = AppState::new(cluster, StateConfig::default());
    let h = Harness { app: app(state.clone()), state, sim };
    h.poll();
    let (id, other) = (h.id(0), h.id(1));
    let (_, list) = h.get("/api/servers");
    let good = server(&list, &id)["state"].clone();
    assert_eq!(good["status"], "online");
    assert_eq!(good["stale"], false);
    assert_eq!(good["error_kind"], Value::Null);
    let good_channels: Vec<(Value, Value)> =
        good["channels"].as_array().unwrap().iter().map(|c| (c["id"].clone(), c["state"].clone())).collect();
    assert_eq!(good_channels.len(), 4, "{good}");

    h.sim.set_fault(&id, Some(Fault::Down));
    let mut ages = Vec::new();
    for failures in 1..=3u64 {
        // Time passes between polls, so the age of the last good status grows.
        std::thread::sleep(Duration::from_millis(30));
        let (status, _) = h.post(&format!("/api/servers/{id}/refresh"));
        assert_eq!(status, StatusCode::OK);
        let (_, list) = h.get("/api/servers");
        let st = server(&list, &id)["state"].clone();
        assert_eq!(st["stale"], true, "after {failures} failed polls: {st}");
        assert_eq!(st["consecutive_failures"], failures, "{st}");
        assert!(["connect", "io"].contains(&st["error_kind"].as_str().unwrap_or("")), "unreachable: {st}");
        assert!(st["error_message"].is_string(), "{st}");
        let channels: Vec<(Value, Value)> =
            st["channels"].as_array().unwrap().iter().map(|c| (c["id"].clone(), c["state"].clone())).collect();
        assert_eq!(channels, good_channels, "the last good channels are kept: {st}");
        assert_eq!(st["cpu_cores"], good["cpu_cores"], "{st}");
        assert_eq!(st["last_ok_at"], good["last_ok_at"], "no good status since: {st}");
        let want = if failures < 3 { "online" } else { "offline" };
        assert_eq!(st["status"], want, "after {failures} of 3 failures: {st}");
        assert_eq!(st["health"], want, "{st}");
        ages.push(st["status_age_ms"].as_u64().expect("an age"));
        // The other server is untouched.
        let o = &server(&list, &other)["state"];
        assert_eq!((&o["status"], &o["stale"]), (&json!("online"), &json!(false)), "{o}");
    }
    assert!(ages.windows(2).all(|w| w[0] < w[1]), "the age grows: {ages:?}");

    // Back up: one good poll clears it all.
    h.sim.set_fault(&id, None);
    assert_eq!(h.post(&format!("/api/servers/{id}/refresh")).0, StatusCode::OK);
    let (_, list) = h.get("/api/servers");
    let st = &server(&list, &id)["state"];
    assert_eq!(
        (&st["status"], &st["stale"], &st["error_kind"]),
        (&json!("online"), &json!(false), &Value::Null),
        "{st}"
    );
}
