//! Signatures: Ed25519 (ed25519-dalek) and ECDSA P-256 with SHA-256 (p256).
//!
//! Key formats are those of OpenMLS's other providers, so keys move between
//! them: Ed25519 private keys are the 32-byte seed, public keys 32 bytes;
//! ECDSA private keys are the 32-byte scalar, public keys uncompressed SEC1
//! points, signatures DER.

use std::sync::LazyLock;

use ed25519_dalek::Signer as _;
use p256::ecdsa::signature::Verifier as _;
use zeroize::Zeroizing;

use super::rand::Rand;
use crate::Error;

/// A signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// Ed25519 (RFC 8032), verified strictly: non-canonical encodings and
    /// small-order keys are rejected.
    Ed25519,
    /// ECDSA over P-256 with SHA-256; both low and high `s` verify, as in
    /// every other MLS implementation, so signatures are malleable.
    EcdsaP256Sha256,
}

/// A freshly generated signature key pair. The private key is zeroized on drop.
pub struct SignatureKeyPair {
    /// The private key in the format described in the module docs.
    pub private: Zeroizing<Vec<u8>>,
    /// The public key in the format described in the module docs.
    pub public: Vec<u8>,
}

impl SignatureAlgorithm {
    /// Generates a key pair from `rand`.
    pub fn generate(self, rand: &Rand) -> SignatureKeyPair {
        match self {
            SignatureAlgorithm::Ed25519 => {
                let key = rand.with_rng(ed25519_dalek::SigningKey::generate);
                SignatureKeyPair {
                    private: Zeroizing::new(key.to_bytes().to_vec()),
                    public: key.verifying_key().to_bytes().to_vec(),
                }
            }
            SignatureAlgorithm::EcdsaP256Sha256 => {
                let key = rand.with_rng(p256::ecdsa::SigningKey::random);
                SignatureKeyPair {
                    private: Zeroizing::new(key.to_bytes().to_vec()),
                    public: key
                        .verifying_key()
                        .to_encoded_point(false)
                        .as_bytes()
                        .to_vec(),
                }
            }
        }
    }

    /// Signs `message` with `private_key`.
    pub fn sign(self, private_key: &[u8], message: &[u8]) -> Result<Vec<u8>, Error> {
        match self {
            SignatureAlgorithm::Ed25519 => {
                let key = ed25519_signing_key(private_key)?;
                Ok(key.sign(message).to_bytes().to_vec())
            }
            SignatureAlgorithm::EcdsaP256Sha256 => {
                let key = p256_signing_key(private_key)?;
                let signature: p256::ecdsa::Signature = key.sign(message);
                Ok(signature.to_der().as_bytes().to_vec())
            }
        }
    }

    /// The public key of `private_key`, in the format [`generate`](Self::generate) gives.
    pub fn public_key(self, private_key: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(match self {
            SignatureAlgorithm::Ed25519 => ed25519_signing_key(private_key)?
                .verifying_key()
                .to_bytes()
                .to_vec(),
            SignatureAlgorithm::EcdsaP256Sha256 => p256_signing_key(private_key)?
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        })
    }

    /// Verifies a batch of `(public_key, message, signature)`: `Ok` only if
    /// every one verifies. Ed25519 runs as one batch verification
    /// (`ed25519_dalek::verify_batch`, about half the time per signature of
    /// verifying each, for batches of a hundred), after the checks
    /// [`SignatureAlgorithm::verify`] makes beyond the equation: keys and
    /// `R` not of small order, `R` canonically encoded. What it does not
    /// give: a batch is checked as one random linear combination, so a
    /// signature whose `R` is off from the valid one by a small-order
    /// point (which only the signer, or someone holding a valid signature,
    /// can make: it forges nothing) passes a batch with probability up to
    /// 1/8 where a single verification refuses it. An `Err` says nothing
    /// about which one failed: verify each to find out.
    pub fn verify_batch(self, items: &[(&[u8], &[u8], &[u8])]) -> Result<(), Error> {
        match self {
            SignatureAlgorithm::Ed25519 => {
                let mut keys = Vec::with_capacity(items.len());
                let mut messages = Vec::with_capacity(items.len());
                let mut signatures = Vec::with_capacity(items.len());
                // An upload's KeyPackages share their device's key: each
                // distinct key is decompressed and checked once.
                let mut decoded: Vec<(&[u8], ed25519_dalek::VerifyingKey)> = Vec::new();
                for &(public_key, message, signature) in items {
                    let key = match decoded.iter().find(|(bytes, _)| *bytes == public_key) {
                        Some((_, key)) => *key,
                        None => {
                            let bytes: &[u8; 32] =
                                public_key.try_into().map_err(|_| Error::InvalidPublicKey)?;
                            let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
                                .map_err(|_| Error::InvalidPublicKey)?;
                            if key.is_weak() {
                                return Err(Error::InvalidSignature);
                            }
                            decoded.push((public_key, key));
                            key
                        }
                    };
                    let signature = ed25519_dalek::Signature::from_slice(signature)
                        .map_err(|_| Error::InvalidSignature)?;
                    // A batch compares no bytes of `R`: its canonical
                    // encoding is checked here. (An `R` off the curve fails
                    // the batch's own decompression.)
                    let r = signature.r_bytes();
                    if !is_canonical_y(r) || has_small_order_y(r) {
                        return Err(Error::InvalidSignature);
                    }
                    keys.push(key);
                    messages.push(message);
                    signatures.push(signature);
                }
                ed25519_dalek::verify_batch(&messages, &signatures, &keys)
                    .map_err(|_| Error::InvalidSignature)
            }
            SignatureAlgorithm::EcdsaP256Sha256 => items
                .iter()
                .try_for_each(|&(key, message, signature)| self.verify(key, message, signature)),
        }
    }

    /// Verifies `signature` on `message` under `public_key`.
    pub fn verify(self, public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Error> {
        match self {
            SignatureAlgorithm::Ed25519 => {
                let key: &[u8; 32] = public_key.try_into().map_err(|_| Error::InvalidPublicKey)?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(key)
                    .map_err(|_| Error::InvalidPublicKey)?;
                let signature = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| Error::InvalidSignature)?;
                // `verify_strict`'s checks, without decompressing `R` (a
                // square root, about 5 µs of a 39 µs verification): the
                // plain verification below compares `R`'s bytes with the
                // canonical encoding of the point it recomputes, so an `R`
                // that passes is canonical, and a canonical point is of
                // small order exactly when its `y` is one of [`SMALL_ORDER_Y`].
                if key.is_weak() || has_small_order_y(signature.r_bytes()) {
                    return Err(Error::InvalidSignature);
                }
                ed25519_dalek::Verifier::verify(&key, message, &signature)
                    .map_err(|_| Error::InvalidSignature)
            }
            SignatureAlgorithm::EcdsaP256Sha256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| Error::InvalidPublicKey)?;
                let signature = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|_| Error::InvalidSignature)?;
                key.verify(message, &signature)
                    .map_err(|_| Error::InvalidSignature)
            }
        }
    }
}

fn ed25519_signing_key(private_key: &[u8]) -> Result<ed25519_dalek::SigningKey, Error> {
    let seed: &[u8; 32] = private_key
        .try_into()
        .map_err(|_| Error::InvalidPrivateKey)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(seed))
}

fn p256_signing_key(private_key: &[u8]) -> Result<p256::ecdsa::SigningKey, Error> {
    // from_slice alone would left-pad short keys.
    if private_key.len() != 32 {
        return Err(Error::InvalidPrivateKey);
    }
    p256::ecdsa::SigningKey::from_slice(private_key).map_err(|_| Error::InvalidPrivateKey)
}

/// The `y` coordinates of Ed25519's eight points of small order, from
/// curve25519-dalek's `EIGHT_TORSION`: their compressed encodings without
/// the sign bit (five distinct values: 1, p - 1, 0 and the two of order 8).
static SMALL_ORDER_Y: LazyLock<[[u8; 32]; 8]> = LazyLock::new(|| {
    curve25519_dalek::constants::EIGHT_TORSION.map(|point| without_sign(point.compress().0))
});

/// A compressed Edwards point's `y`: its bytes without the sign bit of `x`.
fn without_sign(mut bytes: [u8; 32]) -> [u8; 32] {
    bytes[31] &= 0x7f;
    bytes
}

/// Whether a compressed Edwards point whose `y` is canonical (below p: see
/// [`is_canonical_y`]) is of small order, read from its bytes alone. The
/// sign bit is ignored: it chooses between x and -x, and with x = 0 (y = ±1)
/// a set sign bit is the non-canonical encoding of the same point.
fn has_small_order_y(bytes: &[u8; 32]) -> bool {
    SMALL_ORDER_Y.contains(&without_sign(*bytes))
}

/// Whether a compressed Edwards point's `y` (the low 255 bits) is below
/// p = 2^255 - 19, as single verification's byte comparison of `R`
/// requires. (The one other non-canonical encoding, x = 0 with the sign
/// bit set, is of the two small-order points with x = 0, refused anyway.)
fn is_canonical_y(bytes: &[u8; 32]) -> bool {
    let top = bytes[31] & 0x7f;
    !(top == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    /// (public key, message, signature) of `count` messages, each signed by
    /// one of two keys.
    fn signed(count: usize) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        let rand = Rand::default();
        let keys = [
            SignatureAlgorithm::Ed25519.generate(&rand),
            SignatureAlgorithm::Ed25519.generate(&rand),
        ];
        (0..count)
            .map(|i| {
                let key = &keys[i % 2];
                let message = format!("message {i}").into_bytes();
                let signature = SignatureAlgorithm::Ed25519
                    .sign(&key.private, &message)
                    .expect("sign");
                (key.public.clone(), message, signature)
            })
            .collect()
    }

    fn batch(items: &[(Vec<u8>, Vec<u8>, Vec<u8>)]) -> Result<(), Error> {
        let borrowed: Vec<(&[u8], &[u8], &[u8])> = items
            .iter()
            .map(|(k, m, s)| (&k[..], &m[..], &s[..]))
            .collect();
        SignatureAlgorithm::Ed25519.verify_batch(&borrowed)
    }

    #[test]
    fn a_batch_passes_only_when_every_signature_verifies() {
        let items = signed(20);
        assert_eq!(batch(&items), Ok(()));
        for i in [0, 7, 19] {
            let mut bad = items.clone();
            bad[i].1.push(0);
            assert!(batch(&bad).is_err(), "message {i} changed");
            let mut bad = items.clone();
            bad[i].2[40] ^= 1;
            assert!(batch(&bad).is_err(), "signature {i} changed");
            let mut bad = items.clone();
            bad[i].0 = items[(i + 1) % 20].0.clone();
            assert!(batch(&bad).is_err(), "key {i} swapped");
        }
    }

    #[test]
    fn small_order_is_read_from_the_bytes_of_the_eight_torsion_only() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::{EdwardsPoint, Scalar};
        let mut distinct = std::collections::BTreeSet::new();
        for point in EIGHT_TORSION {
            let bytes = point.compress().to_bytes();
            assert!(has_small_order_y(&bytes), "{bytes:02x?} missed");
            // With the sign bit flipped: the other point of that y (or,
            // for x = 0, a non-canonical encoding of the same one).
            let mut flipped = bytes;
            flipped[31] ^= 0x80;
            assert!(has_small_order_y(&flipped), "{flipped:02x?} missed");
            distinct.insert(without_sign(bytes));
        }
        assert_eq!(distinct.len(), 5, "1, p - 1, 0 and the two of order 8");
        // Negative controls: points of large and of mixed order, a key and
        // a valid signature's R.
        let mut controls = 0;
        for i in 1u8..=50 {
            let large = EdwardsPoint::mul_base(&Scalar::from(u64::from(i)));
            for point in [large, large + EIGHT_TORSION[1], large + EIGHT_TORSION[2]] {
                assert!(!has_small_order_y(&point.compress().to_bytes()));
                controls += 1;
            }
        }
        let (key, _, signature) = signed(1).remove(0);
        assert!(!has_small_order_y(&key[..].try_into().expect("32")));
        assert!(!has_small_order_y(&signature[..32].try_into().expect("32")));
        println!("8 small-order points recognised, {controls} others not");
    }

    /// A key of mixed order (a valid key plus a point of order 8) and a
    /// signature whose `R` is of small order yet satisfies the cofactorless
    /// equation: what `verify_strict` refuses and plain `verify` accepts.
    #[test]
    fn an_r_of_small_order_is_refused_under_a_key_of_mixed_order() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::{EdwardsPoint, Scalar};
        let a = Scalar::from_bytes_mod_order([9u8; 32]);
        let public = (EdwardsPoint::mul_base(&a) + EIGHT_TORSION[1]).compress();
        let vk = ed25519_dalek::VerifyingKey::from_bytes(public.as_bytes()).expect("on curve");
        assert!(!vk.is_weak());
        let mut refused = 0;
        for attempt in 0u32..400 {
            let message = format!("mixed order {attempt}").into_bytes();
            // R = -[k]T, k = H(R || A || M): try each torsion point as R.
            for r in EIGHT_TORSION {
                let k = Scalar::from_bytes_mod_order_wide(
                    &sha2::Sha512::new()
                        .chain_update(r.compress().as_bytes())
                        .chain_update(public.as_bytes())
                        .chain_update(&message)
                        .finalize()
                        .into(),
                );
                if -(k * EIGHT_TORSION[1]) != r {
                    continue;
                }
                let forged = [r.compress().to_bytes(), (k * a).to_bytes()].concat();
                let signature = ed25519_dalek::Signature::from_slice(&forged).expect("64");
                assert!(
                    ed25519_dalek::Verifier::verify(&vk, &message, &signature).is_ok(),
                    "the equation holds"
                );
                assert!(vk.verify_strict(&message, &signature).is_err());
                assert_eq!(
                    SignatureAlgorithm::Ed25519.verify(public.as_bytes(), &message, &forged),
                    Err(Error::InvalidSignature),
                    "R = {:02x?}",
                    r.compress().as_bytes()
                );
                refused += 1;
            }
        }
        // Each attempt hits with probability 1/8 (k mod 8 decides R) and
        // R = identity is the case k = 0 mod 8: demand more than that one.
        println!("{refused} signatures with an R of small order refused");
        assert!(refused > 8, "only {refused} constructed");
    }

    /// Under a key of small order (here the identity) the equation holds
    /// for any message with `R = [s]B`: anyone can sign. Plain `verify`
    /// accepts that; ours must not.
    #[test]
    fn a_key_of_small_order_is_refused() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::{EdwardsPoint, Scalar};
        let s = Scalar::from_bytes_mod_order([7u8; 32]);
        let r = EdwardsPoint::mul_base(&s).compress();
        let forged = [r.to_bytes(), s.to_bytes()].concat();
        let message = b"anyone can sign";
        let mut refused = 0;
        for point in EIGHT_TORSION {
            let key = point.compress();
            let vk = ed25519_dalek::VerifyingKey::from_bytes(key.as_bytes()).expect("on curve");
            let signature = ed25519_dalek::Signature::from_slice(&forged).expect("64");
            if point == EdwardsPoint::default() {
                assert!(
                    ed25519_dalek::Verifier::verify(&vk, message, &signature).is_ok(),
                    "the equation holds under the identity"
                );
            }
            assert_eq!(
                SignatureAlgorithm::Ed25519.verify(key.as_bytes(), message, &forged),
                Err(Error::InvalidSignature),
                "key {:02x?}",
                key.as_bytes()
            );
            refused += 1;
        }
        println!("{refused} keys of small order refused");
    }

    #[test]
    fn what_single_verification_refuses_beyond_the_equation_a_batch_refuses() {
        let items = signed(4);
        // R of small order (the identity, y = 1).
        let mut identity_r = [0u8; 32];
        identity_r[0] = 1;
        // R encoded with y >= p: p + 1, whose reduction is y = 1.
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert!(!is_canonical_y(&non_canonical));
        let mut below_p = non_canonical;
        below_p[0] = 0xec;
        assert!(is_canonical_y(&below_p));
        for r in [identity_r, non_canonical] {
            let mut bad = items.clone();
            bad[1].2[..32].copy_from_slice(&r);
            assert!(batch(&bad).is_err());
        }
        // A signature with R the identity that satisfies the equation
        // (s = k·a, which takes the private scalar a): single verification
        // refuses it for R's small order, and so must a batch.
        let rand = Rand::default();
        let key = SignatureAlgorithm::Ed25519.generate(&rand);
        let message = b"small-order R".to_vec();
        let mut expanded: [u8; 32] = sha2::Sha512::digest(&key.private[..])[..32]
            .try_into()
            .expect("32 bytes");
        expanded[0] &= 248;
        expanded[31] &= 127;
        expanded[31] |= 64;
        let a = curve25519_dalek::Scalar::from_bytes_mod_order(expanded);
        let k = curve25519_dalek::Scalar::from_bytes_mod_order_wide(
            &sha2::Sha512::new()
                .chain_update(identity_r)
                .chain_update(&key.public)
                .chain_update(&message)
                .finalize()
                .into(),
        );
        let forged = [identity_r, (k * a).to_bytes()].concat();
        assert!(SignatureAlgorithm::Ed25519
            .verify(&key.public, &message, &forged)
            .is_err());
        let mut crafted = items.clone();
        crafted.push((key.public.clone(), message.clone(), forged.clone()));
        assert!(batch(&crafted).is_err(), "small-order R passed a batch");
        // The same signature with the checks skipped passes the bare batch
        // equation: the check above is what refuses it.
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&key.public[..].try_into().expect("32"))
            .expect("key");
        let signature = ed25519_dalek::Signature::from_slice(&forged).expect("64 bytes");
        assert!(ed25519_dalek::verify_batch(&[&message[..]], &[signature], &[vk]).is_ok());
        // A key of small order.
        let mut bad = items.clone();
        bad[2].0 = identity_r.to_vec();
        assert!(batch(&bad).is_err());
        // Wrong lengths.
        let mut bad = items.clone();
        bad[3].2.pop();
        assert!(batch(&bad).is_err());
        let mut bad = items;
        bad[0].0.pop();
        assert!(batch(&bad).is_err());
    }
}
