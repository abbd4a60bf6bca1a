//! Alerts that reach people: the core's evaluator ([`Alerts`]) fed by the
//! event pump (every event, a snapshot after each rebuild once the first
//! sweep is done) and by the store's write health, driven in time by a
//! thread of its own, which also delivers.
//!
//! Every notification, for every receiver, is first a row of the store's
//! outbox, written with the active alerts in one transaction; a sender
//! delivers due rows in order per receiver, retrying with exponential
//! backoff until an acknowledgment (2xx), so a notification survives a
//! restart of the dashboard and an outage of the receiver, and one
//! acknowledged is not sent again. Alertmanager receivers also get every
//! firing alert again every `resend` (its client contract). Active alerts
//! and silences made through the API are kept in the store and restored
//! at start, so an alert that fired does not fire again and gets its
//! resolve.

pub mod config;
pub(crate) mod deliver;
mod sender;

pub(crate) use sender::spawn;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ipvtl_client::core::alert::{
    Alert, AlertState, Alerts, Fingerprint, HistoryEntry, Matcher, Notification, NotificationKind, RuleKind, Silence,
    SilenceError, SilenceId,
};
use ipvtl_client::core::{Event, Instant};
use ipvtl_client::wire::{AlertHistoryView, AlertView, SilenceView, Wall};
use ipvtl_client::{FleetSnapshot, Health, SmolClock};
use serde_json::{json, Value};

pub use config::AlertsFile;
use config::ReceiverKind;
use deliver::{unix_now, NotificationView, Sent};

use crate::store::{NewOutboxRow, Store, StoredSilence};

/// Outbox rows read per receiver and round.
const ROUND: usize = 64;
/// How often the driver looks at the store's health and the clock when
/// nothing else wakes it.
const TICK: Duration = Duration::from_secs(1);
/// Sweeps after which snapshots are judged even if a server's health is
/// still unknown.
const SETTLE_SWEEPS: u32 = 10;

/// The evaluator, what it produced that is not yet in the outbox, and the
/// silences' bookkeeping.
struct Engine {
    alerts: Alerts,
    /// Produced, not yet written to the outbox (kept until a write works).
    unwritten: Vec<NotificationView>,
    /// Silences of the alerts file (replaced on reload; never stored).
    file_silences: Vec<SilenceId>,
    /// Who made each API silence, and when (Unix s).
    made: BTreeMap<SilenceId, (String, f64)>,
    /// Alerts restored at start: when they fired, Unix seconds (this run's
    /// clock cannot say times before it started).
    restored_starts: HashMap<Fingerprint, f64>,
    /// (fingerprint, state, fired) of the alerts last written.
    written: Vec<(Fingerprint, AlertState, bool)>,
    /// Sweeps finished so far (up to [`SETTLE_SWEEPS`]).
    sweeps: u32,
    /// Snapshots are judged once every server's health is known (or after
    /// [`SETTLE_SWEEPS`]): before, a server still `unknown` would end the
    /// restored alert of a server that is still down, and fire it again.
    settled: bool,
}

/// Delivery counters and the receivers' health.
#[derive(Default)]
struct Stats {
    /// (receiver, outcome) → count; outcome `delivered`, `failed`, `refused`.
    counts: BTreeMap<(String, &'static str), u64>,
    /// Receiver → why its last attempt failed, while it fails.
    failing: BTreeMap<String, String>,
    /// Receiver → rows pending.
    pending: BTreeMap<String, i64>,
}

/// The dashboard's alerting.
pub(crate) struct AlertHub {
    engine: Mutex<Engine>,
    file: RwLock<Arc<AlertsFile>>,
    clock: SmolClock,
    stats: Mutex<Stats>,
    wake: smol::channel::Sender<()>,
    woken: smol::channel::Receiver<()>,
    send: smol::channel::Sender<()>,
    sending: smol::channel::Receiver<()>,
    client: Option<isahc::HttpClient>,
    /// The last write to the store failed.
    write_failing: std::sync::atomic::AtomicBool,
    /// Sharing the fleet: which notifications this instance delivers
    /// (see [`crate::instances::Instances::delivers`]).
    pub(crate) instances: std::sync::OnceLock<Arc<crate::instances::Instances>>,
}

impl AlertHub {
    /// The evaluator with the file's rules (validated when the file was
    /// read) and silences.
    pub fn new(file: AlertsFile, clock: SmolClock, now: Instant) -> Self {
        let alerts = Alerts::new(file.config.clone()).unwrap_or_default();
        let (wake, woken) = smol::channel::bounded(1);
        let (send, sending) = smol::channel::bounded(1);
        let client = match deliver::client() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("ipvtl-dashboard: {e}");
                None
            }
        };
        let hub = AlertHub {
            engine: Mutex::new(Engine {
                alerts,
                unwritten: Vec::new(),
                file_silences: Vec::new(),
                made: BTreeMap::new(),
                restored_starts: HashMap::new(),
                written: Vec::new(),
                sweeps: 0,
                settled: false,
            }),
            file: RwLock::new(Arc::new(file)),
            clock,
            stats: Mutex::default(),
            wake,
            woken,
            send,
            sending,
            client,
            write_failing: std::sync::atomic::AtomicBool::new(false),
            instances: std::sync::OnceLock::new(),
        };
        hub.apply_file_silences(now);
        hub
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The alerts file in force.
    pub fn file(&self) -> Arc<AlertsFile> {
        self.file.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Unix seconds of a core instant.
    fn unix(&self, at: Instant) -> f64 {
        crate::timefmt::unix_s(self.clock.to_system_time(at))
    }

    /// The core instant of Unix seconds `t` (this run's start at the
    /// earliest).
    fn instant(&self, t: f64) -> Instant {
        let epoch = self.unix(Instant::ZERO);
        Instant::from_millis(((t - epoch) * 1000.0).max(0.0).round() as u64)
    }

    /// Takes what the evaluator produced; wakes the driver when there is
    /// something.
    fn drain(&self, e: &mut Engine) {
        let mut any = false;
        while let Some(n) = e.alerts.poll_event() {
            // Sharing the fleet: another instance delivers this one.
            if self.instances.get().is_some_and(|i| !i.delivers(&n.labels)) {
                continue;
            }
            let view = self.view_of(e, &n);
            e.unwritten.push(view);
            any = true;
        }
        if any {
            let _ = self.wake.try_send(());
        }
    }

    fn view_of(&self, e: &mut Engine, n: &Notification) -> NotificationView {
        let restored = match n.kind {
            NotificationKind::Resolved => e.restored_starts.remove(&n.fingerprint),
            _ => None,
        };
        NotificationView::new(n, restored, Wall(&self.clock))
    }

    /// A fleet event (from the pump).
    pub fn handle_event(&self, event: &Event, now: Instant) {
        let mut e = self.engine();
        if matches!(event, Event::SweepFinished { .. }) {
            e.sweeps = e.sweeps.saturating_add(1).min(SETTLE_SWEEPS);
        }
        e.alerts.handle_event(event, now);
        self.drain(&mut e);
    }

    /// A snapshot after a rebuild (from the pump); ignored until the
    /// fleet has settled (see [`Engine::settled`]).
    pub fn handle_snapshot(&self, fleet: &FleetSnapshot, now: Instant) {
        let mut e = self.engine();
        if !e.settled {
            let known = fleet.servers.iter().all(|s| s.state.health != Health::Unknown);
            if e.sweeps == 0 || !(known || e.sweeps >= SETTLE_SWEEPS) {
                return;
            }
            e.settled = true;
        }
        e.alerts.handle_snapshot(fleet, now);
        self.drain(&mut e);
    }

    /// Brings the evaluator to `now` with the store's health.
    fn tick(&self, store_failing: bool, now: Instant) -> Option<Instant> {
        let mut e = self.engine();
        e.alerts.set_store_failing(store_failing, now);
        e.alerts.handle_timeout(now);
        self.drain(&mut e);
        e.alerts.poll_timeout()
    }

    /// Replaces the file's silences with those of the file in force.
    fn apply_file_silences(&self, now: Instant) {
        let file = self.file();
        let mut e = self.engine();
        for id in std::mem::take(&mut e.file_silences) {
            e.alerts.expire_silence(id, now);
        }
        let far = Instant::from_millis(u64::MAX / 4);
        for s in &file.silences {
            let ends_at = match (s.ends_at, s.duration) {
                (Some(t), _) => self.instant(t),
                (None, Some(d)) => now + d,
                (None, None) => far,
            };
            let silence = Silence { matchers: s.matchers.clone(), ends_at, comment: s.comment.clone() };
            match e.alerts.add_silence(silence, now) {
                Ok(id) => e.file_silences.push(id),
                Err(err) => eprintln!("ipvtl-dashboard: a silence of the alerts file is not applied: {err}"),
            }
        }
        self.drain(&mut e);
    }

    /// Puts back what the store kept: silences made through the API (ended
    /// ones removed) and the active alerts. Call once, before serving.
    pub async fn restore(&self, store: &Store, now: Instant) -> Result<(usize, usize), crate::StoreError> {
        let silences = store.silences().await?;
        let entries = store.alert_state(crate::instances::name()).await?;
        let mut ended = Vec::new();
        let (mut restored_silences, mut restored_alerts) = (0, 0);
        {
            let mut e = self.engine();
            // The file's silences go after the kept ones.
            for id in std::mem::take(&mut e.file_silences) {
                e.alerts.expire_silence(id, now);
            }
            for s in silences {
                let v: Value = serde_json::from_str(&s.entry).unwrap_or_default();
                let matchers: Vec<Matcher> = v["matchers"]
                    .as_array()
                    .map(|m| m.iter().filter_map(|m| m.as_str()).filter_map(|m| Matcher::parse(m).ok()).collect())
                    .unwrap_or_default();
                let comment = v["comment"].as_str().unwrap_or_default().to_string();
                let silence = Silence { matchers, ends_at: self.instant(s.ends_at), comment };
                match e.alerts.restore_silence(SilenceId(s.id), silence, now) {
                    Ok(()) => {
                        let by = v["created_by"].as_str().unwrap_or_default().to_string();
                        e.made.insert(SilenceId(s.id), (by, v["created_at"].as_f64().unwrap_or(0.0)));
                        restored_silences += 1;
                    }
                    Err(_) => ended.push(s.id),
                }
            }
            for entry in entries {
                let Some((alert, fired_unix)) = self.alert_from(&entry, now) else { continue };
                let fp = alert.fingerprint;
                if e.alerts.restore_alert(alert, now) {
                    if let Some(t) = fired_unix {
                        e.restored_starts.insert(fp, t);
                    }
                    restored_alerts += 1;
                }
            }
            let alerts = e.alerts.alerts();
            e.written = signature(&alerts);
            self.drain(&mut e);
        }
        self.apply_file_silences(now);
        for id in ended {
            let _ = store.delete_silence(id).await;
        }
        Ok((restored_silences, restored_alerts))
    }

    /// An alert as kept ([`AlertHub::alert_view`]), and when it fired.
    fn alert_from(&self, entry: &str, now: Instant) -> Option<(Alert, Option<f64>)> {
        let v: Value = serde_json::from_str(entry).ok()?;
        let rule = RuleKind::ALL.into_iter().find(|r| Some(r.as_str()) == v["rule"].as_str())?;
        let labels: BTreeMap<String, String> = serde_json::from_value(v["labels"].clone()).ok()?;
        let annotations: BTreeMap<String, String> = serde_json::from_value(v["annotations"].clone()).ok()?;
        let state = match v["state"].as_str()? {
            "pending" => AlertState::Pending,
            "firing" => AlertState::Firing,
            "silenced" => AlertState::Silenced,
            _ => return None,
        };
        let at = |k: &str| v[k].as_f64().map(|t| self.instant(t));
        let fired = v["fired_at"].as_f64();
        let alert = Alert {
            fingerprint: Fingerprint::of(&labels),
            rule,
            labels,
            annotations,
            state,
            since: at("state_since_at").unwrap_or(now),
            active_since: at("active_since_at").unwrap_or(now),
            fired_at: at("fired_at"),
            silenced_by: None,
            until: at("until_at"),
        };
        Some((alert, fired))
    }

    /// An active alert's view (also what the store keeps).
    fn alert_view(&self, a: &Alert, restored: &HashMap<Fingerprint, f64>) -> Value {
        let mut view = AlertView::new(a, Wall(&self.clock));
        if let Some(t) = restored.get(&a.fingerprint) {
            view.fired_at = Some(*t);
        }
        serde_json::to_value(view).unwrap_or_default()
    }

    fn history_view(&self, h: &HistoryEntry) -> Value {
        serde_json::to_value(AlertHistoryView::new(h, Wall(&self.clock))).unwrap_or_default()
    }

    /// Writes what was produced to the outbox, with the active alerts, in
    /// one transaction (nothing to do: nothing written). On failure it is
    /// all kept for the next try.
    async fn write(&self, store: &Store) {
        let file = self.file();
        let (notes, active, signature_now) = {
            let e = self.engine();
            let alerts = e.alerts.alerts();
            let sig = signature(&alerts);
            if e.unwritten.is_empty() && sig == e.written {
                return;
            }
            let active: Vec<(String, String)> = alerts
                .iter()
                .map(|a| (a.fingerprint.to_string(), self.alert_view(a, &e.restored_starts).to_string()))
                .collect();
            (e.unwritten.clone(), active, sig)
        };
        let now = unix_now();
        let rows: Vec<NewOutboxRow> = notes
            .iter()
            .flat_map(|n| {
                let payload = serde_json::to_string(n).unwrap_or_default();
                file.receivers.iter().map(move |r| NewOutboxRow {
                    notification_id: n.id.clone(),
                    receiver: r.name.clone(),
                    fingerprint: n.fingerprint.clone(),
                    kind: n.kind.clone(),
                    payload: payload.clone(),
                    created_at: now,
                    instance: crate::instances::name().map(String::from),
                })
            })
            .collect();
        match store.record_alerts(&rows, Some(&active), crate::instances::name()).await {
            Ok(()) => {
                if self.write_failing.swap(false, std::sync::atomic::Ordering::Relaxed) {
                    eprintln!("ipvtl-dashboard: alerts written again");
                }
                let mut e = self.engine();
                let n = notes.len().min(e.unwritten.len());
                e.unwritten.drain(..n);
                e.written = signature_now;
                if !rows.is_empty() {
                    let _ = self.send.try_send(());
                }
            }
            // Said once per outage, not at every retry.
            Err(err) => {
                if !self.write_failing.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    eprintln!("ipvtl-dashboard: alerts not written yet (kept to retry): {err}");
                }
            }
        }
    }
}

fn signature(alerts: &[Alert]) -> Vec<(Fingerprint, AlertState, bool)> {
    alerts.iter().map(|a| (a.fingerprint, a.state, a.fired_at.is_some())).collect()
}

impl AlertHub {
    fn count(&self, receiver: &str, outcome: &'static str, failure: Option<String>) {
        let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        *s.counts.entry((receiver.to_string(), outcome)).or_default() += 1;
        match failure {
            Some(why) if outcome == "failed" => {
                s.failing.insert(receiver.to_string(), why);
            }
            None => {
                s.failing.remove(receiver);
            }
            Some(_) => {}
        }
    }

    /// `GET /api/alerts`: active alerts, recent history, receivers.
    pub fn overview(&self) -> Value {
        let e = self.engine();
        let active: Vec<Value> = e.alerts.alerts().iter().map(|a| self.alert_view(a, &e.restored_starts)).collect();
        let history: Vec<Value> = e.alerts.history().map(|h| self.history_view(h)).collect();
        let counts = json!({
            "pending": e.alerts.count(AlertState::Pending),
            "firing": e.alerts.count(AlertState::Firing),
            "silenced": e.alerts.count(AlertState::Silenced),
        });
        drop(e);
        json!({"active": active, "history": history, "counts": counts, "receivers": self.receivers_view()})
    }

    fn receivers_view(&self) -> Vec<Value> {
        let file = self.file();
        let s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        file.receivers
            .iter()
            .map(|r| {
                let (kind, format) = match &r.kind {
                    ReceiverKind::Alertmanager => ("alertmanager", None),
                    ReceiverKind::Webhook { format, .. } => (
                        "webhook",
                        Some(match format {
                            config::WebhookFormat::Alertmanager => "alertmanager",
                            config::WebhookFormat::CloudEvents => "cloudevents",
                        }),
                    ),
                };
                json!({
                    "name": r.name,
                    "type": kind,
                    "format": format,
                    "url": r.url,
                    "pending": s.pending.get(&r.name).copied().unwrap_or(0),
                    "failing": s.failing.contains_key(&r.name),
                    "last_error": s.failing.get(&r.name),
                })
            })
            .collect()
    }

    /// The `alerts` object of `/health`.
    pub fn health(&self) -> Value {
        let s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let pending: i64 = s.pending.values().sum();
        let failing: Vec<Value> = s.failing.iter().map(|(r, why)| json!({"receiver": r, "error": why})).collect();
        drop(s);
        let e = self.engine();
        json!({
            "ok": failing.is_empty(),
            "firing": e.alerts.count(AlertState::Firing),
            "pending": pending,
            "failing_receivers": failing,
        })
    }

    /// The alerting part of `/metrics`.
    pub fn metrics(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let e = self.engine();
        let counts = [AlertState::Pending, AlertState::Firing, AlertState::Silenced].map(|s| (s, e.alerts.count(s)));
        drop(e);
        let _ = writeln!(o, "# HELP ipvtl_alerts_active Active alerts by state.\n# TYPE ipvtl_alerts_active gauge");
        for (s, n) in counts {
            let _ = writeln!(o, "ipvtl_alerts_active{{state=\"{s}\"}} {n}");
        }
        let s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            o,
            "# HELP ipvtl_alert_notifications_total Notification deliveries by receiver and outcome \
             (delivered, failed, refused, resent).\n# TYPE ipvtl_alert_notifications_total counter"
        );
        for ((r, outcome), n) in &s.counts {
            let _ = writeln!(o, "ipvtl_alert_notifications_total{{receiver=\"{}\",outcome=\"{outcome}\"}} {n}", esc(r));
        }
        let pending: i64 = s.pending.values().sum();
        let _ = writeln!(
            o,
            "# HELP ipvtl_alert_outbox_pending Notifications in the outbox not yet delivered.\n\
             # TYPE ipvtl_alert_outbox_pending gauge\nipvtl_alert_outbox_pending {pending}"
        );
        o
    }

    /// Adds a silence made through the API; its view.
    pub fn add_silence(&self, silence: Silence, by: String) -> Result<(SilenceId, StoredSilence), SilenceError> {
        let now = self.clock_now();
        let mut e = self.engine();
        let id = e.alerts.add_silence(silence.clone(), now)?;
        let created_at = unix_now();
        e.made.insert(id, (by.clone(), created_at));
        self.drain(&mut e);
        let _ = self.wake.try_send(());
        let entry = self.silence_view(id, &silence, Some((&by, created_at)), "api").to_string();
        Ok((id, StoredSilence { id: id.0, ends_at: self.unix(silence.ends_at), entry }))
    }

    /// Ends silence `id`; false when unknown. File silences are not ended
    /// this way.
    pub fn expire_silence(&self, id: SilenceId) -> Result<bool, &'static str> {
        let now = self.clock_now();
        let mut e = self.engine();
        if e.file_silences.contains(&id) {
            return Err("this silence comes from the alerts file: change the file and reload");
        }
        let known = e.alerts.expire_silence(id, now);
        e.made.remove(&id);
        self.drain(&mut e);
        let _ = self.wake.try_send(());
        Ok(known)
    }

    /// Whether silence `id` is in force.
    pub fn has_silence(&self, id: SilenceId) -> bool {
        self.engine().alerts.silences().any(|(i, _)| i == id)
    }

    /// `GET /api/silences`.
    pub fn silences_view(&self) -> Vec<Value> {
        let e = self.engine();
        e.alerts
            .silences()
            .map(|(id, s)| {
                let made = e.made.get(&id).map(|(by, at)| (by.as_str(), *at));
                let origin = if e.file_silences.contains(&id) { "file" } else { "api" };
                self.silence_view(id, s, made, origin)
            })
            .collect()
    }

    fn silence_view(&self, id: SilenceId, s: &Silence, made: Option<(&str, f64)>, origin: &'static str) -> Value {
        let far = s.ends_at >= Instant::from_millis(u64::MAX / 8);
        let mut view = SilenceView::new(id, s, (!far).then(|| self.unix(s.ends_at)), origin);
        view.created_by = made.map(|m| m.0.to_string());
        view.created_at = made.map(|m| m.1);
        serde_json::to_value(view).unwrap_or_default()
    }

    fn clock_now(&self) -> Instant {
        use ipvtl_client::core::driver::Clock;
        self.clock.now()
    }

    /// The core instant of Unix seconds `t`.
    pub fn at_unix(&self, t: f64) -> Instant {
        self.instant(t)
    }

    /// The core instant now.
    pub fn now(&self) -> Instant {
        self.clock_now()
    }

    /// Replaces the alerts file (validated): the rules, the file's
    /// silences, the receivers.
    pub fn reload(&self, file: AlertsFile) -> Result<(), String> {
        let now = self.clock_now();
        {
            let mut e = self.engine();
            e.alerts.set_config(file.config.clone(), now).map_err(|err| err.to_string())?;
            self.drain(&mut e);
        }
        *self.file.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(file);
        self.apply_file_silences(now);
        let _ = self.wake.try_send(());
        let _ = self.send.try_send(());
        Ok(())
    }

    /// Sends a test alert to every receiver now (not through the outbox):
    /// per receiver, whether it was accepted.
    pub async fn test(&self) -> Vec<Value> {
        let file = self.file();
        let Some(client) = self.client.clone() else { return Vec::new() };
        let now = unix_now();
        let labels: BTreeMap<String, String> =
            [("alertname", "IpvtlTest"), ("severity", "info")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        let fingerprint = Fingerprint::of(&labels).to_string();
        let note = NotificationView {
            id: NotificationView::id_of(&fingerprint, "firing", now),
            kind: "firing".into(),
            fingerprint,
            labels,
            annotations: [("summary".to_string(), "a test alert from ipvtl-dashboard".to_string())].into(),
            starts_at: now,
            // Alertmanager lets it end by itself in five minutes.
            ends_at: Some(now + 300.0),
        };
        let mut answers = Vec::new();
        for r in &file.receivers {
            let out = deliver::outgoing(r, std::slice::from_ref(&note), file.delivery.external_url.as_deref(), now);
            let (accepted, status, error) = match deliver::post(&client, &out, file.delivery.timeout).await {
                Sent::Accepted(code) => (true, Some(code), None),
                Sent::Retry(why) | Sent::Refused(why) => (false, None, Some(why)),
            };
            answers.push(json!({"receiver": r.name, "accepted": accepted, "status": status, "error": error}));
        }
        answers
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
