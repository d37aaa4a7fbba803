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
mod xwing;

use zeroize::Zeroizing;

pub use kem::{kem_by_id, Kem, KeyPair, SharedSecret};
pub use xwing::{XWing, XWingDerivation};

use crate::crypto::aead::{Aead, MAX_KEY_LEN, NONCE_LEN};
use crate::crypto::hash::{Hash, MAX_DIGEST_LEN};
use crate::crypto::rand::Rand;
use crate::Error;
use labeled::{labeled_derive_shake256, labeled_expand, labeled_extract};

/// The HPKE AEAD identifier of an export-only context (RFC 9180 §7.3).
pub const EXPORT_ONLY_AEAD_ID: u16 = 0xFFFF;
const MODE_BASE: u8 = 0x00;
const MODE_PSK: u8 = 0x01;
/// RFC 9180 §9.5: a PSK of at least 32 bytes of entropy.
const MIN_PSK_LEN: usize = 32;

/// A pre-shared key and its identifier, for HPKE's PSK mode.
///
/// Both must be non-empty and the key at least 32 bytes long (RFC 9180
/// §5.1 and §9.5); the key is the caller's to keep secret (it is borrowed,
/// never copied beyond the key schedule's zeroized buffers).
#[derive(Clone, Copy)]
pub struct Psk<'a> {
    /// The PSK's identifier (`psk_id`).
    pub id: &'a [u8],
    /// The PSK itself.
    pub key: &'a [u8],
}

impl std::fmt::Debug for Psk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Psk(id {} bytes, key redacted)", self.id.len())
    }
}

/// An HPKE KDF: HKDF (two-stage, RFC 9180) or SHAKE256 (one-stage,
/// draft-ietf-hpke-pq).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// HKDF over a SHA-2 hash.
    Hkdf(Hash),
    /// SHAKE256 as a one-stage KDF.
    Shake256,
}

impl Kdf {
    const ALL: [Kdf; 4] = [
        Kdf::Hkdf(Hash::Sha256),
        Kdf::Hkdf(Hash::Sha384),
        Kdf::Hkdf(Hash::Sha512),
        Kdf::Shake256,
    ];

    /// The HPKE KDF identifier.
    pub const fn id(self) -> u16 {
        match self {
            Kdf::Hkdf(Hash::Sha256) => 0x0001,
            Kdf::Hkdf(Hash::Sha384) => 0x0002,
            Kdf::Hkdf(Hash::Sha512) => 0x0003,
            Kdf::Shake256 => 0x0011,
        }
    }

    /// `Nh`.
    const fn output_len(self) -> usize {
        match self {
            Kdf::Hkdf(hash) => hash.output_len(),
            Kdf::Shake256 => 64,
        }
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
    kdf: Kdf,
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
        let kdf = Kdf::ALL
            .into_iter()
            .find(|kdf| kdf.id() == kdf_id)
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
    pub const fn new(kem: &'static dyn Kem, kdf: Kdf, aead: Option<Aead>) -> Self {
        HpkeSuite { kem, kdf, aead }
    }

    /// The suite's KEM.
    pub fn kem(&self) -> &'static dyn Kem {
        self.kem
    }

    /// The suite's KDF.
    pub fn kdf(&self) -> Kdf {
        self.kdf
    }

    /// The suite's AEAD, or `None` for export-only.
    pub fn aead(&self) -> Option<Aead> {
        self.aead
    }

    fn suite_id(&self) -> [u8; 10] {
        let [k0, k1] = self.kem.id().to_be_bytes();
        let [f0, f1] = self.kdf.id().to_be_bytes();
        let [a0, a1] = aead_id(self.aead).to_be_bytes();
        [b'H', b'P', b'K', b'E', k0, k1, f0, f1, a0, a1]
    }

    /// `DeriveKeyPair(ikm)` of the suite's KEM.
    pub fn derive_key_pair(&self, ikm: &[u8]) -> Result<KeyPair, Error> {
        self.kem.derive_key_pair(ikm)
    }

    /// `DeriveKeyPair(ikm)` with the private key in the KEM's expanded form
    /// (see [`Kem::derive_key_pair_expanded`]): faster to open with, but not
    /// the serialization other implementations read.
    pub fn derive_key_pair_expanded(&self, ikm: &[u8]) -> Result<KeyPair, Error> {
        self.kem.derive_key_pair_expanded(ikm)
    }

    /// `SetupPSKS`: as [`HpkeSuite::setup_sender`], in PSK mode.
    pub fn setup_sender_psk(
        &self,
        rand: &Rand,
        public_key: &[u8],
        info: &[u8],
        psk: Psk<'_>,
    ) -> Result<(Vec<u8>, Context), Error> {
        self.sender(rand, public_key, info, Some(psk))
    }

    /// `SetupPSKS` with a caller-chosen encapsulation seed (see
    /// [`HpkeSuite::setup_sender_with_seed`]).
    pub fn setup_sender_psk_with_seed(
        &self,
        public_key: &[u8],
        info: &[u8],
        psk: Psk<'_>,
        seed: &[u8],
    ) -> Result<(Vec<u8>, Context), Error> {
        self.sender_with_seed(public_key, info, Some(psk), seed)
    }

    /// `SetupPSKR`: as [`HpkeSuite::setup_receiver`], in PSK mode.
    pub fn setup_receiver_psk(
        &self,
        enc: &[u8],
        private_key: &[u8],
        info: &[u8],
        psk: Psk<'_>,
    ) -> Result<Context, Error> {
        self.receiver(enc, private_key, info, Some(psk))
    }

    /// Single-shot `Seal` in PSK mode: returns `(enc, ciphertext)`.
    pub fn seal_psk(
        &self,
        rand: &Rand,
        public_key: &[u8],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        psk: Psk<'_>,
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        self.seal_in_mode(rand, public_key, info, aad, plaintext, Some(psk))
    }

    /// Single-shot `Open` in PSK mode.
    pub fn open_psk(
        &self,
        enc: &[u8],
        private_key: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        psk: Psk<'_>,
    ) -> Result<Vec<u8>, Error> {
        self.open_in_mode(enc, private_key, info, aad, ciphertext, Some(psk))
    }

    /// `SetupBaseS`: encapsulates to `public_key` with fresh randomness.
    /// Returns the encapsulation and the sender context.
    pub fn setup_sender(
        &self,
        rand: &Rand,
        public_key: &[u8],
        info: &[u8],
    ) -> Result<(Vec<u8>, Context), Error> {
        self.sender(rand, public_key, info, None)
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
        self.sender_with_seed(public_key, info, None, seed)
    }

    /// `SetupBaseR`: decapsulates `enc` with `private_key`.
    pub fn setup_receiver(
        &self,
        enc: &[u8],
        private_key: &[u8],
        info: &[u8],
    ) -> Result<Context, Error> {
        self.receiver(enc, private_key, info, None)
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
        self.seal_in_mode(rand, public_key, info, aad, plaintext, None)
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
        self.open_in_mode(enc, private_key, info, aad, ciphertext, None)
    }

    /// Single-shot `Seal` in base mode (`psk` `None`) or PSK mode.
    pub(crate) fn seal_in_mode(
        &self,
        rand: &Rand,
        public_key: &[u8],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        psk: Option<Psk<'_>>,
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let (enc, mut context) = self.sender(rand, public_key, info, psk)?;
        Ok((enc, context.seal(aad, plaintext)?))
    }

    /// Single-shot `Open` in base mode (`psk` `None`) or PSK mode.
    pub(crate) fn open_in_mode(
        &self,
        enc: &[u8],
        private_key: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        psk: Option<Psk<'_>>,
    ) -> Result<Vec<u8>, Error> {
        self.receiver(enc, private_key, info, psk)?
            .open(aad, ciphertext)
    }

    /// The sender's setup in either mode, with fresh randomness.
    fn sender(
        &self,
        rand: &Rand,
        public_key: &[u8],
        info: &[u8],
        psk: Option<Psk<'_>>,
    ) -> Result<(Vec<u8>, Context), Error> {
        let seed = self.kem.random_encap_seed(rand);
        self.sender_with_seed(public_key, info, psk, &seed[..self.kem.encap_seed_len()])
    }

    /// The sender's setup in either mode: a PSK is checked before anything
    /// is computed.
    fn sender_with_seed(
        &self,
        public_key: &[u8],
        info: &[u8],
        psk: Option<Psk<'_>>,
        seed: &[u8],
    ) -> Result<(Vec<u8>, Context), Error> {
        psk.map_or(Ok(()), check_psk)?;
        let (shared_secret, enc) = self.kem.encap(public_key, seed)?;
        Ok((enc, self.key_schedule(shared_secret.as_ref(), info, psk)?))
    }

    /// The receiver's setup in either mode.
    fn receiver(
        &self,
        enc: &[u8],
        private_key: &[u8],
        info: &[u8],
        psk: Option<Psk<'_>>,
    ) -> Result<Context, Error> {
        psk.map_or(Ok(()), check_psk)?;
        let shared_secret = self.kem.decap(enc, private_key)?;
        self.key_schedule(shared_secret.as_ref(), info, psk)
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

    /// `KeySchedule` in base mode (`psk` `None`) or PSK mode: RFC 9180 §5.1
    /// for HKDF, `CombineSecrets_OneStage` of draft-ietf-hpke-hpke for
    /// SHAKE256.
    fn key_schedule(
        &self,
        shared_secret: &[u8],
        info: &[u8],
        psk: Option<Psk<'_>>,
    ) -> Result<Context, Error> {
        let (mode, psk_id, psk_key) = match psk {
            Some(psk) => (MODE_PSK, psk.id, psk.key),
            None => (MODE_BASE, &[][..], &[][..]),
        };
        let suite_id = self.suite_id();
        let key_len = self.aead.map_or(0, Aead::key_len);
        let nonce_len = if self.aead.is_some() { NONCE_LEN } else { 0 };
        let mut key = Zeroizing::new([0u8; MAX_KEY_LEN]);
        let mut base_nonce = Zeroizing::new([0u8; NONCE_LEN]);
        let mut exporter_secret = Zeroizing::new([0u8; MAX_DIGEST_LEN]);
        let exporter_len = self.kdf.output_len();
        match self.kdf {
            Kdf::Hkdf(hash) => {
                let psk_id_hash = labeled_extract(hash, &suite_id, b"", b"psk_id_hash", psk_id);
                let info_hash = labeled_extract(hash, &suite_id, b"", b"info_hash", info);
                let context = [&[mode][..], psk_id_hash.as_bytes(), info_hash.as_bytes()];
                let secret = labeled_extract(hash, &suite_id, shared_secret, b"secret", psk_key);
                let secret = secret.as_bytes();
                labeled_expand(
                    hash,
                    &suite_id,
                    secret,
                    b"key",
                    &context,
                    &mut key[..key_len],
                )?;
                labeled_expand(
                    hash,
                    &suite_id,
                    secret,
                    b"base_nonce",
                    &context,
                    &mut base_nonce[..nonce_len],
                )?;
                labeled_expand(
                    hash,
                    &suite_id,
                    secret,
                    b"exp",
                    &context,
                    &mut exporter_secret[..exporter_len],
                )?;
            }
            Kdf::Shake256 => {
                let shared_len = length_prefix(shared_secret)?;
                let info_len = length_prefix(info)?;
                let (psk_len, psk_id_len) = (length_prefix(psk_key)?, length_prefix(psk_id)?);
                // secrets = lengthPrefixed(psk) || lengthPrefixed(shared_secret),
                // context = mode || lengthPrefixed(psk_id) || lengthPrefixed(info).
                let secrets = [&psk_len[..], psk_key, &shared_len, shared_secret];
                let context = [&[mode][..], &psk_id_len, psk_id, &info_len, info];
                let mut secret = Zeroizing::new([0u8; MAX_KEY_LEN + NONCE_LEN + MAX_DIGEST_LEN]);
                let secret = &mut secret[..key_len + nonce_len + exporter_len];
                labeled_derive_shake256(&suite_id, &secrets, b"secret", &context, secret)?;
                key[..key_len].copy_from_slice(&secret[..key_len]);
                base_nonce[..nonce_len].copy_from_slice(&secret[key_len..key_len + nonce_len]);
                exporter_secret[..exporter_len].copy_from_slice(&secret[key_len + nonce_len..]);
            }
        }
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

/// RFC 9180's `VerifyPSKInputs` for PSK mode, and §9.5's 32 bytes.
fn check_psk(psk: Psk<'_>) -> Result<(), Error> {
    if psk.id.is_empty() || psk.key.len() < MIN_PSK_LEN {
        return Err(Error::InvalidPsk);
    }
    Ok(())
}

/// `I2OSP(len(data), 2)`, for the one-stage KDF's `lengthPrefixed`.
fn length_prefix(data: &[u8]) -> Result<[u8; 2], Error> {
    Ok(u16::try_from(data.len())
        .map_err(|_| Error::InvalidLength)?
        .to_be_bytes())
}

/// An HPKE encryption context (sender or receiver), in base or PSK mode:
/// multi-shot, each `seal` or `open` at the next sequence number.
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

    /// `Export(exporter_context, length)`: at most 255 digests long for
    /// HKDF, at most 65535 bytes for SHAKE256.
    pub fn export(
        &self,
        exporter_context: &[u8],
        length: usize,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let kdf = self.suite.kdf;
        let exporter_secret = &self.exporter_secret[..kdf.output_len()];
        let mut out = Zeroizing::new(vec![0u8; length]);
        match kdf {
            Kdf::Hkdf(hash) => {
                if length > 255 * hash.output_len() {
                    return Err(Error::OutputTooLong);
                }
                labeled_expand(
                    hash,
                    &self.suite_id,
                    exporter_secret,
                    b"sec",
                    &[exporter_context],
                    &mut out,
                )?;
            }
            Kdf::Shake256 => {
                labeled_derive_shake256(
                    &self.suite_id,
                    &[exporter_secret],
                    b"sec",
                    &[exporter_context],
                    &mut out,
                )?;
            }
        }
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
