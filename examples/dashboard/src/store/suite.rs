//! One store suite for both backends: the unit tests run it on SQLite,
//! `tests/store_postgres.rs` on a real PostgreSQL. Only the store's public
//! API is used, and names are unique per run, so it may run against a
//! store that already holds data.

use std::time::Duration;

use super::{AuditRow, HistorySample, HistoryStep, NewOutboxRow, Store, StoredSilence, SCHEMA_VERSION};

fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

fn row(event: &str, key: Option<&str>, n: u32) -> AuditRow {
    AuditRow {
        at: 1_700_000_000.0 + f64::from(n),
        event: event.into(),
        key_name: key.map(String::from),
        entry: serde_json::json!({"event": event, "n": n}).to_string(),
        opens: None,
        closes: None,
    }
}

/// Everything the dashboard asks of a store.
pub async fn run(store: &Store) {
    let tag = unique();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);

    // The audit: in order, in one transaction, the key's name kept.
    let event = format!("test_{tag}");
    let rows = [row(&event, None, 1), row(&event, Some("ops"), 2), row(&event, Some("ci"), 3)];
    store.append_audit(&rows).await.unwrap();
    let recent = store.recent_audit(2).await.unwrap();
    let ns: Vec<u64> = recent
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(r).unwrap())
        .map(|v| v["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [2, 3], "the latest, oldest first");
    store.append_audit(&[]).await.unwrap();

    // Actions under way: opened and closed with their entries, in one
    // transaction; closed in the same batch, or never (a crash).
    let key = |n: u32| format!("{tag}:{n}");
    let opening = |n: u32| AuditRow { opens: Some(key(n)), ..row(&event, None, 10 + n) };
    let closing = |n: u32| AuditRow { closes: Some(key(n)), ..row(&event, None, 20 + n) };
    store.append_audit(&[opening(1), opening(2)]).await.unwrap();
    store.append_audit(&[closing(1), opening(3), closing(3)]).await.unwrap();
    let open: Vec<(String, String)> =
        store.open_actions().await.unwrap().into_iter().filter(|(k, _)| k.starts_with(&tag)).collect();
    assert_eq!(open, [(key(2), opening(2).entry)], "only the one never closed");
    store.append_audit(&[closing(2)]).await.unwrap();
    assert!(!store.open_actions().await.unwrap().iter().any(|(k, _)| k.starts_with(&tag)));

    // Batches: progress, the end, and no going back from it.
    let id = store.last_batch_id().await.unwrap() + 1;
    store.put_batch(id, "running", 1.5, r#"{"batch_id":0,"state":"running","done":1}"#).await.unwrap();
    store.put_batch(id, "running", 1.5, r#"{"batch_id":0,"state":"running","done":2}"#).await.unwrap();
    assert!(store.batch(id).await.unwrap().unwrap().contains(r#""done":2"#));
    store.put_batch(id, "finished", 1.5, r#"{"batch_id":0,"state":"finished","done":3}"#).await.unwrap();
    store.put_batch(id, "running", 1.5, r#"{"batch_id":0,"state":"running","done":2}"#).await.unwrap();
    assert!(store.batch(id).await.unwrap().unwrap().contains("finished"), "a late older view never undoes the end");
    assert_eq!(store.last_batch_id().await.unwrap(), id);
    store.put_batch(id + 1, "running", 2.5, r#"{"n":"newest"}"#).await.unwrap();
    let listed = store.batches(2).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[0].contains("newest"), "newest first: {listed:?}");
    assert_eq!(store.batch(u64::MAX).await.unwrap(), None);

    // Maintenance flags.
    let server = format!("srv-{tag}");
    store.set_maintenance(&server, true, 1.0).await.unwrap();
    assert!(store.maintenance().await.unwrap().contains(&server));

    // Settings: one per kind and scope, replaced in place, removed once.
    let key = format!(r#"["server","{server}"]"#);
    let entry = |v: &str| format!(r#"{{"server_id":"{server}","v":"{v}"}}"#);
    store.put_setting("desired", &key, &entry("idle"), 1.0).await.unwrap();
    store.put_setting("desired", &key, &entry("running"), 2.0).await.unwrap();
    store.put_setting("healing", &key, &entry("off"), 2.0).await.unwrap();
    let ours: Vec<(String, String)> =
        store.settings().await.unwrap().into_iter().filter(|(_, e)| e.contains(&server)).collect();
    let want = [("desired".to_string(), entry("running")), ("healing".to_string(), entry("off"))];
    assert_eq!(ours, want, "replaced in place, by kind");
    assert!(store.delete_setting("desired", &key).await.unwrap());
    assert!(!store.delete_setting("desired", &key).await.unwrap(), "gone already");
    assert!(store.delete_setting("healing", &key).await.unwrap());
    store.set_maintenance(&server, false, 2.0).await.unwrap();
    assert!(!store.maintenance().await.unwrap().contains(&server));
    store.set_maintenance(&server, true, 3.0).await.unwrap();
    assert!(store.maintenance().await.unwrap().contains(&server));

    // Keys: by hash, unique names, revoked at once.
    let name = format!("key-{tag}");
    let hash = format!("hash-{tag}");
    store.add_key(&name, "operator", &hash, 4.0).await.unwrap();
    assert!(store.has_keys().await.unwrap());
    let dup = store.add_key(&name, "admin", &format!("other-{tag}"), 5.0).await.unwrap_err();
    assert!(dup.reason.contains("exists"), "{dup}");
    assert_eq!(store.key_by_hash(&hash).await.unwrap(), Some((name.clone(), "operator".into())));
    assert_eq!(store.key_by_hash("no such hash").await.unwrap(), None);
    let listed = store.keys().await.unwrap();
    let mine = listed.iter().find(|k| k.name == name).expect("listed");
    assert_eq!((mine.role.as_str(), mine.created_at), ("operator", 4.0));
    assert!(store.revoke_key(&name).await.unwrap());
    assert!(!store.revoke_key(&name).await.unwrap());
    assert_eq!(store.key_by_hash(&hash).await.unwrap(), None);
    // Leave a key, for the tests that reopen the store.
    store.add_key(&format!("kept-{tag}"), "viewer", &format!("kept-{tag}"), 6.0).await.unwrap();

    history(store, &tag).await;
    alerts(store, &tag).await;
}

/// A history sample (also for the buckets' tests).
pub(super) fn sample(server: &str, at: i64, cpu: Option<f64>, running: u64, health: &str) -> HistorySample {
    HistorySample {
        server_id: server.into(),
        at,
        cpu_avg: cpu,
        running_channels: running,
        health: health.to_owned().into(),
    }
}

/// Downsampled history: buckets per step, the mean cpu and the last
/// running count and health, pruned by age per step.
async fn history(store: &Store, tag: &str) {
    let (ten, one) = (HistoryStep::TenSeconds, HistoryStep::OneMinute);
    let keep = [(ten, Duration::from_secs(3600)), (one, Duration::from_secs(86_400))];
    let server = format!("hist-{tag}");
    let t0 = 1_800_000_000; // a whole minute
                            // Two writes fall in the same 10 s bucket: the mean cpu, the last count.
    store.record_history(&[sample(&server, t0 + 1, Some(10.0), 3, "online")], &keep, t0).await.unwrap();
    let batch = [
        sample(&server, t0 + 9, Some(20.0), 2, "online"),
        sample(&server, t0 + 12, None, 0, "offline"),
        sample(&server, t0 + 75, Some(50.0), 4, "online"),
        sample(&format!("other-{tag}"), t0 + 5, Some(99.0), 9, "online"),
    ];
    store.record_history(&batch, &keep, t0 + 75).await.unwrap();
    let points = store.history(&server, ten, t0).await.unwrap();
    let at: Vec<i64> = points.iter().map(|p| p.at).collect();
    assert_eq!(at, [t0, t0 + 10, t0 + 70]);
    assert_eq!((points[0].cpu_avg, points[0].running_channels), (Some(15.0), 2));
    assert_eq!((points[1].cpu_avg, points[1].health.as_str()), (None, "offline"), "no cpu figure: none");
    let minutes = store.history(&server, one, t0).await.unwrap();
    assert_eq!(minutes.len(), 2);
    assert_eq!((minutes[0].at, minutes[0].cpu_avg, minutes[0].health.as_str()), (t0, Some(15.0), "offline"));
    assert_eq!((minutes[1].at, minutes[1].cpu_avg), (t0 + 60, Some(50.0)));
    // `since` inside a bucket includes that bucket.
    assert_eq!(store.history(&server, ten, t0 + 15).await.unwrap().len(), 2);
    assert!(store.history(&server, ten, t0 + 1000).await.unwrap().is_empty());
    assert!(store.history("no such server", ten, 0).await.unwrap().is_empty());
    // Two hours on: the 10 s points are gone, the minutes stay.
    store.record_history(&[sample(&server, t0 + 7200, Some(1.0), 1, "online")], &keep, t0 + 7200).await.unwrap();
    let points = store.history(&server, ten, t0).await.unwrap();
    assert_eq!(points.iter().map(|p| p.at).collect::<Vec<_>>(), [t0 + 7200], "pruned past its keep");
    assert_eq!(store.history(&server, one, t0).await.unwrap().len(), 3);
    // A step kept for zero is neither written nor kept.
    let off = [(ten, Duration::ZERO), (one, Duration::from_secs(86_400))];
    store.record_history(&[sample(&server, t0 + 7300, Some(1.0), 1, "online")], &off, t0 + 7300).await.unwrap();
    assert!(store.history(&server, ten, t0).await.unwrap().is_empty());
    assert_eq!(store.history(&server, one, t0).await.unwrap().len(), 4);
}

/// Marks the store at `url` as migrated to `version` by a newer binary.
pub async fn pretend_newer_schema(url: &str, version: i64) {
    use sqlx::Connection;
    let sql = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
               VALUES ($1, 'from the future', TRUE, $2, 0)";
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sql).bind(version).bind(vec![0u8; 48]).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sql).bind(version).bind(vec![0u8; 48]).execute(&mut c).await.unwrap();
    }
}

/// The store suite's part for alerts (see `suite.rs`): the outbox in order
/// per receiver, retries, deliveries and refusals; the active alerts
/// replaced as a whole; silences kept and removed.
async fn alerts(store: &Store, tag: &str) {
    let receiver = format!("hook-{tag}");
    let other = format!("am-{tag}");
    let note = |id: &str, to: &str| NewOutboxRow {
        notification_id: format!("{id}-{tag}"),
        receiver: to.to_string(),
        fingerprint: "00000000000000ab".into(),
        kind: "firing".into(),
        payload: format!("{{\"id\":\"{id}\"}}"),
        created_at: 1_700_000_000.0,
        instance: None,
    };
    let active = [("00000000000000ab".to_string(), "{\"state\":\"firing\"}".to_string())];
    let rows = [note("a", &receiver), note("a", &other), note("b", &receiver)];
    store.record_alerts(&rows, Some(&active), None).await.unwrap();
    // Recorded again (a retried write): nothing doubles.
    store.record_alerts(&rows[..1], None, None).await.unwrap();
    assert_eq!(store.alert_state(None).await.unwrap(), vec![active[0].1.clone()]);
    let due = store.outbox_undelivered(&receiver, 10, None).await.unwrap();
    let ids: Vec<&str> = due.iter().map(|r| r.notification_id.as_str()).collect();
    assert_eq!(ids, [format!("a-{tag}"), format!("b-{tag}")]);
    assert_eq!((due[0].attempts, due[0].next_at), (0, 1_700_000_000.0));
    store.outbox_retry(due[0].id, 1, 1_700_000_002.0, "HTTP 500").await.unwrap();
    let again = store.outbox_undelivered(&receiver, 10, None).await.unwrap();
    assert_eq!((again[0].attempts, again[0].next_at), (1, 1_700_000_002.0));
    store.outbox_delivered(due[0].id, 1_700_000_003.0).await.unwrap();
    store.outbox_refused(due[1].id, 1, 1_700_000_004.0, "HTTP 400").await.unwrap();
    assert!(store.outbox_undelivered(&receiver, 10, None).await.unwrap().is_empty());
    let pending = store.outbox_pending().await.unwrap();
    assert_eq!(pending.iter().find(|(r, _)| *r == receiver), None);
    assert_eq!(pending.iter().find(|(r, _)| *r == other).map(|(_, n)| *n), Some(1));
    store.outbox_delivered(store.outbox_undelivered(&other, 1, None).await.unwrap()[0].id, 5.0).await.unwrap();
    store.record_alerts(&[], Some(&[]), None).await.unwrap();
    assert!(store.alert_state(None).await.unwrap().is_empty());
    // Old delivered and refused rows go; pending ones stay.
    store.record_alerts(&[note("c", &receiver)], None, None).await.unwrap();
    assert!(store.prune_outbox(1_700_000_003.5).await.unwrap() >= 2);
    assert_eq!(store.outbox_undelivered(&receiver, 10, None).await.unwrap().len(), 1);
    let last = store.outbox_undelivered(&receiver, 1, None).await.unwrap()[0].id;
    store.outbox_delivered(last, 6.0).await.unwrap();

    let id = 1_000_000 + u64::from(tag.len() as u32);
    let silence = StoredSilence { id, ends_at: 1_900_000_000.0, entry: format!("{{\"comment\":\"{tag}\"}}") };
    store.put_silence(&silence).await.unwrap();
    store.put_silence(&StoredSilence { ends_at: 1_900_000_001.0, ..silence.clone() }).await.unwrap();
    let kept = store.silences().await.unwrap();
    let mine = kept.iter().find(|s| s.id == id).expect("kept");
    assert_eq!((mine.ends_at, mine.entry.as_str()), (1_900_000_001.0, silence.entry.as_str()));
    assert!(store.delete_silence(id).await.unwrap());
    assert!(!store.delete_silence(id).await.unwrap());
}
