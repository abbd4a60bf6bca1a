//! A batch from loose input: a JSON body, keyword arguments, a foreign
//! record. Validated here, once, for every caller; the callers pass what
//! they were given (`None` for "not given") and never restate a default.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

use super::{BatchError, BatchFilter, BatchSpec, BatchTarget, Targets, DEFAULT_PARALLEL, MAX_TARGETS};
use crate::action::ActionKind;
use crate::ids::{ChannelId, ServerId};
use crate::model::ChannelState;

/// A batch as asked for from outside: `{"action": "restart", "targets":
/// [{"server_id", "channel_id"}] | "filter": {servers, tags, states,
/// channels}, "max_parallel", "stop_on_failure", "failure_threshold",
/// "dry_run"}`. Unknown fields are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    /// `start`, `stop` or `restart`.
    pub action: String,
    /// Exactly these channels (give this or `filter`).
    #[serde(default)]
    pub targets: Option<Vec<TargetInput>>,
    /// The channels that match (give this or `targets`).
    #[serde(default)]
    pub filter: Option<FilterInput>,
    /// Actions under way at once; [`DEFAULT_PARALLEL`] when not given.
    #[serde(default)]
    pub max_parallel: Option<usize>,
    /// Stop starting actions after the first failure; off when not given.
    #[serde(default)]
    pub stop_on_failure: Option<bool>,
    /// Stop starting actions once this many failed.
    #[serde(default)]
    pub failure_threshold: Option<usize>,
    /// Only plan: say which channels it would act on, act on none.
    #[serde(default)]
    pub dry_run: bool,
}

/// One listed channel.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetInput {
    /// The server's id.
    pub server_id: String,
    /// The channel number, from 1.
    pub channel_id: u32,
}

/// A filter as given; empty lists match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterInput {
    /// Server ids.
    #[serde(default)]
    pub servers: Vec<String>,
    /// Tags (a server matches with any one of them).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Channel states: `idle`, `running`, `stopping`.
    #[serde(default)]
    pub states: Vec<String>,
    /// Channel numbers, from 1.
    #[serde(default)]
    pub channels: Vec<u32>,
}

fn channel(n: u32) -> Result<ChannelId, BatchError> {
    ChannelId::new(n).ok_or(BatchError::ChannelZero)
}

impl FilterInput {
    fn into_filter(self) -> Result<BatchFilter, BatchError> {
        let states = self
            .states
            .iter()
            .map(|s| ChannelState::parse_known(s).ok_or_else(|| BatchError::UnknownState { got: s.clone() }))
            .collect::<Result<_, _>>()?;
        Ok(BatchFilter {
            servers: self.servers.into_iter().map(ServerId::from).collect(),
            tags: self.tags,
            states,
            channels: self.channels.into_iter().map(channel).collect::<Result<_, _>>()?,
        })
    }
}

impl BatchInput {
    /// The spec, or the first thing wrong with the input.
    pub fn into_spec(self) -> Result<BatchSpec, BatchError> {
        let kind = ActionKind::parse(&self.action).ok_or(BatchError::UnknownAction { got: self.action })?;
        let targets = match (self.targets, self.filter) {
            (Some(list), None) => {
                if list.is_empty() {
                    return Err(BatchError::NoTargets);
                }
                if list.len() > MAX_TARGETS {
                    return Err(BatchError::TooManyTargets { count: list.len() });
                }
                let list = list
                    .into_iter()
                    .map(|t| Ok(BatchTarget { server: ServerId::from(t.server_id), channel: channel(t.channel_id)? }))
                    .collect::<Result<_, BatchError>>()?;
                Targets::Channels(list)
            }
            (None, Some(filter)) => Targets::Filter(filter.into_filter()?),
            _ => return Err(BatchError::TargetsOrFilter),
        };
        let spec = BatchSpec {
            kind,
            targets,
            max_parallel: self.max_parallel.unwrap_or(DEFAULT_PARALLEL),
            stop_on_failure: self.stop_on_failure.unwrap_or(false),
            failure_threshold: self.failure_threshold,
        };
        spec.validate()?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::MAX_PARALLEL;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;

    fn input(json: &str) -> Result<BatchSpec, BatchError> {
        serde_json::from_str::<BatchInput>(json).expect("well-formed").into_spec()
    }

    #[test]
    fn defaults_come_from_the_core_and_values_pass_through() {
        let spec = input(r#"{"action":"restart","filter":{"states":["running"],"tags":["rack-b"]}}"#).unwrap();
        assert_eq!(spec.max_parallel, DEFAULT_PARALLEL);
        assert!(!spec.stop_on_failure);
        assert_eq!(spec.failure_threshold, None);
        let Targets::Filter(f) = spec.targets else { panic!("a filter") };
        assert_eq!(f.states, vec![ChannelState::Running]);
        assert_eq!(f.tags, vec!["rack-b".to_string()]);

        let spec = input(
            r#"{"action":"stop","targets":[{"server_id":"a","channel_id":2}],"max_parallel":64,
                "stop_on_failure":true,"failure_threshold":3}"#,
        )
        .unwrap();
        assert_eq!((spec.kind, spec.max_parallel, spec.stop_on_failure), (ActionKind::Stop, 64, true));
        assert_eq!(spec.failure_threshold, Some(3));
    }

    #[test]
    fn every_bad_input_gets_its_error() {
        let table: &[(&str, BatchError)] = &[
            (r#"{"action":"reboot","filter":{}}"#, BatchError::UnknownAction { got: "reboot".into() }),
            (r#"{"action":"start","filter":{"states":["runing"]}}"#, BatchError::UnknownState { got: "runing".into() }),
            (r#"{"action":"start","filter":{},"failure_threshold":0}"#, BatchError::ZeroThreshold),
            (r#"{"action":"start","filter":{},"max_parallel":0}"#, BatchError::Parallelism { got: 0 }),
            (r#"{"action":"start","filter":{},"max_parallel":65}"#, BatchError::Parallelism { got: 65 }),
            (r#"{"action":"start","targets":[]}"#, BatchError::NoTargets),
            (r#"{"action":"start"}"#, BatchError::TargetsOrFilter),
            (
                r#"{"action":"start","targets":[{"server_id":"a","channel_id":1}],"filter":{}}"#,
                BatchError::TargetsOrFilter,
            ),
            (r#"{"action":"start","targets":[{"server_id":"a","channel_id":0}]}"#, BatchError::ChannelZero),
            (r#"{"action":"start","filter":{"channels":[0]}}"#, BatchError::ChannelZero),
            (
                r#"{"action":"start","targets":[{"server_id":"a","channel_id":1},{"server_id":"a","channel_id":1}]}"#,
                BatchError::Duplicate(BatchTarget { server: "a".into(), channel: ChannelId::new(1).unwrap() }),
            ),
        ];
        for (json, want) in table {
            assert_eq!(&input(json).unwrap_err(), want, "{json}");
        }
        assert_eq!(MAX_PARALLEL, 64);
    }

    #[test]
    fn a_misspelt_state_names_the_valid_ones() {
        let e = input(r#"{"action":"start","filter":{"states":["runing"]}}"#).unwrap_err();
        assert_eq!(e.to_string(), "unknown channel state \"runing\"; valid states: idle, running, stopping");
    }

    #[test]
    fn target_count_is_bounded() {
        let many: Vec<String> =
            (0..=MAX_TARGETS).map(|i| format!(r#"{{"server_id":"s{i}","channel_id":1}}"#)).collect();
        let json = format!(r#"{{"action":"start","targets":[{}]}}"#, many.join(","));
        assert_eq!(input(&json).unwrap_err(), BatchError::TooManyTargets { count: MAX_TARGETS + 1 });
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<BatchInput>(r#"{"action":"start","filter":{},"paralel":3}"#).is_err());
    }
}
