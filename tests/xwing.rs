//! X-Wing: the draft's own vectors, a differential test against RustCrypto's
//! `x-wing` crate, and its behaviour on bad input.

mod common;

use common::{hex_field, Counts};
use polymls::hpke::kem::{XWING, XWING_OPENMLS};
use polymls::hpke::Kem;
use polymls::suite::cipher_suite;
use polymls::{Error, Rand};
use serde_json::Value;
use x_wing::{Decapsulate, Decapsulator, KeyExport};

const FILE: &str = "xwing/xwing-draft-test-vectors.json";

#[test]
fn draft_vectors() {
    let vectors: Vec<Value> = common::load(FILE);
    let mut counts = Counts::default();
    for vector in &vectors {
        let sk = hex_field(vector, "sk");
        assert_eq!(
            sk,
            hex_field(vector, "seed"),
            "the private key is the key generation seed"
        );
        let (pk, ct, ss) = (
            hex_field(vector, "pk"),
            hex_field(vector, "ct"),
            hex_field(vector, "ss"),
        );
        assert_eq!(XWING.public_key(&sk).expect("public key"), pk);
        let (shared, enc) = XWING
            .encap(&pk, &hex_field(vector, "eseed"))
            .expect("encap");
        assert_eq!(enc, ct, "ciphertext");
        assert_eq!(shared.as_slice(), ss, "encapsulated secret");
        assert_eq!(
            XWING.decap(&ct, &sk).expect("decap").as_slice(),
            ss,
            "decapsulated secret"
        );
        // The expanded form the OpenMLS glue stores holds the same key.
        let expanded = XWING.expand_private_key(&sk).expect("expand");
        assert_eq!(expanded.len(), 2496);
        assert_eq!(XWING.decap(&ct, &expanded).expect("decap").as_slice(), ss);
        assert_eq!(XWING.public_key(&expanded).expect("public key"), pk);
        counts.ran("X-Wing");
    }
    counts.report_and_check(FILE);
}

/// polymls and RustCrypto's `x-wing` agree byte for byte on random seeds and
/// encapsulation randomness: public keys, ciphertexts, shared secrets.
#[test]
fn differential_against_rustcrypto_x_wing() {
    let rand = Rand::default();
    let rounds = 200;
    for _ in 0..rounds {
        let mut seed = [0u8; 32];
        let mut eseed = [0u8; 64];
        rand.fill(&mut seed);
        rand.fill(&mut eseed);

        let theirs = x_wing::DecapsulationKey::from(seed);
        let their_public = theirs.encapsulation_key().to_bytes();
        let public = XWING.public_key(&seed).expect("public key");
        assert_eq!(
            public,
            their_public.as_slice(),
            "public key of seed {}",
            hex::encode(seed)
        );

        let (their_ct, their_ss) = theirs
            .encapsulation_key()
            .encapsulate_deterministic(&eseed.into());
        let (shared, ct) = XWING.encap(&public, &eseed).expect("encap");
        assert_eq!(ct, their_ct.as_slice(), "ciphertext");
        assert_eq!(shared.as_slice(), their_ss.as_slice(), "shared secret");
        assert_eq!(
            XWING.decap(&ct, &seed).expect("decap").as_slice(),
            theirs.decapsulate(&their_ct).as_slice()
        );

        // A ciphertext with one bit flipped: both give the same implicit
        // rejection secret (or, in the X25519 half, the same changed secret).
        let mut tampered = ct.clone();
        let index = (eseed[0] as usize * 7) % tampered.len();
        tampered[index] ^= 1;
        let their_tampered: x_wing::Ciphertext = tampered.as_slice().try_into().expect("length");
        let ours = XWING
            .decap(&tampered, &seed)
            .expect("decap of tampered ciphertext");
        assert_ne!(ours.as_slice(), shared.as_slice());
        assert_eq!(
            ours.as_slice(),
            theirs.decapsulate(&their_tampered).as_slice()
        );
    }
    println!("x-wing differential: {rounds} random seeds agreed");
}

/// The two DeriveKeyPair definitions: draft-ietf-hpke-pq's labeled one for
/// 0xF110, plain SHAKE256(ikm, 32) for OpenMLS's 0x004F.
#[test]
fn suites_pick_their_derivation() {
    use sha3::digest::{ExtendableOutput, Update, XofReader};
    let ikm = [42u8; 32];
    let mut plain_seed = [0u8; 32];
    let mut xof = sha3::Shake256::default();
    xof.update(&ikm);
    xof.finalize_xof().read(&mut plain_seed);

    let openmls = cipher_suite(0x004F)
        .expect("0x004F")
        .hpke()
        .derive_key_pair(&ikm)
        .expect("derive");
    assert_eq!(openmls.private.as_slice(), plain_seed);
    let polyproto = cipher_suite(0xF110)
        .expect("0xF110")
        .hpke()
        .derive_key_pair(&ikm)
        .expect("derive");
    assert_ne!(polyproto.private.as_slice(), plain_seed);
    assert_eq!(
        polyproto.private,
        XWING.derive_key_pair(&ikm).expect("derive").private
    );
    assert_eq!(
        openmls.private,
        XWING_OPENMLS.derive_key_pair(&ikm).expect("derive").private
    );
}

#[test]
fn bad_input_is_an_error() {
    let suite = cipher_suite(0xF110).expect("0xF110").hpke();
    let rand = Rand::default();
    let receiver = suite.derive_key_pair(&[1; 32]).expect("derive");
    for bad in [0, 31, 33, 1215, 1217, 2495, 2497] {
        let key = vec![7u8; bad];
        if bad != 32 && bad != 1216 {
            assert_eq!(
                XWING.public_key(&key).map(|_| ()),
                Err(Error::InvalidLength),
                "{bad}-byte private key"
            );
        }
        if bad != 1216 {
            assert_eq!(
                suite.seal(&rand, &key, b"", b"", b"pt").map(|_| ()),
                Err(Error::InvalidLength),
                "{bad}-byte public key"
            );
        }
    }
    // An ML-KEM public key with a coefficient out of range (all 0xff).
    let mut invalid = receiver.public.clone();
    invalid[..384].fill(0xff);
    assert_eq!(
        suite.seal(&rand, &invalid, b"", b"", b"pt").map(|_| ()),
        Err(Error::InvalidPublicKey)
    );

    let (enc, ciphertext) = suite
        .seal(&rand, &receiver.public, b"info", b"aad", b"plaintext")
        .expect("seal");
    for bad in [0, 1119, 1121] {
        let enc = vec![3u8; bad];
        assert_eq!(
            suite.open(&enc, &receiver.private, b"info", b"aad", &ciphertext),
            Err(Error::InvalidLength)
        );
    }
    // Tampering anywhere in the encapsulation changes the shared secret
    // (ML-KEM's implicit rejection, or a different X25519 secret); the AEAD
    // then refuses the ciphertext.
    for index in [0, 500, 1087, 1088, 1119] {
        let mut tampered = enc.clone();
        tampered[index] ^= 0x80;
        assert_eq!(
            suite.open(&tampered, &receiver.private, b"info", b"aad", &ciphertext),
            Err(Error::DecryptionFailed),
            "byte {index} flipped"
        );
    }
    assert_eq!(
        suite
            .open(&enc, &receiver.private, b"info", b"aad", &ciphertext)
            .expect("open"),
        b"plaintext"
    );
}
