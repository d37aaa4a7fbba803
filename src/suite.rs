//! The cipher suite table: every MLS cipher suite polymls offers, as data.
//!
//! A suite is a row here; code elsewhere looks suites up by code point and
//! reads their parts, so adding one means adding a row.

use crate::crypto::aead::Aead;
use crate::crypto::hash::Hash;
use crate::crypto::sign::SignatureAlgorithm;
use crate::hpke::{kem, HpkeSuite, Kem};

/// One MLS cipher suite (RFC 9420 §17.1) and its parts.
#[derive(Debug, Clone, Copy)]
pub struct CipherSuite {
    /// The two-byte code point on the wire.
    pub code_point: u16,
    /// The suite's registered name.
    pub name: &'static str,
    /// The HPKE KEM identifier.
    pub kem_id: u16,
    /// The hash under the MLS KDF and the HPKE KDF (always the same hash in
    /// the suites here).
    pub hash: Hash,
    /// The AEAD, for MLS messages and HPKE alike.
    pub aead: Aead,
    /// The signature algorithm.
    pub signature: SignatureAlgorithm,
}

/// Every MLS cipher suite polymls offers.
pub static CIPHER_SUITES: &[CipherSuite] = &[
    CipherSuite {
        code_point: 0x0001,
        name: "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
        kem_id: 0x0020,
        hash: Hash::Sha256,
        aead: Aead::Aes128Gcm,
        signature: SignatureAlgorithm::Ed25519,
    },
    CipherSuite {
        code_point: 0x0002,
        name: "MLS_128_DHKEMP256_AES128GCM_SHA256_P256",
        kem_id: 0x0010,
        hash: Hash::Sha256,
        aead: Aead::Aes128Gcm,
        signature: SignatureAlgorithm::EcdsaP256Sha256,
    },
    CipherSuite {
        code_point: 0x0003,
        name: "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
        kem_id: 0x0020,
        hash: Hash::Sha256,
        aead: Aead::ChaCha20Poly1305,
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
    /// The suite's KEM.
    pub fn kem(&self) -> &'static dyn Kem {
        kem::kem_by_id(self.kem_id).expect("every KEM in the suite table is in the KEM registry")
    }

    /// The suite's HPKE suite.
    pub fn hpke(&self) -> HpkeSuite {
        HpkeSuite::new(self.kem(), self.hash, Some(self.aead))
    }
}
