use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;
use serde_json::{Map, Value};

use super::{json_error, Position};
use crate::ids::{ChannelId, ServerId};
use crate::model::{ServerConfig, DEFAULT_PORT};
use crate::reconcile::{Desired, HealPolicy, Healing, Scope};

/// Why a `servers.json` document was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not JSON, or truncated.
    Json {
        /// serde_json's description.
        message: String,
        /// Where it went wrong.
        position: Position,
    },
    /// JSON, but neither an array of servers nor `{"servers": [...]}`.
    Shape {
        /// What was found instead.
        message: String,
    },
    /// One entry is wrong.
    Entry {
        /// 0-based position of the entry in the list.
        index: usize,
        /// The entry's id, when it has a usable one.
        id: Option<String>,
        /// What is wrong with it.
        reason: String,
    },
    /// One entry of the top-level `"tags"` object is wrong.
    Tag {
        /// The tag.
        tag: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Json { message, position } => {
                write!(f, "invalid JSON at line {} column {}: {message}", position.line, position.column)
            }
            ConfigError::Shape { message } => f.write_str(message),
            ConfigError::Entry { index, id: Some(id), reason } => write!(f, "servers[{index}] (id {id:?}): {reason}"),
            ConfigError::Entry { index, id: None, reason } => write!(f, "servers[{index}]: {reason}"),
            ConfigError::Tag { tag, reason } => write!(f, "tags[{tag:?}]: {reason}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

/// A parsed `servers.json`: the servers, and the desired state and
/// healing declared in it (each becomes a [`crate::Source::File`] setting).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServersFile {
    /// The servers, in file order.
    pub servers: Vec<ServerConfig>,
    /// Desired states declared per server, per channel and per tag.
    pub desired: Vec<(Scope, Desired)>,
    /// Healing declared per server and per tag.
    pub healing: Vec<(Scope, Healing)>,
}

/// Parses `servers.json`: either a JSON array of servers or
/// `{"servers": [...]}`. The desired state and healing declared in the
/// file are checked too (see [`parse_servers_file`]) and dropped.
///
/// Each entry needs `id` (string or integer) and `host`; `name` defaults to
/// the id, `port` to 9527, `description` to empty, `tags` to none. Unknown
/// fields are ignored. Duplicate ids, an empty host, a host with a scheme,
/// path, port or white space, and port 0 are errors naming the entry.
pub fn parse_servers(text: &str) -> Result<Vec<ServerConfig>, ConfigError> {
    parse_servers_file(text).map(|f| f.servers)
}

/// Parses `servers.json` with the desired state and healing declared in it.
///
/// The servers are as in [`parse_servers`]. Each server may also carry:
///
/// - `"desired": "running" | "idle" | "unmanaged"` for all its channels;
/// - `"channels": {"3": "running", "4": "idle"}`: per channel (numbered
///   from 1), narrower than the server's;
/// - `"healing"`: `true` (the default policy), `false` (report drift only)
///   or an object with any of `grace`, `window`, `backoff`, `backoff_max`
///   (seconds) or `grace_ms`, `window_ms`, `backoff_ms`, `backoff_max_ms`,
///   and `limit`, `enabled`; what is not given takes the default.
///
/// The object form may add settings by tag:
/// `{"servers": [...], "tags": {"rack-b": {"desired": "running", "healing": true}}}`.
///
/// Strict: an unknown desired state or healing field is an error naming
/// the entry (or tag) and listing what is valid.
pub fn parse_servers_file(text: &str) -> Result<ServersFile, ConfigError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let (message, position) = json_error(&e);
        ConfigError::Json { message, position }
    })?;
    let shape =
        || ConfigError::Shape { message: "expected an array of servers or an object with a \"servers\" array".into() };
    let (entries, tags) = match value {
        Value::Array(items) => (items, None),
        Value::Object(mut top) => match top.remove("servers") {
            Some(Value::Array(items)) => (items, top.remove("tags")),
            Some(_) => return Err(ConfigError::Shape { message: "\"servers\" must be an array".into() }),
            None => return Err(shape()),
        },
        _ => return Err(shape()),
    };
    let mut file = ServersFile::default();
    let mut seen = BTreeSet::new();
    file.servers.reserve(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let server = parse_entry(index, entry, &mut file)?;
        if !seen.insert(server.id.clone()) {
            return Err(ConfigError::Entry {
                index,
                id: Some(server.id.to_string()),
                reason: "duplicate id (ids must be unique)".into(),
            });
        }
        file.servers.push(server);
    }
    match tags {
        None | Some(Value::Null) => {}
        Some(Value::Object(tags)) => {
            for (tag, settings) in tags {
                let err = |reason: String| ConfigError::Tag { tag: tag.clone(), reason };
                if tag.is_empty() {
                    return Err(err("a tag must not be empty".into()));
                }
                let Value::Object(fields) = settings else {
                    return Err(err("expected an object with \"desired\" and/or \"healing\"".into()));
                };
                if let Some(key) = fields.keys().find(|k| !matches!(k.as_str(), "desired" | "healing")) {
                    return Err(err(format!("unknown field {key:?} (expected \"desired\" or \"healing\")")));
                }
                if let Some(d) = desired_field(&fields).map_err(err)? {
                    file.desired.push((Scope::Tag(tag.clone()), d));
                }
                if let Some(h) = healing_field(&fields).map_err(err)? {
                    file.healing.push((Scope::Tag(tag.clone()), h));
                }
            }
        }
        Some(_) => {
            return Err(ConfigError::Shape {
                message: "\"tags\" must be an object of tag settings, like {\"rack-b\": {\"desired\": \"running\"}}"
                    .into(),
            })
        }
    }
    Ok(file)
}

fn parse_entry(index: usize, entry: Value, file: &mut ServersFile) -> Result<ServerConfig, ConfigError> {
    let Value::Object(fields) = entry else {
        return Err(ConfigError::Entry { index, id: None, reason: "expected an object".into() });
    };
    let id = match fields.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) => return Err(ConfigError::Entry { index, id: None, reason: "\"id\" is empty".into() }),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(_) => {
            return Err(ConfigError::Entry { index, id: None, reason: "\"id\" must be a string or an integer".into() })
        }
        None => return Err(ConfigError::Entry { index, id: None, reason: "missing \"id\"".into() }),
    };
    let err = |reason: String| ConfigError::Entry { index, id: Some(id.clone()), reason };
    let host = match fields.get("host") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(err("\"host\" must be a string".into())),
        None => return Err(err("missing \"host\"".into())),
    };
    check_host(&host).map_err(|r| err(r.into()))?;
    let port = match fields.get("port") {
        None | Some(Value::Null) => DEFAULT_PORT,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => return Err(err("port 0 is not a usable port".into())),
            Some(p) if p <= u64::from(u16::MAX) => p as u16,
            _ if n.is_f64() => return Err(err(format!("port {n} must be an integer"))),
            _ => return Err(err(format!("port {n} is out of range 1-65535"))),
        },
        Some(_) => return Err(err("\"port\" must be an integer".into())),
    };
    let name = optional_string(&fields, "name").map_err(err)?.unwrap_or_else(|| id.clone());
    let description = optional_string(&fields, "description").map_err(err)?.unwrap_or_default();
    let tags = match fields.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(String::from).ok_or_else(|| err("\"tags\" must be an array of strings".into())))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(err("\"tags\" must be an array of strings".into())),
    };
    let server = ServerId::new(id.clone());
    if let Some(d) = desired_field(&fields).map_err(err)? {
        file.desired.push((Scope::Server(server.clone()), d));
    }
    match fields.get("channels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(channels)) => {
            for (key, value) in channels {
                let channel = key
                    .parse::<u32>()
                    .ok()
                    .and_then(ChannelId::new)
                    .ok_or_else(|| err(format!("\"channels\": {key:?} is not a channel number (from 1)")))?;
                let d = desired_value(value).map_err(|r| err(format!("\"channels\".{key:?}: {r}")))?;
                file.desired.push((Scope::Channel(server.clone(), channel), d));
            }
        }
        Some(_) => return Err(err("\"channels\" must be an object like {\"3\": \"running\"}".into())),
    }
    if let Some(h) = healing_field(&fields).map_err(err)? {
        file.healing.push((Scope::Server(server.clone()), h));
    }
    Ok(ServerConfig { id: server, name, host, port, description, tags })
}

const DESIRED_NAMES: &str = "\"running\", \"idle\" or \"unmanaged\"";

fn desired_value(value: &Value) -> Result<Desired, String> {
    match value {
        Value::String(s) => {
            Desired::parse(s).ok_or_else(|| format!("unknown desired state {s:?} (expected {DESIRED_NAMES})"))
        }
        _ => Err(format!("a desired state must be a string: {DESIRED_NAMES}")),
    }
}

fn desired_field(fields: &Map<String, Value>) -> Result<Option<Desired>, String> {
    match fields.get("desired") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => desired_value(v).map(Some).map_err(|r| format!("\"desired\": {r}")),
    }
}

const HEALING_FIELDS: &str =
    "enabled, limit, grace, window, backoff, backoff_max (seconds) or grace_ms, window_ms, backoff_ms, backoff_max_ms";

fn healing_field(fields: &Map<String, Value>) -> Result<Option<Healing>, String> {
    match fields.get("healing") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => healing_value(v).map(Some).map_err(|r| format!("\"healing\": {r}")),
    }
}

fn healing_value(value: &Value) -> Result<Healing, String> {
    let fields = match value {
        Value::Bool(true) => return Ok(Healing::On(HealPolicy::default())),
        Value::Bool(false) => return Ok(Healing::Off),
        Value::Object(fields) => fields,
        _ => return Err("expected true, false or an object of policy fields".into()),
    };
    if let Some(key) = fields.keys().find(|k| {
        !matches!(
            k.as_str(),
            "enabled"
                | "limit"
                | "grace"
                | "grace_ms"
                | "window"
                | "window_ms"
                | "backoff"
                | "backoff_ms"
                | "backoff_max"
                | "backoff_max_ms"
        )
    }) {
        return Err(format!("unknown field {key:?} (expected {HEALING_FIELDS})"));
    }
    let enabled = match fields.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("\"enabled\" must be true or false".into()),
    };
    let d = HealPolicy::default();
    let limit = match fields.get("limit") {
        None | Some(Value::Null) => d.limit,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => return Err("\"limit\" must be at least 1".into()),
            Some(l) => u32::try_from(l).map_err(|_| format!("\"limit\" {l} is too large"))?,
            None => return Err(format!("\"limit\" {n} must be a positive integer")),
        },
        Some(_) => return Err("\"limit\" must be a positive integer".into()),
    };
    let grace = duration(fields, "grace")?.unwrap_or(d.grace);
    let window = duration(fields, "window")?.unwrap_or(d.window);
    let backoff = duration(fields, "backoff")?.unwrap_or(d.backoff);
    let backoff_max = duration(fields, "backoff_max")?.unwrap_or(d.backoff_max.max(backoff));
    if !enabled {
        return Ok(Healing::Off);
    }
    if window.is_zero() {
        return Err("\"window\" must be more than 0".into());
    }
    if backoff_max < backoff {
        return Err(format!(
            "\"backoff_max\" ({} ms) must be at least \"backoff\" ({} ms)",
            backoff_max.as_millis(),
            backoff.as_millis()
        ));
    }
    Ok(Healing::On(HealPolicy { grace, limit, window, backoff, backoff_max }))
}

/// `name` in seconds or `name_ms` in milliseconds (not both).
fn duration(fields: &Map<String, Value>, name: &str) -> Result<Option<Duration>, String> {
    let ms_key = format!("{name}_ms");
    match (fields.get(name), fields.get(&ms_key)) {
        (Some(_), Some(_)) => Err(format!("give {name:?} (seconds) or {ms_key:?}, not both")),
        (Some(Value::Number(n)), None) => match n.as_f64().and_then(|s| Duration::try_from_secs_f64(s).ok()) {
            Some(d) => Ok(Some(d)),
            None => Err(format!("{name:?} {n} must be a non-negative number of seconds")),
        },
        (None, Some(Value::Number(n))) => match n.as_u64() {
            Some(ms) => Ok(Some(Duration::from_millis(ms))),
            None => Err(format!("{ms_key:?} {n} must be a non-negative integer")),
        },
        (Some(Value::Null), None) | (None, Some(Value::Null)) | (None, None) => Ok(None),
        (Some(_), None) => Err(format!("{name:?} must be a number of seconds")),
        (None, Some(_)) => Err(format!("{ms_key:?} must be a number of milliseconds")),
    }
}

fn optional_string(fields: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("\"{key}\" must be a string")),
    }
}

/// A host must be a bare name or address: no scheme, path, port or space.
fn check_host(host: &str) -> Result<(), &'static str> {
    if host.trim().is_empty() {
        return Err("\"host\" is empty");
    }
    if host.contains("://") {
        return Err("\"host\" must not include a scheme (write \"10.0.0.5\", not \"http://10.0.0.5\")");
    }
    if host.chars().any(char::is_whitespace) {
        return Err("\"host\" must not contain white space");
    }
    if host.contains(['/', '?', '#', '@', '\\']) {
        return Err("\"host\" must be a bare host name or address, without path, query or user");
    }
    let colons = host.matches(':').count();
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if colons == 1 || (host.contains(['[', ']']) && !bracketed) {
        return Err("\"host\" must not include a port; use the \"port\" field");
    }
    Ok(())
}
