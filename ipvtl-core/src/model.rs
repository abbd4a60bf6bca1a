//! The domain: servers, their channels, and what the core knows about each.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;
use serde::{Deserialize, Serialize};

use crate::event::StallReason;
use crate::ids::{ChannelId, ServerId};
use crate::time::Instant;

/// The IPVTL default port.
pub const DEFAULT_PORT: u16 = 9527;

/// One server of the fleet, as configured in `servers.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerConfig {
    /// Unique id (a string; numeric ids are kept as their decimal text).
    pub id: ServerId,
    /// Display name; defaults to the id.
    pub name: String,
    /// Host name or IP address, without scheme, port or path.
    pub host: String,
    /// TCP port, default 9527.
    pub port: u16,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Free labels, used by batch filters.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl ServerConfig {
    /// A server with `name = id`, the default port, no description and no tags.
    pub fn new(id: impl Into<ServerId>, host: impl Into<String>) -> Self {
        let id = id.into();
        ServerConfig {
            name: String::from(id.as_str()),
            id,
            host: host.into(),
            port: DEFAULT_PORT,
            description: String::new(),
            tags: Vec::new(),
        }
    }

    /// The same server on `port`.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
}

/// What a channel is doing, as reported in `/status`. Unknown states are
/// kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ChannelState {
    /// Not transcoding.
    Idle,
    /// Transcoding.
    Running,
    /// Asked to stop, not idle yet.
    Stopping,
    /// A state this version does not know, kept as sent.
    Other(String),
}

impl ChannelState {
    /// Parses a state string; anything unknown becomes [`ChannelState::Other`].
    pub fn parse(s: &str) -> Self {
        match s {
            "idle" => ChannelState::Idle,
            "running" => ChannelState::Running,
            "stopping" => ChannelState::Stopping,
            other => ChannelState::Other(String::from(other)),
        }
    }

    /// The states a server reports, for strict input (filters).
    pub const KNOWN: [ChannelState; 3] = [ChannelState::Idle, ChannelState::Running, ChannelState::Stopping];

    /// Parses one of the [`KNOWN`](Self::KNOWN) states; `None` for anything
    /// else. For input from people, where a misspelt state must be an error
    /// rather than a state that matches nothing.
    pub fn parse_known(s: &str) -> Option<Self> {
        Self::KNOWN.into_iter().find(|k| k.as_str() == s)
    }

    /// The state as the server spells it.
    pub fn as_str(&self) -> &str {
        match self {
            ChannelState::Idle => "idle",
            ChannelState::Running => "running",
            ChannelState::Stopping => "stopping",
            ChannelState::Other(s) => s,
        }
    }
}

impl fmt::Display for ChannelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ChannelState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ChannelState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(ChannelState::parse(&s))
    }
}

/// Numbers parsed from a running channel's status text
/// (`HH:MM:SS <fps>fps@<kbps>Kbps`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    /// Time the channel has been running, in seconds.
    pub uptime_s: u64,
    /// Frames per second.
    pub fps: f32,
    /// Output bitrate in kbit/s.
    pub kbps: f32,
}

/// A channel's status text. Up to [`StatusText::INLINE`] bytes are kept
/// in the value itself (the usual `HH:MM:SS 25fps@2500Kbps` is 22 to 26),
/// longer texts on the heap: a fleet holds one per channel, replaced at
/// every poll, and an allocation each would cost more than the text.
/// Reads as a `&str` (`Deref`), serializes as a string.
#[derive(Clone)]
pub struct StatusText(TextRepr);

#[derive(Clone)]
enum TextRepr {
    Inline { len: u8, bytes: [u8; StatusText::INLINE] },
    Heap(alloc::boxed::Box<str>),
}

impl StatusText {
    /// The longest text kept inline, in bytes.
    pub const INLINE: usize = 30;

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Always whole UTF-8: only ever copied from a `&str`.
            TextRepr::Inline { len, bytes } => core::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default(),
            TextRepr::Heap(s) => s,
        }
    }
}

impl Default for StatusText {
    fn default() -> Self {
        StatusText(TextRepr::Inline { len: 0, bytes: [0; StatusText::INLINE] })
    }
}

impl From<&str> for StatusText {
    fn from(s: &str) -> Self {
        if s.len() <= StatusText::INLINE {
            let mut bytes = [0; StatusText::INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            StatusText(TextRepr::Inline { len: s.len() as u8, bytes })
        } else {
            StatusText(TextRepr::Heap(s.into()))
        }
    }
}

impl From<String> for StatusText {
    fn from(s: String) -> Self {
        if s.len() <= StatusText::INLINE {
            StatusText::from(s.as_str())
        } else {
            StatusText(TextRepr::Heap(s.into_boxed_str()))
        }
    }
}

impl From<StatusText> for String {
    fn from(t: StatusText) -> Self {
        match t.0 {
            TextRepr::Heap(s) => s.into_string(),
            TextRepr::Inline { .. } => String::from(t.as_str()),
        }
    }
}

impl core::ops::Deref for StatusText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for StatusText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl core::borrow::Borrow<str> for StatusText {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for StatusText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for StatusText {}

impl PartialEq<str> for StatusText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for StatusText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl core::hash::Hash for StatusText {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h);
    }
}

impl fmt::Debug for StatusText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for StatusText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StatusText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StatusText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = StatusText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StatusText, E> {
                Ok(StatusText::from(v))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<StatusText, E> {
                Ok(StatusText::from(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// One channel of a server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// 1-based channel number (position in `channels` + 1).
    pub id: ChannelId,
    /// Current state.
    pub state: ChannelState,
    /// The raw status text, always kept.
    pub status: StatusText,
    /// Numbers parsed from `status`, when it matches the usual format.
    pub stats: Option<ChannelStats>,
    /// Fields this version does not know, kept as sent.
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// A channel's fields this version does not know, kept as sent: reads as
/// the map (`Deref`). Usually there are none, and then it holds no map
/// (8 bytes instead of an empty map's 24, in every channel of a fleet).
#[derive(Clone, Debug, Default)]
#[allow(clippy::box_collection)] // the point: 8 bytes when there is no map
pub struct Extra(Option<alloc::boxed::Box<BTreeMap<String, serde_json::Value>>>);

/// What an [`Extra`] without fields reads as.
static NO_FIELDS: BTreeMap<String, serde_json::Value> = BTreeMap::new();

impl Extra {
    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|m| m.is_empty())
    }

    /// The fields, to change (made when there were none).
    pub fn fields_mut(&mut self) -> &mut BTreeMap<String, serde_json::Value> {
        self.0.get_or_insert_with(Default::default)
    }
}

impl core::ops::Deref for Extra {
    type Target = BTreeMap<String, serde_json::Value>;
    fn deref(&self) -> &Self::Target {
        self.0.as_deref().unwrap_or(&NO_FIELDS)
    }
}

/// Equal when the fields are: no map and an emptied one are the same.
impl PartialEq for Extra {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl From<BTreeMap<String, serde_json::Value>> for Extra {
    fn from(m: BTreeMap<String, serde_json::Value>) -> Self {
        Extra((!m.is_empty()).then(|| alloc::boxed::Box::new(m)))
    }
}

impl Serialize for Extra {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Extra {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::deserialize(d).map(Extra::from)
    }
}

/// One `/status` answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Per-core CPU usage in percent.
    pub cpu: Vec<f32>,
    /// Channels in server order.
    pub channels: Vec<Channel>,
    /// Top-level fields this version does not know, kept as sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Status {
    /// Mean CPU usage over all cores, `None` when no core is reported.
    pub fn cpu_avg(&self) -> Option<f32> {
        if self.cpu.is_empty() {
            return None;
        }
        Some(self.cpu.iter().sum::<f32>() / self.cpu.len() as f32)
    }

    /// Channel `id`, if the server reported that many channels.
    pub fn channel(&self, id: ChannelId) -> Option<&Channel> {
        self.channels.get(id.index())
    }

    /// How many channels are in `state`.
    pub fn count_in(&self, state: &ChannelState) -> usize {
        self.channels.iter().filter(|c| &c.state == state).count()
    }
}

/// A server's health as the poller sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Health {
    /// Not polled yet (or not enough results to decide).
    #[default]
    Unknown,
    /// Answering `/status` with a good body.
    Online,
    /// Not reachable: refused, timed out, reset, for `offline_after` polls in a row.
    Offline,
    /// Reachable but answering garbage (HTTP error, malformed or oversized body).
    Error,
}

impl Health {
    /// Every health, in display order.
    pub const ALL: [Health; 4] = [Health::Online, Health::Offline, Health::Error, Health::Unknown];

    /// Lower-case name, as in the dashboard API.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Online => "online",
            Health::Offline => "offline",
            Health::Error => "error",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one poll of a server failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PollError {
    /// The connection could not be made (refused, unreachable, DNS).
    Connect {
        /// What the transport said.
        message: String,
    },
    /// No complete answer within the timeout.
    Timeout {
        /// The timeout that expired, in milliseconds.
        after_ms: u64,
    },
    /// The connection broke mid-exchange (reset, truncated).
    Io {
        /// What the transport said.
        message: String,
    },
    /// The server answered with a non-2xx HTTP status.
    Http {
        /// The HTTP status code.
        code: u16,
    },
    /// The body was not a usable `/status` document.
    Malformed {
        /// What was wrong, with the position.
        message: String,
    },
    /// The body exceeded the size cap.
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
}

impl PollError {
    /// True when the server could not be reached at all (counts toward
    /// `offline`); false when it answered but badly (counts toward `error`).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, PollError::Connect { .. } | PollError::Timeout { .. } | PollError::Io { .. })
    }

    /// A short machine-readable kind: `connect`, `timeout`, `io`, `http`,
    /// `malformed`, `too_large`.
    pub fn kind(&self) -> &'static str {
        match self {
            PollError::Connect { .. } => "connect",
            PollError::Timeout { .. } => "timeout",
            PollError::Io { .. } => "io",
            PollError::Http { .. } => "http",
            PollError::Malformed { .. } => "malformed",
            PollError::TooLarge { .. } => "too_large",
        }
    }
}

impl fmt::Display for PollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollError::Connect { message } => write!(f, "connection failed: {message}"),
            PollError::Timeout { after_ms } => write!(f, "no answer within {after_ms} ms"),
            PollError::Io { message } => write!(f, "connection broke: {message}"),
            PollError::Http { code } => write!(f, "server answered HTTP {code}"),
            PollError::Malformed { message } => write!(f, "malformed /status body: {message}"),
            PollError::TooLarge { limit } => write!(f, "/status body larger than {limit} bytes"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PollError {}

/// Everything the poller knows about one server.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerState {
    /// Current health.
    pub health: Health,
    /// The last good status; kept when a later poll fails. Shared, not
    /// copied, by snapshots and whatever holds them.
    pub status: Option<Arc<Status>>,
    /// When the last good status arrived.
    pub last_ok_at: Option<Instant>,
    /// When the last poll (good or bad) finished.
    pub last_poll_at: Option<Instant>,
    /// Round-trip time of the last poll.
    pub latency: Option<Duration>,
    /// Polls failed in a row.
    pub consecutive_failures: u32,
    /// Why the last poll failed; `None` after a good poll.
    pub error: Option<PollError>,
    /// True while the server is in maintenance: polled, but no health alarms
    /// and no actions.
    pub maintenance: bool,
    /// The running channels that look stalled as of the last good status,
    /// and why (0 fps, or uptime frozen across polls).
    pub stalled: BTreeMap<ChannelId, StallReason>,
}

impl Default for ServerState {
    fn default() -> Self {
        ServerState {
            health: Health::Unknown,
            status: None,
            last_ok_at: None,
            last_poll_at: None,
            latency: None,
            consecutive_failures: 0,
            error: None,
            maintenance: false,
            stalled: BTreeMap::new(),
        }
    }
}

impl ServerState {
    /// True when `status` is older than the last poll (that poll failed).
    pub fn is_stale(&self) -> bool {
        self.status.is_some() && self.error.is_some()
    }

    /// Why channel `id` looks stalled, if it does.
    pub fn stall(&self, id: ChannelId) -> Option<StallReason> {
        self.stalled.get(&id).copied()
    }

    /// Age of the last good status at `now`.
    pub fn status_age(&self, now: Instant) -> Option<Duration> {
        self.last_ok_at.map(|t| now.saturating_since(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::*;

    #[test]
    fn a_status_text_is_inline_up_to_its_limit_and_reads_back_whole() {
        assert_eq!(core::mem::size_of::<StatusText>(), 32);
        let at_limit = "01:02:03 29.97fps@12000Kbps ab";
        assert_eq!(at_limit.len(), StatusText::INLINE);
        assert!(matches!(StatusText::from(at_limit).0, TextRepr::Inline { .. }));
        let beyond = "01:02:03 29.97fps@12000Kbps abc";
        assert!(matches!(StatusText::from(beyond).0, TextRepr::Heap(_)));
        assert!(matches!(StatusText::from(String::from(beyond)).0, TextRepr::Heap(_)));
        for s in ["", "é", at_limit, beyond, "ünïcödé ünïcödé ünïcödé ünï"] {
            let t = StatusText::from(s);
            assert_eq!(t.as_str(), s);
            assert_eq!(t, s);
            assert_eq!(String::from(t.clone()), s);
            assert_eq!(serde_json::to_string(&t).unwrap(), serde_json::to_string(s).unwrap());
            assert_eq!(serde_json::from_str::<StatusText>(&serde_json::to_string(s).unwrap()).unwrap(), t);
        }
        assert_eq!(StatusText::default(), "");
    }

    #[test]
    fn a_channel_without_unknown_fields_holds_no_map() {
        // 16 channels a server, 10 000 servers: each byte is 160 KB.
        assert_eq!(core::mem::size_of::<Channel>(), 96);
        let none = Extra::from(BTreeMap::new());
        assert!(none.0.is_none() && none.is_empty() && none.keys().next().is_none());
        let mut some = Extra::default();
        some.fields_mut().insert("codec".into(), serde_json::json!("h264"));
        assert!(!some.is_empty());
        assert_eq!(some["codec"], "h264");
        let json = serde_json::to_string(&some).unwrap();
        assert_eq!(json, r#"{"codec":"h264"}"#);
        assert_eq!(serde_json::from_str::<Extra>(&json).unwrap(), some);
        assert_eq!(serde_json::from_str::<Extra>("{}").unwrap().0, None);
        some.fields_mut().clear();
        assert_eq!(some, none);
    }

    proptest! {
        #[test]
        fn a_status_text_says_what_it_was_given(s in ".{0,40}") {
            let t = StatusText::from(s.as_str());
            prop_assert_eq!(t.as_str(), s.as_str());
            prop_assert_eq!(t.to_string(), s.clone());
            prop_assert_eq!(StatusText::from(s.clone()), t);
        }
    }
}
