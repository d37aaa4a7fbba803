//! Crash safety of mls-rs groups in the forward-secret store: a child
//! process commits to its 0xF110 group in a loop (a self-update, applied
//! and written to the store) and is killed with SIGKILL at random points,
//! 20 times. After each kill the group loads, at the last epoch the child
//! reported or the one after (a write lands whole or not at all), its
//! epoch index matches, and the attacker opens no superseded secret in the
//! files: the interrupted commit was finished or undone when the store
//! opened.

#[path = "common/attacker.rs"]
mod attacker;
#[path = "common/child.rs"]
mod child;

use std::path::Path;
use std::time::Duration;

use mls_rs::client_builder::MlsConfig;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::identity::SigningIdentity;
use mls_rs::{CipherSuite, CipherSuiteProvider, Client, CryptoProvider, ExtensionList};
use mls_rs_core::crypto::{SignaturePublicKey, SignatureSecretKey};
use mls_rs_core::group::GroupStateStorage;
use polymls::mls_rs::{MlsRsCrypto, MlsRsStorage};

const CHILD: &str = "POLYMLS_MLS_RS_CRASH_DIR";
const KILLS: usize = 20;
const GROUP: &[u8] = b"crash group";
const SUITE: CipherSuite = CipherSuite::new(0xF110);

/// The member's client on the store in `dir/store`, with the signing key
/// kept in `dir/signer`.
fn client(dir: &Path) -> (Client<impl MlsConfig>, MlsRsStorage) {
    let signer = std::fs::read(dir.join("signer")).expect("signer");
    let (secret, public) = signer.split_at(64);
    let identity = SigningIdentity::new(
        BasicCredential::new(b"alice".to_vec()).into_credential(),
        SignaturePublicKey::new_slice(public),
    );
    let storage = MlsRsStorage::new(polymls::Store::open(dir.join("store")).expect("store"));
    let client = Client::builder()
        .identity_provider(BasicIdentityProvider)
        .crypto_provider(MlsRsCrypto::default())
        .group_state_storage(storage.clone())
        .key_package_repo(storage.clone())
        .psk_store(storage.clone())
        .signing_identity(identity, SignatureSecretKey::new_slice(secret), SUITE)
        .build();
    (client, storage)
}

/// In the child: commit, apply and write in a loop until killed, reporting
/// each epoch once it is written.
fn child(dir: &Path) -> ! {
    let (client, _) = client(dir);
    let mut group = client.load_group(GROUP).expect("load group");
    println!("ready");
    loop {
        group.commit(Vec::new()).expect("commit");
        group.apply_pending_commit().expect("apply");
        group.write_to_storage().expect("write");
        println!("epoch {}", group.current_epoch());
    }
}

#[test]
fn stored_groups_survive_sigkill_at_random_points() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(Path::new(&dir));
    }
    let root = tempfile::tempdir().expect("tempdir");
    let crypto = MlsRsCrypto::default();
    let suite = crypto.cipher_suite_provider(SUITE).expect("0xF110");
    let (secret, public) = suite.signature_key_generate().expect("signer");
    std::fs::write(
        root.path().join("signer"),
        [secret.as_bytes(), public.as_bytes()].concat(),
    )
    .expect("write signer");
    let mut epoch = {
        let (client, _) = client(root.path());
        let mut group = client
            .create_group_with_id(
                GROUP.to_vec(),
                ExtensionList::default(),
                ExtensionList::default(),
                None,
            )
            .expect("create group");
        group.write_to_storage().expect("write");
        group.current_epoch()
    };

    let rand = polymls::Rand::default();
    let (mut kills, mut committed, mut cut_off) = (0, 0, 0);
    for round in 0..KILLS {
        let (mut process, _, lines) = child::spawn(
            "stored_groups_survive_sigkill_at_random_points",
            CHILD,
            root.path(),
            "ready",
        );
        child::kill_at_random(&mut process, &rand, Duration::from_micros(200));
        kills += 1;
        let reported = lines
            .map_while(Result::ok)
            .filter_map(|l| {
                l.strip_prefix("epoch ")
                    .and_then(|e| e.trim().parse::<u64>().ok())
            })
            .max()
            .unwrap_or(epoch);

        let (client, storage) = client(root.path());
        let group = client
            .load_group(GROUP)
            .expect("the group loads after the kill");
        let loaded = group.current_epoch();
        assert!(
            loaded == reported || loaded == reported + 1,
            "round {round}: loaded epoch {loaded}, last reported {reported}"
        );
        if loaded > reported {
            cut_off += 1;
        }
        committed += loaded - epoch;
        epoch = loaded;
        let max = storage.max_epoch_id(GROUP).expect("index");
        if let Some(max) = max {
            assert!(
                storage.epoch(GROUP, max).expect("epoch").is_some(),
                "round {round}: index without its epoch"
            );
        }
        drop((group, client, storage));

        let current = attacker::current_records(&root.path().join("store"));
        let attack = attacker::attack(&attacker::Loot::from_store_dir(&root.path().join("store")));
        for opened in attack.opened {
            let stale = current.get(&opened.version.name) != Some(&opened.version.bytes);
            assert!(
                !stale || (!opened.secret && opened.plaintext.len() == 16),
                "round {round}: a superseded secret opened after the kill"
            );
        }
    }
    println!(
        "mls-rs crash: {kills} SIGKILLs during 0xF110 commits, {committed} commits landed, {cut_off} landed unreported (cut off between write and report), every load at the reported epoch or the next, 0 superseded secrets opened"
    );
    assert_eq!(kills, KILLS);
    assert!(committed > 0, "the child never committed");
}
