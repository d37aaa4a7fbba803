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
    fn encode_into<T: Serialize + ?Sized>(
        value: &T,
        out: &mut SecretBuffer,
    ) -> Result<(), StoreError>;

    /// Encodes `value`. The buffer is zeroized on drop: it may hold secrets.
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let mut out = SecretBuffer::default();
        Self::encode_into(value, &mut out)?;
        Ok(out.into_inner())
    }

    /// Decodes `bytes`; malformed input is an error, never a panic.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError>;
}

/// A growable buffer for bytes that may be secret. A `Vec` that grows
/// moves its contents to a larger allocation and frees the old one as it
/// was, leaving a copy of the prefix in freed heap; this buffer wipes the
/// old allocation first, and is zeroized on drop.
#[derive(Default)]
pub struct SecretBuffer(Zeroizing<Vec<u8>>);

impl SecretBuffer {
    /// An empty buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> SecretBuffer {
        SecretBuffer(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    /// Appends `bytes`, moving to a larger allocation (and wiping the old
    /// one) when they do not fit.
    // Inlined: the CBOR encoder calls this for every header and every byte
    // of a byte sequence that serde hands over as a sequence of integers.
    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if self.0.len() + bytes.len() > self.0.capacity() {
            self.grow(bytes.len());
        }
        self.0.extend_from_slice(bytes);
    }

    #[cold]
    fn grow(&mut self, additional: usize) {
        let needed = self.0.len() + additional;
        let capacity = needed.max(2 * self.0.capacity()).max(256);
        let mut larger = Zeroizing::new(Vec::with_capacity(capacity));
        larger.extend_from_slice(&self.0);
        // The old allocation is zeroized (its whole capacity) as it drops.
        self.0 = larger;
    }

    /// The bytes, still zeroized on drop.
    pub fn into_inner(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

impl std::io::Write for SecretBuffer {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// CBOR through `ciborium`.
pub struct Cbor;

/// Deeper nesting than any OpenMLS value has; bounds the decoder's stack.
const RECURSION_LIMIT: usize = 64;

impl Codec for Cbor {
    fn encode_into<T: Serialize + ?Sized>(
        value: &T,
        out: &mut SecretBuffer,
    ) -> Result<(), StoreError> {
        ciborium::into_writer(value, out).map_err(|error| StoreError::Encoding(error.to_string()))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
        ciborium::de::from_reader_with_recursion_limit(bytes, RECURSION_LIMIT)
            .map_err(|_| StoreError::Corrupted("value does not decode"))
    }
}
