//! X-Wing (draft-connolly-cfrg-xwing-kem-06..10): ML-KEM-768 and X25519,
//! HPKE KEM id 0x647a.
//!
//! ML-KEM-768 comes from `libcrux-ml-kem` (AVX2 where the CPU has it), X25519
//! from the crate's own X25519 path, SHAKE256 and SHA3-256 from `sha3`.
//!
//! # Decapsulation without per-call key expansion
//!
//! An X-Wing private key is a 32-byte seed; decapsulating with it means
//! expanding it first (SHAKE256, a full ML-KEM key generation and an X25519
//! base-point multiplication), which costs more than the decapsulation
//! itself. Instead of caching expansions (which would keep key material
//! alive after the application deleted the key), polymls can hand out the
//! private key already expanded: [`Kem::derive_key_pair_expanded`] returns
//! `seed || ML-KEM decapsulation key || X25519 secret || X25519 public key`
//! (2496 bytes), and [`Kem::decap`] accepts that form as well as the bare
//! seed. The expansion then lives exactly as long as the stored key does:
//! wherever the application keeps or erases the key, it keeps or erases the
//! expansion with it. The OpenMLS glue stores keys in this form; the
//! suite-level API returns the seed, as the specification does.

use libcrux_ml_kem::mlkem768;
use sha3::digest::{Digest, ExtendableOutput, Update, XofReader};
use zeroize::{Zeroize, Zeroizing};

use super::kem::{Kem, KeyPair, SharedSecret};
use super::labeled::labeled_derive_shake256;
use super::x25519;
use crate::Error;

const SEED_LEN: usize = 32;
const MLKEM_PUBLIC_KEY_LEN: usize = 1184;
const MLKEM_PRIVATE_KEY_LEN: usize = 2400;
const MLKEM_CIPHERTEXT_LEN: usize = 1088;
const X25519_LEN: usize = 32;
const PUBLIC_KEY_LEN: usize = MLKEM_PUBLIC_KEY_LEN + X25519_LEN;
const CIPHERTEXT_LEN: usize = MLKEM_CIPHERTEXT_LEN + X25519_LEN;
const EXPANDED_LEN: usize = SEED_LEN + MLKEM_PRIVATE_KEY_LEN + 2 * X25519_LEN;
const ENCAP_SEED_LEN: usize = 64;
const KEM_ID: u16 = 0x647a;
const SUITE_ID: [u8; 5] = [b'K', b'E', b'M', 0x64, 0x7a];

/// The combiner's domain separator, `\.//^\`.
const XWING_LABEL: [u8; 6] = [0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c];

/// How HPKE's `DeriveKeyPair(ikm)` turns input keying material into the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XWingDerivation {
    /// draft-ietf-hpke-pq: `SHAKE256.LabeledDerive(ikm, "DeriveKeyPair", "", 32)`.
    /// The derivation of suite 0xF110.
    Labeled,
    /// The X-Wing draft's HPKE section and `hpke-rs` 0.7, which OpenMLS
    /// 0.9.2's providers use: `SHAKE256(ikm, 32)`. The derivation of
    /// OpenMLS's suite 0x004F, so that polymls members share its groups.
    Plain,
}

/// The X-Wing KEM with one of the two `DeriveKeyPair` definitions.
#[derive(Debug)]
pub struct XWing {
    derivation: XWingDerivation,
}

impl XWing {
    /// X-Wing deriving key pairs as `derivation` says.
    pub const fn new(derivation: XWingDerivation) -> Self {
        XWing { derivation }
    }

    fn seed_from_ikm(&self, ikm: &[u8]) -> Result<Zeroizing<[u8; SEED_LEN]>, Error> {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        match self.derivation {
            XWingDerivation::Labeled => {
                labeled_derive_shake256(&SUITE_ID, &[ikm], b"DeriveKeyPair", &[], seed.as_mut())?
            }
            XWingDerivation::Plain => shake256(&[ikm], seed.as_mut()),
        }
        Ok(seed)
    }
}

fn shake256(input: &[&[u8]], out: &mut [u8]) {
    let mut xof = sha3::Shake256::default();
    for part in input {
        xof.update(part);
    }
    xof.finalize_xof().read(out);
}

/// The decapsulation key expanded from its seed: the seed, the ML-KEM
/// decapsulation key, the X25519 secret and the X25519 public key.
struct Expanded(Zeroizing<[u8; EXPANDED_LEN]>);

impl Expanded {
    /// `expandDecapsulationKey(seed)` of the X-Wing draft.
    fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let mut randomness = Zeroizing::new([0u8; 96]);
        shake256(&[seed], randomness.as_mut());
        let mut key_generation_seed = Zeroizing::new([0u8; 64]);
        key_generation_seed.copy_from_slice(&randomness[..64]);
        // KeyGen_internal(d = randomness[0..32], z = randomness[32..64]).
        let (mlkem_private, _) = mlkem768::generate_key_pair(*key_generation_seed).into_parts();

        let mut expanded = Zeroizing::new([0u8; EXPANDED_LEN]);
        let (seed_part, rest) = expanded.split_at_mut(SEED_LEN);
        let (mlkem_part, rest) = rest.split_at_mut(MLKEM_PRIVATE_KEY_LEN);
        let (x25519_private, x25519_public) = rest.split_at_mut(X25519_LEN);
        seed_part.copy_from_slice(seed);
        let mut mlkem_bytes: [u8; MLKEM_PRIVATE_KEY_LEN] = mlkem_private.into();
        mlkem_part.copy_from_slice(&mlkem_bytes);
        mlkem_bytes.zeroize();
        let x25519_secret: &[u8; 32] = randomness[64..].try_into().expect("96 - 64 bytes");
        x25519_private.copy_from_slice(x25519_secret);
        x25519_public.copy_from_slice(&x25519::base_mult(x25519_secret));
        Expanded(expanded)
    }

    /// Reads a private key in either form: the 32-byte seed, or the
    /// expanded form that [`Kem::derive_key_pair_expanded`] returns.
    fn from_private_key(private_key: &[u8]) -> Result<Self, Error> {
        match private_key.len() {
            SEED_LEN => Ok(Self::from_seed(
                private_key.try_into().expect("length checked"),
            )),
            EXPANDED_LEN => {
                let mut expanded = Zeroizing::new([0u8; EXPANDED_LEN]);
                expanded.copy_from_slice(private_key);
                Ok(Expanded(expanded))
            }
            _ => Err(Error::InvalidLength),
        }
    }

    fn mlkem_private(&self) -> &[u8; MLKEM_PRIVATE_KEY_LEN] {
        self.0[SEED_LEN..SEED_LEN + MLKEM_PRIVATE_KEY_LEN]
            .try_into()
            .expect("fixed layout")
    }

    fn x25519_private(&self) -> &[u8; X25519_LEN] {
        let start = SEED_LEN + MLKEM_PRIVATE_KEY_LEN;
        self.0[start..start + X25519_LEN]
            .try_into()
            .expect("fixed layout")
    }

    fn x25519_public(&self) -> &[u8; X25519_LEN] {
        self.0[EXPANDED_LEN - X25519_LEN..]
            .try_into()
            .expect("fixed layout")
    }

    /// `pk_M || pk_X`. The ML-KEM decapsulation key embeds its encapsulation
    /// key (FIPS 203 §7.1), after the 1152-byte secret vector.
    fn public_key(&self) -> Vec<u8> {
        let mlkem_public = &self.mlkem_private()[1152..1152 + MLKEM_PUBLIC_KEY_LEN];
        [mlkem_public, self.x25519_public()].concat()
    }
}

/// `Combiner(ss_M, ss_X, ct_X, pk_X)`: SHA3-256 over the four and the label.
fn combine(
    mlkem_shared: &[u8],
    x25519_shared: &[u8],
    x25519_ciphertext: &[u8],
    x25519_public: &[u8],
) -> SharedSecret {
    let digest = sha3::Sha3_256::new()
        .chain(mlkem_shared)
        .chain(x25519_shared)
        .chain(x25519_ciphertext)
        .chain(x25519_public)
        .chain(XWING_LABEL)
        .finalize();
    Zeroizing::new(digest.into())
}

/// The ML-KEM-768 encapsulation key and the X25519 public key of an X-Wing
/// public key. libcrux's encapsulate does not check the ML-KEM key (FIPS 203
/// §7.2's modulus check), so it is checked here.
fn parse_public_key(public_key: &[u8]) -> Result<(mlkem768::MlKem768PublicKey, &[u8]), Error> {
    if public_key.len() != PUBLIC_KEY_LEN {
        return Err(Error::InvalidLength);
    }
    let (mlkem_public, x25519_public) = public_key.split_at(MLKEM_PUBLIC_KEY_LEN);
    let mlkem_public =
        mlkem768::MlKem768PublicKey::try_from(mlkem_public).map_err(|_| Error::InvalidLength)?;
    if !mlkem768::validate_public_key(&mlkem_public) {
        return Err(Error::InvalidPublicKey);
    }
    Ok((mlkem_public, x25519_public))
}

impl Kem for XWing {
    fn id(&self) -> u16 {
        KEM_ID
    }
    fn enc_len(&self) -> usize {
        CIPHERTEXT_LEN
    }
    fn public_key_len(&self) -> usize {
        PUBLIC_KEY_LEN
    }
    fn private_key_len(&self) -> usize {
        SEED_LEN
    }
    /// `eseed`: 32 bytes of ML-KEM encapsulation randomness, then the
    /// ephemeral X25519 secret.
    fn encap_seed_len(&self) -> usize {
        ENCAP_SEED_LEN
    }

    fn derive_key_pair(&self, ikm: &[u8]) -> Result<KeyPair, Error> {
        let seed = self.seed_from_ikm(ikm)?;
        Ok(KeyPair {
            public: Expanded::from_seed(&seed).public_key(),
            private: Zeroizing::new(seed.to_vec()),
        })
    }

    fn derive_key_pair_expanded(&self, ikm: &[u8]) -> Result<KeyPair, Error> {
        let expanded = Expanded::from_seed(&*self.seed_from_ikm(ikm)?);
        Ok(KeyPair {
            public: expanded.public_key(),
            private: Zeroizing::new(expanded.0.to_vec()),
        })
    }

    fn expand_private_key(&self, private_key: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        Ok(Zeroizing::new(
            Expanded::from_private_key(private_key)?.0.to_vec(),
        ))
    }

    fn public_key(&self, private_key: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(Expanded::from_private_key(private_key)?.public_key())
    }

    fn check_public_key(&self, public_key: &[u8]) -> Result<(), Error> {
        parse_public_key(public_key).map(|_| ())
    }

    fn encap(&self, public_key: &[u8], seed: &[u8]) -> Result<(SharedSecret, Vec<u8>), Error> {
        if seed.len() != ENCAP_SEED_LEN {
            return Err(Error::InvalidLength);
        }
        let (mlkem_public, x25519_public) = parse_public_key(public_key)?;
        let mut mlkem_randomness = Zeroizing::new([0u8; 32]);
        mlkem_randomness.copy_from_slice(&seed[..32]);
        let (mlkem_ciphertext, mut mlkem_shared) =
            mlkem768::encapsulate(&mlkem_public, *mlkem_randomness);

        let ephemeral: &[u8; 32] = seed[32..].try_into().expect("length checked");
        let x25519_ciphertext = x25519::base_mult(ephemeral);
        let x25519_shared =
            x25519::raw_dh(ephemeral, x25519_public.try_into().expect("length checked"));

        let shared = combine(
            &mlkem_shared,
            x25519_shared.as_ref(),
            &x25519_ciphertext,
            x25519_public,
        );
        mlkem_shared.zeroize();
        Ok((
            shared,
            [mlkem_ciphertext.as_ref(), &x25519_ciphertext].concat(),
        ))
    }

    fn decap(&self, enc: &[u8], private_key: &[u8]) -> Result<SharedSecret, Error> {
        if enc.len() != CIPHERTEXT_LEN {
            return Err(Error::InvalidLength);
        }
        let expanded = Expanded::from_private_key(private_key)?;
        let (mlkem_ciphertext, x25519_ciphertext) = enc.split_at(MLKEM_CIPHERTEXT_LEN);
        let mlkem_ciphertext = mlkem768::MlKem768Ciphertext::try_from(mlkem_ciphertext)
            .map_err(|_| Error::InvalidLength)?;
        let mlkem_private = mlkem768::MlKem768PrivateKey::from(expanded.mlkem_private());
        // A tampered ciphertext gives ML-KEM's implicit rejection: a
        // pseudorandom secret, so the AEAD after it fails.
        let mut mlkem_shared = mlkem768::decapsulate(&mlkem_private, &mlkem_ciphertext);
        let mut mlkem_private_bytes: [u8; MLKEM_PRIVATE_KEY_LEN] = mlkem_private.into();
        mlkem_private_bytes.zeroize();

        let x25519_ciphertext: &[u8; 32] = x25519_ciphertext.try_into().expect("length checked");
        let x25519_shared = x25519::raw_dh(expanded.x25519_private(), x25519_ciphertext);
        let shared = combine(
            &mlkem_shared,
            x25519_shared.as_ref(),
            x25519_ciphertext,
            expanded.x25519_public(),
        );
        mlkem_shared.zeroize();
        Ok(shared)
    }
}
