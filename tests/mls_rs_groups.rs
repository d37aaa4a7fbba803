//! mls-rs groups on polymls's crypto provider (`polymls::mls_rs`):
//! - on 0xF110 (X-Wing) and 0x0001, every member on polymls: create, add
//!   by Welcome, application messages from every member to every other,
//!   a self-update, a resumption PSK, an external commit, a remove;
//! - mixed, on 0x0001 and 0x0003: members on polymls and on mls-rs's own
//!   `mls-rs-crypto-rustcrypto` in one group, the same operations, epoch
//!   authenticators equal on every member at every epoch;
//! - 0xF110 KeyPackages made by mls-rs on polymls pass the directory's
//!   validation, are claimed once and bring their member into a group;
//! - groups kept in polymls's forward-secret store (`MlsRsStorage`),
//!   written and reloaded after every operation, and the attacker of the
//!   OpenMLS store's forward-secrecy test let loose on the store copies: no
//!   superseded state, epoch or key package opens.

#[path = "common/attacker.rs"]
mod attacker;
#[path = "common/keypackages.rs"]
mod keypackages;

use keypackages::ActorIsIdentity;
use mls_rs::client_builder::MlsConfig;
use mls_rs::error::MlsError;
use mls_rs::group::ReceivedMessage;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::identity::SigningIdentity;
use mls_rs::mls_rules::{CommitOptions, DefaultMlsRules};
use mls_rs::{
    CipherSuite, CipherSuiteProvider, Client, CryptoProvider, ExtensionList, Group, MlsMessage,
};
use polymls::mls_rs::{MlsRsCrypto, MlsRsStorage};

/// One member, whatever its provider.
trait Member {
    fn name(&self) -> &str;
    fn key_package(&self) -> MlsMessage;
    fn create(&mut self);
    fn join(&mut self, welcome: &MlsMessage);
    /// An external commit into the group `group_info` describes.
    fn join_externally(&mut self, group_info: MlsMessage) -> MlsMessage;
    fn group_info(&self) -> MlsMessage;
    fn add(&mut self, key_package: MlsMessage) -> (MlsMessage, MlsMessage);
    fn remove(&mut self, name: &str) -> MlsMessage;
    fn update(&mut self) -> MlsMessage;
    fn resumption_psk(&mut self) -> MlsMessage;
    fn send(&mut self, text: &[u8]) -> MlsMessage;
    /// Processes `message`: the application data it carried, if any.
    fn receive(&mut self, message: MlsMessage) -> Option<Vec<u8>>;
    fn epoch(&self) -> u64;
    fn epoch_authenticator(&self) -> Vec<u8>;
    /// Writes the group to the client's storage and loads it back.
    fn reload(&mut self);
}

struct Participant<C: MlsConfig> {
    name: String,
    client: Client<C>,
    group: Option<Group<C>>,
}

fn participant<P: CryptoProvider + Clone + 'static>(
    provider: P,
    name: &str,
    suite: CipherSuite,
) -> Box<dyn Member> {
    participant_on(provider, name, suite, None)
}

fn participant_on<P: CryptoProvider + Clone + 'static>(
    provider: P,
    name: &str,
    suite: CipherSuite,
    storage: Option<MlsRsStorage>,
) -> Box<dyn Member> {
    let suite_provider = provider
        .cipher_suite_provider(suite)
        .unwrap_or_else(|| panic!("{name}'s provider offers {suite:?}"));
    let (secret, public) = suite_provider
        .signature_key_generate()
        .expect("signature key");
    let identity = SigningIdentity::new(
        BasicCredential::new(name.as_bytes().to_vec()).into_credential(),
        public,
    );
    let rules = DefaultMlsRules::new()
        .with_commit_options(CommitOptions::new().with_allow_external_commit(true));
    let builder = Client::builder()
        .identity_provider(BasicIdentityProvider)
        .crypto_provider(provider)
        .mls_rules(rules)
        // The directory takes lifetimes of at most 12 weeks (mls-rs's
        // default is a year).
        .key_package_lifetime(std::time::Duration::from_secs(30 * 24 * 3600));
    let name = name.to_string();
    match storage {
        None => Box::new(Participant {
            name,
            client: builder.signing_identity(identity, secret, suite).build(),
            group: None,
        }),
        Some(storage) => Box::new(Participant {
            name,
            client: builder
                .group_state_storage(storage.clone())
                .key_package_repo(storage.clone())
                .psk_store(storage)
                .signing_identity(identity, secret, suite)
                .build(),
            group: None,
        }),
    }
}

/// A member on polymls whose groups, epochs and key packages live in the
/// store in `dir`.
fn stored_participant(dir: &std::path::Path, name: &str, suite: CipherSuite) -> Box<dyn Member> {
    let store = polymls::Store::open(dir).expect("store");
    participant_on(
        MlsRsCrypto::default(),
        name,
        suite,
        Some(MlsRsStorage::new(store)),
    )
}

impl<C: MlsConfig> Participant<C> {
    fn group(&mut self) -> &mut Group<C> {
        self.group.as_mut().expect("in the group")
    }

    fn commit(
        &mut self,
        build: impl FnOnce(&mut Group<C>) -> Result<mls_rs::group::CommitOutput, MlsError>,
    ) -> mls_rs::group::CommitOutput {
        let output = build(self.group()).expect("commit");
        self.group()
            .apply_pending_commit()
            .expect("apply own commit");
        output
    }
}

impl<C: MlsConfig> Member for Participant<C> {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_package(&self) -> MlsMessage {
        self.client
            .generate_key_package_message(Default::default(), Default::default(), None)
            .expect("key package")
    }

    fn create(&mut self) {
        self.group = Some(
            self.client
                .create_group(ExtensionList::default(), ExtensionList::default(), None)
                .expect("create group"),
        );
    }

    fn join(&mut self, welcome: &MlsMessage) {
        let (group, _) = self.client.join_group(None, welcome, None).expect("join");
        self.group = Some(group);
    }

    fn join_externally(&mut self, group_info: MlsMessage) -> MlsMessage {
        let (group, commit) = self
            .client
            .external_commit_builder()
            .expect("external commit builder")
            .build(group_info)
            .expect("external commit");
        self.group = Some(group);
        commit
    }

    fn group_info(&self) -> MlsMessage {
        self.group
            .as_ref()
            .expect("in the group")
            .group_info_message_allowing_ext_commit(true)
            .expect("group info")
    }

    fn add(&mut self, key_package: MlsMessage) -> (MlsMessage, MlsMessage) {
        let output = self.commit(|g| g.commit_builder().add_member(key_package)?.build());
        (output.commit_message, output.welcome_messages[0].clone())
    }

    fn remove(&mut self, name: &str) -> MlsMessage {
        let index = self
            .group()
            .roster()
            .members()
            .into_iter()
            .find(|m| {
                m.signing_identity
                    .credential
                    .as_basic()
                    .map(|b| b.identifier.as_slice())
                    == Some(name.as_bytes())
            })
            .expect("member to remove")
            .index;
        self.commit(|g| g.commit_builder().remove_member(index)?.build())
            .commit_message
    }

    fn update(&mut self) -> MlsMessage {
        self.commit(|g| g.commit(Vec::new())).commit_message
    }

    fn resumption_psk(&mut self) -> MlsMessage {
        let epoch = self.group().current_epoch() - 1;
        self.commit(|g| g.commit_builder().add_resumption_psk(epoch)?.build())
            .commit_message
    }

    fn send(&mut self, text: &[u8]) -> MlsMessage {
        self.group()
            .encrypt_application_message(text, Vec::new())
            .expect("encrypt")
    }

    fn receive(&mut self, message: MlsMessage) -> Option<Vec<u8>> {
        match self
            .group()
            .process_incoming_message(message)
            .expect("process")
        {
            ReceivedMessage::ApplicationMessage(m) => Some(m.data().to_vec()),
            _ => None,
        }
    }

    fn epoch(&self) -> u64 {
        self.group.as_ref().expect("in the group").current_epoch()
    }

    fn epoch_authenticator(&self) -> Vec<u8> {
        self.group
            .as_ref()
            .expect("in the group")
            .epoch_authenticator()
            .expect("epoch authenticator")
            .to_vec()
    }

    fn reload(&mut self) {
        if let Some(mut group) = self.group.take() {
            group.write_to_storage().expect("write group");
            let id = group.group_id().to_vec();
            drop(group);
            self.group = Some(self.client.load_group(&id).expect("load group"));
        }
    }
}

/// A group of `members` (the first creates it), taken through every
/// operation; checks after each that all members agree. Returns the
/// number of epochs and of messages decrypted.
fn run_group(members: Vec<Box<dyn Member>>) -> (u64, usize) {
    run_group_observed(members, || {})
}

/// [`run_group`], calling `observe` once the first members have joined.
fn run_group_observed(mut members: Vec<Box<dyn Member>>, observe: impl FnOnce()) -> (u64, usize) {
    let mut decrypted = 0;
    members[0].create();
    // Add everyone but the last by Welcome; the last joins externally.
    let joining_externally = members.pop().expect("members");
    for i in 1..members.len() {
        let key_package = members[i].key_package();
        let (commit, welcome) = members[0].add(key_package);
        for member in &mut members[1..i] {
            assert!(member.receive(commit.clone()).is_none());
        }
        members[i].join(&welcome);
        agree(&mut members[..=i]);
    }
    decrypted += talk(&mut members);
    observe();
    // A self-update by the second member.
    let commit = members[1].update();
    deliver(&mut members, 1, commit);
    agree(&mut members);
    // A resumption PSK of the epoch before, which every member has seen.
    let commit = members[0].resumption_psk();
    deliver(&mut members, 0, commit);
    agree(&mut members);
    decrypted += talk(&mut members);
    // An external commit.
    let mut newcomer = joining_externally;
    let commit = newcomer.join_externally(members[0].group_info());
    deliver(&mut members, usize::MAX, commit);
    members.push(newcomer);
    agree(&mut members);
    decrypted += talk(&mut members);
    // The first removes the third.
    let removed = members[2].name().to_string();
    let commit = members[0].remove(&removed);
    let mut gone = members.remove(2);
    gone.receive(commit.clone());
    deliver(&mut members, 0, commit);
    agree(&mut members);
    decrypted += talk(&mut members);
    (members[0].epoch(), decrypted)
}

/// `message` from member `from` to every other.
fn deliver(members: &mut [Box<dyn Member>], from: usize, message: MlsMessage) {
    for (i, member) in members.iter_mut().enumerate() {
        if i != from {
            member.receive(message.clone());
        }
    }
}

/// Every member sends one message; every other decrypts it.
fn talk(members: &mut [Box<dyn Member>]) -> usize {
    let mut decrypted = 0;
    for from in 0..members.len() {
        let text = format!(
            "from {} at epoch {}",
            members[from].name(),
            members[from].epoch()
        );
        let message = members[from].send(text.as_bytes());
        for (i, member) in members.iter_mut().enumerate() {
            if i != from {
                assert_eq!(
                    member.receive(message.clone()).as_deref(),
                    Some(text.as_bytes()),
                    "{} reads {text}",
                    member.name()
                );
                decrypted += 1;
            }
        }
    }
    decrypted
}

/// Every member reloads its group from storage, then all agree.
fn agree(members: &mut [Box<dyn Member>]) {
    for member in members.iter_mut() {
        member.reload();
    }
    let epoch = members[0].epoch();
    let authenticator = members[0].epoch_authenticator();
    for member in members {
        assert_eq!(member.epoch(), epoch, "{} at epoch {epoch}", member.name());
        assert_eq!(
            member.epoch_authenticator(),
            authenticator,
            "{}'s epoch authenticator at epoch {epoch}",
            member.name()
        );
    }
}

#[test]
fn groups_on_polymls_run_the_hybrid_suite_and_0x0001() {
    for code_point in [0xF110u16, 0x0001] {
        let suite = CipherSuite::new(code_point);
        let members = ["alice", "bob", "carol", "dave", "erin"]
            .iter()
            .map(|name| participant(MlsRsCrypto::default(), name, suite))
            .collect();
        let (epochs, decrypted) = run_group(members);
        println!(
            "mls-rs on polymls, suite {code_point:#06x}: {epochs} epochs, {decrypted} messages decrypted, epoch authenticators equal throughout"
        );
    }
}

#[test]
fn members_on_polymls_and_on_rustcrypto_share_groups() {
    for code_point in [0x0001u16, 0x0003] {
        let suite = CipherSuite::new(code_point);
        let rustcrypto = mls_rs_crypto_rustcrypto::RustCryptoProvider::default;
        let members = vec![
            participant(MlsRsCrypto::default(), "alice", suite),
            participant(rustcrypto(), "bob", suite),
            participant(MlsRsCrypto::default(), "carol", suite),
            participant(rustcrypto(), "dave", suite),
            participant(MlsRsCrypto::default(), "erin", suite),
            participant(rustcrypto(), "frank", suite),
        ];
        let (epochs, decrypted) = run_group(members);
        println!(
            "mixed mls-rs group, suite {code_point:#06x}: 3 members on polymls, 3 on rustcrypto, {epochs} epochs, {decrypted} messages decrypted, epoch authenticators equal throughout"
        );
    }
}

#[test]
fn rustcrypto_does_not_offer_the_hybrid_suite() {
    let rustcrypto = mls_rs_crypto_rustcrypto::RustCryptoProvider::default();
    assert!(rustcrypto
        .cipher_suite_provider(CipherSuite::new(0xF110))
        .is_none());
    assert!(MlsRsCrypto::default()
        .cipher_suite_provider(CipherSuite::new(0xF110))
        .is_some());
}

#[test]
fn hybrid_key_packages_made_by_mls_rs_pass_the_directory_and_join() {
    use polymls::directory::{Directory, Rejection, Upload};
    const KEY_PACKAGE_MESSAGE: [u8; 4] = [0, 1, 0, 5];
    let suite = CipherSuite::new(0xF110);
    let dir = tempfile::tempdir().expect("tempdir");
    let directory = Directory::open(dir.path(), ActorIsIdentity).expect("directory");
    let mut alice = participant(MlsRsCrypto::default(), "alice", suite);
    let mut bob = participant(MlsRsCrypto::default(), "bob", suite);
    let uploads: Vec<Upload> = (0..3)
        .map(|i| {
            let message = bob.key_package().to_bytes().expect("encode");
            assert_eq!(message[..4], KEY_PACKAGE_MESSAGE);
            Upload {
                id: i.to_string(),
                key_package: message[4..].to_vec(),
                last_resort: false,
            }
        })
        .collect();
    let verdicts = directory
        .publish("bob", "phone", &uploads)
        .expect("publish");
    assert!(verdicts.iter().all(|v| v.result.is_ok()), "{verdicts:?}");
    let again = directory
        .publish("bob", "laptop", &uploads[..1])
        .expect("publish");
    assert_eq!(again[0].result, Err(Rejection::DuplicateInitKey));
    alice.create();
    let mut seen = std::collections::HashSet::new();
    for round in 0..3 {
        let claimed = directory.claim("bob", &[0xF110]).expect("claim");
        assert_eq!(claimed.len(), 1);
        assert!(seen.insert(claimed[0].key_package.clone()), "claimed once");
        if round == 0 {
            let key_package = MlsMessage::from_bytes(
                &[&KEY_PACKAGE_MESSAGE[..], &claimed[0].key_package].concat(),
            )
            .expect("KeyPackage message");
            let (_, welcome) = alice.add(key_package);
            bob.join(&welcome);
            let message = alice.send(b"hello over X-Wing");
            assert_eq!(
                bob.receive(message).as_deref(),
                Some(&b"hello over X-Wing"[..])
            );
        }
    }
    assert!(directory.claim("bob", &[0xF110]).expect("claim").is_empty());
    println!("directory: 3 0xF110 KeyPackages made by mls-rs on polymls accepted, each claimed once, the first joined its group");
}

/// Members on 0xF110 with their state in the forward-secret store, through
/// every operation, reloading after each; then the attacker takes every key
/// and every record version from copies of the stores' files. Every version
/// it opens must be a record's current one: superseded group states,
/// erased epochs and used key packages stay sealed.
#[test]
fn stored_groups_on_the_hybrid_suite_keep_forward_secrecy() {
    let suite = CipherSuite::new(0xF110);
    let names = ["alice", "bob", "carol", "dave", "erin"];
    let dirs: Vec<tempfile::TempDir> = names
        .iter()
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let members = names
        .iter()
        .zip(&dirs)
        .map(|(name, dir)| stored_participant(dir.path(), name, suite))
        .collect();
    // A copy of Alice's key-slot file before the group runs: the control.
    let (epochs, decrypted) = run_group_with_control(members, &dirs[0]);
    let mut violations = Vec::new();
    let (mut opened, mut versions, mut keys, mut stale_public) = (0, 0, 0, 0);
    for (name, dir) in names.iter().zip(&dirs) {
        let current = attacker::current_records(dir.path());
        let loot = attacker::Loot::from_store_dir(dir.path());
        versions += loot.versions.len();
        keys += loot.keys.len();
        let attack = attacker::attack(&loot);
        for found in attack.opened {
            opened += 1;
            if current.get(&found.version.name) == Some(&found.version.bytes) {
                continue;
            }
            // The epoch index (two epoch numbers, 16 bytes) is the one
            // public record: anything else that opens stale is a violation,
            // whatever its header claims.
            if found.secret || found.plaintext.len() != 16 {
                violations.push(format!(
                    "{name}: a superseded secret version opened ({} bytes)",
                    found.plaintext.len()
                ));
            } else {
                stale_public += 1;
            }
        }
    }
    println!(
        "mls-rs on the store, 0xF110: {epochs} epochs, {decrypted} messages; attacker: {keys} keys, {versions} record versions, {opened} opened ({stale_public} stale versions of the public epoch index); superseded secrets opened: {}",
        violations.len()
    );
    assert!(violations.is_empty(), "{violations:#?}");
}

/// [`run_group`], with the positive control: Alice's key-slot file copied
/// after her group's first epochs must open versions her final files no
/// longer let anyone open.
fn run_group_with_control(
    members: Vec<Box<dyn Member>>,
    alice: &tempfile::TempDir,
) -> (u64, usize) {
    let copy = std::sync::Arc::new(std::sync::Mutex::new(None));
    let result = {
        let copy = std::sync::Arc::clone(&copy);
        let keys = alice.path().join("keys");
        run_group_observed(members, move || {
            let mut copy = copy.lock().expect("copy");
            if copy.is_none() {
                *copy = Some(std::fs::read(&keys).expect("key file"));
            }
        })
    };
    let old_keys = copy.lock().expect("copy").take().expect("copied");
    let mut loot = attacker::Loot::from_store_dir(alice.path());
    loot.keys.clear();
    loot.keys_from_key_file(&old_keys);
    let current = attacker::current_records(alice.path());
    let stale = attacker::attack(&loot)
        .opened
        .into_iter()
        .filter(|o| o.secret && current.get(&o.version.name) != Some(&o.version.bytes))
        .count();
    println!("control: an early copy of alice's key-slot file opens {stale} superseded secret versions of her final files");
    assert!(stale > 0, "the control must find superseded versions");
    result
}

/// The storage alone: a group's state written 12 times with an epoch each;
/// only the newest 3 epochs remain readable, and the attacker opens no
/// superseded state and no erased epoch (each value carries a marker the
/// scan looks for in what opens). Key packages: a deleted one opens
/// nowhere either.
#[test]
fn storage_erases_superseded_states_and_epochs_past_retention() {
    use mls_rs_core::group::{EpochRecord, GroupState, GroupStateStorage};
    use mls_rs_core::key_package::{KeyPackageData, KeyPackageStorage};
    use zeroize::Zeroizing;
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = |kind: &str, n: u64| format!("marker {kind} {n:04} ").repeat(8).into_bytes();
    {
        let mut storage = MlsRsStorage::new(polymls::Store::open(dir.path()).expect("store"));
        for epoch in 0..12u64 {
            let state = GroupState {
                id: b"group".to_vec(),
                data: Zeroizing::new(marker("state", epoch)),
            };
            let insert = EpochRecord::new(epoch, Zeroizing::new(marker("epoch", epoch)));
            storage
                .write(state, vec![insert], Vec::new())
                .expect("write");
        }
        assert_eq!(storage.max_epoch_id(b"group").expect("max"), Some(11));
        for epoch in 0..12u64 {
            let kept = storage.epoch(b"group", epoch).expect("epoch");
            assert_eq!(kept.is_some(), epoch >= 9, "epoch {epoch}");
        }
        assert_eq!(
            *storage.state(b"group").expect("state").expect("a state"),
            marker("state", 11)
        );
        for n in 0..2u64 {
            let data = KeyPackageData::new(
                marker("key package", n),
                marker("init key", n).into(),
                marker("leaf key", n).into(),
                u64::MAX,
            );
            storage.insert(vec![n as u8], data).expect("insert");
        }
        storage.delete(&[0]).expect("delete");
        let kept = KeyPackageStorage::get(&storage, &[1])
            .expect("get")
            .expect("kept");
        assert_eq!(kept.key_package_bytes, marker("key package", 1));
        assert!(KeyPackageStorage::get(&storage, &[0])
            .expect("get")
            .is_none());
    }
    let loot = attacker::Loot::from_store_dir(dir.path());
    let attack = attacker::attack(&loot);
    let opened: Vec<String> = attack
        .opened
        .iter()
        .map(|o| String::from_utf8_lossy(&o.plaintext).into_owned())
        .collect();
    let found = |text: &str| opened.iter().any(|p| p.contains(text));
    for epoch in 0..11 {
        assert!(
            !found(&format!("marker state {epoch:04}")),
            "superseded state {epoch} opened"
        );
    }
    for epoch in 0..9 {
        assert!(
            !found(&format!("marker epoch {epoch:04}")),
            "erased epoch {epoch} opened"
        );
    }
    assert!(
        !found("marker init key 0000"),
        "a deleted key package opened"
    );
    // Positive controls: what is current opens.
    assert!(
        found("marker state 0011") && found("marker epoch 0011") && found("marker init key 0001")
    );
    println!(
        "storage: 12 writes, 3 epochs retained; attacker opened {} versions of {} with {} keys: no superseded state, erased epoch or deleted key package among them",
        attack.opened.len(),
        loot.versions.len(),
        loot.keys.len()
    );
}

/// Key package and Welcome sizes of mls-rs groups on polymls, 0xF110 next
/// to 0x0001 (the README's table).
#[test]
fn sizes_on_the_wire() {
    for code_point in [0x0001u16, 0xF110] {
        let suite = CipherSuite::new(code_point);
        let mut alice = participant(MlsRsCrypto::default(), "alice", suite);
        let bob = participant(MlsRsCrypto::default(), "bob", suite);
        alice.create();
        let key_package = bob.key_package();
        let key_package_len = key_package.to_bytes().expect("encode").len();
        let (_, welcome) = alice.add(key_package);
        let welcome_len = welcome.to_bytes().expect("encode").len();
        println!(
            "sizes, mls-rs on polymls, {code_point:#06x}: key package message {key_package_len} B, Welcome adding one member to a 1-member group {welcome_len} B"
        );
        assert!(key_package_len > 0 && welcome_len > 0);
    }
}
