//! Per-server history: a bounded ring of recent samples (cpu average and
//! running channels), one per completed poll, for the page; the same
//! samples go to the store's downsampled history (`crate::store`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use ipvtl_client::core::{ChannelState, Instant};
use ipvtl_client::FleetSnapshot;
use serde::Serialize;

use crate::store::HistorySample;

/// Samples kept per server.
pub(crate) const HISTORY_LEN: usize = 120;

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Sample {
    /// Unix milliseconds of the poll.
    pub t: u64,
    pub cpu_avg: Option<f64>,
    pub running_channels: usize,
    pub status: &'static str,
}

#[derive(Default)]
pub(crate) struct History {
    inner: Mutex<HistoryInner>,
}

#[derive(Default)]
struct HistoryInner {
    series: HashMap<String, VecDeque<Sample>>,
    last_poll: HashMap<String, Instant>,
}

impl History {
    /// Records one sample for every server polled since the last call, and
    /// returns the latencies (seconds) of those polls for the histogram and
    /// the samples, for the store's downsampled history.
    pub fn record(&self, fleet: &FleetSnapshot, to_unix_ms: impl Fn(Instant) -> u64) -> (Vec<f64>, Vec<HistorySample>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut latencies = Vec::new();
        let mut stored = Vec::new();
        let ids: std::collections::HashSet<&str> = fleet.servers.iter().map(|s| s.config.id.as_str()).collect();
        inner.series.retain(|k, _| ids.contains(k.as_str()));
        inner.last_poll.retain(|k, _| ids.contains(k.as_str()));
        for s in &fleet.servers {
            let Some(at) = s.state.last_poll_at else { continue };
            let id = s.config.id.as_str();
            if inner.last_poll.get(id) == Some(&at) {
                continue;
            }
            inner.last_poll.insert(id.to_string(), at);
            if let Some(l) = s.state.latency {
                latencies.push(l.as_secs_f64());
            }
            let status = s.state.status.as_ref();
            let sample = Sample {
                t: to_unix_ms(at),
                cpu_avg: status.and_then(|st| st.cpu_avg()).map(|x| (f64::from(x) * 10.0).round() / 10.0),
                running_channels: status.map_or(0, |st| st.count_in(&ChannelState::Running)),
                status: s.state.health.as_str(),
            };
            stored.push(HistorySample {
                server_id: id.to_string(),
                at: i64::try_from(sample.t / 1000).unwrap_or(i64::MAX),
                cpu_avg: sample.cpu_avg,
                running_channels: u64::try_from(sample.running_channels).unwrap_or(u64::MAX),
                health: sample.status.to_string(),
            });
            let ring = inner.series.entry(id.to_string()).or_default();
            if ring.len() == HISTORY_LEN {
                ring.pop_front();
            }
            ring.push_back(sample);
        }
        (latencies, stored)
    }

    pub fn series(&self, id: &str) -> Vec<Sample> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.series.get(id).map(|r| r.iter().cloned().collect()).unwrap_or_default()
    }

    /// The last `points` cpu averages of every server (for sparklines).
    pub fn cpu_all(&self, points: usize) -> serde_json::Map<String, serde_json::Value> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .series
            .iter()
            .map(|(id, ring)| {
                let skip = ring.len().saturating_sub(points);
                let v: Vec<serde_json::Value> = ring.iter().skip(skip).map(|s| s.cpu_avg.into()).collect();
                (id.clone(), serde_json::Value::Array(v))
            })
            .collect()
    }
}
