//! # ipvtl-client
//!
//! ipvtl on isahc + smol: [`IsahcTransport`] (one shared curl client for the
//! whole fleet, connection reuse, per-request timeout, body cap) and
//! [`Cluster`], which runs the `ipvtl-core` machines on a driver thread and
//! offers the operator's verbs: poll, refresh, start/stop/restart, batch,
//! subscribe, reload. [`blocking`] has the same surface without async.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ipvtl_client::ClientError> {
//! use ipvtl_client::{Cluster, Settings};
//!
//! let cluster = Cluster::from_file("servers/servers.json", Settings::default())?;
//! let fleet = cluster.poll_all().await?;
//! for s in &fleet.servers {
//!     println!("{} {} {:?}", s.config.id, s.state.health, s.state.status.as_ref().map(|st| st.cpu_avg()));
//! }
//! let report = cluster.restart("edge-1", 3).await?;
//! println!("{}", report.summary());
//! # Ok(()) }
//! ```
//!
//! No tokio anywhere in this crate's dependency tree (a test checks it).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alerts;
pub mod blocking;
mod cluster;
mod dispatch;
mod error;
mod limits;
pub mod reconcile;
mod settings;
mod transport;
pub mod wire;

pub use cluster::{load_servers, load_servers_file, Cluster, Sleep, SmolClock};
pub use dispatch::Subscription;
pub use error::ClientError;
pub use limits::raise_fd_limit;
pub use reconcile::{parse_desired, PolicyInput, ReconcilerInput, ScopeInput};
pub use settings::{Settings, SettingsOptions};
pub use transport::{url, IsahcTransport, TransportOptions, DEFAULT_BODY_LIMIT};

pub use cluster::{ManagedServer, ReconcilerStatus};
pub use ipvtl_core as core;
pub use ipvtl_core::{
    ActionError, ActionKind, ActionReport, BatchFilter, BatchInput, BatchReport, BatchSpec, BatchTarget, ChannelState,
    Desired, Drift, Event, FleetSnapshot, Heal, HealPolicy, Healing, Health, ReconcilerConfig, Scope, ServerConfig,
    ServerSnapshot, ServerState, ServersFile, Source, Targets,
};
