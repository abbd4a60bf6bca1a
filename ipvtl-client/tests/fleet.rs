//! Polling a simulated fleet over real loopback sockets, faults included.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use ipvtl_client::core::{PollError, ServerId};
use ipvtl_client::{ClientError, Health, ServerSnapshot, Settings};
use ipvtl_sim::Fault;

fn by_id(servers: &[ServerSnapshot]) -> BTreeMap<String, &ServerSnapshot> {
    servers.iter().map(|s| (s.config.id.to_string(), s)).collect()
}

#[test]
fn every_fault_kind_is_classified_in_a_500_server_sweep() {
    let sim = common::sim(500);
    let ids = sim.ids();
    let faults = [
        (Fault::Down, Health::Offline, "connect"),
        (Fault::Hang, Health::Offline, "timeout"),
        (Fault::Http500, Health::Error, "http"),
        (Fault::Malformed, Health::Error, "malformed"),
        (Fault::Oversized, Health::Error, "too_large"),
        (Fault::Reset, Health::Offline, "io"),
    ];
    let mut expected: BTreeMap<String, (Health, Option<&str>)> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        // Every 10th server gets a fault, cycling through the kinds; every
        // 7th of the others is slow but within the timeout.
        let slot = i % 10;
        if slot < faults.len() && i % 20 < 10 {
            let (fault, health, kind) = faults[slot];
            assert!(sim.set_fault(id, Some(fault)));
            expected.insert(id.clone(), (health, Some(kind)));
        } else if i % 7 == 0 {
            assert!(sim.set_fault(id, Some(Fault::Slow(Duration::from_millis(200)))));
            expected.insert(id.clone(), (Health::Online, None));
        } else {
            expected.insert(id.clone(), (Health::Online, None));
        }
    }
    let cluster = common::cluster(&sim, Settings { concurrency: 64, ..common::settings() });
    let fleet = cluster.blocking().poll_all().unwrap();
    let seen = by_id(&fleet.servers);
    assert_eq!(seen.len(), 500);
    let mut mismatches = Vec::new();
    for (id, (health, kind)) in &expected {
        let s = seen[id];
        let got_kind = s.state.error.as_ref().map(PollError::kind);
        if s.state.health != *health || got_kind != *kind {
            mismatches
                .push(format!("{id}: expected {health:?}/{kind:?}, got {:?}/{:?}", s.state.health, s.state.error));
        }
        if *health == Health::Online {
            let status = s.state.status.as_ref().expect("online servers have a status");
            assert_eq!(status.channels.len(), 4, "{id}");
            assert_eq!(status.cpu.len(), 8, "{id}");
        }
    }
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    let faulty = expected.values().filter(|(h, _)| *h != Health::Online).count();
    assert_eq!(faulty, 150, "the test covers 25 servers of each fault kind");
}

#[test]
fn the_concurrency_cap_holds_as_seen_by_the_simulator() {
    let sim = common::sim(300);
    for id in sim.ids() {
        sim.set_fault(&id, Some(Fault::Slow(Duration::from_millis(40))));
    }
    let cluster = common::cluster(&sim, Settings { concurrency: 12, ..common::settings() });
    sim.reset_records();
    cluster.blocking().poll_all().unwrap();
    let peak = sim.max_concurrent_total();
    assert!(peak <= 12, "the simulator saw {peak} requests in flight, cap is 12");
    // With 300 slow answers the cap is actually reached: the test can fail.
    assert!(peak >= 6, "peak {peak}: the sweep did not run concurrently at all");
    for id in sim.ids() {
        assert_eq!(sim.record(&id).unwrap().status_requests, 1, "{id} polled once per sweep");
    }
}

#[test]
fn a_hung_server_holds_only_its_own_slot() {
    let sim = common::sim(60);
    let hung: Vec<String> = sim.ids().into_iter().step_by(15).collect();
    for id in &hung {
        sim.set_fault(id, Some(Fault::Hang));
    }
    let cluster =
        common::cluster(&sim, Settings { concurrency: 8, timeout: Duration::from_secs(2), ..common::settings() });
    let fleet = cluster.blocking().poll_all().unwrap();
    let last_healthy = fleet
        .servers
        .iter()
        .filter(|s| !hung.contains(&s.config.id.to_string()))
        .map(|s| s.state.last_poll_at.expect("polled"))
        .max()
        .unwrap();
    for s in fleet.servers.iter().filter(|s| hung.contains(&s.config.id.to_string())) {
        assert_eq!(s.state.health, Health::Offline);
        assert_eq!(s.state.error.as_ref().map(PollError::kind), Some("timeout"));
        let hung_end = s.state.last_poll_at.unwrap();
        assert!(last_healthy < hung_end, "every healthy server was answered before the hung ones timed out");
    }
}

#[test]
fn a_failed_poll_keeps_the_last_good_status_as_stale() {
    let sim = common::sim(3);
    let cluster = common::cluster(&sim, common::settings());
    let id = sim.ids()[0].clone();
    let first = cluster.blocking().refresh(&id).unwrap();
    assert_eq!(first.state.health, Health::Online);
    assert!(!first.state.is_stale());
    sim.set_fault(&id, Some(Fault::Malformed));
    let second = cluster.blocking().refresh(&id).unwrap();
    assert_eq!(second.state.health, Health::Error);
    assert!(second.state.is_stale());
    assert_eq!(second.state.status.as_ref().map(|s| s.channels.len()), Some(4), "last good status kept");
    assert!(second.state.status_age(cluster.now()).is_some());
    sim.set_fault(&id, None);
    let third = cluster.blocking().refresh(&id).unwrap();
    assert_eq!(third.state.health, Health::Online);
    assert!(!third.state.is_stale());
}

#[test]
fn reload_keeps_the_state_of_servers_that_remain() {
    let sim = common::sim(6);
    let servers = sim.servers();
    let cluster = common::cluster(&sim, common::settings());
    cluster.blocking().poll_all().unwrap();
    let kept = servers[0].id.clone();
    let before = cluster.server(kept.as_str()).unwrap();
    assert_eq!(before.state.health, Health::Online);
    // Drop the last server, keep the rest.
    let summary = cluster.reload(servers[..5].to_vec()).unwrap();
    assert_eq!(summary.kept, 5);
    assert_eq!(summary.removed, vec![servers[5].id.clone()]);
    let after = cluster.server(kept.as_str()).unwrap();
    assert_eq!(after.state, before.state, "state survives the reload untouched");
    assert!(matches!(cluster.server(servers[5].id.as_str()), Err(ClientError::ServerNotFound(_))));
    // A duplicate id is refused and changes nothing.
    let mut bad = servers.clone();
    bad.push(servers[1].clone());
    assert!(matches!(cluster.reload(bad), Err(ClientError::Config { .. })));
    assert_eq!(cluster.len(), 5);
    // Adding the server back: it starts unknown and is polled at once.
    let summary = cluster.reload(servers.clone()).unwrap();
    assert_eq!(summary.added, vec![servers[5].id.clone()]);
    let id = ServerId::from(servers[5].id.as_str());
    let back = cluster.blocking().refresh(id.as_str()).unwrap();
    assert_eq!(back.state.health, Health::Online);
}

#[test]
fn unknown_servers_are_refused_without_a_request() {
    let sim = common::sim(2);
    let cluster = common::cluster(&sim, common::settings());
    assert!(matches!(cluster.blocking().refresh("nope"), Err(ClientError::ServerNotFound(_))));
    assert!(matches!(cluster.blocking().restart("../status", 1), Err(ClientError::ServerNotFound(_))));
}

#[test]
fn no_tokio_in_the_dependency_tree() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "-p", "ipvtl-client", "-e", "normal,build", "--prefix", "none", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.lines().any(|l| l.starts_with("isahc ")), "the tree lists isahc, so the check is real");
    let tokio: Vec<&str> = tree.lines().filter(|l| l.starts_with("tokio")).collect();
    assert!(tokio.is_empty(), "tokio found: {tokio:?}");
}

#[test]
fn poll_all_during_a_sweep_waits_for_the_polls_under_way() {
    let sim = common::sim(8);
    let slow = sim.ids()[0].clone();
    sim.set_fault(&slow, Some(Fault::Slow(Duration::from_millis(700))));
    let cluster = common::cluster(&sim, common::settings());
    let first = {
        let c = cluster.clone();
        std::thread::spawn(move || c.blocking().poll_all().unwrap())
    };
    // Every fast server has answered; the slow one is still under way.
    std::thread::sleep(Duration::from_millis(250));
    let second = cluster.blocking().poll_all().unwrap();
    let seen = by_id(&second.servers);
    assert_eq!(seen[&slow].state.health, Health::Online, "the second sweep waited for the slow answer");
    assert_eq!(sim.record(&slow).unwrap().status_requests, 1, "and did not send it a second request");
    assert_eq!(by_id(&first.join().unwrap().servers)[&slow].state.health, Health::Online);
}

#[test]
fn a_subscriber_that_never_reads_loses_events_but_never_slows_polling() {
    let sim = common::sim(30);
    let cluster = common::cluster(&sim, common::settings());
    let stuck = cluster.blocking().subscribe_with_buffer(4);
    // A second subscriber with an ample buffer, read only at the end: it
    // is the record of every event the cluster sent to both.
    let record = cluster.blocking().subscribe_with_buffer(100_000);
    // Three sweeps while the stuck subscriber's buffer is full. Were the
    // driver to wait for it, they would never end: a watchdog of a minute
    // turns that hang into a failure (this is not a speed limit).
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let sweeper = cluster.clone();
    std::thread::spawn(move || {
        for _ in 0..3 {
            let fleet = sweeper.blocking().poll_all().unwrap();
            assert!(fleet.servers.iter().all(|s| s.state.health == Health::Online));
        }
        done_tx.send(()).unwrap();
    });
    done_rx.recv_timeout(Duration::from_secs(60)).expect("the sweeps ended despite the stuck subscriber");
    // Background sweeps are off: no event arrives after the last sweep.
    let events: Vec<_> = std::iter::from_fn(|| record.try_recv()).collect();
    let sweeps = events.iter().filter(|e| matches!(e, ipvtl_client::Event::SweepFinished { .. })).count();
    assert_eq!(sweeps, 3, "the reading subscriber saw every sweep end");
    assert_eq!(record.dropped(), 0);
    let kept: Vec<_> = std::iter::from_fn(|| stuck.try_recv()).collect();
    assert_eq!(kept.len(), 4, "the stuck subscriber holds exactly its buffer");
    assert_eq!(stuck.dropped() as usize, events.len() - 4, "and every other event is counted as dropped");
    assert_eq!(
        kept.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
        events[..4].iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
        "it kept the oldest"
    );
}
