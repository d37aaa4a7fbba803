//! Authenticated encryption: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305.

use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;

use crate::Error;

/// Nonce length of every AEAD here (`Nn`).
pub const NONCE_LEN: usize = 12;
/// Tag length of every AEAD here (`Nt`).
pub const TAG_LEN: usize = 16;
/// The longest key of any AEAD here.
pub const MAX_KEY_LEN: usize = 32;

/// An AEAD algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aead {
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305,
}

/// Runs `$body` with `$C` bound to the cipher type of `$aead`.
macro_rules! with_cipher {
    ($aead:expr, $C:ident => $body:expr) => {
        match $aead {
            Aead::Aes128Gcm => {
                type $C = Aes128Gcm;
                $body
            }
            Aead::Aes256Gcm => {
                type $C = Aes256Gcm;
                $body
            }
            Aead::ChaCha20Poly1305 => {
                type $C = ChaCha20Poly1305;
                $body
            }
        }
    };
}

impl Aead {
    /// Key length in bytes (`Nk`).
    pub const fn key_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 16,
            Aead::Aes256Gcm | Aead::ChaCha20Poly1305 => 32,
        }
    }

    /// Encrypts `plaintext`, returning ciphertext followed by the tag.
    ///
    /// Fails on a key or nonce of the wrong length.
    pub fn seal(
        self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let mut buffer = Vec::with_capacity(plaintext.len() + TAG_LEN);
        self.seal_into(key, nonce, aad, plaintext, &mut buffer)?;
        Ok(buffer)
    }

    /// Encrypts `plaintext` and appends ciphertext followed by the tag to
    /// `out`, which keeps what it held: for formats that put a header
    /// before the ciphertext, without a second copy of it. On an error
    /// `out` is as it was.
    ///
    /// Fails on a key or nonce of the wrong length.
    pub fn seal_into(
        self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.check_lengths(key, nonce)?;
        let start = out.len();
        out.reserve(plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        let tag = with_cipher!(self, C => {
            C::new(GenericArray::from_slice(key))
                .encrypt_in_place_detached(GenericArray::from_slice(nonce), aad, &mut out[start..])
        });
        match tag {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(_) => {
                out.truncate(start);
                Err(Error::InvalidLength)
            }
        }
    }

    /// Decrypts and authenticates `ciphertext` (ciphertext followed by tag).
    ///
    /// Fails on wrong lengths, and with [`Error::DecryptionFailed`] on any
    /// tampering; no plaintext is released unless the tag verifies.
    pub fn open(
        self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.check_lengths(key, nonce)?;
        if ciphertext.len() < TAG_LEN {
            return Err(Error::DecryptionFailed);
        }
        let mut buffer = ciphertext.to_vec();
        with_cipher!(self, C => {
            C::new(GenericArray::from_slice(key))
                .decrypt_in_place(GenericArray::from_slice(nonce), aad, &mut buffer)
                .map_err(|_| Error::DecryptionFailed)?
        });
        Ok(buffer)
    }

    fn check_lengths(self, key: &[u8], nonce: &[u8]) -> Result<(), Error> {
        if key.len() != self.key_len() || nonce.len() != NONCE_LEN {
            return Err(Error::InvalidLength);
        }
        Ok(())
    }
}
