//! The page's fleet overview at any size: one compact row per server
//! (`GET /api/overview`, compressed), then only what changed, as `overview`
//! events on the event stream, and the fleet's online servers and running
//! channels over time (`GET /api/overview/history`).
//!
//! A row is an array, `[id, name, "host:port", [tags], health, flags, cpu,
//! latency_ms, ok_at, channels, error]`: `flags` bit 1 maintenance, bit 2
//! stale; `cpu` the average in whole percent; `ok_at` the last good poll
//! (Unix seconds); `channels` one letter per channel in order, `R` running,
//! `I` idle, `S` stopping, `U` any other state, `Z` running but stalled, in
//! lowercase while the channel drifts from its desired state, `D` once
//! healing gave up on it (degraded).
//!
//! A thread of its own rebuilds the rows after the fleet changed (at most
//! every [`MIN_DELTA`]) and publishes, as one `overview` event `{v, prev,
//! at, rows}`, the rows that changed in what the page draws: health, flags,
//! channels, error, name or tags, or the CPU by [`CPU_STEP`] points or more.
//! Latency and CPU drift otherwise move on the page through a slow
//! round-robin ([`TRICKLE_PERIOD`]). The snapshot is the rows as last
//! published, with their version `v`: a page that saw the snapshot of `v`
//! applies the events after it in order, and fetches the snapshot again
//! when one is missing (`prev` is not its version) or the server list
//! changed (`{v, prev, reload: true}`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant as StdInstant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ipvtl_client::core::{ChannelState, ServerConfig, ServerSnapshot};
use ipvtl_client::wire::{ms, round2, Wall};
use serde_json::{json, Value};

use crate::list::{compress, negotiate, Encoding};
use crate::state::{AppState, Inner};

/// Shortest time between two deltas.
const MIN_DELTA: Duration = Duration::from_secs(2);
/// Longest time without looking at the fleet (stale marks, ages).
const MAX_QUIET: Duration = Duration::from_secs(10);
/// A CPU change smaller than this (percentage points) waits for the
/// round-robin. The simulator's jitter moves a server's average by 5
/// points or more from one sweep to the next on 8 % of servers, by 10 on
/// 0.04 %; a channel started or stopped moves it by about 5 and is a
/// change of its own.
const CPU_STEP: i64 = 10;
/// The round-robin refreshes every row once in about this long (a few
/// rows per delta: 10 000 servers, a delta every 2 s, 22 rows).
const TRICKLE_PERIOD: Duration = Duration::from_secs(900);
/// Fleet points kept (one per [`FLEET_STEP`]): three hours.
const FLEET_POINTS: usize = 1080;
/// Time between two fleet points.
const FLEET_STEP: Duration = Duration::from_secs(10);
/// The longest error text a row carries.
const ERROR_MAX: usize = 160;

#[derive(Clone, Debug, PartialEq)]
struct Row {
    /// Shared with the fleet: id, name, address and tags.
    config: Arc<ServerConfig>,
    health: &'static str,
    flags: u8,
    cpu: Option<i64>,
    latency_ms: Option<u64>,
    ok_at: Option<i64>,
    channels: String,
    error: Option<String>,
}

impl Row {
    fn json(&self) -> Value {
        let c = &*self.config;
        json!([
            c.id,
            c.name,
            format!("{}:{}", c.host, c.port),
            c.tags,
            self.health,
            self.flags,
            self.cpu,
            self.latency_ms,
            self.ok_at,
            self.channels,
            self.error
        ])
    }

    /// Whether the page would draw `other` differently from `self`.
    fn differs(&self, other: &Row) -> bool {
        let cpu = match (self.cpu, other.cpu) {
            (Some(a), Some(b)) => (a - b).abs() >= CPU_STEP,
            (a, b) => a.is_some() != b.is_some(),
        };
        cpu || self.health != other.health
            || self.flags != other.flags
            || self.channels != other.channels
            || self.error != other.error
            || !(Arc::ptr_eq(&self.config, &other.config) || same_shown(&self.config, &other.config))
    }
}

/// A fleet point: `[t, servers, online, offline, error, running channels,
/// channels, problem channels]` (`t` in Unix seconds).
type FleetPoint = [i64; 8];

#[derive(Default)]
struct OverviewInner {
    version: u64,
    /// As last published, in configuration order.
    rows: Vec<Row>,
    at: f64,
    /// The snapshot of `version`, serialized, and its compressed forms.
    body: Option<Arc<Snapshot>>,
    trickle: usize,
    last_trickle: Option<StdInstant>,
    fleet: VecDeque<FleetPoint>,
    last_point: Option<StdInstant>,
}

struct Snapshot {
    version: u64,
    identity: Bytes,
    gzip: std::sync::OnceLock<Bytes>,
    br: std::sync::OnceLock<Bytes>,
}

/// The overview's rows and fleet series (kept in [`Inner`]).
#[derive(Default)]
pub(crate) struct Overview {
    inner: Mutex<OverviewInner>,
}

impl Overview {
    fn lock(&self) -> MutexGuard<'_, OverviewInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Every server's row now, read from the snapshot as the wire views would
/// show it (CPU and latency rounded as there) without building them: the
/// rows are rebuilt every [`MIN_DELTA`] for the whole fleet.
fn rows(inner: &Inner) -> (Vec<Row>, f64) {
    let cluster = &inner.cluster;
    let wall = Wall(cluster.clock());
    let fleet = cluster.snapshot();
    let mut drift: std::collections::HashMap<(&str, u32), bool> = std::collections::HashMap::new();
    for d in &fleet.drifts {
        drift.insert((d.server.as_str(), d.channel.get()), d.degraded);
    }
    let rows = fleet.servers.iter().map(|s| row(s, &drift, wall)).collect();
    (rows, wall.at(fleet.taken_at))
}

/// A server's row: `drift` tells which of its channels drift (`true`
/// once degraded).
fn row(s: &ServerSnapshot, drift: &std::collections::HashMap<(&str, u32), bool>, wall: Wall<'_>) -> Row {
    let st = &s.state;
    let status = st.status.as_deref();
    let channels = status
        .map(|status| {
            status
                .channels
                .iter()
                .map(|ch| {
                    let base = match ch.state {
                        ChannelState::Running if st.stall(ch.id).is_some() => 'Z',
                        ChannelState::Running => 'R',
                        ChannelState::Idle => 'I',
                        ChannelState::Stopping => 'S',
                        _ => 'U',
                    };
                    match drift.get(&(s.config.id.as_str(), ch.id.get())) {
                        Some(true) => 'D',
                        Some(false) => base.to_ascii_lowercase(),
                        None => base,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let error = st.error.as_ref().map(|e| {
        let mut e = e.to_string();
        if e.len() > ERROR_MAX {
            let mut cut = ERROR_MAX;
            while !e.is_char_boundary(cut) {
                cut -= 1;
            }
            e.truncate(cut);
            e.push('…');
        }
        e
    });
    Row {
        config: Arc::clone(&s.config),
        health: st.health.as_str(),
        flags: u8::from(st.maintenance) | (u8::from(st.is_stale()) << 1),
        cpu: status.and_then(|s| s.cpu_avg()).map(|x| round2(x).round() as i64),
        latency_ms: st.latency.map(ms),
        ok_at: st.last_ok_at.map(|t| wall.at(t).floor() as i64),
        channels,
        error,
    }
}

/// Whether two configurations of a server show the same on its row.
fn same_shown(a: &ServerConfig, b: &ServerConfig) -> bool {
    a.name == b.name && a.tags == b.tags && a.host == b.host && a.port == b.port
}

fn fleet_point(rows: &[Row], at: f64) -> FleetPoint {
    let mut p = [at.floor() as i64, rows.len() as i64, 0, 0, 0, 0, 0, 0];
    for r in rows {
        match r.health {
            "online" => p[2] += 1,
            "offline" => p[3] += 1,
            "error" => p[4] += 1,
            _ => {}
        }
        for c in r.channels.chars() {
            p[6] += 1;
            if matches!(c, 'R' | 'r' | 'Z' | 'z') {
                p[5] += 1;
            }
            if matches!(c, 'Z' | 'z' | 'D') || c.is_ascii_lowercase() {
                p[7] += 1;
            }
        }
    }
    p
}

/// Looks at the fleet; publishes what changed since the last look (unless
/// this is the first). Returns whether anything was published.
fn update(inner: &Inner) -> bool {
    let (now_rows, at) = rows(inner);
    let mut o = inner.overview.lock();
    let now = StdInstant::now();
    if o.last_point.is_none_or(|t| now.duration_since(t) >= FLEET_STEP) {
        let p = fleet_point(&now_rows, at);
        if o.fleet.len() == FLEET_POINTS {
            o.fleet.pop_front();
        }
        o.fleet.push_back(p);
        o.last_point = Some(now);
    }
    if o.version == 0 {
        o.version = 1;
        o.rows = now_rows;
        o.at = at;
        o.body = None;
        return false;
    }
    let prev = o.version;
    let same_servers =
        o.rows.len() == now_rows.len() && o.rows.iter().zip(&now_rows).all(|(a, b)| a.config.id == b.config.id);
    let data = if same_servers {
        let n = now_rows.len();
        let since = o.last_trickle.map_or(MIN_DELTA, |t| now.duration_since(t));
        o.last_trickle = Some(now);
        let per_round = ((n as f64) * since.as_secs_f64() / TRICKLE_PERIOD.as_secs_f64()).ceil() as usize;
        let start = o.trickle % n.max(1);
        let in_trickle = |i: usize| n > 0 && (i + n - start) % n < per_round.min(n);
        let mut changed = Vec::new();
        for (i, row) in now_rows.into_iter().enumerate() {
            let old = &o.rows[i];
            if old.differs(&row) || (in_trickle(i) && *old != row) {
                changed.push(row.json());
                o.rows[i] = row;
            }
        }
        o.trickle = (start + per_round) % n.max(1);
        o.at = at;
        if changed.is_empty() {
            return false;
        }
        o.version += 1;
        json!({"v": o.version, "prev": prev, "at": at, "rows": changed})
    } else {
        o.version += 1;
        o.rows = now_rows;
        o.at = at;
        json!({"v": o.version, "prev": prev, "at": at, "reload": true})
    };
    o.body = None;
    // Published under the lock: events leave in version order.
    let cut = inner.hub.publish("overview", data.to_string());
    drop(o);
    for _ in 0..cut {
        inner.metrics.sse_dropped();
    }
    true
}

/// Starts the thread that publishes the deltas; it ends with the state.
pub(crate) fn spawn(state: Weak<Inner>) {
    let spawned = std::thread::Builder::new().name("ipvtl-dashboard-overview".into()).spawn(move || {
        let mut seen = None;
        let mut last = StdInstant::now() - MAX_QUIET;
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let Some(inner) = state.upgrade() else { return };
            // The pump's passes, not the list's generation: the list is
            // only rendered while someone reads it.
            let generation = inner.pump_passes.load(std::sync::atomic::Ordering::Relaxed);
            let due = last.elapsed() >= MAX_QUIET || (Some(generation) != seen && last.elapsed() >= MIN_DELTA);
            if !due {
                continue;
            }
            seen = Some(generation);
            last = StdInstant::now();
            update(&inner);
        }
    });
    if let Err(e) = spawned {
        eprintln!("ipvtl-dashboard: cannot start the overview: {e}");
    }
}

/// The snapshot of the rows as last published.
fn snapshot(inner: &Inner) -> Arc<Snapshot> {
    {
        let o = inner.overview.lock();
        if let Some(b) = &o.body {
            return b.clone();
        }
    }
    if inner.overview.lock().version == 0 {
        update(inner);
    }
    let mut o = inner.overview.lock();
    if let Some(b) = &o.body {
        return b.clone();
    }
    let mut buf = Vec::with_capacity(o.rows.len() * 120 + 256);
    buf.extend_from_slice(
        format!(
            "{{\"v\":{},\"at\":{},\"poll_interval_ms\":{},\"servers\":[",
            o.version,
            o.at,
            inner.cluster.settings().interval.as_millis()
        )
        .as_bytes(),
    );
    for (i, r) in o.rows.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let _ = serde_json::to_writer(&mut buf, &r.json());
    }
    buf.extend_from_slice(b"]}");
    let b = Arc::new(Snapshot {
        version: o.version,
        identity: Bytes::from(buf),
        gzip: Default::default(),
        br: Default::default(),
    });
    o.body = Some(b.clone());
    b
}

/// `GET /api/overview`: every server's row, as last published, with its
/// version (see the module's documentation); gzip or br when asked.
pub(crate) async fn get(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let inner = st.inner.clone();
    let encoding = negotiate(headers.get(header::ACCEPT_ENCODING));
    let (snap, bytes) = smol::unblock(move || {
        let snap = snapshot(&inner);
        let bytes = match encoding {
            Encoding::Identity => snap.identity.clone(),
            Encoding::Gzip => snap.gzip.get_or_init(|| compress(Encoding::Gzip, &snap.identity)).clone(),
            Encoding::Br => snap.br.get_or_init(|| compress(Encoding::Br, &snap.identity)).clone(),
        };
        (snap, bytes)
    })
    .await;
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(v) = encoding.header() {
        h.insert(header::CONTENT_ENCODING, v);
    }
    if let Ok(v) = HeaderValue::from_str(&snap.version.to_string()) {
        h.insert("x-overview-version", v);
    }
    resp
}

/// `GET /api/overview/history`: the fleet's points, oldest first, one per
/// 10 s since the dashboard started (three hours at most): `[t, servers,
/// online, offline, error, running channels, channels, problem channels]`.
pub(crate) async fn history(State(st): State<AppState>) -> Response {
    let points: Vec<FleetPoint> = st.inner.overview.lock().fleet.iter().copied().collect();
    let body = json!({
        "step_s": FLEET_STEP.as_secs(),
        "fields": ["t", "servers", "online", "offline", "error", "running", "channels", "problems"],
        "points": points,
    });
    axum::Json(body).into_response()
}

/// `GET /api/overview/alerts`: the alert counts and receivers of
/// `GET /api/alerts` without its lists, for the page's header (a few
/// hundred bytes however many alerts are active).
pub(crate) async fn alerts(State(st): State<AppState>) -> Response {
    let mut all = st.inner.alerts.overview();
    let body = json!({
        "counts": all.get_mut("counts").map(Value::take).unwrap_or(Value::Null),
        "receivers": all.get_mut("receivers").map(Value::take).unwrap_or(Value::Null),
    });
    axum::Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, cpu: i64, channels: &str) -> Row {
        let config = ServerConfig { tags: vec!["rack-a".into()], ..ServerConfig::new(id, "127.0.0.1").with_port(1) };
        Row {
            config: Arc::new(config),
            health: "online",
            flags: 0,
            cpu: Some(cpu),
            latency_ms: Some(3),
            ok_at: Some(1),
            channels: channels.into(),
            error: None,
        }
    }

    #[test]
    fn small_cpu_moves_and_latency_are_not_changes_but_channels_are() {
        let a = row("s1", 40, "RRII");
        let mut b = row("s1", 43, "RRII");
        b.latency_ms = Some(9);
        assert!(!a.differs(&b));
        assert!(a.differs(&row("s1", 50, "RRII")));
        assert!(a.differs(&row("s1", 40, "RIII")));
        assert!(a.differs(&row("s1", 40, "RrII")));
    }

    #[test]
    fn fleet_points_count_health_running_and_problems() {
        let mut off = row("s2", 0, "ZzDI");
        off.health = "offline";
        let p = fleet_point(&[row("s1", 10, "RRrI"), off], 100.5);
        assert_eq!(p, [100, 2, 1, 1, 0, 5, 8, 4]);
    }

    /// The row read straight from the snapshot shows what the wire view
    /// (which the rows were built from before) shows, for states that
    /// change it: running, stalled, drifting, degraded, maintenance,
    /// stale, a long error.
    #[test]
    fn a_row_shows_what_the_server_view_shows() {
        use ipvtl_client::core::{parse_status, ChannelId, Health, Instant, PollError, ServerState, StallReason};
        use ipvtl_client::wire::ServerView;
        use ipvtl_client::{Cluster, Settings};
        use std::time::Duration;

        let cluster = Cluster::new(Vec::new(), Settings { background: false, ..Settings::default() }).unwrap();
        let wall = Wall(cluster.clock());
        let body = br#"{"channels":[{"state":"running","status":"01:00:00 25fps@2500Kbps"},{"state":"idle","status":""},{"state":"stopping","status":""},{"state":"paused","status":""},{"state":"running","status":"01:00:00 0fps@0Kbps"},{"state":"running","status":"00:00:09 30fps@900Kbps"}],"cpu":[12.494,40.5,7]}"#;
        let status = std::sync::Arc::new(parse_status(body).unwrap());
        let ch = |n| ChannelId::new(n).unwrap();
        let mut online = ServerState { health: Health::Online, status: Some(status.clone()), ..ServerState::default() };
        online.last_ok_at = Some(Instant::from_millis(5_500));
        online.last_poll_at = online.last_ok_at;
        online.latency = Some(Duration::from_micros(20_700));
        online.stalled.insert(ch(5), StallReason::ZeroFps);
        let mut stale = online.clone();
        stale.last_poll_at = Some(Instant::from_millis(9_000));
        stale.error = Some(PollError::Connect { message: "é".repeat(200) });
        stale.consecutive_failures = 1;
        stale.maintenance = true;
        let never = ServerState::default();
        let drift = [(("s1", 1), false), (("s1", 6), true)].into_iter().collect();
        for (i, state) in [online, stale, never].into_iter().enumerate() {
            let config = ServerConfig { tags: vec!["t".into()], ..ServerConfig::new("s1", "10.0.0.1").with_port(81) };
            let snap = ServerSnapshot { config: Arc::new(config), state };
            let got = super::row(&snap, &drift, wall);
            let v = ServerView::new(&snap, Instant::from_millis(10_000), wall);
            assert_eq!(got.health, v.state.health, "case {i}");
            assert_eq!(got.flags, u8::from(v.state.poll.maintenance) | u8::from(v.state.poll.stale) << 1, "case {i}");
            assert_eq!(got.cpu, v.state.cpu_avg.map(|x| x.round() as i64), "case {i}");
            assert_eq!(got.latency_ms, v.state.poll.latency_ms, "case {i}");
            assert_eq!(got.ok_at, v.state.poll.last_ok_at.map(|t| t.floor() as i64), "case {i}");
            let want_error = v.state.poll.error.as_ref().map(|e| {
                let cut = (0..=ERROR_MAX).rev().find(|&c| e.is_char_boundary(c)).unwrap();
                if e.len() > ERROR_MAX {
                    format!("{}…", &e[..cut])
                } else {
                    e.clone()
                }
            });
            assert_eq!(got.error, want_error, "case {i}");
            let json = got.json();
            assert_eq!(json[0], "s1");
            assert_eq!(json[2], "10.0.0.1:81");
            assert_eq!(json[3], serde_json::json!(["t"]));
        }
        let snap = ServerSnapshot {
            config: Arc::new(ServerConfig::new("s1", "h")),
            state: ServerState {
                status: Some(status),
                stalled: [(ch(5), StallReason::ZeroFps)].into(),
                ..ServerState::default()
            },
        };
        assert_eq!(super::row(&snap, &drift, wall).channels, "rISUZD");
    }
}
