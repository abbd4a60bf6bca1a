//! One store suite for both backends: the unit tests run it on SQLite,
//! `tests/store_postgres.rs` on a real PostgreSQL. Only the store's public
//! API is used, and names are unique per run, so it may run against a
//! store that already holds data.

use super::{AuditRow, Store, SCHEMA_VERSION};

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
