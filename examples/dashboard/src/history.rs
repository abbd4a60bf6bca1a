//! Per-server history: a bounded ring of recent samples (cpu average and
//! running channels), one per completed poll, for the page; the same
//! samples go to the store's downsampled history (`crate::store`), held
//! per bucket in memory and written when the bucket closes
//! ([`History::write_closed`]) or when the API reads that server's
//! history ([`History::write_server`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use ipvtl_client::core::{ChannelState, Instant};
use ipvtl_client::{FleetSnapshot, Health};
use serde::Serialize;

use crate::store::{HistoryBuckets, HistoryRetention, HistorySample, Store, StoreError};

/// Samples kept per server.
pub(crate) const HISTORY_LEN: usize = 120;

/// One poll of a server, as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Sample {
    /// Unix milliseconds of the poll.
    pub t: u64,
    pub cpu_avg: Option<f64>,
    pub running_channels: usize,
    pub status: &'static str,
}

/// One poll of a server, as the ring holds it: 16 bytes instead of the
/// [`Sample`]'s 48, so a full ring is under 2 KiB a server. The CPU mean is
/// kept as the server reported it (rounded when read); the running
/// channels saturate at 65 535.
#[derive(Clone, Copy, Debug)]
struct Packed {
    t: u64,
    /// NaN: no CPU reported.
    cpu_avg: f32,
    running_channels: u16,
    health: Health,
}

impl Packed {
    fn sample(self) -> Sample {
        Sample {
            t: self.t,
            cpu_avg: (!self.cpu_avg.is_nan()).then(|| round1(self.cpu_avg)),
            running_channels: usize::from(self.running_channels),
            status: self.health.as_str(),
        }
    }
}

/// The CPU mean as the API and the store show it: one decimal.
fn round1(cpu: f32) -> f64 {
    (f64::from(cpu) * 10.0).round() / 10.0
}

/// A bucket is written this long after it ends (polls are reported a
/// little after they are made); a poll later still is added to the stored
/// point by the next write.
const CLOSE_AFTER_S: i64 = 1;
/// The store's points are pruned at most this often.
const PRUNE_EVERY_S: i64 = 60;
/// Points held while the store refuses them (about 10 min of both steps
/// at 10 000 servers); past this, the older are dropped.
const HELD_MAX: usize = 1_000_000;

#[derive(Default)]
pub(crate) struct History {
    inner: Mutex<HistoryInner>,
    /// Polls not written to the store yet, per bucket.
    held: Mutex<HistoryBuckets>,
    /// Held across each write to the store, so they reach it in order:
    /// the Unix second of the last prune.
    writing: smol::lock::Mutex<Option<i64>>,
}

#[derive(Default)]
struct HistoryInner {
    series: HashMap<String, VecDeque<Packed>>,
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
            let cpu_avg = status.and_then(|st| st.cpu_avg());
            let running = status.map_or(0, |st| st.count_in(&ChannelState::Running));
            let t = to_unix_ms(at);
            stored.push(HistorySample {
                server_id: id.to_string(),
                at: i64::try_from(t / 1000).unwrap_or(i64::MAX),
                cpu_avg: cpu_avg.map(round1),
                running_channels: u64::try_from(running).unwrap_or(u64::MAX),
                health: s.state.health.as_str().to_string(),
            });
            let packed = Packed {
                t,
                cpu_avg: cpu_avg.unwrap_or(f32::NAN),
                running_channels: u16::try_from(running).unwrap_or(u16::MAX),
                health: s.state.health,
            };
            let ring = inner.series.entry(id.to_string()).or_insert_with(|| VecDeque::with_capacity(HISTORY_LEN));
            if ring.len() == HISTORY_LEN {
                ring.pop_front();
            }
            ring.push_back(packed);
        }
        (latencies, stored)
    }

    /// Holds `polled` for the store at each step `retention` keeps.
    pub fn hold(&self, polled: &[HistorySample], retention: &HistoryRetention) {
        let steps: Vec<_> = retention.keep().iter().filter(|(_, k)| !k.is_zero()).map(|&(s, _)| s).collect();
        if steps.is_empty() {
            return;
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        for s in polled {
            held.add(s, &steps);
        }
    }

    /// Writes the buckets held that ended by `now` (Unix seconds), if any,
    /// in one transaction that also prunes the store's points past their
    /// keep when the last prune is a minute old.
    pub async fn write_closed(&self, store: &Store, retention: &HistoryRetention, now: i64) -> Result<(), StoreError> {
        let keep = retention.keep();
        if keep.iter().all(|(_, kept)| kept.is_zero()) {
            return Ok(());
        }
        let mut pruned = self.writing.lock().await;
        let closed = self.held.lock().unwrap_or_else(|p| p.into_inner()).take_closed(now - CLOSE_AFTER_S);
        if closed.is_empty() {
            // Pruning rides on a write of points, never alone: a store that
            // refuses new rows but lets old ones go must not look healthy.
            return Ok(());
        }
        let prune = pruned.is_none_or(|at| now - at >= PRUNE_EVERY_S);
        let result = store.write_history(&closed, prune.then_some((&keep[..], now))).await;
        match result {
            Ok(()) if prune => *pruned = Some(now),
            Ok(()) => {}
            Err(_) => self.held.lock().unwrap_or_else(|p| p.into_inner()).restore(closed, HELD_MAX),
        }
        result
    }

    /// Writes server `id`'s buckets held, open ones too, so the store
    /// answers for every poll reported so far.
    pub async fn write_server(&self, store: &Store, id: &str) -> Result<(), StoreError> {
        let _writing = self.writing.lock().await;
        let taken = self.held.lock().unwrap_or_else(|p| p.into_inner()).take_server(id);
        if taken.is_empty() {
            return Ok(());
        }
        let result = store.write_history(&taken, None).await;
        if result.is_err() {
            self.held.lock().unwrap_or_else(|p| p.into_inner()).restore(taken, HELD_MAX);
        }
        result
    }

    pub fn series(&self, id: &str) -> Vec<Sample> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.series.get(id).map(|r| r.iter().map(|p| p.sample()).collect()).unwrap_or_default()
    }

    /// The last `points` cpu averages of every server (for sparklines).
    pub fn cpu_all(&self, points: usize) -> serde_json::Map<String, serde_json::Value> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .series
            .iter()
            .map(|(id, ring)| {
                let skip = ring.len().saturating_sub(points);
                let v: Vec<serde_json::Value> = ring.iter().skip(skip).map(|p| p.sample().cpu_avg.into()).collect();
                (id.clone(), serde_json::Value::Array(v))
            })
            .collect()
    }
}
