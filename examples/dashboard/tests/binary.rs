//! The `ipvtl-dashboard` binary: start-up refusals, serving at once, and
//! the audit log after `kill -9` in the middle of an action.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::process::{dashboard, file_args, request_within, Dashboard};
use ipvtl_sim::{Fault, JsonForm};
use serde_json::Value;

/// One HTTP/1.1 request, answered within 10 s; returns the status code and body.
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let r = request_within(Duration::from_secs(10), addr, method, path, &[], None);
    (r.status, r.body)
}

#[test]
fn a_bad_servers_file_at_start_exits_non_zero_naming_file_entry_and_reason() {
    let dir = common::temp_dir("bad-start");
    let path = dir.join("servers.json");
    std::fs::write(&path, r#"[{"id": "a", "host": "127.0.0.1"}, {"id": "b", "host": "http://x/"}]"#).unwrap();
    let out = dashboard(&["--servers", path.to_str().unwrap(), "--listen", "127.0.0.1:0"]).output().unwrap();
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(path.to_str().unwrap()), "names the file: {err}");
    assert!((err.contains("#1") || err.contains("[1]")) && err.contains("\"b\""), "names the entry: {err}");
    assert!(err.contains("host"), "says why: {err}");

    let missing = dir.join("missing.json");
    let out = dashboard(&["--servers", missing.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_non_loopback_address_without_a_key_is_refused() {
    let out = dashboard(&["--demo", "1", "--listen", "0.0.0.0:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without an API key") && err.contains("--allow-unauthenticated"), "{err}");
    let out = dashboard(&["--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_api_serves_at_once_while_the_first_sweep_hangs() {
    let sim = common::sim(3);
    for id in sim.ids() {
        sim.set_fault(&id, Some(Fault::Hang));
    }
    let (dir, path) = common::servers_file(&sim, "serve-at-once", JsonForm::Array);
    let audit = dir.join("audit.jsonl");
    let mut d = Dashboard::spawn(&file_args(&path, &audit, &["--poll-timeout", "60"]));
    let (code, body) = http(d.addr, "GET", "/api/servers");
    d.kill();
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert!(list.as_array().unwrap().iter().all(|s| s["state"]["status"] == "unknown"), "{list}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn demo_mode_serves_a_simulated_fleet() {
    let dir = common::temp_dir("demo");
    let audit = dir.join("audit.jsonl");
    let mut d = Dashboard::spawn(&["--demo", "5", "--listen", "127.0.0.1:0", "--audit-log", audit.to_str().unwrap()]);
    let (code, body) = http(d.addr, "GET", "/health");
    let (page_code, page) = http(d.addr, "GET", "/");
    d.kill();
    assert_eq!(code, 200);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["servers_count"], 5);
    assert_eq!(page_code, 200);
    assert!(page.contains("<html"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn kill_9_mid_action_leaves_a_readable_audit_log_showing_the_start() {
    let sim = common::sim(1);
    let id = sim.ids()[0].clone();
    let (dir, path) = common::servers_file(&sim, "kill9", JsonForm::Object);
    let audit = dir.join("audit.jsonl");
    // The stop is accepted but the channel never goes idle: the action hangs
    // in wait_idle until we kill the dashboard.
    sim.set_fault(&id, Some(Fault::StuckStopping));
    let mut d = Dashboard::spawn(&file_args(&path, &audit, &["--channel-stop-timeout", "600"]));
    let addr = d.addr;
    let uri = format!("/api/servers/{id}/channels/1/restart");
    let request = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "POST {uri} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n").unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink); // ends when the process dies
    });
    common::wait_until("the server received the stop", || {
        sim.record(&id).unwrap().commands.iter().any(|c| c.action == ipvtl_sim::Action::Stop)
    });
    d.child.kill().unwrap(); // SIGKILL
    let _ = d.child.wait();
    request.join().unwrap();

    let text = std::fs::read_to_string(&audit).expect("the audit log exists");
    assert!(text.ends_with('\n'), "no torn line: {text:?}");
    let entries: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("every line is JSON")).collect();
    let started = entries.iter().find(|e| e["event"] == "action_requested").expect("the start is recorded");
    assert_eq!(started["server_id"], id.as_str());
    assert_eq!(started["channel_id"], 1);
    assert_eq!(started["action"], "restart");
    assert!(started["who"]["addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(entries.iter().all(|e| e["event"] != "action_finished"), "it never finished: {entries:?}");
    assert!(sim.record(&id).unwrap().commands.iter().all(|c| c.action != ipvtl_sim::Action::Start));
    let _ = std::fs::remove_dir_all(dir);
}

/// `--demo 6` plants a stalled server (sim-0006) before the first poll: its
/// channels are running at 0 fps from the start. The SSE replay from the
/// beginning holds a `channel_stalled` per stalled channel, and the fleet
/// view flags each, so a restart of the dashboard never hides standing
/// stalls.
#[test]
fn channels_stalled_before_the_first_poll_are_reported_and_flagged() {
    let d = Dashboard::spawn(&["--demo", "6", "--listen", "127.0.0.1:0", "--poll-interval", "1"]);
    let addr = d.addr;
    let mut stalled = Vec::new();
    for _ in 0..100 {
        let (code, body) = http(addr, "GET", "/api/fleet");
        assert_eq!(code, 200, "{body}");
        let fleet: Value = serde_json::from_str(&body).unwrap();
        let server = fleet["servers"].as_array().unwrap().iter().find(|s| s["id"] == "sim-0006").cloned().unwrap();
        stalled = server["channels"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["stall"] == "zero_fps")
            .map(|c| c["id"].as_u64().unwrap())
            .collect();
        if !stalled.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!stalled.is_empty(), "sim-0006 shows stalled channels");
    // The replay from event 0, read until the stream has sent what it holds.
    let text = common::process::sse_replay(addr);
    let mut reported: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|d| d["kind"] == "channel_stalled" && d["server_id"] == "sim-0006")
        .map(|d| {
            assert_eq!(d["reason"], "zero_fps", "{d}");
            d["channel_id"].as_u64().unwrap()
        })
        .collect();
    reported.sort();
    assert_eq!(reported, stalled, "one channel_stalled per stalled channel in the replay:\n{text}");
}
