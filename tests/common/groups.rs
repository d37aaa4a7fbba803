//! Provider-generic OpenMLS group tests and known-answer-test replays.
//!
//! Everything here is generic over [`OpenMlsProvider`], so a crate providing
//! its own provider can run the same checks that are validated here with
//! `openmls_rust_crypto::OpenMlsRustCrypto`.
//!
//! * [`run_group_lifecycle`] / [`run_mixed_group`]: a scripted group session
//!   (welcome joins, application messages in every direction, self-update,
//!   removal, leave, external join) with epoch-authenticator agreement checked
//!   at every epoch. Members talk to each other only through TLS-serialized
//!   bytes, so members backed by different providers interoperate for real.
//! * [`run_passive_client_welcome`]: replays the `passive-client-welcome`
//!   interop vectors through OpenMLS's public API.
//! * [`run_key_schedule`] / [`run_treekem`]: drive OpenMLS's own KAT runners
//!   and count which entries actually ran.

#![allow(dead_code)] // not every test binary uses every helper

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls::schedule::PreSharedKeyId;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::{storage::StorageProvider as _, types::HpkePrivateKey};
use serde::de::DeserializeOwned;
use serde::Deserialize;

#[path = "treekem.rs"]
mod treekem;

// =================================================================================================
// Part 1: live groups
// =================================================================================================

/// What the scripted session verified.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionSummary {
    /// Epochs at which all current members were checked for agreement.
    pub epochs: usize,
    /// Commits sent and processed by every other member.
    pub commits: usize,
    /// Application messages decrypted by a receiver and compared with what was sent.
    pub messages: usize,
    /// Deliveries to removed/departed members that were (correctly) rejected.
    pub rejections: usize,
}

impl std::ops::AddAssign for SessionSummary {
    fn add_assign(&mut self, other: Self) {
        self.epochs += other.epochs;
        self.commits += other.commits;
        self.messages += other.messages;
        self.rejections += other.rejections;
    }
}

impl std::fmt::Display for SessionSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} epochs checked, {} commits processed, {} messages decrypted, {} deliveries to ex-members rejected",
            self.epochs, self.commits, self.messages, self.rejections
        )
    }
}

/// The outcome of a member processing one incoming message.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Application {
        sender: Vec<u8>,
        plaintext: Vec<u8>,
    },
    /// A standalone proposal, now stored in the member's proposal queue.
    Proposal {
        sender: Vec<u8>,
    },
    /// A commit, now merged.
    Commit {
        self_removed: bool,
    },
}

/// A member's view of its current group state.
#[derive(Debug, PartialEq, Eq)]
pub struct GroupView {
    pub epoch: u64,
    pub epoch_authenticator: Vec<u8>,
    pub members: BTreeSet<Vec<u8>>,
    pub active: bool,
}

/// Provider-independent handle on one group member. All inputs and outputs are
/// TLS-serialized MLS structures, so implementations backed by different
/// providers can be mixed in one session. Failures panic, except in
/// [`Participant::receive`], where rejecting a message can be the expected outcome.
pub trait Participant {
    /// For diagnostics, e.g. `Alice[A]`.
    fn label(&self) -> &str;
    /// The identity in the member's basic credential.
    fn identity(&self) -> &[u8];
    /// A fresh key package as `MLSMessage(KeyPackage)`; the private parts stay in the member's storage.
    fn key_package(&self) -> Vec<u8>;
    fn create_group(&mut self);
    /// Joins from an `MLSMessage(Welcome)` with an out-of-band ratchet tree.
    fn join_by_welcome(&mut self, welcome: &[u8], ratchet_tree: &[u8]);
    /// Joins from an `MLSMessage(GroupInfo)` carrying the ratchet tree; returns the commit.
    fn join_by_external_commit(&mut self, group_info: &[u8]) -> Vec<u8>;
    /// Commits adds (merged locally); returns the commit, the welcome and the new ratchet tree.
    fn add_members(&mut self, key_packages: &[Vec<u8>]) -> AddOutput;
    /// Commits a self-update (merged locally); returns the commit.
    fn self_update(&mut self) -> Vec<u8>;
    /// Commits the removal of the member with `identity` (merged locally); returns the commit.
    fn remove_member(&mut self, identity: &[u8]) -> Vec<u8>;
    /// Returns a proposal to remove oneself.
    fn propose_leave(&mut self) -> Vec<u8>;
    /// Commits all pending proposals (merged locally); returns the commit.
    fn commit_pending_proposals(&mut self) -> Vec<u8>;
    /// Exports an `MLSMessage(GroupInfo)` including the ratchet tree extension.
    fn export_group_info(&self) -> Vec<u8>;
    /// Encrypts an application message.
    fn send(&mut self, plaintext: &[u8]) -> Vec<u8>;
    /// Processes an incoming message: proposals are stored, commits merged.
    fn receive(&mut self, message: &[u8]) -> Result<Received, String>;
    fn view(&self) -> GroupView;
    /// The group's id.
    fn group_id(&self) -> Vec<u8>;
    /// Closes the member's storage and opens it again, reloading the group
    /// from it; members without reopenable storage do nothing.
    fn reopen(&mut self) {}
}

pub struct AddOutput {
    pub commit: Vec<u8>,
    pub welcome: Vec<u8>,
    pub ratchet_tree: Vec<u8>,
}

/// A member backed by its own provider instance, with a basic credential and
/// an `openmls_basic_credential` signature key pair.
pub struct Client<P: OpenMlsProvider> {
    label: String,
    /// `None` only while the storage is being reopened.
    provider: Option<P>,
    /// Opens the member's storage again, for [`Participant::reopen`].
    reopen: Option<Box<dyn Fn() -> P>>,
    ciphersuite: Ciphersuite,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    group: Option<MlsGroup>,
}

impl<P: OpenMlsProvider> Client<P> {
    pub fn new(name: &str, provider_tag: &str, provider: P, ciphersuite: Ciphersuite) -> Self {
        let label = format!("{name}[{provider_tag}]");
        let signer = SignatureKeyPair::new(ciphersuite.signature_algorithm())
            .unwrap_or_else(|e| panic!("{label}: generating signature key pair: {e:?}"));
        signer
            .store(provider.storage())
            .unwrap_or_else(|e| panic!("{label}: storing signature key pair: {e:?}"));
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.public().into(),
        };
        Self {
            label,
            provider: Some(provider),
            reopen: None,
            ciphersuite,
            signer,
            credential,
            group: None,
        }
    }

    /// Makes [`Participant::reopen`] close the storage and call `open`.
    pub fn reopenable(mut self, open: Box<dyn Fn() -> P>) -> Self {
        self.reopen = Some(open);
        self
    }

    pub fn provider(&self) -> &P {
        self.provider.as_ref().expect("storage is open")
    }

    fn group(&self) -> &MlsGroup {
        self.group
            .as_ref()
            .unwrap_or_else(|| panic!("{}: not in a group", self.label))
    }

    fn set_group(&mut self, group: MlsGroup) {
        assert!(self.group.is_none(), "{}: already in a group", self.label);
        self.group = Some(group);
    }

    /// Runs a fallible operation on this member's group, panicking with
    /// context on failure.
    fn with_group<T, E: std::fmt::Debug>(
        &mut self,
        what: &str,
        operation: impl FnOnce(&mut MlsGroup, &P, &SignatureKeyPair) -> Result<T, E>,
    ) -> T {
        let Self {
            label,
            provider,
            signer,
            group,
            ..
        } = self;
        let group = group
            .as_mut()
            .unwrap_or_else(|| panic!("{label}: {what}: not in a group"));
        let provider = provider.as_ref().expect("storage is open");
        operation(group, provider, signer).unwrap_or_else(|e| panic!("{label}: {what}: {e:?}"))
    }

    /// Merges the commit this member just created and serializes it.
    fn merge_own_commit(&mut self, commit: MlsMessageOut, what: &str) -> Vec<u8> {
        self.with_group(
            &format!("merging own {what} commit"),
            |group, provider, _| group.merge_pending_commit(provider),
        );
        serialize(&commit, &self.label, what)
    }

    fn join_config() -> MlsGroupJoinConfig {
        // Default wire-format policy: handshake and application messages are
        // PrivateMessages (external commits are always PublicMessages).
        MlsGroupJoinConfig::builder().build()
    }
}

impl<P: OpenMlsProvider> Participant for Client<P> {
    fn label(&self) -> &str {
        &self.label
    }

    fn identity(&self) -> &[u8] {
        self.credential.credential.serialized_content()
    }

    fn key_package(&self) -> Vec<u8> {
        let bundle = KeyPackage::builder()
            .build(
                self.ciphersuite,
                self.provider(),
                &self.signer,
                self.credential.clone(),
            )
            .unwrap_or_else(|e| panic!("{}: building key package: {e:?}", self.label));
        serialize(
            &MlsMessageOut::from(bundle.key_package().clone()),
            &self.label,
            "key package",
        )
    }

    fn create_group(&mut self) {
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(self.ciphersuite)
            // Welcome joiners get the tree out of band; the external joiner
            // gets it inside the exported GroupInfo.
            .use_ratchet_tree_extension(false)
            .build();
        let group = MlsGroup::new(
            self.provider(),
            &self.signer,
            &config,
            self.credential.clone(),
        )
        .unwrap_or_else(|e| panic!("{}: creating group: {e:?}", self.label));
        self.set_group(group);
    }

    fn join_by_welcome(&mut self, welcome: &[u8], ratchet_tree: &[u8]) {
        let label = &self.label;
        let welcome = decode_message(welcome, label, "welcome")
            .into_welcome()
            .unwrap_or_else(|| panic!("{label}: message is not a Welcome"));
        let ratchet_tree = RatchetTreeIn::tls_deserialize_exact(ratchet_tree)
            .unwrap_or_else(|e| panic!("{label}: decoding ratchet tree: {e:?}"));
        let group =
            StagedWelcome::build_from_welcome(self.provider(), &Self::join_config(), welcome)
                .unwrap_or_else(|e| panic!("{label}: processing welcome: {e:?}"))
                .with_ratchet_tree(ratchet_tree)
                .build()
                .unwrap_or_else(|e| panic!("{label}: staging welcome: {e:?}"))
                .into_group(self.provider())
                .unwrap_or_else(|e| panic!("{label}: joining from staged welcome: {e:?}"));
        self.set_group(group);
    }

    fn join_by_external_commit(&mut self, group_info: &[u8]) -> Vec<u8> {
        let label = &self.label;
        let group_info = decode_message(group_info, label, "group info")
            .into_verifiable_group_info()
            .unwrap_or_else(|| panic!("{label}: message is not a GroupInfo"));
        let (group, bundle) = MlsGroup::external_commit_builder()
            .with_config(Self::join_config())
            .build_group(self.provider(), group_info, self.credential.clone())
            .unwrap_or_else(|e| panic!("{label}: starting external commit: {e:?}"))
            .load_psks(self.provider().storage())
            .unwrap_or_else(|e| panic!("{label}: loading PSKs for external commit: {e:?}"))
            .build(
                self.provider().rand(),
                self.provider().crypto(),
                &self.signer,
                |_| true,
            )
            .unwrap_or_else(|e| panic!("{label}: building external commit: {e:?}"))
            .finalize(self.provider())
            .unwrap_or_else(|e| panic!("{label}: finalizing external commit: {e:?}"));
        let commit = serialize(&bundle.into_commit(), label, "external commit");
        self.set_group(group);
        commit
    }

    fn add_members(&mut self, key_packages: &[Vec<u8>]) -> AddOutput {
        let label = &self.label;
        let key_packages: Vec<KeyPackage> = key_packages
            .iter()
            .map(|bytes| {
                let MlsMessageBodyIn::KeyPackage(key_package) =
                    decode_message(bytes, label, "key package").extract()
                else {
                    panic!("{label}: message is not a KeyPackage");
                };
                key_package
                    .validate(self.provider().crypto(), ProtocolVersion::Mls10)
                    .unwrap_or_else(|e| panic!("{label}: validating key package: {e:?}"))
            })
            .collect();
        let (commit, welcome, _) = self.with_group("committing adds", |group, provider, signer| {
            group.add_members(provider, signer, &key_packages)
        });
        let commit = self.merge_own_commit(commit, "add");
        let ratchet_tree = self
            .group()
            .export_ratchet_tree()
            .tls_serialize_detached()
            .unwrap_or_else(|e| panic!("{}: serializing ratchet tree: {e:?}", self.label));
        AddOutput {
            commit,
            welcome: serialize(&welcome, &self.label, "welcome"),
            ratchet_tree,
        }
    }

    fn self_update(&mut self) -> Vec<u8> {
        let (commit, _, _) =
            self.with_group("committing self-update", |group, provider, signer| {
                group
                    .self_update(provider, signer, LeafNodeParameters::default())
                    .map(|bundle| bundle.into_contents())
            });
        self.merge_own_commit(commit, "self-update")
    }

    fn remove_member(&mut self, identity: &[u8]) -> Vec<u8> {
        let index = self
            .group()
            .members()
            .find(|member| member.credential.serialized_content() == identity)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no member with identity {:?}",
                    self.label,
                    String::from_utf8_lossy(identity)
                )
            })
            .index;
        let (commit, _, _) = self.with_group("committing removal", |group, provider, signer| {
            group.remove_members(provider, signer, &[index])
        });
        self.merge_own_commit(commit, "remove")
    }

    fn propose_leave(&mut self) -> Vec<u8> {
        let proposal = self.with_group("proposing to leave", |group, provider, signer| {
            group.leave_group(provider, signer)
        });
        serialize(&proposal, &self.label, "leave proposal")
    }

    fn commit_pending_proposals(&mut self) -> Vec<u8> {
        let (commit, _, _) = self
            .with_group("committing pending proposals", |group, provider, signer| {
                group.commit_to_pending_proposals(provider, signer)
            });
        self.merge_own_commit(commit, "pending-proposals")
    }

    fn export_group_info(&self) -> Vec<u8> {
        let group_info = self
            .group()
            .export_group_info(self.provider().crypto(), &self.signer, true)
            .unwrap_or_else(|e| panic!("{}: exporting group info: {e:?}", self.label));
        serialize(&group_info, &self.label, "group info")
    }

    fn send(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let message = self.with_group("creating application message", |group, provider, signer| {
            group.create_message(provider, signer, plaintext)
        });
        serialize(&message, &self.label, "application message")
    }

    fn receive(&mut self, message: &[u8]) -> Result<Received, String> {
        let message = MlsMessageIn::tls_deserialize_exact(message)
            .map_err(|e| format!("decoding MLSMessage: {e:?}"))?
            .try_into_protocol_message()
            .map_err(|e| format!("not a protocol message: {e:?}"))?;
        let provider = self.provider.as_ref().expect("storage is open");
        let group = self.group.as_mut().ok_or("not in a group")?;
        let processed = group
            .process_message(provider, message)
            .map_err(|e| format!("processing message: {e:?}"))?;
        let sender = processed.credential().serialized_content().to_vec();
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(message) => Ok(Received::Application {
                sender,
                plaintext: message.into_bytes(),
            }),
            ProcessedMessageContent::ProposalMessage(proposal) => {
                group
                    .store_pending_proposal(provider.storage(), *proposal)
                    .map_err(|e| format!("storing proposal: {e:?}"))?;
                Ok(Received::Proposal { sender })
            }
            ProcessedMessageContent::StagedCommitMessage(commit) => {
                let self_removed = commit.self_removed();
                group
                    .merge_staged_commit(provider, *commit)
                    .map_err(|e| format!("merging commit: {e:?}"))?;
                Ok(Received::Commit { self_removed })
            }
            other => Err(format!("unexpected message content: {other:?}")),
        }
    }

    fn group_id(&self) -> Vec<u8> {
        self.group().group_id().as_slice().to_vec()
    }

    fn reopen(&mut self) {
        let Some(open) = &self.reopen else {
            return;
        };
        let group_id = self.group.take().map(|group| group.group_id().clone());
        // The old storage must be closed before it is opened again.
        self.provider = None;
        let provider = open();
        if let Some(group_id) = group_id {
            let group = MlsGroup::load(provider.storage(), &group_id)
                .unwrap_or_else(|e| {
                    panic!("{}: loading the group after reopening: {e:?}", self.label)
                })
                .unwrap_or_else(|| {
                    panic!("{}: the group is not in the reopened storage", self.label)
                });
            self.group = Some(group);
        }
        self.provider = Some(provider);
    }

    fn view(&self) -> GroupView {
        let group = self.group();
        GroupView {
            epoch: group.epoch().as_u64(),
            epoch_authenticator: group.epoch_authenticator().as_slice().to_vec(),
            members: group
                .members()
                .map(|member| member.credential.serialized_content().to_vec())
                .collect(),
            active: group.is_active(),
        }
    }
}

fn serialize(message: &MlsMessageOut, label: &str, what: &str) -> Vec<u8> {
    message
        .tls_serialize_detached()
        .unwrap_or_else(|e| panic!("{label}: serializing {what}: {e:?}"))
}

fn decode_message(bytes: &[u8], label: &str, what: &str) -> MlsMessageIn {
    MlsMessageIn::tls_deserialize_exact(bytes)
        .unwrap_or_else(|e| panic!("{label}: decoding {what} as MLSMessage: {e:?}"))
}

/// Drives a set of participants through a session and checks every step.
struct Session<'a> {
    members: Vec<Box<dyn Participant + 'a>>,
    /// Indices of current group members, in join order.
    current: Vec<usize>,
    /// Indices of removed/departed members; every later message must be unreadable to them.
    former: Vec<usize>,
    /// Epoch number and authenticator at the last check.
    last_epoch: Option<(u64, Vec<u8>)>,
    summary: SessionSummary,
    /// Whether every member reopens its storage at every step.
    reopen: bool,
}

impl<'a> Session<'a> {
    fn new(members: Vec<Box<dyn Participant + 'a>>, reopen: bool) -> Self {
        Self {
            reopen,
            members,
            current: Vec::new(),
            former: Vec::new(),
            last_epoch: None,
            summary: SessionSummary::default(),
        }
    }

    fn label(&self, member: usize) -> String {
        self.members[member].label().to_owned()
    }

    fn others(&self, member: usize) -> Vec<usize> {
        self.current
            .iter()
            .copied()
            .filter(|&m| m != member)
            .collect()
    }

    fn join(&mut self, member: usize) {
        assert!(!self.current.contains(&member));
        self.current.push(member);
    }

    /// Delivers a commit from `committer` (already merged on its side) to all
    /// other current members. Exactly the members in `removed` must find
    /// themselves removed; they then become former members.
    fn deliver_commit(&mut self, committer: usize, commit: &[u8], removed: &[usize]) {
        let committer_label = self.label(committer);
        for receiver in self.others(committer) {
            let receiver_label = self.label(receiver);
            let outcome = self.members[receiver].receive(commit).unwrap_or_else(|e| {
                panic!("{receiver_label} failed to process the commit from {committer_label}: {e}")
            });
            let expect_removed = removed.contains(&receiver);
            assert_eq!(
                outcome,
                Received::Commit {
                    self_removed: expect_removed
                },
                "{receiver_label} processing the commit from {committer_label}"
            );
            if expect_removed {
                assert!(
                    !self.members[receiver].view().active,
                    "{receiver_label} is still active after being removed"
                );
            }
        }
        for &member in removed {
            assert!(
                self.current.contains(&member),
                "{} is not a member",
                self.label(member)
            );
            self.current.retain(|&m| m != member);
            self.former.push(member);
        }
        self.summary.commits += 1;
    }

    /// Delivers a standalone proposal to all other current members, who store it.
    fn deliver_proposal(&mut self, proposer: usize, proposal: &[u8]) {
        let proposer_label = self.label(proposer);
        let expected = Received::Proposal {
            sender: self.members[proposer].identity().to_vec(),
        };
        for receiver in self.others(proposer) {
            let receiver_label = self.label(receiver);
            let outcome = self.members[receiver]
                .receive(proposal)
                .unwrap_or_else(|e| {
                    panic!("{receiver_label} failed to process the proposal from {proposer_label}: {e}")
                });
            assert_eq!(
                outcome, expected,
                "{receiver_label} processing the proposal from {proposer_label}"
            );
        }
    }

    /// Checks the new epoch and then exchanges application messages.
    fn step(&mut self, description: &str) {
        if self.reopen {
            for member in self.current.clone() {
                self.members[member].reopen();
            }
        }
        self.check_epoch(description);
        self.exchange_messages(description);
    }

    /// All current members agree on epoch number, epoch authenticator and
    /// membership; the epoch advanced by one and the authenticator changed.
    fn check_epoch(&mut self, description: &str) {
        let reference_member = self.current[0];
        let reference = self.members[reference_member].view();
        let expected_members: BTreeSet<Vec<u8>> = self
            .current
            .iter()
            .map(|&m| self.members[m].identity().to_vec())
            .collect();
        for &member in &self.current {
            let view = self.members[member].view();
            let label = self.label(member);
            assert!(view.active, "[{description}] {label} is not active");
            assert_eq!(
                view.epoch,
                reference.epoch,
                "[{description}] epoch of {label} differs from {}",
                self.label(reference_member)
            );
            assert_eq!(
                hex::encode(&view.epoch_authenticator),
                hex::encode(&reference.epoch_authenticator),
                "[{description}] epoch authenticator of {label} differs from {} at epoch {}",
                self.label(reference_member),
                reference.epoch
            );
            assert_eq!(
                printable(&view.members),
                printable(&expected_members),
                "[{description}] membership as seen by {label}"
            );
        }
        assert!(
            !reference.epoch_authenticator.is_empty(),
            "[{description}] empty epoch authenticator"
        );
        if let Some((last_epoch, last_authenticator)) = &self.last_epoch {
            assert_eq!(
                reference.epoch,
                last_epoch + 1,
                "[{description}] epoch did not advance by one"
            );
            assert_ne!(
                &reference.epoch_authenticator, last_authenticator,
                "[{description}] epoch authenticator did not change"
            );
        }
        self.last_epoch = Some((reference.epoch, reference.epoch_authenticator));
        self.summary.epochs += 1;
    }

    /// Every current member sends one message; every other current member
    /// decrypts it and sees the right sender and plaintext; no former member
    /// can process it.
    fn exchange_messages(&mut self, description: &str) {
        if self.current.len() + self.former.len() < 2 {
            return; // Nobody to talk to.
        }
        let epoch = self.last_epoch.as_ref().expect("check_epoch ran").0;
        for sender in self.current.clone() {
            let sender_label = self.label(sender);
            let plaintext =
                format!("epoch {epoch} ({description}): hello from {sender_label}").into_bytes();
            let message = self.members[sender].send(&plaintext);
            let expected = Received::Application {
                sender: self.members[sender].identity().to_vec(),
                plaintext: plaintext.clone(),
            };
            for receiver in self.others(sender) {
                let receiver_label = self.label(receiver);
                let outcome = self.members[receiver]
                    .receive(&message)
                    .unwrap_or_else(|e| {
                        panic!("[{description}] {receiver_label} cannot decrypt the message from {sender_label}: {e}")
                    });
                assert_eq!(
                    outcome, expected,
                    "[{description}] {receiver_label} decrypting the message from {sender_label}"
                );
                self.summary.messages += 1;
            }
            for former in self.former.clone() {
                let former_label = self.label(former);
                if let Ok(outcome) = self.members[former].receive(&message) {
                    panic!("[{description}] former member {former_label} processed a message from {sender_label}: {outcome:?}");
                }
                self.summary.rejections += 1;
            }
        }
    }
}

fn printable(identities: &BTreeSet<Vec<u8>>) -> Vec<String> {
    identities
        .iter()
        .map(|id| String::from_utf8_lossy(id).into_owned())
        .collect()
}

const ALICE: usize = 0;
const BOB: usize = 1;
const CHARLIE: usize = 2;
const DAVE: usize = 3;
const NAMES: [&str; 4] = ["Alice", "Bob", "Charlie", "Dave"];

/// The scripted session, over four participants (Alice, Bob, Charlie, Dave in that order).
fn run_session(members: Vec<Box<dyn Participant + '_>>, reopen: bool) -> SessionSummary {
    assert_eq!(members.len(), NAMES.len());
    let mut s = Session::new(members, reopen);

    // Epoch 0: Alice alone.
    s.members[ALICE].create_group();
    s.join(ALICE);
    s.step("Alice created the group");

    // Epoch 1: Alice adds Bob and Charlie; they join from the Welcome.
    let key_packages = [
        s.members[BOB].key_package(),
        s.members[CHARLIE].key_package(),
    ];
    let add = s.members[ALICE].add_members(&key_packages);
    s.deliver_commit(ALICE, &add.commit, &[]);
    for joiner in [BOB, CHARLIE] {
        s.members[joiner].join_by_welcome(&add.welcome, &add.ratchet_tree);
        s.join(joiner);
    }
    s.step("Alice added Bob and Charlie");

    // Epoch 2: Bob updates his leaf.
    let commit = s.members[BOB].self_update();
    s.deliver_commit(BOB, &commit, &[]);
    s.step("Bob self-updated");

    // Epoch 3: Alice removes Charlie.
    let charlie = s.members[CHARLIE].identity().to_vec();
    let commit = s.members[ALICE].remove_member(&charlie);
    s.deliver_commit(ALICE, &commit, &[CHARLIE]);
    s.step("Alice removed Charlie");

    // Epoch 4: Bob proposes to leave; Alice commits the proposal.
    let proposal = s.members[BOB].propose_leave();
    s.deliver_proposal(BOB, &proposal);
    let commit = s.members[ALICE].commit_pending_proposals();
    s.deliver_commit(ALICE, &commit, &[BOB]);
    s.step("Bob left");

    // Epoch 5: Dave joins by external commit from Alice's GroupInfo (with ratchet tree).
    let group_info = s.members[ALICE].export_group_info();
    let commit = s.members[DAVE].join_by_external_commit(&group_info);
    s.join(DAVE);
    s.deliver_commit(DAVE, &commit, &[]);
    s.step("Dave joined by external commit");

    s.summary
}

/// Full group lifecycle where every member has its own instance of one provider type.
pub fn run_group_lifecycle<P: OpenMlsProvider>(
    make_provider: impl Fn() -> P,
    ciphersuite: Ciphersuite,
) -> SessionSummary {
    let members = NAMES
        .iter()
        .map(|name| {
            Box::new(Client::new(name, "P", make_provider(), ciphersuite))
                as Box<dyn Participant + '_>
        })
        .collect();
    let summary = run_session(members, false);
    println!("group lifecycle {ciphersuite:?}: {summary}");
    summary
}

/// The full lifecycle with every member closing and reopening its storage
/// before every step: `open(name)` opens member `name`'s storage, the same
/// storage each time.
pub fn run_group_lifecycle_reopening<P: OpenMlsProvider + 'static>(
    open: impl Fn(&str) -> P + 'static,
    ciphersuite: Ciphersuite,
) -> SessionSummary {
    let open = std::rc::Rc::new(open);
    let members = NAMES
        .iter()
        .map(|name| {
            let reopen = std::rc::Rc::clone(&open);
            let client = Client::new(name, "P", open(name), ciphersuite)
                .reopenable(Box::new(move || reopen(name)));
            Box::new(client) as Box<dyn Participant + '_>
        })
        .collect();
    let summary = run_session(members, true);
    println!("group lifecycle {ciphersuite:?}, storage reopened at every step: {summary}");
    summary
}

/// The same session with members alternating between two provider types. It
/// runs twice, with the roles swapped, so that each provider type plays every
/// role (creator/adder/remover, welcome joiner, updater, leaver, removed
/// member, external joiner).
pub fn run_mixed_group<PA: OpenMlsProvider, PB: OpenMlsProvider>(
    make_a: impl Fn() -> PA,
    make_b: impl Fn() -> PB,
    ciphersuite: Ciphersuite,
) -> SessionSummary {
    let mut total = SessionSummary::default();
    for a_is_even in [true, false] {
        let members: Vec<Box<dyn Participant + '_>> = NAMES
            .iter()
            .enumerate()
            .map(|(i, name)| -> Box<dyn Participant + '_> {
                if (i % 2 == 0) == a_is_even {
                    Box::new(Client::new(name, "A", make_a(), ciphersuite))
                } else {
                    Box::new(Client::new(name, "B", make_b(), ciphersuite))
                }
            })
            .collect();
        let layout = members
            .iter()
            .map(|m| m.label().to_owned())
            .collect::<Vec<_>>()
            .join(", ");
        let summary = run_session(members, false);
        println!("mixed group {ciphersuite:?} ({layout}): {summary}");
        total += summary;
    }
    total
}

// =================================================================================================
// Part 2: test-vector replays
// =================================================================================================

/// Per cipher suite (as u16): number of entries run, number of entries skipped.
pub type SuiteCounts = (BTreeMap<u16, usize>, BTreeMap<u16, usize>);

/// Reads a JSON array of vectors and runs each entry whose cipher suite
/// `supported` accepts. Prints and returns the per-suite counts; panics if
/// nothing ran. Panics inside `run` are annotated with the entry.
fn replay_vectors<T: DeserializeOwned>(
    kind: &str,
    path: &str,
    suite_of: impl Fn(&T) -> u16,
    supported: impl Fn(Ciphersuite) -> bool,
    mut run: impl FnMut(usize, Ciphersuite, T),
) -> SuiteCounts {
    let json =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{kind}: reading {path}: {e}"));
    let entries: Vec<T> =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{kind}: parsing {path}: {e}"));
    let (mut ran, mut skipped): SuiteCounts = Default::default();
    for (index, entry) in entries.into_iter().enumerate() {
        let suite = suite_of(&entry);
        match Ciphersuite::try_from(suite) {
            Ok(ciphersuite) if supported(ciphersuite) => {
                catch_unwind(AssertUnwindSafe(|| run(index, ciphersuite, entry))).unwrap_or_else(
                    |panic| {
                        eprintln!("{kind}: entry #{index} (cipher suite 0x{suite:04x}) failed");
                        resume_unwind(panic)
                    },
                );
                *ran.entry(suite).or_default() += 1;
            }
            _ => *skipped.entry(suite).or_default() += 1,
        }
    }
    println!("{kind} ({path}): {}", format_counts(&ran, &skipped));
    assert!(
        !ran.is_empty(),
        "{kind}: no entry of {path} ran (skipped per suite: {skipped:?})"
    );
    (ran, skipped)
}

fn format_counts(ran: &BTreeMap<u16, usize>, skipped: &BTreeMap<u16, usize>) -> String {
    let suites: BTreeSet<u16> = ran.keys().chain(skipped.keys()).copied().collect();
    let mut out = String::new();
    for suite in suites {
        let _ = write!(
            out,
            "0x{suite:04x}: ran {} skipped {}; ",
            ran.get(&suite).unwrap_or(&0),
            skipped.get(&suite).unwrap_or(&0)
        );
    }
    let _ = write!(
        out,
        "total: ran {} skipped {}",
        ran.values().sum::<usize>(),
        skipped.values().sum::<usize>()
    );
    out
}

/// Whether the provider supports `ciphersuite`. OpenMLS's runners consult
/// either `supports()` or `supported_ciphersuites()`, so the two must agree
/// for the ran/skipped counts to be truthful.
fn provider_supports(provider: &impl OpenMlsProvider, ciphersuite: Ciphersuite) -> bool {
    let supports = provider.crypto().supports(ciphersuite).is_ok();
    let listed = provider
        .crypto()
        .supported_ciphersuites()
        .contains(&ciphersuite);
    assert_eq!(
        supports, listed,
        "provider is inconsistent about {ciphersuite:?}: supports() is_ok = {supports}, \
         listed in supported_ciphersuites() = {listed}"
    );
    supports
}

/// Hex-encoded bytes in a JSON vector.
#[derive(Deserialize)]
struct Hex(#[serde(with = "hex::serde")] Vec<u8>);

#[derive(Deserialize)]
struct PassiveClientCase {
    cipher_suite: u16,
    #[serde(default)]
    external_psks: Vec<ExternalPskCase>,
    #[serde(with = "hex::serde")]
    key_package: Vec<u8>,
    #[serde(with = "hex::serde")]
    signature_priv: Vec<u8>,
    #[serde(with = "hex::serde")]
    encryption_priv: Vec<u8>,
    #[serde(with = "hex::serde")]
    init_priv: Vec<u8>,
    #[serde(with = "hex::serde")]
    welcome: Vec<u8>,
    ratchet_tree: Option<Hex>,
    #[serde(with = "hex::serde")]
    initial_epoch_authenticator: Vec<u8>,
    epochs: Vec<PassiveClientEpoch>,
}

#[derive(Deserialize)]
struct ExternalPskCase {
    #[serde(with = "hex::serde")]
    psk_id: Vec<u8>,
    #[serde(with = "hex::serde")]
    psk: Vec<u8>,
}

#[derive(Deserialize)]
struct PassiveClientEpoch {
    proposals: Vec<Hex>,
    #[serde(with = "hex::serde")]
    commit: Vec<u8>,
    #[serde(with = "hex::serde")]
    epoch_authenticator: Vec<u8>,
}

/// Replays the passive-client-welcome vectors: inject the key package and
/// PSKs into a fresh provider's storage, join from the Welcome (leaf-node
/// lifetime validation skipped: the vectors' key packages have expired),
/// check the initial epoch authenticator, then process each epoch's
/// proposals and commit and check that epoch's authenticator.
pub fn run_passive_client_welcome<P: OpenMlsProvider>(
    make_provider: impl Fn() -> P,
    path: &str,
) -> SuiteCounts {
    let probe = make_provider();
    let mut epochs_checked = 0usize;
    let counts = replay_vectors(
        "passive-client-welcome",
        path,
        |case: &PassiveClientCase| case.cipher_suite,
        |ciphersuite| provider_supports(&probe, ciphersuite),
        |index, ciphersuite, case| {
            epochs_checked += run_passive_client_case(&make_provider(), index, ciphersuite, case)
        },
    );
    println!("passive-client-welcome: {epochs_checked} epochs after the welcome checked");
    counts
}

/// Runs one passive-client entry; returns the number of epochs processed after the join.
fn run_passive_client_case(
    provider: &impl OpenMlsProvider,
    index: usize,
    ciphersuite: Ciphersuite,
    case: PassiveClientCase,
) -> usize {
    let ctx = format!("passive-client-welcome #{index} ({ciphersuite:?})");

    for psk in &case.external_psks {
        // The nonce is not part of the stored PSK; only the ID is the key.
        PreSharedKeyId::external(psk.psk_id.clone(), Vec::new())
            .store(provider, &psk.psk)
            .unwrap_or_else(|e| panic!("{ctx}: storing external PSK: {e:?}"));
    }

    // Key package, with its init and leaf encryption private keys.
    let key_package = decode_message(&case.key_package, &ctx, "key_package")
        .into_keypackage()
        .unwrap_or_else(|| panic!("{ctx}: key_package is not an MLSMessage(KeyPackage)"));
    assert_eq!(
        key_package.ciphersuite(),
        ciphersuite,
        "{ctx}: key package cipher suite"
    );
    let hash_ref = key_package
        .hash_ref(provider.crypto())
        .unwrap_or_else(|e| panic!("{ctx}: hashing key package: {e:?}"));
    let signature_public = key_package.leaf_node().signature_key().as_slice().to_vec();
    let bundle = KeyPackageBundle::new(
        key_package,
        HpkePrivateKey::from(case.init_priv),
        case.encryption_priv.into(),
    );
    provider
        .storage()
        .write_key_package(&hash_ref, &bundle)
        .unwrap_or_else(|e| panic!("{ctx}: storing key package bundle: {e:?}"));
    // The passive client never signs; stored for completeness.
    SignatureKeyPair::from_raw(
        ciphersuite.signature_algorithm(),
        case.signature_priv,
        signature_public,
    )
    .store(provider.storage())
    .unwrap_or_else(|e| panic!("{ctx}: storing signature key pair: {e:?}"));

    // Join. Incoming handshake messages may be Public- or PrivateMessages.
    let join_config = MlsGroupJoinConfig::builder()
        .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
        .number_of_resumption_psks(16)
        .build();
    let welcome = decode_message(&case.welcome, &ctx, "welcome")
        .into_welcome()
        .unwrap_or_else(|| panic!("{ctx}: welcome is not an MLSMessage(Welcome)"));
    let mut join = StagedWelcome::build_from_welcome(provider, &join_config, welcome)
        .unwrap_or_else(|e| panic!("{ctx}: processing welcome: {e:?}"))
        .skip_lifetime_validation();
    if let Some(Hex(tree)) = &case.ratchet_tree {
        let tree = RatchetTreeIn::tls_deserialize_exact(tree)
            .unwrap_or_else(|e| panic!("{ctx}: decoding ratchet_tree: {e:?}"));
        join = join.with_ratchet_tree(tree);
    }
    let mut group = join
        .build()
        .unwrap_or_else(|e| panic!("{ctx}: staging welcome: {e:?}"))
        .into_group(provider)
        .unwrap_or_else(|e| panic!("{ctx}: joining from staged welcome: {e:?}"));
    assert_authenticator(&group, &case.initial_epoch_authenticator, &ctx, "initial");

    for (epoch_index, epoch) in case.epochs.iter().enumerate() {
        let ctx = format!("{ctx} epoch #{epoch_index}");
        for (i, Hex(proposal)) in epoch.proposals.iter().enumerate() {
            match process_vector_message(provider, &mut group, proposal, &ctx) {
                ProcessedMessageContent::ProposalMessage(proposal) => group
                    .store_pending_proposal(provider.storage(), *proposal)
                    .unwrap_or_else(|e| panic!("{ctx}: storing proposal #{i}: {e:?}")),
                other => panic!("{ctx}: proposal #{i} is not a proposal: {other:?}"),
            }
        }
        match process_vector_message(provider, &mut group, &epoch.commit, &ctx) {
            ProcessedMessageContent::StagedCommitMessage(commit) => group
                .merge_staged_commit(provider, *commit)
                .unwrap_or_else(|e| panic!("{ctx}: merging commit: {e:?}")),
            other => panic!("{ctx}: commit is not a commit: {other:?}"),
        }
        assert_authenticator(&group, &epoch.epoch_authenticator, &ctx, "after commit");
    }
    case.epochs.len()
}

fn process_vector_message(
    provider: &impl OpenMlsProvider,
    group: &mut MlsGroup,
    bytes: &[u8],
    ctx: &str,
) -> ProcessedMessageContent {
    let message = decode_message(bytes, ctx, "handshake message")
        .try_into_protocol_message()
        .unwrap_or_else(|e| panic!("{ctx}: not a protocol message: {e:?}"));
    group
        .process_message(provider, message)
        .unwrap_or_else(|e| panic!("{ctx}: processing message: {e:?}"))
        .into_content()
}

fn assert_authenticator(group: &MlsGroup, expected: &[u8], ctx: &str, which: &str) {
    assert!(
        !expected.is_empty(),
        "{ctx}: vector has an empty {which} epoch authenticator"
    );
    assert_eq!(
        hex::encode(group.epoch_authenticator().as_slice()),
        hex::encode(expected),
        "{ctx}: {which} epoch authenticator mismatch"
    );
}

/// Runs OpenMLS's key-schedule KAT runner on every supported entry.
pub fn run_key_schedule<P: OpenMlsProvider>(provider: &P, path: &str) -> SuiteCounts {
    use openmls::prelude_test::key_schedule::{run_test_vector, KeyScheduleTestVector};
    replay_vectors(
        "key-schedule",
        path,
        |entry: &KeyScheduleTestVector| entry.cipher_suite,
        |ciphersuite| provider_supports(provider, ciphersuite),
        |_, _, entry| {
            run_test_vector(entry, provider)
                .unwrap_or_else(|e| panic!("key-schedule runner reported: {e:?}"))
        },
    )
}

/// Replays the TreeKEM vectors. OpenMLS's own runner
/// (`openmls::treesync::tests_and_kats::kats::kat_treekem`) is `#[cfg(test)]`
/// in openmls 0.9.2 and not reachable from outside the crate, so this uses the
/// independent verifier in `treekem.rs` on top of the provider's crypto.
pub fn run_treekem<P: OpenMlsProvider>(provider: &P, path: &str) -> SuiteCounts {
    let mut stats = treekem::TreeKemStats::default();
    let counts = replay_vectors(
        "treekem",
        path,
        |entry: &treekem::TreeKemCase| entry.cipher_suite,
        |ciphersuite| provider_supports(provider, ciphersuite),
        |_, ciphersuite, entry| {
            let entry_stats = treekem::run_case(provider, ciphersuite, entry);
            assert!(entry_stats.update_paths > 0, "entry has no update paths");
            assert!(entry_stats.decryptions > 0, "entry decrypted nothing");
            stats.update_paths += entry_stats.update_paths;
            stats.decryptions += entry_stats.decryptions;
        },
    );
    println!(
        "treekem: {} update paths applied, {} path decryptions checked",
        stats.update_paths, stats.decryptions
    );
    counts
}
