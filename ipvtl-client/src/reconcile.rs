//! Desired state and healing from loose input: a JSON body, keyword
//! arguments, a foreign record. Validated here, once, for every caller
//! (the dashboard, Python, uniffi); the callers pass what they were given
//! (`None` for "not given") and never restate a default.

use std::time::Duration;

use ipvtl_core::{ChannelId, Desired, HealPolicy, Healing, ReconcilerConfig, Scope, ServerId};
use serde::Deserialize;

use crate::error::ClientError;

const DESIRED: &str = "\"running\", \"idle\" or \"unmanaged\"";

fn invalid(message: impl Into<String>) -> ClientError {
    ClientError::Invalid(message.into())
}

/// Parses a desired state, strictly: `running`, `idle` or `unmanaged`.
pub fn parse_desired(s: &str) -> Result<Desired, ClientError> {
    Desired::parse(s).ok_or_else(|| invalid(format!("unknown desired state {s:?}: expected {DESIRED}")))
}

/// Where a setting applies, as given: a server (optionally one of its
/// channels) or a tag, never both. Unknown fields are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeInput {
    /// A server's id (alone: all its channels).
    #[serde(default)]
    pub server_id: Option<String>,
    /// A channel of that server, from 1.
    #[serde(default)]
    pub channel_id: Option<u32>,
    /// A tag: every channel of the servers that carry it.
    #[serde(default)]
    pub tag: Option<String>,
}

impl ScopeInput {
    /// A channel of a server.
    pub fn channel(server: &str, channel: u32) -> Self {
        ScopeInput { server_id: Some(server.into()), channel_id: Some(channel), tag: None }
    }

    /// Every channel of a server.
    pub fn server(server: &str) -> Self {
        ScopeInput { server_id: Some(server.into()), ..ScopeInput::default() }
    }

    /// Every channel of the servers carrying `tag`.
    pub fn tag(tag: &str) -> Self {
        ScopeInput { tag: Some(tag.into()), ..ScopeInput::default() }
    }

    /// The scope, or what is wrong with the input.
    pub fn into_scope(self) -> Result<Scope, ClientError> {
        match (self.server_id, self.channel_id, self.tag) {
            (Some(s), None, None) if !s.is_empty() => Ok(Scope::Server(ServerId::from(s))),
            (Some(s), Some(c), None) if !s.is_empty() => match ChannelId::new(c) {
                Some(c) => Ok(Scope::Channel(ServerId::from(s), c)),
                None => Err(invalid("channel_id must be at least 1 (channels are numbered from 1)")),
            },
            (None, None, Some(t)) if !t.is_empty() => Ok(Scope::Tag(t)),
            (None, Some(_), _) => Err(invalid("channel_id needs a server_id")),
            (Some(_), _, Some(_)) => Err(invalid("give a server_id or a tag, not both")),
            (None, None, None) => Err(invalid("give a server_id (and optionally a channel_id) or a tag")),
            _ => Err(invalid("server_id and tag must not be empty")),
        }
    }
}

/// A healing policy as given: `enabled` (true when not given) and the
/// policy's bounds; what is not given takes [`HealPolicy::default`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// Heal (true, the default) or only report drift (false).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// How long drift must last before the first attempt.
    #[serde(default)]
    pub grace_ms: Option<u64>,
    /// Most heals of one channel within the window (at least 1).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The sliding window the limit counts in (more than 0).
    #[serde(default)]
    pub window_ms: Option<u64>,
    /// Wait after a heal, doubled for each further attempt.
    #[serde(default)]
    pub backoff_ms: Option<u64>,
    /// Cap of the backoff (at least `backoff_ms`).
    #[serde(default)]
    pub backoff_max_ms: Option<u64>,
}

impl PolicyInput {
    /// The healing setting, or what is wrong with the input.
    pub fn into_healing(self) -> Result<Healing, ClientError> {
        let d = HealPolicy::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        let policy = HealPolicy {
            grace: ms(self.grace_ms, d.grace),
            limit: self.limit.unwrap_or(d.limit),
            window: ms(self.window_ms, d.window),
            backoff: ms(self.backoff_ms, d.backoff),
            backoff_max: ms(self.backoff_max_ms, d.backoff_max.max(ms(self.backoff_ms, d.backoff))),
        };
        if self.enabled == Some(false) {
            return Ok(Healing::Off);
        }
        if policy.limit == 0 {
            return Err(invalid("limit must be at least 1"));
        }
        if policy.window.is_zero() {
            return Err(invalid("window_ms must be more than 0"));
        }
        if policy.backoff_max < policy.backoff {
            return Err(invalid(format!(
                "backoff_max_ms ({}) must be at least backoff_ms ({})",
                policy.backoff_max.as_millis(),
                policy.backoff.as_millis()
            )));
        }
        Ok(Healing::On(policy))
    }
}

/// Changes to the reconciler's fleet-wide settings: what is given
/// replaces the current value, the rest stays.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcilerInput {
    /// Heals under way at once, fleet-wide (at least 1).
    #[serde(default)]
    pub max_parallel: Option<usize>,
    /// The storm guard's share of managed channels in trouble, 0 to 100.
    #[serde(default)]
    pub storm_percent: Option<u32>,
    /// ...and the least number of them that is a storm.
    #[serde(default)]
    pub storm_min: Option<usize>,
    /// Report heals instead of doing them.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Healing switched off by an operator.
    #[serde(default)]
    pub paused: Option<bool>,
}

impl ReconcilerInput {
    /// `current` with the given values in place, or what is wrong.
    pub fn apply(self, current: &ReconcilerConfig) -> Result<ReconcilerConfig, ClientError> {
        let mut c = current.clone();
        if let Some(n) = self.max_parallel {
            if n == 0 {
                return Err(invalid("max_parallel must be at least 1"));
            }
            c.max_parallel = n;
        }
        if let Some(p) = self.storm_percent {
            if p > 100 {
                return Err(invalid(format!("storm_percent must be 0 to 100, not {p}")));
            }
            c.storm_percent = p;
        }
        if let Some(n) = self.storm_min {
            c.storm_min = n;
        }
        if let Some(b) = self.dry_run {
            c.dry_run = b;
        }
        if let Some(b) = self.paused {
            c.paused = b;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_is_strict_and_names_the_valid_ones() {
        assert_eq!(parse_desired("running"), Ok(Desired::Running));
        assert_eq!(parse_desired("idle"), Ok(Desired::Idle));
        assert_eq!(parse_desired("unmanaged"), Ok(Desired::Unmanaged));
        let e = parse_desired("Running").unwrap_err();
        assert_eq!(e.kind(), "invalid");
        let m = e.to_string();
        assert!(m.contains("\"Running\"") && m.contains("running") && m.contains("idle") && m.contains("unmanaged"));
    }

    #[test]
    fn a_scope_is_a_channel_a_server_or_a_tag() {
        assert_eq!(
            ScopeInput::channel("s1", 2).into_scope(),
            Ok(Scope::Channel(ServerId::from("s1"), ChannelId::new(2).unwrap()))
        );
        assert_eq!(ScopeInput::server("s1").into_scope(), Ok(Scope::Server(ServerId::from("s1"))));
        assert_eq!(ScopeInput::tag("eu").into_scope(), Ok(Scope::Tag("eu".into())));
        let bad = [
            ScopeInput::default(),
            ScopeInput::channel("s1", 0),
            ScopeInput { channel_id: Some(1), ..ScopeInput::default() },
            ScopeInput { tag: Some("eu".into()), ..ScopeInput::server("s1") },
            ScopeInput::server(""),
            ScopeInput::tag(""),
        ];
        for b in bad {
            assert_eq!(b.clone().into_scope().map_err(|e| e.kind()), Err("invalid"), "{b:?}");
        }
        assert!(serde_json::from_str::<ScopeInput>(r#"{"server":"s1"}"#).is_err());
    }

    #[test]
    fn a_policy_takes_the_defaults_for_what_is_not_given() {
        assert_eq!(PolicyInput::default().into_healing(), Ok(Healing::On(HealPolicy::default())));
        let p = PolicyInput { grace_ms: Some(500), limit: Some(2), backoff_ms: Some(90_000), ..Default::default() };
        let Ok(Healing::On(p)) = p.into_healing() else { panic!() };
        assert_eq!((p.grace, p.limit), (Duration::from_millis(500), 2));
        assert_eq!(p.backoff_max, Duration::from_secs(90), "the default cap rises to a larger backoff");
        assert_eq!(PolicyInput { enabled: Some(false), ..Default::default() }.into_healing(), Ok(Healing::Off));
        for bad in [
            PolicyInput { limit: Some(0), ..Default::default() },
            PolicyInput { window_ms: Some(0), ..Default::default() },
            PolicyInput { backoff_ms: Some(10), backoff_max_ms: Some(5), ..Default::default() },
        ] {
            assert_eq!(bad.clone().into_healing().map_err(|e| e.kind()), Err("invalid"), "{bad:?}");
        }
        assert!(serde_json::from_str::<PolicyInput>(r#"{"grace":5}"#).is_err());
    }

    #[test]
    fn reconciler_input_changes_only_what_is_given() {
        let base = ReconcilerConfig::default();
        let c = ReconcilerInput { paused: Some(true), ..Default::default() }.apply(&base).unwrap();
        assert_eq!(c, ReconcilerConfig { paused: true, ..base.clone() });
        let c = ReconcilerInput { max_parallel: Some(9), dry_run: Some(true), ..Default::default() }.apply(&c).unwrap();
        assert_eq!((c.max_parallel, c.dry_run, c.paused), (9, true, true));
        assert!(ReconcilerInput { max_parallel: Some(0), ..Default::default() }.apply(&base).is_err());
        assert!(ReconcilerInput { storm_percent: Some(101), ..Default::default() }.apply(&base).is_err());
    }
}
