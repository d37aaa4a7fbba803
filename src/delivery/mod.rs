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
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod http;
mod memory;
mod observer;
mod record;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use mls_rs::extension::built_in::RatchetTreeExt;
use mls_rs::external_client::ExternalReceivedMessage;
use mls_rs::group::proposal::Proposal as MlsProposal;
use mls_rs::group::{CommitEffect, ContentType, ExportedTree, ProposalSender, Sender};
use mls_rs::{MlsMessage, MlsMessageDescription, WireFormat};
use sha2::{Digest, Sha256};

pub use backend::{Accepted, Backend, Change, Delivery, Event, Stored};
pub use embedded::Embedded;
pub use memory::Memory;

use crate::directory::{Credential, IdentityCheck};
use observer::{Observed, Observer};
use record::{GroupRecord, MemberRecord, ProposalRecord};

/// Epochs before the current one whose application messages are still
/// accepted, by default.
pub const DEFAULT_WINDOW: u64 = 3;
/// How often a change is recomputed when other changes of its group land
/// first, before the submission gives up.
const ATTEMPTS: usize = 64;
/// Groups whose observed state is kept in memory between submissions.
const CACHED_GROUPS: usize = 256;

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

fn invalid(reason: impl Into<String>) -> DeliveryError {
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

/// A handshake message's framing, checked against the group it is
/// submitted to.
struct Handshake {
    message: MlsMessage,
    sender: Sender,
    epoch: u64,
}

/// A change computed from the group at `version`, with the group's record
/// and observed state after it.
struct Prepared {
    version: u64,
    change: Change,
    record: GroupRecord,
    observed: Observed,
}

/// A group as last seen by this service: valid while the backend holds the
/// same version.
struct Cached {
    version: u64,
    record: Arc<GroupRecord>,
    observed: Observed,
}

/// A commit that validates, before its change is made.
struct CheckedCommit {
    stored: Stored,
    record: Arc<GroupRecord>,
    observed: Observed,
    welcomed: Vec<Device>,
}

/// A commit submission, decoded and its framing checked.
struct CommitSubmission<'a> {
    handshake: Handshake,
    commit: &'a [u8],
    welcome: Option<&'a [u8]>,
    welcome_message: Option<MlsMessage>,
    group_info: Option<&'a [u8]>,
    info: Option<MlsMessage>,
}

impl<'a> CommitSubmission<'a> {
    fn decode(
        group: &[u8],
        commit: &'a [u8],
        welcome: Option<&'a [u8]>,
        group_info: Option<&'a [u8]>,
    ) -> Result<Self, DeliveryError> {
        let handshake = handshake(commit, group, ContentType::Commit)?;
        let welcome_message = welcome.map(|bytes| decode(bytes, "welcome")).transpose()?;
        if welcome_message
            .as_ref()
            .is_some_and(|w| w.wire_format() != WireFormat::Welcome)
        {
            return Err(invalid("welcome is not a Welcome"));
        }
        let info = group_info
            .map(|bytes| decode(bytes, "groupInfo"))
            .transpose()?;
        if info
            .as_ref()
            .is_some_and(|m| m.wire_format() != WireFormat::GroupInfo)
        {
            return Err(invalid("groupInfo is not a GroupInfo"));
        }
        Ok(CommitSubmission {
            handshake,
            commit,
            welcome,
            welcome_message,
            group_info,
            info,
        })
    }
}

fn decode(bytes: &[u8], what: &str) -> Result<MlsMessage, DeliveryError> {
    MlsMessage::from_bytes(bytes).map_err(|e| invalid(format!("{what} does not decode: {e}")))
}

fn content_name(content_type: ContentType) -> &'static str {
    match content_type {
        ContentType::Application => "an application message",
        ContentType::Proposal => "a proposal",
        ContentType::Commit => "a commit",
    }
}

/// `bytes` as a PublicMessage of `expected` content for `group`.
fn handshake(
    bytes: &[u8],
    group: &[u8],
    expected: ContentType,
) -> Result<Handshake, DeliveryError> {
    let what = content_name(expected);
    let message = decode(bytes, what)?;
    let (group_id, epoch, content_type, sender) = match message.description() {
        MlsMessageDescription::PublicProtocolMessage {
            group_id,
            epoch_id,
            content_type,
            sender,
            ..
        } => (group_id, epoch_id, content_type, sender),
        MlsMessageDescription::PrivateProtocolMessage { content_type, .. } => {
            return Err(invalid(format!(
                "handshake messages must be PublicMessage: this is {} in a PrivateMessage",
                content_name(content_type)
            )))
        }
        _ => return Err(invalid(format!("not {what}: not an MLS PublicMessage"))),
    };
    if group_id != group {
        return Err(invalid(format!("{what} of another group")));
    }
    if content_type != expected {
        return Err(invalid(format!(
            "{} where {what} is expected",
            content_name(content_type)
        )));
    }
    Ok(Handshake {
        message,
        sender,
        epoch,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The Delivery Service over a backend `B` ([`DeliveryService::open`]: the
/// embedded one).
pub struct DeliveryService<B: Backend> {
    backend: B,
    observer: Observer,
    window: u64,
    /// Groups by id as last seen here: the version, the decoded record and
    /// the observed state.
    cache: Mutex<HashMap<Vec<u8>, Cached>>,
}

impl<B: Backend> std::fmt::Debug for DeliveryService<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryService")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl DeliveryService<Embedded> {
    /// The service on an embedded RocksDB in `path`.
    pub fn open(
        path: impl AsRef<std::path::Path>,
        identities: impl Identities + 'static,
    ) -> Result<Self, StorageError> {
        Ok(DeliveryService::with_backend(
            Embedded::open(path)?,
            identities,
        ))
    }
}

impl<B: Backend> DeliveryService<B> {
    /// The service on `backend`, with the [`DEFAULT_WINDOW`].
    pub fn with_backend(backend: B, identities: impl Identities + 'static) -> Self {
        DeliveryService {
            backend,
            observer: Observer::new(Arc::new(identities)),
            window: DEFAULT_WINDOW,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Accepting application messages of the current epoch and the
    /// `window` before it.
    pub fn with_window(mut self, window: u64) -> Self {
        self.window = window;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Starts delivering for the group `group_info` (an MLSMessage holding
    /// a GroupInfo) describes, with `ratchet_tree` when the GroupInfo has
    /// no `ratchet_tree` extension. The tree must hold one member, the
    /// caller's device, which becomes the group's admin.
    pub fn create_group(
        &self,
        caller: &Device,
        group_info: &[u8],
        ratchet_tree: Option<&[u8]>,
    ) -> Result<GroupView, DeliveryError> {
        let message = decode(group_info, "groupInfo")?;
        if message.wire_format() != WireFormat::GroupInfo {
            return Err(invalid("groupInfo is not a GroupInfo"));
        }
        if let (Some(given), Some(carried)) = (ratchet_tree, carried_tree(&message)) {
            if given != carried {
                return Err(invalid(
                    "ratchetTree differs from the tree the GroupInfo carries",
                ));
            }
        }
        let tree = ratchet_tree
            .map(ExportedTree::from_bytes)
            .transpose()
            .map_err(|e| invalid(format!("ratchetTree does not decode: {e}")))?;
        let group = self.observer.observe(message, tree).map_err(invalid)?;
        let mut members = self.observer.members(&group, &[]).map_err(invalid)?;
        match &mut members[..] {
            [creator] if creator.is(caller) => creator.role = Role::Admin as u8,
            [_] => return Err(invalid("the creator's leaf is not the submitting device's")),
            _ => return Err(invalid("a new group's tree must hold its creator alone")),
        }
        let record = GroupRecord {
            suite: group.group_context().cipher_suite.into(),
            snapshot: snapshot(&group)?,
            members,
            proposals: Vec::new(),
            group_info: group_info.to_vec(),
        };
        let id = group.group_context().group_id.clone();
        let epoch = group.group_context().epoch;
        if !self
            .backend
            .create(&id, epoch, &record.encode()?, &record.devices())?
        {
            return Err(DeliveryError::Exists);
        }
        let created = view(id.clone(), epoch, &record);
        self.remember(&id, 1, record, group);
        Ok(created)
    }

    /// The group, if the caller's device is a member.
    pub fn group(&self, caller: &Device, group: &[u8]) -> Result<GroupView, DeliveryError> {
        let (stored, record) = self.member_view(caller, group)?;
        Ok(view(group.to_vec(), stored.epoch, &record))
    }

    /// The group's members (for a member's device).
    pub fn members(&self, caller: &Device, group: &[u8]) -> Result<Vec<Member>, DeliveryError> {
        Ok(self.group(caller, group)?.members)
    }

    /// The last accepted commit (for a member's device).
    pub fn latest_commit(&self, caller: &Device, group: &[u8]) -> Result<Accepted, DeliveryError> {
        let (stored, _) = self.member_view(caller, group)?;
        let previous = stored.epoch.checked_sub(1).ok_or(DeliveryError::NotFound)?;
        self.backend
            .commit(group, previous)?
            .ok_or(DeliveryError::NotFound)
    }

    /// The proposals held for the current epoch (for a member's device).
    pub fn proposals(
        &self,
        caller: &Device,
        group: &[u8],
    ) -> Result<Vec<HeldProposal>, DeliveryError> {
        let (_, record) = self.member_view(caller, group)?;
        Ok(record
            .proposals
            .iter()
            .map(|p| HeldProposal {
                reference: p.reference.clone(),
                message: p.message.clone(),
            })
            .collect())
    }

    /// The GroupInfo of the current epoch, if its committer uploaded one:
    /// for an external join, so any authenticated caller may have it (who
    /// may join is the application's to decide).
    pub fn group_info(&self, group: &[u8]) -> Result<CurrentGroupInfo, DeliveryError> {
        let (stored, record) = self.stored(group)?;
        if record.group_info.is_empty() {
            return Err(DeliveryError::NotFound);
        }
        Ok(CurrentGroupInfo {
            epoch: stored.epoch,
            message: record.group_info.clone(),
        })
    }

    /// The events of the caller's inbox after `after`, at most `limit`;
    /// those up to `after` are acknowledged (deleted).
    pub fn inbox(&self, caller: &Device, after: u64, limit: usize) -> Result<Inbox, DeliveryError> {
        let events = self.backend.inbox(caller, after, limit)?;
        let next = events.last().map_or(after, |e| e.seq);
        Ok(Inbox { events, next })
    }

    /// Deletes the inbox events older than `retention`, read or not (a
    /// device offline for longer misses them, and must rejoin its groups):
    /// what keeps the service's storage bounded. Run it periodically.
    pub fn purge_events(&self, retention: std::time::Duration) -> Result<(), DeliveryError> {
        let cutoff = std::time::SystemTime::now()
            .checked_sub(retention)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_micros() as u64);
        Ok(self.backend.purge_events(cutoff)?)
    }

    /// The groups `device` is a member of: what a server removing the
    /// device (the directory's `remove_device`) has its members commit the
    /// device's removal in.
    pub fn groups_of(&self, device: &Device) -> Result<Vec<Vec<u8>>, DeliveryError> {
        Ok(self.backend.groups_of(device)?)
    }

    /// Validates `commit` (an MLSMessage holding a PublicMessage commit)
    /// against the group's current epoch and accepts it if no other commit
    /// was accepted for that epoch, with `welcome` for the members it adds
    /// and the new epoch's `group_info`. Returns the new epoch.
    pub fn submit_commit(
        &self,
        caller: &Device,
        group: &[u8],
        commit: &[u8],
        welcome: Option<&[u8]>,
        group_info: Option<&[u8]>,
    ) -> Result<u64, DeliveryError> {
        let submission = CommitSubmission::decode(group, commit, welcome, group_info)?;
        for _ in 0..ATTEMPTS {
            let prepared = self.prepare_commit(caller, group, &submission)?;
            if self.backend.apply(group, &prepared.change)? {
                let epoch = prepared.change.epoch;
                self.remember(
                    group,
                    prepared.version + 1,
                    prepared.record,
                    prepared.observed,
                );
                return Ok(epoch);
            }
        }
        Err(contended())
    }

    /// What [`DeliveryService::submit_commit`] would answer now, without
    /// accepting anything: the new epoch if the commit validates (the
    /// validation alone: nothing is encoded for storage).
    pub fn validate_commit(
        &self,
        caller: &Device,
        group: &[u8],
        commit: &[u8],
        welcome: Option<&[u8]>,
        group_info: Option<&[u8]>,
    ) -> Result<u64, DeliveryError> {
        let submission = CommitSubmission::decode(group, commit, welcome, group_info)?;
        let checked = self.check_commit(caller, group, &submission)?;
        Ok(checked.observed.group_context().epoch)
    }

    /// Validates a commit against the group as stored now.
    fn check_commit(
        &self,
        caller: &Device,
        group: &[u8],
        submission: &CommitSubmission<'_>,
    ) -> Result<CheckedCommit, DeliveryError> {
        let CommitSubmission {
            handshake,
            welcome_message,
            info,
            ..
        } = submission;
        let (stored, record) = self.stored(group)?;
        match handshake.sender {
            Sender::Member(leaf) => self.check_sender(caller, &record, leaf)?,
            Sender::NewMemberCommit => {}
            _ => {
                return Err(invalid(
                    "a commit comes from a member or an external joiner",
                ))
            }
        }
        if handshake.epoch != stored.epoch {
            return Err(self.stale(group, stored.epoch, handshake.epoch)?);
        }
        let mut observed = self.observed(group, &stored, &record)?;
        let description = match observed.process_incoming_message(handshake.message.clone()) {
            Ok(ExternalReceivedMessage::Commit(description)) => description,
            Ok(_) => return Err(invalid("not a commit")),
            Err(e) => return Err(invalid(format!("commit refused: {e}"))),
        };
        if description.is_external {
            let joiner = observed
                .roster()
                .member_with_index(description.committer)
                .ok()
                .and_then(|member| self.observer.device_of(&member.signing_identity));
            if joiner.as_ref() != Some(caller) {
                return Err(invalid(
                    "an external commit must come from the joining leaf's device",
                ));
            }
        }
        let welcomed = self.welcomed(&record, &description.effect, welcome_message.as_ref())?;
        if let Some(info) = info {
            self.check_group_info(&observed, info.clone())?;
        }
        Ok(CheckedCommit {
            stored,
            record,
            observed,
            welcomed,
        })
    }

    /// A commit as [`DeliveryService::check_commit`] found it, and the
    /// change that accepts it: the version it was computed from, the change
    /// and the group after it.
    fn prepare_commit(
        &self,
        caller: &Device,
        group: &[u8],
        submission: &CommitSubmission<'_>,
    ) -> Result<Prepared, DeliveryError> {
        let CheckedCommit {
            stored,
            record,
            observed,
            welcomed,
        } = self.check_commit(caller, group, submission)?;
        let members = self
            .observer
            .members(&observed, &record.members)
            .map_err(invalid)?;
        let CommitSubmission {
            commit,
            welcome,
            group_info,
            ..
        } = submission;
        let epoch = observed.group_context().epoch;
        let mut recipients = record.devices();
        recipients.retain(|d| d != caller);
        let mut deliveries = Vec::new();
        if let Some(welcome) = welcome {
            deliveries.push(Delivery {
                recipients: welcomed,
                kind: EventKind::Welcome,
                message: welcome.to_vec(),
            });
        }
        deliveries.push(Delivery {
            recipients,
            kind: EventKind::Commit,
            message: commit.to_vec(),
        });
        let record = GroupRecord {
            suite: record.suite,
            snapshot: snapshot(&observed)?,
            members,
            proposals: Vec::new(),
            group_info: group_info.map(<[u8]>::to_vec).unwrap_or_default(),
        };
        let change = Change {
            version: stored.version,
            epoch,
            record: Some(record.encode()?),
            commit: Some(Accepted {
                epoch: stored.epoch,
                id: Sha256::digest(commit).into(),
                message: commit.to_vec(),
            }),
            devices: Some(record.devices()),
            deliveries,
        };
        Ok(Prepared {
            version: stored.version,
            change,
            record,
            observed,
        })
    }

    /// Validates `proposal` (an MLSMessage holding a PublicMessage
    /// proposal) against the current epoch and holds it for a commit to
    /// reference, delivering it to the other members.
    pub fn submit_proposal(
        &self,
        caller: &Device,
        group: &[u8],
        proposal: &[u8],
    ) -> Result<(), DeliveryError> {
        let handshake = handshake(proposal, group, ContentType::Proposal)?;
        for _ in 0..ATTEMPTS {
            let Some(prepared) = self.prepare_proposal(caller, group, &handshake, proposal)? else {
                return Ok(());
            };
            if self.backend.apply(group, &prepared.change)? {
                self.remember(
                    group,
                    prepared.version + 1,
                    prepared.record,
                    prepared.observed,
                );
                return Ok(());
            }
        }
        Err(contended())
    }

    /// What [`DeliveryService::submit_proposal`] would answer now, without
    /// holding anything.
    pub fn validate_proposal(
        &self,
        caller: &Device,
        group: &[u8],
        proposal: &[u8],
    ) -> Result<(), DeliveryError> {
        let handshake = handshake(proposal, group, ContentType::Proposal)?;
        self.prepare_proposal(caller, group, &handshake, proposal)
            .map(|_| ())
    }

    /// Validates a proposal against the group as stored now: the version,
    /// the change that holds it and the group after it; `None` if it is
    /// held already.
    fn prepare_proposal(
        &self,
        caller: &Device,
        group: &[u8],
        handshake: &Handshake,
        proposal: &[u8],
    ) -> Result<Option<Prepared>, DeliveryError> {
        let (stored, record) = self.stored(group)?;
        match handshake.sender {
            Sender::Member(leaf) => self.check_sender(caller, &record, leaf)?,
            Sender::NewMemberProposal => {}
            _ => return Err(invalid("proposals from external senders are not served")),
        }
        if handshake.epoch != stored.epoch {
            return Err(DeliveryError::OtherEpoch {
                epoch: stored.epoch,
            });
        }
        let mut observed = self.observed(group, &stored, &record)?;
        let description = match observed.process_incoming_message(handshake.message.clone()) {
            Ok(ExternalReceivedMessage::Proposal(description)) => description,
            Ok(_) => return Err(invalid("not a proposal")),
            Err(e) => return Err(invalid(format!("proposal refused: {e}"))),
        };
        if let ProposalSender::NewMember = description.sender {
            let MlsProposal::Add(add) = &description.proposal else {
                return Err(invalid("a new member may propose only its own Add"));
            };
            if self
                .observer
                .device_of(add.key_package().signing_identity())
                .as_ref()
                != Some(caller)
            {
                return Err(invalid(
                    "a new member's Add must come from the device it adds",
                ));
            }
        }
        let reference = description.proposal_ref.to_vec();
        if record.proposals.iter().any(|p| p.reference == reference) {
            return Ok(None);
        }
        let mut record = (*record).clone();
        record.proposals.push(ProposalRecord {
            reference,
            message: proposal.to_vec(),
        });
        record.snapshot = snapshot(&observed)?;
        let mut recipients = record.devices();
        recipients.retain(|d| d != caller);
        let change = Change {
            version: stored.version,
            epoch: stored.epoch,
            record: Some(record.encode()?),
            commit: None,
            devices: None,
            deliveries: vec![Delivery {
                recipients,
                kind: EventKind::Proposal,
                message: proposal.to_vec(),
            }],
        };
        Ok(Some(Prepared {
            version: stored.version,
            change,
            record,
            observed,
        }))
    }

    /// Delivers `message` (an MLSMessage holding a PrivateMessage
    /// application message of the current epoch or the window before it)
    /// to the other members. Only its header is read.
    pub fn submit_message(
        &self,
        caller: &Device,
        group: &[u8],
        message: &[u8],
    ) -> Result<(), DeliveryError> {
        let decoded = decode(message, "message")?;
        let epoch = match decoded.description() {
            MlsMessageDescription::PrivateProtocolMessage {
                group_id,
                epoch_id,
                content_type,
            } => {
                if group_id != group {
                    return Err(invalid("a message of another group"));
                }
                if content_type != ContentType::Application {
                    return Err(invalid(format!(
                        "handshake messages must be PublicMessage: this is {} in a PrivateMessage",
                        content_name(content_type)
                    )));
                }
                epoch_id
            }
            MlsMessageDescription::PublicProtocolMessage { .. } => {
                return Err(invalid(
                    "application messages must be PrivateMessage; handshake messages go to \
                     /commits or /proposals",
                ))
            }
            _ => return Err(invalid("not an MLS PrivateMessage")),
        };
        for _ in 0..ATTEMPTS {
            let (stored, record) = self.member_view(caller, group)?;
            if epoch > stored.epoch || epoch.saturating_add(self.window) < stored.epoch {
                return Err(DeliveryError::OtherEpoch {
                    epoch: stored.epoch,
                });
            }
            let mut recipients = record.devices();
            recipients.retain(|d| d != caller);
            let change = Change {
                version: stored.version,
                epoch: stored.epoch,
                record: None,
                commit: None,
                devices: None,
                deliveries: vec![Delivery {
                    recipients,
                    kind: EventKind::Message,
                    message: message.to_vec(),
                }],
            };
            if self.backend.apply(group, &change)? {
                return Ok(());
            }
        }
        Err(contended())
    }

    /// Makes the member at `leaf` an admin or a member; the caller must be
    /// an admin.
    pub fn set_role(
        &self,
        caller: &Device,
        group: &[u8],
        leaf: u32,
        role: Role,
    ) -> Result<(), DeliveryError> {
        for _ in 0..ATTEMPTS {
            let (stored, record) = self.member_view(caller, group)?;
            let mut record = (*record).clone();
            if record.member_of(caller).map(MemberRecord::role) != Some(Role::Admin) {
                return Err(invalid("only an admin names roles"));
            }
            let member = record
                .members
                .iter_mut()
                .find(|m| m.leaf == leaf)
                .ok_or_else(|| invalid("no member at that leaf"))?;
            member.role = role as u8;
            let change = Change {
                version: stored.version,
                epoch: stored.epoch,
                record: Some(record.encode()?),
                commit: None,
                devices: None,
                deliveries: Vec::new(),
            };
            if self.backend.apply(group, &change)? {
                return Ok(());
            }
        }
        Err(contended())
    }

    /// The group as stored, its record decoded (or taken from memory if
    /// this service last saw the same version).
    fn stored(&self, group: &[u8]) -> Result<(Stored, Arc<GroupRecord>), DeliveryError> {
        let stored = self.backend.load(group)?.ok_or(DeliveryError::NotFound)?;
        if let Some(cached) = lock(&self.cache).get(group) {
            if cached.version == stored.version {
                return Ok((stored, Arc::clone(&cached.record)));
            }
        }
        let record = GroupRecord::decode(&stored.record)?;
        Ok((stored, Arc::new(record)))
    }

    /// The group, if `caller` is a member's device.
    fn member_view(
        &self,
        caller: &Device,
        group: &[u8],
    ) -> Result<(Stored, Arc<GroupRecord>), DeliveryError> {
        let (stored, record) = self.stored(group)?;
        if record.member_of(caller).is_none() {
            return Err(DeliveryError::NotFound);
        }
        Ok((stored, record))
    }

    /// Whether `caller` may submit as the member at `leaf`.
    fn check_sender(
        &self,
        caller: &Device,
        record: &GroupRecord,
        leaf: u32,
    ) -> Result<(), DeliveryError> {
        if record.member_of(caller).is_none() {
            return Err(DeliveryError::NotFound);
        }
        match record.member(leaf) {
            Some(member) if member.is(caller) => Ok(()),
            Some(_) => Err(invalid("the sender leaf is not the submitting device's")),
            None => Err(invalid("the sender is not a member")),
        }
    }

    /// The answer to a commit for `submitted` while the group is at
    /// `current`.
    fn stale(
        &self,
        group: &[u8],
        current: u64,
        submitted: u64,
    ) -> Result<DeliveryError, DeliveryError> {
        let accepted_in = if submitted < current {
            Some(submitted)
        } else {
            current.checked_sub(1)
        };
        let commit = match accepted_in {
            Some(epoch) => self.backend.commit(group, epoch)?.map(|c| c.id),
            None => None,
        };
        Ok(DeliveryError::StaleCommit {
            epoch: current,
            commit,
        })
    }

    /// The observed group at `stored`'s version: from memory, or from the
    /// stored snapshot.
    fn observed(
        &self,
        group: &[u8],
        stored: &Stored,
        record: &GroupRecord,
    ) -> Result<Observed, DeliveryError> {
        if let Some(cached) = lock(&self.cache).get(group) {
            if cached.version == stored.version {
                return Ok(cached.observed.clone());
            }
        }
        self.observer
            .load(&record.snapshot)
            .map_err(|_| StorageError::Corrupted("group snapshot does not load").into())
    }

    /// Keeps the group as it is after a change this service made.
    fn remember(&self, group: &[u8], version: u64, record: GroupRecord, observed: Observed) {
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHED_GROUPS && !cache.contains_key(group) {
            cache.clear();
        }
        cache.insert(
            group.to_vec(),
            Cached {
                version,
                record: Arc::new(record),
                observed,
            },
        );
    }

    /// The devices a commit's Welcome goes to: those of the leaves its Adds
    /// bring. The Welcome must be there exactly when there are Adds, and
    /// name exactly their KeyPackages.
    fn welcomed(
        &self,
        record: &GroupRecord,
        effect: &CommitEffect,
        welcome: Option<&MlsMessage>,
    ) -> Result<Vec<Device>, DeliveryError> {
        let applied = match effect {
            CommitEffect::NewEpoch(epoch)
            | CommitEffect::Removed {
                new_epoch: epoch, ..
            } => &epoch.applied_proposals[..],
            CommitEffect::ReInit(_) => &[],
        };
        let mut devices = Vec::new();
        let mut references = HashSet::new();
        for info in applied {
            if let MlsProposal::Add(add) = &info.proposal {
                let key_package = add.key_package();
                let device = self
                    .observer
                    .device_of(key_package.signing_identity())
                    .ok_or_else(|| invalid("the identity check refused an added member"))?;
                let reference = self
                    .observer
                    .key_package_ref(record.suite, key_package)
                    .ok_or_else(|| invalid("an added KeyPackage has no reference"))?;
                references.insert(reference);
                devices.push(device);
            }
        }
        match welcome {
            None if devices.is_empty() => Ok(devices),
            None => Err(invalid(
                "a commit that adds members must carry their Welcome",
            )),
            Some(_) if devices.is_empty() => {
                Err(invalid("a Welcome for a commit that adds no one"))
            }
            Some(welcome) => {
                if welcome.cipher_suite().map(u16::from) != Some(record.suite) {
                    return Err(invalid("the Welcome is of another cipher suite"));
                }
                let named: HashSet<Vec<u8>> = welcome
                    .welcome_key_package_references()
                    .into_iter()
                    .map(|r| r.to_vec())
                    .collect();
                if named != references {
                    return Err(invalid(
                        "the Welcome does not name exactly the KeyPackages the commit adds",
                    ));
                }
                Ok(devices)
            }
        }
    }

    /// A GroupInfo uploaded with a commit must describe exactly the state
    /// the commit led to, signed by a member.
    fn check_group_info(&self, observed: &Observed, info: MlsMessage) -> Result<(), DeliveryError> {
        let tree = observed.exported_tree();
        let described = self
            .observer
            .observe(info, Some(tree))
            .map_err(|e| invalid(format!("groupInfo: {e}")))?;
        if described.snapshot() != observed.snapshot() {
            return Err(invalid(
                "groupInfo does not describe the epoch the commit leads to",
            ));
        }
        Ok(())
    }
}

/// The ratchet tree a GroupInfo carries in its `ratchet_tree` extension,
/// encoded.
fn carried_tree(message: &MlsMessage) -> Option<Vec<u8>> {
    message
        .as_group_info()?
        .extensions()
        .get_as::<RatchetTreeExt>()
        .ok()??
        .tree_data
        .to_bytes()
        .ok()
}

/// Microseconds since the Unix epoch: what sequence numbers never run
/// behind.
fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn contended() -> DeliveryError {
    DeliveryError::Storage(StorageError::Unavailable(
        "the group changed too often while this submission was validated".into(),
    ))
}

fn snapshot(observed: &Observed) -> Result<Vec<u8>, DeliveryError> {
    observed
        .snapshot()
        .to_bytes()
        .map_err(|_| StorageError::Corrupted("group snapshot does not encode").into())
}

fn view(id: Vec<u8>, epoch: u64, record: &GroupRecord) -> GroupView {
    GroupView {
        id,
        epoch,
        suite: record.suite,
        members: record
            .members
            .iter()
            .map(|m| Member {
                leaf: m.leaf,
                device: m.device(),
                signature_key: m.signature_key.clone(),
                role: m.role(),
            })
            .collect(),
    }
}
