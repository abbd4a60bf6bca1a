//! The store: what the dashboard keeps across restarts (the audit log,
//! batches and their reports, maintenance flags, API keys, downsampled
//! history), in SQLite by
//! default (`sqlite:PATH`, WAL mode, nothing to install) or PostgreSQL when
//! shared (`postgres://...`).
//!
//! [`Store`] is one type over the two pools: every query is written once,
//! with `$N` placeholders (which SQLite accepts too), and run on whichever
//! pool this store has (the `on_pool!` macro). The schema lives in
//! `migrations/{sqlite,postgres}/`, one file per version in each dialect,
//! embedded in the binary and applied at open; a store whose schema is
//! newer than this binary knows is refused, naming both versions.
//!
//! Rows hold the wire views' JSON (`entry` columns), never a dialect of
//! their own; the other columns are what is looked up or ordered by.
//!
//! What several instances share (heartbeats, shard leases, the owners'
//! server states, channel locks) needs PostgreSQL: `instances.rs`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlSafeStr};

/// The schema versions this binary knows, per dialect: (version, name, SQL).
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, "history", include_str!("../../migrations/sqlite/0002_history.sql")),
    (3, "reconcile", include_str!("../../migrations/sqlite/0003_reconcile.sql")),
    (4, "history_compact", include_str!("../../migrations/sqlite/0004_history_compact.sql")),
    (5, "alerts", include_str!("../../migrations/sqlite/0005_alerts.sql")),
    (6, "instances", include_str!("../../migrations/sqlite/0006_instances.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/postgres/0001_init.sql")),
    (2, "history", include_str!("../../migrations/postgres/0002_history.sql")),
    (3, "reconcile", include_str!("../../migrations/postgres/0003_reconcile.sql")),
    (4, "history_compact", include_str!("../../migrations/postgres/0004_history_compact.sql")),
    (5, "alerts", include_str!("../../migrations/postgres/0005_alerts.sql")),
    (6, "instances", include_str!("../../migrations/postgres/0006_instances.sql")),
];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = 6;

/// The default store of a dashboard started from a servers file.
pub const DEFAULT_STORE: &str = "sqlite:ipvtl.db";

/// A store that cannot be opened, migrated, read or written: which store
/// (a PostgreSQL password is never shown) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    /// The store, as given (password hidden).
    pub store: String,
    /// What failed and why.
    pub reason: String,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store {}: {}", self.store, self.reason)
    }
}

impl std::error::Error for StoreError {}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code on whichever pool the store has: `$p` is a
/// `&SqlitePool` in one arm and a `&PgPool` in the other.
macro_rules! on_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

mod alerts;
mod buckets;
mod history;
mod instances;
pub use alerts::{NewOutboxRow, OutboxRow, StoredSilence};
pub use buckets::HistoryBuckets;
pub use history::{HistoryPoint, HistoryRetention, HistorySample, HistoryStep};
pub use instances::{InstanceRow, LeaseRoundResult, LockHolder, StateListener, StateRow, StateWrite, StateWriteResult};

/// The dashboard's store. Cheap to clone (the pools and the write health
/// are shared).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    shown: String,
    writes: Arc<Mutex<WriteHealth>>,
    /// The history's numbers for server ids, as committed.
    history_ids: Arc<Mutex<HashMap<String, i64>>>,
}

/// How the store's writes (audit, batches, maintenance, history) have gone:
/// what `/health` and `/metrics` show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteHealth {
    /// Writes that failed since the store was opened.
    pub errors: u64,
    /// Why the last write failed, while no write has succeeded since.
    pub error: Option<String>,
}

impl WriteHealth {
    /// True unless the last write failed.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("store", &self.shown).finish_non_exhaustive()
    }
}

/// An API key as listed (never its token or hash).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyRow {
    /// Its name.
    pub name: String,
    /// Its role, as stored (`viewer`, `operator` or `admin`).
    pub role: String,
    /// When it was made, Unix seconds.
    pub created_at: f64,
}

/// `url` with a password between `://user:` and `@` replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

fn migrator(list: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = list
        .iter()
        .map(|&(version, name, sql)| {
            Migration::new(version, name.into(), MigrationType::Simple, sql.into_sql_str(), false)
        })
        .collect();
    Migrator::with_migrations(migrations)
}

impl Store {
    /// Opens (creating, for a SQLite file) the store at `url` and brings its
    /// schema up to [`SCHEMA_VERSION`]: `sqlite:PATH` (also `sqlite://PATH`),
    /// `sqlite::memory:` (gone when the process ends), `postgres://...` or
    /// `postgresql://...`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let shown = redact(url);
        let fail = |reason: String| StoreError { store: shown.clone(), reason };
        let pool = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(fail("no file: write sqlite:PATH, e.g. sqlite:ipvtl.db".into()));
            }
            if path == ":memory:" {
                // One connection: every connection to :memory: is a database
                // of its own.
                let options = SqliteConnectOptions::new().in_memory(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_with(options)
                    .await
                    .map_err(|e| fail(format!("cannot open: {e}")))?;
                Pool::Sqlite(pool)
            } else {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // An audit entry is on disk when its commit returns
                    // (the write-ahead rule holds across a power cut too).
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(5));
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(|e| fail(format!("cannot open: {e}")))?;
                Pool::Sqlite(pool)
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(|e| fail(format!("not a PostgreSQL URL: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                // A server gone away: a request waits this long for a
                // connection (the pool reconnects), then is answered 503.
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await
                .map_err(|e| fail(format!("cannot connect: {e}")))?;
            Pool::Postgres(pool)
        } else {
            return Err(fail("not a store: use sqlite:PATH or postgres://USER@HOST/DB".into()));
        };
        let store = Store { pool, shown, writes: Arc::default(), history_ids: Arc::default() };
        store.migrate().await?;
        Ok(store)
    }

    /// A store in memory, gone when the last clone is dropped (the demo's,
    /// and the one tests get by default).
    pub async fn memory() -> Result<Store, StoreError> {
        Store::open("sqlite::memory:").await
    }

    /// The store as shown to people (password hidden).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// How the writes have gone: failures counted, and the last one's
    /// reason until a write succeeds.
    pub fn write_health(&self) -> WriteHealth {
        self.writes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Notes a write's outcome in [`Store::write_health`] and passes it on.
    fn noted<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let mut w = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        match &result {
            Ok(_) => w.error = None,
            Err(e) => {
                w.errors += 1;
                w.error = Some(e.reason.clone());
            }
        }
        drop(w);
        result
    }

    fn err(&self, what: &str, e: impl fmt::Display) -> StoreError {
        StoreError { store: self.shown.clone(), reason: format!("{what}: {e}") }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let result = match &self.pool {
            Pool::Sqlite(p) => {
                // SQLite has no migration lock: two processes opening a new
                // file at once race, and the loser's transaction fails on
                // a table the winner made. Once more, it finds it applied.
                match migrator(SQLITE_MIGRATIONS).run(p).await {
                    Err(MigrateError::Execute(_) | MigrateError::ExecuteMigration(..)) => {
                        smol::Timer::after(Duration::from_millis(250)).await;
                        migrator(SQLITE_MIGRATIONS).run(p).await
                    }
                    other => other,
                }
            }
            Pool::Postgres(p) => migrator(POSTGRES_MIGRATIONS).run(p).await,
        };
        result.map_err(|e| match e {
            MigrateError::VersionMissing(v) => StoreError {
                store: self.shown.clone(),
                reason: format!(
                    "its schema has version {v}, newer than this ipvtl-dashboard {} knows (up to {SCHEMA_VERSION}): \
                     run the newer ipvtl-dashboard that wrote it, or use another store",
                    crate::VERSION
                ),
            },
            MigrateError::VersionMismatch(v) => {
                self.err("cannot migrate", format!("schema version {v} in the store differs from this binary's"))
            }
            MigrateError::Dirty(v) => {
                self.err("cannot migrate", format!("schema version {v} was left half-applied by a failed migration"))
            }
            other => self.err("cannot migrate", other),
        })
    }

    /// The schema version the store is at.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COALESCE(MAX(version), 0) AS v FROM _sqlx_migrations WHERE success";
        on_pool!(self, |p| sqlx::query(sql).fetch_one(p).await.and_then(|r| r.try_get::<i64, _>("v")))
            .map_err(|e| self.err("cannot read the schema version", e))
    }

    // The audit log.

    /// Appends audit entries in one transaction (committed when this
    /// returns), opening and closing the actions they say (see
    /// [`AuditRow::opens`]) in the same transaction.
    pub async fn append_audit(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let sql = "INSERT INTO audit (at, event, key_name, entry) VALUES ($1, $2, $3, $4)";
        let open = "INSERT INTO open_actions (open_key, opened_at, entry) VALUES ($1, $2, $3) \
                    ON CONFLICT (open_key) DO NOTHING";
        let close = "DELETE FROM open_actions WHERE open_key = $1";
        let result = on_pool!(self, |p| async {
            let mut tx = p.begin().await?;
            for r in rows {
                sqlx::query(sql).bind(r.at).bind(&r.event).bind(&r.key_name).bind(&r.entry).execute(&mut *tx).await?;
                if let Some(key) = &r.opens {
                    sqlx::query(open).bind(key).bind(r.at).bind(&r.entry).execute(&mut *tx).await?;
                }
                if let Some(key) = &r.closes {
                    sqlx::query(close).bind(key).execute(&mut *tx).await?;
                }
            }
            tx.commit().await
        }
        .await)
        .map_err(|e| self.err("cannot record the audit entry", e));
        self.noted(result)
    }

    /// The actions opened and never closed (their opening entries' JSON,
    /// by key), oldest first: at start, those a crash cut short.
    pub async fn open_actions(&self) -> Result<Vec<(String, String)>, StoreError> {
        let sql = "SELECT open_key, entry FROM open_actions ORDER BY opened_at, open_key";
        on_pool!(self, |p| sqlx::query(sql)
            .fetch_all(p)
            .await
            .and_then(|rows| { rows.iter().map(|r| Ok((r.try_get("open_key")?, r.try_get("entry")?))).collect() }))
        .map_err(|e| self.err("cannot read the actions under way", e))
    }

    /// The latest `limit` audit entries (their JSON), oldest first.
    pub async fn recent_audit(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT entry FROM audit ORDER BY id DESC LIMIT $1";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = on_pool!(self, |p| strings(sqlx::query(sql).bind(limit).fetch_all(p).await, "entry"))
            .map_err(|e| self.err("cannot read the audit log", e))?;
        rows.reverse();
        Ok(rows)
    }

    // Batches.

    /// Records batch `id` (its entry view's JSON) unless it is already
    /// `finished`: a late write of an older view never undoes the end.
    pub async fn put_batch(&self, id: u64, state: &str, created_at: f64, entry: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO batches (batch_id, state, created_at, entry) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (batch_id) DO UPDATE SET state = excluded.state, entry = excluded.entry \
                   WHERE batches.state <> 'finished'";
        let id = i64::try_from(id).map_err(|e| self.err("batch id", e))?;
        let result = on_pool!(self, |p| sqlx::query(sql)
            .bind(id)
            .bind(state)
            .bind(created_at)
            .bind(entry)
            .execute(p)
            .await
            .map(drop))
        .map_err(|e| self.err("cannot record the batch", e));
        self.noted(result)
    }

    /// Batch `id`'s entry JSON.
    pub async fn batch(&self, id: u64) -> Result<Option<String>, StoreError> {
        let Ok(id) = i64::try_from(id) else { return Ok(None) };
        let sql = "SELECT entry FROM batches WHERE batch_id = $1";
        on_pool!(self, |p| strings(sqlx::query(sql).bind(id).fetch_all(p).await, "entry"))
            .map(|v| v.into_iter().next())
            .map_err(|e| self.err("cannot read the batch", e))
    }

    /// The latest `limit` batches (entry JSON), newest first.
    pub async fn batches(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT entry FROM batches ORDER BY batch_id DESC LIMIT $1";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_pool!(self, |p| strings(sqlx::query(sql).bind(limit).fetch_all(p).await, "entry"))
            .map_err(|e| self.err("cannot read the batches", e))
    }

    /// The highest batch id recorded (0: none).
    pub async fn last_batch_id(&self) -> Result<u64, StoreError> {
        let sql = "SELECT COALESCE(MAX(batch_id), 0) AS id FROM batches";
        let id = on_pool!(self, |p| sqlx::query(sql).fetch_one(p).await.and_then(|r| r.try_get::<i64, _>("id")))
            .map_err(|e| self.err("cannot read the batches", e))?;
        Ok(u64::try_from(id).unwrap_or(0))
    }

    // Maintenance.

    /// Records server `id`'s maintenance flag.
    pub async fn set_maintenance(&self, id: &str, enabled: bool, at: f64) -> Result<(), StoreError> {
        let sql = "INSERT INTO maintenance (server_id, enabled, changed_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (server_id) DO UPDATE SET enabled = excluded.enabled, changed_at = excluded.changed_at";
        let result = on_pool!(self, |p| sqlx::query(sql).bind(id).bind(enabled).bind(at).execute(p).await.map(drop))
            .map_err(|e| self.err("cannot record maintenance", e));
        self.noted(result)
    }

    /// The servers in maintenance.
    pub async fn maintenance(&self) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT server_id FROM maintenance WHERE enabled ORDER BY server_id";
        on_pool!(self, |p| strings(sqlx::query(sql).fetch_all(p).await, "server_id"))
            .map_err(|e| self.err("cannot read maintenance", e))
    }

    // API keys.

    /// Adds a key; a name already taken is refused.
    pub async fn add_key(&self, name: &str, role: &str, hash: &str, at: f64) -> Result<(), StoreError> {
        let sql = "INSERT INTO api_keys (name, role, key_hash, created_at) VALUES ($1, $2, $3, $4)";
        on_pool!(self, |p| sqlx::query(sql).bind(name).bind(role).bind(hash).bind(at).execute(p).await.map(drop))
            .map_err(|e| match e.as_database_error() {
                Some(d) if d.is_unique_violation() => {
                    self.err("cannot add the key", format!("a key named {name:?} exists (revoke it first)"))
                }
                _ => self.err("cannot add the key", e),
            })
    }

    /// Every key, by name.
    pub async fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let sql = "SELECT name, role, created_at FROM api_keys ORDER BY name";
        on_pool!(self, |p| sqlx::query(sql).fetch_all(p).await.and_then(|rows| {
            rows.iter()
                .map(|r| {
                    Ok(KeyRow {
                        name: r.try_get("name")?,
                        role: r.try_get("role")?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .collect()
        }))
        .map_err(|e| self.err("cannot list the keys", e))
    }

    /// Removes the key `name`; false when there is none.
    pub async fn revoke_key(&self, name: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM api_keys WHERE name = $1";
        on_pool!(self, |p| sqlx::query(sql).bind(name).execute(p).await.map(|r| r.rows_affected() > 0))
            .map_err(|e| self.err("cannot revoke the key", e))
    }

    /// The name and role of the key whose token hashes to `hash`.
    pub async fn key_by_hash(&self, hash: &str) -> Result<Option<(String, String)>, StoreError> {
        let sql = "SELECT name, role FROM api_keys WHERE key_hash = $1";
        on_pool!(self, |p| sqlx::query(sql).bind(hash).fetch_optional(p).await.and_then(|r| match r {
            Some(r) => Ok(Some((r.try_get("name")?, r.try_get("role")?))),
            None => Ok(None),
        }))
        .map_err(|e| self.err("cannot check the API key", e))
    }

    // Desired state, healing and the reconciler's settings (API-made).

    /// Records a setting of `kind` at `scope_key` (replacing the one there).
    pub async fn put_setting(&self, kind: &str, scope_key: &str, entry: &str, at: f64) -> Result<(), StoreError> {
        let sql = "INSERT INTO reconcile_settings (kind, scope_key, changed_at, entry) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (kind, scope_key) DO UPDATE SET changed_at = excluded.changed_at, entry = excluded.entry";
        let result = on_pool!(self, |p| sqlx::query(sql)
            .bind(kind)
            .bind(scope_key)
            .bind(at)
            .bind(entry)
            .execute(p)
            .await
            .map(drop))
        .map_err(|e| self.err("cannot record the setting", e));
        self.noted(result)
    }

    /// Removes the setting of `kind` at `scope_key`; false when there was none.
    pub async fn delete_setting(&self, kind: &str, scope_key: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM reconcile_settings WHERE kind = $1 AND scope_key = $2";
        let result = on_pool!(self, |p| sqlx::query(sql)
            .bind(kind)
            .bind(scope_key)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0))
        .map_err(|e| self.err("cannot remove the setting", e));
        self.noted(result)
    }

    /// Every setting: (kind, entry JSON), in the order they were keyed.
    pub async fn settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let sql = "SELECT kind, entry FROM reconcile_settings ORDER BY kind, scope_key";
        on_pool!(self, |p| sqlx::query(sql)
            .fetch_all(p)
            .await
            .and_then(|rows| { rows.iter().map(|r| Ok((r.try_get("kind")?, r.try_get("entry")?))).collect() }))
        .map_err(|e| self.err("cannot read the settings", e))
    }

    /// True when any key exists.
    pub async fn has_keys(&self) -> Result<bool, StoreError> {
        let sql = "SELECT COUNT(*) AS n FROM api_keys";
        on_pool!(self, |p| sqlx::query(sql).fetch_one(p).await.and_then(|r| r.try_get::<i64, _>("n")))
            .map(|n| n > 0)
            .map_err(|e| self.err("cannot check the API keys", e))
    }
}

/// One audit row: when, which event, whose key, and the entry's JSON.
#[derive(Clone, Debug)]
pub struct AuditRow {
    /// Unix seconds.
    pub at: f64,
    /// The entry's `event`.
    pub event: String,
    /// The name of the key that asked, if one did.
    pub key_name: Option<String>,
    /// The entry, as JSON.
    pub entry: String,
    /// The action this entry opens (a request to act, an action starting),
    /// by a key unique to it: recorded as under way until an entry
    /// [`AuditRow::closes`] it.
    pub opens: Option<String>,
    /// The action this entry ends.
    pub closes: Option<String>,
}

fn strings<R: Row>(rows: Result<Vec<R>, sqlx::Error>, column: &'static str) -> Result<Vec<String>, sqlx::Error>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'static str: sqlx::ColumnIndex<R>,
{
    rows?.iter().map(|r| r.try_get::<String, _>(column)).collect()
}

#[cfg(test)]
mod suite;
#[cfg(test)]
mod tests;
