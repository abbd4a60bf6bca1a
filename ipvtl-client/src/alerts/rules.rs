//! The rules and default silences of an alerts file: the `[rules.*]`
//! tables, `[[silences]]` and `history` of the TOML file the dashboard
//! reads with `--alerts`, parsed here once for every caller (the
//! dashboard, [`super::AlertWatch`], the bindings). Every rule takes its
//! default ([`AlertConfig::default`]) unless the file changes it.
//!
//! ```toml
//! [rules.server_down]
//! for = "2m"               # a number is seconds; or "500ms", "90s", "5m", "1h", "1d"
//! severity = "critical"    # critical, warning or info
//!
//! [rules.cpu_high]
//! percent = 95
//!
//! [rules.action_failed]
//! hold = "15m"
//! heals = false
//!
//! [[silences]]
//! matchers = ["server=lab-1"]
//! comment = "the lab box"  # ends_at (Unix seconds) or duration; neither: for as long as the file
//! ```
//!
//! The rules' keys: every rule has `enabled`, `severity` and `for`
//! (`action_failed` and `batch_failed`: `hold` instead); `cpu_high` has
//! `percent`, `action_failed` `heals` and `batch_actions`. The dashboard's
//! own sections (`[[receivers]]`, `[delivery]`) are accepted and left to
//! it. Anything else is refused, naming the line and column.

use std::time::Duration;

use ipvtl_core::alert::{AlertConfig, AlertConfigError, Matcher, Rule, RuleKind, Severity, Silence};
use ipvtl_core::Instant;
use serde::de::{self, Deserializer, IgnoredAny};
use serde::Deserialize;

use crate::error::ClientError;

/// Rules and default silences, validated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertRules {
    /// The rules (and the size of the history).
    pub config: AlertConfig,
    /// Silences in force from the moment the rules are applied.
    pub silences: Vec<DefaultSilence>,
}

/// A silence of the alerts file: in force from the moment the rules are
/// applied, until `ends_at` (Unix seconds) or for `duration`, else for as
/// long as the rules are.
#[derive(Clone, Debug, PartialEq)]
pub struct DefaultSilence {
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// Its end, Unix seconds.
    pub ends_at: Option<f64>,
    /// Or how long from the moment it is applied.
    pub duration: Option<Duration>,
    /// Why.
    pub comment: String,
}

impl From<AlertConfig> for AlertRules {
    fn from(config: AlertConfig) -> Self {
        AlertRules { config, silences: Vec::new() }
    }
}

impl AlertRules {
    /// Parses and validates an alerts file's text. An error names the
    /// line and column, and why.
    pub fn from_toml_str(text: &str) -> Result<Self, ClientError> {
        let doc: Doc = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| format!("{}: ", line_column(text, s.start))).unwrap_or_default();
            invalid(format!("{at}{}", e.message().trim_end()))
        })?;
        doc.into_rules()
    }

    /// The same document as JSON (`{"rules": {"server_down": {"for": 2}},
    /// "silences": [...]}`): for callers that hold it as data (a Python
    /// dict). Errors say what is wrong; JSON has no lines to name.
    pub fn from_json_str(text: &str) -> Result<Self, ClientError> {
        let doc: Doc = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        doc.into_rules()
    }
}

fn invalid(why: String) -> ClientError {
    ClientError::Invalid(format!("alert rules: {why}"))
}

/// `line L, column C` of byte offset `at` in `text` (both from 1).
pub fn line_column(text: &str, at: usize) -> String {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    rules: RulesSpec,
    #[serde(default)]
    silences: Vec<SilenceSpec>,
    history: Option<usize>,
    /// The dashboard's.
    #[serde(default)]
    #[allow(dead_code)]
    receivers: Option<IgnoredAny>,
    /// The dashboard's.
    #[serde(default)]
    #[allow(dead_code)]
    delivery: Option<IgnoredAny>,
}

impl Doc {
    fn into_rules(self) -> Result<AlertRules, ClientError> {
        let mut config = AlertConfig::default();
        let r = self.rules;
        rule(&mut config.server_down, r.server_down);
        rule(&mut config.channel_stalled, r.channel_stalled);
        rule(&mut config.drift, r.drift);
        rule(&mut config.heal_degraded, r.heal_degraded);
        rule(&mut config.healing_paused, r.healing_paused);
        rule(&mut config.store_failing, r.store_failing);
        if let Some(c) = r.cpu_high {
            let t = &mut config.cpu_high;
            t.enabled = c.enabled.unwrap_or(t.enabled);
            t.r#for = c.r#for.map_or(t.r#for, |d| d.0);
            t.severity = c.severity.map_or(t.severity, |s| s.0);
            t.percent = c.percent.unwrap_or(t.percent);
        }
        if let Some(c) = r.action_failed {
            let t = &mut config.action_failed;
            t.enabled = c.enabled.unwrap_or(t.enabled);
            t.hold = c.hold.map_or(t.hold, |d| d.0);
            t.severity = c.severity.map_or(t.severity, |s| s.0);
            t.heals = c.heals.unwrap_or(t.heals);
            t.batch_actions = c.batch_actions.unwrap_or(t.batch_actions);
        }
        if let Some(c) = r.batch_failed {
            let t = &mut config.batch_failed;
            t.enabled = c.enabled.unwrap_or(t.enabled);
            t.hold = c.hold.map_or(t.hold, |d| d.0);
            t.severity = c.severity.map_or(t.severity, |s| s.0);
        }
        if let Some(h) = self.history {
            config.history = h;
        }
        // Each table checked itself where it was read (so the error has
        // its place); this is the backstop.
        config.validate().map_err(|e| invalid(e.to_string()))?;
        Ok(AlertRules { config, silences: self.silences.into_iter().map(|s| s.0).collect() })
    }
}

fn rule(target: &mut Rule, spec: Option<RuleSpec>) {
    let Some(s) = spec else { return };
    target.enabled = s.enabled.unwrap_or(target.enabled);
    target.r#for = s.r#for.map_or(target.r#for, |d| d.0);
    target.severity = s.severity.map_or(target.severity, |s| s.0);
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RulesSpec {
    server_down: Option<RuleSpec>,
    channel_stalled: Option<RuleSpec>,
    drift: Option<RuleSpec>,
    heal_degraded: Option<RuleSpec>,
    healing_paused: Option<RuleSpec>,
    store_failing: Option<RuleSpec>,
    cpu_high: Option<CpuSpec>,
    action_failed: Option<ActionFailedSpec>,
    batch_failed: Option<FailureSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    enabled: Option<bool>,
    r#for: Option<Dur>,
    severity: Option<Sev>,
}

#[derive(Deserialize)]
#[serde(try_from = "CpuRaw")]
struct CpuSpec {
    enabled: Option<bool>,
    r#for: Option<Dur>,
    severity: Option<Sev>,
    percent: Option<f32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CpuRaw {
    enabled: Option<bool>,
    r#for: Option<Dur>,
    severity: Option<Sev>,
    percent: Option<f32>,
}

impl TryFrom<CpuRaw> for CpuSpec {
    type Error = String;
    fn try_from(c: CpuRaw) -> Result<Self, String> {
        match c.percent {
            Some(percent) if !(percent > 0.0 && percent <= 100.0) => {
                Err(AlertConfigError::CpuPercent { percent }.to_string())
            }
            _ => Ok(CpuSpec { enabled: c.enabled, r#for: c.r#for, severity: c.severity, percent: c.percent }),
        }
    }
}

fn hold_of(rule: RuleKind, hold: Option<Dur>) -> Result<Option<Dur>, String> {
    match hold {
        Some(d) if d.0.is_zero() => Err(AlertConfigError::ZeroHold { rule }.to_string()),
        other => Ok(other),
    }
}

#[derive(Deserialize)]
#[serde(try_from = "FailureRaw")]
struct FailureSpec {
    enabled: Option<bool>,
    hold: Option<Dur>,
    severity: Option<Sev>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailureRaw {
    enabled: Option<bool>,
    hold: Option<Dur>,
    severity: Option<Sev>,
}

impl TryFrom<FailureRaw> for FailureSpec {
    type Error = String;
    fn try_from(c: FailureRaw) -> Result<Self, String> {
        let hold = hold_of(RuleKind::BatchFailed, c.hold)?;
        Ok(FailureSpec { enabled: c.enabled, hold, severity: c.severity })
    }
}

#[derive(Deserialize)]
#[serde(try_from = "ActionFailedRaw")]
struct ActionFailedSpec {
    enabled: Option<bool>,
    hold: Option<Dur>,
    severity: Option<Sev>,
    heals: Option<bool>,
    batch_actions: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionFailedRaw {
    enabled: Option<bool>,
    hold: Option<Dur>,
    severity: Option<Sev>,
    heals: Option<bool>,
    batch_actions: Option<bool>,
}

impl TryFrom<ActionFailedRaw> for ActionFailedSpec {
    type Error = String;
    fn try_from(c: ActionFailedRaw) -> Result<Self, String> {
        let hold = hold_of(RuleKind::ActionFailed, c.hold)?;
        Ok(ActionFailedSpec {
            enabled: c.enabled,
            hold,
            severity: c.severity,
            heals: c.heals,
            batch_actions: c.batch_actions,
        })
    }
}

#[derive(Deserialize)]
#[serde(try_from = "SilenceRaw")]
struct SilenceSpec(DefaultSilence);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceRaw {
    matchers: Vec<String>,
    ends_at: Option<f64>,
    duration: Option<Dur>,
    comment: Option<String>,
}

impl TryFrom<SilenceRaw> for SilenceSpec {
    type Error = String;
    fn try_from(s: SilenceRaw) -> Result<Self, String> {
        let fail = |why: String| format!("silence: {why}");
        let matchers: Vec<Matcher> =
            s.matchers.iter().map(|m| Matcher::parse(m)).collect::<Result<_, _>>().map_err(|e| fail(e.to_string()))?;
        if s.ends_at.is_some() && s.duration.is_some() {
            return Err(fail("give ends_at or duration, not both".into()));
        }
        // The same checks as a silence made through an API.
        Silence::new(matchers.clone(), Instant::from_millis(u64::MAX / 2))
            .validate(Instant::ZERO)
            .map_err(|e| fail(e.to_string()))?;
        Ok(SilenceSpec(DefaultSilence {
            matchers,
            ends_at: s.ends_at,
            duration: s.duration.map(|d| d.0),
            comment: s.comment.unwrap_or_default(),
        }))
    }
}

/// A duration in a configuration file: a number of seconds, or a string
/// with a unit (`ms`, `s`, `m`, `h`, `d`; see [`parse_duration`]). For the
/// alerts file's other sections too (the dashboard's `[delivery]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Float(f64),
            Text(String),
        }
        let bad = |what: &str| {
            de::Error::custom(format!(
                "{what} is not a duration: use seconds (30) or a number with a unit (500ms, 90s, 5m, 1h, 1d)"
            ))
        };
        match Raw::deserialize(d)? {
            Raw::Int(s) => Ok(Dur(Duration::from_secs(s))),
            Raw::Float(s) if (0.0..1e9).contains(&s) => Ok(Dur(Duration::from_secs_f64(s))),
            Raw::Float(s) => Err(bad(&s.to_string())),
            Raw::Text(t) => parse_duration(&t).map(Dur).ok_or_else(|| bad(&format!("{t:?}"))),
        }
    }
}

/// `500ms`, `90s`, `5m`, `1h`, `1d`, `1.5s` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().ok()?;
    let per = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return None,
    };
    let secs = n * per;
    (0.0..1e9).contains(&secs).then(|| Duration::from_secs_f64(secs))
}

struct Sev(Severity);

impl<'de> Deserialize<'de> for Sev {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "critical" => Ok(Sev(Severity::Critical)),
            "warning" => Ok(Sev(Severity::Warning)),
            "info" => Ok(Sev(Severity::Info)),
            other => Err(de::Error::custom(format!("severity {other:?}: use critical, warning or info"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match AlertRules::from_toml_str(text) {
            Err(ClientError::Invalid(m)) => m,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn overrides_apply_and_the_rest_stays_default() {
        let text = "[rules.server_down]\nfor = \"1s\"\nseverity = \"warning\"\n[rules.cpu_high]\npercent = 75\n\
                    [rules.action_failed]\nheals = true\n";
        let r = AlertRules::from_toml_str(text).unwrap();
        assert_eq!(r.config.server_down.r#for, Duration::from_secs(1));
        assert_eq!(r.config.server_down.severity, Severity::Warning);
        assert_eq!(r.config.cpu_high.percent, 75.0);
        assert!(r.config.action_failed.heals);
        assert_eq!(r.config.drift, AlertConfig::default().drift);
        assert_eq!(AlertRules::from_toml_str("").unwrap(), AlertRules::default());
    }

    #[test]
    fn silences_and_the_dashboards_sections() {
        let text = "history = 8\n[[silences]]\nmatchers = [\"server=lab-1\", \"severity!=critical\"]\n\
                    duration = \"1h\"\ncomment = \"lab\"\n[[receivers]]\ntype = \"alertmanager\"\n\
                    url = \"http://x\"\n[delivery]\nresend = 5\n";
        let r = AlertRules::from_toml_str(text).unwrap();
        assert_eq!(r.config.history, 8);
        let s = &r.silences[0];
        assert_eq!(s.matchers, vec![Matcher::equal("server", "lab-1"), Matcher::not_equal("severity", "critical")]);
        assert_eq!((s.duration, s.ends_at, s.comment.as_str()), (Some(Duration::from_secs(3600)), None, "lab"));
    }

    #[test]
    fn errors_name_the_line_and_why() {
        let cases = [
            ("[rules.server_down]\nfor = \"soon\"\n", "line 2", "not a duration"),
            ("[rules.nope]\nfor = 1\n", "line 1", "nope"),
            ("[rules.drift]\nseverity = \"loud\"\n", "line 2", "critical, warning or info"),
            ("\n\n[rules.cpu_high]\npercent = 150\n", "line 3", "percent"),
            ("[rules.batch_failed]\nhold = 0\n", "line 1", "hold must be longer than 0"),
            ("\n[[silences]]\nmatchers = [\"server=~a.*\"]\n", "line 2", "regular expressions"),
            ("[[silences]]\nmatchers = [\"server!=a\"]\n", "line 1", "mute everything"),
            ("[[silences]]\nmatchers = [\"a=b\"]\nduration = 5\nends_at = 9\n", "line 1", "not both"),
            ("x = [\n", "line 1", ""),
        ];
        for (text, line, why) in cases {
            let e = error(text);
            assert!(e.contains(line) && e.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn json_is_the_same_document() {
        let r = AlertRules::from_json_str(r#"{"rules": {"server_down": {"for": 0.5}}, "history": 3}"#).unwrap();
        assert_eq!((r.config.server_down.r#for, r.config.history), (Duration::from_millis(500), 3));
        let e = AlertRules::from_json_str(r#"{"rules": {"cpu_high": {"percent": 0}}}"#).unwrap_err();
        assert!(e.to_string().contains("percent"), "{e}");
        assert_eq!(e.kind(), "invalid");
        assert!(AlertRules::from_json_str(r#"{"rule": {}}"#).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("2 weeks"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
