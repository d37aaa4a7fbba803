//! The key-slot file: the only place the keys of secret records live, and
//! the only file the store erases by overwriting in place.
//!
//! Layout: a 4096-byte header, then slots of 128 bytes. A slot holds two
//! 64-byte halves, each `generation (u64 LE) || key (32) || check (8) ||
//! nonce (16)`; an all-zero half is empty. A record of generation `g` is
//! sealed under the half holding `g`. Replacing it writes generation `g + 1`
//! into the other half first and erases the old half only after the record
//! is replaced, so a crash at any point leaves the key of whichever record
//! RocksDB holds; opening the store erases every half no record refers to.
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

    /// Writes a fresh key for the generation after `current` of `slot` (or,
    /// with `slot` `None`, generation 1 of a newly allocated slot) into a
    /// half no record uses. Returns where it went and the key.
    pub fn stage(
        &mut self,
        slot: Option<(SlotId, u64)>,
        rand: &Rand,
    ) -> Result<(SlotId, u64, Zeroizing<[u8; 32]>), StoreError> {
        let (slot, generation, half) = match slot {
            Some((slot, current)) => {
                // The slot number comes from a stored record header.
                let halves = self
                    .slots
                    .get(slot as usize)
                    .ok_or(StoreError::Corrupted("record names a missing key slot"))?;
                let spare = usize::from(halves[0].generation == current);
                (slot, current + 1, spare)
            }
            None => {
                let slot = match self.free.pop() {
                    Some(slot) => slot,
                    None => {
                        self.slots.push([Half::default(), Half::default()]);
                        (self.slots.len() - 1) as SlotId
                    }
                };
                (slot, 1, 0)
            }
        };
        let mut key = Zeroizing::new([0u8; 32]);
        rand.fill(key.as_mut());
        let new = Half {
            generation,
            key: *key,
        };
        let encoded = new.encode(slot, self.file_key.as_deref(), rand);
        self.file
            .write_all_at(encoded.as_ref(), Self::offset(slot, half))?;
        self.unsynced = true;
        self.slots[slot as usize][half] = new;
        Ok((slot, generation, key))
    }

    /// Overwrites, on disk and in memory, every half of `slot` except the
    /// one holding `keep` (all of them for `None`); frees the slot if
    /// nothing is kept.
    pub fn erase(&mut self, slot: SlotId, keep: Option<u64>) -> Result<(), StoreError> {
        self.erase_where(slot, |generation| Some(generation) != keep)
    }

    /// Overwrites the half of `slot` holding `generation`, as [`Self::erase`].
    pub fn discard(&mut self, slot: SlotId, generation: u64) -> Result<(), StoreError> {
        self.erase_where(slot, |g| g == generation)
    }

    fn erase_where(&mut self, slot: SlotId, erase: impl Fn(u64) -> bool) -> Result<(), StoreError> {
        let Some(halves) = self.slots.get_mut(slot as usize) else {
            return Ok(());
        };
        for (index, half) in halves.iter_mut().enumerate() {
            if !half.is_empty() && erase(half.generation) {
                half.zeroize();
                self.file
                    .write_all_at(&[0u8; HALF_LEN], Self::offset(slot, index))?;
                self.unsynced = true;
            }
        }
        if halves.iter().all(Half::is_empty) && !self.free.contains(&slot) {
            self.free.push(slot);
        }
        Ok(())
    }

    /// Makes the writes so far durable (a no-op when the store was opened
    /// without durability).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if self.sync && self.unsynced {
            self.file.sync_data()?;
        }
        self.unsynced = false;
        Ok(())
    }

    /// Every slot number in use.
    pub fn used(&self) -> impl Iterator<Item = SlotId> + '_ {
        (0..self.slots.len() as SlotId)
            .filter(|&s| !self.slots[s as usize].iter().all(Half::is_empty))
    }
}
