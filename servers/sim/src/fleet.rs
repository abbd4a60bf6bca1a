//! [`SimFleet`]: the handle that starts, inspects, faults and stops a fleet.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipvtl_core::{ChannelState, ServerConfig};
use smol::{Async, Executor};

use crate::config::{Addressing, JsonForm, SimConfig};
use crate::control::{run_control, SETTLE_TIMEOUT};
use crate::faults::Fault;
use crate::record::ServerRecord;
use crate::server::{bind, run_listener, Spawner};
use crate::shared::{lock, server_addr, Shared};

/// A running simulated fleet. All methods take `&self` and are safe to call
/// from any thread; none needs an async runtime. Dropping the fleet (or
/// [`SimFleet::shutdown`]) stops every server and closes every socket.
pub struct SimFleet {
    shared: Arc<Shared>,
    control: SocketAddr,
    runtime: Mutex<Option<Runtime>>,
}

/// The executor and the threads that run it.
struct Runtime {
    executor: Arc<Executor<'static>>,
    /// Dropping it ends the executor threads.
    stop: smol::channel::Sender<()>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SimFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimFleet")
            .field("servers", &self.shared.servers.len())
            .field("control", &self.control)
            .field("running", &self.is_running())
            .finish()
    }
}

impl SimFleet {
    /// Binds every server's listener and the control endpoint, then serves
    /// them on background threads. Returns once all listeners are bound.
    pub fn start(config: SimConfig) -> io::Result<SimFleet> {
        config.validate()?;
        let listeners = bind_servers(&config)?;
        let control_addr = config.control.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let control = bind(control_addr).map_err(|e| context(e, control_addr))?;
        let control_addr = control.get_ref().local_addr()?;
        let addrs = listeners.iter().map(|l| l.get_ref().local_addr()).collect::<io::Result<Vec<_>>>()?;
        let threads = config.threads.max(1);
        let shared = Arc::new(Shared::new(config, &addrs));

        let executor = Arc::new(Executor::new());
        let spawner = Spawner(Arc::downgrade(&executor));
        for (i, l) in listeners.into_iter().enumerate() {
            executor.spawn(run_listener(shared.clone(), i, l, spawner.clone())).detach();
        }
        executor.spawn(run_control(shared.clone(), control, spawner)).detach();

        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let mut handles = Vec::with_capacity(threads);
        for t in 0..threads {
            let (ex, stopped) = (executor.clone(), stopped.clone());
            let spawned = std::thread::Builder::new().name(format!("ipvtl-sim-{t}")).spawn(move || {
                smol::block_on(ex.run(async move {
                    let _ = stopped.recv().await;
                }))
            });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    drop(stop);
                    for h in handles {
                        let _ = h.join();
                    }
                    return Err(e);
                }
            }
        }
        let runtime = Runtime { executor, stop, threads: handles };
        Ok(SimFleet { shared, control: control_addr, runtime: Mutex::new(Some(runtime)) })
    }

    /// The configuration the fleet was started with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.shared.servers.len()
    }

    /// Always false: a fleet has at least one server.
    pub fn is_empty(&self) -> bool {
        self.shared.servers.is_empty()
    }

    /// Server ids in order (`sim-0001`, ...).
    pub fn ids(&self) -> Vec<String> {
        self.shared.servers.iter().map(|s| s.config.id.as_str().to_string()).collect()
    }

    /// Every server as a `servers.json` entry.
    pub fn servers(&self) -> Vec<ServerConfig> {
        self.shared.servers.iter().map(|s| s.config.clone()).collect()
    }

    /// Where server `id` listens.
    pub fn addr(&self, id: &str) -> Option<SocketAddr> {
        self.shared.server(id).map(|s| s.addr)
    }

    /// `servers.json` text for the fleet, in either form.
    pub fn servers_json(&self, form: JsonForm) -> String {
        self.shared.servers_json(form)
    }

    /// Writes `servers.json` for the fleet to `path`.
    pub fn write_servers_json(&self, path: impl AsRef<Path>, form: JsonForm) -> io::Result<()> {
        std::fs::write(path, self.servers_json(form))
    }

    /// Where the control endpoint listens (JSON over HTTP/1.1):
    ///
    /// | request | answer |
    /// | --- | --- |
    /// | `GET /servers` | `{"servers": [...]}` (the `servers.json` object form) |
    /// | `GET /faults` | `{"faults": {"sim-0001": "hang", ...}}` |
    /// | `GET /records` | `{"max_concurrent_total": N, "servers": {id: record}}` (no request times) |
    /// | `GET /records/{id}` | one record, with `request_times_ms` |
    /// | `POST /faults` | `{"ids": [...], "fault": F}` or `{"fraction": 0.1, "fault": F}`; `{"fault": null}` alone clears all; answers `{"ids": [...], "fault": F}` |
    /// | `POST /reset` | clears every record |
    ///
    /// `F` is a fault's JSON form ([`Fault::from_json`]), `null` to clear.
    pub fn control_addr(&self) -> SocketAddr {
        self.control
    }

    /// Channel `channel` (1-based) of server `id`, as `/status` shows it now.
    pub fn channel_state(&self, id: &str, channel: u32) -> Option<ChannelState> {
        let s = self.shared.server(id)?;
        let view = lock(&s.model).view(channel, Instant::now())?;
        Some(view.state)
    }

    /// Number of channels per server.
    pub fn channels(&self) -> u32 {
        self.shared.config.channels
    }

    /// Sets (`Some`) or clears (`None`) server `id`'s fault; `false` for an
    /// unknown id. When the fault opens or closes the listener, returns once
    /// it has (or after two seconds).
    pub fn set_fault(&self, id: &str, fault: Option<Fault>) -> bool {
        let Some(&i) = self.shared.by_id.get(id) else {
            return false;
        };
        let wait = self.shared.apply_fault(i, fault);
        self.wait_settled(if wait { vec![i] } else { Vec::new() });
        true
    }

    /// Gives `fault` to `round(fraction * len)` servers chosen from the seed
    /// (servers without a fault first); returns their ids.
    pub fn set_fault_fraction(&self, fault: Fault, fraction: f64) -> Vec<String> {
        let picked = self.shared.pick_fraction(&fault, fraction);
        let waiting = picked.iter().copied().filter(|&i| self.shared.apply_fault(i, Some(fault))).collect();
        self.wait_settled(waiting);
        picked.iter().map(|&i| self.shared.servers[i].config.id.as_str().to_string()).collect()
    }

    /// Server `id`'s fault.
    pub fn fault(&self, id: &str) -> Option<Fault> {
        self.shared.server(id)?.fault().map(|(f, _)| f)
    }

    /// Every server that has a fault, with it, in server order.
    pub fn faults(&self) -> Vec<(String, Fault)> {
        let servers = self.shared.servers.iter();
        servers.filter_map(|s| s.fault().map(|(f, _)| (s.config.id.as_str().to_string(), f))).collect()
    }

    /// Clears every fault.
    pub fn clear_faults(&self) {
        let waiting = (0..self.len()).filter(|&i| self.shared.apply_fault(i, None)).collect();
        self.wait_settled(waiting);
    }

    /// What server `id` received since start or the last reset.
    pub fn record(&self, id: &str) -> Option<ServerRecord> {
        Some(lock(&self.shared.server(id)?.record).snapshot())
    }

    /// The most requests in flight at once over the whole fleet.
    pub fn max_concurrent_total(&self) -> usize {
        self.shared.in_flight.peak()
    }

    /// Clears every record and the fleet-wide concurrency peak.
    pub fn reset_records(&self) {
        self.shared.reset_records();
    }

    /// True until [`SimFleet::shutdown`].
    pub fn is_running(&self) -> bool {
        lock(&self.runtime).is_some()
    }

    /// Stops every server and the control endpoint and closes their sockets;
    /// returns when they are closed. Records stay readable. Idempotent.
    pub fn shutdown(&self) {
        let Some(rt) = lock(&self.runtime).take() else {
            return;
        };
        drop(rt.stop);
        for h in rt.threads {
            let _ = h.join();
        }
        // The tasks hold only weak references to the executor: dropping it
        // drops every task, and with them every listener and connection.
        drop(rt.executor);
        for s in &self.shared.servers {
            s.listening.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn wait_settled(&self, mut waiting: Vec<usize>) {
        if !self.is_running() {
            return;
        }
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while !waiting.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
            waiting.retain(|&i| !self.shared.settled(i));
        }
    }
}

impl Drop for SimFleet {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn context(e: io::Error, addr: SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("binding {addr}: {e}"))
}

/// Binds one listener per server.
fn bind_servers(config: &SimConfig) -> io::Result<Vec<Async<TcpListener>>> {
    match config.addressing {
        Addressing::DistinctIps => {
            // With no port given, the first bind picks one; should another
            // address already use it, start over with a new one.
            let attempts = if config.port.is_some() { 1 } else { 8 };
            let mut last = None;
            for _ in 0..attempts {
                match bind_ips(config) {
                    Ok(ls) => return Ok(ls),
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
            Err(last.unwrap_or_else(|| io::Error::other("no free port")))
        }
        _ => (0..config.count)
            .map(|i| {
                let port = config.port.map_or(0, |p| p + i as u16);
                let addr = server_addr(Addressing::DistinctPorts, i, port);
                bind(addr).map_err(|e| context(e, addr))
            })
            .collect(),
    }
}

fn bind_ips(config: &SimConfig) -> io::Result<Vec<Async<TcpListener>>> {
    let first_addr = server_addr(Addressing::DistinctIps, 0, config.port.unwrap_or(0));
    let first = bind(first_addr).map_err(|e| context(e, first_addr))?;
    let port = first.get_ref().local_addr()?.port();
    let mut listeners = Vec::with_capacity(config.count);
    listeners.push(first);
    for i in 1..config.count {
        let addr = server_addr(Addressing::DistinctIps, i, port);
        listeners.push(bind(addr).map_err(|e| context(e, addr))?);
    }
    Ok(listeners)
}
