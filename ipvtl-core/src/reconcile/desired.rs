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

/// Where a setting came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Source {
    /// Declared in the servers file; replaced by every reload.
    File,
    /// Set through the API; kept across reloads.
    Api,
}

impl Source {
    /// `file` or `api`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Api => "api",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The settings made at one scope: at most one from the file and one from
/// the API. The API one wins.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Layers<T> {
    api: Option<T>,
    file: Option<T>,
}

impl<T> Layers<T> {
    fn top(&self) -> Option<(&T, Source)> {
        match (&self.api, &self.file) {
            (Some(v), _) => Some((v, Source::Api)),
            (None, Some(v)) => Some((v, Source::File)),
            (None, None) => None,
        }
    }

    fn slot(&mut self, source: Source) -> &mut Option<T> {
        match source {
            Source::File => &mut self.file,
            Source::Api => &mut self.api,
        }
    }

    fn is_empty(&self) -> bool {
        self.api.is_none() && self.file.is_none()
    }
}

/// Settings of type `T` per channel, per server and per tag, resolved
/// narrowest first. Between two tags of one server, the one that comes
/// first in the server's `tags` wins.
///
/// Each setting records its [`Source`]. One scope can hold a file setting
/// and an API setting at once: **the API setting wins** over the file's at
/// the same scope (scopes still resolve narrowest first, whatever their
/// source). [`Scoped::replace_file`] (a reload) replaces every file setting
/// and keeps the API ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scoped<T> {
    channels: BTreeMap<(ServerId, ChannelId), Layers<T>>,
    servers: BTreeMap<ServerId, Layers<T>>,
    tags: BTreeMap<String, Layers<T>>,
}

impl<T> Default for Scoped<T> {
    fn default() -> Self {
        Scoped { channels: BTreeMap::new(), servers: BTreeMap::new(), tags: BTreeMap::new() }
    }
}

impl<T> Scoped<T> {
    /// Sets `value` for `scope` through the API; returns the API setting
    /// made there before.
    pub fn set(&mut self, scope: Scope, value: T) -> Option<T> {
        self.set_from(scope, value, Source::Api)
    }

    /// Sets `value` for `scope` from `source`; returns the setting of that
    /// source made there before.
    pub fn set_from(&mut self, scope: Scope, value: T, source: Source) -> Option<T> {
        let layers = match scope {
            Scope::Channel(s, c) => self.channels.entry((s, c)).or_insert_with(Layers::empty),
            Scope::Server(s) => self.servers.entry(s).or_insert_with(Layers::empty),
            Scope::Tag(t) => self.tags.entry(t).or_insert_with(Layers::empty),
        };
        layers.slot(source).replace(value)
    }

    /// Removes the setting of `scope` that is in force: the API one if
    /// there is one (a file setting there applies again), else the file one
    /// (until the next reload declares it again). Broader scopes apply when
    /// nothing is left.
    pub fn clear(&mut self, scope: &Scope) -> Option<T> {
        fn take<K: Ord, T>(map: &mut BTreeMap<K, Layers<T>>, key: &K) -> Option<T> {
            let layers = map.get_mut(key)?;
            let old = layers.api.take().or_else(|| layers.file.take());
            if layers.is_empty() {
                map.remove(key);
            }
            old
        }
        match scope {
            Scope::Channel(s, c) => take(&mut self.channels, &(s.clone(), *c)),
            Scope::Server(s) => take(&mut self.servers, s),
            Scope::Tag(t) => take(&mut self.tags, t),
        }
    }

    /// Replaces every file setting with `settings` (a reload); API
    /// settings stay.
    pub fn replace_file(&mut self, settings: impl IntoIterator<Item = (Scope, T)>) {
        fn drop_file<K: Ord, T>(map: &mut BTreeMap<K, Layers<T>>) {
            map.retain(|_, l| {
                l.file = None;
                !l.is_empty()
            });
        }
        drop_file(&mut self.channels);
        drop_file(&mut self.servers);
        drop_file(&mut self.tags);
        for (scope, value) in settings {
            self.set_from(scope, value, Source::File);
        }
    }

    fn layers(&self, scope: &Scope) -> Option<&Layers<T>> {
        match scope {
            Scope::Channel(s, c) => self.channels.get(&(s.clone(), *c)),
            Scope::Server(s) => self.servers.get(s),
            Scope::Tag(t) => self.tags.get(t),
        }
    }

    /// The setting in force exactly at `scope`.
    pub fn get(&self, scope: &Scope) -> Option<&T> {
        self.sourced(scope).map(|(v, _)| v)
    }

    /// The setting in force exactly at `scope`, and where it came from.
    pub fn sourced(&self, scope: &Scope) -> Option<(&T, Source)> {
        self.layers(scope).and_then(Layers::top)
    }

    /// The setting that applies to `channel` of `server`, and the scope it
    /// was made at; `None` when no scope covers it.
    pub fn resolve(&self, server: &ServerConfig, channel: ChannelId) -> Option<(&T, Scope)> {
        if let Some((v, _)) = self.channels.get(&(server.id.clone(), channel)).and_then(Layers::top) {
            return Some((v, Scope::Channel(server.id.clone(), channel)));
        }
        self.resolve_server(server)
    }

    /// The setting that applies to `channel` of `server`, like
    /// [`resolve`](Self::resolve) without the scope (and without building
    /// one: the poll path asks for every channel of every answer).
    pub fn value(&self, server: &ServerConfig, channel: ChannelId) -> Option<&T> {
        if !self.channels.is_empty() {
            if let Some((v, _)) = self.channels.get(&(server.id.clone(), channel)).and_then(Layers::top) {
                return Some(v);
            }
        }
        if let Some((v, _)) = self.servers.get(&server.id).and_then(Layers::top) {
            return Some(v);
        }
        server.tags.iter().find_map(|t| self.tags.get(t).and_then(Layers::top).map(|(v, _)| v))
    }

    /// The setting that applies to the server as a whole (server, then
    /// tags), ignoring per-channel settings.
    pub fn resolve_server(&self, server: &ServerConfig) -> Option<(&T, Scope)> {
        if let Some((v, _)) = self.servers.get(&server.id).and_then(Layers::top) {
            return Some((v, Scope::Server(server.id.clone())));
        }
        server.tags.iter().find_map(|t| self.tags.get(t).and_then(Layers::top).map(|(v, _)| (v, Scope::Tag(t.clone()))))
    }

    /// Every setting in force, narrowest scopes first.
    pub fn iter(&self) -> impl Iterator<Item = (Scope, &T)> + '_ {
        self.iter_sourced().map(|(s, v, _)| (s, v))
    }

    /// Every setting in force with its source, narrowest scopes first.
    pub fn iter_sourced(&self) -> impl Iterator<Item = (Scope, &T, Source)> + '_ {
        let ch = self.channels.iter().map(|((s, c), l)| (Scope::Channel(s.clone(), *c), l));
        let sv = self.servers.iter().map(|(s, l)| (Scope::Server(s.clone()), l));
        let tg = self.tags.iter().map(|(t, l)| (Scope::Tag(t.clone()), l));
        ch.chain(sv).chain(tg).filter_map(|(scope, l)| l.top().map(|(v, src)| (scope, v, src)))
    }

    /// True when nothing is set anywhere.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.servers.is_empty() && self.tags.is_empty()
    }
}

impl<T> Layers<T> {
    fn empty() -> Self {
        Layers { api: None, file: None }
    }
}
