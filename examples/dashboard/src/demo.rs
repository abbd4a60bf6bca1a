//! `--demo [N]`: a simulated fleet in the same process, with a few faults
//! mixed in so every state shows on the page.

use std::io;
use std::time::Duration;

use ipvtl_sim::{Fault, SimConfig, SimFleet};

/// Starts a fleet of `n` simulated servers on loopback. The second to
/// seventh servers (when there are that many) are hung, down, flapping,
/// answering malformed JSON, stalled (running channels at 0 fps until
/// restarted) and rejecting commands (every start and stop answers 500:
/// healing a channel there fails until it is marked degraded); the first
/// always works. Returns the fleet and
/// the faults given, by server id.
pub fn start(n: usize) -> io::Result<(SimFleet, Vec<(String, &'static str)>)> {
    let config =
        SimConfig::new(n).with_stopping_time(Duration::from_millis(1500)).with_start_delay(Duration::from_millis(1000));
    let sim = SimFleet::start(config)?;
    let faults = [
        (Fault::Hang, "hang"),
        (Fault::Down, "down"),
        (Fault::Flapping { period: Duration::from_secs(20) }, "flapping"),
        (Fault::Malformed, "malformed"),
        (Fault::Stalled, "stalled"),
        (Fault::RejectCommands, "rejecting commands"),
    ];
    let mut given = Vec::new();
    for (id, (fault, name)) in sim.ids().into_iter().skip(1).zip(faults) {
        sim.set_fault(&id, Some(fault));
        given.push((id, name));
    }
    Ok((sim, given))
}
