//! # polymls
//!
//! An [OpenMLS](https://openmls.tech) provider: cryptography, randomness and
//! storage for RFC 9420 Messaging Layer Security.
//!
//! - [`Crypto`] implements OpenMLS's `OpenMlsCrypto` for the RFC 9420 suites
//!   listed in [`suite::CIPHER_SUITES`], on the crate's own HPKE core
//!   ([`hpke`]) and well-kept primitive crates (dalek, RustCrypto).
//! - [`Rand`] is a ChaCha20 CSPRNG seeded once from the OS.
//! - [`Store`] is OpenMLS's storage on RocksDB, from which superseded
//!   secrets cannot be recovered (see [`store`]).
//! - [`Provider`] bundles the three for OpenMLS, with transactions.
//!
//! Secrets held in polymls's own types are zeroized on drop and never shown
//! by `Debug`. Bad input (wrong lengths, invalid points, tampered
//! ciphertexts, unsupported algorithms) is an error, never a panic.

pub mod crypto;
pub mod directory;
mod error;
pub mod hpke;
#[cfg(feature = "mls-rs")]
pub mod mls_rs;
mod provider;
pub mod store;
pub mod suite;

pub use crypto::rand::{Rand, RandError};
pub use crypto::Crypto;
pub use error::Error;
pub use provider::Provider;
#[cfg(feature = "store")]
pub use provider::{TransactionError, TransactionProvider};
#[cfg(feature = "store")]
pub use store::Store;
pub use store::{ApplicationKey, Profile, StoreError, StoreOptions};
