//! HPKE as OpenMLS calls it (seal, open, setup-and-export both ways,
//! DeriveKeyPair) for 0x0001 and X-Wing (OpenMLS's 0x004F), polymls next to
//! `openmls_rust_crypto`, `openmls_libcrux_crypto` and the `hpke` crate, and
//! the floor: the primitive calls each operation cannot avoid, timed with
//! the fastest well-kept implementation in the same run.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use openmls_traits::types::{Ciphersuite, HpkeCiphertext};

const INFO: &[u8] = b"MLS 1.0 Welcome, a typical info string of a few dozen bytes";
const AAD: &[u8] = b"";
const PLAINTEXT: [u8; 64] = [7; 64];
const SUITES: [(&str, Ciphersuite); 2] = [
    (
        "0x0001",
        Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
    ),
    (
        "xwing",
        Ciphersuite::MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519,
    ),
];

fn providers(c: &mut Criterion) {
    for (suite_name, suite) in SUITES {
        for (name, crypto) in common::providers() {
            let config = || suite.hpke_config();
            let pair = crypto
                .derive_hpke_keypair(config(), &[3; 32])
                .expect("derive");
            let sealed = crypto
                .hpke_seal(config(), &pair.public, INFO, AAD, &PLAINTEXT)
                .expect("seal");
            let (enc, _) = crypto
                .hpke_setup_sender_and_export(config(), &pair.public, INFO, b"context", 32)
                .expect("export");
            let mut group = c.benchmark_group(format!("hpke/{suite_name}"));
            group.bench_function(format!("seal/{name}"), |b| {
                b.iter(|| {
                    crypto
                        .hpke_seal(config(), black_box(&pair.public), INFO, AAD, &PLAINTEXT)
                        .expect("seal")
                })
            });
            group.bench_function(format!("open/{name}"), |b| {
                b.iter(|| {
                    crypto
                        .hpke_open(config(), black_box(&sealed), &pair.private, INFO, AAD)
                        .expect("open")
                })
            });
            group.bench_function(format!("setup_sender_and_export/{name}"), |b| {
                b.iter(|| {
                    crypto
                        .hpke_setup_sender_and_export(
                            config(),
                            black_box(&pair.public),
                            INFO,
                            b"context",
                            32,
                        )
                        .expect("export")
                })
            });
            group.bench_function(format!("setup_receiver_and_export/{name}"), |b| {
                b.iter(|| {
                    crypto
                        .hpke_setup_receiver_and_export(
                            config(),
                            black_box(&enc),
                            &pair.private,
                            INFO,
                            b"context",
                            32,
                        )
                        .expect("export")
                })
            });
            group.bench_function(format!("derive_key_pair/{name}"), |b| {
                b.iter(|| {
                    crypto
                        .derive_hpke_keypair(config(), black_box(&[3; 32]))
                        .expect("derive")
                })
            });
            group.finish();
            let _: &HpkeCiphertext = &sealed;
        }
    }
}

/// The `hpke` crate (RustCrypto-based, draft-ietf-hpke-pq's X-Wing).
fn hpke_crate(c: &mut Criterion) {
    use hpke::aead::AesGcm128;
    use hpke::kdf::HkdfSha256;
    use hpke::kem::{X25519HkdfSha256, XWing};
    use hpke::{Kem, OpModeR, OpModeS};
    fn bench<M: Kem>(c: &mut Criterion, suite: &str) {
        let mut rng = hpke_rng();
        let (sk, pk) = M::derive_keypair(&[3; 32]);
        let (enc, ct) = hpke::single_shot_seal_with_rng::<AesGcm128, HkdfSha256, M>(
            &OpModeS::Base,
            &pk,
            INFO,
            &PLAINTEXT,
            AAD,
            &mut rng,
        )
        .expect("seal");
        let mut group = c.benchmark_group(format!("hpke/{suite}"));
        group.bench_function("seal/hpke", |b| {
            b.iter(|| {
                hpke::single_shot_seal_with_rng::<AesGcm128, HkdfSha256, M>(
                    &OpModeS::Base,
                    black_box(&pk),
                    INFO,
                    &PLAINTEXT,
                    AAD,
                    &mut rng,
                )
                .expect("seal")
            })
        });
        group.bench_function("open/hpke", |b| {
            b.iter(|| {
                hpke::single_shot_open::<AesGcm128, HkdfSha256, M>(
                    &OpModeR::Base,
                    &sk,
                    black_box(&enc),
                    INFO,
                    &ct,
                    AAD,
                )
                .expect("open")
            })
        });
        group.bench_function("setup_sender_and_export/hpke", |b| {
            b.iter(|| {
                let (enc, ctx) = hpke::setup_sender_with_rng::<AesGcm128, HkdfSha256, M>(
                    &OpModeS::Base,
                    black_box(&pk),
                    INFO,
                    &mut rng,
                )
                .expect("setup");
                let mut out = [0u8; 32];
                ctx.export(b"context", &mut out).expect("export");
                (enc, out)
            })
        });
        group.bench_function("setup_receiver_and_export/hpke", |b| {
            b.iter(|| {
                let ctx = hpke::setup_receiver::<AesGcm128, HkdfSha256, M>(
                    &OpModeR::Base,
                    &sk,
                    black_box(&enc),
                    INFO,
                )
                .expect("setup");
                let mut out = [0u8; 32];
                ctx.export(b"context", &mut out).expect("export");
                out
            })
        });
        group.bench_function("derive_key_pair/hpke", |b| {
            b.iter(|| M::derive_keypair(black_box(&[3; 32])))
        });
        group.finish();
    }
    bench::<X25519HkdfSha256>(c, "0x0001");
    bench::<XWing>(c, "xwing");
}

/// A CSPRNG for the `hpke` crate (rand_core 0.10), seeded once.
fn hpke_rng() -> impl hpke::rand_core::CryptoRng {
    struct Rng(polymls::Rand);
    impl hpke::rand_core::TryRng for Rng {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            let mut b = [0; 4];
            self.0.fill(&mut b);
            Ok(u32::from_le_bytes(b))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            let mut b = [0; 8];
            self.0.fill(&mut b);
            Ok(u64::from_le_bytes(b))
        }
        fn try_fill_bytes(&mut self, out: &mut [u8]) -> Result<(), Self::Error> {
            self.0.fill(out);
            Ok(())
        }
    }
    impl hpke::rand_core::TryCryptoRng for Rng {}
    Rng(polymls::Rand::default())
}

/// The primitive calls HPKE cannot avoid, each with the fastest
/// well-kept implementation: X25519 fixed-base (dalek's table) and
/// variable-base (libcrux; dalek shown too), ML-KEM-768 key generation,
/// encapsulation and decapsulation (libcrux), X-Wing's SHAKE256 seed
/// expansion, one HKDF extract+expand and one AES-128-GCM seal (RustCrypto
/// with SHA-NI/AES-NI).
fn floor(c: &mut Criterion) {
    use aes_gcm::aead::{Aead, KeyInit};
    let mut group = c.benchmark_group("floor");
    let secret = x25519_dalek::StaticSecret::from([5u8; 32]);
    let peer = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([6u8; 32]));
    group.bench_function("x25519_base/dalek", |b| {
        b.iter(|| x25519_dalek::PublicKey::from(black_box(&secret)))
    });
    group.bench_function("x25519_dh/dalek", |b| {
        b.iter(|| black_box(&secret).diffie_hellman(&peer))
    });
    group.bench_function("x25519_dh/libcrux", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            let _ = libcrux_curve25519::ecdh(&mut out, peer.as_bytes(), black_box(&[5u8; 32]));
            out
        })
    });
    group.bench_function("x25519_base/libcrux", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            libcrux_curve25519::secret_to_public(&mut out, black_box(&[5u8; 32]));
            out
        })
    });
    use libcrux_ml_kem::mlkem768;
    let pair = mlkem768::generate_key_pair([9; 64]);
    let (ct, _) = mlkem768::encapsulate(pair.public_key(), [1; 32]);
    group.bench_function("mlkem768_keygen/libcrux", |b| {
        b.iter(|| mlkem768::generate_key_pair(black_box([9; 64])))
    });
    // X-Wing expands its 32-byte seed into 96 bytes with SHAKE256.
    group.bench_function("shake256_96/rustcrypto", |b| {
        b.iter(|| {
            use sha3::digest::{ExtendableOutput, Update, XofReader};
            let mut shake = sha3::Shake256::default();
            shake.update(black_box(&[4u8; 32]));
            let mut out = [0u8; 96];
            shake.finalize_xof().read(&mut out);
            out
        })
    });
    group.bench_function("mlkem768_encaps/libcrux", |b| {
        b.iter(|| mlkem768::encapsulate(black_box(pair.public_key()), [1; 32]))
    });
    group.bench_function("mlkem768_decaps/libcrux", |b| {
        b.iter(|| mlkem768::decapsulate(black_box(pair.private_key()), &ct))
    });
    group.bench_function("hkdf_sha256/rustcrypto", |b| {
        b.iter(|| {
            let (_, hkdf) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(b"salt"), black_box(&[1; 32]));
            let mut out = [0u8; 32];
            hkdf.expand(INFO, &mut out).expect("expand");
            out
        })
    });
    group.bench_function("aes128gcm_seal/rustcrypto", |b| {
        b.iter(|| {
            let cipher = aes_gcm::Aes128Gcm::new(black_box(&[2u8; 16]).into());
            cipher
                .encrypt(&[0u8; 12].into(), &PLAINTEXT[..])
                .expect("seal")
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = providers, hpke_crate, floor
}
criterion_main!(benches);
