//! [`AppState`]: the cluster and everything the dashboard keeps beside it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use ipvtl_client::core::ActionProgress;
use ipvtl_client::core::ServerId;
use ipvtl_client::wire::{ServerView, Wall};
use ipvtl_client::{Cluster, FleetSnapshot, ManagedServer};
use serde_json::Value;

use crate::audit::{AuditEntry, AuditEvent, AuditLog, DASHBOARD};
use crate::batch::Batches;
use crate::cache::{CachedBody, ServersCache};
use crate::events::EventHub;
use crate::history::History;
use crate::legacy::ChannelContext;
use crate::list::Rendered;
use crate::metrics::Metrics;
use crate::store::{AuditRow, HistoryRetention, HistorySample, Store, StoreError};

/// How the dashboard runs, besides the cluster.
#[derive(Debug)]
pub struct StateConfig {
    /// The `servers.json` that `POST /api/servers/reload` re-reads (`None`:
    /// reload is refused, as in the demo).
    pub servers_path: Option<PathBuf>,
    /// When set, every mutating request needs it in `X-API-Key`.
    pub api_key: Option<String>,
    /// What the dashboard keeps: the audit log, batches, maintenance, keys,
    /// downsampled history.
    pub store: Store,
    /// The audit log's JSON-lines mirror.
    pub audit: AuditLog,
    /// How long the store keeps downsampled history.
    pub history: HistoryRetention,
    /// Origins allowed to call the API from another site (exact match).
    pub cors_origins: Vec<String>,
    /// The origin browsers use to reach the dashboard when a reverse proxy
    /// rewrites `Host` (`--public-url`): same-origin, not cross-site.
    pub public_origin: Option<String>,
    /// Peers whose `X-Forwarded-Host` / `Forwarded: host=` names the host
    /// browsers addressed (`--trusted-proxy`).
    pub trusted_proxies: Vec<crate::options::TrustedProxy>,
    /// The alert rules, silences and receivers (`--alerts`; default: the
    /// built-in rules, no receivers).
    pub alerts: crate::alerts::AlertsFile,
    /// Sharing the fleet with other instances through the (PostgreSQL)
    /// store (`--instance-id`); `None` runs alone.
    pub sharing: Option<crate::instances::InstanceConfig>,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            servers_path: None,
            api_key: None,
            store: smol::block_on(Store::memory()).expect("an in-memory store opens"),
            audit: AuditLog::open(None).expect("an in-memory audit log cannot fail"),
            history: HistoryRetention::default(),
            cors_origins: Vec::new(),
            public_origin: None,
            trusted_proxies: Vec::new(),
            alerts: crate::alerts::AlertsFile::default(),
            sharing: None,
        }
    }
}

/// Shared state of the dashboard. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("cluster", &self.inner.cluster).finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub cluster: Cluster,
    pub config: StateConfig,
    pub cache: ServersCache,
    pub hub: EventHub,
    pub history: History,
    pub metrics: Metrics,
    pub batches: Batches,
    /// The alert evaluator and its delivery.
    pub alerts: crate::alerts::AlertHub,
    /// The other instances sharing the fleet, as this one knows them
    /// (`None`: it runs alone).
    pub instances: Option<Arc<crate::instances::Instances>>,
    /// The page's overview rows and fleet series (`crate::overview`).
    pub overview: crate::overview::Overview,
    /// Passes of the event pump over a changed fleet (see
    /// [`crate::pump`]): what the overview follows.
    pub pump_passes: std::sync::atomic::AtomicU64,
    /// Audit entries recorded after the fact (outcomes) that the store
    /// refused, oldest first: written before the next entry, or at the
    /// next sweep, once it takes writes again. Held across every audit
    /// write, so entries reach the store in order.
    unwritten: smol::lock::Mutex<Vec<AuditRow>>,
    /// Held while a desired-state, healing or reconciler setting is
    /// audited, stored and applied: one change at a time.
    pub settings_lock: smol::lock::Mutex<()>,
    /// Held while a batch number reserved in the store is handed to the
    /// cluster and the batch submitted (sharing the fleet).
    pub batch_numbering: smol::lock::Mutex<()>,
    /// This run of the dashboard (its start, Unix ms): keys of the actions
    /// it opens in the store's ledger start with it.
    run: u64,
    opened: std::sync::atomic::AtomicU64,
    nudge: smol::channel::Sender<()>,
}

/// Audit entries kept in memory while the store refuses writes; beyond
/// this, the oldest are dropped (the JSONL mirror still has them).
const UNWRITTEN_MAX: usize = 100_000;

/// Events the state's pump may fall behind by before it loses any.
const PUMP_BUFFER: usize = 65_536;

impl AppState {
    /// Wraps a cluster. The `/api/servers` body is ready at once (servers
    /// not polled yet show `unknown`); a background thread follows the
    /// cluster's events from here on.
    pub fn new(cluster: Cluster, config: StateConfig) -> Self {
        let (nudge, nudged) = smol::channel::bounded(1);
        // Subscribe before the first render so no change falls in between.
        // The pump must not lose events (batch progress, audit) when the
        // first sweep of a large fleet reports every server at once.
        let events = cluster.subscribe_with_buffer(PUMP_BUFFER);
        // The write-ahead rule holds for heals too: the pump records each
        // heal the reconciler asks for, then confirms it.
        cluster.set_confirm_heals(true);
        let cache = ServersCache::new(render_servers(&cluster, &ServersSnapshot::take(&cluster)));
        let alerts = crate::alerts::AlertHub::new(config.alerts.clone(), *cluster.clock(), cluster.now());
        // Sharing: nothing is swept here until a lease says so.
        let instances = config.sharing.clone().map(|c| Arc::new(crate::instances::Instances::new(c, *cluster.clock())));
        if let Some(instances) = &instances {
            crate::instances::set_name(&instances.config.id);
            cluster.set_sweeping(|_| ipvtl_client::core::poller::Sweeping::Never);
        }
        let inner = Arc::new(Inner {
            cluster,
            config,
            cache,
            hub: EventHub::default(),
            history: History::default(),
            metrics: Metrics::default(),
            batches: Batches::default(),
            alerts,
            instances: instances.clone(),
            overview: Default::default(),
            pump_passes: Default::default(),
            unwritten: smol::lock::Mutex::default(),
            settings_lock: smol::lock::Mutex::default(),
            batch_numbering: smol::lock::Mutex::default(),
            run: crate::timefmt::unix_ms(std::time::SystemTime::now()),
            opened: std::sync::atomic::AtomicU64::new(0),
            nudge,
        });
        crate::pump::spawn(Arc::downgrade(&inner), events, nudged);
        crate::alerts::spawn(Arc::downgrade(&inner));
        crate::overview::spawn(Arc::downgrade(&inner));
        if let Some(instances) = instances {
            let _ = inner.alerts.instances.set(instances.clone());
            crate::instances::spawn(Arc::downgrade(&inner), instances);
        }
        AppState { inner }
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.inner.cluster
    }

    /// The audit log's JSON-lines mirror.
    pub fn audit(&self) -> &AuditLog {
        &self.inner.config.audit
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.config.store
    }

    /// Brings back what the store kept (call once, before serving):
    /// maintenance flags of servers in the list, desired state, healing and
    /// the reconciler's settings made through the API, recent batches
    /// (those that never finished show `interrupted`), and batch numbering
    /// after the last stored batch, so a new batch never takes an old one's
    /// id.
    pub async fn restore(&self) -> Result<Restored, StoreError> {
        let store = self.store();
        let settings = crate::reconcile::restore(self.cluster(), &store.settings().await?);
        let mut restored = Restored { settings, ..Restored::default() };
        // Sharing the fleet: only this instance's (and those written
        // alone before); the leader closes what dead instances left.
        let open = store.open_actions().await?;
        let open = open.into_iter().filter(|(_, entry)| crate::instances::left_by(entry, None)).collect();
        restored.interrupted_actions = self.close_interrupted(open).await?;
        for id in store.maintenance().await? {
            if self.cluster().set_maintenance(&id, true).is_ok() {
                restored.maintenance.push(id);
            }
        }
        self.cluster().number_batches_after(store.last_batch_id().await?);
        for entry in store.batches(crate::batch::KEPT).await? {
            let mine = crate::instances::left_by(&entry, None);
            if let Some((id, state, created_at, json)) = self.inner.batches.restore(&entry, mine) {
                store.put_batch(id, state, created_at, &json).await?;
                restored.interrupted_batches.push(id);
            }
        }
        let (silences, alerts) = self.inner.alerts.restore(store, self.cluster().now()).await?;
        (restored.silences, restored.alerts) = (silences, alerts);
        self.invalidate();
        Ok(restored)
    }
}

impl AppState {
    /// Audits each action a crash cut short (opened in the store's ledger,
    /// never closed) as `action_interrupted`, closing it, and says so on
    /// the event stream. Returns the interrupted entries.
    pub(crate) async fn close_interrupted(&self, open: Vec<(String, String)>) -> Result<Vec<Value>, StoreError> {
        let mut entries = Vec::new();
        let mut rows = Vec::new();
        for (key, opened) in open {
            let opened: Value = serde_json::from_str(&opened).unwrap_or(Value::String(opened));
            let event = AuditEvent::ActionInterrupted {
                server_id: opened["server_id"].as_str().map(String::from),
                channel_id: opened["channel_id"].as_u64(),
                action: opened["action"].as_str().map(String::from),
                opened,
            };
            let entry = event.by_actor(Some(DASHBOARD)).closing(&key);
            if let Ok(row) = entry.row() {
                rows.push(row);
                entries.push(serde_json::to_value(&entry).unwrap_or_default());
            }
        }
        if rows.is_empty() {
            return Ok(entries);
        }
        self.store().append_audit(&rows).await?;
        if let Err(e) = self.audit().append(&rows, true) {
            eprintln!("ipvtl-dashboard: cannot write the audit mirror: {e}");
        }
        for e in &entries {
            let mut data = e.clone();
            data["kind"] = "action_interrupted".into();
            self.inner.hub.publish("action_interrupted", data.to_string());
        }
        Ok(entries)
    }
}

/// What [`AppState::restore`] brought back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Restored {
    /// Servers put back in maintenance.
    pub maintenance: Vec<String>,
    /// Batches that were running when the dashboard stopped, now marked
    /// `interrupted`.
    pub interrupted_batches: Vec<u64>,
    /// Actions under way when the dashboard stopped, now audited as
    /// `action_interrupted` (those entries).
    pub interrupted_actions: Vec<Value>,
    /// Desired state, healing and reconciler settings made through the API.
    pub settings: crate::reconcile::RestoredSettings,
    /// Silences made through the API, still in force.
    pub silences: usize,
    /// Active alerts (pending, firing or silenced) put back.
    pub alerts: usize,
}

impl AppState {
    /// How many times the `/api/servers` body has been built.
    pub fn cache_rebuilds(&self) -> u64 {
        self.inner.cache.rebuilds()
    }

    /// Reloads the servers file at `path` (sharing the fleet, the new
    /// servers wait for their shard's owner); the list shows the result
    /// from now on.
    pub(crate) fn reload_servers(
        &self,
        path: &std::path::Path,
    ) -> Result<ipvtl_client::core::ReloadSummary, ipvtl_client::ClientError> {
        let summary = self.cluster().reload_file(path)?;
        if let Some(instances) = &self.inner.instances {
            instances.apply_sweeping(self.cluster());
        }
        self.invalidate();
        Ok(summary)
    }

    /// Says the fleet has just changed through this dashboard (reload,
    /// maintenance, refresh, an action): call it after the change and before
    /// answering. No `GET /api/servers` that starts after this returns is
    /// served a body built before it (the request rebuilds it if the event
    /// pump, nudged here, has not yet).
    pub fn invalidate(&self) {
        self.inner.cache.mark_changed();
        let _ = self.inner.nudge.try_send(());
    }

    /// The `/api/servers` body, rebuilt first if a change made since it was
    /// built is not in it. Blocks while rebuilding: call it off the executor.
    pub(crate) fn servers_body(&self) -> Arc<CachedBody> {
        let cluster = &self.inner.cluster;
        self.inner.cache.fresh(|| ServersSnapshot::take(cluster), |s| render_servers(cluster, s))
    }
}

impl Inner {
    /// A key for a request to act, unique to it (see [`AuditRow::opens`]).
    pub(crate) fn request_key(&self) -> String {
        let n = self.opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}:request-{n}", self.run)
    }

    /// The key of the reconciler's heal request `ticket` of this run.
    pub(crate) fn heal_key(&self, ticket: u64) -> String {
        format!("{}:heal-{ticket}", self.run)
    }

    /// The key of action `id` of this run (a batch's or the reconciler's).
    pub(crate) fn action_key(&self, id: u64) -> String {
        format!("{}:action-{id}", self.run)
    }

    /// Records a write-ahead audit entry: committed to the store and synced
    /// to the mirror when this returns; an error means nothing may be done.
    pub(crate) async fn audit_now(&self, entry: &AuditEntry) -> Result<(), String> {
        let row = entry.row().map_err(|e| e.to_string())?;
        self.store_audit(std::slice::from_ref(&row), false).await.map_err(|e| e.to_string())?;
        let audit = &self.config.audit;
        audit.append(std::slice::from_ref(&row), true).map_err(|e| format!("the audit mirror: {e}"))
    }

    /// Appends `rows` to the store's audit after the entries an earlier
    /// failure left unwritten, in one transaction. On failure those stay
    /// unwritten, and so do `rows` when `keep` (an outcome: what was done
    /// must reach the store; an intent refused is not done, so not kept).
    async fn store_audit(&self, rows: &[AuditRow], keep: bool) -> Result<(), StoreError> {
        let mut unwritten = self.unwritten.lock().await;
        if unwritten.is_empty() && rows.is_empty() {
            return Ok(());
        }
        let earlier = unwritten.len();
        unwritten.extend_from_slice(rows);
        let result = self.config.store.append_audit(&unwritten).await;
        if result.is_ok() {
            unwritten.clear();
        } else {
            if !keep {
                unwritten.truncate(earlier);
            }
            let excess = unwritten.len().saturating_sub(UNWRITTEN_MAX);
            if excess > 0 {
                unwritten.drain(..excess);
                eprintln!("ipvtl-dashboard: {excess} audit entries dropped from the store (the mirror has them)");
            }
        }
        result
    }

    /// Writes the audit entries an earlier failure left unwritten, if any.
    async fn flush_audit(&self) {
        if let Err(e) = self.store_audit(&[], false).await {
            eprintln!("ipvtl-dashboard: cannot write the audit log (kept to retry): {e}");
        }
    }

    /// Writes batch `id`'s current view to the store; a finished batch
    /// shows `finished` only then (after a failed write too, reported:
    /// the end is not hidden while the store is away).
    pub(crate) async fn persist_batch(&self, id: u64) {
        let Some((id, state, created_at, json)) = self.batches.stored(id) else { return };
        if let Err(e) = self.config.store.put_batch(id, state, created_at, &json).await {
            eprintln!("ipvtl-dashboard: {e}");
        }
        self.batches.settle(id);
    }

    /// Adds the polls to the store's downsampled history: held per bucket
    /// (neither step kept: nothing is), and the buckets that have closed
    /// written in one transaction, reporting a failure on stderr (they
    /// are held for the next try).
    pub(crate) async fn persist_history(&self, polled: &[HistorySample]) {
        if polled.is_empty() {
            return;
        }
        self.flush_audit().await;
        self.history.hold(polled, &self.config.history);
        let now = crate::timefmt::unix_now_s();
        if let Err(e) = self.history.write_closed(&self.config.store, &self.config.history, now).await {
            eprintln!("ipvtl-dashboard: {e}");
        }
    }

    /// Records entries after the fact (one transaction), reporting a
    /// failure on stderr.
    pub(crate) async fn audit_record(&self, entries: &[AuditEntry]) {
        if entries.is_empty() {
            return;
        }
        let rows: Vec<_> = entries.iter().filter_map(|e| e.row().ok()).collect();
        if let Err(e) = self.store_audit(&rows, true).await {
            eprintln!("ipvtl-dashboard: cannot write the audit log (kept to retry): {e}");
        }
        if let Err(e) = self.config.audit.append(&rows, false) {
            eprintln!("ipvtl-dashboard: cannot write the audit mirror: {e}");
        }
    }
    /// Rebuilds the `/api/servers` body now (kept only if nothing newer was
    /// installed meanwhile) and returns the fleet it was built from.
    pub(crate) fn rebuild_servers(&self) -> FleetSnapshot {
        let cluster = &self.cluster;
        self.cache.rebuild(|| ServersSnapshot::take(cluster), |s| render_servers(cluster, s)).fleet
    }
}

/// What the `/api/servers` body is built from, taken at one moment.
pub(crate) struct ServersSnapshot {
    fleet: FleetSnapshot,
    actions: Vec<ActionProgress>,
    managed: HashMap<ServerId, ManagedServer>,
}

impl ServersSnapshot {
    fn take(cluster: &Cluster) -> Self {
        ServersSnapshot { fleet: cluster.snapshot(), actions: cluster.actions(), managed: cluster.managed() }
    }
}

/// Serializes the fleet in the original tool's shape, indexed per server
/// for filters and pages ([`crate::list`]).
fn render_servers(cluster: &Cluster, s: &ServersSnapshot) -> Rendered {
    let wall = Wall(cluster.clock());
    let fleet = &s.fleet;
    let context = ChannelContext::new(&s.actions, s.managed.clone(), &fleet.drifts, fleet.taken_at, wall);
    let views: Vec<ServerView> = fleet.servers.iter().map(|s| ServerView::new(s, fleet.taken_at, wall)).collect();
    crate::list::render(&views, &context)
}
