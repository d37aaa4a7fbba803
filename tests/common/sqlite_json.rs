//! The codec `openmls_sqlite_storage` is given in the tests and benchmarks:
//! JSON, as in its docs and as OpenMLS's own storage tests use.

/// `serde_json` as an `openmls_sqlite_storage` codec.
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
