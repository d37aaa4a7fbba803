//! One Distributed MLS participant: its own send group, the others' send
//! groups it belongs to, and its record in the store.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::path::Path;

use openmls::framing::errors::{MessageDecryptionError, SecretTreeError};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls::schedule::errors::PskError;
use openmls_traits::signatures::Signer as _;
use serde::{Deserialize, Serialize};

use super::signer::SigningKey;
use super::{owner_of, psk, send_group_id, DmlsError, RETAINED_EPOCHS};
use crate::{Provider, StoreOptions, TransactionError, TransactionProvider};

type Result<T> = std::result::Result<T, DmlsError>;

/// What the participant keeps beside OpenMLS's groups, in the store.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    identity: Vec<u8>,
    /// The others' send groups this participant is a member of.
    others: BTreeSet<Vec<u8>>,
    /// Per other send group: its epoch last imported into the own group.
    imported: BTreeMap<Vec<u8>, u64>,
    /// Per send group (the own too): the epochs whose PSK is stored.
    psks: BTreeMap<Vec<u8>, BTreeSet<u64>>,
}

/// What [`Participant::receive`] made of a message.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// A Welcome: the participant joined `owner`'s send group.
    Joined {
        /// The owner of the send group.
        owner: Vec<u8>,
    },
    /// An application message from `owner`, in its send group.
    Message {
        /// The owner (the sender).
        owner: Vec<u8>,
        /// The message.
        plaintext: Vec<u8>,
    },
    /// A commit of `owner`'s send group, merged: the group is at `epoch`.
    Commit {
        /// The owner of the send group.
        owner: Vec<u8>,
        /// The epoch the commit started.
        epoch: u64,
        /// The participants it removed. Draft -02 makes every member remove
        /// them from its own send group too, which this participant did in
        /// the same transaction: `outgoing` holds that commit, to send.
        removed: Vec<Vec<u8>>,
        /// Messages to send to the others (the commit removing `removed`
        /// from the own send group).
        outgoing: Vec<Vec<u8>>,
    },
    /// A proposal in `owner`'s send group, stored for the owner's commit.
    Proposal {
        /// The owner of the send group.
        owner: Vec<u8>,
    },
    /// `owner` removed this participant from its send group, which is
    /// deleted here.
    RemovedFrom {
        /// The owner of the send group.
        owner: Vec<u8>,
    },
    /// The same bytes were processed before.
    Duplicate,
    /// A handshake message of an epoch the group has left (a proposal the
    /// owner can no longer commit, or a commit already applied).
    Stale,
    /// A Welcome or a KeyPackage for someone else.
    NotForUs,
}

/// A participant of a Distributed MLS session, on a polymls [`Provider`]
/// over its own store. See the [module docs](super).
pub struct Participant {
    provider: Provider,
    signer: SigningKey,
    record: Record,
    own: MlsGroup,
    others: BTreeMap<Vec<u8>, MlsGroup>,
    seen: Seen,
}

impl std::fmt::Debug for Participant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Participant")
            .field("identity", &String::from_utf8_lossy(&self.record.identity))
            .field("send_groups", &(1 + self.others.len()))
            .finish_non_exhaustive()
    }
}

/// Digests of the messages processed lately, to recognise duplicates.
#[derive(Default)]
struct Seen {
    order: VecDeque<[u8; 32]>,
    set: HashSet<[u8; 32]>,
}

impl Seen {
    const CAPACITY: usize = 4096;

    fn digest(bytes: &[u8]) -> [u8; 32] {
        crate::crypto::hash::Hash::Sha256
            .digest(bytes)
            .as_slice()
            .try_into()
            .expect("32-byte digest")
    }

    fn contains(&self, digest: &[u8; 32]) -> bool {
        self.set.contains(digest)
    }

    fn insert(&mut self, digest: [u8; 32]) {
        if self.set.insert(digest) {
            self.order.push_back(digest);
            if self.order.len() > Self::CAPACITY {
                if let Some(oldest) = self.order.pop_front() {
                    self.set.remove(&oldest);
                }
            }
        }
    }
}

fn openmls(error: impl std::fmt::Display) -> DmlsError {
    DmlsError::OpenMls(error.to_string())
}

fn wire(message: &MlsMessageOut) -> Result<Vec<u8>> {
    message.tls_serialize_detached().map_err(openmls)
}

fn identity_of(credential: &Credential) -> Vec<u8> {
    credential.serialized_content().to_vec()
}

/// How this participant's send group is made: ciphertext only (a relay
/// learns nothing of the handshake), the tree in the Welcome.
fn create_config(suite: Ciphersuite) -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(suite)
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .build()
}

/// How the others' send groups are joined: tolerant to late and reordered
/// application messages (past epochs and generations kept for a while).
fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(RETAINED_EPOCHS as usize)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(64, 1000))
        .build()
}

/// The leaf index of the member called `identity`, if any.
fn leaf_of(group: &MlsGroup, identity: &[u8]) -> Option<LeafNodeIndex> {
    group
        .members()
        .find(|member| identity_of(&member.credential) == identity)
        .map(|member| member.index)
}

/// Whether the owner commits this proposal of a member: an Update of the
/// member's own leaf, or a Remove of the member itself (leaving the send
/// group; the others then remove it from theirs). Adds, removals of others
/// and the rest are the owner's to decide, and are dropped.
fn committable(queued: &QueuedProposal) -> bool {
    match (queued.proposal(), queued.sender()) {
        (Proposal::Update(_), Sender::Member(_)) => true,
        (Proposal::Remove(remove), Sender::Member(sender)) => remove.removed() == *sender,
        _ => false,
    }
}

/// The parts of a participant an operation changes, lent to its transaction.
struct Parts<'a> {
    signer: &'a SigningKey,
    record: &'a mut Record,
    /// Whether the record changed, so that it is written only then (not
    /// with every application message).
    record_changed: bool,
    own: &'a mut MlsGroup,
    others: &'a mut BTreeMap<Vec<u8>, MlsGroup>,
}

impl Parts<'_> {
    fn record_mut(&mut self) -> &mut Record {
        self.record_changed = true;
        self.record
    }
}

impl Participant {
    /// A new participant `identity` with a new (durable) store in `dir` and
    /// its own send group (no other member yet), on `suite`.
    pub fn create(dir: impl AsRef<Path>, identity: &[u8], suite: Ciphersuite) -> Result<Self> {
        Self::create_with(dir, identity, suite, StoreOptions::default())
    }

    /// [`Participant::create`] on a store opened with `options`, which
    /// every later [`Participant::open_with`] must give too.
    pub fn create_with(
        dir: impl AsRef<Path>,
        identity: &[u8],
        suite: Ciphersuite,
        options: StoreOptions,
    ) -> Result<Self> {
        if identity.is_empty() {
            return Err(DmlsError::Unavailable("an empty identity"));
        }
        let provider = Provider::open_with(dir, options)?;
        if provider.storage().dmls_participant::<Record>()?.is_some() {
            return Err(DmlsError::Unavailable(
                "a new store (this one has a participant: open it)",
            ));
        }
        let signer = SigningKey::generate(suite.signature_algorithm())
            .map_err(|e| DmlsError::OpenMls(format!("{e:?}")))?;
        let mut record = Record {
            identity: identity.to_vec(),
            others: BTreeSet::new(),
            imported: BTreeMap::new(),
            psks: BTreeMap::new(),
        };
        let credential = Self::credential_with_key(&record, &signer);
        let own = provider
            .transaction(|p| {
                signer.store(p.storage())?;
                let group = MlsGroup::new_with_group_id(
                    p,
                    &signer,
                    &create_config(suite),
                    GroupId::from_slice(&send_group_id(identity)),
                    credential,
                )
                .map_err(openmls)?;
                let epoch = psk::export(p, &group)?;
                record
                    .psks
                    .entry(send_group_id(identity))
                    .or_default()
                    .insert(epoch);
                p.storage().write_dmls_participant(&record)?;
                Ok::<_, DmlsError>(group)
            })
            .map_err(Self::flatten)?;
        Ok(Participant {
            provider,
            signer,
            record,
            own,
            others: BTreeMap::new(),
            seen: Seen::default(),
        })
    }

    /// The participant whose store is in `dir`, as its last operation left
    /// it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// [`Participant::open`] with the store's `options`.
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        let provider = Provider::open_with(dir, options)?;
        let (record, own, others) = Self::load(provider.storage())?;
        // The own leaf names the signature key and the group the suite.
        let public = own
            .own_leaf_node()
            .map(|leaf| leaf.signature_key().as_slice().to_vec())
            .ok_or(DmlsError::Unavailable("the own leaf"))?;
        let signer = SigningKey::load(provider.storage(), &public)?
            .filter(|key| key.signature_scheme() == own.ciphersuite().signature_algorithm())
            .ok_or(DmlsError::Unavailable("the stored signature key"))?;
        Ok(Participant {
            provider,
            signer,
            record,
            own,
            others,
            seen: Seen::default(),
        })
    }

    /// The participant's identity (its credential's).
    pub fn identity(&self) -> &[u8] {
        &self.record.identity
    }

    /// The id of the participant's own send group.
    pub fn own_group_id(&self) -> Vec<u8> {
        send_group_id(&self.record.identity)
    }

    /// The ids of the others' send groups the participant belongs to.
    pub fn other_groups(&self) -> impl Iterator<Item = &[u8]> {
        self.others.keys().map(Vec::as_slice)
    }

    /// A send group (own or other) by id, to read (members, epoch,
    /// exporter); changes go through the participant's operations.
    pub fn group(&self, group_id: &[u8]) -> Option<&MlsGroup> {
        if group_id == self.own.group_id().as_slice() {
            return Some(&self.own);
        }
        self.others.get(group_id)
    }

    /// The provider, for tests that craft messages the rules forbid.
    #[doc(hidden)]
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// The signer, for tests that craft messages the rules forbid.
    #[doc(hidden)]
    pub fn signer(&self) -> &SigningKey {
        &self.signer
    }

    /// A new KeyPackage (as an MLS message) by which an owner adds this
    /// participant to its send group. One per owner: each is used once.
    pub fn key_package(&mut self) -> Result<Vec<u8>> {
        let suite = self.own.ciphersuite();
        let credential = Self::credential_with_key(&self.record, &self.signer);
        let signer = &self.signer;
        let bundle = self
            .provider
            .transaction(|p| {
                KeyPackage::builder()
                    .build(suite, p, signer, credential)
                    .map_err(openmls)
            })
            .map_err(Self::flatten)?;
        wire(&MlsMessageOut::from(bundle.key_package().clone()))
    }

    /// INIT, and adding participants later: adds the owners of
    /// `key_packages` to the own send group. Returns the messages to send:
    /// the commit (for the members so far, if any) and the Welcome.
    pub fn add(&mut self, key_packages: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        let mut validated = Vec::with_capacity(key_packages.len());
        for bytes in key_packages {
            let message = MlsMessageIn::tls_deserialize_exact(bytes.as_slice())
                .map_err(|e| DmlsError::Invalid(e.to_string()))?;
            let MlsMessageBodyIn::KeyPackage(key_package) = message.extract() else {
                return Err(DmlsError::Invalid("not a KeyPackage".into()));
            };
            let key_package = key_package
                .validate(self.provider.crypto(), ProtocolVersion::Mls10)
                .map_err(|e| DmlsError::Invalid(e.to_string()))?;
            validated.push(key_package);
        }
        self.atomically(|p, parts| {
            let had_members = parts.own.members().count() > 1;
            let (commit, welcome, _) = parts
                .own
                .add_members(p, parts.signer, &validated)
                .map_err(openmls)?;
            Self::merge_own(p, parts)?;
            let mut outgoing = Vec::with_capacity(2);
            if had_members {
                outgoing.push(wire(&commit)?);
            }
            outgoing.push(wire(&welcome)?);
            Ok(outgoing)
        })
    }

    /// Removes the participant `identity` from the own send group, and
    /// stops accepting its send group. Returns the commit to send.
    pub fn remove(&mut self, identity: &[u8]) -> Result<Vec<Vec<u8>>> {
        let identity = identity.to_vec();
        self.atomically(|p, parts| {
            let commit = Self::remove_from_own(p, parts, &identity)?
                .ok_or(DmlsError::Unavailable("a member of that name"))?;
            Ok(vec![commit])
        })
    }

    /// Leaves the session: a proposal to remove the own leaf in every other
    /// send group (each owner commits it, and the other members then
    /// remove this participant from their own send groups). Returns the
    /// proposals to send. The participant keeps its groups until the
    /// owners' commits arrive.
    pub fn leave(&mut self) -> Result<Vec<Vec<u8>>> {
        self.atomically(|p, parts| {
            let mut outgoing = Vec::with_capacity(parts.others.len());
            for group in parts.others.values_mut() {
                let proposal = group.leave_group(p, parts.signer).map_err(openmls)?;
                outgoing.push(wire(&proposal)?);
            }
            Ok(outgoing)
        })
    }

    /// UPDATE: a commit updating the own leaf in the own send group, and an
    /// Update proposal of the own leaf in every other send group (which its
    /// owner commits: see the [module docs](super) on leaf replacement).
    /// Returns the messages to send.
    pub fn update(&mut self) -> Result<Vec<Vec<u8>>> {
        self.atomically(|p, parts| {
            let bundle = parts
                .own
                .self_update(p, parts.signer, LeafNodeParameters::default())
                .map_err(openmls)?;
            Self::merge_own(p, parts)?;
            let mut outgoing = vec![wire(bundle.commit())?];
            for group in parts.others.values_mut() {
                let own_leaf = Sender::Member(group.own_leaf_index());
                if group.pending_proposals().any(|q| *q.sender() == own_leaf) {
                    continue; // one Update waiting for the owner is enough
                }
                let (proposal, _) = group
                    .propose_self_update(p, parts.signer, LeafNodeParameters::default())
                    .map_err(openmls)?;
                outgoing.push(wire(&proposal)?);
            }
            Ok(outgoing)
        })
    }

    /// COMMIT: a commit in the own send group that imports the PSK of every
    /// other send group at the newest epoch seen and not imported yet, and
    /// commits the members' Update proposals and their proposals to leave
    /// (their other proposals are dropped). Returns the commit to send, or nothing when there is
    /// nothing to import or commit.
    pub fn commit(&mut self) -> Result<Vec<Vec<u8>>> {
        self.atomically(|p, parts| Ok(Self::commit_in(p, parts)?.into_iter().collect()))
    }

    /// The COMMIT of [`Participant::commit`], inside a transaction.
    fn commit_in(p: &TransactionProvider<'_>, parts: &mut Parts<'_>) -> Result<Option<Vec<u8>>> {
        let mut imports = Vec::new();
        let mut proposals = Vec::new();
        for (group_id, group) in parts.others.iter() {
            let epoch = group.epoch().as_u64();
            let fresh = parts.record.imported.get(group_id) != Some(&epoch);
            let stored = parts
                .record
                .psks
                .get(group_id)
                .is_some_and(|epochs| epochs.contains(&epoch));
            if fresh && stored {
                imports.push((group_id.clone(), epoch));
                let id = psk::import(p, parts.own, group_id, epoch)?;
                proposals.push(Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(
                    id,
                ))));
            }
        }
        let members_proposals = parts
            .own
            .pending_proposals()
            .filter(|q| committable(q))
            .count();
        if imports.is_empty() && members_proposals == 0 {
            return Ok(None);
        }
        let bundle = parts
            .own
            .commit_builder()
            .add_proposals(proposals)
            .load_psks(p.storage())
            .map_err(openmls)?
            // The filter sees the own PSK proposals too: dropping them
            // here would leave their PSKs in the committer's key
            // schedule but not in the commit.
            .build(p.rand(), p.crypto(), parts.signer, |queued| {
                let own = *queued.sender() == Sender::Member(LeafNodeIndex::new(0));
                committable(queued)
                    || (own && matches!(queued.proposal(), Proposal::PreSharedKey(_)))
            })
            .map_err(openmls)?
            .stage_commit(p)
            .map_err(openmls)?;
        Self::merge_own(p, parts)?;
        for (group_id, epoch) in imports {
            parts.record_mut().imported.insert(group_id, epoch);
        }
        Ok(Some(wire(bundle.commit())?))
    }

    /// PROTECT: `plaintext` as an application message of the own send
    /// group. OpenMLS sends no application message while proposals wait,
    /// so members' Update proposals are committed first (a COMMIT, with
    /// the PSK imports due, as the draft recommends before a message).
    /// Returns the messages to send: that commit, if any, and the message.
    pub fn protect(&mut self, plaintext: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.atomically(|p, parts| {
            let mut outgoing = Vec::with_capacity(2);
            if parts.own.pending_proposals().next().is_some() {
                outgoing.extend(Self::commit_in(p, parts)?);
            }
            // Proposals the commit left out (see `committable`) are dropped.
            if parts.own.pending_proposals().next().is_some() {
                parts
                    .own
                    .clear_pending_proposals(p.storage())
                    .map_err(DmlsError::Store)?;
            }
            let message = parts
                .own
                .create_message(p, parts.signer, plaintext)
                .map_err(openmls)?;
            outgoing.push(wire(&message)?);
            Ok(outgoing)
        })
    }

    /// UNPROTECT, and every other message of a session: a Welcome to
    /// another's send group, its commits and application messages (from
    /// its owner only), and proposals of members. A message that must wait
    /// for another is [`DmlsError::NotYet`]; one the rules forbid is
    /// [`DmlsError::Refused`]. Either way nothing changes.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Received> {
        let digest = Seen::digest(bytes);
        if self.seen.contains(&digest) {
            return Ok(Received::Duplicate);
        }
        let message = MlsMessageIn::tls_deserialize_exact(bytes)
            .map_err(|e| DmlsError::Invalid(e.to_string()))?;
        let received = match message.extract() {
            MlsMessageBodyIn::Welcome(welcome) => self.join(welcome)?,
            MlsMessageBodyIn::PrivateMessage(message) => self.process(message.into())?,
            MlsMessageBodyIn::PublicMessage(message) => self.process(message.into())?,
            MlsMessageBodyIn::KeyPackage(_) => Received::NotForUs,
            MlsMessageBodyIn::GroupInfo(_) => {
                return Err(DmlsError::Invalid("a GroupInfo".into()));
            }
        };
        self.seen.insert(digest);
        Ok(received)
    }

    fn join(&mut self, welcome: Welcome) -> Result<Received> {
        let identity = self.record.identity.clone();
        let outcome = self.atomically(|p, parts| {
            let staged = match StagedWelcome::new_from_welcome(p, &join_config(), welcome, None) {
                Ok(staged) => staged,
                Err(WelcomeError::NoMatchingKeyPackage) => return Ok(None),
                Err(error) => return Err(DmlsError::Invalid(error.to_string())),
            };
            let group_id = staged.group_context().group_id().as_slice().to_vec();
            if parts.others.contains_key(&group_id) {
                return Ok(None);
            }
            let owner = owner_of(&group_id)
                .ok_or(DmlsError::Refused(
                    "a Welcome to a group that is not a send group",
                ))?
                .to_vec();
            if owner == identity {
                return Err(DmlsError::Refused("a Welcome to the own send group"));
            }
            let group = staged.into_group(p).map_err(openmls)?;
            let leaf_0 = group.member(LeafNodeIndex::new(0)).map(identity_of);
            if leaf_0.as_deref() != Some(owner.as_slice()) {
                return Err(DmlsError::Refused(
                    "a Welcome whose leaf 0 is not the owner its group id names",
                ));
            }
            let epoch = psk::export(p, &group)?;
            let record = parts.record_mut();
            record
                .psks
                .entry(group_id.clone())
                .or_default()
                .insert(epoch);
            record.others.insert(group_id.clone());
            parts.others.insert(group_id, group);
            Ok(Some(owner))
        })?;
        Ok(match outcome {
            Some(owner) => Received::Joined { owner },
            None => Received::NotForUs,
        })
    }

    fn process(&mut self, message: ProtocolMessage) -> Result<Received> {
        let group_id = message.group_id().as_slice().to_vec();
        let owner = owner_of(&group_id)
            .ok_or(DmlsError::Refused(
                "a message of a group that is not a send group",
            ))?
            .to_vec();
        let is_own = group_id == self.own.group_id().as_slice();
        let epoch = match self.group(&group_id) {
            Some(group) => group.epoch().as_u64(),
            None => return Err(DmlsError::UnknownGroup),
        };
        let message_epoch = message.epoch().as_u64();
        if message_epoch > epoch {
            return Err(DmlsError::NotYet);
        }
        let identity = self.record.identity.clone();
        let outcome = self.atomically(|p, parts| {
            let group = if is_own {
                &mut *parts.own
            } else {
                parts
                    .others
                    .get_mut(&group_id)
                    .ok_or(DmlsError::UnknownGroup)?
            };
            let processed = match group.process_message(p, message) {
                Ok(processed) => processed,
                // A generation whose key is spent: these bytes again (a
                // duplicate the in-memory record of this process did not
                // see, e.g. from before a restart), or a replay.
                Err(ProcessMessageError::ValidationError(ValidationError::UnableToDecrypt(
                    MessageDecryptionError::SecretTreeError(SecretTreeError::SecretReuseError),
                ))) => return Ok(Received::Duplicate),
                Err(error) => return Err(Self::processing_error(error)),
            };
            let from_owner = *processed.sender() == Sender::Member(LeafNodeIndex::new(0));
            match processed.into_content() {
                ProcessedMessageContent::ApplicationMessage(message) => {
                    if !from_owner || is_own {
                        return Err(DmlsError::Refused(
                            "an application message from a leaf other than 0",
                        ));
                    }
                    Ok(Received::Message {
                        owner,
                        plaintext: message.into_bytes(),
                    })
                }
                ProcessedMessageContent::ProposalMessage(proposal) => {
                    group
                        .store_pending_proposal(p.storage(), *proposal)
                        .map_err(openmls)?;
                    Ok(Received::Proposal { owner })
                }
                ProcessedMessageContent::StagedCommitMessage(staged) => {
                    if !from_owner || is_own {
                        return Err(DmlsError::Refused("a commit from a leaf other than 0"));
                    }
                    let removed: Vec<Vec<u8>> = staged
                        .remove_proposals()
                        .filter_map(|q| group.member(q.remove_proposal().removed()))
                        .map(identity_of)
                        .filter(|removed| *removed != identity)
                        .collect();
                    let self_removed = staged.self_removed();
                    group.merge_staged_commit(p, *staged).map_err(openmls)?;
                    if !self_removed
                        && group
                            .member(LeafNodeIndex::new(0))
                            .map(identity_of)
                            .as_deref()
                            != Some(owner.as_slice())
                    {
                        // Aborts the transaction: the merge is not kept.
                        return Err(DmlsError::Refused(
                            "a commit that gives leaf 0 another identity",
                        ));
                    }
                    if self_removed {
                        Self::forget_group(p, parts, &group_id)?;
                        return Ok(Received::RemovedFrom { owner });
                    }
                    let epoch = psk::export(p, group)?;
                    Self::retain_psks(p, parts.record_mut(), &group_id, epoch)?;
                    let mut outgoing = Vec::new();
                    for participant in &removed {
                        if let Some(commit) = Self::remove_from_own(p, parts, participant)? {
                            outgoing.push(commit);
                        }
                    }
                    Ok(Received::Commit {
                        owner,
                        epoch,
                        removed,
                        outgoing,
                    })
                }
                ProcessedMessageContent::ExternalJoinProposalMessage(_) => {
                    Err(DmlsError::Refused("an external join proposal"))
                }
                // The participant's own messages, echoed back by a relay.
                ProcessedMessageContent::OwnPendingCommit
                | ProcessedMessageContent::OwnPrivateMessage => Ok(Received::Duplicate),
            }
        });
        match outcome {
            // A handshake message of a left epoch (an application message
            // of one still decrypts, within the retained epochs).
            Err(DmlsError::Invalid(_)) if message_epoch < epoch => Ok(Received::Stale),
            outcome => outcome,
        }
    }

    /// What a failed `process_message` means here.
    fn processing_error(error: ProcessMessageError<crate::StoreError>) -> DmlsError {
        match error {
            // A commit naming a PSK of an epoch not reached yet, or a
            // proposal not received yet.
            ProcessMessageError::InvalidCommit(StageCommitError::PskError(
                PskError::KeyNotFound,
            ))
            | ProcessMessageError::InvalidCommit(StageCommitError::MissingProposal) => {
                DmlsError::NotYet
            }
            error => DmlsError::Invalid(error.to_string()),
        }
    }

    /// Merges the own send group's pending commit, and exports the new
    /// epoch's PSK: the members import it from there, the owner needs it to
    /// process their commits that do.
    fn merge_own(p: &TransactionProvider<'_>, parts: &mut Parts<'_>) -> Result<()> {
        parts.own.merge_pending_commit(p).map_err(openmls)?;
        let epoch = psk::export(p, parts.own)?;
        let group_id = parts.own.group_id().as_slice().to_vec();
        Self::retain_psks(p, parts.record_mut(), &group_id, epoch)
    }

    /// Keeps the PSK of `epoch` of `group_id`, and erases those older than
    /// [`RETAINED_EPOCHS`].
    fn retain_psks(
        p: &TransactionProvider<'_>,
        record: &mut Record,
        group_id: &[u8],
        epoch: u64,
    ) -> Result<()> {
        let epochs = record.psks.entry(group_id.to_vec()).or_default();
        epochs.insert(epoch);
        let expired: Vec<u64> = epochs
            .iter()
            .copied()
            .filter(|e| e + RETAINED_EPOCHS <= epoch)
            .collect();
        for old in expired {
            psk::forget(p, group_id, old)?;
            epochs.remove(&old);
        }
        Ok(())
    }

    /// Removes `identity` from the own send group (returning the commit),
    /// and deletes its send group here; `None` if it is in neither.
    fn remove_from_own(
        p: &TransactionProvider<'_>,
        parts: &mut Parts<'_>,
        identity: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        let their_group = send_group_id(identity);
        if parts.others.contains_key(&their_group) {
            Self::forget_group(p, parts, &their_group)?;
        }
        let Some(leaf) = leaf_of(parts.own, identity) else {
            return Ok(None);
        };
        // The members' waiting proposals go in too (OpenMLS commits a
        // member's own proposal to leave and this Remove as one).
        let bundle = parts
            .own
            .commit_builder()
            .propose_removals([leaf])
            .load_psks(p.storage())
            .map_err(openmls)?
            .build(p.rand(), p.crypto(), parts.signer, |queued| {
                *queued.sender() == Sender::Member(LeafNodeIndex::new(0)) || committable(queued)
            })
            .map_err(openmls)?
            .stage_commit(p)
            .map_err(openmls)?;
        Self::merge_own(p, parts)?;
        Ok(Some(wire(bundle.commit())?))
    }

    /// Deletes another's send group here, with its PSKs.
    fn forget_group(
        p: &TransactionProvider<'_>,
        parts: &mut Parts<'_>,
        group_id: &[u8],
    ) -> Result<()> {
        if let Some(mut group) = parts.others.remove(group_id) {
            group.delete(p.storage()).map_err(DmlsError::Store)?;
        }
        let record = parts.record_mut();
        for epoch in record.psks.remove(group_id).unwrap_or_default() {
            psk::forget(p, group_id, epoch)?;
        }
        record.others.remove(group_id);
        record.imported.remove(group_id);
        Ok(())
    }

    /// Runs `operation` in one transaction with the participant's record:
    /// all of it lands, or none. After a failure the groups and the record
    /// are reloaded, since OpenMLS changes its groups in memory too.
    fn atomically<T>(
        &mut self,
        operation: impl FnOnce(&TransactionProvider<'_>, &mut Parts<'_>) -> Result<T>,
    ) -> Result<T> {
        let Participant {
            provider,
            signer,
            record,
            own,
            others,
            ..
        } = self;
        let outcome = provider.transaction(|p| {
            let mut parts = Parts {
                signer,
                record,
                record_changed: false,
                own,
                others,
            };
            let value = operation(p, &mut parts)?;
            if parts.record_changed {
                p.storage().write_dmls_participant(&*parts.record)?;
            }
            Ok::<_, DmlsError>(value)
        });
        match outcome {
            Ok(value) => Ok(value),
            Err(error) => {
                self.reload()?;
                Err(Self::flatten(error))
            }
        }
    }

    /// Back to what the store holds.
    fn reload(&mut self) -> Result<()> {
        (self.record, self.own, self.others) = Self::load(self.provider.storage())?;
        Ok(())
    }

    /// The participant's record and send groups, from the store.
    fn load(store: &crate::Store) -> Result<(Record, MlsGroup, BTreeMap<Vec<u8>, MlsGroup>)> {
        let record: Record = store
            .dmls_participant()?
            .ok_or(DmlsError::Unavailable("a participant in this store"))?;
        let group = |group_id: &[u8]| -> Result<MlsGroup> {
            MlsGroup::load(store, &GroupId::from_slice(group_id))
                .map_err(DmlsError::Store)?
                .ok_or(DmlsError::Unavailable("a stored send group"))
        };
        let own = group(&send_group_id(&record.identity))?;
        let others = record
            .others
            .iter()
            .map(|id| Ok((id.clone(), group(id)?)))
            .collect::<Result<_>>()?;
        Ok((record, own, others))
    }

    fn flatten(error: TransactionError<DmlsError>) -> DmlsError {
        match error {
            TransactionError::Aborted(error) => error,
            TransactionError::Store(error) => DmlsError::Store(error),
        }
    }

    fn credential_with_key(record: &Record, signer: &SigningKey) -> CredentialWithKey {
        CredentialWithKey {
            credential: BasicCredential::new(record.identity.clone()).into(),
            signature_key: signer.public().into(),
        }
    }
}
