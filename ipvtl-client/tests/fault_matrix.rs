//! The fault matrix: every fault the simulator has, alone and all at once
//! in a fleet of 300 servers over 50 sweeps, against what SPEC §10 and the
//! README promise: connect, timeout and io failures make a server
//! `offline`, http, malformed and too-large answers make it `error`; a slow
//! answer within the timeout, a stuck `stopping`, refused commands and
//! stalled channels leave it `online` (stalls flagged); the last good
//! status is kept, with its age; dead servers are backed off and asked
//! every sweep again once they answer; no sweep outlasts the timeout and
//! its grace; descriptors and memory do not grow from sweep to sweep.
//!
//! The two tests read process-wide figures (descriptors, RSS) and each
//! runs a fleet of 300 in this process, so they take turns.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipvtl_client::core::{PollError, PollerConfig};
use ipvtl_client::{ChannelState, ClientError, Event, Health, ServerSnapshot, Settings};
use ipvtl_sim::{Fault, SimFleet};

static TAKE_TURNS: Mutex<()> = Mutex::new(());

const SERVERS: usize = 300;
const SWEEPS: u64 = 50;
/// Time from the start of one sweep to the start of the next, at least.
const PACE: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_millis(800);
const SLOW: Duration = Duration::from_millis(100);
const FLAP: Duration = Duration::from_millis(700);

/// Health and error kind of a server now.
fn class(s: &ServerSnapshot) -> (Health, Option<&'static str>) {
    (s.state.health, s.state.error.as_ref().map(PollError::kind))
}

fn by_id(servers: &[ServerSnapshot]) -> BTreeMap<String, &ServerSnapshot> {
    servers.iter().map(|s| (s.config.id.to_string(), s)).collect()
}

/// The ids of the running channels in a server's last good status.
fn running(s: &ServerSnapshot) -> BTreeSet<u32> {
    let channels = s.state.status.iter().flat_map(|st| &st.channels);
    channels.filter(|c| c.state == ChannelState::Running).map(|c| c.id.get()).collect()
}

fn stalled(s: &ServerSnapshot) -> BTreeSet<u32> {
    s.state.stalled.keys().map(|c| c.get()).collect()
}

/// What a fault must look like from the client once hysteresis has passed.
fn expected(fault: Fault) -> (Health, Option<&'static str>) {
    match fault {
        Fault::Down => (Health::Offline, Some("connect")),
        Fault::Hang => (Health::Offline, Some("timeout")),
        Fault::Reset => (Health::Offline, Some("io")),
        Fault::Http500 => (Health::Error, Some("http")),
        Fault::Malformed => (Health::Error, Some("malformed")),
        Fault::Oversized => (Health::Error, Some("too_large")),
        // Flapping starts down; the matrix test watches both phases.
        Fault::Flapping { .. } => (Health::Offline, Some("connect")),
        _ => (Health::Online, None),
    }
}

fn every_fault() -> [Fault; 11] {
    [
        Fault::Down,
        Fault::Hang,
        Fault::Http500,
        Fault::Malformed,
        Fault::Oversized,
        Fault::Slow(SLOW),
        Fault::Reset,
        Fault::Flapping { period: Duration::from_secs(5) },
        Fault::StuckStopping,
        Fault::RejectCommands,
        Fault::Stalled,
    ]
}

fn sim() -> SimFleet {
    let sim = common::sim(SERVERS);
    assert_eq!(sim.len(), SERVERS);
    sim
}

#[test]
fn each_fault_alone_is_classified_and_leaves_the_others_online() {
    let _turn = TAKE_TURNS.lock().unwrap_or_else(|p| p.into_inner());
    let sim = sim();
    let ids = sim.ids();
    let settings = Settings { timeout: TIMEOUT, stop_timeout: Duration::from_secs(1), ..common::settings() };
    assert_eq!(settings.offline_after, 1, "one sweep per fault: no hysteresis here");
    let cluster = common::cluster(&sim, settings);
    let first = cluster.blocking().poll_all().unwrap();
    assert!(first.servers.iter().all(|s| class(s) == (Health::Online, None)), "a healthy fleet to start from");

    for (k, fault) in every_fault().into_iter().enumerate() {
        // A group of its own per fault: nobody carries a backoff over.
        let group = &ids[k * 10..k * 10 + 10];
        for id in group {
            assert!(sim.set_fault(id, Some(fault)));
        }
        let fleet = cluster.blocking().poll_all().unwrap();
        let seen = by_id(&fleet.servers);
        let mut wrong = Vec::new();
        for (id, s) in &seen {
            let want = if group.contains(id) { expected(fault) } else { (Health::Online, None) };
            if class(s) != want {
                wrong.push(format!("{id}: want {want:?}, got {:?} ({:?})", class(s), s.state.error));
            }
            if !group.contains(id) || fault != Fault::Stalled {
                assert!(s.state.stalled.is_empty(), "{fault}: {id} has no stalled channel: {:?}", s.state.stalled);
            }
        }
        assert!(wrong.is_empty(), "{fault} alone:\n{}", wrong.join("\n"));
        match fault {
            Fault::Stalled => {
                for id in group {
                    let s = seen[id];
                    assert_eq!(stalled(s), running(s), "{id}: every running channel is flagged, no other");
                }
                assert!(group.iter().any(|id| !seen[id].state.stalled.is_empty()), "some channel ran to stall");
            }
            Fault::StuckStopping => {
                let (id, ch) = group_channel(&seen, group);
                let err = cluster.blocking().stop(id, ch).expect_err("a stop that never ends fails");
                assert!(matches!(err, ClientError::ActionFailed(_)), "{err}");
                assert_eq!(sim.channel_state(id, ch), Some(ChannelState::Stopping));
                assert_eq!(class(&cluster.blocking().refresh(id).unwrap()), (Health::Online, None));
            }
            Fault::RejectCommands => {
                let (id, ch) = group_channel(&seen, group);
                let err = cluster.blocking().restart(id, ch).expect_err("a refused stop fails the restart");
                assert!(matches!(err, ClientError::ActionFailed(_)), "{err}");
                assert_eq!(sim.channel_state(id, ch), Some(ChannelState::Running), "and nothing was started");
                assert_eq!(class(&cluster.blocking().refresh(id).unwrap()), (Health::Online, None));
            }
            _ => {}
        }
        for id in group {
            sim.set_fault(id, None);
        }
    }
    // Healed, every server answers the next sweep (one failure is no
    // backoff) and is online again.
    let fleet = cluster.blocking().poll_all().unwrap();
    let left: Vec<_> = fleet.servers.iter().filter(|s| class(s) != (Health::Online, None)).collect();
    assert!(left.is_empty(), "{} not back online: {:?}", left.len(), left.first().map(|s| &s.state));
}

/// A server of `group` and one of its running channels.
fn group_channel<'a>(seen: &BTreeMap<String, &ServerSnapshot>, group: &'a [String]) -> (&'a str, u32) {
    group
        .iter()
        .find_map(|id| running(seen[id]).first().map(|&ch| (id.as_str(), ch)))
        .expect("a running channel in the group")
}

/// A group of servers of the mixed fleet.
struct Group {
    name: &'static str,
    range: Range<usize>,
    /// The fault it has from the start.
    fault: Option<Fault>,
}

/// Descriptors open in this process, and its resident memory in KiB.
fn resources() -> (usize, u64) {
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (fds, rss)
}

#[test]
fn fifty_sweeps_of_mixed_faults_at_300_servers() {
    let _turn = TAKE_TURNS.lock().unwrap_or_else(|p| p.into_inner());
    let sim = sim();
    let ids = sim.ids();
    let groups = [
        Group { name: "down", range: 0..20, fault: Some(Fault::Down) },
        Group { name: "hang", range: 20..40, fault: Some(Fault::Hang) },
        Group { name: "http500", range: 40..60, fault: Some(Fault::Http500) },
        Group { name: "malformed", range: 60..80, fault: Some(Fault::Malformed) },
        Group { name: "oversized", range: 80..100, fault: Some(Fault::Oversized) },
        Group { name: "slow", range: 100..120, fault: Some(Fault::Slow(SLOW)) },
        Group { name: "reset", range: 120..140, fault: Some(Fault::Reset) },
        Group { name: "flapping", range: 140..160, fault: Some(Fault::Flapping { period: FLAP }) },
        Group { name: "stuck_stopping", range: 160..170, fault: Some(Fault::StuckStopping) },
        Group { name: "reject_commands", range: 170..180, fault: Some(Fault::RejectCommands) },
        Group { name: "stalled", range: 180..200, fault: Some(Fault::Stalled) },
        // Healthy for ten sweeps, then down for good.
        Group { name: "turns_down", range: 200..210, fault: None },
        // Resetting every connection for thirty sweeps, then healthy (a
        // reset, unlike a refused connection, shows in the request log).
        Group { name: "heals", range: 210..220, fault: Some(Fault::Reset) },
        Group { name: "healthy", range: 220..300, fault: None },
    ];
    let group = |name: &str| -> &[String] {
        let g = groups.iter().find(|g| g.name == name).expect("a group of that name");
        &ids[g.range.clone()]
    };
    for g in &groups {
        for id in &ids[g.range.clone()] {
            sim.set_fault(id, g.fault);
        }
    }
    let settings = Settings {
        interval: PACE,
        timeout: TIMEOUT,
        concurrency: 64,
        // The default hysteresis: two failures in a row.
        offline_after: 2,
        // Eight sweeps' worth: a dead server is asked at least every 8th.
        backoff_max: PACE * 8,
        ..common::settings()
    };
    let cluster = common::cluster(&sim, settings);
    let events = cluster.blocking().subscribe_with_buffer(50_000);

    let mut sweep_durations = Vec::new();
    let mut flapping_seen: BTreeMap<(Health, Option<&str>), usize> = BTreeMap::new();
    let mut at_10 = None;
    let mut requests_before_heal = BTreeMap::new();
    let mut requests_at_40 = BTreeMap::new();
    let mut turned_down_at = None;
    // Sweeps in which each server was polled, as the client saw it (a
    // refused connection leaves no trace in the simulator's log).
    let mut polled: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_poll: BTreeMap<String, Option<ipvtl_client::core::Instant>> = BTreeMap::new();
    let started = Instant::now();
    for sweep in 1..=SWEEPS {
        let next = Instant::now() + PACE;
        let fleet = cluster.blocking().poll_all().unwrap();
        while let Some(e) = events.try_recv() {
            if let Event::SweepFinished { duration, .. } = e {
                sweep_durations.push(duration);
            }
        }
        let seen = by_id(&fleet.servers);
        let now = cluster.now();
        for (id, s) in &seen {
            if last_poll.insert(id.clone(), s.state.last_poll_at) != Some(s.state.last_poll_at) {
                *polled.entry(id.clone()).or_default() += 1;
            }
        }
        let mut wrong = Vec::new();
        for g in &groups {
            for id in &ids[g.range.clone()] {
                let s = seen[id];
                let got = class(s);
                let ok = match g.name {
                    "flapping" => {
                        *flapping_seen.entry(got).or_default() += 1;
                        matches!(got, (Health::Online, None))
                            || matches!(got, (Health::Offline | Health::Unknown, Some("connect" | "io")))
                            || matches!(got, (Health::Online, Some("connect" | "io")))
                    }
                    "turns_down" if sweep > 10 => {
                        // Down after ten good sweeps: the first failure is
                        // within the hysteresis, the second makes it offline;
                        // either way the last good status stays, stale.
                        let health = if sweep == 11 { Health::Online } else { Health::Offline };
                        let stale =
                            s.state.is_stale() && s.state.status.as_ref().is_some_and(|st| st.channels.len() == 4);
                        stale && matches!(got, (h, Some("connect" | "io")) if h == health)
                    }
                    "heals" if sweep > 30 => {
                        // Asked again once its backoff runs out, then online.
                        matches!(got, (Health::Online, None) | (Health::Offline, Some("io")))
                    }
                    _ => {
                        let want = g.fault.map_or((Health::Online, None), expected);
                        // Before the second failure a failing server is
                        // still unknown (it has never answered).
                        let want = if sweep == 1 && want.1.is_some() { (Health::Unknown, want.1) } else { want };
                        got == want
                    }
                };
                if !ok {
                    wrong.push(format!("{} {id}: {got:?} {:?}", g.name, s.state.error));
                }
                let stall_ok = match g.name {
                    "stalled" => stalled(s) == running(s),
                    "flapping" | "turns_down" | "heals" => true,
                    _ => s.state.stalled.is_empty(),
                };
                if !stall_ok {
                    wrong.push(format!("{} {id}: stalled {:?}, running {:?}", g.name, s.state.stalled, running(s)));
                }
            }
        }
        assert!(wrong.is_empty(), "sweep {sweep}:\n{}", wrong.join("\n"));

        match sweep {
            10 => {
                at_10 = Some(resources());
                turned_down_at = Some(now);
                for id in group("turns_down") {
                    sim.set_fault(id, Some(Fault::Down));
                }
            }
            30 => {
                for id in group("heals") {
                    requests_before_heal.insert(id.clone(), sim.record(id).unwrap().status_requests);
                    sim.set_fault(id, None);
                }
            }
            40 => {
                for id in group("heals") {
                    assert_eq!(class(seen[id]), (Health::Online, None), "{id} answered within ten sweeps of healing");
                    requests_at_40.insert(id.clone(), sim.record(id).unwrap().status_requests);
                }
            }
            _ => {}
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let at_50 = resources();
    let elapsed = started.elapsed();

    // Every sweep ended within the timeout plus the poller's grace (the
    // slack only absorbs a busy machine): a hung server holds its own slot,
    // never the sweep. Twenty hung servers one after the other would take
    // 16 s.
    assert_eq!(sweep_durations.len(), SWEEPS as usize, "one SweepFinished per sweep");
    let cap = TIMEOUT + PollerConfig::default().grace + Duration::from_secs(5);
    let longest = sweep_durations.iter().max().copied().unwrap_or_default();
    assert!(longest <= cap, "the longest sweep took {longest:?}, the cap is {cap:?}: {sweep_durations:?}");

    // Flapping servers were seen up and seen down, and never as `error`.
    let up = flapping_seen.get(&(Health::Online, None)).copied().unwrap_or(0);
    let down = flapping_seen.iter().filter(|((h, _), _)| *h == Health::Offline).map(|(_, n)| n).sum::<usize>();
    assert!(up > 0 && down > 0, "flapping seen up {up} and down {down} times: {flapping_seen:?}");

    // The last good status of a server that went down is kept, stale, and
    // its age counts from before it went down.
    let end = cluster.snapshot();
    let seen = by_id(&end.servers);
    let now = cluster.now();
    let since_down = now.saturating_since(turned_down_at.expect("sweep 10 ran"));
    for id in group("turns_down") {
        let s = &seen[id].state;
        assert_eq!(s.health, Health::Offline, "{id}");
        assert!(s.is_stale(), "{id}");
        assert!(s.status.is_some(), "{id} keeps its last good status");
        let age = s.status_age(now).expect("it had a good status");
        assert!(age >= since_down, "{id}: status age {age:?}, down for {since_down:?}");
    }

    // Stalled servers stayed online with their stalls flagged (checked every
    // sweep above); some had a running channel to stall.
    let flagged = group("stalled").iter().filter(|id| !seen[*id].state.stalled.is_empty()).count();
    assert!(flagged > 0, "no stalled server had a channel flagged");

    // Backoff: over the same fifty sweeps a live server was asked fifty
    // times, a dead one far fewer (but still now and then), and a healed
    // one every sweep again once it had answered.
    let asked = |id: &String| sim.record(id).unwrap().status_requests;
    for id in group("healthy").iter().chain(group("slow")).chain(group("stalled")) {
        assert_eq!(asked(id), SWEEPS, "{id}: a live server is asked once per sweep");
        assert_eq!(polled[id], SWEEPS, "{id}");
    }
    for name in ["hang", "http500", "malformed", "oversized", "reset"] {
        for id in group(name) {
            let n = asked(id);
            assert!((4..=SWEEPS / 3).contains(&n), "{name} {id}: a dead server was asked {n} times in {SWEEPS} sweeps");
        }
    }
    for id in group("down") {
        // Refused connections: counted on the client's side.
        let n = polled[id];
        assert!((4..=SWEEPS / 3).contains(&n), "{id}: a down server was polled in {n} of {SWEEPS} sweeps");
    }
    for id in group("heals") {
        let before = requests_before_heal[id];
        assert!(before <= 30 / 3, "{id}: asked {before} times in 30 sweeps while dead");
        assert_eq!(asked(id) - requests_at_40[id], 10, "{id}: asked in every one of sweeps 41..=50");
    }

    // Nothing grows from sweep to sweep: descriptors (this process holds
    // both ends of every connection) and resident memory.
    let ((fds_10, rss_10), (fds_50, rss_50)) = (at_10.expect("sweep 10 ran"), at_50);
    eprintln!(
        "{SWEEPS} sweeps in {elapsed:?}, longest {longest:?}; fds {fds_10} -> {fds_50}, \
         RSS {rss_10} -> {rss_50} KiB; flapping seen {flapping_seen:?}"
    );
    // The transport keeps one idle connection per server that answers (two
    // descriptors here, both ends): the servers that heal after sweep 10
    // and the flapping ones (up at one end, down at the other) may each add
    // theirs. Anything beyond is a leak.
    let may_join = group("heals").len() + group("flapping").len();
    assert!(
        fds_50 <= fds_10 + 2 * may_join + 16,
        "descriptors grew from {fds_10} after sweep 10 to {fds_50} after sweep 50 ({may_join} servers may have joined)"
    );
    assert!(rss_50 <= rss_10 + 30 * 1024, "RSS grew from {rss_10} KiB after sweep 10 to {rss_50} KiB after sweep 50");
}
