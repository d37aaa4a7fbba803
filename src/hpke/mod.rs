//! The HPKE core: RFC 9180 base mode (single-shot and context API, secret
//! export, DeriveKeyPair), independent of OpenMLS.
//!
//! A [`HpkeSuite`] is a KEM from the registry in [`kem`] plus a KDF and an
//! AEAD; every KEM plugs in through the [`Kem`] trait, so the key schedule
//! below is written once for all of them.

mod dhkem;
pub mod kem;
mod labeled;
mod p256;
mod x25519;

use zeroize::Zeroizing;

pub use kem::{kem_by_id, Kem, KeyPair, SharedSecret};

use crate::crypto::aead::{Aead, MAX_KEY_LEN, NONCE_LEN};
use crate::crypto::hash::{Hash, MAX_DIGEST_LEN};
use crate::crypto::rand::Rand;
use crate::Error;
use labeled::{labeled_expand, labeled_extract};

/// The HPKE AEAD identifier of an export-only context (RFC 9180 §7.3).
pub const EXPORT_ONLY_AEAD_ID: u16 = 0xFFFF;
const MODE_BASE: u8 = 0x00;

/// The HPKE KDF identifier of HKDF over `hash`.
pub const fn kdf_id(hash: Hash) -> u16 {
    match hash {
        Hash::Sha256 => 0x0001,
        Hash::Sha384 => 0x0002,
        Hash::Sha512 => 0x0003,
    }
}

/// The HPKE AEAD identifier of `aead`, or of export-only for `None`.
pub const fn aead_id(aead: Option<Aead>) -> u16 {
    match aead {
        Some(Aead::Aes128Gcm) => 0x0001,
        Some(Aead::Aes256Gcm) => 0x0002,
        Some(Aead::ChaCha20Poly1305) => 0x0003,
        None => EXPORT_ONLY_AEAD_ID,
    }
}

/// An HPKE cipher suite: KEM, KDF and AEAD (or export-only).
#[derive(Clone, Copy)]
pub struct HpkeSuite {
    kem: &'static dyn Kem,
    kdf: Hash,
    aead: Option<Aead>,
}

impl std::fmt::Debug for HpkeSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HpkeSuite(kem {:#06x}, kdf {:?}, aead {:?})",
            self.kem.id(),
            self.kdf,
            self.aead
        )
    }
}

impl HpkeSuite {
    /// The suite of the given RFC 9180 identifiers, if polymls offers all
    /// three; AEAD `0xFFFF` is export-only.
    pub fn from_ids(kem_id: u16, kdf_id: u16, aead_id: u16) -> Result<Self, Error> {
        let kem = kem_by_id(kem_id).ok_or(Error::UnsupportedAlgorithm)?;
        let kdf = [Hash::Sha256, Hash::Sha384, Hash::Sha512]
            .into_iter()
            .find(|hash| self::kdf_id(*hash) == kdf_id)
            .ok_or(Error::UnsupportedAlgorithm)?;
        let aead = [
            None,
            Some(Aead::Aes128Gcm),
            Some(Aead::Aes256Gcm),
            Some(Aead::ChaCha20Poly1305),
        ]
        .into_iter()
        .find(|aead| self::aead_id(*aead) == aead_id)
        .ok_or(Error::UnsupportedAlgorithm)?;
        Ok(HpkeSuite { kem, kdf, aead })
    }

    /// The suite made of these parts; `aead: None` is export-only.
    pub const fn new(kem: &'static dyn Kem, kdf: Hash, aead: Option<Aead>) -> Self {
        HpkeSuite { kem, kdf, aead }
    }

    /// The suite's KEM.
    pub fn kem(&self) -> &'static dyn Kem {
        self.kem
    }

    fn suite_id(&self) -> [u8; 10] {
        let [k0, k1] = self.kem.id().to_be_bytes();
        let [f0, f1] = kdf_id(self.kdf).to_be_bytes();
        let [a0, a1] = aead_id(self.aead).to_be_bytes();
        [b'H', b'P', b'K', b'E', k0, k1, f0, f1, a0, a1]
    }

    /// `DeriveKeyPair(ikm)` of the suite's KEM.
    pub fn derive_key_pair(&self, ikm: &[u8]) -> Result<KeyPair, Error> {
        self.kem.derive_key_pair(ikm)
    }

    /// `SetupBaseS`: encapsulates to `public_key` with fresh randomness.
    /// Returns the encapsulation and the sender context.
    pub fn setup_sender(
        &self,
        rand: &Rand,
        public_key: &[u8],
        info: &[u8],
    ) -> Result<(Vec<u8>, Context), Error> {
        let seed = self.kem.random_encap_seed(rand);
        self.setup_sender_with_seed(public_key, info, &seed[..self.kem.encap_seed_len()])
    }

    /// `SetupBaseS` with a caller-chosen encapsulation seed (for DHKEM the
    /// ephemeral private key). Deterministic: for known-answer tests and
    /// callers with their own randomness. Reusing a seed breaks security.
    pub fn setup_sender_with_seed(
        &self,
        public_key: &[u8],
        info: &[u8],
        seed: &[u8],
    ) -> Result<(Vec<u8>, Context), Error> {
        let (shared_secret, enc) = self.kem.encap(public_key, seed)?;
        Ok((enc, self.key_schedule(shared_secret.as_ref(), info)?))
    }

    /// `SetupBaseR`: decapsulates `enc` with `private_key`.
    pub fn setup_receiver(
        &self,
        enc: &[u8],
        private_key: &[u8],
        info: &[u8],
    ) -> Result<Context, Error> {
        let shared_secret = self.kem.decap(enc, private_key)?;
        self.key_schedule(shared_secret.as_ref(), info)
    }

    /// Single-shot `Seal`: returns `(enc, ciphertext)`.
    pub fn seal(
        &self,
        rand: &Rand,
        public_key: &[u8],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let (enc, mut context) = self.setup_sender(rand, public_key, info)?;
        Ok((enc, context.seal(aad, plaintext)?))
    }

    /// Single-shot `Open`.
    pub fn open(
        &self,
        enc: &[u8],
        private_key: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.setup_receiver(enc, private_key, info)?
            .open(aad, ciphertext)
    }

    /// Single-shot `SendExport`: returns `(enc, exported secret)`.
    pub fn send_export(
        &self,
        rand: &Rand,
        public_key: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        length: usize,
    ) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), Error> {
        let (enc, context) = self.setup_sender(rand, public_key, info)?;
        Ok((enc, context.export(exporter_context, length)?))
    }

    /// Single-shot `ReceiveExport`.
    pub fn receive_export(
        &self,
        enc: &[u8],
        private_key: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        length: usize,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.setup_receiver(enc, private_key, info)?
            .export(exporter_context, length)
    }

    /// `KeySchedule` of RFC 9180 §5.1 in base mode (no PSK).
    fn key_schedule(&self, shared_secret: &[u8], info: &[u8]) -> Result<Context, Error> {
        let suite_id = self.suite_id();
        let kdf = self.kdf;
        let psk_id_hash = labeled_extract(kdf, &suite_id, b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract(kdf, &suite_id, b"", b"info_hash", info);
        let context = [
            &[MODE_BASE][..],
            psk_id_hash.as_bytes(),
            info_hash.as_bytes(),
        ];
        let secret = labeled_extract(kdf, &suite_id, shared_secret, b"secret", b"");

        let mut key = Zeroizing::new([0u8; MAX_KEY_LEN]);
        let mut base_nonce = Zeroizing::new([0u8; NONCE_LEN]);
        if let Some(aead) = self.aead {
            labeled_expand(
                kdf,
                &suite_id,
                secret.as_bytes(),
                b"key",
                &context,
                &mut key[..aead.key_len()],
            )?;
            labeled_expand(
                kdf,
                &suite_id,
                secret.as_bytes(),
                b"base_nonce",
                &context,
                base_nonce.as_mut(),
            )?;
        }
        let mut exporter_secret = Zeroizing::new([0u8; MAX_DIGEST_LEN]);
        labeled_expand(
            kdf,
            &suite_id,
            secret.as_bytes(),
            b"exp",
            &context,
            &mut exporter_secret[..kdf.output_len()],
        )?;
        Ok(Context {
            suite: *self,
            suite_id,
            key,
            base_nonce,
            exporter_secret,
            sequence: 0,
        })
    }
}

/// An HPKE encryption context (sender or receiver) in base mode.
///
/// Its key, base nonce and exporter secret are zeroized on drop and never
/// shown by `Debug`.
pub struct Context {
    suite: HpkeSuite,
    suite_id: [u8; 10],
    key: Zeroizing<[u8; MAX_KEY_LEN]>,
    base_nonce: Zeroizing<[u8; NONCE_LEN]>,
    exporter_secret: Zeroizing<[u8; MAX_DIGEST_LEN]>,
    sequence: u64,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Context({:?}, sequence {}, secrets redacted)",
            self.suite, self.sequence
        )
    }
}

impl Context {
    /// Encrypts the next message.
    pub fn seal(&mut self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let aead = self.suite.aead.ok_or(Error::ExportOnly)?;
        let nonce = self.next_nonce()?;
        let ciphertext = aead.seal(&self.key[..aead.key_len()], nonce.as_ref(), aad, plaintext)?;
        self.sequence += 1;
        Ok(ciphertext)
    }

    /// Decrypts the next message; the sequence advances only on success.
    pub fn open(&mut self, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
        let aead = self.suite.aead.ok_or(Error::ExportOnly)?;
        let nonce = self.next_nonce()?;
        let plaintext = aead.open(&self.key[..aead.key_len()], nonce.as_ref(), aad, ciphertext)?;
        self.sequence += 1;
        Ok(plaintext)
    }

    /// `Export(exporter_context, length)`: at most 255 digests long.
    pub fn export(
        &self,
        exporter_context: &[u8],
        length: usize,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let kdf = self.suite.kdf;
        if length > 255 * kdf.output_len() {
            return Err(Error::OutputTooLong);
        }
        let mut out = Zeroizing::new(vec![0u8; length]);
        labeled_expand(
            kdf,
            &self.suite_id,
            &self.exporter_secret[..kdf.output_len()],
            b"sec",
            &[exporter_context],
            &mut out,
        )?;
        Ok(out)
    }

    /// `ComputeNonce(seq)`; refuses the last sequence number rather than
    /// wrap (RFC 9180 §5.2 allows 2^96 - 1; a u64 is exhausted first).
    fn next_nonce(&self) -> Result<Zeroizing<[u8; NONCE_LEN]>, Error> {
        if self.sequence == u64::MAX {
            return Err(Error::MessageLimitReached);
        }
        let mut nonce = self.base_nonce.clone();
        for (byte, seq) in nonce[NONCE_LEN - 8..]
            .iter_mut()
            .zip(self.sequence.to_be_bytes())
        {
            *byte ^= seq;
        }
        Ok(nonce)
    }
}
