//! `parse_status` on arbitrary bytes: never a panic, and what it accepts
//! holds the parser's promises.
#![no_main]

use ipvtl_core::{parse_stats, parse_status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_status(data) {
        Ok(status) => {
            for (i, channel) in status.channels.iter().enumerate() {
                // Channel N is the N-th entry.
                assert_eq!(channel.id.get() as usize, i + 1);
                // Stats come from the status text and nowhere else.
                assert_eq!(channel.stats, parse_stats(&channel.status));
            }
            assert!(status.cpu.iter().all(|c| c.is_finite()), "cpu {:?}", status.cpu);
        }
        // The message is for humans: building it must not panic either.
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
