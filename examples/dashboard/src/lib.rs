//! # ipvtl-dashboard
//!
//! The operator's dashboard over an [`ipvtl_client::Cluster`]: the original
//! tool's JSON API (same paths, same field names) plus server-sent events,
//! Prometheus metrics, per-server history, batches, maintenance mode, desired
//! state with opt-in healing, a store and an audit log, and an embedded
//! one-page UI.
//!
//! [`app`] builds the HTTP application from an [`AppState`] and never touches
//! a socket, so tests call it directly; [`serve`] runs it on a listener and
//! the binary (`src/main.rs`) wires flags, environment and the demo fleet.

#![forbid(unsafe_code)]

pub mod alerts;
mod audit;
mod batch;
mod cache;
pub mod demo;
mod error;
mod events;
mod guard;
mod history;
pub mod instances;
pub mod keys;
mod legacy;
mod list;
mod metrics;
pub mod options;
mod overview;
mod page;
mod pump;
pub mod reconcile;
mod routes;
mod serve;
mod state;
pub mod store;
mod timefmt;

pub use audit::AuditLog;
pub use serve::{serve, Peer};
pub use state::{AppState, Restored, StateConfig};
pub use store::{Store, StoreError};

/// The dashboard's HTTP application: every route, the key and origin guard,
/// and the embedded page. No socket: serve it with [`serve`] or call it as a
/// `tower::Service`.
pub fn app(state: AppState) -> axum::Router {
    routes::router(state)
}

/// The crate version, as reported by `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
