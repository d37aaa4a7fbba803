//! The Delivery Service of a polyproto home server (polyproto-mls
//! v1.0-alpha.2, §2: the home server is its users' MLS Delivery Service),
//! as a library the server embeds (cargo feature `delivery`; its HTTP
//! routes with `server`, in [`http`]), on a [`Backend`] (the embedded
//! RocksDB one by default, [`DeliveryService::open`]).
//!
//! # What it guarantees, on every backend
//!
//! - **Groups are observed, never trusted.** A group starts from the
//!   GroupInfo its creator uploads; its public state (ratchet tree, group
//!   context, epoch, interim transcript hash) is validated then and after
//!   every handshake message, as RFC 9420 lets a non-member: the framing
//!   (group id, epoch, content type, wire format), the sender's
//!   membership and signature, every proposal (RFC 9420 §12.2: the leaves
//!   an Add, Update or external commit brings, with their signatures,
//!   lifetimes, capabilities and unique keys), the update path's parent
//!   hashes and the new tree, and the GroupInfo of the new epoch when the
//!   committer uploads one (its signature, and that it describes exactly
//!   the state the commit led to).
//! - **One commit per epoch.** A commit for the current epoch that
//!   validates is accepted in one atomic step of the backend with the
//!   group's new state, which succeeds only if the group is still at that
//!   epoch and no commit is stored for it; every other commit for that
//!   epoch, racing or late, is [`DeliveryError::StaleCommit`] (HTTP 409)
//!   with the current epoch and the accepted commit's id. A commit that
//!   names another epoch is never applied.
//! - **The server's identity check** ([`Identities`]) passes every
//!   credential that enters the tree, and the submitting device must be
//!   the sender leaf's (for an external commit, the joining leaf's).
//! - **Delivery.** Every accepted commit, proposal and application message
//!   is appended, in the group's order, to the inbox of every member device
//!   but the submitter's (a commit also reaches the members it removes);
//!   each Welcome to exactly the devices it adds. The events are durable in
//!   every inbox before the submission returns. An inbox is read from a
//!   cursor and acknowledged by reading from a later one (at least once:
//!   each event carries its sequence number, so a client drops repeats).
//!   Events are kept until [`DeliveryService::purge_events`] drops those
//!   older than the server's retention, read or not.
//!
//! # What it cannot check
//!
//! A non-member holds no group secret, so it cannot verify a commit's
//! confirmation tag or membership tag, nor decrypt anything: the path
//! secrets of a commit, the contents of a Welcome, or a PrivateMessage.
//! Handshake messages must therefore come as PublicMessage (a PrivateMessage
//! commit or proposal is refused, with that reason); application messages
//! are PrivateMessage and only their header (group id, epoch, content
//! type) is read: they are accepted for the current epoch and the
//! [`DEFAULT_WINDOW`] epochs before it. A member that sends a commit whose
//! secrets do not match its public part forks only itself: the others
//! cannot process it, and the service cannot tell.
//!
//! # Devices
//!
//! The service knows a leaf's device from its credential and signature
//! key, through [`Identities::device_of`] (in polyproto, the identity key
//! of the device's ID-Cert), and asks [`IdentityCheck::accepts`] whether
//! the credential is that actor's on that device. A Welcome goes to the
//! devices of the leaves its commit adds, and must name exactly the
//! KeyPackages those Adds carry.
//!
//! # The observer
//!
//! Validation is mls-rs's `ExternalGroup` on polymls's
//! [`MlsRsCrypto`](crate::mls_rs::MlsRsCrypto): OpenMLS's `PublicGroup`
//! does the same work, but OpenMLS's closed cipher suite enum cannot decode
//! 0xF110, which polyproto requires, while mls-rs validates every suite of
//! polymls's table, 0x0001 and 0xF110 alike. Clients may run either
//! library: what crosses the wire is RFC 9420.

pub mod backend;
mod embedded;
mod framing;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod http;
mod memory;
mod observer;
mod record;
mod service;
use std::sync::Arc;

pub use backend::{Accepted, Backend, Change, Delivery, Event, Stored};
pub use embedded::Embedded;
pub use memory::Memory;
pub use service::DeliveryService;

use crate::directory::{Credential, IdentityCheck};

/// Epochs before the current one whose application messages are still
/// accepted, by default.
pub const DEFAULT_WINDOW: u64 = 3;
/// A device of an actor: what inboxes belong to and leaves are bound to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Device {
    /// The actor (its federation id).
    pub actor: String,
    /// The actor's device.
    pub device: String,
}

impl Device {
    /// `actor`'s `device`.
    pub fn new(actor: impl Into<String>, device: impl Into<String>) -> Device {
        Device {
            actor: actor.into(),
            device: device.into(),
        }
    }
}

/// What an inbox event carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EventKind {
    /// An accepted commit (PublicMessage).
    Commit = 1,
    /// An accepted proposal (PublicMessage).
    Proposal = 2,
    /// An application message (PrivateMessage).
    Message = 3,
    /// A Welcome to the device.
    Welcome = 4,
}

impl EventKind {
    /// The kind stored as `byte`.
    pub fn from_byte(byte: u8) -> Option<EventKind> {
        [
            EventKind::Commit,
            EventKind::Proposal,
            EventKind::Message,
            EventKind::Welcome,
        ]
        .into_iter()
        .find(|kind| *kind as u8 == byte)
    }

    /// Its name on the wire: `commit`, `proposal`, `message`, `welcome`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Commit => "commit",
            EventKind::Proposal => "proposal",
            EventKind::Message => "message",
            EventKind::Welcome => "welcome",
        }
    }
}

/// A member's role in a group: the service's, MLS has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// A member.
    Member = 0,
    /// The creator, and whom an admin names.
    Admin = 1,
}

/// The server's knowledge of its users' devices: which device a credential
/// and signature key belong to, and (as for the directory) whether it
/// accepts that credential for that actor's device.
pub trait Identities: IdentityCheck {
    /// The device `credential` with `signature_key` belongs to, if any.
    fn device_of(&self, credential: &Credential, signature_key: &[u8]) -> Option<Device>;
}

impl<T: Identities + ?Sized> Identities for Arc<T> {
    fn device_of(&self, credential: &Credential, signature_key: &[u8]) -> Option<Device> {
        (**self).device_of(credential, signature_key)
    }
}

/// Why the storage failed (not a submission's verdict: see
/// [`DeliveryError`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum StorageError {
    /// The embedded backend's RocksDB reported an error.
    Database(rocksdb::Error),
    /// The database cannot be reached; the operation changed nothing
    /// unless it committed before the loss, and may be retried.
    Unavailable(String),
    /// A stored record does not decode.
    Corrupted(&'static str),
    /// A group id, actor or device name longer than 65,535 bytes.
    NameTooLong,
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageError::Database(error) => write!(f, "delivery database: {error}"),
            StorageError::Unavailable(why) => write!(f, "delivery database unavailable: {why}"),
            StorageError::Corrupted(what) => write!(f, "delivery database corrupted: {what}"),
            StorageError::NameTooLong => f.write_str("group id, actor or device name too long"),
        }
    }
}

impl std::error::Error for StorageError {}

impl From<rocksdb::Error> for StorageError {
    fn from(error: rocksdb::Error) -> Self {
        StorageError::Database(error)
    }
}

/// Why a Delivery Service call did not do what it was asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The submission is not valid (HTTP 400); the reason says why.
    Invalid(String),
    /// No such group, or the caller's device is not a member of it (HTTP
    /// 404: the spec's deliberate ambiguity).
    NotFound,
    /// A group with this id exists (HTTP 409).
    Exists,
    /// A commit for an epoch the group is no longer (or not yet) at (HTTP
    /// 409).
    StaleCommit {
        /// The group's current epoch.
        epoch: u64,
        /// The id of the commit accepted for the submitted epoch (or, for
        /// an epoch not yet reached, the latest accepted one), if any.
        commit: Option<[u8; 32]>,
    },
    /// A proposal for another epoch, or an application message outside
    /// the window (HTTP 409).
    OtherEpoch {
        /// The group's current epoch.
        epoch: u64,
    },
    /// The storage failed.
    Storage(StorageError),
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::Invalid(reason) => f.write_str(reason),
            DeliveryError::NotFound => f.write_str("no such group"),
            DeliveryError::Exists => f.write_str("the group exists"),
            DeliveryError::StaleCommit { epoch, .. } => {
                write!(
                    f,
                    "the group is at epoch {epoch}: a commit for it is accepted"
                )
            }
            DeliveryError::OtherEpoch { epoch } => {
                write!(f, "the group is at epoch {epoch}")
            }
            DeliveryError::Storage(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for DeliveryError {}

impl From<StorageError> for DeliveryError {
    fn from(error: StorageError) -> Self {
        DeliveryError::Storage(error)
    }
}

pub(crate) fn invalid(reason: impl Into<String>) -> DeliveryError {
    DeliveryError::Invalid(reason.into())
}

/// A member as the validated tree and the service know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its leaf index.
    pub leaf: u32,
    /// Its device, as [`Identities::device_of`] named it.
    pub device: Device,
    /// Its signature key.
    pub signature_key: Vec<u8>,
    /// Its role.
    pub role: Role,
}

/// A group as a member sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    /// The MLS group id.
    pub id: Vec<u8>,
    /// The current epoch.
    pub epoch: u64,
    /// The cipher suite's code point.
    pub suite: u16,
    /// The members, by leaf index.
    pub members: Vec<Member>,
}

/// A proposal held for the current epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldProposal {
    /// Its ProposalRef.
    pub reference: Vec<u8>,
    /// The MLSMessage (PublicMessage) it came in.
    pub message: Vec<u8>,
}

/// The GroupInfo of a group's current epoch, for external joins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentGroupInfo {
    /// The epoch it describes.
    pub epoch: u64,
    /// The MLSMessage (GroupInfo).
    pub message: Vec<u8>,
}

/// Events of an inbox, and the cursor to read on from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbox {
    /// The events, in sequence order.
    pub events: Vec<Event>,
    /// The last event's sequence number (the cursor given if none).
    pub next: u64,
}

/// Microseconds since the Unix epoch: what sequence numbers never run
/// behind.
fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
