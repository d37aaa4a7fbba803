//! No secret left in freed heap by the store: a global allocator watches
//! every block freed while the store encodes, seals, stores and reads back
//! a secret value, and counts the freed blocks that still hold a marker
//! planted in the value. A `Vec` that grows while a secret is encoded into
//! it frees its old allocation unwiped; the store's buffers must not.
//!
//! `realloc` is left to `GlobalAlloc`'s default (allocate, copy, free), so
//! every growth frees its old block where the watch sees it, even where the
//! system allocator would have grown in place.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use openmls_traits::storage::{traits, Entity, Key, StorageProvider, CURRENT_VERSION};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

const MARKER: [u8; 32] = *b"polymls heap marker, not a key!!";

struct Watch;

static HITS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if WATCHING.with(Cell::get) {
            let block = std::slice::from_raw_parts(ptr, layout.size());
            if block.windows(MARKER.len()).any(|w| w == MARKER) {
                HITS.fetch_add(1, Ordering::Relaxed);
            }
        }
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Watch = Watch;

/// Freed blocks holding the marker while `f` runs on this thread.
fn leaks_during(f: impl FnOnce()) -> usize {
    HITS.store(0, Ordering::Relaxed);
    WATCHING.with(|w| w.set(true));
    f();
    WATCHING.with(|w| w.set(false));
    HITS.load(Ordering::Relaxed)
}

/// A group id for the trait's generic methods.
#[derive(Serialize)]
struct GroupId(Vec<u8>);
impl Key<CURRENT_VERSION> for GroupId {}
impl traits::GroupId<CURRENT_VERSION> for GroupId {}

/// A secret value of many small pieces, each one write of the encoder, so
/// the buffer grows between pieces that hold the marker. Wiped on drop,
/// so the only unwiped copies are the store's.
#[derive(Serialize, Deserialize)]
struct Secrets(Vec<Piece>);

#[derive(Serialize, Deserialize)]
struct Piece(#[serde(with = "bytes")] [u8; 32]);

mod bytes {
    pub fn serialize<S: serde::Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = [u8; 32];
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("32 bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<[u8; 32], E> {
                v.try_into().map_err(E::custom)
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

impl Drop for Secrets {
    fn drop(&mut self) {
        for piece in &mut self.0 {
            piece.0.zeroize();
        }
        // The Vec's spare capacity holds no piece: it never grew with one
        // (built at its final size, decoded with a size hint).
    }
}

impl Entity<CURRENT_VERSION> for Secrets {}
impl traits::MessageSecrets<CURRENT_VERSION> for Secrets {}

fn secrets() -> Secrets {
    let mut pieces = Vec::with_capacity(200);
    pieces.extend((0..200).map(|_| Piece(MARKER)));
    Secrets(pieces)
}

#[test]
fn the_store_leaves_no_secret_in_freed_heap() {
    // Positive control: a plain Vec growing with the marker in it is seen.
    let control = leaks_during(|| {
        let mut grown = Vec::new();
        for _ in 0..200 {
            grown.extend_from_slice(&MARKER);
        }
        grown.zeroize();
    });
    assert!(control > 0, "the watch sees a growing Vec's freed blocks");

    let dir = tempfile::tempdir().expect("tempdir");
    let store = polymls::Store::open(dir.path().join("store")).expect("open");
    let group = GroupId(b"group".to_vec());
    let value = secrets();
    let written = leaks_during(|| {
        store.write_message_secrets(&group, &value).expect("write");
    });
    let transaction_writes = leaks_during(|| {
        let transaction = store.begin();
        transaction
            .write_message_secrets(&group, &value)
            .expect("write in a transaction");
        transaction.commit().expect("commit");
    });
    let read = leaks_during(|| {
        let back: Option<Secrets> = store.message_secrets(&group).expect("read");
        assert_eq!(back.expect("stored").0.len(), 200);
    });
    println!(
        "freed blocks holding the secret: control {control}, write {written}, transaction {transaction_writes}, read {read}"
    );
    assert_eq!((written, transaction_writes, read), (0, 0, 0));
}
