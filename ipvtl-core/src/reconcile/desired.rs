//! What a channel should be doing, and where each setting applies.

use alloc::collections::BTreeMap;
use alloc::string::String;
use core::fmt;

use crate::ids::{ChannelId, ServerId};
use crate::model::ServerConfig;

/// What a channel should be doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Desired {
    /// Nobody decided: never drifts, never touched. The default.
    #[default]
    Unmanaged,
    /// Should be transcoding, and making progress.
    Running,
    /// Should be stopped.
    Idle,
}

impl Desired {
    /// `unmanaged`, `running` or `idle`.
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Unmanaged => "unmanaged",
            Desired::Running => "running",
            Desired::Idle => "idle",
        }
    }

    /// Parses `unmanaged`, `running` or `idle` (strict: for input from people).
    pub fn parse(s: &str) -> Option<Self> {
        [Desired::Unmanaged, Desired::Running, Desired::Idle].into_iter().find(|d| d.as_str() == s)
    }
}

impl fmt::Display for Desired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a setting applies. The narrower wins: a channel's own setting over
/// its server's, a server's over its tags'.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// One channel.
    Channel(ServerId, ChannelId),
    /// Every channel of one server.
    Server(ServerId),
    /// Every channel of the servers carrying this tag.
    Tag(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Channel(s, c) => write!(f, "channel {c} of {s}"),
            Scope::Server(s) => write!(f, "server {s}"),
            Scope::Tag(t) => write!(f, "tag {t}"),
        }
    }
}

/// Settings of type `T` per channel, per server and per tag, resolved
/// narrowest first. Between two tags of one server, the one that comes
/// first in the server's `tags` wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scoped<T> {
    channels: BTreeMap<(ServerId, ChannelId), T>,
    servers: BTreeMap<ServerId, T>,
    tags: BTreeMap<String, T>,
}

impl<T> Default for Scoped<T> {
    fn default() -> Self {
        Scoped { channels: BTreeMap::new(), servers: BTreeMap::new(), tags: BTreeMap::new() }
    }
}

impl<T> Scoped<T> {
    /// Sets `value` for `scope`; returns what was set there before.
    pub fn set(&mut self, scope: Scope, value: T) -> Option<T> {
        match scope {
            Scope::Channel(s, c) => self.channels.insert((s, c), value),
            Scope::Server(s) => self.servers.insert(s, value),
            Scope::Tag(t) => self.tags.insert(t, value),
        }
    }

    /// Removes the setting of `scope` (broader ones apply again).
    pub fn clear(&mut self, scope: &Scope) -> Option<T> {
        match scope {
            Scope::Channel(s, c) => self.channels.remove(&(s.clone(), *c)),
            Scope::Server(s) => self.servers.remove(s),
            Scope::Tag(t) => self.tags.remove(t),
        }
    }

    /// The setting made exactly at `scope`.
    pub fn get(&self, scope: &Scope) -> Option<&T> {
        match scope {
            Scope::Channel(s, c) => self.channels.get(&(s.clone(), *c)),
            Scope::Server(s) => self.servers.get(s),
            Scope::Tag(t) => self.tags.get(t),
        }
    }

    /// The setting that applies to `channel` of `server`, and the scope it
    /// was made at; `None` when no scope covers it.
    pub fn resolve(&self, server: &ServerConfig, channel: ChannelId) -> Option<(&T, Scope)> {
        if let Some(v) = self.channels.get(&(server.id.clone(), channel)) {
            return Some((v, Scope::Channel(server.id.clone(), channel)));
        }
        self.resolve_server(server)
    }

    /// The setting that applies to the server as a whole (server, then
    /// tags), ignoring per-channel settings.
    pub fn resolve_server(&self, server: &ServerConfig) -> Option<(&T, Scope)> {
        if let Some(v) = self.servers.get(&server.id) {
            return Some((v, Scope::Server(server.id.clone())));
        }
        server.tags.iter().find_map(|t| self.tags.get(t).map(|v| (v, Scope::Tag(t.clone()))))
    }

    /// Every setting, narrowest scopes first.
    pub fn iter(&self) -> impl Iterator<Item = (Scope, &T)> + '_ {
        let ch = self.channels.iter().map(|((s, c), v)| (Scope::Channel(s.clone(), *c), v));
        let sv = self.servers.iter().map(|(s, v)| (Scope::Server(s.clone()), v));
        let tg = self.tags.iter().map(|(t, v)| (Scope::Tag(t.clone()), v));
        ch.chain(sv).chain(tg)
    }

    /// True when nothing is set anywhere.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.servers.is_empty() && self.tags.is_empty()
    }
}
