//! The `ipvtl-sim` binary.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use common::{addr, get};

const BIN: &str = env!("CARGO_BIN_EXE_ipvtl-sim");

/// Kills the child when dropped, so a failed assertion leaves no process.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn writes_a_parseable_servers_json_and_serves_it() {
    let path = std::env::temp_dir().join(format!("ipvtl-sim-cli-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let child = Command::new(BIN)
        .args(["--count", "25", "--channels", "3", "--form", "object", "--fault", "http500:0.2", "--seed", "3"])
        .arg("--write")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let control: SocketAddr =
        first.strip_prefix("control http://").unwrap_or_else(|| panic!("{first:?}")).parse().unwrap();
    // Everything is ready once the summary ends.
    let rest: Vec<String> = lines.by_ref().map_while(Result::ok).take_while(|l| l != "running until killed").collect();
    assert!(rest.iter().any(|l| l.contains("fault http500: 5 servers")), "{rest:?}");

    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(text.trim_start().starts_with('{'), "object form expected");
    let servers = ipvtl_core::parse_servers(&text).unwrap();
    assert_eq!(servers.len(), 25);
    assert_eq!(servers[24].id.as_str(), "sim-0025");

    let faults = get(control, "/faults").unwrap().json();
    assert_eq!(faults["faults"].as_object().unwrap().len(), 5);
    let codes: Vec<u16> = servers.iter().map(|s| get(addr(s), "/status").unwrap().code).collect();
    assert_eq!(codes.iter().filter(|&&c| c == 500).count(), 5);
    assert_eq!(codes.iter().filter(|&&c| c == 200).count(), 20);
    let status = get(addr(&servers[0]), "/status").unwrap();
    if status.code == 200 {
        assert_eq!(status.json()["channels"].as_array().unwrap().len(), 3);
    }
}

#[test]
fn bad_flags_exit_2_with_usage() {
    for args in [&["--count", "many"][..], &["--bogus"], &["--fault", "hang"], &["--addressing"]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("usage: ipvtl-sim"), "{err}");
    }
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--fault KIND:FRACTION"));
}
