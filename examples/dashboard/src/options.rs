//! Command-line flags with the original tool's environment variables as
//! fallbacks (a flag wins over the environment).

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use ipvtl_client::Settings;

use crate::keys::{check_name, Role};
use crate::store::{HistoryRetention, DEFAULT_STORE};

/// Servers in the demo fleet when `--demo` has no number.
pub const DEMO_DEFAULT: usize = 20;

/// The help text.
pub const USAGE: &str = "\
ipvtl-dashboard: watch and control a fleet of IPVTL transcoders

usage: ipvtl-dashboard [options]
       ipvtl-dashboard --demo [N]
       ipvtl-dashboard keys add NAME --role viewer|operator|admin [--store URL]
       ipvtl-dashboard keys list [--store URL]
       ipvtl-dashboard keys revoke NAME [--store URL]

options (environment fallback in brackets):
  --servers PATH              servers.json to load [IPVTL_SERVERS_CONFIG_PATH] (servers/servers.json)
  --listen ADDR               address to serve on [IPVTL_LISTEN] (127.0.0.1:8000)
  --api-key KEY               require X-API-Key on every mutating request [IPVTL_API_KEY]
  --audit-log PATH            the audit log's JSON-lines mirror [IPVTL_AUDIT_LOG] (ipvtl-audit.jsonl)
  --store URL                 where the audit, batches, maintenance, keys and history are kept:
                              sqlite:PATH or postgres://USER:PASS@HOST/DB [IPVTL_STORE]
                              (sqlite:ipvtl.db; with --demo, a temporary store)
  --alerts PATH               alert rules, silences and receivers (TOML; see
                              deploy/alerts.example.toml) [IPVTL_ALERTS] (built-in rules, no receivers)
  --history-keep-10s DURATION how long the store keeps 10 s history points, e.g. 24h, 90m,
                              3600 (seconds), 0 = not kept [IPVTL_HISTORY_KEEP_10S] (24h)
  --history-keep-1m DURATION  the same for 1 min points [IPVTL_HISTORY_KEEP_1M] (30d)
  --poll-interval SECONDS     time between sweeps [IPVTL_POLL_INTERVAL] (5)
  --poll-timeout SECONDS      per-request timeout [IPVTL_POLL_TIMEOUT] (3)
  --poll-max-concurrent N     polls in flight at most [IPVTL_POLL_MAX_CONCURRENT] (64)
  --channel-stop-timeout S    bound from stop until idle [IPVTL_CHANNEL_STOP_TIMEOUT] (30)
  --channel-start-timeout S   bound from start until running [IPVTL_CHANNEL_START_TIMEOUT] (30)
  --cors-origin ORIGIN        allow this exact origin to call the API (repeatable)
  --public-url URL            the address browsers use to reach the dashboard, when a
                              reverse proxy rewrites Host (e.g. https://ops.example) [IPVTL_PUBLIC_URL]
  --trusted-proxy ADDR        believe X-Forwarded-Host / Forwarded: host= from this proxy
                              address or network, e.g. 10.0.0.5 or 10.0.0.0/8 (repeatable)
                              [IPVTL_TRUSTED_PROXIES, comma-separated]
  --allow-unauthenticated     serve a non-loopback address without an API key
  --instance-id ID            share the fleet with the other dashboards on the same PostgreSQL
                              store, as this instance [IPVTL_INSTANCE_ID]
  --cluster                   the same, named after the host and the listen port
  --advertise URL             where the others and people reach this instance [IPVTL_ADVERTISE]
                              (http://LISTEN)
  --shards N                  shards the fleet is cut into, the same on every instance (256)
  --lease-ttl SECONDS         how long a shard's lease lasts unrenewed; an instance that cannot
                              renew stops acting before it ends [IPVTL_LEASE_TTL] (10)
  --demo [N]                  serve an in-process simulated fleet of N servers (20)

keys (work offline or while the dashboard runs on the same store):
  keys add NAME --role ROLE   make a key; its token is printed once and stored only as a hash.
                              viewer reads; operator also acts, runs batches and sets
                              maintenance; admin also reloads the servers file
  keys list                   names, roles and creation times
  keys revoke NAME            the key stops working at once
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
    /// The origin browsers use to reach the dashboard (from `--public-url`).
    pub public_origin: Option<String>,
    /// Proxies whose `X-Forwarded-Host` / `Forwarded: host=` is believed.
    pub trusted_proxies: Vec<TrustedProxy>,
    /// Serve a non-loopback address without a key.
    pub allow_unauthenticated: bool,
    /// Serve a simulated fleet of this many servers.
    pub demo: Option<usize>,
    /// The store (`None`: the default for the mode).
    pub store: Option<String>,
    /// How long the store keeps downsampled history.
    pub history: HistoryRetention,
    /// The alerts file, if any.
    pub alerts: Option<PathBuf>,
    /// Sharing the fleet with other instances (`--instance-id`,
    /// `--cluster`): `None` runs alone.
    pub sharing: Option<Sharing>,
}

/// How this instance shares the fleet with the others.
#[derive(Clone, Debug, PartialEq)]
pub struct Sharing {
    /// Its name (`None`: host and listen port).
    pub id: Option<String>,
    /// Where it is reached (`None`: `http://` and the address it serves).
    pub advertise: Option<String>,
    /// Shards of the fleet.
    pub shards: u16,
    /// A lease's life unrenewed.
    pub lease_ttl: Duration,
}

impl Default for Sharing {
    fn default() -> Self {
        Sharing { id: None, advertise: None, shards: 256, lease_ttl: Duration::from_secs(10) }
    }
}

impl Sharing {
    /// The instance's settings once it serves `local`.
    pub fn config(&self, local: std::net::SocketAddr) -> crate::instances::InstanceConfig {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".into());
        crate::instances::InstanceConfig {
            id: self.id.clone().unwrap_or_else(|| format!("{host}:{}", local.port())),
            advertise: self.advertise.clone().unwrap_or_else(|| format!("http://{local}")),
            shards: self.shards,
            ttl: self.lease_ttl,
        }
    }
}

/// What `keys` does.
#[derive(Clone, Debug, PartialEq)]
pub enum KeysAction {
    /// Make a key.
    Add {
        /// Its name.
        name: String,
        /// Its role.
        role: Role,
    },
    /// List the keys.
    List,
    /// Remove a key.
    Revoke {
        /// Its name.
        name: String,
    },
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
    /// Manage API keys in a store.
    Keys {
        /// The store.
        store: String,
        /// What to do.
        action: KeysAction,
    },
}

fn seconds(name: &str, s: &str) -> Result<Duration, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{name}: {s:?} is not a number of seconds"))?;
    if !v.is_finite() || v <= 0.0 || v > 86_400.0 {
        return Err(format!("{name}: {s} must be more than 0 and at most 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// The origin of an `http(s)://` URL as a browser writes it in `Origin`:
/// scheme and host lower-cased, the scheme's default port dropped; with
/// `path_ok`, a path after the authority is allowed and ignored.
pub fn origin_of(url: &str, path_ok: bool) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if !(path_ok || tail.is_empty() || tail == "/") || tail.starts_with(['?', '#']) {
        return None;
    }
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '@' | '\\' | '*' | ',');
    if authority.is_empty() || authority.contains(bad) {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = match authority.rsplit_once(':') {
        // Not the inside of an IPv6 literal such as [::1].
        Some((host, port)) if !port.contains(']') => {
            if host.is_empty() || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            if port == default_port {
                host.to_string()
            } else {
                authority.clone()
            }
        }
        _ => authority,
    };
    Some(format!("{scheme}://{authority}"))
}

/// A proxy address (`10.0.0.5`) or network (`10.0.0.0/8`, `fd00::/8`)
/// whose forwarded-host headers the same-origin check believes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustedProxy {
    net: IpAddr,
    prefix: u8,
}

impl TrustedProxy {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network like 10.0.0.5 or 10.0.0.0/8"))?;
        let net = net.to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be a number from 0 to {max}"))?,
        };
        Ok(TrustedProxy { net, prefix })
    }

    /// True when `ip` is this address or inside this network (an IPv4
    /// peer seen as `::ffff:a.b.c.d` counts as `a.b.c.d`).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
                IpAddr::V6(v6) => u128::from(v6),
            }
        };
        let ip = ip.to_canonical();
        if ip.is_ipv4() != self.net.is_ipv4() {
            return false;
        }
        let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
        bits(ip) & mask == bits(self.net) & mask
    }
}

impl fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.net.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.net)
        } else {
            write!(f, "{}/{}", self.net, self.prefix)
        }
    }
}

fn public_origin(name: &str, url: &str) -> Result<String, String> {
    origin_of(url, true).ok_or_else(|| {
        format!("{name}: {url:?} must be the URL browsers use to reach the dashboard, like https://ops.example")
    })
}

fn proxies(name: &str, list: &str) -> Result<Vec<TrustedProxy>, String> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| TrustedProxy::parse(s).map_err(|e| format!("{name}: {e}")))
        .collect()
}

/// A keep duration: a whole number with `s`, `m`, `h` or `d` (none:
/// seconds); 0 is allowed (not kept); at most ten years.
fn keep(name: &str, s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => 0,
    };
    match digits.parse::<u64>().ok().filter(|_| per > 0).and_then(|n| n.checked_mul(per)) {
        Some(secs) if secs <= 3650 * 86_400 => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "{name}: {s:?} must be a whole number of s, m, h or d (e.g. 24h, 30d; 0 = not kept), at most 3650d"
        )),
    }
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
    let mut args = args.into_iter().peekable();
    if args.peek().is_some_and(|a| a == "keys") {
        args.next();
        return parse_keys(args.collect(), env("IPVTL_STORE"));
    }
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
        public_origin: env("IPVTL_PUBLIC_URL").map(|v| public_origin("IPVTL_PUBLIC_URL", &v)).transpose()?,
        trusted_proxies: env("IPVTL_TRUSTED_PROXIES")
            .map(|v| proxies("IPVTL_TRUSTED_PROXIES", &v))
            .transpose()?
            .unwrap_or_default(),
        allow_unauthenticated: false,
        demo: None,
        store: env("IPVTL_STORE"),
        alerts: env("IPVTL_ALERTS").map(PathBuf::from),
        sharing: None,
        history: HistoryRetention {
            ten_seconds: env("IPVTL_HISTORY_KEEP_10S")
                .map(|v| keep("IPVTL_HISTORY_KEEP_10S", &v))
                .transpose()?
                .unwrap_or(HistoryRetention::default().ten_seconds),
            one_minute: env("IPVTL_HISTORY_KEEP_1M")
                .map(|v| keep("IPVTL_HISTORY_KEEP_1M", &v))
                .transpose()?
                .unwrap_or(HistoryRetention::default().one_minute),
        },
    };
    let mut sharing = Sharing { id: env("IPVTL_INSTANCE_ID").filter(|v| !v.is_empty()), ..Sharing::default() };
    let mut shared = sharing.id.is_some();
    sharing.advertise = env("IPVTL_ADVERTISE").filter(|v| !v.is_empty());
    if let Some(v) = env("IPVTL_LEASE_TTL") {
        sharing.lease_ttl = seconds("IPVTL_LEASE_TTL", &v)?;
    }
    // Repeated flags replace the environment's list rather than add to it.
    let mut flag_proxies: Option<Vec<TrustedProxy>> = None;
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
                let exact = origin_of(&origin, false).ok_or_else(|| {
                    format!("--cors-origin: {origin:?} must be an exact origin like https://ops.example")
                })?;
                o.cors_origins.push(exact);
            }
            "--public-url" => o.public_origin = Some(public_origin("--public-url", &value("--public-url")?)?),
            "--trusted-proxy" => {
                let proxy =
                    TrustedProxy::parse(&value("--trusted-proxy")?).map_err(|e| format!("--trusted-proxy: {e}"))?;
                flag_proxies.get_or_insert_with(Vec::new).push(proxy);
            }
            "--allow-unauthenticated" => o.allow_unauthenticated = true,
            "--instance-id" => {
                sharing.id = Some(value("--instance-id")?).filter(|v| !v.is_empty());
                shared = true;
            }
            "--cluster" => shared = true,
            "--advertise" => sharing.advertise = Some(value("--advertise")?),
            "--shards" => {
                let v = value("--shards")?;
                sharing.shards = v
                    .parse::<u16>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--shards: {v:?} is not a number from 1 to 65535"))?;
            }
            "--lease-ttl" => {
                sharing.lease_ttl = seconds("--lease-ttl", &value("--lease-ttl")?)?;
                if sharing.lease_ttl < Duration::from_secs(1) {
                    return Err("--lease-ttl: at least 1 second".into());
                }
            }
            "--alerts" => o.alerts = Some(PathBuf::from(value("--alerts")?)),
            "--store" => o.store = Some(value("--store")?).filter(|s| !s.is_empty()),
            "--history-keep-10s" => o.history.ten_seconds = keep("--history-keep-10s", &value("--history-keep-10s")?)?,
            "--history-keep-1m" => o.history.one_minute = keep("--history-keep-1m", &value("--history-keep-1m")?)?,
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
    if let Some(list) = flag_proxies {
        o.trusted_proxies = list;
    }
    if shared {
        let postgres =
            o.store.as_deref().is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"));
        if !postgres {
            return Err("--instance-id/--cluster: instances share the fleet through a PostgreSQL store: \
                        add --store postgres://USER@HOST/DB"
                .into());
        }
        if o.demo.is_some() {
            return Err("--instance-id/--cluster: not with --demo (its fleet lives inside one process)".into());
        }
        o.sharing = Some(sharing);
    }
    Ok(Command::Run(Box::new(o)))
}

/// `keys add NAME --role ROLE`, `keys list`, `keys revoke NAME`, each
/// with `--store URL` (else `IPVTL_STORE`, else the default store).
fn parse_keys(args: Vec<String>, env_store: Option<String>) -> Result<Command, String> {
    let mut store = env_store;
    let mut role = None;
    let mut words = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value =
            |name: &str| inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--store" => store = Some(value("--store")?),
            "--role" => {
                let r = value("--role")?;
                role = Some(Role::parse(&r).ok_or_else(|| format!("--role {r:?}: use viewer, operator or admin"))?);
            }
            f if f.starts_with('-') => return Err(format!("keys: unknown option {f:?} (see --help)")),
            _ => words.push(arg),
        }
    }
    let store = store.unwrap_or_else(|| DEFAULT_STORE.to_string());
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let action = match (words.as_slice(), role) {
        (["add", name], Some(role)) => {
            check_name(name)?;
            KeysAction::Add { name: name.to_string(), role }
        }
        (["add", _], None) => return Err("keys add NAME needs --role viewer, operator or admin".into()),
        (["list"], None) => KeysAction::List,
        (["revoke", name], None) => KeysAction::Revoke { name: name.to_string() },
        _ => return Err("keys: use keys add NAME --role ROLE, keys list, or keys revoke NAME".into()),
    };
    Ok(Command::Keys { store, action })
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
    fn keys_commands_and_the_store() {
        let keys = |args: &[&str], env: Option<&str>| {
            parse(args.iter().map(|s| s.to_string()), |k| (k == "IPVTL_STORE").then(|| env.map(String::from)).flatten())
        };
        assert_eq!(
            keys(&["keys", "add", "ci", "--role", "operator", "--store", "sqlite:x.db"], None).unwrap(),
            Command::Keys {
                store: "sqlite:x.db".into(),
                action: KeysAction::Add { name: "ci".into(), role: Role::Operator }
            }
        );
        assert_eq!(
            keys(&["keys", "list"], Some("postgres://h/db")).unwrap(),
            Command::Keys { store: "postgres://h/db".into(), action: KeysAction::List }
        );
        assert_eq!(
            keys(&["keys", "revoke", "ci"], None).unwrap(),
            Command::Keys { store: DEFAULT_STORE.into(), action: KeysAction::Revoke { name: "ci".into() } }
        );
        assert!(keys(&["keys", "add", "ci"], None).unwrap_err().contains("--role"));
        assert!(keys(&["keys", "add", "ci", "--role", "root"], None).unwrap_err().contains("root"));
        assert!(keys(&["keys", "add", "-x", "--role", "admin"], None).is_err());
        assert!(keys(&["keys", "frobnicate"], None).is_err());
        assert_eq!(
            run(&["--store", "sqlite:a.db"], &[("IPVTL_STORE", "sqlite:b.db")]).unwrap().store.as_deref(),
            Some("sqlite:a.db")
        );
        assert_eq!(run(&[], &[("IPVTL_STORE", "sqlite:b.db")]).unwrap().store.as_deref(), Some("sqlite:b.db"));
        assert_eq!(run(&[], &[]).unwrap().store, None);
    }

    #[test]
    fn history_keeps_from_flags_or_environment() {
        let o = run(&[], &[]).unwrap();
        assert_eq!(o.history, HistoryRetention::default());
        assert_eq!(o.history.ten_seconds, Duration::from_secs(86_400));
        assert_eq!(o.history.one_minute, Duration::from_secs(30 * 86_400));
        let o =
            run(&["--history-keep-10s", "90m"], &[("IPVTL_HISTORY_KEEP_10S", "1h"), ("IPVTL_HISTORY_KEEP_1M", "7d")])
                .unwrap();
        assert_eq!(o.history.ten_seconds, Duration::from_secs(5400), "a flag wins over the environment");
        assert_eq!(o.history.one_minute, Duration::from_secs(7 * 86_400));
        assert_eq!(run(&["--history-keep-1m=3600"], &[]).unwrap().history.one_minute, Duration::from_secs(3600));
        assert_eq!(run(&["--history-keep-10s", "0"], &[]).unwrap().history.ten_seconds, Duration::ZERO);
        for bad in ["", "h", "1.5h", "-1d", "3w", "3651d", "24 h"] {
            let e = run(&["--history-keep-10s", bad], &[]).unwrap_err();
            assert!(e.contains("--history-keep-10s"), "{bad:?}: {e}");
        }
        assert!(run(&[], &[("IPVTL_HISTORY_KEEP_1M", "forever")]).unwrap_err().contains("IPVTL_HISTORY_KEEP_1M"));
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
    fn origins_are_written_as_browsers_send_them() {
        assert_eq!(origin_of("https://Ops.Example:443/", false).as_deref(), Some("https://ops.example"));
        assert_eq!(origin_of("http://10.0.0.1:8000", false).as_deref(), Some("http://10.0.0.1:8000"));
        assert_eq!(origin_of("http://[::1]:80", false).as_deref(), Some("http://[::1]"));
        assert_eq!(origin_of("https://ops.example/ipvtl/", true).as_deref(), Some("https://ops.example"));
        for bad in ["*", "ops.example", "ftp://ops.example", "https://", "https://a@b", "https://a:x", "https://a b"] {
            assert_eq!(origin_of(bad, true), None, "{bad:?}");
        }
        assert_eq!(origin_of("https://ops.example/ipvtl", false), None, "an origin has no path");
        let o = run(&["--cors-origin", "https://Ops.Example:443/"], &[]).unwrap();
        assert_eq!(o.cors_origins, ["https://ops.example"]);
    }

    #[test]
    fn public_url_and_trusted_proxies_from_flags_or_environment() {
        let o = run(
            &[],
            &[("IPVTL_PUBLIC_URL", "https://ops.example/dash/"), ("IPVTL_TRUSTED_PROXIES", "10.0.0.5, fd00::/8")],
        )
        .unwrap();
        assert_eq!(o.public_origin.as_deref(), Some("https://ops.example"));
        assert_eq!(o.trusted_proxies.len(), 2);
        assert_eq!(o.trusted_proxies[0].to_string(), "10.0.0.5");
        assert_eq!(o.trusted_proxies[1].to_string(), "fd00::/8");
        let o = run(
            &["--public-url", "http://dash:9000", "--trusted-proxy", "127.0.0.1", "--trusted-proxy=10.0.0.0/8"],
            &[("IPVTL_PUBLIC_URL", "https://ops.example"), ("IPVTL_TRUSTED_PROXIES", "192.0.2.1")],
        )
        .unwrap();
        assert_eq!(o.public_origin.as_deref(), Some("http://dash:9000"), "a flag wins over the environment");
        let listed: Vec<String> = o.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(listed, ["127.0.0.1", "10.0.0.0/8"], "flags replace the environment's list");
        assert!(run(&["--public-url", "ops.example"], &[]).unwrap_err().contains("--public-url"));
        assert!(run(&["--trusted-proxy", "proxy.local"], &[]).unwrap_err().contains("--trusted-proxy"));
        assert!(run(&["--trusted-proxy", "10.0.0.0/33"], &[]).is_err());
        assert!(run(&[], &[("IPVTL_TRUSTED_PROXIES", "10.0.0.1,nope")]).unwrap_err().contains("IPVTL_TRUSTED_PROXIES"));
    }

    #[test]
    fn trusted_proxies_match_addresses_and_networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let one = TrustedProxy::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(one.contains(ip("::ffff:127.0.0.1")), "an IPv4 peer on a dual-stack socket");
        assert!(!one.contains(ip("127.0.0.2")));
        let net = TrustedProxy::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.200.3.4")) && !net.contains(ip("11.0.0.1")) && !net.contains(ip("::1")));
        let v6 = TrustedProxy::parse("[fd00::]/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")) && !v6.contains(ip("10.0.0.1")));
        assert!(TrustedProxy::parse("0.0.0.0/0").unwrap().contains(ip("203.0.113.9")));
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

    #[test]
    fn sharing_the_fleet_needs_postgresql_and_names_the_instance() {
        let pg = "postgres://ipvtl@127.0.0.1/fleet";
        assert_eq!(run(&["--store", pg], &[]).unwrap().sharing, None, "alone unless asked");
        let o = run(&["--store", pg, "--instance-id", "east-1", "--lease-ttl", "4", "--shards", "64"], &[]).unwrap();
        let sharing = o.sharing.clone().expect("shared");
        assert_eq!((sharing.id.as_deref(), sharing.shards), (Some("east-1"), 64));
        let config = sharing.config("127.0.0.1:8123".parse().unwrap());
        assert_eq!((config.id.as_str(), config.advertise.as_str()), ("east-1", "http://127.0.0.1:8123"));
        assert_eq!(config.ttl, Duration::from_secs(4));
        let o = run(&["--cluster", "--advertise", "https://ops-east.example"], &[("IPVTL_STORE", pg)]).unwrap();
        let config = o.sharing.unwrap().config("127.0.0.1:8123".parse().unwrap());
        assert!(config.id.ends_with(":8123"), "host and port: {}", config.id);
        assert_eq!((config.advertise.as_str(), config.shards), ("https://ops-east.example", 256));
        assert_eq!(config.ttl, Duration::from_secs(10));
        let o = run(&[], &[("IPVTL_STORE", pg), ("IPVTL_INSTANCE_ID", "west"), ("IPVTL_LEASE_TTL", "6")]).unwrap();
        assert_eq!(o.sharing.map(|s| (s.id, s.lease_ttl)), Some((Some("west".into()), Duration::from_secs(6))));
        for bad in [
            vec!["--instance-id", "a"],
            vec!["--cluster", "--store", "sqlite:x.db"],
            vec!["--cluster", "--store", pg, "--demo", "3"],
        ] {
            assert!(run(&bad, &[]).unwrap_err().contains("--instance-id/--cluster"), "{bad:?}");
        }
        assert!(run(&["--shards", "0"], &[]).unwrap_err().contains("--shards"));
        assert!(run(&["--lease-ttl", "0.5"], &[]).unwrap_err().contains("at least 1 second"));
    }
}
