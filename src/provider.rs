//! [`Provider`]: polymls's crypto and randomness with a storage provider,
//! as OpenMLS takes them.

use openmls_traits::storage::{StorageProvider, CURRENT_VERSION};
use openmls_traits::OpenMlsProvider;

use crate::crypto::rand::Rand;
use crate::Crypto;

/// An [`OpenMlsProvider`] made of polymls's [`Crypto`] and [`Rand`] and the
/// storage `S`.
#[derive(Debug, Default)]
pub struct Provider<S> {
    crypto: Crypto,
    storage: S,
}

impl<S> Provider<S> {
    /// polymls crypto with a freshly seeded CSPRNG over `storage`.
    pub fn with_storage(storage: S) -> Self {
        Provider {
            crypto: Crypto::default(),
            storage,
        }
    }
}

impl<S: StorageProvider<CURRENT_VERSION>> OpenMlsProvider for Provider<S> {
    type CryptoProvider = Crypto;
    type RandProvider = Rand;
    type StorageProvider = S;

    fn storage(&self) -> &S {
        &self.storage
    }

    fn crypto(&self) -> &Crypto {
        &self.crypto
    }

    fn rand(&self) -> &Rand {
        self.crypto.rand()
    }
}
