//! # polymls
//!
//! A provider for RFC 9420 Messaging Layer Security: cryptography,
//! randomness and storage for [OpenMLS](https://openmls.tech) and (feature
//! `mls-rs`) [mls-rs](https://github.com/awslabs/mls-rs), and the
//! KeyPackage directory a polyproto home server runs.
//!
//! - [`Crypto`] implements OpenMLS's `OpenMlsCrypto` for the suites listed
//!   in [`suite::CIPHER_SUITES`], on the crate's own HPKE core ([`hpke`])
//!   and well-kept primitive crates (dalek, RustCrypto, libcrux), X-Wing
//!   (ML-KEM-768 + X25519) among them.
//! - [`Rand`] is a ChaCha20 CSPRNG seeded once from the OS.
//! - [`Store`] (feature `store`) is OpenMLS's storage on RocksDB, from which
//!   superseded secrets cannot be recovered (see [`store`]).
//! - [`Provider`] bundles the three for OpenMLS, with transactions.
//! - [`directory`] is the KeyPackage directory (its embedded backend with
//!   feature `directory`, PostgreSQL with `postgres`, HTTP with `server`).
//! - `delivery` (feature `delivery`) is the home server's Delivery Service:
//!   groups observed through mls-rs, every handshake message validated, one
//!   commit per epoch, inboxes per device (HTTP with `server`).
//! - `dmls` (feature `dmls`) runs Distributed MLS send groups on OpenMLS
//!   and the store, for peers without a central Delivery Service.
//! - `store::migrate` (feature `sqlite-migration`) moves an application's
//!   groups from `openmls_sqlite_storage` into a [`Store`].
//!
//! Secrets held in polymls's own types are zeroized on drop and never shown
//! by `Debug`. Bad input (wrong lengths, invalid points, tampered
//! ciphertexts, unsupported algorithms) is an error, never a panic.
//!
//! ## As OpenMLS's provider
//!
//! ```
//! # #[cfg(feature = "store")] {
//! use openmls::prelude::*;
//! use openmls_basic_credential::SignatureKeyPair;
//!
//! // A store in a temporary directory; `Provider::open(dir)` for a real one.
//! let provider = polymls::Provider::default();
//! let suite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
//! let signer = SignatureKeyPair::new(suite.signature_algorithm()).unwrap();
//! let credential = CredentialWithKey {
//!     credential: BasicCredential::new(b"alice".to_vec()).into(),
//!     signature_key: signer.public().into(),
//! };
//! let config = MlsGroupCreateConfig::builder().ciphersuite(suite).build();
//! // Each OpenMLS call in a transaction: its writes land together or not at all.
//! let mut group = provider
//!     .transaction(|p| MlsGroup::new(p, &signer, &config, credential))
//!     .unwrap();
//! let message = provider
//!     .transaction(|p| group.create_message(p, &signer, b"hello"))
//!     .unwrap();
//! # let _ = message;
//! # }
//! ```
//!
//! ## HPKE by cipher suite, without an MLS library
//!
//! ```
//! let rand = polymls::Rand::default();
//! // 0xF110: polyproto-mls's hybrid suite (X-Wing, HKDF-SHA256, AES-128-GCM).
//! let hpke = polymls::suite::cipher_suite(0xF110).unwrap().hpke();
//! let mut ikm = [0u8; 32];
//! rand.fill(&mut ikm);
//! let receiver = hpke.derive_key_pair(&ikm).unwrap();
//! let (enc, ciphertext) = hpke
//!     .seal(&rand, &receiver.public, b"info", b"aad", b"a secret")
//!     .unwrap();
//! let plaintext = hpke
//!     .open(&enc, &receiver.private, b"info", b"aad", &ciphertext)
//!     .unwrap();
//! assert_eq!(plaintext, b"a secret");
//! ```
//!
//! ## The forward-secret store and its options
//!
//! ```
//! # #[cfg(feature = "store")] {
//! use std::time::Duration;
//! use polymls::{Profile, Store, StoreOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! // Strict durability (the default) syncs twice per commit; an erasure
//! // window syncs once and erases superseded keys within the window.
//! let options = StoreOptions::default()
//!     .erase_within(Duration::from_secs(1))
//!     .with_profile(Profile::Client);
//! let store = Store::open_with(dir.path(), options).unwrap();
//! let provider = polymls::Provider::with_storage(store);
//! # let _ = provider;
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod crypto;
#[cfg(feature = "delivery")]
#[cfg_attr(docsrs, doc(cfg(feature = "delivery")))]
pub mod delivery;
pub mod directory;
#[cfg(feature = "dmls")]
#[cfg_attr(docsrs, doc(cfg(feature = "dmls")))]
pub mod dmls;
mod error;
pub mod hpke;
#[cfg(feature = "mls-rs")]
#[cfg_attr(docsrs, doc(cfg(feature = "mls-rs")))]
pub mod mls_rs;
mod provider;
pub mod store;
pub mod suite;

pub use crypto::rand::{Rand, RandError};
pub use crypto::Crypto;
pub use error::Error;
pub use provider::Provider;
#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
pub use provider::{TransactionError, TransactionProvider};
#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
pub use store::Store;
pub use store::{ApplicationKey, Profile, StoreError, StoreOptions};
