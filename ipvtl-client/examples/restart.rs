//! Restarts one channel and prints the phase timings.
//!
//! ```text
//! cargo run -p ipvtl-client --example restart                          # on a simulated fleet
//! cargo run -p ipvtl-client --example restart -- servers.json edge-1 3 # on your own fleet
//! ```

use ipvtl_client::{blocking::Cluster, ClientError, Event, Settings};
use ipvtl_sim::{SimConfig, SimFleet};

fn main() -> Result<(), ClientError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = Settings { background: false, ..Settings::default() };
    let mut _sim = None;
    let (cluster, server, channel) = match args.as_slice() {
        [path, server, channel] => {
            let channel: u32 =
                channel.parse().map_err(|_| ClientError::Settings(format!("bad channel {channel:?}")))?;
            (Cluster::from_file(path, settings)?, server.clone(), channel)
        }
        [] => {
            let sim = SimFleet::start(SimConfig::new(3)).expect("simulator starts");
            let cluster = Cluster::new(sim.servers(), settings)?;
            let server = sim.ids()[0].clone();
            _sim = Some(sim);
            (cluster, server, 1)
        }
        _ => {
            eprintln!("usage: restart [SERVERS.json SERVER_ID CHANNEL]");
            std::process::exit(2);
        }
    };
    let events = cluster.subscribe();
    let report = cluster.restart(&server, channel);
    while let Some(e) = events.try_recv() {
        if let Event::ChannelStateChanged { server: s, channel: c, from, to } = e {
            println!("  {s} channel {c}: {from} -> {to}");
        }
    }
    let report = report?;
    println!("{}", report.summary());
    for p in &report.phases {
        println!("  {:<13} {:>6} ms", p.phase.as_str(), p.duration.as_millis());
    }
    Ok(())
}
