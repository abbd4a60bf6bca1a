//! The wire views: every JSON that leaves ipvtl is the serialization of
//! one of these (SPEC §12). The dashboard's API and SSE, its audit and
//! store, Python's `to_dict()` and event dicts, and the uniffi records are
//! all built from them, so a name or a rounding is decided here, once.
//!
//! Rules:
//! - names are snake_case, and a thing has one name everywhere
//!   (`server_id`, `channel_id`, `action_id`, `batch_id`);
//! - enums are written with their `as_str` (`online`, `zero_fps`,
//!   `first_failure`, ...);
//! - durations are integer milliseconds, in fields ending in `_ms`;
//! - times are Unix seconds (a float with millisecond precision), in
//!   fields ending in `_at`;
//! - CPU, fps and bitrate are rounded to two decimals.
//!
//! The JSON Schema of every view is [`schema`], committed as
//! `docs/wire-schema.json` and checked against the code by a test.

mod action;
mod alert;
mod event;
mod reconcile;
mod server;

use std::time::UNIX_EPOCH;

use ipvtl_core::Instant;
use schemars::JsonSchema;
use serde::Serialize;

use crate::SmolClock;

pub use action::{
    ActionProgressView, ActionReportView, BatchProgressView, BatchReportView, BatchTargetView, PhaseView,
};
pub use alert::{AlertHistoryView, AlertView, NotificationView, SilenceView};
pub use event::{EventBody, EventView};
pub use reconcile::{DesiredSettingView, DriftView, HealView, HealingSettingView, ReconcilerView, ScopeView};
pub use server::{
    ChannelView, HealthCounts, PollView, ReloadView, ServerConfigView, ServerStateView, ServerView, SnapshotView,
};

/// Turns core instants into wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct Wall<'a>(pub &'a SmolClock);

impl Wall<'_> {
    /// Unix seconds of `at`, to the millisecond.
    pub fn at(&self, at: Instant) -> f64 {
        let ms = self.0.to_system_time(at).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        ms as f64 / 1000.0
    }
}

/// Whole milliseconds of a duration.
pub fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A measured value rounded to two decimals (CPU percent, fps, kbit/s).
pub fn round2(x: f32) -> f64 {
    (f64::from(x) * 100.0).round() / 100.0
}

/// Every view, for the schema: one document whose `$defs` hold them all.
#[derive(Serialize, JsonSchema)]
#[schemars(title = "ipvtl wire views")]
#[allow(dead_code)]
struct WireViews {
    snapshot: SnapshotView,
    server: ServerView,
    event: EventView,
    action_report: ActionReportView,
    action_progress: ActionProgressView,
    batch_progress: BatchProgressView,
    batch_report: BatchReportView,
    batch_target: BatchTargetView,
    reload: ReloadView,
    drift: DriftView,
    heal: HealView,
    desired_setting: DesiredSettingView,
    healing_setting: HealingSettingView,
    reconciler: ReconcilerView,
    alert: AlertView,
    alert_history: AlertHistoryView,
    notification: NotificationView,
    silence: SilenceView,
}

/// The JSON Schema (draft 2020-12) of every wire view.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(WireViews)).unwrap_or_default()
}

#[cfg(test)]
mod tests;
