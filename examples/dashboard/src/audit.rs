//! The audit log: every entry is committed to the store (the `requested`
//! entry of an action before anything is sent), which `GET /api/audit`
//! reads, and mirrored to a JSON-lines file for log shippers: one object
//! per line, appended with a single write and flushed per entry (synced
//! with the store's commit for write-ahead entries), so a crash leaves
//! whole lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use ipvtl_client::wire::{
    ActionReportView, BatchReportView, BatchTargetView, DesiredSettingView, HealView, HealingSettingView, ScopeView,
};
use serde::Serialize;

use crate::guard::Who;
use crate::store::AuditRow;

/// One line of the audit log: when (Unix seconds), who asked, and what.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct AuditEntry {
    at: f64,
    who: Option<Actor>,
    /// The instance that wrote it, when several share the fleet.
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'static str>,
    #[serde(flatten)]
    event: AuditEvent,
    /// The action this entry opens or closes in the store's ledger of
    /// actions under way (see [`AuditRow::opens`]); not part of the line.
    #[serde(skip)]
    opens: Option<String>,
    #[serde(skip)]
    closes: Option<String>,
}

/// Who did something: a request (its address and key), or the dashboard
/// itself, written as a name (`"reconciler"` for heals).
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Actor {
    /// A request made through the API.
    Request(Who),
    /// The dashboard on its own.
    System(&'static str),
}

/// The reconciler's name in the audit log.
pub(crate) const RECONCILER: Actor = Actor::System("reconciler");
/// The dashboard's own name in the audit log (what it finds at start).
pub(crate) const DASHBOARD: Actor = Actor::System("dashboard");

/// What an audit line records, tagged by `event`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum AuditEvent {
    /// Written (and synced) before anything is sent.
    ActionRequested { server_id: String, channel_id: u32, action: &'static str },
    /// Refused before anything was sent: `outcome` is the refusal's kind.
    ActionRefused { server_id: String, channel_id: u32, action: &'static str, outcome: &'static str, detail: String },
    /// A batch's action began.
    ActionStarted { action_id: u64, batch_id: Option<u64>, server_id: String, channel_id: u32, action: &'static str },
    /// An action ended: `ok`, `failed` or `refused`, with its report.
    ActionFinished { outcome: &'static str, report: ActionReportView },
    /// An action whose end came without a report (the cluster closed).
    ActionLost { server_id: String, channel_id: u32, action: &'static str, outcome: &'static str, detail: String },
    /// Maintenance turned on or off, before it takes effect.
    Maintenance { server_id: String, enabled: bool },
    /// A reload of the servers file: `ok` with the count, or `refused`.
    Reload { outcome: &'static str, count: Option<usize>, detail: Option<String> },
    /// Written (and synced) before a batch starts.
    BatchRequested { action: &'static str, count: usize, targets: Vec<BatchTargetView> },
    /// A desired state set through the API, before it takes effect.
    DesiredSet {
        #[serde(flatten)]
        setting: DesiredSettingView,
    },
    /// A healing policy set through the API, before it takes effect.
    HealingSet {
        #[serde(flatten)]
        setting: HealingSettingView,
    },
    /// A desired state or healing setting removed (`setting`: `desired` or
    /// `healing`), before it takes effect.
    SettingCleared {
        setting: &'static str,
        #[serde(flatten)]
        scope: ScopeView,
    },
    /// The reconciler's fleet-wide settings changed (pause, dry run, caps):
    /// those in force after the change.
    ReconcilerChanged { settings: ReconcilerSettings },
    /// A human cleared a degraded channel: healing may try again.
    DegradedCleared { server_id: String, channel_id: u32, was_degraded: bool },
    /// The reconciler asks to heal: written (and synced) before the heal
    /// may start, like a human's `action_requested`.
    HealRequested {
        ticket: u64,
        #[serde(flatten)]
        heal: HealView,
    },
    /// A heal recorded as requested that did not start after all (the
    /// channel changed meanwhile, or the go-ahead came too late): nothing
    /// was sent.
    HealNotStarted { ticket: u64, server_id: String, channel_id: u32, action: &'static str },
    /// The reconciler began a heal (its action's end is `action_finished`).
    HealStarted {
        action_id: u64,
        attempt: u32,
        #[serde(flatten)]
        heal: HealView,
    },
    /// A channel still drifts after its policy's limit: left alone.
    HealDegraded { server_id: String, channel_id: u32, attempts: u32, until_at: f64 },
    /// The storm guard paused (`paused` true) or resumed healing.
    HealingStorm { paused: bool, troubled: usize, managed: usize },
    /// At start: an action that was under way when the dashboard stopped
    /// (a crash or a kill), whose end was never recorded. `opened` is the
    /// entry that began it; what became of the channel, the next poll says.
    ActionInterrupted {
        server_id: Option<String>,
        channel_id: Option<u64>,
        action: Option<String>,
        opened: serde_json::Value,
    },
    /// A silence made through the API, kept before it is answered.
    SilenceAdded { silence_id: u64, matchers: Vec<String>, ends_at: f64, comment: String },
    /// A silence ended through the API, before it takes effect.
    SilenceExpired { silence_id: u64 },
    /// A reload of the alerts file: `ok`, or `refused` with why.
    AlertsReload { outcome: &'static str, detail: Option<String> },
    /// A batch ended.
    BatchFinished {
        batch_id: u64,
        ok: bool,
        succeeded: usize,
        failed: usize,
        skipped: usize,
        stopped_early: Option<&'static str>,
    },
}

impl AuditEntry {
    /// The store's row of this entry (its JSON, and what is looked up by).
    pub fn row(&self) -> Result<AuditRow, serde_json::Error> {
        let entry = serde_json::to_value(self)?;
        let key_name = match &self.who {
            Some(Actor::Request(w)) => w.key_name.clone(),
            _ => None,
        };
        Ok(AuditRow {
            at: self.at,
            event: entry["event"].as_str().unwrap_or_default().to_string(),
            key_name,
            entry: serde_json::to_string(&entry)?,
            opens: self.opens.clone(),
            closes: self.closes.clone(),
        })
    }

    /// This entry opens the action `key` (see [`AuditRow::opens`]).
    pub fn opening(mut self, key: &str) -> Self {
        self.opens = Some(key.to_string());
        self
    }

    /// This entry ends the action `key`.
    pub fn closing(mut self, key: &str) -> Self {
        self.closes = Some(key.to_string());
        self
    }
}

impl AuditEvent {
    /// The entry of this event, by `who`, now.
    pub fn by(self, who: Option<Who>) -> AuditEntry {
        self.by_actor(who.map(Actor::Request))
    }

    /// The entry of this event, done by `actor`, now.
    pub fn by_actor(self, actor: Option<Actor>) -> AuditEntry {
        AuditEntry {
            at: crate::timefmt::unix_s(SystemTime::now()),
            who: actor,
            instance: crate::instances::name(),
            event: self,
            opens: None,
            closes: None,
        }
    }
}

impl From<&BatchReportView> for AuditEvent {
    fn from(r: &BatchReportView) -> Self {
        AuditEvent::BatchFinished {
            batch_id: r.batch_id,
            ok: r.ok,
            succeeded: r.succeeded,
            failed: r.failed,
            skipped: r.skipped,
            stopped_early: r.stopped_early,
        }
    }
}

/// The reconciler's fleet-wide settings, as recorded and stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReconcilerSettings {
    pub max_parallel: usize,
    pub storm_percent: u32,
    pub storm_min: usize,
    pub dry_run: bool,
    pub paused: bool,
}

/// The audit log's JSON-lines mirror (append-only).
#[derive(Debug)]
pub struct AuditLog {
    path: Option<PathBuf>,
    file: Mutex<Option<File>>,
}

impl AuditLog {
    /// Opens (creating) `path` for appending; `None` keeps entries in memory
    /// in the store only. A last line cut short by a crash is closed with a newline so
    /// later entries stay parseable.
    pub fn open(path: Option<&Path>) -> io::Result<Self> {
        let file = match path {
            None => None,
            Some(p) => {
                let mut f = OpenOptions::new().create(true).append(true).read(true).open(p)?;
                let len = f.metadata()?.len();
                if len > 0 {
                    let mut last = [0u8; 1];
                    f.seek(SeekFrom::Start(len - 1))?;
                    f.read_exact(&mut last)?;
                    if last[0] != b'\n' {
                        f.write_all(b"\n")?;
                    }
                }
                Some(f)
            }
        };
        Ok(AuditLog { path: path.map(Path::to_path_buf), file: Mutex::new(file) })
    }

    /// Where entries go, if to a file.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends rows (the store's JSON of each entry). With `sync`, the
    /// lines are on disk when this returns.
    pub(crate) fn append(&self, rows: &[AuditRow], sync: bool) -> io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let Some(f) = file.as_mut() else { return Ok(()) };
        let mut lines = Vec::new();
        for r in rows {
            lines.extend_from_slice(r.entry.as_bytes());
            lines.push(b'\n');
        }
        f.write_all(&lines)?;
        f.flush()?;
        if sync {
            f.sync_data()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_torn_last_line_is_closed_before_appending() {
        let dir = std::env::temp_dir().join(format!("ipvtl-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        std::fs::write(&path, b"{\"event\":\"a\"}\n{\"event\":\"tor").unwrap();
        let log = AuditLog::open(Some(&path)).unwrap();
        let entry = AuditEvent::Maintenance { server_id: "s1".into(), enabled: true }.by(None);
        log.append(&[entry.row().unwrap()], true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let last: Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(last["event"], "maintenance");
        assert_eq!(last["server_id"], "s1");
        assert!(last["at"].as_f64().unwrap() > 1.7e9);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
