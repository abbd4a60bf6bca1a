//! The registry of recent batches behind `GET /api/batches[/{id}]`: who
//! asked, typed progress, and the final report (fed by the event pump),
//! each written to the store as it changes; batches kept from before a
//! restart come back from the store as their stored view.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use ipvtl_client::core::{BatchProgress, BatchReport};
use ipvtl_client::wire::BatchReportView;
use ipvtl_client::ActionKind;
use serde::Serialize;
use serde_json::Value;

use crate::guard::Who;
use crate::timefmt::unix_s;

/// Batches remembered in memory for `GET /api/batches` (older ones are
/// read from the store by id).
pub(crate) const KEPT: usize = 100;

/// One batch as `GET /api/batches/{id}` shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct BatchEntryView {
    batch_id: u64,
    /// `start`, `stop` or `restart`.
    action: &'static str,
    /// `running` or `finished`.
    state: &'static str,
    created_at: f64,
    requested_by: Option<Who>,
    /// The instance running it, when several share the fleet.
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'static str>,
    total: usize,
    done: usize,
    failed: usize,
    running: usize,
    report: Option<BatchReportView>,
}

struct Entry {
    action: &'static str,
    created_at: f64,
    who: Option<Who>,
    total: usize,
    done: usize,
    failed: usize,
    running: usize,
    report: Option<BatchReportView>,
    /// The report has been written to the store (or the write was tried
    /// and reported): only then does the batch show `finished`, so a
    /// client that saw the end finds it again after a restart.
    settled: bool,
}

impl Entry {
    fn new() -> Self {
        Entry {
            action: "",
            created_at: unix_s(SystemTime::now()),
            who: None,
            total: 0,
            done: 0,
            failed: 0,
            running: 0,
            report: None,
            settled: false,
        }
    }

    /// The view served (`stored`: the one written, which has the report
    /// before it is settled).
    fn view(&self, batch_id: u64, stored: bool) -> BatchEntryView {
        let report = self.report.as_ref().filter(|_| stored || self.settled);
        BatchEntryView {
            batch_id,
            action: self.action,
            state: if report.is_some() { "finished" } else { "running" },
            created_at: self.created_at,
            requested_by: self.who.clone(),
            instance: crate::instances::name(),
            total: self.total,
            done: self.done,
            failed: self.failed,
            running: self.running,
            report: report.cloned(),
        }
    }
}

/// A batch of this run, or one kept from before (its stored view).
enum Slot {
    Live(Box<Entry>),
    Kept(Value),
}

impl Slot {
    fn value(&self, id: u64) -> Value {
        match self {
            Slot::Live(e) => serde_json::to_value(e.view(id, false)).unwrap_or_default(),
            Slot::Kept(v) => v.clone(),
        }
    }
}

/// What the store keeps of a batch: its id, state, creation time and view.
pub(crate) type StoredBatch = (u64, &'static str, f64, String);

/// A stored batch (its entry view's JSON) that was running when its
/// dashboard stopped, marked `interrupted`, to be written back; `None`
/// for one that ended (or an entry that is not a batch).
pub(crate) fn interrupted(json: &str) -> Option<StoredBatch> {
    mark_interrupted(&mut serde_json::from_str(json).ok()?)
}

/// [`interrupted`] on the parsed view, marked in place.
fn mark_interrupted(v: &mut Value) -> Option<StoredBatch> {
    if v["state"] != "running" {
        return None;
    }
    let id = v["batch_id"].as_u64()?;
    let created_at = v["created_at"].as_f64().unwrap_or_default();
    v["state"] = "interrupted".into();
    Some((id, "interrupted", created_at, v.to_string()))
}

#[derive(Default)]
pub(crate) struct Batches {
    inner: Mutex<BTreeMap<u64, Slot>>,
}

impl Batches {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Slot>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry of batch `id`, made if the pump saw it first.
    fn with(&self, id: u64, f: impl FnOnce(&mut Entry)) {
        let mut m = self.lock();
        let slot = m.entry(id).or_insert_with(|| Slot::Live(Box::new(Entry::new())));
        if let Slot::Kept(_) = slot {
            *slot = Slot::Live(Box::new(Entry::new()));
        }
        if let Slot::Live(e) = slot {
            f(e);
        }
        while m.len() > KEPT {
            let Some(&oldest) = m.keys().next() else { break };
            m.remove(&oldest);
        }
    }

    /// Takes back a batch from the store (its entry view's JSON). One of
    /// this instance's (`mine`) that was running when the dashboard
    /// stopped is marked `interrupted` and returned, to be written back.
    pub fn restore(&self, json: &str, mine: bool) -> Option<StoredBatch> {
        // Another instance's batch (sharing the fleet) is its own business.
        let mut v: Value = serde_json::from_str(json).ok()?;
        let id = v["batch_id"].as_u64()?;
        let cut = if mine { mark_interrupted(&mut v) } else { None };
        self.lock().entry(id).or_insert(Slot::Kept(v));
        cut
    }

    /// What the store should keep of batch `id` now (`None`: not one of
    /// this run's).
    pub fn stored(&self, id: u64) -> Option<StoredBatch> {
        let m = self.lock();
        let Some(Slot::Live(e)) = m.get(&id) else { return None };
        let view = e.view(id, true);
        let json = serde_json::to_string(&view).ok()?;
        Some((id, view.state, view.created_at, json))
    }

    /// Batch `id`'s report has been through the store: it shows `finished`.
    pub fn settle(&self, id: u64) {
        if let Some(Slot::Live(e)) = self.lock().get_mut(&id) {
            e.settled = e.report.is_some();
        }
    }

    pub fn insert(&self, id: u64, kind: ActionKind, total: usize, who: Option<Who>) {
        self.with(id, |e| {
            e.who = who;
            e.action = kind.as_str();
            e.total = total;
        });
    }

    pub fn progress(&self, p: &BatchProgress) {
        self.with(p.batch.0, |e| {
            e.total = p.total;
            e.done = p.done;
            e.failed = p.failed;
            e.running = p.running;
        });
    }

    pub fn finish(&self, r: &BatchReport, view: BatchReportView) {
        self.with(r.batch.0, |e| {
            e.action = r.kind.as_str();
            e.total = r.reports.len();
            e.done = r.reports.len();
            e.failed = view.failed;
            e.running = 0;
            e.report = Some(view);
        });
    }

    pub fn who(&self, id: u64) -> Option<Who> {
        match self.lock().get(&id) {
            Some(Slot::Live(e)) => e.who.clone(),
            _ => None,
        }
    }

    pub fn get(&self, id: u64) -> Option<Value> {
        self.lock().get(&id).map(|s| s.value(id))
    }

    pub fn list(&self) -> Vec<Value> {
        self.lock().iter().rev().map(|(id, s)| s.value(*id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipvtl_client::core::BatchId;
    use ipvtl_client::wire::Wall;
    use ipvtl_client::{Cluster, Settings};

    #[test]
    fn a_batch_shows_finished_only_once_its_report_went_through_the_store() {
        let cluster = Cluster::new(Vec::new(), Settings { background: false, ..Settings::default() }).unwrap();
        let now = cluster.now();
        let report = BatchReport {
            batch: BatchId(7),
            kind: ActionKind::Restart,
            started_at: now,
            finished_at: now,
            reports: Vec::new(),
            stopped_early: None,
        };
        let batches = Batches::default();
        batches.insert(7, ActionKind::Restart, 0, None);
        batches.finish(&report, BatchReportView::new(&report, Wall(cluster.clock())));

        let served = batches.get(7).unwrap();
        assert_eq!((served["state"].as_str(), &served["report"]), (Some("running"), &Value::Null), "{served}");
        let (id, state, _, json) = batches.stored(7).expect("this run's batch");
        let written: Value = serde_json::from_str(&json).unwrap();
        assert_eq!((id, state, written["state"].as_str()), (7, "finished", Some("finished")));
        assert!(written["report"].is_object(), "{written}");

        batches.settle(7);
        assert_eq!(batches.get(7).unwrap(), written, "served as written once settled");
        assert_eq!(batches.list(), vec![written]);
    }
}
