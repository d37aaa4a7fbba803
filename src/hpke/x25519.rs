//! The X25519 group (RFC 7748) for DHKEM(X25519, HKDF-SHA256) and X-Wing:
//! fixed-base multiplications through x25519-dalek's precomputed table,
//! variable-base ones through libcrux (each the faster here).

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::dhkem::{expand_candidate, DhGroup};
use crate::crypto::rand::Rand;
use crate::Error;

/// X25519: 32-byte keys; a public key is any 32-byte string.
pub struct X25519;

fn private_key(bytes: &[u8]) -> Result<StaticSecret, Error> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidLength)?;
    Ok(StaticSecret::from(bytes))
}

/// `X25519(private, basepoint)`, through dalek's precomputed table.
pub(crate) fn base_mult(private: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*private)).to_bytes()
}

/// `X25519(private, public)` through libcrux's formally verified HACL*
/// code, measured faster here than dalek's variable-base multiplication.
/// `None` when the result is all zeros (a small-order public key).
fn contributory_dh(private: &[u8; 32], public: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
    let mut shared = Zeroizing::new([0u8; 32]);
    libcrux_curve25519::ecdh(&mut shared, public, private).ok()?;
    Some(shared)
}

/// `X25519(private, public)` as RFC 7748 defines it, with no check of the
/// result: X-Wing's combiner takes even an all-zero output.
pub(crate) fn raw_dh(private: &[u8; 32], public: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    // libcrux fails only on an all-zero result, which is then the output.
    contributory_dh(private, public).unwrap_or_else(|| Zeroizing::new([0u8; 32]))
}

impl DhGroup for X25519 {
    const KEM_ID: u16 = 0x0020;
    const PUBLIC_KEY_LEN: usize = 32;

    fn public_key(private: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(PublicKey::from(&private_key(private)?).as_bytes().to_vec())
    }

    fn check_public_key(public: &[u8]) -> Result<(), Error> {
        if public.len() == Self::PUBLIC_KEY_LEN {
            Ok(())
        } else {
            Err(Error::InvalidLength)
        }
    }

    fn dh(private: &[u8], public: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
        let public: &[u8; 32] = public.try_into().map_err(|_| Error::InvalidLength)?;
        let private: &[u8; 32] = private.try_into().map_err(|_| Error::InvalidLength)?;
        contributory_dh(private, public).ok_or(Error::NonContributoryKey)
    }

    fn derive_private_key(dkp_prk: &[u8], suite_id: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
        expand_candidate(dkp_prk, suite_id, b"sk", b"")
    }

    fn random_private_key(rand: &Rand) -> Zeroizing<[u8; 32]> {
        let mut key = Zeroizing::new([0u8; 32]);
        rand.fill(key.as_mut());
        key
    }
}
