//! Alerts in the store: the evaluator's active alerts, silences made
//! through the API, and the notification outbox (one row per notification
//! and receiver, delivered in id order per receiver).

use sqlx::Row;

use super::{Pool, Store, StoreError};

/// A notification for one receiver, to add to the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOutboxRow {
    /// The notification's id (the same for every receiver).
    pub notification_id: String,
    /// The receiver's name.
    pub receiver: String,
    /// The alert's fingerprint.
    pub fingerprint: String,
    /// `firing` or `resolved`.
    pub kind: String,
    /// The notification's view, JSON.
    pub payload: String,
    /// When it was produced, Unix seconds (also its first `next_at`).
    pub created_at: f64,
    /// The instance whose sender delivers it (`None`: a dashboard alone).
    pub instance: Option<String>,
}

/// An outbox row not yet delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    /// Its row id (the order of delivery per receiver).
    pub id: i64,
    /// The notification's id.
    pub notification_id: String,
    /// The receiver's name.
    pub receiver: String,
    /// The notification's view, JSON.
    pub payload: String,
    /// Failed attempts so far.
    pub attempts: i64,
    /// Not sent before, Unix seconds.
    pub next_at: f64,
}

/// A silence made through the API, as kept.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSilence {
    /// The evaluator's id.
    pub id: u64,
    /// When it ends, Unix seconds.
    pub ends_at: f64,
    /// Its view, JSON.
    pub entry: String,
}

impl Store {
    /// Adds notifications to the outbox (a row already there, by
    /// notification and receiver, is kept as it is) and, when given,
    /// replaces the kept active alerts `(fingerprint, entry)` of
    /// `instance` (`None`: a dashboard alone), in one transaction.
    pub async fn record_alerts(
        &self,
        rows: &[NewOutboxRow],
        active: Option<&[(String, String)]>,
        instance: Option<&str>,
    ) -> Result<(), StoreError> {
        let insert = "INSERT INTO alert_outbox \
                      (notification_id, receiver, fingerprint, kind, payload, created_at, attempts, next_at, instance) \
                      VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8) ON CONFLICT (notification_id, receiver) DO NOTHING";
        let clear = "DELETE FROM alert_state WHERE instance = $1";
        let keep = "INSERT INTO alert_state (instance, fingerprint, entry) VALUES ($1, $2, $3)";
        let instance = instance.unwrap_or("");
        let result = on_pool!(self, |p| async {
            let mut tx = p.begin().await?;
            for r in rows {
                sqlx::query(insert)
                    .bind(&r.notification_id)
                    .bind(&r.receiver)
                    .bind(&r.fingerprint)
                    .bind(&r.kind)
                    .bind(&r.payload)
                    .bind(r.created_at)
                    .bind(r.created_at)
                    .bind(&r.instance)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(active) = active {
                sqlx::query(clear).bind(instance).execute(&mut *tx).await?;
                for (fingerprint, entry) in active {
                    sqlx::query(keep).bind(instance).bind(fingerprint).bind(entry).execute(&mut *tx).await?;
                }
            }
            tx.commit().await
        }
        .await)
        .map_err(|e| self.err("cannot record the alerts", e));
        self.noted(result)
    }

    /// The kept active alerts' entries (`instance`'s, when several share
    /// the fleet: each keeps its own).
    pub async fn alert_state(&self, instance: Option<&str>) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT entry FROM alert_state WHERE instance = $1 ORDER BY fingerprint";
        let instance = instance.unwrap_or("");
        on_pool!(self, |p| super::strings(sqlx::query(sql).bind(instance).fetch_all(p).await, "entry"))
            .map_err(|e| self.err("cannot read the alerts", e))
    }

    /// Up to `limit` rows of `receiver` not yet delivered nor refused, in
    /// the order they were added, that `instance` delivers (`None`: a
    /// dashboard alone, the rows written alone).
    pub async fn outbox_undelivered(
        &self,
        receiver: &str,
        limit: usize,
        instance: Option<&str>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = "SELECT id, notification_id, receiver, payload, attempts, next_at FROM alert_outbox \
                   WHERE receiver = $1 AND delivered_at IS NULL AND failed_at IS NULL \
                   AND COALESCE(instance, '') = $3 ORDER BY id LIMIT $2";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let instance = instance.unwrap_or("");
        on_pool!(self, |p| sqlx::query(sql).bind(receiver).bind(limit).bind(instance).fetch_all(p).await.and_then(
            |rows| {
                rows.iter()
                    .map(|r| {
                        Ok(OutboxRow {
                            id: r.try_get("id")?,
                            notification_id: r.try_get("notification_id")?,
                            receiver: r.try_get("receiver")?,
                            payload: r.try_get("payload")?,
                            attempts: r.try_get("attempts")?,
                            next_at: r.try_get("next_at")?,
                        })
                    })
                    .collect()
            }
        ))
        .map_err(|e| self.err("cannot read the alert outbox", e))
    }

    /// Rows not yet delivered nor refused, per receiver.
    pub async fn outbox_pending(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = "SELECT receiver, COUNT(*) AS n FROM alert_outbox \
                   WHERE delivered_at IS NULL AND failed_at IS NULL GROUP BY receiver ORDER BY receiver";
        on_pool!(self, |p| sqlx::query(sql)
            .fetch_all(p)
            .await
            .and_then(|rows| rows.iter().map(|r| Ok((r.try_get("receiver")?, r.try_get("n")?))).collect()))
        .map_err(|e| self.err("cannot read the alert outbox", e))
    }

    /// Row `id` was acknowledged at `at`.
    pub async fn outbox_delivered(&self, id: i64, at: f64) -> Result<(), StoreError> {
        let sql = "UPDATE alert_outbox SET delivered_at = $1, last_error = NULL WHERE id = $2";
        let result = on_pool!(self, |p| sqlx::query(sql).bind(at).bind(id).execute(p).await.map(drop))
            .map_err(|e| self.err("cannot record a delivery", e));
        self.noted(result)
    }

    /// Row `id` failed again: `attempts` so far, not before `next_at`.
    pub async fn outbox_retry(&self, id: i64, attempts: i64, next_at: f64, error: &str) -> Result<(), StoreError> {
        let sql = "UPDATE alert_outbox SET attempts = $1, next_at = $2, last_error = $3 WHERE id = $4";
        let result = on_pool!(self, |p| sqlx::query(sql)
            .bind(attempts)
            .bind(next_at)
            .bind(error)
            .bind(id)
            .execute(p)
            .await
            .map(drop))
        .map_err(|e| self.err("cannot record a failed delivery", e));
        self.noted(result)
    }

    /// Row `id` was refused for good at `at`: it is not sent again.
    pub async fn outbox_refused(&self, id: i64, attempts: i64, at: f64, error: &str) -> Result<(), StoreError> {
        let sql = "UPDATE alert_outbox SET attempts = $1, failed_at = $2, last_error = $3 WHERE id = $4";
        let result = on_pool!(self, |p| sqlx::query(sql)
            .bind(attempts)
            .bind(at)
            .bind(error)
            .bind(id)
            .execute(p)
            .await
            .map(drop))
        .map_err(|e| self.err("cannot record a refused delivery", e));
        self.noted(result)
    }

    /// Removes rows delivered or refused before `before` (Unix s); how
    /// many.
    pub async fn prune_outbox(&self, before: f64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM alert_outbox WHERE delivered_at < $1 OR failed_at < $1";
        let result = on_pool!(self, |p| sqlx::query(sql).bind(before).execute(p).await.map(|r| r.rows_affected()))
            .map_err(|e| self.err("cannot prune the alert outbox", e));
        self.noted(result)
    }

    /// Keeps a silence made through the API (replacing one with its id).
    pub async fn put_silence(&self, silence: &StoredSilence) -> Result<(), StoreError> {
        let sql = "INSERT INTO alert_silences (silence_id, ends_at, entry) VALUES ($1, $2, $3) \
                   ON CONFLICT (silence_id) DO UPDATE SET ends_at = excluded.ends_at, entry = excluded.entry";
        let id = i64::try_from(silence.id).map_err(|e| self.err("silence id", e))?;
        let result = on_pool!(self, |p| sqlx::query(sql)
            .bind(id)
            .bind(silence.ends_at)
            .bind(&silence.entry)
            .execute(p)
            .await
            .map(drop))
        .map_err(|e| self.err("cannot record the silence", e));
        self.noted(result)
    }

    /// Removes silence `id`; false when it was not kept.
    pub async fn delete_silence(&self, id: u64) -> Result<bool, StoreError> {
        let Ok(id) = i64::try_from(id) else { return Ok(false) };
        let sql = "DELETE FROM alert_silences WHERE silence_id = $1";
        let result = on_pool!(self, |p| sqlx::query(sql).bind(id).execute(p).await.map(|r| r.rows_affected() > 0))
            .map_err(|e| self.err("cannot remove the silence", e));
        self.noted(result)
    }

    /// The kept silences, by id.
    pub async fn silences(&self) -> Result<Vec<StoredSilence>, StoreError> {
        let sql = "SELECT silence_id, ends_at, entry FROM alert_silences ORDER BY silence_id";
        on_pool!(self, |p| sqlx::query(sql).fetch_all(p).await.and_then(|rows| {
            rows.iter()
                .map(|r| {
                    Ok(StoredSilence {
                        id: u64::try_from(r.try_get::<i64, _>("silence_id")?).unwrap_or(0),
                        ends_at: r.try_get("ends_at")?,
                        entry: r.try_get("entry")?,
                    })
                })
                .collect()
        }))
        .map_err(|e| self.err("cannot read the silences", e))
    }
}
