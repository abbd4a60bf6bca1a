//! A tiny hand-written argument parser for `ipvtl-sim`.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipvtl_sim::{Addressing, Fault, JsonForm, SimConfig};

/// The usage text printed on `--help` and on errors.
pub const USAGE: &str = "\
usage: ipvtl-sim [options]

Runs a simulated fleet of IPVTL transcoder servers on loopback until killed.

options:
  --count N               number of servers (default 10)
  --channels N            channels per server (default 4)
  --cores N               CPU cores per server (default 8)
  --addressing ips|ports  127.20.x.y on one port, or 127.0.0.1 on many (default ips)
  --port P                the shared port (ips) or the first port (ports); default: free ports
  --write PATH            write servers.json for the fleet to PATH
  --form array|object     shape of the written servers.json (default array)
  --control ADDR          control endpoint address (default 127.0.0.1:0)
  --fault KIND:FRACTION   give a fault to a fraction of servers (repeatable);
                          KIND is down, hang, http500, malformed, oversized, reset,
                          slow[=MS], flapping[=MS], stuck_stopping, reject_commands,
                          stalled
  --running FRACTION      share of channels running at start (default 0.75)
  --stopping-ms MS        how long a stopped channel shows `stopping` (default 1500)
  --start-delay-ms MS     how long a started channel stays idle (default 200)
  --seed N                seed of every random choice (default 1)
  --threads N             executor threads (default 2)
  --idle-timeout-ms MS    close connections idle this long (default 30000)
  -h, --help              show this help
";

/// What the command line asked for.
#[derive(Debug, PartialEq)]
pub struct Options {
    pub config: SimConfig,
    pub write: Option<PathBuf>,
    pub form: JsonForm,
    pub faults: Vec<(Fault, f64)>,
}

/// The outcome of parsing.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Run(Box<Options>),
    Help,
}

/// Parses the arguments (without the program name). The error is a
/// one-line reason, to print above the usage.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut opts = Options { config: SimConfig::default(), write: None, form: JsonForm::Array, faults: Vec::new() };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(Parsed::Help);
        }
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"));
        let c = &mut opts.config;
        match flag.as_str() {
            "--count" => c.count = number(&flag, &value()?)?,
            "--channels" => c.channels = number(&flag, &value()?)?,
            "--cores" => c.cores = number(&flag, &value()?)?,
            "--addressing" => {
                c.addressing = match value()?.as_str() {
                    "ips" => Addressing::DistinctIps,
                    "ports" => Addressing::DistinctPorts,
                    other => return Err(format!("--addressing: expected ips or ports, got {other:?}")),
                }
            }
            "--port" => c.port = Some(number(&flag, &value()?)?),
            "--write" => opts.write = Some(PathBuf::from(value()?)),
            "--form" => {
                opts.form = match value()?.as_str() {
                    "array" => JsonForm::Array,
                    "object" => JsonForm::Object,
                    other => return Err(format!("--form: expected array or object, got {other:?}")),
                }
            }
            "--control" => {
                let v = value()?;
                c.control = Some(v.parse::<SocketAddr>().map_err(|_| format!("--control: {v:?} is not an address"))?);
            }
            "--fault" => opts.faults.push(fault(&value()?)?),
            "--running" => c.initial_running = fraction(&flag, &value()?)?,
            "--stopping-ms" => c.stopping_time = std::time::Duration::from_millis(number(&flag, &value()?)?),
            "--start-delay-ms" => c.start_delay = std::time::Duration::from_millis(number(&flag, &value()?)?),
            "--seed" => c.seed = number(&flag, &value()?)?,
            "--threads" => c.threads = number(&flag, &value()?)?,
            "--idle-timeout-ms" => c.idle_timeout = std::time::Duration::from_millis(number(&flag, &value()?)?),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if opts.config.count == 0 {
        return Err("--count must be at least 1".into());
    }
    if opts.config.channels == 0 {
        return Err("--channels must be at least 1".into());
    }
    Ok(Parsed::Run(Box::new(opts)))
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: {v:?} is not a valid number"))
}

fn fraction(flag: &str, v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{flag}: {v:?} is not a fraction within 0..=1")),
    }
}

/// `KIND:FRACTION`, e.g. `hang:0.1` or `slow=3000:0.05`.
fn fault(v: &str) -> Result<(Fault, f64), String> {
    let Some((kind, frac)) = v.rsplit_once(':') else {
        return Err(format!("--fault: expected KIND:FRACTION, got {v:?}"));
    };
    let f = kind.parse::<Fault>().map_err(|e| format!("--fault: {e}"))?;
    Ok((f, fraction("--fault", frac)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Parsed::Run(o) => Ok(*o),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn parses_every_flag() {
        let args = "--count 12 --channels=6 --addressing ports --port 20000 --write /tmp/s.json --form object \
                    --control 127.0.0.1:7000 --fault hang:0.1 --fault slow=300:0.5 --seed 9 --stopping-ms 10 \
                    --start-delay-ms 20 --running 0.5 --cores 2 --threads 1 --idle-timeout-ms 500";
        let o = run(&args.split_whitespace().collect::<Vec<_>>()).unwrap();
        let c = &o.config;
        assert_eq!((c.count, c.channels, c.cores, c.seed, c.threads), (12, 6, 2, 9, 1));
        assert_eq!((c.addressing, c.port), (Addressing::DistinctPorts, Some(20000)));
        assert_eq!(c.control, Some("127.0.0.1:7000".parse().unwrap()));
        assert_eq!((c.stopping_time, c.start_delay), (Duration::from_millis(10), Duration::from_millis(20)));
        assert_eq!(c.initial_running, 0.5);
        assert_eq!(c.idle_timeout, Duration::from_millis(500));
        assert_eq!(o.write.as_deref(), Some(std::path::Path::new("/tmp/s.json")));
        assert_eq!(o.form, JsonForm::Object);
        assert_eq!(o.faults, [(Fault::Hang, 0.1), (Fault::Slow(Duration::from_millis(300)), 0.5)]);
    }

    #[test]
    fn refuses_bad_flags() {
        for bad in [
            &["--count"][..],
            &["--count", "x"],
            &["--count", "0"],
            &["--nope"],
            &["--addressing", "dns"],
            &["--form", "yaml"],
            &["--fault", "hang"],
            &["--fault", "hang:2"],
            &["--fault", "boom:0.1"],
            &["--control", "localhost"],
            &["--port", "70000"],
        ] {
            assert!(run(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse(["--help".to_string()]), Ok(Parsed::Help));
    }
}
