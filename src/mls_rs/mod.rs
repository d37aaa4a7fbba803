//! polymls as a provider for AWS's mls-rs (cargo feature `mls-rs`): its
//! cipher suite table and HPKE core behind mls-rs's `CryptoProvider`, so
//! that mls-rs groups run every suite polymls offers, polyproto's hybrid
//! 0xF110 (X-Wing, HKDF-SHA256, AES-128-GCM, Ed25519) among them, which
//! OpenMLS cannot carry.
//!
//! ```
//! use mls_rs_core::crypto::{CipherSuite, CryptoProvider};
//! let crypto = polymls::mls_rs::MlsRsCrypto::default();
//! assert!(crypto.cipher_suite_provider(CipherSuite::new(0xF110)).is_some());
//! ```
//!
//! With the `store` feature, [`MlsRsStorage`] puts mls-rs's group states,
//! epochs, key packages and PSKs in the forward-secret store.
//!
//! This is mls-rs's default, synchronous build; its `mls_build_async` cfg
//! (async traits) is not supported.

mod crypto;
#[cfg(feature = "store")]
mod storage;

pub use crypto::{MlsRsCrypto, MlsRsSuiteProvider, ReceiverContext, SenderContext, MLS_RS_SUITES};
#[cfg(feature = "store")]
pub use storage::{MlsRsStorage, DEFAULT_RETAINED_EPOCHS};
