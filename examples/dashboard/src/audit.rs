//! The audit log: one JSON object per line, appended with a single write
//! and flushed per entry (the `requested` line of an action is also synced
//! to disk before anything is sent), so a crash leaves whole lines. The
//! latest entries are also kept in memory for `GET /api/audit`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use ipvtl_client::wire::{ActionReportView, BatchReportView, BatchTargetView};
use serde::Serialize;
use serde_json::Value;

use crate::guard::Who;

/// Entries kept in memory.
const RECENT: usize = 1000;

/// One line of the audit log: when (Unix seconds), who asked, and what.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct AuditEntry {
    at: f64,
    who: Option<Who>,
    #[serde(flatten)]
    event: AuditEvent,
}

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

impl AuditEvent {
    /// The entry of this event, by `who`, now.
    pub fn by(self, who: Option<Who>) -> AuditEntry {
        AuditEntry { at: crate::timefmt::unix_s(SystemTime::now()), who, event: self }
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

/// An append-only JSON-lines audit log.
#[derive(Debug)]
pub struct AuditLog {
    path: Option<PathBuf>,
    file: Mutex<Option<File>>,
    recent: Mutex<VecDeque<Value>>,
}

impl AuditLog {
    /// Opens (creating) `path` for appending; `None` keeps entries in memory
    /// only. A last line cut short by a crash is closed with a newline so
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
        Ok(AuditLog { path: path.map(Path::to_path_buf), file: Mutex::new(file), recent: Mutex::new(VecDeque::new()) })
    }

    /// Where entries go, if to a file.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends an entry. With `sync`, the line is on disk when this returns.
    pub(crate) fn append(&self, entry: &AuditEntry, sync: bool) -> io::Result<()> {
        let entry = serde_json::to_value(entry).map_err(io::Error::other)?;
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        {
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = file.as_mut() {
                f.write_all(&line)?;
                f.flush()?;
                if sync {
                    f.sync_data()?;
                }
            }
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(entry);
        Ok(())
    }

    /// Appends and reports a failure on stderr instead of returning it (for
    /// entries recorded after the fact).
    pub(crate) fn record(&self, entry: &AuditEntry) {
        if let Err(e) = self.append(entry, false) {
            eprintln!("ipvtl-dashboard: cannot write the audit log: {e}");
        }
    }

    /// The latest `limit` entries, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<Value> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let skip = recent.len().saturating_sub(limit);
        recent.iter().skip(skip).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_closed_before_appending() {
        let dir = std::env::temp_dir().join(format!("ipvtl-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        std::fs::write(&path, b"{\"event\":\"a\"}\n{\"event\":\"tor").unwrap();
        let log = AuditLog::open(Some(&path)).unwrap();
        let entry = AuditEvent::Maintenance { server_id: "s1".into(), enabled: true }.by(None);
        log.append(&entry, true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let last: Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(last["event"], "maintenance");
        assert_eq!(last["server_id"], "s1");
        assert!(last["at"].as_f64().unwrap() > 1.7e9);
        assert_eq!(log.recent(10).len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
