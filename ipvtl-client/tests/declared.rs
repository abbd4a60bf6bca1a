//! Desired state and healing declared in the servers file: loaded with the
//! cluster, replaced by a reload, while what was set through the API stays.

mod common;

use std::path::PathBuf;

use ipvtl_client::core::ChannelId;
use ipvtl_client::{ClientError, Cluster, Desired, HealPolicy, Healing, Scope, Source};

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ipvtl-declared-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempFile(dir.join("servers.json"))
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

const FIRST: &str = r#"{
  "servers": [
    {"id": "a", "host": "127.0.0.1", "port": 9, "tags": ["rack-b"], "desired": "running",
     "channels": {"2": "idle"}, "healing": {"grace": 5, "limit": 2}},
    {"id": "b", "host": "127.0.0.1", "port": 9, "tags": ["rack-b"]}
  ],
  "tags": {"rack-b": {"desired": "idle", "healing": true}}
}"#;

const SECOND: &str = r#"{
  "servers": [
    {"id": "a", "host": "127.0.0.1", "port": 9, "tags": ["rack-b"], "desired": "idle"},
    {"id": "b", "host": "127.0.0.1", "port": 9, "tags": ["rack-b"], "channels": {"1": "running"}}
  ],
  "tags": {"rack-b": {"healing": false}}
}"#;

fn ch(server: &str, n: u32) -> Scope {
    Scope::Channel(server.into(), ChannelId::new(n).unwrap())
}

#[test]
fn a_reload_applies_the_file_and_keeps_what_the_api_set() {
    let file = TempFile::new("reload");
    file.write(FIRST);
    let cluster = Cluster::from_file(&file.0, common::settings()).unwrap();
    assert_eq!(
        cluster.desired_settings(),
        [
            (ch("a", 2), Desired::Idle, Source::File),
            (Scope::Server("a".into()), Desired::Running, Source::File),
            (Scope::Tag("rack-b".into()), Desired::Idle, Source::File),
        ]
    );
    let policy = HealPolicy { grace: std::time::Duration::from_secs(5), limit: 2, ..HealPolicy::default() };
    assert_eq!(
        cluster.healing_settings(),
        [
            (Scope::Server("a".into()), Healing::On(policy), Source::File),
            (Scope::Tag("rack-b".into()), Healing::On(HealPolicy::default()), Source::File),
        ]
    );
    assert_eq!(cluster.desired("a", 1).unwrap(), (Desired::Running, Some(Scope::Server("a".into()))));
    assert_eq!(cluster.desired("b", 1).unwrap(), (Desired::Idle, Some(Scope::Tag("rack-b".into()))));

    // Through the API: channel 3 of a, and over the file at a's own scope.
    cluster.set_desired(ch("a", 3), Desired::Idle).unwrap();
    cluster.set_desired(Scope::Server("a".into()), Desired::Unmanaged).unwrap();
    assert_eq!(cluster.desired("a", 1).unwrap(), (Desired::Unmanaged, Some(Scope::Server("a".into()))));

    file.write(SECOND);
    let summary = cluster.reload_file(&file.0).unwrap();
    assert_eq!(summary.added.len() + summary.removed.len(), 0);
    assert_eq!(
        cluster.desired_settings(),
        [
            // The file's channel 2 of a and tag desired state are gone; b's channel 1 is new.
            (ch("a", 3), Desired::Idle, Source::Api),
            (ch("b", 1), Desired::Running, Source::File),
            // The API setting survived the reload and still wins over the file's "idle".
            (Scope::Server("a".into()), Desired::Unmanaged, Source::Api),
        ]
    );
    assert_eq!(cluster.healing_settings(), [(Scope::Tag("rack-b".into()), Healing::Off, Source::File)]);
    assert_eq!(cluster.desired("a", 2).unwrap(), (Desired::Unmanaged, Some(Scope::Server("a".into()))));
    assert_eq!(cluster.desired("b", 1).unwrap(), (Desired::Running, Some(ch("b", 1))));
    assert_eq!(cluster.desired("b", 2).unwrap(), (Desired::Unmanaged, None));

    // Clearing the API setting lets the file's show through.
    assert_eq!(cluster.clear_desired(&Scope::Server("a".into())), Some(Desired::Unmanaged));
    assert_eq!(cluster.desired("a", 1).unwrap(), (Desired::Idle, Some(Scope::Server("a".into()))));
    assert!(cluster.desired_settings().contains(&(Scope::Server("a".into()), Desired::Idle, Source::File)));
}

#[test]
fn a_bad_file_changes_nothing() {
    let file = TempFile::new("bad");
    file.write(FIRST);
    let cluster = Cluster::from_file(&file.0, common::settings()).unwrap();
    cluster.set_desired(ch("b", 1), Desired::Running).unwrap();
    let before = (cluster.desired_settings(), cluster.healing_settings());
    file.write(&SECOND.replace(r#""desired": "idle""#, r#""desired": "stopped""#));
    let e = cluster.reload_file(&file.0).unwrap_err();
    let ClientError::Config { error, .. } = &e else { panic!("{e:?}") };
    let message = error.to_string();
    assert!(message.contains("servers[0] (id \"a\")") && message.contains("\"stopped\""), "{message}");
    assert!(["running", "idle", "unmanaged"].iter().all(|n| message.contains(n)), "{message}");
    assert_eq!((cluster.desired_settings(), cluster.healing_settings()), before);
    // A strict check at start too.
    assert!(Cluster::from_file(&file.0, common::settings()).is_err());
}
