//! HPKE known answers from other implementations, run through polymls's
//! HPKE core: RFC 9180 Appendix A and draft-ietf-hpke-pq's vectors.
//!
//! Base-mode and PSK-mode entries of every KEM/KDF/AEAD combination polymls
//! offers are run: DeriveKeyPair, encapsulation, every listed encryption
//! (sealed and opened at its sequence number) and every export; the counts
//! are per mode. The authenticated modes and algorithms polymls does not
//! offer are counted as skipped.

mod common;

use common::{hex_field, Counts};
use polymls::hpke::{HpkeSuite, Psk};
use serde_json::Value;

#[test]
fn rfc9180_appendix_a() {
    let counts = run_file("hpke/rfc9180-appendix-a.json");
    for mode in [0, 1] {
        assert!(
            counts.ran_matching(&format!("mode {mode} ")) > 0,
            "no entry of mode {mode} ran"
        );
    }
}

/// Includes both X-Wing (0x647a) entries, with HKDF-SHA256 and with the
/// one-stage SHAKE256 KDF, and X-Wing's labeled DeriveKeyPair.
#[test]
fn draft_ietf_hpke_pq() {
    let counts = run_file("hpke/hpke-pq-test-vectors.json");
    assert_eq!(
        counts.ran_matching("kem 0x647a"),
        2,
        "both X-Wing entries must run"
    );
}

fn run_file(file: &str) -> Counts {
    let vectors: Vec<Value> = common::load(file);
    let mut counts = Counts::default();
    for vector in &vectors {
        let number = |key: &str| {
            vector[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{key} is not a number"))
        };
        let (mode, kem, kdf, aead) = (
            number("mode"),
            number("kem_id"),
            number("kdf_id"),
            number("aead_id"),
        );
        let label = format!("mode {mode} kem {kem:#06x} kdf {kdf:#06x} aead {aead:#06x}");
        match HpkeSuite::from_ids(kem as u16, kdf as u16, aead as u16) {
            Ok(suite) if mode == 0 => {
                run_entry(&suite, vector, None, &label);
                counts.ran(&label);
            }
            Ok(suite) if mode == 1 => {
                let (key, id) = (hex_field(vector, "psk"), hex_field(vector, "psk_id"));
                run_entry(&suite, vector, Some(Psk { id: &id, key: &key }), &label);
                counts.ran(&label);
            }
            _ => counts.skip(&label),
        }
    }
    counts.report_and_check(file);
    counts
}

/// The first of `names` that `object` has, as bytes (the two files name
/// some fields differently).
fn field(object: &Value, names: &[&str]) -> Vec<u8> {
    let name = names
        .iter()
        .find(|name| object.get(**name).is_some())
        .unwrap_or_else(|| panic!("none of {names:?}"));
    hex_field(object, name)
}

/// One entry, in base mode (`psk` `None`) or PSK mode.
fn run_entry(suite: &HpkeSuite, v: &Value, psk: Option<Psk<'_>>, label: &str) {
    let receiver = suite
        .derive_key_pair(&hex_field(v, "ikmR"))
        .expect("DeriveKeyPair(ikmR)");
    assert_eq!(*receiver.private, hex_field(v, "skRm"), "{label}: skRm");
    assert_eq!(receiver.public, hex_field(v, "pkRm"), "{label}: pkRm");
    assert_eq!(
        suite
            .kem()
            .public_key(&receiver.private)
            .expect("public key"),
        receiver.public,
        "{label}: pk(skRm)"
    );

    // The encapsulation seed: DHKEM's is the ephemeral private key derived
    // from ikmE; X-Wing's is ikmE itself.
    let ikm_e = hex_field(v, "ikmE");
    let seed = match v.get("skEm") {
        Some(_) => {
            let ephemeral = suite.derive_key_pair(&ikm_e).expect("DeriveKeyPair(ikmE)");
            assert_eq!(*ephemeral.private, hex_field(v, "skEm"), "{label}: skEm");
            assert_eq!(ephemeral.public, hex_field(v, "pkEm"), "{label}: pkEm");
            ephemeral.private.to_vec()
        }
        None => ikm_e,
    };

    let info = hex_field(v, "info");
    let (enc, mut sender) = match psk {
        None => suite.setup_sender_with_seed(&receiver.public, &info, &seed),
        Some(psk) => suite.setup_sender_psk_with_seed(&receiver.public, &info, psk, &seed),
    }
    .expect("SetupS");
    assert_eq!(enc, hex_field(v, "enc"), "{label}: enc");
    let setup_receiver = |private_key: &[u8]| match psk {
        None => suite.setup_receiver(&enc, private_key, &info),
        Some(psk) => suite.setup_receiver_psk(&enc, private_key, &info, psk),
    };
    let mut receiver_context = setup_receiver(&receiver.private).expect("SetupR");

    // Contexts advance one message at a time, so gaps between the listed
    // sequence numbers are filled with throwaway messages. A file without
    // sequence numbers gives the nonce, base_nonce XOR seq.
    let base_nonce = hex_field(v, "base_nonce");
    let mut next_sequence = 0;
    for encryption in v["encryptions"].as_array().expect("encryptions") {
        let sequence = match encryption.get("seq") {
            Some(seq) => seq.as_u64().expect("seq"),
            None => sequence_of(&hex_field(encryption, "nonce"), &base_nonce),
        };
        while next_sequence < sequence {
            let filler = sender.seal(b"", b"").expect("filler seal");
            receiver_context.open(b"", &filler).expect("filler open");
            next_sequence += 1;
        }
        let aad = hex_field(encryption, "aad");
        let plaintext = field(encryption, &["plaintext", "pt"]);
        let ciphertext = sender.seal(&aad, &plaintext).expect("seal");
        assert_eq!(
            ciphertext,
            field(encryption, &["ciphertext", "ct"]),
            "{label}: ciphertext at seq {sequence}"
        );
        assert_eq!(
            receiver_context.open(&aad, &ciphertext).expect("open"),
            plaintext,
            "{label}: seq {sequence}"
        );
        next_sequence += 1;
    }
    // The expanded private key OpenMLS stores (DHKEM: skRm || pkRm) has
    // the same public key and receives the same secrets.
    let expanded = suite
        .kem()
        .expand_private_key(&receiver.private)
        .expect("expand skRm");
    assert_eq!(
        suite.kem().public_key(&expanded).expect("public key"),
        receiver.public,
        "{label}: pk of the expanded key"
    );
    for export in v["exports"].as_array().expect("exports") {
        let exporter_context = hex_field(export, "exporter_context");
        let length = export["L"].as_u64().expect("L") as usize;
        let expected = hex_field(export, "exported_value");
        assert_eq!(
            *sender.export(&exporter_context, length).expect("export"),
            expected,
            "{label}: sender export"
        );
        let received = receiver_context
            .export(&exporter_context, length)
            .expect("export");
        assert_eq!(*received, expected, "{label}: receiver export");
        let from_expanded = setup_receiver(&expanded)
            .and_then(|context| context.export(&exporter_context, length))
            .expect("export with the expanded key");
        assert_eq!(*from_expanded, expected, "{label}: expanded-key export");
    }
}

/// `seq` such that `nonce == base_nonce XOR I2OSP(seq, Nn)`.
fn sequence_of(nonce: &[u8], base_nonce: &[u8]) -> u64 {
    let xor: Vec<u8> = nonce.iter().zip(base_nonce).map(|(a, b)| a ^ b).collect();
    let (high, low) = xor.split_at(xor.len() - 8);
    assert!(
        high.iter().all(|&b| b == 0),
        "sequence number beyond 64 bits"
    );
    u64::from_be_bytes(low.try_into().expect("8 bytes"))
}

/// PSK mode refuses an empty PSK id and a PSK shorter than 32 bytes (RFC
/// 9180 §5.1 and §9.5), on both sides; and a wrong PSK does not open.
#[test]
fn psk_mode_checks_its_inputs() {
    let suite = polymls::suite::cipher_suite(0xF110).expect("0xF110").hpke();
    let rand = polymls::Rand::default();
    let receiver = suite.derive_key_pair(&[7; 32]).expect("key pair");
    let key = [9u8; 32];
    let good = Psk {
        id: b"id",
        key: &key,
    };
    for bad in [
        Psk { id: b"", key: &key },
        Psk {
            id: b"id",
            key: &key[..31],
        },
    ] {
        assert_eq!(
            suite
                .seal_psk(&rand, &receiver.public, b"", b"", b"m", bad)
                .map(|_| ()),
            Err(polymls::Error::InvalidPsk)
        );
        assert!(suite
            .setup_receiver_psk(&[0; 1120], &receiver.private, b"", bad)
            .is_err());
    }
    let (enc, ciphertext) = suite
        .seal_psk(&rand, &receiver.public, b"info", b"aad", b"message", good)
        .expect("seal");
    let other = [8u8; 32];
    let wrong = Psk {
        id: b"id",
        key: &other,
    };
    assert!(suite
        .open_psk(&enc, &receiver.private, b"info", b"aad", &ciphertext, wrong)
        .is_err());
    assert!(suite
        .open(&enc, &receiver.private, b"info", b"aad", &ciphertext)
        .is_err());
    assert_eq!(
        suite
            .open_psk(&enc, &receiver.private, b"info", b"aad", &ciphertext, good)
            .expect("open"),
        b"message"
    );
}
