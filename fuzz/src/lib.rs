//! The bodies of polymls's fuzz targets. The cargo-fuzz binaries in
//! `fuzz_targets/` call these, and the main crate's `tests/fuzz_replay.rs`
//! replays every corpus file through them on stable Rust, so a regression a
//! campaign once found fails ordinary `cargo test`.
//!
//! Inputs are split by a small reader: a selector byte, fixed-size fields,
//! and length-prefixed fields (two length bytes). Running out of input ends
//! a run early; nothing here may panic on any input except on a real
//! finding (a broken property is a panic with a message).

use polymls::hpke::kem::{XWING, XWING_OPENMLS};
use polymls::hpke::{HpkeSuite, Kem};
use polymls::suite::CIPHER_SUITES;

/// Splits fuzz input into fields.
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input(data)
    }

    pub fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// A field preceded by its length (u16, little endian; a length past
    /// the end takes the rest).
    pub fn prefixed(&mut self) -> Option<&'a [u8]> {
        let length = self.bytes(2)?;
        let n = u16::from_le_bytes([length[0], length[1]]) as usize;
        self.bytes(n.min(self.0.len()))
    }

    pub fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// HPKE open on arbitrary encapsulations, ciphertexts and keys for every
/// suite: errors, never panics. Then, on a key pair and a message of the
/// input's choosing, a sealed message opens only untouched: any change of
/// encapsulation, ciphertext, info or AAD that the input asks for makes it
/// fail ("anything that opens must have been sealed").
pub fn hpke_open(data: &[u8]) {
    let mut input = Input::new(data);
    let Some(selector) = input.byte() else { return };
    let suite = CIPHER_SUITES[selector as usize % CIPHER_SUITES.len()].hpke();
    if selector & 0x80 == 0 {
        // Arbitrary key, encapsulation and ciphertext.
        let (Some(sk), Some(enc), Some(info), Some(aad)) = (
            input.prefixed(),
            input.prefixed(),
            input.prefixed(),
            input.prefixed(),
        ) else {
            return;
        };
        let _ = suite.open(enc, sk, info, aad, input.rest());
        return;
    }
    let (Some(ikm), Some(seed), Some(info), Some(aad), Some(plaintext)) = (
        input.bytes(32),
        input.bytes(64),
        input.prefixed(),
        input.prefixed(),
        input.prefixed(),
    ) else {
        return;
    };
    let Ok(receiver) = suite.derive_key_pair(ikm) else {
        return;
    };
    let seed = encap_seed(&suite, seed);
    let Ok((enc, mut sender)) = suite.setup_sender_with_seed(&receiver.public, info, &seed) else {
        return;
    };
    let ciphertext = sender
        .seal(aad, plaintext)
        .expect("sealing to a derived key");
    // The rest of the input flips bits: (target, position, mask) triples.
    let (mut enc2, mut ct2, mut info2, mut aad2) =
        (enc.clone(), ciphertext.clone(), info.to_vec(), aad.to_vec());
    let mut changes = input.rest().chunks_exact(4);
    for change in changes.by_ref() {
        let field = match change[0] % 4 {
            0 => &mut enc2,
            1 => &mut ct2,
            2 => &mut info2,
            _ => &mut aad2,
        };
        if !field.is_empty() {
            let position = u16::from_le_bytes([change[1], change[2]]) as usize % field.len();
            field[position] ^= change[3];
        }
    }
    let untouched = enc2 == enc && ct2 == ciphertext && info2 == info && aad2 == aad;
    for private in [
        &receiver.private[..],
        &suite
            .kem()
            .expand_private_key(&receiver.private)
            .expect("expand a derived key"),
    ] {
        match suite.open(&enc2, private, &info2, &aad2, &ct2) {
            Ok(opened) => {
                assert!(untouched, "a modified message opened");
                assert_eq!(opened, plaintext, "opened to another plaintext");
            }
            Err(_) => assert!(!untouched, "an untouched message failed to open"),
        }
    }
}

/// The encapsulation seed for `suite` from 64 random bytes, as the `hpke`
/// crate would use them: DHKEM draws an ephemeral DeriveKeyPair input of
/// 32 bytes, X-Wing takes all 64 as its encapsulation randomness.
fn encap_seed(suite: &HpkeSuite, random: &[u8]) -> Vec<u8> {
    match suite.kem().encap_seed_len() {
        64 => random[..64].to_vec(),
        _ => suite
            .kem()
            .derive_key_pair(&random[..32])
            .expect("derive ephemeral")
            .private
            .to_vec(),
    }
}

/// Replays fixed bytes as the `hpke` crate's randomness.
struct Replay<'a>(&'a [u8]);

impl hpke::rand_core::TryRng for Replay<'_> {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }
    fn try_fill_bytes(&mut self, out: &mut [u8]) -> Result<(), Self::Error> {
        let n = out.len().min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        out[n..].fill(0);
        self.0 = &self.0[n..];
        Ok(())
    }
}

impl hpke::rand_core::TryCryptoRng for Replay<'_> {}

/// polymls against the `hpke` crate on the same inputs: derived key pairs,
/// encapsulations, ciphertexts and exports are identical, each side opens
/// the other's, and both refuse the same public keys.
pub fn hpke_differential(data: &[u8]) {
    use hpke::aead::{AesGcm128, ChaCha20Poly1305, ExportOnlyAead};
    use hpke::kdf::{HkdfSha256, HkdfSha384, HkdfSha512, KdfShake256};
    use hpke::kem::{DhP256HkdfSha256, X25519HkdfSha256, XWing};
    let mut input = Input::new(data);
    let Some(selector) = input.byte() else { return };
    let suite =
        |kem: u16, kdf: u16, aead: u16| HpkeSuite::from_ids(kem, kdf, aead).expect("offered suite");
    match selector % 9 {
        0 => compare::<AesGcm128, HkdfSha256, X25519HkdfSha256>(suite(0x20, 1, 1), input),
        1 => compare::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(suite(0x20, 1, 3), input),
        2 => compare::<ExportOnlyAead, HkdfSha256, X25519HkdfSha256>(suite(0x20, 1, 0xFFFF), input),
        3 => compare::<AesGcm128, HkdfSha256, DhP256HkdfSha256>(suite(0x10, 1, 1), input),
        4 => compare::<ChaCha20Poly1305, HkdfSha512, DhP256HkdfSha256>(suite(0x10, 3, 3), input),
        5 => compare::<AesGcm128, HkdfSha384, X25519HkdfSha256>(suite(0x20, 2, 1), input),
        6 => compare::<AesGcm128, HkdfSha256, XWing>(suite(0x647a, 1, 1), input),
        7 => compare::<ChaCha20Poly1305, KdfShake256, XWing>(suite(0x647a, 0x11, 3), input),
        _ => compare::<ExportOnlyAead, HkdfSha256, XWing>(suite(0x647a, 1, 0xFFFF), input),
    }
}

fn compare<A: hpke::aead::Aead, K: hpke::kdf::Kdf, M: hpke::Kem>(
    ours: HpkeSuite,
    mut input: Input,
) {
    use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
    let (
        Some(ikm),
        Some(random),
        Some(info),
        Some(aad),
        Some(plaintext),
        Some(context),
        Some(length),
    ) = (
        input.bytes(32),
        input.bytes(64),
        input.prefixed(),
        input.prefixed(),
        input.prefixed(),
        input.prefixed(),
        input.byte(),
    )
    else {
        return;
    };
    let exportable = aead_of(&ours).is_some();
    let (their_sk, their_pk) = M::derive_keypair(ikm);
    let receiver = ours.derive_key_pair(ikm).expect("derive key pair");
    // The `hpke` crate stores X25519 private keys clamped, RFC 9180 (and its
    // vectors) keeps DeriveKeyPair's output unclamped: compare both through
    // their parser, which normalizes.
    let ours_normalized =
        M::PrivateKey::from_bytes(&receiver.private).expect("they parse our private key");
    assert_eq!(
        ours_normalized.to_bytes().as_slice(),
        their_sk.to_bytes().as_slice(),
        "derived private keys differ"
    );
    assert_eq!(
        receiver.public,
        their_pk.to_bytes().as_slice(),
        "derived public keys differ"
    );

    // An arbitrary public key when the input asks for one: both accept it
    // or both refuse it.
    let arbitrary = input.byte().is_some_and(|b| b & 1 == 1);
    let public = if arbitrary {
        input.rest().to_vec()
    } else {
        receiver.public.clone()
    };
    let theirs = M::PublicKey::from_bytes(&public).ok().and_then(|pk| {
        hpke::setup_sender_with_rng::<A, K, M>(&OpModeS::Base, &pk, info, &mut Replay(random)).ok()
    });
    let seed = encap_seed(&ours, random);
    let mine = ours.setup_sender_with_seed(&public, info, &seed).ok();
    let (Some((their_enc, mut their_ctx)), Some((enc, mut ctx))) = (theirs, mine) else {
        assert!(arbitrary, "one side failed to encapsulate to a derived key");
        return;
    };
    assert_eq!(
        enc,
        their_enc.to_bytes().as_slice(),
        "encapsulations differ"
    );

    let mut their_export = vec![0u8; length as usize];
    their_ctx
        .export(context, &mut their_export)
        .expect("their export");
    assert_eq!(
        *ctx.export(context, length as usize).expect("our export"),
        their_export,
        "exports differ"
    );
    if !exportable || arbitrary {
        return;
    }
    let ciphertext = ctx.seal(aad, plaintext).expect("our seal");
    let their_ciphertext = their_ctx.seal(plaintext, aad).expect("their seal");
    assert_eq!(ciphertext, their_ciphertext, "ciphertexts differ");

    let their_enc = M::EncappedKey::from_bytes(&enc).expect("their encapsulation");
    let opened = hpke::single_shot_open::<A, K, M>(
        &OpModeR::Base,
        &their_sk,
        &their_enc,
        info,
        &ciphertext,
        aad,
    )
    .expect("they open ours");
    assert_eq!(opened, plaintext);
    assert_eq!(
        ours.open(&enc, &receiver.private, info, aad, &their_ciphertext)
            .expect("we open theirs"),
        plaintext
    );
}

fn aead_of(suite: &HpkeSuite) -> Option<polymls::crypto::aead::Aead> {
    suite.aead()
}

/// polymls's HKDF and HMAC against RustCrypto's `hkdf` and `hmac` called
/// directly, for SHA-256/384/512: identical outputs, identical refusals.
pub fn kdf_differential(data: &[u8]) {
    use polymls::crypto::hash::Hash;
    let mut input = Input::new(data);
    let (Some(selector), Some(salt), Some(ikm), Some(info), Some(length)) = (
        input.byte(),
        input.prefixed(),
        input.prefixed(),
        input.prefixed(),
        input.bytes(2),
    ) else {
        return;
    };
    let length = u16::from_le_bytes([length[0], length[1]]) as usize % (255 * 64 + 2);
    macro_rules! check {
        ($hash:expr, $D:ty) => {{
            let prk = $hash.extract(salt, &[ikm]);
            let (reference_prk, reference) = hkdf::Hkdf::<$D>::extract(Some(salt), ikm);
            assert_eq!(prk.as_bytes(), reference_prk.as_slice(), "extract differs");
            let mut ours = vec![0u8; length];
            let mut theirs = vec![0u8; length];
            let our_result = $hash.expand(prk.as_bytes(), &[info], &mut ours);
            let their_result = reference.expand(info, &mut theirs);
            assert_eq!(
                our_result.is_ok(),
                their_result.is_ok(),
                "expand refusals differ at {length}"
            );
            assert_eq!(ours, theirs, "expand differs");
            // Expanding from an arbitrary PRK (the rest of the input).
            let prk = input.rest();
            let reference = hkdf::Hkdf::<$D>::from_prk(prk);
            let ours_result = $hash.expand(prk, &[info], &mut ours);
            assert_eq!(
                ours_result.is_ok(),
                reference.is_ok() && length <= 255 * $hash.output_len(),
                "PRK refusals differ"
            );
            if let Ok(reference) = reference {
                if reference.expand(info, &mut theirs).is_ok() {
                    assert_eq!(ours, theirs, "expand from an arbitrary PRK differs");
                }
            }
            use hmac::{KeyInit, Mac};
            let mut mac =
                <hmac::Hmac<$D> as KeyInit>::new_from_slice(salt).expect("any key length");
            mac.update(ikm);
            assert_eq!(
                $hash.hmac(salt, &[ikm]).as_bytes(),
                mac.finalize().into_bytes().as_slice(),
                "HMAC differs"
            );
        }};
    }
    match selector % 3 {
        0 => check!(Hash::Sha256, sha2::Sha256),
        1 => check!(Hash::Sha384, sha2::Sha384),
        _ => check!(Hash::Sha512, sha2::Sha512),
    }
}

/// X-Wing decapsulation on arbitrary ciphertexts and keys, in both private
/// key forms: errors on bad lengths, never panics, and the seed and its
/// expansion always agree.
pub fn xwing_decap(data: &[u8]) {
    let mut input = Input::new(data);
    let (Some(selector), Some(key)) = (input.byte(), input.bytes(32)) else {
        return;
    };
    let kem: &dyn Kem = if selector & 1 == 0 {
        &XWING
    } else {
        &XWING_OPENMLS
    };
    let ciphertext = input.rest();
    let from_seed = kem.decap(ciphertext, key);
    let expanded = kem.expand_private_key(key).expect("a 32-byte seed expands");
    let from_expanded = kem.decap(ciphertext, &expanded);
    assert_eq!(
        from_seed.as_deref().ok(),
        from_expanded.as_deref().ok(),
        "seed and expansion disagree"
    );
    assert_eq!(from_seed.is_ok(), ciphertext.len() == 1120);
    // Arbitrary bytes as a private key of any length, and garbage expanded keys.
    let _ = kem.decap(ciphertext, ciphertext);
    let _ = kem.public_key(ciphertext);
    let _ = kem.encap(ciphertext, &[7; 64]);
}

/// The store's record and value decoding on arbitrary bytes: an error,
/// never a panic. Runs the record format (header, authentication) with
/// fixed keys, the CBOR codec into a generic value and into OpenMLS's HPKE
/// key pair type, and a round trip of whatever decodes.
pub fn store_decode(data: &[u8]) {
    use polymls::store::codec::{Cbor, Codec, Untyped};
    use polymls::store::record;
    let key = [0x42u8; 32];
    let mut input = Input::new(data);
    let Some(name) = input.prefixed() else { return };
    let stored = input.rest();
    if let Ok(plaintext) = record::open(name, stored, &key, |_, _| {
        Some(zeroize::Zeroizing::new(key))
    }) {
        // Only a record sealed under these keys authenticates.
        let resealed = match record::sealing(stored).expect("an opened record has a header") {
            record::Sealing::Secret { slot, generation } => {
                record::seal_secret(name, slot, generation, &key, &plaintext)
            }
            record::Sealing::Public { salt } => record::seal_public(
                name,
                &key,
                salt.try_into().expect("salt length"),
                &plaintext,
            ),
        };
        assert_eq!(
            resealed.expect("reseal"),
            stored,
            "records are deterministic given their header"
        );
    }
    let _ = record::sealing(stored);
    if let Ok(value) = Cbor::decode::<ciborium::Value>(stored) {
        // Whatever decodes encodes as an untyped value, unless it holds a
        // tag (refused: cbor4ii would write it as a map), and decodes again.
        // One cycle may normalize (ciborium reads a bignum tag as a plain
        // integer: found by this target, input kept in the corpus); after
        // it, the encoding is stable.
        let encoded = Cbor::encode(&Untyped(&value));
        assert_eq!(encoded.is_err(), holds_tag(&value), "only tags are refused");
        if let Ok(encoded) = encoded {
            let normalized: ciborium::Value =
                Cbor::decode(&encoded).expect("an encoded value decodes");
            let normalized_encoding = Cbor::encode(&Untyped(&normalized)).expect("encodes");
            let again: ciborium::Value =
                Cbor::decode(&normalized_encoding).expect("a normalized value decodes");
            assert_eq!(
                *Cbor::encode(&Untyped(&again)).expect("encodes"),
                *normalized_encoding,
                "CBOR round trip"
            );
        }
    }
    let _ = Cbor::decode::<openmls_traits::types::HpkeKeyPair>(stored);
    let _ = Cbor::decode::<Vec<ciborium::Value>>(stored);
}

fn holds_tag(value: &ciborium::Value) -> bool {
    use ciborium::Value;
    match value {
        Value::Tag(..) => true,
        Value::Array(elements) => elements.iter().any(holds_tag),
        Value::Map(entries) => entries.iter().any(|(k, v)| holds_tag(k) || holds_tag(v)),
        _ => false,
    }
}

/// KeyPackage parsing and the directory's validation on arbitrary bytes:
/// an error, never a panic; what parses re-encodes to the same bytes, and
/// what validates parsed first. The input is the KeyPackage as is (no
/// framing), so real KeyPackages are seeds.
pub fn keypackage_validate(data: &[u8]) {
    use polymls::directory::keypackage::KeyPackage;
    use polymls::directory::validate::{check, Policy};

    let parsed = KeyPackage::parse(data);
    if let Ok(key_package) = &parsed {
        let encoded = key_package.encode().expect("a parsed KeyPackage encodes");
        assert_eq!(encoded, data, "re-encoding changes the bytes");
    }
    let policy = Policy {
        cipher_suites: CIPHER_SUITES.iter().map(|s| s.code_point).collect(),
        max_lifetime: u64::MAX,
    };
    // A fixed time inside any lifetime a seed carries would be arbitrary:
    // the lifetime's own middle is checked, so seeds validate.
    let now = match &parsed {
        Ok(key_package) => match key_package.leaf_node.source {
            polymls::directory::keypackage::LeafNodeSource::KeyPackage {
                not_before,
                not_after,
            } => not_before / 2 + not_after / 2,
            _ => 0,
        },
        Err(_) => 0,
    };
    if check(data, &policy, now).is_ok() {
        assert!(parsed.is_ok(), "validated without parsing");
    }
}

/// The Delivery Service's intake of handshake and application messages,
/// on arbitrary bytes: a group created from the input's GroupInfo and
/// ratchet tree (by the device its creator's identity names), then one
/// submission as a commit (with an optional Welcome), a proposal or an
/// application message, from that device. Errors, never panics; a refused
/// submission changes nothing, an accepted commit moves the group to the
/// epoch it answered. Real groups and their messages are the seeds
/// (`tests/fuzz_replay.rs` writes them).
///
/// Input: `op`, then length-prefixed GroupInfo, ratchet tree (empty for
/// none), creator identity and Welcome (empty for none), then the message.
/// Returns whether the submission was accepted.
#[cfg(feature = "delivery")]
pub fn delivery_intake(data: &[u8]) -> bool {
    use polymls::delivery::{Backend, DeliveryService, Device, Identities, Memory};
    use polymls::directory::{Credential, IdentityCheck};

    /// Every basic credential is the device `identity/fuzz`.
    struct AnyDevice;
    impl IdentityCheck for AnyDevice {
        fn accepts(&self, _: &str, _: &str, _: &Credential, _: &[u8]) -> bool {
            true
        }
    }
    impl Identities for AnyDevice {
        fn device_of(&self, credential: &Credential, _: &[u8]) -> Option<Device> {
            match credential {
                Credential::Basic(identity) => Some(Device::new(
                    String::from_utf8_lossy(identity).into_owned(),
                    "fuzz",
                )),
                Credential::X509(_) => None,
            }
        }
    }

    let mut input = Input::new(data);
    let (Some(op), Some(info), Some(tree), Some(identity), Some(welcome)) = (
        input.byte(),
        input.prefixed(),
        input.prefixed(),
        input.prefixed(),
        input.prefixed(),
    ) else {
        return false;
    };
    let message = input.rest();
    let ds = DeliveryService::with_backend(Memory::default(), AnyDevice);
    let creator = Device::new(String::from_utf8_lossy(identity).into_owned(), "fuzz");
    let tree = (!tree.is_empty()).then_some(tree);
    let Ok(view) = ds.create_group(&creator, info, tree) else {
        return false;
    };
    let group = view.id;
    let before = ds.backend().load(&group).expect("memory").expect("created");
    let welcome = (!welcome.is_empty()).then_some(welcome);
    let accepted = match op % 3 {
        0 => match ds.submit_commit(&creator, &group, message, welcome, None) {
            Ok(epoch) => {
                let now = ds.backend().load(&group).expect("memory").expect("created");
                assert_eq!(now.epoch, epoch, "the group is at the epoch answered");
                assert_eq!(now.epoch, before.epoch + 1, "one epoch per commit");
                true
            }
            Err(_) => false,
        },
        1 => ds.submit_proposal(&creator, &group, message).is_ok(),
        _ => ds.submit_message(&creator, &group, message).is_ok(),
    };
    if !accepted {
        let after = ds.backend().load(&group).expect("memory").expect("created");
        assert_eq!(after, before, "a refused submission changes nothing");
    }
    accepted
}
