use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde_json::Value;

use super::{json_error, Position};
use crate::ids::ChannelId;
use crate::model::{Channel, ChannelState, ChannelStats, Status};

/// Why a `/status` body could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusError {
    /// Not JSON at all, or truncated.
    Json {
        /// serde_json's description.
        message: String,
        /// Where it went wrong.
        position: Position,
    },
    /// JSON, but not the shape of a `/status` answer.
    Shape {
        /// Which field, and what was wrong with it.
        message: String,
    },
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusError::Json { message, position } => {
                write!(f, "invalid JSON at line {} column {}: {message}", position.line, position.column)
            }
            StatusError::Shape { message } => f.write_str(message),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StatusError {}

fn shape(message: impl Into<String>) -> StatusError {
    StatusError::Shape { message: message.into() }
}

/// Parses a `/status` body.
///
/// Tolerant by design: unknown fields are kept in `extra`, unknown states in
/// [`ChannelState::Other`], CPU values may be integers or floats, a missing
/// `cpu` or `channels` reads as empty, a missing or `null` status text as
/// empty. Only what would make the answer misleading is an error: a body that
/// is not a JSON object, `channels`/`cpu` that are not arrays, a channel that
/// is not an object, a CPU value that is not a number.
pub fn parse_status(body: &[u8]) -> Result<Status, StatusError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let (message, position) = json_error(&e);
        StatusError::Json { message, position }
    })?;
    let Value::Object(mut top) = value else {
        return Err(shape(alloc::format!("expected a JSON object, found {}", kind(&value))));
    };
    let cpu = match top.remove("cpu") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Number(n) => {
                    // A value beyond f32 (1e80, say) would become infinity.
                    n.as_f64()
                        .map(|f| f as f32)
                        .filter(|f| f.is_finite())
                        .ok_or_else(|| shape(alloc::format!("cpu[{i}] is not a finite number: {n}")))
                }
                other => Err(shape(alloc::format!("cpu[{i}] is {}, expected a number", kind(other)))),
            })
            .collect::<Result<Vec<f32>, _>>()?,
        Some(other) => return Err(shape(alloc::format!("\"cpu\" is {}, expected an array", kind(&other)))),
    };
    let channels = match top.remove("channels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            items.into_iter().enumerate().map(|(i, v)| parse_channel(i, v)).collect::<Result<Vec<Channel>, _>>()?
        }
        Some(other) => return Err(shape(alloc::format!("\"channels\" is {}, expected an array", kind(&other)))),
    };
    Ok(Status { cpu, channels, extra: top.into_iter().collect() })
}

fn parse_channel(index: usize, value: Value) -> Result<Channel, StatusError> {
    let Value::Object(mut fields) = value else {
        return Err(shape(alloc::format!("channels[{index}] is {}, expected an object", kind(&value))));
    };
    let state = match fields.remove("state") {
        Some(Value::String(s)) => ChannelState::parse(&s),
        None | Some(Value::Null) => ChannelState::Other(String::new()),
        Some(other) => ChannelState::Other(other.to_string()),
    };
    let status = match fields.remove("status") {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    };
    let stats = parse_stats(&status);
    Ok(Channel {
        id: ChannelId::from_index(index),
        state,
        status,
        stats,
        extra: fields.into_iter().collect::<BTreeMap<_, _>>(),
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses a running channel's status text, `HH:MM:SS <fps>fps@<kbps>Kbps`
/// (hours may exceed 24, fps and kbps may have decimals, case and extra
/// spaces do not matter). `None` when the text does not match.
pub fn parse_stats(text: &str) -> Option<ChannelStats> {
    let text = text.trim();
    let (clock, rest) = text.split_once(char::is_whitespace)?;
    let mut parts = clock.split(':');
    let h: u64 = digits(parts.next()?)?;
    let m: u64 = digits(parts.next()?)?;
    let s: u64 = digits(parts.next()?)?;
    if parts.next().is_some() || m >= 60 || s >= 60 {
        return None;
    }
    let (fps_part, kbps_part) = rest.trim().split_once('@')?;
    let fps = number_with_suffix(fps_part, "fps")?;
    let kbps = number_with_suffix(kbps_part, "kbps")?;
    Some(ChannelStats { uptime_s: h.checked_mul(3600)?.checked_add(m * 60 + s)?, fps, kbps })
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn number_with_suffix(s: &str, suffix: &str) -> Option<f32> {
    let s = s.trim();
    let split = s.len().checked_sub(suffix.len())?;
    if !s.is_char_boundary(split) || !s[split..].eq_ignore_ascii_case(suffix) {
        return None;
    }
    let n = s[..split].trim();
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    n.parse::<f32>().ok().filter(|v| v.is_finite())
}
