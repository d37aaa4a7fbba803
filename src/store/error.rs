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
            StoreError::Corrupted(what) => write!(f, "store corrupted: {what}"),
            StoreError::Encoding(what) => write!(f, "cannot encode value: {what}"),
            StoreError::TransactionClosed => f.write_str("transaction already finished"),
        }
    }
}

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
