//! The event pump: one thread that follows the cluster's events and keeps
//! the dashboard's derived state current: SSE fan-out, the cached
//! `/api/servers` body (rebuilt at most every [`MIN_REBUILD`]), history,
//! metrics, batch progress, and audit entries of batch actions.

use std::sync::Weak;
use std::time::{Duration, Instant};

use ipvtl_client::{Event, Subscription};
use serde_json::json;

use crate::state::{render_servers, Inner};
use crate::timefmt::unix_ms;
use crate::view::{event_json, report_json};

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
                handle(&inner, &e);
                // Take what else is waiting before deciding to rebuild.
                let mut n = 0;
                while let Some(e) = events.try_recv() {
                    handle(&inner, &e);
                    n += 1;
                    if n == 4096 {
                        break;
                    }
                }
                dirty = true;
            }
            Wake::Nudge => dirty = true,
            Wake::Timer => {}
        }
        if dirty && last_rebuild.elapsed() >= MIN_REBUILD {
            rebuild(&inner);
            dirty = false;
            last_rebuild = Instant::now();
        }
    }
}

fn rebuild(inner: &Inner) {
    let fleet = inner.cluster.snapshot();
    let clock = *inner.cluster.clock();
    let latencies = inner.history.record(&fleet, |t| unix_ms(clock.to_system_time(t)));
    inner.metrics.latencies(&latencies);
    inner.cache.replace(render_servers(&inner.cluster, &fleet));
}

fn handle(inner: &Inner, e: &Event) {
    let data = event_json(e).to_string();
    let cut = inner.hub.publish(e.kind(), data);
    for _ in 0..cut {
        inner.metrics.sse_dropped();
    }
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
                let who = inner.batches.who(batch.0);
                inner.config.audit.record(json!({
                    "event": "action_finished", "who": who, "outcome": outcome, "report": report_json(report),
                }));
            }
        }
        Event::ActionStarted { batch: Some(batch), server, channel, kind, action } => {
            let who = inner.batches.who(batch.0);
            inner.config.audit.record(json!({
                "event": "action_started", "who": who, "batch_id": batch.0, "action_id": action.0,
                "server_id": server.as_str(), "channel_id": channel.get(), "action": kind.as_str(),
            }));
        }
        Event::BatchProgress(p) => inner.batches.progress(p),
        Event::BatchFinished { report } => {
            inner.batches.finish(report);
            let who = inner.batches.who(report.batch.0);
            inner.config.audit.record(json!({
                "event": "batch_finished", "who": who, "batch_id": report.batch.0,
                "ok": report.ok(), "failed": report.failed(), "skipped": report.skipped(),
            }));
        }
        Event::SweepFinished { duration, .. } => inner.metrics.sweep(duration.as_secs_f64()),
        _ => {}
    }
}
