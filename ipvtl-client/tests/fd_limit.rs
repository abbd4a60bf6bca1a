//! When the process runs out of file descriptors, polls fail with an error
//! that says so, the others go on, and the cluster keeps serving: once the
//! limit is raised again, a sweep is all online.
//!
//! The starved part runs in a child process (this test binary again, told
//! by an environment variable), so the lowered limit never touches the
//! other tests; the simulated fleet stays in the parent, outside the limit.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use ipvtl_client::core::PollError;
use ipvtl_client::{raise_fd_limit, Cluster, Health, Settings};
use ipvtl_sim::JsonForm;
use serde_json::{json, Value};

const CHILD: &str = "IPVTL_FD_LIMIT_CHILD";
const TEST: &str = "polls_fail_cleanly_when_file_descriptors_run_out";

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

#[test]
fn polls_fail_cleanly_when_file_descriptors_run_out() {
    if let Ok(path) = std::env::var(CHILD) {
        child(&path);
        return;
    }
    let sim = common::sim(200);
    let dir = std::env::temp_dir().join(format!("ipvtl-fd-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let servers = dir.join("servers.json");
    sim.write_servers_json(&servers, JsonForm::Array).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, &servers)
        .output()
        .expect("the test binary runs again as the child");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = stdout
        .lines()
        .find_map(|l| l.split_once("FD-LIMIT-REPORT ").map(|(_, r)| r))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("the child printed no report\nstdout:\n{stdout}\nstderr:\n{stderr}"));
    assert!(out.status.success(), "the child failed: {report}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    eprintln!("{report:#}");

    let starved = &report["starved"];
    let (online, failed) = (starved["online"].as_u64().unwrap(), starved["failed"].as_u64().unwrap());
    assert_eq!(online + failed, 200, "{report}");
    assert!(online > 0, "some polls still succeed under the lowered limit: {report}");
    assert!(failed > 0, "the lowered limit starved some polls: {report}");
    let kinds = starved["failed_kinds"].as_object().unwrap();
    assert!(
        kinds.keys().all(|k| k == "io" || k == "connect"),
        "a poll starved of descriptors is an io or connect failure: {report}"
    );
    let messages = starved["messages"].as_array().unwrap();
    assert!(
        messages.iter().any(|m| {
            let m = m.as_str().unwrap().to_ascii_lowercase();
            m.contains("too many open files") || m.contains("os error 24")
        }),
        "the error says the process ran out of file descriptors: {report}"
    );
    assert_eq!(report["after_raise"]["online"], 200, "after raising the limit again, all online: {report}");
    assert!(
        report["raised_to"].as_u64().unwrap() > report["lowered_to"].as_u64().unwrap(),
        "raise_fd_limit raised it: {report}"
    );
}

/// Counts health and error kinds of a sweep, with a few distinct messages.
fn tally(fleet: &ipvtl_client::FleetSnapshot) -> Value {
    let online = fleet.servers.iter().filter(|s| s.state.health == Health::Online).count();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut messages: Vec<String> = Vec::new();
    for s in fleet.servers.iter().filter(|s| s.state.health != Health::Online) {
        let error = s.state.error.as_ref();
        *kinds.entry(error.map_or("none", PollError::kind)).or_default() += 1;
        let message = error.map_or_else(|| format!("{:?} without an error", s.state.health), ToString::to_string);
        if !messages.contains(&message) && messages.len() < 8 {
            messages.push(message);
        }
    }
    json!({
        "online": online,
        "failed": fleet.servers.len() - online,
        "failed_kinds": kinds,
        "messages": messages,
    })
}

fn child(servers: &str) {
    let settings = Settings {
        // Every server at once, so the sweep needs far more descriptors than
        // the lowered limit leaves.
        concurrency: 200,
        timeout: Duration::from_secs(5),
        ..common::settings()
    };
    // The first cluster of the process raises the limit; lower it after.
    let cluster = Cluster::from_file(servers, settings).expect("cluster starts");
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    let lowered = (open_fds() as u64 + 40).min(soft);
    rlimit::setrlimit(rlimit::Resource::NOFILE, lowered, hard).expect("lowering the soft limit");
    let starved = cluster.blocking().poll_all().expect("the sweep ends despite the failures");
    let starved = tally(&starved);
    let raised = raise_fd_limit().expect("raising the limit again");
    let after = cluster.blocking().poll_all().expect("a sweep after raising the limit");
    let after = tally(&after);
    let report = json!({
        "soft_at_start": soft,
        "hard": hard,
        "lowered_to": lowered,
        "raised_to": raised,
        "starved": starved,
        "after_raise": after,
    });
    println!("\nFD-LIMIT-REPORT {report}");
}
