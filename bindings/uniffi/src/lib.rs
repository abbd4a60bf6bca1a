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
//! - Records filled from the wire views (`ipvtl_client::wire`, SPEC §12)
//!   through `From`, with the views' field names and values:
//!   [`FleetSnapshot`], [`ServerSnapshot`], [`ActionReport`],
//!   [`BatchReport`], [`ClusterEvent`]... Enums are their text (`online`,
//!   `zero_fps`), durations integer `*_ms`, times Unix seconds `*_at`.
//! - Input passed through as given: [`ClusterSettings`] fields left out
//!   take the client's defaults, a [`BatchSpec`] is the core's
//!   `BatchInput`, checked there once.
//! - One flat error enum, [`IpvtlError`], mapped from `ClientError` in one
//!   place.
//! - Events: [`Cluster::subscribe`] ([`EventStream`], pull) or
//!   [`Cluster::watch`] (a foreign [`ClusterObserver`], push), whose
//!   [`WatchHandle`] cancels on drop.
//! - Alerts: [`Cluster::watch_alerts`] runs the alert rules over the
//!   cluster; its [`AlertWatch`] hands out notifications (pull) and holds
//!   the active alerts and silences.
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

mod alerts;
mod batch;
mod cluster;
mod error;
mod events;
mod reconcile;
mod records;
mod sim;
mod watch;

pub use alerts::{ActiveAlert, AlertNotification, AlertSilence, AlertWatch, EndedAlert, SilenceSpec};
pub use batch::{ActionKind, ActionReport, BatchFilter, BatchReport, BatchSpec, BatchTarget, PhaseTiming};
pub use cluster::{parse_servers, Cluster};
pub use error::{IpvtlError, ObserverError};
pub use events::ClusterEvent;
pub use reconcile::{
    DesiredSetting, Drift, Heal, HealingPolicy, HealingSetting, ReconcilerSettings, ReconcilerStatus, SettingScope,
};
pub use records::{
    ChannelInfo, ClusterSettings, FleetSnapshot, HealthCounts, ReloadSummary, ServerConfig, ServerSnapshot, ServerState,
};
pub use sim::{SimCommand, SimFleet, SimOptions};
pub use watch::{ClusterObserver, EventStream, WatchHandle};
