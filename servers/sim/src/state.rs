//! The simulated transcoder: channels and CPU as a pure function of time.
//!
//! Nothing here reads a clock: every method takes `now`, so the lifecycle is
//! tested without sleeping.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use ipvtl_core::ChannelState;

/// splitmix64: a tiny, good-enough deterministic mixer for seeds and jitter.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Mixes several values into one pseudo-random `u64`.
pub(crate) fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5EED_u64, |acc, &p| mix(acc ^ mix(p)))
}

/// A uniform value in `0.0..1.0` from a hash.
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Where a channel is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Started; shows `idle` until `at`, then runs with uptime from `at`.
    Starting {
        at: Instant,
    },
    /// Running since `since`, with `base` uptime already behind it.
    Running {
        since: Instant,
        base: Duration,
    },
    /// Stopping until `until` (then idle); forever when `None`.
    Stopping {
        until: Option<Instant>,
    },
}

#[derive(Clone, Debug)]
struct ChannelSim {
    phase: Phase,
    /// Nominal frame rate (25, 29.97, 30, 50).
    fps: f64,
    /// Nominal bitrate in kbit/s.
    kbps: f64,
}

/// What a channel shows at one instant.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChannelView {
    pub state: ChannelState,
    /// Uptime while running.
    pub uptime: Option<Duration>,
}

/// One simulated server's channels.
#[derive(Clone, Debug)]
pub(crate) struct ServerModel {
    channels: Vec<ChannelSim>,
    cores: u32,
    /// Per-server seed for jitter.
    seed: u64,
}

const FPS_CHOICES: [f64; 4] = [25.0, 29.97, 30.0, 50.0];

impl ServerModel {
    /// A server whose channels run with probability `running` (decided by
    /// `seed`), with up to three days of uptime behind them.
    pub fn new(channels: u32, cores: u32, running: f64, seed: u64, now: Instant) -> Self {
        let channels = (0..u64::from(channels))
            .map(|i| {
                let h = hash(&[seed, i]);
                let phase = if unit(h) < running {
                    let base = Duration::from_secs(hash(&[seed, i, 1]) % (72 * 3600));
                    Phase::Running { since: now, base }
                } else {
                    Phase::Idle
                };
                ChannelSim {
                    phase,
                    fps: FPS_CHOICES[(hash(&[seed, i, 2]) % 4) as usize],
                    kbps: 2000.0 + (hash(&[seed, i, 3]) % 4000) as f64,
                }
            })
            .collect();
        ServerModel { channels, cores, seed }
    }

    /// Settles phases whose time has come (`Starting` → `Running`,
    /// `Stopping` → `Idle`).
    fn settle(phase: Phase, now: Instant) -> Phase {
        match phase {
            Phase::Starting { at } if now >= at => Phase::Running { since: at, base: Duration::ZERO },
            Phase::Stopping { until: Some(t) } if now >= t => Phase::Idle,
            p => p,
        }
    }

    /// Channel `ch` (1-based) at `now`.
    pub fn view(&self, ch: u32, now: Instant) -> Option<ChannelView> {
        let c = self.channels.get(ch.checked_sub(1)? as usize)?;
        Some(match Self::settle(c.phase, now) {
            Phase::Idle | Phase::Starting { .. } => ChannelView { state: ChannelState::Idle, uptime: None },
            Phase::Stopping { .. } => ChannelView { state: ChannelState::Stopping, uptime: None },
            Phase::Running { since, base } => {
                ChannelView { state: ChannelState::Running, uptime: Some(base + now.saturating_duration_since(since)) }
            }
        })
    }

    /// Starts channel `ch`: it shows `idle` for `delay`, then runs from zero
    /// uptime. A running channel keeps running untouched. `false` when
    /// there is no such channel.
    pub fn start(&mut self, ch: u32, now: Instant, delay: Duration) -> bool {
        let Some(c) = ch.checked_sub(1).and_then(|i| self.channels.get_mut(i as usize)) else {
            return false;
        };
        c.phase = match Self::settle(c.phase, now) {
            running @ Phase::Running { .. } => running,
            starting @ Phase::Starting { .. } => starting,
            Phase::Idle | Phase::Stopping { .. } => Phase::Starting { at: now + delay },
        };
        true
    }

    /// Stops channel `ch`: a running (or starting) channel shows `stopping`
    /// for `stopping` (forever when `None`), then `idle`; an idle channel
    /// stays idle. `false` when there is no such channel.
    pub fn stop(&mut self, ch: u32, now: Instant, stopping: Option<Duration>) -> bool {
        let Some(c) = ch.checked_sub(1).and_then(|i| self.channels.get_mut(i as usize)) else {
            return false;
        };
        c.phase = match Self::settle(c.phase, now) {
            Phase::Idle => Phase::Idle,
            Phase::Stopping { until } => Phase::Stopping { until },
            Phase::Starting { .. } | Phase::Running { .. } => Phase::Stopping { until: stopping.map(|d| now + d) },
        };
        true
    }

    /// Lets channels stuck in `stopping` finish: they become idle after
    /// `stopping` from `now`.
    pub fn release_stuck(&mut self, now: Instant, stopping: Duration) {
        for c in &mut self.channels {
            if c.phase == (Phase::Stopping { until: None }) {
                c.phase = Phase::Stopping { until: Some(now + stopping) };
            }
        }
    }

    /// The `/status` body at `now`; `elapsed` (time since the fleet started)
    /// drives the jitter, which changes every half second. Channels that
    /// were running before `stalled_at` show 0 fps and the uptime they had
    /// then (see `Fault::Stalled`).
    pub fn status_json(&self, now: Instant, elapsed: Duration, stalled_at: Option<Instant>) -> String {
        let tick = (elapsed.as_millis() / 500) as u64;
        let mut out = String::with_capacity(64 + self.channels.len() * 56 + self.cores as usize * 4);
        out.push_str("{\"channels\":[");
        let mut running = 0u32;
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let view = self.view(i as u32 + 1, now).unwrap_or(ChannelView { state: ChannelState::Idle, uptime: None });
            out.push_str("{\"state\":\"");
            out.push_str(view.state.as_str());
            out.push_str("\",\"status\":\"");
            let stalled = match (Self::settle(c.phase, now), stalled_at) {
                (Phase::Running { since, base }, Some(at)) if since < at => {
                    Some(base + at.saturating_duration_since(since))
                }
                _ => None,
            };
            if let Some(up) = stalled {
                // Still "running", going nowhere; no load on the CPU.
                write_clock(&mut out, up);
                out.push_str("0fps@0Kbps");
            } else if let Some(up) = view.uptime {
                running += 1;
                let j = hash(&[self.seed, i as u64, tick]);
                write_status(&mut out, up, c.fps, c.kbps, j);
            }
            out.push_str("\"}");
        }
        out.push_str("],\"cpu\":[");
        let load = 5.0 + 85.0 * f64::from(running) / self.channels.len().max(1) as f64;
        for core in 0..self.cores {
            if core > 0 {
                out.push(',');
            }
            let j = unit(hash(&[self.seed, 1000 + u64::from(core), tick]));
            let pct = (load + (j - 0.5) * 20.0).clamp(0.0, 100.0).round() as u32;
            let _ = write!(out, "{pct}");
        }
        out.push_str("]}");
        out
    }
}

/// `HH:MM:SS ` of an uptime.
fn write_clock(out: &mut String, up: Duration) {
    let s = up.as_secs();
    let _ = write!(out, "{:02}:{:02}:{:02} ", s / 3600, (s / 60) % 60, s % 60);
}

/// `HH:MM:SS <fps>fps@<kbps>Kbps` with a little jitter from `j`.
fn write_status(out: &mut String, up: Duration, fps: f64, kbps: f64, j: u64) {
    write_clock(out, up);
    // Mostly the nominal rate, now and then a frame or so less.
    let dip = if j.is_multiple_of(5) { 1.0 } else { 0.0 };
    if fps.fract() == 0.0 {
        let _ = write!(out, "{}fps", (fps - dip) as u32);
    } else {
        let _ = write!(out, "{:.2}fps", fps - dip * 0.5);
    }
    let k = kbps * (0.95 + 0.1 * unit(mix(j)));
    let _ = write!(out, "@{}Kbps", k.round() as u32);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(running: f64) -> (ServerModel, Instant) {
        let now = Instant::now();
        (ServerModel::new(4, 8, running, 42, now), now)
    }

    fn state(m: &ServerModel, ch: u32, now: Instant) -> ChannelState {
        m.view(ch, now).map(|v| v.state).unwrap_or(ChannelState::Other("none".into()))
    }

    #[test]
    fn initial_fraction_is_respected_at_the_extremes() {
        let (all, now) = model(1.0);
        let (none, _) = model(0.0);
        for ch in 1..=4 {
            assert_eq!(state(&all, ch, now), ChannelState::Running);
            assert_eq!(state(&none, ch, now), ChannelState::Idle);
        }
        assert!(all.view(0, now).is_none());
        assert!(all.view(5, now).is_none());
    }

    #[test]
    fn start_waits_for_the_delay_then_runs_from_zero() {
        let (mut m, t0) = model(0.0);
        assert!(m.start(2, t0, Duration::from_millis(200)));
        assert_eq!(state(&m, 2, t0 + Duration::from_millis(199)), ChannelState::Idle);
        let v = m.view(2, t0 + Duration::from_millis(1200)).unwrap();
        assert_eq!(v.state, ChannelState::Running);
        assert_eq!(v.uptime, Some(Duration::from_secs(1)));
        assert!(!m.start(5, t0, Duration::ZERO));
    }

    #[test]
    fn stop_shows_stopping_then_idle() {
        let (mut m, t0) = model(1.0);
        assert!(m.stop(1, t0, Some(Duration::from_millis(1500))));
        assert_eq!(state(&m, 1, t0 + Duration::from_millis(1499)), ChannelState::Stopping);
        assert_eq!(state(&m, 1, t0 + Duration::from_millis(1500)), ChannelState::Idle);
        // Stopping an idle channel leaves it idle.
        let later = t0 + Duration::from_secs(2);
        assert!(m.stop(1, later, Some(Duration::from_secs(9))));
        assert_eq!(state(&m, 1, later), ChannelState::Idle);
    }

    #[test]
    fn stuck_stopping_lasts_until_released() {
        let (mut m, t0) = model(1.0);
        m.stop(3, t0, None);
        let far = t0 + Duration::from_secs(3600);
        assert_eq!(state(&m, 3, far), ChannelState::Stopping);
        m.release_stuck(far, Duration::from_secs(1));
        assert_eq!(state(&m, 3, far + Duration::from_secs(1)), ChannelState::Idle);
    }

    #[test]
    fn start_keeps_a_running_channel_and_uptime_advances() {
        let (mut m, t0) = model(1.0);
        let before = m.view(1, t0).unwrap().uptime.unwrap();
        m.start(1, t0, Duration::from_secs(5));
        let after = m.view(1, t0 + Duration::from_secs(3)).unwrap();
        assert_eq!(after.state, ChannelState::Running);
        assert_eq!(after.uptime, Some(before + Duration::from_secs(3)));
    }

    #[test]
    fn status_json_parses_and_matches_the_model() {
        let (mut m, t0) = model(1.0);
        m.stop(4, t0, Some(Duration::from_secs(1)));
        let body = m.status_json(t0, Duration::ZERO, None);
        let status = ipvtl_core::parse_status(body.as_bytes()).unwrap();
        assert_eq!(status.channels.len(), 4);
        assert_eq!(status.cpu.len(), 8);
        assert_eq!(status.channels[3].state, ChannelState::Stopping);
        assert_eq!(status.channels[3].status, "");
        let stats = status.channels[0].stats.expect("running channel has stats");
        assert!((20.0..=50.0).contains(&stats.fps), "{stats:?}");
        assert!((1800.0..=6500.0).contains(&stats.kbps), "{stats:?}");
        assert!(status.cpu.iter().all(|c| (0.0..=100.0).contains(c)));
    }
}
