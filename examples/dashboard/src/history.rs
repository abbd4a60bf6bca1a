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

/// One poll of a server, as the ring holds it: 8 bytes instead of the
/// [`Sample`]'s 48, so a full ring is under 1 KiB a server. The time is
/// the milliseconds after its ring's base; the CPU mean is kept as the API
/// shows it, in tenths (within ±3 276.7, [`NO_CPU`] when none was
/// reported); the running channels saturate at [`RUNNING_MAX`] and share a
/// word with the health's index in [`Health::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Packed {
    dt_ms: u32,
    cpu_tenths: i16,
    running_health: u16,
}

/// [`Packed::cpu_tenths`] of a poll without CPU figures.
const NO_CPU: i16 = i16::MIN;
/// The running channels a sample counts at most (13 bits).
const RUNNING_MAX: u16 = (1 << 13) - 1;

impl Packed {
    fn new(dt_ms: u32, cpu_avg: Option<f32>, running: usize, health: Health) -> Self {
        let cpu_tenths = cpu_avg.map_or(NO_CPU, |c| (f64::from(c) * 10.0).round().clamp(-32_767.0, 32_767.0) as i16);
        let running = u16::try_from(running).unwrap_or(u16::MAX).min(RUNNING_MAX);
        let health = Health::ALL.iter().position(|h| *h == health).unwrap_or(0) as u16;
        Packed { dt_ms, cpu_tenths, running_health: running << 3 | health }
    }

    fn cpu_avg(self) -> Option<f64> {
        (self.cpu_tenths != NO_CPU).then(|| f64::from(self.cpu_tenths) / 10.0)
    }

    fn sample(self, base_ms: u64) -> Sample {
        let health = Health::ALL.get(usize::from(self.running_health & 7)).copied().unwrap_or_default();
        Sample {
            t: base_ms + u64::from(self.dt_ms),
            cpu_avg: self.cpu_avg(),
            running_channels: usize::from(self.running_health >> 3),
            status: health.as_str(),
        }
    }
}

/// One server's recent polls, oldest first.
struct Ring {
    /// The last poll recorded (a snapshot reports each poll once).
    last_poll: Instant,
    /// Unix milliseconds the samples' times count from.
    base_ms: u64,
    samples: VecDeque<Packed>,
}

impl Ring {
    fn new(last_poll: Instant, t: u64) -> Self {
        Ring { last_poll, base_ms: t, samples: VecDeque::with_capacity(HISTORY_LEN) }
    }

    /// Adds the poll made at Unix milliseconds `t`, dropping the oldest
    /// beyond [`HISTORY_LEN`]. When `t` does not fit the base (after 49
    /// days of samples, or a clock set back), the base moves to the
    /// oldest sample that still fits and the others go: older than 49
    /// days, or newer than `t`.
    fn push(&mut self, t: u64, cpu_avg: Option<f32>, running: usize, health: Health) {
        let newest = self.samples.back().map(|p| self.base_ms + u64::from(p.dt_ms));
        if t < self.base_ms || t - self.base_ms > u64::from(u32::MAX) || newest.is_some_and(|n| n > t) {
            let old = core::mem::take(&mut self.samples);
            let base = self.base_ms;
            let kept: Vec<(u64, Packed)> = old
                .into_iter()
                .map(|p| (base + u64::from(p.dt_ms), p))
                .filter(|&(at, _)| at <= t && t - at <= u64::from(u32::MAX))
                .collect();
            self.base_ms = kept.first().map_or(t, |&(at, _)| at);
            self.samples.extend(kept.into_iter().map(|(at, p)| Packed { dt_ms: (at - self.base_ms) as u32, ..p }));
        }
        if self.samples.len() == HISTORY_LEN {
            self.samples.pop_front();
        }
        let dt_ms = u32::try_from(t - self.base_ms).unwrap_or(u32::MAX);
        self.samples.push_back(Packed::new(dt_ms, cpu_avg, running, health));
    }

    fn samples(&self) -> impl Iterator<Item = Sample> + '_ {
        self.samples.iter().map(|p| p.sample(self.base_ms))
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
    series: HashMap<String, Ring>,
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
        for s in &fleet.servers {
            let Some(at) = s.state.last_poll_at else { continue };
            let id = s.config.id.as_str();
            if inner.series.get(id).is_some_and(|r| r.last_poll == at) {
                continue;
            }
            if let Some(l) = s.state.latency {
                latencies.push(l.as_secs_f64());
            }
            let status = s.state.status.as_ref();
            let cpu_avg = status.and_then(|st| st.cpu_avg());
            let running = status.map_or(0, |st| st.count_in(&ChannelState::Running));
            let t = to_unix_ms(at);
            stored.push(HistorySample {
                server_id: s.config.id.clone(),
                at: i64::try_from(t / 1000).unwrap_or(i64::MAX),
                cpu_avg: cpu_avg.map(round1),
                running_channels: u64::try_from(running).unwrap_or(u64::MAX),
                health: s.state.health.as_str().into(),
            });
            match inner.series.get_mut(id) {
                Some(ring) => {
                    ring.last_poll = at;
                    ring.push(t, cpu_avg, running, s.state.health);
                }
                None => {
                    let mut ring = Ring::new(at, t);
                    ring.push(t, cpu_avg, running, s.state.health);
                    inner.series.insert(id.to_string(), ring);
                }
            }
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
        inner.series.get(id).map(|r| r.samples().collect()).unwrap_or_default()
    }

    /// The last `points` cpu averages of every server (for sparklines).
    pub fn cpu_all(&self, points: usize) -> serde_json::Map<String, serde_json::Value> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .series
            .iter()
            .map(|(id, ring)| {
                let skip = ring.samples.len().saturating_sub(points);
                let v: Vec<serde_json::Value> = ring.samples.iter().skip(skip).map(|p| p.cpu_avg().into()).collect();
                (id.clone(), serde_json::Value::Array(v))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(t: u64) -> Ring {
        Ring::new(Instant::from_millis(0), t)
    }

    #[test]
    fn a_sample_reads_back_as_the_api_shows_it() {
        let mut r = ring(1_700_000_000_000);
        r.push(1_700_000_000_000, Some(12.345), 3, Health::Online);
        r.push(1_700_000_001_250, None, 0, Health::Offline);
        r.push(1_700_000_002_500, Some(-0.04), 70_000, Health::Error);
        r.push(1_700_000_003_750, Some(1e9), 8_191, Health::Unknown);
        let got: Vec<_> = r.samples().map(|s| (s.t, s.cpu_avg, s.running_channels, s.status)).collect();
        assert_eq!(
            got,
            [
                (1_700_000_000_000, Some(round1(12.345)), 3, "online"),
                (1_700_000_001_250, None, 0, "offline"),
                (1_700_000_002_500, Some(-0.0), 8_191, "error"),
                (1_700_000_003_750, Some(3_276.7), 8_191, "unknown"),
            ]
        );
        assert_eq!(got[0].1, Some(12.3));
    }

    #[test]
    fn the_ring_keeps_the_last_history_len_polls() {
        let mut r = ring(0);
        for i in 0..(HISTORY_LEN as u64 + 5) {
            r.push(i * 1000, Some(i as f32), i as usize, Health::Online);
        }
        let got: Vec<_> = r.samples().collect();
        assert_eq!(got.len(), HISTORY_LEN);
        assert_eq!(got[0].t, 5_000);
        assert_eq!(got[HISTORY_LEN - 1].t, (HISTORY_LEN as u64 + 4) * 1000);
        assert_eq!(got[HISTORY_LEN - 1].running_channels, HISTORY_LEN + 4);
    }

    #[test]
    fn a_poll_beyond_the_base_moves_it_and_keeps_what_still_fits() {
        let day = 86_400_000u64;
        let mut r = ring(1_000);
        r.push(1_000, Some(1.0), 1, Health::Online);
        r.push(1_000 + 30 * day, Some(2.0), 2, Health::Online);
        r.push(1_000 + 60 * day, Some(3.0), 3, Health::Online);
        let got: Vec<_> = r.samples().map(|s| (s.t, s.running_channels)).collect();
        assert_eq!(got, [(1_000 + 30 * day, 2), (1_000 + 60 * day, 3)], "the sample 60 days old no longer fits");
        assert_eq!(r.base_ms, 1_000 + 30 * day);
        // A clock set back: what is newer than the poll goes.
        r.push(1_000 + 45 * day, Some(4.0), 4, Health::Online);
        let got: Vec<_> = r.samples().map(|s| (s.t, s.running_channels)).collect();
        assert_eq!(got, [(1_000 + 30 * day, 2), (1_000 + 45 * day, 4)]);
    }
}
