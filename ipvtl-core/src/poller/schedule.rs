//! Sweep bookkeeping: when the next sweep starts, and when each one ends.

use alloc::collections::BTreeMap;
use core::time::Duration;

use crate::event::Event;
use crate::time::Instant;

/// Running totals of one sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// When it started.
    pub started_at: Instant,
    /// Polls queued or in flight.
    pub outstanding: usize,
    /// Good answers.
    pub ok: usize,
    /// Failed polls.
    pub failed: usize,
    /// Servers left out (backed off, busy, removed).
    pub skipped: usize,
}

#[derive(Debug)]
pub(super) struct Schedule {
    current: u64,
    next_start: Instant,
    open: BTreeMap<u64, SweepStats>,
}

impl Schedule {
    pub(super) fn new(first: Instant) -> Self {
        Schedule { current: 0, next_start: first, open: BTreeMap::new() }
    }

    pub(super) fn current(&self) -> u64 {
        self.current
    }

    pub(super) fn next_start(&self) -> Instant {
        self.next_start
    }

    /// Opens sweep `current + 1` at `now`; the next is due one interval after.
    pub(super) fn start(&mut self, now: Instant, interval: Duration, queued: usize, skipped: usize) -> Option<Event> {
        self.current += 1;
        self.next_start = now + interval;
        let stats = SweepStats { started_at: now, outstanding: queued, ok: 0, failed: 0, skipped };
        if queued == 0 {
            return Some(finished(self.current, &stats, now));
        }
        self.open.insert(self.current, stats);
        None
    }

    /// One poll of `sweep` ended: `Some(true)` good, `Some(false)` failed,
    /// `None` dropped (server removed). Returns the sweep's end event.
    pub(super) fn poll_ended(&mut self, sweep: u64, ok: Option<bool>, now: Instant) -> Option<Event> {
        let stats = self.open.get_mut(&sweep)?;
        stats.outstanding = stats.outstanding.saturating_sub(1);
        match ok {
            Some(true) => stats.ok += 1,
            Some(false) => stats.failed += 1,
            None => stats.skipped += 1,
        }
        if stats.outstanding > 0 {
            return None;
        }
        let stats = self.open.remove(&sweep)?;
        Some(finished(sweep, &stats, now))
    }

    /// One more server joins the current sweep, if it is still open
    /// (some of its polls not answered yet). Returns whether it joined.
    pub(super) fn join_current(&mut self) -> bool {
        match self.open.get_mut(&self.current) {
            Some(stats) => {
                stats.outstanding += 1;
                true
            }
            None => false,
        }
    }

    /// A queued server of the current sweep went away before it was sent.
    pub(super) fn skip_queued(&mut self, now: Instant) -> Option<Event> {
        self.poll_ended(self.current, None, now)
    }
}

fn finished(sweep: u64, stats: &SweepStats, now: Instant) -> Event {
    Event::SweepFinished {
        sweep,
        duration: now.saturating_since(stats.started_at),
        ok: stats.ok,
        failed: stats.failed,
        skipped: stats.skipped,
    }
}

/// Sweeps a server sits out after `failures` failures in a row:
/// `2^(failures-1) - 1`, at most `backoff_max / interval`.
pub fn backoff_skips(failures: u32, interval: Duration, backoff_max: Duration) -> u64 {
    if failures <= 1 {
        return 0;
    }
    let exp = (1u64 << (failures - 1).min(32)) - 1;
    let cap = if interval.is_zero() { 0 } else { (backoff_max.as_millis() / interval.as_millis().max(1)) as u64 };
    exp.min(cap.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let i = Duration::from_secs(5);
        let max = Duration::from_secs(60);
        let skips: alloc::vec::Vec<u64> = (0..8).map(|f| backoff_skips(f, i, max)).collect();
        // 12 intervals fit in 60 s: a backed-off server is polled at most
        // every 12th sweep, i.e. it sits out 11.
        assert_eq!(skips, [0, 0, 1, 3, 7, 11, 11, 11]);
    }

    #[test]
    fn empty_sweep_finishes_at_once() {
        let mut s = Schedule::new(Instant::ZERO);
        let ev = s.start(Instant::from_millis(10), Duration::from_secs(1), 0, 3);
        assert!(matches!(ev, Some(Event::SweepFinished { sweep: 1, ok: 0, failed: 0, skipped: 3, .. })));
        assert_eq!(s.next_start(), Instant::from_millis(1_010));
    }
}
