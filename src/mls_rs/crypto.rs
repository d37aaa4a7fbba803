//! mls-rs's `CryptoProvider` and `CipherSuiteProvider` on polymls's suite
//! table and HPKE core.
//!
//! Key formats are those of `mls-rs-crypto-rustcrypto`, so that members on
//! either provider share groups and a client can move between them:
//! X25519 and P-256 HPKE keys as RFC 9180 serializes them (P-256 public
//! keys uncompressed), X-Wing's as draft-connolly-cfrg-xwing-kem does (a
//! 32-byte seed, a 1216-byte public key); Ed25519 signature secret keys as
//! 64 bytes (seed, then public key), public keys as 32; P-256 signature
//! keys as a 32-byte scalar and an uncompressed point, signatures in DER.
//! mls-rs applies MLS's labels (`SignWithLabel`, `EncryptWithLabel`,
//! `ExpandWithLabel`) itself: these are the bare primitives.

use std::sync::Arc;

use mls_rs_core::crypto::{
    CipherSuite as MlsRsSuite, CipherSuiteProvider, CryptoProvider, HpkeCiphertext, HpkeContextR,
    HpkeContextS, HpkePsk, HpkePublicKey, HpkeSecretKey, SignaturePublicKey, SignatureSecretKey,
};
use mls_rs_core::error::IntoAnyError;
use zeroize::Zeroizing;

use crate::crypto::rand::Rand;
use crate::crypto::sign::SignatureAlgorithm;
use crate::hpke::{Context, HpkeSuite, Psk};
use crate::suite::{cipher_suite, CipherSuite};
use crate::Error;

/// The suites mls-rs can carry: every suite of the table but 0x004F,
/// OpenMLS's code point for the same composition as 0xF110.
pub const MLS_RS_SUITES: [u16; 4] = [0x0001, 0x0002, 0x0003, 0xF110];

impl IntoAnyError for Error {
    fn into_dyn_error(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(self.into())
    }
}

/// polymls as mls-rs's crypto provider, for the suites in
/// [`MLS_RS_SUITES`] (all of them unless narrowed with
/// [`MlsRsCrypto::with_suites`]).
///
/// Its randomness is one ChaCha20 generator seeded once from the operating
/// system and shared by the suite providers it hands out.
#[derive(Clone, Debug)]
pub struct MlsRsCrypto {
    rand: Arc<Rand>,
    suites: Vec<u16>,
}

impl Default for MlsRsCrypto {
    fn default() -> Self {
        MlsRsCrypto {
            rand: Arc::new(Rand::default()),
            suites: MLS_RS_SUITES.to_vec(),
        }
    }
}

impl MlsRsCrypto {
    /// Offering only `suites` (those of [`MLS_RS_SUITES`] among them), in
    /// that order of preference.
    pub fn with_suites(mut self, suites: &[u16]) -> Self {
        self.suites = suites
            .iter()
            .copied()
            .filter(|s| MLS_RS_SUITES.contains(s))
            .collect();
        self
    }
}

impl CryptoProvider for MlsRsCrypto {
    type CipherSuiteProvider = MlsRsSuiteProvider;

    fn supported_cipher_suites(&self) -> Vec<MlsRsSuite> {
        self.suites.iter().map(|&s| MlsRsSuite::new(s)).collect()
    }

    fn cipher_suite_provider(&self, suite: MlsRsSuite) -> Option<MlsRsSuiteProvider> {
        let code_point = suite.raw_value();
        if !self.suites.contains(&code_point) {
            return None;
        }
        Some(MlsRsSuiteProvider {
            suite: cipher_suite(code_point)?,
            rand: Arc::clone(&self.rand),
        })
    }
}

/// One suite of [`MlsRsCrypto`].
#[derive(Clone)]
pub struct MlsRsSuiteProvider {
    suite: &'static CipherSuite,
    rand: Arc<Rand>,
}

impl std::fmt::Debug for MlsRsSuiteProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MlsRsSuiteProvider({:?})", self.suite)
    }
}

/// An HPKE sender context for mls-rs.
#[derive(Debug)]
pub struct SenderContext(Context);

/// An HPKE receiver context for mls-rs.
#[derive(Debug)]
pub struct ReceiverContext(Context);

impl HpkeContextS for SenderContext {
    type Error = Error;

    fn seal(&mut self, aad: Option<&[u8]>, data: &[u8]) -> Result<Vec<u8>, Error> {
        self.0.seal(aad.unwrap_or_default(), data)
    }

    fn export(&self, exporter_context: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.0.export(exporter_context, len)
    }
}

impl HpkeContextR for ReceiverContext {
    type Error = Error;

    fn open(&mut self, aad: Option<&[u8]>, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.0
            .open(aad.unwrap_or_default(), ciphertext)
            .map(Zeroizing::new)
    }

    fn export(&self, exporter_context: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.0.export(exporter_context, len)
    }
}

/// mls-rs's PSK as the HPKE core's.
fn psk<'a>(psk: &HpkePsk<'a>) -> Psk<'a> {
    Psk {
        id: psk.id,
        key: psk.value,
    }
}

impl MlsRsSuiteProvider {
    fn hpke(&self) -> HpkeSuite {
        self.suite.hpke()
    }

    /// The receiver's private key in the form that opens fastest. mls-rs
    /// hands over the public key beside the private one: for DHKEM their
    /// concatenation is the expanded form, which saves recomputing `pkRm`
    /// (a scalar multiplication) on every open, as mls-rs-crypto-rustcrypto
    /// does by taking the public key as given. A public key that does not
    /// belong to the private one makes opening fail.
    fn receiver_key(&self, secret: &[u8], public: &[u8]) -> Zeroizing<Vec<u8>> {
        let kem = self.suite.kem;
        let is_dhkem = matches!(kem.id(), 0x0010 | 0x0020);
        if is_dhkem && secret.len() == kem.private_key_len() && public.len() == kem.public_key_len()
        {
            Zeroizing::new([secret, public].concat())
        } else {
            Zeroizing::new(secret.to_vec())
        }
    }

    /// Single-shot HPKE seal, in base mode (`psk` `None`) or PSK mode.
    fn seal(
        &self,
        remote_key: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        plaintext: &[u8],
        psk: Option<Psk<'_>>,
    ) -> Result<HpkeCiphertext, Error> {
        let (kem_output, ciphertext) = self.hpke().seal_in_mode(
            &self.rand,
            remote_key,
            info,
            aad.unwrap_or_default(),
            plaintext,
            psk,
        )?;
        Ok(HpkeCiphertext {
            kem_output,
            ciphertext,
        })
    }

    /// Single-shot HPKE open, in base mode (`psk` `None`) or PSK mode.
    fn open(
        &self,
        ciphertext: &HpkeCiphertext,
        local_secret: &HpkeSecretKey,
        local_public: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        psk: Option<Psk<'_>>,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.hpke()
            .open_in_mode(
                &ciphertext.kem_output,
                &self.receiver_key(local_secret, local_public),
                info,
                aad.unwrap_or_default(),
                &ciphertext.ciphertext,
                psk,
            )
            .map(Zeroizing::new)
    }

    /// An Ed25519 secret key as mls-rs-crypto-rustcrypto stores it (seed,
    /// then public key), or the bare seed; the seed.
    fn ed25519_seed<'k>(&self, secret_key: &'k [u8]) -> Result<&'k [u8], Error> {
        match secret_key.len() {
            32 => Ok(secret_key),
            64 => {
                let (seed, public) = secret_key.split_at(32);
                let derived = SignatureAlgorithm::Ed25519.public_key(seed)?;
                if derived != public {
                    return Err(Error::InvalidPrivateKey);
                }
                Ok(seed)
            }
            _ => Err(Error::InvalidPrivateKey),
        }
    }

    fn signing_key<'k>(&self, secret_key: &'k SignatureSecretKey) -> Result<&'k [u8], Error> {
        let bytes = secret_key.as_bytes();
        match self.suite.signature {
            SignatureAlgorithm::Ed25519 => self.ed25519_seed(bytes),
            SignatureAlgorithm::EcdsaP256Sha256 => Ok(bytes),
        }
    }
}

impl CipherSuiteProvider for MlsRsSuiteProvider {
    type Error = Error;
    type HpkeContextS = SenderContext;
    type HpkeContextR = ReceiverContext;

    fn cipher_suite(&self) -> MlsRsSuite {
        MlsRsSuite::new(self.suite.code_point)
    }

    fn hash(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.suite.hash.digest(data))
    }

    fn mac(&self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.suite.hash.hmac(key, &[data]).as_bytes().to_vec())
    }

    fn aead_seal(
        &self,
        key: &[u8],
        data: &[u8],
        aad: Option<&[u8]>,
        nonce: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.suite
            .aead
            .seal(key, nonce, aad.unwrap_or_default(), data)
    }

    fn aead_open(
        &self,
        key: &[u8],
        ciphertext: &[u8],
        aad: Option<&[u8]>,
        nonce: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.suite
            .aead
            .open(key, nonce, aad.unwrap_or_default(), ciphertext)
            .map(Zeroizing::new)
    }

    fn aead_key_size(&self) -> usize {
        self.suite.aead.key_len()
    }

    fn aead_nonce_size(&self) -> usize {
        crate::crypto::aead::NONCE_LEN
    }

    fn kdf_extract(&self, salt: &[u8], ikm: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        Ok(Zeroizing::new(
            self.suite.hash.extract(salt, &[ikm]).as_bytes().to_vec(),
        ))
    }

    fn kdf_expand(&self, prk: &[u8], info: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut out = Zeroizing::new(vec![0u8; len]);
        self.suite.hash.expand(prk, &[info], &mut out)?;
        Ok(out)
    }

    fn kdf_extract_size(&self) -> usize {
        self.suite.hash.output_len()
    }

    fn hpke_seal(
        &self,
        remote_key: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        pt: &[u8],
    ) -> Result<HpkeCiphertext, Error> {
        self.seal(remote_key, info, aad, pt, None)
    }

    fn hpke_seal_psk(
        &self,
        remote_key: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        pt: &[u8],
        psk_input: HpkePsk<'_>,
    ) -> Result<HpkeCiphertext, Error> {
        self.seal(remote_key, info, aad, pt, Some(psk(&psk_input)))
    }

    fn hpke_open(
        &self,
        ciphertext: &HpkeCiphertext,
        local_secret: &HpkeSecretKey,
        local_public: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.open(ciphertext, local_secret, local_public, info, aad, None)
    }

    fn hpke_open_psk(
        &self,
        ciphertext: &HpkeCiphertext,
        local_secret: &HpkeSecretKey,
        local_public: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        psk_input: HpkePsk<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let psk = Some(psk(&psk_input));
        self.open(ciphertext, local_secret, local_public, info, aad, psk)
    }

    fn hpke_setup_s(
        &self,
        remote_key: &HpkePublicKey,
        info: &[u8],
    ) -> Result<(Vec<u8>, SenderContext), Error> {
        let (enc, context) = self.hpke().setup_sender(&self.rand, remote_key, info)?;
        Ok((enc, SenderContext(context)))
    }

    fn hpke_setup_r(
        &self,
        kem_output: &[u8],
        local_secret: &HpkeSecretKey,
        local_public: &HpkePublicKey,
        info: &[u8],
    ) -> Result<ReceiverContext, Error> {
        self.hpke()
            .setup_receiver(
                kem_output,
                &self.receiver_key(local_secret, local_public),
                info,
            )
            .map(ReceiverContext)
    }

    fn kem_derive(&self, ikm: &[u8]) -> Result<(HpkeSecretKey, HpkePublicKey), Error> {
        let pair = self.hpke().derive_key_pair(ikm)?;
        Ok((pair.private.to_vec().into(), pair.public.into()))
    }

    fn kem_generate(&self) -> Result<(HpkeSecretKey, HpkePublicKey), Error> {
        let mut ikm = Zeroizing::new([0u8; 64]);
        self.rand.fill(&mut ikm[..]);
        self.kem_derive(&ikm[..])
    }

    fn kem_public_key_validate(&self, key: &HpkePublicKey) -> Result<(), Error> {
        self.suite.kem.check_public_key(key)
    }

    fn random_bytes(&self, out: &mut [u8]) -> Result<(), Error> {
        self.rand.fill(out);
        Ok(())
    }

    fn signature_key_generate(&self) -> Result<(SignatureSecretKey, SignaturePublicKey), Error> {
        let pair = self.suite.signature.generate(&self.rand);
        let secret = match self.suite.signature {
            SignatureAlgorithm::Ed25519 => [&pair.private[..], &pair.public[..]].concat(),
            SignatureAlgorithm::EcdsaP256Sha256 => pair.private.to_vec(),
        };
        Ok((secret.into(), pair.public.into()))
    }

    fn signature_key_derive_public(
        &self,
        secret_key: &SignatureSecretKey,
    ) -> Result<SignaturePublicKey, Error> {
        let key = self.signing_key(secret_key)?;
        Ok(self.suite.signature.public_key(key)?.into())
    }

    fn sign(&self, secret_key: &SignatureSecretKey, data: &[u8]) -> Result<Vec<u8>, Error> {
        self.suite
            .signature
            .sign(self.signing_key(secret_key)?, data)
    }

    fn verify(
        &self,
        public_key: &SignaturePublicKey,
        signature: &[u8],
        data: &[u8],
    ) -> Result<(), Error> {
        self.suite
            .signature
            .verify(public_key.as_bytes(), data, signature)
    }
}
