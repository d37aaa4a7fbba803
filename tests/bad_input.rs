//! Every `OpenMlsCrypto` method of polymls, swept with malformed input:
//! each must return an error, never panic and never succeed.

use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{
    AeadType, Ciphersuite, CryptoError, HashType, HpkeAeadType, HpkeCiphertext, HpkeConfig,
    HpkeKdfType, HpkeKemType, SignatureScheme,
};
use polymls::hpke::HpkeSuite;
use polymls::{Crypto, Error};

const SUITES: [Ciphersuite; 4] = [
    Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
    Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
    Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
    Ciphersuite::MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519,
];

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

/// X25519 public keys whose DH output is all zeros (small order points).
const SMALL_ORDER_X25519: [[u8; 32]; 3] = [
    [0; 32],
    {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    },
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
];

/// A 65-byte uncompressed "point" (1, 1), which is not on P-256.
fn off_curve_p256() -> Vec<u8> {
    let mut point = vec![0u8; 65];
    point[0] = 0x04;
    point[32] = 1;
    point[64] = 1;
    point
}

#[test]
fn unsupported_suites_and_algorithms_are_errors() {
    let crypto = Crypto::default();
    let supported = crypto.supported_ciphersuites();
    assert_eq!(supported, SUITES.to_vec());
    for suite in [
        Ciphersuite::MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448,
        Ciphersuite::MLS_256_DHKEMP521_AES256GCM_SHA512_P521,
        Ciphersuite::MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448,
        Ciphersuite::MLS_256_DHKEMP384_AES256GCM_SHA384_P384,
    ] {
        assert_eq!(
            crypto.supports(suite),
            Err(CryptoError::UnsupportedCiphersuite)
        );
        let config = suite.hpke_config();
        assert!(crypto.derive_hpke_keypair(config, &[0; 32]).is_err());
        let config = suite.hpke_config();
        assert!(crypto.hpke_seal(config, &[0; 97], b"", b"", b"").is_err());
    }
    // OpenMLS's other draft PQ suites: their HPKE parts may be offered, the
    // suites are not.
    for suite in [
        Ciphersuite::MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519,
        Ciphersuite::MLS_128_MLKEM768X25519_AES256GCM_SHA384_Ed25519,
        Ciphersuite::MLS_128_MLKEM768_AES256GCM_SHA384_Ed25519,
        Ciphersuite::MLS_256_MLKEM1024_AES256GCM_SHA512_MLDSA87,
    ] {
        assert_eq!(
            crypto.supports(suite),
            Err(CryptoError::UnsupportedCiphersuite)
        );
    }
    for scheme in [
        SignatureScheme::ECDSA_SECP384R1_SHA384,
        SignatureScheme::ECDSA_SECP521R1_SHA512,
        SignatureScheme::ED448,
    ] {
        let unsupported = Err(CryptoError::UnsupportedSignatureScheme);
        assert_eq!(crypto.signature_key_gen(scheme).map(|_| ()), unsupported);
        assert_eq!(crypto.sign(scheme, b"m", &[1; 48]).map(|_| ()), unsupported);
        assert_eq!(
            crypto.verify_signature(scheme, b"m", &[4; 97], &[0; 96]),
            unsupported
        );
    }
}

#[test]
fn kdf_and_hash_reject_bad_lengths() {
    let crypto = Crypto::default();
    for hash in [HashType::Sha2_256, HashType::Sha2_384, HashType::Sha2_512] {
        let size = hash.size();
        let prk = crypto
            .hkdf_extract(hash, b"", b"")
            .expect("extract takes anything");
        assert_eq!(prk.as_slice().len(), size);
        assert_eq!(
            crypto
                .hmac(hash, &[7; 300], b"")
                .expect("any key")
                .as_slice()
                .len(),
            size
        );
        assert_eq!(crypto.hash(hash, &[]).expect("hash").len(), size);
        for short in [0, 1, size - 1] {
            assert_eq!(
                crypto
                    .hkdf_expand(hash, &vec![1; short], b"", 16)
                    .map(|_| ()),
                Err(CryptoError::HkdfOutputLengthInvalid),
                "{hash:?}: PRK of {short} bytes"
            );
        }
        assert!(crypto
            .hkdf_expand(hash, prk.as_slice(), b"", 255 * size)
            .is_ok());
        assert_eq!(
            crypto
                .hkdf_expand(hash, prk.as_slice(), b"", 255 * size + 1)
                .map(|_| ()),
            Err(CryptoError::HkdfOutputLengthInvalid)
        );
    }
}

#[test]
fn aead_rejects_bad_keys_nonces_and_tampering() {
    let crypto = Crypto::default();
    for alg in [
        AeadType::Aes128Gcm,
        AeadType::Aes256Gcm,
        AeadType::ChaCha20Poly1305,
    ] {
        let key = vec![3u8; alg.key_size()];
        let nonce = [5u8; 12];
        for bad in bad_lengths(alg.key_size()) {
            assert_eq!(
                crypto
                    .aead_encrypt(alg, &vec![3; bad], b"pt", &nonce, b"")
                    .map(|_| ()),
                Err(CryptoError::InvalidLength)
            );
            assert_eq!(
                crypto
                    .aead_decrypt(alg, &vec![3; bad], &[0; 32], &nonce, b"")
                    .map(|_| ()),
                Err(CryptoError::InvalidLength)
            );
        }
        for bad in bad_lengths(12) {
            assert_eq!(
                crypto
                    .aead_encrypt(alg, &key, b"pt", &vec![5; bad], b"")
                    .map(|_| ()),
                Err(CryptoError::InvalidLength)
            );
            assert_eq!(
                crypto
                    .aead_decrypt(alg, &key, &[0; 32], &vec![5; bad], b"")
                    .map(|_| ()),
                Err(CryptoError::InvalidLength)
            );
        }
        let ciphertext = crypto
            .aead_encrypt(alg, &key, b"plaintext", &nonce, b"aad")
            .expect("seal");
        assert_eq!(
            crypto
                .aead_decrypt(alg, &key, &ciphertext, &nonce, b"aad")
                .expect("open"),
            b"plaintext"
        );
        let fails =
            |ct: &[u8], aad: &[u8]| crypto.aead_decrypt(alg, &key, ct, &nonce, aad).map(|_| ());
        for index in 0..ciphertext.len() {
            assert_eq!(
                fails(&flip(&ciphertext, index), b"aad"),
                Err(CryptoError::AeadDecryptionError)
            );
        }
        for truncated in 0..ciphertext.len() {
            assert_eq!(
                fails(&ciphertext[..truncated], b"aad"),
                Err(CryptoError::AeadDecryptionError)
            );
        }
        assert_eq!(
            fails(&ciphertext, b"aaD"),
            Err(CryptoError::AeadDecryptionError)
        );
    }
}

#[test]
fn signatures_reject_bad_keys_and_signatures() {
    let crypto = Crypto::default();
    for scheme in [
        SignatureScheme::ED25519,
        SignatureScheme::ECDSA_SECP256R1_SHA256,
    ] {
        let (private, public) = crypto.signature_key_gen(scheme).expect("keygen");
        let signature = crypto.sign(scheme, b"message", &private).expect("sign");
        crypto
            .verify_signature(scheme, b"message", &public, &signature)
            .expect("verify");

        for bad in bad_lengths(private.len()) {
            assert!(
                crypto.sign(scheme, b"message", &vec![1; bad]).is_err(),
                "{scheme:?} private key of {bad} bytes"
            );
        }
        for bad in bad_lengths(public.len()) {
            assert!(crypto
                .verify_signature(scheme, b"message", &vec![4; bad], &signature)
                .is_err());
        }
        for bad in bad_lengths(signature.len()) {
            assert!(crypto
                .verify_signature(scheme, b"message", &public, &vec![0x30; bad])
                .is_err());
        }
        for index in 0..signature.len() {
            assert!(
                crypto
                    .verify_signature(scheme, b"message", &public, &flip(&signature, index))
                    .is_err(),
                "{scheme:?}: signature byte {index} flipped"
            );
        }
        assert_eq!(
            crypto.verify_signature(scheme, b"messagE", &public, &signature),
            Err(CryptoError::InvalidSignature)
        );
        let (_, other_public) = crypto.signature_key_gen(scheme).expect("keygen");
        assert_eq!(
            crypto.verify_signature(scheme, b"message", &other_public, &signature),
            Err(CryptoError::InvalidSignature)
        );
    }
    // Scalars 0 and the group order are not ECDSA keys.
    let order = hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
        .expect("hex");
    for bad in [vec![0; 32], order] {
        assert!(crypto
            .sign(SignatureScheme::ECDSA_SECP256R1_SHA256, b"m", &bad)
            .is_err());
    }
    assert_eq!(
        crypto.verify_signature(
            SignatureScheme::ECDSA_SECP256R1_SHA256,
            b"m",
            &off_curve_p256(),
            &[0x30; 70]
        ),
        Err(CryptoError::InvalidPublicKey)
    );
}

#[test]
fn hpke_rejects_bad_keys_encapsulations_and_ciphertexts() {
    let crypto = Crypto::default();
    for suite in SUITES {
        let config = || suite.hpke_config();
        let key_pair = crypto
            .derive_hpke_keypair(config(), &[9; 32])
            .expect("derive");
        let (public, private) = (key_pair.public.clone(), key_pair.private.to_vec());
        let sealed = crypto
            .hpke_seal(config(), &public, b"info", b"aad", b"plaintext")
            .expect("seal");
        assert_eq!(
            crypto
                .hpke_open(config(), &sealed, &private, b"info", b"aad")
                .expect("open"),
            b"plaintext"
        );

        // The private key polymls derives carries its public key (DHKEM:
        // `private || public`); a wrong public half must make opening fail.
        if suite.hpke_config().0 != HpkeKemType::XWingKemDraft6 {
            let mut wrong_public = private.clone();
            let last = wrong_public.len() - 1;
            wrong_public[last] ^= 0x01;
            assert!(
                crypto
                    .hpke_open(config(), &sealed, &wrong_public, b"info", b"aad")
                    .is_err(),
                "{suite:?}: opened with a wrong public half"
            );
        }

        for bad in bad_lengths(public.len()) {
            assert!(
                crypto
                    .hpke_seal(config(), &vec![4; bad], b"", b"", b"")
                    .is_err(),
                "{suite:?}: public key of {bad} bytes"
            );
            assert!(crypto
                .hpke_setup_sender_and_export(config(), &vec![4; bad], b"", b"", 32)
                .is_err());
            let enc = HpkeCiphertext {
                kem_output: vec![4; bad].into(),
                ciphertext: sealed.ciphertext.clone(),
            };
            assert_eq!(
                crypto.hpke_open(config(), &enc, &private, b"info", b"aad"),
                Err(CryptoError::HpkeDecryptionError)
            );
            assert!(crypto
                .hpke_setup_receiver_and_export(config(), &vec![4; bad], &private, b"", b"", 32)
                .is_err());
        }
        for bad in bad_lengths(private.len()) {
            assert_eq!(
                crypto.hpke_open(config(), &sealed, &vec![1; bad], b"info", b"aad"),
                Err(CryptoError::HpkeDecryptionError)
            );
            assert!(crypto
                .hpke_setup_receiver_and_export(
                    config(),
                    sealed.kem_output.as_slice(),
                    &vec![1; bad],
                    b"",
                    b"",
                    32
                )
                .is_err());
        }
        let open = |kem_output: &[u8], ciphertext: &[u8], info: &[u8], aad: &[u8]| {
            let input = HpkeCiphertext {
                kem_output: kem_output.to_vec().into(),
                ciphertext: ciphertext.to_vec().into(),
            };
            crypto.hpke_open(config(), &input, &private, info, aad)
        };
        let (enc, ct) = (sealed.kem_output.as_slice(), sealed.ciphertext.as_slice());
        for index in 0..ct.len() {
            assert_eq!(
                open(enc, &flip(ct, index), b"info", b"aad"),
                Err(CryptoError::HpkeDecryptionError)
            );
        }
        for truncated in 0..ct.len() {
            assert_eq!(
                open(enc, &ct[..truncated], b"info", b"aad"),
                Err(CryptoError::HpkeDecryptionError)
            );
        }
        for index in 0..enc.len() {
            assert_eq!(
                open(&flip(enc, index), ct, b"info", b"aad"),
                Err(CryptoError::HpkeDecryptionError)
            );
        }
        assert_eq!(
            open(enc, ct, b"infO", b"aad"),
            Err(CryptoError::HpkeDecryptionError)
        );
        assert_eq!(
            open(enc, ct, b"info", b"aaD"),
            Err(CryptoError::HpkeDecryptionError)
        );

        let too_long = 255 * 32 + 1;
        assert!(crypto
            .hpke_setup_sender_and_export(config(), &public, b"", b"", too_long)
            .is_err());
        assert!(crypto
            .hpke_setup_receiver_and_export(config(), enc, &private, b"", b"", too_long)
            .is_err());

        let export_only = HpkeConfig(config().0, HpkeKdfType::HkdfSha256, HpkeAeadType::Export);
        assert!(crypto
            .hpke_seal(export_only, &public, b"", b"", b"pt")
            .is_err());
        let export_only = HpkeConfig(config().0, HpkeKdfType::HkdfSha256, HpkeAeadType::Export);
        assert!(crypto
            .hpke_setup_sender_and_export(export_only, &public, b"", b"", 32)
            .is_ok());
    }
    let unsupported_kem = HpkeConfig(
        HpkeKemType::DhKem448,
        HpkeKdfType::HkdfSha256,
        HpkeAeadType::AesGcm128,
    );
    assert_eq!(
        crypto
            .hpke_seal(unsupported_kem, &[0; 56], b"", b"", b"")
            .map(|_| ()),
        Err(CryptoError::UnsupportedCiphersuite)
    );
}

/// RFC 9180 §7.1.4: an all-zero X25519 output and an invalid P-256 point
/// are errors, on both the sending and the receiving side.
#[test]
fn dhkem_validates_peer_keys() {
    let x25519 = HpkeSuite::from_ids(0x0020, 1, 1).expect("suite");
    let receiver = x25519.derive_key_pair(&[1; 32]).expect("derive");
    let rand = polymls::Rand::default();
    for point in SMALL_ORDER_X25519 {
        assert_eq!(
            x25519.seal(&rand, &point, b"", b"", b"pt").map(|_| ()),
            Err(Error::NonContributoryKey)
        );
        assert_eq!(
            x25519
                .setup_receiver(&point, &receiver.private, b"")
                .map(|_| ()),
            Err(Error::NonContributoryKey)
        );
    }

    let p256 = HpkeSuite::from_ids(0x0010, 1, 1).expect("suite");
    let receiver = p256.derive_key_pair(&[1; 32]).expect("derive");
    let mut compressed = receiver.public[..33].to_vec();
    compressed[0] = 0x02;
    let mut identity_like = vec![0u8; 65];
    identity_like[0] = 0x04;
    for point in [off_curve_p256(), identity_like] {
        assert_eq!(
            p256.seal(&rand, &point, b"", b"", b"pt").map(|_| ()),
            Err(Error::InvalidPublicKey)
        );
        assert_eq!(
            p256.setup_receiver(&point, &receiver.private, b"")
                .map(|_| ()),
            Err(Error::InvalidPublicKey)
        );
    }
    assert_eq!(
        p256.seal(&rand, &compressed, b"", b"", b"pt").map(|_| ()),
        Err(Error::InvalidLength)
    );
}
