//! RFC 9180 Appendix A known answers, run through polymls's HPKE core.
//!
//! Base-mode entries of every KEM/KDF/AEAD combination polymls offers are
//! run: key derivation, encapsulation, every listed encryption (sealed and
//! opened at its sequence number) and every export. Other modes and
//! unsupported KEMs are counted as skipped.

mod common;

use common::{hex_field, Counts};
use polymls::hpke::HpkeSuite;
use serde_json::Value;

const FILE: &str = "hpke/rfc9180-appendix-a.json";

#[test]
fn rfc9180_appendix_a() {
    let vectors: Vec<Value> = common::load(FILE);
    let mut counts = Counts::default();
    for vector in &vectors {
        let ids =
            ["kem_id", "kdf_id", "aead_id"].map(|k| vector[k].as_u64().expect("numeric id") as u16);
        let mode = vector["mode"].as_u64().expect("numeric mode");
        let label = format!(
            "mode {mode} kem {:#06x} kdf {:#06x} aead {:#06x}",
            ids[0], ids[1], ids[2]
        );
        let suite = match HpkeSuite::from_ids(ids[0], ids[1], ids[2]) {
            Ok(suite) if mode == 0 => suite,
            _ => {
                counts.skip(&label);
                continue;
            }
        };
        run_base_mode(&suite, vector, &label);
        counts.ran(&label);
    }
    counts.report_and_check(FILE);
}

fn run_base_mode(suite: &HpkeSuite, v: &Value, label: &str) {
    let field = |name: &str| hex_field(v, name);
    let receiver = suite
        .derive_key_pair(&field("ikmR"))
        .expect("DeriveKeyPair(ikmR)");
    assert_eq!(*receiver.private, field("skRm"), "{label}: skRm");
    assert_eq!(receiver.public, field("pkRm"), "{label}: pkRm");
    let ephemeral = suite
        .derive_key_pair(&field("ikmE"))
        .expect("DeriveKeyPair(ikmE)");
    assert_eq!(*ephemeral.private, field("skEm"), "{label}: skEm");
    assert_eq!(ephemeral.public, field("pkEm"), "{label}: pkEm");

    let info = field("info");
    let (enc, mut sender) = suite
        .setup_sender_with_seed(&receiver.public, &info, &ephemeral.private)
        .expect("SetupBaseS");
    assert_eq!(enc, field("enc"), "{label}: enc");
    let mut receiver_context = suite
        .setup_receiver(&enc, &receiver.private, &info)
        .expect("SetupBaseR");

    // Contexts advance one message at a time, so the gaps between the
    // listed sequence numbers are filled with throwaway messages.
    let mut next_sequence = 0;
    for encryption in v["encryptions"].as_array().expect("encryptions") {
        let sequence = encryption["seq"].as_u64().expect("seq");
        while next_sequence < sequence {
            let filler = sender.seal(b"", b"").expect("filler seal");
            receiver_context.open(b"", &filler).expect("filler open");
            next_sequence += 1;
        }
        let aad = hex_field(encryption, "aad");
        let plaintext = hex_field(encryption, "plaintext");
        let ciphertext = sender.seal(&aad, &plaintext).expect("seal");
        assert_eq!(
            ciphertext,
            hex_field(encryption, "ciphertext"),
            "{label}: ciphertext at seq {sequence}"
        );
        let opened = receiver_context.open(&aad, &ciphertext).expect("open");
        assert_eq!(opened, plaintext, "{label}: plaintext at seq {sequence}");
        next_sequence += 1;
    }
    for export in v["exports"].as_array().expect("exports") {
        let exporter_context = hex_field(export, "exporter_context");
        let length = export["L"].as_u64().expect("L") as usize;
        let expected = hex_field(export, "exported_value");
        assert_eq!(
            *sender.export(&exporter_context, length).expect("export"),
            expected,
            "{label}: sender export"
        );
        assert_eq!(
            *receiver_context
                .export(&exporter_context, length)
                .expect("export"),
            expected,
            "{label}: receiver export"
        );
    }
}
