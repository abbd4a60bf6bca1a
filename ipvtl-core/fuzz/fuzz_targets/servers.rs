//! `parse_servers` on arbitrary text: never a panic, and an accepted list
//! keeps every rule the parser enforces.
#![no_main]

use std::collections::BTreeSet;

use ipvtl_core::parse_servers;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_servers(text) {
        Ok(servers) => {
            let mut ids = BTreeSet::new();
            for s in &servers {
                assert!(ids.insert(s.id.clone()), "duplicate id {:?} accepted", s.id);
                assert!(!s.host.is_empty() && s.port != 0, "{s:?}");
                assert!(!s.host.contains(['/', ' ']) && !s.host.contains("://"), "{s:?}");
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
