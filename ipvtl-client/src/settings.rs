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
    /// The `User-Agent` header of every request, to tell this client's polls
    /// from another's on a shared fleet (see
    /// [`TransportOptions::user_agent`]); `None` keeps isahc's own.
    pub user_agent: Option<String>,
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
            user_agent: None,
        }
    }
}

/// Settings as given from outside (keyword arguments, a foreign record,
/// flags): `None` means "not given", and takes [`Settings::default`]'s
/// value. Bindings fill this with what their caller passed and never
/// restate a default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SettingsOptions {
    /// See [`Settings::interval`].
    pub interval: Option<Duration>,
    /// See [`Settings::timeout`].
    pub timeout: Option<Duration>,
    /// See [`Settings::concurrency`].
    pub concurrency: Option<usize>,
    /// See [`Settings::priority_concurrency`].
    pub priority_concurrency: Option<usize>,
    /// See [`Settings::backoff_max`].
    pub backoff_max: Option<Duration>,
    /// See [`Settings::offline_after`].
    pub offline_after: Option<u32>,
    /// See [`Settings::stop_timeout`].
    pub stop_timeout: Option<Duration>,
    /// See [`Settings::start_timeout`].
    pub start_timeout: Option<Duration>,
    /// See [`Settings::watch_interval`].
    pub watch_interval: Option<Duration>,
    /// See [`Settings::body_limit`].
    pub body_limit: Option<u64>,
    /// See [`Settings::background`].
    pub background: Option<bool>,
    /// See [`Settings::event_buffer`].
    pub event_buffer: Option<usize>,
}

impl Settings {
    /// The defaults, with what `options` gives in their place; validated.
    pub fn from_options(options: SettingsOptions) -> Result<Self, ClientError> {
        let d = Settings::default();
        let settings = Settings {
            interval: options.interval.unwrap_or(d.interval),
            timeout: options.timeout.unwrap_or(d.timeout),
            concurrency: options.concurrency.unwrap_or(d.concurrency),
            priority_concurrency: options.priority_concurrency.unwrap_or(d.priority_concurrency),
            backoff_max: options.backoff_max.unwrap_or(d.backoff_max),
            offline_after: options.offline_after.unwrap_or(d.offline_after),
            stop_timeout: options.stop_timeout.unwrap_or(d.stop_timeout),
            start_timeout: options.start_timeout.unwrap_or(d.start_timeout),
            watch_interval: options.watch_interval.unwrap_or(d.watch_interval),
            body_limit: options.body_limit.unwrap_or(d.body_limit),
            background: options.background.unwrap_or(d.background),
            event_buffer: options.event_buffer.unwrap_or(d.event_buffer),
            user_agent: d.user_agent,
        };
        settings.validate()?;
        Ok(settings)
    }

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
        if let Some(ua) = &self.user_agent {
            if ua.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
                return Err(ClientError::Settings(format!("user_agent {ua:?} must not contain control characters")));
            }
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

    /// The HTTP transport's options for a fleet of `servers`, in a process
    /// allowed `fd_limit` open files.
    ///
    /// The connection policy keeps one idle connection per server (and one
    /// per priority slot), so that every poll reuses its server's
    /// connection: a cache smaller than the fleet makes each sweep open and
    /// close most connections (a TCP handshake and teardown per poll, and
    /// curl scanning its whole cache for the oldest connection to evict
    /// each time one goes idle). Measured with `./scripts/profile` at 1 000
    /// servers: a cache of 128 (twice the concurrency cap, the former
    /// policy) costs about 316 000 instructions and 122 µs of CPU a poll, a
    /// cache of 1 100 about 268 000 and 68 µs, for about 1.3 KiB more RSS a
    /// server. At most half the descriptors the process may open are kept
    /// idle, leaving the rest to polls in flight and to the program's own
    /// clients; and never fewer than twice the concurrency cap.
    pub fn transport_options(&self, servers: usize, fd_limit: u64) -> TransportOptions {
        let wanted = servers.saturating_add(self.priority_concurrency);
        let allowed = usize::try_from(fd_limit / 2).unwrap_or(usize::MAX);
        TransportOptions {
            body_limit: self.body_limit,
            connect_timeout: self.timeout,
            connection_cache: wanted.min(allowed).max(self.concurrency.saturating_mul(2)).max(64),
            user_agent: self.user_agent.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_not_given_take_the_defaults_and_given_ones_are_checked() {
        assert_eq!(Settings::from_options(SettingsOptions::default()).unwrap(), Settings::default());
        let s = Settings::from_options(SettingsOptions {
            timeout: Some(Duration::from_millis(700)),
            concurrency: Some(9),
            ..SettingsOptions::default()
        })
        .unwrap();
        assert_eq!(
            (s.timeout, s.concurrency, s.interval),
            (Duration::from_millis(700), 9, Settings::default().interval)
        );
        let zero = SettingsOptions { concurrency: Some(0), ..SettingsOptions::default() };
        assert_eq!(Settings::from_options(zero).unwrap_err().kind(), "settings");
    }

    #[test]
    fn one_idle_connection_is_kept_per_server_within_half_the_descriptors() {
        let s = Settings { concurrency: 200, priority_concurrency: 8, ..Settings::default() };
        assert_eq!(s.transport_options(10_000, 1 << 20).connection_cache, 10_008, "every server and priority slot");
        assert_eq!(s.transport_options(10_000, 8_192).connection_cache, 4_096, "half the descriptors at most");
        assert_eq!(s.transport_options(10, 1 << 20).connection_cache, 400, "never under twice the cap");
        assert_eq!(s.transport_options(10_000, 256).connection_cache, 400, "nor under a small limit");
        let small = Settings { concurrency: 4, ..Settings::default() };
        assert_eq!(small.transport_options(3, 1 << 20).connection_cache, 64);
    }

    #[test]
    fn the_user_agent_is_carried_to_the_transport() {
        assert_eq!(Settings::default().transport_options(10, 1 << 20).user_agent, None);
        let s = Settings { user_agent: Some("dash-a".into()), ..Settings::default() };
        assert_eq!(s.transport_options(10, 1 << 20).user_agent.as_deref(), Some("dash-a"));
        assert!(s.validate().is_ok());
        let bad = Settings { user_agent: Some("a\r\nb".into()), ..Settings::default() };
        assert_eq!(bad.validate().unwrap_err().kind(), "settings");
    }
}
