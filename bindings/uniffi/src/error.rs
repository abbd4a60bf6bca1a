//! The one flat error enum every fallible export throws, and the one
//! function that maps the client's rich errors into it.

use std::fmt;

use ipvtl_client::ClientError;

/// What an ipvtl call failed with. Flat: each variant carries a message
/// written for humans (what failed, where, why); foreign code matches on the
/// variant (Kotlin `IpvtlException.ServerNotFound`, Python
/// `IpvtlError.ServerNotFound`, Ruby `IpvtlError::ServerNotFound`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum IpvtlError {
    /// A server list (file or records) was refused, naming the entry.
    Config(String),
    /// A file could not be read or written.
    Io(String),
    /// A setting is out of range.
    Settings(String),
    /// Loose input (a desired state, a scope, a policy) was refused; the
    /// message says what is wrong and what is valid.
    Invalid(String),
    /// No server with that id.
    ServerNotFound(String),
    /// Channel 0, or beyond the server's channels; nothing was sent.
    ChannelNotFound(String),
    /// Another action holds the channel; nothing was sent.
    Busy(String),
    /// The server is in maintenance; nothing was sent.
    Maintenance(String),
    /// The action ran and failed (stop refused, timeout, ...); the message is
    /// the report's summary.
    ActionFailed(String),
    /// A batch was refused before anything ran: a misspelt state, channel 0,
    /// no or too many targets, parallelism out of bounds, a channel listed
    /// twice. The message names what is wrong (and the valid values).
    Batch(String),
    /// The HTTP client could not be built.
    Transport(String),
    /// The cluster has shut down.
    Closed(String),
    /// The test-support simulator refused a request (unknown fault, ...).
    Simulator(String),
    /// Something inside ipvtl failed that no input caused (a thread could
    /// not start, ...): a bug or an exhausted machine.
    Internal(String),
}

impl IpvtlError {
    /// The same short kind as `ClientError::kind` (`server_not_found`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            IpvtlError::Config(_) => "config",
            IpvtlError::Io(_) => "io",
            IpvtlError::Settings(_) => "settings",
            IpvtlError::Invalid(_) => "invalid",
            IpvtlError::ServerNotFound(_) => "server_not_found",
            IpvtlError::ChannelNotFound(_) => "channel_not_found",
            IpvtlError::Busy(_) => "busy",
            IpvtlError::Maintenance(_) => "maintenance",
            IpvtlError::ActionFailed(_) => "action_failed",
            IpvtlError::Batch(_) => "batch",
            IpvtlError::Transport(_) => "transport",
            IpvtlError::Closed(_) => "closed",
            IpvtlError::Simulator(_) => "simulator",
            IpvtlError::Internal(_) => "internal",
        }
    }

    fn message(&self) -> &str {
        match self {
            IpvtlError::Config(m)
            | IpvtlError::Io(m)
            | IpvtlError::Settings(m)
            | IpvtlError::Invalid(m)
            | IpvtlError::ServerNotFound(m)
            | IpvtlError::ChannelNotFound(m)
            | IpvtlError::Busy(m)
            | IpvtlError::Maintenance(m)
            | IpvtlError::ActionFailed(m)
            | IpvtlError::Batch(m)
            | IpvtlError::Transport(m)
            | IpvtlError::Closed(m)
            | IpvtlError::Simulator(m)
            | IpvtlError::Internal(m) => m,
        }
    }
}

impl fmt::Display for IpvtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for IpvtlError {}

/// The one mapping from the client's errors: the variant follows the kind,
/// the message is the client's `Display`.
impl From<ClientError> for IpvtlError {
    fn from(e: ClientError) -> Self {
        let message = e.to_string();
        match e {
            ClientError::Config { .. } => IpvtlError::Config(message),
            ClientError::Io { .. } => IpvtlError::Io(message),
            ClientError::Settings(_) => IpvtlError::Settings(message),
            ClientError::Invalid(_) => IpvtlError::Invalid(message),
            ClientError::ServerNotFound(_) => IpvtlError::ServerNotFound(message),
            ClientError::ChannelNotFound { .. } => IpvtlError::ChannelNotFound(message),
            ClientError::Busy { .. } => IpvtlError::Busy(message),
            ClientError::Maintenance(_) => IpvtlError::Maintenance(message),
            ClientError::ActionFailed(_) => IpvtlError::ActionFailed(message),
            ClientError::Batch(_) => IpvtlError::Batch(message),
            ClientError::Transport(_) => IpvtlError::Transport(message),
            ClientError::Closed => IpvtlError::Closed(message),
            ClientError::Internal(_) => IpvtlError::Internal(message),
            // ClientError is non-exhaustive: a kind added later still
            // arrives with its message rather than as a panic.
            _ => IpvtlError::Internal(message),
        }
    }
}

/// What a foreign observer may throw from `on_event`. Whatever it throws
/// (its own exception types included) arrives here; the watch counts it and
/// goes on delivering.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
#[non_exhaustive]
pub enum ObserverError {
    /// The observer failed handling an event.
    Failed {
        /// What it said (not `message`: that name is taken in Kotlin).
        reason: String,
    },
}

impl fmt::Display for ObserverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObserverError::Failed { reason } => write!(f, "observer failed: {reason}"),
        }
    }
}

impl std::error::Error for ObserverError {}

impl From<uniffi::UnexpectedUniFFICallbackError> for ObserverError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ObserverError::Failed { reason: e.reason }
    }
}
