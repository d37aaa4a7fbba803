//! The PSKs that link send groups (draft-xue-distributed-mls-02, "DMLS
//! Commit"): exported from a send group at each epoch, stored as external
//! PSKs, proposed by the importing owner.

use openmls::prelude::{MlsGroup, OpenMlsProvider};
use openmls::schedule::{ExternalPsk, PreSharedKeyId, Psk};
use openmls_traits::storage::StorageProvider as _;
use zeroize::Zeroizing;

use super::DmlsError;

/// The exporter label of the draft.
const EXPORTER_LABEL: &str = "exporter-psk";

/// How many epochs of each send group keep their exported PSK (and, for
/// late application messages, their message secrets). A commit importing
/// an older epoch's PSK cannot be processed; the longer the window, the
/// longer a copy of the store opens those past secrets.
pub const RETAINED_EPOCHS: u64 = 32;

/// The draft's `psk_id` for `epoch` of the send group `group_id`: the epoch
/// as 8 bytes big-endian, then the group id.
pub fn psk_id(epoch: u64, group_id: &[u8]) -> Vec<u8> {
    [&epoch.to_be_bytes()[..], group_id].concat()
}

/// The external PSK id of `epoch` of `group_id`, with a fresh nonce.
pub(crate) fn import(
    provider: &impl OpenMlsProvider,
    group: &MlsGroup,
    group_id: &[u8],
    epoch: u64,
) -> Result<PreSharedKeyId, DmlsError> {
    PreSharedKeyId::new(
        group.ciphersuite(),
        provider.rand(),
        Psk::External(ExternalPsk::new(psk_id(epoch, group_id))),
    )
    .map_err(|e| DmlsError::OpenMls(e.to_string()))
}

/// Exports and stores the PSK of `group`'s current epoch.
pub(crate) fn export(provider: &impl OpenMlsProvider, group: &MlsGroup) -> Result<u64, DmlsError> {
    let epoch = group.epoch().as_u64();
    let id = psk_id(epoch, group.group_id().as_slice());
    let secret = Zeroizing::new(
        group
            .export_secret(
                provider.crypto(),
                EXPORTER_LABEL,
                &id,
                group.ciphersuite().hash_length(),
            )
            .map_err(|e| DmlsError::OpenMls(e.to_string()))?,
    );
    // The nonce is not stored (OpenMLS keys PSKs by their id alone).
    PreSharedKeyId::external(id, Vec::new())
        .store(provider, &secret)
        .map_err(|e| DmlsError::OpenMls(e.to_string()))?;
    Ok(epoch)
}

/// Erases the stored PSK of `epoch` of `group_id`.
pub(crate) fn forget(
    provider: &impl OpenMlsProvider,
    group_id: &[u8],
    epoch: u64,
) -> Result<(), DmlsError> {
    provider
        .storage()
        .delete_psk(&Psk::External(ExternalPsk::new(psk_id(epoch, group_id))))
        .map_err(|_| DmlsError::OpenMls("cannot erase a PSK".into()))
}
