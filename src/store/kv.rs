//! The [`Store`] handle over the vault: writing through, or collecting a
//! transaction's writes.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use zeroize::Zeroizing;

use super::naming::{Naming, NAME_PART_LEN};
use super::vault::{Counters, CrashPoint, Op, Records, Vault};
use super::{ApplicationKey, StoreError, StoreOptions};

/// A pending change in a transaction: a value (and whether it is secret),
/// or a deletion.
type Pending = Option<(Zeroizing<Vec<u8>>, bool)>;

/// A transaction's pending changes, by record name.
type PendingChanges = Arc<Mutex<BTreeMap<Vec<u8>, Pending>>>;

/// OpenMLS's `StorageProvider` on RocksDB. Cheap to clone: clones share
/// the open database.
///
/// A store either writes through (each OpenMLS call lands atomically on its
/// own) or, when made by [`Store::begin`], collects the writes of a
/// transaction, reads its own writes, and lands them all at once on
/// [`Store::commit`].
#[derive(Clone)]
pub struct Store {
    vault: Arc<Vault>,
    naming: Arc<Naming>,
    pending: Option<PendingChanges>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("in_transaction", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

/// A store in a fresh temporary directory, removed on drop: for tests (see
/// [`Store::temporary`]).
///
/// # Panics
///
/// If the temporary directory or the store cannot be created.
impl Default for Store {
    fn default() -> Self {
        Store::temporary().expect("a temporary polymls store")
    }
}

impl Store {
    /// Opens the store in `dir` (created if missing), durable.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, StoreError> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// Opens the store in `dir` with `options`. Finishes or undoes any
    /// commit a crash interrupted. Fails with [`StoreError::UnknownFormat`]
    /// on a store of another format version.
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Store, StoreError> {
        Ok(Store::over(Vault::open(dir.as_ref(), &options)?))
    }

    fn over(vault: Vault) -> Store {
        Store {
            naming: Arc::new(Naming::new(vault.naming_key())),
            vault: Arc::new(vault),
            pending: None,
        }
    }

    /// A durable store in a fresh temporary directory, removed when the
    /// last handle to it is dropped. Meant for tests: OpenMLS's test helpers
    /// build providers with `Default`, which this backs.
    pub fn temporary() -> Result<Store, StoreError> {
        Ok(Store::over(Vault::temporary(&StoreOptions::default())?))
    }

    /// Seals the store's key-slot file under `application_key` (or turns it
    /// back to clear with `None`), atomically: afterwards the store opens
    /// only with the new key, and the old key opens nothing in the files.
    ///
    /// Records are not re-sealed: the store's value and naming keys stay
    /// the same, so someone holding both the old application key and a copy
    /// of the key-slot file from before the rekey can still read public
    /// values, and the secrets that were current then. Slot keys written
    /// after the rekey are out of their reach.
    pub fn rekey(&self, application_key: Option<&ApplicationKey>) -> Result<(), StoreError> {
        self.vault.rekey(application_key)
    }

    /// A transaction on this store: its writes are visible to its own reads
    /// and land together, or not at all, on [`Store::commit`].
    pub fn begin(&self) -> Store {
        Store {
            vault: Arc::clone(&self.vault),
            naming: Arc::clone(&self.naming),
            pending: Some(Arc::new(Mutex::new(BTreeMap::new()))),
        }
    }

    /// Lands a transaction's writes atomically; every secret they supersede
    /// is unrecoverable when this returns. A no-op on a write-through store.
    pub fn commit(self) -> Result<(), StoreError> {
        self.commit_until(None)
    }

    /// Commits as a crash at `crash` would leave it. For tests of crash
    /// recovery only: afterwards every handle of the store must be dropped
    /// and the store opened again, as after a real crash.
    #[doc(hidden)]
    pub fn commit_until(self, crash: Option<CrashPoint>) -> Result<(), StoreError> {
        let Some(pending) = self.pending else {
            return Ok(());
        };
        let pending = std::mem::take(&mut *pending.lock().unwrap_or_else(PoisonError::into_inner));
        let ops = pending
            .into_iter()
            .map(|(name, change)| match change {
                Some((value, secret)) => Op::Put {
                    name,
                    value,
                    secret,
                },
                None => Op::Delete { name },
            })
            .collect();
        self.vault.commit_until(ops, crash)
    }

    /// What the store has done since it was opened (syncs of each file,
    /// prefix scans): for tests and measurements.
    #[doc(hidden)]
    pub fn counters(&self) -> Counters {
        self.vault.counters()
    }

    /// How many spare keys (written ahead for coming commits, opening
    /// nothing yet) the key-slot file holds, and how many superseded keys
    /// an erasure window still defers: for tests.
    #[doc(hidden)]
    pub fn unused_keys(&self) -> (usize, usize) {
        self.vault.unused_keys()
    }

    /// The directory the store lives in.
    pub fn directory(&self) -> &Path {
        self.vault.directory()
    }

    /// The prefix of the records of a scope (see [`Naming`]).
    pub(crate) fn scope_prefix(&self, scope: &[&[u8]]) -> [u8; NAME_PART_LEN] {
        self.naming.prefix(scope)
    }

    /// A record's name (see [`Naming`]).
    pub(crate) fn record_name(&self, scope: &[&[u8]], record: &[&[u8]]) -> Vec<u8> {
        self.naming.name(scope, record)
    }

    pub(crate) fn get(&self, name: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        if let Some(pending) = &self.pending {
            if let Some(change) = pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(name)
            {
                return Ok(change.as_ref().map(|(value, _)| value.clone()));
            }
        }
        self.vault.get(name)
    }

    pub(super) fn scan(&self, prefix: &[u8]) -> Result<Records, StoreError> {
        let mut records: BTreeMap<Vec<u8>, Zeroizing<Vec<u8>>> =
            self.vault.scan(prefix)?.into_iter().collect();
        if let Some(pending) = &self.pending {
            let pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
            let range = pending.range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded));
            for (name, change) in range.take_while(|(name, _)| name.starts_with(prefix)) {
                match change {
                    Some((value, _)) => records.insert(name.clone(), value.clone()),
                    None => records.remove(name),
                };
            }
        }
        Ok(records.into_iter().collect())
    }

    pub(crate) fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        match &self.pending {
            None => self.vault.commit(ops),
            Some(pending) => {
                let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
                for op in ops {
                    match op {
                        Op::Put {
                            name,
                            value,
                            secret,
                        } => pending.insert(name, Some((value, secret))),
                        Op::Delete { name } => pending.insert(name, None),
                    };
                }
                Ok(())
            }
        }
    }
}
