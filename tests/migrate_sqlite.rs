//! An application moves from `openmls_sqlite_storage` to the store in the
//! middle of a session: Alice's groups, pending commit, queued proposal and
//! unused KeyPackage carry on after the migration. Files the migration must
//! refuse are refused with a clear error, and nothing is written.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::member::{wire, Member};
use common::sqlite_json::Json;
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_sqlite_storage::SqliteStorageProvider;
use polymls::store::migrate::{
    destroy_sqlite_files, migrate_openmls_sqlite, MigrationError, SqliteCodec,
};
use polymls::{Provider, Store};

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const GROUP: &[u8] = b"group on sqlite";
const SECOND_GROUP: &[u8] = b"group after the migration";
const BOBS_GROUP: &[u8] = b"bob's group on sqlite";

type SqliteProvider = Provider<SqliteStorageProvider<Json, rusqlite::Connection>>;

/// Alice as the application ran her before: polymls crypto on SQLite.
struct SqliteAlice {
    provider: SqliteProvider,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    group: Option<MlsGroup>,
}

impl SqliteAlice {
    fn new(path: &Path) -> SqliteAlice {
        let mut storage = SqliteStorageProvider::<Json, _>::new(
            rusqlite::Connection::open(path).expect("open sqlite"),
        );
        storage.run_migrations().expect("sqlite migrations");
        let provider = Provider::with_storage(storage);
        let scheme = SUITE.signature_algorithm();
        let signer = SignatureKeyPair::new(scheme).expect("signature key");
        signer.store(provider.storage()).expect("store signer");
        let credential = CredentialWithKey {
            credential: BasicCredential::new(b"alice".to_vec()).into(),
            signature_key: signer.public().into(),
        };
        SqliteAlice {
            provider,
            signer,
            credential,
            group: None,
        }
    }

    fn create_group(&mut self) {
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(SUITE)
            .use_ratchet_tree_extension(true)
            .build();
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &config,
            GroupId::from_slice(GROUP),
            self.credential.clone(),
        )
        .expect("create group");
        self.group = Some(group);
    }

    fn key_package(&self) -> KeyPackage {
        KeyPackage::builder()
            .build(SUITE, &self.provider, &self.signer, self.credential.clone())
            .expect("key package")
            .key_package()
            .clone()
    }

    fn join(&mut self, welcome: &[u8]) {
        let MlsMessageBodyIn::Welcome(welcome) = MlsMessageIn::tls_deserialize_exact(welcome)
            .expect("parse")
            .extract()
        else {
            panic!("not a welcome");
        };
        let config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .build();
        let group = StagedWelcome::new_from_welcome(&self.provider, &config, welcome, None)
            .and_then(|staged| staged.into_group(&self.provider))
            .expect("join");
        self.group = Some(group);
    }

    /// Proposes a self-update without committing it.
    fn propose_update(&mut self) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        let (proposal, _) = self
            .group
            .as_mut()
            .expect("in a group")
            .propose_self_update(provider, signer, LeafNodeParameters::default())
            .expect("propose update");
        wire(&proposal)
    }

    fn group(&mut self) -> &mut MlsGroup {
        self.group.as_mut().expect("in a group")
    }

    fn add(&mut self, key_package: KeyPackage) -> (Vec<u8>, Vec<u8>) {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().expect("in a group");
        let (commit, welcome, _) = group
            .add_members(provider, signer, &[key_package])
            .expect("add");
        group.merge_pending_commit(provider).expect("merge add");
        (wire(&commit), wire(&welcome))
    }

    fn send(&mut self, text: &[u8]) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        wire(
            &self
                .group
                .as_mut()
                .expect("in a group")
                .create_message(provider, signer, text)
                .expect("message"),
        )
    }

    /// Processes an application message or a proposal (stored, not
    /// committed); returns the plaintext of a message.
    fn receive(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        let message = MlsMessageIn::tls_deserialize_exact(message)
            .expect("parse")
            .try_into_protocol_message()
            .expect("protocol message");
        let provider = &self.provider;
        let group = self.group.as_mut().expect("in a group");
        match group
            .process_message(provider, message)
            .expect("process")
            .into_content()
        {
            ProcessedMessageContent::ApplicationMessage(m) => Some(m.into_bytes()),
            ProcessedMessageContent::ProposalMessage(proposal) => {
                group
                    .store_pending_proposal(provider.storage(), *proposal)
                    .expect("store proposal");
                None
            }
            _ => panic!("unexpected message"),
        }
    }

    /// Commits the queued proposals and leaves the commit pending.
    fn commit_pending_unmerged(&mut self) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        let (commit, _, _) = self
            .group
            .as_mut()
            .expect("in a group")
            .commit_to_pending_proposals(provider, signer)
            .expect("commit");
        wire(&commit)
    }
}

/// Makes the member's group the stored group `group_id`.
fn switch(member: &mut Member, group_id: &[u8]) {
    member.group = MlsGroup::load(member.provider.storage(), &GroupId::from_slice(group_id))
        .expect("load group");
    assert!(member.group.is_some(), "group stored");
}

fn hash(path: &Path) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(std::fs::read(path).expect("read file")).to_vec()
}

fn directory_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("entry").metadata().expect("metadata").len())
        .sum()
}

#[test]
fn a_group_migrated_mid_session_carries_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = dir.path().join("alice.sqlite");

    // Before: Alice on SQLite, Bob on polymls.
    let mut alice = SqliteAlice::new(&sqlite);
    let mut bob = Member::new(dir.path(), "bob", SUITE);
    alice.create_group();
    let (_, welcome) = alice.add(bob.key_package());
    bob.join(&welcome);
    assert_eq!(
        bob.receive(&alice.send(b"hello bob")).as_deref(),
        Some(&b"hello bob"[..])
    );
    assert_eq!(
        alice.receive(&bob.send(b"hello alice")).as_deref(),
        Some(&b"hello alice"[..])
    );
    // An unused KeyPackage, a queued proposal and a commit Alice sends
    // but has not merged when the application stops: its merge is the
    // first thing she does on polymls.
    let spare_key_package = alice.key_package();
    assert_eq!(alice.receive(&bob.propose_update()), None);
    let commit = alice.commit_pending_unmerged();
    assert_eq!(bob.receive(&commit), None);
    let alice_epoch_before = alice.group().epoch().as_u64();
    // In Bob's group, Alice proposes an Update (its leaf node and private
    // key wait in her storage) that Bob commits after the migration.
    bob.create_group(BOBS_GROUP);
    let (_, welcome) = bob.add(&[alice.key_package()]);
    alice.join(&welcome);
    assert_eq!(bob.receive(&alice.propose_update()), None);
    switch(&mut bob, GROUP);
    let signer_public = alice.signer.public().to_vec();
    drop(alice);

    // The migration, into the store Alice runs on from now on.
    let sqlite_hash = hash(&sqlite);
    let sqlite_size = std::fs::metadata(&sqlite).expect("sqlite file").len();
    let alice_dir = dir.path().join("alice");
    let store = Store::open(&alice_dir).expect("open store");
    let started = Instant::now();
    let report = migrate_openmls_sqlite(&sqlite, SqliteCodec::Json, &store).expect("migrate");
    let elapsed = started.elapsed();
    drop(store);
    assert_eq!(hash(&sqlite), sqlite_hash, "the SQLite file is only read");
    println!(
        "migrated {} group(s), {} rows from a {sqlite_size}-byte SQLite file in {elapsed:?}; \
         store directory {} bytes; rows per table: {:?}",
        report.groups,
        report.total_rows(),
        directory_size(&alice_dir),
        report.rows,
    );
    assert_eq!(report.groups, 2);
    for (table, at_least) in [
        ("openmls_signature_keys", 1),
        ("openmls_key_packages", 1),
        ("openmls_encryption_keys", 1),
        ("openmls_own_leaf_nodes", 1),
        ("openmls_group_data", 9),
        ("openmls_proposals", 1),
        ("openmls_epoch_keys_pairs", 1),
    ] {
        assert!(
            report.rows[table] >= at_least,
            "{table}: {} rows migrated, expected at least {at_least}",
            report.rows[table]
        );
    }

    // After: Alice on polymls, her group loaded from the migrated store.
    std::fs::write(alice_dir.join("signer.pub"), &signer_public).expect("public key");
    let mut alice = Member::load(dir.path(), "alice", SUITE, GROUP);
    assert_eq!(alice.epoch(), alice_epoch_before);
    alice
        .provider
        .transaction(|p| alice.group.as_mut().expect("group").merge_pending_commit(p))
        .expect("merge the pending commit on polymls");
    assert_eq!(alice.epoch(), bob.epoch());
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());

    // Messages both ways, a commit, a new member.
    assert_eq!(
        bob.receive(&alice.send(b"from polymls")).as_deref(),
        Some(&b"from polymls"[..])
    );
    assert_eq!(
        alice.receive(&bob.send(b"welcome back")).as_deref(),
        Some(&b"welcome back"[..])
    );
    assert_eq!(bob.receive(&alice.self_update()), None);
    let mut carol = Member::new(dir.path(), "carol", SUITE);
    let (add, welcome) = alice.add(&[carol.key_package()]);
    assert_eq!(bob.receive(&add), None);
    carol.join(&welcome);
    let hi = carol.send(b"hi, I am new");
    assert_eq!(alice.receive(&hi).as_deref(), Some(&b"hi, I am new"[..]));
    assert_eq!(bob.receive(&hi).as_deref(), Some(&b"hi, I am new"[..]));
    assert_eq!(alice.epoch_authenticator(), carol.epoch_authenticator());

    // Bob commits Alice's Update: she opens the commit's path with the
    // private key of her migrated leaf node.
    switch(&mut alice, BOBS_GROUP);
    switch(&mut bob, BOBS_GROUP);
    assert_eq!(alice.receive(&bob.commit_pending()), None);
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
    assert_eq!(
        bob.receive(&alice.send(b"updated")).as_deref(),
        Some(&b"updated"[..])
    );

    // The KeyPackage published from SQLite opens a Welcome on polymls.
    bob.create_group(SECOND_GROUP);
    let (_, welcome) = bob.add(&[spare_key_package]);
    alice.join(&welcome);
    assert_eq!(
        alice.receive(&bob.send(b"second group")).as_deref(),
        Some(&b"second group"[..])
    );

    // And Alice's store, reopened, still carries her last group.
    let alice = alice.reopen();
    assert_eq!(
        alice.group.as_ref().expect("group").group_id().as_slice(),
        SECOND_GROUP
    );
}

/// A SQLite database of one group, as `openmls_sqlite_storage` left it.
fn sqlite_fixture(dir: &Path) -> PathBuf {
    let path = dir.join("fixture.sqlite");
    let mut alice = SqliteAlice::new(&path);
    alice.create_group();
    alice.key_package();
    path
}

/// Migrating `sqlite` into a fresh store fails with an error `expected`
/// accepts, leaves the store empty and the file as it was.
fn refused(sqlite: &Path, expected: impl Fn(&MigrationError) -> bool) {
    let before = hash(sqlite);
    let store = Store::temporary().expect("store");
    let error = migrate_openmls_sqlite(sqlite, SqliteCodec::Json, &store)
        .expect_err("the migration must refuse this file");
    println!("refused: {error}");
    assert!(expected(&error), "unexpected error: {error:?}");
    assert!(
        store.inventory().expect("inventory").is_empty(),
        "a refused migration wrote to the store"
    );
    assert_eq!(hash(sqlite), before, "a refused migration changed the file");
}

/// A fixture edited by `sql` is refused with an error `expected` accepts.
fn refused_after(sql: &str, expected: impl Fn(&MigrationError) -> bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = sqlite_fixture(dir.path());
    rusqlite::Connection::open(&sqlite)
        .expect("open")
        .execute_batch(sql)
        .expect("edit the fixture");
    refused(&sqlite, expected);
}

#[test]
fn the_fixture_migrates() {
    // The control for the refusals below: unchanged, it migrates.
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = sqlite_fixture(dir.path());
    let store = Store::temporary().expect("store");
    let report = migrate_openmls_sqlite(&sqlite, SqliteCodec::Json, &store).expect("migrates");
    assert_eq!(report.groups, 1);
    assert!(!store.inventory().expect("inventory").is_empty());
    // Into a store that is not empty: refused.
    let again = migrate_openmls_sqlite(&sqlite, SqliteCodec::Json, &store);
    assert!(matches!(again, Err(MigrationError::DestinationNotEmpty)));
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("noise.sqlite");
    let noise: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&path, noise).expect("write");
    refused(&path, |e| matches!(e, MigrationError::Sqlite(_)));
}

#[test]
fn a_truncated_database_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = sqlite_fixture(dir.path());
    let length = std::fs::metadata(&sqlite).expect("file").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&sqlite)
        .expect("open");
    file.set_len(length / 2).expect("truncate");
    drop(file);
    refused(&sqlite, |e| {
        matches!(e, MigrationError::Sqlite(_) | MigrationError::Corrupted(_))
    });
}

#[test]
fn a_value_that_does_not_decode_is_refused_after_others_did() {
    // The epoch key pairs are copied last: the rows before them reached the
    // transaction, and must not reach the store.
    refused_after(
        "UPDATE openmls_epoch_keys_pairs SET key_pairs = x'7b2261223a'",
        |e| {
            matches!(
                e,
                MigrationError::Undecodable {
                    table: "openmls_epoch_keys_pairs"
                }
            )
        },
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let sql = "INSERT INTO openmls_sqlite_storage_migrations (version, name, applied_on, checksum)
         VALUES (7, 'future', '2027-01-01T00:00:00Z', '0')";
    refused_after(sql, |e| {
        matches!(
            e,
            MigrationError::NewerSchema {
                found: 7,
                newest_known: 6
            }
        )
    });
}

#[test]
fn rows_of_another_storage_version_are_refused() {
    let sql = "UPDATE openmls_group_data SET provider_version = 2 WHERE data_type = 'tree'";
    refused_after(sql, |e| {
        matches!(
            e,
            MigrationError::ProviderVersion {
                table: "openmls_group_data",
                found: 2
            }
        )
    });
}

#[test]
fn another_database_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("other.sqlite");
    rusqlite::Connection::open(&path)
        .expect("create")
        .execute_batch("CREATE TABLE notes (text TEXT)")
        .expect("a table");
    refused(&path, |e| matches!(e, MigrationError::NotOpenMlsStorage(_)));
}

#[test]
fn destroying_overwrites_in_place_then_removes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = sqlite_fixture(dir.path());
    // A second name for the same inode sees what the overwrite left there.
    let link = dir.path().join("second-name");
    std::fs::hard_link(&sqlite, &link).expect("hard link");
    let length = std::fs::metadata(&sqlite).expect("file").len();
    assert!(std::fs::read(&link).expect("read").iter().any(|b| *b != 0));
    destroy_sqlite_files(&sqlite).expect("destroy");
    assert!(!sqlite.exists());
    let left = std::fs::read(&link).expect("read");
    assert_eq!(left.len() as u64, length);
    assert!(
        left.iter().all(|b| *b == 0),
        "the file was removed without being overwritten"
    );
}
