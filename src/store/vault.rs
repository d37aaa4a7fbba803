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

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions, DB};
use zeroize::Zeroizing;

use super::record::{self, Sealing, SALT_LEN};
use super::slots::{HeaderKeys, SlotFile, SlotId};
use super::{ApplicationKey, StoreError, StoreOptions};
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
    /// The record the op writes or deletes.
    pub(crate) fn name(&self) -> &[u8] {
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
    /// The spare slots the new secret records are sealed under.
    keys: Vec<SlotId>,
    /// Slots of the records the commit replaces or deletes.
    retire: Vec<SlotId>,
}

/// What a vault has done since it was opened (see [`crate::Store::counters`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Synced writes of RocksDB's WAL.
    pub wal_syncs: u64,
    /// Syncs of the key-slot file.
    pub key_file_syncs: u64,
    /// Prefix scans of the database.
    pub scans: u64,
}

/// When a durable vault erases the keys a commit supersedes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Erasure {
    /// Before the commit returns (its second sync).
    Immediate,
    /// Within this window after the commit, with a later commit's sync or
    /// by the vault's eraser thread.
    Within(Duration),
}

/// The key-slot file, shared with the eraser thread of an erasure window.
struct Shared {
    file: Mutex<SlotFile>,
    /// Wakes the eraser: a deadline was set, or the vault closes.
    wake: Condvar,
    /// Set when the vault closes: the eraser erases what waits, and ends.
    closing: std::sync::atomic::AtomicBool,
    /// What a background erasure failed with, reported by the next commit.
    failure: Mutex<Option<String>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SlotFile> {
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The open vault: a RocksDB database and its key-slot file.
pub struct Vault {
    directory: std::path::PathBuf,
    db: DB,
    slots: Arc<Shared>,
    /// The key slot of every secret record, as RocksDB holds it: read when
    /// the vault opens and kept by each commit, so that a commit finds the
    /// keys it supersedes without reading the records it replaces.
    /// Changed only by a commit, while it holds the key-slot file.
    key_slots: Mutex<HashMap<Vec<u8>, SlotId>>,
    value_key: Zeroizing<[u8; 32]>,
    naming_key: Zeroizing<[u8; 32]>,
    rand: Rand,
    sync: bool,
    erasure: Erasure,
    /// The thread that erases deferred keys when their window ends.
    eraser: Option<JoinHandle<()>>,
    /// Synced RocksDB writes so far.
    wal_syncs: AtomicU64,
    /// Prefix scans so far.
    scans: AtomicU64,
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
    /// With `options.durable`, every commit is durable when it returns;
    /// without, the OS writes it back later (see the README for what that
    /// means for forward secrecy). The key-slot file is checked against the
    /// application key before anything is written.
    pub fn open(dir: &Path, options: &StoreOptions) -> Result<Vault, StoreError> {
        std::fs::create_dir_all(dir)?;
        let rand =
            Rand::new().map_err(|_| StoreError::Io(std::io::Error::other("OS RNG unavailable")))?;
        let sync = options.durable;
        let (slots, keys) = SlotFile::open(
            &dir.join("keys"),
            &rand,
            sync,
            options.application_key.as_ref(),
        )?;
        let db = DB::open(&options.profile.rocksdb_options(), dir.join("db"))?;
        let erasure = match options.erase_within {
            Some(window) if sync => Erasure::Within(window),
            _ => Erasure::Immediate,
        };
        let slots = Arc::new(Shared {
            file: Mutex::new(slots),
            wake: Condvar::new(),
            closing: false.into(),
            failure: Mutex::new(None),
        });
        let eraser = match erasure {
            Erasure::Within(_) => {
                let shared = Arc::clone(&slots);
                let rand = Rand::new()
                    .map_err(|_| StoreError::Io(std::io::Error::other("OS RNG unavailable")))?;
                Some(
                    std::thread::Builder::new()
                        .name("polymls-eraser".into())
                        .spawn(move || erase_on_time(&shared, &rand))?,
                )
            }
            Erasure::Immediate => None,
        };
        let vault = Vault {
            directory: dir.to_path_buf(),
            db,
            slots,
            key_slots: Mutex::default(),
            value_key: keys.value,
            naming_key: keys.naming,
            rand,
            sync,
            erasure,
            eraser,
            wal_syncs: AtomicU64::new(0),
            scans: AtomicU64::new(0),
            _temporary: None,
        };
        vault.recover()?;
        Ok(vault)
    }

    /// A vault in a fresh temporary directory, removed when the vault is
    /// dropped.
    pub fn temporary(options: &StoreOptions) -> Result<Vault, StoreError> {
        let temporary = tempfile::Builder::new().prefix("polymls-").tempdir()?;
        let mut vault = Vault::open(temporary.path(), options)?;
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
        self.slots.lock()
    }

    fn key_slots(&self) -> MutexGuard<'_, HashMap<Vec<u8>, SlotId>> {
        self.key_slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// What the vault has done since it was opened.
    pub fn counters(&self) -> Counters {
        Counters {
            wal_syncs: self.wal_syncs.load(Ordering::Relaxed),
            key_file_syncs: self.slots().syncs(),
            scans: self.scans.load(Ordering::Relaxed),
        }
    }

    /// How many spare keys the key-slot file holds, and how many superseded
    /// keys still await erasure (see [`Erasure::Within`]).
    pub fn unused_keys(&self) -> (usize, usize) {
        self.slots().unused()
    }

    fn recover(&self) -> Result<(), StoreError> {
        let mut referenced = HashMap::new();
        let mut key_slots = self.key_slots();
        for item in self.db.iterator(IteratorMode::Start) {
            let (name, record) = item?;
            if let Some((slot, generation)) = secret_location(&record) {
                referenced.insert(slot, generation);
                key_slots.insert(name.into_vec(), slot);
            }
        }
        let mut slots = self.slots();
        let used: Vec<SlotId> = slots.used().collect();
        for slot in used {
            slots.erase(slot, referenced.get(&slot).copied())?;
        }
        slots.retire(&[], &self.rand)?;
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
        self.scans.fetch_add(1, Ordering::Relaxed);
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
    /// value they replace or delete is unrecoverable when this returns (or,
    /// with an erasure window, within the window).
    ///
    /// Two syncs: the records, sealed under spare keys that were durable
    /// before the commit began, go into RocksDB in one synced batch; then
    /// the slots of the records they replace are overwritten, and spares for
    /// the next commits written, in one sync of the key-slot file. With an
    /// erasure window the second step waits for a later commit or the
    /// eraser thread. A crash between the two is finished by
    /// [`Vault::open`].
    pub fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.commit_until(ops, None)
    }

    /// [`Vault::commit`], stopped after `crash` as a crash would stop it:
    /// nothing is undone or finished, and the vault in memory no longer
    /// matches its files. Only for tests, which must drop the vault and
    /// open it again.
    pub fn commit_until(&self, ops: Vec<Op>, crash: Option<CrashPoint>) -> Result<(), StoreError> {
        let ops = last_op_per_name(ops);
        if ops.is_empty() {
            return Ok(());
        }
        if let Some(failure) = self
            .slots
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            return Err(StoreError::Io(std::io::Error::other(failure)));
        }
        let mut slots = self.slots();
        if slots.deadline().is_some_and(|d| d <= Instant::now()) {
            slots.flush(&self.rand)?;
        }
        let secrets = ops
            .iter()
            .filter(|op| matches!(op, Op::Put { secret: true, .. }))
            .count();
        slots.reserve(secrets, &self.rand)?;
        let mut key_slots = self.key_slots();
        let mut staged = Staged::default();
        let sealed = self.stage(&mut slots, &key_slots, &ops, &mut staged);
        if sealed.is_ok() && crash == Some(CrashPoint::AfterStagingKeys) {
            return Ok(());
        }
        let landed = sealed.and_then(|()| self.land(std::mem::take(&mut staged.batch)));
        if let Err(error) = landed {
            // The batch did not land: its keys belong to no record.
            for &slot in &staged.keys {
                let _ = slots.erase(slot, None);
            }
            let _ = slots.sync();
            return Err(error);
        }
        note_key_slots(&mut key_slots, ops, &staged.keys);
        drop(key_slots);
        if crash == Some(CrashPoint::AfterLandingBatch) {
            return Ok(());
        }
        match self.erasure {
            Erasure::Within(window) => {
                if slots.defer(&staged.retire, Instant::now() + window) {
                    self.slots.wake.notify_one();
                }
                Ok(())
            }
            Erasure::Immediate => {
                slots.retire(&staged.retire, &self.rand)?;
                slots.sync()
            }
        }
    }

    /// Seals the records into a batch, each secret one under a spare key.
    fn stage(
        &self,
        slots: &mut SlotFile,
        key_slots: &HashMap<Vec<u8>, SlotId>,
        ops: &[Op],
        staged: &mut Staged,
    ) -> Result<(), StoreError> {
        for op in ops {
            if let Some(&slot) = key_slots.get(op.name()) {
                staged.retire.push(slot);
            }
            match op {
                Op::Put {
                    name,
                    value,
                    secret: true,
                } => {
                    let (slot, generation, key) = slots.take_spare()?;
                    staged.keys.push(slot);
                    staged.batch.put(
                        name,
                        record::seal_secret(name, slot, generation, &key, value)?,
                    );
                }
                Op::Put {
                    name,
                    value,
                    secret: false,
                } => staged.batch.put(name, self.seal_public(name, value)?),
                Op::Delete { name } => staged.batch.delete(name),
            }
        }
        Ok(())
    }

    /// Writes the batch, synced when the vault is durable.
    fn land(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut write_options = WriteOptions::default();
        write_options.set_sync(self.sync);
        self.db.write_opt(batch, &write_options)?;
        if self.sync {
            self.wal_syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
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

/// Notes where the records of landed `ops` are sealed now: each secret
/// one under its new key (`keys`, in the ops' order), the others nowhere.
fn note_key_slots(key_slots: &mut HashMap<Vec<u8>, SlotId>, ops: Vec<Op>, keys: &[SlotId]) {
    let mut secret_names = Vec::with_capacity(keys.len());
    for op in ops {
        match op {
            Op::Put {
                name, secret: true, ..
            } => secret_names.push(name),
            other => {
                key_slots.remove(other.name());
            }
        }
    }
    key_slots.extend(secret_names.into_iter().zip(keys.iter().copied()));
}

/// The last op for each name, in their order: a batch keeps only the last
/// write of a name, so an earlier one would seal a record under a spare key
/// that no record then refers to.
fn last_op_per_name(ops: Vec<Op>) -> Vec<Op> {
    // A transaction's ops come from a map: in name order, each name once.
    if ops.windows(2).all(|pair| pair[0].name() < pair[1].name()) {
        return ops;
    }
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<Op> = ops
        .into_iter()
        .rev()
        .filter(|op| seen.insert(op.name().to_vec()))
        .collect();
    kept.reverse();
    kept
}

impl Drop for Vault {
    /// Erases what an erasure window still defers before the vault closes.
    fn drop(&mut self) {
        self.slots.closing.store(true, Ordering::Release);
        self.slots.wake.notify_one();
        if let Some(eraser) = self.eraser.take() {
            let _ = eraser.join();
        }
    }
}

/// The eraser thread of an erasure window: erases the deferred keys when
/// their deadline comes, and once more when the vault closes.
fn erase_on_time(shared: &Shared, rand: &Rand) {
    let mut slots = shared.lock();
    loop {
        let closing = shared.closing.load(Ordering::Acquire);
        let due = slots
            .deadline()
            .map(|d| d.saturating_duration_since(Instant::now()));
        if closing || due == Some(Duration::ZERO) {
            if let Err(error) = slots.flush(rand) {
                *shared
                    .failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) =
                    Some(format!("erasing superseded keys failed: {error}"));
            }
            if closing {
                return;
            }
            continue;
        }
        slots = match due {
            Some(due) => {
                shared
                    .wake
                    .wait_timeout(slots, due)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => shared
                .wake
                .wait(slots)
                .unwrap_or_else(PoisonError::into_inner),
        };
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
        let vault = Vault::open(dir.path(), &StoreOptions::default()).expect("open");
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
        let slots = vault.slots();
        assert_eq!(
            slots.used().count(),
            slots.unused().0,
            "only spare keys are left"
        );
    }

    /// With an erasure window, a superseded key stays in the file for the
    /// window (the positive control: the check sees it), is gone after it,
    /// and one still deferred is erased when the vault closes.
    #[test]
    fn an_erasure_window_erases_superseded_keys_within_it() {
        let window = Duration::from_millis(300);
        let dir = tempfile::tempdir().expect("tempdir");
        let vault =
            Vault::open(dir.path(), &StoreOptions::default().erase_within(window)).expect("open");
        vault
            .commit(vec![put(b"name", b"first secret", true)])
            .expect("commit");
        let first_key = current_key(&vault, b"name");
        let replaced = Instant::now();
        vault
            .commit(vec![put(b"name", b"second secret", true)])
            .expect("commit");
        assert!(
            contains(&key_file(dir.path()), &first_key),
            "within the window the superseded key is still there"
        );
        assert_eq!(vault.unused_keys().1, 1, "one key awaits erasure");
        std::thread::sleep(window + Duration::from_millis(200));
        assert!(
            !contains(&key_file(dir.path()), &first_key),
            "gone {:?} after its commit",
            replaced.elapsed()
        );
        assert_eq!(vault.unused_keys().1, 0);

        let second_key = current_key(&vault, b"name");
        vault
            .commit(vec![put(b"name", b"third secret", true)])
            .expect("commit");
        assert!(contains(&key_file(dir.path()), &second_key));
        drop(vault);
        assert!(
            !contains(&key_file(dir.path()), &second_key),
            "closing the vault erases what the window deferred"
        );
    }

    /// Two writes of one name in one commit: the last one lands, and no
    /// spare is left sealed under by the first.
    #[test]
    fn two_writes_of_a_name_in_one_commit_leave_one_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = Vault::open(dir.path(), &StoreOptions::default()).expect("open");
        let spares = vault.unused_keys().0;
        vault
            .commit(vec![
                put(b"name", b"first", true),
                put(b"name", b"second", true),
            ])
            .expect("commit");
        assert_eq!(
            vault.get(b"name").expect("get").expect("value").as_slice(),
            b"second"
        );
        let slots = vault.slots();
        assert_eq!(
            slots.used().count(),
            slots.unused().0 + 1,
            "the record's key and the spares, nothing else"
        );
        assert!(slots.unused().0 >= spares);
    }

    /// A fresh slot has only its first half written, so the key file ends
    /// half-way through it; reopening must still find the key.
    #[test]
    fn a_secret_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let vault = Vault::open(dir.path(), &StoreOptions::default()).expect("open");
            vault
                .commit(vec![
                    put(b"one", b"first", true),
                    put(b"two", b"second", true),
                ])
                .expect("commit");
        }
        let vault = Vault::open(dir.path(), &StoreOptions::default()).expect("reopen");
        assert_eq!(
            vault.get(b"one").expect("get").expect("value").as_slice(),
            b"first"
        );
        assert_eq!(
            vault.get(b"two").expect("get").expect("value").as_slice(),
            b"second"
        );
    }

    /// A commit finds the keys it supersedes in memory, filled from the
    /// records when the vault opens: a secret written before reopening is
    /// still erased when replaced (by a secret or a public value) or
    /// deleted after it.
    #[test]
    fn secrets_from_before_reopening_are_erased_when_superseded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names: [&[u8]; 3] = [b"replaced", b"made public", b"deleted"];
        let keys: Vec<[u8; 32]>;
        {
            let vault = Vault::open(dir.path(), &StoreOptions::default()).expect("open");
            vault
                .commit(names.iter().map(|name| put(name, b"old", true)).collect())
                .expect("commit");
            keys = names.iter().map(|name| current_key(&vault, name)).collect();
        }
        let vault = Vault::open(dir.path(), &StoreOptions::default()).expect("reopen");
        for key in &keys {
            assert!(
                contains(&key_file(dir.path()), key),
                "positive control: the keys survive reopening"
            );
        }
        vault
            .commit(vec![
                put(b"replaced", b"new", true),
                put(b"made public", b"new", false),
                Op::Delete {
                    name: b"deleted".to_vec(),
                },
            ])
            .expect("commit");
        for (name, key) in names.iter().zip(&keys) {
            assert!(
                !contains(&key_file(dir.path()), key),
                "the key of {:?} is gone",
                String::from_utf8_lossy(name)
            );
        }
    }

    /// A record that stops being secret no longer owns its old key slot:
    /// the slot goes back to the free ones, and writing the record again
    /// must not erase the key that slot holds since (a spare's or a live
    /// secret's).
    #[test]
    fn a_slot_given_up_is_not_retired_twice() {
        let vault = Vault::temporary(&StoreOptions::default()).expect("open");
        for round in 0..4u8 {
            vault
                .commit(vec![put(b"record", &[round], true)])
                .expect("commit");
            vault
                .commit(vec![put(b"record", &[round], false)])
                .expect("commit");
            let others: Vec<Op> = (0..40u8)
                .map(|i| put(&[b'o', round, i], &[i], true))
                .collect();
            vault.commit(others).expect("commit");
            vault
                .commit(vec![put(b"record", b"public again", false)])
                .expect("commit");
            for i in 0..40u8 {
                assert_eq!(
                    vault.get(&[b'o', round, i]).expect("opens").expect("value")[..],
                    [i]
                );
            }
            let slots = vault.slots();
            assert_eq!(
                slots.used().count(),
                slots.unused().0 + 40 * (usize::from(round) + 1),
                "every spare and every live secret's key is still there"
            );
        }
    }

    /// A crash after step 1 (new key staged, batch not written) leaves the
    /// old value; reopening erases the staged key.
    #[test]
    fn reopening_undoes_a_commit_cut_short_before_the_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let staged_key;
        {
            let vault = Vault::open(dir.path(), &StoreOptions::default()).expect("open");
            vault
                .commit(vec![put(b"name", b"old", true)])
                .expect("commit");
            vault
                .commit_until(
                    vec![put(b"name", b"new", true)],
                    Some(CrashPoint::AfterStagingKeys),
                )
                .expect("stage");
            let slot = vault
                .db
                .get(b"name")
                .expect("get")
                .map(|r| secret_location(&r));
            assert!(slot.is_some(), "the old record is still there");
            // Every key in the file but the old record's: the spares,
            // including the one the new record was sealed under.
            let old = current_key(&vault, b"name");
            let slots = vault.slots();
            staged_key = slots
                .used()
                .filter_map(|slot| slots.key(slot, 1).copied())
                .find(|key| *key != old)
                .expect("a spare key");
        }
        let vault = Vault::open(dir.path(), &StoreOptions::default()).expect("reopen");
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
            let vault = Vault::open(dir.path(), &StoreOptions::default()).expect("open");
            vault
                .commit(vec![put(b"name", b"old", true)])
                .expect("commit");
            old_key = current_key(&vault, b"name");
            vault
                .commit_until(
                    vec![put(b"name", b"new", true)],
                    Some(CrashPoint::AfterLandingBatch),
                )
                .expect("land");
            assert!(contains(&key_file(dir.path()), &old_key));
        }
        let vault = Vault::open(dir.path(), &StoreOptions::default()).expect("reopen");
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
            let vault = Vault::open(dir.path(), &StoreOptions::default()).expect("open");
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
            Vault::open(dir.path(), &StoreOptions::default()),
            Err(StoreError::UnknownFormat { found: 99 })
        ));
        header[0] = b'X';
        std::fs::write(dir.path().join("keys"), &header).expect("write");
        assert!(matches!(
            Vault::open(dir.path(), &StoreOptions::default()),
            Err(StoreError::NotAStore)
        ));
        std::fs::write(dir.path().join("keys"), b"short").expect("write");
        assert!(matches!(
            Vault::open(dir.path(), &StoreOptions::default()),
            Err(StoreError::NotAStore)
        ));
    }
}
