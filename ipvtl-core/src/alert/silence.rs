//! Silences: label matchers with an end time.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::labels::Labels;
use crate::time::Instant;

/// Identifies one silence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SilenceId(pub u64);

impl fmt::Display for SilenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a [`Matcher`] compares a label's value.
///
/// Regular expressions (`=~`, `!~`) are not supported: the core has no
/// regex engine and takes none as a dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum MatchOp {
    /// `=`: the value equals.
    Equal,
    /// `!=`: the value differs.
    NotEqual,
}

impl MatchOp {
    /// `=` or `!=`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
        }
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One condition on one label, as in Alertmanager: a label an alert does
/// not have counts as the empty string.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Matcher {
    /// The label's name.
    pub name: String,
    /// How the value is compared.
    pub op: MatchOp,
    /// The value compared with.
    pub value: String,
}

impl Matcher {
    /// `name=value`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher { name: name.into(), op: MatchOp::Equal, value: value.into() }
    }

    /// `name!=value`.
    pub fn not_equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher { name: name.into(), op: MatchOp::NotEqual, value: value.into() }
    }

    /// Parses `name=value` or `name!=value`. Spaces around the name and
    /// the value are trimmed; `"`-quotes around the value are removed
    /// (what is inside them is kept as written). `=~` and `!~` are
    /// refused: no regular expressions.
    pub fn parse(text: &str) -> Result<Self, SilenceError> {
        let malformed = || SilenceError::Malformed { text: String::from(text) };
        let at = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ' ')).ok_or_else(malformed)?;
        let (name, rest) = (text[..at].trim(), &text[at..]);
        if rest.starts_with("=~") || rest.starts_with("!~") {
            return Err(SilenceError::Regex { text: String::from(text) });
        }
        let (op, value) = if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Equal, v)
        } else {
            return Err(malformed());
        };
        if name.is_empty() || name.contains(' ') {
            return Err(malformed());
        }
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        Ok(Matcher { name: String::from(name), op, value: String::from(value) })
    }

    /// True when `labels` satisfy this matcher.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
        }
    }

    /// True when an alert without this label would match (`x=""` or
    /// `x!="something"`).
    pub fn matches_empty(&self) -> bool {
        match self.op {
            MatchOp::Equal => self.value.is_empty(),
            MatchOp::NotEqual => !self.value.is_empty(),
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"{}\"", self.name, self.op, self.value)
    }
}

/// Mutes every alert whose labels satisfy all its matchers, until
/// `ends_at`. A silenced alert is still tracked (state
/// [`super::AlertState::Silenced`]) but never notified; if it is still
/// active when the silence ends, it fires then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silence {
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// When the silence ends (exclusive: at `ends_at` it no longer holds).
    pub ends_at: Instant,
    /// Why, and who asked: free text for people.
    pub comment: String,
}

impl Silence {
    /// A silence of `matchers` until `ends_at`, without a comment.
    pub fn new(matchers: Vec<Matcher>, ends_at: Instant) -> Self {
        Silence { matchers, ends_at, comment: String::new() }
    }

    /// True when every matcher matches `labels`.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    /// True while the silence holds at `now`.
    pub fn is_active(&self, now: Instant) -> bool {
        now < self.ends_at
    }

    /// Checks the silence can be added at `now`: at least one matcher,
    /// names well-formed, one matcher that an alert without its label
    /// would fail (so it cannot silence everything, as Alertmanager
    /// requires), and an end after `now`.
    pub fn validate(&self, now: Instant) -> Result<(), SilenceError> {
        if self.matchers.is_empty() {
            return Err(SilenceError::NoMatchers);
        }
        if let Some(m) = self.matchers.iter().find(|m| m.name.is_empty()) {
            return Err(SilenceError::Malformed { text: alloc::format!("{m}") });
        }
        if self.matchers.iter().all(Matcher::matches_empty) {
            return Err(SilenceError::MatchesEverything);
        }
        if !self.is_active(now) {
            return Err(SilenceError::Ended { ends_at: self.ends_at, now });
        }
        Ok(())
    }
}

/// Why a silence or a matcher was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SilenceError {
    /// A silence needs at least one matcher.
    NoMatchers,
    /// Every matcher would match an alert without its label: the silence
    /// would mute (nearly) everything.
    MatchesEverything,
    /// The silence ends at or before the moment it is added.
    Ended {
        /// Its end.
        ends_at: Instant,
        /// When it was added.
        now: Instant,
    },
    /// A matcher is not `name=value` or `name!=value` with a name of
    /// letters, digits and `_`.
    Malformed {
        /// The matcher as given.
        text: String,
    },
    /// A regular-expression matcher (`=~`, `!~`): not supported.
    Regex {
        /// The matcher as given.
        text: String,
    },
    /// A restored silence reuses the id of one already present.
    DuplicateId {
        /// The id.
        id: SilenceId,
    },
}

impl fmt::Display for SilenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SilenceError::NoMatchers => f.write_str("a silence needs at least one matcher"),
            SilenceError::MatchesEverything => f.write_str(
                "every matcher also matches alerts without that label: the silence would mute everything; \
                 add a matcher like server=\"edge-1\"",
            ),
            SilenceError::Ended { ends_at, now } => {
                write!(f, "the silence ends at {ends_at}, not after now ({now})")
            }
            SilenceError::Malformed { text } => {
                write!(f, "matcher {text:?} is not name=value or name!=value (names: letters, digits, _)")
            }
            SilenceError::Regex { text } => {
                write!(f, "matcher {text:?}: regular expressions (=~, !~) are not supported, use = or !=")
            }
            SilenceError::DuplicateId { id } => write!(f, "silence {id} already exists"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SilenceError {}
