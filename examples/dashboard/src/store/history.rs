//! Downsampled history: per server, 10 s and 1 min points (buckets), each
//! the mean cpu and the last running-channel count and health of the polls
//! that fell in it, written in one transaction per batch of polls and
//! pruned by age in the same transaction.

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use super::{Pool, Store, StoreError};

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
    pub server_id: String,
    /// When it was polled, Unix seconds.
    pub at: i64,
    /// Its cpu average, if it reported one.
    pub cpu_avg: Option<f64>,
    /// Channels running.
    pub running_channels: u64,
    /// Its health (`online`, `offline`, ...).
    pub health: String,
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
        let upsert = "INSERT INTO history (server_id, step, at, cpu_sum, cpu_n, running_channels, health) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7) \
                      ON CONFLICT (server_id, step, at) DO UPDATE SET \
                      cpu_sum = history.cpu_sum + excluded.cpu_sum, cpu_n = history.cpu_n + excluded.cpu_n, \
                      running_channels = excluded.running_channels, health = excluded.health";
        let prune = "DELETE FROM history WHERE step = $1 AND at < $2";
        let result = on_pool!(self, |p| async {
            let mut tx = p.begin().await?;
            for &(step, kept) in keep {
                if !kept.is_zero() {
                    for s in samples {
                        let (sum, n) = s.cpu_avg.filter(|c| c.is_finite()).map_or((0.0, 0_i64), |c| (c, 1));
                        sqlx::query(upsert)
                            .bind(&s.server_id)
                            .bind(step.seconds())
                            .bind(step.bucket(s.at))
                            .bind(sum)
                            .bind(n)
                            .bind(i64::try_from(s.running_channels).unwrap_or(i64::MAX))
                            .bind(&s.health)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                let cutoff = now.saturating_sub(i64::try_from(kept.as_secs()).unwrap_or(i64::MAX));
                sqlx::query(prune).bind(step.seconds()).bind(cutoff).execute(&mut *tx).await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(|e| self.err("cannot record the history", e));
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
        let sql = "SELECT at, cpu_sum, cpu_n, running_channels, health FROM history \
                   WHERE server_id = $1 AND step = $2 AND at >= $3 ORDER BY at";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(server_id)
            .bind(step.seconds())
            .bind(step.bucket(since))
            .fetch_all(p)
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(|r| {
                        let (sum, n): (f64, i64) = (r.try_get("cpu_sum")?, r.try_get("cpu_n")?);
                        let running: i64 = r.try_get("running_channels")?;
                        Ok(HistoryPoint {
                            at: r.try_get("at")?,
                            cpu_avg: (n > 0).then(|| (sum / n as f64 * 10.0).round() / 10.0),
                            running_channels: u64::try_from(running).unwrap_or(0),
                            health: r.try_get("health")?,
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
