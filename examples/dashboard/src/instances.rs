//! Several dashboards sharing one fleet through a PostgreSQL store
//! (`--instance-id`): the driver of the core's shard lease machine
//! ([`ipvtl_client::core::shard::Leases`]) and of what moves between the
//! instances through the store.
//!
//! - **Leases.** Each round (every `ttl / 4`, or at the expiry of a lease
//!   this instance wants) heartbeats, then renews, claims and releases in
//!   one transaction judged by the database's clock. The machine fences a
//!   shard it could not renew before its lease ends; the servers of the
//!   shards it owns are swept here, the others are left to their owners
//!   ([`Cluster::set_sweeping`]).
//! - **State out.** After each sweep, the owner writes what it observed of
//!   its servers (one batched upsert, refused by the database for a shard
//!   whose lease this instance no longer holds at that epoch) and the
//!   store announces it with `NOTIFY`.
//! - **State in.** Every instance listens and reads the rows newer than
//!   the last it saw, adopting the others' observations
//!   ([`Cluster::adopt`]): the whole fleet is served from any instance.
//!   After a lost connection it reads again from where it was (a
//!   notification may have been missed), and every few seconds anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ipvtl_client::core::driver::Clock;
use ipvtl_client::core::poller::{Observed, Sweeping};
use ipvtl_client::core::shard::{self, InstanceId, Leases, RoundResult, ShardConfig, ShardEvent};
use ipvtl_client::core::{Instant, ServerId};
use ipvtl_client::{Cluster, SmolClock};
use serde_json::{json, Value};

use crate::state::Inner;
use crate::store::{InstanceRow, StateWrite, Store};

/// Reads of the shared state at least this often (a missed notification
/// costs no more).
const RESYNC: Duration = Duration::from_secs(3);

/// How this instance takes part.
#[derive(Clone, Debug)]
pub struct InstanceConfig {
    /// This instance's name among the others (`--instance-id`).
    pub id: String,
    /// Where the others and people reach it (`--advertise`).
    pub advertise: String,
    /// Shards the fleet is cut into (the same for every instance).
    pub shards: u16,
    /// How long a lease lasts without renewal (`--lease-ttl`).
    pub ttl: Duration,
}

impl InstanceConfig {
    /// The shard machine's settings.
    pub fn shard_config(&self) -> ShardConfig {
        ShardConfig::new(self.shards, self.ttl)
    }
}

/// What the instances share, as this one knows it: read by the routes and
/// the metrics.
pub(crate) struct Instances {
    pub config: InstanceConfig,
    clock: SmolClock,
    view: Mutex<View>,
    /// Channel locks this instance holds in the store, with their tokens.
    locks: Mutex<BTreeMap<(String, u32), String>>,
    /// Held for each lease round; true once this instance has left (no
    /// round after that).
    rounds: smol::lock::Mutex<bool>,
}

#[derive(Default)]
struct View {
    /// Shards held, with their epoch and until when this instance may act
    /// on them (past it, not renewed: fenced).
    owned: BTreeMap<u16, (u64, Instant)>,
    /// The live instances, as the database judged them at the last round.
    live: Vec<InstanceRow>,
    /// Owner of each shard at the last round.
    owners: BTreeMap<u16, Option<String>>,
    rounds_ok: u64,
    rounds_failed: u64,
    acquired: u64,
    lost: u64,
    written: u64,
    refused: u64,
    adopted: u64,
    version: u64,
}

/// This process's instance name, once it shares a fleet: the audit
/// entries carry it.
static NAME: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// The instance name the audit records (`None`: running alone).
pub(crate) fn name() -> Option<&'static str> {
    NAME.get().copied()
}

/// Names this process's instance (once: a process is one instance).
pub(crate) fn set_name(id: &str) {
    let _ = NAME.set(Box::leak(id.to_string().into_boxed_str()));
}

/// Whether a stored entry (an action's opening audit entry, a batch's
/// view; JSON) was left by this instance, or written by a dashboard
/// running alone, or (`live` given) by an instance no longer alive: the
/// ones this instance may close as interrupted.
pub(crate) fn left_by(entry: &str, live: Option<&[InstanceRow]>) -> bool {
    left_by_as(entry, name(), live)
}

/// [`left_by`] as instance `me` (`None`: a dashboard alone).
fn left_by_as(entry: &str, me: Option<&str>, live: Option<&[InstanceRow]>) -> bool {
    let instance = serde_json::from_str::<Value>(entry).ok().and_then(|v| v["instance"].as_str().map(String::from));
    match (instance, me, live) {
        (None, _, _) | (_, None, _) => live.is_none(),
        (Some(i), Some(me), None) => i == me,
        (Some(i), Some(me), Some(live)) => i != me && !live.iter().any(|l| l.id == i),
    }
}

impl Instances {
    pub fn new(config: InstanceConfig, clock: SmolClock) -> Self {
        Instances {
            config,
            clock,
            view: Mutex::default(),
            locks: Mutex::default(),
            rounds: smol::lock::Mutex::new(false),
        }
    }

    /// Leaves the shared fleet on a clean stop: no lease round after this
    /// one, nothing swept here any more, then its leases released, its row
    /// and its channel locks removed in one transaction, so the others
    /// claim its shards at their next round instead of at the leases'
    /// expiry.
    pub async fn leave(&self, store: &Store, cluster: &Cluster) -> Result<(), String> {
        let mut left = self.rounds.lock().await;
        *left = true;
        cluster.set_sweeping(|_| Sweeping::Never);
        self.view().owned.clear();
        store.leave(&self.config.id).await.map_err(|e| e.to_string())
    }

    /// The epoch of a shard this instance may act on now.
    fn epoch(&self, shard: u16) -> Option<u64> {
        let now = self.clock.now();
        self.view().owned.get(&shard).filter(|(_, until)| now < *until).map(|(epoch, _)| *epoch)
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the cluster until when it sweeps each server: the lease of
    /// its shard, or never. Run after every round and after a reload (new
    /// servers start swept, as alone).
    pub fn apply_sweeping(&self, cluster: &Cluster) {
        let owned = self.view().owned.clone();
        let n = self.config.shards;
        cluster.set_sweeping(|id| match owned.get(&shard::shard_of(id, n)) {
            Some((_, until)) => Sweeping::Until(*until),
            None => Sweeping::Never,
        });
    }

    /// The shard of `server`.
    pub fn shard_of(&self, server: &ServerId) -> u16 {
        shard::shard_of(server, self.config.shards)
    }

    /// True when this instance acts for `server` now (polls, heals,
    /// alerts, exports its series).
    pub fn owns(&self, server: &ServerId) -> bool {
        self.epoch(self.shard_of(server)).is_some()
    }

    /// The instance that speaks for the whole fleet (fleet-wide alerts and
    /// audit entries, the others' leftovers): the owner of shard 0.
    pub fn leads(&self) -> bool {
        self.epoch(0).is_some()
    }

    /// Whether this instance delivers an alert with these labels: one about
    /// a server's state is delivered by the server's owner (every instance
    /// sees every server); the storm guard's, fleet-wide, by the leader;
    /// the others (an action or batch that failed here, this instance's
    /// store) only happen here.
    pub fn delivers(&self, labels: &BTreeMap<String, String>) -> bool {
        let name = labels.get("alertname").map(String::as_str).unwrap_or_default();
        match (name, labels.get("server")) {
            ("IpvtlHealingPaused", _) => self.leads(),
            (
                "IpvtlServerDown" | "IpvtlChannelStalled" | "IpvtlChannelDrift" | "IpvtlHealDegraded" | "IpvtlCpuHigh",
                Some(server),
            ) => self.owns(&ServerId::from(server.as_str())),
            _ => true,
        }
    }

    /// `GET /api/cluster`.
    pub fn view_json(&self) -> Value {
        let owned = self.owned_now();
        let v = self.view();
        let mut per_owner: BTreeMap<&str, usize> = BTreeMap::new();
        for owner in v.owners.values().flatten() {
            *per_owner.entry(owner.as_str()).or_default() += 1;
        }
        let instances: Vec<Value> = v
            .live
            .iter()
            .map(|i| {
                json!({
                    "instance_id": i.id,
                    "advertise": i.advertise,
                    "heartbeat_age_s": i.age.as_secs_f64(),
                    "shards": per_owner.get(i.id.as_str()).copied().unwrap_or(0),
                    "me": i.id == self.config.id,
                })
            })
            .collect();
        json!({
            "instance_id": self.config.id,
            "advertise": self.config.advertise,
            "shards": self.config.shards,
            "lease_ttl_s": self.config.ttl.as_secs_f64(),
            "owned_shards": owned,
            "unowned_shards": v.owners.values().filter(|o| o.is_none()).count(),
            "instances": instances,
            "rounds": {"ok": v.rounds_ok, "failed": v.rounds_failed},
            "leases": {"acquired": v.acquired, "lost": v.lost},
            "states": {"written": v.written, "refused": v.refused, "adopted": v.adopted, "version": v.version},
        })
    }

    /// The instance's series for `/metrics`.
    pub fn metrics(&self) -> String {
        let owned = self.owned_now() as u64;
        let v = self.view();
        let id = crate::metrics::esc(&self.config.id);
        let mut out = String::new();
        for (name, kind, help, value) in [
            ("ipvtl_instance_shards", "gauge", "Shards this instance owns and acts on.", owned),
            (
                "ipvtl_instance_live",
                "gauge",
                "Instances alive as the store judged at the last round.",
                v.live.len() as u64,
            ),
            ("ipvtl_lease_rounds_total", "counter", "Lease rounds the store answered.", v.rounds_ok),
            ("ipvtl_lease_round_failures_total", "counter", "Lease rounds that failed.", v.rounds_failed),
            ("ipvtl_leases_acquired_total", "counter", "Shard leases taken.", v.acquired),
            ("ipvtl_leases_lost_total", "counter", "Shard leases given up, fenced or taken.", v.lost),
            (
                "ipvtl_state_writes_refused_total",
                "counter",
                "Server states the store refused (a stale lease).",
                v.refused,
            ),
        ] {
            crate::metrics::header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name}{{instance_id=\"{id}\"}} {value}");
        }
        out
    }

    /// Shards this instance may act on now.
    fn owned_now(&self) -> usize {
        let now = self.clock.now();
        self.view().owned.values().filter(|(_, until)| now < *until).count()
    }
}

/// Starts the instance's thread: leases, state out, state in.
pub(crate) fn spawn(state: Weak<Inner>, instances: Arc<Instances>) {
    let spawned = std::thread::Builder::new().name("ipvtl-dashboard-instances".into()).spawn(move || {
        smol::block_on(smol::future::zip(
            leases(state.clone(), instances.clone()),
            smol::future::zip(write_states(state.clone(), instances.clone()), read_states(state, instances)),
        ));
    });
    if let Err(e) = spawned {
        eprintln!("ipvtl-dashboard: cannot start the instance thread: {e}");
    }
}

/// Sharing the fleet: on SIGTERM or SIGINT this instance leaves it cleanly
/// (its leases released, its row and channel locks removed: the others
/// take its shards over at their next round, not at the leases' expiry),
/// then the process exits. Running
/// alone, the signals keep their default (the process ends).
pub fn leave_on_signal(state: &crate::state::AppState) {
    let Some(instances) = state.inner.instances.clone() else { return };
    let signals = match async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ipvtl-dashboard: no clean leave on SIGTERM (the leases will lapse instead): {e}");
            return;
        }
    };
    let (store, cluster) = (state.store().clone(), state.cluster().clone());
    let spawned = std::thread::Builder::new().name("ipvtl-dashboard-signals".into()).spawn(move || {
        smol::block_on(async move {
            use smol::stream::StreamExt;
            let mut signals = signals;
            let signal = signals.next().await;
            eprintln!("ipvtl-dashboard: {signal:?}: leaving the shared fleet as {}", instances.config.id);
            if let Err(e) = instances.leave(&store, &cluster).await {
                eprintln!("ipvtl-dashboard: could not leave cleanly (the leases will lapse instead): {e}");
            }
            std::process::exit(0);
        })
    });
    if let Err(e) = spawned {
        eprintln!("ipvtl-dashboard: no clean leave on SIGTERM (the leases will lapse instead): {e}");
    }
}

/// Before serving: the shard rows exist and this instance is known alive.
pub async fn join(store: &Store, config: &InstanceConfig) -> Result<Vec<InstanceRow>, String> {
    store.ensure_shards(config.shards).await.map_err(|e| e.to_string())?;
    store.heartbeat(&config.id, &config.advertise, config.ttl).await.map_err(|e| e.to_string())
}

async fn leases(state: Weak<Inner>, instances: Arc<Instances>) {
    let me = InstanceId::from(instances.config.id.as_str());
    let config = instances.config.shard_config();
    let Some(now) = state.upgrade().map(|i| i.cluster.now()) else { return };
    let mut machine = Leases::new(me, config.clone(), now);
    let mut said_failing = false;
    let mut followed = Followed::default();
    loop {
        let Some(inner) = state.upgrade() else { return };
        let cluster = &inner.cluster;
        let store = &inner.config.store;
        let now = cluster.now();
        machine.handle_timeout(now);
        let rounds = instances.rounds.lock().await;
        if *rounds {
            return; // left the fleet
        }
        if let Some(round) = machine.poll_round(now) {
            let cfg = &instances.config;
            let answer = async {
                store.heartbeat(&cfg.id, &cfg.advertise, cfg.ttl).await?;
                store.lease_round(&cfg.id, cfg.ttl, &round.renew, &round.claim, &round.release).await
            };
            let limit = config.act_window();
            let answer = smol::future::or(async { Some(answer.await) }, async {
                smol::Timer::after(limit).await;
                None
            })
            .await;
            let now = cluster.now();
            match answer {
                Some(Ok(r)) => {
                    if std::mem::take(&mut said_failing) {
                        eprintln!("ipvtl-dashboard: lease rounds answered again");
                    }
                    let result = RoundResult {
                        view: r.view.clone(),
                        live: r.live.iter().map(|i| InstanceId::from(i.id.as_str())).collect(),
                        renewed: r.renewed.clone(),
                        claimed: r.claimed.clone(),
                    };
                    machine.handle_round(round.id, Ok(result), now);
                    let rounds = {
                        let mut v = instances.view();
                        v.rounds_ok += 1;
                        v.live = r.live.clone();
                        v.owners = r
                            .view
                            .into_iter()
                            .map(|l| (l.shard, l.owner.filter(|_| l.remaining.is_some()).map(|o| o.to_string())))
                            .collect();
                        v.rounds_ok
                    };
                    if rounds % 4 == 1 && machine.owns(0, now).is_some() {
                        janitor(&inner, &r.live).await;
                    }
                    if rounds % 2 == 0 {
                        followed.follow(&inner).await;
                    }
                }
                failed => {
                    if !std::mem::replace(&mut said_failing, true) {
                        let why = match failed {
                            Some(Err(e)) => e.to_string(),
                            _ => format!("no answer within {limit:?}"),
                        };
                        eprintln!("ipvtl-dashboard: a lease round failed (shards not renewed are given up before their lease ends): {why}");
                    }
                    machine.handle_round(round.id, Err(()), now);
                    instances.view().rounds_failed += 1;
                }
            }
        }
        drop(rounds);
        while let Some(e) = machine.poll_event() {
            let mut v = instances.view();
            match e {
                ShardEvent::Acquired { .. } => v.acquired += 1,
                ShardEvent::Lost { .. } => v.lost += 1,
                _ => {}
            }
        }
        // What the leases allow, after every round and event: the core
        // stops polling and healing a shard's servers at its instant even
        // if this thread never runs again (a pause, a hung store).
        let now = cluster.now();
        machine.handle_timeout(now);
        let owned: BTreeMap<u16, (u64, Instant)> =
            machine.owned(now).filter_map(|(shard, epoch)| Some((shard, (epoch, machine.act_until(shard)?)))).collect();
        instances.view().owned = owned;
        instances.apply_sweeping(cluster);
        let wait = machine
            .poll_timeout()
            .map(|at| Duration::from_millis(at.as_millis().saturating_sub(now.as_millis())))
            .unwrap_or(config.renew_every)
            .min(config.renew_every);
        drop(inner);
        smol::Timer::after(wait.max(Duration::from_millis(20))).await;
    }
}

/// What the other instances set through their API, as last seen in the
/// store: maintenance flags, desired state, healing and the reconciler's
/// settings (each instance applies what it is told; the others follow
/// here, every other round).
#[derive(Default)]
struct Followed {
    settings: Option<Vec<(String, String)>>,
    maintenance: Option<BTreeSet<String>>,
    /// The servers file's reload generation last seen.
    reload: Option<u64>,
}

impl Followed {
    async fn follow(&mut self, inner: &Arc<Inner>) {
        let store = &inner.config.store;
        let cluster = &inner.cluster;
        let mut changed = 0;
        if let Ok(now) = store.settings().await {
            let before = self.settings.take().unwrap_or_default();
            if before != now {
                changed += crate::reconcile::follow(cluster, &before, &now);
            }
            self.settings = Some(now);
        }
        if let Ok(now) = store.maintenance().await {
            let now: BTreeSet<String> = now.into_iter().collect();
            let before = self.maintenance.take().unwrap_or_default();
            for id in now.symmetric_difference(&before) {
                let on = now.contains(id);
                let is = cluster.server(id).is_ok_and(|s| s.state.maintenance);
                if is != on && cluster.set_maintenance(id, on).is_ok() {
                    changed += 1;
                }
            }
            self.maintenance = Some(now);
        }
        if let Ok(last) = store.last_reload().await {
            let generation = last.as_ref().map_or(0, |(n, _)| *n);
            let seen = self.reload.replace(generation);
            if let (Some(seen), Some((_, by))) = (seen, last) {
                if seen != generation && by != crate::instances::name().unwrap_or_default() {
                    follow_reload(inner, &by).await;
                }
            }
        }
        if changed > 0 {
            crate::state::AppState { inner: inner.clone() }.invalidate();
        }
    }
}

/// Reloads this instance's servers file because instance `by` reloaded
/// its own (the list is the same everywhere in a shared fleet), audited
/// as a reload following it.
async fn follow_reload(inner: &Arc<Inner>, by: &str) {
    let Some(path) = inner.config.servers_path.clone() else { return };
    let state = crate::state::AppState { inner: inner.clone() };
    let detail = Some(format!("following instance {by}"));
    let event = match state.reload_servers(&path) {
        Ok(_) => {
            let count = inner.cluster.len();
            eprintln!("ipvtl-dashboard: {} reloaded ({count} servers), following instance {by}", path.display());
            crate::audit::AuditEvent::Reload { outcome: "ok", count: Some(count), detail }
        }
        Err(e) => {
            eprintln!("ipvtl-dashboard: {} not reloaded after instance {by} did: {e}", path.display());
            crate::audit::AuditEvent::Reload {
                outcome: "refused",
                count: None,
                detail: Some(format!("{e} (following instance {by})")),
            }
        }
    };
    inner.audit_record(&[event.by(None)]).await;
}

/// The leader's chores for instances that died: the actions and batches
/// they had under way are closed as interrupted (once: the leader alone
/// does it, and a closed action leaves the ledger).
async fn janitor(inner: &Arc<Inner>, live: &[InstanceRow]) {
    let store = &inner.config.store;
    let state = crate::state::AppState { inner: inner.clone() };
    match store.open_actions().await {
        Ok(open) => {
            let dead: Vec<(String, String)> = open.into_iter().filter(|(_, e)| left_by(e, Some(live))).collect();
            if !dead.is_empty() {
                match state.close_interrupted(dead).await {
                    Ok(closed) => {
                        eprintln!("ipvtl-dashboard: {} actions of instances gone audited as interrupted", closed.len())
                    }
                    Err(e) => eprintln!("ipvtl-dashboard: cannot close the actions of instances gone: {e}"),
                }
            }
        }
        Err(e) => eprintln!("ipvtl-dashboard: {e}"),
    }
    let me = crate::instances::name().unwrap_or_default();
    let live_ids: Vec<String> = live.iter().map(|i| i.id.clone()).collect();
    match store.adopt_outbox(me, &live_ids).await {
        Ok(0) => {}
        Ok(n) => eprintln!("ipvtl-dashboard: {n} notifications of instances gone taken over for delivery"),
        Err(e) => eprintln!("ipvtl-dashboard: {e}"),
    }
    if let Ok(batches) = store.batches(crate::batch::KEPT).await {
        let gone = batches.iter().filter(|entry| left_by(entry, Some(live)));
        for (id, state, created_at, json) in gone.filter_map(|entry| crate::batch::interrupted(entry)) {
            if let Err(e) = store.put_batch(id, state, created_at, &json).await {
                eprintln!("ipvtl-dashboard: {e}");
            }
        }
    }
}

/// After each sweep, what this instance observed of the servers it owns,
/// in one write. Sweeps are counted by the event pump (which loses no
/// event); this looks at its count often.
async fn write_states(state: Weak<Inner>, instances: Arc<Instances>) {
    let mut written_after = 0;
    let mut said_failing = false;
    loop {
        smol::Timer::after(Duration::from_millis(50)).await;
        let Some(inner) = state.upgrade() else { return };
        let sweeps = inner.metrics.sweeps_finished();
        if sweeps == written_after {
            continue;
        }
        written_after = sweeps;
        let rows = own_states(&inner.cluster, &instances);
        if rows.is_empty() {
            continue;
        }
        match inner.config.store.put_server_states(&instances.config.id, &rows).await {
            Ok(r) => {
                said_failing = false;
                let mut v = instances.view();
                v.written += r.written as u64;
                v.refused += r.refused.len() as u64;
            }
            Err(e) => {
                if !std::mem::replace(&mut said_failing, true) {
                    eprintln!("ipvtl-dashboard: cannot share the servers' state (kept polling): {e}");
                }
            }
        }
    }
}

/// The observations of the servers this instance owns now, with the
/// epoch of their shard's lease.
fn own_states(cluster: &Cluster, instances: &Instances) -> Vec<StateWrite> {
    let owned = instances.view().owned.clone();
    cluster
        .observed()
        .into_iter()
        .filter_map(|(id, o)| {
            let shard = instances.shard_of(&id);
            let epoch = owned.get(&shard).map(|(epoch, _)| *epoch)?;
            let entry = serde_json::to_string(&o).ok()?;
            Some(StateWrite { server_id: id.to_string(), shard, epoch, entry })
        })
        .collect()
}

/// Follows the others' writes: on each notification, and every
/// [`RESYNC`] in any case.
async fn read_states(state: Weak<Inner>, instances: Arc<Instances>) {
    let mut listener = None;
    let mut version = 0u64;
    let mut said_failing = false;
    loop {
        let Some(inner) = state.upgrade() else { return };
        let store = inner.config.store.clone();
        drop(inner);
        if listener.is_none() {
            match store.state_listener().await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    if !std::mem::replace(&mut said_failing, true) {
                        eprintln!("ipvtl-dashboard: cannot listen for the other instances' states (reading every {RESYNC:?}): {e}");
                    }
                }
            }
        }
        match store.server_states_since(version).await {
            Ok(rows) => {
                said_failing = false;
                let Some(inner) = state.upgrade() else { return };
                version = rows.iter().map(|r| r.version).max().unwrap_or(version).max(version);
                let me = instances.config.id.as_str();
                let adopted = inner.cluster.adopt(rows.into_iter().filter(|r| r.owner != me).filter_map(|r| {
                    let mut o: Observed = serde_json::from_str(&r.entry).ok()?;
                    o.age = r.age;
                    Some((ServerId::from(r.server_id.as_str()), o))
                }));
                let mut v = instances.view();
                v.adopted += adopted as u64;
                v.version = version;
            }
            Err(e) => {
                if !std::mem::replace(&mut said_failing, true) {
                    eprintln!("ipvtl-dashboard: cannot read the other instances' states: {e}");
                }
            }
        }
        // Wait for a notification, or the resync period.
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        let woke = smol::future::or(async { Some(notified.await) }, async {
            smol::Timer::after(RESYNC).await;
            None
        })
        .await;
        if woke == Some(false) {
            // The connection broke: listen again, read from where we were.
            listener = None;
        }
    }
}

/// A channel held by another instance: who, for the 409.
#[derive(Debug)]
pub(crate) struct HeldElsewhere {
    pub server_id: String,
    pub channel: u32,
    pub holder: String,
}

impl std::fmt::Display for HeldElsewhere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "channel {} of {} is held by instance {} (an action under way there)",
            self.channel, self.server_id, self.holder
        )
    }
}

/// Why a channel could not be locked across instances.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Another instance holds it.
    Held(HeldElsewhere),
    /// The store did not answer: nothing may be sent.
    Store(String),
}

impl Instances {
    /// How long a channel lock lasts unless released: the longest an
    /// action may take (stop, then start, each bounded), with room. A
    /// holder that dies leaves it until then unless it is seen dead first
    /// (the store frees locks of instances whose heartbeat stopped).
    fn lock_ttl(cluster: &Cluster) -> Duration {
        let s = cluster.settings();
        s.stop_timeout + s.start_timeout + Duration::from_secs(60)
    }

    /// Takes the cross-instance lock of each channel, all or none: the
    /// first one held elsewhere is the error (those taken are released).
    pub async fn lock_channels(
        &self,
        store: &Store,
        cluster: &Cluster,
        channels: &[(String, u32)],
    ) -> Result<(), LockError> {
        let ttl = Self::lock_ttl(cluster);
        let mut taken = Vec::new();
        for (server, channel) in channels {
            let token = format!("{}:{}", self.config.id, uuid_ish());
            let refused = store.lock_channel(server, *channel, &self.config.id, &token, ttl, self.config.ttl).await;
            let failure = match refused {
                Ok(None) => {
                    self.locks().insert((server.clone(), *channel), token.clone());
                    taken.push((server.clone(), *channel));
                    continue;
                }
                Ok(Some(held)) => {
                    LockError::Held(HeldElsewhere { server_id: server.clone(), channel: *channel, holder: held.holder })
                }
                Err(e) => LockError::Store(e.to_string()),
            };
            for (server, channel) in taken {
                self.unlock(store, &server, channel).await;
            }
            return Err(failure);
        }
        Ok(())
    }

    /// Releases this instance's lock of a channel, if it holds one.
    pub async fn unlock(&self, store: &Store, server: &str, channel: u32) {
        let Some(token) = self.locks().remove(&(server.to_string(), channel)) else { return };
        if let Err(e) = store.unlock_channel(server, channel, &token).await {
            eprintln!("ipvtl-dashboard: cannot release the lock of channel {channel} of {server} (it lapses): {e}");
        }
    }

    fn locks(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, u32), String>> {
        self.locks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A token no other lock has: the time and a process-wide counter.
fn uuid_ish() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{}-{n}", std::process::id(), crate::timefmt::unix_ms(std::time::SystemTime::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> InstanceRow {
        InstanceRow { id: id.into(), advertise: String::new(), age: Duration::ZERO, started_at_unix: 0.0 }
    }

    #[test]
    fn who_closes_what_an_instance_left() {
        let of = |who: Option<&str>| match who {
            Some(w) => json!({"event": "action_requested", "instance": w}).to_string(),
            None => json!({"event": "action_requested"}).to_string(),
        };
        // At start: one's own, and what a dashboard alone left.
        assert!(left_by_as(&of(Some("a")), Some("a"), None));
        assert!(left_by_as(&of(None), Some("a"), None));
        assert!(!left_by_as(&of(Some("b")), Some("a"), None), "another instance's, dead or alive");
        assert!(left_by_as(&of(Some("b")), None, None), "alone again: everything is one's own");
        // The leader's chores: only instances gone.
        let live = [row("a"), row("c")];
        assert!(left_by_as(&of(Some("b")), Some("a"), Some(&live)), "b is gone");
        assert!(!left_by_as(&of(Some("c")), Some("a"), Some(&live)), "c is alive");
        assert!(!left_by_as(&of(Some("a")), Some("a"), Some(&live)), "never one's own");
        assert!(!left_by_as(&of(None), Some("a"), Some(&live)));
        assert!(!left_by_as("not json", Some("a"), Some(&live)));
    }

    #[test]
    fn alerts_are_delivered_by_the_owner_the_leader_or_where_they_happen() {
        let cluster = ipvtl_client::Cluster::new(Vec::new(), ipvtl_client::Settings::default()).unwrap();
        let config =
            InstanceConfig { id: "a".into(), advertise: String::new(), shards: 16, ttl: Duration::from_secs(10) };
        let instances = Instances::new(config, *cluster.clock());
        let mine =
            (0..100).map(|i| format!("s{i}")).find(|s| instances.shard_of(&ServerId::from(s.as_str())) != 0).unwrap();
        let theirs = (0..100)
            .map(|i| format!("s{i}"))
            .find(|s| {
                let shard = instances.shard_of(&ServerId::from(s.as_str()));
                shard != 0 && shard != instances.shard_of(&ServerId::from(mine.as_str()))
            })
            .unwrap();
        let until = cluster.now() + Duration::from_secs(60);
        instances.view().owned.insert(instances.shard_of(&ServerId::from(mine.as_str())), (1, until));
        let labels = |name: &str, server: Option<&str>| {
            let mut l = BTreeMap::from([("alertname".to_string(), name.to_string())]);
            if let Some(s) = server {
                l.insert("server".into(), s.into());
            }
            l
        };
        assert!(instances.delivers(&labels("IpvtlServerDown", Some(&mine))));
        assert!(!instances.delivers(&labels("IpvtlChannelStalled", Some(&theirs))), "its owner's");
        assert!(instances.delivers(&labels("IpvtlActionFailed", Some(&theirs))), "happened here");
        assert!(instances.delivers(&labels("IpvtlStoreFailing", None)), "this instance's store");
        assert!(!instances.delivers(&labels("IpvtlHealingPaused", None)), "the leader's: shard 0");
        instances.view().owned.insert(0, (1, until));
        assert!(instances.delivers(&labels("IpvtlHealingPaused", None)));
        // A lease past its instant is not owned (fenced).
        instances.view().owned.insert(0, (1, cluster.now()));
        assert!(!instances.leads());
    }
}
