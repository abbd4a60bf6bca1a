//! `parse_servers_file` on arbitrary text: never a panic, and an accepted
//! file keeps every rule the parser enforces.
#![no_main]

use std::collections::BTreeSet;

use ipvtl_core::{parse_servers, parse_servers_file, Healing, Scope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_servers_file(text) {
        Ok(file) => {
            let mut ids = BTreeSet::new();
            for s in &file.servers {
                assert!(ids.insert(s.id.clone()), "duplicate id {:?} accepted", s.id);
                assert!(!s.host.is_empty() && s.port != 0, "{s:?}");
                assert!(!s.host.contains(['/', ' ']) && !s.host.contains("://"), "{s:?}");
            }
            for scope in file.desired.iter().map(|(s, _)| s).chain(file.healing.iter().map(|(s, _)| s)) {
                match scope {
                    Scope::Channel(id, _) | Scope::Server(id) => assert!(ids.contains(id), "{scope:?}"),
                    Scope::Tag(t) => assert!(!t.is_empty()),
                    _ => {}
                }
            }
            for (_, h) in &file.healing {
                if let Healing::On(p) = h {
                    assert!(p.limit >= 1 && !p.window.is_zero() && p.backoff_max >= p.backoff, "{p:?}");
                }
            }
            assert_eq!(parse_servers(text).ok(), Some(file.servers));
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert_eq!(parse_servers(text).err(), Some(e));
        }
    }
});
