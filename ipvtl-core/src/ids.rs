//! Newtype identifiers.

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;
use core::num::NonZeroU32;
use serde::{Deserialize, Serialize};

/// A server's id as written in `servers.json` (numbers are kept as their
/// decimal text). Ids are opaque: they never reach a URL.
///
/// The text is shared: a clone (every event, snapshot and map key names
/// its server) copies a pointer, not the text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerId(Arc<str>);

impl ServerId {
    /// Wraps an id.
    pub fn new(id: impl Into<String>) -> Self {
        ServerId(Arc::from(id.into()))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ServerId {
    fn from(s: &str) -> Self {
        ServerId(Arc::from(s))
    }
}

impl From<String> for ServerId {
    fn from(s: String) -> Self {
        ServerId(Arc::from(s))
    }
}

impl Serialize for ServerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ServerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(ServerId::from)
    }
}

impl core::borrow::Borrow<str> for ServerId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A channel number: 1-based, the N-th entry of a server's `channels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChannelId(NonZeroU32);

impl ChannelId {
    /// Channel `n`; `None` for 0.
    pub fn new(n: u32) -> Option<Self> {
        NonZeroU32::new(n).map(ChannelId)
    }

    /// The channel at 0-based position `index` in `channels`.
    pub fn from_index(index: usize) -> Self {
        let n = u32::try_from(index).unwrap_or(u32::MAX - 1).saturating_add(1);
        ChannelId(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
    }

    /// The channel number (1-based).
    pub fn get(self) -> u32 {
        self.0.get()
    }

    /// The 0-based position in `channels`.
    pub fn index(self) -> usize {
        (self.0.get() - 1) as usize
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! counter_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

counter_id!(
    /// Identifies one request the core asked the driver to send.
    RequestId
);
counter_id!(
    /// Identifies one channel action (start, stop or restart).
    ActionId
);
counter_id!(
    /// Identifies one batch of actions.
    BatchId
);
