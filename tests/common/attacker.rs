//! The attacker of the forward-secrecy promise: someone who copies a store's
//! files (or the raw disk) after the fact, knows polymls's formats, and
//! tries every key the copy holds on every record version the copy holds.
//!
//! What it takes from a copy ([`Loot`]):
//! - keys: the key-slot file's header keys (naming and value key) and the
//!   32 key bytes of every non-zero 64-byte slot half; on a raw disk, every
//!   block that looks like a key-slot header or half;
//! - record versions, old ones included: every Put in every write batch of
//!   RocksDB's WAL files (parsed: 32 KiB blocks, fragments reassembled), and
//!   every entry of every SST data block (carved: block entries are found by
//!   their structure, so no index or footer is trusted); on a raw disk, WAL
//!   blocks found at every 4 KiB boundary and SST entries carved anywhere.
//!
//! [`attack`] then tries every key on every version, as the record format's
//! two sealings allow: as the key of a secret record, and as the value key
//! a public record's key derives from.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::Path;

use polymls::store::record::{self, Sealing};

/// Record names are two 16-byte keyed hashes (see the store's adapter).
pub const NAME_LEN: usize = 32;
/// RocksDB's internal key: the name, then 8 bytes of sequence and type.
const INTERNAL_KEY_LEN: usize = NAME_LEN + 8;
const WAL_BLOCK: usize = 32 * 1024;
const WAL_HEADER: usize = 7;
const KEY_FILE_HEADER: usize = 4096;
const HALF: usize = 64;

/// One version of one record, as found in a copy.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Version {
    pub name: Vec<u8>,
    pub bytes: Vec<u8>,
}

/// What an attacker holds after copying files.
#[derive(Default)]
pub struct Loot {
    pub keys: Vec<[u8; 32]>,
    pub versions: HashSet<Version>,
    /// WAL batches parsed, WAL bytes that did not parse, SST entries carved.
    pub wal_batches: usize,
    pub wal_unparsed: usize,
    pub sst_entries: usize,
}

impl Loot {
    /// Everything in a store directory: `keys` and the RocksDB files in `db/`.
    pub fn from_store_dir(dir: &Path) -> Loot {
        let mut loot = Loot::default();
        let key_file = std::fs::read(dir.join("keys")).expect("key file");
        loot.keys_from_key_file(&key_file);
        for entry in std::fs::read_dir(dir.join("db")).expect("db dir") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read db file");
            match path.extension().and_then(|e| e.to_str()) {
                Some("log") => loot.parse_wal(&bytes),
                // Every other file (SST, MANIFEST, OPTIONS, ...) is carved:
                // nothing that holds a value is left out by its name.
                _ => loot.carve_sst_entries(&bytes),
            }
        }
        loot
    }

    /// Everything on a raw disk image: no file boundaries are known.
    pub fn from_raw_image(image: &[u8]) -> Loot {
        let mut loot = Loot::default();
        loot.carve_keys(image);
        loot.carve_wal_blocks(image);
        loot.carve_sst_entries(image);
        loot
    }

    /// Keys of the key-slot file, by its layout: the two header keys, and
    /// the key of every half that is not all zeros (whatever its check).
    pub fn keys_from_key_file(&mut self, file: &[u8]) {
        if file.len() >= 80 {
            self.add_key(&file[16..48]);
            self.add_key(&file[48..80]);
        }
        for half in file.get(KEY_FILE_HEADER..).unwrap_or(&[]).chunks(HALF) {
            if half.len() >= 40 && half.iter().any(|&b| b != 0) {
                self.add_key(&half[8..40]);
            }
        }
    }

    fn add_key(&mut self, key: &[u8]) {
        let key: [u8; 32] = key.try_into().expect("32 bytes");
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// Key-slot headers (4 KiB-aligned, by their magic) and slot halves
    /// (64-byte aligned: a small generation, a key of varied bytes, a
    /// non-zero check, 16 zero bytes) anywhere on a disk.
    fn carve_keys(&mut self, image: &[u8]) {
        for block in image.chunks(KEY_FILE_HEADER) {
            if block.starts_with(b"polymls\0") && block.len() >= 80 {
                self.add_key(&block[16..48]);
                self.add_key(&block[48..80]);
            }
            if block.iter().all(|&b| b == 0) {
                continue;
            }
            for half in block.chunks_exact(HALF) {
                let generation = u64::from_le_bytes(half[..8].try_into().expect("8"));
                let key = &half[8..40];
                if (1..1 << 24).contains(&generation)
                    && half[40..48].iter().any(|&b| b != 0)
                    && half[48..].iter().all(|&b| b == 0)
                    && key.iter().collect::<HashSet<_>>().len() >= 16
                {
                    self.add_key(key);
                }
            }
        }
    }

    /// A WAL file: 32 KiB blocks of physical records, whose fragments make
    /// up write batches.
    fn parse_wal(&mut self, file: &[u8]) {
        let mut logical = Vec::new();
        let mut offset = 0;
        while offset < file.len() {
            let block = &file[offset..(offset + WAL_BLOCK).min(file.len())];
            match wal_block_records(block) {
                Some(records) => {
                    for (kind, payload) in records {
                        self.collect_fragment(&mut logical, kind, payload);
                    }
                }
                None => self.wal_unparsed += block.len(),
            }
            offset += WAL_BLOCK;
        }
    }

    /// WAL blocks wherever a 4 KiB boundary of a disk starts one: files
    /// begin at file-system block boundaries, and WAL blocks at multiples of
    /// 32 KiB inside them. A batch that continues past its block is looked
    /// for 32 KiB further on, where a contiguous extent puts it.
    fn carve_wal_blocks(&mut self, image: &[u8]) {
        let mut covered = HashSet::new();
        for start in (0..image.len()).step_by(4096) {
            if covered.contains(&start) || image[start..].len() < WAL_HEADER {
                continue;
            }
            let mut logical = Vec::new();
            let mut offset = start;
            while offset < image.len() {
                let block = &image[offset..(offset + WAL_BLOCK).min(image.len())];
                let Some(records) = wal_block_records(block) else {
                    break;
                };
                if records.is_empty() {
                    break;
                }
                covered.insert(offset);
                for (kind, payload) in records {
                    self.collect_fragment(&mut logical, kind, payload);
                }
                offset += WAL_BLOCK;
            }
        }
    }

    fn collect_fragment(&mut self, logical: &mut Vec<u8>, kind: u8, payload: &[u8]) {
        match kind {
            FULL => {
                logical.clear();
                self.parse_batch(payload);
            }
            FIRST => {
                logical.clear();
                logical.extend_from_slice(payload);
            }
            MIDDLE => logical.extend_from_slice(payload),
            LAST => {
                logical.extend_from_slice(payload);
                let batch = std::mem::take(logical);
                self.parse_batch(&batch);
            }
            // Other record types (compression, timestamps, predecessor WAL
            // info) carry no values.
            _ => {}
        }
    }

    /// A write batch: sequence (8), count (4), then records; polymls writes
    /// only Puts and Deletes into the default column family.
    fn parse_batch(&mut self, batch: &[u8]) {
        let Some(mut rest) = batch.get(12..) else {
            self.wal_unparsed += batch.len();
            return;
        };
        while let Some((&tag, after)) = rest.split_first() {
            let parsed = match tag {
                PUT => length_prefixed(after).and_then(|(name, after)| {
                    length_prefixed(after).map(|(value, after)| {
                        self.versions.insert(Version {
                            name: name.to_vec(),
                            bytes: value.to_vec(),
                        });
                        after
                    })
                }),
                DELETE => length_prefixed(after).map(|(_, after)| after),
                _ => None,
            };
            match parsed {
                Some(after) => rest = after,
                None => {
                    self.wal_unparsed += rest.len();
                    return;
                }
            }
        }
        self.wal_batches += 1;
    }

    /// SST data-block entries anywhere in `bytes`: `shared, non_shared,
    /// value_len` (varints), the key's unshared bytes, the value. A block's
    /// first entry shares nothing; each later one follows the one before
    /// and takes its shared bytes from it. Every offset is tried as a first
    /// entry, so no block is missed whatever the index says.
    fn carve_sst_entries(&mut self, bytes: &[u8]) {
        let mut offset = 0;
        while offset + 3 < bytes.len() {
            if bytes[offset] != 0 || bytes[offset + 1] as usize != INTERNAL_KEY_LEN {
                offset += 1;
                continue;
            }
            let mut previous: Vec<u8> = Vec::new();
            let mut at = offset;
            let mut entries = 0;
            while let Some((key, value, next)) = sst_entry(bytes, at, &previous) {
                // The key's last 8 bytes: type (1 = value) and sequence.
                if key[NAME_LEN] == 1 {
                    self.versions.insert(Version {
                        name: key[..NAME_LEN].to_vec(),
                        bytes: value.to_vec(),
                    });
                }
                entries += 1;
                previous = key;
                at = next;
            }
            self.sst_entries += entries;
            offset += 1;
        }
    }
}

const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;
const DELETE: u8 = 0;
const PUT: u8 = 1;

/// The physical records of one WAL block, `None` if it does not parse as
/// one (a zero header ends the block: the rest is padding).
fn wal_block_records(block: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut records = Vec::new();
    let mut at = 0;
    while at + WAL_HEADER <= block.len() {
        let length = u16::from_le_bytes([block[at + 4], block[at + 5]]) as usize;
        let kind = block[at + 6];
        if kind == 0 && length == 0 {
            break;
        }
        // Recycled-file types carry the log number after the type: 4 more
        // header bytes (polymls does not recycle WAL files, but a copy is
        // read as RocksDB would read it).
        let recyclable = (5..=8).contains(&kind) || (kind >= 10 && kind & 1 == 1);
        let header = if recyclable {
            WAL_HEADER + 4
        } else {
            WAL_HEADER
        };
        if kind > 131 || (12..130).contains(&kind) {
            return None;
        }
        let payload = block.get(at + header..at + header + length)?;
        let kind = if (5..=8).contains(&kind) {
            kind - 4
        } else {
            kind
        };
        records.push((kind, payload));
        at += header + length;
    }
    Some(records)
}

fn varint(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut value = 0usize;
    for (index, &byte) in bytes.iter().enumerate().take(5) {
        value |= ((byte & 0x7f) as usize) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[index + 1..]));
        }
    }
    None
}

fn length_prefixed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (length, rest) = varint(bytes)?;
    (rest.len() >= length).then(|| rest.split_at(length))
}

/// The SST entry at `at`: (full internal key, value, offset of the next).
fn sst_entry<'a>(
    bytes: &'a [u8],
    at: usize,
    previous: &[u8],
) -> Option<(Vec<u8>, &'a [u8], usize)> {
    let rest = bytes.get(at..)?;
    let (shared, rest) = varint(rest)?;
    let (unshared, rest) = varint(rest)?;
    let (value_len, rest) = varint(rest)?;
    if shared > previous.len()
        || shared + unshared != INTERNAL_KEY_LEN
        || rest.len() < unshared + value_len
    {
        return None;
    }
    let mut key = previous[..shared].to_vec();
    key.extend_from_slice(&rest[..unshared]);
    let value = &rest[unshared..unshared + value_len];
    let next = bytes.len() - rest.len() + unshared + value_len;
    Some((key, value, next))
}

/// A record version some key opened.
pub struct Opened {
    pub version: Version,
    /// Whether the header says secret (under a slot key) or public (under
    /// the value key).
    pub secret: bool,
    pub plaintext: Vec<u8>,
}

/// What [`attack`] did.
pub struct Attack {
    pub opened: Vec<Opened>,
    pub attempts: usize,
}

/// Tries every key on every record version.
pub fn attack(loot: &Loot) -> Attack {
    let mut opened = Vec::new();
    let mut attempts = 0;
    for version in &loot.versions {
        let Ok(sealing) = record::sealing(&version.bytes) else {
            continue;
        };
        for key in &loot.keys {
            attempts += 1;
            let result = match sealing {
                Sealing::Secret { .. } => {
                    record::open(&version.name, &version.bytes, &[0; 32], |_, _| {
                        Some(zeroize::Zeroizing::new(*key))
                    })
                }
                Sealing::Public { .. } => {
                    record::open(&version.name, &version.bytes, key, |_, _| None)
                }
            };
            if let Ok(plaintext) = result {
                opened.push(Opened {
                    version: version.clone(),
                    secret: matches!(sealing, Sealing::Secret { .. }),
                    plaintext: plaintext.to_vec(),
                });
                break;
            }
        }
    }
    Attack { opened, attempts }
}

/// The records a store's RocksDB holds, read through RocksDB itself
/// (read-only, so nothing in the files changes), as the ground truth of
/// "current".
pub fn current_records(store_dir: &Path) -> std::collections::HashMap<Vec<u8>, Vec<u8>> {
    let db =
        rocksdb::DB::open_for_read_only(&rocksdb::Options::default(), store_dir.join("db"), false)
            .expect("open the copy read-only");
    db.iterator(rocksdb::IteratorMode::Start)
        .map(|item| {
            let (name, bytes) = item.expect("iterate");
            (name.to_vec(), bytes.to_vec())
        })
        .collect()
}
