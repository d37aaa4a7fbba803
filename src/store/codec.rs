//! How OpenMLS values become bytes: CBOR (RFC 8949), compact and
//! self-describing, behind a small trait so the format can change with the
//! store's format version.

use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use super::StoreError;

/// A serde format for stored values.
pub trait Codec {
    /// Appends the encoding of `value` to `out`.
    fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), StoreError>;

    /// Encodes `value`. The buffer is zeroized on drop: it may hold secrets.
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let mut out = Zeroizing::new(Vec::new());
        Self::encode_into(value, &mut out)?;
        Ok(out)
    }

    /// Decodes `bytes`; malformed input is an error, never a panic.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError>;
}

/// CBOR through `ciborium`.
pub struct Cbor;

/// Deeper nesting than any OpenMLS value has; bounds the decoder's stack.
const RECURSION_LIMIT: usize = 64;

impl Codec for Cbor {
    fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), StoreError> {
        ciborium::into_writer(value, out).map_err(|error| StoreError::Encoding(error.to_string()))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
        ciborium::de::from_reader_with_recursion_limit(bytes, RECURSION_LIMIT)
            .map_err(|_| StoreError::Corrupted("value does not decode"))
    }
}
