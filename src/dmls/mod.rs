//! Distributed MLS (draft-xue-distributed-mls-02): group messaging without
//! a central Delivery Service, on OpenMLS 0.9 and the forward-secret store.
//!
//! Every participant owns a *send group*, an ordinary MLS group it created
//! and sits at leaf 0 of. Only the owner commits and sends application
//! messages there; the other members accept nothing else from it and may
//! send it proposals. With one committer per group no two commits compete
//! for an epoch, so a relay that only forwards (or a LAN) suffices, and
//! messages may arrive late, twice or out of order: [`Participant::receive`]
//! says when one must wait ([`DmlsError::NotYet`]).
//!
//! The draft's operations are methods of [`Participant`]: INIT
//! ([`Participant::add`] on a fresh send group), UPDATE
//! ([`Participant::update`]), COMMIT ([`Participant::commit`], which imports
//! a PSK exported from each other send group at the newest epoch seen),
//! PROTECT ([`Participant::protect`]) and UNPROTECT
//! ([`Participant::receive`]). Each runs in one store transaction, together
//! with the participant's own record, so a participant reopened from its
//! store ([`Participant::open`]) carries on.
//!
//! # The PSK link between send groups
//!
//! When a commit of Bob's send group starts epoch `k`, every member exports
//! `MLS-Exporter("exporter-psk", psk_id, KDF.Nh)` with `psk_id = k (8 bytes,
//! big-endian) || Bob's group id` and stores it as an external PSK under
//! `psk_id`. The draft writes the context as `"psk_id"`; polymls reads it as
//! the `psk_id` value, which binds the secret to the epoch and group it
//! names. Alice's COMMIT then proposes that PSK in her send group, so her
//! group's next epoch secret depends on Bob's epoch `k`; the members of her
//! group hold the same PSK, being members of Bob's group too. A commit that
//! names a PSK a member has not reached yet waits ([`DmlsError::NotYet`]).
//! The PSKs of a group's last [`RETAINED_EPOCHS`] epochs are kept, then
//! erased: a commit importing an older one can no longer be processed.
//!
//! # What is not done, and what it costs
//!
//! Draft -02 lets Alice's commit replace Bob's leaf node in her send group
//! with the one Bob committed in his. That is not an RFC 9420 operation
//! (only Bob can update his own leaf, by his own Update proposal or commit),
//! and OpenMLS cannot apply it. Instead, Bob's UPDATE sends, beside the
//! commit in his own send group, an Update proposal in every other send
//! group he belongs to, and each owner's next COMMIT commits it. The cost:
//! until the owner commits it, Bob's old leaf key in Alice's group stays
//! valid and stored by Bob, so a compromise of Bob in that window still
//! opens Alice's commits to him (the PSK import heals Alice's group with
//! Bob's fresh epoch, but not Bob's leaf in it). An owner that does not
//! commit keeps it valid indefinitely.
//!
//! Also not done: the leaf paths of non-owners stay blank in each send
//! group (the draft's own overhead), retained past-epoch secrets
//! ([`RETAINED_EPOCHS`], for late application messages) trade forward
//! secrecy for tolerance to delay, and handing a new participant the
//! KeyPackages of the others (through a directory, for example) is the
//! application's.

mod participant;
mod psk;
mod signer;

pub use participant::{Participant, Received};
pub use psk::{psk_id, RETAINED_EPOCHS};
pub use signer::SigningKey;

use crate::StoreError;

/// What a participant's send group id starts with; the owner's identity
/// follows. The draft leaves the scheme to the application; this one makes
/// a group's owner readable from its id, so that a Welcome or a commit of a
/// group claiming to be Bob's can be checked against its leaf 0.
pub const SEND_GROUP_ID_PREFIX: &[u8] = b"dmls-send-group/";

/// The id of the send group of the participant `identity`.
pub fn send_group_id(identity: &[u8]) -> Vec<u8> {
    [SEND_GROUP_ID_PREFIX, identity].concat()
}

/// The identity of the owner of the send group `group_id`, if it is one.
pub fn owner_of(group_id: &[u8]) -> Option<&[u8]> {
    group_id
        .strip_prefix(SEND_GROUP_ID_PREFIX)
        .filter(|identity| !identity.is_empty())
}

/// Why a Distributed MLS operation failed. Nothing was stored when it did.
#[derive(Debug)]
#[non_exhaustive]
pub enum DmlsError {
    /// The message depends on one not processed yet (a later epoch, a
    /// proposal its commit references, a PSK of an epoch of another send
    /// group not reached): keep it and pass it again later.
    NotYet,
    /// The message is for a send group this participant is not (or not yet)
    /// a member of.
    UnknownGroup,
    /// Refused by the send group rules: a commit or application message
    /// from a leaf other than 0, a Welcome whose leaf 0 is not the owner its
    /// group id names, a commit in the participant's own send group.
    Refused(&'static str),
    /// Malformed or invalid input (its MLS validation failed).
    Invalid(String),
    /// The operation needs something the participant lacks (e.g. no member
    /// of that name).
    Unavailable(&'static str),
    /// OpenMLS failed.
    OpenMls(String),
    /// The store failed.
    Store(StoreError),
}

impl std::fmt::Display for DmlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DmlsError::NotYet => f.write_str("the message depends on one not processed yet"),
            DmlsError::UnknownGroup => f.write_str("not a member of the message's send group"),
            DmlsError::Refused(why) => write!(f, "refused: {why}"),
            DmlsError::Invalid(why) => write!(f, "invalid message: {why}"),
            DmlsError::Unavailable(what) => write!(f, "unavailable: {what}"),
            DmlsError::OpenMls(why) => write!(f, "OpenMLS failed: {why}"),
            DmlsError::Store(error) => write!(f, "the store failed: {error}"),
        }
    }
}

impl std::error::Error for DmlsError {}

impl From<StoreError> for DmlsError {
    fn from(error: StoreError) -> Self {
        DmlsError::Store(error)
    }
}
