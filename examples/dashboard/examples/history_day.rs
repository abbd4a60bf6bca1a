//! A simulated stretch of stored history, for `scripts/bench`: `N` servers
//! polled every 10 s for `HOURS` hours, written into a fresh SQLite store
//! the way the dashboard writes it (one transaction per round, both steps,
//! the default keeps), then the file's size. Prints one JSON line.
//!
//! `cargo run --release -p ipvtl-dashboard --example history_day -- PATH N HOURS`

use std::time::Instant;

use ipvtl_dashboard::store::{HistoryRetention, HistorySample, Store};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, n, hours] = args.as_slice() else {
        eprintln!("usage: history_day PATH N HOURS");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("N: a number of servers");
    let hours: f64 = hours.parse().expect("HOURS: a number of hours");
    let rounds = (hours * 360.0).round() as i64;
    let keep = HistoryRetention::default().keep();
    let ids: Vec<String> = (0..n).map(|i| format!("sim-{i:05}")).collect();
    let started = Instant::now();
    smol::block_on(async {
        let store = Store::open(&format!("sqlite:{path}")).await.expect("the store opens");
        let t0: i64 = 1_800_000_000;
        for r in 0..rounds {
            let at = t0 + r * 10;
            let samples: Vec<HistorySample> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| HistorySample {
                    server_id: id.as_str().into(),
                    at,
                    cpu_avg: Some(((i as i64 + r) % 100) as f64),
                    running_channels: (i % 4) as u64,
                    health: "online".into(),
                })
                .collect();
            store.record_history(&samples, &keep, at).await.expect("written");
        }
    });
    let size = |p: &str| std::fs::metadata(p).map_or(0, |m| m.len());
    let bytes = size(path) + size(&format!("{path}-wal"));
    println!(
        "{{\"servers\": {n}, \"hours\": {hours}, \"rounds\": {rounds}, \"bytes\": {bytes}, \"write_s\": {:.1}}}",
        started.elapsed().as_secs_f64()
    );
}
