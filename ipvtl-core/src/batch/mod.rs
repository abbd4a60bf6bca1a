//! Batches: one kind of action over many channels, a few at a time.
//!
//! - [`BatchSpec`] says what to do: built from typed values, or from loose
//!   input (a JSON body, keyword arguments) through [`BatchInput`], which
//!   validates once for every caller: strict state names, bounded
//!   parallelism and target count, a threshold of at least 1.
//! - [`Batch`] runs it: a sans-IO machine the [`crate::Fleet`] drives with
//!   the same vocabulary as the others (`poll_target` / `handle_started`,
//!   `handle_refused`, `handle_finished` / `poll_event`, `take_report`).

mod input;
mod report;
mod run;

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::action::ActionKind;
use crate::ids::{ChannelId, ServerId};
use crate::model::{ChannelState, ServerConfig, ServerState};

pub use input::{BatchInput, FilterInput, TargetInput};
pub use report::{BatchProgress, BatchReport, BatchStop};
pub use run::Batch;

/// Highest `max_parallel` a batch may ask for.
pub const MAX_PARALLEL: usize = 64;
/// Most channels one batch may act on (listed, or matched by a filter).
pub const MAX_TARGETS: usize = 10_000;
/// `max_parallel` when none is given.
pub const DEFAULT_PARALLEL: usize = 4;

/// One channel a batch acts on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BatchTarget {
    /// The server.
    pub server: ServerId,
    /// The channel.
    pub channel: ChannelId,
}

/// Chooses channels from the fleet's last known state. Empty lists match
/// everything; servers without a known status and servers in maintenance
/// never match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchFilter {
    /// Only these servers.
    pub servers: Vec<ServerId>,
    /// Only servers carrying at least one of these tags.
    pub tags: Vec<String>,
    /// Only channels currently in one of these states.
    pub states: Vec<ChannelState>,
    /// Only these channel numbers.
    pub channels: Vec<ChannelId>,
}

impl BatchFilter {
    fn matches_server(&self, config: &ServerConfig, state: &ServerState) -> bool {
        !state.maintenance
            && (self.servers.is_empty() || self.servers.contains(&config.id))
            && (self.tags.is_empty() || config.tags.iter().any(|t| self.tags.contains(t)))
    }
}

/// Which channels a batch acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Targets {
    /// Exactly these channels, in this order.
    Channels(Vec<BatchTarget>),
    /// Whatever matches, in fleet order.
    Filter(BatchFilter),
}

/// A batch to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchSpec {
    /// What to do to each channel.
    pub kind: ActionKind,
    /// Which channels.
    pub targets: Targets,
    /// Actions under way at once, within `1..=MAX_PARALLEL`.
    pub max_parallel: usize,
    /// Stop starting new actions after the first failure.
    pub stop_on_failure: bool,
    /// Stop starting new actions once this many have failed (at least 1).
    pub failure_threshold: Option<usize>,
}

impl BatchSpec {
    /// A batch of `kind` over `targets`, [`DEFAULT_PARALLEL`] at a time,
    /// running to the end.
    pub fn new(kind: ActionKind, targets: Targets) -> Self {
        BatchSpec { kind, targets, max_parallel: DEFAULT_PARALLEL, stop_on_failure: false, failure_threshold: None }
    }

    /// Checks the bounds that do not depend on the fleet.
    pub fn validate(&self) -> Result<(), BatchError> {
        if !(1..=MAX_PARALLEL).contains(&self.max_parallel) {
            return Err(BatchError::Parallelism { got: self.max_parallel });
        }
        if self.failure_threshold == Some(0) {
            return Err(BatchError::ZeroThreshold);
        }
        if let Targets::Channels(list) = &self.targets {
            if list.len() > MAX_TARGETS {
                return Err(BatchError::TooManyTargets { count: list.len() });
            }
            let mut seen = BTreeSet::new();
            if let Some(t) = list.iter().find(|t| !seen.insert(*t)) {
                return Err(BatchError::Duplicate(t.clone()));
            }
        }
        Ok(())
    }
}

/// Why a batch (or the input it was built from) was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchError {
    /// `max_parallel` is outside `1..=MAX_PARALLEL`.
    Parallelism {
        /// The value given.
        got: usize,
    },
    /// `failure_threshold` is 0.
    ZeroThreshold,
    /// More channels than [`MAX_TARGETS`], listed or matched.
    TooManyTargets {
        /// How many.
        count: usize,
    },
    /// An explicit target list is empty.
    NoTargets,
    /// Both or neither of a target list and a filter were given.
    TargetsOrFilter,
    /// The same channel is listed twice.
    Duplicate(BatchTarget),
    /// The action is not `start`, `stop` or `restart`.
    UnknownAction {
        /// What was given.
        got: String,
    },
    /// A channel state in a filter is not one a server reports.
    UnknownState {
        /// What was given.
        got: String,
    },
    /// Channel 0 (channels are numbered from 1).
    ChannelZero,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Parallelism { got } => write!(f, "max_parallel must be within 1..={MAX_PARALLEL} (got {got})"),
            BatchError::ZeroThreshold => f.write_str("failure_threshold must be at least 1"),
            BatchError::TooManyTargets { count } => {
                write!(f, "a batch acts on at most {MAX_TARGETS} channels ({count} given or matched); narrow it")
            }
            BatchError::NoTargets => f.write_str("targets must list at least one channel"),
            BatchError::TargetsOrFilter => f.write_str("give exactly one of \"targets\" or \"filter\""),
            BatchError::Duplicate(t) => write!(f, "channel {} of {} is listed twice", t.channel, t.server),
            BatchError::UnknownAction { got } => {
                write!(f, "action must be \"start\", \"stop\" or \"restart\" (got {got:?})")
            }
            BatchError::UnknownState { got } => {
                f.write_str("unknown channel state ")?;
                write!(f, "{got:?}; valid states: ")?;
                for (i, s) in ChannelState::KNOWN.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(s.as_str())?;
                }
                Ok(())
            }
            BatchError::ChannelZero => f.write_str("channel numbers start at 1 (got 0)"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BatchError {}

/// Resolves a spec against the fleet: the channels it would act on, in order.
pub fn plan<'a>(
    spec: &BatchSpec,
    fleet: impl Iterator<Item = (&'a ServerConfig, &'a ServerState)>,
) -> Result<Vec<BatchTarget>, BatchError> {
    spec.validate()?;
    match &spec.targets {
        Targets::Channels(list) => Ok(list.clone()),
        Targets::Filter(filter) => {
            let mut out = Vec::new();
            let mut count = 0;
            for (config, state) in fleet.filter(|(c, s)| filter.matches_server(c, s)) {
                let Some(status) = &state.status else { continue };
                for ch in &status.channels {
                    let state_ok = filter.states.is_empty() || filter.states.contains(&ch.state);
                    let channel_ok = filter.channels.is_empty() || filter.channels.contains(&ch.id);
                    if state_ok && channel_ok {
                        count += 1;
                        if count <= MAX_TARGETS {
                            out.push(BatchTarget { server: config.id.clone(), channel: ch.id });
                        }
                    }
                }
            }
            if count > MAX_TARGETS {
                return Err(BatchError::TooManyTargets { count });
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests;
