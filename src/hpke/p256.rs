//! The NIST P-256 group for DHKEM(P-256, HKDF-SHA256).

use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{NonZeroScalar, PublicKey, SecretKey};
use zeroize::Zeroizing;

use super::dhkem::{expand_candidate, DhGroup};
use crate::crypto::rand::Rand;
use crate::Error;

/// P-256: 32-byte scalars; public keys are uncompressed SEC1 points (65 bytes).
pub struct P256;

fn private_key(bytes: &[u8]) -> Result<SecretKey, Error> {
    if bytes.len() != 32 {
        return Err(Error::InvalidLength);
    }
    // Rejects zero and scalars not below the group order.
    SecretKey::from_slice(bytes).map_err(|_| Error::InvalidPrivateKey)
}

/// An uncompressed SEC1 point on the curve; points off the curve and the
/// identity are rejected (RFC 9180 §7.1.4).
fn parse_public_key(public: &[u8]) -> Result<PublicKey, Error> {
    if public.len() != P256::PUBLIC_KEY_LEN || public[0] != 0x04 {
        return Err(Error::InvalidLength);
    }
    PublicKey::from_sec1_bytes(public).map_err(|_| Error::InvalidPublicKey)
}

impl DhGroup for P256 {
    const KEM_ID: u16 = 0x0010;
    const PUBLIC_KEY_LEN: usize = 65;

    fn public_key(private: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(private_key(private)?
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec())
    }

    fn check_public_key(public: &[u8]) -> Result<(), Error> {
        parse_public_key(public).map(|_| ())
    }

    fn dh(private: &[u8], public: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
        let public = parse_public_key(public)?;
        let private = private_key(private)?;
        // The scalar is non-zero and the group has prime order, so the
        // product is never the identity.
        let shared = p256::ecdh::diffie_hellman(private.to_nonzero_scalar(), public.as_affine());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(shared.raw_secret_bytes());
        Ok(out)
    }

    fn derive_private_key(dkp_prk: &[u8], suite_id: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
        // RFC 9180 §7.1.3: rejection sampling; P-256's bitmask is 0xff.
        for counter in 0..=255u8 {
            let candidate = expand_candidate(dkp_prk, suite_id, b"candidate", &[counter])?;
            if SecretKey::from_slice(candidate.as_ref()).is_ok() {
                return Ok(candidate);
            }
        }
        Err(Error::DeriveKeyPairFailed)
    }

    fn random_private_key(rand: &Rand) -> Zeroizing<[u8; 32]> {
        let scalar = rand.with_rng(NonZeroScalar::random);
        Zeroizing::new(scalar.to_bytes().into())
    }
}
