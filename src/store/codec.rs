//! How OpenMLS values become bytes: CBOR (RFC 8949), compact and
//! self-describing, behind a small trait so the format can change with the
//! store's format version.

use ciborium::Value;
use serde::de::DeserializeOwned;
use serde::ser::{Error as _, Serializer};
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

/// CBOR, encoded by `cbor4ii` and decoded by `ciborium`.
///
/// Every store so far was written by ciborium's encoder; cbor4ii's writes
/// the same bytes for every shape OpenMLS's keys and values take (minimal
/// integer heads, definite lengths, structs as maps keyed by field name,
/// enums as ciborium shapes them), so records keep their names and earlier
/// versions read what this one writes. It is the faster encoder: serde hands
/// OpenMLS's byte vectors over one integer at a time, and ciborium's layers
/// per integer were most of the time a commit spent encoding. The two
/// disagree on `()` and unit structs (empty array, not null), on floats and
/// on long `collect_str` strings: OpenMLS's stored types have none of them,
/// and the tests compare both encoders on everything a group's life stores.
/// Decoding stays with ciborium, which bounds nesting and reads every
/// format version.
pub struct Cbor;

/// cbor4ii's output into a [`SecretBuffer`], kept private so cbor4ii is
/// not part of the crate's interface.
struct Sink<'a>(&'a mut SecretBuffer);

impl cbor4ii::core::enc::Write for Sink<'_> {
    type Error = std::convert::Infallible;

    #[inline]
    fn push(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Deeper nesting than any OpenMLS value has; bounds the decoder's stack.
const RECURSION_LIMIT: usize = 64;

impl Codec for Cbor {
    fn encode_into<T: Serialize + ?Sized>(
        value: &T,
        out: &mut SecretBuffer,
    ) -> Result<(), StoreError> {
        #[cfg(test)]
        let start = out.0.len();
        value
            .serialize(&mut cbor4ii::serde::Serializer::new(Sink(out)))
            .map_err(|error| StoreError::Encoding(error.to_string()))?;
        #[cfg(test)]
        tests::compare_with_ciborium(value, &out.0[start..]);
        Ok(())
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
        ciborium::de::from_reader_with_recursion_limit(bytes, RECURSION_LIMIT)
            .map_err(|_| StoreError::Corrupted("value does not decode"))
    }
}

/// A decoded CBOR value of no known type (a list's elements, a migrated
/// value), as the store's encoder writes it: every value but a tag encodes
/// to the bytes ciborium writes (a float may take a wider head) and reads
/// back as itself. ciborium's `Value` serializes `Null` as serde's unit,
/// which cbor4ii writes as an empty array; this writes it as null. A tag is
/// refused with an error: serde has no tags, so ciborium carries them in a
/// magic enum that only its own encoder understands, and cbor4ii would
/// write a map that reads back as another value. No OpenMLS value holds a
/// tag; JSON a migration reads holds nulls.
pub struct Untyped<'a>(pub &'a Value);

impl Serialize for Untyped<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => serializer.serialize_none(),
            Value::Tag(..) => Err(S::Error::custom("a CBOR tag is not a stored value")),
            Value::Array(elements) => serializer.collect_seq(elements.iter().map(Untyped)),
            Value::Map(entries) => {
                serializer.collect_map(entries.iter().map(|(k, v)| (Untyped(k), Untyped(v))))
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

// The integration tests' provider-generic group session, here because the
// comparison with ciborium sees only this crate's test build.
#[cfg(all(test, feature = "store"))]
#[path = "../../tests/common/groups.rs"]
mod groups;

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde::Serialize;

    use super::{Cbor, Codec};

    /// What the encoders did on this thread since the last `take`.
    #[derive(Default)]
    struct Comparison {
        compared: usize,
        /// ciborium's bytes and ours, where they differ.
        differing: Vec<(Vec<u8>, Vec<u8>)>,
    }

    thread_local! {
        static COMPARISON: RefCell<Comparison> = RefCell::default();
    }

    /// Every encoding in a test build is checked against ciborium's.
    pub(super) fn compare_with_ciborium<T: Serialize + ?Sized>(value: &T, ours: &[u8]) {
        let mut theirs = Vec::new();
        ciborium::into_writer(value, &mut theirs).expect("ciborium encodes");
        COMPARISON.with_borrow_mut(|comparison| {
            comparison.compared += 1;
            if theirs != ours {
                comparison.differing.push((theirs, ours.to_vec()));
            }
        });
    }

    fn take() -> Comparison {
        COMPARISON.take()
    }

    /// Every shape of serde's data model that OpenMLS's types use.
    #[derive(Serialize)]
    enum Variants {
        Unit,
        Newtype(u16),
        Tuple(u8, Vec<u8>),
        Struct { field: Option<u32> },
    }

    #[derive(Serialize)]
    struct Empty {}

    #[derive(Serialize)]
    struct Newtype(Vec<u8>);

    #[derive(Serialize)]
    struct Shapes {
        integers: Vec<u64>,
        signed: Vec<i64>,
        small: (u8, u16, u32, i8, i16, i32, bool),
        bytes: Vec<u8>,
        text: String,
        variants: Vec<Variants>,
        empty: Empty,
        newtype: Newtype,
        absent: Option<u8>,
        map: std::collections::BTreeMap<u32, Vec<u8>>,
    }

    #[test]
    fn every_shape_of_openmls_values_encodes_as_ciborium_did() {
        take();
        let heads = [0, 1, 23, 24, 255, 256, 65_535, 65_536, u32::MAX as u64];
        let shapes = Shapes {
            integers: heads
                .iter()
                .copied()
                .chain([u32::MAX as u64 + 1, u64::MAX])
                .collect(),
            signed: heads
                .iter()
                .map(|&h| -(h as i64) - 1)
                .chain([i64::MIN, i64::MAX])
                .collect(),
            small: (255, 65_535, u32::MAX, i8::MIN, i16::MIN, i32::MIN, true),
            bytes: (0..=255).collect(),
            text: "é".repeat(300),
            variants: vec![
                Variants::Unit,
                Variants::Newtype(300),
                Variants::Tuple(24, vec![]),
                Variants::Struct { field: Some(7) },
                Variants::Struct { field: None },
            ],
            empty: Empty {},
            newtype: Newtype(vec![0; 70_000]),
            absent: None,
            map: [(1, vec![2]), (70_000, vec![])].into_iter().collect(),
        };
        Cbor::encode(&shapes).expect("encodes");
        let comparison = take();
        assert_eq!(comparison.compared, 1);
        assert!(comparison.differing.is_empty(), "the encoders disagree");
    }

    /// The comparison sees a difference where there is one.
    #[test]
    fn the_comparison_finds_where_the_encoders_disagree() {
        take();
        Cbor::encode(&()).expect("encodes");
        let comparison = take();
        assert_eq!(comparison.differing, vec![(vec![0xf6], vec![0x80])]);
    }

    /// Untyped values (lists, migrated values) encode as ciborium encoded
    /// them and read back as themselves; a tag, which cbor4ii would write
    /// as a map, is refused.
    #[test]
    fn untyped_values_encode_as_ciborium_did_and_tags_are_refused() {
        use ciborium::Value;

        use super::Untyped;
        take();
        let value = Value::Map(vec![
            (
                Value::from("list"),
                Value::Array(vec![
                    Value::from(24u8),
                    Value::from(-300i64),
                    Value::from(u64::MAX),
                    Value::Bytes(vec![1, 2, 3]),
                    Value::Null,
                    Value::Bool(true),
                ]),
            ),
            (Value::from(7u8), Value::Array(vec![])),
        ]);
        let encoded = Cbor::encode(&Untyped(&value)).expect("encodes");
        let comparison = take();
        assert_eq!(comparison.compared, 1);
        assert!(comparison.differing.is_empty(), "the encoders disagree");
        assert_eq!(Cbor::decode::<Value>(&encoded).expect("decodes"), value);
        let float = Value::Array(vec![Value::Float(0.5), Value::Float(0.1)]);
        let encoded = Cbor::encode(&Untyped(&float)).expect("encodes");
        assert_eq!(Cbor::decode::<Value>(&encoded).expect("decodes"), float);
        take(); // 0.5 takes a wider head than ciborium's.

        let tagged = Value::Array(vec![Value::Tag(6, Box::new(Value::Null))]);
        assert!(Cbor::encode(&Untyped(&tagged)).is_err(), "a tag is stored");
        // Why: a tag outside the wrapper encodes, as something else.
        let as_map = Cbor::encode(&tagged).expect("encodes");
        assert_ne!(Cbor::decode::<Value>(&as_map).expect("decodes"), tagged);
        assert_eq!(take().differing.len(), 1);
    }

    /// Every key and value a group's life stores (joins, messages, updates,
    /// proposals, removals, an external join), in the mandatory suite and
    /// the X-Wing hybrid, encodes as ciborium encoded it.
    #[cfg(feature = "store")]
    #[test]
    fn everything_a_group_stores_encodes_as_ciborium_did() {
        use openmls_traits::types::Ciphersuite;
        let root = tempfile::tempdir().expect("tempdir");
        let counter = std::cell::Cell::new(0);
        let fresh_store = || {
            counter.set(counter.get() + 1);
            crate::Provider::open(root.path().join(counter.get().to_string())).expect("opens")
        };
        take();
        let suites = [
            Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            Ciphersuite::MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519,
        ];
        for suite in suites {
            super::groups::run_group_lifecycle(fresh_store, suite);
        }
        let comparison = take();
        println!("{} encodings compared with ciborium's", comparison.compared);
        assert!(
            comparison.compared > 500 * suites.len(),
            "{} encodings",
            comparison.compared
        );
        assert!(
            comparison.differing.is_empty(),
            "{} of {} encodings differ, the first: {:02x?}",
            comparison.differing.len(),
            comparison.compared,
            comparison.differing[0]
        );
    }
}
