//! The store's suite, against SQLite here (in memory and in a file); the
//! same suite runs against a real PostgreSQL in `tests/store_postgres.rs`.

use super::*;

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ipvtl-store-unit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_suite_passes_on_sqlite_in_memory() {
    smol::block_on(async {
        let store = Store::memory().await.unwrap();
        crate::store::suite::run(&store).await;
    });
}

#[test]
fn a_sqlite_file_keeps_everything_and_is_in_wal_mode() {
    let dir = temp("file");
    let url = format!("sqlite:{}", dir.join("s.db").display());
    smol::block_on(async {
        let store = Store::open(&url).await.unwrap();
        crate::store::suite::run(&store).await;
        let mode: String = match &store.pool {
            Pool::Sqlite(p) => sqlx::query("PRAGMA journal_mode").fetch_one(p).await.unwrap().get(0),
            Pool::Postgres(_) => unreachable!(),
        };
        assert_eq!(mode, "wal");
        drop(store);
        let again = Store::open(&url).await.unwrap();
        assert_eq!(again.schema_version().await.unwrap(), SCHEMA_VERSION);
        assert!(again.has_keys().await.unwrap(), "kept across opens");
    });
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_newer_schema_is_refused_naming_both_versions() {
    let dir = temp("newer");
    let url = format!("sqlite:{}", dir.join("s.db").display());
    smol::block_on(async {
        let store = Store::open(&url).await.unwrap();
        crate::store::suite::pretend_newer_schema(&url, 99).await;
        drop(store);
        let e = Store::open(&url).await.unwrap_err();
        assert!(e.store.contains("s.db"), "{e}");
        assert!(e.reason.contains("version 99") && e.reason.contains(&format!("up to {SCHEMA_VERSION}")), "{e}");
    });
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn stores_that_cannot_be_opened_say_which_and_why() {
    let e = smol::block_on(Store::open("sqlite:/nonexistent-dir/x/y.db")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent-dir/x/y.db"), "{e}");
    let e = smol::block_on(Store::open("mysql://h/db")).unwrap_err();
    assert!(e.reason.contains("sqlite:PATH"), "{e}");
    assert_eq!(redact("postgres://ipvtl:hunter2@db:5432/x"), "postgres://ipvtl:***@db:5432/x");
    assert_eq!(redact("postgres://db/x"), "postgres://db/x");
}

#[test]
fn a_version_1_store_is_brought_up_to_date_keeping_what_it_holds() {
    let dir = temp("upgrade");
    let url = format!("sqlite:{}", dir.join("s.db").display());
    smol::block_on(async {
        let options = SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
        migrator(&SQLITE_MIGRATIONS[..1]).run(&pool).await.unwrap();
        sqlx::query("INSERT INTO api_keys (name, role, key_hash, created_at) VALUES ('old', 'admin', 'h', 1.0)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        assert_eq!(store.key_by_hash("h").await.unwrap(), Some(("old".into(), "admin".into())));
        assert!(store.history("any", HistoryStep::OneMinute, 0).await.unwrap().is_empty());
    });
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn version_2_history_is_kept_in_the_compact_rows() {
    let dir = temp("compact");
    let url = format!("sqlite:{}", dir.join("s.db").display());
    smol::block_on(async {
        let options = SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
        migrator(&SQLITE_MIGRATIONS[..2]).run(&pool).await.unwrap();
        let v2 = "INSERT INTO history (server_id, step, at, cpu_sum, cpu_n, running_channels, health) VALUES \
                  ('a', 10, 1800000000, 30.5, 2, 3, 'online'), ('a', 10, 1800000010, 0, 0, 0, 'offline'), \
                  ('a', 60, 1800000000, 30.5, 2, 3, 'error'), ('b', 10, 1800000000, 1.0, 1, 1, 'unknown')";
        sqlx::query(v2).execute(&pool).await.unwrap();
        pool.close().await;
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        let tens = store.history("a", HistoryStep::TenSeconds, 0).await.unwrap();
        let seen: Vec<_> = tens.iter().map(|p| (p.at, p.cpu_avg, p.running_channels, p.health.as_str())).collect();
        assert_eq!(seen, [(1_800_000_000, Some(15.3), 3, "online"), (1_800_000_010, None, 0, "offline")]);
        let minutes = store.history("a", HistoryStep::OneMinute, 0).await.unwrap();
        assert_eq!(minutes.iter().map(|p| p.health.as_str()).collect::<Vec<_>>(), ["error"]);
        assert_eq!(store.history("b", HistoryStep::TenSeconds, 0).await.unwrap()[0].health, "unknown");
        // Written on top of the migrated rows: added to them.
        let more = HistorySample {
            server_id: "a".into(),
            at: 1_800_000_005,
            cpu_avg: Some(9.5),
            running_channels: 1,
            health: "online".into(),
        };
        store.record_history(&[more], &HistoryRetention::default().keep(), 1_800_000_005).await.unwrap();
        let tens = store.history("a", HistoryStep::TenSeconds, 0).await.unwrap();
        assert_eq!((tens[0].cpu_avg, tens[0].running_channels), (Some(13.3), 1));
    });
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn what_several_instances_share_needs_postgresql() {
    smol::block_on(async {
        let store = Store::memory().await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        let ttl = Duration::from_secs(10);
        let write = StateWrite { server_id: "a".into(), shard: 0, epoch: 1, entry: "{}".into() };
        let errors = [
            store.heartbeat("i1", "http://i1", ttl).await.map(drop).unwrap_err(),
            store.leave("i1").await.unwrap_err(),
            store.ensure_shards(4).await.unwrap_err(),
            store.lease_round("i1", ttl, &[], &[(0, 0)], &[]).await.map(drop).unwrap_err(),
            store.put_server_states("i1", &[write]).await.map(drop).unwrap_err(),
            store.put_server_states("i1", &[]).await.map(drop).unwrap_err(),
            store.server_states_since(0).await.map(drop).unwrap_err(),
            store.state_listener().await.map(drop).unwrap_err(),
            store.lock_channel("a", 1, "i1", "t", ttl, ttl).await.map(drop).unwrap_err(),
            store.extend_channel_lock("a", 1, "t", ttl).await.map(drop).unwrap_err(),
            store.unlock_channel("a", 1, "t").await.map(drop).unwrap_err(),
        ];
        for e in errors {
            assert!(e.reason.contains("several instances need a PostgreSQL store"), "{e}");
            assert_eq!(e.store, "sqlite::memory:");
        }
        assert!(store.write_health().ok(), "a refusal is no failed write: {:?}", store.write_health());
    });
}
