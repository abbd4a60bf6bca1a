//! # ipvtl-core
//!
//! The sans-IO core of ipvtl, the toolkit for watching and controlling a
//! fleet of IPVTL video transcoder servers. `no_std` + `alloc`: it holds the
//! models, the tolerant parsers, and the state machines that decide what to
//! send and when, but it never touches a socket, a thread or a clock. Time
//! comes in as an [`Instant`] argument; I/O leaves as data ([`Transmit`]).
//!
//! ## The machines
//!
//! - [`Poller`]: the `/status` schedule of the whole fleet (sweeps every
//!   interval, a concurrency cap, on-demand refresh ahead of the queue,
//!   exponential backoff for failing servers, health hysteresis, last good
//!   status kept as stale).
//! - [`Action`]: one verified start, stop or restart of a channel
//!   (stop → watch until idle → start → watch until running, each phase
//!   bounded and timed).
//! - [`Reconciler`]: desired state per channel (`running`, `idle`, or the
//!   default `unmanaged`), drift, and opt-in self-healing with a budget
//!   (grace, a limit per window, backoff, degraded, a parallel cap, a
//!   storm guard, dry run).
//! - [`Fleet`]: all of these, plus per-channel locks (one action per
//!   channel, heals included) and batches ([`BatchSpec`]), behind one
//!   driving vocabulary. Drivers run this.
//!
//! ## Driving a machine
//!
//! Every machine speaks the same vocabulary (after quinn-proto): inputs
//! `handle_response(id, result, now)` and `handle_timeout(now)`; outputs
//! `poll_request(now)`, `poll_event()` and `poll_timeout()`. The call order:
//!
//! 1. `handle_timeout(now)` (safe to call early);
//! 2. `poll_request(now)` until `None`, sending each request;
//! 3. `poll_event()` until `None`;
//! 4. sleep until `poll_timeout()` or until an answer arrives, which goes to
//!    `handle_response(id, result, now)`; then back to 1.
//!
//! Here is that loop with a transport that answers at once and a clock we
//! move by hand:
//!
//! ```
//! use ipvtl_core::{Event, Fleet, FleetConfig, Health, Instant, Response, ServerConfig, ServerId};
//!
//! let servers = vec![ServerConfig::new("edge-1", "192.0.2.10")];
//! let mut fleet = Fleet::new(FleetConfig::default(), servers, Instant::ZERO);
//! let mut now = Instant::ZERO;
//! let mut sweeps = 0;
//! while sweeps < 3 {
//!     fleet.handle_timeout(now);
//!     while let Some(t) = fleet.poll_request(now) {
//!         // A real driver sends `GET {t.request.path()}` to t.server here.
//!         assert_eq!(t.request.path(), "/status");
//!         let body = br#"{"channels":[{"state":"running","status":"01:02:03 25fps@2500Kbps"}],"cpu":[12,30]}"#;
//!         fleet.handle_response(t.id, Ok(Response { code: 200, body: body.to_vec() }), now);
//!     }
//!     while let Some(event) = fleet.poll_event() {
//!         if let Event::SweepFinished { .. } = event {
//!             sweeps += 1;
//!         }
//!     }
//!     now = fleet.poll_timeout().expect("a fleet always has a next sweep");
//! }
//! let state = fleet.state(&ServerId::from("edge-1")).unwrap();
//! assert_eq!(state.health, Health::Online);
//! assert_eq!(state.status.as_ref().unwrap().channels[0].stats.unwrap().uptime_s, 3723);
//! assert_eq!(now, Instant::from_millis(15_000)); // a sweep every 5 s, measured from sweep start
//! ```
//!
//! The [`driver`] module runs the same loop asynchronously over any
//! [`Transport`] and any runtime's timer.
//!
//! ## Features
//!
//! - `std` (default): `std::error::Error` impls. Build with
//!   `default-features = false` for bare-metal targets.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod action;
pub mod alert;
pub mod batch;
pub mod driver;
pub mod event;
pub mod fleet;
pub mod ids;
pub mod model;
pub mod parse;
pub mod poller;
pub mod reconcile;
pub mod shard;
pub mod time;
pub mod transport;

pub use action::{Action, ActionConfig, ActionError, ActionKind, ActionReport, Phase, PhaseReport};
pub use alert::{
    Alert, AlertConfig, AlertConfigError, AlertState, Alerts, Fingerprint, Labels, Matcher, Notification,
    NotificationKind, RuleKind, Severity, Silence, SilenceError, SilenceId,
};
pub use batch::{
    Batch, BatchError, BatchFilter, BatchInput, BatchProgress, BatchReport, BatchSpec, BatchStop, BatchTarget, Targets,
};
pub use event::{Event, StallReason};
pub use fleet::{ActionProgress, Fleet, FleetConfig, FleetSnapshot, ServerSnapshot};
pub use ids::{ActionId, BatchId, ChannelId, RequestId, ServerId};
pub use model::{
    Channel, ChannelState, ChannelStats, Extra, Health, PollError, ServerConfig, ServerState, Status, StatusText,
    DEFAULT_PORT,
};
pub use parse::{
    parse_servers, parse_servers_file, parse_stats, parse_status, parse_status_like, ConfigError, ServersFile,
    StatusError,
};
pub use poller::{Poller, PollerConfig, ReloadSummary};
pub use reconcile::{Desired, Drift, Heal, HealPolicy, Healing, Reconciler, ReconcilerConfig, Scope, Scoped, Source};
pub use time::Instant;
pub use transport::{Request, RequestKind, Response, Transmit, Transport, TransportError};
