//! [`Settings`]: everything a [`crate::Cluster`] can be tuned with.

use std::time::Duration;

use ipvtl_core::{ActionConfig, FleetConfig, PollerConfig};

use crate::error::ClientError;
use crate::transport::{TransportOptions, DEFAULT_BODY_LIMIT};

/// Cluster settings. `Settings::default()` suits a fleet of a few thousand
/// servers on a LAN.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Time between sweep starts.
    pub interval: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Sweep polls in flight at most.
    pub concurrency: usize,
    /// Refreshes in flight at most (a lane beside the sweep's).
    pub priority_concurrency: usize,
    /// Longest a failing server is left out of sweeps.
    pub backoff_max: Duration,
    /// Failures in a row before a server is offline (or error).
    pub offline_after: u32,
    /// Bound from `stop` until the channel is idle.
    pub stop_timeout: Duration,
    /// Bound from `start` until the channel is running.
    pub start_timeout: Duration,
    /// Time between checks while an action watches a channel.
    pub watch_interval: Duration,
    /// Largest `/status` body accepted.
    pub body_limit: u64,
    /// Sweep automatically every `interval` (otherwise only on `poll_all`).
    pub background: bool,
    /// Events buffered per subscriber before the oldest are dropped for it.
    pub event_buffer: usize,
}

impl Default for Settings {
    fn default() -> Self {
        let poller = PollerConfig::default();
        let action = ActionConfig::default();
        Settings {
            interval: poller.interval,
            timeout: poller.timeout,
            concurrency: poller.max_concurrent,
            priority_concurrency: poller.max_priority,
            backoff_max: poller.backoff_max,
            offline_after: poller.offline_after,
            stop_timeout: action.stop_timeout,
            start_timeout: action.start_timeout,
            watch_interval: action.watch_interval,
            body_limit: DEFAULT_BODY_LIMIT,
            background: true,
            event_buffer: 4096,
        }
    }
}

impl Settings {
    /// Checks ranges: positive durations and counts.
    pub fn validate(&self) -> Result<(), ClientError> {
        let positive = [
            ("interval", self.interval),
            ("timeout", self.timeout),
            ("stop_timeout", self.stop_timeout),
            ("start_timeout", self.start_timeout),
            ("watch_interval", self.watch_interval),
        ];
        for (name, d) in positive {
            if d.is_zero() {
                return Err(ClientError::Settings(format!("{name} must be greater than zero")));
            }
        }
        if self.concurrency == 0 || self.priority_concurrency == 0 {
            return Err(ClientError::Settings("concurrency must be at least 1".into()));
        }
        if self.offline_after == 0 {
            return Err(ClientError::Settings("offline_after must be at least 1".into()));
        }
        if self.body_limit == 0 || self.event_buffer == 0 {
            return Err(ClientError::Settings("body_limit and event_buffer must be at least 1".into()));
        }
        Ok(())
    }

    /// The core machines' configuration.
    pub fn fleet_config(&self) -> FleetConfig {
        FleetConfig {
            poller: PollerConfig {
                interval: self.interval,
                timeout: self.timeout,
                max_concurrent: self.concurrency,
                max_priority: self.priority_concurrency,
                backoff_max: self.backoff_max,
                offline_after: self.offline_after,
                ..PollerConfig::default()
            },
            action: ActionConfig {
                stop_timeout: self.stop_timeout,
                start_timeout: self.start_timeout,
                watch_interval: self.watch_interval,
                request_timeout: self.timeout,
            },
        }
    }

    /// The HTTP transport's options.
    pub fn transport_options(&self) -> TransportOptions {
        TransportOptions {
            body_limit: self.body_limit,
            connect_timeout: self.timeout,
            connection_cache: self.concurrency.saturating_mul(2).max(64),
        }
    }
}
