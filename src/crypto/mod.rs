//! The primitives, and [`Crypto`]: OpenMLS's crypto trait implemented on
//! them and on the HPKE core.

pub mod aead;
pub mod hash;
pub mod kdf;
pub mod rand;
pub mod sign;

use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{
    AeadType, Ciphersuite, CryptoError, ExporterSecret, HashType, HpkeCiphertext, HpkeConfig,
    HpkeKemType, HpkeKeyPair, KemOutput, SignatureScheme,
};
use tls_codec::SecretVLBytes;

use crate::hpke::{kem, HpkeSuite, Kem};
use crate::suite::{cipher_suite, CIPHER_SUITES};
use crate::Error;
use aead::Aead;
use hash::Hash;
use rand::Rand;
use sign::SignatureAlgorithm;

/// polymls's implementation of OpenMLS's [`OpenMlsCrypto`].
///
/// It owns the crate's CSPRNG ([`Rand`]), seeded once from the OS, and is
/// cheap to share between threads by reference.
#[derive(Debug, Default)]
pub struct Crypto {
    rand: Rand,
}

impl Crypto {
    /// A provider with a freshly seeded CSPRNG.
    pub fn new() -> Result<Self, Error> {
        Ok(Crypto { rand: Rand::new()? })
    }

    /// The CSPRNG this provider draws from.
    pub fn rand(&self) -> &Rand {
        &self.rand
    }
}

fn hash(hash_type: HashType) -> Hash {
    match hash_type {
        HashType::Sha2_256 => Hash::Sha256,
        HashType::Sha2_384 => Hash::Sha384,
        HashType::Sha2_512 => Hash::Sha512,
    }
}

fn aead(aead_type: AeadType) -> Aead {
    match aead_type {
        AeadType::Aes128Gcm => Aead::Aes128Gcm,
        AeadType::Aes256Gcm => Aead::Aes256Gcm,
        AeadType::ChaCha20Poly1305 => Aead::ChaCha20Poly1305,
    }
}

pub(crate) fn signature(scheme: SignatureScheme) -> Result<SignatureAlgorithm, CryptoError> {
    match scheme {
        SignatureScheme::ED25519 => Ok(SignatureAlgorithm::Ed25519),
        SignatureScheme::ECDSA_SECP256R1_SHA256 => Ok(SignatureAlgorithm::EcdsaP256Sha256),
        _ => Err(CryptoError::UnsupportedSignatureScheme),
    }
}

/// The KEM OpenMLS means by `kem`. X-Wing inside OpenMLS derives keys as
/// OpenMLS's other providers do (see [`crate::suite::CIPHER_SUITES`]).
fn kem(kem: HpkeKemType) -> Result<&'static dyn Kem, CryptoError> {
    match kem {
        HpkeKemType::DhKem25519 => Ok(&kem::DHKEM_X25519),
        HpkeKemType::DhKemP256 => Ok(&kem::DHKEM_P256),
        #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
        HpkeKemType::XWingKemDraft6 => Ok(&kem::XWING_OPENMLS),
        _ => Err(CryptoError::UnsupportedCiphersuite),
    }
}

/// OpenMLS names HPKE KDFs and AEADs by enums whose discriminants are the
/// RFC 9180 identifiers.
fn hpke_suite(config: &HpkeConfig) -> Result<HpkeSuite, CryptoError> {
    let kem = kem(config.0)?;
    HpkeSuite::from_ids(kem.id(), config.1 as u16, config.2 as u16)
        .map(|suite| HpkeSuite::new(kem, suite.kdf(), suite.aead()))
        .map_err(|_| CryptoError::UnsupportedCiphersuite)
}

/// Maps a core error to OpenMLS's error, with `otherwise` for failures
/// that are specific to the operation.
fn hpke_error(otherwise: CryptoError) -> impl Fn(Error) -> CryptoError {
    move |error| match error {
        Error::InvalidLength => CryptoError::InvalidLength,
        Error::InvalidPublicKey | Error::NonContributoryKey => CryptoError::InvalidPublicKey,
        Error::OutputTooLong => CryptoError::HkdfOutputLengthInvalid,
        Error::UnsupportedAlgorithm => CryptoError::UnsupportedCiphersuite,
        _ => otherwise,
    }
}

impl OpenMlsCrypto for Crypto {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        cipher_suite(ciphersuite.into())
            .map(|_| ())
            .ok_or(CryptoError::UnsupportedCiphersuite)
    }

    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        CIPHER_SUITES
            .iter()
            .filter_map(|suite| Ciphersuite::try_from(suite.code_point).ok())
            .collect()
    }

    fn hkdf_extract(
        &self,
        hash_type: HashType,
        salt: &[u8],
        ikm: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        Ok(hash(hash_type).extract(salt, &[ikm]).as_bytes().into())
    }

    fn hmac(
        &self,
        hash_type: HashType,
        key: &[u8],
        message: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        Ok(hash(hash_type).hmac(key, &[message]).as_bytes().into())
    }

    fn hkdf_expand(
        &self,
        hash_type: HashType,
        prk: &[u8],
        info: &[u8],
        okm_len: usize,
    ) -> Result<SecretVLBytes, CryptoError> {
        let mut okm = vec![0u8; okm_len];
        hash(hash_type)
            .expand(prk, &[info], &mut okm)
            .map_err(|_| CryptoError::HkdfOutputLengthInvalid)?;
        Ok(okm.into())
    }

    fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(hash(hash_type).digest(data))
    }

    fn aead_encrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        data: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        aead(alg)
            .seal(key, nonce, aad, data)
            .map_err(|_| CryptoError::InvalidLength)
    }

    fn aead_decrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        ct_tag: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        aead(alg)
            .open(key, nonce, aad, ct_tag)
            .map_err(|error| match error {
                Error::InvalidLength => CryptoError::InvalidLength,
                _ => CryptoError::AeadDecryptionError,
            })
    }

    fn signature_key_gen(&self, alg: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        let key_pair = signature(alg)?.generate(&self.rand);
        Ok((key_pair.private.to_vec(), key_pair.public))
    }

    fn verify_signature(
        &self,
        alg: SignatureScheme,
        data: &[u8],
        pk: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self::signature(alg)?
            .verify(pk, data, signature)
            .map_err(|error| match error {
                Error::InvalidPublicKey => CryptoError::InvalidPublicKey,
                _ => CryptoError::InvalidSignature,
            })
    }

    fn sign(&self, alg: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        signature(alg)?
            .sign(key, data)
            .map_err(|_| CryptoError::SigningError)
    }

    fn hpke_seal(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        aad: &[u8],
        ptxt: &[u8],
    ) -> Result<HpkeCiphertext, CryptoError> {
        let (kem_output, ciphertext) = hpke_suite(&config)?
            .seal(&self.rand, pk_r, info, aad, ptxt)
            .map_err(hpke_error(CryptoError::HpkeEncryptionError))?;
        Ok(HpkeCiphertext {
            kem_output: kem_output.into(),
            ciphertext: ciphertext.into(),
        })
    }

    fn hpke_open(
        &self,
        config: HpkeConfig,
        input: &HpkeCiphertext,
        sk_r: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        hpke_suite(&config)?
            .open(
                input.kem_output.as_slice(),
                sk_r,
                info,
                aad,
                input.ciphertext.as_slice(),
            )
            .map_err(|_| CryptoError::HpkeDecryptionError)
    }

    fn hpke_setup_sender_and_export(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<(KemOutput, ExporterSecret), CryptoError> {
        let (enc, secret) = hpke_suite(&config)?
            .send_export(&self.rand, pk_r, info, exporter_context, exporter_length)
            .map_err(hpke_error(CryptoError::SenderSetupError))?;
        Ok((enc, secret.to_vec().into()))
    }

    fn hpke_setup_receiver_and_export(
        &self,
        config: HpkeConfig,
        enc: &[u8],
        sk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<ExporterSecret, CryptoError> {
        let secret = hpke_suite(&config)?
            .receive_export(enc, sk_r, info, exporter_context, exporter_length)
            .map_err(hpke_error(CryptoError::ReceiverSetupError))?;
        Ok(secret.to_vec().into())
    }

    fn derive_hpke_keypair(
        &self,
        config: HpkeConfig,
        ikm: &[u8],
    ) -> Result<HpkeKeyPair, CryptoError> {
        // Private keys go to OpenMLS's storage in the form that opens fastest.
        let key_pair = hpke_suite(&config)?
            .derive_key_pair_expanded(ikm)
            .map_err(hpke_error(CryptoError::CryptoLibraryError))?;
        Ok(HpkeKeyPair {
            private: key_pair.private.as_slice().into(),
            public: key_pair.public,
        })
    }
}
