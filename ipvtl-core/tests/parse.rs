//! The parsers against fixtures of real `/status` bodies and both
//! `servers.json` forms, the example `servers/servers.json`, and
//! proptest-driven fuzzing: never a panic, round trips where they hold.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ipvtl_core::parse::Position;
use ipvtl_core::{
    parse_servers, parse_servers_file, parse_stats, parse_status, ChannelId, ChannelState, ChannelStats, ConfigError,
    Desired, HealPolicy, Healing, Scope, ServerConfig, StatusError,
};
use proptest::prelude::*;

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn status(name: &str) -> Result<ipvtl_core::Status, StatusError> {
    parse_status(&fixture(&format!("status/{name}.json")))
}

fn servers(name: &str) -> Result<Vec<ServerConfig>, ConfigError> {
    parse_servers(std::str::from_utf8(&fixture(&format!("servers/{name}.json"))).unwrap())
}

fn stats(uptime_s: u64, fps: f32, kbps: f32) -> Option<ChannelStats> {
    Some(ChannelStats { uptime_s, fps, kbps })
}

#[test]
fn status_fixtures_parse_exactly() {
    let s = status("idle").unwrap();
    assert_eq!(s.cpu, [3.0, 5.0, 2.0, 4.0]);
    assert_eq!(s.cpu_avg(), Some(3.5));
    assert_eq!(s.channels.len(), 2);
    assert!(s.channels.iter().all(|c| c.state == ChannelState::Idle && c.status.is_empty() && c.stats.is_none()));
    assert_eq!(s.channels.iter().map(|c| c.id.get()).collect::<Vec<_>>(), [1, 2]);

    let s = status("running").unwrap();
    assert_eq!(s.channels[0].stats, stats(12 * 3600 + 34 * 60 + 56, 30.0, 1234.0));
    assert_eq!(s.channels[0].status, "12:34:56 30fps@1234Kbps");
    assert_eq!(s.channels[1].stats, stats(360_001, 29.97, 4500.5));
    assert_eq!(s.channels[2].state, ChannelState::Idle);
    assert_eq!(s.count_in(&ChannelState::Running), 2);
    assert_eq!(s.cpu_avg(), Some(48.5));
    assert!(s.extra.is_empty());

    let s = status("stopping").unwrap();
    assert_eq!(s.channels[0].state, ChannelState::Stopping);
    assert_eq!(s.channels[0].stats, stats(600, 0.0, 0.0));

    let s = status("odd_states").unwrap();
    let states: Vec<ChannelState> = s.channels.iter().map(|c| c.state.clone()).collect();
    assert_eq!(
        states,
        [
            ChannelState::Other("starting".into()),
            ChannelState::Other("ERROR".into()),
            ChannelState::Other(String::new()),
            ChannelState::Other("7".into()),
        ]
    );
    assert_eq!(s.channels[1].status, "input lost");

    let s = status("float_cpu").unwrap();
    assert_eq!(s.cpu, [12.5, 0.25, 99.9, 100.0]);
    assert!(s.channels.is_empty());

    let s = status("extra_fields").unwrap();
    assert_eq!(s.extra.keys().collect::<Vec<_>>(), ["uptime", "version"]);
    assert_eq!(s.extra["version"], serde_json::json!("2.1"));
    let ch = &s.channels[0];
    assert_eq!(ch.extra.keys().collect::<Vec<_>>(), ["codec", "input"]);
    assert_eq!(ch.extra["codec"], serde_json::json!({"v": "h264"}));
    assert_eq!(ch.stats, stats(3600, 25.0, 2000.0));

    let s = status("empty_channels").unwrap();
    assert!(s.channels.is_empty());
    assert_eq!(s.cpu_avg(), Some(0.0));

    let s = status("missing_cpu").unwrap();
    assert!(s.cpu.is_empty());
    assert_eq!(s.cpu_avg(), None);
    assert_eq!(s.channels.len(), 1);

    let s = status("null_status").unwrap();
    assert_eq!(s.channels[0].status, "");
    assert_eq!(s.channels[1].status, "", "missing status text reads as empty");
    assert_eq!(s.channels[1].state, ChannelState::Running);
    assert_eq!(s.channels[1].stats, None);

    let s = status("huge_hours").unwrap();
    assert_eq!(s.channels[0].stats, stats(99_999 * 3600 + 59 * 60 + 59, 25.0, 1.0));
    assert_eq!(s.channels[1].stats, None, "an uptime beyond u64 is not a number");
    assert_eq!(s.channels[1].state, ChannelState::Running);
}

#[test]
fn bad_status_fixtures_say_what_and_where() {
    // (fixture, expected error)
    let shape = |m: &str| StatusError::Shape { message: m.into() };
    let table: Vec<(&str, StatusError)> = vec![
        ("bad_array", shape("expected a JSON object, found an array")),
        ("bad_channels_type", shape("\"channels\" is an object, expected an array")),
        ("bad_cpu_value", shape("cpu[1] is a string, expected a number")),
        // Found by `scripts/fuzz status`: 8.9e79 fits f64, not f32, and was
        // kept as an infinite CPU percentage.
        ("bad_cpu_beyond_f32", shape("cpu[0] is not a finite number: 8.888888888888889e+79")),
        ("bad_channel_entry", shape("channels[1] is a string, expected an object")),
    ];
    for (name, expected) in table {
        assert_eq!(status(name).unwrap_err(), expected, "{name}");
    }
    // JSON errors carry line and column.
    let table: &[(&str, usize, usize, &str)] = &[
        ("bad_truncated", 1, 81, "EOF while parsing a string"),
        ("bad_not_json", 1, 1, "expected value"),
        ("bad_multiline", 4, 3, "trailing comma"),
    ];
    for &(name, line, column, message) in table {
        let e = status(name).unwrap_err();
        let StatusError::Json { message: m, position } = &e else { panic!("{name}: {e:?}") };
        assert_eq!(*position, Position { line, column }, "{name}");
        assert_eq!(m, message, "{name}");
        assert_eq!(e.to_string(), format!("invalid JSON at line {line} column {column}: {message}"));
    }
    assert!(matches!(parse_status(b""), Err(StatusError::Json { .. })));
    assert!(matches!(parse_status(&[0xff, 0xfe]), Err(StatusError::Json { .. })));
    assert_eq!(parse_status(b"{}").unwrap(), ipvtl_core::Status::default());
    assert_eq!(parse_status(b"null").unwrap_err(), shape("expected a JSON object, found null"));
}

/// (uptime, fps, kbps) expected from a status text.
type Numbers = Option<(u64, f32, f32)>;

#[test]
fn stats_table() {
    let table: &[(&str, Numbers)] = &[
        ("12:34:56 30fps@1234Kbps", Some((45_296, 30.0, 1234.0))),
        ("  00:00:00   25FPS @ 100kbps ", Some((0, 25.0, 100.0))),
        ("1:2:3 1.5fps@2.25Kbps", Some((3_723, 1.5, 2.25))),
        ("00:60:00 25fps@1Kbps", None),
        ("00:00:60 25fps@1Kbps", None),
        ("00:00 25fps@1Kbps", None),
        ("00:00:00:00 25fps@1Kbps", None),
        ("-1:00:00 25fps@1Kbps", None),
        ("00:00:01 -25fps@1Kbps", None),
        ("00:00:01 25fps", None),
        ("00:00:01 25@1Kbps", None),
        ("00:00:01 fps@Kbps", None),
        ("00:00:01 1.2.3fps@1Kbps", None),
        ("00:00:01 25fps@1Mbps", None),
        ("", None),
        ("idle", None),
        ("00:00:01 ééfps@1Kbps", None),
    ];
    for &(text, expected) in table {
        let got = parse_stats(text).map(|s| (s.uptime_s, s.fps, s.kbps));
        assert_eq!(got, expected, "{text:?}");
    }
}

#[test]
fn servers_fixtures_parse_exactly() {
    let s = servers("array").unwrap();
    assert_eq!(
        s[0],
        ServerConfig {
            id: "edge-1".into(),
            name: "Edge 1".into(),
            host: "192.0.2.10".into(),
            port: 9527,
            description: "rack A".into(),
            tags: vec!["edge".into(), "rack-a".into()],
        }
    );
    assert_eq!(s[1], ServerConfig::new("edge-2", "192.0.2.11"));

    let s = servers("object").unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!((s[0].id.as_str(), s[0].port, s[0].tags.as_slice()), ("core-1", 8080, &["core".to_string()][..]));
    assert_eq!(s[1], ServerConfig::new("v6", "2001:db8::1"));
    assert_eq!(s[2].host, "[2001:db8::2]");

    let s = servers("numeric_ids").unwrap();
    assert_eq!(s.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(s[1].name, "2", "a null name defaults to the id");
}

#[test]
fn bad_servers_fixtures_name_entry_and_reason() {
    // (fixture, index, id, reason fragment)
    let table: &[(&str, usize, Option<&str>, &str)] = &[
        ("bad_duplicate_id", 2, Some("a"), "duplicate id"),
        ("bad_empty_host", 1, Some("b"), "\"host\" is empty"),
        ("bad_scheme", 0, Some("web"), "scheme"),
        ("bad_path", 1, Some("b"), "without path"),
        ("bad_host_port", 0, Some("p"), "must not include a port"),
        ("bad_port_zero", 0, Some("z"), "port 0"),
        ("bad_port_range", 1, Some("big"), "port 70000 is out of range 1-65535"),
        ("bad_missing_id", 1, None, "missing \"id\""),
    ];
    for &(name, index, id, reason) in table {
        let e = servers(name).unwrap_err();
        let ConfigError::Entry { index: i, id: got_id, reason: r } = &e else { panic!("{name}: {e:?}") };
        assert_eq!(*i, index, "{name}");
        assert_eq!(got_id.as_deref(), id, "{name}");
        assert!(r.contains(reason), "{name}: {r}");
        let text = e.to_string();
        assert!(text.starts_with(&format!("servers[{index}]")), "{name}: {text}");
        if let Some(id) = id {
            assert!(text.contains(&format!("(id {id:?})")), "{name}: {text}");
        }
        assert!(text.contains(reason), "{name}: {text}");
    }
    let e = servers("bad_json").unwrap_err();
    assert_eq!(
        e,
        ConfigError::Json { message: "expected `,` or `]`".into(), position: Position { line: 3, column: 3 } }
    );
    assert_eq!(e.to_string(), "invalid JSON at line 3 column 3: expected `,` or `]`");
    assert!(matches!(servers("bad_shape").unwrap_err(), ConfigError::Shape { .. }));
}

#[test]
fn more_bad_entries() {
    let table: &[(&str, &str)] = &[
        (r#"[{"id": "a", "host": "192.0.2.1", "port": "80"}]"#, "\"port\" must be an integer"),
        (r#"[{"id": "a", "host": "192.0.2.1", "port": -1}]"#, "out of range"),
        (r#"[{"id": "a", "host": "192.0.2.1", "tags": "edge"}]"#, "\"tags\" must be an array of strings"),
        (r#"[{"id": "a", "host": "192.0.2.1", "tags": [1]}]"#, "\"tags\" must be an array of strings"),
        (r#"[{"id": "a", "host": "192.0.2.1", "name": 5}]"#, "\"name\" must be a string"),
        (r#"[{"id": "a", "host": 5}]"#, "\"host\" must be a string"),
        (r#"[{"id": "a"}]"#, "missing \"host\""),
        (r#"[{"id": "a", "host": "a b"}]"#, "white space"),
        (r#"[{"id": "a", "host": "user@h"}]"#, "without path, query or user"),
        (r#"[{"id": "a", "host": "[::1"}]"#, "port"),
        (r#"[{"id": " ", "host": "h"}]"#, "\"id\" is empty"),
        (r#"[{"id": 1.5, "host": "h"}]"#, "\"id\" must be a string or an integer"),
        (r#"["h"]"#, "expected an object"),
    ];
    for &(text, reason) in table {
        let e = parse_servers(text).unwrap_err();
        assert!(matches!(&e, ConfigError::Entry { index: 0, .. }), "{text}: {e:?}");
        assert!(e.to_string().contains(reason), "{text}: {e}");
    }
    assert!(parse_servers(r#"{"servers": 3}"#).unwrap_err().to_string().contains("must be an array"));
    assert!(matches!(parse_servers("42"), Err(ConfigError::Shape { .. })));
    assert_eq!(parse_servers("[]").unwrap(), []);
    assert_eq!(parse_servers(r#"[{"id":"a","host":"::1","port":65535}]"#).unwrap()[0].port, 65535);
}

#[test]
fn desired_state_and_healing_are_declared_in_the_file() {
    let text = std::str::from_utf8(&fixture("servers/desired.json")).unwrap().to_owned();
    let file = parse_servers_file(&text).unwrap();
    assert_eq!(file.servers.len(), 3);
    let ch = |s: &str, n: u32| Scope::Channel(s.into(), ChannelId::new(n).unwrap());
    assert_eq!(
        file.desired,
        [
            (Scope::Server("edge-1".into()), Desired::Running),
            (ch("edge-1", 3), Desired::Idle),
            (ch("edge-1", 4), Desired::Unmanaged),
            (ch("edge-3", 1), Desired::Running),
            (Scope::Tag("lab".into()), Desired::Idle),
            (Scope::Tag("rack-b".into()), Desired::Running),
        ]
    );
    let d = HealPolicy::default();
    let edge1 = HealPolicy {
        grace: std::time::Duration::from_secs(30),
        limit: 2,
        window: std::time::Duration::from_secs(120),
        ..d.clone()
    };
    assert_eq!(
        file.healing,
        [
            (Scope::Server("edge-1".into()), Healing::On(edge1)),
            (Scope::Server("edge-2".into()), Healing::Off),
            (Scope::Tag("rack-b".into()), Healing::On(d)),
        ]
    );
    // The servers themselves are what parse_servers gives.
    assert_eq!(parse_servers(&text).unwrap(), file.servers);
    // The plain forms declare nothing.
    for name in ["array", "object", "numeric_ids"] {
        let f = parse_servers_file(std::str::from_utf8(&fixture(&format!("servers/{name}.json"))).unwrap()).unwrap();
        assert!(f.desired.is_empty() && f.healing.is_empty(), "{name}");
        assert_eq!(servers(name).unwrap(), f.servers, "{name}");
    }
}

#[test]
fn healing_in_the_file_takes_seconds_or_milliseconds() {
    let one = |healing: &str| {
        let text = format!(r#"[{{"id": "a", "host": "h", "healing": {healing}}}]"#);
        match parse_servers_file(&text).unwrap().healing.as_slice() {
            [(_, Healing::On(p))] => p.clone(),
            other => panic!("{healing}: {other:?}"),
        }
    };
    let ms = std::time::Duration::from_millis;
    assert_eq!(one("true"), HealPolicy::default());
    assert_eq!(one("{}"), HealPolicy::default());
    assert_eq!(one(r#"{"grace": 1.5}"#).grace, ms(1500));
    assert_eq!(one(r#"{"grace_ms": 1500}"#).grace, ms(1500));
    let p = one(r#"{"backoff": 2, "backoff_max_ms": 8000, "window": 60}"#);
    assert_eq!((p.backoff, p.backoff_max, p.window), (ms(2000), ms(8000), ms(60_000)));
    // A backoff above the default cap raises the cap with it.
    assert_eq!(one(r#"{"backoff": 120}"#).backoff_max, ms(120_000));
    let off = parse_servers_file(r#"[{"id": "a", "host": "h", "healing": {"enabled": false, "limit": 9}}]"#).unwrap();
    assert_eq!(off.healing, [(Scope::Server("a".into()), Healing::Off)]);
}

#[test]
fn bad_desired_state_and_healing_name_the_entry() {
    let e = servers("bad_desired").unwrap_err();
    assert_eq!(
        e,
        ConfigError::Entry {
            index: 1,
            id: Some("edge-2".into()),
            reason: r#""channels"."2": unknown desired state "on" (expected "running", "idle" or "unmanaged")"#.into(),
        }
    );
    assert_eq!(
        e.to_string(),
        r#"servers[1] (id "edge-2"): "channels"."2": unknown desired state "on" (expected "running", "idle" or "unmanaged")"#
    );
    let entries: &[(&str, &str)] = &[
        (
            r#""desired": "Running""#,
            r#""desired": unknown desired state "Running" (expected "running", "idle" or "unmanaged")"#,
        ),
        (r#""desired": 1"#, "a desired state must be a string"),
        (r#""channels": ["running"]"#, r#""channels" must be an object"#),
        (r#""channels": {"0": "running"}"#, r#""0" is not a channel number (from 1)"#),
        (r#""channels": {"x": "running"}"#, r#""x" is not a channel number"#),
        (r#""channels": {"1": "stopped"}"#, r#"unknown desired state "stopped""#),
        (r#""healing": "yes""#, "expected true, false or an object"),
        (r#""healing": {"limit": 0}"#, r#""limit" must be at least 1"#),
        (r#""healing": {"limit": 1.5}"#, r#""limit" 1.5 must be a positive integer"#),
        (r#""healing": {"limit": 9999999999}"#, "too large"),
        (r#""healing": {"window": 0}"#, r#""window" must be more than 0"#),
        (r#""healing": {"grace": -1}"#, "non-negative number of seconds"),
        (r#""healing": {"grace_ms": 1.5}"#, "non-negative integer"),
        (r#""healing": {"grace": 1, "grace_ms": 1000}"#, "not both"),
        (r#""healing": {"grace": "10s"}"#, "must be a number of seconds"),
        (r#""healing": {"backoff": 10, "backoff_max": 5}"#, "must be at least"),
        (r#""healing": {"limt": 3}"#, r#"unknown field "limt" (expected enabled, limit"#),
        (r#""healing": {"enabled": "no"}"#, "must be true or false"),
    ];
    for &(field, reason) in entries {
        let text = format!(r#"[{{"id": "a", "host": "h", {field}}}]"#);
        let e = parse_servers_file(&text).unwrap_err();
        assert!(matches!(&e, ConfigError::Entry { index: 0, id: Some(id), .. } if id == "a"), "{field}: {e:?}");
        assert!(e.to_string().contains(reason), "{field}: {e}");
        // parse_servers is just as strict.
        assert_eq!(parse_servers(&text).unwrap_err(), e);
    }
    let tags: &[(&str, &str)] = &[
        (r#"{"eu": {"desired": "up"}}"#, r#"tags["eu"]: "desired": unknown desired state "up""#),
        (r#"{"eu": {"healing": {"window_ms": 0}}}"#, r#"tags["eu"]: "healing": "window" must be more than 0"#),
        (r#"{"eu": {"channels": {"1": "idle"}}}"#, r#"tags["eu"]: unknown field "channels""#),
        (r#"{"eu": "running"}"#, r#"tags["eu"]: expected an object"#),
        (r#"{"": {"desired": "idle"}}"#, "a tag must not be empty"),
    ];
    for &(tags, reason) in tags {
        let text = format!(r#"{{"servers": [], "tags": {tags}}}"#);
        let e = parse_servers_file(&text).unwrap_err();
        assert!(matches!(&e, ConfigError::Tag { .. }), "{tags}: {e:?}");
        assert!(e.to_string().contains(reason), "{tags}: {e}");
    }
    let e = parse_servers_file(r#"{"servers": [], "tags": ["eu"]}"#).unwrap_err();
    assert!(matches!(e, ConfigError::Shape { .. }), "{e:?}");
    // null means not given.
    let f = parse_servers_file(
        r#"{"servers": [{"id": "a", "host": "h", "desired": null, "healing": null}], "tags": null}"#,
    )
    .unwrap();
    assert!(f.desired.is_empty() && f.healing.is_empty());
}

#[test]
fn the_example_servers_json_parses() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../servers/servers.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let s = parse_servers(&text).unwrap();
    assert!((3..=4).contains(&s.len()));
    for server in &s {
        assert_eq!(server.port, 9527);
        assert!(
            server.host.starts_with("192.0.2.") || server.host.starts_with("198.51.100."),
            "documentation addresses only: {}",
            server.host
        );
        assert!(!server.name.is_empty() && !server.description.is_empty() && !server.tags.is_empty());
    }
}

// ---- fuzzing ----

fn mutate(doc: &[u8], ops: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut d = doc.to_vec();
    for &(op, at, byte) in ops {
        let at = if d.is_empty() { 0 } else { at % (d.len() + 1) };
        match op % 5 {
            0 if at < d.len() => d[at] = byte,
            1 if at < d.len() => {
                d.remove(at);
            }
            2 => d.insert(at, byte),
            3 => d.truncate(at),
            _ => {
                let chunk: Vec<u8> = d[at..].iter().take(8).copied().collect();
                d.splice(at..at, chunk);
            }
        }
    }
    d
}

const STATUS_FIXTURES: &[&str] =
    &["idle", "running", "stopping", "odd_states", "float_cpu", "extra_fields", "null_status", "huge_hours"];
const SERVERS_FIXTURES: &[&str] = &["array", "object", "numeric_ids", "desired"];

#[derive(Clone, Debug)]
struct WireChannel {
    state: &'static str,
    stats: Option<(u64, u16, u32)>,
}

fn wire_channel() -> impl Strategy<Value = WireChannel> {
    (
        prop::sample::select(vec!["idle", "running", "stopping", "weird"]),
        prop::option::of((0u64..1_000_000, 0u16..240, 0u32..100_000)),
    )
        .prop_map(|(state, stats)| WireChannel { state, stats })
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,12}(\\.[a-z0-9-]{1,8}){0,3}",
        (0u8..=255, 0u8..=255).prop_map(|(a, b)| format!("192.0.{a}.{b}")),
        Just("2001:db8::1".to_string()),
    ]
}

fn server_config() -> impl Strategy<Value = ServerConfig> {
    ("[^\\s]{1,12}", ".{0,12}", host(), 1u16.., ".{0,20}", prop::collection::vec(".{0,6}", 0..3)).prop_map(
        |(id, name, host, port, description, tags)| ServerConfig { id: id.into(), name, host, port, description, tags },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn status_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_status(&bytes);
    }

    #[test]
    fn parsers_never_panic_on_strings(text in ".{0,200}") {
        let _ = parse_status(text.as_bytes());
        let _ = parse_stats(&text);
        let _ = parse_servers(&text);
        let _ = parse_servers_file(&text);
    }

    #[test]
    fn parsers_never_panic_on_mutated_documents(
        which in 0usize..100,
        ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..8),
    ) {
        let name = STATUS_FIXTURES[which % STATUS_FIXTURES.len()];
        let doc = mutate(&fixture(&format!("status/{name}.json")), &ops);
        if let Ok(s) = parse_status(&doc) {
            for (i, c) in s.channels.iter().enumerate() {
                prop_assert_eq!(c.id.index(), i);
            }
        }
        let name = SERVERS_FIXTURES[which % SERVERS_FIXTURES.len()];
        let doc = mutate(&fixture(&format!("servers/{name}.json")), &ops);
        if let Ok(text) = std::str::from_utf8(&doc) {
            match parse_servers_file(text) {
                // Whatever is accepted obeys the rules.
                Ok(file) => {
                    let list = &file.servers;
                    let ids: std::collections::BTreeSet<_> = list.iter().map(|s| s.id.clone()).collect();
                    prop_assert_eq!(ids.len(), list.len());
                    for s in list {
                        prop_assert!(s.port != 0 && !s.host.trim().is_empty() && !s.host.contains("://"));
                    }
                    // Per-server and per-channel settings name a listed server.
                    for scope in file.desired.iter().map(|(s, _)| s).chain(file.healing.iter().map(|(s, _)| s)) {
                        match scope {
                            Scope::Channel(id, _) | Scope::Server(id) => prop_assert!(ids.contains(id)),
                            Scope::Tag(t) => prop_assert!(!t.is_empty()),
                            _ => {}
                        }
                    }
                    for (_, h) in &file.healing {
                        if let Healing::On(p) = h {
                            prop_assert!(p.limit >= 1 && !p.window.is_zero() && p.backoff_max >= p.backoff);
                        }
                    }
                    prop_assert_eq!(parse_servers(text).ok(), Some(list.clone()));
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }

    #[test]
    fn stats_round_trip(h in 0u64..1_000_000, m in 0u64..60, s in 0u64..60, fps in 0u16..1_000, kbps in 0u32..1_000_000) {
        let text = format!("{h:02}:{m:02}:{s:02} {fps}fps@{kbps}Kbps");
        prop_assert_eq!(parse_stats(&text), Some(ChannelStats { uptime_s: h * 3600 + m * 60 + s, fps: f32::from(fps), kbps: kbps as f32 }));
    }

    #[test]
    fn status_round_trips_from_the_wire(
        channels in prop::collection::vec(wire_channel(), 0..6),
        cpu in prop::collection::vec(0u32..=100, 0..8),
        frac in any::<bool>(),
    ) {
        let mut parts = Vec::new();
        for c in &channels {
            let text = match c.stats {
                Some((up, fps, kbps)) => format!("{:02}:{:02}:{:02} {fps}fps@{kbps}Kbps", up / 3600, up / 60 % 60, up % 60),
                None => String::new(),
            };
            parts.push(serde_json::json!({"state": c.state, "status": text}));
        }
        let cpu_json: Vec<serde_json::Value> = cpu.iter().map(|c| if frac { serde_json::json!(*c as f64 + 0.5) } else { serde_json::json!(c) }).collect();
        let body = serde_json::to_vec(&serde_json::json!({"channels": parts, "cpu": cpu_json})).unwrap();
        let s = parse_status(&body).unwrap();
        prop_assert_eq!(s.channels.len(), channels.len());
        for (got, want) in s.channels.iter().zip(&channels) {
            prop_assert_eq!(got.state.as_str(), want.state);
            prop_assert_eq!(got.stats, want.stats.map(|(up, fps, kbps)| ChannelStats { uptime_s: up, fps: f32::from(fps), kbps: kbps as f32 }));
        }
        let want_cpu: Vec<f32> = cpu.iter().map(|c| *c as f32 + if frac { 0.5 } else { 0.0 }).collect();
        prop_assert_eq!(s.cpu, want_cpu);
    }

    #[test]
    fn servers_round_trip_in_both_forms(list in prop::collection::vec(server_config(), 0..6), object in any::<bool>()) {
        let mut unique = BTreeMap::new();
        for s in list {
            unique.entry(s.id.clone()).or_insert(s);
        }
        let list: Vec<ServerConfig> = unique.into_values().collect();
        let text = if object {
            serde_json::to_string(&serde_json::json!({"servers": list})).unwrap()
        } else {
            serde_json::to_string_pretty(&list).unwrap()
        };
        prop_assert_eq!(parse_servers(&text).unwrap(), list);
    }
}
