//! Faults a simulated server can be told to have.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A misbehaviour of one server. Unless said otherwise a fault hits `/status`
/// and channel commands alike, and a command is carried out only when the
/// server answers it with 200.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// The listener is closed: connections are refused; requests on
    /// connections already open are dropped without an answer. The
    /// listener is bound again when the fault is cleared.
    Down,
    /// Connections are accepted and requests read, but never answered; the
    /// socket stays open until the client closes it.
    Hang,
    /// Every request answers `500 Internal Server Error`.
    Http500,
    /// `200` with a truncated, invalid JSON body (commands are carried out).
    Malformed,
    /// `200` with a valid-looking JSON body larger than 2 MiB (commands are
    /// carried out).
    Oversized,
    /// Correct answers, after this delay.
    Slow(Duration),
    /// The request is read, part of a response written, then the connection
    /// is reset (`SO_LINGER` 0, then close).
    Reset,
    /// Down for `period`, up for `period`, and so on, starting down.
    Flapping {
        /// How long each down and each up phase lasts.
        period: Duration,
    },
    /// `stop` answers 200 but the channel stays `stopping` until the fault is
    /// cleared (it then finishes stopping normally). Status is unaffected.
    StuckStopping,
    /// Channel commands answer 500; `/status` is unaffected.
    RejectCommands,
    /// The channels running when the fault was set stall, as when a
    /// transcoder's input dies: still `running`, at 0 fps and 0 Kbps, their
    /// uptime frozen. A channel (re)started after that runs normally, so a
    /// restart is the cure, as on a real box. Commands work.
    Stalled,
}

/// The default delay of `slow` and period of `flapping` when none is given.
const DEFAULT_MS: u64 = 2000;

impl Fault {
    /// The short name used in text and JSON forms.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Down => "down",
            Fault::Hang => "hang",
            Fault::Http500 => "http500",
            Fault::Malformed => "malformed",
            Fault::Oversized => "oversized",
            Fault::Slow(_) => "slow",
            Fault::Reset => "reset",
            Fault::Flapping { .. } => "flapping",
            Fault::StuckStopping => "stuck_stopping",
            Fault::RejectCommands => "reject_commands",
            Fault::Stalled => "stalled",
        }
    }

    /// True when the fault is down at `now`, given it was set at `since`.
    pub(crate) fn is_down(&self, since: Instant, now: Instant) -> bool {
        match *self {
            Fault::Down => true,
            Fault::Flapping { period } => flap_phase(since, now, period).0,
            _ => false,
        }
    }

    /// When the listener's state changes next (flapping only).
    pub(crate) fn next_change(&self, since: Instant, now: Instant) -> Option<Instant> {
        match *self {
            Fault::Flapping { period } => Some(flap_phase(since, now, period).1),
            _ => None,
        }
    }

    /// Parses the JSON form: a string as in [`Fault::from_str`], or an
    /// object `{"slow_ms": N}` / `{"flapping_ms": N}` / `{"kind": "...",
    /// "ms": N}`. `Ok(None)` for `null` (clear).
    pub fn from_json(v: &Value) -> Result<Option<Fault>, FaultParseError> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => s.parse().map(Some),
            Value::Object(map) => {
                let ms = |key: &str| -> Result<Option<u64>, FaultParseError> {
                    match map.get(key) {
                        None => Ok(None),
                        Some(n) => n
                            .as_u64()
                            .map(Some)
                            .ok_or_else(|| FaultParseError(format!("{key} must be a whole number of milliseconds"))),
                    }
                };
                if let Some(n) = ms("slow_ms")? {
                    return Ok(Some(Fault::Slow(Duration::from_millis(n))));
                }
                if let Some(n) = ms("flapping_ms")? {
                    return flapping(n).map(Some);
                }
                match map.get("kind").and_then(Value::as_str) {
                    Some(kind) => {
                        let text = match ms("ms")? {
                            Some(n) => format!("{kind}={n}"),
                            None => kind.to_string(),
                        };
                        text.parse().map(Some)
                    }
                    None => Err(FaultParseError("a fault object needs slow_ms, flapping_ms or kind".into())),
                }
            }
            _ => Err(FaultParseError("a fault is a string, an object or null".into())),
        }
    }

    /// The JSON form, the inverse of [`Fault::from_json`].
    pub fn to_json(&self) -> Value {
        match self {
            Fault::Slow(d) => serde_json::json!({ "slow_ms": d.as_millis() as u64 }),
            Fault::Flapping { period } => serde_json::json!({ "flapping_ms": period.as_millis() as u64 }),
            other => Value::String(other.kind().into()),
        }
    }
}

fn flapping(ms: u64) -> Result<Fault, FaultParseError> {
    if ms == 0 {
        return Err(FaultParseError("flapping period must be above 0 ms".into()));
    }
    Ok(Fault::Flapping { period: Duration::from_millis(ms) })
}

/// (down?, next change) for a flapping server set at `since`.
fn flap_phase(since: Instant, now: Instant, period: Duration) -> (bool, Instant) {
    let p = period.as_nanos().max(1);
    let n = now.saturating_duration_since(since).as_nanos() / p;
    let next = u64::try_from(n + 1).ok().and_then(|k| period.checked_mul(u32::try_from(k).ok()?));
    let next = next.and_then(|d| since.checked_add(d)).unwrap_or(now + period);
    (n.is_multiple_of(2), next)
}

impl fmt::Display for Fault {
    /// The text form: `down`, `hang`, `http500`, `malformed`, `oversized`,
    /// `reset`, `stuck_stopping`, `reject_commands`, `stalled`, `slow=MS`,
    /// `flapping=MS`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Slow(d) => write!(f, "slow={}", d.as_millis()),
            Fault::Flapping { period } => write!(f, "flapping={}", period.as_millis()),
            other => f.write_str(other.kind()),
        }
    }
}

impl FromStr for Fault {
    type Err = FaultParseError;

    /// Parses the text form (see `Display`); `-` may stand for `_`, `500` for
    /// `http500`, and `slow`/`flapping` without `=MS` mean 2000 ms.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        let (kind, ms) = match s.split_once('=') {
            Some((k, v)) => {
                let ms = v
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| FaultParseError(format!("{v:?} is not a number of milliseconds")))?;
                (k.trim().to_string(), Some(ms))
            }
            None => (s.clone(), None),
        };
        let no_arg = |f: Fault| match ms {
            None => Ok(f),
            Some(_) => Err(FaultParseError(format!("fault {kind} takes no =MS"))),
        };
        match kind.as_str() {
            "down" => no_arg(Fault::Down),
            "hang" => no_arg(Fault::Hang),
            "http500" | "http_500" | "500" => no_arg(Fault::Http500),
            "malformed" => no_arg(Fault::Malformed),
            "oversized" => no_arg(Fault::Oversized),
            "reset" => no_arg(Fault::Reset),
            "stuck_stopping" => no_arg(Fault::StuckStopping),
            "reject_commands" => no_arg(Fault::RejectCommands),
            "stalled" => no_arg(Fault::Stalled),
            "slow" => Ok(Fault::Slow(Duration::from_millis(ms.unwrap_or(DEFAULT_MS)))),
            "flapping" => flapping(ms.unwrap_or(DEFAULT_MS)),
            _ => Err(FaultParseError(format!(
                "unknown fault {kind:?} (expected down, hang, http500, malformed, oversized, slow[=MS], reset, \
                 flapping[=MS], stuck_stopping, reject_commands, stalled)"
            ))),
        }
    }
}

/// Why a fault description was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultParseError(pub String);

impl fmt::Display for FaultParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FaultParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let all = [
            Fault::Down,
            Fault::Hang,
            Fault::Http500,
            Fault::Malformed,
            Fault::Oversized,
            Fault::Slow(Duration::from_millis(1500)),
            Fault::Reset,
            Fault::Flapping { period: Duration::from_millis(300) },
            Fault::StuckStopping,
            Fault::RejectCommands,
            Fault::Stalled,
        ];
        for f in all {
            assert_eq!(f.to_string().parse::<Fault>(), Ok(f));
            assert_eq!(Fault::from_json(&f.to_json()), Ok(Some(f)));
        }
    }

    #[test]
    fn text_form_accepts_aliases_and_refuses_junk() {
        assert_eq!("Stuck-Stopping".parse(), Ok(Fault::StuckStopping));
        assert_eq!("500".parse(), Ok(Fault::Http500));
        assert_eq!("slow".parse(), Ok(Fault::Slow(Duration::from_millis(2000))));
        assert!("hang=5".parse::<Fault>().is_err());
        assert!("slow=abc".parse::<Fault>().is_err());
        assert!("flapping=0".parse::<Fault>().is_err());
        assert!("explode".parse::<Fault>().is_err());
    }

    #[test]
    fn json_forms() {
        let v: Value = serde_json::from_str(r#"{"slow_ms":2000}"#).unwrap();
        assert_eq!(Fault::from_json(&v), Ok(Some(Fault::Slow(Duration::from_secs(2)))));
        let v: Value = serde_json::from_str(r#"{"kind":"flapping","ms":100}"#).unwrap();
        assert_eq!(Fault::from_json(&v), Ok(Some(Fault::Flapping { period: Duration::from_millis(100) })));
        assert_eq!(Fault::from_json(&Value::Null), Ok(None));
        assert!(Fault::from_json(&serde_json::json!(3)).is_err());
        assert!(Fault::from_json(&serde_json::json!({"slow_ms": -1})).is_err());
    }

    #[test]
    fn flapping_alternates_starting_down() {
        let t0 = Instant::now();
        let f = Fault::Flapping { period: Duration::from_millis(100) };
        assert!(f.is_down(t0, t0));
        assert!(f.is_down(t0, t0 + Duration::from_millis(99)));
        assert!(!f.is_down(t0, t0 + Duration::from_millis(100)));
        assert!(f.is_down(t0, t0 + Duration::from_millis(250)));
        assert_eq!(f.next_change(t0, t0 + Duration::from_millis(250)), Some(t0 + Duration::from_millis(300)));
        assert!(Fault::Down.is_down(t0, t0));
        assert!(!Fault::Hang.is_down(t0, t0));
        assert_eq!(Fault::Down.next_change(t0, t0), None);
    }
}
