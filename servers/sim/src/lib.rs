//! A simulated fleet of IPVTL transcoder servers on loopback.
//!
//! [`SimFleet::start`] binds N servers — each on its own `127.20.x.y`
//! address sharing one port, or each on its own port of `127.0.0.1` — and
//! serves the IPVTL API on background threads: `GET /status` with channels
//! whose uptime advances and whose fps and bitrate jitter, and
//! `GET /channel{N}?start|stop` with a start delay and a visible `stopping`
//! phase. Servers can be given [`Fault`]s at run time (down, hang, HTTP 500,
//! malformed or oversized bodies, slow, reset, flapping, stuck `stopping`,
//! rejected commands), and every request is recorded so tests can assert
//! what a client actually sent ([`ServerRecord`]). The same controls are
//! served over HTTP on [`SimFleet::control_addr`].
//!
//! ```
//! use std::io::{Read, Write};
//! use ipvtl_sim::{Fault, SimConfig, SimFleet};
//!
//! let fleet = SimFleet::start(SimConfig::new(3)).unwrap();
//! let server = &fleet.servers()[0];
//! let mut conn = std::net::TcpStream::connect((server.host.as_str(), server.port)).unwrap();
//! conn.write_all(b"GET /status HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
//! let mut answer = String::new();
//! conn.read_to_string(&mut answer).unwrap();
//! assert!(answer.starts_with("HTTP/1.1 200 OK"));
//! assert_eq!(fleet.record(server.id.as_str()).unwrap().status_requests, 1);
//!
//! fleet.set_fault(server.id.as_str(), Some(Fault::Down));
//! assert!(std::net::TcpStream::connect((server.host.as_str(), server.port)).is_err());
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod control;
mod faults;
mod fleet;
mod http;
mod record;
mod server;
mod shared;
mod state;

pub use config::{Addressing, JsonForm, SimConfig};
pub use faults::{Fault, FaultParseError};
pub use fleet::SimFleet;
pub use record::{
    Action, Command, ServerRecord, KEPT_CLIENTS, KEPT_COMMANDS, KEPT_REQUEST_TIMES, NO_CLIENT, OTHER_CLIENTS,
};

// Compile-time proof of the promise made to bindings.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SimFleet>();
};
