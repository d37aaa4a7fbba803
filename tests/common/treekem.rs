//! Independent verifier for the RFC 9420 interop `treekem` test vectors.
//!
//! OpenMLS's own TreeKEM KAT runner (`treesync::tests_and_kats::kats::kat_treekem`)
//! is `#[cfg(test)]` inside the openmls crate and cannot be called from
//! outside, so this module re-does the checks on top of the provider's
//! [`OpenMlsCrypto`] (hash, HKDF, HPKE seal/open, HPKE key derivation) plus
//! OpenMLS's public ratchet-tree verification (leaf signatures).
//!
//! Per entry:
//! 1. the ratchet tree parses and its leaf signatures verify (`RatchetTreeIn::into_verified`);
//! 2. every `leaves_private` entry is consistent with the tree: its leaf private key
//!    opens what is sealed to its leaf's public key, and each path secret derives the
//!    public key of the corresponding parent node;
//! 3. per `update_paths` entry: applying the update path gives `tree_hash_after`, and
//!    the parent-hash chain of the new path matches the sender's new leaf;
//!    every private leaf other than the sender decrypts the expected path secret,
//!    the derived node keys match the update path, and the commit secret matches;
//! 4. round trip: a fresh update path from the sender, sealed to the new tree with the
//!    provider, is decrypted by every private leaf to the same commit secret.

use std::collections::BTreeMap;

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{GroupId, OpenMlsCrypto, OpenMlsProvider, OpenMlsRand, RatchetTreeIn};
use openmls_traits::types::{Ciphersuite, HpkeCiphertext};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct TreeKemCase {
    pub cipher_suite: u16,
    #[serde(with = "hex::serde")]
    group_id: Vec<u8>,
    epoch: u64,
    #[serde(with = "hex::serde")]
    confirmed_transcript_hash: Vec<u8>,
    #[serde(with = "hex::serde")]
    ratchet_tree: Vec<u8>,
    leaves_private: Vec<LeafPrivate>,
    update_paths: Vec<PathCase>,
}

#[derive(Deserialize)]
struct LeafPrivate {
    index: u32,
    #[serde(with = "hex::serde")]
    encryption_priv: Vec<u8>,
    path_secrets: Vec<NodeSecret>,
}

#[derive(Deserialize)]
struct NodeSecret {
    node: u32,
    #[serde(with = "hex::serde")]
    path_secret: Vec<u8>,
}

#[derive(Deserialize)]
struct PathCase {
    sender: u32,
    #[serde(with = "hex::serde")]
    update_path: Vec<u8>,
    path_secrets: Vec<Option<String>>,
    #[serde(with = "hex::serde")]
    commit_secret: Vec<u8>,
    #[serde(with = "hex::serde")]
    tree_hash_after: Vec<u8>,
}

/// What one entry checked.
#[derive(Debug, Default, Clone, Copy)]
pub struct TreeKemStats {
    pub update_paths: usize,
    /// Path decryptions checked (vector paths and round-trip paths).
    pub decryptions: usize,
}

pub fn run_case(
    provider: &impl OpenMlsProvider,
    ciphersuite: Ciphersuite,
    case: TreeKemCase,
) -> TreeKemStats {
    let kem = Kem {
        crypto: provider.crypto(),
        ciphersuite,
    };
    let mut stats = TreeKemStats::default();

    // 1. Tree syntax and leaf signatures, via OpenMLS's public API.
    RatchetTreeIn::tls_deserialize_exact(&case.ratchet_tree)
        .unwrap_or_else(|e| panic!("decoding ratchet_tree: {e:?}"))
        .into_verified(
            ciphersuite,
            provider.crypto(),
            &GroupId::from_slice(&case.group_id),
        )
        .unwrap_or_else(|e| panic!("ratchet_tree does not verify: {e:?}"));
    let tree = Tree::parse(&case.ratchet_tree);

    // 2. Private state of each leaf.
    let receivers: Vec<Receiver> = case
        .leaves_private
        .iter()
        .map(|leaf| Receiver::new(&kem, &tree, leaf))
        .collect();

    for (p, path_case) in case.update_paths.iter().enumerate() {
        let ctx = format!("update_paths[{p}] (sender {})", path_case.sender);
        let sender = path_case.sender as usize;
        assert_eq!(
            path_case.path_secrets.len(),
            tree.leaf_count(),
            "{ctx}: path_secrets must have one entry per leaf"
        );

        // 3. Apply the path, check the tree hash, decrypt as every receiver.
        let update_path = UpdatePath::parse(&path_case.update_path);
        let new_tree = tree.apply_update_path(&kem, sender, &update_path, &ctx);
        let tree_hash_after = new_tree.tree_hash(&kem, new_tree.root());
        assert_eq!(
            hex::encode(&tree_hash_after),
            hex::encode(&path_case.tree_hash_after),
            "{ctx}: tree hash after applying the update path"
        );
        let group_context = group_context(
            ciphersuite,
            &case.group_id,
            case.epoch,
            &tree_hash_after,
            &case.confirmed_transcript_hash,
        );
        for receiver in receivers.iter().filter(|r| r.leaf != sender) {
            let ctx = format!("{ctx}, receiver leaf {}", receiver.leaf);
            let (path_secret, commit_secret) = new_tree.decrypt_path(
                &kem,
                sender,
                &update_path.nodes,
                &group_context,
                receiver,
                &ctx,
            );
            let expected = path_case.path_secrets[receiver.leaf]
                .as_deref()
                .unwrap_or_else(|| panic!("{ctx}: vector has no path secret for this leaf"));
            assert_eq!(hex::encode(&path_secret), expected, "{ctx}: path secret");
            assert_eq!(
                hex::encode(&commit_secret),
                hex::encode(&path_case.commit_secret),
                "{ctx}: commit secret"
            );
            stats.decryptions += 1;
        }

        // 4. Round trip with a fresh path sealed by the provider.
        let (fresh_nodes, fresh_commit_secret) =
            new_tree.encrypt_fresh_path(&kem, provider.rand(), sender, &group_context);
        for receiver in receivers.iter().filter(|r| r.leaf != sender) {
            let ctx = format!("{ctx}, fresh path, receiver leaf {}", receiver.leaf);
            let (_, commit_secret) =
                new_tree.decrypt_path(&kem, sender, &fresh_nodes, &group_context, receiver, &ctx);
            assert_eq!(commit_secret, fresh_commit_secret, "{ctx}: commit secret");
            stats.decryptions += 1;
        }
        stats.update_paths += 1;
    }
    stats
}

// ---- key schedule pieces (RFC 9420 §8, §12.4.2) ----------------------------------------------

struct Kem<'a, C: OpenMlsCrypto> {
    crypto: &'a C,
    ciphersuite: Ciphersuite,
}

impl<C: OpenMlsCrypto> Kem<'_, C> {
    fn hash(&self, data: &[u8]) -> Vec<u8> {
        self.crypto
            .hash(self.ciphersuite.hash_algorithm(), data)
            .unwrap_or_else(|e| panic!("hash: {e:?}"))
    }

    /// DeriveSecret(secret, label) = ExpandWithLabel(secret, label, "", Nh).
    fn derive_secret(&self, secret: &[u8], label: &str) -> Vec<u8> {
        let length = self.ciphersuite.hash_length();
        let mut info = Vec::new();
        info.extend_from_slice(&(length as u16).to_be_bytes());
        put_vl(&mut info, format!("MLS 1.0 {label}").as_bytes());
        put_vl(&mut info, b"");
        self.crypto
            .hkdf_expand(self.ciphersuite.hash_algorithm(), secret, &info, length)
            .unwrap_or_else(|e| panic!("hkdf_expand: {e:?}"))
            .as_slice()
            .to_vec()
    }

    /// Node key pair from a path secret: (private, public).
    fn node_key_pair(&self, path_secret: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let node_secret = self.derive_secret(path_secret, "node");
        let key_pair = self
            .crypto
            .derive_hpke_keypair(self.ciphersuite.hpke_config(), &node_secret)
            .unwrap_or_else(|e| panic!("derive_hpke_keypair: {e:?}"));
        (key_pair.private.to_vec(), key_pair.public)
    }

    fn seal(&self, public_key: &[u8], group_context: &[u8], plaintext: &[u8]) -> HpkeCiphertext {
        self.crypto
            .hpke_seal(
                self.ciphersuite.hpke_config(),
                public_key,
                &encrypt_context(group_context),
                &[],
                plaintext,
            )
            .unwrap_or_else(|e| panic!("hpke_seal: {e:?}"))
    }

    fn open(
        &self,
        private_key: &[u8],
        group_context: &[u8],
        ciphertext: &HpkeCiphertext,
    ) -> Result<Vec<u8>, String> {
        self.crypto
            .hpke_open(
                self.ciphersuite.hpke_config(),
                ciphertext,
                private_key,
                &encrypt_context(group_context),
                &[],
            )
            .map_err(|e| format!("{e:?}"))
    }
}

/// EncryptContext { "MLS 1.0 UpdatePathNode", group_context }.
fn encrypt_context(group_context: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_vl(&mut out, b"MLS 1.0 UpdatePathNode");
    put_vl(&mut out, group_context);
    out
}

fn group_context(
    ciphersuite: Ciphersuite,
    group_id: &[u8],
    epoch: u64,
    tree_hash: &[u8],
    confirmed_transcript_hash: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&1u16.to_be_bytes()); // mls10
    out.extend_from_slice(&u16::from(ciphersuite).to_be_bytes());
    put_vl(&mut out, group_id);
    out.extend_from_slice(&epoch.to_be_bytes());
    put_vl(&mut out, tree_hash);
    put_vl(&mut out, confirmed_transcript_hash);
    put_vl(&mut out, b""); // no extensions
    out
}

// ---- receivers --------------------------------------------------------------------------------

/// A leaf's private keys, by node index.
struct Receiver {
    leaf: usize,
    private_keys: BTreeMap<usize, Vec<u8>>,
}

impl Receiver {
    fn new<C: OpenMlsCrypto>(kem: &Kem<'_, C>, tree: &Tree, leaf: &LeafPrivate) -> Self {
        let ctx = format!("leaves_private[leaf {}]", leaf.index);
        let leaf_node = 2 * leaf.index as usize;
        let public = tree
            .encryption_key(leaf_node)
            .unwrap_or_else(|| panic!("{ctx}: leaf is blank"));
        let probe = b"leaf key consistency probe";
        let sealed = kem.seal(public, b"", probe);
        assert_eq!(
            kem.open(&leaf.encryption_priv, b"", &sealed).as_deref(),
            Ok(&probe[..]),
            "{ctx}: encryption_priv does not match the leaf's encryption key"
        );
        let mut private_keys = BTreeMap::from([(leaf_node, leaf.encryption_priv.clone())]);
        for secret in &leaf.path_secrets {
            let node = secret.node as usize;
            let (private, public) = kem.node_key_pair(&secret.path_secret);
            let expected = tree
                .encryption_key(node)
                .unwrap_or_else(|| panic!("{ctx}: path secret for blank node {node}"));
            assert_eq!(
                hex::encode(&public),
                hex::encode(expected),
                "{ctx}: path secret for node {node} does not derive the node's key"
            );
            private_keys.insert(node, private);
        }
        Self {
            leaf: leaf.index as usize,
            private_keys,
        }
    }
}

// ---- ratchet tree -----------------------------------------------------------------------------

#[derive(Clone)]
enum Node {
    Leaf {
        /// The serialized LeafNode.
        bytes: Vec<u8>,
        encryption_key: Vec<u8>,
        /// Present iff leaf_node_source = commit.
        parent_hash: Option<Vec<u8>>,
    },
    Parent {
        encryption_key: Vec<u8>,
        parent_hash: Vec<u8>,
        unmerged_leaves: Vec<u32>,
    },
}

impl Node {
    fn encryption_key(&self) -> &[u8] {
        match self {
            Node::Leaf { encryption_key, .. } | Node::Parent { encryption_key, .. } => {
                encryption_key
            }
        }
    }

    fn serialize(&self) -> Vec<u8> {
        match self {
            Node::Leaf { bytes, .. } => bytes.clone(),
            Node::Parent {
                encryption_key,
                parent_hash,
                unmerged_leaves,
            } => {
                let mut out = Vec::new();
                put_vl(&mut out, encryption_key);
                put_vl(&mut out, parent_hash);
                let leaves: Vec<u8> = unmerged_leaves
                    .iter()
                    .flat_map(|l| l.to_be_bytes())
                    .collect();
                put_vl(&mut out, &leaves);
                out
            }
        }
    }
}

/// Array representation (RFC 9420 Appendix C), padded to a full binary tree.
#[derive(Clone)]
struct Tree {
    nodes: Vec<Option<Node>>,
}

impl Tree {
    fn parse(bytes: &[u8]) -> Self {
        let mut outer = Reader::new(bytes);
        let mut reader = Reader::new(outer.vl());
        outer.finish("ratchet_tree");
        let mut nodes = Vec::new();
        while !reader.is_empty() {
            let node = match reader.u8() {
                0 => None,
                1 => Some(match (nodes.len() % 2, reader.u8()) {
                    (0, 1) => parse_leaf_node(&mut reader),
                    (1, 2) => {
                        let encryption_key = reader.vl().to_vec();
                        let parent_hash = reader.vl().to_vec();
                        let mut leaves = Reader::new(reader.vl());
                        let mut unmerged_leaves = Vec::new();
                        while !leaves.is_empty() {
                            unmerged_leaves.push(leaves.u32());
                        }
                        Node::Parent {
                            encryption_key,
                            parent_hash,
                            unmerged_leaves,
                        }
                    }
                    (parity, node_type) => panic!(
                        "ratchet_tree: node {} has node type {node_type} (parity {parity})",
                        nodes.len()
                    ),
                }),
                other => panic!("ratchet_tree: bad optional<Node> presence byte {other}"),
            };
            nodes.push(node);
        }
        assert!(nodes.len() % 2 == 1, "ratchet_tree: even number of nodes");
        let width = 2 * nodes.len().div_ceil(2).next_power_of_two() - 1;
        nodes.resize(width, None);
        Self { nodes }
    }

    fn leaf_count(&self) -> usize {
        self.nodes.len().div_ceil(2)
    }

    fn root(&self) -> usize {
        self.leaf_count() - 1
    }

    fn encryption_key(&self, node: usize) -> Option<&[u8]> {
        self.nodes.get(node)?.as_ref().map(Node::encryption_key)
    }

    fn resolution(&self, x: usize) -> Vec<usize> {
        match &self.nodes[x] {
            Some(Node::Leaf { .. }) => vec![x],
            Some(Node::Parent {
                unmerged_leaves, ..
            }) => std::iter::once(x)
                .chain(unmerged_leaves.iter().map(|&l| 2 * l as usize))
                .collect(),
            None if level(x) == 0 => vec![],
            None => {
                let mut resolution = self.resolution(left(x));
                resolution.extend(self.resolution(right(x)));
                resolution
            }
        }
    }

    /// (parent, copath child) pairs along the sender's filtered direct path, bottom-up.
    fn filtered_direct_path(&self, leaf: usize) -> Vec<(usize, usize)> {
        let root = self.root();
        let mut path = Vec::new();
        let mut x = 2 * leaf;
        while x != root {
            let p = parent(x);
            let copath_child = sibling(x);
            if !self.resolution(copath_child).is_empty() {
                path.push((p, copath_child));
            }
            x = p;
        }
        path
    }

    fn tree_hash<C: OpenMlsCrypto>(&self, kem: &Kem<'_, C>, x: usize) -> Vec<u8> {
        let mut input = Vec::new();
        let node = self.nodes[x].as_ref().map(Node::serialize);
        if level(x) == 0 {
            input.push(1);
            input.extend_from_slice(&((x / 2) as u32).to_be_bytes());
            put_optional(&mut input, node.as_deref());
        } else {
            input.push(2);
            put_optional(&mut input, node.as_deref());
            put_vl(&mut input, &self.tree_hash(kem, left(x)));
            put_vl(&mut input, &self.tree_hash(kem, right(x)));
        }
        kem.hash(&input)
    }

    /// RFC 9420 §7.5 (merge the UpdatePath) and §7.9 (parent hashes).
    fn apply_update_path<C: OpenMlsCrypto>(
        &self,
        kem: &Kem<'_, C>,
        sender: usize,
        update_path: &UpdatePath,
        ctx: &str,
    ) -> Tree {
        let filtered = self.filtered_direct_path(sender);
        assert_eq!(
            update_path.nodes.len(),
            filtered.len(),
            "{ctx}: update path length differs from the filtered direct path"
        );
        let mut new = self.clone();
        let mut x = 2 * sender;
        while x != self.root() {
            x = parent(x);
            new.nodes[x] = None;
        }
        for ((p, _), path_node) in filtered.iter().zip(&update_path.nodes) {
            new.nodes[*p] = Some(Node::Parent {
                encryption_key: path_node.encryption_key.clone(),
                parent_hash: Vec::new(),
                unmerged_leaves: Vec::new(),
            });
        }
        new.nodes[2 * sender] = Some(update_path.leaf_node.clone());

        // Parent hashes, top-down: each node's parent_hash covers the next
        // filtered node up and the tree hash of that node's copath child.
        let mut parent_hash = Vec::new(); // of the topmost filtered node
        for (i, &(p, copath_child)) in filtered.iter().enumerate().rev() {
            if let Some(Node::Parent {
                parent_hash: slot, ..
            }) = &mut new.nodes[p]
            {
                *slot = parent_hash.clone();
            }
            let mut input = Vec::new();
            put_vl(&mut input, &update_path.nodes[i].encryption_key);
            put_vl(&mut input, &parent_hash);
            put_vl(&mut input, &new.tree_hash(kem, copath_child));
            parent_hash = kem.hash(&input);
        }
        let Node::Leaf {
            parent_hash: leaf_parent_hash,
            ..
        } = &update_path.leaf_node
        else {
            unreachable!("parsed as leaf")
        };
        assert_eq!(
            leaf_parent_hash.as_deref().map(hex::encode),
            Some(hex::encode(&parent_hash)),
            "{ctx}: parent hash in the sender's new leaf does not match the path"
        );
        new
    }

    /// Decrypts `path` (from `sender`) as `receiver`; returns the path secret
    /// at the lowest common ancestor and the commit secret. Checks that every
    /// derived node key matches the path's public keys.
    fn decrypt_path<C: OpenMlsCrypto>(
        &self,
        kem: &Kem<'_, C>,
        sender: usize,
        path: &[PathNode],
        group_context: &[u8],
        receiver: &Receiver,
        ctx: &str,
    ) -> (Vec<u8>, Vec<u8>) {
        let filtered = self.filtered_direct_path(sender);
        assert_eq!(path.len(), filtered.len(), "{ctx}: path length");
        let receiver_leaf = 2 * receiver.leaf;
        let k = filtered
            .iter()
            .position(|&(p, _)| in_subtree(p, receiver_leaf))
            .unwrap_or_else(|| panic!("{ctx}: receiver is not below the sender's filtered path"));
        let resolution = self.resolution(filtered[k].1);
        let ciphertexts = &path[k].encrypted_path_secret;
        assert_eq!(
            ciphertexts.len(),
            resolution.len(),
            "{ctx}: one ciphertext per node of the copath resolution"
        );
        let (position, private_key) = resolution
            .iter()
            .enumerate()
            .find_map(|(i, node)| receiver.private_keys.get(node).map(|key| (i, key)))
            .unwrap_or_else(|| {
                panic!("{ctx}: receiver holds no key for copath resolution {resolution:?}")
            });
        let first_secret = kem
            .open(private_key, group_context, &ciphertexts[position])
            .unwrap_or_else(|e| panic!("{ctx}: HPKE open failed: {e}"));
        let mut secret = first_secret.clone();
        for (i, path_node) in path.iter().enumerate().skip(k) {
            let (_, public) = kem.node_key_pair(&secret);
            assert_eq!(
                hex::encode(&public),
                hex::encode(&path_node.encryption_key),
                "{ctx}: key derived for node {} differs from the update path",
                filtered[i].0
            );
            secret = kem.derive_secret(&secret, "path");
        }
        (first_secret, secret)
    }

    /// A fresh update path for `sender` (without leaf node), sealed to this
    /// tree's copath resolutions; returns it and its commit secret.
    fn encrypt_fresh_path<C: OpenMlsCrypto>(
        &self,
        kem: &Kem<'_, C>,
        rand: &impl OpenMlsRand,
        sender: usize,
        group_context: &[u8],
    ) -> (Vec<PathNode>, Vec<u8>) {
        let leaf_secret = rand
            .random_vec(kem.ciphersuite.hash_length())
            .unwrap_or_else(|e| panic!("random_vec: {e:?}"));
        let mut secret = kem.derive_secret(&leaf_secret, "path");
        let mut nodes = Vec::new();
        for (_, copath_child) in self.filtered_direct_path(sender) {
            let (_, encryption_key) = kem.node_key_pair(&secret);
            let encrypted_path_secret = self
                .resolution(copath_child)
                .into_iter()
                .map(|node| {
                    let public = self.encryption_key(node).expect("resolution is non-blank");
                    kem.seal(public, group_context, &secret)
                })
                .collect();
            nodes.push(PathNode {
                encryption_key,
                encrypted_path_secret,
            });
            secret = kem.derive_secret(&secret, "path");
        }
        (nodes, secret)
    }
}

// ---- tree math (RFC 9420 Appendix C) ---------------------------------------------------------

fn level(x: usize) -> u32 {
    x.trailing_ones()
}

fn left(x: usize) -> usize {
    x ^ (1 << (level(x) - 1))
}

fn right(x: usize) -> usize {
    x ^ (3 << (level(x) - 1))
}

fn parent(x: usize) -> usize {
    let k = level(x);
    let b = (x >> (k + 1)) & 1;
    (x | (1 << k)) ^ (b << (k + 1))
}

fn sibling(x: usize) -> usize {
    let p = parent(x);
    if x < p {
        right(p)
    } else {
        left(p)
    }
}

fn in_subtree(root: usize, x: usize) -> bool {
    let half = (1usize << level(root)) - 1;
    x + half >= root && x <= root + half
}

// ---- update path ------------------------------------------------------------------------------

struct PathNode {
    encryption_key: Vec<u8>,
    encrypted_path_secret: Vec<HpkeCiphertext>,
}

struct UpdatePath {
    leaf_node: Node,
    nodes: Vec<PathNode>,
}

impl UpdatePath {
    fn parse(bytes: &[u8]) -> Self {
        let mut reader = Reader::new(bytes);
        let leaf_node = parse_leaf_node(&mut reader);
        let mut nodes_reader = Reader::new(reader.vl());
        reader.finish("update_path");
        let mut nodes = Vec::new();
        while !nodes_reader.is_empty() {
            let encryption_key = nodes_reader.vl().to_vec();
            let mut ciphertexts = Reader::new(nodes_reader.vl());
            let mut encrypted_path_secret = Vec::new();
            while !ciphertexts.is_empty() {
                encrypted_path_secret.push(HpkeCiphertext {
                    kem_output: ciphertexts.vl().to_vec().into(),
                    ciphertext: ciphertexts.vl().to_vec().into(),
                });
            }
            nodes.push(PathNode {
                encryption_key,
                encrypted_path_secret,
            });
        }
        Self { leaf_node, nodes }
    }
}

/// Parses a LeafNode (RFC 9420 §7.2), keeping its exact bytes.
fn parse_leaf_node(reader: &mut Reader<'_>) -> Node {
    let start = reader.buf;
    let encryption_key = reader.vl().to_vec();
    reader.vl(); // signature_key
    reader.u16(); // credential_type
    reader.vl(); // credential content (identity or certificate chain)
    for _ in 0..5 {
        reader.vl(); // capabilities: versions, cipher_suites, extensions, proposals, credentials
    }
    let parent_hash = match reader.u8() {
        1 => {
            reader.u64(); // lifetime.not_before
            reader.u64(); // lifetime.not_after
            None
        }
        2 => None,
        3 => Some(reader.vl().to_vec()),
        other => panic!("leaf node: bad leaf_node_source {other}"),
    };
    reader.vl(); // extensions
    reader.vl(); // signature
    let consumed = start.len() - reader.buf.len();
    Node::Leaf {
        bytes: start[..consumed].to_vec(),
        encryption_key,
        parent_hash,
    }
}

// ---- TLS presentation language helpers (RFC 9420 §2.1.2 variable-length vectors) -----------

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn finish(&self, what: &str) {
        assert!(
            self.buf.is_empty(),
            "{what}: {} trailing bytes",
            self.buf.len()
        );
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(
            n <= self.buf.len(),
            "truncated input: need {n}, have {}",
            self.buf.len()
        );
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        head
    }

    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take(2).try_into().unwrap())
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take(4).try_into().unwrap())
    }

    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take(8).try_into().unwrap())
    }

    fn vl(&mut self) -> &'a [u8] {
        let first = self.u8();
        let length = match first >> 6 {
            0 => usize::from(first & 0x3f),
            1 => (usize::from(first & 0x3f) << 8) | usize::from(self.u8()),
            2 => {
                let rest = self.take(3);
                (usize::from(first & 0x3f) << 24)
                    | (usize::from(rest[0]) << 16)
                    | (usize::from(rest[1]) << 8)
                    | usize::from(rest[2])
            }
            _ => panic!("invalid variable-length vector prefix {first:#04x}"),
        };
        self.take(length)
    }
}

fn put_vl(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len();
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&((n as u16) | 0x4000).to_be_bytes());
    } else {
        assert!(n < 1 << 30, "vector too long");
        out.extend_from_slice(&((n as u32) | 0x8000_0000).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

fn put_optional(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(bytes);
        }
        None => out.push(0),
    }
}
