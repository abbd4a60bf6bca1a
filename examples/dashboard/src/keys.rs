//! API keys and roles: a key is a random token shown once when it is made
//! and stored only as its SHA-256; each has a name and a role.

use std::fmt;

use sha2::{Digest, Sha256};

/// What a key may do. Ordered: each role may do what the ones below it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads, channel actions, batches, refresh and maintenance.
    Operator,
    /// All of that, plus reloading the servers file and managing keys.
    Admin,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// A role by name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name the audit gives the key of `--api-key` / `IPVTL_API_KEY` (no
/// stored key can have it: their names start with a letter or digit).
pub const FLAG_KEY_NAME: &str = "--api-key";

/// A new token: `ipvtl_` and 64 hex digits (256 random bits from the OS).
pub fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the operating system: {e}"))?;
    Ok(format!("ipvtl_{}", hex(&bytes)))
}

/// The SHA-256 of a token, in hex: what the store keeps. Tokens are 256
/// random bits, so a plain hash is enough (nothing to guess).
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Unix seconds now (when a key is made).
pub fn now() -> f64 {
    crate::timefmt::unix_s(std::time::SystemTime::now())
}

/// Unix seconds as ISO-8601 UTC (for `keys list`).
pub fn iso(t: f64) -> String {
    crate::timefmt::iso_from_ms((t.max(0.0) * 1000.0) as u64)
}

/// Checks a key name: 1 to 64 of letters, digits, `.`, `_`, `-`, `@`,
/// starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if name.len() > 64 || !first_ok || !name.chars().all(ok_char) {
        return Err(format!(
            "key name {name:?}: use 1 to 64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_named() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for r in [Role::Viewer, Role::Operator, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn tokens_are_random_and_stored_as_their_hash() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 6 + 64);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert!(!hash_token(&a).contains(&a[6..]));
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn names_are_checked() {
        for ok in ["ops", "ci-bot", "a.b_c@d", "1"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", FLAG_KEY_NAME, "a b", "é", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
