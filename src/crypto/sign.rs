//! Signatures: Ed25519 (ed25519-dalek) and ECDSA P-256 with SHA-256 (p256).
//!
//! Key formats are those of OpenMLS's other providers, so keys move between
//! them: Ed25519 private keys are the 32-byte seed, public keys 32 bytes;
//! ECDSA private keys are the 32-byte scalar, public keys uncompressed SEC1
//! points, signatures DER.

use ed25519_dalek::Signer as _;
use p256::ecdsa::signature::Verifier as _;
use zeroize::Zeroizing;

use super::rand::Rand;
use crate::Error;

/// A signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// Ed25519 (RFC 8032), verified strictly: non-canonical encodings and
    /// small-order keys are rejected.
    Ed25519,
    /// ECDSA over P-256 with SHA-256; both low and high `s` verify, as in
    /// every other MLS implementation, so signatures are malleable.
    EcdsaP256Sha256,
}

/// A freshly generated signature key pair. The private key is zeroized on drop.
pub struct SignatureKeyPair {
    /// The private key in the format described in the module docs.
    pub private: Zeroizing<Vec<u8>>,
    /// The public key in the format described in the module docs.
    pub public: Vec<u8>,
}

impl SignatureAlgorithm {
    /// Generates a key pair from `rand`.
    pub fn generate(self, rand: &Rand) -> SignatureKeyPair {
        match self {
            SignatureAlgorithm::Ed25519 => {
                let key = rand.with_rng(ed25519_dalek::SigningKey::generate);
                SignatureKeyPair {
                    private: Zeroizing::new(key.to_bytes().to_vec()),
                    public: key.verifying_key().to_bytes().to_vec(),
                }
            }
            SignatureAlgorithm::EcdsaP256Sha256 => {
                let key = rand.with_rng(p256::ecdsa::SigningKey::random);
                SignatureKeyPair {
                    private: Zeroizing::new(key.to_bytes().to_vec()),
                    public: key
                        .verifying_key()
                        .to_encoded_point(false)
                        .as_bytes()
                        .to_vec(),
                }
            }
        }
    }

    /// Signs `message` with `private_key`.
    pub fn sign(self, private_key: &[u8], message: &[u8]) -> Result<Vec<u8>, Error> {
        match self {
            SignatureAlgorithm::Ed25519 => {
                let seed: &[u8; 32] = private_key
                    .try_into()
                    .map_err(|_| Error::InvalidPrivateKey)?;
                let key = ed25519_dalek::SigningKey::from_bytes(seed);
                Ok(key.sign(message).to_bytes().to_vec())
            }
            SignatureAlgorithm::EcdsaP256Sha256 => {
                // from_slice alone would left-pad short keys.
                if private_key.len() != 32 {
                    return Err(Error::InvalidPrivateKey);
                }
                let key = p256::ecdsa::SigningKey::from_slice(private_key)
                    .map_err(|_| Error::InvalidPrivateKey)?;
                let signature: p256::ecdsa::Signature = key.sign(message);
                Ok(signature.to_der().as_bytes().to_vec())
            }
        }
    }

    /// Verifies `signature` on `message` under `public_key`.
    pub fn verify(self, public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Error> {
        match self {
            SignatureAlgorithm::Ed25519 => {
                let key: &[u8; 32] = public_key.try_into().map_err(|_| Error::InvalidPublicKey)?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(key)
                    .map_err(|_| Error::InvalidPublicKey)?;
                let signature = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| Error::InvalidSignature)?;
                key.verify_strict(message, &signature)
                    .map_err(|_| Error::InvalidSignature)
            }
            SignatureAlgorithm::EcdsaP256Sha256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| Error::InvalidPublicKey)?;
                let signature = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|_| Error::InvalidSignature)?;
                key.verify(message, &signature)
                    .map_err(|_| Error::InvalidSignature)
            }
        }
    }
}
