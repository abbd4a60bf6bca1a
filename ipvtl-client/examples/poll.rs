//! Polls a fleet once and prints a table.
//!
//! ```text
//! cargo run -p ipvtl-client --example poll                 # a simulated fleet of 20
//! cargo run -p ipvtl-client --example poll -- servers.json # your own fleet
//! ```

use std::time::Duration;

use ipvtl_client::{blocking::Cluster, ClientError, Settings};
use ipvtl_sim::{Fault, SimConfig, SimFleet};

fn main() -> Result<(), ClientError> {
    let settings =
        Settings { background: false, timeout: Duration::from_secs(2), offline_after: 1, ..Settings::default() };
    let mut _sim = None;
    let cluster = match std::env::args().nth(1) {
        Some(path) => Cluster::from_file(path, settings)?,
        None => {
            let sim = SimFleet::start(SimConfig::new(20)).expect("simulator starts");
            let ids = sim.ids();
            sim.set_fault(&ids[3], Some(Fault::Down));
            sim.set_fault(&ids[7], Some(Fault::Hang));
            sim.set_fault(&ids[11], Some(Fault::Malformed));
            let cluster = Cluster::new(sim.servers(), settings)?;
            _sim = Some(sim);
            cluster
        }
    };
    let started = std::time::Instant::now();
    let fleet = cluster.poll_all()?;
    println!("{:<12} {:<8} {:>6} {:>8}  {:<40} error", "server", "health", "cpu%", "latency", "channels");
    for s in &fleet.servers {
        let status = s.state.status.as_ref();
        let cpu = status.and_then(|st| st.cpu_avg()).map_or("-".to_string(), |c| format!("{c:.1}"));
        let latency = s.state.latency.map_or("-".to_string(), |l| format!("{} ms", l.as_millis()));
        let channels = status.map_or(String::new(), |st| {
            st.channels.iter().map(|c| format!("{}:{}", c.id, c.state)).collect::<Vec<_>>().join(" ")
        });
        let error = s.state.error.as_ref().map_or(String::new(), |e| e.to_string());
        println!("{:<12} {:<8} {:>6} {:>8}  {:<40} {}", s.config.id, s.state.health, cpu, latency, channels, error);
    }
    let online = fleet.servers.iter().filter(|s| s.state.health == ipvtl_client::Health::Online).count();
    println!("\n{online}/{} online, sweep took {} ms", fleet.servers.len(), started.elapsed().as_millis());
    Ok(())
}
