//! Benchmark helper (not a test): sweeps a fleet `K` times and prints one
//! JSON line with wall time per sweep, CPU seconds per sweep and peak RSS of
//! this process. Driven by `scripts/bench`, which runs the Python baseline
//! against the same simulated fleet in the same run.
//!
//! `sweep_bench SERVERS.json SWEEPS CONCURRENCY`

use std::time::{Duration, Instant};

use ipvtl_client::{blocking::Cluster, Health, Settings};

/// utime + stime of this process in seconds (Linux `/proc`, USER_HZ = 100).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, sweeps, concurrency] = args.as_slice() else {
        eprintln!("usage: sweep_bench SERVERS.json SWEEPS CONCURRENCY");
        std::process::exit(2);
    };
    let sweeps: usize = sweeps.parse().expect("SWEEPS is a number");
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY is a number");
    let settings = Settings { background: false, concurrency, timeout: Duration::from_secs(5), ..Settings::default() };
    let cluster = Cluster::from_file(path, settings).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    // One warm-up sweep opens the connections, as a long-running poller has.
    cluster.poll_all().expect("sweep");
    let cpu0 = cpu_seconds();
    let mut walls = Vec::with_capacity(sweeps);
    let mut online = 0;
    for _ in 0..sweeps {
        let t = Instant::now();
        let fleet = cluster.poll_all().expect("sweep");
        walls.push(t.elapsed().as_secs_f64());
        online = fleet.servers.iter().filter(|s| s.state.health == Health::Online).count();
    }
    let cpu = (cpu_seconds() - cpu0) / sweeps as f64;
    walls.sort_by(f64::total_cmp);
    let median = walls[walls.len() / 2];
    println!(
        "{{\"impl\":\"ipvtl-client\",\"servers\":{},\"online\":{online},\"sweep_s\":{median:.4},\"cpu_s\":{cpu:.4},\"peak_rss_mib\":{:.1}}}",
        cluster.len(),
        peak_rss_mib()
    );
}
