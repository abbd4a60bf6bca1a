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

use serde_json::{Map, Value};

use crate::timefmt::iso;

/// Entries kept in memory.
const RECENT: usize = 1000;

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

    /// Appends an entry (a JSON object; `time` is added). With `sync`, the
    /// line is on disk when this returns.
    pub fn append(&self, entry: Value, sync: bool) -> io::Result<()> {
        let mut obj = Map::new();
        obj.insert("time".into(), Value::String(iso(SystemTime::now())));
        if let Value::Object(fields) = entry {
            obj.extend(fields);
        }
        let entry = Value::Object(obj);
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
    pub fn record(&self, entry: Value) {
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
        log.append(serde_json::json!({"event": "b"}), true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let last: Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(last["event"], "b");
        assert_eq!(log.recent(10).len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
