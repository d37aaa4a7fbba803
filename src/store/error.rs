//! The store's error type.

use std::fmt;

/// Why a store operation failed.
///
/// Nothing here carries a stored value or key: errors are safe to log.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing the key-slot file or the directory failed.
    Io(std::io::Error),
    /// RocksDB reported an error.
    #[cfg(feature = "store")]
    Database(rocksdb::Error),
    /// The directory holds a store of a format this version cannot read.
    UnknownFormat {
        /// The format version found in the key-slot file.
        found: u32,
    },
    /// The key-slot file is not a polymls key-slot file.
    NotAStore,
    /// The store is sealed under an application key and none was given.
    ApplicationKeyMissing,
    /// The application key given does not open the store.
    ApplicationKeyWrong,
    /// An application key was given for a store that is not sealed under
    /// one ([`crate::Store::rekey`] adds one).
    ApplicationKeyUnexpected,
    /// A stored record failed to authenticate or decode: the files were
    /// corrupted or tampered with.
    Corrupted(&'static str),
    /// An OpenMLS value could not be encoded.
    Encoding(String),
    /// A transaction was used after it finished.
    TransactionClosed,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(error) => write!(f, "store I/O failed: {error}"),
            #[cfg(feature = "store")]
            StoreError::Database(error) => write!(f, "RocksDB failed: {error}"),
            StoreError::UnknownFormat { found } => {
                write!(f, "store format version {found} is not supported")
            }
            StoreError::NotAStore => f.write_str("not a polymls store"),
            StoreError::ApplicationKeyMissing => {
                f.write_str("the store is sealed under an application key and none was given")
            }
            StoreError::ApplicationKeyWrong => {
                f.write_str("the application key does not open the store")
            }
            StoreError::ApplicationKeyUnexpected => {
                f.write_str("the store is not sealed under an application key")
            }
            StoreError::Corrupted(what) => write!(f, "store corrupted: {what}"),
            StoreError::Encoding(what) => write!(f, "cannot encode value: {what}"),
            StoreError::TransactionClosed => f.write_str("transaction already finished"),
        }
    }
}

/// Errors compare by what they say: I/O errors by kind and message, RocksDB
/// errors by message. OpenMLS's error types derive `PartialEq` over the
/// storage error, so applications (and OpenMLS's own tests) compare them.
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (StoreError::Io(a), StoreError::Io(b)) => {
                a.kind() == b.kind() && a.to_string() == b.to_string()
            }
            #[cfg(feature = "store")]
            (StoreError::Database(a), StoreError::Database(b)) => a == b,
            (StoreError::UnknownFormat { found: a }, StoreError::UnknownFormat { found: b }) => {
                a == b
            }
            (StoreError::Corrupted(a), StoreError::Corrupted(b)) => a == b,
            (StoreError::Encoding(a), StoreError::Encoding(b)) => a == b,
            (StoreError::NotAStore, StoreError::NotAStore)
            | (StoreError::ApplicationKeyMissing, StoreError::ApplicationKeyMissing)
            | (StoreError::ApplicationKeyWrong, StoreError::ApplicationKeyWrong)
            | (StoreError::ApplicationKeyUnexpected, StoreError::ApplicationKeyUnexpected)
            | (StoreError::TransactionClosed, StoreError::TransactionClosed) => true,
            _ => false,
        }
    }
}

impl Eq for StoreError {}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io(error) => Some(error),
            #[cfg(feature = "store")]
            StoreError::Database(error) => Some(error),
            _ => None,
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        StoreError::Io(error)
    }
}

#[cfg(feature = "store")]
impl From<rocksdb::Error> for StoreError {
    fn from(error: rocksdb::Error) -> Self {
        StoreError::Database(error)
    }
}
