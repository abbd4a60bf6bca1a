//! The registry of recent batches behind `GET /api/batches[/{id}]`: who
//! asked, typed progress, and the final report (fed by the event pump).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use ipvtl_client::core::{BatchProgress, BatchReport};
use ipvtl_client::wire::BatchReportView;
use ipvtl_client::ActionKind;
use serde::Serialize;

use crate::guard::Who;
use crate::timefmt::unix_s;

/// Batches remembered for `GET /api/batches/{id}`.
const KEPT: usize = 100;

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
        }
    }

    fn view(&self, batch_id: u64) -> BatchEntryView {
        BatchEntryView {
            batch_id,
            action: self.action,
            state: if self.report.is_some() { "finished" } else { "running" },
            created_at: self.created_at,
            requested_by: self.who.clone(),
            total: self.total,
            done: self.done,
            failed: self.failed,
            running: self.running,
            report: self.report.clone(),
        }
    }
}

#[derive(Default)]
pub(crate) struct Batches {
    inner: Mutex<BTreeMap<u64, Entry>>,
}

impl Batches {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry of batch `id`, made if the pump saw it first.
    fn with(&self, id: u64, f: impl FnOnce(&mut Entry)) {
        let mut m = self.lock();
        f(m.entry(id).or_insert_with(Entry::new));
        while m.len() > KEPT {
            let Some(&oldest) = m.keys().next() else { break };
            m.remove(&oldest);
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
        self.lock().get(&id).and_then(|e| e.who.clone())
    }

    pub fn get(&self, id: u64) -> Option<BatchEntryView> {
        self.lock().get(&id).map(|e| e.view(id))
    }

    pub fn list(&self) -> Vec<BatchEntryView> {
        self.lock().iter().rev().map(|(id, e)| e.view(*id)).collect()
    }
}
