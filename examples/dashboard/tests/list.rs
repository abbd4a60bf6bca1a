//! `GET /api/servers` at fleet size: compressed answers (negotiated, made
//! once per body), filters, pages and `fields=summary`, calling the app
//! without a socket.

mod common;

use std::io::Read;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use common::{request, Harness};
use ipvtl_client::{Cluster, ServerConfig};
use ipvtl_dashboard::{app, AppState, StateConfig};
use serde_json::Value;

fn get(app: &axum::Router, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Bytes) {
    common::call(app, request(Method::GET, uri, headers, None))
}

fn decode(headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    match headers.get("content-encoding").map(|v| v.to_str().unwrap()) {
        None => plain.extend_from_slice(body),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body).read_to_end(&mut plain).unwrap();
        }
        Some("br") => {
            brotli::Decompressor::new(body, 4096).read_to_end(&mut plain).unwrap();
        }
        Some(other) => panic!("unexpected content-encoding {other}"),
    }
    plain
}

fn etag(headers: &HeaderMap) -> String {
    headers["etag"].to_str().unwrap().to_string()
}

/// A cluster of `n` servers never polled (no sim, no sweeps): its body
/// changes only when the test changes it.
fn quiet(n: usize) -> (AppState, axum::Router) {
    let (state, app) = quiet_now(n);
    settle(&state);
    (state, app)
}

/// Waits until the event pump has stopped rebuilding the body (it may
/// rebuild after the start or a change, besides the request that did).
fn settle(state: &AppState) {
    let mut rebuilds = state.cache_rebuilds();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        if state.cache_rebuilds() == rebuilds {
            return;
        }
        rebuilds = state.cache_rebuilds();
    }
}

fn quiet_now(n: usize) -> (AppState, axum::Router) {
    let servers: Vec<ServerConfig> = (0..n)
        .map(|i| {
            let mut c = ServerConfig::new(format!("edge-{i:05}"), "127.0.0.1").with_port(9);
            c.tags = vec![["red", "green", "blue"][i % 3].to_string()];
            c
        })
        .collect();
    let cluster = Cluster::new(servers, common::settings()).unwrap();
    let state = AppState::new(cluster, StateConfig::default());
    (state.clone(), app(state))
}

#[test]
fn compressed_answers_decode_to_the_plain_body_per_accept_encoding() {
    let h = Harness::new(20);
    h.poll();
    let (status, headers, plain) = get(&h.app, "/api/servers", &[]);
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("content-encoding").is_none(), "no Accept-Encoding: the plain body");
    assert_eq!(headers["vary"], "Accept-Encoding");
    let generation = etag(&headers);
    for (accept, coding) in [
        ("br", Some("br")),
        ("gzip", Some("gzip")),
        ("gzip, deflate, br", Some("br")),
        ("br;q=0, gzip", Some("gzip")),
        ("br;q=0.5, gzip;q=0.9", Some("gzip")),
        ("gzip;q=0.5, identity", None),
        ("identity", None),
        ("*", Some("br")),
        ("*;q=0", None),
        ("deflate", None),
    ] {
        let (status, headers, body) = get(&h.app, "/api/servers", &[("accept-encoding", accept)]);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers.get("content-encoding").map(|v| v.to_str().unwrap()), coding, "{accept:?}");
        assert_eq!(headers["vary"], "Accept-Encoding");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(decode(&headers, &body), plain, "{accept:?} decodes to the plain body");
        match coding {
            // Same body, another encoding: its own ETag.
            Some(c) => {
                assert_eq!(etag(&headers), format!("{}-{c}\"", generation.trim_end_matches('"')), "{accept:?}");
                assert!(body.len() < plain.len() / 3, "{accept:?}: {} of {} bytes", body.len(), plain.len());
            }
            None => assert_eq!(etag(&headers), generation, "{accept:?}"),
        }
    }
}

#[test]
fn each_encoding_has_its_etag_and_304() {
    let (_state, app) = quiet(50);
    let (_, plain_headers, _) = get(&app, "/api/servers", &[]);
    let plain_etag = etag(&plain_headers);
    let (_, br_headers, _) = get(&app, "/api/servers", &[("accept-encoding", "br")]);
    let (_, gz_headers, _) = get(&app, "/api/servers", &[("accept-encoding", "gzip")]);
    let (br_etag, gz_etag) = (etag(&br_headers), etag(&gz_headers));
    assert_eq!(br_etag, format!("{}-br\"", plain_etag.trim_end_matches('"')));
    assert_eq!(gz_etag, format!("{}-gzip\"", plain_etag.trim_end_matches('"')));

    for (accept, tag) in [(None, &plain_etag), (Some("br"), &br_etag), (Some("gzip"), &gz_etag)] {
        let mut headers = vec![("if-none-match", tag.as_str())];
        headers.extend(accept.map(|a| ("accept-encoding", a)));
        let (status, h, body) = get(&app, "/api/servers", &headers);
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{accept:?}");
        assert!(body.is_empty());
        assert_eq!(&etag(&h), tag);
        assert_eq!(h["vary"], "Accept-Encoding");
    }
    // The br tag does not answer a gzip request: that is another representation.
    let (status, h, _) = get(&app, "/api/servers", &[("if-none-match", &br_etag), ("accept-encoding", "gzip")]);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["content-encoding"], "gzip");
    // A list of tags, weak or not, as browsers send.
    let list = format!("\"nope\", W/{br_etag}");
    let (status, _, _) = get(&app, "/api/servers", &[("if-none-match", &list), ("accept-encoding", "br")]);
    assert_eq!(status, StatusCode::NOT_MODIFIED);
}

#[test]
fn the_body_is_compressed_once_per_generation_and_encoding() {
    let (state, app) = quiet(3_000);
    let before = state.list_compressions();
    // Concurrent first requests share one compression.
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let app = app.clone();
            std::thread::spawn(move || {
                let accept = if i % 2 == 0 { "br" } else { "gzip" };
                let (status, headers, body) = get(&app, "/api/servers", &[("accept-encoding", accept)]);
                assert_eq!(status, StatusCode::OK);
                (etag(&headers), decode(&headers, &body))
            })
        })
        .collect();
    let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(answers.windows(2).all(|w| w[0].1 == w[1].1));
    assert_eq!(state.list_compressions(), before + 2, "one br and one gzip for this body");
    for accept in ["br", "gzip", "gzip, br", "br;q=0, gzip"].repeat(5) {
        get(&app, "/api/servers", &[("accept-encoding", accept)]);
    }
    assert_eq!(state.list_compressions(), before + 2, "later requests reuse them");

    // A change: a new body, compressed again on demand (and only br, asked).
    let rebuilds = state.cache_rebuilds();
    state.cluster().set_maintenance("edge-00007", true).unwrap();
    state.invalidate();
    let (_, headers, body) = get(&app, "/api/servers", &[("accept-encoding", "br")]);
    assert!(state.cache_rebuilds() > rebuilds);
    assert_ne!(etag(&headers), answers[0].0);
    let list: Value = serde_json::from_slice(&decode(&headers, &body)).unwrap();
    assert_eq!(list[7]["state"]["maintenance"], true);
    assert_eq!(state.list_compressions(), before + 3, "one request, one compression");
    settle(&state);
    let (_, plain, _) = get(&app, "/api/servers", &[]);
    let newest = format!("{}-br\"", etag(&plain).trim_end_matches('"'));
    common::wait_until("the newest body is served compressed", || {
        etag(&get(&app, "/api/servers", &[("accept-encoding", "br")]).1) == newest
    });
    let after = state.list_compressions();
    assert!(after <= before + 4, "at most the pump's newer body besides: {before} -> {after}");
    for _ in 0..5 {
        let (_, again, _) = get(&app, "/api/servers", &[("accept-encoding", "br")]);
        assert_eq!(etag(&again), newest);
    }
    assert_eq!(state.list_compressions(), after, "reused for this body");
}

#[test]
fn after_a_sweep_the_previous_compressed_list_is_served_while_the_new_one_is_made() {
    let h = Harness::new(200);
    let (state, app) = (&h.state, &h.app);
    h.poll();
    settle(state);
    let (_, h1, b1) = get(app, "/api/servers", &[("accept-encoding", "br")]);
    let old = decode(&h1, &b1);
    // A sweep (not a change made through the API, so not marked): the
    // pump installs a new body, and the old variant is not stale.
    h.poll();
    let (_, plain_headers, plain) = get(app, "/api/servers", &[]);
    let newest = format!("{}-br\"", etag(&plain_headers).trim_end_matches('"'));
    let (_, h2, b2) = get(app, "/api/servers", &[("accept-encoding", "br")]);
    if etag(&h2) == etag(&h1) {
        assert_eq!(decode(&h2, &b2), old, "the previous list, under its own tag");
    } else {
        assert_eq!(etag(&h2), newest);
        assert_eq!(decode(&h2, &b2), plain.to_vec());
    }
    common::wait_until("the new list is compressed", || {
        etag(&get(app, "/api/servers", &[("accept-encoding", "br")]).1) == newest
    });
    let (_, h3, b3) = get(app, "/api/servers", &[("accept-encoding", "br")]);
    assert_eq!(decode(&h3, &b3), plain.to_vec());

    // A change through the API: nothing older is served.
    state.cluster().set_maintenance(&h.id(4), true).unwrap();
    state.invalidate();
    let (_, h4, b4) = get(app, "/api/servers", &[("accept-encoding", "br")]);
    assert_ne!(etag(&h4), newest);
    let list: Value = serde_json::from_slice(&decode(&h4, &b4)).unwrap();
    assert_eq!(list[4]["state"]["maintenance"], true);
}

/// The servers of a filtered answer, and its `{next_cursor, total}`.
fn page(app: &axum::Router, uri: &str) -> (Vec<Value>, Option<String>, u64) {
    let (status, headers, body) = get(app, uri, &[]);
    assert_eq!(status, StatusCode::OK, "{uri}: {}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/json");
    let v: Value = serde_json::from_slice(&body).unwrap();
    let next = v["next_cursor"].as_str().map(str::to_string);
    assert!(next.is_some() || v["next_cursor"].is_null());
    (v["servers"].as_array().unwrap().clone(), next, v["total"].as_u64().unwrap())
}

fn ids(servers: &[Value]) -> Vec<String> {
    servers.iter().map(|s| s["config"]["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn filters_match_status_tag_and_text_and_compose() {
    let h = Harness::new(12);
    h.sim.set_fault(&h.id(1), Some(ipvtl_sim::Fault::Down));
    h.sim.set_fault(&h.id(2), Some(ipvtl_sim::Fault::Http500));
    h.poll();
    let (_, all) = h.get("/api/servers");
    let all = all.as_array().unwrap().clone();
    let health = |s: &Value| s["state"]["status"].as_str().unwrap().to_string();
    assert_eq!(health(&all[1]), "offline");
    assert_eq!(health(&all[2]), "error");
    let tags = |s: &Value| -> Vec<String> {
        s["config"]["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
    };
    let text = |s: &Value| {
        let c = &s["config"];
        ["id", "name", "host", "description"].map(|k| c[k].as_str().unwrap().to_lowercase()).join("\n")
    };
    type Oracle<'a> = Box<dyn Fn(&Value) -> bool + 'a>;
    let cases: Vec<(&str, Oracle)> = vec![
        ("status=online", Box::new(|s| health(s) == "online")),
        ("status=offline", Box::new(|s| health(s) == "offline")),
        ("status=ERROR", Box::new(|s| health(s) == "error")),
        ("status=offline,error", Box::new(|s| ["offline", "error"].contains(&health(s).as_str()))),
        ("status=offline&status=error", Box::new(|s| ["offline", "error"].contains(&health(s).as_str()))),
        ("status=unknown", Box::new(|_| false)),
        ("tag=canary", Box::new(|s| tags(s).contains(&"canary".into()))),
        ("tag=rack-a,canary", Box::new(|s| tags(s).iter().any(|t| t == "rack-a" || t == "canary"))),
        ("tag=nowhere", Box::new(|_| false)),
        ("q=SIM-0007", Box::new(|s| text(s).contains("sim-0007"))),
        ("q=sim-000", Box::new(|s| text(s).contains("sim-000"))),
        ("q=Transcoder%201%20", Box::new(|s| text(s).contains("transcoder 1 "))),
        ("q=127.0.0", Box::new(|s| text(s).contains("127.0.0"))),
        ("q=", Box::new(|_| true)),
        ("tag=rack-b&status=online", Box::new(|s| tags(s).contains(&"rack-b".into()) && health(s) == "online")),
        (
            "tag=rack-a,rack-b&status=online,offline&q=sim-000",
            Box::new(|s| {
                tags(s).iter().any(|t| t == "rack-a" || t == "rack-b")
                    && ["online", "offline"].contains(&health(s).as_str())
                    && text(s).contains("sim-000")
            }),
        ),
        ("fields=full", Box::new(|_| true)),
        ("fields=full&_=12345", Box::new(|_| true)),
    ];
    for (query, oracle) in cases {
        let want: Vec<&Value> = all.iter().filter(|s| oracle(s)).collect();
        let (servers, next, total) = page(&h.app, &format!("/api/servers?{query}"));
        assert_eq!(ids(&servers), ids(&want.iter().map(|v| (*v).clone()).collect::<Vec<_>>()), "{query}");
        assert_eq!(total, want.len() as u64, "{query}");
        assert_eq!(next, None, "{query}: no limit, one page");
        for (got, want) in servers.iter().zip(&want) {
            assert_eq!(got, *want, "{query}: the server as in the plain list");
        }
    }
    // A parameter the list does not know leaves the plain list.
    let (status, headers, body) = get(&h.app, "/api/servers?_=12345", &[]);
    assert_eq!(status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&body).unwrap().is_array());
    assert!(!etag(&headers).contains('-'));
}

#[test]
fn pages_walk_every_server_once_in_order() {
    let (_state, app) = quiet(250);
    let (_, _, plain) = get(&app, "/api/servers", &[]);
    let all: Vec<Value> = serde_json::from_slice(&plain).unwrap();
    for (filter, keep) in [("", None), ("&tag=green", Some("green")), ("&tag=blue&q=edge-001", Some("blue"))] {
        let want: Vec<String> = ids(&all)
            .into_iter()
            .enumerate()
            .filter(|(i, id)| {
                keep.is_none_or(|t| t == ["red", "green", "blue"][i % 3])
                    && (!filter.contains("q=") || id.contains("edge-001"))
            })
            .map(|(_, id)| id)
            .collect();
        for limit in [1, 7, 50, 249, 250, 1000] {
            let mut got = Vec::new();
            let mut cursor: Option<String> = None;
            let mut pages = 0;
            loop {
                let uri = match &cursor {
                    None => format!("/api/servers?limit={limit}{filter}"),
                    Some(c) => format!("/api/servers?limit={limit}{filter}&cursor={c}"),
                };
                let (servers, next, total) = page(&app, &uri);
                assert_eq!(total, want.len() as u64, "{uri}");
                assert!(servers.len() <= limit);
                got.extend(ids(&servers));
                pages += 1;
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
                assert!(pages <= want.len() + 1, "{uri}: no end");
            }
            assert_eq!(got, want, "limit {limit}{filter}");
            assert_eq!(pages, want.len().div_ceil(limit).max(1), "limit {limit}{filter}");
        }
    }
    // One page of everything holds the plain body's bytes.
    let (_, _, body) = get(&app, "/api/servers?limit=10000", &[]);
    let mut want = b"{\"servers\":".to_vec();
    want.extend_from_slice(&plain);
    want.extend_from_slice(b",\"next_cursor\":null,\"total\":250}");
    assert_eq!(body, want);
}

#[test]
fn a_cursor_survives_a_change_to_the_fleet() {
    let (state, app) = quiet(30);
    let (first, next, _) = page(&app, "/api/servers?limit=10");
    assert_eq!(ids(&first).last().unwrap(), "edge-00009");
    state.cluster().set_maintenance("edge-00012", true).unwrap();
    state.invalidate();
    let (second, _, _) = page(&app, &format!("/api/servers?limit=10&cursor={}", next.unwrap()));
    assert_eq!(ids(&second).first().unwrap(), "edge-00010", "resumes after the last server given");
    assert_eq!(second[2]["state"]["maintenance"], true, "from the new body");
}

#[test]
fn summary_leaves_out_channels_and_counts_them_by_state() {
    let h = Harness::new(6);
    h.poll();
    let (_, all) = h.get("/api/servers");
    let (servers, _, total) = page(&h.app, "/api/servers?fields=summary");
    assert_eq!(total, 6);
    assert_eq!(servers.len(), 6);
    for (summary, full) in servers.iter().zip(all.as_array().unwrap()) {
        let channels = full["state"]["channels"].as_array().unwrap();
        assert!(!channels.is_empty());
        let counts = summary["state"]["channel_counts"].as_object().unwrap();
        assert!(summary["state"].get("channels").is_none(), "{summary}");
        for state in ["idle", "running", "stopping"] {
            assert!(counts.contains_key(state), "{counts:?}");
        }
        for (state, n) in counts {
            let want = channels.iter().filter(|c| c["state"] == state.as_str()).count();
            assert_eq!(n.as_u64().unwrap() as usize, want, "{state}");
        }
        assert_eq!(counts.values().map(|n| n.as_u64().unwrap() as usize).sum::<usize>(), channels.len());
        // Everything else is the full server.
        let mut s = summary.clone();
        s["state"].as_object_mut().unwrap().remove("channel_counts");
        let mut f = full.clone();
        f["state"].as_object_mut().unwrap().remove("channels");
        assert_eq!(s, f);
    }
    // Composes with filters and pages.
    let (servers, next, total) = page(&h.app, "/api/servers?fields=summary&tag=rack-a&limit=1");
    assert_eq!((servers.len(), total), (1, 2));
    assert!(next.is_some());
    assert!(servers[0]["state"]["channel_counts"].is_object());
}

#[test]
fn filtered_answers_are_compressed_when_small_and_have_their_own_etag() {
    let h = Harness::new(8);
    h.poll();
    let uri = "/api/servers?tag=rack-a&limit=1";
    let (_, plain_headers, plain) = get(&h.app, uri, &[]);
    let (status, headers, body) = get(&h.app, uri, &[("accept-encoding", "br")]);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-encoding"], "br");
    assert_eq!(headers["vary"], "Accept-Encoding");
    assert_eq!(decode(&headers, &body), plain);
    let (_, gz_headers, gz) = get(&h.app, uri, &[("accept-encoding", "gzip")]);
    assert_eq!(decode(&gz_headers, &gz), plain);
    let tags = [etag(&plain_headers), etag(&headers), etag(&gz_headers)];
    assert!(tags[0] != tags[1] && tags[1] != tags[2] && tags[0] != tags[2], "{tags:?}");
    let (_, full_headers, _) = get(&h.app, "/api/servers", &[]);
    assert_ne!(tags[0], etag(&full_headers), "another query, another tag");
    let (status, _, _) = get(&h.app, uri, &[("accept-encoding", "br"), ("if-none-match", &tags[1])]);
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let (status, _, _) = get(&h.app, "/api/servers?tag=rack-b&limit=1", &[("if-none-match", &tags[0])]);
    assert_eq!(status, StatusCode::OK, "another query");
}

#[test]
fn bad_parameters_are_422s_that_name_the_parameter_and_valid_values() {
    let (_state, app) = quiet(3);
    for (query, needles) in [
        ("status=onlin", &["status", "\"onlin\"", "online, offline, error or unknown"][..]),
        ("status=online,", &["status", "online, offline, error or unknown"]),
        ("tag=", &["tag", "empty"]),
        ("tag=a,,b", &["tag", "empty"]),
        ("limit=0", &["limit", "1 to 10000"]),
        ("limit=ten", &["limit", "1 to 10000"]),
        ("limit=10001", &["limit", "1 to 10000"]),
        ("limit=-1", &["limit", "1 to 10000"]),
        ("cursor=zz", &["cursor", "next_cursor"]),
        ("cursor=", &["cursor"]),
        ("fields=all", &["fields", "full", "summary"]),
        ("q=a&q=b", &["q", "more than once"]),
        ("limit=1&limit=2", &["limit", "more than once"]),
    ] {
        let (status, body) = common::json_of(get(&app, &format!("/api/servers?{query}"), &[]));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        let detail = body["detail"].as_str().unwrap_or_else(|| panic!("{query}: {body}"));
        for n in needles {
            assert!(detail.contains(n), "{query}: {detail:?} lacks {n:?}");
        }
    }
}
