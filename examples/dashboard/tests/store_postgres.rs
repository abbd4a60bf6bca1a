//! The store on a real PostgreSQL: the same suite SQLite passes
//! (`src/store/suite.rs`), a newer schema refused, and the binary restarted
//! on `--store postgres://...` keeping the audit, batches, maintenance and
//! history.
//!
//! These tests are `#[ignore]`d: they need `IPVTL_TEST_PG_URL`, the URL of
//! a PostgreSQL database whose user may create databases, and are run by
//! `scripts/test.d/45-postgres.sh`, which starts a throw-away server on
//! loopback and runs them with `-- --ignored`. Run with `--ignored` and
//! without that variable, they fail, saying so. Each test works in a
//! database of its own, made for the run.

mod common;

#[path = "../src/store/suite.rs"]
mod suite;

use std::time::Duration;

use common::process::Dashboard;
use ipvtl_dashboard::store::{AuditRow, HistorySample, HistoryStep, Store, SCHEMA_VERSION};
use ipvtl_sim::{JsonForm, SimConfig, SimFleet};
use serde_json::json;
use sqlx::Connection;

/// The server's URL from the script, or a loud failure.
fn base_url() -> String {
    match std::env::var("IPVTL_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "IPVTL_TEST_PG_URL is not set: these tests need a real PostgreSQL; \
             run scripts/test.d/45-postgres.sh, which starts one and sets it"
        ),
    }
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (rest, String::new()),
    };
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    format!("{scheme}://{authority}/{db}{query}")
}

/// A new, empty database for one test; its URL.
fn fresh_database(name: &str) -> String {
    let base = base_url();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let db = format!("ipvtl_test_{name}_{}_{nanos}", std::process::id());
    smol::block_on(async {
        let mut c = sqlx::PgConnection::connect(&base).await.expect("the test server answers");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&mut c)
            .await
            .expect("CREATE DATABASE");
    });
    with_database(&base, &db)
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn the_store_suite_passes_on_postgresql() {
    let url = fresh_database("suite");
    smol::block_on(async {
        let store = Store::open(&url).await.expect("opens and migrates");
        suite::run(&store).await;
        // Twice on one database: names are unique per run, ids continue.
        suite::run(&store).await;
        drop(store);
        let again = Store::open(&url).await.expect("opens again");
        assert_eq!(again.schema_version().await.unwrap(), SCHEMA_VERSION);
        assert!(again.has_keys().await.unwrap(), "kept across opens");
    });
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn a_newer_schema_is_refused_on_postgresql() {
    let url = fresh_database("newer");
    smol::block_on(async {
        drop(Store::open(&url).await.expect("opens"));
        suite::pretend_newer_schema(&url, 99).await;
        let e = Store::open(&url).await.unwrap_err();
        assert!(e.store.contains("127.0.0.1") || e.store.contains("postgres"), "{e}");
        assert!(e.reason.contains("version 99") && e.reason.contains(&format!("up to {SCHEMA_VERSION}")), "{e}");
    });
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn the_binary_keeps_the_audit_batches_and_maintenance_across_a_restart() {
    let store = fresh_database("restart");
    let sim = SimFleet::start(
        SimConfig::new(3)
            .with_initial_running(1.0)
            .with_stopping_time(Duration::from_millis(300))
            .with_start_delay(Duration::from_millis(100)),
    )
    .expect("simulator starts");
    let dir = common::temp_dir("store-postgres");
    let servers = dir.join("servers.json");
    sim.write_servers_json(&servers, JsonForm::Object).unwrap();
    let ids = sim.ids();
    let start = |audit: &str| {
        let audit = dir.join(audit);
        let d = Dashboard::spawn(&[
            "--servers",
            servers.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--store",
            &store,
            "--audit-log",
            audit.to_str().unwrap(),
        ]);
        common::wait_until("the first sweep is listed", || {
            let (_, list) = d.get("/api/servers");
            list.as_array().is_some_and(|l| l.iter().all(|s| s["state"]["status"] == "online"))
        });
        d
    };

    let mut d = start("audit-1.jsonl");
    let (code, body) = d.post_json(&format!("/api/servers/{}/maintenance", ids[0]), &json!({"enabled": true}));
    assert_eq!(code, 200, "{body}");
    let (code, started) = d.post_json("/api/batch", &json!({"action": "restart", "filter": {"channels": [1]}}));
    assert_eq!(code, 202, "{started}");
    let batch = started["batch_id"].as_u64().expect("a batch id");
    common::wait_until("the batch finishes", || d.get(&format!("/api/batches/{batch}")).1["state"] == "finished");
    let (_, report) = d.get(&format!("/api/batches/{batch}"));
    let stored = |d: &Dashboard| {
        let (code, hist) = d.get(&format!("/api/servers/{}/history?since=0&step=1m", ids[1]));
        assert_eq!(code, 200, "{hist}");
        hist["points"].as_array().unwrap().clone()
    };
    common::wait_until("the polls are in the stored history", || !stored(&d).is_empty());
    let history = stored(&d);
    d.kill();

    let d = start("audit-2.jsonl");
    assert_eq!(d.get(&format!("/api/servers/{}", ids[0])).1["state"]["maintenance"], true, "maintenance restored");
    assert_eq!(d.get(&format!("/api/servers/{}", ids[1])).1["state"]["maintenance"], false);
    let (code, kept) = d.get(&format!("/api/batches/{batch}"));
    assert_eq!(code, 200, "{kept}");
    assert_eq!(kept, report, "the batch and its report, as they were");
    let (code, audit) = d.get("/api/audit?limit=1000");
    assert_eq!(code, 200, "{audit}");
    let events: Vec<&str> = audit["entries"].as_array().unwrap().iter().filter_map(|e| e["event"].as_str()).collect();
    for wanted in ["maintenance", "batch_requested", "batch_finished"] {
        assert!(events.contains(&wanted), "{wanted} is kept: {events:?}");
    }
    let kept = stored(&d);
    assert!(kept.len() >= history.len() && kept[0]["at"] == history[0]["at"], "kept: {history:?} {kept:?}");
    let (code, next) = d.post_json("/api/batch", &json!({"action": "restart", "filter": {"channels": [2]}}));
    assert_eq!(code, 202, "{next}");
    assert!(next["batch_id"].as_u64().unwrap() > batch, "ids continue: {next}");
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}
