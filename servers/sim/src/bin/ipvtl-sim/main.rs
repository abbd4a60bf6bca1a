//! `ipvtl-sim`: run a simulated IPVTL fleet on loopback until killed.

#![forbid(unsafe_code)]

mod cli;

use std::io::Write;
use std::process::ExitCode;

use ipvtl_sim::{Addressing, SimFleet};

fn main() -> ExitCode {
    let opts = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Parsed::Run(o)) => o,
        Ok(cli::Parsed::Help) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("ipvtl-sim: {why}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let fleet = match SimFleet::start(opts.config) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ipvtl-sim: cannot start the fleet: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut summary = Vec::new();
    for (fault, fraction) in &opts.faults {
        let ids = fleet.set_fault_fraction(*fault, *fraction);
        summary.push(format!("  fault {fault}: {} servers ({})", ids.len(), preview(&ids)));
    }
    if let Some(path) = &opts.write {
        if let Err(e) = fleet.write_servers_json(path, opts.form) {
            eprintln!("ipvtl-sim: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        summary.push(format!("  wrote {}", path.display()));
    }

    let servers = fleet.servers();
    let (first, last) = (&servers[0], &servers[servers.len() - 1]);
    let layout = match fleet.config().addressing {
        Addressing::DistinctIps => format!("{} .. {} on port {}", first.host, last.host, first.port),
        _ if fleet.config().port.is_some() => format!("127.0.0.1 ports {} .. {}", first.port, last.port),
        _ => "127.0.0.1, ephemeral ports".to_string(),
    };
    let c = fleet.config();
    let mut out = std::io::stdout().lock();
    // The control line comes first so scripts can read it.
    let _ = writeln!(out, "control http://{}", fleet.control_addr());
    let _ = writeln!(
        out,
        "ipvtl-sim: {} servers ({}), {} channels and {} cores each, seed {}",
        servers.len(),
        layout,
        c.channels,
        c.cores,
        c.seed
    );
    for line in summary {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "running until killed");
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::park();
    }
}

/// The first few ids, then how many more.
fn preview(ids: &[String]) -> String {
    let shown: Vec<&str> = ids.iter().take(5).map(String::as_str).collect();
    match ids.len() {
        n if n > 5 => format!("{}, … {} more", shown.join(", "), n - 5),
        _ => shown.join(", "),
    }
}
