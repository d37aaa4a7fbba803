//! A group member on a polymls `Provider` over a RocksDB `Store` in its own
//! directory, for the store's tests: every OpenMLS call runs in a
//! transaction, messages cross as bytes, and the store can be closed and
//! reopened mid-session.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use polymls::{Provider, StoreOptions, TransactionProvider};

pub struct Member {
    pub name: String,
    pub dir: PathBuf,
    pub provider: Provider,
    pub signer: SignatureKeyPair,
    pub credential: CredentialWithKey,
    pub group: Option<MlsGroup>,
    pub suite: Ciphersuite,
    /// How the store is opened, again on every reopening.
    pub options: StoreOptions,
}

/// Serializes a message as it would cross the network.
pub fn wire(message: &MlsMessageOut) -> Vec<u8> {
    message.tls_serialize_detached().expect("serialize message")
}

fn debug(error: impl std::fmt::Debug) -> String {
    format!("{error:?}")
}

fn parse(bytes: &[u8]) -> MlsMessageIn {
    MlsMessageIn::tls_deserialize_exact(bytes).expect("parse message")
}

impl Member {
    /// A member with a new store in `dir/name`.
    pub fn new(dir: &Path, name: &str, suite: Ciphersuite) -> Member {
        Self::new_with(dir, name, suite, StoreOptions::default())
    }

    /// [`Member::new`] on a store opened with `options`.
    pub fn new_with(dir: &Path, name: &str, suite: Ciphersuite, options: StoreOptions) -> Member {
        let dir = dir.join(name);
        let provider = Provider::open_with(&dir, options.clone()).expect("open store");
        let scheme = suite.signature_algorithm();
        let (private, public) = provider
            .crypto()
            .signature_key_gen(scheme)
            .expect("signature key");
        let signer = SignatureKeyPair::from_raw(scheme, private, public);
        signer
            .store(provider.storage())
            .expect("store signature key");
        std::fs::write(dir.join("signer.pub"), signer.public()).expect("write public key");
        Self::with_signer(name, dir, provider, signer, suite, None, options)
    }

    /// The member `name` whose store in `dir/name` was made by
    /// [`Member::new`], with its group `group_id` loaded from the store.
    pub fn load(dir: &Path, name: &str, suite: Ciphersuite, group_id: &[u8]) -> Member {
        Self::load_with(dir, name, suite, group_id, StoreOptions::default())
    }

    /// [`Member::load`] on a store opened with `options`.
    pub fn load_with(
        dir: &Path,
        name: &str,
        suite: Ciphersuite,
        group_id: &[u8],
        options: StoreOptions,
    ) -> Member {
        let dir = dir.join(name);
        let provider = Provider::open_with(&dir, options.clone()).expect("open store");
        let public = std::fs::read(dir.join("signer.pub")).expect("read public key");
        let signer =
            SignatureKeyPair::read(provider.storage(), &public, suite.signature_algorithm())
                .expect("signature key stored");
        let group =
            MlsGroup::load(provider.storage(), &GroupId::from_slice(group_id)).expect("load group");
        Self::with_signer(name, dir, provider, signer, suite, group, options)
    }

    fn with_signer(
        name: &str,
        dir: PathBuf,
        provider: Provider,
        signer: SignatureKeyPair,
        suite: Ciphersuite,
        group: Option<MlsGroup>,
        options: StoreOptions,
    ) -> Member {
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.public().into(),
        };
        Member {
            name: name.to_owned(),
            dir,
            provider,
            signer,
            credential,
            group,
            suite,
            options,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.group.as_ref().expect("in a group").epoch().as_u64()
    }

    /// Closes the store and opens it again, reloading the group from it.
    pub fn reopen(self) -> Member {
        let Member {
            name,
            dir,
            provider,
            signer,
            credential,
            group,
            suite,
            options,
        } = self;
        let group_id = group.map(|group| group.group_id().clone());
        // The database must close before it is opened again.
        drop(provider);
        let provider = Provider::open_with(&dir, options.clone()).expect("reopen store");
        let group = group_id.map(|id| {
            MlsGroup::load(provider.storage(), &id)
                .expect("load")
                .expect("group stored")
        });
        Member {
            name,
            dir,
            provider,
            signer,
            credential,
            group,
            suite,
            options,
        }
    }

    pub fn group(&mut self) -> &mut MlsGroup {
        self.group.as_mut().expect("in a group")
    }

    pub fn create_group(&mut self, group_id: &[u8]) {
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(self.suite)
            .use_ratchet_tree_extension(true)
            .build();
        let (signer, credential) = (&self.signer, self.credential.clone());
        let group = self
            .provider
            .transaction(|p| {
                MlsGroup::new_with_group_id(
                    p,
                    signer,
                    &config,
                    GroupId::from_slice(group_id),
                    credential,
                )
            })
            .expect("create group");
        self.group = Some(group);
    }

    pub fn key_package(&self) -> KeyPackage {
        let (signer, credential) = (&self.signer, self.credential.clone());
        self.provider
            .transaction(|p| KeyPackage::builder().build(self.suite, p, signer, credential))
            .expect("key package")
            .key_package()
            .clone()
    }

    /// Runs `operation` on the group in one transaction; panics with `what`
    /// and the error if it fails.
    fn transact<T>(
        &mut self,
        what: &str,
        operation: impl FnOnce(
            &mut MlsGroup,
            &TransactionProvider<'_>,
            &SignatureKeyPair,
        ) -> Result<T, String>,
    ) -> T {
        let Member {
            provider,
            signer,
            group,
            ..
        } = self;
        let group = group.as_mut().expect("in a group");
        provider
            .transaction(|p| operation(group, p, signer))
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Commits adding `key_packages`; returns (commit, welcome).
    pub fn add(&mut self, key_packages: &[KeyPackage]) -> (Vec<u8>, Vec<u8>) {
        self.transact("add members", |group, p, signer| {
            let (commit, welcome, _) = group.add_members(p, signer, key_packages).map_err(debug)?;
            group.merge_pending_commit(p).map_err(debug)?;
            Ok((wire(&commit), wire(&welcome)))
        })
    }

    pub fn join(&mut self, welcome: &[u8]) {
        let MlsMessageBodyIn::Welcome(welcome) = parse(welcome).extract() else {
            panic!("not a welcome");
        };
        let config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .build();
        let group = self
            .provider
            .transaction(|p| {
                StagedWelcome::new_from_welcome(p, &config, welcome, None)?.into_group(p)
            })
            .expect("join");
        self.group = Some(group);
    }

    pub fn send(&mut self, text: &[u8]) -> Vec<u8> {
        self.transact("create message", |group, p, signer| {
            group
                .create_message(p, signer, text)
                .map(|m| wire(&m))
                .map_err(debug)
        })
    }

    /// Processes `message`: returns the plaintext of an application message;
    /// merges commits and stores proposals.
    pub fn receive(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        let message = parse(message)
            .try_into_protocol_message()
            .expect("protocol message");
        self.transact("process message", |group, p, _| {
            let processed = group.process_message(p, message).map_err(debug)?;
            Ok(match processed.into_content() {
                ProcessedMessageContent::ApplicationMessage(m) => Some(m.into_bytes()),
                ProcessedMessageContent::StagedCommitMessage(commit) => {
                    group.merge_staged_commit(p, *commit).map_err(debug)?;
                    None
                }
                ProcessedMessageContent::ProposalMessage(proposal) => {
                    group
                        .store_pending_proposal(p.storage(), *proposal)
                        .map_err(debug)?;
                    None
                }
                _ => None,
            })
        })
    }

    /// Commits a self-update; returns the commit.
    pub fn self_update(&mut self) -> Vec<u8> {
        self.transact("self update", |group, p, signer| {
            let bundle = group
                .self_update(p, signer, LeafNodeParameters::default())
                .map_err(debug)?;
            group.merge_pending_commit(p).map_err(debug)?;
            Ok(wire(bundle.commit()))
        })
    }

    /// Proposes a self-update without committing it; returns the proposal.
    pub fn propose_update(&mut self) -> Vec<u8> {
        self.transact("propose update", |group, p, signer| {
            let (proposal, _) = group
                .propose_self_update(p, signer, LeafNodeParameters::default())
                .map_err(debug)?;
            Ok(wire(&proposal))
        })
    }

    /// Commits the pending proposals; returns the commit.
    pub fn commit_pending(&mut self) -> Vec<u8> {
        self.transact("commit pending proposals", |group, p, signer| {
            let (commit, _, _) = group
                .commit_to_pending_proposals(p, signer)
                .map_err(debug)?;
            group.merge_pending_commit(p).map_err(debug)?;
            Ok(wire(&commit))
        })
    }

    /// Commits removing the member called `name`; returns the commit.
    pub fn remove(&mut self, name: &str) -> Vec<u8> {
        let index = self
            .group()
            .members()
            .find(|m| m.credential.serialized_content() == name.as_bytes())
            .expect("member to remove")
            .index;
        self.transact("remove member", |group, p, signer| {
            let (commit, _, _) = group.remove_members(p, signer, &[index]).map_err(debug)?;
            group.merge_pending_commit(p).map_err(debug)?;
            Ok(wire(&commit))
        })
    }

    /// Deletes the group from the store.
    pub fn delete_group(&mut self) {
        let mut group = self.group.take().expect("in a group");
        self.provider
            .transaction(|p| group.delete(p.storage()))
            .expect("delete group");
    }

    pub fn epoch_authenticator(&self) -> Vec<u8> {
        self.group
            .as_ref()
            .expect("in a group")
            .epoch_authenticator()
            .as_slice()
            .to_vec()
    }
}
