//! `GET /api/servers` at 10 000 servers serves one cached body, rebuilt once
//! per change, not per request.

mod common;

use axum::http::{Method, StatusCode};
use common::{request, wait_until};
use ipvtl_client::{Cluster, ServerConfig};
use ipvtl_dashboard::{app, AppState, StateConfig};

#[test]
fn ten_thousand_servers_share_one_body_between_changes() {
    // Never polled (no background sweeps): the list is all `unknown`.
    let servers: Vec<ServerConfig> =
        (0..10_000).map(|i| ServerConfig::new(format!("edge-{i:05}"), "127.0.0.1").with_port(9)).collect();
    let cluster = Cluster::new(servers, common::settings()).unwrap();
    let state = AppState::new(cluster, StateConfig::default());
    let app = app(state.clone());
    let rebuilds = state.cache_rebuilds();

    let (s1, h1, b1) = common::call(&app, request(Method::GET, "/api/servers", &[], None));
    let (s2, h2, b2) = common::call(&app, request(Method::GET, "/api/servers", &[], None));
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(h1["etag"], h2["etag"]);
    assert_eq!(b1, b2);
    let list: serde_json::Value = serde_json::from_slice(&b1).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 10_000);
    assert_eq!(list[9_999]["state"]["status"], "unknown");
    for _ in 0..20 {
        common::call(&app, request(Method::GET, "/api/servers", &[], None));
    }
    assert_eq!(state.cache_rebuilds(), rebuilds, "requests never rebuild the body");
    let etag = h1["etag"].to_str().unwrap().to_string();
    let (status, _, body) = common::call(&app, request(Method::GET, "/api/servers", &[("if-none-match", &etag)], None));
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    // One change, one rebuild, a new body.
    state.cluster().set_maintenance("edge-00042", true).unwrap();
    state.invalidate();
    wait_until("the body is rebuilt", || state.cache_rebuilds() > rebuilds);
    let (_, h3, b3) = common::call(&app, request(Method::GET, "/api/servers", &[], None));
    assert_ne!(h3["etag"], h1["etag"]);
    assert_ne!(b3, b1);
    let list: serde_json::Value = serde_json::from_slice(&b3).unwrap();
    assert_eq!(list[42]["state"]["maintenance"], true);
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(state.cache_rebuilds(), rebuilds + 1, "one rebuild for one change");
}
