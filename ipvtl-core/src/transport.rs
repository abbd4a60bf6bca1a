//! The one seam between the core and any HTTP stack.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use alloc::sync::Arc;

use crate::ids::{ChannelId, RequestId};
use crate::model::{PollError, ServerConfig};

/// What to ask a server. The path is derived, never assembled by callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestKind {
    /// `GET /status`.
    Status,
    /// `GET /channel{N}?start`.
    Start(ChannelId),
    /// `GET /channel{N}?stop`.
    Stop(ChannelId),
}

impl RequestKind {
    /// The request path and query, e.g. `/channel3?stop`.
    pub fn path(self) -> String {
        match self {
            RequestKind::Status => String::from("/status"),
            RequestKind::Start(ch) => format!("/channel{}?start", ch.get()),
            RequestKind::Stop(ch) => format!("/channel{}?stop", ch.get()),
        }
    }
}

/// One GET to send, with its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// What to ask.
    pub kind: RequestKind,
    /// Give up after this long (connect and answer together).
    pub timeout: Duration,
}

impl Request {
    /// The request path and query.
    pub fn path(&self) -> String {
        self.kind.path()
    }
}

/// A request a machine asks the driver to send. Every machine of one
/// [`crate::Fleet`] draws its ids from one space, so an id names one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Hand this back to `handle_response`.
    pub id: RequestId,
    /// Where to send it.
    pub server: Arc<ServerConfig>,
    /// What to send.
    pub request: Request,
}

/// A complete HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub code: u16,
    /// The body, at most the transport's cap.
    pub body: Vec<u8>,
}

impl Response {
    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

/// Why a request got no complete answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportError {
    /// Could not connect (refused, unreachable, name not resolved).
    Connect(String),
    /// No complete answer within the request's timeout.
    Timeout,
    /// The connection broke while sending or receiving (reset, truncated).
    Io(String),
    /// The body exceeded the cap.
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The request could not even be built (bad host, say).
    Invalid(String),
}

impl TransportError {
    /// The poll error this transport failure means; `timeout` is the
    /// request's deadline.
    pub fn to_poll_error(&self, timeout: Duration) -> PollError {
        match self {
            TransportError::Connect(m) => PollError::Connect { message: m.clone() },
            TransportError::Timeout => PollError::Timeout { after_ms: timeout.as_millis() as u64 },
            TransportError::Io(m) => PollError::Io { message: m.clone() },
            TransportError::TooLarge { limit } => PollError::TooLarge { limit: *limit },
            TransportError::Invalid(m) => PollError::Connect { message: m.clone() },
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Connect(m) => write!(f, "connection failed: {m}"),
            TransportError::Timeout => f.write_str("timed out"),
            TransportError::Io(m) => write!(f, "connection broke: {m}"),
            TransportError::TooLarge { limit } => write!(f, "body larger than {limit} bytes"),
            TransportError::Invalid(m) => write!(f, "invalid request: {m}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TransportError {}

/// Sends one GET to one server. Implement this to bring your own HTTP stack.
///
/// The implementation must honour `request.timeout` (return
/// [`TransportError::Timeout`] when it expires) and cap the body, returning
/// [`TransportError::TooLarge`] rather than buffering without bound.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Sends `request` to `server` and returns its complete answer.
    async fn send(&self, server: &ServerConfig, request: Request) -> Result<Response, TransportError>;
}
