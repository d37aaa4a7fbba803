//! [`Store`]: OpenMLS's storage on RocksDB, with forward secrecy on disk.
//!
//! Two layers: the adapter turns OpenMLS entities into named records and
//! knows which are secret ([`entities`]); the vault below seals records
//! ([`record`]), erases the keys of superseded secrets (the key-slot file)
//! and recovers from crashes. See the README for the guarantee and its
//! assumptions. Without the `store` feature only the RocksDB-free parts are
//! built (record format, codec, entity catalogue).

#[cfg(feature = "store")]
mod adapter;
pub mod codec;
pub mod entities;
mod error;
#[cfg(feature = "store")]
mod kv;
pub mod record;
#[cfg(feature = "store")]
mod slots;
#[cfg(feature = "store")]
mod vault;

#[cfg(feature = "store")]
pub use adapter::Usage;
pub use error::StoreError;
#[cfg(feature = "store")]
pub use kv::Store;
#[cfg(feature = "store")]
pub use slots::FORMAT_VERSION;

/// How a [`Store`] trades durability for speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// With `true` (the default), every write is on disk when the call
    /// returns: RocksDB's WAL and the key-slot file are synced, so the
    /// erasure of a superseded secret has reached the disk too. With
    /// `false`, the OS writes back later: a crash can lose the last writes,
    /// and an erased key stays on the disk (not in any file) until the
    /// OS writes the page back, typically within 30 seconds.
    pub durable: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { durable: true }
    }
}
