//! mls-rs's storage traits on the forward-secret store: the same vault,
//! and the same promise, as the OpenMLS provider's.
//!
//! Every record is sealed as a secret (group states, epochs, key packages
//! with their private keys, PSKs): a value mls-rs replaces or deletes, and
//! an epoch it no longer retains, is unrecoverable from the store's files
//! when the call returns. `GroupStateStorage::write` (the state, its epoch
//! inserts and updates, and the erasure of epochs past retention) lands as
//! one atomic commit.
//!
//! Records (names are keyed hashes, as the OpenMLS adapter's, so no group
//! id or key package reference appears in the files):
//! - per group: its state; each retained epoch, by id; and a public index,
//!   the lowest and highest epoch id stored, so that retention erases the
//!   epochs it drops by name, without a scan;
//! - key packages by id, PSKs by id.

use std::num::NonZeroU64;

use mls_rs_core::error::IntoAnyError;
use mls_rs_core::group::{EpochRecord, GroupState, GroupStateStorage};
use mls_rs_core::key_package::{KeyPackageData, KeyPackageStorage};
use mls_rs_core::psk::{ExternalPskId, PreSharedKey, PreSharedKeyStorage};
use zeroize::Zeroizing;

use crate::store::{Op, Store, StoreError};

impl IntoAnyError for StoreError {
    fn into_dyn_error(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(self.into())
    }
}

/// The epochs kept by default, as mls-rs's in-memory storage keeps them.
pub const DEFAULT_RETAINED_EPOCHS: u64 = 3;

const STATE: u8 = 1;
const EPOCH: u8 = 2;
const INDEX: u8 = 3;
const KEY_PACKAGE: u8 = 4;
const PSK: u8 = 5;

/// mls-rs's `GroupStateStorage`, `KeyPackageStorage` and
/// `PreSharedKeyStorage` on a [`Store`]. Cheap to clone: clones share the
/// store, as mls-rs's client builder needs.
#[derive(Clone, Debug)]
pub struct MlsRsStorage {
    store: Store,
    retained_epochs: u64,
}

impl MlsRsStorage {
    /// On `store`, keeping [`DEFAULT_RETAINED_EPOCHS`] prior epochs per
    /// group.
    pub fn new(store: Store) -> Self {
        MlsRsStorage {
            store,
            retained_epochs: DEFAULT_RETAINED_EPOCHS,
        }
    }

    /// Keeping `epochs` prior epochs per group; older ones are erased.
    pub fn with_retained_epochs(mut self, epochs: NonZeroU64) -> Self {
        self.retained_epochs = epochs.get();
        self
    }

    /// Stores an external PSK (mls-rs only reads them).
    pub fn insert_psk(&self, id: &ExternalPskId, psk: &PreSharedKey) -> Result<(), StoreError> {
        self.store.apply(vec![Op::Put {
            name: self.name(None, PSK, id),
            value: Zeroizing::new(psk.raw_value().to_vec()),
            secret: true,
        }])
    }

    /// Erases an external PSK.
    pub fn delete_psk(&self, id: &ExternalPskId) -> Result<(), StoreError> {
        self.store.apply(vec![Op::Delete {
            name: self.name(None, PSK, id),
        }])
    }

    /// The record's name: the group (or no group) as its scope, the kind
    /// and key as the record (see `store::naming`).
    fn name(&self, group: Option<&[u8]>, kind: u8, part: &[u8]) -> Vec<u8> {
        let scope: [&[u8]; 2] = match group {
            Some(group) => [b"mls-rs group", group],
            None => [b"mls-rs global", b""],
        };
        let length = (part.len() as u32).to_be_bytes();
        self.store
            .record_name(&scope, &[b"mls-rs", &[kind], &length, part])
    }

    fn epoch_name(&self, group: &[u8], epoch: u64) -> Vec<u8> {
        self.name(Some(group), EPOCH, &epoch.to_be_bytes())
    }

    /// The group's (lowest, highest) stored epoch ids.
    fn index(&self, group: &[u8]) -> Result<Option<(u64, u64)>, StoreError> {
        let Some(value) = self.store.get(&self.name(Some(group), INDEX, b""))? else {
            return Ok(None);
        };
        let (low, high) = value
            .split_at_checked(8)
            .filter(|(_, high)| high.len() == 8)
            .ok_or(StoreError::Corrupted("mls-rs epoch index"))?;
        let read = |b: &[u8]| u64::from_be_bytes(b.try_into().expect("8 bytes"));
        Ok(Some((read(low), read(high))))
    }
}

impl GroupStateStorage for MlsRsStorage {
    type Error = StoreError;

    fn state(&self, group_id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.store.get(&self.name(Some(group_id), STATE, b""))
    }

    fn epoch(
        &self,
        group_id: &[u8],
        epoch_id: u64,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.store.get(&self.epoch_name(group_id, epoch_id))
    }

    fn write(
        &mut self,
        state: GroupState,
        epoch_inserts: Vec<EpochRecord>,
        epoch_updates: Vec<EpochRecord>,
    ) -> Result<(), StoreError> {
        let group = state.id.clone();
        let stored = self.index(&group)?;
        let high = epoch_inserts
            .iter()
            .map(|e| e.id)
            .chain(stored.map(|(_, high)| high))
            .max();
        let mut ops = vec![Op::Put {
            name: self.name(Some(&group), STATE, b""),
            value: state.data,
            secret: true,
        }];
        if let Some(high) = high {
            // Retain the newest `retained_epochs`; erase the rest by name.
            let keep_from = high.saturating_sub(self.retained_epochs - 1);
            let low = stored
                .map(|(low, _)| low)
                .into_iter()
                .chain(epoch_inserts.iter().map(|e| e.id))
                .min()
                .unwrap_or(keep_from);
            for epoch in epoch_inserts.into_iter().chain(epoch_updates) {
                if epoch.id >= keep_from {
                    ops.push(Op::Put {
                        name: self.epoch_name(&group, epoch.id),
                        value: epoch.data,
                        secret: true,
                    });
                }
            }
            for old in low..keep_from {
                ops.push(Op::Delete {
                    name: self.epoch_name(&group, old),
                });
            }
            let index = [keep_from.max(low).to_be_bytes(), high.to_be_bytes()].concat();
            ops.push(Op::Put {
                name: self.name(Some(&group), INDEX, b""),
                value: Zeroizing::new(index),
                secret: false,
            });
        }
        self.store.apply(ops)
    }

    fn max_epoch_id(&self, group_id: &[u8]) -> Result<Option<u64>, StoreError> {
        Ok(self.index(group_id)?.map(|(_, high)| high))
    }
}

/// `u32 length || bytes` for each part.
fn put_parts(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum()));
    for part in parts {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn take_part<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], StoreError> {
    let corrupted = || StoreError::Corrupted("mls-rs key package record");
    let (length, rest) = bytes.split_at_checked(4).ok_or_else(corrupted)?;
    let length = u32::from_be_bytes(length.try_into().expect("4 bytes")) as usize;
    let (part, rest) = rest.split_at_checked(length).ok_or_else(corrupted)?;
    *bytes = rest;
    Ok(part)
}

impl KeyPackageStorage for MlsRsStorage {
    type Error = StoreError;

    fn delete(&mut self, id: &[u8]) -> Result<(), StoreError> {
        self.store.apply(vec![Op::Delete {
            name: self.name(None, KEY_PACKAGE, id),
        }])
    }

    fn insert(&mut self, id: Vec<u8>, pkg: KeyPackageData) -> Result<(), StoreError> {
        let value = put_parts(&[
            &pkg.key_package_bytes,
            &pkg.init_key,
            &pkg.leaf_node_key,
            &pkg.expiration.to_be_bytes(),
        ]);
        self.store.apply(vec![Op::Put {
            name: self.name(None, KEY_PACKAGE, &id),
            value,
            secret: true,
        }])
    }

    fn get(&self, id: &[u8]) -> Result<Option<KeyPackageData>, StoreError> {
        let Some(value) = self.store.get(&self.name(None, KEY_PACKAGE, id))? else {
            return Ok(None);
        };
        let mut rest = &value[..];
        let key_package = take_part(&mut rest)?.to_vec();
        let init_key = take_part(&mut rest)?.to_vec();
        let leaf_node_key = take_part(&mut rest)?.to_vec();
        let expiration = take_part(&mut rest)?
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupted("mls-rs key package expiration"))?;
        if !rest.is_empty() {
            return Err(StoreError::Corrupted("mls-rs key package record"));
        }
        Ok(Some(KeyPackageData::new(
            key_package,
            init_key.into(),
            leaf_node_key.into(),
            expiration,
        )))
    }
}

impl PreSharedKeyStorage for MlsRsStorage {
    type Error = StoreError;

    fn get(&self, id: &ExternalPskId) -> Result<Option<PreSharedKey>, StoreError> {
        Ok(self
            .store
            .get(&self.name(None, PSK, id))?
            .map(|value| PreSharedKey::new(value.to_vec())))
    }
}
