//! Records of what clients sent, from Rust and over the control endpoint.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{addr, get, post};
use ipvtl_sim::{Action, Fault, SimConfig, SimFleet};
use serde_json::json;

#[test]
fn commands_are_recorded_in_order() {
    let fleet = SimFleet::start(SimConfig::new(2)).unwrap();
    let s = fleet.servers()[0].clone();
    let a = addr(&s);
    for path in ["/channel2?stop", "/status", "/channel2?start", "/channel1?stop", "/channel9?stop", "/nope"] {
        get(a, path).unwrap();
    }
    let rec = fleet.record(s.id.as_str()).unwrap();
    let cmds: Vec<(u32, Action)> = rec.commands.iter().map(|c| (c.channel, c.action)).collect();
    assert_eq!(cmds, [(2, Action::Stop), (2, Action::Start), (1, Action::Stop)]);
    assert!(rec.commands.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!((rec.total_requests, rec.status_requests), (6, 1));
    assert_eq!(rec.request_times.len(), 6);
    // The other server saw nothing.
    assert_eq!(fleet.record(fleet.servers()[1].id.as_str()).unwrap().total_requests, 0);
    assert!(fleet.record("sim-9999").is_none());

    fleet.reset_records();
    let rec = fleet.record(s.id.as_str()).unwrap();
    assert_eq!((rec.total_requests, rec.commands.len(), rec.max_concurrent), (0, 0, 0));
}

#[test]
fn concurrency_is_recorded_per_server_and_fleet_wide() {
    let fleet = SimFleet::start(SimConfig::new(3)).unwrap();
    let servers = fleet.servers();
    let slow = Fault::Slow(Duration::from_millis(1500));
    fleet.set_fault(servers[0].id.as_str(), Some(slow));
    fleet.set_fault(servers[1].id.as_str(), Some(slow));
    let barrier = Arc::new(Barrier::new(6));
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let (a, barrier) = (addr(&servers[i % 2]), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                get(a, "/status").map(|r| r.code)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), 200);
    }
    assert_eq!(fleet.record(servers[0].id.as_str()).unwrap().max_concurrent, 3);
    assert_eq!(fleet.record(servers[1].id.as_str()).unwrap().max_concurrent, 3);
    assert_eq!(fleet.record(servers[2].id.as_str()).unwrap().max_concurrent, 0);
    assert_eq!(fleet.max_concurrent_total(), 6);
    fleet.reset_records();
    assert_eq!(fleet.max_concurrent_total(), 0);
}

#[test]
fn control_endpoint_serves_servers_records_and_faults() {
    let fleet = SimFleet::start(SimConfig::new(10)).unwrap();
    let ctl = fleet.control_addr();
    assert!(ctl.ip().is_loopback());

    let r = get(ctl, "/servers").unwrap();
    assert_eq!(r.code, 200);
    let listed = ipvtl_core::parse_servers(&r.text()).unwrap();
    assert_eq!(listed, fleet.servers());

    let target = fleet.servers()[3].clone();
    let body = json!({"ids": [target.id.as_str()], "fault": "http500"}).to_string();
    let r = post(ctl, "/faults", &body).unwrap();
    assert_eq!(r.code, 200, "{}", r.text());
    assert_eq!(fleet.fault(target.id.as_str()), Some(Fault::Http500));
    assert_eq!(get(addr(&target), "/status").unwrap().code, 500);

    let r = post(ctl, "/faults", r#"{"fraction":0.2,"fault":"down"}"#).unwrap();
    assert_eq!(r.code, 200, "{}", r.text());
    let down: Vec<String> =
        r.json()["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(down.len(), 2);
    for id in &down {
        assert_eq!(fleet.fault(id), Some(Fault::Down));
        assert!(get(fleet.addr(id).unwrap(), "/status").is_err(), "{id} should be down");
    }
    assert_eq!(get(ctl, "/faults").unwrap().json()["faults"].as_object().unwrap().len(), 3);

    assert_eq!(post(ctl, "/faults", r#"{"ids":["nobody"],"fault":"hang"}"#).unwrap().code, 404);
    assert_eq!(post(ctl, "/faults", r#"{"ids":["sim-0001"],"fault":"boom"}"#).unwrap().code, 400);

    let r = get(ctl, &format!("/records/{}", target.id)).unwrap();
    assert_eq!(r.code, 200);
    let rec = r.json();
    assert_eq!(rec["total_requests"], 1);
    assert_eq!(rec["request_times_ms"].as_array().unwrap().len(), 1);
    let all = get(ctl, "/records").unwrap().json();
    assert_eq!(all["servers"].as_object().unwrap().len(), 10);
    assert_eq!(all["servers"][target.id.as_str()]["total_requests"], 1);
    assert!(all["max_concurrent_total"].as_u64().unwrap() >= 1);

    assert_eq!(post(ctl, "/reset", "").unwrap().code, 200);
    assert_eq!(fleet.record(target.id.as_str()).unwrap().total_requests, 0);

    assert_eq!(post(ctl, "/faults", r#"{"fault":null}"#).unwrap().code, 200);
    assert!(fleet.faults().is_empty());
    for id in &down {
        assert_eq!(get(fleet.addr(id).unwrap(), "/status").unwrap().code, 200);
    }
    assert_eq!(get(ctl, "/nothing").unwrap().code, 404);
}
