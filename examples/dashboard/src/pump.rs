//! The event pump: one thread that follows the cluster's events and keeps
//! the dashboard's derived state current: SSE fan-out, the cached
//! `/api/servers` body (rebuilt at most every [`MIN_REBUILD`] after events;
//! a change made through the API is also rebuilt by the next request that
//! reads it, see [`crate::cache`]), history (the ring, and the store's
//! downsampled points: one transaction per rebuild, written by a task of
//! their own so a slow or absent store holds up no event), metrics, batch
//! progress, and audit entries of batch actions.

use std::collections::BTreeSet;
use std::sync::Weak;
use std::time::{Duration, Instant};

use ipvtl_client::wire::{ActionReportView, BatchReportView, EventView, Wall};
use ipvtl_client::{Event, Subscription};

use crate::audit::{AuditEntry, AuditEvent};
use crate::state::Inner;
use crate::store::HistorySample;
use crate::timefmt::unix_ms;

/// Shortest time between two rebuilds of the `/api/servers` body.
const MIN_REBUILD: Duration = Duration::from_millis(250);
/// How often the pump checks that the dashboard still exists.
const IDLE_CHECK: Duration = Duration::from_secs(1);

enum Wake {
    Event(Box<Event>),
    Nudge,
    Timer,
    Closed,
}

pub(crate) fn spawn(state: Weak<Inner>, events: Subscription, nudged: smol::channel::Receiver<()>) {
    let spawned = std::thread::Builder::new().name("ipvtl-dashboard-pump".into()).spawn(move || {
        smol::block_on(run(state, events, nudged));
    });
    if let Err(e) = spawned {
        eprintln!("ipvtl-dashboard: cannot start the event pump: {e}");
    }
}

async fn run(state: Weak<Inner>, events: Subscription, nudged: smol::channel::Receiver<()>) {
    let mut dirty = false;
    let mut last_rebuild = Instant::now();
    let (history, to_write) = smol::channel::unbounded();
    smol::spawn(write_history(state.clone(), to_write)).detach();
    loop {
        let deadline = if dirty { last_rebuild + MIN_REBUILD } else { Instant::now() + IDLE_CHECK };
        let wake = smol::future::or(
            async { events.recv().await.map_or(Wake::Closed, |e| Wake::Event(Box::new(e))) },
            smol::future::or(async { nudged.recv().await.map_or(Wake::Closed, |()| Wake::Nudge) }, async {
                smol::Timer::at(deadline).await;
                Wake::Timer
            }),
        )
        .await;
        let Some(inner) = state.upgrade() else { return };
        match wake {
            Wake::Closed => return,
            Wake::Event(e) => {
                let mut kept = Kept::default();
                handle(&inner, &e, &mut kept);
                // Take what else is waiting before deciding to rebuild.
                let mut n = 0;
                while let Some(e) = events.try_recv() {
                    handle(&inner, &e, &mut kept);
                    n += 1;
                    if n == 4096 {
                        break;
                    }
                }
                // One transaction for the audit entries of the lot, one
                // write per batch that changed.
                inner.audit_record(&kept.audit).await;
                for id in kept.batches {
                    inner.persist_batch(id).await;
                }
                dirty = true;
            }
            // A handler marked the body stale; a request may have rebuilt it
            // already.
            Wake::Nudge => dirty |= inner.cache.is_stale(&inner.cache.get()),
            Wake::Timer => {}
        }
        if dirty && last_rebuild.elapsed() >= MIN_REBUILD {
            let polled = rebuild(&inner);
            if !polled.is_empty() {
                let _ = history.try_send(polled);
            }
            dirty = false;
            last_rebuild = Instant::now();
        }
    }
}

/// Writes the polls to the store's history off the pump, so a slow or
/// absent store holds up no event: one transaction for the lot, however
/// many servers it holds, with what arrived while the last write was under
/// way. Ends with the pump.
async fn write_history(state: Weak<Inner>, polls: smol::channel::Receiver<Vec<HistorySample>>) {
    while let Ok(mut polled) = polls.recv().await {
        while let Ok(more) = polls.try_recv() {
            polled.extend(more);
        }
        let Some(inner) = state.upgrade() else { return };
        inner.persist_history(&polled).await;
    }
}

/// Rebuilds the `/api/servers` body and the history ring; returns the
/// polls new since the last rebuild, for the store.
fn rebuild(inner: &Inner) -> Vec<HistorySample> {
    let fleet = inner.rebuild_servers();
    let clock = *inner.cluster.clock();
    let (latencies, polled) = inner.history.record(&fleet, |t| unix_ms(clock.to_system_time(t)));
    inner.metrics.latencies(&latencies);
    polled
}

/// What a run of events leaves to write to the store.
#[derive(Default)]
struct Kept {
    audit: Vec<AuditEntry>,
    batches: BTreeSet<u64>,
}

fn handle(inner: &Inner, e: &Event, kept: &mut Kept) {
    let wall = Wall(inner.cluster.clock());
    let data = serde_json::to_string(&EventView::new(e, wall)).unwrap_or_default();
    let cut = inner.hub.publish(e.kind(), data);
    for _ in 0..cut {
        inner.metrics.sse_dropped();
    }
    let mut audit = |batch: u64, event: AuditEvent| kept.audit.push(event.by(inner.batches.who(batch)));
    match e {
        Event::ActionFinished { report } => {
            let outcome = match &report.outcome {
                Ok(()) => "ok",
                Err(e) if e.is_refusal() => "refused",
                Err(_) => "failed",
            };
            inner.metrics.action(report.kind.as_str(), outcome);
            // Single actions are audited by their handler; batch actions here.
            if let Some(batch) = report.batch {
                audit(batch.0, AuditEvent::ActionFinished { outcome, report: ActionReportView::new(report, wall) });
            }
        }
        Event::ActionStarted { batch: Some(batch), server, channel, kind, action } => audit(
            batch.0,
            AuditEvent::ActionStarted {
                action_id: action.0,
                batch_id: Some(batch.0),
                server_id: server.to_string(),
                channel_id: channel.get(),
                action: kind.as_str(),
            },
        ),
        Event::BatchProgress(p) => {
            inner.batches.progress(p);
            kept.batches.insert(p.batch.0);
        }
        Event::BatchFinished { report } => {
            let view = BatchReportView::new(report, wall);
            audit(report.batch.0, AuditEvent::from(&view));
            inner.batches.finish(report, view);
            kept.batches.insert(report.batch.0);
        }
        Event::SweepFinished { duration, .. } => inner.metrics.sweep(duration.as_secs_f64()),
        _ => {}
    }
}
