//! The checks a home server makes on an uploaded KeyPackage (RFC 9420
//! §10.1 and §7.3, as far as they need no group), on polymls's own parser
//! and suite table, so every suite polymls offers is checked alike,
//! 0xF110 included.

use super::keypackage::{sign_content, KeyPackage, LeafNodeSource};
use crate::crypto::sign::SignatureAlgorithm;
use crate::suite::{cipher_suite, CipherSuite};

/// MLS 1.0.
pub const MLS_10: u16 = 1;

/// Why a KeyPackage was refused. Each says what was wrong, never a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The bytes are not one TLS-encoded KeyPackage.
    Malformed(&'static str),
    /// A protocol version other than MLS 1.0.
    ProtocolVersion(u16),
    /// A cipher suite the directory does not offer.
    CipherSuite(u16),
    /// The leaf node does not list the KeyPackage's suite or version.
    Capabilities(&'static str),
    /// An extension the leaf node does not list in its capabilities.
    UnsupportedExtension(u16),
    /// The leaf node was not made for a KeyPackage.
    LeafNodeSource,
    /// The leaf node's signature does not verify under its signature key.
    LeafNodeSignature,
    /// The KeyPackage's signature does not verify under the leaf's key.
    KeyPackageSignature,
    /// The lifetime has lapsed, has not begun, or is longer than allowed.
    Lifetime(&'static str),
    /// `init_key` equals the leaf node's `encryption_key`.
    InitKeyEqualsEncryptionKey,
    /// `init_key` or `encryption_key` is not a valid key of the suite's KEM.
    InvalidKey(&'static str),
    /// `init_key` is already in the directory, or was handed out and has
    /// not yet lapsed.
    DuplicateInitKey,
    /// The identity hook refused the credential or signature key for this
    /// actor and device.
    Identity,
    /// A second last-resort KeyPackage for the same device and suite in one
    /// upload, or a last-resort flag that the KeyPackage contradicts.
    LastResort(&'static str),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Malformed(what) => write!(f, "malformed KeyPackage: {what}"),
            Rejection::ProtocolVersion(v) => write!(f, "protocol version {v} is not MLS 1.0"),
            Rejection::CipherSuite(s) => write!(f, "cipher suite {s:#06x} is not offered"),
            Rejection::Capabilities(what) => write!(f, "capabilities: {what}"),
            Rejection::UnsupportedExtension(t) => {
                write!(
                    f,
                    "extension {t:#06x} is not in the leaf node's capabilities"
                )
            }
            Rejection::LeafNodeSource => f.write_str("the leaf node is not a KeyPackage's"),
            Rejection::LeafNodeSignature => f.write_str("the leaf node signature does not verify"),
            Rejection::KeyPackageSignature => {
                f.write_str("the KeyPackage signature does not verify")
            }
            Rejection::Lifetime(what) => write!(f, "lifetime: {what}"),
            Rejection::InitKeyEqualsEncryptionKey => {
                f.write_str("init_key equals the leaf node's encryption_key")
            }
            Rejection::InvalidKey(what) => write!(f, "invalid {what}"),
            Rejection::DuplicateInitKey => f.write_str("init_key is not unique"),
            Rejection::Identity => {
                f.write_str("the credential is not this actor's identity for this device")
            }
            Rejection::LastResort(what) => write!(f, "last resort: {what}"),
        }
    }
}

/// What validation needs to know besides the KeyPackage.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The suites the directory takes, by code point (each must be in
    /// polymls's suite table).
    pub cipher_suites: Vec<u16>,
    /// The longest `not_after - not_before` accepted, in seconds.
    pub max_lifetime: u64,
}

impl Default for Policy {
    /// polyproto's two suites, 0x0001 and 0xF110, and OpenMLS's bound on a
    /// lifetime: 12 weeks and an hour of clock skew.
    fn default() -> Self {
        Policy {
            cipher_suites: vec![0x0001, 0xF110],
            max_lifetime: 12 * 7 * 24 * 3600 + 3600,
        }
    }
}

/// Extension types RFC 9420 §7.2 lets a leaf node support without listing
/// them (application_id, ratchet_tree, required_capabilities, external_pub,
/// external_senders).
fn is_default_extension(extension_type: u16) -> bool {
    (1..=5).contains(&extension_type)
}

/// A KeyPackage that passed every check that needs no directory state.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The parsed KeyPackage.
    pub key_package: KeyPackage,
    /// Its suite.
    pub suite: &'static CipherSuite,
    /// `not_after` of its lifetime.
    pub not_after: u64,
}

/// Parses `bytes` and checks everything RFC 9420 asks of a KeyPackage
/// outside a group, at time `now` (seconds since the Unix epoch): protocol
/// version, suite, capabilities, extensions, leaf node source and lifetime,
/// key validity, and both signatures. What needs the directory's state
/// (`init_key` uniqueness, identity) is checked by the directory.
pub fn check(bytes: &[u8], policy: &Policy, now: u64) -> Result<Checked, Rejection> {
    check_unsigned(bytes, policy, now)?.verify()
}

/// [`check`] on each of `uploads`, with the Ed25519 signatures of all of
/// them verified as one batch (see
/// [`SignatureAlgorithm::verify_batch`](crate::crypto::sign::SignatureAlgorithm::verify_batch)
/// for what a batch does and does not guarantee beside one by one). If the
/// batch fails, each is verified alone, so each verdict is its own.
pub fn check_batch(
    uploads: &[&[u8]],
    policy: &Policy,
    now: u64,
) -> Vec<Result<Checked, Rejection>> {
    let unsigned: Vec<Result<Unsigned, Rejection>> = uploads
        .iter()
        .map(|bytes| check_unsigned(bytes, policy, now))
        .collect();
    let batch: Vec<(&[u8], &[u8], &[u8])> = unsigned
        .iter()
        .flatten()
        .filter(|u| u.checked.suite.signature == SignatureAlgorithm::Ed25519)
        .flat_map(Unsigned::signatures)
        .collect();
    let batch_verified =
        batch.len() > 1 && SignatureAlgorithm::Ed25519.verify_batch(&batch).is_ok();
    unsigned
        .into_iter()
        .map(|unsigned| {
            let unsigned = unsigned?;
            if batch_verified && unsigned.checked.suite.signature == SignatureAlgorithm::Ed25519 {
                Ok(unsigned.checked)
            } else {
                unsigned.verify()
            }
        })
        .collect()
}

/// A KeyPackage that passed every check but its two signatures, with the
/// contents they sign.
struct Unsigned {
    checked: Checked,
    leaf_content: Vec<u8>,
    content: Vec<u8>,
}

impl Unsigned {
    /// (key, signed content, signature) of the leaf node and the KeyPackage.
    fn signatures(&self) -> [(&[u8], &[u8], &[u8]); 2] {
        let key_package = &self.checked.key_package;
        let leaf = &key_package.leaf_node;
        [
            (&leaf.signature_key, &self.leaf_content, &leaf.signature),
            (&leaf.signature_key, &self.content, &key_package.signature),
        ]
    }

    fn verify(self) -> Result<Checked, Rejection> {
        let [leaf, key_package] = self.signatures();
        let algorithm = self.checked.suite.signature;
        algorithm
            .verify(leaf.0, leaf.1, leaf.2)
            .map_err(|_| Rejection::LeafNodeSignature)?;
        algorithm
            .verify(key_package.0, key_package.1, key_package.2)
            .map_err(|_| Rejection::KeyPackageSignature)?;
        Ok(self.checked)
    }
}

fn check_unsigned(bytes: &[u8], policy: &Policy, now: u64) -> Result<Unsigned, Rejection> {
    let key_package = KeyPackage::parse(bytes).map_err(|e| Rejection::Malformed(e.0))?;
    if key_package.version != MLS_10 {
        return Err(Rejection::ProtocolVersion(key_package.version));
    }
    let suite = cipher_suite(key_package.cipher_suite)
        .filter(|_| policy.cipher_suites.contains(&key_package.cipher_suite))
        .ok_or(Rejection::CipherSuite(key_package.cipher_suite))?;
    let leaf = &key_package.leaf_node;
    let LeafNodeSource::KeyPackage {
        not_before,
        not_after,
    } = leaf.source
    else {
        return Err(Rejection::LeafNodeSource);
    };
    if !leaf.capabilities.cipher_suites.contains(&suite.code_point) {
        return Err(Rejection::Capabilities("the suite is not listed"));
    }
    if !leaf.capabilities.versions.contains(&MLS_10) {
        return Err(Rejection::Capabilities("MLS 1.0 is not listed"));
    }
    for extension in key_package.extensions.iter().chain(&leaf.extensions) {
        let listed = leaf
            .capabilities
            .extensions
            .contains(&extension.extension_type);
        if !is_default_extension(extension.extension_type) && !listed {
            return Err(Rejection::UnsupportedExtension(extension.extension_type));
        }
    }
    if not_after <= now {
        return Err(Rejection::Lifetime("lapsed"));
    }
    if not_before > now {
        return Err(Rejection::Lifetime("not yet valid"));
    }
    if not_after.saturating_sub(not_before) > policy.max_lifetime {
        return Err(Rejection::Lifetime("longer than the directory allows"));
    }
    if key_package.init_key == leaf.encryption_key {
        return Err(Rejection::InitKeyEqualsEncryptionKey);
    }
    suite
        .kem
        .check_public_key(&key_package.init_key)
        .map_err(|_| Rejection::InvalidKey("init_key"))?;
    suite
        .kem
        .check_public_key(&leaf.encryption_key)
        .map_err(|_| Rejection::InvalidKey("encryption_key"))?;
    let leaf_content = sign_content("LeafNodeTBS", &key_package.leaf_node_tbs)
        .map_err(|e| Rejection::Malformed(e.0))?;
    let content =
        sign_content("KeyPackageTBS", &key_package.tbs).map_err(|e| Rejection::Malformed(e.0))?;
    Ok(Unsigned {
        checked: Checked {
            suite,
            not_after,
            key_package,
        },
        leaf_content,
        content,
    })
}
