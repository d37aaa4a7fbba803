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

/// `SHAKE256.LabeledDerive(ikm, label, context, out.len())` under
/// `suite_id` (draft-ietf-hpke-hpke §4, the one-stage KDFs of
/// draft-ietf-hpke-pq), where `ikm` and `context` are concatenations of
/// parts.
pub(crate) fn labeled_derive_shake256(
    suite_id: &[u8],
    ikm: &[&[u8]],
    label: &[u8],
    context: &[&[u8]],
    out: &mut [u8],
) -> Result<(), Error> {
    use sha3::digest::{ExtendableOutput, Update, XofReader};
    let label_length = u16::try_from(label.len()).map_err(|_| Error::InvalidLength)?;
    let out_length = u16::try_from(out.len()).map_err(|_| Error::OutputTooLong)?;
    let mut xof = sha3::Shake256::default();
    for part in ikm {
        xof.update(part);
    }
    xof.update(VERSION_LABEL);
    xof.update(suite_id);
    xof.update(&label_length.to_be_bytes());
    xof.update(label);
    xof.update(&out_length.to_be_bytes());
    for part in context {
        xof.update(part);
    }
    xof.finalize_xof().read(out);
    Ok(())
}
