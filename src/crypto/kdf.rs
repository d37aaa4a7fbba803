//! HMAC and HKDF (RFC 2104, RFC 5869) over the SHA-2 family.
//!
//! Inputs are taken as lists of parts and fed to HMAC in order, so labeled
//! derivations (HPKE's `LabeledExtract`, MLS's `ExpandWithLabel`) never
//! concatenate into a temporary buffer.

use hmac::digest::array::Array;
use hmac::digest::FixedOutput;
use hmac::{Hmac, KeyInit, Mac};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::hash::{with_digest, Hash, MAX_DIGEST_LEN};
use crate::Error;

/// A hash-sized secret (an HKDF pseudorandom key or an HMAC tag), kept in a
/// fixed buffer that is zeroized on drop.
#[derive(Clone)]
pub struct Secret {
    bytes: [u8; MAX_DIGEST_LEN],
    len: usize,
}

/// Only the used bytes were ever written: zeroizing the whole 64-byte
/// buffer for a SHA-256 secret cost a measurable share of an HKDF call
/// (volatile writes, one byte each; see BENCHMARKS.md).
impl Drop for Secret {
    fn drop(&mut self) {
        self.bytes[..self.len].zeroize();
    }
}

impl ZeroizeOnDrop for Secret {}

impl Secret {
    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes, redacted)", self.len)
    }
}

impl Hash {
    /// HMAC of the concatenation of `parts` under `key`.
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Secret {
        with_digest!(self, D => {
            let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key)
                .expect("HMAC takes keys of any length");
            for part in parts {
                mac.update(part);
            }
            // Straight into the secret's buffer: no temporary to wipe.
            let mut secret = Secret { bytes: [0; MAX_DIGEST_LEN], len: self.output_len() };
            FixedOutput::finalize_into(mac, <&mut Array<u8, _>>::try_from(&mut secret.bytes[..secret.len]).expect("the digest's length"));
            secret
        })
    }

    /// HKDF-Extract with `salt` over the concatenation of `ikm_parts`.
    ///
    /// RFC 5869 defines it as `HMAC(salt, IKM)`, and that is all this
    /// computes: the `hkdf` crate's extract also keys an expander on the
    /// result (two more compressions, a third of the call), which every
    /// caller here discards. An empty salt is HMAC's zero-padded key, the
    /// same as RFC 5869's `HashLen` zeros.
    pub fn extract(self, salt: &[u8], ikm_parts: &[&[u8]]) -> Secret {
        self.hmac(salt, ikm_parts)
    }

    /// HKDF-Expand of `prk` with the concatenation of `info_parts` into `out`.
    ///
    /// Fails if `prk` is shorter than the digest or `out` is longer than
    /// 255 digests.
    pub fn expand(self, prk: &[u8], info_parts: &[&[u8]], out: &mut [u8]) -> Result<(), Error> {
        with_digest!(self, D => expand_with::<Hmac<D>>(prk, info_parts, out))
    }
}

/// HKDF-Expand with the HMAC `H`, one small function per hash: with all
/// three hashes in one body, the compiler kept `from_prk` out of line and
/// copied the HKDF state (two HMAC states) out of its `Result` on every
/// call, which callgrind showed against openmls_rust_crypto.
fn expand_with<H: hkdf::HmacImpl>(
    prk: &[u8],
    info_parts: &[&[u8]],
    out: &mut [u8],
) -> Result<(), Error> {
    match hkdf::GenericHkdf::<H>::from_prk(prk) {
        Ok(hkdf) => hkdf
            .expand_multi_info(info_parts, out)
            .map_err(|_| Error::OutputTooLong),
        Err(_) => Err(Error::InvalidLength),
    }
}
