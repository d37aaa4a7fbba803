//! The KDF, hash and MAC calls OpenMLS makes on every message and epoch:
//! `hkdf_extract`, `hkdf_expand` (32 and 64 bytes), `hmac`, `hash`, and an
//! MLS `ExpandWithLabel` / `DeriveSecret` as OpenMLS issues them (encode
//! the KDFLabel, then one expand), for polymls next to its peers and next to
//! the RustCrypto primitive called directly. The AEAD calls (AES-128-GCM
//! seal and open of a 256-byte message, as for every MLS message) too.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{AeadType, HashType};

const SECRET: [u8; 32] = [0x11; 32];
const MESSAGE: [u8; 256] = [0x22; 256];
const AEAD_KEY: [u8; 16] = [0x33; 16];
const NONCE: [u8; 12] = [0x44; 12];

/// RFC 9420 §8: `KDFLabel { uint16 length; opaque label<V> = "MLS 1.0 " + label; opaque context<V>; }`.
fn kdf_label(label: &str, context: &[u8], length: u16) -> Vec<u8> {
    let full = format!("MLS 1.0 {label}");
    let mut out = Vec::with_capacity(4 + full.len() + context.len());
    out.extend_from_slice(&length.to_be_bytes());
    out.push(full.len() as u8);
    out.extend_from_slice(full.as_bytes());
    out.push(context.len() as u8);
    out.extend_from_slice(context);
    out
}

fn expand_with_label(
    crypto: &dyn OpenMlsCrypto,
    secret: &[u8],
    label: &str,
    context: &[u8],
    length: usize,
) -> Vec<u8> {
    let info = kdf_label(label, context, length as u16);
    crypto
        .hkdf_expand(HashType::Sha2_256, secret, &info, length)
        .expect("expand")
        .as_slice()
        .to_vec()
}

/// The operations, in the order they are reported.
const OPERATIONS: [&str; 9] = [
    "hkdf_extract",
    "hkdf_expand_32",
    "hkdf_expand_64",
    "hmac",
    "hash",
    "expand_with_label",
    "derive_secret",
    "aead_seal",
    "aead_open",
];

/// `operation` through a provider's `OpenMlsCrypto`, as OpenMLS calls it.
fn provider_call<'a>(crypto: &'a dyn OpenMlsCrypto, operation: &str) -> Box<dyn Fn() + 'a> {
    let sha256 = HashType::Sha2_256;
    match operation {
        "hkdf_extract" => Box::new(move || {
            black_box(
                crypto
                    .hkdf_extract(sha256, black_box(&SECRET), &SECRET)
                    .expect("extract"),
            );
        }),
        "hkdf_expand_32" | "hkdf_expand_64" => {
            let length = if operation.ends_with("32") { 32 } else { 64 };
            Box::new(move || {
                black_box(
                    crypto
                        .hkdf_expand(sha256, black_box(&SECRET), b"info", length)
                        .expect("expand"),
                );
            })
        }
        "hmac" => Box::new(move || {
            black_box(
                crypto
                    .hmac(sha256, black_box(&SECRET), &MESSAGE)
                    .expect("hmac"),
            );
        }),
        "hash" => Box::new(move || {
            black_box(crypto.hash(sha256, black_box(&MESSAGE)).expect("hash"));
        }),
        "expand_with_label" => Box::new(move || {
            black_box(expand_with_label(
                crypto,
                black_box(&SECRET),
                "key",
                b"generation context",
                16,
            ));
        }),
        "derive_secret" => Box::new(move || {
            black_box(expand_with_label(
                crypto,
                black_box(&SECRET),
                "epoch",
                b"",
                32,
            ));
        }),
        "aead_seal" => Box::new(move || {
            black_box(
                crypto
                    .aead_encrypt(
                        AeadType::Aes128Gcm,
                        black_box(&AEAD_KEY),
                        &MESSAGE,
                        &NONCE,
                        b"",
                    )
                    .expect("seal"),
            );
        }),
        "aead_open" => {
            let sealed = crypto
                .aead_encrypt(AeadType::Aes128Gcm, &AEAD_KEY, &MESSAGE, &NONCE, b"")
                .expect("seal");
            Box::new(move || {
                black_box(
                    crypto
                        .aead_decrypt(
                            AeadType::Aes128Gcm,
                            black_box(&AEAD_KEY),
                            &sealed,
                            &NONCE,
                            b"",
                        )
                        .expect("open"),
                );
            })
        }
        other => panic!("no KDF operation {other}"),
    }
}

/// `operation` on RustCrypto's `hkdf`, `hmac`, `sha2` and `aes-gcm`
/// directly, where one call of one crate does it. Each returns its output
/// as a `Vec`, as OpenMLS's crypto trait makes every provider do, so a
/// ratio against these is the provider's own overhead, not the trait's
/// allocation. AES-GCM is keyed per call, as OpenMLS hands the provider a
/// key with every message.
fn direct_call(operation: &str) -> Option<Box<dyn Fn()>> {
    use aes_gcm::aead::{Aead, KeyInit};
    use hmac::Mac;
    use sha2::Digest;
    type Hkdf = hkdf::Hkdf<sha2::Sha256>;
    Some(match operation {
        "hkdf_extract" => Box::new(|| {
            black_box(Hkdf::extract(Some(black_box(&SECRET)), &SECRET).0.to_vec());
        }),
        "hkdf_expand_32" | "hkdf_expand_64" => {
            let length = if operation.ends_with("32") { 32 } else { 64 };
            Box::new(move || {
                let mut out = vec![0u8; length];
                Hkdf::from_prk(black_box(&SECRET))
                    .expect("prk")
                    .expand(b"info", &mut out)
                    .expect("expand");
                black_box(out);
            })
        }
        "hmac" => Box::new(|| {
            let mut mac =
                <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(black_box(&SECRET))
                    .expect("key");
            mac.update(&MESSAGE);
            black_box(mac.finalize().into_bytes().to_vec());
        }),
        "hash" => Box::new(|| {
            black_box(sha2::Sha256::digest(black_box(&MESSAGE)).to_vec());
        }),
        "aead_seal" => Box::new(|| {
            black_box(
                aes_gcm::Aes128Gcm::new(black_box(&AEAD_KEY).into())
                    .encrypt(&NONCE.into(), &MESSAGE[..])
                    .expect("seal"),
            );
        }),
        "aead_open" => {
            let sealed = aes_gcm::Aes128Gcm::new(&AEAD_KEY.into())
                .encrypt(&NONCE.into(), &MESSAGE[..])
                .expect("seal");
            Box::new(move || {
                black_box(
                    aes_gcm::Aes128Gcm::new(black_box(&AEAD_KEY).into())
                        .decrypt(&NONCE.into(), &sealed[..])
                        .expect("open"),
                );
            })
        }
        _ => return None,
    })
}

fn providers(c: &mut Criterion) {
    let mut group = c.benchmark_group("kdf");
    for (name, crypto) in common::providers() {
        for operation in OPERATIONS {
            let call = provider_call(crypto.as_ref(), operation);
            group.bench_function(format!("{operation}/{name}"), |b| b.iter(&call));
        }
    }
    for operation in OPERATIONS {
        if let Some(call) = direct_call(operation) {
            group.bench_function(format!("{operation}/rustcrypto-direct"), |b| b.iter(&call));
        }
    }
    group.finish();
}

/// The goals' KDF ratios in interleaved rounds (see
/// [`common::paired_ratio`]): polymls against the crate called directly
/// and against `openmls_rust_crypto`.
fn paired(_: &mut Criterion) {
    if !common::paired_enabled() {
        return;
    }
    let providers = common::providers();
    let crypto = |wanted: &str| {
        providers
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, crypto)| crypto.as_ref())
            .expect("provider")
    };
    // A control: polymls against itself shows the resolution of a ratio.
    let hash = provider_call(crypto("polymls"), "hash");
    let ratio = common::paired_ratio(&hash, &hash);
    common::record_ratio("kdf", "hash", "polymls", "polymls (control)", ratio);
    for operation in OPERATIONS {
        let polymls = provider_call(crypto("polymls"), operation);
        if let Some(direct) = direct_call(operation) {
            let ratio = common::paired_ratio(&polymls, direct);
            common::record_ratio("kdf", operation, "polymls", "rustcrypto-direct", ratio);
        }
        let peer = provider_call(crypto("openmls_rust_crypto"), operation);
        let ratio = common::paired_ratio(peer, &polymls);
        common::record_ratio("kdf", operation, "openmls_rust_crypto", "polymls", ratio);
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = providers, paired
}
criterion_main!(benches);
