//! Several dashboards sharing one simulated fleet through a real
//! PostgreSQL: three `ipvtl-dashboard` processes (`--instance-id a|b|c`)
//! over 1 000 servers, told apart in the simulator's records by their
//! `User-Agent`.
//!
//! - Steady state: over 10 intervals each server is polled by exactly one
//!   instance, its rendezvous owner, once per interval; every instance
//!   serves the whole fleet; their `/metrics` hold each server once.
//! - Failover: `kill -9` one; every server it polled is polled again
//!   within lease TTL + one interval; the restart it had under way is
//!   audited `action_interrupted`; brought back, it gets its shards back
//!   with no gap longer than a lease TTL in any server's polling.
//! - Split brain: one paused past its lease (SIGSTOP) stops acting before
//!   its lease ends: no server is polled by two owners at once.
//! - A clean stop (SIGTERM) leaves at once: its leases released, its
//!   servers polled by the others at their next round.
//! - A channel restarted through two instances at once: one runs, the
//!   other gets 409, the server sees one stop and one start. The servers
//!   file reloaded through one instance is reloaded by the other.
//! - A stalled channel is healed once and its alert delivered once.
//!
//! `#[ignore]`d: they need `IPVTL_TEST_PG_URL` (a PostgreSQL whose user may
//! create databases) and are run by `scripts/test.d/45-postgres.sh`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::pg::fresh_database;
use common::process::{file_args, Dashboard};
use common::receiver::Receiver;
use ipvtl_client::core::shard::{rendezvous_owner, shard_of, InstanceId};
use ipvtl_client::core::ServerId;
use ipvtl_sim::{Fault, JsonForm, SimFleet};
use serde_json::{json, Value};

/// Lease TTL of these tests, seconds (rounds every TTL/4).
const TTL: f64 = 4.0;
/// Poll interval, seconds.
const INTERVAL: f64 = 1.0;
/// Shards (the default).
const SHARDS: u16 = 256;

/// One test at a time: three dashboards over 1 000 servers fill the two
/// cores this suite runs on.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn wait_for(what: &str, secs: f64, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// The instance an agent names, if it is one of ours.
fn instance_of(agent: &str) -> Option<&str> {
    agent.strip_prefix("ipvtl-dashboard/")?.split_once(" (")?.1.strip_suffix(')')
}

/// The servers file, the store and the instances sharing them.
struct Shared {
    sim: SimFleet,
    dir: PathBuf,
    servers: PathBuf,
    store: String,
    alerts: Option<PathBuf>,
    instances: BTreeMap<String, Dashboard>,
}

impl Shared {
    fn new(name: &str, sim: SimFleet) -> Self {
        let (dir, servers) = common::servers_file(&sim, name, JsonForm::Object);
        Shared { sim, dir, servers, store: fresh_database(name), alerts: None, instances: BTreeMap::new() }
    }

    fn start(&mut self, id: &str) {
        let audit = self.dir.join(format!("audit-{id}.jsonl"));
        let ttl = TTL.to_string();
        let interval = INTERVAL.to_string();
        let alerts = self.alerts.as_ref().map(|p| p.to_str().unwrap().to_string());
        let mut extra = vec![
            "--store",
            &self.store,
            "--instance-id",
            id,
            "--lease-ttl",
            &ttl,
            "--poll-interval",
            &interval,
            "--channel-stop-timeout",
            "60",
        ];
        if let Some(a) = &alerts {
            extra.extend_from_slice(&["--alerts", a]);
        }
        let args = file_args(&self.servers, &audit, &extra);
        let d = Dashboard::spawn_with_env(&args, &[("IPVTL_TEST_HOOK_SECRET", common::receiver::SECRET)]);
        self.instances.insert(id.to_string(), d);
    }

    fn get(&self, id: &str) -> &Dashboard {
        &self.instances[id]
    }

    fn ids(&self) -> Vec<String> {
        self.instances.keys().cloned().collect()
    }

    /// Who should own each server with these instances alive.
    fn owners(&self, live: &[&str]) -> BTreeMap<String, String> {
        let live: Vec<InstanceId> = live.iter().map(|i| InstanceId::from(*i)).collect();
        self.sim
            .ids()
            .into_iter()
            .map(|s| {
                let shard = shard_of(&ServerId::from(s.as_str()), SHARDS);
                (s, rendezvous_owner(shard, &live).expect("someone is live").to_string())
            })
            .collect()
    }

    /// The servers `id` should own with these instances alive.
    fn servers_of(&self, live: &[&str], id: &str) -> BTreeSet<String> {
        self.owners(live).into_iter().filter(|(_, o)| o == id).map(|(s, _)| s).collect()
    }

    /// Waits until every live instance says every shard is owned and each
    /// holds its rendezvous share.
    fn wait_balanced(&self, live: &[&str], secs: f64) -> Duration {
        let live_ids: Vec<InstanceId> = live.iter().map(|i| InstanceId::from(*i)).collect();
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for shard in 0..SHARDS {
            *expected.entry(rendezvous_owner(shard, &live_ids).unwrap().to_string()).or_default() += 1;
        }
        wait_for(&format!("the shards are spread {expected:?}"), secs, || {
            live.iter().all(|id| {
                let (code, c) = self.get(id).get("/api/cluster");
                let shards: BTreeMap<String, u64> = c["instances"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| (i["instance_id"].as_str().unwrap_or("").to_string(), i["shards"].as_u64().unwrap_or(0)))
                    .filter(|(_, n)| *n > 0)
                    .collect();
                code == 200 && c["unowned_shards"] == 0 && shards == expected
            })
        })
    }

    /// Each server's `/status` polls since the last reset: (time, instance).
    fn polls(&self) -> BTreeMap<String, Vec<(Duration, String)>> {
        self.sim
            .ids()
            .into_iter()
            .map(|id| {
                let record = self.sim.record(&id).expect("a record");
                let mut polls: Vec<(Duration, String)> = record
                    .status_times_by_client
                    .iter()
                    .flat_map(|(agent, times)| {
                        let who = instance_of(agent).unwrap_or(agent).to_string();
                        times.iter().map(move |t| (*t, who.clone()))
                    })
                    .collect();
                polls.sort();
                (id, polls)
            })
            .collect()
    }
}

/// The commands `server` received for `channel`, in order.
fn commands(sim: &SimFleet, server: &str, channel: u32) -> Vec<&'static str> {
    sim.record(server)
        .expect("a record")
        .commands
        .iter()
        .filter(|c| c.channel == channel)
        .map(|c| c.action.as_str())
        .collect()
}

fn signal(d: &Dashboard, sig: &str) {
    let status = Command::new("kill").args([sig, &d.child.id().to_string()]).status().expect("kill runs");
    assert!(status.success(), "kill {sig}");
}

/// The `ipvtl_server_up{server="..."}` series of a `/metrics` body.
fn up_series(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("ipvtl_server_up{"))
        .filter_map(|l| l.split("server=\"").nth(1)?.split('"').next().map(String::from))
        .collect()
}

/// Polls of one server by two instances interleaved: another instance's
/// poll between two of one instance's that are within 1.5 intervals of
/// each other (one run of polling). Returns the first such, described.
fn interleaved(polls: &BTreeMap<String, Vec<(Duration, String)>>) -> Option<String> {
    let run = Duration::from_secs_f64(INTERVAL * 1.5);
    for (server, list) in polls {
        for w in list.windows(3) {
            let (a, b, c) = (&w[0], &w[1], &w[2]);
            if a.1 == c.1 && b.1 != a.1 && c.0 - a.0 < run {
                return Some(format!("{server}: {} at {:?}, {} at {:?}, {} at {:?}", a.1, a.0, b.1, b.0, c.1, c.0));
            }
        }
    }
    None
}

/// The longest time any server went without a poll in `polls` (also
/// counting from the first poll of any server, so a server left unpolled
/// at the start counts too).
fn longest_gap(polls: &BTreeMap<String, Vec<(Duration, String)>>) -> (Duration, String) {
    let from = polls.values().filter_map(|l| l.first()).map(|(t, _)| *t).min().unwrap_or_default();
    let mut worst = (Duration::ZERO, String::new());
    for (server, list) in polls {
        let mut last = from;
        for (t, _) in list {
            if *t - last > worst.0 {
                worst = (*t - last, server.clone());
            }
            last = *t;
        }
    }
    worst
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn three_instances_share_a_thousand_servers_fail_over_and_fence_themselves() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // A stop takes 5 s here: a restart is still under way when its
    // instance is killed.
    let sim = common::running_sim(1000, Duration::from_secs(5), Duration::from_millis(100));
    let mut shared = Shared::new("trio", sim);
    for id in ["a", "b", "c"] {
        shared.start(id);
    }
    let took = shared.wait_balanced(&["a", "b", "c"], 90.0);
    println!("three instances: shards spread as rendezvous says after {took:?}");

    // --- Steady state: 10 intervals.
    shared.sim.reset_records();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(INTERVAL * 10.0 + 0.5));
    let owners = shared.owners(&["a", "b", "c"]);
    for (server, record) in shared.sim.ids().iter().map(|id| (id, shared.sim.record(id).unwrap())) {
        let by: Vec<(&str, u64)> =
            record.status_by_client.iter().map(|(a, n)| (instance_of(a).unwrap_or(a.as_str()), *n)).collect();
        assert_eq!(by.len(), 1, "{server} polled by one instance: {by:?}");
        let (who, n) = by[0];
        assert_eq!(who, owners[server], "{server} polled by its owner");
        assert!((9..=12).contains(&n), "{server}: {n} polls in 10 intervals");
    }
    println!("steady state: 1000 servers each polled by its owner alone over {:?}", started.elapsed());
    // Every instance serves the whole fleet; the metrics hold each once.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for id in shared.ids() {
        let d = shared.get(&id);
        let (code, list) = d.get("/api/servers");
        assert_eq!(code, 200);
        let list = list.as_array().expect("a list").clone();
        assert_eq!(list.len(), 1000, "{id} serves the whole fleet");
        assert!(list.iter().all(|s| s["state"]["status"] == "online"), "{id}: every server online");
        let metrics = d.request("GET", "/metrics", &[], None).body;
        assert!(metrics.contains("ipvtl_instance_shards{"), "{id}");
        for server in up_series(&metrics) {
            *seen.entry(server).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 1000, "every server in some instance's metrics");
    assert!(seen.values().all(|n| *n == 1), "each once: {:?}", seen.iter().find(|(_, n)| **n != 1));

    // --- Failover: a restart under way on c, then kill -9.
    let victim = owners.iter().find(|(_, o)| *o == "a").map(|(s, _)| s.clone()).unwrap();
    let c_addr = shared.get("c").addr;
    let path = format!("/api/servers/{victim}/channels/1/restart");
    let restart = std::thread::spawn(move || common::process::http(c_addr, "POST", &path, None));
    wait_for("the restart is under way on c", 10.0, || {
        shared.sim.record(&victim).is_some_and(|r| r.commands.iter().any(|c| c.action.as_str() == "stop"))
    });
    let c_servers = shared.servers_of(&["a", "b", "c"], "c");
    let mut c = shared.instances.remove("c").unwrap();
    c.kill();
    let killed = Instant::now();
    shared.sim.reset_records();
    let _ = restart.join();
    let failover = wait_for("every server of c is polled again", 30.0, || {
        c_servers.iter().all(|s| shared.sim.record(s).is_some_and(|r| !r.status_by_client.is_empty()))
    });
    println!("failover: c's {} servers all polled again {failover:?} after kill -9", c_servers.len());
    assert!(
        failover.as_secs_f64() <= TTL + INTERVAL + 1.0,
        "within lease TTL ({TTL} s) + one interval ({INTERVAL} s), with 1 s of scheduling slack: {failover:?}"
    );
    let polls = shared.polls();
    assert!(polls.values().flatten().all(|(_, who)| who != "c"), "c is dead");
    // The restart c had under way is audited as interrupted by the others.
    let interrupted = wait_for("c's restart is audited as interrupted", 20.0, || {
        let (_, audit) = shared.get("a").get("/api/audit?limit=1000");
        audit["entries"].as_array().into_iter().flatten().any(|e| {
            e["event"] == "action_interrupted" && e["opened"]["instance"] == "c" && e["server_id"] == victim.as_str()
        })
    });
    println!("c's restart audited as interrupted {:?} after the kill", killed.elapsed().min(interrupted + failover));
    shared.wait_balanced(&["a", "b"], 30.0);

    // --- c comes back: shards move back gradually, no server left unpolled.
    shared.sim.reset_records();
    let back = Instant::now();
    shared.start("c");
    let took = shared.wait_balanced(&["a", "b", "c"], 90.0);
    std::thread::sleep(Duration::from_secs_f64(INTERVAL * 2.0));
    let polls = shared.polls();
    let (gap, server) = longest_gap(&polls);
    println!("rebalance: {took:?} after c came back ({:?} in all); longest gap {gap:?} ({server})", back.elapsed());
    assert!(gap.as_secs_f64() <= TTL, "no gap longer than a lease TTL: {gap:?} on {server}");
    assert_eq!(interleaved(&polls), None, "one owner at a time");

    // --- Split brain: b paused past its lease, then resumed.
    let b_servers = shared.servers_of(&["a", "b", "c"], "b");
    shared.sim.reset_records();
    signal(shared.get("b"), "-STOP");
    let taken = wait_for("b's servers are polled by the others", 30.0, || {
        b_servers.iter().all(|s| {
            shared
                .sim
                .record(s)
                .is_some_and(|r| r.status_by_client.keys().any(|a| instance_of(a).is_some_and(|i| i != "b")))
        })
    });
    println!("split brain: b paused; its servers taken over after {taken:?}");
    std::thread::sleep(Duration::from_secs_f64(INTERVAL));
    signal(shared.get("b"), "-CONT");
    std::thread::sleep(Duration::from_secs_f64(TTL * 2.0));
    let polls = shared.polls();
    assert_eq!(interleaved(&polls), None, "no server polled by two owners at once");
    let (code, cluster) = shared.get("b").get("/api/cluster");
    assert_eq!(code, 200);
    println!("split brain: b after its return: {}", cluster["leases"]);
    assert!(cluster["leases"]["lost"].as_u64().unwrap_or(0) > 0, "b knows it lost shards: {cluster}");
    shared.wait_balanced(&["a", "b", "c"], 90.0);

    // --- A clean stop (SIGTERM): a leaves at once, its leases released.
    let a_servers = shared.servers_of(&["a", "b", "c"], "a");
    let mut a = shared.instances.remove("a").unwrap();
    shared.sim.reset_records();
    signal(&a, "-TERM");
    let status = a.child.wait().expect("a exits");
    assert!(status.success(), "a clean exit: {status}");
    let gone = wait_for("a is no longer live", TTL / 2.0, || {
        let (_, c) = shared.get("b").get("/api/cluster");
        c["instances"].as_array().is_some_and(|l| !l.is_empty() && l.iter().all(|i| i["instance_id"] != "a"))
    });
    let taken = wait_for("a's servers are polled by the others", 30.0, || {
        a_servers.iter().all(|s| shared.sim.record(s).is_some_and(|r| !r.status_by_client.is_empty()))
    });
    println!("clean stop: a gone from the live list after {gone:?}, its servers polled again after {taken:?}");
    assert!(
        taken.as_secs_f64() <= TTL / 4.0 + INTERVAL + 1.5,
        "at the others' next round, not the leases' expiry: {taken:?}"
    );
    let _ = std::fs::remove_dir_all(&shared.dir);
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn a_channel_restarted_through_two_instances_at_once_runs_once_and_a_reload_is_followed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let sim = common::running_sim(20, Duration::from_millis(1500), Duration::from_millis(100));
    let mut shared = Shared::new("lock", sim);
    shared.start("a");
    shared.start("b");
    shared.wait_balanced(&["a", "b"], 60.0);
    let server = shared.sim.ids()[3].clone();
    shared.sim.reset_records();
    let path = format!("/api/servers/{server}/channels/2/restart");
    let (a, b) = (shared.get("a").addr, shared.get("b").addr);
    let (pa, pb) = (path.clone(), path.clone());
    let one = std::thread::spawn(move || common::process::http(a, "POST", &pa, None));
    let two = std::thread::spawn(move || common::process::http(b, "POST", &pb, None));
    let (one, two) = (one.join().unwrap(), two.join().unwrap());
    let mut codes = [one.0, two.0];
    codes.sort();
    assert_eq!(codes, [200, 409], "one runs, the other is refused: {one:?} {two:?}");
    let refused = if one.0 == 409 { &one.1 } else { &two.1 };
    assert!(refused.contains("held by instance"), "names the holder: {refused}");
    assert_eq!(commands(&shared.sim, &server, 2), ["stop", "start"], "one stop, one start");
    // The lock is gone: either instance may restart it now.
    let (code, body) = shared.get("b").post(&path);
    assert_eq!(code, 200, "{body}");
    // The audit (shared) names the instances.
    let (_, audit) = shared.get("a").get("/api/audit?limit=100");
    let instances: BTreeSet<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "action_requested")
        .filter_map(|e| e["instance"].as_str())
        .collect();
    assert_eq!(instances, BTreeSet::from(["a", "b"]), "{audit}");

    // The servers file reloaded through one instance: the other follows.
    let mut file: Value = serde_json::from_slice(&std::fs::read(&shared.servers).unwrap()).unwrap();
    let gone = file["servers"].as_array_mut().unwrap().pop().unwrap()["id"].as_str().unwrap().to_string();
    std::fs::write(&shared.servers, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    let (code, body) = shared.get("a").post("/api/servers/reload");
    assert_eq!(code, 200, "{body}");
    wait_for("b reloads too", 10.0, || {
        let (_, list) = shared.get("b").get("/api/servers");
        list.as_array().is_some_and(|l| l.len() == 19 && l.iter().all(|s| s["id"] != gone.as_str()))
    });
    wait_for("b's reload is audited as following a", 10.0, || {
        let (_, audit) = shared.get("a").get("/api/audit?limit=100");
        audit["entries"].as_array().into_iter().flatten().any(|e| {
            e["event"] == "reload" && e["instance"] == "b" && e["detail"] == "following instance a" && e["count"] == 19
        })
    });
    let _ = std::fs::remove_dir_all(&shared.dir);
}

/// Declares channel 1 of `server` desired running with healing on, no
/// grace, in the servers file.
fn manage(path: &Path, server: &str) {
    let mut file: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for s in file["servers"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("channels");
        if s["id"] == server {
            s["channels"] = json!({"1": "running"});
            s["healing"] = json!({"grace_ms": 0, "limit": 3});
        }
    }
    std::fs::write(path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn a_stalled_channel_is_healed_once_and_its_alert_delivered_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let sim = common::running_sim(30, Duration::from_millis(300), Duration::from_millis(100));
    let mut shared = Shared::new("heal", sim);
    let server = shared.sim.ids()[7].clone();
    manage(&shared.servers, &server);
    let hook = Receiver::start("127.0.0.1:0".parse().unwrap(), 0);
    let rules =
        "[rules.channel_stalled]\nfor = \"0s\"\n[rules.drift]\nenabled = false\n[rules.cpu_high]\nenabled = false\n";
    shared.alerts = Some(common::receiver::alerts_file(&shared.dir, hook.addr, rules));
    for id in ["a", "b", "c"] {
        shared.start(id);
    }
    shared.wait_balanced(&["a", "b", "c"], 60.0);
    std::thread::sleep(Duration::from_secs_f64(INTERVAL * 2.0));
    shared.sim.reset_records();
    assert!(shared.sim.set_fault(&server, Some(Fault::Stalled)));
    wait_for("the channel is healed", 30.0, || {
        shared.sim.record(&server).is_some_and(|r| r.commands.iter().filter(|c| c.channel == 1).count() >= 2)
    });
    shared.sim.set_fault(&server, None);
    // Time for a second heal or a second delivery, if there were to be one.
    std::thread::sleep(Duration::from_secs_f64(TTL + 2.0));
    assert_eq!(commands(&shared.sim, &server, 1), ["stop", "start"], "healed once, by one instance");
    // The fault stalls every running channel of the server: one alert
    // each, every one delivered once (not once per instance).
    let mut firing: BTreeMap<String, usize> = BTreeMap::new();
    for e in hook.acknowledged() {
        let (data, labels) = (&e["data"], &e["data"]["labels"]);
        if labels["server"] == server.as_str()
            && labels["alertname"] == "IpvtlChannelStalled"
            && data["kind"] == "firing"
        {
            *firing.entry(labels["channel"].as_str().unwrap_or("?").to_string()).or_default() += 1;
        }
    }
    assert!(firing.contains_key("1"), "the stalled channel's alert is delivered: {firing:?}");
    assert!(firing.values().all(|n| *n == 1), "each alert delivered once: {firing:?}");
    let (_, audit) = shared.get("a").get("/api/audit?limit=1000");
    let heals: Vec<&Value> =
        audit["entries"].as_array().unwrap().iter().filter(|e| e["event"] == "heal_started").collect();
    assert_eq!(heals.len(), 1, "one heal in the shared audit: {heals:?}");
    let owner = &shared.owners(&["a", "b", "c"])[&server];
    assert_eq!(heals[0]["instance"], owner.as_str(), "by the server's owner");
    let _ = std::fs::remove_dir_all(&shared.dir);
}
