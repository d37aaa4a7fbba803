//! Replays every fuzz corpus file (`fuzz/corpus/<target>/`: the seeds made
//! from the vectors, what campaigns kept, and every crash input once fixed)
//! through the fuzz targets' bodies, on stable Rust.
//!
//! `cargo test --release --test fuzz_replay -- --ignored write_seed_corpora`
//! regenerates the seeds from `vectors/`.

mod common;
#[cfg(feature = "delivery")]
#[path = "common/ds_client.rs"]
mod ds_client;
#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::PathBuf;

use common::hex_field;
use serde_json::Value;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn replay(target: &str, run: fn(&[u8])) {
    let mut inputs = 0;
    for entry in
        std::fs::read_dir(corpus_dir(target)).unwrap_or_else(|e| panic!("{target} corpus: {e}"))
    {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
        inputs += 1;
    }
    println!("{target}: {inputs} corpus inputs replayed");
    assert!(inputs > 0, "{target}: empty corpus");
}

#[test]
fn hpke_open() {
    replay("hpke_open", targets::hpke_open);
}

#[test]
fn hpke_differential() {
    replay("hpke_differential", targets::hpke_differential);
}

#[test]
fn kdf_differential() {
    replay("kdf_differential", targets::kdf_differential);
}

#[test]
fn xwing_decap() {
    replay("xwing_decap", targets::xwing_decap);
}

#[test]
fn store_decode() {
    replay("store_decode", targets::store_decode);
}

/// A length-prefixed field, as the targets read them.
fn field(bytes: &[u8]) -> Vec<u8> {
    [&(bytes.len() as u16).to_le_bytes()[..], bytes].concat()
}

fn padded(bytes: &[u8], n: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out.resize(n, 0);
    out
}

#[cfg(feature = "delivery")]
#[test]
fn delivery_intake() {
    replay("delivery_intake", |data| {
        targets::delivery_intake(data);
    });
}

/// The Delivery Service's seeds: one-member groups in 0x0001 and 0xF110,
/// each with a self-update commit, an add with its Welcome, a proposal and
/// an application message, framed as `delivery_intake` reads them.
#[cfg(feature = "delivery")]
#[test]
#[ignore = "writes the delivery_intake seeds into fuzz/corpus"]
fn write_delivery_seeds() {
    use ds_client::{mls_rs_client, Client, Devices};
    let dir = corpus_dir("delivery_intake");
    std::fs::create_dir_all(&dir).expect("corpus directory");
    let mut written = 0;
    for suite in [0x0001u16, 0xF110] {
        let devices = Devices::default();
        let mut creator = mls_rs_client(&devices, "creator", "fuzz", suite, false);
        let mut joiner = mls_rs_client(&devices, "joiner", "fuzz", suite, false);
        let (info, tree) = creator.create();
        let frame = |op: u8, tree: &[u8], welcome: &[u8], message: &[u8]| {
            [
                &[op][..],
                &field(&info),
                &field(tree),
                &field(b"creator"),
                &field(welcome),
                message,
            ]
            .concat()
        };
        let update = creator.update();
        creator.discard();
        let add = {
            let key_package = joiner.key_package();
            creator.add(&[key_package])
        };
        creator.discard();
        let message = creator.send(b"hello");
        let proposal = creator.propose_update();
        let seeds = [
            ("update", frame(0, &tree, &[], &update.commit)),
            (
                "update-tree-in-extension",
                frame(0, &[], &[], &update.commit),
            ),
            (
                "add",
                frame(
                    0,
                    &tree,
                    add.welcome.as_deref().unwrap_or_default(),
                    &add.commit,
                ),
            ),
            ("proposal", frame(1, &tree, &[], &proposal)),
            ("message", frame(2, &tree, &[], &message)),
        ];
        for (name, seed) in seeds {
            // A positive control: every seed reaches the end of the intake.
            assert!(
                targets::delivery_intake(&seed),
                "the {name} seed is accepted"
            );
            std::fs::write(dir.join(format!("{name}-{suite:04x}")), seed).expect("seed");
            written += 1;
        }
    }
    println!("{written} delivery_intake seeds written");
}

#[test]
#[ignore = "writes the seed corpora into fuzz/corpus"]
fn write_seed_corpora() {
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    // Suites in table order: 0x0001, 0x0002, 0x0003, 0x004F, 0xF110.
    let rfc: Vec<Value> = common::load("hpke/rfc9180-appendix-a.json");
    let base = |kem: u64, aead: u64| {
        rfc.iter()
            .find(|v| {
                v["mode"] == 0 && v["kem_id"] == kem && v["kdf_id"] == 1 && v["aead_id"] == aead
            })
            .expect("vector")
    };
    for (index, vector) in [(0u8, base(0x20, 1)), (1, base(0x10, 1)), (2, base(0x20, 3))] {
        let encryption = &vector["encryptions"][0];
        let mut open = vec![index];
        for part in [
            hex_field(vector, "skRm"),
            hex_field(vector, "enc"),
            hex_field(vector, "info"),
            hex_field(encryption, "aad"),
        ] {
            open.extend(field(&part));
        }
        open.extend(hex_field(encryption, "ciphertext"));
        seeds.push(("hpke_open", format!("rfc9180-{index}"), open));
        let mut sealed = vec![index | 0x80];
        sealed.extend(padded(&hex_field(vector, "ikmR"), 32));
        sealed.extend(padded(&hex_field(vector, "ikmE"), 64));
        for part in [
            hex_field(vector, "info"),
            hex_field(encryption, "aad"),
            hex_field(encryption, "plaintext"),
        ] {
            sealed.extend(field(&part));
        }
        sealed.extend([1, 3, 0, 0x80]);
        seeds.push(("hpke_open", format!("rfc9180-sealed-{index}"), sealed));
    }
    let pq: Vec<Value> = common::load("hpke/hpke-pq-test-vectors.json");
    for (n, vector) in pq.iter().filter(|v| v["kem_id"] == 0x647a).enumerate() {
        let encryption = &vector["encryptions"][0];
        for index in [3u8, 4] {
            let mut open = vec![index];
            for part in [
                hex_field(vector, "skRm"),
                hex_field(vector, "enc"),
                hex_field(vector, "info"),
                hex_field(encryption, "aad"),
            ] {
                open.extend(field(&part));
            }
            open.extend(hex_field(encryption, "ct"));
            seeds.push(("hpke_open", format!("hpke-pq-{n}-{index}"), open));
        }
        for selector in [6u8, 7, 8] {
            let mut input = vec![selector];
            input.extend(hex_field(vector, "ikmR"));
            input.extend(hex_field(vector, "ikmE"));
            for part in [
                hex_field(vector, "info"),
                hex_field(encryption, "aad"),
                hex_field(encryption, "pt"),
                hex_field(&vector["exports"][0], "exporter_context"),
            ] {
                input.extend(field(&part));
            }
            input.extend([32, 0]);
            seeds.push((
                "hpke_differential",
                format!("hpke-pq-{n}-{selector}"),
                input,
            ));
        }
    }
    for selector in 0u8..6 {
        let vector = if selector == 3 || selector == 4 {
            base(0x10, 1)
        } else {
            base(0x20, 1)
        };
        let encryption = &vector["encryptions"][0];
        let mut input = vec![selector];
        input.extend(padded(&hex_field(vector, "ikmR"), 32));
        input.extend(padded(&hex_field(vector, "ikmE"), 64));
        for part in [
            hex_field(vector, "info"),
            hex_field(encryption, "aad"),
            hex_field(encryption, "plaintext"),
            hex_field(&vector["exports"][0], "exporter_context"),
        ] {
            input.extend(field(&part));
        }
        input.extend([32, 0]);
        seeds.push(("hpke_differential", format!("rfc9180-{selector}"), input));
    }
    let basics: Vec<Value> = common::load("mls/crypto-basics.json");
    for (n, vector) in basics.iter().take(3).enumerate() {
        let expand = &vector["expand_with_label"];
        let mut input = vec![n as u8];
        for part in [
            hex_field(&vector["derive_secret"], "secret"),
            hex_field(expand, "secret"),
            hex_field(expand, "context"),
        ] {
            input.extend(field(&part));
        }
        input.extend([42, 0]);
        input.extend(hex_field(expand, "secret"));
        seeds.push(("kdf_differential", format!("crypto-basics-{n}"), input));
    }
    let xwing: Vec<Value> = common::load("xwing/xwing-draft-test-vectors.json");
    for (n, vector) in xwing.iter().enumerate() {
        let input = [
            &[0u8][..],
            &hex_field(vector, "sk"),
            &hex_field(vector, "ct"),
        ]
        .concat();
        seeds.push(("xwing_decap", format!("xwing-draft-{n}"), input));
    }
    // Sealed records (fixed test key 0x42..) holding a key pair from the vectors.
    let key = [0x42u8; 32];
    let vector = base(0x20, 1);
    let pair = openmls_traits::types::HpkeKeyPair {
        private: hex_field(vector, "skRm").into(),
        public: hex_field(vector, "pkRm"),
    };
    let value = polymls::store::codec::Cbor::encode(&pair).expect("encode");
    use polymls::store::codec::Codec;
    let _ =
        <polymls::store::codec::Cbor as Codec>::decode::<ciborium::Value>(&value).expect("decodes");
    let name = b"record name";
    let secret = polymls::store::record::seal_secret(name, 3, 7, &key, &value).expect("seal");
    let public = polymls::store::record::seal_public(name, &key, &[9; 16], &value).expect("seal");
    for (label, record) in [
        ("secret", secret),
        ("public", public),
        ("plain-cbor", value.to_vec()),
    ] {
        seeds.push((
            "store_decode",
            format!("keypair-{label}"),
            [field(name), record].concat(),
        ));
    }

    for (target, name, data) in &seeds {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(format!("seed-{name}")), data).expect("write seed");
    }
    println!("{} seeds written", seeds.len());
}

#[test]
fn keypackage_validate() {
    replay("keypackage_validate", targets::keypackage_validate);
}
