//! Test support: [`SimFleet`], the `ipvtl-sim` simulator on loopback, so
//! scripts in any host language can test themselves (and these bindings)
//! without real transcoders. Not for production use.

use std::sync::Arc;
use std::time::Duration;

use crate::error::IpvtlError;
use crate::records::ServerConfig;

type Result<T> = std::result::Result<T, IpvtlError>;

/// Shapes a simulated fleet; every field left out keeps the simulator's
/// default.
#[derive(Debug, Clone, Default, PartialEq, uniffi::Record)]
pub struct SimOptions {
    /// Channels per server.
    #[uniffi(default = None)]
    pub channels: Option<u32>,
    /// How long a stopped channel shows `stopping` before `idle`.
    #[uniffi(default = None)]
    pub stopping_time_ms: Option<u64>,
    /// How long a started channel stays `idle` before `running`.
    #[uniffi(default = None)]
    pub start_delay_ms: Option<u64>,
    /// Share of channels running at start, 0.0 to 1.0.
    #[uniffi(default = None)]
    pub initial_running: Option<f64>,
    /// Seed of every random choice.
    #[uniffi(default = None)]
    pub seed: Option<u64>,
}

/// One channel command a simulated server received.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SimCommand {
    /// 1-based channel number.
    pub channel: u32,
    /// `start` or `stop`.
    pub action: String,
    /// When it arrived, since the fleet started.
    pub at_ms: u64,
}

/// TEST SUPPORT: a simulated IPVTL fleet on loopback (127.x addresses),
/// with fault injection and a record of what each server received. Dropping
/// it (or `shutdown()`) stops every server.
#[derive(uniffi::Object)]
pub struct SimFleet {
    inner: ipvtl_sim::SimFleet,
}

#[uniffi::export]
impl SimFleet {
    /// Starts `count` servers with the simulator's defaults.
    #[uniffi::constructor]
    pub fn new(count: u32) -> Result<Arc<Self>> {
        Self::with_options(count, SimOptions::default())
    }

    /// Starts `count` servers shaped by `options`.
    #[uniffi::constructor]
    pub fn with_options(count: u32, options: SimOptions) -> Result<Arc<Self>> {
        let mut config = ipvtl_sim::SimConfig::new(count as usize);
        if let Some(n) = options.channels {
            config = config.with_channels(n);
        }
        if let Some(ms) = options.stopping_time_ms {
            config = config.with_stopping_time(Duration::from_millis(ms));
        }
        if let Some(ms) = options.start_delay_ms {
            config = config.with_start_delay(Duration::from_millis(ms));
        }
        if let Some(share) = options.initial_running {
            config = config.with_initial_running(share);
        }
        if let Some(seed) = options.seed {
            config = config.with_seed(seed);
        }
        let inner = ipvtl_sim::SimFleet::start(config)
            .map_err(|e| IpvtlError::Simulator(format!("the simulator did not start: {e}")))?;
        Ok(Arc::new(SimFleet { inner }))
    }

    /// The servers, ready for `Cluster(servers)`.
    pub fn servers(&self) -> Vec<ServerConfig> {
        self.inner.servers().iter().map(Into::into).collect()
    }

    /// The server ids, in order.
    pub fn ids(&self) -> Vec<String> {
        self.inner.ids()
    }

    /// Channels per server.
    pub fn channels(&self) -> u32 {
        self.inner.channels()
    }

    /// The server list as `servers.json` text (an array).
    pub fn servers_json(&self) -> String {
        self.inner.servers_json(ipvtl_sim::JsonForm::Array)
    }

    /// Writes the server list as a `servers.json` file (an array).
    pub fn write_servers_json(&self, path: String) -> Result<()> {
        self.inner
            .write_servers_json(&path, ipvtl_sim::JsonForm::Array)
            .map_err(|e| IpvtlError::Io(format!("{path}: {e}")))
    }

    /// The channel's state as the simulator holds it (no HTTP); none for an
    /// unknown server or channel.
    pub fn channel_state(&self, id: String, channel: u32) -> Option<String> {
        self.inner.channel_state(&id, channel).map(|s| s.as_str().to_owned())
    }

    /// Sets a fault (`down`, `hang`, `http500`, `malformed`, `oversized`,
    /// `slow=MS`, `reset`, `flapping=MS`, `stuck_stopping`,
    /// `reject_commands`, `stalled`) or clears it (none).
    pub fn set_fault(&self, id: String, fault: Option<String>) -> Result<()> {
        let fault = match fault {
            Some(text) => Some(text.parse::<ipvtl_sim::Fault>().map_err(|e| IpvtlError::Simulator(e.to_string()))?),
            None => None,
        };
        if self.inner.set_fault(&id, fault) {
            Ok(())
        } else {
            Err(IpvtlError::ServerNotFound(format!("the simulator has no server {id:?}")))
        }
    }

    /// Channel commands the server received, in arrival order.
    pub fn commands(&self, id: String) -> Result<Vec<SimCommand>> {
        let record = self.record(&id)?;
        Ok(record
            .commands
            .iter()
            .map(|c| SimCommand {
                channel: c.channel,
                action: c.action.as_str().to_owned(),
                at_ms: u64::try_from(c.at.as_millis()).unwrap_or(u64::MAX),
            })
            .collect())
    }

    /// Requests of any kind the server received.
    pub fn total_requests(&self, id: String) -> Result<u64> {
        Ok(self.record(&id)?.total_requests)
    }

    /// Forgets what every server received so far.
    pub fn reset_records(&self) {
        self.inner.reset_records()
    }

    /// Stops every server now.
    pub fn shutdown(&self) {
        self.inner.shutdown()
    }
}

impl SimFleet {
    fn record(&self, id: &str) -> Result<ipvtl_sim::ServerRecord> {
        self.inner.record(id).ok_or_else(|| IpvtlError::ServerNotFound(format!("the simulator has no server {id:?}")))
    }
}
