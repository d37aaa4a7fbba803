//! The service itself: reads, submissions and the memory of groups it
//! last saw, over any [`Backend`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use mls_rs::extension::built_in::RatchetTreeExt;
use mls_rs::external_client::ExternalReceivedMessage;
use mls_rs::group::proposal::Proposal as MlsProposal;
use mls_rs::group::{CommitEffect, ContentType, ExportedTree, ProposalSender, Sender};
use mls_rs::{MlsMessage, MlsMessageDescription, WireFormat};
use mls_rs_core::time::MlsTime;
use sha2::{Digest, Sha256};

use super::backend::{Accepted, Backend, Change, Delivery, Stored};
use super::embedded::Embedded;
use super::framing::{content_name, decode, handshake, CommitSubmission, Handshake};
use super::observer::{Observed, Observer};
use super::record::{GroupRecord, MemberRecord, ProposalRecord};
use super::{
    invalid, CurrentGroupInfo, DeliveryError, Device, EventKind, GroupView, HeldProposal,
    Identities, Inbox, Member, Role, StorageError, DEFAULT_WINDOW,
};

/// How often a change is recomputed when other changes of its group land
/// first, before the submission gives up.
const ATTEMPTS: usize = 64;
/// Groups whose observed state is kept in memory between submissions.
const CACHED_GROUPS: usize = 256;

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
        // With the time, or mls-rs checks no KeyPackage's lifetime.
        let description = match observed
            .process_incoming_message_with_time(handshake.message.clone(), MlsTime::now())
        {
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
        // With the time, or mls-rs checks no KeyPackage's lifetime.
        let description = match observed
            .process_incoming_message_with_time(handshake.message.clone(), MlsTime::now())
        {
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
