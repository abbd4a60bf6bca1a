//! How hard the reconciler tries: per-scope healing policies and the
//! fleet-wide settings.

use core::time::Duration;

/// How a drifting channel is healed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealPolicy {
    /// How long drift must last before the first attempt.
    pub grace: Duration,
    /// Most heals of one channel within `window` (at least 1).
    pub limit: u32,
    /// The sliding window `limit` counts in.
    pub window: Duration,
    /// Wait after a heal before the next attempt; doubled for every
    /// further attempt within the window, up to `backoff_max`.
    pub backoff: Duration,
    /// Cap of the backoff.
    pub backoff_max: Duration,
}

impl Default for HealPolicy {
    /// 10 s grace, 3 heals per 10 minutes, 5 s backoff doubling up to 1 minute.
    fn default() -> Self {
        HealPolicy {
            grace: Duration::from_secs(10),
            limit: 3,
            window: Duration::from_secs(600),
            backoff: Duration::from_secs(5),
            backoff_max: Duration::from_secs(60),
        }
    }
}

impl HealPolicy {
    /// The wait before the next attempt when `attempts` heals are within
    /// the window (`attempts` ≥ 1).
    pub fn backoff_after(&self, attempts: usize) -> Duration {
        let shift = attempts.saturating_sub(1).min(20) as u32;
        self.backoff.saturating_mul(1u32 << shift).min(self.backoff_max.max(self.backoff))
    }
}

/// Whether drift is healed, set per scope like the desired state
/// (healing is opt-in: with no setting, drift is only reported).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Healing {
    /// Report drift, never act.
    Off,
    /// Heal under this policy.
    On(HealPolicy),
}

/// Fleet-wide settings of the [`super::Reconciler`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcilerConfig {
    /// Heals under way at once, fleet-wide (at least 1).
    pub max_parallel: usize,
    /// The storm guard: healing pauses while more than this percentage of
    /// the managed channels are in trouble (drifting, or on a server that
    /// is not online)...
    pub storm_percent: u32,
    /// ...and at least this many are (so that one channel of a small
    /// fleet is not a storm).
    pub storm_min: usize,
    /// Report what would be healed ([`crate::Event::HealPlanned`]) instead
    /// of doing it.
    pub dry_run: bool,
    /// Healing switched off by an operator (no event; drift is still
    /// tracked).
    pub paused: bool,
}

impl Default for ReconcilerConfig {
    /// 4 heals at once, the storm guard at 20 % (and at least 5 channels),
    /// live, not paused.
    fn default() -> Self {
        ReconcilerConfig { max_parallel: 4, storm_percent: 20, storm_min: 5, dry_run: false, paused: false }
    }
}
