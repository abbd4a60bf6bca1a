//! Many servers at once, and a clean shutdown.

mod common;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::Duration;

use common::{addr, get};
use ipvtl_sim::{Addressing, JsonForm, SimConfig, SimFleet};

fn all_answer(fleet: &SimFleet) {
    let servers = fleet.servers();
    assert_eq!(servers.len(), 2000);
    for s in &servers {
        let r = get(addr(s), "/status").unwrap_or_else(|e| panic!("{} at {}:{}: {e}", s.id, s.host, s.port));
        assert_eq!(r.code, 200, "{}", s.id);
    }
    for s in &servers {
        assert_eq!(fleet.record(s.id.as_str()).unwrap().status_requests, 1, "{}", s.id);
    }
}

#[test]
fn two_thousand_servers_on_distinct_addresses_all_answer() {
    let fleet = SimFleet::start(SimConfig::new(2000)).unwrap();
    let servers = fleet.servers();
    assert_eq!(servers[0].id.as_str(), "sim-0001");
    assert_eq!(servers[1999].id.as_str(), "sim-2000");
    assert!(servers.iter().all(|s| s.port == servers[0].port));
    assert_eq!(servers[1999].host, "127.20.7.222");
    all_answer(&fleet);
}

#[test]
fn two_thousand_servers_on_distinct_ports_all_answer() {
    let fleet = SimFleet::start(SimConfig::new(2000).with_addressing(Addressing::DistinctPorts)).unwrap();
    all_answer(&fleet);
}

#[test]
fn servers_json_round_trips_through_the_core_parser() {
    let fleet = SimFleet::start(SimConfig::new(12)).unwrap();
    for form in [JsonForm::Array, JsonForm::Object] {
        let parsed = ipvtl_core::parse_servers(&fleet.servers_json(form)).unwrap();
        assert_eq!(parsed, fleet.servers());
    }
    let object: serde_json::Value = serde_json::from_str(&fleet.servers_json(JsonForm::Object)).unwrap();
    assert_eq!(object["servers"].as_array().unwrap().len(), 12);
    let tags: Vec<_> = fleet.servers().iter().map(|s| s.tags[1].clone()).collect();
    assert_eq!(&tags[..5], ["rack-a", "rack-b", "rack-c", "rack-d", "rack-a"]);
}

#[test]
fn shutdown_closes_every_listener() {
    let fleet = SimFleet::start(SimConfig::new(20)).unwrap();
    let addrs: Vec<_> = fleet.servers().iter().map(addr).collect();
    let control = fleet.control_addr();
    assert_eq!(get(addrs[0], "/status").unwrap().code, 200);
    fleet.shutdown();
    assert!(!fleet.is_running());
    for a in addrs.iter().chain([&control]) {
        let err = TcpStream::connect_timeout(a, Duration::from_secs(5)).expect_err("listener still open");
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    }
    // Records survive the shutdown; a second shutdown is harmless.
    assert_eq!(fleet.record("sim-0001").unwrap().status_requests, 1);
    fleet.shutdown();
}

#[test]
fn a_fixed_port_is_used_for_every_address() {
    // Find a port that is free on 127.20.0.x by letting the first fleet pick
    // it, then start a second fleet on the same port at other addresses.
    let probe = SimFleet::start(SimConfig::new(1)).unwrap();
    let port = probe.servers()[0].port;
    drop(probe);
    let fleet = SimFleet::start(SimConfig::new(3).with_port(port)).unwrap();
    assert!(fleet.servers().iter().all(|s| s.port == port));
    assert_eq!(get(addr(&fleet.servers()[2]), "/status").unwrap().code, 200);
}
