//! Shared set-up for the client's integration tests: a simulated fleet on
//! loopback and a cluster over it.

#![allow(dead_code)]

use std::time::Duration;

use ipvtl_client::{Cluster, Settings};
use ipvtl_sim::{SimConfig, SimFleet};

/// Settings for tests: no background sweeps (tests drive them), short
/// timeouts, one failure is enough to classify.
pub fn settings() -> Settings {
    Settings {
        background: false,
        timeout: Duration::from_millis(1_500),
        offline_after: 1,
        stop_timeout: Duration::from_secs(10),
        start_timeout: Duration::from_secs(10),
        watch_interval: Duration::from_millis(50),
        ..Settings::default()
    }
}

pub fn sim(count: usize) -> SimFleet {
    let config = SimConfig::new(count)
        .with_stopping_time(Duration::from_millis(300))
        .with_start_delay(Duration::from_millis(100));
    SimFleet::start(config).expect("simulator starts on loopback")
}

pub fn cluster(sim: &SimFleet, settings: Settings) -> Cluster {
    Cluster::new(sim.servers(), settings).expect("cluster starts")
}
