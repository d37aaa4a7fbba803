//! RFC 9420 KeyPackages on the wire (§10, §7.2, §5.3), parsed by polymls
//! itself: OpenMLS cannot decode a KeyPackage of a suite its enum does not
//! know, such as 0xF110.
//!
//! The parser keeps the byte ranges the signatures cover (`KeyPackageTBS`,
//! `LeafNodeTBS`), so verification signs exactly what was sent. Every
//! malformed input is an error: truncation, trailing bytes, a length not in
//! its shortest form, an unknown credential type or leaf node source.

use std::fmt;

/// Why bytes are not a KeyPackage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedKeyPackage(pub &'static str);

impl fmt::Display for MalformedKeyPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed KeyPackage: {}", self.0)
    }
}

impl std::error::Error for MalformedKeyPackage {}

type Result<T> = std::result::Result<T, MalformedKeyPackage>;

/// An MLS credential (RFC 9420 §5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// `basic`: an identity the application interprets.
    Basic(Vec<u8>),
    /// `x509`: a certificate chain, leaf first.
    X509(Vec<Vec<u8>>),
}

/// What a leaf node says it supports (RFC 9420 §7.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Protocol versions.
    pub versions: Vec<u16>,
    /// Cipher suites.
    pub cipher_suites: Vec<u16>,
    /// Extension types.
    pub extensions: Vec<u16>,
    /// Proposal types.
    pub proposals: Vec<u16>,
    /// Credential types.
    pub credentials: Vec<u16>,
}

/// An extension: its type and its opaque data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// The extension type.
    pub extension_type: u16,
    /// Its data, not interpreted here.
    pub data: Vec<u8>,
}

/// The RFC 9420 `last_resort` KeyPackage extension type
/// (draft-ietf-mls-extensions, as OpenMLS registers it).
pub const LAST_RESORT_EXTENSION: u16 = 0x000a;

/// The RFC 9420 credential types.
const BASIC: u16 = 1;
const X509: u16 = 2;
/// `leaf_node_source` values.
const KEY_PACKAGE: u8 = 1;
const UPDATE: u8 = 2;
const COMMIT: u8 = 3;

/// Where a leaf node comes from, with what that source carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeafNodeSource {
    /// In a KeyPackage, with its lifetime (seconds since the Unix epoch).
    KeyPackage {
        /// Not valid before.
        not_before: u64,
        /// Not valid after.
        not_after: u64,
    },
    /// From an Update proposal.
    Update,
    /// From a Commit, with its parent hash.
    Commit(Vec<u8>),
}

/// A parsed leaf node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafNode {
    /// The HPKE public key for the tree.
    pub encryption_key: Vec<u8>,
    /// The signature public key.
    pub signature_key: Vec<u8>,
    /// The credential.
    pub credential: Credential,
    /// The capabilities.
    pub capabilities: Capabilities,
    /// The source.
    pub source: LeafNodeSource,
    /// The leaf node's extensions.
    pub extensions: Vec<Extension>,
    /// `SignWithLabel(signature_key, "LeafNodeTBS", tbs)`.
    pub signature: Vec<u8>,
}

/// A parsed KeyPackage, with the bytes its signatures cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPackage {
    /// The protocol version (1 for MLS 1.0).
    pub version: u16,
    /// The cipher suite's code point.
    pub cipher_suite: u16,
    /// The HPKE public key Welcomes are encrypted to.
    pub init_key: Vec<u8>,
    /// The leaf node.
    pub leaf_node: LeafNode,
    /// The KeyPackage's extensions.
    pub extensions: Vec<Extension>,
    /// `SignWithLabel(leaf signature_key, "KeyPackageTBS", tbs)`.
    pub signature: Vec<u8>,
    /// The encoded `KeyPackageTBS`: everything before the signature.
    pub tbs: Vec<u8>,
    /// The encoded `LeafNodeTBS` (for a key_package source, the leaf node's
    /// fields before its signature).
    pub leaf_node_tbs: Vec<u8>,
}

impl KeyPackage {
    /// Parses exactly one TLS-encoded KeyPackage (RFC 9420 §10); trailing
    /// bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<KeyPackage> {
        let mut reader = Reader::new(bytes);
        let version = reader.u16()?;
        let cipher_suite = reader.u16()?;
        let init_key = reader.vector()?.to_vec();
        let leaf_start = reader.position();
        let (leaf_node, leaf_tbs_end) = LeafNode::read(&mut reader)?;
        let extensions = read_extensions(&mut reader)?;
        let tbs_end = reader.position();
        let signature = reader.vector()?.to_vec();
        if !reader.is_empty() {
            return Err(MalformedKeyPackage("trailing bytes"));
        }
        Ok(KeyPackage {
            version,
            cipher_suite,
            init_key,
            leaf_node,
            extensions,
            signature,
            tbs: bytes[..tbs_end].to_vec(),
            leaf_node_tbs: bytes[leaf_start..leaf_tbs_end].to_vec(),
        })
    }

    /// The TLS encoding of the parsed fields. For every `bytes` that
    /// [`KeyPackage::parse`] accepts, `parse(bytes)?.encode() == bytes`:
    /// nothing the signatures cover is left unparsed (the fuzz target
    /// `keypackage_validate` checks it).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.tbs.len() + self.signature.len() + 4);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.cipher_suite.to_be_bytes());
        write_vector(&mut out, &self.init_key)?;
        self.leaf_node.encode_into(&mut out)?;
        write_extensions(&mut out, &self.extensions)?;
        write_vector(&mut out, &self.signature)?;
        Ok(out)
    }

    /// Whether the KeyPackage carries the `last_resort` extension.
    pub fn is_last_resort(&self) -> bool {
        self.extensions
            .iter()
            .any(|e| e.extension_type == LAST_RESORT_EXTENSION)
    }

    /// The types of every extension it carries, its own and its leaf
    /// node's.
    pub fn extension_types(&self) -> Vec<u16> {
        self.extensions
            .iter()
            .chain(&self.leaf_node.extensions)
            .map(|e| e.extension_type)
            .collect()
    }
}

impl LeafNode {
    /// Reads a leaf node; also returns where its TBS part ends.
    fn read(reader: &mut Reader<'_>) -> Result<(LeafNode, usize)> {
        let encryption_key = reader.vector()?.to_vec();
        let signature_key = reader.vector()?.to_vec();
        let credential = match reader.u16()? {
            BASIC => Credential::Basic(reader.vector()?.to_vec()),
            X509 => {
                let mut chain = Reader::new(reader.vector()?);
                let mut certificates = Vec::new();
                while !chain.is_empty() {
                    certificates.push(chain.vector()?.to_vec());
                }
                Credential::X509(certificates)
            }
            _ => return Err(MalformedKeyPackage("unknown credential type")),
        };
        let capabilities = Capabilities {
            versions: read_u16s(reader)?,
            cipher_suites: read_u16s(reader)?,
            extensions: read_u16s(reader)?,
            proposals: read_u16s(reader)?,
            credentials: read_u16s(reader)?,
        };
        let source = match reader.u8()? {
            KEY_PACKAGE => LeafNodeSource::KeyPackage {
                not_before: reader.u64()?,
                not_after: reader.u64()?,
            },
            UPDATE => LeafNodeSource::Update,
            COMMIT => LeafNodeSource::Commit(reader.vector()?.to_vec()),
            _ => return Err(MalformedKeyPackage("unknown leaf node source")),
        };
        let extensions = read_extensions(reader)?;
        let tbs_end = reader.position();
        let signature = reader.vector()?.to_vec();
        Ok((
            LeafNode {
                encryption_key,
                signature_key,
                credential,
                capabilities,
                source,
                extensions,
                signature,
            },
            tbs_end,
        ))
    }
}

impl LeafNode {
    fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        write_vector(out, &self.encryption_key)?;
        write_vector(out, &self.signature_key)?;
        match &self.credential {
            Credential::Basic(identity) => {
                out.extend_from_slice(&BASIC.to_be_bytes());
                write_vector(out, identity)?;
            }
            Credential::X509(chain) => {
                out.extend_from_slice(&X509.to_be_bytes());
                let mut certificates = Vec::new();
                for certificate in chain {
                    write_vector(&mut certificates, certificate)?;
                }
                write_vector(out, &certificates)?;
            }
        }
        let capabilities = &self.capabilities;
        for list in [
            &capabilities.versions,
            &capabilities.cipher_suites,
            &capabilities.extensions,
            &capabilities.proposals,
            &capabilities.credentials,
        ] {
            let bytes: Vec<u8> = list.iter().flat_map(|v| v.to_be_bytes()).collect();
            write_vector(out, &bytes)?;
        }
        match &self.source {
            LeafNodeSource::KeyPackage {
                not_before,
                not_after,
            } => {
                out.push(KEY_PACKAGE);
                out.extend_from_slice(&not_before.to_be_bytes());
                out.extend_from_slice(&not_after.to_be_bytes());
            }
            LeafNodeSource::Update => out.push(UPDATE),
            LeafNodeSource::Commit(parent_hash) => {
                out.push(COMMIT);
                write_vector(out, parent_hash)?;
            }
        }
        write_extensions(out, &self.extensions)?;
        write_vector(out, &self.signature)
    }
}

fn write_extensions(out: &mut Vec<u8>, extensions: &[Extension]) -> Result<()> {
    let mut bytes = Vec::new();
    for extension in extensions {
        bytes.extend_from_slice(&extension.extension_type.to_be_bytes());
        write_vector(&mut bytes, &extension.data)?;
    }
    write_vector(out, &bytes)
}

fn read_u16s(reader: &mut Reader<'_>) -> Result<Vec<u16>> {
    let mut items = Reader::new(reader.vector()?);
    let mut out = Vec::new();
    while !items.is_empty() {
        out.push(items.u16()?);
    }
    Ok(out)
}

fn read_extensions(reader: &mut Reader<'_>) -> Result<Vec<Extension>> {
    let mut items = Reader::new(reader.vector()?);
    let mut out = Vec::new();
    while !items.is_empty() {
        out.push(Extension {
            extension_type: items.u16()?,
            data: items.vector()?.to_vec(),
        });
    }
    Ok(out)
}

/// The content `SignWithLabel(key, label, content)` signs (RFC 9420 §5.1.2):
/// `opaque label<V> = "MLS 1.0 " + label; opaque content<V>`.
pub fn sign_content(label: &str, content: &[u8]) -> Result<Vec<u8>> {
    let full_label = [b"MLS 1.0 ".as_slice(), label.as_bytes()].concat();
    let mut out = Vec::with_capacity(full_label.len() + content.len() + 8);
    write_vector(&mut out, &full_label)?;
    write_vector(&mut out, content)?;
    Ok(out)
}

/// Appends `bytes` as an MLS variable-length vector (RFC 9420 §2.1.2); 2^30
/// bytes or more cannot be encoded.
pub fn write_vector(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    let len = bytes.len();
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&((len as u16) | 0x4000).to_be_bytes());
    } else if len < 1 << 30 {
        out.extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
    } else {
        return Err(MalformedKeyPackage("a vector of 2^30 bytes or more"));
    }
    out.extend_from_slice(bytes);
    Ok(())
}

/// A cursor over TLS-encoded bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    fn position(&self) -> usize {
        self.at
    }

    fn is_empty(&self) -> bool {
        self.at == self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(MalformedKeyPackage("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// A variable-length vector: a 1-, 2- or 4-byte length in its shortest
    /// form (RFC 9420 §2.1.2), then that many bytes.
    fn vector(&mut self) -> Result<&'a [u8]> {
        let first = self.u8()?;
        let len = match first >> 6 {
            0 => (first & 0x3f) as usize,
            1 => {
                let len = u16::from_be_bytes([first & 0x3f, self.u8()?]) as usize;
                if len < 1 << 6 {
                    return Err(MalformedKeyPackage("length not in its shortest form"));
                }
                len
            }
            2 => {
                let rest = self.take(3)?;
                let len = u32::from_be_bytes([first & 0x3f, rest[0], rest[1], rest[2]]) as usize;
                if len < 1 << 14 {
                    return Err(MalformedKeyPackage("length not in its shortest form"));
                }
                len
            }
            _ => return Err(MalformedKeyPackage("invalid length prefix")),
        };
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_and_reject_long_forms() {
        for len in [0usize, 1, 63, 64, 16383, 16384] {
            let bytes = vec![7u8; len];
            let mut encoded = Vec::new();
            write_vector(&mut encoded, &bytes).expect("encodes");
            let mut reader = Reader::new(&encoded);
            assert_eq!(reader.vector().expect("decodes"), &bytes[..]);
            assert!(reader.is_empty());
        }
        // 5 as a 2-byte length, and a 0b11 prefix.
        assert!(Reader::new(&[0x40, 0x05, 1, 2, 3, 4, 5]).vector().is_err());
        assert!(Reader::new(&[0xc0, 0, 0, 0]).vector().is_err());
        assert!(Reader::new(&[0x05, 1, 2]).vector().is_err());
    }
}
