//! Sizes the README reports, measured on real groups: the store's CBOR
//! values against the JSON that `openmls_memory_storage` (and OpenMLS's own
//! storage tests) keep for the same 64-member group, and the key package and
//! Welcome sizes of 0x004F (X-Wing) next to 0x0001.
//!
//! Run with `--nocapture` to see the table.

mod common;

use common::member::Member;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_memory_storage::MemoryStorage;
use polymls::store::entities::Entity;
use polymls::Provider;

const SUITES: [Ciphersuite; 2] = [
    Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
    Ciphersuite::MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519,
];
const MEMBERS: usize = 64;

/// `count` key packages of fresh members, made on memory storage.
fn key_packages(suite: Ciphersuite, count: usize) -> Vec<KeyPackage> {
    let provider = Provider::with_storage(MemoryStorage::default());
    (0..count)
        .map(|i| {
            let signer = SignatureKeyPair::new(suite.signature_algorithm()).expect("signer");
            let credential = CredentialWithKey {
                credential: BasicCredential::new(format!("member {i}").into_bytes()).into(),
                signature_key: signer.public().into(),
            };
            KeyPackage::builder()
                .build(suite, &provider, &signer, credential)
                .expect("key package")
                .key_package()
                .clone()
        })
        .collect()
}

/// The JSON bytes `openmls_memory_storage` holds under entries whose key
/// starts with `label`, and over all entries.
fn json_bytes(storage: &MemoryStorage, label: &[u8]) -> (usize, usize) {
    let values = storage.values.read().expect("memory storage");
    let of_label = values
        .iter()
        .filter(|(key, _)| key.starts_with(label))
        .map(|(_, value)| value.len())
        .sum();
    (of_label, values.values().map(Vec::len).sum())
}

#[test]
fn value_sizes_of_a_64_member_group_against_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    println!("| suite | tree CBOR | tree JSON | all values CBOR | all values JSON |");
    println!("|---|---|---|---|---|");
    for suite in SUITES {
        // The same group shape twice: on the polymls store (CBOR) and on
        // memory storage (JSON). Sizes do not depend on the random keys.
        let mut creator = Member::new(
            dir.path(),
            &format!("creator-{:04x}", u16::from(suite)),
            suite,
        );
        creator.create_group(b"sizes group");
        creator.add(&key_packages(suite, MEMBERS - 1));
        let usage = creator.provider.storage().inventory().expect("inventory");
        let tree_cbor = usage[&Entity::Tree].bytes;
        let all_cbor: usize = usage.values().map(|u| u.bytes).sum();

        let provider = Provider::with_storage(MemoryStorage::default());
        let signer = SignatureKeyPair::new(suite.signature_algorithm()).expect("signer");
        signer.store(provider.storage()).expect("store signer");
        let credential = CredentialWithKey {
            credential: BasicCredential::new(b"creator".to_vec()).into(),
            signature_key: signer.public().into(),
        };
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(suite)
            .use_ratchet_tree_extension(true)
            .build();
        let mut group = MlsGroup::new_with_group_id(
            &provider,
            &signer,
            &config,
            GroupId::from_slice(b"sizes group"),
            credential,
        )
        .expect("group");
        group
            .add_members(&provider, &signer, &key_packages(suite, MEMBERS - 1))
            .expect("add");
        group.merge_pending_commit(&provider).expect("merge");
        let (tree_json, all_json) = json_bytes(provider.storage(), b"Tree");

        println!("| {suite:?} | {tree_cbor} | {tree_json} | {all_cbor} | {all_json} |");
        assert_eq!(group.members().count(), MEMBERS);
        assert!(tree_cbor > 0 && tree_json > 0);
        // CBOR carries each byte of a key in one or two bytes, JSON in two to four.
        assert!(
            tree_cbor < tree_json,
            "CBOR tree {tree_cbor} B vs JSON {tree_json} B"
        );
    }
}

#[test]
fn key_package_and_welcome_sizes_per_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    println!("| suite | key package | Welcome adding 1 member (2-member group) |");
    println!("|---|---|---|");
    let mut sizes = Vec::new();
    for suite in SUITES {
        let mut alice = Member::new(
            dir.path(),
            &format!("alice-{:04x}", u16::from(suite)),
            suite,
        );
        let bob = Member::new(dir.path(), &format!("bob-{:04x}", u16::from(suite)), suite);
        alice.create_group(b"size group");
        let key_package = bob.key_package();
        let key_package_len = key_package
            .tls_serialize_detached()
            .expect("serialize")
            .len();
        let (_, welcome) = alice.add(&[key_package]);
        println!("| {suite:?} | {key_package_len} B | {} B |", welcome.len());
        sizes.push((key_package_len, welcome.len()));
    }
    // X-Wing's public key (1216 B) and encapsulation (1120 B) against
    // X25519's 32 B each.
    assert!(
        sizes[1].0 > sizes[0].0 + 1184 && sizes[1].1 > sizes[0].1 + 1088,
        "{sizes:?}"
    );
}
