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
//! | action answer `success` | `ok` (also written) |
//! | action answer `message` | `summary` (also written) |
//!
//! Every other field of these objects is the wire view's, with its name.

use std::collections::HashMap;

use ipvtl_client::wire::{ActionProgressView, ActionReportView, ChannelView, PollView, ServerConfigView, ServerView};
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
    #[serde(flatten)]
    view: &'a ChannelView,
}

/// Actions under way, by server, then channel.
pub(crate) type ActionsByChannel = HashMap<String, HashMap<u32, ActionProgressView>>;

/// Indexes the actions under way for [`LegacyServer::new`].
pub(crate) fn actions_by_channel(actions: impl IntoIterator<Item = ActionProgressView>) -> ActionsByChannel {
    let mut by: ActionsByChannel = HashMap::new();
    for a in actions {
        by.entry(a.server_id.clone()).or_default().insert(a.channel_id, a);
    }
    by
}

impl<'a> LegacyServer<'a> {
    pub fn new(view: &'a ServerView, actions: &'a ActionsByChannel) -> Self {
        LegacyServer { config: &view.config, state: LegacyState::new(view, actions) }
    }
}

impl<'a> LegacyState<'a> {
    pub fn new(view: &'a ServerView, actions: &'a ActionsByChannel) -> Self {
        let s = &view.state;
        let id = view.config.id.as_str();
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
                    action: actions.get(id).and_then(|m| m.get(&ch.id)),
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
