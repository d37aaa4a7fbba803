//! Non-vacuity check for the KAT runners: corrupt single values of the vector
//! files (one suite-1 entry at a time) and require the runner to panic.

#[path = "common/mls_kat.rs"]
mod mls_kat;

use std::panic::{catch_unwind, AssertUnwindSafe};

use polymls::Crypto;
use serde_json::Value;

type Runner = fn(&Crypto, &str) -> mls_kat::Counts;

fn dir() -> String {
    format!("{}/vectors/mls", env!("CARGO_MANIFEST_DIR"))
}

/// Flip one bit of byte `at` (negative: from the end) of a hex field, or add 1
/// to a numeric field.
fn mutate(v: &mut Value, at: isize) {
    match v {
        Value::String(s) => {
            let mut b = hex::decode(&*s).expect("hex field");
            let i = if at < 0 { b.len() as isize + at } else { at } as usize;
            b[i] ^= 0x01;
            *s = hex::encode(b);
        }
        Value::Number(n) => *v = Value::from(n.as_u64().expect("u64 field") + 1),
        other => panic!("cannot mutate {other}"),
    }
}

fn check(file: &str, runner: Runner, entry: usize, mutations: &[(&str, isize)]) {
    let original: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{}/{file}", dir())).expect("read"))
            .expect("json");
    let tmp = std::env::temp_dir().join(format!("mls-kat-mut-{}-{file}", std::process::id()));
    let tmp = tmp.to_str().expect("utf8 path").to_string();
    let mut missed = Vec::new();
    for (pointer, at) in mutations {
        let mut doc = original.clone();
        let field = doc[entry]
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{file}: no field {pointer}"));
        mutate(field, *at);
        std::fs::write(&tmp, serde_json::to_string(&doc).expect("json")).expect("write tmp");
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let result = catch_unwind(AssertUnwindSafe(|| runner(&Crypto::default(), &tmp)));
        std::panic::set_hook(prev);
        match result {
            Ok(_) => missed.push(format!("{pointer}[{at}]")),
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                println!(
                    "{file} {pointer}[{at}] -> {}",
                    msg.lines().next().unwrap_or("")
                );
            }
        }
    }
    let _ = std::fs::remove_file(&tmp);
    assert!(
        missed.is_empty(),
        "{file}: mutations not detected: {missed:?}"
    );
}

#[test]
fn crypto_basics() {
    check(
        "crypto-basics.json",
        mls_kat::run_crypto_basics,
        0,
        &[
            ("/ref_hash/value", 0),
            ("/ref_hash/out", -1),
            ("/expand_with_label/secret", 0),
            ("/expand_with_label/context", 3),
            ("/expand_with_label/out", -1),
            ("/derive_secret/secret", 0),
            ("/derive_secret/out", -1),
            ("/derive_tree_secret/generation", 0),
            ("/derive_tree_secret/out", -1),
            ("/sign_with_label/content", 0),
            ("/sign_with_label/signature", 5),
            ("/sign_with_label/pub", 1),
            ("/sign_with_label/priv", 1),
            ("/encrypt_with_label/context", 0),
            ("/encrypt_with_label/kem_output", 2),
            ("/encrypt_with_label/ciphertext", -1),
            ("/encrypt_with_label/plaintext", 0),
            ("/encrypt_with_label/priv", 4),
        ],
    );
    // P-256 entry: randomized ECDSA, so the key pair must be exercised via verification.
    check(
        "crypto-basics.json",
        mls_kat::run_crypto_basics,
        1,
        &[
            ("/sign_with_label/signature", 10),
            ("/sign_with_label/priv", 1),
            ("/encrypt_with_label/priv", 4),
        ],
    );
}

#[test]
fn secret_tree() {
    check(
        "secret-tree.json",
        mls_kat::run_secret_tree,
        1,
        &[
            ("/sender_data/sender_data_secret", 0),
            ("/sender_data/ciphertext", 0),
            ("/sender_data/key", -1),
            ("/sender_data/nonce", -1),
            ("/encryption_secret", 0),
            ("/leaves/7/1/generation", 0),
            ("/leaves/7/1/handshake_key", 0),
            ("/leaves/3/0/handshake_nonce", -1),
            ("/leaves/5/1/application_key", 0),
            ("/leaves/0/0/application_nonce", -1),
        ],
    );
}

#[test]
fn psk_secret() {
    check(
        "psk_secret.json",
        mls_kat::run_psk_secret,
        2,
        &[
            ("/psk_secret", -1),
            ("/psks/0/psk", 0),
            ("/psks/0/psk_id", 0),
            ("/psks/1/psk_nonce", -1),
        ],
    );
    check(
        "psk_secret.json",
        mls_kat::run_psk_secret,
        0,
        &[("/psk_secret", 0)],
    );
}

#[test]
fn transcript_hashes() {
    check(
        "transcript-hashes.json",
        mls_kat::run_transcript_hashes,
        0,
        &[
            ("/confirmation_key", 0),
            ("/interim_transcript_hash_before", 0),
            ("/confirmed_transcript_hash_after", -1),
            ("/interim_transcript_hash_after", -1),
            ("/authenticated_content", 20),
            ("/authenticated_content", -1),
            ("/authenticated_content", -40),
        ],
    );
}

#[test]
fn welcome() {
    for entry in [0, 1] {
        check(
            "welcome.json",
            mls_kat::run_welcome,
            entry,
            &[
                ("/init_priv", 3),
                ("/signer_pub", 5),
                ("/key_package", 20),
                ("/key_package", -3),
                ("/welcome", 12),
                ("/welcome", -1),
                ("/welcome", -100),
            ],
        );
    }
}

#[test]
fn message_protection() {
    for entry in [0, 1] {
        check(
            "message-protection.json",
            mls_kat::run_message_protection,
            entry,
            &[
                ("/group_id", 0),
                ("/epoch", 0),
                ("/tree_hash", 0),
                ("/confirmed_transcript_hash", -1),
                ("/signature_priv", 1),
                ("/signature_pub", 5),
                ("/encryption_secret", 0),
                ("/sender_data_secret", 0),
                ("/membership_key", 0),
                ("/proposal", -1),
                ("/commit", -1),
                ("/application", 0),
                ("/proposal_pub", -1),
                ("/proposal_pub", 50),
                ("/commit_pub", -1),
                ("/commit_pub", -60),
                ("/proposal_priv", -1),
                ("/proposal_priv", 50),
                ("/commit_priv", -1),
                ("/application_priv", -1),
                ("/application_priv", -70),
            ],
        );
    }
}
