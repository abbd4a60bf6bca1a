//! Shared set-up: a simulated fleet on loopback, a cluster over it, the
//! dashboard's app over that, and helpers that call the app without a
//! socket (`tower::ServiceExt::oneshot` on a smol executor).

#![allow(dead_code)]

pub mod pg;
pub mod process;
pub mod receiver;

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use ipvtl_client::{ChannelState, Cluster, ServerConfig};
use ipvtl_dashboard::{app, AppState, StateConfig};
use ipvtl_sim::{JsonForm, SimConfig, SimFleet};
use serde_json::Value;
use tower::ServiceExt;

// The fleet and settings every integration test uses, shared with the
// client's tests rather than written twice.
#[path = "../../../../ipvtl-client/tests/common/mod.rs"]
mod client_common;
pub use client_common::{settings, sim};

pub struct Harness {
    pub sim: SimFleet,
    pub state: AppState,
    pub app: Router,
}

impl Harness {
    pub fn new(count: usize) -> Self {
        Self::with(count, StateConfig::default())
    }

    pub fn with(count: usize, config: StateConfig) -> Self {
        let sim = sim(count);
        let servers = sim.servers();
        Self::over(sim, servers, config)
    }

    pub fn over(sim: SimFleet, servers: Vec<ServerConfig>, config: StateConfig) -> Self {
        let cluster = Cluster::new(servers, settings()).expect("cluster starts");
        let state = AppState::new(cluster, config);
        let app = app(state.clone());
        Harness { sim, state, app }
    }

    pub fn id(&self, i: usize) -> String {
        self.sim.ids()[i].clone()
    }

    /// One sweep, then waits until the cached list shows it. Reads the list
    /// first, as a page would: the event pump renders it ahead of requests
    /// only while someone reads it.
    pub fn poll(&self) {
        self.get("/api/servers");
        let before = self.state.cache_rebuilds();
        self.state.cluster().blocking().poll_all().expect("sweep");
        wait_until("the cache is rebuilt after a sweep", || self.state.cache_rebuilds() > before);
    }

    pub fn running_channel(&self, id: &str) -> u32 {
        (1..=self.sim.channels())
            .find(|&ch| self.sim.channel_state(id, ch) == Some(ChannelState::Running))
            .expect("a running channel")
    }

    pub fn call(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
        call(&self.app, req)
    }

    pub fn get(&self, uri: &str) -> (StatusCode, Value) {
        json_of(self.call(request(Method::GET, uri, &[], None)))
    }

    pub fn post(&self, uri: &str) -> (StatusCode, Value) {
        json_of(self.call(request(Method::POST, uri, &[], None)))
    }

    pub fn post_json(&self, uri: &str, body: &Value) -> (StatusCode, Value) {
        let body = body.to_string();
        json_of(self.call(request(Method::POST, uri, &[("content-type", "application/json")], Some(&body))))
    }
}

pub fn request(method: Method, uri: &str, headers: &[(&str, &str)], body: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri).header("host", "127.0.0.1:8000");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.map_or_else(Body::empty, |s| Body::from(s.to_string()))).expect("a valid request")
}

pub fn call(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    smol::block_on(async {
        let resp = app.clone().oneshot(req).await.expect("infallible");
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        (parts.status, parts.headers, bytes)
    })
}

pub fn json_of((status, _, bytes): (StatusCode, HeaderMap, Bytes)) -> (StatusCode, Value) {
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ipvtl-dashboard-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A fresh temp dir (see [`temp_dir`]) holding `sim`'s servers file in
/// `form`: (the dir, the file's path).
pub fn servers_file(sim: &SimFleet, name: &str, form: JsonForm) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = temp_dir(name);
    let path = dir.join("servers.json");
    sim.write_servers_json(&path, form).unwrap();
    (dir, path)
}

/// A fleet of `count` servers with every channel running, where a stop
/// takes `stopping` and a start `start_delay`.
pub fn running_sim(count: usize, stopping: Duration, start_delay: Duration) -> SimFleet {
    SimFleet::start(
        SimConfig::new(count).with_initial_running(1.0).with_stopping_time(stopping).with_start_delay(start_delay),
    )
    .expect("simulator starts")
}
