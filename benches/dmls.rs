//! Distributed MLS operations beside the same operations in one OpenMLS
//! group of the same size, both on polymls with stores that do not sync
//! (the operations' cost, not the disk's): PROTECT and UNPROTECT, UPDATE
//! (the owner's commit, and its processing by a member) and COMMIT with a
//! PSK import (likewise), at 3, 10 and 50 participants.

mod common;

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use polymls::dmls::Participant;
use polymls::{Provider, StoreOptions};

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const SIZES: [usize; 3] = [3, 10, 50];

fn options() -> StoreOptions {
    StoreOptions::default().with_durability(false)
}

/// `count` participants with their send groups set up.
fn dmls_session(dir: &Path, count: usize) -> Vec<Participant> {
    let mut participants: Vec<Participant> = (0..count)
        .map(|i| {
            Participant::create_with(
                dir.join(format!("p{i}")),
                format!("p{i}").as_bytes(),
                SUITE,
                options(),
            )
            .expect("create")
        })
        .collect();
    for owner in 0..count {
        let key_packages: Vec<Vec<u8>> = (0..count)
            .filter(|other| *other != owner)
            .map(|other| participants[other].key_package().expect("key package"))
            .collect();
        let welcome = participants[owner]
            .add(&key_packages)
            .expect("add")
            .pop()
            .expect("welcome");
        for (index, participant) in participants.iter_mut().enumerate() {
            if index != owner {
                participant.receive(&welcome).expect("join");
            }
        }
    }
    participants
}

/// One member of a plain OpenMLS group on polymls.
struct Member {
    provider: Provider,
    signer: SignatureKeyPair,
    group: Option<MlsGroup>,
}

fn wire(message: &MlsMessageOut) -> Vec<u8> {
    message.tls_serialize_detached().expect("serialize")
}

fn protocol(bytes: &[u8]) -> ProtocolMessage {
    MlsMessageIn::tls_deserialize_exact(bytes)
        .expect("parse")
        .try_into_protocol_message()
        .expect("protocol message")
}

impl Member {
    fn new(dir: &Path, name: &str) -> Member {
        let provider = Provider::open_with(dir.join(name), options()).expect("store");
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).expect("key");
        signer.store(provider.storage()).expect("store key");
        Member {
            provider,
            signer,
            group: None,
        }
    }

    fn credential(&self, name: &str) -> CredentialWithKey {
        CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: self.signer.public().into(),
        }
    }

    /// An application message.
    fn message(&mut self, text: &[u8]) -> Vec<u8> {
        let group = self.group.as_mut().expect("in the group");
        wire(
            &group
                .create_message(&self.provider, &self.signer, text)
                .expect("message"),
        )
    }

    /// A self-update commit, merged.
    fn self_update(&mut self) -> Vec<u8> {
        let group = self.group.as_mut().expect("in the group");
        let bundle = group
            .self_update(&self.provider, &self.signer, LeafNodeParameters::default())
            .expect("update");
        group.merge_pending_commit(&self.provider).expect("merge");
        wire(bundle.commit())
    }

    /// Processes a commit or an application message.
    fn process(&mut self, bytes: &[u8]) {
        let provider = &self.provider;
        let group = self.group.as_mut().expect("in the group");
        let processed = group
            .process_message(provider, protocol(bytes))
            .expect("process");
        if let ProcessedMessageContent::StagedCommitMessage(commit) = processed.into_content() {
            group.merge_staged_commit(provider, *commit).expect("merge");
        }
    }
}

/// One OpenMLS group of `count` members, created by the first.
fn single_group(dir: &Path, count: usize) -> Vec<Member> {
    let mut members: Vec<Member> = (0..count)
        .map(|i| Member::new(dir, &format!("m{i}")))
        .collect();
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(SUITE)
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .build();
    let key_packages: Vec<KeyPackage> = members[1..]
        .iter()
        .enumerate()
        .map(|(i, m)| {
            KeyPackage::builder()
                .build(
                    SUITE,
                    &m.provider,
                    &m.signer,
                    m.credential(&format!("m{}", i + 1)),
                )
                .expect("key package")
                .key_package()
                .clone()
        })
        .collect();
    let creator = &mut members[0];
    let credential = creator.credential("m0");
    let mut group =
        MlsGroup::new(&creator.provider, &creator.signer, &config, credential).expect("group");
    let (_, welcome, _) = group
        .add_members(&creator.provider, &creator.signer, &key_packages)
        .expect("add");
    group
        .merge_pending_commit(&creator.provider)
        .expect("merge");
    creator.group = Some(group);
    let MlsMessageBodyOut::Welcome(welcome) = welcome.body() else {
        panic!("a welcome");
    };
    let join = MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .build();
    for member in &mut members[1..] {
        let welcome =
            Welcome::tls_deserialize_exact(welcome.tls_serialize_detached().expect("serialize"))
                .expect("parse");
        let group = StagedWelcome::new_from_welcome(&member.provider, &join, welcome, None)
            .expect("stage")
            .into_group(&member.provider)
            .expect("join");
        member.group = Some(group);
    }
    members
}

fn dmls(c: &mut Criterion) {
    let mut bench = c.benchmark_group("dmls");
    for count in SIZES {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ps = dmls_session(dir.path(), count);
        let (owner, rest) = ps.split_first_mut().expect("participants");
        let (member, others) = rest.split_first_mut().expect("a member");

        // Unprotect first: protect's unreceived messages would put the
        // member beyond its forward distance.
        bench.bench_function(format!("unprotect/dmls/{count}"), |b| {
            b.iter_batched(
                || {
                    owner
                        .protect(b"a message")
                        .expect("protect")
                        .pop()
                        .expect("message")
                },
                |message| member.receive(&message).expect("unprotect"),
                BatchSize::PerIteration,
            )
        });
        bench.bench_function(format!("protect/dmls/{count}"), |b| {
            b.iter(|| owner.protect(black_box(b"a message")).expect("protect"))
        });
        // The owner's UPDATE (its own commit; its proposals in the others'
        // groups wait after the first), and a member processing it.
        bench.bench_function(format!("update/dmls/{count}"), |b| {
            b.iter(|| {
                let commit = owner.update().expect("update").swap_remove(0);
                member.receive(&commit).expect("process")
            })
        });
        // COMMIT importing one fresh epoch (another participant's UPDATE,
        // seen by the owner and the member in the setup), and a member
        // processing it.
        let updater = &mut others[0];
        bench.bench_function(format!("commit_psk/dmls/{count}"), |b| {
            b.iter_custom(|iterations| {
                let mut measured = std::time::Duration::ZERO;
                for _ in 0..iterations {
                    let commit = updater.update().expect("update").swap_remove(0);
                    owner.receive(&commit).expect("owner sees it");
                    member.receive(&commit).expect("member sees it");
                    let start = std::time::Instant::now();
                    let commit = owner.commit().expect("commit").pop().expect("a commit");
                    black_box(member.receive(&commit).expect("process"));
                    measured += start.elapsed();
                }
                measured
            })
        });
        drop(ps);

        let dir = tempfile::tempdir().expect("temp dir");
        let mut ms = single_group(dir.path(), count);
        let (sender, rest) = ms.split_first_mut().expect("members");
        let receiver = &mut rest[0];
        bench.bench_function(format!("unprotect/single/{count}"), |b| {
            b.iter_batched(
                || sender.message(b"a message"),
                |message| receiver.process(&message),
                BatchSize::PerIteration,
            )
        });
        bench.bench_function(format!("protect/single/{count}"), |b| {
            b.iter(|| sender.message(black_box(b"a message")))
        });
        bench.bench_function(format!("update/single/{count}"), |b| {
            b.iter(|| {
                let commit = sender.self_update();
                receiver.process(&commit)
            })
        });
    }
    bench.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion().sample_size(10);
    targets = dmls
}
criterion_main!(benches);
