use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde_json::{Map, Value};

use super::{json_error, Position};
use crate::ids::ServerId;
use crate::model::{ServerConfig, DEFAULT_PORT};

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
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

/// Parses `servers.json`: either a JSON array of servers or
/// `{"servers": [...]}`.
///
/// Each entry needs `id` (string or integer) and `host`; `name` defaults to
/// the id, `port` to 9527, `description` to empty, `tags` to none. Unknown
/// fields are ignored. Duplicate ids, an empty host, a host with a scheme,
/// path, port or white space, and port 0 are errors naming the entry.
pub fn parse_servers(text: &str) -> Result<Vec<ServerConfig>, ConfigError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let (message, position) = json_error(&e);
        ConfigError::Json { message, position }
    })?;
    let entries = match value {
        Value::Array(items) => items,
        Value::Object(mut top) => match top.remove("servers") {
            Some(Value::Array(items)) => items,
            Some(_) => return Err(ConfigError::Shape { message: "\"servers\" must be an array".into() }),
            None => {
                return Err(ConfigError::Shape {
                    message: "expected an array of servers or an object with a \"servers\" array".into(),
                })
            }
        },
        _ => {
            return Err(ConfigError::Shape {
                message: "expected an array of servers or an object with a \"servers\" array".into(),
            })
        }
    };
    let mut seen = BTreeSet::new();
    let mut servers = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let server = parse_entry(index, entry)?;
        if !seen.insert(server.id.clone()) {
            return Err(ConfigError::Entry {
                index,
                id: Some(server.id.to_string()),
                reason: "duplicate id (ids must be unique)".into(),
            });
        }
        servers.push(server);
    }
    Ok(servers)
}

fn parse_entry(index: usize, entry: Value) -> Result<ServerConfig, ConfigError> {
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
    Ok(ServerConfig { id: ServerId::new(id), name, host, port, description, tags })
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
