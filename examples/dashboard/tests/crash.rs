//! Crashes around the dashboard, against the real binary over a real
//! socket: `kill -9` in the middle of a batch and of a single restart
//! leaves an audit log that reads whole and shows them, and the next start
//! audits each unfinished action as interrupted (once, with an event), and a `servers.json` torn at any byte
//! (an editor or a deploy dying mid-write) never replaces the live
//! configuration.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::process::{file_args, Dashboard};
use ipvtl_sim::{Action, JsonForm, SimFleet};
use serde_json::{json, Value};

/// (server, channel) of every stop the simulator received.
fn stops(sim: &SimFleet) -> BTreeSet<(String, u64)> {
    sim.ids()
        .into_iter()
        .flat_map(|id| {
            let record = sim.record(&id).expect("a simulated server");
            record
                .commands
                .iter()
                .filter(|c| c.action == Action::Stop)
                .map(|c| (id.clone(), u64::from(c.channel)))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn audit_lines(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // While the dashboard runs, only whole lines count.
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn kill_9_mid_batch_and_mid_restart_leaves_a_readable_audit_then_marks_them_interrupted() {
    // Channels all running; a stop takes a minute: the batch stays in its
    // first actions until the dashboard is killed.
    let sim = common::running_sim(3, Duration::from_secs(60), Duration::from_millis(100));
    let (dir, path) = common::servers_file(&sim, "kill9-batch", JsonForm::Object);
    let audit = dir.join("audit.jsonl");
    let store = format!("sqlite:{}", dir.join("ipvtl.db").display());
    let args = ["--channel-stop-timeout", "600", "--store", store.as_str()];
    let mut d = Dashboard::spawn(&file_args(&path, &audit, &args));
    d.wait_first_sweep();
    sim.reset_records();
    // A single restart, stuck in its stop when the dashboard dies.
    let single = format!("/api/servers/{}/channels/3/restart", sim.ids()[0]);
    let addr = d.addr;
    std::thread::spawn(move || common::process::http(addr, "POST", &single, None));
    common::wait_until("the single restart's stop is sent", || stops(&sim).len() == 1);

    let body = json!({"action": "restart", "filter": {"channels": [1, 2]}, "max_parallel": 2});
    let (code, started) = d.post_json("/api/batch", &body);
    assert_eq!(code, 202, "{started}");
    assert_eq!(started["count"], 6, "{started}");
    let batch = started["batch_id"].as_u64().expect("a batch id");
    common::wait_until("two actions are under way and audited", || {
        stops(&sim).len() == 3 && audit_lines(&audit).iter().filter(|e| e["event"] == "action_started").count() == 2
    });
    let (_, entry) = d.get(&format!("/api/batches/{batch}"));
    assert_eq!(entry["state"], "running", "{entry}");
    d.kill(); // SIGKILL
    let mut stopped = stops(&sim);
    assert!(stopped.remove(&(sim.ids()[0].clone(), 3)), "the single restart's stop");

    let text = std::fs::read_to_string(&audit).expect("the audit log exists");
    assert!(text.ends_with('\n'), "no torn last line: {text:?}");
    let entries: Vec<Value> = text
        .lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {l:?}", i + 1)))
        .collect();
    let requested = entries
        .iter()
        .position(|e| e["event"] == "batch_requested")
        .unwrap_or_else(|| panic!("the batch request is recorded: {entries:?}"));
    let request = &entries[requested];
    assert_eq!(request["action"], "restart");
    assert_eq!(request["count"], 6);
    assert!(request["who"]["addr"].as_str().unwrap().starts_with("127.0.0.1:"), "{request}");
    let targets: BTreeSet<(String, u64)> = request["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["server_id"].as_str().unwrap().to_string(), t["channel_id"].as_u64().unwrap()))
        .collect();
    let want: BTreeSet<(String, u64)> = sim.ids().into_iter().flat_map(|id| [(id.clone(), 1), (id, 2)]).collect();
    assert_eq!(targets, want, "{request}");

    let mut audited = BTreeSet::new();
    for (i, e) in entries.iter().enumerate().filter(|(_, e)| e["event"] == "action_started") {
        assert!(i > requested, "the request comes before any action: {entries:?}");
        assert_eq!(e["batch_id"], batch, "every started action names its batch: {e}");
        assert_eq!(e["action"], "restart", "{e}");
        audited.insert((e["server_id"].as_str().unwrap().to_string(), e["channel_id"].as_u64().unwrap()));
    }
    assert_eq!(audited, stopped, "the actions audited as started are those whose stop was sent");
    assert_eq!(audited.len(), 2, "max_parallel 2");
    assert!(audited.is_subset(&targets));
    for unfinished in ["action_finished", "batch_finished"] {
        assert!(entries.iter().all(|e| e["event"] != unfinished), "nothing finished: {entries:?}");
    }
    for id in sim.ids() {
        assert!(sim.record(&id).unwrap().commands.iter().all(|c| c.action != Action::Start), "no start sent to {id}");
    }

    // The next start on the same store: each action requested and never
    // finished is audited as interrupted, and an event says so.
    let d = Dashboard::spawn(&file_args(&path, &audit, &args));
    let (_, kept) = d.get("/api/audit?limit=1000");
    let interrupted: BTreeSet<(String, u64)> = kept["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "action_interrupted")
        .map(|e| {
            assert_eq!(e["who"], "dashboard", "{e}");
            (e["server_id"].as_str().unwrap().to_string(), e["channel_id"].as_u64().unwrap())
        })
        .collect();
    let mut want = audited.clone();
    want.insert((sim.ids()[0].clone(), 3));
    assert_eq!(interrupted, want, "the batch's two actions and the single restart");
    let (_, entry) = d.get(&format!("/api/batches/{batch}"));
    assert_eq!(entry["state"], "interrupted", "{entry}");
    let text = common::process::sse_replay(d.addr);
    let said = text.lines().filter(|l| *l == "event: action_interrupted").count();
    assert_eq!(said, 3, "one event per interrupted action:\n{text}");
    // Said once: a third start finds nothing open.
    drop(d);
    let d = Dashboard::spawn(&file_args(&path, &audit, &args));
    let (_, kept) = d.get("/api/audit?limit=1000");
    let n = kept["entries"].as_array().unwrap().iter().filter(|e| e["event"] == "action_interrupted").count();
    assert_eq!(n, 3, "audited once");
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}

/// `servers.json` cut at every byte, then reloaded: the old configuration
/// stays live. A cut that leaves the whole JSON document (only trailing
/// whitespace lost) is the same list and is accepted; every shorter cut is
/// not JSON at all (an array or object is not closed) and gets 400.
#[test]
fn a_servers_file_torn_at_any_byte_never_replaces_the_live_configuration() {
    let sim = common::sim(3);
    let (dir, path) = common::servers_file(&sim, "torn-reload", JsonForm::Array);
    let audit = dir.join("audit.jsonl");
    let d = Dashboard::spawn(&file_args(&path, &audit, &[]));
    let configs = || -> Vec<Value> {
        let (code, list) = d.get("/api/servers");
        assert_eq!(code, 200, "{list}");
        list.as_array().unwrap().iter().map(|s| s["config"].clone()).collect()
    };
    let live = configs();
    assert_eq!(live.len(), 3);

    for form in [JsonForm::Array, JsonForm::Object] {
        let full = sim.servers_json(form).into_bytes();
        let whole = full.trim_ascii_end().len();
        assert!(whole < full.len(), "the file ends with a newline, so one cut keeps the whole document");
        let (mut refused, mut accepted) = (0, 0);
        for cut in 0..=full.len() {
            let torn = &full[..cut];
            let valid = cut >= whole;
            assert_eq!(
                serde_json::from_slice::<Value>(torn).is_ok(),
                valid,
                "{form:?} cut at {cut}: only cuts keeping the whole document parse"
            );
            std::fs::write(&path, torn).unwrap();
            let (code, body) = d.post("/api/servers/reload");
            if valid {
                assert_eq!(code, 200, "{form:?} cut at {cut} of {}: {body}", full.len());
                assert_eq!(body["count"], 3, "{body}");
                accepted += 1;
            } else {
                assert_eq!(code, 400, "{form:?} cut at {cut} of {}: {body}", full.len());
                let detail = body["detail"].as_str().unwrap_or_else(|| panic!("a reason: {body}"));
                assert!(detail.contains("servers.json"), "names the file: {detail}");
                refused += 1;
            }
            assert_eq!(configs(), live, "{form:?} cut at {cut}: the live configuration is unchanged");
        }
        assert_eq!((refused, accepted), (whole, full.len() + 1 - whole), "{form:?}");
    }
    let (_, health) = d.get("/health");
    assert_eq!(health["servers_count"], 3);
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}
