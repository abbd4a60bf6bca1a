//! Alerts over a [`Cluster`](crate::Cluster): the core's evaluator
//! ([`Alerts`]) driven by the cluster's events and snapshots, on a thread
//! of its own, handing out the [`Notification`]s it decides on.
//!
//! [`Cluster::watch_alerts`](crate::Cluster::watch_alerts) starts an
//! [`AlertWatch`]. It feeds every event of the cluster to the evaluator,
//! a snapshot once at start and after every sweep and refresh, and wakes
//! when the evaluator has work due (a `for` that ends, a silence that
//! ends). Delivery is yours: read the notifications with
//! [`AlertWatch::recv`] (async, also a `Stream`) or
//! [`AlertWatch::recv_timeout`] (blocking). The dashboard adds receivers,
//! an outbox and persistence on top of the same evaluator.
//!
//! If the watch falls behind the cluster's events (its subscription
//! dropped some), it judges a fresh snapshot and the reconciler's storm
//! guard at once, so nothing a snapshot shows is lost; a failed action or
//! batch among the dropped events raises no alert.
//!
//! ```no_run
//! # async fn demo(cluster: ipvtl_client::Cluster) -> Result<(), ipvtl_client::ClientError> {
//! use ipvtl_client::alerts::AlertRules;
//!
//! let rules = AlertRules::from_toml_str("[rules.server_down]\nfor = \"30s\"\n")?;
//! let watch = cluster.watch_alerts(rules)?;
//! while let Some(n) = watch.recv().await {
//!     println!("{} {} {}", n.kind, n.labels["alertname"], n.annotations["summary"]);
//! }
//! # Ok(()) }
//! ```

mod rules;

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use futures::{FutureExt, Stream};
use ipvtl_core::alert::{Alert, Alerts, HistoryEntry, Matcher, Notification, Silence, SilenceId};
use ipvtl_core::driver::Clock;
use ipvtl_core::{Event, Instant};
use serde::Deserialize;
use smol::channel::{self, Receiver, Sender};

pub use rules::{line_column, parse_duration, AlertRules, DefaultSilence, Dur};

use crate::cluster::WeakCluster;
use crate::dispatch::Subscription;
use crate::error::ClientError;
use crate::wire::{AlertHistoryView, AlertView, NotificationView, SilenceView, Wall};
use crate::SmolClock;

/// Where a silence without an end is put: never reached.
const FAR: Instant = Instant::from_millis(u64::MAX / 4);

/// A silence to add, as given (by a caller, a keyword argument, a foreign
/// record): matchers `name=value` or `name!=value`, and an end, `ends_at`
/// (Unix seconds) or `duration_ms` from now, exactly one of them. Checked
/// by [`AlertWatch::add_silence`], once, for every caller.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceInput {
    /// All must match (at least one, and not all matching an alert that
    /// lacks their label).
    pub matchers: Vec<String>,
    /// When it ends, Unix seconds.
    #[serde(default)]
    pub ends_at: Option<f64>,
    /// Or how long from now.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Why, and who asked.
    #[serde(default)]
    pub comment: Option<String>,
}

struct State {
    alerts: Alerts,
    /// Silences that came with the rules.
    from_rules: BTreeSet<SilenceId>,
}

struct Shared {
    state: Mutex<State>,
    notes: Sender<Notification>,
    /// Wakes the loop (a silence changed the next deadline); closed to
    /// stop it.
    poke: Sender<()>,
    clock: SmolClock,
    resyncs: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands out what the evaluator produced (under its lock: in order).
    fn drain(&self, state: &mut State) {
        while let Some(n) = state.alerts.poll_event() {
            // Unbounded: never fails while the watch lives.
            let _ = self.notes.try_send(n);
        }
    }

    fn wall(&self) -> Wall<'_> {
        Wall(&self.clock)
    }

    /// The core instant of Unix seconds `t` (this run's start at the
    /// earliest).
    fn instant(&self, t: f64) -> Instant {
        let epoch = self.wall().at(Instant::ZERO);
        Instant::from_millis(((t - epoch) * 1000.0).max(0.0).round() as u64)
    }
}

/// Alerts over a cluster, evaluated on a thread of their own (see the
/// [module docs](self)). Notifications come in order, firing before its
/// resolved; none is lost while the watch lives (they queue until read).
/// Dropping the watch stops its thread; the watch does not keep the
/// cluster running, and ends (`recv` gives `None` once the queue is read)
/// when the cluster shuts down.
pub struct AlertWatch {
    shared: Arc<Shared>,
    notes: Pin<Box<Receiver<Notification>>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for AlertWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertWatch").field("active", &self.is_active()).finish_non_exhaustive()
    }
}

impl AlertWatch {
    /// Starts a watch (see [`crate::Cluster::watch_alerts`]).
    pub(crate) fn start(
        cluster: &crate::Cluster,
        rules: AlertRules,
        subscription: Subscription,
    ) -> Result<Self, ClientError> {
        let alerts = Alerts::new(rules.config).map_err(|e| ClientError::Invalid(format!("alert rules: {e}")))?;
        let (notes, notes_rx) = channel::unbounded();
        let (poke, poked) = channel::bounded(1);
        let clock = *cluster.clock();
        let shared = Arc::new(Shared {
            state: Mutex::new(State { alerts, from_rules: BTreeSet::new() }),
            notes,
            poke,
            clock,
            resyncs: AtomicU64::new(0),
        });
        {
            let now = clock.now();
            let mut state = shared.lock();
            for s in &rules.silences {
                let ends_at = match (s.ends_at, s.duration) {
                    (Some(t), _) => shared.instant(t),
                    (None, Some(d)) => now + d,
                    (None, None) => FAR,
                };
                let silence = Silence { matchers: s.matchers.clone(), ends_at, comment: s.comment.clone() };
                let id = state
                    .alerts
                    .add_silence(silence, now)
                    .map_err(|e| ClientError::Invalid(format!("alert rules: a silence cannot be applied: {e}")))?;
                state.from_rules.insert(id);
            }
            state.alerts.handle_snapshot(&cluster.snapshot(), now);
            shared.drain(&mut state);
        }
        // A storm guard already holding counts from the start.
        let status = cluster.reconciler_status();
        if status.storm {
            let e = Event::HealingPaused { troubled: status.troubled, managed: status.managed };
            let mut state = shared.lock();
            state.alerts.handle_event(&e, clock.now());
            shared.drain(&mut state);
        }
        let thread = {
            let (shared, weak) = (shared.clone(), cluster.downgrade());
            std::thread::Builder::new()
                .name("ipvtl-alerts".into())
                .spawn(move || smol::block_on(run(&shared, &subscription, &weak, &poked, status.storm)))
                .map_err(|e| ClientError::Internal(format!("cannot start the alerts thread: {e}")))?
        };
        Ok(AlertWatch { shared, notes: Box::pin(notes_rx), thread: Some(thread) })
    }

    /// The next notification; `None` once the watch has ended (the cluster
    /// shut down) and every notification was read.
    pub async fn recv(&self) -> Option<Notification> {
        self.notes.recv().await.ok()
    }

    /// The next notification if one is waiting.
    pub fn try_recv(&self) -> Option<Notification> {
        self.notes.try_recv().ok()
    }

    /// Blocking [`recv`](Self::recv).
    pub fn recv_blocking(&self) -> Option<Notification> {
        smol::block_on(self.recv())
    }

    /// Waits at most `timeout` for the next notification (blocking).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Notification> {
        smol::block_on(async {
            futures::select! {
                n = self.recv().fuse() => n,
                _ = FutureExt::fuse(smol::Timer::after(timeout)) => None,
            }
        })
    }

    /// Every active alert (pending, firing or silenced), by label set.
    pub fn alerts(&self) -> Vec<Alert> {
        self.shared.lock().alerts.alerts()
    }

    /// Recent ended alerts, oldest first (at most the rules' `history`).
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.shared.lock().alerts.history().cloned().collect()
    }

    /// The silences in force, by id.
    pub fn silences(&self) -> Vec<(SilenceId, Silence)> {
        self.shared.lock().alerts.silences().map(|(id, s)| (id, s.clone())).collect()
    }

    /// Adds a silence now: what it matches stops firing (an alert that
    /// already fired stays delivered and still gets its resolved). Refused
    /// (`Invalid`, saying why) when a matcher is malformed, when it would
    /// mute everything, or when its end is missing or not in the future.
    pub fn add_silence(&self, input: SilenceInput) -> Result<SilenceId, ClientError> {
        let invalid = |why: String| ClientError::Invalid(format!("silence: {why}"));
        let matchers: Vec<Matcher> = input
            .matchers
            .iter()
            .map(|m| Matcher::parse(m))
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(e.to_string()))?;
        let now = self.shared.clock.now();
        let ends_at = match (input.ends_at, input.duration_ms) {
            (Some(t), None) if t.is_finite() && t > self.shared.wall().at(now) => self.shared.instant(t),
            (Some(t), None) => return Err(invalid(format!("ends_at {t} is not in the future"))),
            (None, Some(0)) => return Err(invalid("duration_ms must be more than 0".into())),
            (None, Some(ms)) => now + Duration::from_millis(ms),
            (Some(_), Some(_)) => return Err(invalid("give ends_at or duration_ms, not both".into())),
            (None, None) => return Err(invalid("give its end: ends_at (Unix seconds) or duration_ms".into())),
        };
        let silence = Silence { matchers, ends_at, comment: input.comment.unwrap_or_default() };
        let id = {
            let mut state = self.shared.lock();
            let id = state.alerts.add_silence(silence, now).map_err(|e| invalid(e.to_string()))?;
            self.shared.drain(&mut state);
            id
        };
        let _ = self.shared.poke.try_send(());
        Ok(id)
    }

    /// Ends silence `id` now: what it held and still holds fires. False
    /// for an unknown (or already ended) silence.
    pub fn expire_silence(&self, id: SilenceId) -> bool {
        let now = self.shared.clock.now();
        let known = {
            let mut state = self.shared.lock();
            let known = state.alerts.expire_silence(id, now);
            state.from_rules.remove(&id);
            self.shared.drain(&mut state);
            known
        };
        let _ = self.shared.poke.try_send(());
        known
    }

    /// The active alerts as their wire views.
    pub fn alert_views(&self) -> Vec<AlertView> {
        self.alerts().iter().map(|a| AlertView::new(a, self.shared.wall())).collect()
    }

    /// The history as wire views.
    pub fn history_views(&self) -> Vec<AlertHistoryView> {
        self.history().iter().map(|h| AlertHistoryView::new(h, self.shared.wall())).collect()
    }

    /// The silences as wire views: `origin` is `file` for those of the
    /// rules (`ends_at` `None`: as long as the watch), `api` for those
    /// added since.
    pub fn silence_views(&self) -> Vec<SilenceView> {
        let state = self.shared.lock();
        state
            .alerts
            .silences()
            .map(|(id, s)| {
                let ends_at = (s.ends_at < FAR).then(|| self.shared.wall().at(s.ends_at));
                let origin = if state.from_rules.contains(&id) { "file" } else { "api" };
                SilenceView::new(id, s, ends_at, origin)
            })
            .collect()
    }

    /// A notification as its wire view (what receivers get).
    pub fn notification_view(&self, n: &Notification) -> NotificationView {
        NotificationView::new(n, None, self.shared.wall())
    }

    /// Times the watch fell behind the cluster's events and judged a
    /// fresh snapshot instead.
    pub fn resyncs(&self) -> u64 {
        self.shared.resyncs.load(Ordering::Relaxed)
    }

    /// Stops the watch now, without waiting for a drop (a host that shares
    /// it among tasks): its thread ends, and readers get the notifications
    /// already queued, then `None`. Idempotent.
    pub fn close(&self) {
        self.shared.poke.close();
        self.notes.close();
    }

    /// True until the watch's thread has ended (the cluster shut down, or
    /// the watch was dropped).
    pub fn is_active(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Stream for AlertWatch {
    type Item = Notification;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Notification>> {
        self.notes.as_mut().poll_next(cx)
    }
}

impl Drop for AlertWatch {
    /// Stops the thread and waits for it (it never waits long: it holds
    /// no lock across a wait).
    fn drop(&mut self) {
        self.shared.poke.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

enum Wake {
    Event(Option<Box<Event>>),
    Due,
    Poked(bool),
}

/// The watch's loop: events, due work and pokes, until the cluster shuts
/// down or the watch is dropped.
/// `storm`: whether the storm guard held at the start.
async fn run(shared: &Shared, sub: &Subscription, cluster: &WeakCluster, poked: &Receiver<()>, mut storm: bool) {
    let clock = shared.clock;
    let mut dropped = sub.dropped();
    loop {
        let due = shared.lock().alerts.poll_timeout();
        let timer = async {
            match due {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending::<()>().await,
            }
            Wake::Due
        };
        let event = async { Wake::Event(sub.recv().await.map(Box::new)) };
        let poke = async { Wake::Poked(poked.recv().await.is_ok()) };
        let wake = smol::future::or(poke, smol::future::or(event, timer)).await;
        let now = clock.now();
        let snapshot = match &wake {
            Wake::Event(None) | Wake::Poked(false) => break,
            Wake::Event(Some(e)) => {
                match &**e {
                    Event::HealingPaused { .. } => storm = true,
                    Event::HealingResumed { .. } => storm = false,
                    _ => {}
                }
                let mut state = shared.lock();
                state.alerts.handle_event(e, now);
                shared.drain(&mut state);
                matches!(**e, Event::SweepFinished { .. } | Event::Refreshed { .. })
            }
            Wake::Due | Wake::Poked(true) => false,
        };
        let lagged = sub.dropped() != dropped;
        dropped = sub.dropped();
        if lagged {
            shared.resyncs.fetch_add(1, Ordering::Relaxed);
        }
        if snapshot || lagged {
            let Some(cluster) = cluster.upgrade() else { break };
            let fleet = cluster.snapshot();
            let guard = lagged.then(|| cluster.reconciler_status());
            drop(cluster);
            let now = clock.now();
            let mut state = shared.lock();
            if let Some(status) = guard.filter(|s| s.storm != storm) {
                storm = status.storm;
                let (troubled, managed) = (status.troubled, status.managed);
                let e = if storm {
                    Event::HealingPaused { troubled, managed }
                } else {
                    Event::HealingResumed { troubled, managed }
                };
                state.alerts.handle_event(&e, now);
            }
            state.alerts.handle_snapshot(&fleet, now);
            shared.drain(&mut state);
        } else {
            let mut state = shared.lock();
            state.alerts.handle_timeout(now);
            shared.drain(&mut state);
        }
    }
    shared.notes.close();
}
