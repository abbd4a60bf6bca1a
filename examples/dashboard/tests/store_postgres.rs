//! The store on a real PostgreSQL: the same suite SQLite passes
//! (`src/store/suite.rs`), a newer schema refused, and the binary restarted
//! on `--store postgres://...` keeping the audit, batches, maintenance and
//! history; and the server stopped and started under the running binary
//! (actions refused with 503 while it is away, reads go on, the pool
//! reconnects, no audit entry of an answered action is lost). And what
//! several instances share: heartbeats, shard leases and their epochs,
//! fenced server-state writes and their announcements, channel locks.
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

use common::pg::fresh_database;
use common::process::{file_args, Dashboard};
use ipvtl_dashboard::store::{
    AuditRow, HistorySample, HistoryStep, LockHolder, NewOutboxRow, StateListener, StateWrite, Store, StoredSilence,
    SCHEMA_VERSION,
};
use ipvtl_sim::JsonForm;
use serde_json::json;
use sqlx::Connection;

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

// Several instances sharing one fleet: two stores on one database stand
// for two instances (each its own pool); every time is the database's.

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(300);

/// Two stores on a new database, its shard leases made.
fn two_instances(name: &str, shards: u16) -> (String, Store, Store) {
    let url = fresh_database(name);
    smol::block_on(async {
        let a = Store::open(&url).await.expect("opens");
        let b = Store::open(&url).await.expect("opens");
        a.ensure_shards(shards).await.expect("the leases are made");
        b.ensure_shards(shards).await.expect("the same count again");
        (url, a, b)
    })
}

fn write(server_id: &str, shard: u16, epoch: u64, entry: &str) -> StateWrite {
    StateWrite { server_id: server_id.into(), shard, epoch, entry: entry.into() }
}

/// The next version `listener` announces, within 10 s.
async fn announced_within(listener: &mut StateListener) -> u64 {
    smol::future::or(async { Some(listener.recv().await) }, async {
        smol::Timer::after(Duration::from_secs(10)).await;
        None
    })
    .await
    .expect("announced within 10 s")
    .expect("a version")
}

/// Runs `sql` on the database at `url`, outside any store.
async fn exec(url: &str, sql: &'static str) {
    let mut c = sqlx::PgConnection::connect(url).await.expect("the store answers");
    sqlx::query(sql).execute(&mut c).await.expect(sql);
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn of_two_instances_claiming_a_shard_at_one_epoch_exactly_one_wins() {
    let _up = server_up();
    const N: u16 = 16;
    let (_, a, b) = two_instances("race", N);
    let all: Vec<u16> = (0..N).collect();
    // Each race at the epoch the last one left.
    for epoch in 0..8 {
        let claims: Vec<(u16, u64)> = all.iter().map(|&s| (s, epoch)).collect();
        let barrier = std::sync::Barrier::new(2);
        let race = |store: &Store, me: &str| {
            // Each its own half first, so both win some of the shards.
            let mut mine = claims.clone();
            if me == "b" {
                mine.reverse();
            }
            barrier.wait();
            smol::block_on(store.lease_round(me, LONG, &[], &mine, &[])).expect("a round")
        };
        let (ra, rb) = std::thread::scope(|s| {
            let ra = s.spawn(|| race(&a, "a"));
            let rb = s.spawn(|| race(&b, "b"));
            (ra.join().unwrap(), rb.join().unwrap())
        });
        let mut won: Vec<(u16, u64)> = ra.claimed.iter().chain(&rb.claimed).copied().collect();
        won.sort_unstable();
        let expected: Vec<(u16, u64)> = all.iter().map(|&s| (s, epoch + 1)).collect();
        assert_eq!(won, expected, "race at {epoch}: each shard won once, at the next epoch: {ra:?} {rb:?}");
        // What each was told it won is what the table says.
        let view = smol::block_on(a.lease_round("a", LONG, &[], &[], &[])).unwrap().view;
        for l in &view {
            let owner = if ra.claimed.contains(&(l.shard, epoch + 1)) { "a" } else { "b" };
            assert_eq!((l.owner.as_ref().map(|o| o.as_str()), l.epoch), (Some(owner), epoch + 1), "{l:?}");
            assert!(l.remaining.is_some_and(|r| r > Duration::from_secs(20)), "{l:?}");
        }
        // Both let go of what they won (epochs unchanged) for the next race.
        smol::block_on(a.lease_round("a", LONG, &[], &[], &ra.claimed)).unwrap();
        let after = smol::block_on(b.lease_round("b", LONG, &[], &[], &rb.claimed)).unwrap();
        assert!(after.view.iter().all(|l| l.owner.is_none() && l.remaining.is_none()), "{:?}", after.view);
    }
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn a_stale_epoch_renews_nothing_and_a_held_lease_is_claimed_only_after_it_expires() {
    let _up = server_up();
    let (_, a, b) = two_instances("leases", 2);
    smol::block_on(async {
        let r = a.lease_round("a", SHORT, &[], &[(0, 0)], &[]).await.unwrap();
        assert_eq!(r.claimed, [(0, 1)]);
        let r = a.lease_round("a", SHORT, &[(0, 0)], &[], &[]).await.unwrap();
        assert_eq!(r.renewed, [], "a stale epoch renews nothing");
        let r = a.lease_round("a", SHORT, &[(0, 1)], &[], &[]).await.unwrap();
        assert_eq!(r.renewed, [(0, 1)]);
        let r = b.lease_round("b", LONG, &[(0, 1)], &[(0, 1)], &[]).await.unwrap();
        assert_eq!((r.renewed.len(), r.claimed.len()), (0, 0), "held by a, unexpired: {r:?}");
        let l = &r.view[0];
        assert_eq!((l.owner.as_ref().map(|o| o.as_str()), l.epoch), (Some("a"), 1));
        assert!(l.remaining.is_some_and(|left| left <= SHORT), "{l:?}");
        assert_eq!(
            (r.view[1].owner.as_ref().map(|o| o.as_str()), r.view[1].epoch, r.view[1].remaining),
            (None, 0, None)
        );

        smol::Timer::after(SHORT + Duration::from_millis(200)).await;
        let r = b.lease_round("b", LONG, &[], &[], &[]).await.unwrap();
        assert_eq!(
            (r.view[0].owner.as_ref().map(|o| o.as_str()), r.view[0].remaining),
            (Some("a"), None),
            "expired, still a's"
        );
        let r = b.lease_round("b", LONG, &[], &[(0, 0), (0, 1)], &[]).await.unwrap();
        assert_eq!(r.claimed, [(0, 2)], "expired: taken at the epoch seen, bumped");
        let r = a.lease_round("a", SHORT, &[(0, 1)], &[(0, 1)], &[]).await.unwrap();
        assert_eq!((r.renewed.len(), r.claimed.len()), (0, 0), "a's epoch is stale: {r:?}");
        assert_eq!((r.view[0].owner.as_ref().map(|o| o.as_str()), r.view[0].epoch), (Some("b"), 2));

        // A release by another, or at a stale epoch, does nothing; the
        // owner's frees it at once, its epoch unchanged.
        a.lease_round("a", LONG, &[], &[], &[(0, 2)]).await.unwrap();
        let r = b.lease_round("b", LONG, &[], &[], &[(0, 1)]).await.unwrap();
        assert_eq!(r.view[0].owner.as_ref().map(|o| o.as_str()), Some("b"));
        let r = b.lease_round("b", LONG, &[], &[], &[(0, 2)]).await.unwrap();
        assert_eq!(
            (r.view[0].owner.as_ref().map(|o| o.as_str()), r.view[0].epoch, r.view[0].remaining),
            (None, 2, None)
        );
        let r = a.lease_round("a", LONG, &[], &[(0, 2)], &[]).await.unwrap();
        assert_eq!(r.claimed, [(0, 3)]);
    });
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn the_writes_of_an_expired_or_superseded_owner_are_refused() {
    let _up = server_up();
    let (_, a, b) = two_instances("fencing", 2);
    smol::block_on(async {
        let r = a.lease_round("a", SHORT, &[], &[(0, 0), (1, 0)], &[]).await.unwrap();
        assert_eq!(r.claimed, [(0, 1), (1, 1)]);
        let rows = [write("s1", 0, 1, r#"{"by":"a"}"#), write("s2", 1, 1, "{}"), write("s3", 0, 0, "{}")];
        let w = a.put_server_states("a", &rows).await.unwrap();
        assert_eq!((w.written, w.refused.as_slice()), (2, ["s3".to_string()].as_slice()), "a stale epoch: {w:?}");
        let w = b.put_server_states("b", &[write("s1", 0, 1, "{}")]).await.unwrap();
        assert_eq!((w.written, w.refused, w.max_version), (0, vec!["s1".to_string()], 0), "not the owner");

        smol::Timer::after(SHORT + Duration::from_millis(200)).await;
        let w = a.put_server_states("a", &[write("s1", 0, 1, "{}")]).await.unwrap();
        assert_eq!((w.written, w.refused), (0, vec!["s1".to_string()]), "the lease expired");
        let r = b.lease_round("b", LONG, &[], &[(0, 1)], &[]).await.unwrap();
        assert_eq!(r.claimed, [(0, 2)]);
        let w = a.put_server_states("a", &[write("s1", 0, 1, "{}"), write("s1", 0, 2, "{}")]).await.unwrap();
        assert_eq!((w.written, &w.refused), (0, &vec!["s1".to_string()]), "superseded: {w:?}");
        let before = a.server_states_since(0).await.unwrap();
        let w = b.put_server_states("b", &[write("s1", 0, 2, r#"{"by":"b"}"#)]).await.unwrap();
        assert_eq!((w.written, w.refused.len()), (1, 0));
        assert!(w.max_version > before.iter().map(|s| s.version).max().unwrap());

        let rows = b.server_states_since(0).await.unwrap();
        let seen: Vec<_> =
            rows.iter().map(|s| (s.server_id.as_str(), s.owner.as_str(), s.epoch, s.entry.as_str())).collect();
        assert_eq!(seen, [("s2", "a", 1, "{}"), ("s1", "b", 2, r#"{"by":"b"}"#)], "by version");
        assert_eq!(rows[1].version, w.max_version);
        assert!(rows.iter().all(|s| s.age < Duration::from_secs(5)), "{rows:?}");
    });
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn a_state_written_is_announced_with_its_version_and_read_since() {
    let _up = server_up();
    let (_, a, b) = two_instances("notify", 1);
    smol::block_on(async {
        let mut listener = b.state_listener().await.expect("listens");
        a.lease_round("a", LONG, &[], &[(0, 0)], &[]).await.unwrap();
        let w = a.put_server_states("a", &[write("s1", 0, 1, r#"{"n":1}"#)]).await.unwrap();
        assert_eq!(w.written, 1);
        let announced = announced_within(&mut listener).await;
        assert_eq!(announced, w.max_version);
        let rows = b.server_states_since(0).await.unwrap();
        assert_eq!((rows.len(), rows[0].version, rows[0].entry.as_str()), (1, announced, r#"{"n":1}"#));

        let w = a
            .put_server_states("a", &[write("s1", 0, 1, r#"{"n":2}"#), write("s2", 0, 1, r#"{"n":3}"#)])
            .await
            .unwrap();
        assert_eq!(
            announced_within(&mut listener).await,
            w.max_version,
            "one announcement per write, its highest version"
        );
        let newer = b.server_states_since(announced).await.unwrap();
        let seen: Vec<_> = newer.iter().map(|s| (s.server_id.as_str(), s.entry.as_str())).collect();
        assert_eq!(seen.len(), 2, "{newer:?}");
        assert!(seen.contains(&("s1", r#"{"n":2}"#)) && seen.contains(&("s2", r#"{"n":3}"#)), "{seen:?}");
        assert!(newer[0].version < newer[1].version && newer[1].version == w.max_version);
        assert_eq!(b.server_states_since(w.max_version).await.unwrap(), []);

        // Nothing written, nothing announced.
        let w = b.put_server_states("b", &[write("s1", 0, 1, "{}")]).await.unwrap();
        assert_eq!(w.written, 0);
        let quiet = smol::future::or(async { Some(listener.recv().await) }, async {
            smol::Timer::after(Duration::from_millis(500)).await;
            None
        })
        .await;
        assert!(quiet.is_none(), "{quiet:?}");
    });
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn a_channel_lock_holds_across_instances_until_released_or_expired() {
    let _up = server_up();
    let (_, a, b) = two_instances("locks", 1);
    smol::block_on(async {
        assert_eq!(a.lock_channel("srv", 1, "a", "ta", SHORT, LONG).await.unwrap(), None);
        let refused = b.lock_channel("srv", 1, "b", "tb", LONG, LONG).await.unwrap().expect("held by a");
        assert_eq!((refused.holder.as_str(), refused.token.as_str()), ("a", "ta"));
        assert!(refused.remaining <= SHORT, "{refused:?}");
        assert_eq!(b.lock_channel("srv", 2, "b", "tb2", LONG, LONG).await.unwrap(), None, "another channel");
        assert!(!b.unlock_channel("srv", 1, "tb").await.unwrap(), "a wrong token unlocks nothing");
        assert!(!b.extend_channel_lock("srv", 1, "tb", LONG).await.unwrap());
        assert!(a.extend_channel_lock("srv", 1, "ta", SHORT).await.unwrap());

        smol::Timer::after(SHORT + Duration::from_millis(200)).await;
        assert!(!a.extend_channel_lock("srv", 1, "ta", SHORT).await.unwrap(), "expired");
        assert_eq!(b.lock_channel("srv", 1, "b", "tb", LONG, LONG).await.unwrap(), None, "taken after expiry");
        let refused = a.lock_channel("srv", 1, "a", "ta", LONG, LONG).await.unwrap();
        assert!(
            matches!(&refused, Some(LockHolder { holder, token, .. }) if holder == "b" && token == "tb"),
            "{refused:?}"
        );
        assert!(!a.unlock_channel("srv", 1, "ta").await.unwrap(), "the old token no longer holds it");
        assert!(b.unlock_channel("srv", 1, "tb").await.unwrap());
        assert!(!b.unlock_channel("srv", 1, "tb").await.unwrap(), "once");
        assert_eq!(a.lock_channel("srv", 1, "a", "ta2", LONG, LONG).await.unwrap(), None, "free again");
    });
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn heartbeat_ages_come_from_the_database_and_a_stale_instance_drops_out() {
    let _up = server_up();
    let (url, a, b) = two_instances("heartbeat", 2);
    let ttl = Duration::from_secs(5);
    smol::block_on(async {
        let live = a.heartbeat("i1", "http://i1:8080", ttl).await.unwrap();
        assert_eq!(live.len(), 1);
        assert!(live[0].age < Duration::from_secs(1), "{live:?}");
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!((live[0].started_at_unix - unix).abs() < 60.0, "{live:?}");
        let live = b.heartbeat("i2", "http://i2:8080", ttl).await.unwrap();
        let ids: Vec<_> = live.iter().map(|i| (i.id.as_str(), i.advertise.as_str())).collect();
        assert_eq!(ids, [("i1", "http://i1:8080"), ("i2", "http://i2:8080")]);

        // Only the database's clock counts: i1's heartbeat moved back there.
        exec(&url, "UPDATE instances SET heartbeat_at = now() - interval '3 seconds' WHERE id = 'i1'").await;
        let live = b.heartbeat("i2", "http://i2:8080", ttl).await.unwrap();
        let i1 = live.iter().find(|i| i.id == "i1").expect("i1 is still live");
        assert!(i1.age >= Duration::from_millis(2900) && i1.age < Duration::from_secs(4), "{i1:?}");
        let r = b.lease_round("i2", ttl, &[], &[], &[]).await.unwrap();
        assert_eq!(r.live.len(), 2, "the round sees the same: {r:?}");
        exec(&url, "UPDATE instances SET heartbeat_at = now() - interval '10 seconds' WHERE id = 'i1'").await;
        let live = b.heartbeat("i2", "http://i2:8080", ttl).await.unwrap();
        assert_eq!(live.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["i2"], "i1 is stale");
        let r = b.lease_round("i2", ttl, &[], &[], &[]).await.unwrap();
        assert_eq!(r.live.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["i2"]);

        // A heartbeat brings it back, keeping when it started; leaving
        // removes it and frees its leases.
        let started = a.heartbeat("i1", "http://i1:9090", ttl).await.unwrap()[0].started_at_unix;
        assert_eq!(b.heartbeat("i2", "x", ttl).await.unwrap()[0].started_at_unix, started);
        let r = b.lease_round("i2", LONG, &[], &[(0, 0), (1, 0)], &[]).await.unwrap();
        assert_eq!(r.claimed, [(0, 1), (1, 1)]);
        b.leave("i2").await.unwrap();
        let live = a.heartbeat("i1", "http://i1:9090", ttl).await.unwrap();
        assert_eq!(live.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["i1"]);
        let r = a.lease_round("i1", LONG, &[], &[(0, 1)], &[]).await.unwrap();
        assert!(
            r.view.iter().all(|l| l.epoch == 1 || l.owner.as_ref().map(|o| o.as_str()) == Some("i1")),
            "{:?}",
            r.view
        );
        assert_eq!(r.claimed, [(0, 2)], "freed at once, at the epoch it had");
        assert_eq!((r.view[1].owner.as_ref().map(|o| o.as_str()), r.view[1].epoch), (None, 1));
    });
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn an_instance_with_another_shard_count_is_refused() {
    let _up = server_up();
    let (_, a, b) = two_instances("shards", 8);
    smol::block_on(async {
        a.ensure_shards(8).await.expect("the same count, again");
        for other in [4, 16] {
            let e = b.ensure_shards(other).await.unwrap_err();
            assert!(e.reason.contains("for 8 shards") && e.reason.contains(&format!("configured for {other}")), "{e}");
        }
        assert!(b.ensure_shards(0).await.unwrap_err().reason.contains("at least 1"));
        let r = a.lease_round("a", LONG, &[], &[], &[]).await.unwrap();
        assert_eq!(r.view.len(), 8, "nothing added: {:?}", r.view);
        assert!(r.view.iter().enumerate().all(|(i, l)| usize::from(l.shard) == i && l.epoch == 0 && l.owner.is_none()));
    });
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL and IPVTL_TEST_PG_CTL: run scripts/test.d/45-postgres.sh"]
fn a_listener_cut_off_by_an_outage_says_so_and_listens_again() {
    let _alone = SERVER.write().unwrap_or_else(|p| p.into_inner());
    let (_, a, b) = two_instances("relisten", 1);
    smol::block_on(async {
        let mut listener = b.state_listener().await.expect("listens");
        a.lease_round("a", LONG, &[], &[(0, 0)], &[]).await.unwrap();
        let first = a.put_server_states("a", &[write("s1", 0, 1, "1")]).await.unwrap().max_version;
        assert_eq!(announced_within(&mut listener).await, first);

        let mut restart = Restart(true);
        pg_ctl("stop");
        let e = smol::future::or(async { Some(listener.recv().await) }, async {
            smol::Timer::after(Duration::from_secs(15)).await;
            None
        })
        .await
        .expect("the outage is noticed within 15 s")
        .expect_err("an error, not a version");
        assert!(e.reason.contains("listening on ipvtl_state"), "{e}");
        restart.0 = false;
        pg_ctl("start");
        // Errors until it listens again, and says so: then what was missed
        // is read, and what comes next is announced.
        let mut errors = vec![e.reason];
        while !errors.last().unwrap().contains("listening again") {
            assert!(errors.len() < 5, "{errors:?}");
            errors.push(listener.recv().await.expect_err("no version was written").reason);
        }
        assert!(errors.last().unwrap().contains("may have been missed"), "{errors:?}");
        let missed = b.server_states_since(first).await.expect("the pool reconnects");
        assert_eq!(missed, []);
        let next = a.put_server_states("a", &[write("s1", 0, 1, "2")]).await.unwrap().max_version;
        assert_eq!(announced_within(&mut listener).await, next);
    });
}

/// The notifications `instance` delivers to `hook`, by id.
async fn undelivered(store: &Store, instance: Option<&str>) -> Vec<String> {
    let rows = store.outbox_undelivered("hook", 10, instance).await.unwrap();
    rows.into_iter().map(|r| r.notification_id).collect()
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn a_dead_instances_locks_are_free_and_its_outbox_is_taken_over() {
    let _up = server_up();
    let (_, a, b) = two_instances("dead-holder", 1);
    smol::block_on(async {
        a.heartbeat("a", "http://a", LONG).await.unwrap();
        b.heartbeat("b", "http://b", LONG).await.unwrap();
        assert_eq!(a.lock_channel("srv", 1, "a", "ta", LONG, LONG).await.unwrap(), None);
        // a's heartbeat is fresh: held, for all its long TTL.
        assert!(b.lock_channel("srv", 1, "b", "tb", LONG, SHORT * 2).await.unwrap().is_some());
        smol::Timer::after(SHORT * 3).await;
        b.heartbeat("b", "http://b", LONG).await.unwrap();
        // a's heartbeat is older than b's judgement of alive: a is gone.
        assert_eq!(b.lock_channel("srv", 1, "b", "tb", LONG, SHORT * 2).await.unwrap(), None, "a is dead");
        let refused = a.lock_channel("srv", 1, "a", "ta2", LONG, SHORT * 2).await.unwrap();
        assert!(matches!(&refused, Some(LockHolder { holder, .. }) if holder == "b"), "{refused:?}");

        // The outbox: rows of a (gone) and of a dashboard alone go to b.
        let row = |id: &str, instance: Option<&str>| NewOutboxRow {
            notification_id: id.into(),
            receiver: "hook".into(),
            fingerprint: "00000000000000ab".into(),
            kind: "firing".into(),
            payload: "{}".into(),
            created_at: 1_700_000_000.0,
            instance: instance.map(String::from),
        };
        a.record_alerts(&[row("n1", Some("a")), row("n2", None), row("n3", Some("b"))], None, None).await.unwrap();
        assert_eq!(undelivered(&b, Some("b")).await, ["n3"]);
        assert_eq!(undelivered(&a, Some("a")).await, ["n1"]);
        assert_eq!(undelivered(&a, None).await, ["n2"], "alone: the rows written alone");
        assert_eq!(b.adopt_outbox("b", &["b".to_string()]).await.unwrap(), 2);
        assert_eq!(undelivered(&b, Some("b")).await, ["n1", "n2", "n3"]);
        assert!(undelivered(&a, Some("a")).await.is_empty());
    });
}

#[test]
#[ignore = "needs IPVTL_TEST_PG_URL: run scripts/test.d/45-postgres.sh"]
fn batch_numbers_are_shared_and_follow_the_kept_batches() {
    let _up = server_up();
    let (_, a, b) = two_instances("batch-numbers", 1);
    smol::block_on(async {
        a.put_batch(41, "finished", 1.0, r#"{"batch_id":41}"#).await.unwrap();
        assert_eq!(a.reserve_batch_id().await.unwrap(), 42, "after the highest kept");
        // Concurrent reservations never hand out one number twice.
        let (x, y) = smol::future::zip(
            async {
                let mut got = Vec::new();
                for _ in 0..20 {
                    got.push(a.reserve_batch_id().await.unwrap());
                }
                got
            },
            async {
                let mut got = Vec::new();
                for _ in 0..20 {
                    got.push(b.reserve_batch_id().await.unwrap());
                }
                got
            },
        )
        .await;
        let mut all: Vec<u64> = x.into_iter().chain(y).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all, (43..83).collect::<Vec<u64>>());
        b.put_batch(500, "running", 2.0, r#"{"batch_id":500}"#).await.unwrap();
        assert_eq!(b.reserve_batch_id().await.unwrap(), 501, "a batch kept meanwhile moves the counter");
    });
}
