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
pub use slots::{FORMAT_VERSION, SEALED_FORMAT_VERSION};
#[cfg(feature = "store")]
#[doc(hidden)]
pub use vault::CrashPoint;
pub(crate) use vault::Op;

/// How a [`Store`] trades durability for speed, and whether its files are
/// sealed under a key of the application's. Built from the default:
/// `StoreOptions::default().with_durability(false)`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StoreOptions {
    /// With `true` (the default), every write is on disk when the call
    /// returns: RocksDB's WAL and the key-slot file are synced, so the
    /// erasure of a superseded secret has reached the disk too. With
    /// `false`, the OS writes back later: a crash can lose the last writes,
    /// and an erased key stays on the disk (not in any file) until the
    /// OS writes the page back, typically within 30 seconds.
    pub durable: bool,
    /// With a key (the application keeps it in its platform keystore or
    /// KMS), the key-slot file is sealed under it: the store's files alone
    /// then reveal no value, current or past, secret or public. A store
    /// created with a key must be opened with it; one created without must
    /// be opened without ([`Store::rekey`] changes it). See the README for
    /// what each choice protects.
    pub application_key: Option<ApplicationKey>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durable: true,
            application_key: None,
        }
    }
}

impl StoreOptions {
    /// These options with [`StoreOptions::durable`] set to `durable`.
    pub fn with_durability(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// These options with the key-slot file sealed under `key` (see
    /// [`StoreOptions::application_key`]).
    pub fn with_application_key(mut self, key: ApplicationKey) -> Self {
        self.application_key = Some(key);
        self
    }
}

/// A 32-byte key that seals a store's key-slot file. Zeroized on drop,
/// never shown by `Debug`.
///
/// It protects the files at rest against someone who copies them without
/// the key; it does nothing against someone who has the key too, and the
/// store's forward secrecy does not depend on it.
#[derive(Clone)]
pub struct ApplicationKey(zeroize::Zeroizing<[u8; 32]>);

impl ApplicationKey {
    /// The key from its bytes (32 uniformly random bytes).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ApplicationKey(zeroize::Zeroizing::new(bytes))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ApplicationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApplicationKey(<redacted>)")
    }
}
