//! The vault: sealed records in RocksDB whose keys can be erased.
//!
//! It knows nothing of MLS. A record is a name (opaque bytes) and a value
//! that is either *secret* or *public*:
//!
//! - a secret value is sealed (AES-256-GCM) under a key used for that one
//!   value only, kept in a slot of the key-slot file ([`super::slots`]).
//!   Replacing or deleting the value erases that key in place before the
//!   call returns, so the ciphertexts RocksDB keeps in its WAL and SST files
//!   can no longer be opened by anyone;
//! - a public value is sealed under a key derived from the store's value
//!   key and a per-record salt: it is not erased, only kept unreadable to
//!   someone who sees the files but not the key-slot file.
//!
//! Forward secrecy holds under one assumption: an in-place overwrite of the
//! key-slot file reaches the medium. Copy-on-write file systems, snapshots
//! and SSD wear-levelling keep old blocks that software cannot erase.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use zeroize::Zeroizing;

use super::record::{self, Sealing, SALT_LEN};
use super::slots::{HeaderKeys, SlotFile, SlotId};
use super::{ApplicationKey, StoreError};
use crate::Rand;

/// Records as (name, plaintext value), in name order.
pub type Records = Vec<(Vec<u8>, Zeroizing<Vec<u8>>)>;

/// A change to one record.
pub enum Op {
    /// Sets `name` to `value`.
    Put {
        /// The record name.
        name: Vec<u8>,
        /// The plaintext value; zeroized on drop.
        value: Zeroizing<Vec<u8>>,
        /// Whether the value must become unrecoverable once replaced.
        secret: bool,
    },
    /// Removes `name`.
    Delete {
        /// The record name.
        name: Vec<u8>,
    },
}

impl Op {
    fn name(&self) -> &[u8] {
        match self {
            Op::Put { name, .. } | Op::Delete { name } => name,
        }
    }
}

/// Where a simulated crash stops a commit (see [`crate::Store::commit_until`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// The new keys are in the key-slot file, the records not yet in RocksDB.
    AfterStagingKeys,
    /// The records are in RocksDB, the superseded keys not yet erased.
    AfterLandingBatch,
}

/// A commit between its steps.
#[derive(Default)]
struct Staged {
    batch: WriteBatch,
    /// Halves written in step 1: (slot, generation).
    keys: Vec<(SlotId, u64)>,
    /// Slots to clean in step 3: (slot, the generation to keep, if any).
    retire: Vec<(SlotId, Option<u64>)>,
}

/// The open vault: a RocksDB database and its key-slot file.
pub struct Vault {
    directory: std::path::PathBuf,
    db: DB,
    slots: Mutex<SlotFile>,
    value_key: Zeroizing<[u8; 32]>,
    naming_key: Zeroizing<[u8; 32]>,
    rand: Rand,
    sync: bool,
    /// A temporary directory the vault lives in, removed on drop: last, so
    /// RocksDB is closed before.
    _temporary: Option<tempfile::TempDir>,
}

/// Where a stored secret record's key is.
fn secret_location(record: &[u8]) -> Option<(SlotId, u64)> {
    match record::sealing(record) {
        Ok(Sealing::Secret { slot, generation }) => Some((slot, generation)),
        _ => None,
    }
}

impl Vault {
    /// Opens (or creates) the vault in `dir`, then erases every slot half no
    /// record refers to, which finishes or undoes a commit a crash cut short.
    /// With `sync`, every commit is durable when it returns; without, the OS
    /// writes it back later (see the README for what that means for
    /// forward secrecy). The key-slot file is checked against
    /// `application_key` before anything is written.
    pub fn open(
        dir: &Path,
        sync: bool,
        application_key: Option<&ApplicationKey>,
    ) -> Result<Vault, StoreError> {
        std::fs::create_dir_all(dir)?;
        let rand =
            Rand::new().map_err(|_| StoreError::Io(std::io::Error::other("OS RNG unavailable")))?;
        let (slots, keys) = SlotFile::open(&dir.join("keys"), &rand, sync, application_key)?;
        let mut options = Options::default();
        options.create_if_missing(true);
        // Recycled WAL files would keep old pages around for no benefit.
        options.set_recycle_log_file_num(0);
        let db = DB::open(&options, dir.join("db"))?;
        let vault = Vault {
            directory: dir.to_path_buf(),
            db,
            slots: Mutex::new(slots),
            value_key: keys.value,
            naming_key: keys.naming,
            rand,
            sync,
            _temporary: None,
        };
        vault.recover()?;
        Ok(vault)
    }

    /// A vault in a fresh temporary directory, removed when the vault is
    /// dropped.
    pub fn temporary(sync: bool) -> Result<Vault, StoreError> {
        let temporary = tempfile::Builder::new().prefix("polymls-").tempdir()?;
        let mut vault = Vault::open(temporary.path(), sync, None)?;
        vault._temporary = Some(temporary);
        Ok(vault)
    }

    /// Seals the key-slot file under `application_key` from now on (in
    /// clear for `None`); see [`SlotFile::rekey`].
    pub fn rekey(&self, application_key: Option<&ApplicationKey>) -> Result<(), StoreError> {
        let keys = HeaderKeys {
            naming: self.naming_key.clone(),
            value: self.value_key.clone(),
        };
        self.slots().rekey(&keys, application_key, &self.rand)
    }

    /// The directory the vault lives in.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The key under which record names are computed (see the adapter).
    pub fn naming_key(&self) -> &[u8; 32] {
        &self.naming_key
    }

    fn slots(&self) -> MutexGuard<'_, SlotFile> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn recover(&self) -> Result<(), StoreError> {
        let mut referenced = std::collections::HashMap::new();
        for item in self.db.iterator(IteratorMode::Start) {
            let (_, record) = item?;
            if let Some((slot, generation)) = secret_location(&record) {
                referenced.insert(slot, generation);
            }
        }
        let mut slots = self.slots();
        let used: Vec<SlotId> = slots.used().collect();
        for slot in used {
            slots.erase(slot, referenced.get(&slot).copied())?;
        }
        slots.sync()
    }

    /// The value of `name`, if any.
    pub fn get(&self, name: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        match self.db.get_pinned(name)? {
            Some(record) => self.open_record(name, &record).map(Some),
            None => Ok(None),
        }
    }

    /// Every record whose name starts with `prefix`, in name order.
    pub fn scan(&self, prefix: &[u8]) -> Result<Records, StoreError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(prefix, Direction::Forward))
        {
            let (name, record) = item?;
            if !name.starts_with(prefix) {
                break;
            }
            let value = self.open_record(&name, &record)?;
            out.push((name.into_vec(), value));
        }
        Ok(out)
    }

    /// Applies `ops` atomically: all land or none does, and every secret
    /// value they replace or delete is unrecoverable when this returns.
    ///
    /// Three steps, each durable before the next: new keys go into spare
    /// slot halves; the records go into RocksDB in one batch; the halves of
    /// the replaced records are overwritten. A crash between any two is
    /// finished or undone by [`Vault::open`].
    pub fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.commit_until(ops, None)
    }

    /// [`Vault::commit`], stopped after `crash` as a crash would stop it:
    /// nothing is undone or finished, and the vault in memory no longer
    /// matches its files. Only for tests, which must drop the vault and
    /// open it again.
    pub fn commit_until(&self, ops: Vec<Op>, crash: Option<CrashPoint>) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut slots = self.slots();
        let mut staged = Staged::default();
        let staged_keys = self
            .stage(&mut slots, &ops, &mut staged)
            .and_then(|()| slots.sync());
        if staged_keys.is_ok() && crash == Some(CrashPoint::AfterStagingKeys) {
            return Ok(());
        }
        let landed = staged_keys.and_then(|()| self.land(std::mem::take(&mut staged.batch)));
        if let Err(error) = landed {
            // The batch did not land: the staged halves belong to no record.
            for &(slot, generation) in &staged.keys {
                let _ = slots.discard(slot, generation);
            }
            let _ = slots.sync();
            return Err(error);
        }
        if crash == Some(CrashPoint::AfterLandingBatch) {
            return Ok(());
        }
        Self::retire(&mut slots, &staged.retire)
    }

    /// Step 1: writes a fresh key for every secret put into a spare half and
    /// seals the records into a batch.
    fn stage(
        &self,
        slots: &mut SlotFile,
        ops: &[Op],
        staged: &mut Staged,
    ) -> Result<(), StoreError> {
        for op in ops {
            let current = self
                .db
                .get_pinned(op.name())?
                .and_then(|record| secret_location(&record));
            match op {
                Op::Put {
                    name,
                    value,
                    secret: true,
                } => {
                    let (slot, generation, key) = slots.stage(current, &self.rand)?;
                    staged.keys.push((slot, generation));
                    staged.retire.push((slot, Some(generation)));
                    staged.batch.put(
                        name,
                        record::seal_secret(name, slot, generation, &key, value)?,
                    );
                }
                Op::Put {
                    name,
                    value,
                    secret: false,
                } => {
                    if let Some((slot, _)) = current {
                        staged.retire.push((slot, None));
                    }
                    staged.batch.put(name, self.seal_public(name, value)?);
                }
                Op::Delete { name } => {
                    if let Some((slot, _)) = current {
                        staged.retire.push((slot, None));
                    }
                    staged.batch.delete(name);
                }
            }
        }
        Ok(())
    }

    /// Step 2: writes the batch, synced when the vault is durable.
    fn land(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut write_options = WriteOptions::default();
        write_options.set_sync(self.sync);
        Ok(self.db.write_opt(batch, &write_options)?)
    }

    /// Step 3: overwrites the halves of replaced and deleted records.
    fn retire(slots: &mut SlotFile, retire: &[(SlotId, Option<u64>)]) -> Result<(), StoreError> {
        for &(slot, keep) in retire {
            slots.erase(slot, keep)?;
        }
        slots.sync()
    }

    fn seal_public(&self, name: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut salt = [0u8; SALT_LEN];
        self.rand.fill(&mut salt);
        record::seal_public(name, &self.value_key, &salt, value)
    }

    /// Authenticates and decrypts a stored record (see [`record`]).
    pub fn open_record(
        &self,
        name: &[u8],
        stored: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        record::open(name, stored, &self.value_key, |slot, generation| {
            self.slots()
                .key(slot, generation)
                .map(|key| Zeroizing::new(*key))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(name: &[u8], value: &[u8], secret: bool) -> Op {
        Op::Put {
            name: name.to_vec(),
            value: Zeroizing::new(value.to_vec()),
            secret,
        }
    }

    fn key_file(dir: &Path) -> Vec<u8> {
        std::fs::read(dir.join("keys")).expect("key file")
    }

    fn current_key(vault: &Vault, name: &[u8]) -> [u8; 32] {
        let record = vault.db.get(name).expect("get").expect("record");
        let (slot, generation) = secret_location(&record).expect("secret record");
        *vault.slots().key(slot, generation).expect("key")
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    }

    #[test]
    fn replacing_a_secret_erases_its_key_from_the_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = Vault::open(dir.path(), true, None).expect("open");
        vault
            .commit(vec![put(b"name", b"first secret", true)])
            .expect("commit");
        let first_key = current_key(&vault, b"name");
        assert!(
            contains(&key_file(dir.path()), &first_key),
            "positive control: the live key is in the file"
        );

        vault
            .commit(vec![put(b"name", b"second secret", true)])
            .expect("commit");
        let second_key = current_key(&vault, b"name");
        assert!(
            !contains(&key_file(dir.path()), &first_key),
            "the replaced key is gone"
        );
        assert_eq!(
            vault.get(b"name").expect("get").expect("value").as_slice(),
            b"second secret"
        );

        vault
            .commit(vec![Op::Delete {
                name: b"name".to_vec(),
            }])
            .expect("commit");
        assert!(
            !contains(&key_file(dir.path()), &second_key),
            "the deleted key is gone"
        );
        assert!(vault.get(b"name").expect("get").is_none());
        assert_eq!(vault.slots().used().count(), 0, "the slot is free again");
    }

    /// A fresh slot has only its first half written, so the key file ends
    /// half-way through it; reopening must still find the key.
    #[test]
    fn a_secret_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let vault = Vault::open(dir.path(), true, None).expect("open");
            vault
                .commit(vec![
                    put(b"one", b"first", true),
                    put(b"two", b"second", true),
                ])
                .expect("commit");
        }
        let vault = Vault::open(dir.path(), true, None).expect("reopen");
        assert_eq!(
            vault.get(b"one").expect("get").expect("value").as_slice(),
            b"first"
        );
        assert_eq!(
            vault.get(b"two").expect("get").expect("value").as_slice(),
            b"second"
        );
    }

    /// A crash after step 1 (new key staged, batch not written) leaves the
    /// old value; reopening erases the staged key.
    #[test]
    fn reopening_undoes_a_commit_cut_short_before_the_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let staged_key;
        {
            let vault = Vault::open(dir.path(), true, None).expect("open");
            vault
                .commit(vec![put(b"name", b"old", true)])
                .expect("commit");
            let mut slots = vault.slots();
            let mut staged = Staged::default();
            vault
                .stage(&mut slots, &[put(b"name", b"new", true)], &mut staged)
                .expect("stage");
            slots.sync().expect("sync");
            let (slot, generation) = staged.keys[0];
            staged_key = *slots.key(slot, generation).expect("staged key");
        }
        let vault = Vault::open(dir.path(), true, None).expect("reopen");
        assert_eq!(
            vault.get(b"name").expect("get").expect("value").as_slice(),
            b"old"
        );
        assert!(!contains(&key_file(dir.path()), &staged_key));
    }

    /// A crash after step 2 (batch written, old key not yet erased) keeps
    /// the new value; reopening erases the old key.
    #[test]
    fn reopening_finishes_a_commit_cut_short_after_the_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old_key;
        {
            let vault = Vault::open(dir.path(), true, None).expect("open");
            vault
                .commit(vec![put(b"name", b"old", true)])
                .expect("commit");
            old_key = current_key(&vault, b"name");
            let mut slots = vault.slots();
            let mut staged = Staged::default();
            vault
                .stage(&mut slots, &[put(b"name", b"new", true)], &mut staged)
                .expect("stage");
            slots.sync().expect("sync");
            vault.land(staged.batch).expect("land");
        }
        let vault = Vault::open(dir.path(), true, None).expect("reopen");
        assert_eq!(
            vault.get(b"name").expect("get").expect("value").as_slice(),
            b"new"
        );
        assert!(!contains(&key_file(dir.path()), &old_key));
    }

    #[test]
    fn tampered_records_and_foreign_files_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let vault = Vault::open(dir.path(), true, None).expect("open");
            vault
                .commit(vec![
                    put(b"secret", b"value", true),
                    put(b"public", b"value", false),
                ])
                .expect("commit");
            for name in [&b"secret"[..], b"public"] {
                let mut record = vault.db.get(name).expect("get").expect("record");
                let last = record.len() - 1;
                record[last] ^= 1;
                assert!(matches!(
                    vault.open_record(name, &record),
                    Err(StoreError::Corrupted(_))
                ));
                // The same bytes under another name do not open either.
                let record = vault.db.get(name).expect("get").expect("record");
                assert!(matches!(
                    vault.open_record(b"other", &record),
                    Err(StoreError::Corrupted(_))
                ));
            }
            for garbage in [&[][..], &[1][..], &[2, 0, 0][..], &[9; 40][..]] {
                assert!(matches!(
                    vault.open_record(b"secret", garbage),
                    Err(StoreError::Corrupted(_))
                ));
            }
        }
        let mut header = std::fs::read(dir.path().join("keys")).expect("read");
        header[8] = 99;
        std::fs::write(dir.path().join("keys"), &header).expect("write");
        assert!(matches!(
            Vault::open(dir.path(), true, None),
            Err(StoreError::UnknownFormat { found: 99 })
        ));
        header[0] = b'X';
        std::fs::write(dir.path().join("keys"), &header).expect("write");
        assert!(matches!(
            Vault::open(dir.path(), true, None),
            Err(StoreError::NotAStore)
        ));
        std::fs::write(dir.path().join("keys"), b"short").expect("write");
        assert!(matches!(
            Vault::open(dir.path(), true, None),
            Err(StoreError::NotAStore)
        ));
    }
}
