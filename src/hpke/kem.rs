//! The KEM interface of the HPKE core, and the registry of KEMs polymls offers.

use zeroize::Zeroizing;

use super::dhkem::{DhKem, P256, X25519};
use super::xwing::{XWing, XWingDerivation};
use crate::crypto::rand::Rand;
use crate::Error;

/// Every KEM here produces a 32-byte shared secret (`Nsecret`).
pub const SHARED_SECRET_LEN: usize = 32;

/// A KEM shared secret, zeroized on drop.
pub type SharedSecret = Zeroizing<[u8; SHARED_SECRET_LEN]>;

/// The longest encapsulation seed any KEM here takes (X-Wing's 64 bytes).
pub const MAX_ENCAP_SEED_LEN: usize = 64;

/// A KEM key pair. The private key is zeroized on drop and not shown by `Debug`.
pub struct KeyPair {
    /// The private key, in the KEM's `SerializePrivateKey` format.
    pub private: Zeroizing<Vec<u8>>,
    /// The public key, in the KEM's `SerializePublicKey` format.
    pub public: Vec<u8>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("private", &"redacted")
            .field("public", &self.public)
            .finish()
    }
}

/// A key encapsulation mechanism as RFC 9180 §4 uses it.
///
/// Encapsulation is deterministic given its seed, so known-answer tests
/// drive the same code as the randomized path.
pub trait Kem: Send + Sync {
    /// The HPKE KEM identifier.
    fn id(&self) -> u16;
    /// Length of an encapsulation (`Nenc`).
    fn enc_len(&self) -> usize;
    /// Length of a serialized public key (`Npk`).
    fn public_key_len(&self) -> usize;
    /// Length of a serialized private key (`Nsk`).
    fn private_key_len(&self) -> usize;
    /// Length of the seed [`Kem::encap`] takes.
    fn encap_seed_len(&self) -> usize;

    /// A fresh encapsulation seed from `rand`. The default draws
    /// [`Kem::encap_seed_len`] uniform bytes; KEMs whose seeds must satisfy
    /// a condition override it.
    fn random_encap_seed(&self, rand: &Rand) -> Zeroizing<[u8; MAX_ENCAP_SEED_LEN]> {
        let mut seed = Zeroizing::new([0u8; MAX_ENCAP_SEED_LEN]);
        rand.fill(&mut seed[..self.encap_seed_len()]);
        seed
    }

    /// `DeriveKeyPair(ikm)`, the private key in the KEM's `SerializePrivateKey` form.
    fn derive_key_pair(&self, ikm: &[u8]) -> Result<KeyPair, Error>;

    /// `DeriveKeyPair(ikm)` with the private key in the form [`Kem::decap`]
    /// uses fastest. [`Kem::decap`] accepts both forms. KEMs whose private
    /// keys need no expansion return the serialized form (the default).
    fn derive_key_pair_expanded(&self, ikm: &[u8]) -> Result<KeyPair, Error> {
        self.derive_key_pair(ikm)
    }

    /// `private_key` (in either form) in the expanded form
    /// [`Kem::derive_key_pair_expanded`] returns; for KEMs without one, a
    /// copy of the key.
    fn expand_private_key(&self, private_key: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if private_key.len() != self.private_key_len() {
            return Err(Error::InvalidLength);
        }
        Ok(Zeroizing::new(private_key.to_vec()))
    }

    /// The public key of `private_key` (in either form [`Kem::decap`] takes).
    fn public_key(&self, private_key: &[u8]) -> Result<Vec<u8>, Error>;

    /// Checks that `public_key` is a valid public key of this KEM, as
    /// [`Kem::encap`] would, without encapsulating: its length, and what of
    /// its structure can be checked without a secret (the point on the
    /// curve for P-256, FIPS 203's modulus check for ML-KEM). For X25519,
    /// where every 32-byte string is a public key, only the length.
    fn check_public_key(&self, public_key: &[u8]) -> Result<(), Error>;

    /// Encapsulates to `public_key` with the given seed, returning the
    /// shared secret and the encapsulation. Validates `public_key`.
    fn encap(&self, public_key: &[u8], seed: &[u8]) -> Result<(SharedSecret, Vec<u8>), Error>;

    /// Decapsulates `enc` with `private_key`.
    fn decap(&self, enc: &[u8], private_key: &[u8]) -> Result<SharedSecret, Error>;
}

/// DHKEM(X25519, HKDF-SHA256), KEM id 0x0020.
pub static DHKEM_X25519: DhKem<X25519> = DhKem::new();
/// DHKEM(P-256, HKDF-SHA256), KEM id 0x0010.
pub static DHKEM_P256: DhKem<P256> = DhKem::new();

/// X-Wing, KEM id 0x647a, deriving key pairs as draft-ietf-hpke-pq does.
pub static XWING: XWing = XWing::new(XWingDerivation::Labeled);
/// X-Wing, KEM id 0x647a, deriving key pairs as OpenMLS 0.9.2's providers
/// (`hpke-rs` 0.7) do: not interoperable with [`XWING`]'s derivation.
pub static XWING_OPENMLS: XWing = XWing::new(XWingDerivation::Plain);

/// The KEMs of RFC 9180 and draft-ietf-hpke-pq that polymls offers, one per
/// identifier ([`XWING_OPENMLS`] shares its identifier with [`XWING`] and
/// is reached through the suite table only).
pub static KEMS: &[&dyn Kem] = &[&DHKEM_X25519, &DHKEM_P256, &XWING];

/// The KEM with HPKE identifier `id`, if polymls offers it.
pub fn kem_by_id(id: u16) -> Option<&'static dyn Kem> {
    KEMS.iter().copied().find(|kem| kem.id() == id)
}
