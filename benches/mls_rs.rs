//! mls-rs on polymls against mls-rs on its own `mls-rs-crypto-rustcrypto`:
//! HPKE seal and open on 0x0001 through the `CipherSuiteProvider` trait
//! (with paired ratios, as in `BENCHMARKS.md`), and group operations at 2,
//! 10 and 100 members on 0x0001 (0xF110 beside them for polymls, which
//! rustcrypto does not offer): create, join, one message (encrypt and
//! process), a self-update commit and its processing, add, join, remove.
//! In-memory storage on both sides: this group measures the crypto.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use mls_rs::client_builder::MlsConfig;
use mls_rs::group::CommitOutput;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::identity::SigningIdentity;
use mls_rs::{
    CipherSuite, CipherSuiteProvider, Client, CryptoProvider, ExtensionList, Group, MlsMessage,
};
use polymls::mls_rs::MlsRsCrypto;

const INFO: &[u8] = b"MLS 1.0 Welcome, a typical info string of a few dozen bytes";
const PLAINTEXT: [u8; 64] = [7; 64];

fn client<P: CryptoProvider + Clone>(
    provider: P,
    name: &str,
    suite: CipherSuite,
) -> Client<impl MlsConfig> {
    let (secret, public) = provider
        .cipher_suite_provider(suite)
        .expect("suite")
        .signature_key_generate()
        .expect("signer");
    let identity = SigningIdentity::new(
        BasicCredential::new(name.as_bytes().to_vec()).into_credential(),
        public,
    );
    Client::builder()
        .identity_provider(BasicIdentityProvider)
        .crypto_provider(provider)
        .signing_identity(identity, secret, suite)
        .build()
}

/// HPKE seal and open of 64 bytes through the trait mls-rs calls.
struct Hpke<'a, S: CipherSuiteProvider> {
    suite: &'a S,
    secret: mls_rs_core::crypto::HpkeSecretKey,
    public: mls_rs_core::crypto::HpkePublicKey,
    sealed: mls_rs_core::crypto::HpkeCiphertext,
}

impl<'a, S: CipherSuiteProvider> Hpke<'a, S> {
    fn new(suite: &'a S) -> Self {
        let (secret, public) = suite.kem_generate().expect("key pair");
        let sealed = suite
            .hpke_seal(&public, INFO, None, &PLAINTEXT)
            .expect("seal");
        Hpke {
            suite,
            secret,
            public,
            sealed,
        }
    }

    fn seal(&self) {
        black_box(
            self.suite
                .hpke_seal(&self.public, INFO, None, black_box(&PLAINTEXT))
                .expect("seal"),
        );
    }

    fn open(&self) {
        black_box(
            self.suite
                .hpke_open(
                    black_box(&self.sealed),
                    &self.secret,
                    &self.public,
                    INFO,
                    None,
                )
                .expect("open"),
        );
    }
}

fn hpke_benches(c: &mut Criterion) {
    let suite = CipherSuite::CURVE25519_AES128;
    let polymls = MlsRsCrypto::default()
        .cipher_suite_provider(suite)
        .expect("polymls");
    let rustcrypto = mls_rs_crypto_rustcrypto::RustCryptoProvider::default()
        .cipher_suite_provider(suite)
        .expect("rustcrypto");
    let (poly, rust) = (Hpke::new(&polymls), Hpke::new(&rustcrypto));
    let mut group = c.benchmark_group("mls_rs/hpke 0x0001");
    group.bench_function(BenchmarkId::new("seal", "polymls"), |b| {
        b.iter(|| poly.seal())
    });
    group.bench_function(BenchmarkId::new("seal", "rustcrypto"), |b| {
        b.iter(|| rust.seal())
    });
    group.bench_function(BenchmarkId::new("open", "polymls"), |b| {
        b.iter(|| poly.open())
    });
    group.bench_function(BenchmarkId::new("open", "rustcrypto"), |b| {
        b.iter(|| rust.open())
    });
    group.finish();
    if common::paired_enabled() {
        let seal = common::paired_ratio(|| rust.seal(), || poly.seal());
        common::record_ratio("mls_rs", "hpke 0x0001 seal", "rustcrypto", "polymls", seal);
        let open = common::paired_ratio(|| rust.open(), || poly.open());
        common::record_ratio("mls_rs", "hpke 0x0001 open", "rustcrypto", "polymls", open);
    }
}

/// Commits the addition of `key_package`'s client to `group` and applies it.
fn add_and_apply<C: MlsConfig>(group: &mut Group<C>, key_package: MlsMessage) -> CommitOutput {
    let out = group
        .commit_builder()
        .add_member(key_package)
        .expect("add")
        .build()
        .expect("commit");
    group.apply_pending_commit().expect("apply");
    out
}

/// A group of `size` members made by the first of `clients`; the group of
/// the creator and of the last member added.
fn group_of<C: MlsConfig>(clients: &[Client<C>]) -> (Group<C>, Group<C>) {
    let mut creator = clients[0]
        .create_group(ExtensionList::default(), ExtensionList::default(), None)
        .expect("create");
    let mut commit = creator.commit_builder();
    for client in &clients[1..] {
        let key_package = client
            .generate_key_package_message(Default::default(), Default::default(), None)
            .expect("key package");
        commit = commit.add_member(key_package).expect("add");
    }
    let output = commit.build().expect("commit");
    creator.apply_pending_commit().expect("apply");
    let last = clients.last().expect("members");
    let (member, _) = last
        .join_group(None, &output.welcome_messages[0], None)
        .expect("join");
    (creator, member)
}

/// Group operations of one provider at one size.
fn group_benches<P: CryptoProvider + Clone + 'static>(
    c: &mut Criterion,
    provider_name: &str,
    provider: P,
    suite: CipherSuite,
    size: usize,
) {
    let id = format!("{provider_name}/{size}");
    let clients: Vec<_> = (0..=size)
        .map(|i| client(provider.clone(), &format!("member{i}"), suite))
        .collect();
    let members = &clients[..size];
    let newcomer = &clients[size];
    let mut group = c.benchmark_group(format!("mls_rs/group {:#06x}", suite.raw_value()));
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("create", &id), |b| {
        b.iter(|| {
            members[0]
                .create_group(ExtensionList::default(), ExtensionList::default(), None)
                .expect("create")
        })
    });
    let (mut creator, mut member) = group_of(members);
    // A message: encrypted by the creator, processed by a member.
    group.bench_function(BenchmarkId::new("message", &id), |b| {
        b.iter(|| {
            let message = creator
                .encrypt_application_message(&PLAINTEXT, Vec::new())
                .expect("encrypt");
            black_box(member.process_incoming_message(message).expect("process"));
        })
    });
    // Add, join, remove, self-update: each from the same state, restored
    // from the creator's storage before every iteration.
    creator.write_to_storage().expect("write");
    let group_id = creator.group_id().to_vec();
    let fresh = || members[0].load_group(&group_id).expect("load");
    let key_package = || {
        newcomer
            .generate_key_package_message(Default::default(), Default::default(), None)
            .expect("key package")
    };
    group.bench_function(BenchmarkId::new("add", &id), |b| {
        b.iter_batched(
            || (fresh(), key_package()),
            |(mut g, kp): (Group<_>, MlsMessage)| add_and_apply(&mut g, kp),
            BatchSize::PerIteration,
        )
    });
    group.bench_function(BenchmarkId::new("join", &id), |b| {
        b.iter_batched(
            || {
                let mut g = fresh();
                let out = g
                    .commit_builder()
                    .add_member(key_package())
                    .expect("add")
                    .build()
                    .expect("commit");
                out.welcome_messages[0].clone()
            },
            |welcome| newcomer.join_group(None, &welcome, None).expect("join"),
            BatchSize::PerIteration,
        )
    });
    group.bench_function(BenchmarkId::new("remove", &id), |b| {
        b.iter_batched(
            fresh,
            |mut g| {
                let last = g.roster().members().last().expect("member").index;
                let out = g
                    .commit_builder()
                    .remove_member(last)
                    .expect("remove")
                    .build()
                    .expect("commit");
                g.apply_pending_commit().expect("apply");
                out
            },
            BatchSize::PerIteration,
        )
    });
    // The self-update by the creator and its processing by a member.
    member.write_to_storage().expect("write");
    let member_client = &members[size - 1];
    group.bench_function(BenchmarkId::new("update", &id), |b| {
        b.iter_batched(
            || (fresh(), member_client.load_group(&group_id).expect("load")),
            |(mut g, mut m)| {
                let out = g.commit(Vec::new()).expect("commit");
                g.apply_pending_commit().expect("apply");
                black_box(
                    m.process_incoming_message(out.commit_message)
                        .expect("process"),
                )
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    drop((creator, member));
}

/// A group of all clients but the last, as its creator and a member see
/// it, with a commit adding the last one pending at the creator (and its
/// Welcome), and the creator's group as it was before that commit.
struct PairedGroup<C: MlsConfig> {
    creator: Group<C>,
    member: Group<C>,
    before_add: Group<C>,
    key_package: MlsMessage,
    welcome: MlsMessage,
}

impl<C: MlsConfig> PairedGroup<C> {
    fn new(clients: &[Client<C>]) -> Self {
        let size = clients.len() - 1;
        let (mut creator, member) = group_of(&clients[..size]);
        let before_add = creator.clone();
        let key_package = clients[size]
            .generate_key_package_message(Default::default(), Default::default(), None)
            .expect("key package");
        let out = creator
            .commit_builder()
            .add_member(key_package.clone())
            .expect("add")
            .build()
            .expect("commit");
        PairedGroup {
            creator,
            member,
            before_add,
            key_package,
            welcome: out.welcome_messages[0].clone(),
        }
    }

    /// An add commit (with its Welcome) and its application, from a copy
    /// of the group before the pending add (the copy is cheap beside the
    /// commit).
    fn add_to_a_copy(&self) {
        let mut group = self.before_add.clone();
        black_box(add_and_apply(&mut group, self.key_package.clone()));
    }
}

/// Paired ratios (rustcrypto over polymls) of the operations whose medians
/// come closest: processing a Welcome, an add commit and one message, at
/// `size` members. A Welcome can be joined again and again (the key
/// package stays until the client writes to storage); messages are
/// processed in order.
fn paired_group_ratios(size: usize) {
    let suite = CipherSuite::CURVE25519_AES128;
    let poly: Vec<_> = (0..=size)
        .map(|i| client(MlsRsCrypto::default(), &format!("p{i}"), suite))
        .collect();
    let rust: Vec<_> = (0..=size)
        .map(|i| {
            client(
                mls_rs_crypto_rustcrypto::RustCryptoProvider::default(),
                &format!("r{i}"),
                suite,
            )
        })
        .collect();
    let mut poly_group = PairedGroup::new(&poly);
    let mut rust_group = PairedGroup::new(&rust);
    let join = common::paired_ratio(
        || {
            black_box(
                rust[size]
                    .join_group(None, &rust_group.welcome, None)
                    .expect("join"),
            );
        },
        || {
            black_box(
                poly[size]
                    .join_group(None, &poly_group.welcome, None)
                    .expect("join"),
            );
        },
    );
    let operation = format!("join, {size} members");
    common::record_ratio("mls_rs", &operation, "rustcrypto", "polymls", join);
    let add = common::paired_ratio(|| rust_group.add_to_a_copy(), || poly_group.add_to_a_copy());
    let operation = format!("add, {size} members");
    common::record_ratio("mls_rs", &operation, "rustcrypto", "polymls", add);
    // The pending add is not applied: messages go out in the current epoch.
    let message = common::paired_ratio(
        || {
            let m = rust_group
                .creator
                .encrypt_application_message(&PLAINTEXT, Vec::new())
                .expect("encrypt");
            black_box(
                rust_group
                    .member
                    .process_incoming_message(m)
                    .expect("process"),
            );
        },
        || {
            let m = poly_group
                .creator
                .encrypt_application_message(&PLAINTEXT, Vec::new())
                .expect("encrypt");
            black_box(
                poly_group
                    .member
                    .process_incoming_message(m)
                    .expect("process"),
            );
        },
    );
    let operation = format!("message, {size} members");
    common::record_ratio("mls_rs", &operation, "rustcrypto", "polymls", message);
}

fn benches(c: &mut Criterion) {
    hpke_benches(c);
    if common::paired_enabled() {
        for size in [2, 10, 100] {
            paired_group_ratios(size);
        }
    }
    for size in [2, 10, 100] {
        let suite = CipherSuite::CURVE25519_AES128;
        group_benches(c, "polymls", MlsRsCrypto::default(), suite, size);
        group_benches(
            c,
            "rustcrypto",
            mls_rs_crypto_rustcrypto::RustCryptoProvider::default(),
            suite,
            size,
        );
        group_benches(
            c,
            "polymls",
            MlsRsCrypto::default(),
            CipherSuite::new(0xF110),
            size,
        );
    }
}

criterion_group! {
    name = mls_rs_benches;
    config = common::criterion();
    targets = benches
}
criterion_main!(mls_rs_benches);
