//! The store's hot paths: one `write_message_secrets` (OpenMLS makes one
//! per message sent or received) and a merge-sized batch of writes (what a
//! commit's merge writes and deletes), for polymls's store (durable and
//! not, and with an erasure window) next to `openmls_memory_storage` and
//! file-backed `openmls_sqlite_storage` (its default durable settings, WAL
//! with `synchronous=FULL`, and WAL with `synchronous=NORMAL`).

mod common;

use common::Json;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use openmls_traits::storage::{traits, Entity, Key, StorageProvider, CURRENT_VERSION};
use serde::{Deserialize, Serialize};

/// Stands in for any OpenMLS value: the store sees only serde.
#[derive(Serialize, Deserialize)]
struct Blob(Vec<u8>);
/// Stands in for `GroupEpoch`.
#[derive(Serialize, Deserialize)]
struct Epoch(u64);

macro_rules! implement {
    ($type:ty: $($trait:ident),*) => { $(impl traits::$trait<CURRENT_VERSION> for $type {})* };
}
impl Key<CURRENT_VERSION> for Blob {}
impl Entity<CURRENT_VERSION> for Blob {}
impl Key<CURRENT_VERSION> for Epoch {}
implement!(Blob: GroupId, TreeSync, GroupContext, InterimTranscriptHash, ConfirmationTag, GroupState, MessageSecrets, GroupEpochSecrets, HpkeKeyPair, LeafNodeIndex, ResumptionPskStore, ProposalRef);
implement!(Epoch: EpochKey);

fn random(len: usize) -> Blob {
    let mut bytes = vec![0u8; len];
    polymls::Rand::default().fill(&mut bytes);
    Blob(bytes)
}

/// One message's write: the message secrets store (1.2-1.9 KB in a trace).
fn write_message_secrets<S: StorageProvider<CURRENT_VERSION>>(
    storage: &S,
    group: &Blob,
    secrets: &Blob,
) {
    storage
        .write_message_secrets(group, secrets)
        .expect("write");
}

/// What merging a commit writes and deletes, as traced from OpenMLS 0.9.2.
fn merge_batch<S: StorageProvider<CURRENT_VERSION>>(storage: &S, group: &Blob, epoch: u64) {
    storage
        .write_group_state(group, &random(32))
        .expect("write");
    storage.write_tree(group, &random(4096)).expect("write");
    storage
        .write_confirmation_tag(group, &random(32))
        .expect("write");
    storage.write_context(group, &random(160)).expect("write");
    storage
        .write_interim_transcript_hash(group, &random(32))
        .expect("write");
    storage
        .write_own_leaf_index(group, &random(4))
        .expect("write");
    storage
        .write_group_epoch_secrets(group, &random(200))
        .expect("write");
    storage
        .write_message_secrets(group, &random(1500))
        .expect("write");
    storage
        .write_encryption_epoch_key_pairs(group, &Epoch(epoch + 1), 0, &[random(64), random(64)])
        .expect("write");
    storage
        .delete_encryption_epoch_key_pairs(group, &Epoch(epoch), 0)
        .expect("delete");
    storage
        .clear_proposal_queue::<Blob, Blob>(group)
        .expect("delete");
    storage
        .write_resumption_psk_store(group, &random(200))
        .expect("write");
    storage.delete_own_leaf_nodes(group).expect("delete");
}

fn sqlite(dir: &std::path::Path, name: &str, pragmas: &str) -> rusqlite::Connection {
    let connection =
        rusqlite::Connection::open(dir.join(name).with_extension("sqlite")).expect("open sqlite");
    connection.execute_batch(pragmas).expect("pragmas");
    connection
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = Blob(b"benchmark group".to_vec());
    let secrets = random(1500);
    let mut bench = c.benchmark_group("store");

    let options = polymls::StoreOptions::default;
    for (name, options) in [
        ("polymls-durable", options()),
        (
            "polymls-window",
            options().erase_within(std::time::Duration::from_secs(1)),
        ),
        ("polymls-fast", options().with_durability(false)),
    ] {
        let store = polymls::Store::open_with(dir.path().join(name), options).expect("open");
        bench.bench_function(format!("write_message_secrets/{name}"), |b| {
            b.iter(|| write_message_secrets(&store, black_box(&group), &secrets))
        });
        let mut epoch = 0;
        bench.bench_function(format!("merge_batch/{name}"), |b| {
            b.iter(|| {
                let transaction = store.begin();
                merge_batch(&transaction, black_box(&group), epoch);
                transaction.commit().expect("commit");
                epoch += 1;
            })
        });
    }

    let memory = openmls_memory_storage::MemoryStorage::default();
    bench.bench_function("write_message_secrets/memory", |b| {
        b.iter(|| write_message_secrets(&memory, black_box(&group), &secrets))
    });
    let mut epoch = 0;
    bench.bench_function("merge_batch/memory", |b| {
        b.iter(|| {
            merge_batch(&memory, black_box(&group), epoch);
            epoch += 1;
        })
    });

    for (name, pragmas) in [
        ("sqlite-default", ""),
        (
            "sqlite-wal-full",
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        ),
        (
            "sqlite-wal-normal",
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        ),
    ] {
        // Migrations need the connection owned; the benchmark keeps its own
        // to wrap the merge batch in one SQLite transaction.
        openmls_sqlite_storage::SqliteStorageProvider::<Json, rusqlite::Connection>::new(sqlite(
            dir.path(),
            name,
            pragmas,
        ))
        .run_migrations()
        .expect("migrations");
        let connection = sqlite(dir.path(), name, pragmas);
        let storage =
            openmls_sqlite_storage::SqliteStorageProvider::<Json, &rusqlite::Connection>::new(
                &connection,
            );
        bench.bench_function(format!("write_message_secrets/{name}"), |b| {
            b.iter(|| write_message_secrets(&storage, black_box(&group), &secrets))
        });
        let mut epoch = 0;
        bench.bench_function(format!("merge_batch/{name}"), |b| {
            b.iter(|| {
                connection.execute_batch("BEGIN").expect("begin");
                merge_batch(&storage, black_box(&group), epoch);
                connection.execute_batch("COMMIT").expect("commit");
                epoch += 1;
            })
        });
    }
    bench.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion().sample_size(20);
    targets = store
}
criterion_main!(benches);
