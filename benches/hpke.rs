//! HPKE as OpenMLS calls it (seal, open, setup-and-export both ways,
//! DeriveKeyPair) for 0x0001 and X-Wing (OpenMLS's 0x004F), polymls next to
//! `openmls_rust_crypto`, `openmls_libcrux_crypto` and the `hpke` crate, and
//! the floor: the primitive calls each operation cannot avoid, timed with
//! the fastest well-kept implementation in the same run, right after
//! polymls's own operations.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{Ciphersuite, HpkeCiphertext, HpkeKeyPair};

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

/// One provider's keys and inputs for one suite, and each operation as
/// OpenMLS calls it.
struct Fixture {
    crypto: Box<dyn OpenMlsCrypto>,
    suite: Ciphersuite,
    pair: HpkeKeyPair,
    sealed: HpkeCiphertext,
    enc: Vec<u8>,
}

impl Fixture {
    fn new(crypto: Box<dyn OpenMlsCrypto>, suite: Ciphersuite) -> Self {
        let pair = crypto
            .derive_hpke_keypair(suite.hpke_config(), &[3; 32])
            .expect("derive");
        let sealed = crypto
            .hpke_seal(suite.hpke_config(), &pair.public, INFO, AAD, &PLAINTEXT)
            .expect("seal");
        let (enc, _) = crypto
            .hpke_setup_sender_and_export(suite.hpke_config(), &pair.public, INFO, b"context", 32)
            .expect("export");
        Fixture {
            crypto,
            suite,
            pair,
            sealed,
            enc,
        }
    }

    fn run(&self, operation: &str) {
        let (crypto, config) = (&self.crypto, self.suite.hpke_config());
        match operation {
            "seal" => drop(black_box(
                crypto
                    .hpke_seal(config, black_box(&self.pair.public), INFO, AAD, &PLAINTEXT)
                    .expect("seal"),
            )),
            "open" => drop(black_box(
                crypto
                    .hpke_open(
                        config,
                        black_box(&self.sealed),
                        &self.pair.private,
                        INFO,
                        AAD,
                    )
                    .expect("open"),
            )),
            "setup_sender_and_export" => drop(black_box(
                crypto
                    .hpke_setup_sender_and_export(
                        config,
                        black_box(&self.pair.public),
                        INFO,
                        b"context",
                        32,
                    )
                    .expect("export"),
            )),
            "setup_receiver_and_export" => drop(black_box(
                crypto
                    .hpke_setup_receiver_and_export(
                        config,
                        black_box(&self.enc),
                        &self.pair.private,
                        INFO,
                        b"context",
                        32,
                    )
                    .expect("export"),
            )),
            "derive_key_pair" => drop(black_box(
                crypto
                    .derive_hpke_keypair(config, black_box(&[3; 32]))
                    .expect("derive"),
            )),
            other => panic!("no HPKE operation {other}"),
        }
    }
}

fn providers(c: &mut Criterion) {
    for (suite_name, suite) in SUITES {
        for (name, crypto) in common::providers() {
            let fixture = Fixture::new(crypto, suite);
            let mut group = c.benchmark_group(format!("hpke/{suite_name}"));
            for operation in OPERATIONS {
                group.bench_function(format!("{operation}/{name}"), |b| {
                    b.iter(|| fixture.run(operation))
                });
            }
            group.finish();
            if name == "polymls" {
                bench_floors(c, suite_name);
            }
        }
    }
}

/// The goals' HPKE ratios in interleaved rounds (see
/// [`common::paired_ratio`]): polymls against each operation's floor, and
/// seal and open against the OpenMLS providers.
fn paired(_: &mut Criterion) {
    if !common::paired_enabled() {
        return;
    }
    let primitives = Primitives::new();
    for (suite_name, suite) in SUITES {
        let group = format!("hpke/{suite_name}");
        let xwing = suite_name == "xwing";
        let mut fixtures = common::providers()
            .into_iter()
            .map(|(name, crypto)| (name, Fixture::new(crypto, suite)));
        let (_, polymls) = fixtures.next().expect("polymls first");
        // A control: polymls against itself shows the resolution of a ratio.
        let ratio = common::paired_ratio(|| polymls.run("seal"), || polymls.run("seal"));
        common::record_ratio(&group, "seal", "polymls", "polymls (control)", ratio);
        for operation in OPERATIONS {
            let ratio = common::paired_ratio(
                || polymls.run(operation),
                || primitives.floor_of(operation, xwing),
            );
            common::record_ratio(&group, operation, "polymls", "floor", ratio);
        }
        for (name, peer) in fixtures {
            for operation in ["seal", "open"] {
                let ratio = common::paired_ratio(|| peer.run(operation), || polymls.run(operation));
                common::record_ratio(&group, operation, name, "polymls", ratio);
            }
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
/// variable-base (libcrux), ML-KEM-768 key generation, encapsulation and
/// decapsulation (libcrux), X-Wing's SHAKE256 seed expansion, one HKDF
/// extract+expand and one AES-128-GCM seal (RustCrypto with SHA-NI/AES-NI).
struct Primitives {
    secret: x25519_dalek::StaticSecret,
    peer: x25519_dalek::PublicKey,
    mlkem: libcrux_ml_kem::mlkem768::MlKem768KeyPair,
    mlkem_ciphertext: libcrux_ml_kem::mlkem768::MlKem768Ciphertext,
}

impl Primitives {
    fn new() -> Self {
        use libcrux_ml_kem::mlkem768;
        let mlkem = mlkem768::generate_key_pair([9; 64]);
        let (mlkem_ciphertext, _) = mlkem768::encapsulate(mlkem.public_key(), [1; 32]);
        Primitives {
            secret: x25519_dalek::StaticSecret::from([5u8; 32]),
            peer: x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([6u8; 32])),
            mlkem,
            mlkem_ciphertext,
        }
    }

    fn x25519_base(&self) -> x25519_dalek::PublicKey {
        x25519_dalek::PublicKey::from(black_box(&self.secret))
    }

    fn x25519_dh(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        let _ = libcrux_curve25519::ecdh(&mut out, self.peer.as_bytes(), black_box(&[5u8; 32]));
        out
    }

    fn mlkem768_keygen(&self) -> libcrux_ml_kem::mlkem768::MlKem768KeyPair {
        libcrux_ml_kem::mlkem768::generate_key_pair(black_box([9; 64]))
    }

    fn mlkem768_encaps(&self) -> [u8; 32] {
        libcrux_ml_kem::mlkem768::encapsulate(black_box(self.mlkem.public_key()), [1; 32]).1
    }

    fn mlkem768_decaps(&self) -> [u8; 32] {
        libcrux_ml_kem::mlkem768::decapsulate(
            black_box(self.mlkem.private_key()),
            &self.mlkem_ciphertext,
        )
    }

    /// X-Wing expands its 32-byte seed into 96 bytes with SHAKE256.
    fn shake256_96(&self) -> [u8; 96] {
        use sha3::digest::{ExtendableOutput, Update, XofReader};
        let mut shake = sha3::Shake256::default();
        shake.update(black_box(&[4u8; 32]));
        let mut out = [0u8; 96];
        shake.finalize_xof().read(&mut out);
        out
    }

    fn hkdf_sha256(&self) -> [u8; 32] {
        let (_, hkdf) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(b"salt"), black_box(&[1; 32]));
        let mut out = [0u8; 32];
        hkdf.expand(INFO, &mut out).expect("expand");
        out
    }

    fn aes128gcm_seal(&self) -> Vec<u8> {
        use aes_gcm::aead::{Aead, KeyInit};
        aes_gcm::Aes128Gcm::new(black_box(&[2u8; 16]).into())
            .encrypt(&[0u8; 12].into(), &PLAINTEXT[..])
            .expect("seal")
    }

    /// Runs the primitive calls `operation` cannot avoid, back to back.
    fn floor_of(&self, operation: &str, xwing: bool) {
        match operation {
            // X-Wing: the seed's SHAKE256 expansion, ML-KEM key generation
            // and the X25519 public key.
            "derive_key_pair" if xwing => {
                black_box(self.shake256_96());
                black_box(self.mlkem768_keygen());
                black_box(self.x25519_base());
            }
            // DHKEM: LabeledExtract/Expand and the public key.
            "derive_key_pair" => {
                black_box(self.x25519_base());
                black_box(self.hkdf_sha256());
            }
            // Encap computes the ephemeral public key and one DH; Decap one
            // DH (pkRm for the KEM context comes with the private key in the
            // expanded form OpenMLS stores, see `derive_key_pair_expanded`);
            // X-Wing adds ML-KEM; then the key schedule, and for seal/open
            // one AEAD call.
            _ => {
                let sends = matches!(operation, "seal" | "setup_sender_and_export");
                if sends {
                    black_box(self.x25519_base());
                }
                black_box(self.x25519_dh());
                if xwing && sends {
                    black_box(self.mlkem768_encaps());
                } else if xwing {
                    black_box(self.mlkem768_decaps());
                }
                black_box(self.hkdf_sha256());
                if operation == "seal" || operation == "open" {
                    black_box(self.aes128gcm_seal());
                }
            }
        }
    }
}

const OPERATIONS: [&str; 5] = [
    "seal",
    "open",
    "setup_sender_and_export",
    "setup_receiver_and_export",
    "derive_key_pair",
];

/// Each operation's floor as one benchmark, its primitive calls back to
/// back in one iteration, timed right after polymls's own operations: a
/// ratio of two neighbouring measurements rather than of one against a
/// sum of medians taken minutes apart on a noisy machine.
fn bench_floors(c: &mut Criterion, suite_name: &str) {
    let primitives = Primitives::new();
    let xwing = suite_name == "xwing";
    let mut group = c.benchmark_group(format!("hpke/{suite_name}"));
    for operation in OPERATIONS {
        group.bench_function(format!("{operation}/floor"), |b| {
            b.iter(|| primitives.floor_of(operation, xwing))
        });
    }
    group.finish();
}

/// Each primitive on its own, and dalek's variable-base and libcrux's
/// fixed-base X25519 for the record (the floor takes the faster of each).
fn floor(c: &mut Criterion) {
    let p = Primitives::new();
    let mut group = c.benchmark_group("floor");
    group.bench_function("x25519_base/dalek", |b| b.iter(|| p.x25519_base()));
    group.bench_function("x25519_dh/dalek", |b| {
        b.iter(|| black_box(&p.secret).diffie_hellman(&p.peer))
    });
    group.bench_function("x25519_dh/libcrux", |b| b.iter(|| p.x25519_dh()));
    group.bench_function("x25519_base/libcrux", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            libcrux_curve25519::secret_to_public(&mut out, black_box(&[5u8; 32]));
            out
        })
    });
    group.bench_function("mlkem768_keygen/libcrux", |b| {
        b.iter(|| p.mlkem768_keygen())
    });
    group.bench_function("shake256_96/rustcrypto", |b| b.iter(|| p.shake256_96()));
    group.bench_function("mlkem768_encaps/libcrux", |b| {
        b.iter(|| p.mlkem768_encaps())
    });
    group.bench_function("mlkem768_decaps/libcrux", |b| {
        b.iter(|| p.mlkem768_decaps())
    });
    group.bench_function("hkdf_sha256/rustcrypto", |b| b.iter(|| p.hkdf_sha256()));
    group.bench_function("aes128gcm_seal/rustcrypto", |b| {
        b.iter(|| p.aes128gcm_seal())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = providers, hpke_crate, floor, paired
}
criterion_main!(benches);
