//! Record names, for the hosts' adapters: `prefix || suffix`, each the
//! first 16 bytes of an HMAC-SHA256 under the store's naming key, the
//! prefix over the record's scope (its group, or none) and the suffix over
//! the record within it. So no group id, public key or reference appears
//! in the files, and a scope's records sit together for a prefix scan.
//!
//! Every storage call names its records, so the cost is kept to the
//! messages' compressions: the HMAC is keyed once (two compressions fewer
//! per name), and the last scope's prefix is remembered (a transaction's
//! records mostly share one group).

use std::sync::{Mutex, PoisonError};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The length of a name's prefix and of its suffix.
pub const NAME_PART_LEN: usize = 16;

/// Names records under one store's naming key.
pub struct Naming {
    /// HMAC-SHA256 keyed with the naming key, cloned for each tag.
    keyed: Hmac<Sha256>,
    /// The last scope named (its input, concatenated) and its prefix.
    last_prefix: Mutex<Option<(Vec<u8>, [u8; NAME_PART_LEN])>>,
}

impl Naming {
    /// Names under `naming_key`.
    pub fn new(naming_key: &[u8; 32]) -> Naming {
        Naming {
            keyed: <Hmac<Sha256> as KeyInit>::new_from_slice(naming_key)
                .expect("HMAC takes keys of any length"),
            last_prefix: Mutex::new(None),
        }
    }

    fn tag(&self, parts: &[&[u8]]) -> [u8; NAME_PART_LEN] {
        let mut mac = self.keyed.clone();
        for part in parts {
            mac.update(part);
        }
        let tag = mac.finalize().into_bytes();
        tag[..NAME_PART_LEN].try_into().expect("32-byte tag")
    }

    /// The prefix of every record of the scope whose HMAC input is the
    /// concatenation of `scope`.
    pub fn prefix(&self, scope: &[&[u8]]) -> [u8; NAME_PART_LEN] {
        let mut last = self
            .last_prefix
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((input, prefix)) = last.as_ref() {
            if is_concatenation(input, scope) {
                return *prefix;
            }
        }
        let prefix = self.tag(scope);
        *last = Some((scope.concat(), prefix));
        prefix
    }

    /// The name of the record whose scope's HMAC input is the concatenation
    /// of `scope`, and its own that of `record`.
    pub fn name(&self, scope: &[&[u8]], record: &[&[u8]]) -> Vec<u8> {
        [self.prefix(scope), self.tag(record)].concat()
    }
}

/// The keyed state is as good as the naming key for computing names, and
/// lives as long as the store: overwritten when it drops, as the naming key
/// is (sha2's own wiping is a feature off in this build, and turning it on
/// would wipe every HMAC state of the HKDF hot path too).
impl Drop for Naming {
    fn drop(&mut self) {
        let blank = <Hmac<Sha256> as KeyInit>::new_from_slice(&[0; 32])
            .expect("HMAC takes keys of any length");
        // SAFETY: `self.keyed` is a valid, exclusively borrowed value;
        // overwriting it without dropping the old one at most skips a Drop
        // (it owns no heap memory), which is sound.
        unsafe { std::ptr::write_volatile(&mut self.keyed, blank) };
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

/// Whether `bytes` is the concatenation of `parts`.
fn is_concatenation(bytes: &[u8], parts: &[&[u8]]) -> bool {
    let mut rest = bytes;
    for part in parts {
        match rest.strip_prefix(*part) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hash::Hash;

    /// The keyed and remembered computation gives the names of the plain
    /// HMAC definition, whichever scope came before: stored records keep
    /// their names.
    #[test]
    fn names_are_the_truncated_hmacs_whatever_came_before() {
        let key = [7u8; 32];
        let naming = Naming::new(&key);
        let expected = |scope: &[&[u8]], record: &[&[u8]]| {
            [
                &Hash::Sha256.hmac(&key, scope).as_bytes()[..NAME_PART_LEN],
                &Hash::Sha256.hmac(&key, record).as_bytes()[..NAME_PART_LEN],
            ]
            .concat()
        };
        let scopes: [&[&[u8]]; 5] = [
            &[b"group", b"one"],
            &[b"group", b"one"],
            &[b"group", b"two"],
            &[b"groupo", b"ne"],
            &[b"global"],
        ];
        let mut distinct = std::collections::HashSet::new();
        for scope in scopes.iter().chain(scopes.iter().rev()) {
            let name = naming.name(scope, &[b"record", &[1]]);
            assert_eq!(name, expected(scope, &[b"record", &[1]]));
            distinct.insert(name);
        }
        // "group" || "one" and "groupo" || "ne" are one HMAC input.
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn concatenation_is_checked_part_by_part() {
        assert!(is_concatenation(b"groupone", &[b"group", b"one"]));
        assert!(is_concatenation(b"", &[]));
        assert!(!is_concatenation(b"groupone", &[b"group", b"on"]));
        assert!(!is_concatenation(b"groupon", &[b"group", b"one"]));
        assert!(!is_concatenation(b"groupone", &[b"group", b"two"]));
    }
}
