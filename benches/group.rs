//! The operations of the OpenMLS book's performance chapter, at 2, 10 and
//! 100 members (1,000 with `POLYMLS_BENCH_1000=1`): create a group, join
//! from a Welcome, send and receive an application message, a self-update
//! commit and its processing, add, remove. The full polymls provider (its
//! durable RocksDB store, every OpenMLS call landing on its own) next to
//! `openmls_rust_crypto` on memory storage and on file-backed SQLite
//! storage; the store without syncing and polymls crypto on memory storage
//! show where polymls's time goes.

mod common;

use common::Json;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::{OpenMlsRustCrypto, RustCrypto};
use openmls_traits::OpenMlsProvider;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// `openmls_rust_crypto` on file-backed SQLite with its default settings.
struct RustCryptoSqlite {
    crypto: RustCrypto,
    storage: openmls_sqlite_storage::SqliteStorageProvider<Json, rusqlite::Connection>,
}

impl OpenMlsProvider for RustCryptoSqlite {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider =
        openmls_sqlite_storage::SqliteStorageProvider<Json, rusqlite::Connection>;
    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }
    fn crypto(&self) -> &RustCrypto {
        &self.crypto
    }
    fn rand(&self) -> &RustCrypto {
        &self.crypto
    }
}

struct Member<P: OpenMlsProvider> {
    provider: P,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

impl<P: OpenMlsProvider> Member<P> {
    fn new(name: &str, provider: P) -> Self {
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).expect("signature key");
        signer
            .store(provider.storage())
            .expect("store signature key");
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.public().into(),
        };
        Member {
            provider,
            signer,
            credential,
        }
    }

    fn key_package(&self) -> KeyPackage {
        KeyPackage::builder()
            .build(SUITE, &self.provider, &self.signer, self.credential.clone())
            .expect("key package")
            .key_package()
            .clone()
    }
}

fn config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(SUITE)
        .use_ratchet_tree_extension(true)
        .build()
}

fn process<P: OpenMlsProvider>(member: &Member<P>, group: &mut MlsGroup, message: MlsMessageOut) {
    let message = MlsMessageIn::from(message)
        .try_into_protocol_message()
        .expect("protocol message");
    match group
        .process_message(&member.provider, message)
        .expect("process")
        .into_content()
    {
        ProcessedMessageContent::StagedCommitMessage(commit) => group
            .merge_staged_commit(&member.provider, *commit)
            .expect("merge"),
        ProcessedMessageContent::ApplicationMessage(_) => {}
        other => panic!("unexpected {other:?}"),
    }
}

fn join<P: OpenMlsProvider>(member: &Member<P>, welcome: MlsMessageOut) -> MlsGroup {
    let MlsMessageBodyIn::Welcome(welcome) = MlsMessageIn::from(welcome).extract() else {
        panic!("welcome")
    };
    StagedWelcome::new_from_welcome(&member.provider, config().join_config(), welcome, None)
        .expect("stage welcome")
        .into_group(&member.provider)
        .expect("join")
}

/// Alice and Bob on the provider under test, in a group of `size` members
/// (the others are key packages of members who never join).
struct Session<P: OpenMlsProvider> {
    alice: Member<P>,
    bob: Member<P>,
    alice_group: MlsGroup,
    bob_group: MlsGroup,
}

fn session<P: OpenMlsProvider>(make: &impl Fn() -> P, size: usize) -> Session<P> {
    let alice = Member::new("alice", make());
    let bob = Member::new("bob", make());
    let mut alice_group = MlsGroup::new(
        &alice.provider,
        &alice.signer,
        &config(),
        alice.credential.clone(),
    )
    .expect("group");
    // Each filler its own member: a group refuses two leaves with one signature key.
    let mut key_packages: Vec<KeyPackage> = (2..size)
        .map(|i| Member::new(&format!("filler{i}"), OpenMlsRustCrypto::default()).key_package())
        .collect();
    key_packages.push(bob.key_package());
    let (_, welcome, _) = alice_group
        .add_members(&alice.provider, &alice.signer, &key_packages)
        .expect("add");
    alice_group
        .merge_pending_commit(&alice.provider)
        .expect("merge");
    let bob_group = join(&bob, welcome);
    Session {
        alice,
        bob,
        alice_group,
        bob_group,
    }
}

impl<P: OpenMlsProvider> Session<P> {
    /// Alice adds a fresh member (of the provider under test); Bob processes.
    fn add(&mut self, newcomer: &Member<P>) -> MlsMessageOut {
        let (commit, welcome, _) = self
            .alice_group
            .add_members(
                &self.alice.provider,
                &self.alice.signer,
                &[newcomer.key_package()],
            )
            .expect("add");
        self.alice_group
            .merge_pending_commit(&self.alice.provider)
            .expect("merge");
        process(&self.bob, &mut self.bob_group, commit);
        welcome
    }

    /// Alice removes the last member; Bob processes.
    fn remove_last(&mut self) {
        let last = self.alice_group.members().last().expect("member").index;
        let (commit, _, _) = self
            .alice_group
            .remove_members(&self.alice.provider, &self.alice.signer, &[last])
            .expect("remove");
        self.alice_group
            .merge_pending_commit(&self.alice.provider)
            .expect("merge");
        process(&self.bob, &mut self.bob_group, commit);
    }
}

/// Times `measured` only, with `before`/`after` around each run.
fn timed<S>(
    iterations: u64,
    state: &mut S,
    mut before: impl FnMut(&mut S),
    mut measured: impl FnMut(&mut S),
    mut after: impl FnMut(&mut S),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iterations {
        before(state);
        let start = Instant::now();
        measured(state);
        total += start.elapsed();
        after(state);
    }
    total
}

fn bench_provider<P: OpenMlsProvider>(c: &mut Criterion, name: &str, make: impl Fn() -> P) {
    let mut sizes = vec![2, 10, 100];
    if std::env::var_os("POLYMLS_BENCH_1000").is_some() {
        sizes.push(1000);
    }
    let mut group = c.benchmark_group("group");
    for size in sizes {
        let creator = Member::new("creator", make());
        group.bench_function(BenchmarkId::new(format!("create/{name}"), size), |b| {
            b.iter(|| {
                MlsGroup::new(
                    &creator.provider,
                    &creator.signer,
                    &config(),
                    creator.credential.clone(),
                )
                .expect("group")
            })
        });
        let mut s = session(&make, size);
        group.bench_function(BenchmarkId::new(format!("join/{name}"), size), |b| {
            b.iter_custom(|n| {
                let newcomer = Member::new("newcomer", make());
                // The session, the Welcome in flight and the group joined,
                // which leaves the newcomer's storage before the next join.
                let mut state = (&mut s, None, None);
                timed(
                    n,
                    &mut state,
                    |(s, welcome, _)| *welcome = Some(s.add(&newcomer)),
                    |(_, welcome, joined)| {
                        *joined = Some(join(&newcomer, welcome.take().expect("welcome")))
                    },
                    |(s, _, joined): &mut (_, _, Option<MlsGroup>)| {
                        joined
                            .take()
                            .expect("joined")
                            .delete(newcomer.provider.storage())
                            .expect("delete joined group");
                        s.remove_last();
                    },
                )
            })
        });
        group.bench_function(BenchmarkId::new(format!("message/{name}"), size), |b| {
            b.iter(|| {
                let message = s
                    .alice_group
                    .create_message(&s.alice.provider, &s.alice.signer, b"hello")
                    .expect("message");
                process(&s.bob, &mut s.bob_group, message);
            })
        });
        group.bench_function(BenchmarkId::new(format!("update/{name}"), size), |b| {
            b.iter(|| {
                let bundle = s
                    .bob_group
                    .self_update(
                        &s.bob.provider,
                        &s.bob.signer,
                        LeafNodeParameters::default(),
                    )
                    .expect("update");
                s.bob_group
                    .merge_pending_commit(&s.bob.provider)
                    .expect("merge");
                process(&s.alice, &mut s.alice_group, bundle.commit().clone());
            })
        });
        group.bench_function(BenchmarkId::new(format!("add/{name}"), size), |b| {
            b.iter_custom(|n| {
                let newcomer = Member::new("newcomer", make());
                timed(
                    n,
                    &mut s,
                    |_| {},
                    |s| drop(s.add(&newcomer)),
                    |s| s.remove_last(),
                )
            })
        });
        group.bench_function(BenchmarkId::new(format!("remove/{name}"), size), |b| {
            b.iter_custom(|n| {
                let newcomer = Member::new("newcomer", make());
                timed(
                    n,
                    &mut s,
                    |s| drop(s.add(&newcomer)),
                    |s| s.remove_last(),
                    |_| {},
                )
            })
        });
    }
    group.finish();
}

fn groups(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let counter = std::cell::Cell::new(0);
    let next = || {
        counter.set(counter.get() + 1);
        dir.path().join(counter.get().to_string())
    };
    bench_provider(c, "polymls", || {
        polymls::Provider::open(next()).expect("store")
    });
    // The store without syncing (the OS writes back), and polymls crypto on
    // memory storage: where the time of the durable store goes.
    bench_provider(c, "polymls-fast", || {
        polymls::Provider::open_with(next(), polymls::StoreOptions { durable: false })
            .expect("store")
    });
    bench_provider(
        c,
        "polymls+memory",
        polymls::Provider::<openmls_memory_storage::MemoryStorage>::default,
    );
    bench_provider(c, "rust_crypto+memory", OpenMlsRustCrypto::default);
    bench_provider(c, "rust_crypto+sqlite", || {
        let connection =
            rusqlite::Connection::open(next().with_extension("sqlite")).expect("sqlite");
        let mut storage = openmls_sqlite_storage::SqliteStorageProvider::new(connection);
        storage.run_migrations().expect("migrations");
        RustCryptoSqlite {
            crypto: RustCrypto::default(),
            storage,
        }
    });
}

criterion_group! {
    name = benches;
    config = common::criterion().sample_size(10).measurement_time(Duration::from_secs(3));
    targets = groups
}
criterion_main!(benches);
