//! The cipher suite table: every MLS cipher suite polymls offers, as data,
//! and the suite-level HPKE API that works without OpenMLS.
//!
//! A suite is a row here; code elsewhere looks suites up by code point and
//! reads their parts, so adding one means adding a row.
//!
//! ```
//! let suite = polymls::suite::cipher_suite(0xF110).expect("polymls offers 0xF110");
//! let hpke = suite.hpke();
//! let rand = polymls::Rand::default();
//! let receiver = hpke.derive_key_pair(&[7; 32]).unwrap();
//! let (enc, ciphertext) = hpke.seal(&rand, &receiver.public, b"info", b"aad", b"hello").unwrap();
//! let plaintext = hpke.open(&enc, &receiver.private, b"info", b"aad", &ciphertext).unwrap();
//! assert_eq!(plaintext, b"hello");
//! ```

use crate::crypto::aead::Aead;
use crate::crypto::hash::Hash;
use crate::crypto::sign::SignatureAlgorithm;
use crate::hpke::kem::{DHKEM_P256, DHKEM_X25519, XWING};
use crate::hpke::{HpkeSuite, Kdf, Kem};

/// One MLS cipher suite (RFC 9420 §17.1) and its parts.
#[derive(Clone, Copy)]
pub struct CipherSuite {
    /// The two-byte code point on the wire.
    pub code_point: u16,
    /// The suite's name.
    pub name: &'static str,
    /// The HPKE KEM, with the `DeriveKeyPair` the suite specifies.
    pub kem: &'static dyn Kem,
    /// The hash under the MLS KDF (HKDF) and the HPKE KDF; the suites here
    /// use the same hash for both.
    pub hash: Hash,
    /// The AEAD, for MLS messages and HPKE alike.
    pub aead: Aead,
    /// The signature algorithm.
    pub signature: SignatureAlgorithm,
}

impl std::fmt::Debug for CipherSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:#06x})", self.name, self.code_point)
    }
}

/// Every MLS cipher suite polymls offers.
///
/// 0xF110 is polyproto-mls's "Hybrid PQS", composed exactly as
/// draft-ietf-mls-pq-ciphersuites' `MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519`
/// with draft-ietf-hpke-pq's X-Wing key derivation. OpenMLS cannot carry
/// 0xF110 (its suite enum is closed); inside OpenMLS the same composition
/// runs as 0x004F, with the key derivation OpenMLS 0.9.2's other providers
/// use, so that their members and polymls's share groups.
pub static CIPHER_SUITES: &[CipherSuite] = &[
    CipherSuite {
        code_point: 0x0001,
        name: "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
        kem: &DHKEM_X25519,
        hash: Hash::Sha256,
        aead: Aead::Aes128Gcm,
        signature: SignatureAlgorithm::Ed25519,
    },
    CipherSuite {
        code_point: 0x0002,
        name: "MLS_128_DHKEMP256_AES128GCM_SHA256_P256",
        kem: &DHKEM_P256,
        hash: Hash::Sha256,
        aead: Aead::Aes128Gcm,
        signature: SignatureAlgorithm::EcdsaP256Sha256,
    },
    CipherSuite {
        code_point: 0x0003,
        name: "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
        kem: &DHKEM_X25519,
        hash: Hash::Sha256,
        aead: Aead::ChaCha20Poly1305,
        signature: SignatureAlgorithm::Ed25519,
    },
    #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
    CipherSuite {
        code_point: 0x004F,
        name: "MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519 (OpenMLS)",
        kem: &crate::hpke::kem::XWING_OPENMLS,
        hash: Hash::Sha256,
        aead: Aead::Aes128Gcm,
        signature: SignatureAlgorithm::Ed25519,
    },
    CipherSuite {
        code_point: 0xF110,
        name: "Hybrid PQS (X-Wing, AES-128-GCM, SHA-256, Ed25519)",
        kem: &XWING,
        hash: Hash::Sha256,
        aead: Aead::Aes128Gcm,
        signature: SignatureAlgorithm::Ed25519,
    },
];

/// The suite with this code point, if polymls offers it.
pub fn cipher_suite(code_point: u16) -> Option<&'static CipherSuite> {
    CIPHER_SUITES
        .iter()
        .find(|suite| suite.code_point == code_point)
}

impl CipherSuite {
    /// The suite's HPKE suite: its KEM, HKDF over its hash, its AEAD.
    pub fn hpke(&self) -> HpkeSuite {
        HpkeSuite::new(self.kem, Kdf::Hkdf(self.hash), Some(self.aead))
    }
}
