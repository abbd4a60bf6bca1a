//! The alerts file (`--alerts PATH`, TOML): rule overrides, silences in
//! force by default, receivers and delivery settings. Read whole and
//! validated before anything is used: an error names the file, the line
//! and column, and why.
//!
//! ```toml
//! [rules.server_down]
//! for = "2m"               # a number is seconds; or "500ms", "90s", "5m", "1h", "1d"
//! severity = "critical"    # critical, warning or info
//!
//! [rules.cpu_high]
//! percent = 95
//!
//! [[silences]]
//! matchers = ["server=lab-1"]
//! comment = "the lab box"
//!
//! [[receivers]]
//! type = "alertmanager"
//! url = "http://127.0.0.1:9093"
//!
//! [[receivers]]
//! name = "ops-hook"
//! type = "webhook"
//! url = "http://hooks.internal/ipvtl"
//! format = "cloudevents"   # or "alertmanager" (webhook payload version 4)
//! secret_env = "IPVTL_WEBHOOK_SECRET"
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipvtl_client::alerts::{line_column, AlertRules, Dur};
use ipvtl_client::core::alert::AlertConfig;
use ipvtl_client::ClientError;
use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

pub use ipvtl_client::alerts::DefaultSilence;

/// A validated alerts file (or the built-in defaults: no file).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertsFile {
    /// Where it was read from (`None`: the defaults).
    pub path: Option<PathBuf>,
    /// The rules.
    pub config: AlertConfig,
    /// Silences in force while this file is.
    pub silences: Vec<DefaultSilence>,
    /// Where notifications go.
    pub receivers: Vec<Receiver>,
    /// How they go.
    pub delivery: Delivery,
}

/// Delivery settings (`[delivery]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Firing alerts are sent again to Alertmanager receivers this often.
    pub resend: Duration,
    /// The first retry's delay; doubled per failure up to `backoff_max`.
    pub backoff: Duration,
    /// The longest delay between two attempts.
    pub backoff_max: Duration,
    /// A request's time limit.
    pub timeout: Duration,
    /// The dashboard's address for people (`generatorURL`, the CloudEvents
    /// `source`).
    pub external_url: Option<String>,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            resend: Duration::from_secs(60),
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
            external_url: None,
        }
    }
}

/// Where notifications go.
#[derive(Clone, Debug, PartialEq)]
pub struct Receiver {
    /// Its name (outbox rows and metrics say it).
    pub name: String,
    /// The base URL (Alertmanager) or the URL (webhook).
    pub url: String,
    /// What kind.
    pub kind: ReceiverKind,
}

/// A receiver's kind.
#[derive(Clone, Debug, PartialEq)]
pub enum ReceiverKind {
    /// Alertmanager's client API: `POST {url}/api/v2/alerts`.
    Alertmanager,
    /// A signed webhook.
    Webhook {
        /// The body's shape.
        format: WebhookFormat,
        /// The HMAC-SHA256 key.
        secret: Secret,
    },
}

/// A webhook body's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookFormat {
    /// Alertmanager's webhook payload, version 4.
    Alertmanager,
    /// A CloudEvents 1.0 JSON envelope.
    CloudEvents,
}

/// A secret, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl AlertsFile {
    /// Reads and validates the file at `path`; `env` reads an environment
    /// variable (for `secret_env`).
    pub fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("alerts file {}: cannot read: {e}", path.display()))?;
        Self::parse(&text, Some(path), env).map_err(|e| format!("alerts file {}: {e}", path.display()))
    }

    /// Parses and validates `text`; `path` places `secret_file`s given
    /// relative to it.
    pub fn parse(text: &str, path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        // The rules and silences: the client's parser, shared with the
        // bindings (`ipvtl_client::alerts::AlertRules`).
        let AlertRules { config, silences } = AlertRules::from_toml_str(text).map_err(|e| match e {
            ClientError::Invalid(m) => m,
            other => other.to_string(),
        })?;
        let spec: FileSpec = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        let at = |span: std::ops::Range<usize>| line_column(text, span.start);

        let mut receivers: Vec<Receiver> = Vec::new();
        for spec in spec.receivers {
            let span = spec.span();
            let r = spec.into_inner();
            let fail = |why: String| format!("{}: receiver: {why}", at(span.clone()));
            let url = r.url.trim().trim_end_matches('/').to_string();
            if url.starts_with("https://") {
                return Err(fail(format!(
                    "{url}: https is not supported by this build (HTTP/1.1 without TLS); \
                     use http:// on a trusted network or a local TLS proxy"
                )));
            }
            if !url.starts_with("http://") || url.len() <= "http://".len() {
                return Err(fail(format!("url {url:?} must be http://HOST[:PORT][/PATH]")));
            }
            let kind = match r.r#type.as_str() {
                "alertmanager" => {
                    if r.format.is_some() || r.secret_env.is_some() || r.secret_file.is_some() {
                        return Err(fail(
                            "an alertmanager receiver takes url and name only (format and secrets are for webhooks)"
                                .into(),
                        ));
                    }
                    ReceiverKind::Alertmanager
                }
                "webhook" => {
                    let format = match r.format.as_deref().unwrap_or("alertmanager") {
                        "alertmanager" => WebhookFormat::Alertmanager,
                        "cloudevents" => WebhookFormat::CloudEvents,
                        other => {
                            return Err(fail(format!("format {other:?}: use \"alertmanager\" or \"cloudevents\"")))
                        }
                    };
                    let secret = match (&r.secret_env, &r.secret_file) {
                        (Some(var), None) => env(var)
                            .filter(|v| !v.is_empty())
                            .ok_or_else(|| fail(format!("secret_env: the environment variable {var} is not set")))?
                            .into_bytes(),
                        (None, Some(file)) => {
                            let file = match path.and_then(Path::parent) {
                                Some(dir) if file.is_relative() => dir.join(file),
                                _ => file.clone(),
                            };
                            let mut bytes = std::fs::read(&file)
                                .map_err(|e| fail(format!("secret_file {}: {e}", file.display())))?;
                            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                                bytes.pop();
                            }
                            if bytes.is_empty() {
                                return Err(fail(format!("secret_file {}: empty", file.display())));
                            }
                            bytes
                        }
                        (Some(_), Some(_)) => return Err(fail("give secret_env or secret_file, not both".into())),
                        (None, None) => {
                            return Err(fail(
                                "a webhook is signed: give secret_env = \"VAR\" or secret_file = \"PATH\" \
                                 (never the secret itself)"
                                    .into(),
                            ))
                        }
                    };
                    ReceiverKind::Webhook { format, secret: Secret(secret) }
                }
                other => return Err(fail(format!("type {other:?}: use \"alertmanager\" or \"webhook\""))),
            };
            let name = r.name.unwrap_or_else(|| r.r#type.clone());
            let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if name.is_empty() || name.len() > 64 || !name.chars().all(ok) {
                return Err(fail(format!("name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-'")));
            }
            if receivers.iter().any(|x| x.name == name) {
                return Err(fail(format!("two receivers are named {name:?}: give each a name = \"...\"")));
            }
            receivers.push(Receiver { name, url, kind });
        }

        let d = spec.delivery.unwrap_or_default();
        let base = Delivery::default();
        let delivery = Delivery {
            resend: d.resend.map_or(base.resend, |x| x.0),
            backoff: d.backoff.map_or(base.backoff, |x| x.0),
            backoff_max: d.backoff_max.map_or(base.backoff_max, |x| x.0),
            timeout: d.timeout.map_or(base.timeout, |x| x.0),
            external_url: d.external_url.map(|u| u.trim_end_matches('/').to_string()),
        };
        if delivery.resend.is_zero() || delivery.backoff.is_zero() || delivery.timeout.is_zero() {
            return Err("[delivery]: resend, backoff and timeout must be more than 0".into());
        }
        if delivery.backoff_max < delivery.backoff {
            return Err("[delivery]: backoff_max must be at least backoff".into());
        }
        Ok(AlertsFile { path: path.map(Path::to_path_buf), config, silences, receivers, delivery })
    }
}

/// The whole file as this side reads it: the rules, silences and history
/// are read by [`AlertRules`] (and only checked to be there here).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    #[allow(dead_code)]
    rules: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    silences: Option<IgnoredAny>,
    #[serde(default)]
    receivers: Vec<Spanned<ReceiverSpec>>,
    delivery: Option<DeliverySpec>,
    #[serde(default)]
    #[allow(dead_code)]
    history: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiverSpec {
    r#type: String,
    name: Option<String>,
    url: String,
    format: Option<String>,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeliverySpec {
    resend: Option<Dur>,
    backoff: Option<Dur>,
    backoff_max: Option<Dur>,
    timeout: Option<Dur>,
    external_url: Option<String>,
}
