//! State shared by the fleet's tasks and its handle: servers, faults,
//! records.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ipvtl_core::{ServerConfig, ServerId};
use smol::channel::{Receiver, Sender};

use crate::config::{Addressing, JsonForm, SimConfig};
use crate::faults::Fault;
use crate::record::{InFlight, Recorder};
use crate::state::{hash, ServerModel};

/// Locks a mutex, ignoring poisoning: every critical section here leaves
/// its data consistent, and a panicking test thread must not take the
/// whole fleet down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One simulated server.
pub(crate) struct SimServer {
    pub config: ServerConfig,
    pub addr: SocketAddr,
    pub model: Mutex<ServerModel>,
    /// The fault and when it was set.
    pub fault: Mutex<Option<(Fault, Instant)>>,
    pub record: Mutex<Recorder>,
    pub in_flight: InFlight,
    /// Whether the listener is bound right now.
    pub listening: AtomicBool,
    /// Wakes the listener task after a fault change.
    pub wake_tx: Sender<()>,
    pub wake_rx: Receiver<()>,
}

impl SimServer {
    /// The fault in force, with when it was set.
    pub fn fault(&self) -> Option<(Fault, Instant)> {
        *lock(&self.fault)
    }

    /// Whether the server should refuse connections at `now`.
    pub fn is_down(&self, now: Instant) -> bool {
        self.fault().is_some_and(|(f, since)| f.is_down(since, now))
    }
}

/// Everything the fleet's tasks share.
pub(crate) struct Shared {
    pub config: SimConfig,
    pub epoch: Instant,
    pub servers: Vec<SimServer>,
    pub by_id: HashMap<String, usize>,
    pub in_flight: InFlight,
    /// Connections open to the servers, against the descriptor budget.
    pub conns: Conns,
    oversized: OnceLock<Vec<u8>>,
}

/// The servers' open connections and how many the process can hold: its
/// limit of open files, less one listener per server and a reserve for
/// the control endpoint. One process serving thousands of simulated
/// servers would otherwise run out of descriptors where a real fleet of
/// boxes does not (each keeps one connection from the client per box):
/// over the budget, a server answers with `Connection: close`, as a server
/// under descriptor pressure does, so that accepting (the control endpoint
/// included) keeps working.
#[derive(Debug)]
pub(crate) struct Conns {
    open: AtomicUsize,
    budget: usize,
}

/// Descriptors kept spare beside the listeners.
const SPARE_FDS: u64 = 256;

impl Conns {
    fn new(listeners: usize) -> Self {
        // Raising the soft limit to the hard one first (best effort).
        let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
        let budget = limit.saturating_sub(listeners as u64 + SPARE_FDS).max(64);
        Conns { open: AtomicUsize::new(0), budget: usize::try_from(budget).unwrap_or(usize::MAX) }
    }

    /// Counts a connection open until the guard drops.
    pub fn enter(&self) -> ConnGuard<'_> {
        self.open.fetch_add(1, Ordering::Relaxed);
        ConnGuard(&self.open)
    }

    /// True while the open connections are within the budget: answers may
    /// keep their connection open.
    pub fn may_keep(&self) -> bool {
        self.open.load(Ordering::Relaxed) <= self.budget
    }
}

/// One open connection (see [`Conns::enter`]).
pub(crate) struct ConnGuard<'a>(&'a AtomicUsize);

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The address of server `i` (0-based) on `port`.
pub(crate) fn server_addr(addressing: Addressing, i: usize, port: u16) -> SocketAddr {
    match addressing {
        Addressing::DistinctIps => {
            let ip = Ipv4Addr::new(127, 20, (i / 254) as u8, (i % 254 + 1) as u8);
            SocketAddr::new(IpAddr::V4(ip), port)
        }
        _ => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
    }
}

impl Shared {
    /// The fleet with servers at `addrs` (one per server, in order).
    pub fn new(config: SimConfig, addrs: &[SocketAddr]) -> Self {
        let epoch = Instant::now();
        let width = config.id_width();
        let servers: Vec<SimServer> = addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let n = i + 1;
                let id = format!("sim-{n:0width$}");
                let mut sc = ServerConfig::new(ServerId::new(id), addr.ip().to_string()).with_port(addr.port());
                sc.name = format!("Sim {n:0width$}");
                let rack = ["rack-a", "rack-b", "rack-c", "rack-d"][i % 4];
                sc.tags = vec!["sim".to_string(), rack.to_string()];
                if n % 10 == 0 {
                    sc.tags.push("canary".to_string());
                }
                sc.description = format!(
                    "Simulated transcoder {n} of {}, {} channels, {} cores",
                    config.count, config.channels, config.cores
                );
                let seed = hash(&[config.seed, i as u64]);
                let model = ServerModel::new(config.channels, config.cores, config.initial_running, seed, epoch);
                let (wake_tx, wake_rx) = smol::channel::bounded(1);
                SimServer {
                    config: sc,
                    addr: *addr,
                    model: Mutex::new(model),
                    fault: Mutex::new(None),
                    record: Mutex::new(Recorder::default()),
                    in_flight: InFlight::default(),
                    listening: AtomicBool::new(true),
                    wake_tx,
                    wake_rx,
                }
            })
            .collect();
        let by_id = servers.iter().enumerate().map(|(i, s)| (s.config.id.as_str().to_string(), i)).collect();
        let conns = Conns::new(servers.len());
        Shared { config, epoch, servers, by_id, in_flight: InFlight::default(), conns, oversized: OnceLock::new() }
    }

    /// Time since the fleet started.
    pub fn elapsed(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The server with id `id`.
    pub fn server(&self, id: &str) -> Option<&SimServer> {
        self.by_id.get(id).map(|&i| &self.servers[i])
    }

    /// Sets or clears server `i`'s fault. Returns true when the listener
    /// has to change state (the caller may wait for [`Shared::settled`]).
    pub fn apply_fault(&self, i: usize, fault: Option<Fault>) -> bool {
        let s = &self.servers[i];
        let now = Instant::now();
        let old = std::mem::replace(&mut *lock(&s.fault), fault.map(|f| (f, now)));
        if matches!(old, Some((Fault::StuckStopping, _))) && fault != Some(Fault::StuckStopping) {
            lock(&s.model).release_stuck(now, self.config.stopping_time);
        }
        // A full channel means a wake is already pending.
        let _ = s.wake_tx.try_send(());
        s.listening.load(Ordering::SeqCst) == s.is_down(now)
    }

    /// True when server `i`'s listener matches its fault.
    pub fn settled(&self, i: usize) -> bool {
        let s = &self.servers[i];
        s.listening.load(Ordering::SeqCst) != s.is_down(Instant::now())
    }

    /// Picks `round(fraction * count)` servers for `fault`, deterministically
    /// from the seed and the fault's kind, preferring servers with no fault.
    pub fn pick_fraction(&self, fault: &Fault, fraction: f64) -> Vec<usize> {
        let n = self.servers.len();
        let k = ((fraction.clamp(0.0, 1.0) * n as f64).round() as usize).min(n);
        let salt = fault.kind().bytes().fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b)));
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (self.servers[i].fault().is_some(), hash(&[self.config.seed, salt, i as u64])));
        order.truncate(k);
        order.sort_unstable();
        order
    }

    /// Clears every record and the fleet-wide concurrency peak.
    pub fn reset_records(&self) {
        for s in &self.servers {
            lock(&s.record).reset();
        }
        self.in_flight.reset_peak();
    }

    /// `servers.json` for this fleet, pretty-printed.
    pub fn servers_json(&self, form: JsonForm) -> String {
        let list: Vec<&ServerConfig> = self.servers.iter().map(|s| &s.config).collect();
        // Serializing plain structs with string keys cannot fail.
        let text = match form {
            JsonForm::Object => serde_json::to_string_pretty(&std::collections::BTreeMap::from([("servers", list)])),
            _ => serde_json::to_string_pretty(&list),
        };
        let mut text = text.unwrap_or_default();
        text.push('\n');
        text
    }

    /// A valid-looking `/status` body of more than 2 MiB, built once.
    pub fn oversized_body(&self) -> &[u8] {
        self.oversized.get_or_init(|| {
            let entry = br#"{"state":"idle","status":""}"#;
            let count = (5 << 20) / 2 / (entry.len() + 1) + 1;
            let mut body = Vec::with_capacity(count * (entry.len() + 1) + 64);
            body.extend_from_slice(br#"{"channels":["#);
            for i in 0..count {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(entry);
            }
            body.extend_from_slice(br#"],"cpu":[50,50,50,50]}"#);
            body
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_the_descriptor_budget_answers_close_their_connection() {
        let c = Conns { open: AtomicUsize::new(0), budget: 2 };
        let (a, b) = (c.enter(), c.enter());
        assert!(c.may_keep(), "two open, two allowed");
        let d = c.enter();
        assert!(!c.may_keep(), "a third is over the budget");
        drop(d);
        assert!(c.may_keep());
        drop((a, b));
        assert_eq!(c.open.load(Ordering::Relaxed), 0);
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap().0;
        assert!(Conns::new(100).budget as u64 <= limit.saturating_sub(100 + SPARE_FDS).max(64));
    }

    fn shared(n: usize) -> Shared {
        let cfg = SimConfig::new(n);
        let addrs: Vec<_> = (0..n).map(|i| server_addr(Addressing::DistinctIps, i, 9527)).collect();
        Shared::new(cfg, &addrs)
    }

    #[test]
    fn addresses_skip_0_and_255() {
        let a = |i| server_addr(Addressing::DistinctIps, i, 1).ip().to_string();
        assert_eq!(a(0), "127.20.0.1");
        assert_eq!(a(253), "127.20.0.254");
        assert_eq!(a(254), "127.20.1.1");
        assert_eq!(server_addr(Addressing::DistinctPorts, 7, 99).to_string(), "127.0.0.1:99");
    }

    #[test]
    fn ids_names_tags() {
        let s = shared(12);
        let c = &s.servers[9].config;
        assert_eq!(c.id.as_str(), "sim-0010");
        assert_eq!(c.name, "Sim 0010");
        assert_eq!(c.tags, ["sim", "rack-b", "canary"]);
        assert_eq!(c.host, "127.20.0.10");
        assert!(s.server("sim-0012").is_some());
        assert!(s.server("sim-0013").is_none());
    }

    #[test]
    fn fraction_is_deterministic_and_prefers_healthy_servers() {
        let s = shared(100);
        let a = s.pick_fraction(&Fault::Hang, 0.1);
        assert_eq!(a.len(), 10);
        assert_eq!(a, shared(100).pick_fraction(&Fault::Hang, 0.1));
        for &i in &a {
            s.apply_fault(i, Some(Fault::Hang));
        }
        let b = s.pick_fraction(&Fault::Hang, 0.9);
        assert_eq!(b.len(), 90);
        assert!(b.iter().all(|i| !a.contains(i)));
        assert_eq!(s.pick_fraction(&Fault::Down, 1.0).len(), 100);
        assert!(s.pick_fraction(&Fault::Down, 0.0).is_empty());
    }

    #[test]
    fn oversized_body_is_big_and_valid() {
        let s = shared(1);
        let body = s.oversized_body();
        assert!(body.len() > 2 << 20);
        let status = ipvtl_core::parse_status(body).expect("valid JSON");
        assert!(status.channels.len() > 10_000);
    }
}
