//! How a simulated fleet is laid out and how its servers behave.

use std::net::SocketAddr;
use std::time::Duration;

/// How the servers of a fleet are addressed on loopback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Addressing {
    /// Each server on its own address `127.20.x.y` (`y` skips 0 and 255), all
    /// on one port: [`SimConfig::port`], or a free port picked at start.
    #[default]
    DistinctIps,
    /// Every server on `127.0.0.1`, each on its own port: consecutive ports
    /// from [`SimConfig::port`] when set, ephemeral ports otherwise.
    DistinctPorts,
}

/// The two shapes of `servers.json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonForm {
    /// A JSON array of servers.
    #[default]
    Array,
    /// `{"servers": [...]}`.
    Object,
}

/// Everything that shapes a simulated fleet. Start from
/// [`SimConfig::default`] and adjust the fields or use the `with_*` helpers.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SimConfig {
    /// Number of servers.
    pub count: usize,
    /// Channels per server.
    pub channels: u32,
    /// CPU cores per server (entries of `cpu` in `/status`).
    pub cores: u32,
    /// How servers are addressed.
    pub addressing: Addressing,
    /// The shared port ([`Addressing::DistinctIps`]) or the first port
    /// ([`Addressing::DistinctPorts`]); `None` picks free ports.
    pub port: Option<u16>,
    /// Share of channels running at start, `0.0..=1.0`.
    pub initial_running: f64,
    /// How long a stopped channel shows `stopping` before `idle`.
    pub stopping_time: Duration,
    /// How long a started channel stays `idle` before `running`.
    pub start_delay: Duration,
    /// Seed of every random choice (initial states, jitter, fault fractions).
    pub seed: u64,
    /// Where the control endpoint listens; `None` is `127.0.0.1` on a free
    /// port. It has no authentication, so only loopback addresses are taken.
    pub control: Option<SocketAddr>,
    /// Executor threads serving the fleet.
    pub threads: usize,
    /// How long a server keeps an idle (or half-sent) connection open
    /// waiting for a request. Keeps file descriptors bounded when a client
    /// holds connections to thousands of servers.
    pub idle_timeout: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            count: 10,
            channels: 4,
            cores: 8,
            addressing: Addressing::DistinctIps,
            port: None,
            initial_running: 0.75,
            stopping_time: Duration::from_millis(1500),
            start_delay: Duration::from_millis(200),
            seed: 1,
            control: None,
            threads: 2,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

impl SimConfig {
    /// The default configuration with `count` servers.
    pub fn new(count: usize) -> Self {
        SimConfig { count, ..SimConfig::default() }
    }

    /// The same with `channels` channels per server.
    pub fn with_channels(mut self, channels: u32) -> Self {
        self.channels = channels;
        self
    }

    /// The same with `cores` cores per server.
    pub fn with_cores(mut self, cores: u32) -> Self {
        self.cores = cores;
        self
    }

    /// The same with another addressing.
    pub fn with_addressing(mut self, addressing: Addressing) -> Self {
        self.addressing = addressing;
        self
    }

    /// The same on a fixed port (see [`SimConfig::port`]).
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The same with another share of channels running at start.
    pub fn with_initial_running(mut self, fraction: f64) -> Self {
        self.initial_running = fraction;
        self
    }

    /// The same with another `stopping` duration.
    pub fn with_stopping_time(mut self, d: Duration) -> Self {
        self.stopping_time = d;
        self
    }

    /// The same with another start delay.
    pub fn with_start_delay(mut self, d: Duration) -> Self {
        self.start_delay = d;
        self
    }

    /// The same with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The same with another idle connection timeout.
    pub fn with_idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// The same with the control endpoint on `addr`.
    pub fn with_control(mut self, addr: SocketAddr) -> Self {
        self.control = Some(addr);
        self
    }

    /// Width of the zero-padded number in server ids: the digits of `count`,
    /// at least 4.
    pub(crate) fn id_width(&self) -> usize {
        self.count.to_string().len().max(4)
    }

    /// Checks the values that would make no sense.
    pub(crate) fn validate(&self) -> std::io::Result<()> {
        let bad = |msg: &str| Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg.to_string()));
        if self.count == 0 {
            return bad("count must be at least 1");
        }
        if self.channels == 0 {
            return bad("channels must be at least 1");
        }
        if self.cores == 0 {
            return bad("cores must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.initial_running) {
            return bad("initial_running must be within 0..=1");
        }
        if self.addressing == Addressing::DistinctIps && self.count > 254 * 256 {
            return bad("at most 65024 servers with distinct addresses");
        }
        if self.control.is_some_and(|a| !a.ip().is_loopback()) {
            return bad("the control endpoint must listen on a loopback address");
        }
        if let (Addressing::DistinctPorts, Some(p)) = (self.addressing, self.port) {
            if p == 0 || usize::from(p) + self.count > 65536 {
                return bad("port range does not fit below 65536");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_width_is_at_least_four() {
        assert_eq!(SimConfig::new(10).id_width(), 4);
        assert_eq!(SimConfig::new(10_000).id_width(), 5);
        assert_eq!(SimConfig::new(123_456).id_width(), 6);
    }

    #[test]
    fn validate_refuses_nonsense() {
        assert!(SimConfig::new(0).validate().is_err());
        assert!(SimConfig::new(1).with_channels(0).validate().is_err());
        assert!(SimConfig::new(1).with_initial_running(1.5).validate().is_err());
        let ports = SimConfig::new(10).with_addressing(Addressing::DistinctPorts).with_port(65530);
        assert!(ports.validate().is_err());
        assert!(SimConfig::new(1).with_control("0.0.0.0:0".parse().unwrap()).validate().is_err());
        assert!(SimConfig::new(1).with_control("127.0.0.1:0".parse().unwrap()).validate().is_ok());
        assert!(SimConfig::new(1).validate().is_ok());
    }
}
