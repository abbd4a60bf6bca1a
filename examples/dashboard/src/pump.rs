//! The event pump: one thread that follows the cluster's events and keeps
//! the dashboard's derived state current: SSE fan-out, the cached
//! `/api/servers` body (rebuilt at most every [`MIN_REBUILD`] after events
//! while clients read it, see [`WATCHED`];
//! a change made through the API is also rebuilt by the next request that
//! reads it, see [`crate::cache`]), history (the ring, and the store's
//! downsampled points: held per bucket and written when buckets close, by
//! a task of their own so a slow or absent store holds up no event), metrics, batch
//! progress, and audit entries of batch actions and of the reconciler's
//! heals (`who: "reconciler"`), each opened and closed in the store's
//! ledger of actions under way.

use std::collections::{BTreeSet, HashMap};
use std::sync::Weak;
use std::time::{Duration, Instant};

use ipvtl_client::wire::{ActionReportView, BatchReportView, EventView, HealView, Wall};
use ipvtl_client::{Event, Subscription};

use crate::audit::{AuditEntry, AuditEvent, RECONCILER};
use crate::state::Inner;
use crate::store::HistorySample;
use crate::timefmt::unix_ms;

/// Shortest time between two rebuilds of the `/api/servers` body.
const MIN_REBUILD: Duration = Duration::from_millis(250);
/// The pump renders the body ahead of requests only while someone reads
/// the list: a read within this window. Otherwise it marks the body stale
/// and leaves the rendering to the next request (most of the CPU of a
/// sweep at fleet size when nobody looks; the page follows the events).
const WATCHED: Duration = Duration::from_secs(10);
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
    let mut following = Following::default();
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
                handle(&inner, &e, &mut kept, &mut following);
                // Take what else is waiting before deciding to rebuild.
                let mut n = 0;
                while let Some(e) = events.try_recv() {
                    handle(&inner, &e, &mut kept, &mut following);
                    n += 1;
                    if n == 4096 {
                        break;
                    }
                }
                // One transaction for the audit entries of the lot, one
                // write per batch that changed.
                inner.audit_record(&kept.audit).await;
                if let Some(instances) = &inner.instances {
                    for (server, channel) in &kept.unlock {
                        instances.unlock(&inner.config.store, server, *channel).await;
                    }
                }
                confirm_heals(&inner, kept.requested, &mut following).await;
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

/// Hands the polls to the store's history off the pump, so a slow or
/// absent store holds up no event: they are held per bucket, and the
/// buckets closed meanwhile written in one transaction, with what arrived
/// while the last write was under way. Ends with the pump.
async fn write_history(state: Weak<Inner>, polls: smol::channel::Receiver<Vec<HistorySample>>) {
    while let Ok(mut polled) = polls.recv().await {
        while let Ok(more) = polls.try_recv() {
            polled.extend(more);
        }
        let Some(inner) = state.upgrade() else { return };
        // Sharing the fleet: each server's history is stored by its owner.
        if let Some(instances) = &inner.instances {
            polled.retain(|s| instances.owns(&ipvtl_client::core::ServerId::from(s.server_id.as_str())));
        }
        inner.persist_history(&polled).await;
    }
}

/// Rebuilds the `/api/servers` body (or, if nobody read it lately, marks
/// it stale for the next request to rebuild), feeds the alerts and the
/// history ring; returns the polls new since the last rebuild, for the
/// store.
fn rebuild(inner: &Inner) -> Vec<HistorySample> {
    let fleet = if inner.cache.read_within(WATCHED) {
        inner.rebuild_servers()
    } else {
        inner.cache.release();
        inner.cluster.snapshot()
    };
    inner.alerts.handle_snapshot(&fleet, inner.cluster.now());
    inner.pump_passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    /// Heals the reconciler asks to do.
    requested: Vec<Requested>,
    /// Channels whose action ended: their cross-instance locks go.
    unlock: Vec<(String, u32)>,
}

/// A heal the reconciler asks to do: its ticket, its key in the ledger of
/// actions under way, the write-ahead entry, and what it would do.
struct Requested {
    ticket: u64,
    key: String,
    entry: AuditEntry,
    heal: HealView,
}

/// What the pump remembers between events: the reconciler's actions under
/// way (by action id, with the key of their entry in the store's ledger),
/// whose ends it audits as the reconciler's.
#[derive(Default)]
struct Following {
    heals: HashMap<u64, String>,
}

/// The write-ahead rule for heals: each heal the reconciler asks for is
/// committed to the audit (and the ledger of actions under way) before it
/// is confirmed; one that cannot be recorded is refused (nothing is sent;
/// the reconciler asks again later). One that was recorded but did not
/// start after all is closed with `heal_not_started`.
async fn confirm_heals(inner: &Inner, requested: Vec<Requested>, following: &mut Following) {
    for Requested { ticket, key, entry, heal } in requested {
        // Sharing the fleet: a channel held by another instance (a human's
        // action there) is not healed now; the reconciler asks again later.
        if let Some(instances) = &inner.instances {
            let channel = [(heal.server_id.clone(), heal.channel_id)];
            if instances.lock_channels(&inner.config.store, &inner.cluster, &channel).await.is_err() {
                inner.cluster.confirm_heal(ticket, false);
                continue;
            }
        }
        let recorded = inner.audit_now(&entry).await;
        if let Err(e) = &recorded {
            eprintln!("ipvtl-dashboard: a heal is not started, its request cannot be recorded: {e}");
        }
        match inner.cluster.confirm_heal(ticket, recorded.is_ok()) {
            Some(action) => {
                following.heals.insert(action, key);
            }
            None if recorded.is_ok() => {
                if let Some(instances) = &inner.instances {
                    instances.unlock(&inner.config.store, &heal.server_id, heal.channel_id).await;
                }
                let not_started = AuditEvent::HealNotStarted {
                    ticket,
                    server_id: heal.server_id,
                    channel_id: heal.channel_id,
                    action: heal.action,
                };
                inner.audit_record(&[not_started.by_actor(Some(RECONCILER)).closing(&key)]).await;
            }
            None => {
                if let Some(instances) = &inner.instances {
                    instances.unlock(&inner.config.store, &heal.server_id, heal.channel_id).await;
                }
            }
        }
    }
}

fn handle(inner: &Inner, e: &Event, kept: &mut Kept, following: &mut Following) {
    let wall = Wall(inner.cluster.clock());
    let data = serde_json::to_string(&EventView::new(e, wall)).unwrap_or_default();
    let cut = inner.hub.publish(e.kind(), data);
    inner.alerts.handle_event(e, inner.cluster.now());
    for _ in 0..cut {
        inner.metrics.sse_dropped();
    }
    let by_batch = |batch: u64, event: AuditEvent| event.by(inner.batches.who(batch));
    match e {
        Event::ActionFinished { report } => {
            let outcome = match &report.outcome {
                Ok(()) => "ok",
                Err(e) if e.is_refusal() => "refused",
                Err(_) => "failed",
            };
            inner.metrics.action(report.kind.as_str(), outcome);
            if inner.instances.is_some() {
                kept.unlock.push((report.server.to_string(), report.channel.get()));
            }
            // Single actions are audited by their handler; batch actions
            // and heals here.
            let finished = || AuditEvent::ActionFinished { outcome, report: ActionReportView::new(report, wall) };
            let Some(key) = report.action.map(|a| inner.action_key(a.0)) else { return };
            if let Some(batch) = report.batch {
                kept.audit.push(by_batch(batch.0, finished()).closing(&key));
            } else if let Some(key) = report.action.and_then(|a| following.heals.remove(&a.0)) {
                kept.audit.push(finished().by_actor(Some(RECONCILER)).closing(&key));
            }
        }
        Event::HealRequested { heal, ticket } => {
            let key = inner.heal_key(*ticket);
            let heal = HealView::new(heal, wall);
            let entry = AuditEvent::HealRequested { ticket: *ticket, heal: heal.clone() };
            let entry = entry.by_actor(Some(RECONCILER)).opening(&key);
            kept.requested.push(Requested { ticket: *ticket, key, entry, heal });
        }
        Event::HealStarted { heal, action, attempt } => {
            let started =
                AuditEvent::HealStarted { action_id: action.0, attempt: *attempt, heal: HealView::new(heal, wall) };
            // Requested first (the dashboard confirms heals): the ledger's
            // row is the request's; else this entry opens one.
            let mut entry = started.by_actor(Some(RECONCILER));
            if let std::collections::hash_map::Entry::Vacant(v) = following.heals.entry(action.0) {
                entry = entry.opening(v.insert(inner.action_key(action.0)));
            }
            kept.audit.push(entry);
        }
        Event::HealFinished { ok, .. } => inner.metrics.heal(if *ok { "ok" } else { "failed" }),
        Event::HealPlanned { .. } => inner.metrics.heal("planned"),
        Event::HealDegraded { server, channel, attempts, until } => {
            inner.metrics.heal_degraded();
            let degraded = AuditEvent::HealDegraded {
                server_id: server.to_string(),
                channel_id: channel.get(),
                attempts: *attempts,
                until_at: wall.at(*until),
            };
            kept.audit.push(degraded.by_actor(Some(RECONCILER)));
        }
        // Every instance sharing the fleet sees the storm; the leader
        // audits it.
        Event::HealingPaused { .. } | Event::HealingResumed { .. }
            if inner.instances.as_ref().is_some_and(|i| !i.leads()) => {}
        Event::HealingPaused { troubled, managed } | Event::HealingResumed { troubled, managed } => {
            let paused = matches!(e, Event::HealingPaused { .. });
            let storm = AuditEvent::HealingStorm { paused, troubled: *troubled, managed: *managed };
            kept.audit.push(storm.by_actor(Some(RECONCILER)));
        }
        Event::ActionStarted { batch: Some(batch), server, channel, kind, action } => {
            let started = AuditEvent::ActionStarted {
                action_id: action.0,
                batch_id: Some(batch.0),
                server_id: server.to_string(),
                channel_id: channel.get(),
                action: kind.as_str(),
            };
            kept.audit.push(by_batch(batch.0, started).opening(&inner.action_key(action.0)));
        }
        Event::BatchProgress(p) => {
            inner.batches.progress(p);
            kept.batches.insert(p.batch.0);
        }
        Event::BatchFinished { report } => {
            let view = BatchReportView::new(report, wall);
            kept.audit.push(by_batch(report.batch.0, AuditEvent::from(&view)));
            if inner.instances.is_some() {
                kept.unlock.extend(report.reports.iter().map(|r| (r.server.to_string(), r.channel.get())));
            }
            inner.batches.finish(report, view);
            kept.batches.insert(report.batch.0);
        }
        Event::SweepFinished { duration, .. } => inner.metrics.sweep(duration.as_secs_f64()),
        _ => {}
    }
}
