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

fn providers(c: &mut Criterion) {
    let mut group = c.benchmark_group("kdf");
    for (name, crypto) in common::providers() {
        let crypto = crypto.as_ref();
        group.bench_function(format!("hkdf_extract/{name}"), |b| {
            b.iter(|| {
                crypto
                    .hkdf_extract(HashType::Sha2_256, black_box(&SECRET), &SECRET)
                    .expect("extract")
            })
        });
        for length in [32, 64] {
            group.bench_function(format!("hkdf_expand_{length}/{name}"), |b| {
                b.iter(|| {
                    crypto
                        .hkdf_expand(HashType::Sha2_256, black_box(&SECRET), b"info", length)
                        .expect("expand")
                })
            });
        }
        group.bench_function(format!("hmac/{name}"), |b| {
            b.iter(|| {
                crypto
                    .hmac(HashType::Sha2_256, black_box(&SECRET), &MESSAGE)
                    .expect("hmac")
            })
        });
        group.bench_function(format!("hash/{name}"), |b| {
            b.iter(|| {
                crypto
                    .hash(HashType::Sha2_256, black_box(&MESSAGE))
                    .expect("hash")
            })
        });
        group.bench_function(format!("expand_with_label/{name}"), |b| {
            b.iter(|| {
                expand_with_label(crypto, black_box(&SECRET), "key", b"generation context", 16)
            })
        });
        group.bench_function(format!("derive_secret/{name}"), |b| {
            b.iter(|| expand_with_label(crypto, black_box(&SECRET), "epoch", b"", 32))
        });
        let sealed = crypto
            .aead_encrypt(AeadType::Aes128Gcm, &AEAD_KEY, &MESSAGE, &NONCE, b"")
            .expect("seal");
        group.bench_function(format!("aead_seal/{name}"), |b| {
            b.iter(|| {
                crypto
                    .aead_encrypt(
                        AeadType::Aes128Gcm,
                        black_box(&AEAD_KEY),
                        &MESSAGE,
                        &NONCE,
                        b"",
                    )
                    .expect("seal")
            })
        });
        group.bench_function(format!("aead_open/{name}"), |b| {
            b.iter(|| {
                crypto
                    .aead_decrypt(
                        AeadType::Aes128Gcm,
                        black_box(&AEAD_KEY),
                        &sealed,
                        &NONCE,
                        b"",
                    )
                    .expect("open")
            })
        });
    }
    group.finish();
}

/// The same operations on RustCrypto's `hkdf`, `hmac`, `sha2` and `aes-gcm`
/// directly. Each returns its output as a `Vec`, as OpenMLS's crypto trait
/// makes every provider do, so a ratio against these is the provider's own
/// overhead, not the trait's allocation.
fn primitives(c: &mut Criterion) {
    use hmac::Mac;
    use sha2::Digest;
    type Hkdf = hkdf::Hkdf<sha2::Sha256>;
    let mut group = c.benchmark_group("kdf");
    group.bench_function("hkdf_extract/rustcrypto-direct", |b| {
        b.iter(|| Hkdf::extract(Some(black_box(&SECRET)), &SECRET).0.to_vec())
    });
    for length in [32, 64] {
        group.bench_function(format!("hkdf_expand_{length}/rustcrypto-direct"), |b| {
            b.iter(|| {
                let mut out = vec![0u8; length];
                Hkdf::from_prk(black_box(&SECRET))
                    .expect("prk")
                    .expand(b"info", &mut out)
                    .expect("expand");
                out
            })
        });
    }
    group.bench_function("hmac/rustcrypto-direct", |b| {
        b.iter(|| {
            let mut mac =
                <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(black_box(&SECRET))
                    .expect("key");
            mac.update(&MESSAGE);
            mac.finalize().into_bytes().to_vec()
        })
    });
    group.bench_function("hash/rustcrypto-direct", |b| {
        b.iter(|| sha2::Sha256::digest(black_box(&MESSAGE)).to_vec())
    });
    // Keyed per call, as OpenMLS hands the provider a key with every message.
    use aes_gcm::aead::{Aead, KeyInit};
    let sealed = aes_gcm::Aes128Gcm::new(&AEAD_KEY.into())
        .encrypt(&NONCE.into(), &MESSAGE[..])
        .expect("seal");
    group.bench_function("aead_seal/rustcrypto-direct", |b| {
        b.iter(|| {
            aes_gcm::Aes128Gcm::new(black_box(&AEAD_KEY).into())
                .encrypt(&NONCE.into(), &MESSAGE[..])
                .expect("seal")
        })
    });
    group.bench_function("aead_open/rustcrypto-direct", |b| {
        b.iter(|| {
            aes_gcm::Aes128Gcm::new(black_box(&AEAD_KEY).into())
                .decrypt(&NONCE.into(), &sealed[..])
                .expect("open")
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = providers, primitives
}
criterion_main!(benches);
