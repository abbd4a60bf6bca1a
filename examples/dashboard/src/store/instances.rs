//! Several instances sharing one fleet, in the store (PostgreSQL only; a
//! SQLite store refuses these with a [`StoreError`] saying so).
//!
//! - Instances: each upserts its row every heartbeat; the live ones are
//!   those whose heartbeat is younger than a TTL.
//! - Shard leases with epochs: a claim is a compare-and-set on the epoch
//!   it saw (and bumps it), a renew and a release need the epoch held.
//! - Server states written by their shard's owner, fenced: a row is
//!   written only under a lease held, unexpired, at the epoch the writer
//!   gives; every write gets a new `version` and is announced on the
//!   `ipvtl_state` channel, so the others read what is new
//!   ([`Store::server_states_since`], [`StateListener`]).
//! - Per-channel locks across instances, taken, extended and released by
//!   their token.
//!
//! Every time judgement is the database's clock (`now()`), never the
//! caller's: ages and remaining times are measured there too. Within one
//! transaction `now()` is the same instant, so a round's view is coherent.
//!
//! Locking: the transactions run at READ COMMITTED. A claim's and a
//! renew's `UPDATE ... WHERE epoch = $expected` re-checks the row once a
//! concurrent writer of it commits, so of two claims of one shard at one
//! epoch exactly one wins. Lease rows are locked in shard order (`ORDER BY
//! shard FOR UPDATE` / `FOR SHARE`) by every transaction that takes more
//! than one, so rounds and writes never deadlock. A state write holds its
//! leases `FOR SHARE` until it commits: a takeover of the shard waits for
//! it, and a write that waited for a takeover sees the new owner and is
//! refused, so every accepted write comes before any later owner's. State
//! writes also take one transaction-wide advisory lock before drawing
//! their versions, so versions become visible in their order and a reader
//! that remembers the highest version it read misses nothing.

use std::fmt;
use std::time::Duration;

use ipvtl_client::core::shard::{InstanceId, LeaseRow};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::Row;

use super::{Pool, Store, StoreError};

/// The channel state writes are announced on (payload: the highest
/// version written, decimal).
const STATE_CHANNEL: &str = "ipvtl_state";

/// The advisory lock every state write holds while it draws versions and
/// until it commits ("ipvtl" and the schema version, as a number).
const STATE_WRITE_LOCK: i64 = 0x6970_7674_6c00_0006;

/// An instance whose heartbeat is younger than the TTL asked about.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceRow {
    /// Its id.
    pub id: String,
    /// Where the others reach it, as it advertises.
    pub advertise: String,
    /// How long ago its last heartbeat was, by the database's clock.
    pub age: Duration,
    /// When its row was made, Unix seconds (the database's clock).
    pub started_at_unix: f64,
}

/// What a [`Store::lease_round`] did and saw, in its one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaseRoundResult {
    /// The leases renewed: (shard, epoch), by shard.
    pub renewed: Vec<(u16, u64)>,
    /// The leases claimed: (shard, the new epoch), by shard.
    pub claimed: Vec<(u16, u64)>,
    /// Every shard's lease after the round, by shard.
    pub view: Vec<LeaseRow>,
    /// The live instances (heartbeat younger than the round's TTL), by id.
    pub live: Vec<InstanceRow>,
}

/// A server's state for [`Store::put_server_states`]: written only while
/// the writer holds `shard`'s lease at `epoch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateWrite {
    /// The server.
    pub server_id: String,
    /// Its shard.
    pub shard: u16,
    /// The epoch of the shard's lease the writer holds.
    pub epoch: u64,
    /// Its state, JSON.
    pub entry: String,
}

/// What a [`Store::put_server_states`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateWriteResult {
    /// Rows written.
    pub written: usize,
    /// The servers whose rows were refused (the writer does not hold their
    /// shard at that epoch, or its lease has expired), in the order given.
    pub refused: Vec<String>,
    /// The highest version written (0: none).
    pub max_version: u64,
}

/// A server's state as its shard's owner wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateRow {
    /// The server.
    pub server_id: String,
    /// The shard it was written under.
    pub shard: u16,
    /// The instance that wrote it.
    pub owner: String,
    /// The lease epoch it was written under.
    pub epoch: u64,
    /// Its version (global, increasing with every write).
    pub version: u64,
    /// Its state, JSON.
    pub entry: String,
    /// How long ago it was written, by the database's clock.
    pub age: Duration,
}

/// Who holds a channel lock that was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    /// The instance holding it.
    pub holder: String,
    /// The holding action's token.
    pub token: String,
    /// How long until it expires (by the database's clock).
    pub remaining: Duration,
}

/// Announcements of new server states (the versions written), on a
/// connection of its own (see [`Store::state_listener`]).
pub struct StateListener {
    /// `None` after an error: listening again is the next call's first job.
    listener: Option<PgListener>,
    options: PgConnectOptions,
    shown: String,
}

impl fmt::Debug for StateListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateListener").field("store", &self.shown).finish_non_exhaustive()
    }
}

/// A listener on `ipvtl_state`, on a pool of one connection of its own
/// made with `options`.
async fn listen(options: &PgConnectOptions) -> Result<PgListener, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    // The pool is this listener's alone: nobody closes it.
    listener.ignore_pool_close_event(true);
    listener.listen(STATE_CHANNEL).await?;
    Ok(listener)
}

impl StateListener {
    /// The next version announced (the highest of one write; the same
    /// write may have written lower ones, so read
    /// [`Store::server_states_since`] the last version read).
    ///
    /// Every error means announcements may have been missed: after one,
    /// read the states since the last version read, then call this again.
    /// A connection lost is made again by the next call (or this one),
    /// which then returns one more error saying it is listening again, so
    /// the read after that error misses nothing. While the server is away
    /// each call fails within the connection timeout (5 s).
    pub async fn recv(&mut self) -> Result<u64, StoreError> {
        const AGAIN: &str = "listening again after the connection was lost: announcements may have been missed \
                             (read the states since the last version read)";
        loop {
            let Some(listener) = self.listener.as_mut() else {
                let listener =
                    listen(&self.options).await.map_err(|e| self.err(&format!("cannot listen again: {e}")))?;
                self.listener = Some(listener);
                return Err(self.err(AGAIN));
            };
            match listener.try_recv().await {
                // A payload that is not a version is nobody's of ours.
                Ok(Some(n)) => match n.payload().trim().parse::<u64>() {
                    Ok(version) => return Ok(version),
                    Err(_) => continue,
                },
                // Lost, and made again (listening) before this returned.
                Ok(None) => return Err(self.err(AGAIN)),
                Err(e) => {
                    self.listener = None;
                    return Err(self.err(&format!("cannot wait for announcements: {e}")));
                }
            }
        }
    }

    fn err(&self, reason: &str) -> StoreError {
        StoreError { store: self.shown.clone(), reason: format!("listening on {STATE_CHANNEL}: {reason}") }
    }
}

/// A TTL as SQL seconds.
fn secs(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

/// Seconds measured by the database as a duration (a negative one, from
/// a row written by a transaction that started later, is zero).
fn duration(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::ZERO)
}

fn decode<T, U>(v: T) -> Result<U, sqlx::Error>
where
    U: TryFrom<T, Error = std::num::TryFromIntError>,
{
    U::try_from(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Shards and epochs as the SQL arrays the batched statements take.
fn arrays(list: &[(u16, u64)]) -> Result<(Vec<i32>, Vec<i64>), String> {
    let mut shards = Vec::with_capacity(list.len());
    let mut epochs = Vec::with_capacity(list.len());
    for &(shard, epoch) in list {
        shards.push(i32::from(shard));
        epochs.push(i64::try_from(epoch).map_err(|_| format!("shard {shard}: epoch {epoch} is out of range"))?);
    }
    Ok((shards, epochs))
}

fn pairs(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<(u16, u64)>, sqlx::Error> {
    let mut out = rows
        .iter()
        .map(|r| Ok((decode(r.try_get::<i32, _>("shard")?)?, decode(r.try_get::<i64, _>("epoch")?)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    out.sort_unstable();
    Ok(out)
}

/// The instances whose heartbeat is younger than `ttl`, by id.
async fn live(c: &mut PgConnection, ttl: Duration) -> Result<Vec<InstanceRow>, sqlx::Error> {
    let sql = "SELECT id, advertise, EXTRACT(EPOCH FROM now() - heartbeat_at)::float8 AS age, \
               EXTRACT(EPOCH FROM started_at)::float8 AS started \
               FROM instances WHERE heartbeat_at > now() - make_interval(secs => $1::float8) ORDER BY id";
    let rows = sqlx::query(sql).bind(secs(ttl)).fetch_all(c).await?;
    rows.iter()
        .map(|r| {
            Ok(InstanceRow {
                id: r.try_get("id")?,
                advertise: r.try_get("advertise")?,
                age: duration(r.try_get("age")?),
                started_at_unix: r.try_get("started")?,
            })
        })
        .collect()
}

impl Store {
    /// The PostgreSQL pool, or the error saying these need one.
    fn postgres(&self, what: &str) -> Result<&PgPool, StoreError> {
        match &self.pool {
            Pool::Postgres(p) => Ok(p),
            Pool::Sqlite(_) => Err(self.err(
                what,
                "several instances need a PostgreSQL store (--store postgres://...), and this one is SQLite",
            )),
        }
    }

    // Instances.

    /// Records instance `id`'s heartbeat (now, advertising `advertise`;
    /// its row is made on the first) and returns the instances whose
    /// heartbeat is younger than `ttl`, this one included, by id.
    pub async fn heartbeat(&self, id: &str, advertise: &str, ttl: Duration) -> Result<Vec<InstanceRow>, StoreError> {
        const WHAT: &str = "cannot record the heartbeat";
        let p = self.postgres(WHAT)?;
        let upsert = "INSERT INTO instances (id, advertise, started_at, heartbeat_at) VALUES ($1, $2, now(), now()) \
                      ON CONFLICT (id) DO UPDATE SET advertise = excluded.advertise, heartbeat_at = excluded.heartbeat_at";
        let result = async {
            let mut tx = p.begin().await?;
            sqlx::query(upsert).bind(id).bind(advertise).execute(&mut *tx).await?;
            let live = live(&mut tx, ttl).await?;
            tx.commit().await?;
            Ok(live)
        }
        .await
        .map_err(|e: sqlx::Error| self.err(WHAT, e));
        self.noted(result)
    }

    /// Instance `id` leaves (a clean shutdown): its row is removed and the
    /// leases it holds are released (free to claim at once; their epochs
    /// unchanged, the next claim bumps them).
    pub async fn leave(&self, id: &str) -> Result<(), StoreError> {
        const WHAT: &str = "cannot leave";
        let p = self.postgres(WHAT)?;
        let lock = "SELECT shard FROM shard_leases WHERE owner = $1 ORDER BY shard FOR UPDATE";
        let release = "UPDATE shard_leases SET owner = NULL, expires_at = now() WHERE owner = $1";
        let remove = "DELETE FROM instances WHERE id = $1";
        let unlock = "DELETE FROM channel_locks WHERE holder = $1";
        async {
            let mut tx = p.begin().await?;
            sqlx::query(lock).bind(id).execute(&mut *tx).await?;
            sqlx::query(release).bind(id).execute(&mut *tx).await?;
            sqlx::query(remove).bind(id).execute(&mut *tx).await?;
            sqlx::query(unlock).bind(id).execute(&mut *tx).await?;
            tx.commit().await
        }
        .await
        .map_err(|e| self.err(WHAT, e))
    }

    // Shard leases.

    /// Makes the lease rows of shards `0..n` that are missing. A store
    /// whose leases are for another number of shards is refused, naming
    /// both: every instance sharing a store must be configured with the
    /// same shard count (to change it, stop them all and empty
    /// `shard_leases`).
    pub async fn ensure_shards(&self, n: u16) -> Result<(), StoreError> {
        const WHAT: &str = "cannot set up the shard leases";
        let p = self.postgres(WHAT)?;
        if n == 0 {
            return Err(self.err(WHAT, "the shard count must be at least 1"));
        }
        // Taken by one instance at a time: two starting at once with
        // different counts do not both pass the check.
        let lock = "LOCK TABLE shard_leases IN SHARE ROW EXCLUSIVE MODE";
        let count = "SELECT COUNT(*) AS n, COALESCE(MAX(shard) + 1, 0)::bigint AS top FROM shard_leases";
        let insert = "INSERT INTO shard_leases (shard) SELECT generate_series(0, $1::int - 1) ON CONFLICT DO NOTHING";
        // Made already, as they should be (an instance joining or coming
        // back): no table lock, which would queue behind the others' lease
        // rounds and state writes, and them behind it.
        let row = sqlx::query(count).fetch_one(p).await.map_err(|e| self.err(WHAT, e))?;
        let made = (|| Ok::<_, sqlx::Error>((row.try_get::<i64, _>("n")?, row.try_get::<i64, _>("top")?)))()
            .map_err(|e| self.err(WHAT, e))?;
        if made == (i64::from(n), i64::from(n)) {
            return Ok(());
        }
        let mut tx = p.begin().await.map_err(|e| self.err(WHAT, e))?;
        sqlx::query(lock).execute(&mut *tx).await.map_err(|e| self.err(WHAT, e))?;
        let row = sqlx::query(count).fetch_one(&mut *tx).await.map_err(|e| self.err(WHAT, e))?;
        let (have, top) = (|| Ok::<_, sqlx::Error>((row.try_get::<i64, _>("n")?, row.try_get::<i64, _>("top")?)))()
            .map_err(|e| self.err(WHAT, e))?;
        if have != 0 && (have != i64::from(n) || top != i64::from(n)) {
            return Err(self.err(
                WHAT,
                format!(
                    "the store's shard leases are for {} shards and this instance is configured for {n}: \
                     every instance sharing a store must use the same shard count \
                     (to change it, stop them all and empty shard_leases)",
                    have.max(top)
                ),
            ));
        }
        sqlx::query(insert).bind(i32::from(n)).execute(&mut *tx).await.map_err(|e| self.err(WHAT, e))?;
        tx.commit().await.map_err(|e| self.err(WHAT, e))
    }

    /// One lease round of instance `me`, in one transaction: renews the
    /// leases it holds at the epochs given, claims those given at the
    /// epochs it saw (each free or expired; a claim bumps the epoch),
    /// releases those given (epoch unchanged), all by (shard, epoch); then
    /// reads every lease and the live instances (heartbeat younger than
    /// `ttl`). Renewed and claimed leases expire `ttl` from now; what was
    /// not renewed or claimed is left out of [`LeaseRoundResult`]'s lists.
    ///
    /// A renew after expiry succeeds while no one has claimed the shard
    /// since (its epoch is unchanged, so no one else held it between).
    pub async fn lease_round(
        &self,
        me: &str,
        ttl: Duration,
        renew: &[(u16, u64)],
        claim: &[(u16, u64)],
        release: &[(u16, u64)],
    ) -> Result<LeaseRoundResult, StoreError> {
        const WHAT: &str = "cannot run the lease round";
        let p = self.postgres(WHAT)?;
        let (renew, claim, release) = (|| Ok::<_, String>((arrays(renew)?, arrays(claim)?, arrays(release)?)))()
            .map_err(|e| self.err(WHAT, e))?;
        let mut touched: Vec<i32> = [&renew.0, &claim.0, &release.0].into_iter().flatten().copied().collect();
        touched.sort_unstable();
        touched.dedup();
        let lock = "SELECT shard FROM shard_leases WHERE shard = ANY($1::int[]) ORDER BY shard FOR UPDATE";
        let renew_sql = "UPDATE shard_leases l SET expires_at = now() + make_interval(secs => $2::float8) \
                         FROM UNNEST($3::int[], $4::bigint[]) AS v(shard, epoch) \
                         WHERE l.shard = v.shard AND l.owner = $1 AND l.epoch = v.epoch \
                         RETURNING l.shard, l.epoch";
        let claim_sql = "UPDATE shard_leases l \
                         SET owner = $1, epoch = l.epoch + 1, expires_at = now() + make_interval(secs => $2::float8) \
                         FROM UNNEST($3::int[], $4::bigint[]) AS v(shard, epoch) \
                         WHERE l.shard = v.shard AND l.epoch = v.epoch \
                         AND (l.owner IS NULL OR l.expires_at IS NULL OR l.expires_at <= now()) \
                         RETURNING l.shard, l.epoch";
        let release_sql = "UPDATE shard_leases l SET owner = NULL, expires_at = now() \
                           FROM UNNEST($2::int[], $3::bigint[]) AS v(shard, epoch) \
                           WHERE l.shard = v.shard AND l.owner = $1 AND l.epoch = v.epoch";
        let view_sql = "SELECT shard, owner, epoch, \
                        CASE WHEN expires_at > now() THEN EXTRACT(EPOCH FROM expires_at - now())::float8 END \
                        AS remaining FROM shard_leases ORDER BY shard";
        let result = async {
            let mut tx = p.begin().await?;
            if !touched.is_empty() {
                sqlx::query(lock).bind(&touched).execute(&mut *tx).await?;
            }
            let mut renewed = Vec::new();
            if !renew.0.is_empty() {
                let q = sqlx::query(renew_sql).bind(me).bind(secs(ttl)).bind(&renew.0).bind(&renew.1);
                renewed = pairs(&q.fetch_all(&mut *tx).await?)?;
            }
            let mut claimed = Vec::new();
            if !claim.0.is_empty() {
                let q = sqlx::query(claim_sql).bind(me).bind(secs(ttl)).bind(&claim.0).bind(&claim.1);
                claimed = pairs(&q.fetch_all(&mut *tx).await?)?;
            }
            if !release.0.is_empty() {
                sqlx::query(release_sql).bind(me).bind(&release.0).bind(&release.1).execute(&mut *tx).await?;
            }
            let view = sqlx::query(view_sql)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| {
                    Ok(LeaseRow {
                        shard: decode(r.try_get::<i32, _>("shard")?)?,
                        owner: r.try_get::<Option<String>, _>("owner")?.map(InstanceId::from),
                        epoch: decode(r.try_get::<i64, _>("epoch")?)?,
                        remaining: r.try_get::<Option<f64>, _>("remaining")?.map(duration),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let live = live(&mut tx, ttl).await?;
            tx.commit().await?;
            Ok(LeaseRoundResult { renewed, claimed, view, live })
        }
        .await
        .map_err(|e: sqlx::Error| self.err(WHAT, e));
        self.noted(result)
    }

    // Server states.

    /// Writes the servers' states of `me`, in one transaction, each only
    /// where `me` holds its shard's lease, unexpired, at its epoch (the
    /// others are refused and listed); a row of a server written under a
    /// later epoch of the same shard is not overwritten either. Every row
    /// written gets a new version, and the highest is announced on
    /// `ipvtl_state` when the transaction commits. A server given twice is
    /// written once, with its last state.
    pub async fn put_server_states(&self, me: &str, rows: &[StateWrite]) -> Result<StateWriteResult, StoreError> {
        const WHAT: &str = "cannot write the server states";
        let p = self.postgres(WHAT)?;
        if rows.is_empty() {
            return Ok(StateWriteResult::default());
        }
        // The last of each server, in the order given.
        let mut last: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            last.insert(&r.server_id, i);
        }
        let rows: Vec<&StateWrite> =
            rows.iter().enumerate().filter(|(i, r)| last[r.server_id.as_str()] == *i).map(|(_, r)| r).collect();
        let ids: Vec<&str> = rows.iter().map(|r| r.server_id.as_str()).collect();
        let shards: Vec<i32> = rows.iter().map(|r| i32::from(r.shard)).collect();
        let epochs = rows
            .iter()
            .map(|r| i64::try_from(r.epoch).map_err(|_| format!("{}: epoch {} is out of range", r.server_id, r.epoch)))
            .collect::<Result<Vec<i64>, String>>()
            .map_err(|e| self.err(WHAT, e))?;
        let entries: Vec<&str> = rows.iter().map(|r| r.entry.as_str()).collect();
        let lock = "SELECT pg_advisory_xact_lock($1)";
        let upsert = "WITH v AS (\
                        SELECT * FROM UNNEST($2::text[], $3::int[], $4::bigint[], $5::text[]) \
                        AS v(server_id, shard, epoch, entry)\
                      ), held AS MATERIALIZED (\
                        SELECT l.shard, l.epoch FROM shard_leases l \
                        WHERE l.shard IN (SELECT shard FROM v) AND l.owner = $1 AND l.expires_at > now() \
                        ORDER BY l.shard FOR SHARE\
                      ) \
                      INSERT INTO server_state (server_id, shard, owner, epoch, version, entry, updated_at) \
                      SELECT v.server_id, v.shard, $1, v.epoch, nextval('server_state_version'), v.entry, now() \
                      FROM v JOIN held h ON h.shard = v.shard AND h.epoch = v.epoch \
                      ON CONFLICT (server_id) DO UPDATE SET shard = excluded.shard, owner = excluded.owner, \
                      epoch = excluded.epoch, version = excluded.version, entry = excluded.entry, \
                      updated_at = excluded.updated_at \
                      WHERE server_state.shard <> excluded.shard OR server_state.epoch <= excluded.epoch \
                      RETURNING server_id, version";
        let notify = "SELECT pg_notify($1, $2)";
        let result = async {
            let mut tx = p.begin().await?;
            sqlx::query(lock).bind(STATE_WRITE_LOCK).execute(&mut *tx).await?;
            let written = sqlx::query(upsert)
                .bind(me)
                .bind(&ids)
                .bind(&shards)
                .bind(&epochs)
                .bind(&entries)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| Ok((r.try_get::<String, _>("server_id")?, decode::<i64, u64>(r.try_get("version")?)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let max_version = written.iter().map(|&(_, v)| v).max().unwrap_or(0);
            if !written.is_empty() {
                sqlx::query(notify).bind(STATE_CHANNEL).bind(max_version.to_string()).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            let refused =
                ids.iter().filter(|id| !written.iter().any(|(w, _)| w == *id)).map(|id| (*id).to_string()).collect();
            Ok(StateWriteResult { written: written.len(), refused, max_version })
        }
        .await
        .map_err(|e: sqlx::Error| self.err(WHAT, e));
        self.noted(result)
    }

    /// The server states written after `version`, by version.
    pub async fn server_states_since(&self, version: u64) -> Result<Vec<StateRow>, StoreError> {
        const WHAT: &str = "cannot read the server states";
        let p = self.postgres(WHAT)?;
        let sql = "SELECT server_id, shard, owner, epoch, version, entry, \
                   EXTRACT(EPOCH FROM now() - updated_at)::float8 AS age \
                   FROM server_state WHERE version > $1 ORDER BY version";
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        sqlx::query(sql)
            .bind(version)
            .fetch_all(p)
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(|r| {
                        Ok(StateRow {
                            server_id: r.try_get("server_id")?,
                            shard: decode(r.try_get::<i32, _>("shard")?)?,
                            owner: r.try_get("owner")?,
                            epoch: decode(r.try_get::<i64, _>("epoch")?)?,
                            version: decode(r.try_get::<i64, _>("version")?)?,
                            entry: r.try_get("entry")?,
                            age: duration(r.try_get("age")?),
                        })
                    })
                    .collect()
            })
            .map_err(|e| self.err(WHAT, e))
    }

    /// Listens for the versions of server states written (by any
    /// instance), on a connection of its own made with this store's
    /// options (not one of the pool's).
    pub async fn state_listener(&self) -> Result<StateListener, StoreError> {
        const WHAT: &str = "cannot listen for server states";
        let p = self.postgres(WHAT)?;
        let options = (*p.connect_options()).clone();
        let listener = listen(&options).await.map_err(|e| self.err(WHAT, e))?;
        Ok(StateListener { listener: Some(listener), options, shown: self.shown.clone() })
    }

    /// The next batch number, from the counter every instance shares
    /// (never one a kept batch has). Serialized by the counter's row.
    pub async fn reserve_batch_id(&self) -> Result<u64, StoreError> {
        const WHAT: &str = "cannot number the batch";
        let p = self.postgres(WHAT)?;
        let sql = "INSERT INTO batch_numbers (id, last) \
                   VALUES (1, (SELECT COALESCE(MAX(batch_id), 0) FROM batches) + 1) \
                   ON CONFLICT (id) DO UPDATE SET last = GREATEST(batch_numbers.last, \
                   (SELECT COALESCE(MAX(batch_id), 0) FROM batches)) + 1 RETURNING last";
        let last: i64 = sqlx::query_scalar(sql).fetch_one(p).await.map_err(|e| self.err(WHAT, e))?;
        u64::try_from(last).map_err(|_| self.err(WHAT, format!("a negative batch number {last}")))
    }

    /// Gives `me` the undelivered outbox rows of instances not in `live`
    /// (gone) and of dashboards that ran alone: the leader's chore, so
    /// every notification is still delivered, by one sender. Returns how
    /// many.
    pub async fn adopt_outbox(&self, me: &str, live: &[String]) -> Result<u64, StoreError> {
        const WHAT: &str = "cannot take over the outbox of instances gone";
        let p = self.postgres(WHAT)?;
        let sql = "UPDATE alert_outbox SET instance = $1 \
                   WHERE delivered_at IS NULL AND failed_at IS NULL \
                   AND (instance IS NULL OR NOT (instance = ANY($2)))";
        sqlx::query(sql).bind(me).bind(live).execute(p).await.map(|r| r.rows_affected()).map_err(|e| self.err(WHAT, e))
    }

    /// Says that `me` reloaded its servers file: the generation the
    /// others follow moves on. Returns it.
    pub async fn note_reload(&self, me: &str) -> Result<u64, StoreError> {
        const WHAT: &str = "cannot tell the others of the reload";
        let p = self.postgres(WHAT)?;
        let sql = "INSERT INTO fleet_reloads (id, generation, instance) VALUES (1, 1, $1) \
                   ON CONFLICT (id) DO UPDATE SET generation = fleet_reloads.generation + 1, \
                   instance = excluded.instance RETURNING generation";
        let n: i64 = sqlx::query_scalar(sql).bind(me).fetch_one(p).await.map_err(|e| self.err(WHAT, e))?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// The last reload's generation and the instance that made it (`None`:
    /// none yet).
    pub async fn last_reload(&self) -> Result<Option<(u64, String)>, StoreError> {
        const WHAT: &str = "cannot read the last reload";
        let p = self.postgres(WHAT)?;
        let row: Option<(i64, String)> = sqlx::query_as("SELECT generation, instance FROM fleet_reloads WHERE id = 1")
            .fetch_optional(p)
            .await
            .map_err(|e| self.err(WHAT, e))?;
        Ok(row.map(|(n, who)| (u64::try_from(n).unwrap_or_default(), who)))
    }

    // Channel locks across instances.

    /// Takes the lock of `server_id`'s `channel` for `holder` (an
    /// instance) and `token` (its action) until `ttl` from now, if it is
    /// free or expired (or already `token`'s: then its expiry is moved),
    /// or if its holder's heartbeat is older than `alive_within` (an
    /// instance dead: its locks go with it). `None`: taken; else who
    /// holds it.
    pub async fn lock_channel(
        &self,
        server_id: &str,
        channel: u32,
        holder: &str,
        token: &str,
        ttl: Duration,
        alive_within: Duration,
    ) -> Result<Option<LockHolder>, StoreError> {
        const WHAT: &str = "cannot lock the channel";
        let p = self.postgres(WHAT)?;
        let take = "INSERT INTO channel_locks (server_id, channel, holder, token, expires_at) \
                    VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::float8)) \
                    ON CONFLICT (server_id, channel) DO UPDATE SET holder = excluded.holder, \
                    token = excluded.token, expires_at = excluded.expires_at \
                    WHERE channel_locks.expires_at <= now() OR channel_locks.token = excluded.token \
                    OR EXISTS (SELECT 1 FROM instances i WHERE i.id = channel_locks.holder \
                    AND i.heartbeat_at <= now() - make_interval(secs => $6::float8)) \
                    RETURNING holder";
        // The row a refused take found is locked by it until the commit:
        // this reads the holder that refused it.
        let holder_sql = "SELECT holder, token, EXTRACT(EPOCH FROM expires_at - now())::float8 AS remaining \
                          FROM channel_locks WHERE server_id = $1 AND channel = $2";
        async {
            let mut tx = p.begin().await?;
            let taken = sqlx::query(take)
                .bind(server_id)
                .bind(i64::from(channel))
                .bind(holder)
                .bind(token)
                .bind(secs(ttl))
                .bind(secs(alive_within))
                .fetch_optional(&mut *tx)
                .await?;
            let current = match taken {
                Some(_) => None,
                None => {
                    let r =
                        sqlx::query(holder_sql).bind(server_id).bind(i64::from(channel)).fetch_one(&mut *tx).await?;
                    Some(LockHolder {
                        holder: r.try_get("holder")?,
                        token: r.try_get("token")?,
                        remaining: duration(r.try_get("remaining")?),
                    })
                }
            };
            tx.commit().await?;
            Ok(current)
        }
        .await
        .map_err(|e: sqlx::Error| self.err(WHAT, e))
    }

    /// Moves the expiry of `token`'s lock of `server_id`'s `channel` to
    /// `ttl` from now; false when `token` does not hold it (any more: an
    /// expired lock is not extended, it may be taken by then).
    pub async fn extend_channel_lock(
        &self,
        server_id: &str,
        channel: u32,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        const WHAT: &str = "cannot extend the channel lock";
        let p = self.postgres(WHAT)?;
        let sql = "UPDATE channel_locks SET expires_at = now() + make_interval(secs => $4::float8) \
                   WHERE server_id = $1 AND channel = $2 AND token = $3 AND expires_at > now()";
        sqlx::query(sql)
            .bind(server_id)
            .bind(i64::from(channel))
            .bind(token)
            .bind(secs(ttl))
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(|e| self.err(WHAT, e))
    }

    /// Releases `token`'s lock of `server_id`'s `channel`; false when
    /// `token` does not hold it.
    pub async fn unlock_channel(&self, server_id: &str, channel: u32, token: &str) -> Result<bool, StoreError> {
        const WHAT: &str = "cannot unlock the channel";
        let p = self.postgres(WHAT)?;
        let sql = "DELETE FROM channel_locks WHERE server_id = $1 AND channel = $2 AND token = $3";
        sqlx::query(sql)
            .bind(server_id)
            .bind(i64::from(channel))
            .bind(token)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(|e| self.err(WHAT, e))
    }
}
