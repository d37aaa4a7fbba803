//! The operations of the OpenMLS book's performance chapter, at 2, 10 and
//! 100 members (1,000 with `POLYMLS_BENCH_1000=1`): create a group, join
//! from a Welcome, send and receive an application message, a self-update
//! commit and its processing, add, remove. The full polymls provider (its
//! durable RocksDB store) in two integrations, every OpenMLS call in one
//! transaction as the provider's docs recommend (`polymls`), and every
//! storage write landing on its own (`polymls-naive`), next to
//! `openmls_rust_crypto` on memory storage and on file-backed SQLite
//! storage (default settings, WAL with `synchronous=FULL` and WAL with
//! `synchronous=NORMAL`); the store with an erasure window, the store
//! without syncing and polymls crypto on memory storage show where
//! polymls's time goes. With `POLYMLS_PAIRED=1`, the store's goals are
//! measured as paired ratios first.

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

/// How an application hands OpenMLS its provider for one call.
trait Calls {
    /// The provider OpenMLS sees during the call.
    type Provider<'a>: OpenMlsProvider;
    /// Runs `f`, one OpenMLS call, and lands what it stored.
    fn call<T>(&self, f: impl FnOnce(&Self::Provider<'_>) -> T) -> T;
}

/// The provider itself: each storage write lands on its own.
struct Direct<P>(P);

impl<P: OpenMlsProvider> Calls for Direct<P> {
    type Provider<'a> = P;
    fn call<T>(&self, f: impl FnOnce(&Self::Provider<'_>) -> T) -> T {
        f(&self.0)
    }
}

/// The polymls provider with every OpenMLS call in one transaction: one
/// durable commit per call instead of one per write.
struct Transactional(polymls::Provider);

impl Calls for Transactional {
    type Provider<'a> = polymls::TransactionProvider<'a>;
    fn call<T>(&self, f: impl FnOnce(&Self::Provider<'_>) -> T) -> T {
        self.0
            .transaction(|provider| Ok::<_, std::convert::Infallible>(f(provider)))
            .expect("transaction committed")
    }
}

struct Member<C: Calls> {
    provider: C,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

impl<C: Calls> Member<C> {
    fn new(name: &str, provider: C) -> Self {
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).expect("signature key");
        provider.call(|p| signer.store(p.storage()).expect("store signature key"));
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
        self.provider.call(|p| {
            KeyPackage::builder()
                .build(SUITE, p, &self.signer, self.credential.clone())
                .expect("key package")
                .key_package()
                .clone()
        })
    }
}

fn config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(SUITE)
        .use_ratchet_tree_extension(true)
        .build()
}

fn process<C: Calls>(member: &Member<C>, group: &mut MlsGroup, message: MlsMessageOut) {
    let message = MlsMessageIn::from(message)
        .try_into_protocol_message()
        .expect("protocol message");
    let content = member
        .provider
        .call(|p| group.process_message(p, message).expect("process"))
        .into_content();
    match content {
        ProcessedMessageContent::StagedCommitMessage(commit) => member
            .provider
            .call(|p| group.merge_staged_commit(p, *commit).expect("merge")),
        ProcessedMessageContent::ApplicationMessage(_) => {}
        other => panic!("unexpected {other:?}"),
    }
}

fn join<C: Calls>(member: &Member<C>, welcome: MlsMessageOut) -> MlsGroup {
    let MlsMessageBodyIn::Welcome(welcome) = MlsMessageIn::from(welcome).extract() else {
        panic!("welcome")
    };
    let staged = member.provider.call(|p| {
        StagedWelcome::new_from_welcome(p, config().join_config(), welcome, None)
            .expect("stage welcome")
    });
    member
        .provider
        .call(|p| staged.into_group(p).expect("join"))
}

fn create<C: Calls>(member: &Member<C>) -> MlsGroup {
    member.provider.call(|p| {
        MlsGroup::new(p, &member.signer, &config(), member.credential.clone()).expect("group")
    })
}

/// `member` commits to `group` with `commit` and merges it.
fn commit_and_merge<C: Calls, T>(
    member: &Member<C>,
    group: &mut MlsGroup,
    commit: impl FnOnce(&mut MlsGroup, &C::Provider<'_>) -> T,
) -> T {
    let out = member.provider.call(|p| commit(group, p));
    member
        .provider
        .call(|p| group.merge_pending_commit(p).expect("merge"));
    out
}

/// Alice and Bob on the provider under test, in a group of `size` members
/// (the others are key packages of members who never join).
struct Session<C: Calls> {
    alice: Member<C>,
    bob: Member<C>,
    alice_group: MlsGroup,
    bob_group: MlsGroup,
}

fn session<C: Calls>(make: &impl Fn() -> C, size: usize) -> Session<C> {
    let alice = Member::new("alice", make());
    let bob = Member::new("bob", make());
    let mut alice_group = create(&alice);
    // Each filler its own member: a group refuses two leaves with one signature key.
    let mut key_packages: Vec<KeyPackage> = (2..size)
        .map(|i| {
            Member::new(&format!("filler{i}"), Direct(OpenMlsRustCrypto::default())).key_package()
        })
        .collect();
    key_packages.push(bob.key_package());
    let (_, welcome, _) = commit_and_merge(&alice, &mut alice_group, |group, p| {
        group
            .add_members(p, &alice.signer, &key_packages)
            .expect("add")
    });
    let bob_group = join(&bob, welcome);
    Session {
        alice,
        bob,
        alice_group,
        bob_group,
    }
}

impl<C: Calls> Session<C> {
    /// Alice adds a fresh member (of the provider under test); Bob processes.
    fn add(&mut self, newcomer: &Member<C>) -> MlsMessageOut {
        let key_package = newcomer.key_package();
        let (commit, welcome, _) =
            commit_and_merge(&self.alice, &mut self.alice_group, |group, p| {
                group
                    .add_members(p, &self.alice.signer, &[key_package])
                    .expect("add")
            });
        process(&self.bob, &mut self.bob_group, commit);
        welcome
    }

    /// Alice removes the last member; Bob processes.
    fn remove_last(&mut self) {
        let last = self.alice_group.members().last().expect("member").index;
        let (commit, _, _) = commit_and_merge(&self.alice, &mut self.alice_group, |group, p| {
            group
                .remove_members(p, &self.alice.signer, &[last])
                .expect("remove")
        });
        process(&self.bob, &mut self.bob_group, commit);
    }

    /// Bob commits a self-update; Alice processes.
    fn update(&mut self) {
        let bundle = commit_and_merge(&self.bob, &mut self.bob_group, |group, p| {
            group
                .self_update(p, &self.bob.signer, LeafNodeParameters::default())
                .expect("update")
        });
        process(&self.alice, &mut self.alice_group, bundle.commit().clone());
    }

    /// Alice sends an application message; Bob decrypts it.
    fn message(&mut self) {
        let message = self.alice.provider.call(|p| {
            self.alice_group
                .create_message(p, &self.alice.signer, b"hello")
                .expect("message")
        });
        process(&self.bob, &mut self.bob_group, message);
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

fn bench_provider<C: Calls>(c: &mut Criterion, name: &str, make: impl Fn() -> C) {
    let mut sizes = vec![2, 10, 100];
    if std::env::var_os("POLYMLS_BENCH_1000").is_some() {
        sizes.push(1000);
    }
    let mut group = c.benchmark_group("group");
    for size in sizes {
        let creator = Member::new("creator", make());
        group.bench_function(BenchmarkId::new(format!("create/{name}"), size), |b| {
            b.iter(|| create(&creator))
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
                        let mut joined = joined.take().expect("joined");
                        newcomer
                            .provider
                            .call(|p| joined.delete(p.storage()).expect("delete joined group"));
                        s.remove_last();
                    },
                )
            })
        });
        group.bench_function(BenchmarkId::new(format!("message/{name}"), size), |b| {
            b.iter(|| s.message())
        });
        group.bench_function(BenchmarkId::new(format!("update/{name}"), size), |b| {
            b.iter(|| s.update())
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

/// The erasure window of the `polymls-window` store (see
/// `StoreOptions::erase_within`).
const ERASURE_WINDOW: Duration = Duration::from_secs(1);

/// SQLite's settings compared: its defaults (rollback journal,
/// synchronous=FULL), WAL with synchronous=FULL (one sync per commit) and
/// WAL with synchronous=NORMAL (no sync per commit).
const SQLITE: [(&str, &str); 3] = [
    ("rust_crypto+sqlite", ""),
    (
        "rust_crypto+sqlite-wal-full",
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    ),
    (
        "rust_crypto+sqlite-wal",
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    ),
];

fn groups(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let counter = std::cell::Cell::new(0);
    let next = || {
        counter.set(counter.get() + 1);
        dir.path().join(counter.get().to_string())
    };
    let open = |options: polymls::StoreOptions| {
        polymls::Provider::open_with(next(), options).expect("store")
    };
    let strict = polymls::StoreOptions::default;
    let window = || polymls::StoreOptions::default().erase_within(ERASURE_WINDOW);
    let fast = || polymls::StoreOptions::default().with_durability(false);
    let sqlite = |pragmas: &str| {
        let connection =
            rusqlite::Connection::open(next().with_extension("sqlite")).expect("sqlite");
        connection.execute_batch(pragmas).expect("pragmas");
        let mut storage = openmls_sqlite_storage::SqliteStorageProvider::new(connection);
        storage.run_migrations().expect("migrations");
        Direct(RustCryptoSqlite {
            crypto: RustCrypto::default(),
            storage,
        })
    };
    let memory = || Direct(polymls::Provider::<openmls_memory_storage::MemoryStorage>::default());
    if common::paired_enabled() {
        let wal_full = SQLITE[1].1;
        paired_goals(
            &|| Transactional(open(strict())),
            &|| Transactional(open(window())),
            &|| sqlite(wal_full),
            &|| Transactional(open(fast())),
            &memory,
        );
    }
    bench_provider(c, "polymls", || Transactional(open(strict())));
    bench_provider(c, "polymls-window", || Transactional(open(window())));
    // The same store without transactions (about 14 separately synced
    // writes per commit, as a naive integration does), without syncing
    // (the OS writes back), and polymls crypto on memory storage: where the
    // time of the durable store goes.
    bench_provider(c, "polymls-naive", || Direct(open(strict())));
    bench_provider(c, "polymls-fast", || Transactional(open(fast())));
    bench_provider(c, "polymls+memory", memory);
    bench_provider(c, "rust_crypto+memory", || {
        Direct(OpenMlsRustCrypto::default())
    });
    for (name, pragmas) in SQLITE {
        bench_provider(c, name, || sqlite(pragmas));
    }
}

/// The store's goals as paired ratios (see `common::paired_ratio`): a
/// durable message (create and process) against SQLite in WAL mode with
/// synchronous=FULL, strict and with an erasure window; and commits
/// without syncing against polymls crypto on memory storage, at 2, 10 and
/// 100 members.
fn paired_goals<S: Calls, W: Calls, Q: Calls, F: Calls, M: Calls>(
    strict: &impl Fn() -> S,
    window: &impl Fn() -> W,
    sqlite: &impl Fn() -> Q,
    fast: &impl Fn() -> F,
    memory: &impl Fn() -> M,
) {
    let mut on_sqlite = session(sqlite, 2);
    let mut s = session(strict, 2);
    let ratio = common::paired_ratio(|| s.message(), || on_sqlite.message());
    common::record_ratio(
        "group",
        "message/2",
        "polymls",
        "rust_crypto+sqlite-wal-full",
        ratio,
    );
    let mut w = session(window, 2);
    let ratio = common::paired_ratio(|| w.message(), || on_sqlite.message());
    common::record_ratio(
        "group",
        "message/2",
        "polymls-window",
        "rust_crypto+sqlite-wal-full",
        ratio,
    );
    for size in [2, 10, 100] {
        let mut f = session(fast, size);
        let mut m = session(memory, size);
        let ratio = common::paired_ratio(|| f.update(), || m.update());
        let operation = format!("update/{size}");
        common::record_ratio("group", &operation, "polymls-fast", "polymls+memory", ratio);
        let (f_newcomer, m_newcomer) = (
            Member::new("newcomer", fast()),
            Member::new("newcomer", memory()),
        );
        let ratio = common::paired_ratio(
            || {
                drop(f.add(&f_newcomer));
                f.remove_last();
            },
            || {
                drop(m.add(&m_newcomer));
                m.remove_last();
            },
        );
        let operation = format!("add+remove/{size}");
        common::record_ratio("group", &operation, "polymls-fast", "polymls+memory", ratio);
    }
}

criterion_group! {
    name = benches;
    config = common::criterion().sample_size(10).measurement_time(Duration::from_secs(3));
    targets = groups
}
criterion_main!(benches);
