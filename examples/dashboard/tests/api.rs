//! Every row of the SPEC §7 API table, against the simulator, calling the
//! app without a socket.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{request, wait_until, Harness};
use futures::StreamExt;
use ipvtl_client::ChannelState;
use ipvtl_dashboard::StateConfig;
use ipvtl_sim::{Action, JsonForm};
use serde_json::{json, Value};
use tower::ServiceExt;

fn commands(h: &Harness, id: &str) -> Vec<(u32, Action)> {
    h.sim.record(id).unwrap().commands.iter().map(|c| (c.channel, c.action)).collect()
}

#[test]
fn servers_list_keeps_the_original_shape_and_shows_unknown_until_polled() {
    let h = Harness::new(3);
    let (status, list) = h.get("/api/servers");
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    for s in list {
        assert_eq!(s["state"]["status"], "unknown", "nothing polled yet: {s}");
        assert_eq!(s["state"]["last_poll_time"], Value::Null);
        assert_eq!(s["state"]["server_id"], s["config"]["id"]);
    }
    h.poll();
    let (_, list) = h.get("/api/servers");
    let s = &list[0];
    for key in ["id", "name", "host", "port", "description", "tags"] {
        assert!(s["config"].get(key).is_some(), "config.{key} missing: {s}");
    }
    let st = &s["state"];
    assert_eq!(st["status"], "online");
    assert_eq!(st["cpu_cores"].as_array().unwrap().len(), 8);
    assert!(st["cpu_avg"].as_f64().is_some());
    assert_eq!(st["error_message"], Value::Null);
    let t = st["last_poll_time"].as_str().unwrap();
    assert!(t.len() == 24 && t.ends_with('Z') && t.as_bytes()[10] == b'T', "ISO-8601 UTC: {t}");
    let ch = &st["channels"][0];
    assert_eq!(ch["id"], 1);
    assert_eq!(ch["name"], "Channel 1");
    assert!(["running", "idle", "stopping"].contains(&ch["state"].as_str().unwrap()));
    assert!(ch["status"].is_string());
    assert_eq!(st["stale"], false);
    assert_eq!(st["maintenance"], false);
}

#[test]
fn one_server_its_status_and_404s_for_unknown_or_odd_ids() {
    let h = Harness::new(2);
    h.poll();
    let id = h.id(1);
    let (status, s) = h.get(&format!("/api/servers/{id}"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s["config"]["id"], id.as_str());
    let (status, st) = h.get(&format!("/api/servers/{id}/status"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(st["server_id"], id.as_str());
    assert_eq!(st["status"], "online");
    assert!(st.get("config").is_none(), "the state object alone");
    h.sim.reset_records();
    for odd in
        ["nope", "a%2Fb", "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "..%2F..%2Fetc", "%E2%9C%93", "sim-0001%00", "%20"]
    {
        for uri in [format!("/api/servers/{odd}"), format!("/api/servers/{odd}/status")] {
            let (status, body) = h.get(&uri);
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert!(body["detail"].is_string(), "{uri}: {body}");
        }
        let (status, _) = h.post(&format!("/api/servers/{odd}/channels/1/restart"));
        assert_eq!(status, StatusCode::NOT_FOUND, "{odd}");
    }
    for id in h.sim.ids() {
        assert_eq!(h.sim.record(&id).unwrap().total_requests, 0, "nothing reached {id}");
    }
}

#[test]
fn ids_with_odd_characters_are_only_looked_up() {
    let sim = common::sim(1);
    let mut servers = sim.servers();
    let real = servers[0].id.as_str().to_string();
    servers[0].id = "rack 1/edge?x=1#a%41".into();
    let h = Harness::over(sim, servers, StateConfig::default());
    let enc = "rack%201%2Fedge%3Fx%3D1%23a%2541";
    let (status, s) = h.get(&format!("/api/servers/{enc}"));
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["config"]["id"], "rack 1/edge?x=1#a%41");
    let (status, _) = h.post(&format!("/api/servers/{enc}/refresh"));
    assert_eq!(status, StatusCode::OK);
    let ch = h.running_channel(&real);
    let (status, body) = h.post(&format!("/api/servers/{enc}/channels/{ch}/restart"));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(commands(&h, &real), [(ch, Action::Stop), (ch, Action::Start)]);
}

#[test]
fn refresh_polls_now_and_returns_the_object() {
    let h = Harness::new(2);
    let id = h.id(0);
    let (status, s) = h.post(&format!("/api/servers/{id}/refresh"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s["state"]["status"], "online");
    assert_eq!(s["config"]["id"], id.as_str());
    assert_eq!(h.sim.record(&id).unwrap().status_requests, 1);
    assert_eq!(h.sim.record(&h.id(1)).unwrap().status_requests, 0, "only that server");
    assert_eq!(h.post("/api/servers/nope/refresh").0, StatusCode::NOT_FOUND);
}

#[test]
fn restart_stop_and_start_answer_the_original_fields_with_phases() {
    let h = Harness::new(1);
    h.poll();
    let id = h.id(0);
    let ch = h.running_channel(&id);
    h.sim.reset_records();
    let (status, r) = h.post(&format!("/api/servers/{id}/channels/{ch}/restart"));
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["success"], true);
    assert_eq!(r["channel_id"], ch);
    assert_eq!(r["server_id"], id.as_str());
    assert_eq!(r["action"], "restart");
    assert!(r["message"].as_str().unwrap().contains("ok"));
    let phases: Vec<&str> = r["phases"].as_array().unwrap().iter().map(|p| p["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["stop", "wait_idle", "start", "wait_running"]);
    assert_eq!(commands(&h, &id), [(ch, Action::Stop), (ch, Action::Start)]);

    let (status, r) = h.post(&format!("/api/servers/{id}/channels/{ch}/stop"));
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["final_state"], "idle");
    assert_eq!(h.sim.channel_state(&id, ch), Some(ChannelState::Idle));
    let (status, r) = h.post(&format!("/api/servers/{id}/channels/{ch}/start"));
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["final_state"], "running");
    let (status, _) = h.post(&format!("/api/servers/{id}/channels/{ch}/explode"));
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h.get(&format!("/api/servers/{id}/channels/{ch}/restart"));
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn bad_channel_numbers_are_refused_and_nothing_is_sent() {
    let h = Harness::new(1);
    h.poll();
    let id = h.id(0);
    h.sim.reset_records();
    for bad in ["0", "-1", "abc", "1.5", "%20", "99999999999", "1e2"] {
        let (status, body) = h.post(&format!("/api/servers/{id}/channels/{bad}/restart"));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("channel"), "{body}");
    }
    let (status, body) = h.post(&format!("/api/servers/{id}/channels/5/restart"));
    assert_eq!(status, StatusCode::NOT_FOUND, "beyond the 4 channels: {body}");
    assert!(body["detail"].as_str().unwrap().contains("channel 5"), "{body}");
    assert_eq!(h.sim.record(&id).unwrap().total_requests, 0, "no request reached the server");
}

#[test]
fn two_restarts_of_one_channel_at_once_one_is_busy() {
    let h = Harness::new(1);
    h.poll();
    let id = h.id(0);
    let ch = h.running_channel(&id);
    h.sim.reset_records();
    let uri = format!("/api/servers/{id}/channels/{ch}/restart");
    let (a, b) = smol::block_on(async {
        let first = h.app.clone().oneshot(request(Method::POST, &uri, &[], None));
        let second = h.app.clone().oneshot(request(Method::POST, &uri, &[], None));
        futures::join!(first, second)
    });
    let mut codes = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    codes.sort();
    assert_eq!(codes, [200, 409]);
    assert_eq!(commands(&h, &id), [(ch, Action::Stop), (ch, Action::Start)], "stop,start once");
}

#[test]
fn a_failed_action_is_a_502_with_its_report() {
    let h = Harness::new(1);
    h.poll();
    let id = h.id(0);
    h.sim.set_fault(&id, Some(ipvtl_sim::Fault::RejectCommands));
    h.sim.reset_records();
    let (status, body) = h.post(&format!("/api/servers/{id}/channels/1/restart"));
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("stop failed"), "{body}");
    assert_eq!(body["error_kind"], "stop_failed");
    assert_eq!(body["cause_kind"], "http", "the server answered, badly");
    assert!(commands(&h, &id).iter().all(|c| c.1 != Action::Start), "never started after a failed stop");
    // Down: the same 502, and the cause says the server was unreachable.
    h.sim.set_fault(&id, Some(ipvtl_sim::Fault::Down));
    let (status, body) = h.post(&format!("/api/servers/{id}/channels/1/restart"));
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error_kind"], "stop_failed");
    assert!(["connect", "io"].contains(&body["cause_kind"].as_str().unwrap_or("")), "{body}");
}

#[test]
fn maintenance_blocks_actions_and_bodies_are_validated() {
    let h = Harness::new(1);
    h.poll();
    let id = h.id(0);
    let uri = format!("/api/servers/{id}/maintenance");
    let (status, body) = h.post_json(&uri, &json!({"enabled": true}));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["maintenance"], true);
    h.sim.reset_records();
    let (status, body) = h.post(&format!("/api/servers/{id}/channels/1/restart"));
    assert_eq!(status, StatusCode::LOCKED, "{body}");
    assert_eq!(h.sim.record(&id).unwrap().total_requests, 0);
    let (_, s) = h.get(&format!("/api/servers/{id}"));
    assert_eq!(s["state"]["maintenance"], true);
    wait_until("the list shows maintenance", || h.get("/api/servers").1[0]["state"]["maintenance"] == true);

    for (body, ctype, want) in [
        ("{\"enabled\": \"yes\"}", "application/json", 422),
        ("{\"enabled\": true, \"extra\": 1}", "application/json", 422),
        ("{}", "application/json", 422),
        ("{not json", "application/json", 400),
        ("{\"enabled\": false}", "text/plain", 415),
    ] {
        let resp = h.call(request(Method::POST, &uri, &[("content-type", ctype)], Some(body)));
        assert_eq!(resp.0.as_u16(), want, "{body} as {ctype}: {}", String::from_utf8_lossy(&resp.2));
    }
    let huge = format!("{{\"enabled\": false, \"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    let resp = h.call(request(Method::POST, &uri, &[("content-type", "application/json")], Some(&huge)));
    assert_eq!(resp.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(h.post_json("/api/servers/nope/maintenance", &json!({"enabled": true})).0, StatusCode::NOT_FOUND);

    assert_eq!(h.post_json(&uri, &json!({"enabled": false})).0, StatusCode::OK);
    let ch = h.running_channel(&id);
    assert_eq!(h.post(&format!("/api/servers/{id}/channels/{ch}/restart")).0, StatusCode::OK);
}

#[test]
fn mutating_requests_need_the_key_and_nothing_is_sent_without_it() {
    let config = StateConfig { api_key: Some("s3cret-key".into()), ..StateConfig::default() };
    let h = Harness::with(1, config);
    h.poll();
    let id = h.id(0);
    h.sim.reset_records();
    let uri = format!("/api/servers/{id}/channels/1/restart");
    for headers in [vec![], vec![("x-api-key", "wrong")], vec![("x-api-key", "s3cret-ke")], vec![("x-api-key", "")]] {
        let (status, body) = common::json_of(h.call(request(Method::POST, &uri, &headers, None)));
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert!(body["detail"].as_str().unwrap().contains("X-API-Key"));
    }
    for other in [format!("/api/servers/{id}/refresh"), "/api/servers/reload".to_string(), "/api/batch".to_string()] {
        assert_eq!(h.post(&other).0, StatusCode::UNAUTHORIZED, "{other}");
    }
    assert_eq!(h.sim.record(&id).unwrap().total_requests, 0, "nothing sent without the key");
    assert_eq!(h.get("/api/servers").0, StatusCode::OK, "reads stay open");
    let ch = h.running_channel(&id);
    let uri = format!("/api/servers/{id}/channels/{ch}/restart");
    let (status, body) = common::json_of(h.call(request(Method::POST, &uri, &[("x-api-key", "s3cret-key")], None)));
    assert_eq!(status, StatusCode::OK, "{body}");
    let entries = h.get("/api/audit").1["entries"].as_array().unwrap().clone();
    let requested = entries.iter().find(|e| e["event"] == "action_requested").expect("audited");
    assert_eq!(requested["who"]["api_key"], true);
    let (_, cfg) = h.get("/api/config");
    assert_eq!(cfg["auth_required"], true);
}

#[test]
fn cross_site_requests_are_refused_and_cors_allows_exact_origins_only() {
    let config = StateConfig { cors_origins: vec!["https://ops.example".into()], ..StateConfig::default() };
    let h = Harness::with(1, config);
    let id = h.id(0);
    let uri = format!("/api/servers/{id}/refresh");
    let evil = h.call(request(Method::POST, &uri, &[("origin", "http://evil.example")], None));
    assert_eq!(evil.0, StatusCode::FORBIDDEN);
    assert_eq!(h.sim.record(&id).unwrap().total_requests, 0);
    let same = h.call(request(Method::POST, &uri, &[("origin", "http://127.0.0.1:8000")], None));
    assert_eq!(same.0, StatusCode::OK, "our own page");
    let (status, headers, _) = h.call(request(Method::POST, &uri, &[("origin", "https://ops.example")], None));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["access-control-allow-origin"], "https://ops.example");
    let (_, headers, _) = h.call(request(Method::GET, "/api/servers", &[("origin", "http://evil.example")], None));
    assert!(headers.get("access-control-allow-origin").is_none(), "no wildcard, no echo");
    let (_, headers, _) = h.call(request(Method::GET, "/api/servers", &[], None));
    assert!(headers.get("access-control-allow-origin").is_none());
    let (status, headers, _) = h.call(request(
        Method::OPTIONS,
        &uri,
        &[("origin", "https://ops.example"), ("access-control-request-method", "POST")],
        None,
    ));
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(headers["access-control-allow-headers"].to_str().unwrap().contains("x-api-key"));
}

#[test]
fn reload_rereads_the_file_and_a_bad_file_changes_nothing() {
    let dir = common::temp_dir("reload");
    let path = dir.join("servers.json");
    let sim = common::sim(3);
    let servers = sim.servers();
    let two = serde_json::to_string(
        &servers[..2].iter().map(|s| json!({"id": s.id.as_str(), "host": s.host, "port": s.port})).collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(&path, &two).unwrap();
    let config = StateConfig { servers_path: Some(path.clone()), ..StateConfig::default() };
    let h = Harness::over(sim, servers[..2].to_vec(), config);
    h.sim.write_servers_json(&path, JsonForm::Object).unwrap();
    let (status, body) = h.post("/api/servers/reload");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 3);
    assert!(body["message"].is_string());
    assert_eq!(body["added"], json!([h.id(2)]));
    let dup = r#"[{"id": "a", "host": "127.0.0.1"}, {"id": "a", "host": "127.0.0.2"}]"#;
    std::fs::write(&path, dup).unwrap();
    let (status, body) = h.post("/api/servers/reload");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("servers.json"), "names the file: {detail}");
    assert!((detail.contains("#1") || detail.contains("[1]")) && detail.contains("\"a\""), "names the entry: {detail}");
    assert!(detail.contains("duplicate"), "says why: {detail}");
    std::fs::write(&path, "{\"servers\": [").unwrap();
    assert_eq!(h.post("/api/servers/reload").0, StatusCode::BAD_REQUEST);
    assert_eq!(h.get("/health").1["servers_count"], 3, "the old config stays");
    assert_eq!(h.get(&format!("/api/servers/{}", h.id(2))).0, StatusCode::OK);
    let _ = std::fs::remove_dir_all(dir);

    let no_file = Harness::new(1);
    assert_eq!(no_file.post("/api/servers/reload").0, StatusCode::BAD_REQUEST);
}

#[test]
fn health_reports_version_count_and_interval() {
    let h = Harness::new(2);
    let (status, body) = h.get("/health");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], ipvtl_dashboard::VERSION);
    assert_eq!(body["servers_count"], 2);
    assert_eq!(body["poll_interval"], 5.0);
    let before = body["sweeps"]["finished"].as_u64().expect("sweeps finished");
    h.poll();
    wait_until("/health counts the sweep", || h.get("/health").1["sweeps"]["finished"].as_u64() > Some(before));
    let sweeps = &h.get("/health").1["sweeps"];
    assert!(sweeps["last_duration_s"].as_f64().is_some_and(|s| s > 0.0), "{sweeps}");
    assert!(sweeps["duration_total_s"].as_f64() >= sweeps["last_duration_s"].as_f64(), "{sweeps}");
}

#[test]
fn history_keeps_recent_samples_per_server() {
    let h = Harness::new(2);
    h.poll();
    h.poll();
    let id = h.id(0);
    let (status, body) = h.get(&format!("/api/servers/{id}/history"));
    assert_eq!(status, StatusCode::OK);
    let samples = body["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2, "{body}");
    assert!(samples[0]["cpu_avg"].as_f64().is_some());
    assert_eq!(
        samples[1]["running_channels"].as_u64(),
        Some(
            u64::from((1..=4).filter(|&c| h.sim.channel_state(&id, c) == Some(ChannelState::Running)).count() as u32,)
        )
    );
    assert!(samples[0]["t"].as_u64() < samples[1]["t"].as_u64());
    assert_eq!(body["capacity"], 120);
    assert_eq!(h.get("/api/servers/nope/history").0, StatusCode::NOT_FOUND);
    let (_, all) = h.get("/api/history?points=1");
    assert_eq!(all["servers"][&id].as_array().unwrap().len(), 1);
    assert_eq!(h.get("/api/history?points=0").0, StatusCode::UNPROCESSABLE_ENTITY);
}

#[test]
fn metrics_expose_servers_channels_latency_and_actions() {
    let h = Harness::new(2);
    h.sim.set_fault(&h.id(1), Some(ipvtl_sim::Fault::Down));
    h.poll();
    let id = h.id(0);
    let ch = h.running_channel(&id);
    assert_eq!(h.post(&format!("/api/servers/{id}/channels/{ch}/restart")).0, StatusCode::OK);
    let text = || {
        let (status, headers, body) = h.call(request(Method::GET, "/metrics", &[], None));
        assert_eq!(status, StatusCode::OK);
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        String::from_utf8(body.to_vec()).unwrap()
    };
    wait_until("the restart is counted", || text().contains("ipvtl_actions_total{kind=\"restart\",outcome=\"ok\"} 1"));
    let t = text();
    let down = h.id(1);
    for needle in [
        format!("ipvtl_server_up{{server=\"{id}\"}} 1"),
        format!("ipvtl_server_up{{server=\"{down}\"}} 0"),
        format!("ipvtl_server_health{{server=\"{down}\",health=\"offline\"}} 1"),
        format!("ipvtl_cpu_percent{{server=\"{id}\",core=\"7\"}}"),
        format!("ipvtl_cpu_avg_percent{{server=\"{id}\"}}"),
        format!("ipvtl_channel_state{{server=\"{id}\",channel=\"{ch}\",state=\"running\"}} 1"),
        format!("ipvtl_channel_fps{{server=\"{id}\",channel=\"{ch}\"}}"),
        format!("ipvtl_channel_kbps{{server=\"{id}\",channel=\"{ch}\"}}"),
        "# TYPE ipvtl_poll_latency_seconds histogram".to_string(),
        "ipvtl_poll_latency_seconds_bucket{le=\"+Inf\"}".to_string(),
        "ipvtl_sweeps_total 1".to_string(),
        "ipvtl_sweep_duration_seconds ".to_string(),
    ] {
        assert!(t.contains(&needle), "missing {needle:?} in\n{t}");
    }
    let count: u64 = t
        .lines()
        .find_map(|l| l.strip_prefix("ipvtl_poll_latency_seconds_count "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(count >= 1, "the good poll was observed");
}

/// Reads SSE frames from a streaming body until `pred` holds for one.
fn read_sse_until(
    body: &mut (impl futures::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin),
    buf: &mut String,
    pred: impl Fn(&str) -> bool,
) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut frames = Vec::new();
    loop {
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let done = pred(&frame);
            frames.push(frame);
            if done {
                return frames;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no matching event; got {frames:?}");
        let next = smol::block_on(smol::future::or(async { body.next().await }, async {
            smol::Timer::after(Duration::from_secs(10)).await;
            None
        }));
        match next {
            Some(Ok(bytes)) => buf.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("stream ended: {other:?}; got {frames:?}"),
        }
    }
}

fn field<'a>(frame: &'a str, name: &str) -> Option<&'a str> {
    frame.lines().find_map(|l| l.strip_prefix(name).map(str::trim))
}

#[test]
fn events_stream_core_events_and_resume_from_last_event_id() {
    let h = Harness::new(2);
    let resp = smol::block_on(h.app.clone().oneshot(request(Method::GET, "/api/events", &[], None))).unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body().into_data_stream();
    let mut buf = String::new();
    let id = h.id(1);
    h.state.cluster().blocking().refresh(&id).unwrap();
    let frames = read_sse_until(&mut body, &mut buf, |f| field(f, "event:") == Some("refreshed"));
    let refreshed = frames.last().unwrap();
    let seq: u64 = field(refreshed, "id:").unwrap().parse().unwrap();
    let data: Value = serde_json::from_str(field(refreshed, "data:").unwrap()).unwrap();
    assert_eq!(data["server_id"], id.as_str());
    // A client that saw events up to seq-1 gets the refresh again, first.
    let last = (seq - 1).to_string();
    let resp =
        smol::block_on(h.app.clone().oneshot(request(Method::GET, "/api/events", &[("last-event-id", &last)], None)))
            .unwrap();
    let mut body2 = resp.into_body().into_data_stream();
    let mut buf2 = String::new();
    let frames = read_sse_until(&mut body2, &mut buf2, |f| field(f, "id:").is_some());
    let first = frames.last().unwrap();
    assert_eq!(field(first, "id:"), Some(seq.to_string().as_str()));
    assert_eq!(field(first, "event:"), Some("refreshed"));
    assert!(frames.iter().all(|f| field(f, "event:") != Some("resync")));
}

#[test]
fn batches_plan_run_report_progress_and_validate() {
    let h = Harness::new(4);
    h.poll();
    let (status, plan) =
        h.post_json("/api/batch", &json!({"action": "restart", "filter": {"channels": [1]}, "dry_run": true}));
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["count"], 4);
    assert_eq!(plan["targets"][0], json!({"server_id": h.id(0), "channel_id": 1}));
    assert!(h.sim.ids().iter().all(|id| commands(&h, id).is_empty()), "a dry run sends nothing");

    let targets: Vec<Value> = (0..3).map(|i| json!({"server_id": h.id(i), "channel_id": 2})).collect();
    let (status, started) =
        h.post_json("/api/batch", &json!({"action": "restart", "targets": targets, "max_parallel": 2}));
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let batch = started["batch_id"].as_u64().unwrap();
    assert_eq!(started["status_url"], format!("/api/batches/{batch}"));
    let mut report = Value::Null;
    wait_until("the batch finishes", || {
        report = h.get(&format!("/api/batches/{batch}")).1;
        report["state"] == "finished"
    });
    assert_eq!(report["total"], 3);
    assert_eq!(report["report"]["ok"], true, "{report}");
    assert_eq!(report["report"]["succeeded"], 3, "{report}");
    assert_eq!(report["report"]["stopped_early"], Value::Null);
    assert_eq!(report["requested_by"]["addr"], "local");
    assert!(report["created_at"].as_f64().is_some_and(|t| t > 1.7e9), "Unix seconds: {report}");
    for i in 0..3 {
        assert_eq!(commands(&h, &h.id(i)), [(2, Action::Stop), (2, Action::Start)]);
    }
    assert!(commands(&h, &h.id(3)).is_empty());
    assert_eq!(h.get("/api/batches").1.as_array().unwrap().len(), 1);
    assert_eq!(h.get("/api/batches/999").0, StatusCode::NOT_FOUND);

    for bad in [
        json!({"action": "explode", "filter": {}}),
        json!({"action": "restart"}),
        json!({"action": "restart", "filter": {}, "targets": [{"server_id": h.id(0), "channel_id": 1}]}),
        json!({"action": "restart", "targets": [{"server_id": h.id(0), "channel_id": 0}]}),
        json!({"action": "restart", "targets": [{"server_id": "nope", "channel_id": 1}]}),
        json!({"action": "restart", "targets": []}),
        json!({"action": "restart", "filter": {}, "max_parallel": 0}),
        json!({"action": "restart", "filter": {}, "surprise": true}),
        json!({"action": "restart", "filter": {"channels": ["one"]}}),
        json!({"action": "restart", "filter": {}, "max_parallel": 65}),
        json!({"action": "restart", "filter": {}, "failure_threshold": 0}),
    ] {
        let (status, body) = h.post_json("/api/batch", &bad);
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body["detail"].is_string());
    }
    // A misspelt state is an error naming the valid ones, not a filter
    // that silently matches nothing.
    let (status, body) = h.post_json("/api/batch", &json!({"action": "restart", "filter": {"states": ["runing"]}}));
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("\"runing\"") && detail.contains("idle, running, stopping"), "{detail}");
}

#[test]
fn get_on_reload_is_405_not_a_server_called_reload() {
    let h = Harness::new(1);
    let (status, body) = h.get("/api/servers/reload");
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
}

#[test]
fn the_fleet_endpoint_and_sse_speak_the_wire_vocabulary() {
    let h = Harness::new(2);
    h.poll();
    let (status, fleet) = h.get("/api/fleet");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fleet["counts"]["online"], 2, "{fleet}");
    let s = &fleet["servers"][0];
    assert_eq!(s["id"], h.id(0).as_str());
    assert_eq!(s["health"], "online");
    assert!(s["latency_ms"].is_u64() && s["status_age_ms"].is_u64(), "{s}");
    assert!(s["last_poll_at"].as_f64().is_some_and(|t| t > 1.7e9), "{s}");
    for legacy in ["cpu_cores", "error_message", "last_poll_time", "server_id", "status"] {
        assert!(s.get(legacy).is_none(), "{legacy} belongs to the original endpoints only: {s}");
    }
    // The original list carries the same values under both names.
    let (_, list) = h.get("/api/servers");
    let st = &list[0]["state"];
    assert_eq!(list[0]["config"]["id"], s["id"]);
    assert_eq!(st["cpu_cores"], s["cpu"]);
    assert_eq!(st["cpu_avg"], s["cpu_avg"]);
    assert_eq!(st["last_poll_at"], s["last_poll_at"]);
    assert_eq!((&st["status"], &st["health"]), (&s["health"], &s["health"]));
    assert_eq!(st["channels"][0]["name"], "Channel 1");
    assert_eq!(st["channels"][0]["stall"], s["channels"][0]["stall"]);
    assert_eq!(st["channels"][0]["status"], s["channels"][0]["status"]);

    let resp = smol::block_on(h.app.clone().oneshot(request(Method::GET, "/api/events", &[], None))).unwrap();
    let mut body = resp.into_body().into_data_stream();
    let mut buf = String::new();
    let id = h.id(0);
    let ch = h.running_channel(&id);
    assert_eq!(h.post(&format!("/api/servers/{id}/channels/{ch}/stop")).0, StatusCode::OK);
    let frames = read_sse_until(&mut body, &mut buf, |f| field(f, "event:") == Some("action_finished"));
    let data = |kind: &str| -> Value {
        let f = frames.iter().find(|f| field(f, "event:") == Some(kind)).unwrap_or_else(|| panic!("no {kind}"));
        serde_json::from_str(field(f, "data:").unwrap()).unwrap()
    };
    let finished = data("action_finished");
    assert_eq!(finished["kind"], "action_finished");
    assert_eq!(
        (finished["server_id"].as_str(), finished["channel_id"].as_u64()),
        (Some(id.as_str()), Some(u64::from(ch)))
    );
    assert_eq!(finished["ok"], true);
    assert!(finished["duration_ms"].is_u64());
    let changed = data("channel_state_changed");
    assert_eq!(changed["from"], "running");
    assert!(changed["to"] == "stopping" || changed["to"] == "idle", "{changed}");
}

#[test]
fn the_audit_log_records_each_action_start_and_end() {
    let dir = common::temp_dir("audit");
    let path = dir.join("audit.jsonl");
    let audit = ipvtl_dashboard::AuditLog::open(Some(&path)).unwrap();
    let h = Harness::with(1, StateConfig { audit, ..StateConfig::default() });
    h.poll();
    let id = h.id(0);
    let ch = h.running_channel(&id);
    assert_eq!(h.post(&format!("/api/servers/{id}/channels/{ch}/restart")).0, StatusCode::OK);
    assert_eq!(h.post(&format!("/api/servers/{id}/channels/9/restart")).0, StatusCode::NOT_FOUND);
    let (status, body) = h.get("/api/audit?limit=10");
    assert_eq!(status, StatusCode::OK);
    let events: Vec<&str> = body["entries"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["action_requested", "action_finished", "action_requested", "action_refused"]);
    assert_eq!(body["entries"][1]["outcome"], "ok");
    assert_eq!(body["entries"][1]["report"]["server_id"], id.as_str());
    assert_eq!(body["entries"][1]["report"]["channel_id"], ch);
    assert_eq!(body["entries"][0]["server_id"], id.as_str());
    assert_eq!(body["entries"][0]["who"]["addr"], "local");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| l["at"].as_f64().is_some_and(|t| t > 1.7e9)), "Unix seconds: {lines:?}");
    assert_eq!(h.get("/api/audit?limit=1").1["entries"].as_array().unwrap().len(), 1);
    assert_eq!(h.get("/api/audit?limit=abc").0, StatusCode::UNPROCESSABLE_ENTITY);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_page_is_served_with_a_strict_policy() {
    let h = Harness::new(1);
    let (status, headers, body) = h.call(request(Method::GET, "/", &[], None));
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(headers["content-security-policy"].to_str().unwrap().contains("connect-src 'self'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    let html = String::from_utf8(body.to_vec()).unwrap();
    assert!(html.contains(r#"src="/app.js""#) && html.contains(r#"href="/app.css""#));
    let (status, body) = h.get("/no/such/thing");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "Not Found");
}

#[test]
fn the_page_files_are_served_and_nothing_inline_is_allowed() {
    // With an API key set, the page and its files still load without one.
    let config = StateConfig { api_key: Some("s3cret-key".into()), ..StateConfig::default() };
    let h = Harness::with(1, config);
    let (status, headers, _) = h.call(request(Method::GET, "/", &[], None));
    assert_eq!(status, StatusCode::OK);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("script-src 'self'") && csp.contains("style-src 'self'"), "{csp}");
    for (path, ctype, needle) in [
        ("/app.js", "text/javascript; charset=utf-8", "/api/events"),
        ("/app.css", "text/css; charset=utf-8", ".server"),
        ("/i18n.js", "text/javascript; charset=utf-8", "IPVTL 监控面板"),
    ] {
        let (status, headers, body) = h.call(request(Method::GET, path, &[], None));
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["content-type"], ctype, "{path}");
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(String::from_utf8(body.to_vec()).unwrap().contains(needle), "{path}");
    }
}
