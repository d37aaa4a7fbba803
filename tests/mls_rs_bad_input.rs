//! Every `CipherSuiteProvider` method of polymls's mls-rs provider that
//! takes outside input, swept with malformed input on every suite it
//! offers (the sweep `tests/bad_input.rs` makes through OpenMLS's trait):
//! each must return an error, never panic and never succeed.

use mls_rs_core::crypto::{
    CipherSuite, CipherSuiteProvider, CryptoProvider, HpkeCiphertext, HpkeContextR, HpkePsk,
    HpkePublicKey, HpkeSecretKey, SignaturePublicKey, SignatureSecretKey,
};
use polymls::mls_rs::{MlsRsCrypto, MLS_RS_SUITES};

/// Lengths around `good`, including zero and far too long.
fn bad_lengths(good: usize) -> Vec<usize> {
    let mut lengths = vec![0, 1, good - 1, good + 1, 2 * good, 4096];
    lengths.retain(|&n| n != good);
    lengths
}

fn flip(bytes: &[u8], index: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[index] ^= 0x01;
    out
}

#[derive(Default)]
struct Sweep {
    cases: usize,
}

impl Sweep {
    fn refuses<T, E>(&mut self, what: &str, result: Result<T, E>) {
        self.cases += 1;
        assert!(result.is_err(), "{what}: accepted");
    }
}

#[test]
fn malformed_input_is_an_error_on_every_suite() {
    let crypto = MlsRsCrypto::default();
    let mut sweep = Sweep::default();
    for code_point in MLS_RS_SUITES {
        let suite = crypto
            .cipher_suite_provider(CipherSuite::new(code_point))
            .expect("offered");
        let label = format!("{code_point:#06x}");
        let (secret, public) = suite.kem_generate().expect("key pair");
        let ciphertext = suite
            .hpke_seal(&public, b"info", Some(b"aad"), b"plaintext")
            .expect("seal");
        let open = |c: &HpkeCiphertext, s: &HpkeSecretKey| {
            suite.hpke_open(c, s, &public, b"info", Some(b"aad"))
        };
        assert_eq!(&*open(&ciphertext, &secret).expect("open"), b"plaintext");

        // HPKE: encapsulations of every wrong length, tampered
        // encapsulation and ciphertext, the wrong key, wrong info and aad.
        for n in bad_lengths(ciphertext.kem_output.len()) {
            let bad = HpkeCiphertext {
                kem_output: vec![7; n],
                ciphertext: ciphertext.ciphertext.clone(),
            };
            sweep.refuses(&format!("{label} open, {n}-byte enc"), open(&bad, &secret));
            sweep.refuses(
                &format!("{label} setup_r, {n}-byte enc"),
                suite.hpke_setup_r(&vec![7; n], &secret, &public, b"info"),
            );
        }
        for index in [0, ciphertext.kem_output.len() - 1] {
            let bad = HpkeCiphertext {
                kem_output: flip(&ciphertext.kem_output, index),
                ciphertext: ciphertext.ciphertext.clone(),
            };
            sweep.refuses(&format!("{label} open, flipped enc"), open(&bad, &secret));
        }
        for index in [0, ciphertext.ciphertext.len() - 1] {
            let bad = HpkeCiphertext {
                kem_output: ciphertext.kem_output.clone(),
                ciphertext: flip(&ciphertext.ciphertext, index),
            };
            sweep.refuses(
                &format!("{label} open, flipped ciphertext"),
                open(&bad, &secret),
            );
        }
        for n in [0, 15] {
            let bad = HpkeCiphertext {
                kem_output: ciphertext.kem_output.clone(),
                ciphertext: vec![0; n],
            };
            sweep.refuses(
                &format!("{label} open, {n}-byte ciphertext"),
                open(&bad, &secret),
            );
        }
        let (other, other_public) = suite.kem_generate().expect("key pair");
        sweep.refuses(
            &format!("{label} open, wrong key"),
            open(&ciphertext, &other),
        );
        // DHKEM's decapsulation takes the public key mls-rs hands over (its
        // kem_context); X-Wing's derives everything from the private key.
        if code_point != 0xF110 {
            sweep.refuses(
                &format!("{label} open, a public key not the private key's"),
                suite.hpke_open(&ciphertext, &secret, &other_public, b"info", Some(b"aad")),
            );
        }
        for n in bad_lengths(secret.len()) {
            let bad: HpkeSecretKey = vec![3; n].into();
            let result = open(&ciphertext, &bad);
            sweep.refuses(&format!("{label} open, {n}-byte private key"), result);
        }
        sweep.refuses(
            &format!("{label} open, wrong info"),
            suite.hpke_open(&ciphertext, &secret, &public, b"other", Some(b"aad")),
        );
        sweep.refuses(
            &format!("{label} open, wrong aad"),
            suite.hpke_open(&ciphertext, &secret, &public, b"info", None),
        );
        for n in bad_lengths(public.len()) {
            let bad: HpkePublicKey = vec![9; n].into();
            sweep.refuses(
                &format!("{label} seal to a {n}-byte key"),
                suite.hpke_seal(&bad, b"", None, b"m"),
            );
            sweep.refuses(
                &format!("{label} validate a {n}-byte key"),
                suite.kem_public_key_validate(&bad),
            );
        }

        // PSK mode: the wrong PSK, an empty id, a short PSK, base mode.
        let psk = [5u8; 32];
        let sealed = suite
            .hpke_seal_psk(&public, b"", None, b"m", HpkePsk::new(b"id", &psk))
            .expect("seal psk");
        let other_psk = [6u8; 32];
        for (what, bad) in [
            ("wrong PSK", HpkePsk::new(b"id", &other_psk)),
            ("wrong PSK id", HpkePsk::new(b"di", &psk)),
            ("empty PSK id", HpkePsk::new(b"", &psk)),
            ("short PSK", HpkePsk::new(b"id", &psk[..16])),
        ] {
            sweep.refuses(
                &format!("{label} open_psk, {what}"),
                suite.hpke_open_psk(
                    &sealed,
                    &secret,
                    &public,
                    b"",
                    None,
                    HpkePsk::new(bad.id, bad.value),
                ),
            );
            if what.starts_with("empty") || what.starts_with("short") {
                sweep.refuses(
                    &format!("{label} seal_psk, {what}"),
                    suite.hpke_seal_psk(&public, b"", None, b"m", bad),
                );
            }
        }
        sweep.refuses(
            &format!("{label} PSK ciphertext opened in base mode"),
            suite.hpke_open(&sealed, &secret, &public, b"", None),
        );

        // A multi-shot context: a tampered message is refused and does not
        // advance the sequence, so the genuine one still opens.
        let (enc, mut sender) = suite.hpke_setup_s(&public, b"ctx").expect("setup_s");
        let mut receiver = suite
            .hpke_setup_r(&enc, &secret, &public, b"ctx")
            .expect("setup_r");
        let first =
            mls_rs_core::crypto::HpkeContextS::seal(&mut sender, None, b"one").expect("seal");
        sweep.refuses(
            &format!("{label} context open, tampered"),
            receiver.open(None, &flip(&first, 0)),
        );
        assert_eq!(&*receiver.open(None, &first).expect("open"), b"one");
        sweep.refuses(
            &format!("{label} context open, replayed"),
            receiver.open(None, &first),
        );

        // Signatures: keys and signatures of every wrong length, tampered
        // signatures, a 64-byte Ed25519 key whose public half is wrong.
        let (signing, verifying) = suite.signature_key_generate().expect("signer");
        let signature = suite.sign(&signing, b"content").expect("sign");
        suite
            .verify(&verifying, &signature, b"content")
            .expect("verify");
        for n in bad_lengths(signing.as_bytes().len()) {
            let bad = SignatureSecretKey::new(vec![1; n]);
            sweep.refuses(
                &format!("{label} sign with a {n}-byte key"),
                suite.sign(&bad, b"m"),
            );
        }
        if signing.as_bytes().len() == 64 {
            let mut mismatched = signing.as_bytes().to_vec();
            mismatched[63] ^= 1;
            sweep.refuses(
                &format!("{label} sign with a mismatched public half"),
                suite.sign(&SignatureSecretKey::new(mismatched), b"m"),
            );
        }
        for n in bad_lengths(verifying.as_bytes().len()) {
            let bad = SignaturePublicKey::new(vec![2; n]);
            sweep.refuses(
                &format!("{label} verify under a {n}-byte key"),
                suite.verify(&bad, &signature, b"content"),
            );
        }
        for n in bad_lengths(signature.len()) {
            sweep.refuses(
                &format!("{label} verify a {n}-byte signature"),
                suite.verify(&verifying, &vec![0; n], b"content"),
            );
        }
        for index in [0, signature.len() / 2, signature.len() - 1] {
            sweep.refuses(
                &format!("{label} verify a flipped signature"),
                suite.verify(&verifying, &flip(&signature, index), b"content"),
            );
        }
        sweep.refuses(
            &format!("{label} verify other content"),
            suite.verify(&verifying, &signature, b"contenu"),
        );

        // AEAD: keys and nonces of every wrong length, short and tampered
        // ciphertexts.
        let key = vec![4u8; suite.aead_key_size()];
        let nonce = vec![8u8; suite.aead_nonce_size()];
        let sealed = suite
            .aead_seal(&key, b"data", Some(b"aad"), &nonce)
            .expect("aead seal");
        for n in bad_lengths(key.len()) {
            sweep.refuses(
                &format!("{label} aead_seal, {n}-byte key"),
                suite.aead_seal(&vec![4; n], b"data", None, &nonce),
            );
            sweep.refuses(
                &format!("{label} aead_open, {n}-byte key"),
                suite.aead_open(&vec![4; n], &sealed, Some(b"aad"), &nonce),
            );
        }
        for n in bad_lengths(nonce.len()) {
            sweep.refuses(
                &format!("{label} aead_seal, {n}-byte nonce"),
                suite.aead_seal(&key, b"data", None, &vec![8; n]),
            );
            sweep.refuses(
                &format!("{label} aead_open, {n}-byte nonce"),
                suite.aead_open(&key, &sealed, Some(b"aad"), &vec![8; n]),
            );
        }
        for bad in [
            flip(&sealed, 0),
            flip(&sealed, sealed.len() - 1),
            sealed[..15].to_vec(),
        ] {
            sweep.refuses(
                &format!("{label} aead_open, tampered"),
                suite.aead_open(&key, &bad, Some(b"aad"), &nonce),
            );
        }

        // KDF: an expansion longer than 255 hashes.
        let prk = suite.kdf_extract(b"salt", b"ikm").expect("extract");
        sweep.refuses(
            &format!("{label} kdf_expand too long"),
            suite.kdf_expand(&prk, b"", 255 * suite.kdf_extract_size() + 1),
        );
    }
    assert!(MlsRsCrypto::default()
        .cipher_suite_provider(CipherSuite::new(0x004F))
        .is_none());
    println!(
        "mls-rs bad input: {} malformed inputs refused on {} suites, 0 accepted, 0 panics",
        sweep.cases,
        MLS_RS_SUITES.len()
    );
}
