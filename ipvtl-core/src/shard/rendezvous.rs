//! Stable hashing: servers into shards (FNV-1a 64) and shards onto
//! instances (rendezvous, highest random weight).
//!
//! Every value computed here is part of the on-disk contract between
//! dashboard versions: two instances built by different compilers, on
//! different platforms, must agree on which shard a server is in and which
//! instance a shard prefers. So the hashes are written out here, byte by
//! byte, and pinned by tests; never swap them for `core::hash`.

use alloc::string::String;
use core::fmt;
use serde::{Deserialize, Serialize};

use crate::ids::ServerId;

/// One dashboard instance sharing the fleet, as it heartbeats into the
/// store. It must be unique per running process (host name + process
/// start, say): two live processes with one id would each believe the
/// other's leases are their own.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(String);

impl InstanceId {
    /// Wraps an id.
    pub fn new(id: impl Into<String>) -> Self {
        InstanceId(id.into())
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for InstanceId {
    fn from(s: &str) -> Self {
        InstanceId(s.into())
    }
}

impl From<String> for InstanceId {
    fn from(s: String) -> Self {
        InstanceId(s)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a64_from(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// FNV-1a, 64 bits, of `bytes` (the standard offset basis and prime).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_from(FNV_OFFSET, bytes)
}

/// The splitmix64 finalizer: spreads FNV's weak low bits over the word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The shard `server` belongs to: FNV-1a 64 of the id's UTF-8 bytes,
/// modulo `shards` (0 shards counts as 1). Stable across versions and
/// platforms.
pub fn shard_of(server: &ServerId, shards: u16) -> u16 {
    let n = u64::from(shards.max(1));
    // The remainder is below `shards`, so it fits.
    (fnv1a64(server.as_str().as_bytes()) % n) as u16
}

/// How much `instance` wants `shard`: FNV-1a 64 over the id's bytes, a
/// 0xFF separator (never a byte of UTF-8) and the shard big-endian, then
/// the splitmix64 finalizer. Stable across versions and platforms.
pub fn rendezvous_weight(instance: &InstanceId, shard: u16) -> u64 {
    let h = fnv1a64(instance.as_str().as_bytes());
    let h = fnv1a64_from(h, &[0xff]);
    mix(fnv1a64_from(h, &shard.to_be_bytes()))
}

/// The instance `shard` prefers among `live`: the highest
/// [`rendezvous_weight`], ties broken by the greater id. `None` when `live`
/// is empty. Removing an instance only moves the shards it was preferred
/// for; adding one only moves shards to it.
pub fn rendezvous_owner(shard: u16, live: &[InstanceId]) -> Option<&InstanceId> {
    top_two(shard, live).0
}

/// The preferred instance and the runner-up (distinct ids) for `shard`.
pub(crate) fn top_two(shard: u16, live: &[InstanceId]) -> (Option<&InstanceId>, Option<&InstanceId>) {
    let mut first: Option<(u64, &InstanceId)> = None;
    let mut second: Option<(u64, &InstanceId)> = None;
    for id in live {
        let w = (rendezvous_weight(id, shard), id);
        if first.is_some_and(|f| f.1 == id) || second.is_some_and(|s| s.1 == id) {
            continue;
        }
        if first.is_none_or(|f| w > f) {
            second = first;
            first = Some(w);
        } else if second.is_none_or(|s| w > s) {
            second = Some(w);
        }
    }
    (first.map(|f| f.1), second.map(|s| s.1))
}
