//! How OpenMLS values become bytes: CBOR (RFC 8949), compact and
//! self-describing, behind a small trait so the format can change with the
//! store's format version.

use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use super::StoreError;

/// A serde format for stored values.
pub trait Codec {
    /// Encodes `value`. The buffer is zeroized on drop: it may hold secrets.
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Zeroizing<Vec<u8>>, StoreError>;
    /// Decodes `bytes`; malformed input is an error, never a panic.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError>;
}

/// CBOR through `ciborium`.
pub struct Cbor;

/// Deeper nesting than any OpenMLS value has; bounds the decoder's stack.
const RECURSION_LIMIT: usize = 64;

impl Codec for Cbor {
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let mut out = Zeroizing::new(Vec::new());
        ciborium::into_writer(value, &mut *out)
            .map_err(|error| StoreError::Encoding(error.to_string()))?;
        Ok(out)
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
        ciborium::de::from_reader_with_recursion_limit(bytes, RECURSION_LIMIT)
            .map_err(|_| StoreError::Corrupted("value does not decode"))
    }
}
