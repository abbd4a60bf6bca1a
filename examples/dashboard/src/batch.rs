//! Batches: the request body, and a registry of recent batches with their
//! progress and final report (fed by the event pump).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use ipvtl_client::core::{BatchProgress, BatchReport, ChannelId};
use ipvtl_client::{ActionKind, BatchFilter, BatchSpec, BatchTarget, ChannelState, Targets};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::timefmt::iso;
use crate::view::{batch_progress_json, batch_report_json};

/// Batches remembered for `GET /api/batches/{id}`.
const KEPT: usize = 100;
/// Most channels one batch may list.
const MAX_TARGETS: usize = 10_000;
/// Highest `max_parallel` accepted.
const MAX_PARALLEL: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRequest {
    pub action: String,
    #[serde(default)]
    pub targets: Option<Vec<TargetRequest>>,
    #[serde(default)]
    pub filter: Option<FilterRequest>,
    #[serde(default = "default_parallel")]
    pub max_parallel: usize,
    #[serde(default)]
    pub stop_on_failure: bool,
    #[serde(default)]
    pub failure_threshold: Option<usize>,
    #[serde(default)]
    pub dry_run: bool,
}

fn default_parallel() -> usize {
    4
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetRequest {
    pub server_id: String,
    pub channel_id: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterRequest {
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub states: Vec<String>,
    #[serde(default)]
    pub channels: Vec<u32>,
}

impl BatchRequest {
    /// The core spec, or a 422 naming what is wrong.
    pub fn to_spec(&self) -> Result<BatchSpec, ApiError> {
        let kind = ActionKind::parse(&self.action)
            .ok_or_else(|| ApiError::unprocessable("action must be \"start\", \"stop\" or \"restart\""))?;
        if !(1..=MAX_PARALLEL).contains(&self.max_parallel) {
            return Err(ApiError::unprocessable(format!("max_parallel must be within 1..={MAX_PARALLEL}")));
        }
        if self.failure_threshold == Some(0) {
            return Err(ApiError::unprocessable("failure_threshold must be at least 1"));
        }
        let channel =
            |n: u32| ChannelId::new(n).ok_or_else(|| ApiError::unprocessable("channel numbers start at 1 (got 0)"));
        let targets = match (&self.targets, &self.filter) {
            (Some(list), None) => {
                if list.is_empty() || list.len() > MAX_TARGETS {
                    return Err(ApiError::unprocessable(format!("targets must list 1..={MAX_TARGETS} channels")));
                }
                let list = list
                    .iter()
                    .map(|t| Ok(BatchTarget { server: t.server_id.as_str().into(), channel: channel(t.channel_id)? }))
                    .collect::<Result<Vec<_>, ApiError>>()?;
                Targets::Channels(list)
            }
            (None, Some(f)) => Targets::Filter(BatchFilter {
                servers: f.servers.iter().map(|s| s.as_str().into()).collect(),
                tags: f.tags.clone(),
                states: f.states.iter().map(|s| ChannelState::parse(s)).collect(),
                channels: f.channels.iter().map(|&n| channel(n)).collect::<Result<_, _>>()?,
            }),
            _ => return Err(ApiError::unprocessable("give exactly one of \"targets\" or \"filter\"")),
        };
        Ok(BatchSpec {
            max_parallel: self.max_parallel,
            stop_on_failure: self.stop_on_failure,
            failure_threshold: self.failure_threshold,
            ..BatchSpec::new(kind, targets)
        })
    }
}

pub(crate) fn targets_json(plan: &[BatchTarget]) -> Vec<Value> {
    plan.iter().map(|t| json!({"server_id": t.server.as_str(), "channel_id": t.channel.get()})).collect()
}

struct Entry {
    action: &'static str,
    created: String,
    who: Value,
    total: usize,
    progress: Option<Value>,
    report: Option<Value>,
}

#[derive(Default)]
pub(crate) struct Batches {
    inner: Mutex<BTreeMap<u64, Entry>>,
}

impl Batches {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, id: u64, kind: ActionKind, total: usize, who: Value) {
        let mut m = self.lock();
        // Keep the entry if the pump already saw the batch end.
        m.entry(id).or_insert(Entry {
            action: kind.as_str(),
            created: iso(SystemTime::now()),
            who: Value::Null,
            total,
            progress: None,
            report: None,
        });
        if let Some(e) = m.get_mut(&id) {
            e.who = who;
            e.action = kind.as_str();
            e.total = total;
        }
        while m.len() > KEPT {
            let Some(&oldest) = m.keys().next() else { break };
            m.remove(&oldest);
        }
    }

    fn entry(&self, id: u64) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        let mut m = self.lock();
        m.entry(id).or_insert(Entry {
            action: "",
            created: iso(SystemTime::now()),
            who: Value::Null,
            total: 0,
            progress: None,
            report: None,
        });
        m
    }

    pub fn progress(&self, p: &BatchProgress) {
        let mut m = self.entry(p.batch.0);
        if let Some(e) = m.get_mut(&p.batch.0) {
            e.total = p.total;
            e.progress = Some(batch_progress_json(p));
        }
    }

    pub fn finish(&self, r: &BatchReport) {
        let mut m = self.entry(r.batch.0);
        if let Some(e) = m.get_mut(&r.batch.0) {
            e.action = r.kind.as_str();
            e.total = r.reports.len();
            e.report = Some(batch_report_json(r));
        }
    }

    pub fn who(&self, id: u64) -> Value {
        self.lock().get(&id).map(|e| e.who.clone()).unwrap_or(Value::Null)
    }

    fn json(id: u64, e: &Entry) -> Value {
        let (done, failed, running) = match (&e.report, &e.progress) {
            (Some(r), _) => (e.total, r["failed"].as_u64().unwrap_or(0) as usize, 0),
            (None, Some(p)) => (
                p["done"].as_u64().unwrap_or(0) as usize,
                p["failed"].as_u64().unwrap_or(0) as usize,
                p["running"].as_u64().unwrap_or(0) as usize,
            ),
            (None, None) => (0, 0, 0),
        };
        json!({
            "batch_id": id,
            "action": e.action,
            "state": if e.report.is_some() { "finished" } else { "running" },
            "created": e.created,
            "requested_by": e.who,
            "total": e.total,
            "done": done,
            "failed": failed,
            "running": running,
            "report": e.report,
        })
    }

    pub fn get(&self, id: u64) -> Option<Value> {
        self.lock().get(&id).map(|e| Self::json(id, e))
    }

    pub fn list(&self) -> Vec<Value> {
        self.lock().iter().rev().map(|(id, e)| Self::json(*id, e)).collect()
    }
}
