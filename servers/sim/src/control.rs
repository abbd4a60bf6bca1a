//! The control endpoint: read the fleet and its records, set faults, over
//! HTTP on 127.0.0.1.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /servers` | `{"servers": [...]}` (the `servers.json` object form) |
//! | `GET /faults` | `{"faults": {"sim-0001": "hang", ...}}` |
//! | `GET /records` | `{"max_concurrent_total": N, "servers": {id: record}}`, each with `status_by_client` but no times |
//! | `GET /records/{id}` | one record, also with `request_times_ms` and `status_times_ms_by_client` |
//! | `POST /faults` | body `{"ids": [...], "fault": F}`, `{"fraction": 0.1, "fault": F}`, or `{"fault": null}` (clear all); answers `{"ids": [...], "fault": F}` |
//! | `POST /reset` | clears every record |
//!
//! `F` is a fault's JSON form (see [`Fault::from_json`]) or `null` to clear.
//!
//! A record is `{"total_requests": N, "status_requests": N, "commands":
//! [{"channel": N, "action": "start"|"stop", "at_ms": ms}, ...],
//! "max_concurrent": N, "status_by_client": {client: N, ...}}`; with times
//! also `"request_times_ms": [ms, ...]` and `"status_times_ms_by_client":
//! {client: [ms, ...], ...}` (the last [`crate::KEPT_REQUEST_TIMES`] status
//! requests, each client's in arrival order). A client is the `User-Agent`
//! of its `GET /status` requests (`"-"` without one, `"(other)"` past
//! [`crate::KEPT_CLIENTS`] clients); times are milliseconds since the fleet
//! started.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use smol::{Async, Timer};

use crate::config::JsonForm;
use crate::faults::Fault;
use crate::http::{Conn, ReadError, Request, Response};
use crate::server::Spawner;
use crate::shared::{lock, Shared};

/// How long a fault change waits for listeners to open or close.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Accepts control connections forever.
pub(crate) async fn run_control(shared: Arc<Shared>, listener: Async<TcpListener>, spawner: Spawner) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let shared = shared.clone();
                spawner.spawn(async move {
                    let mut conn = Conn::new(stream);
                    loop {
                        let req = match conn.read_request().await {
                            Ok(Some(r)) => r,
                            Ok(None) | Err(ReadError::Io) => return,
                            Err(ReadError::Bad(code, why)) => {
                                let _ = conn.respond(&Response::text(code, format!("{why}\n")), false).await;
                                return;
                            }
                        };
                        let resp = handle(&shared, &req).await;
                        if conn.respond(&resp, req.keep_alive).await.is_err() || !req.keep_alive {
                            return;
                        }
                    }
                });
            }
            // Out of file descriptors or similar: back off instead of spinning.
            Err(_) => {
                Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

fn json_response(code: u16, v: &Value) -> Response {
    Response::json(code, v.to_string())
}

fn error(code: u16, message: impl Into<String>) -> Response {
    json_response(code, &json!({ "error": message.into() }))
}

/// Answers one control request (no socket needed).
pub(crate) async fn handle(shared: &Shared, req: &Request) -> Response {
    let path = req.path.trim_end_matches('/');
    match (req.method.as_str(), path) {
        ("GET", "/servers") => Response::json(200, shared.servers_json(JsonForm::Object)),
        ("GET", "/faults") => {
            let faults: Map<String, Value> = shared
                .servers
                .iter()
                .filter_map(|s| s.fault().map(|(f, _)| (s.config.id.as_str().to_string(), f.to_json())))
                .collect();
            json_response(200, &json!({ "faults": faults }))
        }
        ("GET", "/records") => {
            let servers: Map<String, Value> = shared
                .servers
                .iter()
                .map(|s| (s.config.id.as_str().to_string(), lock(&s.record).snapshot_with(false).to_json(false)))
                .collect();
            json_response(200, &json!({ "max_concurrent_total": shared.in_flight.peak(), "servers": servers }))
        }
        ("GET", p) if p.starts_with("/records/") => {
            let id = &p["/records/".len()..];
            match shared.server(id) {
                Some(s) => json_response(200, &lock(&s.record).snapshot().to_json(true)),
                None => error(404, format!("no server {id:?}")),
            }
        }
        ("POST", "/faults") => post_faults(shared, &req.body).await,
        ("POST", "/reset") => {
            shared.reset_records();
            json_response(200, &json!({ "ok": true }))
        }
        (_, "/servers" | "/faults" | "/records" | "/reset") => Response::method_not_allowed("GET, POST"),
        (_, p) if p.starts_with("/records/") => Response::method_not_allowed("GET"),
        _ => error(404, "unknown path"),
    }
}

async fn post_faults(shared: &Shared, body: &[u8]) -> Response {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return error(400, format!("invalid JSON: {e}")),
    };
    let Some(fault) = v.get("fault") else {
        return error(400, "missing \"fault\" (a fault, or null to clear)");
    };
    let fault = match Fault::from_json(fault) {
        Ok(f) => f,
        Err(e) => return error(400, e.to_string()),
    };
    let targets: Vec<usize> = match (v.get("ids"), v.get("fraction")) {
        (Some(_), Some(_)) => return error(400, "give \"ids\" or \"fraction\", not both"),
        (Some(ids), None) => {
            let Some(ids) = ids.as_array() else {
                return error(400, "\"ids\" must be an array of strings");
            };
            let mut found = Vec::new();
            let mut unknown = Vec::new();
            for id in ids {
                match id.as_str().and_then(|s| shared.by_id.get(s)) {
                    Some(&i) => found.push(i),
                    None => unknown.push(id.clone()),
                }
            }
            if !unknown.is_empty() {
                return json_response(404, &json!({ "error": "unknown server ids", "unknown": unknown }));
            }
            found
        }
        (None, Some(fraction)) => match (fraction.as_f64(), fault) {
            (Some(x), Some(f)) if (0.0..=1.0).contains(&x) => shared.pick_fraction(&f, x),
            (Some(_), None) => return error(400, "a fraction needs a fault; clear with ids or alone"),
            _ => return error(400, "\"fraction\" must be a number within 0..=1"),
        },
        (None, None) if fault.is_none() => (0..shared.servers.len()).collect(),
        (None, None) => return error(400, "give \"ids\" or \"fraction\""),
    };
    let mut waiting: Vec<usize> = targets.iter().copied().filter(|&i| shared.apply_fault(i, fault)).collect();
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while !waiting.is_empty() && Instant::now() < deadline {
        Timer::after(Duration::from_millis(2)).await;
        waiting.retain(|&i| !shared.settled(i));
    }
    let ids: Vec<&str> = targets.iter().map(|&i| shared.servers[i].config.id.as_str()).collect();
    json_response(200, &json!({ "ids": ids, "fault": fault.map(|f| f.to_json()) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;
    use crate::http::parse_head;
    use crate::record::Seen;
    use crate::shared::server_addr;

    fn shared(n: usize) -> Shared {
        let addrs: Vec<_> = (0..n).map(|i| server_addr(crate::Addressing::DistinctIps, i, 9527)).collect();
        Shared::new(SimConfig::new(n), &addrs)
    }

    fn call(shared: &Shared, method: &str, path: &str, body: &str) -> (u16, Value) {
        let head = format!("{method} {path} HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len());
        let mut req = parse_head(&head).unwrap().request;
        req.body = body.as_bytes().to_vec();
        let resp = smol::block_on(handle(shared, &req));
        let v = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        (resp.code, v)
    }

    #[test]
    fn faults_by_id_fraction_and_clear() {
        let s = shared(20);
        let (code, v) = call(&s, "POST", "/faults", r#"{"ids":["sim-0003"],"fault":"http500"}"#);
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["ids"], json!(["sim-0003"]));
        assert_eq!(s.servers[2].fault().map(|f| f.0), Some(Fault::Http500));

        let (code, v) = call(&s, "POST", "/faults", r#"{"fraction":0.25,"fault":{"slow_ms":1500}}"#);
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["ids"].as_array().map(Vec::len), Some(5));
        let (_, v) = call(&s, "GET", "/faults", "");
        assert_eq!(v["faults"].as_object().map(Map::len), Some(6));
        assert_eq!(v["faults"]["sim-0003"], json!("http500"));

        let (code, _) = call(&s, "POST", "/faults", r#"{"ids":["sim-0003"],"fault":null}"#);
        assert_eq!(code, 200);
        assert!(s.servers[2].fault().is_none());
        let (code, _) = call(&s, "POST", "/faults", r#"{"fault":null}"#);
        assert_eq!(code, 200);
        assert!(s.servers.iter().all(|x| x.fault().is_none()));
    }

    #[test]
    fn bad_fault_requests() {
        let s = shared(3);
        for (body, want) in [
            ("nope", 400),
            (r#"{"ids":["sim-0001"]}"#, 400),
            (r#"{"ids":["sim-0009"],"fault":"hang"}"#, 404),
            (r#"{"ids":["sim-0001"],"fault":"explode"}"#, 400),
            (r#"{"fraction":2,"fault":"hang"}"#, 400),
            (r#"{"fault":"hang"}"#, 400),
        ] {
            assert_eq!(call(&s, "POST", "/faults", body).0, want, "{body}");
        }
        assert!(s.servers.iter().all(|x| x.fault().is_none()));
    }

    #[test]
    fn servers_records_and_unknown_paths() {
        let s = shared(3);
        let (code, v) = call(&s, "GET", "/servers", "");
        assert_eq!(code, 200);
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(3));
        let (code, v) = call(&s, "GET", "/records/sim-0002", "");
        assert_eq!(code, 200);
        assert_eq!(v["total_requests"], json!(0));
        assert_eq!(call(&s, "GET", "/records/sim-9", "").0, 404);
        assert_eq!(call(&s, "GET", "/records", "").1["servers"].as_object().map(Map::len), Some(3));
        assert_eq!(call(&s, "POST", "/reset", "").0, 200);
        assert_eq!(call(&s, "DELETE", "/servers", "").0, 405);
        assert_eq!(call(&s, "GET", "/nope", "").0, 404);
    }

    #[test]
    fn records_tell_status_polls_apart_by_client() {
        let s = shared(2);
        for (ms, client) in [(10, "dash-a"), (20, "dash-b"), (30, "dash-a"), (40, "")] {
            lock(&s.servers[0].record).note(Seen::Status(client), Duration::from_millis(ms), 1);
        }
        lock(&s.servers[0].record).note(Seen::Other, Duration::from_millis(50), 1);

        let (code, v) = call(&s, "GET", "/records", "");
        assert_eq!(code, 200);
        let first = &v["servers"]["sim-0001"];
        assert_eq!(first["status_by_client"], json!({"-": 1, "dash-a": 2, "dash-b": 1}));
        assert_eq!(first["status_requests"], json!(4));
        assert!(first.get("status_times_ms_by_client").is_none() && first.get("request_times_ms").is_none());
        assert_eq!(v["servers"]["sim-0002"]["status_by_client"], json!({}));

        let (code, v) = call(&s, "GET", "/records/sim-0001", "");
        assert_eq!(code, 200);
        assert_eq!(v["status_by_client"], json!({"-": 1, "dash-a": 2, "dash-b": 1}));
        assert_eq!(v["status_times_ms_by_client"], json!({"-": [40.0], "dash-a": [10.0, 30.0], "dash-b": [20.0]}));
        assert_eq!(v["request_times_ms"], json!([10.0, 20.0, 30.0, 40.0, 50.0]));

        assert_eq!(call(&s, "POST", "/reset", "").0, 200);
        let (_, v) = call(&s, "GET", "/records/sim-0001", "");
        assert_eq!((&v["status_by_client"], &v["status_times_ms_by_client"]), (&json!({}), &json!({})));
    }
}
