//! Counters fed by the event pump, and the Prometheus text exposition.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use ipvtl_client::core::ChannelState;
use ipvtl_client::{FleetSnapshot, Health, ReconcilerStatus};

use crate::store::WriteHealth;

/// Poll latency histogram bounds, in seconds.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
pub(crate) struct Metrics {
    inner: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    actions: BTreeMap<(String, String), u64>,
    sweeps: u64,
    last_sweep_s: f64,
    sweep_sum_s: f64,
    latency_buckets: [u64; BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
    sse_dropped: u64,
    heals: BTreeMap<&'static str, u64>,
    heals_degraded: u64,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn action(&self, kind: &str, outcome: &str) {
        *self.lock().actions.entry((kind.to_string(), outcome.to_string())).or_default() += 1;
    }

    pub fn sweep(&self, seconds: f64) {
        let mut c = self.lock();
        c.sweeps += 1;
        c.last_sweep_s = seconds;
        c.sweep_sum_s += seconds;
    }

    /// Sweeps finished so far.
    pub fn sweeps_finished(&self) -> u64 {
        self.lock().sweeps
    }

    /// Sweeps finished, the last one's duration and the total time spent
    /// in them, for `/health`.
    pub fn sweeps(&self) -> serde_json::Value {
        let c = self.lock();
        serde_json::json!({"finished": c.sweeps, "last_duration_s": c.last_sweep_s, "duration_total_s": c.sweep_sum_s})
    }

    pub fn latencies(&self, seconds: &[f64]) {
        let mut c = self.lock();
        for &s in seconds {
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    c.latency_buckets[i] += 1;
                }
            }
            c.latency_count += 1;
            c.latency_sum += s;
        }
    }

    /// A heal ended (`ok`, `failed`) or, in dry run, was planned.
    pub fn heal(&self, outcome: &'static str) {
        *self.lock().heals.entry(outcome).or_default() += 1;
    }

    pub fn heal_degraded(&self) {
        self.lock().heals_degraded += 1;
    }

    pub fn sse_dropped(&self) {
        self.lock().sse_dropped += 1;
    }

    /// Prometheus text format 0.0.4.
    pub fn render(
        &self,
        fleet: &FleetSnapshot,
        reconciler: &ReconcilerStatus,
        sse_clients: usize,
        store: &WriteHealth,
    ) -> String {
        let mut o = String::with_capacity(256 + fleet.servers.len() * 900);
        let out = &mut o;
        header(out, "ipvtl_server_up", "gauge", "1 when the server answered its last poll with a good status.");
        for s in &fleet.servers {
            let up = u8::from(s.state.health == Health::Online);
            let _ = writeln!(out, "ipvtl_server_up{{server=\"{}\"}} {up}", esc(s.config.id.as_str()));
        }
        header(out, "ipvtl_server_health", "gauge", "The server's health, one series per possible value.");
        for s in &fleet.servers {
            for h in [Health::Online, Health::Offline, Health::Error, Health::Unknown] {
                let v = u8::from(s.state.health == h);
                let _ =
                    writeln!(out, "ipvtl_server_health{{server=\"{}\",health=\"{h}\"}} {v}", esc(s.config.id.as_str()));
            }
        }
        header(out, "ipvtl_server_maintenance", "gauge", "1 while the server is in maintenance.");
        for s in &fleet.servers {
            let v = u8::from(s.state.maintenance);
            let _ = writeln!(out, "ipvtl_server_maintenance{{server=\"{}\"}} {v}", esc(s.config.id.as_str()));
        }
        header(out, "ipvtl_cpu_percent", "gauge", "CPU usage per core, last good status.");
        for s in &fleet.servers {
            if let Some(st) = &s.state.status {
                for (i, c) in st.cpu.iter().enumerate() {
                    let _ =
                        writeln!(out, "ipvtl_cpu_percent{{server=\"{}\",core=\"{i}\"}} {c}", esc(s.config.id.as_str()));
                }
            }
        }
        header(out, "ipvtl_cpu_avg_percent", "gauge", "Mean CPU usage over all cores, last good status.");
        for s in &fleet.servers {
            if let Some(avg) = s.state.status.as_ref().and_then(|st| st.cpu_avg()) {
                let _ = writeln!(out, "ipvtl_cpu_avg_percent{{server=\"{}\"}} {avg}", esc(s.config.id.as_str()));
            }
        }
        header(out, "ipvtl_channel_state", "gauge", "1 for the channel's current state.");
        for s in &fleet.servers {
            let Some(st) = &s.state.status else { continue };
            for ch in &st.channels {
                for state in [ChannelState::Idle, ChannelState::Running, ChannelState::Stopping] {
                    let v = u8::from(ch.state == state);
                    let _ = writeln!(
                        out,
                        "ipvtl_channel_state{{server=\"{}\",channel=\"{}\",state=\"{state}\"}} {v}",
                        esc(s.config.id.as_str()),
                        ch.id
                    );
                }
                if let ChannelState::Other(other) = &ch.state {
                    let _ = writeln!(
                        out,
                        "ipvtl_channel_state{{server=\"{}\",channel=\"{}\",state=\"{}\"}} 1",
                        esc(s.config.id.as_str()),
                        ch.id,
                        esc(other)
                    );
                }
            }
        }
        for (name, help, pick) in [
            ("ipvtl_channel_fps", "Frames per second of a running channel.", 0),
            ("ipvtl_channel_kbps", "Output bitrate of a running channel, kbit/s.", 1),
        ] {
            header(out, name, "gauge", help);
            for s in &fleet.servers {
                let Some(st) = &s.state.status else { continue };
                for ch in &st.channels {
                    if let Some(x) = ch.stats {
                        let v = if pick == 0 { x.fps } else { x.kbps };
                        let id = esc(s.config.id.as_str());
                        let _ = writeln!(out, "{name}{{server=\"{id}\",channel=\"{}\"}} {v}", ch.id);
                    }
                }
            }
        }
        header(
            out,
            "ipvtl_channel_stalled",
            "gauge",
            "1 while a running channel looks stalled; reason zero_fps or uptime_frozen.",
        );
        for s in &fleet.servers {
            for (ch, reason) in &s.state.stalled {
                let id = esc(s.config.id.as_str());
                let _ =
                    writeln!(out, "ipvtl_channel_stalled{{server=\"{id}\",channel=\"{ch}\",reason=\"{reason}\"}} 1");
            }
        }
        header(out, "ipvtl_channel_drift", "gauge", "1 while a managed channel drifts from its desired state.");
        for d in &fleet.drifts {
            let _ = writeln!(
                out,
                "ipvtl_channel_drift{{server=\"{}\",channel=\"{}\"}} 1",
                esc(d.server.as_str()),
                d.channel
            );
        }
        header(
            out,
            "ipvtl_channel_degraded",
            "gauge",
            "1 while healing has given up on a channel (its restart limit).",
        );
        for d in fleet.drifts.iter().filter(|d| d.degraded) {
            let _ = writeln!(
                out,
                "ipvtl_channel_degraded{{server=\"{}\",channel=\"{}\"}} 1",
                esc(d.server.as_str()),
                d.channel
            );
        }
        let r = reconciler;
        for (name, help, v) in [
            (
                "ipvtl_channels_managed",
                "Channels with a desired state (not counting servers in maintenance).",
                r.managed,
            ),
            ("ipvtl_channels_drifting", "Managed channels drifting from their desired state.", fleet.drifts.len()),
            ("ipvtl_heals_in_flight", "Heals under way.", r.heals_in_flight),
            ("ipvtl_reconciler_paused", "1 while an operator has paused healing.", usize::from(r.config.paused)),
            ("ipvtl_reconciler_storm", "1 while the storm guard holds every heal.", usize::from(r.storm)),
            ("ipvtl_reconciler_dry_run", "1 while heals are reported, not done.", usize::from(r.config.dry_run)),
        ] {
            header(out, name, "gauge", help);
            let _ = writeln!(out, "{name} {v}");
        }
        let c = self.lock();
        header(out, "ipvtl_heals_total", "counter", "Heals by outcome: ok, failed, or planned (dry run).");
        for outcome in ["ok", "failed", "planned"] {
            let n = c.heals.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(out, "ipvtl_heals_total{{outcome=\"{outcome}\"}} {n}");
        }
        header(out, "ipvtl_heals_degraded_total", "counter", "Channels marked degraded after their restart limit.");
        let _ = writeln!(out, "ipvtl_heals_degraded_total {}", c.heals_degraded);
        header(out, "ipvtl_poll_latency_seconds", "histogram", "Round-trip time of /status polls.");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "ipvtl_poll_latency_seconds_bucket{{le=\"{b}\"}} {}", c.latency_buckets[i]);
        }
        let _ = writeln!(out, "ipvtl_poll_latency_seconds_bucket{{le=\"+Inf\"}} {}", c.latency_count);
        let _ = writeln!(out, "ipvtl_poll_latency_seconds_sum {}", c.latency_sum);
        let _ = writeln!(out, "ipvtl_poll_latency_seconds_count {}", c.latency_count);
        header(out, "ipvtl_actions_total", "counter", "Channel actions finished, by kind and outcome.");
        // Every series from the start (at 0), so `increase()` sees the first.
        let mut actions = c.actions.clone();
        for kind in ["start", "stop", "restart"] {
            for outcome in ["ok", "failed", "refused"] {
                actions.entry((kind.to_string(), outcome.to_string())).or_default();
            }
        }
        for ((kind, outcome), n) in &actions {
            let _ = writeln!(out, "ipvtl_actions_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}");
        }
        header(out, "ipvtl_sweeps_total", "counter", "Sweeps of the whole fleet finished.");
        let _ = writeln!(out, "ipvtl_sweeps_total {}", c.sweeps);
        header(out, "ipvtl_sweep_duration_seconds", "gauge", "Duration of the last finished sweep.");
        let _ = writeln!(out, "ipvtl_sweep_duration_seconds {}", c.last_sweep_s);
        header(out, "ipvtl_sweep_duration_seconds_total", "counter", "Time spent in finished sweeps.");
        let _ = writeln!(out, "ipvtl_sweep_duration_seconds_total {}", c.sweep_sum_s);
        header(out, "ipvtl_servers", "gauge", "Servers configured.");
        let _ = writeln!(out, "ipvtl_servers {}", fleet.servers.len());
        header(out, "ipvtl_sse_clients", "gauge", "Event-stream clients connected.");
        let _ = writeln!(out, "ipvtl_sse_clients {sse_clients}");
        header(out, "ipvtl_sse_dropped_total", "counter", "Event-stream clients cut off for falling behind.");
        let _ = writeln!(out, "ipvtl_sse_dropped_total {}", c.sse_dropped);
        header(
            out,
            "ipvtl_store_up",
            "gauge",
            "1 unless the store's last write (audit, batch, maintenance, history) failed.",
        );
        let _ = writeln!(out, "ipvtl_store_up {}", u8::from(store.ok()));
        header(out, "ipvtl_store_errors_total", "counter", "Writes to the store that failed.");
        let _ = writeln!(out, "ipvtl_store_errors_total {}", store.errors);
        o
    }
}

pub(crate) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, quote, newline).
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
