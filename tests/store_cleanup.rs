//! What OpenMLS 0.9.2 leaves behind in storage, and the store cleans up:
//! after `MlsGroup::delete`, after being removed, and after an Update that
//! is never committed, no secret record of the group is left.

mod common;

use std::collections::BTreeMap;

use common::member::Member;
use openmls::prelude::Ciphersuite;
use openmls_traits::OpenMlsProvider as _;
use polymls::store::entities::Entity;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// The member's secret records, by entity, apart from its signature key
/// pair (the application's, kept across groups).
fn secrets(member: &Member) -> BTreeMap<Entity, usize> {
    let inventory = member.provider.storage().inventory().expect("inventory");
    inventory
        .into_iter()
        .filter(|(entity, _)| entity.is_secret() && *entity != Entity::SignatureKeyPair)
        .map(|(entity, usage)| (entity, usage.records))
        .collect()
}

fn count(member: &Member, entity: Entity) -> usize {
    secrets(member).get(&entity).copied().unwrap_or(0)
}

/// Alice and Bob in a group with a few epochs and messages behind them.
fn pair(dir: &std::path::Path) -> (Member, Member) {
    let mut alice = Member::new(dir, "alice", SUITE);
    let mut bob = Member::new(dir, "bob", SUITE);
    alice.create_group(b"cleanup group");
    let (_, welcome) = alice.add(&[bob.key_package()]);
    bob.join(&welcome);
    let message = bob.send(b"hi");
    assert_eq!(alice.receive(&message).as_deref(), Some(&b"hi"[..]));
    let commit = alice.self_update();
    bob.receive(&commit);
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
    (alice, bob)
}

#[test]
fn deleting_a_group_leaves_no_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_alice, mut bob) = pair(dir.path());
    assert!(
        count(&bob, Entity::MessageSecrets) == 1 && count(&bob, Entity::EpochKeyPairs) >= 1,
        "positive control: {:?}",
        secrets(&bob)
    );
    bob.delete_group();
    assert_eq!(secrets(&bob), BTreeMap::new());
    println!("after MlsGroup::delete: 0 secret records");
}

#[test]
fn a_removed_member_keeps_no_epoch_key_pairs_and_deleting_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(dir.path());
    let commit = alice.remove("bob");
    bob.receive(&commit);
    // OpenMLS 0.9.2 neither writes nor deletes epoch key pairs for a member
    // it removes; the store erases them when the group turns inactive.
    assert_eq!(count(&bob, Entity::EpochKeyPairs), 0, "{:?}", secrets(&bob));
    bob.delete_group();
    assert_eq!(secrets(&bob), BTreeMap::new());
    println!("after being removed and deleting: 0 secret records");
}

#[test]
fn an_uncommitted_update_leaves_no_private_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_alice, mut bob) = pair(dir.path());
    // The proposal is never delivered, so never committed.
    let _proposal = bob.propose_update();
    assert_eq!(
        count(&bob, Entity::EncryptionKeyPair),
        1,
        "positive control: the Update's key pair is stored"
    );
    bob.delete_group();
    assert_eq!(secrets(&bob), BTreeMap::new());
    println!("after an uncommitted Update and deleting: 0 secret records");
}

/// The clean-up must not take a key OpenMLS still needs: an Update that
/// another member commits is decrypted with the standalone key pair.
#[test]
fn a_committed_update_still_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(dir.path());
    let proposal = bob.propose_update();
    alice.receive(&proposal);
    let commit = alice.commit_pending();
    bob.receive(&commit);
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
    assert_eq!(
        count(&bob, Entity::EncryptionKeyPair),
        0,
        "OpenMLS deletes it once applied"
    );
    let message = bob.send(b"after the update");
    assert_eq!(
        alice.receive(&message).as_deref(),
        Some(&b"after the update"[..])
    );
}

/// Commits reach what they erase through the group's index: over 30 epochs
/// of commits and messages on both sides, neither store scans, and each
/// keeps the epoch key pairs of one epoch only.
#[test]
fn commits_erase_old_epoch_key_pairs_without_scans() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(dir.path());
    let scans = |m: &Member| m.provider.storage().counters().scans;
    let before = (scans(&alice), scans(&bob));
    for epoch in 0..30 {
        let (committer, receiver) = if epoch % 2 == 0 {
            (&mut alice, &mut bob)
        } else {
            (&mut bob, &mut alice)
        };
        let commit = committer.self_update();
        receiver.receive(&commit);
        let message = receiver.send(b"after the commit");
        committer.receive(&message);
        for member in [&alice, &bob] {
            assert!(
                count(member, Entity::EpochKeyPairs) <= 1,
                "epoch {epoch}: {:?}",
                secrets(member)
            );
        }
    }
    // `secrets` reads the inventory, which scans: count it out.
    let inventories = 30;
    let after = (scans(&alice), scans(&bob));
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (inventories, inventories),
        "the commits scanned"
    );
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
    println!("30 epochs: no scans; one epoch of key pairs kept per store");
}
