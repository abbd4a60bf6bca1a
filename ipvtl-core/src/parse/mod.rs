//! Tolerant parsers for `/status` bodies and `servers.json`.
//!
//! Neither ever panics: every input yields a value or a typed error whose
//! `Display` says what is wrong and where.

mod servers;
mod status;

pub use servers::{parse_servers, parse_servers_file, ConfigError, ServersFile};
pub use status::{parse_stats, parse_status, parse_status_like, StatusError};

use alloc::string::{String, ToString};

/// Where in a JSON document an error sits (1-based, as serde_json counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Line, 1-based.
    pub line: usize,
    /// Column, 1-based.
    pub column: usize,
}

/// Splits a serde_json error into its message (without the trailing
/// "at line X column Y") and its position.
fn json_error(e: &serde_json::Error) -> (String, Position) {
    let position = Position { line: e.line(), column: e.column() };
    let full = e.to_string();
    let message = match full.rfind(" at line ") {
        Some(i) => String::from(&full[..i]),
        None => full,
    };
    (message, position)
}
