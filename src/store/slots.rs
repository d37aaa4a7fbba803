//! The key-slot file: the only place the keys of secret records live, and
//! the only file the store erases by overwriting in place.
//!
//! Layout: a 4096-byte header, then slots of 128 bytes. A slot holds two
//! 64-byte halves, each `generation (u64 LE) || key (32) || check (8) ||
//! nonce (16)`; an all-zero half is empty. A record of generation `g` in
//! slot `s` is sealed under the half of `s` holding `g`.
//!
//! Keys are written ahead: the file keeps *spare* keys (generation 1 in the
//! first half of a free slot), synced before any record uses them. A commit
//! seals its secret records under spares, lands them in RocksDB (one sync),
//! then erases the slots of the records they replace and writes new spares
//! (the second sync). A crash at any point leaves the key of whichever
//! record RocksDB holds; opening the store erases every half no record
//! refers to, spares included, and writes fresh ones. (Stores written by
//! polymls 0.1.0 also hold generations above 1, in either half: they are
//! read the same way.)
//!
//! A spare is a key for a record not yet written: someone who copies the
//! key-slot file at one moment and RocksDB's files at a later one can open
//! the records sealed under the spares of the first copy. Forward secrecy
//! (what is superseded before a copy stays closed) does not depend on them.
//!
//! Two header formats:
//! - version 1, *clear*: magic, version, then the store's naming and value
//!   keys; halves hold their keys as they are (nonce zero), the check is a
//!   SHA-256 of slot, generation and key;
//! - version 2, *sealed under an application key*: magic, version, a nonce
//!   and AES-256-GCM(application key) of the naming key, the value key and a
//!   file key; each half's key is masked with HMAC-SHA256(file key, slot,
//!   generation, nonce) under a fresh nonce, and its check is an HMAC under
//!   the file key. Without the application key the file reveals no key.
//!
//! Halves are 64-byte aligned, so a 512-byte sector never splits one; the
//! check detects a torn or garbage half, which is then treated as empty.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::{ApplicationKey, StoreError};
use crate::crypto::aead::Aead;
use crate::crypto::hash::Hash;
use crate::Rand;

const MAGIC: [u8; 8] = *b"polymls\0";
/// The format of a store whose key-slot file is in clear.
pub const FORMAT_VERSION: u32 = 1;
/// The format of a store whose key-slot file is sealed under an
/// application key.
pub const SEALED_FORMAT_VERSION: u32 = 2;
const HEADER_LEN: u64 = 4096;
const HEADER_NONCE: std::ops::Range<usize> = 16..28;
/// Naming key, value key and file key, sealed: 96 bytes and a 16-byte tag.
const HEADER_SEALED: std::ops::Range<usize> = 28..140;
const HALF_LEN: usize = 64;
const SLOT_LEN: u64 = 2 * HALF_LEN as u64;
/// The fewest spare keys the file keeps ready.
const MIN_SPARES: usize = 16;

/// A slot number.
pub type SlotId = u32;

/// One half of a slot: a generation and its key. Zeroized on drop.
#[derive(Clone, Default, Zeroize)]
#[zeroize(drop)]
pub struct Half {
    /// 0 for an empty half.
    pub generation: u64,
    /// The record key of this generation.
    pub key: [u8; 32],
}

impl Half {
    fn is_empty(&self) -> bool {
        self.generation == 0
    }

    fn check(slot: SlotId, generation: u64, key: &[u8; 32]) -> [u8; 8] {
        let digest = Sha256::new()
            .chain_update(b"polymls slot")
            .chain_update(slot.to_le_bytes())
            .chain_update(generation.to_le_bytes())
            .chain_update(key)
            .finalize();
        digest[..8].try_into().expect("8 of 32 bytes")
    }

    /// The mask of a sealed half's key, and its check over the masked key.
    fn mask(file_key: &[u8; 32], slot: SlotId, generation: u64, nonce: &[u8]) -> [u8; 32] {
        let pad = Hash::Sha256.hmac(
            file_key,
            &[
                b"polymls half mask",
                &slot.to_le_bytes(),
                &generation.to_le_bytes(),
                nonce,
            ],
        );
        pad.as_bytes().try_into().expect("32-byte tag")
    }

    fn sealed_check(
        file_key: &[u8; 32],
        slot: SlotId,
        generation: u64,
        masked: &[u8],
        nonce: &[u8],
    ) -> [u8; 8] {
        let tag = Hash::Sha256.hmac(
            file_key,
            &[
                b"polymls half check",
                &slot.to_le_bytes(),
                &generation.to_le_bytes(),
                masked,
                nonce,
            ],
        );
        tag.as_bytes()[..8].try_into().expect("8 of 32 bytes")
    }

    fn encode(
        &self,
        slot: SlotId,
        file_key: Option<&[u8; 32]>,
        rand: &Rand,
    ) -> Zeroizing<[u8; HALF_LEN]> {
        let mut out = Zeroizing::new([0u8; HALF_LEN]);
        if self.is_empty() {
            return out;
        }
        out[..8].copy_from_slice(&self.generation.to_le_bytes());
        match file_key {
            None => {
                out[8..40].copy_from_slice(&self.key);
                out[40..48].copy_from_slice(&Self::check(slot, self.generation, &self.key));
            }
            Some(file_key) => {
                rand.fill(&mut out[48..64]);
                let mut mask =
                    Zeroizing::new(Self::mask(file_key, slot, self.generation, &out[48..64]));
                for (masked, (key, pad)) in
                    out[8..40].iter_mut().zip(self.key.iter().zip(mask.iter()))
                {
                    *masked = key ^ pad;
                }
                mask.zeroize();
                let check =
                    Self::sealed_check(file_key, slot, self.generation, &out[8..40], &out[48..64]);
                out[40..48].copy_from_slice(&check);
            }
        }
        out
    }

    fn decode(slot: SlotId, bytes: &[u8], file_key: Option<&[u8; 32]>) -> Half {
        let generation = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        if generation == 0 {
            return Half::default();
        }
        let mut key: [u8; 32] = bytes[8..40].try_into().expect("32 bytes");
        let valid = match file_key {
            None => bytes[40..48] == Self::check(slot, generation, &key),
            Some(file_key) => {
                let nonce = &bytes[48..64];
                let valid =
                    bytes[40..48] == Self::sealed_check(file_key, slot, generation, &key, nonce);
                let mask = Zeroizing::new(Self::mask(file_key, slot, generation, nonce));
                for (key, pad) in key.iter_mut().zip(mask.iter()) {
                    *key ^= pad;
                }
                valid
            }
        };
        let half = Half { generation, key };
        key.zeroize();
        if valid {
            half
        } else {
            Half::default()
        }
    }
}

/// The store-wide keys from the header.
pub struct HeaderKeys {
    /// Keys the HMAC that turns group ids and other key parts into record names.
    pub naming: Zeroizing<[u8; 32]>,
    /// Seals public records (which still carry group ids and member names).
    pub value: Zeroizing<[u8; 32]>,
}

impl HeaderKeys {
    fn fresh(rand: &Rand) -> HeaderKeys {
        HeaderKeys {
            naming: fresh_key(rand),
            value: fresh_key(rand),
        }
    }

    /// Naming key then value key.
    fn from_bytes(bytes: &[u8]) -> HeaderKeys {
        let mut naming = Zeroizing::new([0u8; 32]);
        let mut value = Zeroizing::new([0u8; 32]);
        naming.copy_from_slice(&bytes[..32]);
        value.copy_from_slice(&bytes[32..64]);
        HeaderKeys { naming, value }
    }
}

/// The key masking a sealed file's halves.
type FileKey = Zeroizing<[u8; 32]>;

fn fresh_key(rand: &Rand) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand.fill(key.as_mut());
    key
}

/// Where a rekey writes the file that replaces the key-slot file.
fn rekey_path(path: &Path) -> PathBuf {
    path.with_extension("rekey")
}

/// Creates `path` with `contents`, durably (file and directory entry).
fn write_new_file(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all_at(contents, 0)?;
    file.sync_all()?;
    sync_parent(path)
}

fn sync_parent(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Overwrites `path` with zeros, syncs and removes it, if it exists.
fn wipe_file(path: &Path) -> Result<(), StoreError> {
    let file = match OpenOptions::new().write(true).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    let len = file.metadata()?.len() as usize;
    file.write_all_at(&vec![0u8; len], 0)?;
    file.sync_data()?;
    std::fs::remove_file(path)?;
    sync_parent(path)
}

/// The open key-slot file and its contents in memory.
pub struct SlotFile {
    path: PathBuf,
    file: File,
    /// The key masking the halves when the file is sealed.
    file_key: Option<FileKey>,
    slots: Vec<[Half; 2]>,
    free: Vec<SlotId>,
    sync: bool,
    /// Whether a write since the last sync still waits for one: a commit
    /// that stages and erases no key (every public write) syncs nothing.
    unsynced: bool,
    /// The file's slots as they are (or are about to be) on disk: halves
    /// are written here and reach the file together, in one write of the
    /// range that changed, at the next [`Self::sync`].
    image: Zeroizing<Vec<u8>>,
    /// The range of `image` not yet written to the file.
    dirty: Option<std::ops::Range<usize>>,
    /// Slots holding a durable spare key in generation 1 of half 0, which
    /// no record uses yet.
    spares: Vec<SlotId>,
    /// Spare keys written since the last sync.
    staged_spares: Vec<SlotId>,
    /// The most secret records one commit has sealed.
    largest_commit: usize,
    /// Slots of superseded records whose erasure an erasure window defers.
    awaiting_erasure: Vec<SlotId>,
    /// When `awaiting_erasure` must be erased.
    deadline: Option<Instant>,
    /// Syncs of the file so far.
    syncs: u64,
}

impl SlotFile {
    /// Opens the file at `path`, creating it with fresh store keys (sealed
    /// under `application_key`, if given) if it does not exist.
    ///
    /// An existing file is checked before anything is written: a sealed
    /// file needs its application key, a clear one must not be given one.
    pub fn open(
        path: &Path,
        rand: &Rand,
        sync: bool,
        application_key: Option<&ApplicationKey>,
    ) -> Result<(SlotFile, HeaderKeys), StoreError> {
        let created = !path.exists();
        if created {
            let keys = HeaderKeys::fresh(rand);
            let file_key = application_key.map(|_| fresh_key(rand));
            let header = Self::header(&keys, application_key, file_key.as_ref(), rand)?;
            write_new_file(path, header.as_ref())?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(false)
            .open(path)?;
        let mut header = Zeroizing::new([0u8; HEADER_LEN as usize]);
        file.read_exact_at(header.as_mut(), 0)
            .map_err(|_| StoreError::NotAStore)?;
        let (keys, file_key) = Self::read_header(header.as_ref(), application_key)?;
        // A rekey that a crash cut short before its rename left its new
        // file beside this one: it holds keys, so it is wiped, not just
        // unlinked.
        wipe_file(&rekey_path(path))?;

        // A slot whose second half was never written ends the file half-way
        // through it: read the tail zero-padded.
        let mut body = Zeroizing::new(Vec::new());
        let mut reader = &file;
        std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(HEADER_LEN))?;
        std::io::Read::read_to_end(&mut reader, &mut body)?;
        let count = body.len().div_ceil(SLOT_LEN as usize);
        body.resize(count * SLOT_LEN as usize, 0);
        let slots: Vec<[Half; 2]> = body
            .chunks_exact(SLOT_LEN as usize)
            .zip(0..)
            .map(|(slot_bytes, slot)| {
                [
                    Half::decode(slot, &slot_bytes[..HALF_LEN], file_key.as_deref()),
                    Half::decode(slot, &slot_bytes[HALF_LEN..], file_key.as_deref()),
                ]
            })
            .collect();
        let free = (0..count as SlotId)
            .rev()
            .filter(|&s| slots[s as usize].iter().all(Half::is_empty))
            .collect();
        Ok((
            SlotFile {
                path: path.to_path_buf(),
                file,
                file_key,
                slots,
                free,
                sync,
                unsynced: false,
                image: body,
                dirty: None,
                spares: Vec::new(),
                staged_spares: Vec::new(),
                largest_commit: 0,
                awaiting_erasure: Vec::new(),
                deadline: None,
                syncs: 0,
            },
            keys,
        ))
    }

    /// The header for `keys`: clear, or sealed under `application_key`
    /// together with `file_key`.
    fn header(
        keys: &HeaderKeys,
        application_key: Option<&ApplicationKey>,
        file_key: Option<&FileKey>,
        rand: &Rand,
    ) -> Result<Zeroizing<[u8; HEADER_LEN as usize]>, StoreError> {
        let mut header = Zeroizing::new([0u8; HEADER_LEN as usize]);
        header[..8].copy_from_slice(&MAGIC);
        match (application_key, file_key) {
            (Some(application_key), Some(file_key)) => {
                header[8..12].copy_from_slice(&SEALED_FORMAT_VERSION.to_le_bytes());
                rand.fill(&mut header[HEADER_NONCE]);
                let mut plaintext = Zeroizing::new([0u8; 96]);
                plaintext[..32].copy_from_slice(keys.naming.as_ref());
                plaintext[32..64].copy_from_slice(keys.value.as_ref());
                plaintext[64..].copy_from_slice(file_key.as_ref());
                let sealed = Aead::Aes256Gcm
                    .seal(
                        application_key.as_bytes(),
                        &header[HEADER_NONCE],
                        &header[..12],
                        plaintext.as_ref(),
                    )
                    .map_err(|_| StoreError::Corrupted("sealing the key-slot header failed"))?;
                header[HEADER_SEALED].copy_from_slice(&sealed);
            }
            _ => {
                header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
                header[16..48].copy_from_slice(keys.naming.as_ref());
                header[48..80].copy_from_slice(keys.value.as_ref());
            }
        }
        Ok(header)
    }

    /// The store keys (and file key) of a header, checked against the
    /// application key the caller has or has not given.
    fn read_header(
        header: &[u8],
        application_key: Option<&ApplicationKey>,
    ) -> Result<(HeaderKeys, Option<FileKey>), StoreError> {
        if header[..8] != MAGIC {
            return Err(StoreError::NotAStore);
        }
        let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        match (version, application_key) {
            (FORMAT_VERSION, None) => Ok((HeaderKeys::from_bytes(&header[16..80]), None)),
            (FORMAT_VERSION, Some(_)) => Err(StoreError::ApplicationKeyUnexpected),
            (SEALED_FORMAT_VERSION, None) => Err(StoreError::ApplicationKeyMissing),
            (SEALED_FORMAT_VERSION, Some(application_key)) => {
                let plaintext = Zeroizing::new(
                    Aead::Aes256Gcm
                        .open(
                            application_key.as_bytes(),
                            &header[HEADER_NONCE],
                            &header[..12],
                            &header[HEADER_SEALED],
                        )
                        .map_err(|_| StoreError::ApplicationKeyWrong)?,
                );
                let mut file_key = Zeroizing::new([0u8; 32]);
                file_key.copy_from_slice(&plaintext[64..96]);
                Ok((HeaderKeys::from_bytes(&plaintext[..64]), Some(file_key)))
            }
            (found, _) => Err(StoreError::UnknownFormat { found }),
        }
    }

    /// Replaces the file by one sealed under `application_key` (or in clear
    /// for `None`) with a fresh file key, atomically: the new file is
    /// written and synced beside the old one and renamed over it; then the
    /// old file, still open, is overwritten with zeros and synced, so
    /// neither the old application key nor the old file key opens anything
    /// left in it. A crash before the rename keeps the old file (the new one
    /// is wiped at the next open); a crash between the rename and the wipe
    /// leaves the old file's blocks unlinked but not overwritten.
    pub fn rekey(
        &mut self,
        keys: &HeaderKeys,
        application_key: Option<&ApplicationKey>,
        rand: &Rand,
    ) -> Result<(), StoreError> {
        let file_key = application_key.map(|_| fresh_key(rand));
        let header = Self::header(keys, application_key, file_key.as_ref(), rand)?;
        let mut contents = Zeroizing::new(header.to_vec());
        contents.resize(
            HEADER_LEN as usize + self.slots.len() * SLOT_LEN as usize,
            0,
        );
        for (slot, halves) in self.slots.iter().enumerate() {
            for (index, half) in halves.iter().enumerate() {
                let at = Self::offset(slot as SlotId, index) as usize;
                contents[at..at + HALF_LEN].copy_from_slice(
                    half.encode(slot as SlotId, file_key.as_deref(), rand)
                        .as_ref(),
                );
            }
        }
        let next = rekey_path(&self.path);
        write_new_file(&next, &contents)?;
        std::fs::rename(&next, &self.path)?;
        sync_parent(&self.path)?;
        let old_len = self.file.metadata()?.len() as usize;
        self.file.write_all_at(&vec![0u8; old_len], 0)?;
        self.file.sync_data()?;
        self.file = OpenOptions::new().read(true).write(true).open(&self.path)?;
        self.file_key = file_key;
        self.image = Zeroizing::new(contents[HEADER_LEN as usize..].to_vec());
        self.dirty = None;
        Ok(())
    }

    fn offset(slot: SlotId, half: usize) -> u64 {
        HEADER_LEN + slot as u64 * SLOT_LEN + (half * HALF_LEN) as u64
    }

    /// The key of `generation` in `slot`, if that half exists.
    pub fn key(&self, slot: SlotId, generation: u64) -> Option<&[u8; 32]> {
        let halves = self.slots.get(slot as usize)?;
        halves
            .iter()
            .find(|h| !h.is_empty() && h.generation == generation)
            .map(|h| &h.key)
    }

    /// Writes a fresh key into generation 1 of a free (or new) slot: a spare
    /// key, usable once the next [`Self::sync`] has made it durable.
    fn stage_spare(&mut self, rand: &Rand) -> Result<(), StoreError> {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push([Half::default(), Half::default()]);
                (self.slots.len() - 1) as SlotId
            }
        };
        let mut new = Half {
            generation: 1,
            key: [0; 32],
        };
        rand.fill(&mut new.key);
        let encoded = new.encode(slot, self.file_key.as_deref(), rand);
        self.write_half(slot, 0, &encoded);
        self.slots[slot as usize][0] = new;
        self.staged_spares.push(slot);
        Ok(())
    }

    /// Writes spare keys until there are `target`, durable or not.
    fn refill(&mut self, target: usize, rand: &Rand) -> Result<(), StoreError> {
        while self.spares.len() + self.staged_spares.len() < target {
            self.stage_spare(rand)?;
        }
        Ok(())
    }

    /// How many spare keys the file keeps ready: enough for the largest
    /// commit seen, several times over, so that a commit rarely waits for
    /// a sync of its own (see the vault's commit).
    fn spare_target(&self) -> usize {
        MIN_SPARES.max(4 * self.largest_commit)
    }

    /// Makes sure `count` durable spare keys are ready for a commit. When
    /// too few are, it first erases what waits for erasure, writes spares
    /// up to the target and syncs: a commit larger than any before pays one
    /// extra sync.
    pub fn reserve(&mut self, count: usize, rand: &Rand) -> Result<(), StoreError> {
        self.largest_commit = self.largest_commit.max(count);
        if self.spares.len() >= count {
            return Ok(());
        }
        self.erase_awaiting()?;
        let target = self.spare_target().max(count);
        self.refill(target, rand)?;
        self.sync()
    }

    /// Takes a durable spare key (after [`Self::reserve`]): the slot, its
    /// generation, and the key.
    pub fn take_spare(&mut self) -> Result<(SlotId, u64, Zeroizing<[u8; 32]>), StoreError> {
        let slot = self
            .spares
            .pop()
            .ok_or(StoreError::Corrupted("no spare key reserved"))?;
        let half = &self.slots[slot as usize][0];
        Ok((slot, half.generation, Zeroizing::new(half.key)))
    }

    /// Erases every half of the `retired` slots now and writes spares for
    /// the next commits; [`Self::sync`] makes both durable together.
    pub fn retire(&mut self, retired: &[SlotId], rand: &Rand) -> Result<(), StoreError> {
        for &slot in retired {
            self.erase(slot, None)?;
        }
        self.refill(self.spare_target(), rand)
    }

    /// Keeps the `retired` slots until [`Self::erase_awaiting`] (at the
    /// latest at `deadline`); returns whether this started the wait.
    pub fn defer(&mut self, retired: &[SlotId], deadline: Instant) -> bool {
        self.awaiting_erasure.extend_from_slice(retired);
        let started = self.deadline.is_none() && !self.awaiting_erasure.is_empty();
        if started {
            self.deadline = Some(deadline);
        }
        started
    }

    /// Erases the slots awaiting erasure (not synced).
    fn erase_awaiting(&mut self) -> Result<(), StoreError> {
        // Cleared first, so that a failure is not retried in a loop; what
        // failed stays listed for the next erasure.
        self.deadline = None;
        while let Some(&slot) = self.awaiting_erasure.last() {
            self.erase(slot, None)?;
            self.awaiting_erasure.pop();
        }
        Ok(())
    }

    /// Erases what awaits erasure, refills the spares and syncs, if
    /// anything awaits erasure.
    pub fn flush(&mut self, rand: &Rand) -> Result<(), StoreError> {
        if self.deadline.is_none() && self.awaiting_erasure.is_empty() {
            return Ok(());
        }
        self.erase_awaiting()?;
        self.refill(self.spare_target(), rand)?;
        self.sync()
    }

    /// When the slots awaiting erasure must be erased, if any await.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How many spare keys the file holds, and how many superseded keys
    /// still await erasure.
    pub fn unused(&self) -> (usize, usize) {
        (
            self.spares.len() + self.staged_spares.len(),
            self.awaiting_erasure.len(),
        )
    }

    /// Overwrites every half of `slot` except the one holding `keep` (all
    /// of them for `None`), in memory now and in the file at the next
    /// [`Self::sync`]; frees the slot if nothing is kept.
    pub fn erase(&mut self, slot: SlotId, keep: Option<u64>) -> Result<(), StoreError> {
        self.erase_where(slot, |generation| Some(generation) != keep)
    }

    fn erase_where(&mut self, slot: SlotId, erase: impl Fn(u64) -> bool) -> Result<(), StoreError> {
        let Some(halves) = self.slots.get_mut(slot as usize) else {
            return Ok(());
        };
        let mut erased = [false; 2];
        for (index, half) in halves.iter_mut().enumerate() {
            if !half.is_empty() && erase(half.generation) {
                half.zeroize();
                erased[index] = true;
            }
        }
        let empty = halves.iter().all(Half::is_empty);
        for index in (0..2).filter(|&i| erased[i]) {
            self.write_half(slot, index, &[0u8; HALF_LEN]);
        }
        if empty && !self.free.contains(&slot) {
            self.free.push(slot);
        }
        Ok(())
    }

    /// Puts `bytes` into `index` of `slot` in the image, for the next sync
    /// to write.
    fn write_half(&mut self, slot: SlotId, index: usize, bytes: &[u8; HALF_LEN]) {
        let at = (Self::offset(slot, index) - HEADER_LEN) as usize;
        if self.image.len() < at + HALF_LEN {
            self.image.resize(at + HALF_LEN, 0);
        }
        self.image[at..at + HALF_LEN].copy_from_slice(bytes);
        let range = match self.dirty.take() {
            Some(range) => range.start.min(at)..range.end.max(at + HALF_LEN),
            None => at..at + HALF_LEN,
        };
        self.dirty = Some(range);
        self.unsynced = true;
    }

    /// Writes what changed to the file, in one write, and makes it durable
    /// (the write only, when the store was opened without durability).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if let Some(range) = self.dirty.clone() {
            self.file
                .write_all_at(&self.image[range.clone()], HEADER_LEN + range.start as u64)?;
            self.dirty = None;
        }
        if self.sync && self.unsynced {
            self.file.sync_data()?;
            self.syncs += 1;
        }
        self.unsynced = false;
        self.spares.append(&mut self.staged_spares);
        Ok(())
    }

    /// How many times the file has been synced since it was opened.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Every slot number in use.
    pub fn used(&self) -> impl Iterator<Item = SlotId> + '_ {
        (0..self.slots.len() as SlotId)
            .filter(|&s| !self.slots[s as usize].iter().all(Half::is_empty))
    }
}
