//! The store on a real PostgreSQL: the same suite SQLite passes
//! (`src/store/suite.rs`), a newer schema refused, and the binary restarted
//! on `--store postgres://...` keeping the audit, batches, maintenance and
//! history; and the server stopped and started under the running binary
//! (actions refused with 503 while it is away, reads go on, the pool
//! reconnects, no audit entry of an answered action is lost).
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

use std::process::Command;
use std::sync::{RwLock, RwLockReadGuard};
use std::time::Duration;

use common::process::{file_args, Dashboard};
use ipvtl_dashboard::store::{
    AuditRow, HistorySample, HistoryStep, NewOutboxRow, Store, StoredSilence, SCHEMA_VERSION,
};
use ipvtl_sim::JsonForm;
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

/// Held by every test while it needs the server up; the outage test takes
/// it alone (the tests of this file run in parallel on one server).
static SERVER: RwLock<()> = RwLock::new(());

fn server_up() -> RwLockReadGuard<'static, ()> {
    SERVER.read().unwrap_or_else(|p| p.into_inner())
}

/// Runs the script's `pg-ctl start|stop` (IPVTL_TEST_PG_CTL).
fn pg_ctl(what: &str) {
    let ctl = std::env::var("IPVTL_TEST_PG_CTL")
        .unwrap_or_else(|_| panic!("IPVTL_TEST_PG_CTL is not set: run scripts/test.d/45-postgres.sh"));
    let status = Command::new(&ctl).arg(what).status().expect("pg-ctl runs");
    assert!(status.success(), "{ctl} {what}: {status}");
}

/// Starts the server again when dropped, also when the test fails while
/// it is stopped.
struct Restart(bool);

impl Drop for Restart {
    fn drop(&mut self) {
        if self.0 {
            pg_ctl("start");
        }
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
    let _up = server_up();
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
    let _up = server_up();
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
    let _up = server_up();
    let store = fresh_database("restart");
    let sim = common::running_sim(3, Duration::from_millis(300), Duration::from_millis(100));
    let (dir, servers) = common::servers_file(&sim, "store-postgres", JsonForm::Object);
    let ids = sim.ids();
    let start = |audit: &str| {
        let audit = dir.join(audit);
        let d = Dashboard::spawn(&file_args(&servers, &audit, &["--store", &store]));
        d.wait_first_sweep();
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

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL and IPVTL_TEST_PG_CTL: run scripts/test.d/45-postgres.sh"]
fn postgresql_going_away_and_coming_back_loses_no_audit_entry() {
    let _alone = SERVER.write().unwrap_or_else(|p| p.into_inner());
    let store = fresh_database("outage");
    // A stop takes long enough to stop the server while one is under way.
    let sim = common::running_sim(2, Duration::from_secs(2), Duration::from_millis(50));
    let (dir, servers) = common::servers_file(&sim, "store-postgres-outage", JsonForm::Object);
    let audit = dir.join("audit.jsonl");
    let d = Dashboard::spawn(&file_args(&servers, &audit, &["--store", &store, "--poll-interval", "0.2"]));
    d.wait_first_sweep();
    let id = sim.ids()[0].clone();
    let commands = || sim.record(&id).expect("a simulated server").commands.len();
    let polls = || sim.ids().iter().map(|i| sim.record(i).unwrap().status_requests).sum::<u64>();
    let mut answered = 0;
    let (code, body) = d.post(&format!("/api/servers/{id}/channels/1/stop"));
    assert_eq!(code, 200, "{body}");
    answered += 1;

    // The server goes away while an action is under way: its outcome is
    // kept and reaches the table once the server is back.
    let mut restart = Restart(true);
    let sent = commands();
    let addr = d.addr;
    let path = format!("/api/servers/{id}/channels/2/stop");
    let under_way = std::thread::spawn(move || common::process::http(addr, "POST", &path, None));
    common::wait_until("the stop is sent (its intent is recorded)", || commands() > sent);
    pg_ctl("stop");
    let (code, body) = under_way.join().expect("the request thread");
    assert_eq!(code, 200, "{body}");
    answered += 1;
    let sent = commands();
    let (code, body) = d.post(&format!("/api/servers/{id}/channels/1/start"));
    assert_eq!(code, 503, "the intent cannot be recorded: {body}");
    assert_eq!(commands(), sent, "nothing was sent");
    let (code, list) = d.get("/api/servers");
    assert_eq!(code, 200, "reads go on: {list}");
    let before = polls();
    common::wait_until("polling goes on", || polls() >= before + 4);
    common::wait_until("/health says the store is failing", || d.get("/health").1["status"] == "degraded");
    assert_eq!(d.get("/health").1["store"]["ok"], false);

    restart.0 = false;
    pg_ctl("start");
    let (code, body) = d.post(&format!("/api/servers/{id}/channels/1/start"));
    assert_eq!(code, 200, "the pool reconnects: {body}");
    answered += 1;
    assert_eq!(commands(), sent + 1);
    common::wait_until("/health is ok again", || d.get("/health").1["status"] == "ok");
    drop(d);

    // Straight from the table: every answered action's intent and outcome.
    let events: Vec<String> = smol::block_on(async {
        let mut c = sqlx::PgConnection::connect(&store).await.expect("the store answers");
        let rows = sqlx::query("SELECT event FROM audit ORDER BY id").fetch_all(&mut c).await.expect("the audit");
        rows.iter().map(|r| sqlx::Row::get::<String, _>(r, "event")).collect()
    });
    // Each intent, then its outcome (the one kept through the outage
    // comes before the next intent); the refused action left nothing.
    let pair = ["action_requested", "action_finished"];
    assert_eq!(events, pair.repeat(answered), "{events:?}");
    let _ = std::fs::remove_dir_all(dir);
}
