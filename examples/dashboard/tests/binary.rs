//! The `ipvtl-dashboard` binary: start-up refusals, serving at once, and
//! the audit log after `kill -9` in the middle of an action.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ipvtl_sim::{Fault, JsonForm};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ipvtl-dashboard");

fn dashboard(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("IPVTL_API_KEY").env_remove("IPVTL_LISTEN").env_remove("IPVTL_SERVERS_CONFIG_PATH");
    // A store of its own that leaves nothing behind, unless `--store` says
    // otherwise (tests that restart on one store).
    c.env("IPVTL_STORE", "sqlite::memory:");
    c
}

/// Starts the binary and returns it with the address it serves on.
fn spawn(args: &[&str]) -> (Child, SocketAddr) {
    let mut child = dashboard(args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("a 'serving on' line").expect("stdout");
        if let Some(rest) = line.strip_prefix("serving on http://") {
            break rest.trim_end_matches('/').parse().expect("an address");
        }
    };
    // Keep reading stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// One HTTP/1.1 request; returns the status code and body.
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
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
    let dir = common::temp_dir("serve-at-once");
    let path = dir.join("servers.json");
    sim.write_servers_json(&path, JsonForm::Array).unwrap();
    let audit = dir.join("audit.jsonl");
    let (mut child, addr) = spawn(&[
        "--servers",
        path.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--poll-timeout",
        "60",
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    let (code, body) = http(addr, "GET", "/api/servers");
    let _ = child.kill();
    let _ = child.wait();
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
    let (mut child, addr) = spawn(&["--demo", "5", "--listen", "127.0.0.1:0", "--audit-log", audit.to_str().unwrap()]);
    let (code, body) = http(addr, "GET", "/health");
    let (page_code, page) = http(addr, "GET", "/");
    let _ = child.kill();
    let _ = child.wait();
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
    let dir = common::temp_dir("kill9");
    let path = dir.join("servers.json");
    let audit = dir.join("audit.jsonl");
    sim.write_servers_json(&path, JsonForm::Object).unwrap();
    // The stop is accepted but the channel never goes idle: the action hangs
    // in wait_idle until we kill the dashboard.
    sim.set_fault(&id, Some(Fault::StuckStopping));
    let (mut child, addr) = spawn(&[
        "--servers",
        path.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--audit-log",
        audit.to_str().unwrap(),
        "--channel-stop-timeout",
        "600",
    ]);
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
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
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
    let (child, addr) = spawn(&["--demo", "6", "--listen", "127.0.0.1:0", "--poll-interval", "1"]);
    let _child = KillOnDrop(child);
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
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    write!(s, "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nLast-Event-ID: 0\r\n\r\n").unwrap();
    let mut text = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&text);
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

/// Kills the child when the test ends, also when it fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
