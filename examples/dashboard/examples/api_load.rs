//! Benchmark helper (not a test): `GET /api/servers` throughput and latency.
//! Each of `THREADS` threads keeps one connection alive and requests the
//! list back to back for `SECONDS`; prints one JSON line.
//!
//! `api_load ADDR THREADS SECONDS`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn get(reader: &mut BufReader<TcpStream>, addr: &str) -> std::io::Result<usize> {
    let request = format!("GET /api/servers HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    reader.get_mut().write_all(request.as_bytes())?;
    let mut line = String::new();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(length)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, threads, seconds] = args.as_slice() else {
        eprintln!("usage: api_load ADDR THREADS SECONDS");
        std::process::exit(2);
    };
    let threads: usize = threads.parse().expect("THREADS");
    let run = Duration::from_secs(seconds.parse().expect("SECONDS"));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(TcpStream::connect(&addr).expect("connect"));
                let mut latencies = Vec::new();
                let mut bytes = 0;
                while started.elapsed() < run {
                    let t = Instant::now();
                    bytes = get(&mut reader, &addr).expect("response");
                    latencies.push(t.elapsed().as_secs_f64());
                }
                (latencies, bytes)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut bytes = 0;
    for w in workers {
        let (l, b) = w.join().expect("worker");
        all.extend(l);
        bytes = b;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] * 1000.0;
    println!(
        "{{\"requests\":{},\"rps\":{:.0},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"body_bytes\":{bytes},\"threads\":{threads}}}",
        all.len(),
        all.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    );
}
