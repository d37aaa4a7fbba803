//! The key-slot file: the only place the keys of secret records live, and
//! the only file the store erases by overwriting in place.
//!
//! Layout: a 4096-byte header (magic, format version, the store's naming
//! and value keys), then slots of 128 bytes. A slot holds two 64-byte
//! halves, each `generation (u64 LE) || key (32) || check (8) || zero (16)`;
//! an all-zero half is empty. A record of generation `g` is sealed under the
//! half holding `g`. Replacing it writes generation `g + 1` into the other
//! half first and erases the old half only after the record is replaced,
//! so a crash at any point leaves the key of whichever record RocksDB holds;
//! opening the store erases every half no record refers to.
//!
//! Halves are 64-byte aligned, so a 512-byte sector never splits one; the
//! check detects a torn or garbage half, which is then treated as empty.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::StoreError;
use crate::Rand;

const MAGIC: [u8; 8] = *b"polymls\0";
/// The store format this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: u64 = 4096;
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

    fn encode(&self, slot: SlotId) -> Zeroizing<[u8; HALF_LEN]> {
        let mut out = Zeroizing::new([0u8; HALF_LEN]);
        if !self.is_empty() {
            out[..8].copy_from_slice(&self.generation.to_le_bytes());
            out[8..40].copy_from_slice(&self.key);
            out[40..48].copy_from_slice(&Self::check(slot, self.generation, &self.key));
        }
        out
    }

    fn decode(slot: SlotId, bytes: &[u8]) -> Half {
        let generation = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let key: [u8; 32] = bytes[8..40].try_into().expect("32 bytes");
        if generation == 0 || bytes[40..48] != Self::check(slot, generation, &key) {
            return Half::default();
        }
        Half { generation, key }
    }
}

/// The store-wide keys from the header.
pub struct HeaderKeys {
    /// Keys the HMAC that turns group ids and other key parts into record names.
    pub naming: Zeroizing<[u8; 32]>,
    /// Seals public records (which still carry group ids and member names).
    pub value: Zeroizing<[u8; 32]>,
}

/// The open key-slot file and its contents in memory.
pub struct SlotFile {
    file: File,
    slots: Vec<[Half; 2]>,
    free: Vec<SlotId>,
    sync: bool,
    /// Whether a write since the last sync still waits for one: a commit
    /// that stages and erases no key (every public write) syncs nothing.
    unsynced: bool,
}

impl SlotFile {
    /// Opens the file at `path`, creating it with fresh store keys if it does
    /// not exist.
    pub fn open(
        path: &Path,
        rand: &Rand,
        sync: bool,
    ) -> Result<(SlotFile, HeaderKeys), StoreError> {
        let created = !path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let keys = if created {
            let mut header = Zeroizing::new([0u8; HEADER_LEN as usize]);
            header[..8].copy_from_slice(&MAGIC);
            header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
            rand.fill(&mut header[16..80]);
            file.write_all_at(header.as_ref(), 0)?;
            file.sync_all()?;
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
            Self::header_keys(header.as_ref())
        } else {
            let mut header = Zeroizing::new([0u8; HEADER_LEN as usize]);
            file.read_exact_at(header.as_mut(), 0)
                .map_err(|_| StoreError::NotAStore)?;
            if header[..8] != MAGIC {
                return Err(StoreError::NotAStore);
            }
            let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
            if version != FORMAT_VERSION {
                return Err(StoreError::UnknownFormat { found: version });
            }
            Self::header_keys(header.as_ref())
        };

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
                    Half::decode(slot, &slot_bytes[..HALF_LEN]),
                    Half::decode(slot, &slot_bytes[HALF_LEN..]),
                ]
            })
            .collect();
        let free = (0..count as SlotId)
            .rev()
            .filter(|&s| slots[s as usize].iter().all(Half::is_empty))
            .collect();
        Ok((
            SlotFile {
                file,
                slots,
                free,
                sync,
                unsynced: false,
            },
            keys,
        ))
    }

    fn header_keys(header: &[u8]) -> HeaderKeys {
        let mut naming = Zeroizing::new([0u8; 32]);
        let mut value = Zeroizing::new([0u8; 32]);
        naming.copy_from_slice(&header[16..48]);
        value.copy_from_slice(&header[48..80]);
        HeaderKeys { naming, value }
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
        self.file
            .write_all_at(new.encode(slot).as_ref(), Self::offset(slot, half))?;
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
