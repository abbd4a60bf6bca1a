//! The store's downsampled history behind `GET /api/servers/{id}/history
//! ?since=&step=`: points written from the polls (10 s and 1 min), served
//! in the wire vocabulary, bad queries refused with 422 and a reason; the
//! ring buffer's answer stays when no query is given.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use common::{wait_until, Harness};
use ipvtl_dashboard::store::HistoryRetention;
use ipvtl_dashboard::StateConfig;
use serde_json::Value;

fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

fn points(h: &Harness, uri: &str) -> Vec<Value> {
    let (status, body) = h.get(uri);
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    body["points"].as_array().unwrap_or_else(|| panic!("{uri}: {body}")).clone()
}

#[test]
fn polls_become_stored_points_at_both_steps() {
    let h = Harness::new(2);
    let (a, b) = (h.id(0), h.id(1));
    let before = now();
    h.poll();
    let uri = format!("/api/servers/{a}/history?since={}&step=10s", before - 60);
    wait_until("the sweep is in the stored history", || !points(&h, &uri).is_empty());
    h.poll();
    h.poll();

    let (status, body) = h.get(&uri);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["server_id"].as_str(), body["step"].as_str()), (Some(a.as_str()), Some("10s")), "{body}");
    assert_eq!(body["since"], before - 60);
    let tens = body["points"].as_array().unwrap();
    // Three sweeps within a second or two: one or two 10 s buckets.
    assert!((1..=2).contains(&tens.len()), "{body}");
    let running = (1..=h.sim.channels())
        .filter(|&ch| h.sim.channel_state(&a, ch) == Some(ipvtl_client::ChannelState::Running))
        .count();
    for p in tens {
        let fields: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(fields, ["at", "cpu_avg", "health", "running_channels"], "the wire view: {p}");
        let at = p["at"].as_i64().unwrap();
        assert_eq!(at % 10, 0, "a bucket's start: {p}");
        assert!(at >= before - 10 && at <= now(), "{p}");
        assert_eq!(p["health"], "online");
        assert!(p["cpu_avg"].as_f64().is_some(), "{p}");
    }
    assert_eq!(tens.last().unwrap()["running_channels"], running, "the bucket's last poll");

    let minutes = points(&h, &format!("/api/servers/{a}/history?since={}&step=1m", before - 60));
    assert!((1..=2).contains(&minutes.len()), "{minutes:?}");
    assert!(minutes.iter().all(|p| p["at"].as_i64().unwrap() % 60 == 0), "{minutes:?}");
    // Steps in seconds; `since` alone (10 s); `step` alone (the last hour).
    assert_eq!(points(&h, &format!("/api/servers/{a}/history?since={}&step=60", before - 60)), minutes);
    assert_eq!(points(&h, &format!("/api/servers/{a}/history?since={}", before - 60)).len(), tens.len());
    assert_eq!(points(&h, &format!("/api/servers/{b}/history?step=10")).len(), tens.len(), "each server its own");
    assert!(points(&h, &format!("/api/servers/{a}/history?since={}", now() + 3600)).is_empty());

    // No query: the ring the page draws, as before.
    let (status, ring) = h.get(&format!("/api/servers/{a}/history"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ring["samples"].as_array().map(Vec::len), Some(3), "{ring}");
    assert!(ring.get("points").is_none());
}

#[test]
fn bad_history_queries_are_refused_with_a_reason() {
    let h = Harness::new(1);
    let a = h.id(0);
    for (query, names) in [
        ("step=5s", "step"),
        ("step=1h", "step"),
        ("step=", "step"),
        ("since=yesterday", "since"),
        ("since=-1", "since"),
        ("since=1.5", "since"),
        ("since=99999999999999999999", "since"),
        ("since=0&step=10m", "step"),
    ] {
        let (status, body) = h.get(&format!("/api/servers/{a}/history?{query}"));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.starts_with(names), "{query}: {detail}");
    }
    let (status, body) = h.get("/api/servers/nope/history?step=10s");
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[test]
fn a_step_kept_for_zero_is_neither_written_nor_served() {
    let history = HistoryRetention { ten_seconds: Duration::ZERO, ..HistoryRetention::default() };
    let h = Harness::with(1, StateConfig { history, ..StateConfig::default() });
    let a = h.id(0);
    h.poll();
    let uri = format!("/api/servers/{a}/history?since=0&step=1m");
    wait_until("the sweep is in the stored history", || !points(&h, &uri).is_empty());
    let (status, body) = h.get(&format!("/api/servers/{a}/history?since=0&step=10s"));
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("--history-keep-10s"), "{body}");
}
