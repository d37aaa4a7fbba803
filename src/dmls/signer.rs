//! The participant's signature key pair: polymls's signatures, kept in the
//! store as a secret record (erased like every other secret when replaced
//! or deleted).

use openmls_traits::signatures::{Signer, SignerError};
use openmls_traits::storage::{traits, Entity, Key, StorageProvider as _, CURRENT_VERSION};
use openmls_traits::types::{CryptoError, SignatureScheme};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::signature;
use crate::Rand;
use crate::Store;

/// A signature key pair of one of the suite table's schemes. Zeroized on
/// drop, never shown by `Debug`.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SigningKey {
    #[zeroize(skip)]
    scheme: SignatureScheme,
    private: Vec<u8>,
    #[zeroize(skip)]
    public: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("scheme", &self.scheme)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// The record's key: the public key, as OpenMLS keys signature key pairs.
#[derive(Serialize)]
struct PublicKey<'a>(&'a [u8]);

impl Key<CURRENT_VERSION> for PublicKey<'_> {}
impl traits::SignaturePublicKey<CURRENT_VERSION> for PublicKey<'_> {}
impl Entity<CURRENT_VERSION> for SigningKey {}
impl traits::SignatureKeyPair<CURRENT_VERSION> for SigningKey {}

impl SigningKey {
    /// A new key pair of `scheme`.
    pub(crate) fn generate(scheme: SignatureScheme) -> Result<SigningKey, SignerError> {
        let rand = Rand::new()
            .map_err(|_| SignerError::CryptoError(CryptoError::InsufficientRandomness))?;
        let pair = signature(scheme)
            .map_err(SignerError::CryptoError)?
            .generate(&rand);
        Ok(SigningKey {
            scheme,
            private: pair.private.to_vec(),
            public: pair.public.clone(),
        })
    }

    /// The public key.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    pub(crate) fn store(&self, store: &Store) -> Result<(), crate::StoreError> {
        store.write_signature_key_pair(&PublicKey(&self.public), self)
    }

    pub(crate) fn load(
        store: &Store,
        public: &[u8],
    ) -> Result<Option<SigningKey>, crate::StoreError> {
        store.signature_key_pair(&PublicKey(public))
    }
}

impl Signer for SigningKey {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignerError> {
        signature(self.signature_scheme())
            .map_err(SignerError::CryptoError)?
            .sign(&self.private, payload)
            .map_err(|_| SignerError::SigningError)
    }

    fn signature_scheme(&self) -> SignatureScheme {
        self.scheme
    }
}
