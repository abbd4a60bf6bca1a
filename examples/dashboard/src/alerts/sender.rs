//! The alerting thread: the evaluator's clock, the store's health and
//! writes to the outbox ([`drive`]); delivery of due outbox rows in order
//! per receiver with exponential backoff, and Alertmanager's re-sends
//! ([`send_loop`]).

use std::sync::Weak;
use std::time::Duration;

use ipvtl_client::core::alert::AlertState;
use ipvtl_client::core::Instant;

use super::config::{self, ReceiverKind};
use super::deliver::{self, unix_now, NotificationView, Sent};
use super::{AlertHub, AlertsFile, ROUND, TICK};
use crate::state::Inner;

/// Delivered (or refused) outbox rows are kept this long, then removed.
const OUTBOX_KEEP: Duration = Duration::from_secs(7 * 86_400);
/// How often old outbox rows are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
use crate::store::Store;

/// Starts the alerting thread: the evaluator's clock and writes, and the
/// sender. It ends with the dashboard.
pub(crate) fn spawn(state: Weak<Inner>) {
    let spawned = std::thread::Builder::new().name("ipvtl-dashboard-alerts".into()).spawn(move || {
        smol::block_on(smol::future::zip(drive(state.clone()), send_loop(state)));
    });
    if let Err(e) = spawned {
        eprintln!("ipvtl-dashboard: cannot start the alerts thread: {e}");
    }
}

/// Time, the store's health, and writing to the outbox.
async fn drive(state: Weak<Inner>) {
    let mut next: Option<Instant> = None;
    loop {
        let (woken, deadline) = {
            let Some(inner) = state.upgrade() else { return };
            let hub = &inner.alerts;
            let tick = std::time::Instant::now() + TICK;
            let deadline = match next {
                Some(at) => {
                    let wall = hub.clock.to_system_time(at);
                    let wait = wall.duration_since(std::time::SystemTime::now()).unwrap_or_default();
                    tick.min(std::time::Instant::now() + wait)
                }
                None => tick,
            };
            (hub.woken.clone(), deadline)
        };
        smol::future::or(
            async {
                let _ = woken.recv().await;
            },
            async {
                smol::Timer::at(deadline).await;
            },
        )
        .await;
        let Some(inner) = state.upgrade() else { return };
        let hub = &inner.alerts;
        let failing = !inner.config.store.write_health().ok();
        next = hub.tick(failing, inner.cluster.now());
        hub.write(&inner.config.store).await;
    }
}

/// Delivers due outbox rows, and re-sends firing alerts to Alertmanager.
async fn send_loop(state: Weak<Inner>) {
    let mut last_resend = std::time::Instant::now();
    let mut last_prune: Option<std::time::Instant> = None;
    loop {
        let (sending, wait) = {
            let Some(inner) = state.upgrade() else { return };
            let hub = &inner.alerts;
            let file = hub.file();
            let Some(client) = hub.client.clone() else { return };
            let store = inner.config.store.clone();
            let mut soonest = TICK.as_secs_f64();
            for r in &file.receivers {
                if let Some(due) = deliver_due(hub, &client, &store, r, &file).await {
                    soonest = soonest.min((due - unix_now()).max(0.05));
                }
            }
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(std::time::Instant::now());
                if let Err(e) = store.prune_outbox(unix_now() - OUTBOX_KEEP.as_secs_f64()).await {
                    eprintln!("ipvtl-dashboard: {e}");
                }
            }
            if last_resend.elapsed() >= file.delivery.resend {
                last_resend = std::time::Instant::now();
                resend_firing(hub, &client, &file).await;
            }
            if let Ok(pending) = store.outbox_pending().await {
                let mut stats = hub.stats.lock().unwrap_or_else(|p| p.into_inner());
                // Rows of receivers no longer in the file wait for them to come back.
                stats.pending =
                    pending.into_iter().filter(|(r, _)| file.receivers.iter().any(|x| x.name == *r)).collect();
            }
            (hub.sending.clone(), Duration::from_secs_f64(soonest))
        };
        smol::future::or(
            async {
                let _ = sending.recv().await;
            },
            async {
                smol::Timer::after(wait).await;
            },
        )
        .await;
    }
}

/// Sends `receiver`'s due rows in order; stops at the first that is not
/// due or fails. Returns when the next row is due (Unix s), if any.
async fn deliver_due(
    hub: &AlertHub,
    client: &isahc::HttpClient,
    store: &Store,
    receiver: &config::Receiver,
    file: &AlertsFile,
) -> Option<f64> {
    let rows = store.outbox_undelivered(&receiver.name, ROUND, crate::instances::name()).await.ok()?;
    let d = &file.delivery;
    for row in rows {
        let now = unix_now();
        if row.next_at > now {
            return Some(row.next_at);
        }
        let Ok(note) = serde_json::from_str::<NotificationView>(&row.payload) else {
            let _ = store.outbox_refused(row.id, row.attempts, now, "unreadable payload").await;
            continue;
        };
        let out = deliver::outgoing(receiver, std::slice::from_ref(&note), d.external_url.as_deref(), now);
        let sent = deliver::post(client, &out, d.timeout).await;
        let attempts = row.attempts + 1;
        let now = unix_now();
        match sent {
            Sent::Accepted(_) => {
                // Not acknowledged in the store: sent again later (at least
                // once); the receiver dedupes by the notification's id.
                if let Err(e) = store.outbox_delivered(row.id, now).await {
                    eprintln!("ipvtl-dashboard: {e}");
                    return Some(now + 1.0);
                }
                hub.count(&receiver.name, "delivered", None);
            }
            Sent::Refused(why) => {
                let _ = store.outbox_refused(row.id, attempts, now, &why).await;
                hub.count(&receiver.name, "refused", Some(why));
            }
            Sent::Retry(why) => {
                let exp = u32::try_from(attempts - 1).unwrap_or(u32::MAX).min(30);
                let delay = d.backoff.saturating_mul(1u32 << exp.min(20)).min(d.backoff_max);
                let next = now + delay.as_secs_f64();
                let _ = store.outbox_retry(row.id, attempts, next, &why).await;
                hub.count(&receiver.name, "failed", Some(why));
                return Some(next);
            }
        }
    }
    None
}

/// Alertmanager's contract: firing alerts are sent again while active.
async fn resend_firing(hub: &AlertHub, client: &isahc::HttpClient, file: &AlertsFile) {
    let firing: Vec<NotificationView> = {
        let e = hub.engine();
        e.alerts
            .alerts()
            .iter()
            .filter(|a| a.state == AlertState::Firing)
            .filter(|a| hub.instances.get().is_none_or(|i| i.delivers(&a.labels)))
            .map(|a| {
                let fingerprint = a.fingerprint.to_string();
                let starts_at = e
                    .restored_starts
                    .get(&a.fingerprint)
                    .copied()
                    .unwrap_or_else(|| hub.unix(a.fired_at.unwrap_or(a.since)));
                NotificationView {
                    id: NotificationView::id_of(&fingerprint, "firing", starts_at),
                    kind: "firing".into(),
                    fingerprint,
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    starts_at,
                    ends_at: None,
                }
            })
            .collect()
    };
    if firing.is_empty() {
        return;
    }
    for r in file.receivers.iter().filter(|r| r.kind == ReceiverKind::Alertmanager) {
        let out = deliver::outgoing(r, &firing, file.delivery.external_url.as_deref(), unix_now());
        match deliver::post(client, &out, file.delivery.timeout).await {
            Sent::Accepted(_) => hub.count(&r.name, "resent", None),
            Sent::Retry(why) | Sent::Refused(why) => hub.count(&r.name, "failed", Some(why)),
        }
    }
}
