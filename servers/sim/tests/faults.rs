//! Each fault, observed as its raw effect on the wire.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{addr, connect, get, send, wait_until};
use ipvtl_core::ChannelState;
use ipvtl_sim::{Fault, SimConfig, SimFleet};

/// A fleet of four servers, all channels running; returns it with the
/// first server's id and address.
fn fleet() -> (SimFleet, String, SocketAddr) {
    let cfg = SimConfig::new(4).with_initial_running(1.0).with_stopping_time(Duration::from_millis(300));
    let fleet = SimFleet::start(cfg).unwrap();
    let s = fleet.servers()[0].clone();
    (fleet, s.id.as_str().to_string(), addr(&s))
}

fn refused(a: SocketAddr) -> bool {
    matches!(TcpStream::connect_timeout(&a, Duration::from_secs(5)), Err(e) if e.kind() == ErrorKind::ConnectionRefused)
}

#[test]
fn down_refuses_connections_and_comes_back() {
    let (fleet, id, a) = fleet();
    let other = addr(&fleet.servers()[1]);
    let mut kept = connect(a, Duration::from_secs(5)).unwrap();
    assert_eq!(send(&mut kept, "GET", "/status", "", false).unwrap().code, 200);

    assert!(fleet.set_fault(&id, Some(Fault::Down)));
    assert_eq!(fleet.fault(&id), Some(Fault::Down));
    assert!(refused(a), "a down server must refuse connections");
    // A connection opened before going down gets no answer.
    assert!(send(&mut kept, "GET", "/status", "", false).is_err());
    // Its neighbours are unaffected.
    assert_eq!(get(other, "/status").unwrap().code, 200);

    assert!(fleet.set_fault(&id, None));
    assert_eq!(get(a, "/status").unwrap().code, 200);
    assert!(!fleet.set_fault("sim-9999", None));
}

#[test]
fn hang_reads_the_request_and_never_answers() {
    let (fleet, id, a) = fleet();
    fleet.set_fault(&id, Some(Fault::Hang));
    let mut s = connect(a, Duration::from_millis(1500)).unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nHost: sim\r\n\r\n").unwrap();
    let mut buf = [0u8; 64];
    let err = s.read(&mut buf).expect_err("a hung server must not answer nor close");
    assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{err:?}");
    let rec = fleet.record(&id).unwrap();
    assert_eq!((rec.total_requests, rec.max_concurrent), (1, 1));
    // Commands are not carried out either.
    let mut c = connect(a, Duration::from_millis(500)).unwrap();
    c.write_all(b"GET /channel1?stop HTTP/1.1\r\n\r\n").unwrap();
    assert!(c.read(&mut buf).is_err());
    assert_eq!(fleet.channel_state(&id, 1), Some(ChannelState::Running));
}

#[test]
fn http500_answers_500_and_skips_commands() {
    let (fleet, id, a) = fleet();
    fleet.set_fault(&id, Some(Fault::Http500));
    assert_eq!(get(a, "/status").unwrap().code, 500);
    assert_eq!(get(a, "/channel1?stop").unwrap().code, 500);
    assert_eq!(fleet.channel_state(&id, 1), Some(ChannelState::Running));
}

#[test]
fn malformed_answers_200_with_invalid_json() {
    let (fleet, id, a) = fleet();
    fleet.set_fault(&id, Some(Fault::Malformed));
    let r = get(a, "/status").unwrap();
    assert_eq!(r.code, 200);
    assert!(!r.body.is_empty());
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err(), "{}", r.text());
    assert!(ipvtl_core::parse_status(&r.body).is_err());
}

#[test]
fn oversized_answers_more_than_two_mebibytes() {
    let (fleet, id, a) = fleet();
    fleet.set_fault(&id, Some(Fault::Oversized));
    let r = get(a, "/status").unwrap();
    assert_eq!(r.code, 200);
    assert!(r.body.len() > 2 * 1024 * 1024, "{} bytes", r.body.len());
    assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_ok());
}

#[test]
fn slow_answers_correctly_after_the_delay() {
    let (fleet, id, a) = fleet();
    fleet.set_fault(&id, Some(Fault::Slow(Duration::from_millis(800))));
    let t0 = Instant::now();
    let r = get(a, "/status").unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(800), "answered after {:?}", t0.elapsed());
    assert_eq!(r.code, 200);
    assert!(ipvtl_core::parse_status(&r.body).is_ok());
}

#[test]
fn reset_writes_a_partial_answer_then_resets() {
    let (fleet, id, a) = fleet();
    fleet.set_fault(&id, Some(Fault::Reset));
    let mut s = connect(a, Duration::from_secs(10)).unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nHost: sim\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let err = s.read_to_end(&mut got).expect_err("the connection must end in a reset, not a clean close");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err:?}");
    if !got.is_empty() {
        // What did arrive is a truncated answer.
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(got.len() < 4096);
    }
    assert_eq!(fleet.record(&id).unwrap().status_requests, 1);
}

#[test]
fn flapping_alternates_between_refused_and_answering() {
    let (fleet, id, a) = fleet();
    fleet.set_fault(&id, Some(Fault::Flapping { period: Duration::from_millis(300) }));
    // true: answered 200; false: connection refused. A request caught by a
    // phase change (connected while up, dropped when down) counts as neither.
    let mut seen = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(3000) {
        let up = match connect(a, Duration::from_secs(5)) {
            Ok(mut s) => send(&mut s, "GET", "/status", "", true).ok().map(|r| r.code == 200),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e:?}");
                Some(false)
            }
        };
        if let Some(up) = up {
            if seen.last() != Some(&up) {
                seen.push(up);
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    // About ten phases fit in three seconds; ask for a few.
    assert!(seen.len() >= 4, "only these phases were seen: {seen:?}");
    fleet.set_fault(&id, None);
    assert_eq!(get(a, "/status").unwrap().code, 200);
}

#[test]
fn stuck_stopping_accepts_stop_but_never_idles_until_cleared() {
    let (fleet, id, a) = fleet();
    fleet.set_fault(&id, Some(Fault::StuckStopping));
    assert_eq!(get(a, "/channel3?stop").unwrap().code, 200);
    std::thread::sleep(Duration::from_millis(1000)); // stopping time is 300 ms
    let v = get(a, "/status").unwrap().json();
    assert_eq!(v["channels"][2]["state"], "stopping");
    fleet.set_fault(&id, None);
    assert!(wait_until(Duration::from_secs(10), || fleet.channel_state(&id, 3) == Some(ChannelState::Idle)));
}

#[test]
fn reject_commands_refuses_commands_but_serves_status() {
    let (fleet, id, a) = fleet();
    fleet.set_fault(&id, Some(Fault::RejectCommands));
    assert_eq!(get(a, "/status").unwrap().code, 200);
    assert_eq!(get(a, "/channel1?stop").unwrap().code, 500);
    assert_eq!(get(a, "/channel2?start").unwrap().code, 500);
    assert_eq!(fleet.channel_state(&id, 1), Some(ChannelState::Running));
    // Still recorded: the client did send them.
    assert_eq!(fleet.record(&id).unwrap().commands.len(), 2);
}

#[test]
fn stalled_freezes_running_channels_until_each_is_restarted() {
    let (fleet, id, a) = fleet();
    let status = || {
        let v = get(a, "/status").unwrap().json();
        let channels = v["channels"].as_array().unwrap().clone();
        channels
            .iter()
            .map(|c| (c["state"].as_str().unwrap().to_string(), c["status"].as_str().unwrap().to_string()))
            .collect::<Vec<_>>()
    };
    fleet.set_fault(&id, Some(Fault::Stalled));
    let first = status();
    std::thread::sleep(Duration::from_millis(1_100));
    let later = status();
    assert_eq!(first, later, "a stalled channel's uptime does not move");
    for (state, text) in &later {
        assert_eq!(state, "running");
        assert!(text.ends_with(" 0fps@0Kbps"), "{text}");
    }
    // A restart cures channel 1; the others stay stalled while the fault is on.
    assert_eq!(get(a, "/channel1?stop").unwrap().code, 200);
    assert!(wait_until(Duration::from_secs(10), || fleet.channel_state(&id, 1) == Some(ChannelState::Idle)));
    assert_eq!(get(a, "/channel1?start").unwrap().code, 200);
    assert!(wait_until(Duration::from_secs(10), || fleet.channel_state(&id, 1) == Some(ChannelState::Running)));
    let cured = status();
    let stats = ipvtl_core::parse_stats(&cured[0].1).expect("a normal status text");
    assert!(stats.fps > 0.0 && stats.uptime_s < 60, "{stats:?}");
    assert_eq!(cured[1..], later[1..]);
    // Cleared: every channel reports frames again.
    fleet.set_fault(&id, None);
    let healed = status();
    assert!(healed.iter().all(|(_, t)| !t.ends_with(" 0fps@0Kbps")), "{healed:?}");
}

#[test]
fn fractions_are_deterministic_and_clearable() {
    let cfg = || SimConfig::new(40).with_seed(7);
    let (f1, f2) = (SimFleet::start(cfg()).unwrap(), SimFleet::start(cfg()).unwrap());
    let hung = f1.set_fault_fraction(Fault::Hang, 0.25);
    assert_eq!(hung.len(), 10);
    assert_eq!(hung, f2.set_fault_fraction(Fault::Hang, 0.25));
    let down = f1.set_fault_fraction(Fault::Down, 0.25);
    assert!(down.iter().all(|id| !hung.contains(id)), "a second fraction prefers healthy servers");
    assert_eq!(f1.faults().len(), 20);
    for id in &down {
        assert!(refused(f1.addr(id).unwrap()));
    }
    f1.clear_faults();
    assert!(f1.faults().is_empty());
    for id in &down {
        assert_eq!(get(f1.addr(id).unwrap(), "/status").unwrap().code, 200);
    }
}
