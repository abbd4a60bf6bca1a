//! # ipvtl-ffi
//!
//! uniffi bindings of [`ipvtl_client::Cluster`] for Kotlin, Swift, Python
//! and Ruby (proc-macros, no UDL). Thin by design: every export converts
//! its arguments, calls the client, and converts the answer; policy stays
//! in `ipvtl-core`.
//!
//! - [`Cluster`]: poll, snapshot, refresh, start/stop/restart, batch,
//!   reload, maintenance; each network call as an `async` export and a
//!   `*_blocking` twin.
//! - Records mirroring the core models through `From`: [`FleetSnapshot`],
//!   [`ServerSnapshot`], [`ActionReport`], [`BatchReport`], [`ClusterEvent`]...
//! - One flat error enum, [`IpvtlError`], mapped from `ClientError` in one
//!   place.
//! - Events: [`Cluster::subscribe`] ([`EventStream`], pull) or
//!   [`Cluster::watch`] (a foreign [`ClusterObserver`], push), whose
//!   [`WatchHandle`] cancels on drop.
//! - Test support: [`SimFleet`], the simulator on loopback.
//!
//! Generate bindings in library mode with the `uniffi-bindgen` binary of
//! `ipvtl-uniffi-bindgen` (same uniffi release); see the README.
//!
//! Like every crate of the workspace it forbids `unsafe_code`: the
//! `extern "C"` scaffolding is uniffi's macro output, not code written here.
//! No panic crosses the boundary (uniffi catches any at each call), and
//! nothing here unwraps data from a network or a file.

#![warn(missing_docs)]

uniffi::setup_scaffolding!();

mod cluster;
mod error;
mod events;
mod records;
mod sim;
mod watch;

pub use cluster::{default_settings, parse_servers, Cluster};
pub use error::{IpvtlError, ObserverError};
pub use events::ClusterEvent;
pub use records::{
    ActionKind, ActionReport, BatchFilter, BatchReport, BatchSpec, BatchTarget, BatchTargets, ChannelInfo,
    ChannelStats, ClusterSettings, FleetSnapshot, Health, PhaseTiming, PollFailure, ReloadSummary, ServerConfig,
    ServerSnapshot, ServerState, ServerStatus,
};
pub use sim::{SimCommand, SimFleet, SimOptions};
pub use watch::{ClusterObserver, EventStream, WatchHandle};
