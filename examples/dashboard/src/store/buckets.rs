//! History buckets aggregated in memory before they are written: per
//! server, step and bucket, the polls' cpu sum and count and the last
//! poll's running channels and health. Written when the bucket closes
//! (or when the API reads that server), so the store sees one row per
//! server and bucket, not one write per poll.

use std::collections::HashMap;

use ipvtl_client::core::ServerId;

use super::{HistorySample, HistoryStep};

/// The healths the history stores, by code (a row holds the index).
/// Anything else is stored as `unknown`.
pub(super) const HEALTHS: [&str; 4] = ["unknown", "online", "offline", "error"];

/// `health`'s code in [`HEALTHS`].
pub(super) fn health_code(health: &str) -> i32 {
    HEALTHS.iter().position(|h| *h == health).map_or(0, |i| i32::try_from(i).unwrap_or(0))
}

/// What some polls add to one stored point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Delta {
    pub step: HistoryStep,
    /// The bucket's start, Unix seconds.
    pub at: i64,
    /// The sum of the polls' cpu averages, in tenths of a percent.
    pub cpu_tenths: i64,
    /// How many polls had a cpu average.
    pub cpu_n: i32,
    /// Running channels at the last poll.
    pub running: i32,
    /// Health at the last poll ([`HEALTHS`] code).
    pub health: i32,
}

impl Delta {
    /// The end of its bucket, Unix seconds.
    fn end(&self) -> i64 {
        self.at + self.step.seconds()
    }
}

/// Points not written yet, per server. [`HistoryBuckets::take_closed`]
/// takes the buckets that have ended, [`HistoryBuckets::take_server`] one
/// server's; [`crate::store::Store::write_history`] adds them to the
/// stored points.
#[derive(Debug, Default)]
pub struct HistoryBuckets {
    servers: HashMap<ServerId, Vec<Delta>>,
    /// The earliest end of a bucket held (none: nothing held).
    first_end: Option<i64>,
}

impl HistoryBuckets {
    /// Adds one poll to its bucket at each of `steps`.
    pub fn add(&mut self, s: &HistorySample, steps: &[HistoryStep]) {
        if steps.is_empty() {
            return;
        }
        let (tenths, n) = s.cpu_avg.filter(|c| c.is_finite()).map_or((0, 0), |c| ((c * 10.0).round() as i64, 1));
        let running = i32::try_from(s.running_channels).unwrap_or(i32::MAX);
        let health = health_code(&s.health);
        let held = match self.servers.get_mut(s.server_id.as_str()) {
            Some(held) => held,
            None => self.servers.entry(s.server_id.clone()).or_default(),
        };
        for &step in steps {
            let at = step.bucket(s.at);
            match held.iter_mut().find(|d| d.step == step && d.at == at) {
                Some(d) => {
                    d.cpu_tenths += tenths;
                    d.cpu_n += n;
                    d.running = running;
                    d.health = health;
                }
                None => {
                    let d = Delta { step, at, cpu_tenths: tenths, cpu_n: n, running, health };
                    self.first_end = Some(self.first_end.map_or(d.end(), |e| e.min(d.end())));
                    held.push(d);
                }
            }
        }
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// How many points are held.
    pub fn len(&self) -> usize {
        self.servers.values().map(Vec::len).sum()
    }

    /// True when a bucket held ended at or before `at` (Unix seconds).
    pub fn any_closed(&self, at: i64) -> bool {
        self.first_end.is_some_and(|e| e <= at)
    }

    /// Takes the buckets that ended at or before `at` (Unix seconds).
    pub fn take_closed(&mut self, at: i64) -> HistoryBuckets {
        let mut taken = HistoryBuckets::default();
        if !self.any_closed(at) {
            return taken;
        }
        let earliest = |first: Option<i64>, d: &Delta| Some(first.map_or(d.end(), |e| e.min(d.end())));
        let (mut first_open, mut first_closed) = (None, None);
        self.servers.retain(|id, held| {
            let (closed, open): (Vec<Delta>, Vec<Delta>) = held.iter().partition(|d| d.end() <= at);
            first_open = open.iter().fold(first_open, earliest);
            first_closed = closed.iter().fold(first_closed, earliest);
            if !closed.is_empty() {
                taken.servers.insert(id.clone(), closed);
            }
            *held = open;
            !held.is_empty()
        });
        self.first_end = first_open;
        taken.first_end = first_closed;
        taken
    }

    /// Takes server `id`'s buckets, open or closed.
    pub fn take_server(&mut self, id: &str) -> HistoryBuckets {
        let mut taken = HistoryBuckets::default();
        if let Some(held) = self.servers.remove(id) {
            taken.first_end = held.iter().map(Delta::end).min();
            taken.servers.insert(ServerId::from(id), held);
        }
        taken
    }

    /// Puts back `older` buckets taken before and not written: their cpu
    /// figures are added to what came since, whose last poll stays the
    /// last. Nothing is put back once `max` points are held.
    pub fn restore(&mut self, older: HistoryBuckets, max: usize) {
        if self.len() + older.len() > max {
            return;
        }
        for (id, olds) in older.servers {
            let held = self.servers.entry(id).or_default();
            for old in olds {
                match held.iter_mut().find(|d| d.step == old.step && d.at == old.at) {
                    Some(d) => {
                        d.cpu_tenths += old.cpu_tenths;
                        d.cpu_n += old.cpu_n;
                    }
                    None => held.push(old),
                }
            }
        }
        self.first_end = match (self.first_end, older.first_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Every point held: server and what it adds.
    pub(super) fn deltas(&self) -> impl Iterator<Item = (&str, &Delta)> {
        self.servers.iter().flat_map(|(id, held)| held.iter().map(move |d| (id.as_str(), d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::suite::sample;

    const BOTH: [HistoryStep; 2] = HistoryStep::ALL;

    #[test]
    fn polls_in_a_bucket_become_one_point_per_step() {
        let mut b = HistoryBuckets::default();
        b.add(&sample("a", 1_800_000_001, Some(10.0), 3, "online"), &BOTH);
        b.add(&sample("a", 1_800_000_009, Some(20.5), 2, "offline"), &BOTH);
        b.add(&sample("a", 1_800_000_009, None, 1, "error"), &BOTH);
        assert_eq!(b.len(), 2);
        let ten = b.deltas().find(|(_, d)| d.step == HistoryStep::TenSeconds).unwrap().1;
        assert_eq!(
            *ten,
            Delta {
                step: HistoryStep::TenSeconds,
                at: 1_800_000_000,
                cpu_tenths: 305,
                cpu_n: 2,
                running: 1,
                health: health_code("error")
            }
        );
        b.add(&sample("b", 1_800_000_012, Some(1.0), 0, "online"), &[HistoryStep::TenSeconds]);
        assert_eq!(b.len(), 3, "one step only for b");
    }

    #[test]
    fn closed_buckets_are_taken_open_ones_stay() {
        let mut b = HistoryBuckets::default();
        let t0 = 1_800_000_000;
        b.add(&sample("a", t0 + 5, Some(1.0), 1, "online"), &BOTH);
        b.add(&sample("a", t0 + 15, Some(1.0), 1, "online"), &BOTH);
        b.add(&sample("b", t0 + 15, Some(1.0), 1, "online"), &BOTH);
        assert!(!b.any_closed(t0 + 9));
        assert!(b.take_closed(t0 + 9).is_empty());
        assert!(b.any_closed(t0 + 10));
        let taken = b.take_closed(t0 + 10);
        assert_eq!(
            taken.deltas().map(|(id, d)| (id, d.step, d.at)).collect::<Vec<_>>(),
            [("a", HistoryStep::TenSeconds, t0)]
        );
        assert_eq!(b.len(), 4, "a's and b's second 10 s bucket and their minute");
        assert!(!b.any_closed(t0 + 19));
        assert_eq!(b.take_closed(t0 + 20).len(), 2);
        assert_eq!(b.take_server("a").len(), 1, "a's open minute");
        assert_eq!(b.take_closed(t0 + 60).len(), 1, "b's minute");
        assert!(b.is_empty() && !b.any_closed(i64::MAX));
    }

    #[test]
    fn buckets_put_back_keep_the_newer_last_poll() {
        let mut b = HistoryBuckets::default();
        let t0 = 1_800_000_000;
        b.add(&sample("a", t0 + 1, Some(10.0), 1, "online"), &[HistoryStep::TenSeconds]);
        let taken = b.take_closed(t0 + 10);
        b.add(&sample("a", t0 + 9, Some(20.0), 2, "offline"), &[HistoryStep::TenSeconds]);
        b.restore(taken, 100);
        let (_, d) = b.deltas().next().unwrap();
        assert_eq!((d.cpu_tenths, d.cpu_n, d.running, d.health), (300, 2, 2, health_code("offline")));
        assert!(b.any_closed(t0 + 10));
        let taken = b.take_closed(t0 + 10);
        b.add(&sample("a", t0 + 11, Some(1.0), 1, "online"), &[HistoryStep::TenSeconds]);
        b.restore(taken, 1);
        assert_eq!(b.len(), 1, "beyond the bound, the older are dropped");
    }

    #[test]
    fn every_health_has_its_own_code() {
        for h in ipvtl_client::core::Health::ALL {
            assert_eq!(HEALTHS[health_code(h.as_str()) as usize], h.as_str());
        }
        assert_eq!(health_code("something new"), 0);
    }
}
