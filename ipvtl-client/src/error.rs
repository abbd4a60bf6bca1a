//! The client's error type.

use std::fmt;
use std::path::PathBuf;

use ipvtl_core::{ActionError, ActionReport, BatchError, ChannelId, ConfigError, ServerId, TransportError};

/// Everything a [`crate::Cluster`] call can fail with.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ClientError {
    /// `servers.json` (or a server list) was refused.
    Config {
        /// The file, when it came from one.
        path: Option<PathBuf>,
        /// What is wrong, naming the entry.
        error: ConfigError,
    },
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// A setting is out of range.
    Settings(String),
    /// Loose input (a desired state, a scope, a policy) was refused; the
    /// message says what is wrong and what is valid.
    Invalid(String),
    /// No server with that id.
    ServerNotFound(ServerId),
    /// Channel 0, or beyond the server's channels. No request was sent.
    ChannelNotFound {
        /// The server.
        server: ServerId,
        /// The channel number asked for.
        channel: u32,
        /// The server's channel count, when known.
        count: Option<usize>,
    },
    /// Another action holds the channel. No request was sent.
    Busy {
        /// The server.
        server: ServerId,
        /// The channel.
        channel: ChannelId,
    },
    /// The server is in maintenance. No request was sent.
    Maintenance(ServerId),
    /// The action ran and failed; the report says where and why.
    ActionFailed(Box<ActionReport>),
    /// A batch was refused.
    Batch(BatchError),
    /// The HTTP client could not be built.
    Transport(TransportError),
    /// The cluster has shut down.
    Closed,
    /// Something inside ipvtl failed that no input of yours caused (the
    /// driver thread could not start, an answer the core must give was
    /// missing). A bug or an exhausted machine; the message says which.
    Internal(String),
}

impl ClientError {
    /// A short machine-readable kind, stable for bindings and APIs.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Config { .. } => "config",
            ClientError::Io { .. } => "io",
            ClientError::Settings(_) => "settings",
            ClientError::Invalid(_) => "invalid",
            ClientError::ServerNotFound(_) => "server_not_found",
            ClientError::ChannelNotFound { .. } => "channel_not_found",
            ClientError::Busy { .. } => "busy",
            ClientError::Maintenance(_) => "maintenance",
            ClientError::ActionFailed(_) => "action_failed",
            ClientError::Batch(_) => "batch",
            ClientError::Transport(_) => "transport",
            ClientError::Closed => "closed",
            ClientError::Internal(_) => "internal",
        }
    }

    pub(crate) fn from_action(error: ActionError, report: Option<ActionReport>) -> Self {
        match error {
            ActionError::ServerNotFound { server } => ClientError::ServerNotFound(server),
            ActionError::ChannelNotFound { server, channel, count } => {
                ClientError::ChannelNotFound { server, channel: channel.get(), count: Some(count) }
            }
            ActionError::Busy { server, channel, .. } => ClientError::Busy { server, channel },
            ActionError::Maintenance { server } => ClientError::Maintenance(server),
            other => match report {
                Some(report) => ClientError::ActionFailed(Box::new(report)),
                None => ClientError::Internal(format!("an action failed without a report: {other}")),
            },
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Config { path: Some(path), error } => write!(f, "{}: {error}", path.display()),
            ClientError::Config { path: None, error } => write!(f, "server list: {error}"),
            ClientError::Io { path, message } => write!(f, "{}: {message}", path.display()),
            ClientError::Settings(m) => write!(f, "invalid settings: {m}"),
            ClientError::Invalid(m) => write!(f, "invalid input: {m}"),
            ClientError::ServerNotFound(id) => write!(f, "no server with id {:?}", id.as_str()),
            ClientError::ChannelNotFound { server, channel, count: Some(n) } => {
                write!(f, "server {server} has no channel {channel} (it has {n})")
            }
            ClientError::ChannelNotFound { server, channel, count: None } => {
                write!(f, "server {server} has no channel {channel} (channels are numbered from 1)")
            }
            ClientError::Busy { server, channel } => {
                write!(f, "channel {channel} of {server} is busy with another action")
            }
            ClientError::Maintenance(id) => write!(f, "server {id} is in maintenance"),
            ClientError::ActionFailed(report) => f.write_str(&report.summary()),
            ClientError::Batch(e) => write!(f, "batch refused: {e}"),
            ClientError::Transport(e) => write!(f, "HTTP client: {e}"),
            ClientError::Closed => f.write_str("the cluster has shut down"),
            ClientError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}
