//! Distributed MLS without a Delivery Service: participants exchange
//! messages over a simulated network that delays, reorders, duplicates and
//! partitions, and every participant reads every message of every send
//! group it belongs to; messages the send-group rules forbid are refused
//! and change nothing; a PSK import makes the importing group's epoch
//! depend on the imported group.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use openmls::schedule::PreSharedKeyId;
use polymls::dmls::{psk_id, send_group_id, DmlsError, Participant, Received};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

fn name(index: usize) -> Vec<u8> {
    format!("participant-{index}").into_bytes()
}

/// `participants` with their send groups set up (INIT): each adds all
/// the others with a KeyPackage each gave it, and every Welcome is
/// delivered.
fn session(dir: &Path, count: usize) -> Vec<Participant> {
    let mut participants: Vec<Participant> = (0..count)
        .map(|i| Participant::create(dir.join(format!("p{i}")), &name(i), SUITE).expect("create"))
        .collect();
    let mut welcomes = Vec::new();
    for owner in 0..count {
        let key_packages: Vec<Vec<u8>> = (0..count)
            .filter(|other| *other != owner)
            .map(|other| participants[other].key_package().expect("key package"))
            .collect();
        welcomes.extend(participants[owner].add(&key_packages).expect("init"));
    }
    for welcome in &welcomes {
        for participant in participants.iter_mut() {
            match participant.receive(welcome).expect("welcome") {
                Received::Joined { .. } | Received::NotForUs => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    for participant in &participants {
        assert_eq!(participant.other_groups().count(), count - 1);
    }
    participants
}

/// A message on the wire, to one receiver.
struct Parcel {
    /// Whether a partition held it (counted once).
    held: bool,
    from: usize,
    to: usize,
    due: u64,
    sequence: u64,
    bytes: Vec<u8>,
}

/// The network: every message goes to every other participant, after a
/// random delay, in random order, sometimes twice; a partition holds the
/// messages across it until it heals.
struct Network {
    rng: ChaCha8Rng,
    in_flight: Vec<Parcel>,
    sequence: u64,
    /// The side of each participant while partitioned.
    partition: Option<Vec<bool>>,
    delivered: u64,
    duplicated: u64,
    reordered: u64,
    held_by_partition: u64,
    last_sequence_to: BTreeMap<usize, u64>,
}

impl Network {
    fn new(seed: u64) -> Network {
        Network {
            rng: ChaCha8Rng::seed_from_u64(seed),
            in_flight: Vec::new(),
            sequence: 0,
            partition: None,
            delivered: 0,
            duplicated: 0,
            reordered: 0,
            held_by_partition: 0,
            last_sequence_to: BTreeMap::new(),
        }
    }

    fn below(&mut self, n: u32) -> u32 {
        self.rng.next_u32() % n
    }

    fn broadcast(&mut self, now: u64, from: usize, count: usize, bytes: &[u8]) {
        self.sequence += 1;
        for to in (0..count).filter(|to| *to != from) {
            let copies = if self.below(10) == 0 { 2 } else { 1 };
            self.duplicated += copies - 1;
            for _ in 0..copies {
                let due = now + u64::from(self.below(4));
                self.in_flight.push(Parcel {
                    held: false,
                    from,
                    to,
                    due,
                    sequence: self.sequence,
                    bytes: bytes.to_vec(),
                });
            }
        }
    }

    /// The parcels due by `now` that no partition holds, shuffled.
    fn due(&mut self, now: u64) -> Vec<Parcel> {
        let mut due = Vec::new();
        let mut kept = Vec::new();
        for mut parcel in std::mem::take(&mut self.in_flight) {
            let across = self
                .partition
                .as_ref()
                .is_some_and(|side| side[parcel.from] != side[parcel.to]);
            if parcel.due <= now && !across {
                due.push(parcel);
            } else {
                if parcel.due <= now && !parcel.held {
                    parcel.held = true;
                    self.held_by_partition += 1;
                }
                kept.push(parcel);
            }
        }
        self.in_flight = kept;
        for i in (1..due.len()).rev() {
            let j = self.below(i as u32 + 1) as usize;
            due.swap(i, j);
        }
        for parcel in &due {
            let last = self.last_sequence_to.entry(parcel.to).or_default();
            if parcel.sequence < *last {
                self.reordered += 1;
            }
            *last = (*last).max(parcel.sequence);
            self.delivered += 1;
        }
        due
    }
}

/// What the test expects and what it saw.
#[derive(Default)]
struct Ledger {
    /// (owner, text) of every application message sent.
    sent: BTreeSet<(usize, Vec<u8>)>,
    /// Per receiver: the (owner, text) it read.
    read: BTreeMap<usize, BTreeSet<(usize, Vec<u8>)>>,
    waits: u64,
    stale: u64,
    duplicates_seen: u64,
    psk_commits: u64,
    updates: u64,
    refusals: u64,
    injected: u64,
}

fn index_of(owner: &[u8], count: usize) -> usize {
    (0..count).find(|i| name(*i) == owner).expect("known owner")
}

/// The session on the network, with what the test expects and saw.
struct Sim {
    participants: Vec<Participant>,
    /// Per participant: messages it must process later.
    backlogs: Vec<Vec<Vec<u8>>>,
    network: Network,
    ledger: Ledger,
}

impl Sim {
    /// Delivers `bytes` to participant `to`; keeps it in the backlog when
    /// it must wait; broadcasts what the participant sends in response.
    /// `first`: not a retry.
    fn deliver(&mut self, now: u64, to: usize, bytes: Vec<u8>, first: bool) -> bool {
        let count = self.participants.len();
        match self.participants[to].receive(&bytes) {
            Ok(Received::Message { owner, plaintext }) => {
                self.ledger
                    .read
                    .entry(to)
                    .or_default()
                    .insert((index_of(&owner, count), plaintext));
            }
            Ok(Received::Commit { outgoing, .. }) => {
                for message in outgoing {
                    self.network.broadcast(now, to, count, &message);
                }
            }
            Ok(Received::Duplicate) => self.ledger.duplicates_seen += 1,
            Ok(Received::Stale) => self.ledger.stale += 1,
            Ok(_) => {}
            Err(DmlsError::NotYet) | Err(DmlsError::UnknownGroup) => {
                self.ledger.waits += u64::from(first);
                self.backlogs[to].push(bytes);
                return false;
            }
            Err(error) => panic!("participant {to}: {error}"),
        }
        true
    }

    /// Retries the backlog of `to` until nothing more goes through.
    fn retry(&mut self, now: u64, to: usize) {
        loop {
            let mut progressed = false;
            for bytes in std::mem::take(&mut self.backlogs[to]) {
                progressed |= self.deliver(now, to, bytes, false);
            }
            if !progressed {
                break;
            }
        }
    }

    /// Delivers what is due, retrying each receiver's backlog after.
    fn step(&mut self, now: u64) {
        for parcel in self.network.due(now) {
            self.deliver(now, parcel.to, parcel.bytes, true);
            self.retry(now, parcel.to);
        }
    }
}

/// A member other than the owner of `owner`'s send group crafts a commit
/// and an application message there (valid MLS, forbidden by the send
/// group rules), without keeping either in its own store.
fn forge(forger: &Participant, owner_group: &[u8]) -> Vec<Vec<u8>> {
    let provider = forger.provider();
    let signer = forger.signer();
    let group_id = GroupId::from_slice(owner_group);
    let mut forged = Vec::new();
    for kind in ["commit", "message"] {
        let outcome = provider.transaction(|p| {
            let mut group = MlsGroup::load(p.storage(), &group_id)
                .expect("load")
                .expect("member of the group");
            // OpenMLS sends nothing while the forger's Update waits.
            group.clear_pending_proposals(p.storage()).expect("clear");
            let message = match kind {
                "commit" => group
                    .self_update(p, signer, LeafNodeParameters::default())
                    .expect("forge a commit")
                    .into_commit(),
                _ => group
                    .create_message(p, signer, b"forged")
                    .expect("forge a message"),
            };
            // Abort: the forger's store keeps nothing of it.
            Err::<(), _>(Box::new(message))
        });
        let Err(polymls::TransactionError::Aborted(message)) = outcome else {
            panic!("the forging transaction must abort");
        };
        forged.push(
            openmls::prelude::tls_codec::Serialize::tls_serialize_detached(&message)
                .expect("serialize"),
        );
    }
    forged
}

#[test]
fn five_participants_over_a_partitioned_network() {
    const COUNT: usize = 5;
    const ROUNDS: u64 = 50;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sim = Sim {
        participants: session(dir.path(), COUNT),
        backlogs: vec![Vec::new(); COUNT],
        network: Network::new(0x0d31_5e55),
        ledger: Ledger::default(),
    };
    let mut partitions = 0;

    for round in 0..ROUNDS {
        // Partitions: {3, 4} cut off for rounds 10-17, {1} for 30-35.
        sim.network.partition = match round {
            10..=17 => Some((0..COUNT).map(|i| i >= 3).collect()),
            30..=35 => Some((0..COUNT).map(|i| i == 1).collect()),
            _ => None,
        };
        if round == 10 || round == 30 {
            partitions += 1;
        }
        // Every participant acts: sometimes an UPDATE, sometimes a COMMIT
        // importing the others' PSKs, and a message every round.
        let Sim {
            participants,
            network,
            ledger,
            ..
        } = &mut sim;
        for (actor, participant) in participants.iter_mut().enumerate() {
            let mut outgoing = Vec::new();
            let dice = network.below(10);
            if dice < 2 {
                outgoing.extend(participant.update().expect("update"));
                ledger.updates += 1;
            } else if dice < 5 {
                let commit = participant.commit().expect("commit");
                ledger.psk_commits += u64::from(!commit.is_empty());
                outgoing.extend(commit);
            }
            let text = format!("round {round} from {actor}").into_bytes();
            outgoing.extend(participant.protect(&text).expect("protect"));
            ledger.sent.insert((actor, text));
            for message in outgoing {
                network.broadcast(round, actor, COUNT, &message);
            }
        }
        sim.step(round);
        // Halfway, one participant's process restarts from its store.
        if round == 25 {
            drop(sim.participants.remove(2));
            let reopened = Participant::open(dir.path().join("p2")).expect("reopen");
            sim.participants.insert(2, reopened);
        }
    }

    // Heal and drain.
    sim.network.partition = None;
    let mut now = ROUNDS;
    while !sim.network.in_flight.is_empty() || sim.backlogs.iter().any(|b| !b.is_empty()) {
        now += 1;
        assert!(
            now < ROUNDS + 50,
            "the network does not drain: {:?}",
            sim.backlogs.iter().map(Vec::len).collect::<Vec<_>>()
        );
        sim.step(now);
        for to in 0..COUNT {
            sim.retry(now, to);
        }
    }
    let Sim {
        mut participants,
        network,
        mut ledger,
        ..
    } = sim;

    // Every participant read every message of every other participant.
    for receiver in 0..COUNT {
        let expected: BTreeSet<_> = ledger
            .sent
            .iter()
            .filter(|(owner, _)| *owner != receiver)
            .cloned()
            .collect();
        let read = ledger.read.get(&receiver).cloned().unwrap_or_default();
        assert_eq!(
            expected.difference(&read).count(),
            0,
            "participant {receiver} missed messages"
        );
    }
    // Every member of every send group agrees on its epoch.
    for owner in 0..COUNT {
        let group_id = send_group_id(&name(owner));
        let authenticator = |p: &Participant| {
            let group = p.group(&group_id).expect("member");
            (
                group.epoch().as_u64(),
                group.epoch_authenticator().as_slice().to_vec(),
            )
        };
        let owners = authenticator(&participants[owner]);
        for member in &participants {
            assert_eq!(authenticator(member), owners, "send group of {owner}");
        }
    }

    // Forged commits and messages from non-owner members are refused, by
    // every member, and change nothing.
    for (owner, forger) in [(0, 1), (2, 4), (4, 3)] {
        let group_id = send_group_id(&name(owner));
        for forged in forge(&participants[forger], &group_id) {
            ledger.injected += 1;
            for receiver in (0..COUNT).filter(|r| *r != forger) {
                let epoch = participants[receiver]
                    .group(&group_id)
                    .expect("member")
                    .epoch();
                match participants[receiver].receive(&forged) {
                    Err(DmlsError::Refused(_)) => ledger.refusals += 1,
                    other => panic!("participant {receiver} accepted a forgery: {other:?}"),
                }
                assert_eq!(
                    participants[receiver]
                        .group(&group_id)
                        .expect("member")
                        .epoch(),
                    epoch
                );
            }
        }
        // The owner's next message still reads everywhere.
        let text = b"after the forgery".to_vec();
        let mut messages = participants[owner].protect(&text).expect("protect");
        let message = messages.pop().expect("the message");
        for receiver in (0..COUNT).filter(|r| *r != owner) {
            for commit in &messages {
                participants[receiver].receive(commit).expect("commit");
            }
            assert_eq!(
                participants[receiver].receive(&message).expect("read"),
                Received::Message {
                    owner: name(owner),
                    plaintext: text.clone()
                }
            );
        }
    }

    let total_read: usize = ledger.read.values().map(BTreeSet::len).sum();
    println!(
        "{COUNT} participants, {ROUNDS} rounds: {} messages sent, {total_read} read; \
         {} updates, {} PSK-importing commits; network: {} deliveries, {} reordered, \
         {} duplicated ({} recognised), {} held by {partitions} partitions; \
         {} waits, {} stale; {} forgeries injected, {} refusals",
        ledger.sent.len(),
        ledger.updates,
        ledger.psk_commits,
        network.delivered,
        network.reordered,
        network.duplicated,
        ledger.duplicates_seen,
        network.held_by_partition,
        ledger.waits,
        ledger.stale,
        ledger.injected,
        ledger.refusals,
    );
    assert!(ledger.psk_commits > 0 && network.reordered > 0 && network.duplicated > 0);
    assert!(network.held_by_partition > 0);
    assert_eq!(ledger.refusals, ledger.injected * (COUNT as u64 - 1));
}

#[test]
fn the_importing_groups_epoch_depends_on_the_imported_psk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ps = session(dir.path(), 3);
    // Bob's UPDATE starts a new epoch of his group; Alice and Carol see it.
    let bob_group = send_group_id(&name(1));
    for message in ps[1].update().expect("update") {
        for i in [0, 2] {
            ps[i].receive(&message).expect("receive");
        }
    }
    let bob_epoch = ps[0].group(&bob_group).expect("member").epoch().as_u64();
    // Alice's COMMIT imports it.
    let commit = ps[0].commit().expect("commit");
    assert_eq!(commit.len(), 1, "a commit importing the PSKs");

    // Carol, copied before she processes the commit, with Bob's PSK changed
    // in the copy.
    let carol_dir = dir.path().join("p2");
    let copy_dir = dir.path().join("p2-copy");
    drop(ps.remove(2));
    copy_dir_all(&carol_dir, &copy_dir);
    let mut carol = Participant::open(&carol_dir).expect("reopen");
    let mut changed = Participant::open(&copy_dir).expect("open copy");
    changed
        .provider()
        .transaction(|p| {
            PreSharedKeyId::external(psk_id(bob_epoch, &bob_group), Vec::new())
                .store(p, &[0x5a; 32])
        })
        .expect("change the PSK");

    let alice_group = send_group_id(&name(0));
    assert!(matches!(
        carol.receive(&commit[0]).expect("process"),
        Received::Commit { .. }
    ));
    let alice = ps[0].group(&alice_group).expect("own");
    let carols = carol.group(&alice_group).expect("member");
    assert_eq!(carols.epoch_authenticator(), alice.epoch_authenticator());
    // With another PSK, the copy derives another epoch: the commit's
    // confirmation tag no longer verifies, and nothing changes.
    let before = changed.group(&alice_group).expect("member").epoch();
    match changed.receive(&commit[0]) {
        Err(DmlsError::Invalid(why)) => println!("with the PSK changed: {why}"),
        other => panic!("the commit went through with another PSK: {other:?}"),
    }
    assert_eq!(changed.group(&alice_group).expect("member").epoch(), before);
}

#[test]
fn membership_follows_across_send_groups() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ps = session(dir.path(), 3);
    // Dave joins: every owner adds him with a KeyPackage of his, and he
    // adds everyone to his new send group.
    let mut dave = Participant::create(dir.path().join("dave"), b"dave", SUITE).expect("dave");
    let mut to_dave = Vec::new();
    for owner in 0..3 {
        let key_package = dave.key_package().expect("key package");
        let messages = ps[owner].add(&[key_package]).expect("add dave");
        let (commit, welcome) = (&messages[0], &messages[1]);
        for other in (0..3).filter(|o| *o != owner) {
            assert!(matches!(
                ps[other].receive(commit).expect("commit"),
                Received::Commit { .. }
            ));
        }
        to_dave.push(welcome.clone());
    }
    for welcome in &to_dave {
        assert!(matches!(
            dave.receive(welcome).expect("join"),
            Received::Joined { .. }
        ));
    }
    let key_packages: Vec<Vec<u8>> = ps
        .iter_mut()
        .map(|p| p.key_package().expect("kp"))
        .collect();
    let welcome = dave
        .add(&key_packages)
        .expect("dave's init")
        .pop()
        .expect("welcome");
    for p in ps.iter_mut() {
        assert_eq!(
            p.receive(&welcome).expect("join"),
            Received::Joined {
                owner: b"dave".to_vec()
            }
        );
    }
    let hello = dave
        .protect(b"hi all")
        .expect("protect")
        .pop()
        .expect("message");
    for p in ps.iter_mut() {
        assert_eq!(
            p.receive(&hello).expect("read"),
            Received::Message {
                owner: b"dave".to_vec(),
                plaintext: b"hi all".to_vec()
            }
        );
    }

    // Alice removes Carol, who is offline. Bob and Dave, on seeing it,
    // remove her from their own send groups, in the same transaction.
    let removal = ps[0]
        .remove(&name(2))
        .expect("remove")
        .pop()
        .expect("commit");
    let mut second_removals = Vec::new();
    for receiver in [&mut ps[1], &mut dave] {
        match receiver.receive(&removal).expect("removal") {
            Received::Commit {
                removed, outgoing, ..
            } => {
                assert_eq!(removed, vec![name(2)]);
                assert_eq!(outgoing.len(), 1, "its own removal commit");
                second_removals.push(outgoing[0].clone());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            receiver.group(&send_group_id(&name(2))).is_none(),
            "Carol's group left"
        );
    }
    // Carol's send group is no longer accepted by them.
    let carols = ps[2]
        .protect(b"still here?")
        .expect("protect")
        .pop()
        .expect("message");
    assert!(matches!(
        ps[1].receive(&carols),
        Err(DmlsError::UnknownGroup)
    ));
    // Carol, back online, learns she was removed from each group.
    let mut removed_from = 0;
    for message in std::iter::once(&removal).chain(&second_removals) {
        if let Ok(Received::RemovedFrom { .. }) = ps[2].receive(message) {
            removed_from += 1;
        }
    }
    assert_eq!(removed_from, 3);
    assert_eq!(ps[2].other_groups().count(), 0);
}

fn copy_dir_all(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir_all(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn a_welcome_to_a_send_group_not_led_by_its_owner_is_refused() {
    // Mallory creates a group named as Bob's send group, with herself at
    // leaf 0, and adds Alice.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut alice = Participant::create(dir.path().join("alice"), &name(0), SUITE).expect("alice");
    let mallory: polymls::Provider = polymls::Provider::default();
    let signer =
        openmls_basic_credential::SignatureKeyPair::new(SUITE.signature_algorithm()).expect("key");
    signer.store(mallory.storage()).expect("store");
    let credential = CredentialWithKey {
        credential: BasicCredential::new(b"mallory".to_vec()).into(),
        signature_key: signer.public().into(),
    };
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(SUITE)
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .build();
    let mut group = MlsGroup::new_with_group_id(
        &mallory,
        &signer,
        &config,
        GroupId::from_slice(&send_group_id(&name(1))),
        credential,
    )
    .expect("group");
    let key_package =
        MlsMessageIn::tls_deserialize_exact(alice.key_package().expect("key package").as_slice())
            .expect("parse")
            .extract();
    let MlsMessageBodyIn::KeyPackage(key_package) = key_package else {
        panic!("a key package");
    };
    let key_package = key_package
        .validate(mallory.crypto(), ProtocolVersion::Mls10)
        .expect("valid");
    let (_, welcome, _) = group
        .add_members(&mallory, &signer, &[key_package])
        .expect("add");
    let welcome = openmls::prelude::tls_codec::Serialize::tls_serialize_detached(&welcome)
        .expect("serialize");
    assert!(matches!(
        alice.receive(&welcome),
        Err(DmlsError::Refused(_))
    ));
    assert_eq!(alice.other_groups().count(), 0, "nothing joined");
}

#[test]
fn a_commit_giving_leaf_0_another_identity_is_refused() {
    // Alice, owner of her send group, commits an update that renames her
    // leaf: her group would no longer be led by the owner its id names.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ps = session(dir.path(), 2);
    let alice_group = send_group_id(&name(0));
    let signer = ps[0].signer();
    let renamed = CredentialWithKey {
        credential: BasicCredential::new(b"mallory".to_vec()).into(),
        signature_key: signer.public().into(),
    };
    let outcome = ps[0].provider().transaction(|p| {
        let mut group = MlsGroup::load(p.storage(), &GroupId::from_slice(&alice_group))
            .expect("load")
            .expect("own group");
        let parameters = LeafNodeParameters::builder()
            .with_credential_with_key(renamed)
            .build();
        let commit = group
            .self_update(p, signer, parameters)
            .expect("commit")
            .into_commit();
        Err::<(), _>(Box::new(commit))
    });
    let Err(polymls::TransactionError::Aborted(commit)) = outcome else {
        panic!("the transaction must abort");
    };
    let commit = openmls::prelude::tls_codec::Serialize::tls_serialize_detached(&*commit)
        .expect("serialize");
    let epoch = ps[1].group(&alice_group).expect("member").epoch();
    assert!(matches!(ps[1].receive(&commit), Err(DmlsError::Refused(_))));
    assert_eq!(ps[1].group(&alice_group).expect("member").epoch(), epoch);
}

#[test]
fn a_participant_that_leaves_is_removed_everywhere() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ps = session(dir.path(), 3);
    // Carol proposes to leave Alice's and Bob's send groups.
    for proposal in ps[2].leave().expect("leave") {
        for owner in &mut ps[..2] {
            assert!(matches!(
                owner.receive(&proposal).expect("proposal"),
                Received::Proposal { .. }
            ));
        }
    }
    // Alice's COMMIT commits it; Bob, seeing Carol removed, removes her
    // from his own send group (whose pending proposal of hers is the same
    // removal, committed once).
    let commit = ps[0].commit().expect("commit").pop().expect("a commit");
    let Received::Commit {
        removed, outgoing, ..
    } = ps[1].receive(&commit).expect("alice's commit")
    else {
        panic!("a commit");
    };
    assert_eq!(removed, vec![name(2)]);
    let bobs = outgoing.into_iter().next().expect("bob's removal commit");
    assert!(matches!(
        ps[0].receive(&bobs).expect("bob's commit"),
        Received::Commit { .. }
    ));
    for (owner, message) in [(0, &commit), (1, &bobs)] {
        assert_eq!(
            ps[2].receive(message).expect("carol"),
            Received::RemovedFrom { owner: name(owner) }
        );
    }
    for (i, participant) in ps[..2].iter().enumerate() {
        let own = participant
            .group(&send_group_id(&name(i)))
            .expect("own group");
        assert_eq!(own.members().count(), 2);
        assert!(participant.group(&send_group_id(&name(2))).is_none());
    }
    let hello = ps[1]
        .protect(b"just us")
        .expect("protect")
        .pop()
        .expect("message");
    assert_eq!(
        ps[0].receive(&hello).expect("read"),
        Received::Message {
            owner: name(1),
            plaintext: b"just us".to_vec()
        }
    );
}

#[test]
fn damaged_messages_are_errors_and_change_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ps = session(dir.path(), 2);
    let message = ps[0]
        .protect(b"intact")
        .expect("protect")
        .pop()
        .expect("message");
    let commit = ps[0].update().expect("update").swap_remove(0);
    let mut rejected = 0;
    for original in [&message, &commit] {
        for cut in (0..original.len()).step_by(7) {
            assert!(
                ps[1].receive(&original[..cut]).is_err(),
                "a truncated message"
            );
            rejected += 1;
        }
        for position in (0..original.len()).step_by(11) {
            let mut damaged = original.clone();
            damaged[position] ^= 0x20;
            // Damage past the header breaks decryption or parsing; nothing
            // damaged reads as the original.
            match ps[1].receive(&damaged) {
                Err(_) => rejected += 1,
                Ok(Received::Message { plaintext, .. }) => panic!("read {plaintext:?}"),
                Ok(other) => panic!("accepted a damaged message: {other:?}"),
            }
        }
    }
    println!("{rejected} damaged messages rejected");
    assert_eq!(
        ps[1].receive(&message).expect("the intact message"),
        Received::Message {
            owner: name(0),
            plaintext: b"intact".to_vec()
        }
    );
    assert!(matches!(
        ps[1].receive(&commit).expect("the intact commit"),
        Received::Commit { .. }
    ));
}

#[test]
fn psks_of_old_epochs_are_erased() {
    // Bob updates 40 times; Alice keeps the PSKs of his last
    // RETAINED_EPOCHS epochs only (and her own group's two).
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ps = session(dir.path(), 2);
    for _ in 0..40 {
        let commit = ps[1].update().expect("update").swap_remove(0);
        ps[0].receive(&commit).expect("commit");
    }
    let stored = ps[0]
        .provider()
        .storage()
        .inventory()
        .expect("inventory")
        .get(&polymls::store::entities::Entity::Psk)
        .map_or(0, |usage| usage.records);
    println!("PSK records after 40 epochs: {stored}");
    assert_eq!(stored, 2 + polymls::dmls::RETAINED_EPOCHS as usize);
}
