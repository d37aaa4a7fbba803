//! Real OpenMLS groups through polymls: the whole lifecycle (create, add by
//! Welcome, messages every way, self-update, remove, leave, external join)
//! on every suite polymls serves to OpenMLS, on memory storage and on the
//! RocksDB store (also reopening it at every step), and mixed groups where
//! half the members run `openmls_rust_crypto`.

#[path = "common/groups.rs"]
mod groups;

use std::path::PathBuf;

use openmls::prelude::Ciphersuite;
use openmls_memory_storage::MemoryStorage;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider as _;
use polymls::Provider;

const SUITES: [Ciphersuite; 4] = [
    Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
    Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
    Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
    Ciphersuite::MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519,
];

/// The session's expected shape: 6 epochs, 5 commits, 16 messages
/// decrypted, 8 deliveries to former members refused.
fn check(summary: groups::SessionSummary, sessions: usize) {
    let one = groups::SessionSummary {
        epochs: 6,
        commits: 5,
        messages: 16,
        rejections: 8,
    };
    let expected = groups::SessionSummary {
        epochs: one.epochs * sessions,
        commits: one.commits * sessions,
        messages: one.messages * sessions,
        rejections: one.rejections * sessions,
    };
    assert_eq!(summary, expected);
}

fn in_memory() -> Provider<MemoryStorage> {
    Provider::default()
}

/// A fresh store in a new directory under `root`.
fn fresh_store(root: &tempfile::TempDir) -> impl Fn() -> Provider + '_ {
    let counter = std::cell::Cell::new(0);
    move || {
        counter.set(counter.get() + 1);
        Provider::open(root.path().join(counter.get().to_string())).expect("open store")
    }
}

#[test]
fn lifecycle_on_memory_storage() {
    for suite in SUITES {
        check(groups::run_group_lifecycle(in_memory, suite), 1);
    }
}

#[test]
fn lifecycle_on_the_store() {
    let root = tempfile::tempdir().expect("tempdir");
    for suite in SUITES {
        check(groups::run_group_lifecycle(fresh_store(&root), suite), 1);
    }
}

#[test]
fn lifecycle_on_the_store_reopened_at_every_step() {
    for suite in [SUITES[0], SUITES[3]] {
        let root: PathBuf = tempfile::tempdir().expect("tempdir").keep();
        let open = move |name: &str| Provider::open(root.join(name)).expect("open store");
        check(groups::run_group_lifecycle_reopening(open, suite), 1);
    }
}

#[test]
fn mixed_with_openmls_rust_crypto() {
    for suite in SUITES {
        check(
            groups::run_mixed_group(in_memory, OpenMlsRustCrypto::default, suite),
            2,
        );
    }
    let root = tempfile::tempdir().expect("tempdir");
    for suite in [SUITES[0], SUITES[3]] {
        check(
            groups::run_mixed_group(fresh_store(&root), OpenMlsRustCrypto::default, suite),
            2,
        );
    }
}

/// `Provider::default()` is the real store in a temporary directory, as
/// OpenMLS's test helpers build providers, removed when dropped.
#[test]
fn lifecycle_on_default_providers() {
    for suite in [SUITES[0], SUITES[3]] {
        check(
            groups::run_group_lifecycle(Provider::<polymls::Store>::default, suite),
            1,
        );
    }
    let provider = Provider::<polymls::Store>::default();
    let dir = provider.storage().directory().to_path_buf();
    assert!(dir.join("keys").exists());
    drop(provider);
    assert!(!dir.exists(), "the temporary store is removed on drop");
}

/// OpenMLS's errors derive `PartialEq` over the storage error, so with the
/// store inside they compare, as applications and OpenMLS's tests do.
#[test]
fn openmls_errors_over_the_store_compare() {
    use openmls::prelude::*;
    use openmls_basic_credential::SignatureKeyPair;

    let provider = Provider::<polymls::Store>::default();
    let signer = SignatureKeyPair::new(SignatureScheme::ED25519).expect("signer");
    signer.store(provider.storage()).expect("store signer");
    let credential = CredentialWithKey {
        credential: BasicCredential::new(b"alice".to_vec()).into(),
        signature_key: signer.public().into(),
    };
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(SUITES[0])
        .build();
    let id = GroupId::from_slice(b"one id");
    MlsGroup::new_with_group_id(&provider, &signer, &config, id.clone(), credential.clone())
        .expect("first group");
    let again = MlsGroup::new_with_group_id(&provider, &signer, &config, id, credential)
        .expect_err("the id is taken");
    assert_eq!(again, NewGroupError::GroupAlreadyExists);
    let storage_error: NewGroupError<polymls::StoreError> =
        NewGroupError::StorageError(polymls::StoreError::Corrupted("record key missing"));
    assert_eq!(
        storage_error,
        NewGroupError::StorageError(polymls::StoreError::Corrupted("record key missing"))
    );
    assert_ne!(again, storage_error);
}
