//! The IPVTL API as a client sees it: status shape, channel lifecycle,
//! refusals, keep-alive.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{addr, connect, get, send, uptimes, wait_until};
use ipvtl_core::ChannelState;
use ipvtl_sim::{SimConfig, SimFleet};

#[test]
fn status_has_the_ipvtl_shape_and_uptime_advances() {
    let fleet = SimFleet::start(SimConfig::new(3).with_initial_running(1.0).with_channels(5).with_cores(6)).unwrap();
    let server = addr(&fleet.servers()[1]);
    let first = get(server, "/status").unwrap();
    assert_eq!(first.code, 200);
    assert_eq!(first.header("content-type"), Some("application/json"));
    let v = first.json();
    let channels = v["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 5);
    for c in channels {
        assert_eq!(c["state"], "running");
        let text = c["status"].as_str().unwrap();
        let stats = ipvtl_core::parse_stats(text).unwrap_or_else(|| panic!("unparsable status {text:?}"));
        assert!((20.0..=60.0).contains(&stats.fps), "{text}");
        assert!((1500.0..=7000.0).contains(&stats.kbps), "{text}");
    }
    let cpu = v["cpu"].as_array().unwrap();
    assert_eq!(cpu.len(), 6);
    assert!(cpu.iter().all(|c| c.as_u64().is_some_and(|p| p <= 100)), "{cpu:?}");
    // The core's parser accepts it as a whole.
    assert!(ipvtl_core::parse_status(&first.body).is_ok());

    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(2100));
    let before = uptimes(&v);
    let after = uptimes(&get(server, "/status").unwrap().json());
    let waited = t0.elapsed().as_secs() + 2;
    for (b, a) in before.iter().zip(&after) {
        let (b, a) = (b.unwrap(), a.unwrap());
        assert!(a >= b + 2 && a <= b + waited, "uptime went from {b} to {a}");
    }
}

#[test]
fn idle_channels_have_empty_status() {
    let fleet = SimFleet::start(SimConfig::new(1).with_initial_running(0.0)).unwrap();
    let v = get(addr(&fleet.servers()[0]), "/status").unwrap().json();
    for c in v["channels"].as_array().unwrap() {
        assert_eq!(c["state"], "idle");
        assert_eq!(c["status"], "");
    }
}

#[test]
fn start_then_stop_goes_idle_running_stopping_idle() {
    let delay = Duration::from_millis(1500);
    let stopping = Duration::from_millis(1500);
    let cfg = SimConfig::new(2).with_initial_running(0.0).with_start_delay(delay).with_stopping_time(stopping);
    let fleet = SimFleet::start(cfg).unwrap();
    let s = &fleet.servers()[0];
    let (a, id) = (addr(s), s.id.as_str());
    let state_over_http = |ch: usize| -> String {
        let v = get(a, "/status").unwrap().json();
        v["channels"][ch - 1]["state"].as_str().unwrap().to_string()
    };

    let t0 = Instant::now();
    let r = get(a, "/channel2?start").unwrap();
    assert_eq!(r.code, 200);
    let early = fleet.channel_state(id, 2);
    if t0.elapsed() < delay {
        assert_eq!(early, Some(ChannelState::Idle), "running before the start delay");
    }
    assert!(wait_until(Duration::from_secs(10), || state_over_http(2) == "running"));
    assert!(t0.elapsed() >= delay, "running after {:?}", t0.elapsed());
    // Uptime restarted from zero.
    let up = uptimes(&get(a, "/status").unwrap().json())[1].unwrap();
    assert!(up <= t0.elapsed().as_secs(), "uptime {up}");
    // The other channels did not move.
    assert_eq!(fleet.channel_state(id, 1), Some(ChannelState::Idle));

    let t1 = Instant::now();
    assert_eq!(get(a, "/channel2?stop").unwrap().code, 200);
    let seen = state_over_http(2);
    if t1.elapsed() < stopping {
        assert_eq!(seen, "stopping");
    }
    assert!(wait_until(Duration::from_secs(10), || state_over_http(2) == "idle"));
    assert!(t1.elapsed() >= stopping, "idle after {:?}", t1.elapsed());
    assert_eq!(fleet.channel_state(id, 2), Some(ChannelState::Idle));
    // The other server was not touched.
    assert_eq!(fleet.channel_state(fleet.servers()[1].id.as_str(), 2), Some(ChannelState::Idle));
}

#[test]
fn unknown_channels_paths_and_methods_are_refused() {
    let fleet = SimFleet::start(SimConfig::new(1)).unwrap();
    let a = addr(&fleet.servers()[0]);
    for path in
        ["/channel0?start", "/channel5?stop", "/channelx?start", "/channel?stop", "/channel-1?stop", "/nope", "/"]
    {
        assert_eq!(get(a, path).unwrap().code, 404, "{path}");
    }
    assert_eq!(get(a, "/channel1?reboot").unwrap().code, 400);
    let mut s = connect(a, Duration::from_secs(10)).unwrap();
    let r = send(&mut s, "POST", "/status", "", true).unwrap();
    assert_eq!(r.code, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    assert_eq!(fleet.channel_state(fleet.servers()[0].id.as_str(), 0), None);
}

#[test]
fn keep_alive_serves_many_requests_and_connection_close_closes() {
    let fleet = SimFleet::start(SimConfig::new(1)).unwrap();
    let a = addr(&fleet.servers()[0]);
    let mut s = connect(a, Duration::from_secs(10)).unwrap();
    for _ in 0..5 {
        let r = send(&mut s, "GET", "/status", "", false).unwrap();
        assert_eq!(r.code, 200);
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
    assert_eq!(send(&mut s, "GET", "/channel1?start", "", false).unwrap().code, 200);
    let r = send(&mut s, "GET", "/status", "", true).unwrap();
    assert_eq!(r.code, 200);
    assert_eq!(r.header("connection"), Some("close"));
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap(), 0, "server should close after Connection: close");
    let rec = fleet.record(fleet.servers()[0].id.as_str()).unwrap();
    assert_eq!((rec.total_requests, rec.status_requests), (7, 6));
}

#[test]
fn garbage_requests_get_400_and_a_close() {
    use std::io::Write;
    let fleet = SimFleet::start(SimConfig::new(1)).unwrap();
    let mut s = connect(addr(&fleet.servers()[0]), Duration::from_secs(10)).unwrap();
    s.write_all(b"HELLO\r\n\r\n").unwrap();
    let r = common::read_reply(&mut s).unwrap();
    assert_eq!(r.code, 400);
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap(), 0);
}

#[test]
fn distinct_ports_addressing() {
    let cfg = SimConfig::new(5).with_addressing(ipvtl_sim::Addressing::DistinctPorts);
    let fleet = SimFleet::start(cfg).unwrap();
    let servers = fleet.servers();
    let mut ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 5);
    for s in &servers {
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!(get(addr(s), "/status").unwrap().code, 200);
        assert_eq!(fleet.record(s.id.as_str()).unwrap().status_requests, 1);
    }
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let fleet = SimFleet::start(SimConfig::new(1).with_idle_timeout(Duration::from_millis(300))).unwrap();
    let mut s = connect(addr(&fleet.servers()[0]), Duration::from_secs(10)).unwrap();
    assert_eq!(send(&mut s, "GET", "/status", "", false).unwrap().code, 200);
    let t0 = Instant::now();
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap(), 0, "the server closes an idle connection");
    assert!(t0.elapsed() >= Duration::from_millis(250), "closed after {:?}", t0.elapsed());
}
