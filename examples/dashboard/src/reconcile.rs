//! Desired state, healing and the reconciler's settings as the dashboard
//! keeps them: made through the API, stored (one row per kind and scope,
//! holding the setting's wire view) and brought back at start over what
//! the servers file declares (at one scope the API's wins, as in the
//! cluster). The reconciler itself is the core's; this only persists what
//! people told it.

use ipvtl_client::core::{ReconcilerConfig, Scope};
use ipvtl_client::reconcile::{parse_desired, PolicyInput, ReconcilerInput, ScopeInput};
use ipvtl_client::{ClientError, Cluster};
use serde::Deserialize;

use crate::audit::ReconcilerSettings;

/// The store's kinds of setting.
pub(crate) const DESIRED: &str = "desired";
pub(crate) const HEALING: &str = "healing";
pub(crate) const RECONCILER: &str = "reconciler";

/// The key of the reconciler's fleet-wide settings.
pub(crate) const FLEET_KEY: &str = r#"["fleet"]"#;

/// A scope as the store keys it: a JSON array, unambiguous whatever the
/// server ids and tags hold.
pub(crate) fn scope_key(scope: &Scope) -> String {
    let v = match scope {
        Scope::Channel(s, c) => serde_json::json!(["channel", s.as_str(), c.get()]),
        Scope::Server(s) => serde_json::json!(["server", s.as_str()]),
        Scope::Tag(t) => serde_json::json!(["tag", t]),
        _ => serde_json::json!(["other"]),
    };
    v.to_string()
}

impl From<&ReconcilerConfig> for ReconcilerSettings {
    fn from(c: &ReconcilerConfig) -> Self {
        ReconcilerSettings {
            max_parallel: c.max_parallel,
            storm_percent: c.storm_percent,
            storm_min: c.storm_min,
            dry_run: c.dry_run,
            paused: c.paused,
        }
    }
}

impl From<&ReconcilerSettings> for ReconcilerInput {
    fn from(s: &ReconcilerSettings) -> Self {
        ReconcilerInput {
            max_parallel: Some(s.max_parallel),
            storm_percent: Some(s.storm_percent),
            storm_min: Some(s.storm_min),
            dry_run: Some(s.dry_run),
            paused: Some(s.paused),
        }
    }
}

/// A stored desired-state or healing row: its view's fields that say what
/// to set (the view's other fields, `scope` and `source`, are ignored).
#[derive(Deserialize)]
struct StoredSetting {
    server_id: Option<String>,
    channel_id: Option<u32>,
    tag: Option<String>,
    desired: Option<String>,
    enabled: Option<bool>,
    grace_ms: Option<u64>,
    limit: Option<u32>,
    window_ms: Option<u64>,
    backoff_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
}

/// What `restore` did (applied at start, over the servers file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoredSettings {
    /// Settings applied.
    pub applied: usize,
    /// Settings left in the store but not applied, and why (a server no
    /// longer in the list, a row this binary cannot read).
    pub skipped: Vec<String>,
}

/// Applies the stored settings (`(kind, entry)` rows) to the cluster, as
/// made through the API.
pub(crate) fn restore(cluster: &Cluster, rows: &[(String, String)]) -> RestoredSettings {
    let mut out = RestoredSettings::default();
    for (kind, entry) in rows {
        match apply(cluster, kind, entry) {
            Ok(()) => out.applied += 1,
            Err(why) => out.skipped.push(format!("{kind} {entry}: {why}")),
        }
    }
    out
}

/// Follows the settings made through the API of other instances sharing
/// the fleet: `now` is what the store holds, `before` what it held at the
/// last look. New or changed rows are applied; a row gone takes its
/// setting away. Returns how many changed.
pub(crate) fn follow(cluster: &Cluster, before: &[(String, String)], now: &[(String, String)]) -> usize {
    let mut changed = 0;
    for (kind, entry) in now.iter().filter(|row| !before.contains(row)) {
        match apply(cluster, kind, entry) {
            Ok(()) => changed += 1,
            Err(why) => eprintln!("ipvtl-dashboard: another instance's setting was not applied: {kind} {entry}: {why}"),
        }
    }
    let kept: std::collections::HashSet<(&str, Option<Scope>)> =
        now.iter().map(|(kind, entry)| (kind.as_str(), scope_of(entry))).collect();
    for (kind, entry) in before.iter().filter(|row| !now.contains(row)) {
        let Some(scope) = scope_of(entry) else { continue };
        if kept.contains(&(kind.as_str(), Some(scope.clone()))) {
            continue; // changed, not gone: applied above
        }
        let cleared = match kind.as_str() {
            DESIRED => cluster.clear_desired(&scope).is_some(),
            HEALING => cluster.clear_healing(&scope).is_some(),
            _ => false,
        };
        changed += usize::from(cleared);
    }
    changed
}

/// The scope of a stored desired-state or healing row.
fn scope_of(entry: &str) -> Option<Scope> {
    let s: StoredSetting = serde_json::from_str(entry).ok()?;
    ScopeInput { server_id: s.server_id, channel_id: s.channel_id, tag: s.tag }.into_scope().ok()
}

fn apply(cluster: &Cluster, kind: &str, entry: &str) -> Result<(), String> {
    let bad = |e: &dyn std::fmt::Display| e.to_string();
    if kind == RECONCILER {
        let s: ReconcilerSettings = serde_json::from_str(entry).map_err(|e| bad(&e))?;
        return cluster.configure_reconciler(ReconcilerInput::from(&s)).map(drop).map_err(|e| bad(&e));
    }
    let s: StoredSetting = serde_json::from_str(entry).map_err(|e| bad(&e))?;
    let scope = ScopeInput { server_id: s.server_id, channel_id: s.channel_id, tag: s.tag }
        .into_scope()
        .map_err(|e| bad(&e))?;
    let done: Result<(), ClientError> = match kind {
        DESIRED => {
            let desired = parse_desired(s.desired.as_deref().unwrap_or("")).map_err(|e| bad(&e))?;
            cluster.set_desired(scope, desired)
        }
        HEALING => {
            let policy = PolicyInput {
                enabled: s.enabled,
                grace_ms: s.grace_ms,
                limit: s.limit,
                window_ms: s.window_ms,
                backoff_ms: s.backoff_ms,
                backoff_max_ms: s.backoff_max_ms,
            };
            cluster.set_healing(scope, policy.into_healing().map_err(|e| bad(&e))?)
        }
        other => return Err(format!("unknown kind {other:?}")),
    };
    done.map_err(|e| bad(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipvtl_client::core::{ChannelId, ServerId};

    #[test]
    fn scope_keys_are_unambiguous() {
        let a = scope_key(&Scope::Channel(ServerId::from("a\",1"), ChannelId::new(2).unwrap()));
        let b = scope_key(&Scope::Server(ServerId::from("a\",1")));
        assert_eq!(a, r#"["channel","a\",1",2]"#);
        assert_ne!(a, b);
        assert_eq!(scope_key(&Scope::Tag("rack-b".into())), r#"["tag","rack-b"]"#);
    }
}
