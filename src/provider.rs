//! [`Provider`]: polymls's crypto and randomness with a storage provider,
//! as OpenMLS takes them; by default the forward-secret [`Store`].

#[cfg(feature = "store")]
use std::path::Path;

use openmls_traits::storage::{StorageProvider, CURRENT_VERSION};
use openmls_traits::OpenMlsProvider;

use crate::crypto::rand::Rand;
#[cfg(feature = "store")]
use crate::store::{Store, StoreError, StoreOptions};
use crate::Crypto;

/// The storage a [`Provider`] has unless told otherwise.
#[cfg(feature = "store")]
pub type DefaultStorage = Store;
/// The storage a [`Provider`] has unless told otherwise (none without the
/// `store` feature: give one with [`Provider::with_storage`]).
#[cfg(not(feature = "store"))]
pub type DefaultStorage = ();

/// An [`OpenMlsProvider`] made of polymls's [`Crypto`] and [`Rand`] and the
/// storage `S`: the RocksDB [`Store`] unless another is given (any OpenMLS
/// storage provider works, e.g. `openmls_memory_storage` in tests).
#[derive(Debug, Default)]
pub struct Provider<S = DefaultStorage> {
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

#[cfg(feature = "store")]
impl Provider<Store> {
    /// The provider over the store in `dir` (created if missing), durable.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Ok(Self::with_storage(Store::open(dir)?))
    }

    /// The provider over the store in `dir`, opened with `options`.
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self, StoreError> {
        Ok(Self::with_storage(Store::open_with(dir, options)?))
    }

    /// Runs `f` (typically one OpenMLS call) in a transaction: everything it
    /// writes lands at once when it returns `Ok`, and nothing when it returns
    /// `Err` or panics. Inside, reads see the transaction's own writes.
    ///
    /// ```no_run
    /// # fn demo(provider: &polymls::Provider, group: &mut openmls::prelude::MlsGroup) {
    /// provider.transaction(|p| group.merge_pending_commit(p)).expect("merged and stored");
    /// # }
    /// ```
    ///
    /// OpenMLS keeps the group's state in memory too: after a failed
    /// transaction, reload the group from the store.
    pub fn transaction<T, E>(
        &self,
        f: impl FnOnce(&TransactionProvider<'_>) -> Result<T, E>,
    ) -> Result<T, TransactionError<E>> {
        let transaction = TransactionProvider {
            crypto: &self.crypto,
            storage: self.storage.begin(),
        };
        let value = f(&transaction).map_err(TransactionError::Aborted)?;
        transaction
            .storage
            .commit()
            .map_err(TransactionError::Store)?;
        Ok(value)
    }
}

#[cfg(feature = "store")]
/// Why [`Provider::transaction`] failed.
#[derive(Debug)]
pub enum TransactionError<E> {
    /// The closure failed; nothing was written.
    Aborted(E),
    /// The writes could not be committed; nothing was written.
    Store(StoreError),
}

#[cfg(feature = "store")]
impl<E: std::fmt::Display> std::fmt::Display for TransactionError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransactionError::Aborted(error) => write!(f, "transaction aborted: {error}"),
            TransactionError::Store(error) => write!(f, "transaction not committed: {error}"),
        }
    }
}

#[cfg(feature = "store")]
impl<E: std::fmt::Debug + std::fmt::Display> std::error::Error for TransactionError<E> {}

#[cfg(feature = "store")]
/// The provider a transaction's closure gets: the same crypto, the store
/// seen through the transaction.
#[derive(Debug)]
pub struct TransactionProvider<'a> {
    crypto: &'a Crypto,
    storage: Store,
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

#[cfg(feature = "store")]
impl OpenMlsProvider for TransactionProvider<'_> {
    type CryptoProvider = Crypto;
    type RandProvider = Rand;
    type StorageProvider = Store;

    fn storage(&self) -> &Store {
        &self.storage
    }

    fn crypto(&self) -> &Crypto {
        self.crypto
    }

    fn rand(&self) -> &Rand {
        self.crypto.rand()
    }
}
