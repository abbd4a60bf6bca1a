//! Applying one poll's outcome to a server's state, and the events it
//! implies: health changes, channel changes, stalls, reboots.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec;
use core::time::Duration;

use super::{ChannelTrack, Entry};
use crate::event::{Event, StallReason};
use crate::ids::ChannelId;
use crate::model::{Channel, ChannelState, Health, PollError, Status};
use crate::time::Instant;

/// A running channel whose uptime has not changed for this long is stalled
/// (the status text has a resolution of one second).
const FROZEN_AFTER: Duration = Duration::from_millis(1_500);

pub(super) fn success(
    entry: &mut Entry,
    status: Status,
    latency: Option<Duration>,
    now: Instant,
    events: &mut VecDeque<Event>,
) {
    let server = &entry.config.id;
    let alarms = !entry.state.maintenance;
    if let Some(old) = &entry.state.status {
        for (i, new_ch) in status.channels.iter().enumerate() {
            let Some(old_ch) = old.channels.get(i) else { continue };
            if old_ch.state != new_ch.state {
                events.push_back(Event::ChannelStateChanged {
                    server: server.clone(),
                    channel: ChannelId::from_index(i),
                    from: old_ch.state.clone(),
                    to: new_ch.state.clone(),
                });
            }
        }
        if alarms && rebooted(old, &status) {
            events.push_back(Event::ServerRebooted { server: server.clone() });
        }
    }
    if entry.channels.len() != status.channels.len() {
        entry.channels = vec![ChannelTrack::default(); status.channels.len()];
    }
    entry.state.stalled.clear();
    for (i, ch) in status.channels.iter().enumerate() {
        let track = &mut entry.channels[i];
        let reason = stall_reason(ch, track, now);
        if let Some(reason) = reason {
            entry.state.stalled.insert(ChannelId::from_index(i), reason);
        }
        let uptime = ch.stats.map(|s| s.uptime_s).filter(|_| ch.state == ChannelState::Running);
        track.see_uptime(uptime, now);
        let was = core::mem::replace(&mut track.stalled, reason.is_some());
        if let (Some(reason), false, true) = (reason, was, alarms) {
            events.push_back(Event::ChannelStalled {
                server: server.clone(),
                channel: ChannelId::from_index(i),
                reason,
            });
        }
    }
    set_health(entry, Health::Online, None, events);
    let state = &mut entry.state;
    state.status = Some(Arc::new(status));
    state.last_ok_at = Some(now);
    state.last_poll_at = Some(now);
    if latency.is_some() {
        state.latency = latency;
    }
    state.consecutive_failures = 0;
    state.error = None;
    // A server that answers is no longer backed off.
    entry.skip_until_sweep = 0;
}

pub(super) fn failure(
    entry: &mut Entry,
    error: PollError,
    latency: Duration,
    now: Instant,
    offline_after: u32,
    events: &mut VecDeque<Event>,
) {
    let state = &mut entry.state;
    state.consecutive_failures = state.consecutive_failures.saturating_add(1);
    state.last_poll_at = Some(now);
    state.latency = Some(latency);
    state.error = Some(error.clone());
    if state.consecutive_failures >= offline_after.max(1) {
        let to = if error.is_unreachable() { Health::Offline } else { Health::Error };
        set_health(entry, to, Some(error), events);
    }
}

fn set_health(entry: &mut Entry, to: Health, error: Option<PollError>, events: &mut VecDeque<Event>) {
    entry.state.health = to;
    if !entry.state.maintenance {
        announce_health(entry, error, events);
    }
}

/// Emits the change from the last announced health to the current one, if
/// any (also used when maintenance ends, to catch up silently made changes).
pub(super) fn announce_health(entry: &mut Entry, error: Option<PollError>, events: &mut VecDeque<Event>) {
    let to = entry.state.health;
    let from = core::mem::replace(&mut entry.announced, to);
    if from != to {
        events.push_back(Event::HealthChanged { server: entry.config.id.clone(), from, to, error });
    }
}

fn stall_reason(ch: &Channel, track: &ChannelTrack, now: Instant) -> Option<StallReason> {
    if ch.state != ChannelState::Running {
        return None;
    }
    let stats = ch.stats?;
    if stats.fps <= 0.0 {
        return Some(StallReason::ZeroFps);
    }
    let (uptime, since) = track.uptime()?;
    (uptime == stats.uptime_s as u32 && now.saturating_since(since) >= FROZEN_AFTER)
        .then_some(StallReason::UptimeFrozen)
}

/// Every channel running in both observations went backwards in uptime.
fn rebooted(old: &Status, new: &Status) -> bool {
    let mut compared = 0;
    for (o, n) in old.channels.iter().zip(&new.channels) {
        if o.state != ChannelState::Running || n.state != ChannelState::Running {
            continue;
        }
        let (Some(os), Some(ns)) = (o.stats, n.stats) else { continue };
        if ns.uptime_s >= os.uptime_s {
            return false;
        }
        compared += 1;
    }
    compared > 0
}
