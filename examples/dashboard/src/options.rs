//! Command-line flags with the original tool's environment variables as
//! fallbacks (a flag wins over the environment).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use ipvtl_client::Settings;

/// Servers in the demo fleet when `--demo` has no number.
pub const DEMO_DEFAULT: usize = 20;

/// The help text.
pub const USAGE: &str = "\
ipvtl-dashboard: watch and control a fleet of IPVTL transcoders

usage: ipvtl-dashboard [options]
       ipvtl-dashboard --demo [N]

options (environment fallback in brackets):
  --servers PATH              servers.json to load [IPVTL_SERVERS_CONFIG_PATH] (servers/servers.json)
  --listen ADDR               address to serve on [IPVTL_LISTEN] (127.0.0.1:8000)
  --api-key KEY               require X-API-Key on every mutating request [IPVTL_API_KEY]
  --audit-log PATH            audit log, JSON lines [IPVTL_AUDIT_LOG] (ipvtl-audit.jsonl)
  --poll-interval SECONDS     time between sweeps [IPVTL_POLL_INTERVAL] (5)
  --poll-timeout SECONDS      per-request timeout [IPVTL_POLL_TIMEOUT] (3)
  --poll-max-concurrent N     polls in flight at most [IPVTL_POLL_MAX_CONCURRENT] (64)
  --channel-stop-timeout S    bound from stop until idle [IPVTL_CHANNEL_STOP_TIMEOUT] (30)
  --channel-start-timeout S   bound from start until running [IPVTL_CHANNEL_START_TIMEOUT] (30)
  --cors-origin ORIGIN        allow this exact origin to call the API (repeatable)
  --allow-unauthenticated     serve a non-loopback address without an API key
  --demo [N]                  serve an in-process simulated fleet of N servers (20)
  -h, --help                  this text
  -V, --version               the version
";

/// Everything the binary is told.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The servers file.
    pub servers: PathBuf,
    /// Where to listen.
    pub listen: String,
    /// The API key, if any.
    pub api_key: Option<String>,
    /// The audit log file (`None`: the default for the mode).
    pub audit_log: Option<PathBuf>,
    /// Time between sweeps.
    pub poll_interval: Option<Duration>,
    /// Per-request timeout.
    pub poll_timeout: Option<Duration>,
    /// Polls in flight at most.
    pub poll_max_concurrent: Option<usize>,
    /// Bound from stop until idle.
    pub stop_timeout: Option<Duration>,
    /// Bound from start until running.
    pub start_timeout: Option<Duration>,
    /// Origins allowed for CORS.
    pub cors_origins: Vec<String>,
    /// Serve a non-loopback address without a key.
    pub allow_unauthenticated: bool,
    /// Serve a simulated fleet of this many servers.
    pub demo: Option<usize>,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Serve.
    Run(Box<Options>),
    /// Print the help.
    Help,
    /// Print the version.
    Version,
}

fn seconds(name: &str, s: &str) -> Result<Duration, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{name}: {s:?} is not a number of seconds"))?;
    if !v.is_finite() || v <= 0.0 || v > 86_400.0 {
        return Err(format!("{name}: {s} must be more than 0 and at most 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn count(name: &str, s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{name}: {s:?} must be a whole number of at least 1")),
    }
}

/// Parses the arguments (without the program name); `env` reads an
/// environment variable.
pub fn parse(args: impl IntoIterator<Item = String>, env: impl Fn(&str) -> Option<String>) -> Result<Command, String> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let mut o = Options {
        servers: env("IPVTL_SERVERS_CONFIG_PATH").map_or_else(|| PathBuf::from("servers/servers.json"), PathBuf::from),
        listen: env("IPVTL_LISTEN").unwrap_or_else(|| "127.0.0.1:8000".into()),
        api_key: env("IPVTL_API_KEY"),
        audit_log: env("IPVTL_AUDIT_LOG").map(PathBuf::from),
        poll_interval: env("IPVTL_POLL_INTERVAL").map(|v| seconds("IPVTL_POLL_INTERVAL", &v)).transpose()?,
        poll_timeout: env("IPVTL_POLL_TIMEOUT").map(|v| seconds("IPVTL_POLL_TIMEOUT", &v)).transpose()?,
        poll_max_concurrent: env("IPVTL_POLL_MAX_CONCURRENT")
            .map(|v| count("IPVTL_POLL_MAX_CONCURRENT", &v))
            .transpose()?,
        stop_timeout: env("IPVTL_CHANNEL_STOP_TIMEOUT")
            .map(|v| seconds("IPVTL_CHANNEL_STOP_TIMEOUT", &v))
            .transpose()?,
        start_timeout: env("IPVTL_CHANNEL_START_TIMEOUT")
            .map(|v| seconds("IPVTL_CHANNEL_START_TIMEOUT", &v))
            .transpose()?,
        cors_origins: Vec::new(),
        allow_unauthenticated: false,
        demo: None,
    };
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--servers" => o.servers = PathBuf::from(value("--servers")?),
            "--listen" => o.listen = value("--listen")?,
            "--api-key" => o.api_key = Some(value("--api-key")?).filter(|k| !k.is_empty()),
            "--audit-log" => o.audit_log = Some(PathBuf::from(value("--audit-log")?)),
            "--poll-interval" => o.poll_interval = Some(seconds("--poll-interval", &value("--poll-interval")?)?),
            "--poll-timeout" => o.poll_timeout = Some(seconds("--poll-timeout", &value("--poll-timeout")?)?),
            "--poll-max-concurrent" => {
                o.poll_max_concurrent = Some(count("--poll-max-concurrent", &value("--poll-max-concurrent")?)?)
            }
            "--channel-stop-timeout" => {
                o.stop_timeout = Some(seconds("--channel-stop-timeout", &value("--channel-stop-timeout")?)?)
            }
            "--channel-start-timeout" => {
                o.start_timeout = Some(seconds("--channel-start-timeout", &value("--channel-start-timeout")?)?)
            }
            "--cors-origin" => {
                let origin = value("--cors-origin")?;
                if origin == "*" || !(origin.starts_with("http://") || origin.starts_with("https://")) {
                    return Err(format!("--cors-origin: {origin:?} must be an exact origin like https://ops.example"));
                }
                o.cors_origins.push(origin.trim_end_matches('/').to_string());
            }
            "--allow-unauthenticated" => o.allow_unauthenticated = true,
            "--demo" => {
                let n = match inline {
                    Some(v) => count("--demo", &v)?,
                    None => match args.peek() {
                        Some(next) if !next.starts_with('-') => {
                            let next = args.next().unwrap_or_default();
                            count("--demo", &next)?
                        }
                        _ => DEMO_DEFAULT,
                    },
                };
                o.demo = Some(n);
            }
            other => return Err(format!("unknown option {other:?} (see --help)")),
        }
    }
    Ok(Command::Run(Box::new(o)))
}

impl Options {
    /// The cluster settings these options ask for.
    pub fn settings(&self) -> Settings {
        let d = Settings::default();
        Settings {
            interval: self.poll_interval.unwrap_or(d.interval),
            timeout: self.poll_timeout.unwrap_or(d.timeout),
            concurrency: self.poll_max_concurrent.unwrap_or(d.concurrency),
            stop_timeout: self.stop_timeout.unwrap_or(d.stop_timeout),
            start_timeout: self.start_timeout.unwrap_or(d.start_timeout),
            ..d
        }
    }

    /// The listen address, resolved.
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        let mut addrs =
            self.listen.to_socket_addrs().map_err(|e| format!("--listen {:?}: not an address: {e}", self.listen))?;
        addrs.next().ok_or_else(|| format!("--listen {:?}: resolves to no address", self.listen))
    }

    /// Refuses a non-loopback address without a key, unless allowed.
    pub fn check_exposure(&self, addr: SocketAddr) -> Result<(), String> {
        if addr.ip().is_loopback() || self.api_key.is_some() || self.allow_unauthenticated {
            return Ok(());
        }
        Err(format!(
            "refusing to listen on {addr} without an API key: anyone who can reach it could stop channels. \
             Set IPVTL_API_KEY (or --api-key), listen on 127.0.0.1, or pass --allow-unauthenticated"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Options, String> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let cmd =
            parse(args.iter().map(|s| s.to_string()), |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))?;
        match cmd {
            Command::Run(o) => Ok(*o),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_env_and_flags() {
        let o = run(&[], &[]).unwrap();
        assert_eq!(o.servers, PathBuf::from("servers/servers.json"));
        assert_eq!(o.listen, "127.0.0.1:8000");
        let o =
            run(&["--listen", "127.0.0.1:9000"], &[("IPVTL_LISTEN", "127.0.0.1:1"), ("IPVTL_POLL_INTERVAL", "0.5")])
                .unwrap();
        assert_eq!(o.listen, "127.0.0.1:9000", "a flag wins over the environment");
        assert_eq!(o.poll_interval, Some(Duration::from_millis(500)));
        assert_eq!(o.settings().interval, Duration::from_millis(500));
        let o = run(&["--poll-timeout=2.5", "--channel-stop-timeout", "7"], &[]).unwrap();
        assert_eq!(o.settings().timeout, Duration::from_millis(2500));
        assert_eq!(o.settings().stop_timeout, Duration::from_secs(7));
    }

    #[test]
    fn demo_takes_an_optional_count() {
        assert_eq!(run(&["--demo"], &[]).unwrap().demo, Some(DEMO_DEFAULT));
        assert_eq!(run(&["--demo", "12"], &[]).unwrap().demo, Some(12));
        assert_eq!(run(&["--demo", "--listen", "127.0.0.1:1"], &[]).unwrap().demo, Some(DEMO_DEFAULT));
        assert!(run(&["--demo", "0"], &[]).is_err());
    }

    #[test]
    fn bad_values_are_refused_with_the_name() {
        assert!(run(&["--poll-interval", "-1"], &[]).unwrap_err().contains("--poll-interval"));
        assert!(run(&[], &[("IPVTL_POLL_TIMEOUT", "abc")]).unwrap_err().contains("IPVTL_POLL_TIMEOUT"));
        assert!(run(&["--cors-origin", "*"], &[]).is_err());
        assert!(run(&["--frobnicate"], &[]).unwrap_err().contains("--frobnicate"));
        assert!(run(&["--listen"], &[]).is_err());
    }

    #[test]
    fn exposure_needs_a_key_or_explicit_consent() {
        let o = run(&["--listen", "0.0.0.0:8000"], &[]).unwrap();
        assert!(o.check_exposure(o.listen_addr().unwrap()).is_err());
        let o = run(&["--listen", "0.0.0.0:8000", "--allow-unauthenticated"], &[]).unwrap();
        assert!(o.check_exposure(o.listen_addr().unwrap()).is_ok());
        let o = run(&["--listen", "0.0.0.0:8000"], &[("IPVTL_API_KEY", "k")]).unwrap();
        assert!(o.check_exposure(o.listen_addr().unwrap()).is_ok());
        let o = run(&["--listen", "[::1]:8000"], &[]).unwrap();
        assert!(o.check_exposure(o.listen_addr().unwrap()).is_ok());
    }
}
