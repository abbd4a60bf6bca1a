//! The JSON shapes of the API: the original tool's field names, with
//! additions (never renames).

use std::collections::HashMap;

use ipvtl_client::core::{ActionProgress, ActionReport, BatchProgress, BatchReport, Event, Instant};
use ipvtl_client::{ServerSnapshot, SmolClock};
use serde::Serialize;
use serde_json::{json, Value};

use crate::timefmt::iso;

/// What a view needs besides the snapshot: the clock, the time now, and the
/// actions under way (by server and channel).
pub(crate) struct ViewContext<'a> {
    pub clock: &'a SmolClock,
    pub now: Instant,
    pub actions: HashMap<(&'a str, u32), &'a ActionProgress>,
}

impl<'a> ViewContext<'a> {
    pub fn new(clock: &'a SmolClock, now: Instant, actions: &'a [ActionProgress]) -> Self {
        let actions = actions.iter().map(|a| ((a.server.as_str(), a.channel.get()), a)).collect();
        ViewContext { clock, now, actions }
    }

    fn time(&self, at: Option<Instant>) -> Option<String> {
        at.map(|t| iso(self.clock.to_system_time(t)))
    }
}

#[derive(Serialize)]
pub(crate) struct ServerView<'a> {
    config: ConfigView<'a>,
    state: StateView<'a>,
}

#[derive(Serialize)]
struct ConfigView<'a> {
    id: &'a str,
    name: &'a str,
    host: &'a str,
    port: u16,
    description: &'a str,
    tags: &'a [String],
}

#[derive(Serialize)]
pub(crate) struct StateView<'a> {
    server_id: &'a str,
    status: &'static str,
    cpu_cores: Vec<f64>,
    cpu_avg: Option<f64>,
    channels: Vec<ChannelView<'a>>,
    last_poll_time: Option<String>,
    last_ok_time: Option<String>,
    error_message: Option<String>,
    error_kind: Option<&'static str>,
    stale: bool,
    status_age_s: Option<f64>,
    latency_ms: Option<f64>,
    consecutive_failures: u32,
    maintenance: bool,
}

#[derive(Serialize)]
struct ChannelView<'a> {
    id: u32,
    name: String,
    state: &'a str,
    status: &'a str,
    stats: Option<StatsView>,
    /// The action under way on this channel, if any.
    action: Option<ActionView>,
}

#[derive(Serialize)]
struct StatsView {
    uptime_s: u64,
    fps: f32,
    kbps: f32,
}

#[derive(Serialize)]
struct ActionView {
    action_id: u64,
    kind: &'static str,
    phase: &'static str,
    batch_id: Option<u64>,
}

fn round2(x: f32) -> f64 {
    (f64::from(x) * 100.0).round() / 100.0
}

pub(crate) fn server_view<'a>(s: &'a ServerSnapshot, cx: &ViewContext<'a>) -> ServerView<'a> {
    let c = &s.config;
    ServerView {
        config: ConfigView {
            id: c.id.as_str(),
            name: &c.name,
            host: &c.host,
            port: c.port,
            description: &c.description,
            tags: &c.tags,
        },
        state: state_view(s, cx),
    }
}

pub(crate) fn state_view<'a>(s: &'a ServerSnapshot, cx: &ViewContext<'a>) -> StateView<'a> {
    let st = &s.state;
    let id = s.config.id.as_str();
    let status = st.status.as_ref();
    let channels = status
        .map(|status| {
            status
                .channels
                .iter()
                .map(|ch| {
                    let n = ch.id.get();
                    ChannelView {
                        id: n,
                        name: format!("Channel {n}"),
                        state: ch.state.as_str(),
                        status: &ch.status,
                        stats: ch.stats.map(|x| StatsView { uptime_s: x.uptime_s, fps: x.fps, kbps: x.kbps }),
                        action: cx.actions.get(&(id, n)).map(|a| ActionView {
                            action_id: a.action.0,
                            kind: a.kind.as_str(),
                            phase: a.phase.as_str(),
                            batch_id: a.batch.map(|b| b.0),
                        }),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    StateView {
        server_id: id,
        status: st.health.as_str(),
        cpu_cores: status.map(|s| s.cpu.iter().copied().map(round2).collect()).unwrap_or_default(),
        cpu_avg: status.and_then(|s| s.cpu_avg()).map(round2),
        channels,
        last_poll_time: cx.time(st.last_poll_at),
        last_ok_time: cx.time(st.last_ok_at),
        error_message: st.error.as_ref().map(|e| e.to_string()),
        error_kind: st.error.as_ref().map(|e| e.kind()),
        stale: st.is_stale(),
        status_age_s: st.status_age(cx.now).map(|d| d.as_secs_f64()),
        latency_ms: st.latency.map(|d| d.as_secs_f64() * 1000.0),
        consecutive_failures: st.consecutive_failures,
        maintenance: st.maintenance,
    }
}

/// An action report as JSON (the action endpoints' answer and SSE payloads).
pub(crate) fn report_json(r: &ActionReport) -> Value {
    let phases: Vec<Value> = r
        .phases
        .iter()
        .map(|p| json!({"phase": p.phase.as_str(), "duration_ms": p.duration.as_millis() as u64}))
        .collect();
    let (success, error_kind, error) = match &r.outcome {
        Ok(()) => (true, None, None),
        Err(e) => (false, Some(e.kind()), Some(e.to_string())),
    };
    json!({
        "success": success,
        "message": r.summary(),
        "server_id": r.server.as_str(),
        "channel_id": r.channel.get(),
        "action": r.kind.as_str(),
        "action_id": r.action.0,
        "batch_id": r.batch.map(|b| b.0),
        "phases": phases,
        "duration_ms": r.duration().as_millis() as u64,
        "final_state": r.final_state.as_ref().map(|s| s.as_str()),
        "error_kind": error_kind,
        "error": error,
        // connect / timeout / io: the server was unreachable; http,
        // malformed, too_large: it answered badly.
        "cause_kind": r.cause().map(|c| c.kind()),
    })
}

pub(crate) fn batch_progress_json(p: &BatchProgress) -> Value {
    json!({
        "batch_id": p.batch.0, "done": p.done, "total": p.total, "failed": p.failed, "running": p.running,
        "last": p.last.as_ref().map(report_json),
    })
}

pub(crate) fn batch_report_json(r: &BatchReport) -> Value {
    json!({
        "batch_id": r.batch.0,
        "action": r.kind.as_str(),
        "ok": r.ok(),
        "failed": r.failed(),
        "skipped": r.skipped(),
        "duration_ms": r.finished_at.saturating_since(r.started_at).as_millis() as u64,
        "stopped_early": r.stopped_early,
        "reports": r.reports.iter().map(report_json).collect::<Vec<_>>(),
    })
}

/// A core event as the SSE `data:` payload.
pub(crate) fn event_json(e: &Event) -> Value {
    match e {
        Event::HealthChanged { server, from, to, error } => json!({
            "server_id": server.as_str(), "from": from.as_str(), "to": to.as_str(),
            "error_message": error.as_ref().map(|e| e.to_string()),
        }),
        Event::ChannelStateChanged { server, channel, from, to } => json!({
            "server_id": server.as_str(), "channel_id": channel.get(), "from": from.as_str(), "to": to.as_str(),
        }),
        Event::ChannelStalled { server, channel, reason } => json!({
            "server_id": server.as_str(), "channel_id": channel.get(), "reason": format!("{reason:?}"),
        }),
        Event::ServerRebooted { server } => json!({"server_id": server.as_str()}),
        Event::Refreshed { server, error } => json!({
            "server_id": server.as_str(), "error_message": error.as_ref().map(|e| e.to_string()),
        }),
        Event::ActionStarted { action, server, channel, kind, batch } => json!({
            "action_id": action.0, "server_id": server.as_str(), "channel_id": channel.get(),
            "action": kind.as_str(), "batch_id": batch.map(|b| b.0),
        }),
        Event::ActionFinished { report } => report_json(report),
        Event::BatchProgress(p) => batch_progress_json(p),
        Event::BatchFinished { report } => batch_report_json(report),
        Event::SweepFinished { sweep, duration, ok, failed, skipped } => json!({
            "sweep": sweep, "duration_ms": duration.as_millis() as u64, "ok": ok, "failed": failed, "skipped": skipped,
        }),
        other => json!({"description": ipvtl_client::core::event::describe(other)}),
    }
}
