//! The embedded backend: the directory in a RocksDB database of its own.
//!
//! RocksDB holds the database's lock file, so one process owns it; inside
//! that process, an actor's claims and uploads run one at a time under a
//! lock of that actor's, and each lands as one synced write batch: a claim
//! either deletes its KeyPackages and returns them, or changes nothing, and
//! a crash between the batch and the answer loses the answer, never the
//! one-time property. Claims on different actors run in parallel and share
//! their WAL syncs (RocksDB's group commit). `init_key` reservations are
//! global, so uploads also take one directory-wide lock.
//!
//! Keys (each name part length-prefixed, so no name can run into another):
//! - `D actor device` → (nothing): the actor's devices;
//! - `K actor device suite seq` → `not_after || KeyPackage`: regular ones,
//!   oldest first;
//! - `L actor device suite` → `used || not_after || KeyPackage`: last resort;
//! - `I init_key_hash` → `not_after`: reservations.
//!
//! KeyPackages are public data: they are not sealed like the store's
//! records, and nothing here needs erasing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use super::backend::{Backend, Claimed, Entry, LastResort, Stock, Wanted};
use super::keypackage::KeyPackage;
use super::DirectoryError;

const DEVICE: u8 = b'D';
const REGULAR: u8 = b'K';
const LAST_RESORT: u8 = b'L';
const INIT_KEY: u8 = b'I';
/// A RocksDB key and its value.
type KeyValue = (Box<[u8]>, Box<[u8]>);
/// A regular KeyPackage's key and the KeyPackage.
type Found = (Box<[u8]>, Vec<u8>);
/// Lock stripes for actors: claims on different actors rarely wait.
const STRIPES: usize = 64;

/// The directory on an embedded RocksDB (see the module docs).
pub struct Embedded {
    db: DB,
    stripes: Vec<Mutex<()>>,
    uploads: Mutex<()>,
    sequence: AtomicU64,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").finish_non_exhaustive()
    }
}

fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `tag || len(part) || part || ...`
fn key(tag: u8, parts: &[&[u8]]) -> Result<Vec<u8>, DirectoryError> {
    let mut out = vec![tag];
    for part in parts {
        let len = u16::try_from(part.len()).map_err(|_| DirectoryError::NameTooLong)?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
    Ok(out)
}

fn suite_part(suite: u16) -> [u8; 2] {
    suite.to_be_bytes()
}

fn read_u64(bytes: &[u8]) -> Result<u64, DirectoryError> {
    bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or(DirectoryError::Corrupted("short directory record"))
}

impl Embedded {
    /// Opens (or creates) the directory database in `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Embedded, DirectoryError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        let db = DB::open(&options, path.as_ref())?;
        Ok(Embedded {
            db,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            uploads: Mutex::new(()),
            sequence: AtomicU64::new(0),
        })
    }

    fn stripe_of(actor: &str) -> usize {
        // FNV-1a: it only spreads actors over stripes.
        let hash = actor.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        (hash % STRIPES as u64) as usize
    }

    fn stripe(&self, actor: &str) -> MutexGuard<'_, ()> {
        lock(&self.stripes[Self::stripe_of(actor)])
    }

    /// The stripes of `actors`, locked in index order (so two callers never
    /// wait on each other in a cycle).
    fn stripes_of<'a>(&self, actors: impl Iterator<Item = &'a str>) -> Vec<MutexGuard<'_, ()>> {
        let mut indices: Vec<usize> = actors.map(Self::stripe_of).collect();
        indices.sort_unstable();
        indices.dedup();
        indices
            .into_iter()
            .map(|i| lock(&self.stripes[i]))
            .collect()
    }

    /// A sequence number later than every earlier one in this process and,
    /// as it follows the clock, than those of earlier runs.
    fn next_sequence(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut current = self.sequence.load(Ordering::Relaxed);
        loop {
            let next = now.max(current + 1);
            match self.sequence.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => current = seen,
            }
        }
    }

    /// Lands `batch` synced; an empty one (a claim that found nothing)
    /// costs no sync.
    fn write(&self, batch: WriteBatch) -> Result<(), DirectoryError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        Ok(self.db.write_opt(batch, &options)?)
    }

    /// Every (key, value) under `prefix`.
    fn scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, DirectoryError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(prefix, Direction::Forward))
        {
            let (key, value) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key, value));
        }
        Ok(out)
    }

    /// The devices of `actor`, from their `D` keys.
    fn devices(&self, actor: &str) -> Result<Vec<String>, DirectoryError> {
        let prefix = key(DEVICE, &[actor.as_bytes()])?;
        self.scan(&prefix)?
            .into_iter()
            .map(|(key, _)| {
                let rest = &key[prefix.len()..];
                let name = rest
                    .get(2..)
                    .ok_or(DirectoryError::Corrupted("short device key"))?;
                String::from_utf8(name.to_vec())
                    .map_err(|_| DirectoryError::Corrupted("device name is not UTF-8"))
            })
            .collect()
    }

    /// The oldest regular KeyPackage of a device in a suite whose lifetime
    /// has not lapsed at `now`: its key and the KeyPackage. Lapsed ones are
    /// skipped, and left to [`Backend::purge_expired`].
    fn first_regular(
        &self,
        actor: &str,
        device: &str,
        suite: u16,
        wanted: Wanted<'_>,
        now: u64,
    ) -> Result<Option<Found>, DirectoryError> {
        let prefix = key(
            REGULAR,
            &[actor.as_bytes(), device.as_bytes(), &suite_part(suite)],
        )?;
        for item in self
            .db
            .iterator(IteratorMode::From(&prefix, Direction::Forward))
        {
            let (key, value) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            if read_u64(&value)? > now && allowed(&value[8..], wanted)? {
                return Ok(Some((key, value[8..].to_vec())));
            }
        }
        Ok(None)
    }
}

impl Backend for Embedded {
    fn insert(&self, entries: &[Entry]) -> Result<Vec<bool>, DirectoryError> {
        let _uploads = lock(&self.uploads);
        let mut stored = Vec::with_capacity(entries.len());
        let mut batch = WriteBatch::default();
        let mut reserved_here = std::collections::HashSet::new();
        for entry in entries {
            let reservation = key(INIT_KEY, &[&entry.init_key_hash])?;
            let taken = !reserved_here.insert(entry.init_key_hash)
                || self.db.get_pinned(&reservation)?.is_some();
            stored.push(!taken);
            if taken {
                continue;
            }
            let (actor, device) = (entry.actor.as_bytes(), entry.device.as_bytes());
            batch.put(&reservation, entry.not_after.to_be_bytes());
            batch.put(key(DEVICE, &[actor, device])?, []);
            let value = [&entry.not_after.to_be_bytes()[..], &entry.key_package].concat();
            if entry.last_resort {
                let value = [&[0u8][..], &value].concat();
                batch.put(
                    key(LAST_RESORT, &[actor, device, &suite_part(entry.suite)])?,
                    value,
                );
            } else {
                let sequence = self.next_sequence().to_be_bytes();
                batch.put(
                    key(
                        REGULAR,
                        &[actor, device, &suite_part(entry.suite), &sequence],
                    )?,
                    value,
                );
            }
        }
        // No claim of these actors runs between its read of a last resort
        // and its write of the "used" mark, which would bring back a
        // replaced one.
        let _actors = self.stripes_of(entries.iter().map(|e| e.actor.as_str()));
        self.write(batch)?;
        Ok(stored)
    }

    fn claim(
        &self,
        actor: &str,
        wanted: Wanted<'_>,
        now: u64,
    ) -> Result<Vec<Claimed>, DirectoryError> {
        let suites = wanted.suites;
        let _actor = self.stripe(actor);
        let mut batch = WriteBatch::default();
        let mut claimed = Vec::new();
        for device in self.devices(actor)? {
            let mut found = None;
            for &suite in suites {
                if let Some((key, key_package)) =
                    self.first_regular(actor, &device, suite, wanted, now)?
                {
                    batch.delete(key);
                    found = Some(Claimed {
                        device: device.clone(),
                        suite,
                        key_package,
                        last_resort: false,
                    });
                    break;
                }
            }
            if found.is_none() {
                for &suite in suites {
                    let name = key(
                        LAST_RESORT,
                        &[actor.as_bytes(), device.as_bytes(), &suite_part(suite)],
                    )?;
                    let Some(value) = self.db.get(&name)? else {
                        continue;
                    };
                    let not_after = read_u64(value.get(1..).unwrap_or(&[]))?;
                    if not_after <= now || !allowed(&value[9..], wanted)? {
                        continue;
                    }
                    if value[0] == 0 {
                        let mut used = value.clone();
                        used[0] = 1;
                        batch.put(&name, used);
                    }
                    found = Some(Claimed {
                        device: device.clone(),
                        suite,
                        key_package: value[9..].to_vec(),
                        last_resort: true,
                    });
                    break;
                }
            }
            claimed.extend(found);
        }
        self.write(batch)?;
        Ok(claimed)
    }

    fn stock(&self, actor: &str, now: u64) -> Result<Vec<Stock>, DirectoryError> {
        let mut out: Vec<Stock> = Vec::new();
        for device in self.devices(actor)? {
            let base = [actor.as_bytes(), device.as_bytes()];
            let mut suites: BTreeMap<u16, Stock> = BTreeMap::new();
            let prefix = key(REGULAR, &base)?;
            for (key, value) in self.scan(&prefix)? {
                let stock = stock_entry(&mut suites, &device, suite_of(&key[prefix.len()..])?);
                if read_u64(&value)? > now {
                    stock.regular += 1;
                }
            }
            let prefix = key(LAST_RESORT, &base)?;
            for (key, value) in self.scan(&prefix)? {
                let stock = stock_entry(&mut suites, &device, suite_of(&key[prefix.len()..])?);
                if read_u64(value.get(1..).unwrap_or(&[]))? > now {
                    stock.last_resort = if value[0] == 0 {
                        LastResort::Fresh
                    } else {
                        LastResort::Used
                    };
                }
            }
            out.extend(suites.into_values());
        }
        Ok(out)
    }

    fn has_actor(&self, actor: &str) -> Result<bool, DirectoryError> {
        Ok(!self.devices(actor)?.is_empty())
    }

    fn purge_expired(&self, now: u64) -> Result<usize, DirectoryError> {
        let _uploads = lock(&self.uploads);
        let _all = lock_all(&self.stripes);
        let mut batch = WriteBatch::default();
        let mut purged = 0;
        for (tag, offset) in [(REGULAR, 0), (LAST_RESORT, 1)] {
            for (key, value) in self.scan(&[tag])? {
                if read_u64(value.get(offset..).unwrap_or(&[]))? <= now {
                    batch.delete(key);
                    purged += 1;
                }
            }
        }
        for (key, value) in self.scan(&[INIT_KEY])? {
            if read_u64(&value)? <= now {
                batch.delete(key);
            }
        }
        self.write(batch)?;
        Ok(purged)
    }

    fn remove_device(&self, actor: &str, device: &str) -> Result<usize, DirectoryError> {
        let _actor = self.stripe(actor);
        let base = [actor.as_bytes(), device.as_bytes()];
        let mut batch = WriteBatch::default();
        let mut removed = 0;
        for tag in [REGULAR, LAST_RESORT] {
            for (key, _) in self.scan(&key(tag, &base)?)? {
                batch.delete(key);
                removed += 1;
            }
        }
        batch.delete(key(DEVICE, &base)?);
        self.write(batch)?;
        Ok(removed)
    }

    fn remove_actor(&self, actor: &str) -> Result<usize, DirectoryError> {
        let mut removed = 0;
        for device in self.devices(actor)? {
            removed += self.remove_device(actor, &device)?;
        }
        Ok(removed)
    }
}

/// Whether `wanted` allows the stored KeyPackage (parsed only when it
/// filters on extensions).
fn allowed(key_package: &[u8], wanted: Wanted<'_>) -> Result<bool, DirectoryError> {
    if wanted.extensions.is_none() {
        return Ok(true);
    }
    let parsed = KeyPackage::parse(key_package)
        .map_err(|_| DirectoryError::Corrupted("stored KeyPackage does not parse"))?;
    Ok(wanted.allows(&parsed.extension_types()))
}

/// The suite in what follows a device's prefix in a `K` or `L` key.
fn suite_of(rest: &[u8]) -> Result<u16, DirectoryError> {
    match rest {
        [0, 2, hi, lo, ..] => Ok(u16::from_be_bytes([*hi, *lo])),
        _ => Err(DirectoryError::Corrupted("key without a suite")),
    }
}

fn stock_entry<'a>(
    suites: &'a mut BTreeMap<u16, Stock>,
    device: &str,
    suite: u16,
) -> &'a mut Stock {
    suites.entry(suite).or_insert_with(|| Stock {
        device: device.to_string(),
        suite,
        regular: 0,
        last_resort: LastResort::Missing,
    })
}

fn lock_all(stripes: &[Mutex<()>]) -> Vec<MutexGuard<'_, ()>> {
    stripes.iter().map(lock).collect()
}
