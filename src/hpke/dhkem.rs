//! DHKEM (RFC 9180 §4.1), written once over a Diffie-Hellman group.

use std::borrow::Cow;
use std::marker::PhantomData;

use zeroize::Zeroizing;

use super::kem::{Kem, KeyPair, SharedSecret, MAX_ENCAP_SEED_LEN, SHARED_SECRET_LEN};
use super::labeled::{labeled_expand, labeled_extract};
use crate::crypto::hash::Hash;
use crate::crypto::rand::Rand;
use crate::Error;

pub use super::p256::P256;
pub use super::x25519::X25519;

/// Both DHKEMs here use HKDF-SHA256 inside the KEM.
pub(crate) const DHKEM_KDF: Hash = Hash::Sha256;

/// A Diffie-Hellman group with RFC 9180's serializations. Private keys of
/// both groups here are 32 bytes, and so are their DH outputs.
pub trait DhGroup: Send + Sync + 'static {
    /// The HPKE KEM identifier of DHKEM over this group.
    const KEM_ID: u16;
    /// `Npk`.
    const PUBLIC_KEY_LEN: usize;

    /// The public key of `private_key`, validating it.
    fn public_key(private_key: &[u8]) -> Result<Vec<u8>, Error>;

    /// Checks a serialized public key as [`DhGroup::dh`] does.
    fn check_public_key(public_key: &[u8]) -> Result<(), Error>;

    /// `DH(private_key, public_key)`, validating both and rejecting an
    /// all-zero or identity result.
    fn dh(private_key: &[u8], public_key: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error>;

    /// The private-key half of `DeriveKeyPair` from the extracted `dkp_prk`.
    fn derive_private_key(dkp_prk: &[u8], suite_id: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error>;

    /// A uniformly random valid private key.
    fn random_private_key(rand: &Rand) -> Zeroizing<[u8; 32]>;
}

/// DHKEM over the group `G`, with HKDF-SHA256.
pub struct DhKem<G>(PhantomData<G>);

impl<G> DhKem<G> {
    /// The KEM; it holds no state.
    pub const fn new() -> Self {
        DhKem(PhantomData)
    }
}

impl<G: DhGroup> DhKem<G> {
    fn suite_id() -> [u8; 5] {
        let [hi, lo] = G::KEM_ID.to_be_bytes();
        [b'K', b'E', b'M', hi, lo]
    }

    /// The private scalar and public key of a private key in either form:
    /// serialized (32 bytes; the public key is computed) or expanded
    /// (`private || public`, see [`Kem::derive_key_pair_expanded`]).
    fn key_parts(private_key: &[u8]) -> Result<(&[u8], Cow<'_, [u8]>), Error> {
        if private_key.len() == 32 + G::PUBLIC_KEY_LEN {
            let (private, public) = private_key.split_at(32);
            return Ok((private, Cow::Borrowed(public)));
        }
        Ok((private_key, Cow::Owned(G::public_key(private_key)?)))
    }

    /// `ExtractAndExpand(dh, enc || pkR)`.
    fn extract_and_expand(dh: &[u8], enc: &[u8], public_key: &[u8]) -> Result<SharedSecret, Error> {
        let suite_id = Self::suite_id();
        let eae_prk = labeled_extract(DHKEM_KDF, &suite_id, b"", b"eae_prk", dh);
        let mut shared_secret = Zeroizing::new([0u8; SHARED_SECRET_LEN]);
        labeled_expand(
            DHKEM_KDF,
            &suite_id,
            eae_prk.as_bytes(),
            b"shared_secret",
            &[enc, public_key],
            shared_secret.as_mut(),
        )?;
        Ok(shared_secret)
    }
}

impl<G: DhGroup> Kem for DhKem<G> {
    fn id(&self) -> u16 {
        G::KEM_ID
    }
    fn enc_len(&self) -> usize {
        G::PUBLIC_KEY_LEN
    }
    fn public_key_len(&self) -> usize {
        G::PUBLIC_KEY_LEN
    }
    fn private_key_len(&self) -> usize {
        32
    }
    /// The seed of a DHKEM encapsulation is the ephemeral private key.
    fn encap_seed_len(&self) -> usize {
        32
    }

    fn random_encap_seed(&self, rand: &Rand) -> Zeroizing<[u8; MAX_ENCAP_SEED_LEN]> {
        let mut seed = Zeroizing::new([0u8; MAX_ENCAP_SEED_LEN]);
        seed[..32].copy_from_slice(G::random_private_key(rand).as_ref());
        seed
    }

    fn derive_key_pair(&self, ikm: &[u8]) -> Result<KeyPair, Error> {
        let suite_id = Self::suite_id();
        let dkp_prk = labeled_extract(DHKEM_KDF, &suite_id, b"", b"dkp_prk", ikm);
        let private = G::derive_private_key(dkp_prk.as_bytes(), &suite_id)?;
        Ok(KeyPair {
            public: G::public_key(private.as_ref())?,
            private: Zeroizing::new(private.to_vec()),
        })
    }

    /// The expanded form is `private || public`: decapsulation then skips
    /// the fixed-base multiplication that recomputes `pkRm`, a third of an
    /// X25519 open. The public half is taken as stored, not checked: one
    /// that does not match makes every decapsulation derive a secret no
    /// sender shares, so opening fails; it cannot make one succeed.
    fn derive_key_pair_expanded(&self, ikm: &[u8]) -> Result<KeyPair, Error> {
        let key_pair = self.derive_key_pair(ikm)?;
        let private = Zeroizing::new([&key_pair.private[..], &key_pair.public].concat());
        Ok(KeyPair {
            private,
            public: key_pair.public,
        })
    }

    fn expand_private_key(&self, private_key: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let (private, public) = Self::key_parts(private_key)?;
        Ok(Zeroizing::new([private, &public].concat()))
    }

    fn public_key(&self, private_key: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(Self::key_parts(private_key)?.1.into_owned())
    }

    fn check_public_key(&self, public_key: &[u8]) -> Result<(), Error> {
        G::check_public_key(public_key)
    }

    fn encap(&self, public_key: &[u8], seed: &[u8]) -> Result<(SharedSecret, Vec<u8>), Error> {
        let dh = G::dh(seed, public_key)?;
        let enc = G::public_key(seed)?;
        let shared_secret = Self::extract_and_expand(dh.as_ref(), &enc, public_key)?;
        Ok((shared_secret, enc))
    }

    fn decap(&self, enc: &[u8], private_key: &[u8]) -> Result<SharedSecret, Error> {
        let (private, public) = Self::key_parts(private_key)?;
        let dh = G::dh(private, enc)?;
        Self::extract_and_expand(dh.as_ref(), enc, &public)
    }
}

/// A 32-byte private-key candidate of `DeriveKeyPair`, shared by the groups.
pub(crate) fn expand_candidate(
    dkp_prk: &[u8],
    suite_id: &[u8],
    label: &[u8],
    info: &[u8],
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let mut out = Zeroizing::new([0u8; 32]);
    labeled_expand(DHKEM_KDF, suite_id, dkp_prk, label, &[info], out.as_mut())?;
    Ok(out)
}
