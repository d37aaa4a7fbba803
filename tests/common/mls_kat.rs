//! Known-answer-test runners for the MLS interop test vectors
//! (mlswg/mls-implementations format, RFC 9420) that exercise any
//! [`OpenMlsCrypto`] implementation purely through that trait.
//!
//! Everything MLS-specific (labels, key schedule pieces, secret tree, framing)
//! is re-implemented here from RFC 9420 with a small hand-written TLS /
//! QUIC-varint codec, so that the only thing under test is the provider.
//!
//! Each runner loads one vector file, runs every entry whose cipher suite the
//! provider supports (`crypto.supports(..)` is `Ok`) and counts the entries of
//! all other suites as skipped. What a "case" is differs per file and is
//! documented on each runner; skipped entries are counted in the same unit
//! (the number of cases they would have produced). Any mismatch or provider
//! error panics with the file, suite, entry index and the value concerned.
//!
//! This file is meant to be included from an integration test, e.g.
//! `#[path = "common/mls_kat.rs"] mod mls_kat;`, and contains no `#[test]`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Display;
use std::ops::Deref;

use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{
    AeadType, Ciphersuite, CryptoError, HashType, HpkeCiphertext, SignatureScheme,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

// ---------------------------------------------------------------------------
// Counting and reporting
// ---------------------------------------------------------------------------

/// Per-suite counts of executed and skipped cases for one vector file.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Cases that were executed (and passed), keyed by cipher suite id.
    pub ran: BTreeMap<u16, usize>,
    /// Cases that were not executed because the provider does not support the
    /// suite, keyed by cipher suite id.
    pub skipped: BTreeMap<u16, usize>,
}

impl Counts {
    /// Total number of executed cases over all suites.
    pub fn total_ran(&self) -> usize {
        self.ran.values().sum()
    }

    /// Total number of skipped cases over all suites.
    pub fn total_skipped(&self) -> usize {
        self.skipped.values().sum()
    }

    /// Print one line per suite and panic if nothing at all was executed.
    pub fn report_and_check(&self, file: &str) {
        let mut suites: Vec<u16> = self
            .ran
            .keys()
            .chain(self.skipped.keys())
            .copied()
            .collect();
        suites.sort_unstable();
        suites.dedup();
        for suite in suites {
            let ran = self.ran.get(&suite).copied().unwrap_or(0);
            let skipped = self.skipped.get(&suite).copied().unwrap_or(0);
            if skipped == 0 {
                println!("{file} suite 0x{suite:04x}: {ran} cases ran");
            } else {
                println!(
                    "{file} suite 0x{suite:04x}: {ran} cases ran, {skipped} cases skipped (suite not supported by provider)"
                );
            }
        }
        println!(
            "{file} total: {} cases ran, {} cases skipped",
            self.total_ran(),
            self.total_skipped()
        );
        assert!(
            self.total_ran() > 0,
            "{file}: no test case was executed at all"
        );
    }
}

// ---------------------------------------------------------------------------
// JSON loading
// ---------------------------------------------------------------------------

/// Hex-encoded byte string from the JSON vectors.
#[derive(Debug, Clone)]
struct Hex(Vec<u8>);

impl Deref for Hex {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s)
            .map(Hex)
            .map_err(|e| serde::de::Error::custom(format!("invalid hex string {s:?}: {e}")))
    }
}

fn file_label(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

fn load<T: DeserializeOwned>(path: &str) -> Vec<T> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read test vector file {path}: {e}"));
    let entries: Vec<T> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("cannot parse test vector file {path}: {e}"));
    assert!(
        !entries.is_empty(),
        "test vector file {path} contains no entries"
    );
    entries
}

/// Common driver: load `path`, and for every entry either run it (if the
/// provider supports its suite) or count it as skipped.
///
/// `cases_of` says how many cases an entry consists of; `run` must return the
/// number of cases it actually checked, which is asserted to be the same.
fn run_file<C: OpenMlsCrypto, T: DeserializeOwned>(
    crypto: &C,
    path: &str,
    suite_of: fn(&T) -> u16,
    cases_of: fn(&T) -> usize,
    run: impl Fn(&Suite<'_, C>, &T) -> usize,
) -> Counts {
    let file = file_label(path);
    let mut counts = Counts::default();
    for (index, entry) in load::<T>(path).iter().enumerate() {
        let id = suite_of(entry);
        let expected_cases = cases_of(entry);
        assert!(
            expected_cases > 0,
            "{file} suite 0x{id:04x} entry #{index}: entry has no cases"
        );
        let supported = Ciphersuite::try_from(id)
            .ok()
            .filter(|cs| crypto.supports(*cs).is_ok());
        match supported {
            None => *counts.skipped.entry(id).or_default() += expected_cases,
            Some(cs) => {
                let suite = Suite {
                    crypto,
                    cs,
                    ctx: format!("{file} suite 0x{id:04x} entry #{index}"),
                };
                let done = run(&suite, entry);
                assert_eq!(
                    done, expected_cases,
                    "{}: runner checked {done} cases, expected {expected_cases}",
                    suite.ctx
                );
                *counts.ran.entry(id).or_default() += done;
            }
        }
    }
    counts
}

// ---------------------------------------------------------------------------
// TLS presentation language / QUIC varint codec (RFC 9420 §2.1.2)
// ---------------------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, n: usize) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&((n as u16) | 0x4000).to_be_bytes());
    } else if n < 1 << 30 {
        out.extend_from_slice(&((n as u32) | 0x8000_0000).to_be_bytes());
    } else {
        panic!("vector length {n} too large for an MLS varint");
    }
}

/// Append `opaque data<V>`.
fn put_v(out: &mut Vec<u8>, data: &[u8]) {
    put_varint(out, data.len());
    out.extend_from_slice(data);
}

/// Encode `opaque data<V>`.
fn v(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 4);
    put_v(&mut out, data);
    out
}

/// Minimal cursor over a byte string with TLS-style readers. Every read that
/// runs past the end (or any malformed input) panics with `ctx` and the field.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    ctx: String,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], ctx: impl Into<String>) -> Self {
        Reader {
            buf,
            pos: 0,
            ctx: ctx.into(),
        }
    }

    fn fail(&self, msg: impl Display) -> ! {
        panic!("{}: parse error at offset {}: {msg}", self.ctx, self.pos)
    }

    fn bytes(&mut self, n: usize, what: &str) -> &'a [u8] {
        if self.buf.len() - self.pos < n {
            self.fail(format_args!(
                "{what}: need {n} bytes, only {} left",
                self.buf.len() - self.pos
            ));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        out
    }

    fn u8(&mut self, what: &str) -> u8 {
        self.bytes(1, what)[0]
    }

    fn u16(&mut self, what: &str) -> u16 {
        u16::from_be_bytes(self.bytes(2, what).try_into().expect("2 bytes"))
    }

    fn u32(&mut self, what: &str) -> u32 {
        u32::from_be_bytes(self.bytes(4, what).try_into().expect("4 bytes"))
    }

    fn u64(&mut self, what: &str) -> u64 {
        u64::from_be_bytes(self.bytes(8, what).try_into().expect("8 bytes"))
    }

    fn varint(&mut self, what: &str) -> usize {
        let first = self.u8(what);
        let (len, mut value) = match first >> 6 {
            0 => (1, (first & 0x3f) as usize),
            1 => (2, (first & 0x3f) as usize),
            2 => (4, (first & 0x3f) as usize),
            _ => self.fail(format_args!("{what}: invalid varint prefix 0b11")),
        };
        for b in self.bytes(len - 1, what) {
            value = (value << 8) | *b as usize;
        }
        let minimal = match len {
            1 => true,
            2 => value >= 1 << 6,
            _ => value >= 1 << 14,
        };
        if !minimal {
            self.fail(format_args!(
                "{what}: non-minimal varint encoding of {value}"
            ));
        }
        value
    }

    /// Read `opaque data<V>` and return the payload.
    fn v(&mut self, what: &str) -> &'a [u8] {
        let n = self.varint(what);
        self.bytes(n, what)
    }

    /// Read a `u16` and fail if it is not `expected`.
    fn expect_u16(&mut self, expected: u16, what: &str) {
        let got = self.u16(what);
        if got != expected {
            self.fail(format_args!(
                "{what}: expected 0x{expected:04x}, got 0x{got:04x}"
            ));
        }
    }

    fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn pos(&self) -> usize {
        self.pos
    }

    /// The bytes consumed since position `start`.
    fn since(&self, start: usize) -> &'a [u8] {
        &self.buf[start..self.pos]
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Assert that all input was consumed.
    fn finish(&self) {
        if !self.is_empty() {
            self.fail(format_args!("{} trailing bytes", self.buf.len() - self.pos));
        }
    }
}

// ---------------------------------------------------------------------------
// MLS structures we need to walk over (RFC 9420)
// ---------------------------------------------------------------------------

const MLS10: u16 = 0x0001;
const WF_PUBLIC: u16 = 1;
const WF_PRIVATE: u16 = 2;
const WF_WELCOME: u16 = 3;
const WF_KEY_PACKAGE: u16 = 5;
const CT_APPLICATION: u8 = 1;
const CT_PROPOSAL: u8 = 2;
const CT_COMMIT: u8 = 3;
const SENDER_MEMBER: u8 = 1;

fn content_type_name(ct: u8) -> &'static str {
    match ct {
        CT_APPLICATION => "application",
        CT_PROPOSAL => "proposal",
        CT_COMMIT => "commit",
        _ => "unknown",
    }
}

/// Credential (only basic and x509 have a known layout).
fn skip_credential(r: &mut Reader) {
    match r.u16("credential_type") {
        1 => {
            r.v("basic credential identity");
        }
        2 => {
            r.v("x509 certificates");
        }
        t => r.fail(format_args!("unknown credential type {t}")),
    }
}

/// LeafNode; returns its signature_key and the offset (relative to the
/// reader) where the trailing `signature<V>` starts.
fn parse_leaf_node<'a>(r: &mut Reader<'a>) -> (&'a [u8], usize) {
    r.v("leaf_node.encryption_key");
    let signature_key = r.v("leaf_node.signature_key");
    skip_credential(r);
    for f in [
        "versions",
        "cipher_suites",
        "extensions",
        "proposals",
        "credentials",
    ] {
        r.v(&format!("leaf_node.capabilities.{f}"));
    }
    match r.u8("leaf_node_source") {
        1 => {
            r.u64("lifetime.not_before");
            r.u64("lifetime.not_after");
        }
        2 => {}
        3 => {
            r.v("leaf_node.parent_hash");
        }
        s => r.fail(format_args!("unknown leaf_node_source {s}")),
    }
    r.v("leaf_node.extensions");
    let sig_start = r.pos();
    r.v("leaf_node.signature");
    (signature_key, sig_start)
}

/// KeyPackage fields needed for verification.
struct KeyPackageInfo<'a> {
    cipher_suite: u16,
    /// Bytes of the KeyPackageTBS (everything but the final signature).
    tbs: &'a [u8],
    signature: &'a [u8],
    /// Bytes of the LeafNodeTBS (leaf node without its signature; for
    /// `key_package` leaves no group binding is appended).
    leaf_tbs: &'a [u8],
    leaf_signature: &'a [u8],
    signature_key: &'a [u8],
}

fn parse_key_package<'a>(r: &mut Reader<'a>) -> KeyPackageInfo<'a> {
    let start = r.pos();
    r.expect_u16(MLS10, "key_package.version");
    let cipher_suite = r.u16("key_package.cipher_suite");
    r.v("key_package.init_key");
    let leaf_start = r.pos();
    let (signature_key, leaf_sig_start) = parse_leaf_node(r);
    let leaf = r.since(leaf_start);
    let leaf_split = leaf_sig_start - leaf_start;
    let leaf_signature =
        Reader::new(&leaf[leaf_split..], "leaf signature").v("leaf_node.signature");
    r.v("key_package.extensions");
    let tbs = r.since(start);
    let signature = r.v("key_package.signature");
    KeyPackageInfo {
        cipher_suite,
        tbs,
        signature,
        leaf_tbs: &leaf[..leaf_split],
        leaf_signature,
        signature_key,
    }
}

fn skip_psk_id(r: &mut Reader) {
    match r.u8("psktype") {
        1 => {
            r.v("psk_id");
        }
        2 => {
            r.u8("resumption usage");
            r.v("psk_group_id");
            r.u64("psk_epoch");
        }
        t => r.fail(format_args!("unknown psktype {t}")),
    }
    r.v("psk_nonce");
}

fn skip_proposal(r: &mut Reader) {
    match r.u16("proposal_type") {
        1 => {
            parse_key_package(r);
        }
        2 => {
            parse_leaf_node(r);
        }
        3 => {
            r.u32("remove.removed");
        }
        4 => skip_psk_id(r),
        5 => {
            r.v("reinit.group_id");
            r.u16("reinit.version");
            r.u16("reinit.cipher_suite");
            r.v("reinit.extensions");
        }
        6 => {
            r.v("external_init.kem_output");
        }
        7 => {
            r.v("group_context_extensions.extensions");
        }
        t => r.fail(format_args!("unknown proposal type {t}")),
    }
}

fn skip_commit(r: &mut Reader) {
    r.v("commit.proposals");
    match r.u8("commit.path presence") {
        0 => {}
        1 => {
            parse_leaf_node(r);
            r.v("update_path.nodes");
        }
        p => r.fail(format_args!(
            "invalid optional<UpdatePath> presence byte {p}"
        )),
    }
}

/// Read the content of a FramedContent / PrivateMessageContent of the given
/// type. Returns (encoded content, payload): for application data the payload
/// is the application bytes without their length prefix, otherwise it is the
/// encoded Proposal / Commit itself.
fn read_content<'a>(r: &mut Reader<'a>, content_type: u8) -> (&'a [u8], &'a [u8]) {
    let start = r.pos();
    let payload = match content_type {
        CT_APPLICATION => r.v("application_data"),
        CT_PROPOSAL => {
            skip_proposal(r);
            r.since(start)
        }
        CT_COMMIT => {
            skip_commit(r);
            r.since(start)
        }
        t => r.fail(format_args!("unknown content type {t}")),
    };
    (r.since(start), payload)
}

fn read_sender(r: &mut Reader) -> (u8, Option<u32>) {
    match r.u8("sender_type") {
        t @ (1 | 2) => (t, Some(r.u32("sender index"))),
        t @ (3 | 4) => (t, None),
        t => r.fail(format_args!("unknown sender type {t}")),
    }
}

/// A parsed FramedContent (borrowed from its encoding).
struct FramedContent<'a> {
    encoded: &'a [u8],
    group_id: &'a [u8],
    epoch: u64,
    sender_type: u8,
    sender_index: Option<u32>,
    content_type: u8,
    payload: &'a [u8],
}

fn read_framed_content<'a>(r: &mut Reader<'a>) -> FramedContent<'a> {
    let start = r.pos();
    let group_id = r.v("group_id");
    let epoch = r.u64("epoch");
    let (sender_type, sender_index) = read_sender(r);
    r.v("authenticated_data");
    let content_type = r.u8("content_type");
    let (_, payload) = read_content(r, content_type);
    FramedContent {
        encoded: r.since(start),
        group_id,
        epoch,
        sender_type,
        sender_index,
        content_type,
        payload,
    }
}

/// Encode a FramedContent with a member sender.
fn encode_framed_content(
    group_id: &[u8],
    epoch: u64,
    leaf: u32,
    authenticated_data: &[u8],
    content_type: u8,
    content: &[u8],
) -> Vec<u8> {
    let mut out = v(group_id);
    out.extend_from_slice(&epoch.to_be_bytes());
    out.push(SENDER_MEMBER);
    out.extend_from_slice(&leaf.to_be_bytes());
    put_v(&mut out, authenticated_data);
    out.push(content_type);
    out.extend_from_slice(content);
    out
}

/// FramedContentTBS for a member (or new_member_commit) sender.
fn framed_content_tbs(wire_format: u16, framed_content: &[u8], group_context: &[u8]) -> Vec<u8> {
    let mut out = MLS10.to_be_bytes().to_vec();
    out.extend_from_slice(&wire_format.to_be_bytes());
    out.extend_from_slice(framed_content);
    out.extend_from_slice(group_context);
    out
}

/// GroupContext with empty extensions.
fn encode_group_context(
    suite: u16,
    group_id: &[u8],
    epoch: u64,
    tree_hash: &[u8],
    confirmed_transcript_hash: &[u8],
) -> Vec<u8> {
    let mut out = MLS10.to_be_bytes().to_vec();
    out.extend_from_slice(&suite.to_be_bytes());
    put_v(&mut out, group_id);
    out.extend_from_slice(&epoch.to_be_bytes());
    put_v(&mut out, tree_hash);
    put_v(&mut out, confirmed_transcript_hash);
    put_v(&mut out, &[]);
    out
}

// ---------------------------------------------------------------------------
// Suite-bound crypto helpers (RFC 9420 §5, §8, §9)
// ---------------------------------------------------------------------------

/// A provider bound to one cipher suite plus an error context string.
struct Suite<'a, C: OpenMlsCrypto> {
    crypto: &'a C,
    cs: Ciphersuite,
    ctx: String,
}

impl<C: OpenMlsCrypto> Suite<'_, C> {
    fn id(&self) -> u16 {
        self.cs.into()
    }

    fn fail(&self, msg: impl Display) -> ! {
        panic!("{}: {msg}", self.ctx)
    }

    fn ok<T>(&self, r: Result<T, CryptoError>, what: impl Display) -> T {
        r.unwrap_or_else(|e| self.fail(format_args!("{what} failed: {e:?}")))
    }

    fn check(&self, what: impl Display, expected: &[u8], got: &[u8]) {
        if expected != got {
            self.fail(format_args!(
                "{what} mismatch\n  expected: {}\n  got:      {}",
                hex::encode(expected),
                hex::encode(got)
            ));
        }
    }

    fn reader<'b>(&self, buf: &'b [u8], what: &str) -> Reader<'b> {
        Reader::new(buf, format!("{}: {what}", self.ctx))
    }

    fn hash_type(&self) -> HashType {
        self.cs.hash_algorithm()
    }
    fn aead(&self) -> AeadType {
        self.cs.aead_algorithm()
    }
    fn scheme(&self) -> SignatureScheme {
        self.cs.signature_algorithm()
    }
    /// KDF.Nh
    fn nh(&self) -> usize {
        self.cs.hash_length()
    }
    /// AEAD.Nk
    fn nk(&self) -> usize {
        self.cs.aead_key_length()
    }
    /// AEAD.Nn
    fn nn(&self) -> usize {
        self.cs.aead_nonce_length()
    }
    fn zeros(&self) -> Vec<u8> {
        vec![0; self.nh()]
    }

    fn hash(&self, data: &[u8], what: &str) -> Vec<u8> {
        self.ok(
            self.crypto.hash(self.hash_type(), data),
            format_args!("hash ({what})"),
        )
    }

    fn extract(&self, salt: &[u8], ikm: &[u8], what: &str) -> Vec<u8> {
        let out = self.ok(
            self.crypto.hkdf_extract(self.hash_type(), salt, ikm),
            format_args!("hkdf_extract ({what})"),
        );
        out.as_slice().to_vec()
    }

    fn mac(&self, key: &[u8], msg: &[u8], what: &str) -> Vec<u8> {
        let out = self.ok(
            self.crypto.hmac(self.hash_type(), key, msg),
            format_args!("hmac ({what})"),
        );
        out.as_slice().to_vec()
    }

    /// ExpandWithLabel(Secret, Label, Context, Length)
    fn expand_with_label(&self, secret: &[u8], label: &str, context: &[u8], len: usize) -> Vec<u8> {
        let len16 = u16::try_from(len)
            .unwrap_or_else(|_| self.fail(format_args!("ExpandWithLabel length {len} > u16")));
        let mut info = len16.to_be_bytes().to_vec();
        put_v(&mut info, format!("MLS 1.0 {label}").as_bytes());
        put_v(&mut info, context);
        let out = self.ok(
            self.crypto
                .hkdf_expand(self.hash_type(), secret, &info, len),
            format_args!("hkdf_expand (ExpandWithLabel {label:?})"),
        );
        if out.as_slice().len() != len {
            self.fail(format_args!(
                "hkdf_expand (ExpandWithLabel {label:?}) returned {} bytes, wanted {len}",
                out.as_slice().len()
            ));
        }
        out.as_slice().to_vec()
    }

    /// DeriveSecret(Secret, Label)
    fn derive_secret(&self, secret: &[u8], label: &str) -> Vec<u8> {
        self.expand_with_label(secret, label, &[], self.nh())
    }

    /// DeriveTreeSecret(Secret, Label, Generation, Length)
    fn derive_tree_secret(
        &self,
        secret: &[u8],
        label: &str,
        generation: u32,
        len: usize,
    ) -> Vec<u8> {
        self.expand_with_label(secret, label, &generation.to_be_bytes(), len)
    }

    /// RefHash(label, value)
    fn ref_hash(&self, label: &[u8], value: &[u8]) -> Vec<u8> {
        let mut input = v(label);
        put_v(&mut input, value);
        self.hash(&input, "RefHash")
    }

    /// SignWithLabel(SignatureKey, Label, Content)
    fn sign_with_label(&self, private: &[u8], label: &str, content: &[u8]) -> Vec<u8> {
        self.ok(
            self.crypto
                .sign(self.scheme(), &labeled(label, content), private),
            format_args!("sign (SignWithLabel {label:?})"),
        )
    }

    /// VerifyWithLabel(VerificationKey, Label, Content, Signature); panics if invalid.
    fn verify_with_label(
        &self,
        public: &[u8],
        label: &str,
        content: &[u8],
        sig: &[u8],
        what: &str,
    ) {
        self.ok(
            self.crypto
                .verify_signature(self.scheme(), &labeled(label, content), public, sig),
            format_args!("verify_signature of {what} (VerifyWithLabel {label:?})"),
        )
    }

    /// EncryptWithLabel(PublicKey, Label, Context, Plaintext)
    fn encrypt_with_label(
        &self,
        public: &[u8],
        label: &str,
        context: &[u8],
        pt: &[u8],
    ) -> HpkeCiphertext {
        self.ok(
            self.crypto.hpke_seal(
                self.cs.hpke_config(),
                public,
                &labeled(label, context),
                &[],
                pt,
            ),
            format_args!("hpke_seal (EncryptWithLabel {label:?})"),
        )
    }

    /// DecryptWithLabel(PrivateKey, Label, Context, KEMOutput, Ciphertext)
    fn decrypt_with_label(
        &self,
        private: &[u8],
        label: &str,
        context: &[u8],
        ct: &HpkeCiphertext,
    ) -> Vec<u8> {
        self.ok(
            self.crypto.hpke_open(
                self.cs.hpke_config(),
                ct,
                private,
                &labeled(label, context),
                &[],
            ),
            format_args!("hpke_open (DecryptWithLabel {label:?})"),
        )
    }

    fn aead_encrypt(&self, key: &[u8], nonce: &[u8], aad: &[u8], pt: &[u8], what: &str) -> Vec<u8> {
        self.ok(
            self.crypto.aead_encrypt(self.aead(), key, pt, nonce, aad),
            format_args!("aead_encrypt ({what})"),
        )
    }

    fn aead_decrypt(&self, key: &[u8], nonce: &[u8], aad: &[u8], ct: &[u8], what: &str) -> Vec<u8> {
        self.ok(
            self.crypto.aead_decrypt(self.aead(), key, ct, nonce, aad),
            format_args!("aead_decrypt ({what})"),
        )
    }

    /// tree_node_[leaf]_secret of a secret tree with `n_leaves` leaves rooted
    /// at `encryption_secret` (RFC 9420 §9; array-based tree of the smallest
    /// power-of-two width holding `n_leaves`).
    fn tree_leaf_secret(&self, encryption_secret: &[u8], n_leaves: u32, leaf: u32) -> Vec<u8> {
        if leaf >= n_leaves {
            self.fail(format_args!(
                "leaf index {leaf} out of range for {n_leaves} leaves"
            ));
        }
        let width = n_leaves.next_power_of_two();
        let mut level = width.trailing_zeros();
        let mut node = width - 1; // root
        let target = 2 * leaf;
        let mut secret = encryption_secret.to_vec();
        while level > 0 {
            let half = 1 << (level - 1);
            let (next, side) = if target < node {
                (node - half, "left")
            } else {
                (node + half, "right")
            };
            secret = self.expand_with_label(&secret, "tree", side.as_bytes(), self.nh());
            node = next;
            level -= 1;
        }
        assert_eq!(node, target, "secret tree descent did not end at the leaf");
        secret
    }

    /// (key, nonce) of the `ratchet` ("handshake" / "application") ratchet of
    /// a leaf at `generation`.
    fn ratchet_key_nonce(
        &self,
        leaf_secret: &[u8],
        ratchet: &str,
        generation: u32,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut secret = self.expand_with_label(leaf_secret, ratchet, &[], self.nh());
        for g in 0..generation {
            secret = self.derive_tree_secret(&secret, "secret", g, self.nh());
        }
        (
            self.derive_tree_secret(&secret, "key", generation, self.nk()),
            self.derive_tree_secret(&secret, "nonce", generation, self.nn()),
        )
    }

    /// sender_data_key / sender_data_nonce for a PrivateMessage ciphertext.
    fn sender_data_key_nonce(
        &self,
        sender_data_secret: &[u8],
        ciphertext: &[u8],
    ) -> (Vec<u8>, Vec<u8>) {
        let sample = &ciphertext[..ciphertext.len().min(self.nh())];
        (
            self.expand_with_label(sender_data_secret, "key", sample, self.nk()),
            self.expand_with_label(sender_data_secret, "nonce", sample, self.nn()),
        )
    }
}

/// SignContent / EncryptContext: `opaque label<V> = "MLS 1.0 " + Label;
/// opaque content<V>` (the two structs have the same layout).
fn labeled(label: &str, content: &[u8]) -> Vec<u8> {
    let mut out = v(format!("MLS 1.0 {label}").as_bytes());
    put_v(&mut out, content);
    out
}

fn xor_reuse_guard(nonce: &[u8], guard: &[u8]) -> Vec<u8> {
    let mut out = nonce.to_vec();
    for (n, g) in out.iter_mut().zip(guard) {
        *n ^= g;
    }
    out
}

// ---------------------------------------------------------------------------
// crypto-basics.json
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct CbRefHash {
    label: String,
    value: Hex,
    out: Hex,
}
#[derive(Deserialize)]
struct CbExpandWithLabel {
    secret: Hex,
    label: String,
    context: Hex,
    length: u16,
    out: Hex,
}
#[derive(Deserialize)]
struct CbDeriveSecret {
    secret: Hex,
    label: String,
    out: Hex,
}
#[derive(Deserialize)]
struct CbDeriveTreeSecret {
    secret: Hex,
    label: String,
    generation: u32,
    length: u16,
    out: Hex,
}
#[derive(Deserialize)]
struct CbSignWithLabel {
    #[serde(rename = "priv")]
    private: Hex,
    #[serde(rename = "pub")]
    public: Hex,
    content: Hex,
    label: String,
    signature: Hex,
}
#[derive(Deserialize)]
struct CbEncryptWithLabel {
    #[serde(rename = "priv")]
    private: Hex,
    #[serde(rename = "pub")]
    public: Hex,
    label: String,
    context: Hex,
    plaintext: Hex,
    kem_output: Hex,
    ciphertext: Hex,
}
#[derive(Deserialize)]
struct CryptoBasics {
    cipher_suite: u16,
    ref_hash: CbRefHash,
    expand_with_label: CbExpandWithLabel,
    derive_secret: CbDeriveSecret,
    derive_tree_secret: CbDeriveTreeSecret,
    sign_with_label: CbSignWithLabel,
    encrypt_with_label: CbEncryptWithLabel,
}

/// crypto-basics.json. A case is one of the six sub-tests of an entry
/// (ref_hash, expand_with_label, derive_secret, derive_tree_secret,
/// sign_with_label, encrypt_with_label), so 6 cases per entry.
///
/// sign_with_label: the vector signature must verify; a fresh signature made
/// with `priv` must verify too, and for the deterministic EdDSA schemes it must
/// equal the vector signature byte for byte. encrypt_with_label: the vector
/// ciphertext must open to `plaintext`; a fresh seal to `pub` must open again.
pub fn run_crypto_basics(crypto: &impl OpenMlsCrypto, path: &str) -> Counts {
    run_file(
        crypto,
        path,
        |t: &CryptoBasics| t.cipher_suite,
        |_| 6,
        |s, t| {
            let rh = &t.ref_hash;
            s.check(
                "ref_hash.out",
                &rh.out,
                &s.ref_hash(rh.label.as_bytes(), &rh.value),
            );

            let e = &t.expand_with_label;
            let out = s.expand_with_label(&e.secret, &e.label, &e.context, e.length.into());
            s.check("expand_with_label.out", &e.out, &out);

            let d = &t.derive_secret;
            s.check(
                "derive_secret.out",
                &d.out,
                &s.derive_secret(&d.secret, &d.label),
            );

            let d = &t.derive_tree_secret;
            let out = s.derive_tree_secret(&d.secret, &d.label, d.generation, d.length.into());
            s.check("derive_tree_secret.out", &d.out, &out);

            let sw = &t.sign_with_label;
            s.verify_with_label(
                &sw.public,
                &sw.label,
                &sw.content,
                &sw.signature,
                "sign_with_label.signature",
            );
            let mine = s.sign_with_label(&sw.private, &sw.label, &sw.content);
            s.verify_with_label(
                &sw.public,
                &sw.label,
                &sw.content,
                &mine,
                "own SignWithLabel signature",
            );
            if matches!(
                s.scheme(),
                SignatureScheme::ED25519 | SignatureScheme::ED448
            ) {
                s.check(
                    "sign_with_label: deterministic EdDSA signature",
                    &sw.signature,
                    &mine,
                );
            }
            // A signature over different content must not verify.
            let mut other = sw.content.to_vec();
            other.push(0);
            let bad = s.crypto.verify_signature(
                s.scheme(),
                &labeled(&sw.label, &other),
                &sw.public,
                &sw.signature,
            );
            if bad.is_ok() {
                s.fail("sign_with_label: signature verified over modified content");
            }

            let ew = &t.encrypt_with_label;
            let ct = HpkeCiphertext {
                kem_output: ew.kem_output.to_vec().into(),
                ciphertext: ew.ciphertext.to_vec().into(),
            };
            let pt = s.decrypt_with_label(&ew.private, &ew.label, &ew.context, &ct);
            s.check(
                "encrypt_with_label.plaintext (vector ciphertext)",
                &ew.plaintext,
                &pt,
            );
            let mine = s.encrypt_with_label(&ew.public, &ew.label, &ew.context, &ew.plaintext);
            let pt = s.decrypt_with_label(&ew.private, &ew.label, &ew.context, &mine);
            s.check(
                "encrypt_with_label.plaintext (own seal/open round trip)",
                &ew.plaintext,
                &pt,
            );
            6
        },
    )
}

// ---------------------------------------------------------------------------
// secret-tree.json
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct StSenderData {
    sender_data_secret: Hex,
    ciphertext: Hex,
    key: Hex,
    nonce: Hex,
}
#[derive(Deserialize)]
struct StLeafGeneration {
    generation: u32,
    handshake_key: Hex,
    handshake_nonce: Hex,
    application_key: Hex,
    application_nonce: Hex,
}
#[derive(Deserialize)]
struct SecretTree {
    cipher_suite: u16,
    sender_data: StSenderData,
    encryption_secret: Hex,
    leaves: Vec<Vec<StLeafGeneration>>,
}

/// secret-tree.json. Cases per entry: 1 for the sender-data key/nonce pair,
/// plus 1 per (leaf, generation) item, each of which checks the handshake
/// key+nonce and application key+nonce.
pub fn run_secret_tree(crypto: &impl OpenMlsCrypto, path: &str) -> Counts {
    run_file(
        crypto,
        path,
        |t: &SecretTree| t.cipher_suite,
        |t| 1 + t.leaves.iter().map(Vec::len).sum::<usize>(),
        |s, t| {
            let sd = &t.sender_data;
            let (key, nonce) = s.sender_data_key_nonce(&sd.sender_data_secret, &sd.ciphertext);
            s.check("sender_data.key", &sd.key, &key);
            s.check("sender_data.nonce", &sd.nonce, &nonce);
            let mut cases = 1;

            let n_leaves = u32::try_from(t.leaves.len()).expect("leaf count fits u32");
            for (leaf, generations) in t.leaves.iter().enumerate() {
                let leaf = leaf as u32;
                let leaf_secret = s.tree_leaf_secret(&t.encryption_secret, n_leaves, leaf);
                for g in generations {
                    let what = |v: &str| format!("leaf {leaf} generation {} {v}", g.generation);
                    let (key, nonce) = s.ratchet_key_nonce(&leaf_secret, "handshake", g.generation);
                    s.check(what("handshake_key"), &g.handshake_key, &key);
                    s.check(what("handshake_nonce"), &g.handshake_nonce, &nonce);
                    let (key, nonce) =
                        s.ratchet_key_nonce(&leaf_secret, "application", g.generation);
                    s.check(what("application_key"), &g.application_key, &key);
                    s.check(what("application_nonce"), &g.application_nonce, &nonce);
                    cases += 1;
                }
            }
            cases
        },
    )
}

// ---------------------------------------------------------------------------
// psk_secret.json
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct PskEntry {
    psk_id: Hex,
    psk: Hex,
    psk_nonce: Hex,
}
#[derive(Deserialize)]
struct PskSecret {
    cipher_suite: u16,
    psks: Vec<PskEntry>,
    psk_secret: Hex,
}

/// psk_secret.json. One case per entry (the final psk_secret for the entry's
/// list of external PSKs; the empty list must give the all-zero secret).
pub fn run_psk_secret(crypto: &impl OpenMlsCrypto, path: &str) -> Counts {
    run_file(
        crypto,
        path,
        |t: &PskSecret| t.cipher_suite,
        |_| 1,
        |s, t| {
            let count = u16::try_from(t.psks.len()).expect("PSK count fits u16");
            let mut psk_secret = s.zeros();
            for (index, p) in t.psks.iter().enumerate() {
                // PSKLabel { PreSharedKeyID id; uint16 index; uint16 count; }
                let mut label = vec![1u8]; // psktype = external
                put_v(&mut label, &p.psk_id);
                put_v(&mut label, &p.psk_nonce);
                label.extend_from_slice(&(index as u16).to_be_bytes());
                label.extend_from_slice(&count.to_be_bytes());
                let extracted = s.extract(&s.zeros(), &p.psk, "psk_extracted");
                let input = s.expand_with_label(&extracted, "derived psk", &label, s.nh());
                psk_secret = s.extract(&input, &psk_secret, "psk_secret");
            }
            s.check(
                format_args!("psk_secret ({} PSKs)", t.psks.len()),
                &t.psk_secret,
                &psk_secret,
            );
            1
        },
    )
}

// ---------------------------------------------------------------------------
// transcript-hashes.json
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct TranscriptHashes {
    cipher_suite: u16,
    confirmation_key: Hex,
    authenticated_content: Hex,
    interim_transcript_hash_before: Hex,
    confirmed_transcript_hash_after: Hex,
    interim_transcript_hash_after: Hex,
}

/// transcript-hashes.json. One case per entry, checking the confirmed
/// transcript hash, the confirmation tag carried in `authenticated_content`,
/// and the interim transcript hash.
///
/// `authenticated_content` is parsed field by field (wire_format,
/// FramedContent with a Commit, signature) to find where the trailing
/// `confirmation_tag<V>` starts.
pub fn run_transcript_hashes(crypto: &impl OpenMlsCrypto, path: &str) -> Counts {
    run_file(
        crypto,
        path,
        |t: &TranscriptHashes| t.cipher_suite,
        |_| 1,
        |s, t| {
            let ac = &t.authenticated_content;
            let mut r = s.reader(ac, "authenticated_content");
            let wire_format = r.u16("wire_format");
            if wire_format != WF_PUBLIC && wire_format != WF_PRIVATE {
                r.fail(format_args!("unexpected wire_format {wire_format}"));
            }
            let fc = read_framed_content(&mut r);
            if fc.content_type != CT_COMMIT {
                r.fail(format_args!(
                    "content type is {}, expected commit",
                    fc.content_type
                ));
            }
            r.v("signature");
            let tag_start = r.pos();
            let confirmation_tag = r.v("confirmation_tag");
            r.finish();

            let mut input = t.interim_transcript_hash_before.to_vec();
            input.extend_from_slice(&ac[..tag_start]); // ConfirmedTranscriptHashInput
            let confirmed = s.hash(&input, "confirmed transcript hash");
            s.check(
                "confirmed_transcript_hash_after",
                &t.confirmed_transcript_hash_after,
                &confirmed,
            );

            let tag = s.mac(&t.confirmation_key, &confirmed, "confirmation tag");
            s.check(
                "confirmation_tag in authenticated_content",
                confirmation_tag,
                &tag,
            );

            let mut input = confirmed.clone();
            input.extend_from_slice(&ac[tag_start..]); // InterimTranscriptHashInput
            let interim = s.hash(&input, "interim transcript hash");
            s.check(
                "interim_transcript_hash_after",
                &t.interim_transcript_hash_after,
                &interim,
            );
            1
        },
    )
}

// ---------------------------------------------------------------------------
// welcome.json
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct Welcome {
    cipher_suite: u16,
    init_priv: Hex,
    signer_pub: Hex,
    key_package: Hex,
    welcome: Hex,
}

/// welcome.json. One case per entry: find the secrets entry for the
/// KeyPackage's ref, HPKE-open the GroupSecrets with `init_priv`, derive the
/// welcome key/nonce (no PSKs), AEAD-open the GroupInfo, verify its signature
/// with `signer_pub`, and recompute its confirmation_tag from the key schedule
/// (joiner_secret -> epoch_secret -> confirmation_key). The KeyPackage's own
/// signature and its LeafNode signature are verified as well.
pub fn run_welcome(crypto: &impl OpenMlsCrypto, path: &str) -> Counts {
    run_file(
        crypto,
        path,
        |t: &Welcome| t.cipher_suite,
        |_| 1,
        |s, t| {
            // key_package is an MLSMessage carrying a KeyPackage.
            let mut r = s.reader(&t.key_package, "key_package MLSMessage");
            r.expect_u16(MLS10, "version");
            r.expect_u16(WF_KEY_PACKAGE, "wire_format");
            let kp_start = r.pos();
            let kp = parse_key_package(&mut r);
            let kp_bytes = r.since(kp_start);
            r.finish();
            if kp.cipher_suite != s.id() {
                s.fail(format_args!(
                    "key package has cipher suite 0x{:04x}",
                    kp.cipher_suite
                ));
            }
            s.verify_with_label(
                kp.signature_key,
                "KeyPackageTBS",
                kp.tbs,
                kp.signature,
                "KeyPackage",
            );
            s.verify_with_label(
                kp.signature_key,
                "LeafNodeTBS",
                kp.leaf_tbs,
                kp.leaf_signature,
                "KeyPackage LeafNode",
            );
            let kp_ref = s.ref_hash(b"MLS 1.0 KeyPackage Reference", kp_bytes);

            // Welcome, wrapped in an MLSMessage.
            let mut r = s.reader(&t.welcome, "welcome MLSMessage");
            r.expect_u16(MLS10, "version");
            r.expect_u16(WF_WELCOME, "wire_format");
            r.expect_u16(s.id(), "welcome.cipher_suite");
            let secrets = r.v("welcome.secrets");
            let encrypted_group_info = r.v("welcome.encrypted_group_info");
            r.finish();

            let mut matching = Vec::new();
            let mut sr = s.reader(secrets, "welcome.secrets");
            let mut n_secrets = 0;
            while !sr.is_empty() {
                let new_member = sr.v("new_member");
                let kem_output = sr.v("kem_output");
                let ciphertext = sr.v("ciphertext");
                n_secrets += 1;
                if new_member == kp_ref.as_slice() {
                    matching.push(HpkeCiphertext {
                        kem_output: kem_output.to_vec().into(),
                        ciphertext: ciphertext.to_vec().into(),
                    });
                }
            }
            if matching.len() != 1 {
                s.fail(format_args!(
                "expected exactly one of {n_secrets} welcome.secrets entries for KeyPackageRef {}, found {}",
                hex::encode(&kp_ref),
                matching.len()
            ));
            }
            let group_secrets =
                s.decrypt_with_label(&t.init_priv, "Welcome", encrypted_group_info, &matching[0]);

            let mut r = s.reader(&group_secrets, "GroupSecrets");
            let joiner_secret = r.v("joiner_secret");
            match r.u8("path_secret presence") {
                0 => {}
                1 => {
                    r.v("path_secret");
                }
                p => r.fail(format_args!(
                    "invalid optional<PathSecret> presence byte {p}"
                )),
            }
            if !r.v("psks").is_empty() {
                s.fail("GroupSecrets lists PSKs, but the welcome vectors assume none");
            }
            r.finish();

            // Key schedule with psk_secret = 0.
            let member_secret = s.extract(joiner_secret, &s.zeros(), "member secret");
            let welcome_secret = s.derive_secret(&member_secret, "welcome");
            let key = s.expand_with_label(&welcome_secret, "key", &[], s.nk());
            let nonce = s.expand_with_label(&welcome_secret, "nonce", &[], s.nn());
            let group_info = s.aead_decrypt(&key, &nonce, &[], encrypted_group_info, "GroupInfo");

            let mut r = s.reader(&group_info, "GroupInfo");
            let gc_start = r.pos();
            r.expect_u16(MLS10, "group_context.version");
            r.expect_u16(s.id(), "group_context.cipher_suite");
            r.v("group_context.group_id");
            r.u64("group_context.epoch");
            r.v("group_context.tree_hash");
            let confirmed_transcript_hash = r.v("group_context.confirmed_transcript_hash");
            r.v("group_context.extensions");
            let group_context = r.since(gc_start);
            r.v("group_info.extensions");
            let confirmation_tag = r.v("group_info.confirmation_tag");
            r.u32("group_info.signer");
            let tbs = r.since(0);
            let signature = r.v("group_info.signature");
            r.finish();
            s.verify_with_label(&t.signer_pub, "GroupInfoTBS", tbs, signature, "GroupInfo");

            let epoch_secret = s.expand_with_label(&member_secret, "epoch", group_context, s.nh());
            let confirmation_key = s.derive_secret(&epoch_secret, "confirm");
            let tag = s.mac(
                &confirmation_key,
                confirmed_transcript_hash,
                "confirmation tag",
            );
            s.check("GroupInfo.confirmation_tag", confirmation_tag, &tag);
            1
        },
    )
}

// ---------------------------------------------------------------------------
// message-protection.json
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct MessageProtection {
    cipher_suite: u16,
    group_id: Hex,
    epoch: u64,
    tree_hash: Hex,
    confirmed_transcript_hash: Hex,
    signature_priv: Hex,
    signature_pub: Hex,
    encryption_secret: Hex,
    sender_data_secret: Hex,
    membership_key: Hex,
    proposal: Hex,
    proposal_pub: Hex,
    proposal_priv: Hex,
    commit: Hex,
    commit_pub: Hex,
    commit_priv: Hex,
    application: Hex,
    application_priv: Hex,
}

/// Number of leaves of the group in message-protection.json.
const MP_LEAVES: u32 = 2;
/// Leaf index of the sender in message-protection.json.
const MP_SENDER: u32 = 1;

/// Group state shared by all messages of one message-protection entry.
struct MpGroup<'t> {
    t: &'t MessageProtection,
    group_context: Vec<u8>,
}

/// What an unprotected message turned out to be.
struct Unprotected {
    content_type: u8,
    sender: u32,
    /// Proposal / Commit encoding, or the raw application data.
    payload: Vec<u8>,
}

impl MpGroup<'_> {
    fn check_group(
        &self,
        s: &Suite<'_, impl OpenMlsCrypto>,
        what: &str,
        group_id: &[u8],
        epoch: u64,
    ) {
        s.check(format_args!("{what}: group_id"), &self.t.group_id, group_id);
        if epoch != self.t.epoch {
            s.fail(format_args!(
                "{what}: epoch {epoch}, expected {}",
                self.t.epoch
            ));
        }
    }

    /// Decrypt and verify an MLSMessage(PrivateMessage).
    fn unprotect_private(
        &self,
        s: &Suite<'_, impl OpenMlsCrypto>,
        msg: &[u8],
        what: &str,
    ) -> Unprotected {
        let t = self.t;
        let mut r = s.reader(msg, what);
        r.expect_u16(MLS10, "version");
        r.expect_u16(WF_PRIVATE, "wire_format");
        let group_id = r.v("group_id");
        let epoch = r.u64("epoch");
        let content_type = r.u8("content_type");
        let authenticated_data = r.v("authenticated_data");
        let encrypted_sender_data = r.v("encrypted_sender_data");
        let ciphertext = r.v("ciphertext");
        r.finish();
        self.check_group(s, what, group_id, epoch);

        // Sender data.
        let (sd_key, sd_nonce) = s.sender_data_key_nonce(&t.sender_data_secret, ciphertext);
        let mut sd_aad = v(group_id);
        sd_aad.extend_from_slice(&epoch.to_be_bytes());
        sd_aad.push(content_type);
        let sender_data = s.aead_decrypt(
            &sd_key,
            &sd_nonce,
            &sd_aad,
            encrypted_sender_data,
            &format!("{what}: sender data"),
        );
        let mut sr = s.reader(&sender_data, &format!("{what}: SenderData"));
        let leaf = sr.u32("leaf_index");
        let generation = sr.u32("generation");
        let reuse_guard = sr.bytes(4, "reuse_guard");
        sr.finish();

        // Content.
        let ratchet = if content_type == CT_APPLICATION {
            "application"
        } else {
            "handshake"
        };
        let leaf_secret = s.tree_leaf_secret(&t.encryption_secret, MP_LEAVES, leaf);
        let (key, nonce) = s.ratchet_key_nonce(&leaf_secret, ratchet, generation);
        let nonce = xor_reuse_guard(&nonce, reuse_guard);
        let mut aad = v(group_id);
        aad.extend_from_slice(&epoch.to_be_bytes());
        aad.push(content_type);
        put_v(&mut aad, authenticated_data);
        let plaintext = s.aead_decrypt(&key, &nonce, &aad, ciphertext, &format!("{what}: content"));

        let mut pr = s.reader(&plaintext, &format!("{what}: PrivateMessageContent"));
        let (content, payload) = read_content(&mut pr, content_type);
        let signature = pr.v("signature");
        if content_type == CT_COMMIT {
            pr.v("confirmation_tag");
        }
        if pr.rest().iter().any(|b| *b != 0) {
            s.fail(format_args!(
                "{what}: non-zero padding in PrivateMessageContent"
            ));
        }

        let fc = encode_framed_content(
            group_id,
            epoch,
            leaf,
            authenticated_data,
            content_type,
            content,
        );
        let tbs = framed_content_tbs(WF_PRIVATE, &fc, &self.group_context);
        s.verify_with_label(&t.signature_pub, "FramedContentTBS", &tbs, signature, what);
        Unprotected {
            content_type,
            sender: leaf,
            payload: payload.to_vec(),
        }
    }

    /// Verify an MLSMessage(PublicMessage): signature and membership tag.
    fn unprotect_public(
        &self,
        s: &Suite<'_, impl OpenMlsCrypto>,
        msg: &[u8],
        what: &str,
    ) -> Unprotected {
        let t = self.t;
        let mut r = s.reader(msg, what);
        r.expect_u16(MLS10, "version");
        r.expect_u16(WF_PUBLIC, "wire_format");
        let fc = read_framed_content(&mut r);
        let auth_start = r.pos();
        let signature = r.v("signature");
        if fc.content_type == CT_COMMIT {
            r.v("confirmation_tag");
        }
        let auth = r.since(auth_start);
        if fc.sender_type != SENDER_MEMBER {
            s.fail(format_args!(
                "{what}: sender type {} is not member",
                fc.sender_type
            ));
        }
        let membership_tag = r.v("membership_tag");
        r.finish();
        self.check_group(s, what, fc.group_id, fc.epoch);

        let tbs = framed_content_tbs(WF_PUBLIC, fc.encoded, &self.group_context);
        s.verify_with_label(&t.signature_pub, "FramedContentTBS", &tbs, signature, what);
        let mut tbm = tbs;
        tbm.extend_from_slice(auth);
        let tag = s.mac(&t.membership_key, &tbm, &format!("{what}: membership tag"));
        s.check(format_args!("{what}: membership_tag"), membership_tag, &tag);
        Unprotected {
            content_type: fc.content_type,
            sender: fc.sender_index.expect("member sender has an index"),
            payload: fc.payload.to_vec(),
        }
    }

    /// Signature over a FramedContent from MP_SENDER, plus the auth data
    /// (a dummy confirmation tag for commits).
    fn sign_content(
        &self,
        s: &Suite<'_, impl OpenMlsCrypto>,
        wire_format: u16,
        authenticated_data: &[u8],
        content_type: u8,
        content: &[u8],
    ) -> (Vec<u8>, Vec<u8>) {
        let t = self.t;
        let fc = encode_framed_content(
            &t.group_id,
            t.epoch,
            MP_SENDER,
            authenticated_data,
            content_type,
            content,
        );
        let tbs = framed_content_tbs(wire_format, &fc, &self.group_context);
        let mut auth = v(&s.sign_with_label(&t.signature_priv, "FramedContentTBS", &tbs));
        if content_type == CT_COMMIT {
            put_v(&mut auth, &vec![0xc7; s.nh()]);
        }
        (fc, auth)
    }

    /// Build our own MLSMessage(PrivateMessage) from MP_SENDER.
    fn protect_private(
        &self,
        s: &Suite<'_, impl OpenMlsCrypto>,
        content_type: u8,
        content: &[u8],
        generation: u32,
    ) -> Vec<u8> {
        let t = self.t;
        let authenticated_data = b"mls-kat round trip";
        let reuse_guard = [0x5a, 0xa5, 0x0f, 0xf0];
        let (_, auth) = self.sign_content(s, WF_PRIVATE, authenticated_data, content_type, content);

        let mut plaintext = content.to_vec();
        plaintext.extend_from_slice(&auth);
        plaintext.extend_from_slice(&[0; 7]); // padding

        let ratchet = if content_type == CT_APPLICATION {
            "application"
        } else {
            "handshake"
        };
        let leaf_secret = s.tree_leaf_secret(&t.encryption_secret, MP_LEAVES, MP_SENDER);
        let (key, nonce) = s.ratchet_key_nonce(&leaf_secret, ratchet, generation);
        let nonce = xor_reuse_guard(&nonce, &reuse_guard);
        let mut aad = v(&t.group_id);
        aad.extend_from_slice(&t.epoch.to_be_bytes());
        aad.push(content_type);
        put_v(&mut aad, authenticated_data);
        let ciphertext =
            s.aead_encrypt(&key, &nonce, &aad, &plaintext, "own PrivateMessage content");

        let mut sender_data = MP_SENDER.to_be_bytes().to_vec();
        sender_data.extend_from_slice(&generation.to_be_bytes());
        sender_data.extend_from_slice(&reuse_guard);
        let (sd_key, sd_nonce) = s.sender_data_key_nonce(&t.sender_data_secret, &ciphertext);
        let mut sd_aad = v(&t.group_id);
        sd_aad.extend_from_slice(&t.epoch.to_be_bytes());
        sd_aad.push(content_type);
        let encrypted_sender_data =
            s.aead_encrypt(&sd_key, &sd_nonce, &sd_aad, &sender_data, "own sender data");

        let mut msg = MLS10.to_be_bytes().to_vec();
        msg.extend_from_slice(&WF_PRIVATE.to_be_bytes());
        put_v(&mut msg, &t.group_id);
        msg.extend_from_slice(&t.epoch.to_be_bytes());
        msg.push(content_type);
        put_v(&mut msg, authenticated_data);
        put_v(&mut msg, &encrypted_sender_data);
        put_v(&mut msg, &ciphertext);
        msg
    }

    /// Build our own MLSMessage(PublicMessage) from MP_SENDER.
    fn protect_public(
        &self,
        s: &Suite<'_, impl OpenMlsCrypto>,
        content_type: u8,
        content: &[u8],
    ) -> Vec<u8> {
        let (fc, auth) = self.sign_content(s, WF_PUBLIC, b"", content_type, content);
        let mut tbm = framed_content_tbs(WF_PUBLIC, &fc, &self.group_context);
        tbm.extend_from_slice(&auth);
        let tag = s.mac(&self.t.membership_key, &tbm, "own membership tag");
        let mut msg = MLS10.to_be_bytes().to_vec();
        msg.extend_from_slice(&WF_PUBLIC.to_be_bytes());
        msg.extend_from_slice(&fc);
        msg.extend_from_slice(&auth);
        put_v(&mut msg, &tag);
        msg
    }

    fn expect(
        &self,
        s: &Suite<'_, impl OpenMlsCrypto>,
        what: &str,
        got: Unprotected,
        content_type: u8,
        payload: &[u8],
    ) {
        if got.content_type != content_type {
            s.fail(format_args!(
                "{what}: content type {}, expected {}",
                content_type_name(got.content_type),
                content_type_name(content_type)
            ));
        }
        if got.sender != MP_SENDER {
            s.fail(format_args!(
                "{what}: sender leaf {}, expected {MP_SENDER}",
                got.sender
            ));
        }
        s.check(format_args!("{what}: content"), payload, &got.payload);
    }
}

/// message-protection.json. Cases per entry (10):
/// * 5 vector messages: proposal_pub, commit_pub (signature, membership tag
///   and content) and proposal_priv, commit_priv, application_priv (sender
///   data and content decryption via the 2-leaf secret tree, signature,
///   content);
/// * 3 own PrivateMessages (proposal, commit, application) built with
///   aead_encrypt + sign and unprotected again by the same code;
/// * 2 own PublicMessages (proposal, commit) built with sign + hmac and
///   verified again.
pub fn run_message_protection(crypto: &impl OpenMlsCrypto, path: &str) -> Counts {
    run_file(
        crypto,
        path,
        |t: &MessageProtection| t.cipher_suite,
        |_| 10,
        |s, t| {
            let g = MpGroup {
                t,
                group_context: encode_group_context(
                    s.id(),
                    &t.group_id,
                    t.epoch,
                    &t.tree_hash,
                    &t.confirmed_transcript_hash,
                ),
            };
            // The expected raw values must themselves be well-formed.
            for (name, bytes, ct) in [
                ("proposal", &t.proposal, CT_PROPOSAL),
                ("commit", &t.commit, CT_COMMIT),
            ] {
                let mut r = s.reader(bytes, name);
                read_content(&mut r, ct);
                r.finish();
            }

            let mut cases = 0;
            for (what, msg, ct, payload) in [
                ("proposal_pub", &t.proposal_pub, CT_PROPOSAL, &t.proposal),
                ("commit_pub", &t.commit_pub, CT_COMMIT, &t.commit),
            ] {
                g.expect(s, what, g.unprotect_public(s, msg, what), ct, payload);
                cases += 1;
            }
            for (what, msg, ct, payload) in [
                ("proposal_priv", &t.proposal_priv, CT_PROPOSAL, &t.proposal),
                ("commit_priv", &t.commit_priv, CT_COMMIT, &t.commit),
                (
                    "application_priv",
                    &t.application_priv,
                    CT_APPLICATION,
                    &t.application,
                ),
            ] {
                g.expect(s, what, g.unprotect_private(s, msg, what), ct, payload);
                cases += 1;
            }

            let app_content = v(&t.application);
            for (what, ct, content, payload, generation) in [
                (
                    "own proposal PrivateMessage",
                    CT_PROPOSAL,
                    &t.proposal[..],
                    &t.proposal[..],
                    3,
                ),
                (
                    "own commit PrivateMessage",
                    CT_COMMIT,
                    &t.commit[..],
                    &t.commit[..],
                    4,
                ),
                (
                    "own application PrivateMessage",
                    CT_APPLICATION,
                    &app_content[..],
                    &t.application[..],
                    5,
                ),
            ] {
                let msg = g.protect_private(s, ct, content, generation);
                g.expect(s, what, g.unprotect_private(s, &msg, what), ct, payload);
                cases += 1;
            }
            for (what, ct, content) in [
                ("own proposal PublicMessage", CT_PROPOSAL, &t.proposal),
                ("own commit PublicMessage", CT_COMMIT, &t.commit),
            ] {
                let msg = g.protect_public(s, ct, content);
                g.expect(s, what, g.unprotect_public(s, &msg, what), ct, content);
                cases += 1;
            }
            cases
        },
    )
}
