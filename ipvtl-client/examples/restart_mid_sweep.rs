//! Measures (not a test) a restart issued in the middle of a long sweep of
//! a large simulated fleet: it should take about the channel's own stop
//! time plus a few round-trips, not wait for the sweep.
//!
//! `cargo run --release -p ipvtl-client --example restart_mid_sweep [SERVERS]`

use std::time::{Duration, Instant};

use ipvtl_client::{blocking::Cluster, Settings};
use ipvtl_sim::{Fault, SimConfig, SimFleet};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let stopping = Duration::from_millis(500);
    let sim =
        SimFleet::start(SimConfig::new(n).with_stopping_time(stopping).with_start_delay(Duration::from_millis(100)))
            .expect("simulator starts");
    // Every server but the target answers in 50 ms: a long sweep.
    let ids = sim.ids();
    for id in &ids[1..] {
        sim.set_fault(id, Some(Fault::Slow(Duration::from_millis(50))));
    }
    let settings = Settings { background: false, concurrency: 64, ..Settings::default() };
    let cluster = Cluster::new(sim.servers(), settings).expect("cluster");
    cluster.refresh(&ids[0]).expect("refresh");
    let sweep = {
        let c = cluster.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            c.poll_all().expect("sweep");
            t.elapsed()
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let report = cluster.restart(&ids[0], 1).expect("restart");
    let restart = t.elapsed();
    let sweep = sweep.join().expect("sweep thread");
    println!(
        "{n} servers, sweep {:.2} s; restart issued 0.5 s into it took {} ms (channel stopping time {} ms): {}",
        sweep.as_secs_f64(),
        restart.as_millis(),
        stopping.as_millis(),
        report.summary()
    );
}
