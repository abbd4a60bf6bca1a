//! Label sets and their fingerprint.

use alloc::collections::BTreeMap;
use alloc::string::String;
use core::fmt;

/// Labels (or annotations) of an alert: names to values, ordered by name.
/// A label set identifies an alert.
pub type Labels = BTreeMap<String, String>;

/// A stable 64-bit hash of a label set: the alert's identity, for
/// deduplication and for the outbox.
///
/// FNV-1a (64-bit) over each label in name order, as `name 0xff value
/// 0xff`. It depends on nothing but the labels' bytes: the same label set
/// gives the same fingerprint on every platform, build and run. Shown as 16
/// lower-case hex digits, like Alertmanager's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub u64);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Not a byte of any UTF-8 text, so `a=bc` and `ab=c` cannot collide.
const SEPARATOR: u8 = 0xff;

impl Fingerprint {
    /// The fingerprint of `labels`.
    pub fn of(labels: &Labels) -> Self {
        let mut h = FNV_OFFSET;
        let mut eat = |b: u8| {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        };
        for (name, value) in labels {
            name.bytes().for_each(&mut eat);
            eat(SEPARATOR);
            value.bytes().for_each(&mut eat);
            eat(SEPARATOR);
        }
        Fingerprint(h)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}
