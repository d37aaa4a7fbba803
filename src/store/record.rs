//! The sealed record format, independent of RocksDB: what the vault writes
//! as a value, and how it is authenticated and opened again.
//!
//! - secret: `1 || slot (u32 LE) || generation (u64 LE) || AES-256-GCM(key of that slot half)`
//! - public: `2 || salt (16) || AES-256-GCM(HMAC-SHA256(value key, label || salt))`
//!
//! The additional data is the record's name and header, so a record cannot
//! be moved to another name or slot. Every key seals one value only, so the
//! nonce is fixed.

use zeroize::Zeroizing;

use super::StoreError;
use crate::crypto::aead::{Aead, TAG_LEN};
use crate::crypto::hash::Hash;

const SECRET: u8 = 1;
const PUBLIC: u8 = 2;
const SECRET_HEADER_LEN: usize = 1 + 4 + 8;
const PUBLIC_HEADER_LEN: usize = 1 + SALT_LEN;
/// Length of a public record's salt.
pub const SALT_LEN: usize = 16;
const NONCE: [u8; 12] = [0; 12];

/// Where a record's key comes from, as its header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sealing<'a> {
    /// Under the key of `generation` in key slot `slot`.
    Secret {
        /// The key slot.
        slot: u32,
        /// The generation of the slot's key.
        generation: u64,
    },
    /// Under a key derived from the store's value key and this salt.
    Public {
        /// The record's salt.
        salt: &'a [u8],
    },
}

/// Reads a record's header. Fails on anything that is not a record.
pub fn sealing(record: &[u8]) -> Result<Sealing<'_>, StoreError> {
    match record.first() {
        Some(&SECRET) if record.len() >= SECRET_HEADER_LEN => Ok(Sealing::Secret {
            slot: u32::from_le_bytes(record[1..5].try_into().expect("4 bytes")),
            generation: u64::from_le_bytes(record[5..13].try_into().expect("8 bytes")),
        }),
        Some(&PUBLIC) if record.len() >= PUBLIC_HEADER_LEN => Ok(Sealing::Public {
            salt: &record[1..PUBLIC_HEADER_LEN],
        }),
        _ => Err(StoreError::Corrupted("not a record")),
    }
}

/// The key of a public record with `salt`.
pub fn public_key(value_key: &[u8; 32], salt: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(
        Hash::Sha256
            .hmac(value_key, &[b"polymls public record", salt])
            .as_bytes(),
    );
    key
}

fn seal(header: &[u8], name: &[u8], key: &[u8; 32], value: &[u8]) -> Result<Vec<u8>, StoreError> {
    let aad = [name, header].concat();
    let mut record = Vec::with_capacity(header.len() + value.len() + TAG_LEN);
    record.extend_from_slice(header);
    Aead::Aes256Gcm
        .seal_into(key, &NONCE, &aad, value, &mut record)
        .map_err(|_| StoreError::Corrupted("sealing failed"))?;
    Ok(record)
}

/// Seals a secret value under the key of `generation` in `slot`.
pub fn seal_secret(
    name: &[u8],
    slot: u32,
    generation: u64,
    key: &[u8; 32],
    value: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let mut header = [0u8; SECRET_HEADER_LEN];
    header[0] = SECRET;
    header[1..5].copy_from_slice(&slot.to_le_bytes());
    header[5..13].copy_from_slice(&generation.to_le_bytes());
    seal(&header, name, key, value)
}

/// Seals a public value with a fresh `salt`.
pub fn seal_public(
    name: &[u8],
    value_key: &[u8; 32],
    salt: &[u8; SALT_LEN],
    value: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let header = [&[PUBLIC][..], salt].concat();
    seal(&header, name, &public_key(value_key, salt), value)
}

/// Authenticates and decrypts the record stored under `name`, with
/// `secret_key` giving the key of a slot generation (if it still exists).
pub fn open(
    name: &[u8],
    record: &[u8],
    value_key: &[u8; 32],
    secret_key: impl FnOnce(u32, u64) -> Option<Zeroizing<[u8; 32]>>,
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let (header_len, key) = match sealing(record)? {
        Sealing::Secret { slot, generation } => (
            SECRET_HEADER_LEN,
            secret_key(slot, generation).ok_or(StoreError::Corrupted("record key missing"))?,
        ),
        Sealing::Public { salt } => (PUBLIC_HEADER_LEN, public_key(value_key, salt)),
    };
    let aad = [name, &record[..header_len]].concat();
    Aead::Aes256Gcm
        .open(key.as_ref(), &NONCE, &aad, &record[header_len..])
        .map(Zeroizing::new)
        .map_err(|_| StoreError::Corrupted("record does not authenticate"))
}
