//! A Delivery Service client on OpenMLS 0.9.2 over polymls's `Provider`
//! (the RocksDB store in a temporary directory): the OpenMLS counterpart of
//! `MlsRsClient` in `ds_client.rs`, behind the same [`Client`] trait.
//!
//! Wire formats: the groups use OpenMLS's
//! `MIXED_PLAINTEXT_WIRE_FORMAT_POLICY` (outgoing `AlwaysPlaintext`,
//! incoming `Mixed`). In 0.9.2 the outgoing policy only frames handshake
//! messages: `MlsGroup::content_to_mls_message` (used by
//! `CommitBuilder::stage_commit` and by the proposal functions) reads it,
//! while `MlsGroup::create_message` always goes through
//! `AuthenticatedContent::new_application` and `MlsGroup::encrypt`, and
//! returns `MlsMessageOut::from_private_message` whatever the policy. So
//! commits and proposals leave as PublicMessages and application messages
//! as PrivateMessages.
#![allow(dead_code)]

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use polymls::delivery::Device;
use polymls::{Provider, TransactionProvider};

use super::ds_client::{Client, Devices, Pending};

/// The suite of the OpenMLS clients: 0x0001.
const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// A device on OpenMLS with polymls's provider and store.
pub struct OpenMlsClient {
    device: Device,
    provider: Provider,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    group: Option<MlsGroup>,
    /// The group was joined by an external commit not yet confirmed.
    /// OpenMLS 0.9.2's `CommitBuilder::finalize` merges an external commit
    /// as it builds it (the group it returns is already in the new epoch,
    /// and `clear_pending_commit` cannot undo an external commit anyway), so
    /// `confirm` has nothing to merge and `discard` drops the group.
    joining: bool,
}

/// A new device `actor`/`device` on OpenMLS in 0x0001, its signature key
/// registered in `devices`; handshake messages as PublicMessage,
/// application messages as PrivateMessage.
pub fn openmls_client(devices: &Devices, actor: &str, device: &str) -> OpenMlsClient {
    let provider = Provider::default();
    let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).expect("signature key");
    let device = Device::new(actor, device);
    devices.register(signer.public(), &device);
    let credential = CredentialWithKey {
        credential: BasicCredential::new(actor.as_bytes().to_vec()).into(),
        signature_key: signer.public().into(),
    };
    OpenMlsClient {
        device,
        provider,
        signer,
        credential,
        group: None,
        joining: false,
    }
}

fn bytes(message: &MlsMessageOut) -> Vec<u8> {
    message.tls_serialize_detached().expect("encode")
}

fn parse(message: &[u8]) -> MlsMessageIn {
    MlsMessageIn::tls_deserialize_exact(message).expect("decode MLSMessage")
}

fn debug(error: impl std::fmt::Debug) -> String {
    format!("{error:?}")
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .build()
}

/// The messages of a commit built and staged (not merged), the GroupInfo
/// being the new epoch's.
fn pending(bundle: CommitMessageBundle) -> Pending {
    let (commit, welcome, group_info) = bundle.into_messages();
    Pending {
        commit: bytes(&commit),
        welcome: welcome.as_ref().map(bytes),
        group_info: Some(bytes(&group_info.expect("the new epoch's GroupInfo"))),
    }
}

impl OpenMlsClient {
    fn group_ref(&self) -> &MlsGroup {
        self.group.as_ref().expect("in the group")
    }

    /// Runs `operation` on the group in one transaction of the store;
    /// panics with `what` and the error if it fails.
    fn transact<T>(
        &mut self,
        what: &str,
        operation: impl FnOnce(
            &mut MlsGroup,
            &TransactionProvider<'_>,
            &SignatureKeyPair,
        ) -> Result<T, String>,
    ) -> T {
        let OpenMlsClient {
            provider,
            signer,
            group,
            ..
        } = self;
        let group = group.as_mut().expect("in the group");
        provider
            .transaction(|p| operation(group, p, signer))
            .unwrap_or_else(|e| panic!("{what}: {e:?}"))
    }

    /// Builds a commit from the group's commit builder as `configure`
    /// sets it up, with the new epoch's GroupInfo (ratchet tree included),
    /// and stages it as the pending commit.
    fn commit(
        &mut self,
        what: &str,
        configure: impl FnOnce(CommitBuilder<'_, Initial>) -> CommitBuilder<'_, Initial>,
    ) -> Pending {
        let bundle = self.transact(what, |group, p, signer| {
            configure(group.commit_builder())
                .load_psks(p.storage())
                .map_err(debug)?
                .create_group_info(true)
                .use_ratchet_tree_extension(true)
                .build(p.rand(), p.crypto(), signer, |_| true)
                .map_err(debug)?
                .stage_commit(p)
                .map_err(debug)
        });
        pending(bundle)
    }
}

impl Client for OpenMlsClient {
    fn device(&self) -> &Device {
        &self.device
    }

    fn key_package(&mut self) -> Vec<u8> {
        let (signer, credential) = (&self.signer, self.credential.clone());
        let bundle = self
            .provider
            .transaction(|p| KeyPackage::builder().build(SUITE, p, signer, credential))
            .expect("key package");
        bytes(&MlsMessageOut::from(bundle.key_package().clone()))
    }

    fn create(&mut self) -> (Vec<u8>, Vec<u8>) {
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(SUITE)
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .build();
        let (signer, credential) = (&self.signer, self.credential.clone());
        let group = self
            .provider
            .transaction(|p| MlsGroup::new(p, signer, &config, credential))
            .expect("create group");
        let info = group
            .export_group_info(self.provider.crypto(), &self.signer, true)
            .expect("group info");
        let tree = group
            .export_ratchet_tree()
            .tls_serialize_detached()
            .expect("tree");
        self.group = Some(group);
        self.joining = false;
        (bytes(&info), tree)
    }

    fn group_id(&self) -> Vec<u8> {
        self.group_ref().group_id().as_slice().to_vec()
    }

    fn in_group(&self) -> bool {
        self.group.is_some()
    }

    fn add(&mut self, key_packages: &[Vec<u8>]) -> Pending {
        let key_packages: Vec<KeyPackage> = key_packages
            .iter()
            .map(|message| {
                let MlsMessageBodyIn::KeyPackage(key_package) = parse(message).extract() else {
                    panic!("not a KeyPackage");
                };
                key_package
                    .validate(self.provider.crypto(), ProtocolVersion::Mls10)
                    .expect("valid key package")
            })
            .collect();
        // As `MlsGroup::add_members`: the adds with an update path.
        self.commit("add members", |builder| {
            builder.propose_adds(key_packages).force_self_update(true)
        })
    }

    fn update(&mut self) -> Pending {
        // As `MlsGroup::self_update`, the path forced even if proposals
        // were pending.
        self.commit("self update", |builder| {
            builder
                .leaf_node_parameters(LeafNodeParameters::default())
                .consume_proposal_store(true)
                .force_self_update(true)
        })
    }

    fn remove(&mut self, leaves: &[u32]) -> Pending {
        let leaves: Vec<LeafNodeIndex> = leaves.iter().map(|l| LeafNodeIndex::new(*l)).collect();
        // As `MlsGroup::remove_members`.
        self.commit("remove members", |builder| builder.propose_removals(leaves))
    }

    fn propose_update(&mut self) -> Vec<u8> {
        let proposal = self.transact("propose update", |group, p, signer| {
            let (proposal, _) = group
                .propose_self_update(p, signer, LeafNodeParameters::default())
                .map_err(debug)?;
            Ok(proposal)
        });
        bytes(&proposal)
    }

    fn commit_proposals(&mut self) -> Pending {
        // As `MlsGroup::commit_to_pending_proposals`.
        self.commit("commit pending proposals", |builder| {
            builder.consume_proposal_store(true)
        })
    }

    fn join_externally(&mut self, group_info: &[u8]) -> Pending {
        let info = parse(group_info)
            .into_verifiable_group_info()
            .expect("not a GroupInfo");
        let (signer, credential) = (&self.signer, self.credential.clone());
        // The tree comes from the GroupInfo's ratchet tree extension. The
        // external commit is a PublicMessage whatever the policy, which
        // the group gets back once the commit is built.
        let (group, bundle) = self
            .provider
            .transaction(|p| {
                MlsGroup::external_commit_builder()
                    .with_config(join_config())
                    .build_group(p, info, credential)
                    .map_err(debug)?
                    .load_psks(p.storage())
                    .map_err(debug)?
                    .create_group_info(true)
                    .use_ratchet_tree_extension(true)
                    .build(p.rand(), p.crypto(), signer, |_| true)
                    .map_err(debug)?
                    .finalize(p)
                    .map_err(debug)
            })
            .expect("external commit");
        self.group = Some(group);
        self.joining = true;
        pending(bundle)
    }

    fn confirm(&mut self) {
        if self.joining {
            // Merged by `finalize` already (see `joining`).
            self.joining = false;
            return;
        }
        if self.group_ref().pending_commit().is_some() {
            self.transact("merge own commit", |group, p, _| {
                group.merge_pending_commit(p).map_err(debug)
            });
        }
    }

    fn discard(&mut self) {
        if self.joining {
            // The external commit was refused: the group it made is not the
            // group's, and OpenMLS cannot unmerge it.
            self.joining = false;
            if let Some(mut group) = self.group.take() {
                self.provider
                    .transaction(|p| group.delete(p.storage()))
                    .expect("delete group");
            }
            return;
        }
        if self
            .group
            .as_ref()
            .is_some_and(|g| g.pending_commit().is_some())
        {
            self.transact("clear own commit", |group, p, _| {
                group.clear_pending_commit(p.storage()).map_err(debug)
            });
        }
    }

    fn send(&mut self, text: &[u8]) -> Vec<u8> {
        // A PrivateMessage under any wire format policy (see the top).
        let message = self.transact("create message", |group, p, signer| {
            group.create_message(p, signer, text).map_err(debug)
        });
        bytes(&message)
    }

    fn receive(&mut self, kind: &str, message: &[u8]) -> Option<Vec<u8>> {
        let message = parse(message);
        if kind == "welcome" {
            let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
                panic!("not a Welcome");
            };
            let config = join_config();
            let group = self
                .provider
                .transaction(|p| {
                    StagedWelcome::new_from_welcome(p, &config, welcome, None)
                        .map_err(debug)?
                        .into_group(p)
                        .map_err(debug)
                })
                .expect("join");
            self.group = Some(group);
            self.joining = false;
            return None;
        }
        self.group.as_ref()?;
        let message = message
            .try_into_protocol_message()
            .expect("protocol message");
        let (data, removed) = self.transact("process message", |group, p, _| {
            let processed = group.process_message(p, message).map_err(debug)?;
            Ok(match processed.into_content() {
                ProcessedMessageContent::ApplicationMessage(m) => (Some(m.into_bytes()), false),
                ProcessedMessageContent::StagedCommitMessage(commit) => {
                    let removed = commit.self_removed();
                    group.merge_staged_commit(p, *commit).map_err(debug)?;
                    if removed {
                        // Gone from the group: so that a Welcome back into
                        // it can create it again.
                        group.delete(p.storage()).map_err(debug)?;
                    }
                    (None, removed)
                }
                ProcessedMessageContent::ProposalMessage(proposal) => {
                    group
                        .store_pending_proposal(p.storage(), *proposal)
                        .map_err(debug)?;
                    (None, false)
                }
                _ => (None, false),
            })
        });
        if removed {
            self.group = None;
            self.joining = false;
        }
        data
    }

    fn discard_proposals(&mut self) {
        if self.group.is_none() {
            return;
        }
        self.transact("clear proposals", |group, p, _| {
            group.clear_pending_proposals(p.storage()).map_err(debug)
        });
    }

    /// In a transaction that is always rolled back; a staged commit is not
    /// merged and a proposal not stored.
    fn verdict(&mut self, message: &[u8]) -> bool {
        let Ok(message) = MlsMessageIn::tls_deserialize_exact(message) else {
            return false;
        };
        let Ok(message) = message.try_into_protocol_message() else {
            return false;
        };
        let OpenMlsClient {
            provider, group, ..
        } = self;
        let group = group.as_mut().expect("in the group");
        let outcome = provider.transaction(|p| {
            let accepted = group.process_message(p, message).is_ok();
            Err::<(), _>(accepted)
        });
        matches!(outcome, Err(polymls::TransactionError::Aborted(true)))
    }

    fn epoch(&self) -> u64 {
        self.group_ref().epoch().as_u64()
    }

    fn epoch_authenticator(&self) -> Vec<u8> {
        self.group_ref().epoch_authenticator().as_slice().to_vec()
    }

    fn roster(&self) -> Vec<(u32, Vec<u8>)> {
        self.group_ref()
            .members()
            .map(|m| (m.index.u32(), m.signature_key))
            .collect()
    }

    fn leaf(&self) -> u32 {
        self.group_ref().own_leaf_index().u32()
    }
}
