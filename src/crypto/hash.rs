//! SHA-2 hashing, the hash functions of the RFC 9420 cipher suites.

use sha2::Digest;

/// The largest digest any [`Hash`](enum@Hash) produces (SHA-512).
pub const MAX_DIGEST_LEN: usize = 64;

/// A SHA-2 hash function, also the hash under HMAC and HKDF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// Runs `$body` with `$D` bound to the `sha2` type of `$hash`.
///
/// One generic body instead of three hand-copied arms keeps every primitive
/// that is keyed by a hash (digest, HMAC, HKDF) written once.
macro_rules! with_digest {
    ($hash:expr, $D:ident => $body:expr) => {
        match $hash {
            $crate::crypto::hash::Hash::Sha256 => {
                type $D = ::sha2::Sha256;
                $body
            }
            $crate::crypto::hash::Hash::Sha384 => {
                type $D = ::sha2::Sha384;
                $body
            }
            $crate::crypto::hash::Hash::Sha512 => {
                type $D = ::sha2::Sha512;
                $body
            }
        }
    };
}
pub(crate) use with_digest;

impl Hash {
    /// Digest length in bytes (`Nh`).
    pub const fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        with_digest!(self, D => D::digest(data).to_vec())
    }
}
