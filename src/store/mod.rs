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
#[cfg(feature = "sqlite-migration")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite-migration")))]
pub mod migrate;
#[cfg(feature = "store")]
mod naming;
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
// For the mls-rs storage on the same vault.
#[cfg(all(feature = "store", feature = "mls-rs"))]
pub(crate) use vault::Op;
#[cfg(feature = "store")]
#[doc(hidden)]
pub use vault::{Counters, CrashPoint};

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
    /// With `Some(window)` on a durable store, a commit syncs once (RocksDB's
    /// WAL) instead of twice: the keys it supersedes stay in the key-slot
    /// file until a later commit or the store's eraser thread erases them,
    /// at most `window` after the commit (and when the store is dropped).
    /// Until then a copy of the files opens those superseded secrets. After
    /// a crash (of the process or the machine) they stay in the file until
    /// the store is opened again. `None` (the default) erases them before
    /// the commit returns. Ignored without [`StoreOptions::durable`], whose
    /// erasures are written at once and synced by the OS.
    pub erase_within: Option<std::time::Duration>,
    /// How RocksDB is sized: for a client (the default) or a server.
    pub profile: Profile,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durable: true,
            application_key: None,
            erase_within: None,
            profile: Profile::Client,
        }
    }
}

/// How a store sizes RocksDB. Neither changes what is stored or erased.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Profile {
    /// For one store per account on a phone or a desktop (the default): a
    /// 256 KiB write buffer (RocksDB's WAL is flushed into an SST file at
    /// about that size, so it stays small), a 512 KiB block cache, and
    /// warnings only in RocksDB's own log.
    #[default]
    Client,
    /// RocksDB's defaults, for a server with many groups in one store: a
    /// 64 MiB write buffer (and a WAL that grows to about that before a
    /// flush), a 32 MiB block cache and RocksDB's informational log.
    Server,
}

impl StoreOptions {
    /// These options with [`StoreOptions::durable`] set to `durable`.
    pub fn with_durability(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// These options with an erasure window (see
    /// [`StoreOptions::erase_within`]).
    pub fn erase_within(mut self, window: std::time::Duration) -> Self {
        self.erase_within = Some(window);
        self
    }

    /// These options with RocksDB sized by `profile`.
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// These options with the key-slot file sealed under `key` (see
    /// [`StoreOptions::application_key`]).
    pub fn with_application_key(mut self, key: ApplicationKey) -> Self {
        self.application_key = Some(key);
        self
    }
}

#[cfg(feature = "store")]
impl Profile {
    /// RocksDB's options for this profile.
    pub(crate) fn rocksdb_options(self) -> rocksdb::Options {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        // Recycled WAL files would keep old pages around for no benefit.
        options.set_recycle_log_file_num(0);
        if self == Profile::Client {
            const KIB: usize = 1024;
            options.set_write_buffer_size(256 * KIB);
            options.set_max_write_buffer_number(2);
            // A flush is forced before the WALs outgrow this, whatever the
            // write buffer holds.
            options.set_max_total_wal_size(1024 * 1024);
            options.set_max_manifest_file_size(256 * KIB);
            options.set_log_level(rocksdb::LogLevel::Warn);
            options.set_keep_log_file_num(2);
            options.set_max_log_file_size(64 * KIB);
            options.set_max_open_files(64);
            let mut table = rocksdb::BlockBasedOptions::default();
            table.set_block_cache(&rocksdb::Cache::new_lru_cache(512 * KIB));
            options.set_block_based_table_factory(&table);
        }
        options
    }
}

/// A 32-byte key that seals a store's key-slot file. Zeroized on drop,
/// never shown by `Debug`.
///
/// It protects the files at rest against someone who copies them without
/// the key; it does nothing against someone who has the key too, and the
/// store's forward secrecy does not depend on it.
#[derive(Clone)]
// Read by the store only; without the `store` feature it is only held.
#[cfg_attr(not(feature = "store"), allow(dead_code))]
pub struct ApplicationKey(zeroize::Zeroizing<[u8; 32]>);

impl ApplicationKey {
    /// The key from its bytes (32 uniformly random bytes).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ApplicationKey(zeroize::Zeroizing::new(bytes))
    }

    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ApplicationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApplicationKey(<redacted>)")
    }
}
