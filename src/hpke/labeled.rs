//! RFC 9180's labeled derivations (§4): every HPKE and DHKEM secret is
//! derived through these two functions.

use crate::crypto::hash::Hash;
use crate::crypto::kdf::Secret;
use crate::Error;

const VERSION_LABEL: &[u8] = b"HPKE-v1";
const MAX_INFO_PARTS: usize = 4;

/// `LabeledExtract(salt, label, ikm)` under `suite_id`.
pub(crate) fn labeled_extract(
    kdf: Hash,
    suite_id: &[u8],
    salt: &[u8],
    label: &[u8],
    ikm: &[u8],
) -> Secret {
    kdf.extract(salt, &[VERSION_LABEL, suite_id, label, ikm])
}

/// `LabeledExpand(prk, label, info, out.len())` under `suite_id`, where
/// `info` is the concatenation of up to four parts (so callers never copy
/// e.g. `enc || pkR` into a buffer).
pub(crate) fn labeled_expand(
    kdf: Hash,
    suite_id: &[u8],
    prk: &[u8],
    label: &[u8],
    info: &[&[u8]],
    out: &mut [u8],
) -> Result<(), Error> {
    debug_assert!(info.len() <= MAX_INFO_PARTS);
    let length = u16::try_from(out.len())
        .map_err(|_| Error::OutputTooLong)?
        .to_be_bytes();
    let mut parts: [&[u8]; 4 + MAX_INFO_PARTS] = [&[]; 4 + MAX_INFO_PARTS];
    parts[..4].copy_from_slice(&[&length, VERSION_LABEL, suite_id, label]);
    parts[4..4 + info.len()].copy_from_slice(info);
    kdf.expand(prk, &parts[..4 + info.len()], out)
}
