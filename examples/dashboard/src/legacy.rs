//! The original tool's JSON shapes, kept on its own endpoints only, as a
//! mapping of the wire views (`ipvtl_client::wire`) at the dashboard's edge.
//!
//! | original field | wire view field |
//! | --- | --- |
//! | `{config, state}` (one server) | `ServerView`, split in two |
//! | `state.server_id` | `id` |
//! | `state.status` | `health` (also written as `health`) |
//! | `state.cpu_cores` | `cpu` |
//! | `state.last_poll_time` (ISO-8601 UTC) | `last_poll_at` (Unix seconds; also written) |
//! | `state.error_message` | `error` (also written) |
//! | `state.channels[].name` (`"Channel N"`) | none: derived from `id` |
//! | `state.channels[].action` | the `ActionProgressView` under way on it |
//! | `state.channels[].desired` | what the channel should be doing, when managed (absent: unmanaged) |
//! | `state.channels[].drift` | its `DriftView` while it drifts (absent otherwise) |
//! | action answer `success` | `ok` (also written) |
//! | action answer `message` | `summary` (also written) |
//!
//! Every other field of these objects is the wire view's, with its name.

use std::collections::HashMap;

use ipvtl_client::core::{ActionProgress, Desired, Drift, Instant, ServerId};
use ipvtl_client::wire::{
    ActionProgressView, ActionReportView, ChannelView, DriftView, PollView, ServerConfigView, ServerView, Wall,
};
use ipvtl_client::{Cluster, ManagedServer};
use serde::Serialize;

use crate::timefmt::iso_from_ms;

/// One element of `GET /api/servers`: `{config, state}`.
#[derive(Serialize)]
pub(crate) struct LegacyServer<'a> {
    config: &'a ServerConfigView,
    state: LegacyState<'a>,
}

/// `GET /api/servers/{id}/status`: the `state` object alone.
#[derive(Serialize)]
pub(crate) struct LegacyState<'a> {
    server_id: &'a str,
    status: &'static str,
    health: &'static str,
    cpu_cores: &'a [f64],
    cpu_avg: Option<f64>,
    channels: Vec<LegacyChannel<'a>>,
    last_poll_time: Option<String>,
    error_message: Option<&'a str>,
    #[serde(flatten)]
    poll: &'a PollView,
}

#[derive(Serialize)]
struct LegacyChannel<'a> {
    name: String,
    /// The action under way on this channel, if any.
    action: Option<&'a ActionProgressView>,
    /// What it should be doing, when managed.
    #[serde(skip_serializing_if = "Option::is_none")]
    desired: Option<&'static str>,
    /// How it drifts from that, while it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<&'a DriftView>,
    #[serde(flatten)]
    view: &'a ChannelView,
}

/// What the channel objects carry beside the channel's own view: actions
/// under way, desired state and drift, by server, then channel.
#[derive(Default)]
pub(crate) struct ChannelContext {
    actions: HashMap<String, HashMap<u32, ActionProgressView>>,
    managed: HashMap<ServerId, ManagedServer>,
    drifts: HashMap<ServerId, HashMap<u32, DriftView>>,
}

impl ChannelContext {
    /// Indexes what is under way, managed and drifting, as of `now`.
    pub fn new(
        actions: &[ActionProgress],
        managed: HashMap<ServerId, ManagedServer>,
        drifts: &[Drift],
        now: Instant,
        wall: Wall<'_>,
    ) -> Self {
        let mut c = ChannelContext::default();
        for a in actions.iter().map(ActionProgressView::from) {
            c.actions.entry(a.server_id.clone()).or_default().insert(a.channel_id, a);
        }
        c.managed = managed;
        for d in drifts {
            c.drifts.entry(d.server.clone()).or_default().insert(d.channel.get(), DriftView::new(d, now, wall));
        }
        c
    }

    /// The context of every channel the cluster has now.
    pub fn of(cluster: &Cluster) -> Self {
        let wall = Wall(cluster.clock());
        ChannelContext::new(&cluster.actions(), cluster.managed(), &cluster.drifts(), cluster.now(), wall)
    }
}

impl<'a> LegacyServer<'a> {
    pub fn new(view: &'a ServerView, context: &'a ChannelContext) -> Self {
        LegacyServer { config: &view.config, state: LegacyState::new(view, context) }
    }
}

impl<'a> LegacyState<'a> {
    pub fn new(view: &'a ServerView, context: &'a ChannelContext) -> Self {
        let s = &view.state;
        let id = view.config.id.as_str();
        let actions = context.actions.get(id);
        let managed = context.managed.get(id);
        let drifts = context.drifts.get(id);
        LegacyState {
            server_id: id,
            status: s.health,
            health: s.health,
            cpu_cores: &s.cpu,
            cpu_avg: s.cpu_avg,
            channels: s
                .channels
                .iter()
                .map(|ch| LegacyChannel {
                    name: format!("Channel {}", ch.id),
                    action: actions.and_then(|m| m.get(&ch.id)),
                    desired: managed.and_then(|m| m.of(ch.id)).map(Desired::as_str),
                    drift: drifts.and_then(|m| m.get(&ch.id)),
                    view: ch,
                })
                .collect(),
            last_poll_time: s.poll.last_poll_at.map(|t| iso_from_ms((t * 1000.0).round() as u64)),
            error_message: s.poll.error.as_deref(),
            poll: &s.poll,
        }
    }
}

/// The answer to a channel action: the original `{success, message}` and
/// the whole report.
#[derive(Serialize)]
pub(crate) struct LegacyActionAnswer<'a> {
    success: bool,
    message: &'a str,
    #[serde(flatten)]
    report: &'a ActionReportView,
}

impl<'a> LegacyActionAnswer<'a> {
    pub fn new(report: &'a ActionReportView) -> Self {
        LegacyActionAnswer { success: report.ok, message: &report.summary, report }
    }
}
