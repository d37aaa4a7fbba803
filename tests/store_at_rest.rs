//! Encryption at rest under an application key: with the key-slot file
//! sealed under a key the application keeps elsewhere, the attacker of
//! `store_forward_secrecy.rs` opens nothing in the files, current values
//! included; opening with a missing or wrong key is a clear error that
//! changes no file; `rekey` switches keys atomically and the old key then
//! opens nothing.

#[path = "common/attacker.rs"]
mod attacker;
#[path = "common/groups.rs"]
mod groups;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use attacker::{attack, Loot};
use groups::{Client, Participant};
use openmls::prelude::Ciphersuite;
use polymls::crypto::aead::Aead;
use polymls::{ApplicationKey, Provider, Store, StoreError, StoreOptions};

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

fn options(key: Option<&ApplicationKey>) -> StoreOptions {
    match key {
        Some(key) => StoreOptions::default().with_application_key(key.clone()),
        None => StoreOptions::default(),
    }
}

fn open(dir: &Path, key: Option<&ApplicationKey>) -> Result<Store, StoreError> {
    Store::open_with(dir, options(key))
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.insert(path.clone(), std::fs::read(&path).expect("read"));
        }
    }
    out
}

/// Two members on stores sealed under their keys: a group, commits and
/// messages, so the files hold current and superseded secrets.
fn session(dir: &Path, keys: &[ApplicationKey; 2]) {
    let mut members: Vec<Client<Provider<Store>>> = ["alice", "bob"]
        .iter()
        .zip(keys)
        .map(|(name, key)| {
            let store = open(&dir.join(name), Some(key)).expect("open sealed store");
            Client::new(name, "sealed", Provider::with_storage(store), SUITE)
        })
        .collect();
    members[0].create_group();
    let key_package = members[1].key_package();
    let add = members[0].add_members(&[key_package]);
    members[1].join_by_welcome(&add.welcome, &add.ratchet_tree);
    for round in 0..4 {
        let committer = round % 2;
        let commit = members[committer].self_update();
        members[1 - committer].receive(&commit).expect("commit");
        for sender in 0..2 {
            let message = members[sender].send(b"at rest");
            members[1 - sender].receive(&message).expect("message");
        }
    }
}

/// Whether `key` opens the sealed header of the key-slot file at `path`
/// (the attacker who has the application key, reading the documented
/// format): the naming key, value key and file key if so.
fn unseal_header(path: &Path, key: &[u8; 32]) -> Option<Vec<u8>> {
    let header = std::fs::read(path).expect("key file");
    Aead::Aes256Gcm
        .open(key, &header[16..28], &header[..12], &header[28..140])
        .ok()
}

#[test]
fn the_files_alone_open_nothing_and_keys_are_checked() {
    let root = tempfile::tempdir().expect("tempdir");
    let keys = [
        ApplicationKey::from_bytes([1; 32]),
        ApplicationKey::from_bytes([2; 32]),
    ];
    session(root.path(), &keys);

    // The attacker without the application key.
    let mut versions = 0;
    for name in ["alice", "bob"] {
        let dir = root.path().join(name);
        let loot = Loot::from_store_dir(&dir);
        let result = attack(&loot);
        println!(
            "sealed store {name}: {} keys taken, {} record versions, {} keys tried, {} opened",
            loot.keys.len(),
            loot.versions.len(),
            result.attempts,
            result.opened.len()
        );
        assert!(loot.keys.len() > 2 && loot.versions.len() > 10);
        assert_eq!(
            result.opened.len(),
            0,
            "{name}: nothing opens without the key"
        );
        versions += loot.versions.len();

        // Positive control: with the application key, the header opens and
        // its value key opens the current public records.
        let key_file = dir.join("keys");
        let header = unseal_header(&key_file, &[if name == "alice" { 1 } else { 2 }; 32])
            .expect("the application key opens the header");
        let with_key = Loot {
            keys: vec![header[32..64].try_into().expect("value key")],
            versions: loot.versions.clone(),
            ..Loot::default()
        };
        let opened = attack(&with_key).opened.len();
        println!("  with the application key's value key: {opened} public record versions open");
        assert!(opened > 0);
    }
    assert!(versions > 0);

    // Missing, wrong or unexpected keys: clear errors, no file changed.
    let alice = root.path().join("alice");
    let before = snapshot(&alice);
    assert_eq!(
        open(&alice, None).err(),
        Some(StoreError::ApplicationKeyMissing)
    );
    assert_eq!(
        open(&alice, Some(&ApplicationKey::from_bytes([9; 32]))).err(),
        Some(StoreError::ApplicationKeyWrong)
    );
    assert_eq!(snapshot(&alice), before, "a refused open changes no file");
    let clear = root.path().join("clear");
    drop(open(&clear, None).expect("clear store"));
    assert_eq!(
        open(&clear, Some(&keys[0])).err(),
        Some(StoreError::ApplicationKeyUnexpected)
    );

    // The right key opens, and the store still holds its group.
    let store = open(&alice, Some(&keys[0])).expect("reopen with the key");
    let before_rekey = store.inventory().expect("inventory");
    assert!(!before_rekey.is_empty());

    // Rekey: the old key opens nothing, the new one everything.
    let new_key = ApplicationKey::from_bytes([3; 32]);
    store.rekey(Some(&new_key)).expect("rekey");
    assert_eq!(
        store.inventory().expect("inventory after rekey"),
        before_rekey
    );
    drop(store);
    assert!(unseal_header(&alice.join("keys"), &[1; 32]).is_none());
    assert!(!alice.join("keys.rekey").exists());
    assert_eq!(
        open(&alice, Some(&keys[0])).err(),
        Some(StoreError::ApplicationKeyWrong)
    );
    let store = open(&alice, Some(&new_key)).expect("the new key opens");
    assert_eq!(store.inventory().expect("inventory"), before_rekey);
    let loot = Loot::from_store_dir(&alice);
    assert_eq!(attack(&loot).opened.len(), 0);

    // Back to clear: then the files open as any clear store's do.
    store.rekey(None).expect("rekey to clear");
    drop(store);
    let store = open(&alice, None).expect("clear again");
    assert_eq!(store.inventory().expect("inventory"), before_rekey);
    drop(store);
    let loot = Loot::from_store_dir(&alice);
    let opened = attack(&loot).opened.len();
    println!("after rekeying to clear: {opened} record versions open to the attacker");
    assert!(opened > 0, "positive control: a clear store's files open");
}

/// A rekey cut short before its rename leaves its new file beside the old
/// one: the store opens with the old key and wipes that file.
#[test]
fn a_rekey_cut_short_leaves_the_old_key_in_force() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("store");
    let key = ApplicationKey::from_bytes([5; 32]);
    drop(open(&dir, Some(&key)).expect("create"));
    std::fs::write(dir.join("keys.rekey"), [7u8; 8192]).expect("a half-written rekey");
    drop(open(&dir, Some(&key)).expect("the old key still opens"));
    assert!(!dir.join("keys.rekey").exists());
}
