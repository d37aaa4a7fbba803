//! KeyPackages assembled byte by byte with polymls's suite-level API and
//! the directory's encoder, for any suite of the table (0xF110 included,
//! which OpenMLS cannot make), with every field open to tampering.
#![allow(dead_code)]

use polymls::directory::keypackage::{sign_content, write_vector, LAST_RESORT_EXTENSION};
use polymls::directory::{Credential, IdentityCheck};
use polymls::suite::cipher_suite;
use polymls::Rand;

/// What goes into a KeyPackage; [`Spec::new`] gives a valid one.
#[derive(Clone)]
pub struct Spec {
    pub version: u16,
    pub suite: u16,
    pub init_key: Vec<u8>,
    pub encryption_key: Vec<u8>,
    pub signature_key: Vec<u8>,
    pub signature_private: Vec<u8>,
    pub identity: Vec<u8>,
    pub capability_suites: Vec<u16>,
    pub capability_extensions: Vec<u16>,
    pub source: u8,
    pub not_before: u64,
    pub not_after: u64,
    pub last_resort: bool,
    /// Further KeyPackage extensions (empty data) beside `last_resort`.
    pub extra_extensions: Vec<u16>,
}

impl Spec {
    /// A valid KeyPackage of `suite` for `identity`, valid from an hour
    /// before `now` for 30 days, with fresh keys.
    pub fn new(suite: u16, identity: &str, now: u64) -> Spec {
        let rand = Rand::default();
        let table = cipher_suite(suite).expect("a suite of the table");
        let kem_key = |rand: &Rand| {
            let mut ikm = [0u8; 32];
            rand.fill(&mut ikm);
            table.hpke().derive_key_pair(&ikm).expect("key pair").public
        };
        let signer = table.signature.generate(&rand);
        Spec {
            version: 1,
            suite,
            init_key: kem_key(&rand),
            encryption_key: kem_key(&rand),
            signature_key: signer.public.clone(),
            signature_private: signer.private.to_vec(),
            identity: identity.as_bytes().to_vec(),
            capability_suites: vec![suite],
            capability_extensions: vec![LAST_RESORT_EXTENSION],
            source: 1,
            not_before: now - 3600,
            not_after: now + 30 * 24 * 3600,
            last_resort: false,
            extra_extensions: Vec::new(),
        }
    }

    /// The same signer, fresh KEM keys: another KeyPackage of the device.
    pub fn another(&self) -> Spec {
        let fresh = Spec::new(self.suite, "unused", self.not_before + 3600);
        Spec {
            init_key: fresh.init_key,
            encryption_key: fresh.encryption_key,
            ..self.clone()
        }
    }

    fn sign(&self, label: &str, tbs: &[u8]) -> Vec<u8> {
        let table = cipher_suite(self.suite).unwrap_or_else(|| cipher_suite(1).expect("0x0001"));
        table
            .signature
            .sign(
                &self.signature_private,
                &sign_content(label, tbs).expect("content"),
            )
            .expect("sign")
    }

    /// The leaf node's TBS: everything before its signature.
    fn leaf_tbs(&self) -> Vec<u8> {
        let mut out = Vec::new();
        vector(&mut out, &self.encryption_key);
        vector(&mut out, &self.signature_key);
        out.extend_from_slice(&1u16.to_be_bytes()); // basic credential
        vector(&mut out, &self.identity);
        vector(&mut out, &u16s(&[1]));
        vector(&mut out, &u16s(&self.capability_suites));
        vector(&mut out, &u16s(&self.capability_extensions));
        vector(&mut out, &u16s(&[]));
        vector(&mut out, &u16s(&[1]));
        out.push(self.source);
        match self.source {
            1 => {
                out.extend_from_slice(&self.not_before.to_be_bytes());
                out.extend_from_slice(&self.not_after.to_be_bytes());
            }
            3 => vector(&mut out, &[0; 32]),
            _ => {}
        }
        vector(&mut out, &[]); // leaf extensions
        out
    }

    /// The KeyPackage's TBS, with `leaf` as its leaf node.
    fn tbs(&self, leaf: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.suite.to_be_bytes());
        vector(&mut out, &self.init_key);
        out.extend_from_slice(leaf);
        let mut extensions = Vec::new();
        if self.last_resort {
            extensions.extend_from_slice(&LAST_RESORT_EXTENSION.to_be_bytes());
            vector(&mut extensions, &[]);
        }
        for extension_type in &self.extra_extensions {
            extensions.extend_from_slice(&extension_type.to_be_bytes());
            vector(&mut extensions, &[]);
        }
        vector(&mut out, &extensions);
        out
    }

    /// The TLS-encoded, signed KeyPackage.
    pub fn encode(&self) -> Vec<u8> {
        let leaf_tbs = self.leaf_tbs();
        let mut leaf = leaf_tbs.clone();
        vector(&mut leaf, &self.sign("LeafNodeTBS", &leaf_tbs));
        let tbs = self.tbs(&leaf);
        let mut out = tbs.clone();
        vector(&mut out, &self.sign("KeyPackageTBS", &tbs));
        out
    }

    /// Encoded with the KeyPackage signed over other bytes than its TBS.
    pub fn encode_with_bad_signature(&self) -> Vec<u8> {
        let leaf_tbs = self.leaf_tbs();
        let mut leaf = leaf_tbs.clone();
        vector(&mut leaf, &self.sign("LeafNodeTBS", &leaf_tbs));
        let tbs = self.tbs(&leaf);
        let mut out = tbs.clone();
        vector(&mut out, &self.sign("KeyPackageTBS", &tbs[1..]));
        out
    }

    /// Encoded with the leaf node signed over other bytes than its TBS.
    pub fn encode_with_bad_leaf_signature(&self) -> Vec<u8> {
        let leaf_tbs = self.leaf_tbs();
        let mut leaf = leaf_tbs.clone();
        vector(&mut leaf, &self.sign("LeafNodeTBS", &leaf_tbs[1..]));
        let tbs = self.tbs(&leaf);
        let mut out = tbs.clone();
        vector(&mut out, &self.sign("KeyPackageTBS", &tbs));
        out
    }
}

fn vector(out: &mut Vec<u8>, bytes: &[u8]) {
    write_vector(out, bytes).expect("short vector");
}

fn u16s(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// The identity hook of the tests: a basic credential whose identity is
/// the actor's name.
pub struct ActorIsIdentity;

impl IdentityCheck for ActorIsIdentity {
    fn accepts(&self, actor: &str, _: &str, credential: &Credential, _: &[u8]) -> bool {
        matches!(credential, Credential::Basic(identity) if identity == actor.as_bytes())
    }
}
