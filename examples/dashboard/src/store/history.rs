//! Downsampled history: per server, 10 s and 1 min points (buckets), each
//! the mean cpu and the last running-channel count and health of the polls
//! that fell in it. Rows are small (integers only: the server by number,
//! the cpu as a sum of tenths of a percent, the health by code) and keyed
//! by step, time and server, so a bucket's rows are written, and pruned,
//! together at the end of the tree. Polls are aggregated in memory first
//! ([`HistoryBuckets`]) and written as multi-row statements.

use std::collections::HashMap;
use std::time::Duration;

use ipvtl_client::core::ServerId;
use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};

use super::buckets::HEALTHS;
use super::{HistoryBuckets, Pool, Store, StoreError};

/// A resolution of the stored history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryStep {
    /// 10 s points.
    TenSeconds,
    /// 1 min points.
    OneMinute,
}

impl HistoryStep {
    /// Both, finest first.
    pub const ALL: [HistoryStep; 2] = [HistoryStep::TenSeconds, HistoryStep::OneMinute];

    /// Its length in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            HistoryStep::TenSeconds => 10,
            HistoryStep::OneMinute => 60,
        }
    }

    /// `10s` or `1m`.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryStep::TenSeconds => "10s",
            HistoryStep::OneMinute => "1m",
        }
    }

    /// `10s`, `1m`, or the same in seconds (`10`, `60`).
    pub fn parse(s: &str) -> Option<HistoryStep> {
        match s.trim() {
            "10s" | "10" => Some(HistoryStep::TenSeconds),
            "1m" | "60s" | "60" => Some(HistoryStep::OneMinute),
            _ => None,
        }
    }

    /// The start of the bucket holding Unix second `at`.
    pub fn bucket(self, at: i64) -> i64 {
        at - at.rem_euclid(self.seconds())
    }
}

/// One poll's figures, as the history records them.
#[derive(Clone, Debug, PartialEq)]
pub struct HistorySample {
    /// The server.
    pub server_id: ServerId,
    /// When it was polled, Unix seconds.
    pub at: i64,
    /// Its cpu average, if it reported one.
    pub cpu_avg: Option<f64>,
    /// Channels running.
    pub running_channels: u64,
    /// Its health (`online`, `offline`, ...).
    pub health: std::borrow::Cow<'static, str>,
}

/// One stored point, as the API serves it (wire vocabulary: times as Unix
/// seconds): the bucket starting at `at`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// The start of the bucket, Unix seconds.
    pub at: i64,
    /// The mean cpu average of the bucket's polls (none: no poll reported one).
    pub cpu_avg: Option<f64>,
    /// Channels running at the bucket's last poll.
    pub running_channels: u64,
    /// Health at the bucket's last poll.
    pub health: String,
}

/// Rows per multi-row statement (7 parameters each, well under both
/// backends' limits).
const ROWS_PER_STATEMENT: usize = 1000;

/// `rows` groups of `cols` placeholders: numbered, `($1, $2), ($3, $4)`
/// (PostgreSQL), or `(?, ?), (?, ?)` (SQLite: binding numbered ones costs
/// a lookup per parameter that is as long as the list).
fn values(rows: usize, cols: usize, dollar: bool) -> String {
    let group = |r: usize| {
        let list: Vec<String> =
            (1..=cols).map(|c| if dollar { format!("${}", r * cols + c) } else { "?".into() }).collect();
        format!("({})", list.join(", "))
    };
    (0..rows).map(group).collect::<Vec<_>>().join(", ")
}

/// A step as stored (its seconds).
fn step_code(step: HistoryStep) -> i32 {
    match step {
        HistoryStep::TenSeconds => 10,
        HistoryStep::OneMinute => 60,
    }
}

impl Store {
    /// Adds `samples` to the history at every step kept (a zero duration:
    /// that step is not kept), and drops points older than their step's
    /// keep at `now` (Unix seconds); one transaction.
    pub async fn record_history(
        &self,
        samples: &[HistorySample],
        keep: &[(HistoryStep, Duration)],
        now: i64,
    ) -> Result<(), StoreError> {
        let steps: Vec<HistoryStep> = keep.iter().filter(|(_, kept)| !kept.is_zero()).map(|&(s, _)| s).collect();
        let mut buckets = HistoryBuckets::default();
        for s in samples {
            buckets.add(s, &steps);
        }
        self.write_history(&buckets, Some((keep, now))).await
    }

    /// Adds `buckets` to the stored points (cpu sums and counts added, the
    /// last running channels and health replaced), in one transaction of
    /// multi-row statements; with `prune` (`keep`, `now`), also drops the
    /// points older than their step's keep at `now` (Unix seconds).
    pub async fn write_history(
        &self,
        buckets: &HistoryBuckets,
        prune: Option<(&[(HistoryStep, Duration)], i64)>,
    ) -> Result<(), StoreError> {
        if buckets.is_empty() && prune.is_none() {
            return Ok(());
        }
        // The servers' numbers: known ones from the cache, the others made
        // (or read) in the transaction and cached once it commits.
        let (mut rows, mut unnumbered) = (Vec::with_capacity(buckets.len()), Vec::new());
        {
            let known = self.history_ids.lock().unwrap_or_else(|p| p.into_inner());
            for (id, d) in buckets.deltas() {
                match known.get(id) {
                    Some(&n) => rows.push((n, *d)),
                    None => unnumbered.push((id, *d)),
                }
            }
        }
        let dollar = matches!(self.pool, Pool::Postgres(_));
        let mut names: Vec<&str> = unnumbered.iter().map(|&(id, _)| id).collect();
        names.sort_unstable();
        names.dedup();
        let result = on_pool!(self, |p| async {
            let mut tx = p.begin().await?;
            let mut numbered = HashMap::with_capacity(names.len());
            for chunk in names.chunks(ROWS_PER_STATEMENT) {
                let insert = format!(
                    "INSERT INTO history_servers (server_id) VALUES {} ON CONFLICT (server_id) DO NOTHING",
                    values(chunk.len(), 1, dollar)
                );
                let select = format!(
                    "SELECT id, server_id FROM history_servers WHERE server_id IN {}",
                    values(1, chunk.len(), dollar)
                );
                // Rare, and of any length: not kept prepared.
                let mut q = sqlx::query(AssertSqlSafe(insert)).persistent(false);
                for name in chunk {
                    q = q.bind(*name);
                }
                q.execute(&mut *tx).await?;
                let mut q = sqlx::query(AssertSqlSafe(select)).persistent(false);
                for name in chunk {
                    q = q.bind(*name);
                }
                for r in q.fetch_all(&mut *tx).await? {
                    numbered.insert(r.try_get::<String, _>("server_id")?, r.try_get::<i64, _>("id")?);
                }
            }
            rows.extend(unnumbered.iter().filter_map(|&(id, d)| numbered.get(id).map(|&n| (n, d))));
            // In key order: a bucket's new rows are appended to the tree.
            rows.sort_unstable_by_key(|(server, d)| (d.step.seconds(), d.at, *server));
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let upsert = format!(
                    "INSERT INTO history (step, at, server, cpu_tenths, cpu_n, running_channels, health) \
                     VALUES {} ON CONFLICT (step, at, server) DO UPDATE SET \
                     cpu_tenths = history.cpu_tenths + excluded.cpu_tenths, \
                     cpu_n = history.cpu_n + excluded.cpu_n, \
                     running_channels = excluded.running_channels, health = excluded.health",
                    values(chunk.len(), 7, dollar)
                );
                // Full chunks share one prepared statement; the last
                // one's length varies, so it is not kept.
                let mut q = sqlx::query(AssertSqlSafe(upsert)).persistent(chunk.len() == ROWS_PER_STATEMENT);
                for (server, d) in chunk {
                    q = q
                        .bind(step_code(d.step))
                        .bind(d.at)
                        .bind(*server)
                        .bind(d.cpu_tenths)
                        .bind(d.cpu_n)
                        .bind(d.running)
                        .bind(d.health);
                }
                q.execute(&mut *tx).await?;
            }
            if let Some((keep, now)) = prune {
                for &(step, kept) in keep {
                    let cutoff = now.saturating_sub(i64::try_from(kept.as_secs()).unwrap_or(i64::MAX));
                    sqlx::query("DELETE FROM history WHERE step = $1 AND at < $2")
                        .bind(step_code(step))
                        .bind(cutoff)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await.map(|()| numbered)
        }
        .await)
        .map_err(|e| self.err("cannot record the history", e));
        let result = result.map(|numbered| {
            if !numbered.is_empty() {
                self.history_ids.lock().unwrap_or_else(|p| p.into_inner()).extend(numbered);
            }
        });
        self.noted(result)
    }

    /// Server `server_id`'s points at `step` from the one holding Unix
    /// second `since` on, oldest first.
    pub async fn history(
        &self,
        server_id: &str,
        step: HistoryStep,
        since: i64,
    ) -> Result<Vec<HistoryPoint>, StoreError> {
        // The stored buckets of the step from `since` on, looked up one by
        // one for this server: the primary key leads with the time (rows
        // are written, and pruned, in time order), so this reads only the
        // server's rows. CROSS JOIN keeps SQLite's loops in that order.
        let sql = "WITH RECURSIVE buckets (at) AS ( \
                       SELECT (SELECT MIN(at) FROM history WHERE step = $2 AND at >= $3) \
                       UNION ALL \
                       SELECT at + $4 FROM buckets WHERE at + $4 <= (SELECT MAX(at) FROM history WHERE step = $2)) \
                   SELECT h.at, h.cpu_tenths, h.cpu_n, h.running_channels, h.health \
                   FROM buckets CROSS JOIN history h \
                   WHERE h.step = $2 AND h.at = buckets.at \
                   AND h.server = (SELECT id FROM history_servers WHERE server_id = $1) \
                   ORDER BY h.at";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(server_id)
            .bind(step_code(step))
            .bind(step.bucket(since))
            .bind(step.seconds())
            .fetch_all(p)
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(|r| {
                        let (tenths, n): (i64, i32) = (r.try_get("cpu_tenths")?, r.try_get("cpu_n")?);
                        let running: i32 = r.try_get("running_channels")?;
                        let health: i32 = r.try_get("health")?;
                        Ok(HistoryPoint {
                            at: r.try_get("at")?,
                            cpu_avg: (n > 0).then(|| (tenths as f64 / f64::from(n)).round() / 10.0),
                            running_channels: u64::try_from(running).unwrap_or(0),
                            health: usize::try_from(health)
                                .ok()
                                .and_then(|h| HEALTHS.get(h))
                                .unwrap_or(&HEALTHS[0])
                                .to_string(),
                        })
                    })
                    .collect()
            }))
        .map_err(|e| self.err("cannot read the history", e))
    }
}

/// How long each step's points are kept (zero: that step is not kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryRetention {
    /// 10 s points (default 24 h).
    pub ten_seconds: Duration,
    /// 1 min points (default 30 days).
    pub one_minute: Duration,
}

impl Default for HistoryRetention {
    fn default() -> Self {
        HistoryRetention { ten_seconds: Duration::from_secs(24 * 3600), one_minute: Duration::from_secs(30 * 86_400) }
    }
}

impl HistoryRetention {
    /// Each step with its keep, as [`Store::record_history`] takes them.
    pub fn keep(&self) -> [(HistoryStep, Duration); 2] {
        [(HistoryStep::TenSeconds, self.ten_seconds), (HistoryStep::OneMinute, self.one_minute)]
    }

    /// How long `step`'s points are kept.
    pub fn of(&self, step: HistoryStep) -> Duration {
        match step {
            HistoryStep::TenSeconds => self.ten_seconds,
            HistoryStep::OneMinute => self.one_minute,
        }
    }
}
