//! What the benchmark groups share: the providers compared, and criterion's
//! settings (short, as one run covers every group on 2 noisy cores).
#![allow(dead_code)]

use std::time::Duration;

use criterion::Criterion;
use openmls_traits::crypto::OpenMlsCrypto;

/// The crypto providers compared, by name, called through the same trait.
pub fn providers() -> Vec<(&'static str, Box<dyn OpenMlsCrypto>)> {
    vec![
        ("polymls", Box::new(polymls::Crypto::default())),
        (
            "openmls_rust_crypto",
            Box::new(openmls_rust_crypto::RustCrypto::default()),
        ),
        (
            "openmls_libcrux_crypto",
            Box::new(openmls_libcrux_crypto::CryptoProvider::new().expect("libcrux provider")),
        ),
    ]
}

/// Criterion tuned for many short benchmarks in one run.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
        .noise_threshold(0.05)
}

/// `openmls_sqlite_storage` takes the application's codec; JSON, as in its
/// docs and as OpenMLS's own storage tests use.
#[derive(Default)]
pub struct Json;

impl openmls_sqlite_storage::Codec for Json {
    type Error = serde_json::Error;
    fn to_vec<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Self::Error> {
        serde_json::to_vec(value)
    }
    fn from_slice<T: serde::de::DeserializeOwned>(slice: &[u8]) -> Result<T, Self::Error> {
        serde_json::from_slice(slice)
    }
}
