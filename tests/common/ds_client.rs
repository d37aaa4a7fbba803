//! Clients of the Delivery Service for its tests: one device's MLS client
//! behind [`Client`] (mls-rs on polymls here; OpenMLS on polymls in
//! `ds_openmls.rs`), the server's knowledge of devices ([`Devices`]), and
//! the service as a client reaches it ([`Ds`]: the library directly, or
//! its HTTP routes).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mls_rs::client_builder::{BaseConfig, WithCryptoProvider, WithIdentityProvider, WithMlsRules};
use mls_rs::group::ReceivedMessage;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::identity::SigningIdentity;
use mls_rs::mls_rules::{CommitOptions, DefaultMlsRules, EncryptionOptions};
use mls_rs::{
    CipherSuite, CipherSuiteProvider, Client as MlsClient, CryptoProvider, Group, MlsMessage,
};
use polymls::delivery::{DeliveryError, DeliveryService, Device, Identities};
use polymls::directory::{Credential, IdentityCheck};
use polymls::mls_rs::MlsRsCrypto;

/// A commit built and not yet applied: what goes to `POST .../commits`.
#[derive(Clone, Debug)]
pub struct Pending {
    pub commit: Vec<u8>,
    pub welcome: Option<Vec<u8>>,
    pub group_info: Option<Vec<u8>>,
}

/// One device's MLS client in one group, whatever its library. Messages
/// are TLS-encoded MLSMessages.
pub trait Client: Send {
    fn device(&self) -> &Device;
    /// A fresh KeyPackage (MLSMessage).
    fn key_package(&mut self) -> Vec<u8>;
    /// Creates the group: its GroupInfo (MLSMessage) and ratchet tree.
    fn create(&mut self) -> (Vec<u8>, Vec<u8>);
    fn group_id(&self) -> Vec<u8>;
    fn in_group(&self) -> bool;
    /// A commit adding the members of `key_packages`, with their Welcome.
    fn add(&mut self, key_packages: &[Vec<u8>]) -> Pending;
    /// A commit with an update path and no proposal.
    fn update(&mut self) -> Pending;
    /// A commit removing the members at `leaves`.
    fn remove(&mut self, leaves: &[u32]) -> Pending;
    /// A proposal to update the own leaf (PublicMessage).
    fn propose_update(&mut self) -> Vec<u8>;
    /// A commit of every proposal received (by reference).
    fn commit_proposals(&mut self) -> Pending;
    /// Joins by external commit from the GroupInfo (MLSMessage).
    fn join_externally(&mut self, group_info: &[u8]) -> Pending;
    /// The pending commit was accepted: apply it.
    fn confirm(&mut self);
    /// The pending commit was refused: drop it.
    fn discard(&mut self);
    /// An application message (PrivateMessage).
    fn send(&mut self, text: &[u8]) -> Vec<u8>;
    /// Processes an inbox event (`kind` as the inbox names it): the
    /// application data, if it carried some.
    fn receive(&mut self, kind: &str, message: &[u8]) -> Option<Vec<u8>>;
    /// Forgets the proposals it made or received.
    fn discard_proposals(&mut self);
    /// Whether the client, as a member, would accept the handshake
    /// `message` (a commit or a proposal), leaving its state as it was.
    fn verdict(&mut self, message: &[u8]) -> bool;
    fn epoch(&self) -> u64;
    fn epoch_authenticator(&self) -> Vec<u8>;
    /// (leaf index, signature key) of every member.
    fn roster(&self) -> Vec<(u32, Vec<u8>)>;
    /// The own leaf index.
    fn leaf(&self) -> u32;
}

/// The server's knowledge of devices for the tests: a signature key is
/// registered for a device, and the hook accepts a basic credential whose
/// identity is the actor's name with a registered key.
#[derive(Clone, Default)]
pub struct Devices(Arc<Mutex<HashMap<Vec<u8>, Device>>>);

impl Devices {
    pub fn register(&self, signature_key: &[u8], device: &Device) {
        self.0
            .lock()
            .expect("devices")
            .insert(signature_key.to_vec(), device.clone());
    }
}

impl IdentityCheck for Devices {
    fn accepts(&self, actor: &str, device: &str, credential: &Credential, key: &[u8]) -> bool {
        let Credential::Basic(identity) = credential else {
            return false;
        };
        identity == actor.as_bytes()
            && self.0.lock().expect("devices").get(key) == Some(&Device::new(actor, device))
    }
}

impl Identities for Devices {
    fn device_of(&self, credential: &Credential, key: &[u8]) -> Option<Device> {
        let Credential::Basic(identity) = credential else {
            return None;
        };
        let device = self.0.lock().expect("devices").get(key).cloned()?;
        (device.actor.as_bytes() == identity.as_slice()).then_some(device)
    }
}

/// Why a submission was refused, as a client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400, with the reason.
    Invalid(String),
    /// 404.
    NotFound,
    /// 409: the group's current epoch.
    Conflict(u64),
    /// 409 for a group that exists.
    Exists,
    /// Anything else (an HTTP status, a storage error).
    Other(String),
}

impl From<DeliveryError> for Refusal {
    fn from(error: DeliveryError) -> Self {
        match error {
            DeliveryError::Invalid(why) => Refusal::Invalid(why),
            DeliveryError::NotFound => Refusal::NotFound,
            DeliveryError::StaleCommit { epoch, .. } | DeliveryError::OtherEpoch { epoch } => {
                Refusal::Conflict(epoch)
            }
            DeliveryError::Exists => Refusal::Exists,
            other => Refusal::Other(other.to_string()),
        }
    }
}

/// An inbox event as a client reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub seq: u64,
    pub group: Vec<u8>,
    pub kind: String,
    pub message: Vec<u8>,
}

/// A member as the service lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub leaf: u32,
    pub actor: String,
    pub signature_key: Vec<u8>,
}

/// The Delivery Service as a client reaches it.
pub trait Ds: Sync {
    fn create(&self, who: &Device, group_info: &[u8], tree: Option<&[u8]>) -> Result<(), Refusal>;
    fn commit(&self, who: &Device, group: &[u8], pending: &Pending) -> Result<u64, Refusal>;
    fn propose(&self, who: &Device, group: &[u8], proposal: &[u8]) -> Result<(), Refusal>;
    fn message(&self, who: &Device, group: &[u8], message: &[u8]) -> Result<(), Refusal>;
    /// The events after `after` (acknowledging those up to it).
    fn inbox(&self, who: &Device, after: u64) -> Result<Vec<Received>, Refusal>;
    fn members(&self, who: &Device, group: &[u8]) -> Result<Vec<Listed>, Refusal>;
    fn group_info(&self, who: &Device, group: &[u8]) -> Result<Vec<u8>, Refusal>;
    /// How many proposals are held for the current epoch.
    fn proposals(&self, who: &Device, group: &[u8]) -> Result<usize, Refusal>;
    /// Makes the server know `client`'s device (over HTTP: a KeyPackage
    /// upload, from which `--demo-auth` learns the device's key).
    fn enroll(&self, _client: &mut dyn Client) {}
    /// A KeyPackage (MLSMessage) of `of` for `claimer` to add: straight
    /// from the client, or through the server's directory.
    fn key_package(&self, _claimer: &Device, of: &mut dyn Client) -> Vec<u8> {
        of.key_package()
    }
}

impl<B: polymls::delivery::Backend> Ds for DeliveryService<B> {
    fn create(&self, who: &Device, group_info: &[u8], tree: Option<&[u8]>) -> Result<(), Refusal> {
        self.create_group(who, group_info, tree)?;
        Ok(())
    }

    fn commit(&self, who: &Device, group: &[u8], pending: &Pending) -> Result<u64, Refusal> {
        Ok(self.submit_commit(
            who,
            group,
            &pending.commit,
            pending.welcome.as_deref(),
            pending.group_info.as_deref(),
        )?)
    }

    fn propose(&self, who: &Device, group: &[u8], proposal: &[u8]) -> Result<(), Refusal> {
        Ok(self.submit_proposal(who, group, proposal)?)
    }

    fn message(&self, who: &Device, group: &[u8], message: &[u8]) -> Result<(), Refusal> {
        Ok(self.submit_message(who, group, message)?)
    }

    fn inbox(&self, who: &Device, after: u64) -> Result<Vec<Received>, Refusal> {
        Ok(DeliveryService::inbox(self, who, after, 10_000)?
            .events
            .into_iter()
            .map(|e| Received {
                seq: e.seq,
                group: e.group,
                kind: e.kind.name().to_string(),
                message: e.message,
            })
            .collect())
    }

    fn members(&self, who: &Device, group: &[u8]) -> Result<Vec<Listed>, Refusal> {
        Ok(DeliveryService::members(self, who, group)?
            .into_iter()
            .map(|m| Listed {
                leaf: m.leaf,
                actor: m.device.actor,
                signature_key: m.signature_key,
            })
            .collect())
    }

    fn group_info(&self, _: &Device, group: &[u8]) -> Result<Vec<u8>, Refusal> {
        Ok(DeliveryService::group_info(self, group)?.message)
    }

    fn proposals(&self, who: &Device, group: &[u8]) -> Result<usize, Refusal> {
        Ok(DeliveryService::proposals(self, who, group)?.len())
    }
}

type MlsRsConfig = WithIdentityProvider<
    BasicIdentityProvider,
    WithCryptoProvider<MlsRsCrypto, WithMlsRules<DefaultMlsRules, BaseConfig>>,
>;

/// A device on mls-rs with polymls's crypto provider.
pub struct MlsRsClient {
    device: Device,
    client: MlsClient<MlsRsConfig>,
    group: Option<Group<MlsRsConfig>>,
}

/// A new device `actor`/`device` on mls-rs in `suite`, its signature key
/// registered in `devices`; handshake messages as PublicMessage, or
/// encrypted if `encrypt_handshakes` (for the refusal tests).
pub fn mls_rs_client(
    devices: &Devices,
    actor: &str,
    device: &str,
    suite: u16,
    encrypt_handshakes: bool,
) -> MlsRsClient {
    let device = Device::new(actor, device);
    mls_rs_client_registered(
        devices,
        actor,
        &device,
        suite,
        encrypt_handshakes,
        KEY_PACKAGE_LIFETIME,
    )
}

/// The directory takes lifetimes of at most 12 weeks (mls-rs's default is a
/// year).
pub const KEY_PACKAGE_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(30 * 24 * 3600);

/// [`mls_rs_client`] with `actor` in its credential, its key registered
/// for `registered` (another actor's device, for the refusal tests), and
/// KeyPackages that live for `lifetime`.
pub fn mls_rs_client_registered(
    devices: &Devices,
    actor: &str,
    registered: &Device,
    suite: u16,
    encrypt_handshakes: bool,
    lifetime: std::time::Duration,
) -> MlsRsClient {
    let crypto = MlsRsCrypto::default();
    let suite = CipherSuite::new(suite);
    let provider = crypto.cipher_suite_provider(suite).expect("suite");
    let (secret, public) = provider.signature_key_generate().expect("signature key");
    let device = registered.clone();
    devices.register(public.as_bytes(), &device);
    let identity = SigningIdentity::new(
        BasicCredential::new(actor.as_bytes().to_vec()).into_credential(),
        public,
    );
    let rules = DefaultMlsRules::new()
        .with_commit_options(
            CommitOptions::new()
                .with_allow_external_commit(true)
                .with_ratchet_tree_extension(true)
                .with_path_required(true),
        )
        .with_encryption_options(EncryptionOptions::new(
            encrypt_handshakes,
            mls_rs::client_builder::PaddingMode::None,
        ));
    let client = MlsClient::builder()
        .identity_provider(BasicIdentityProvider)
        .crypto_provider(crypto)
        .mls_rules(rules)
        .key_package_lifetime(lifetime)
        .signing_identity(identity, secret, suite)
        .build();
    MlsRsClient {
        device,
        client,
        group: None,
    }
}

fn bytes(message: &MlsMessage) -> Vec<u8> {
    message.to_bytes().expect("encode")
}

impl MlsRsClient {
    fn group(&mut self) -> &mut Group<MlsRsConfig> {
        self.group.as_mut().expect("in the group")
    }

    fn pending(output: mls_rs::group::CommitOutput) -> Pending {
        Pending {
            commit: bytes(&output.commit_message),
            welcome: output.welcome_messages.first().map(bytes),
            group_info: output.external_commit_group_info.as_ref().map(bytes),
        }
    }
}

impl Client for MlsRsClient {
    fn device(&self) -> &Device {
        &self.device
    }

    fn key_package(&mut self) -> Vec<u8> {
        bytes(
            &self
                .client
                .generate_key_package_message(Default::default(), Default::default(), None)
                .expect("key package"),
        )
    }

    fn create(&mut self) -> (Vec<u8>, Vec<u8>) {
        let group = self
            .client
            .create_group(Default::default(), Default::default(), None)
            .expect("create group");
        let info = group
            .group_info_message_allowing_ext_commit(true)
            .expect("group info");
        let tree = group.export_tree().to_bytes().expect("tree");
        self.group = Some(group);
        (bytes(&info), tree)
    }

    fn group_id(&self) -> Vec<u8> {
        self.group
            .as_ref()
            .expect("in the group")
            .group_id()
            .to_vec()
    }

    fn in_group(&self) -> bool {
        self.group.is_some()
    }

    fn add(&mut self, key_packages: &[Vec<u8>]) -> Pending {
        let mut builder = self.group().commit_builder();
        for key_package in key_packages {
            let message = MlsMessage::from_bytes(key_package).expect("key package");
            builder = builder.add_member(message).expect("add");
        }
        Self::pending(builder.build().expect("commit"))
    }

    fn update(&mut self) -> Pending {
        Self::pending(self.group().commit(Vec::new()).expect("commit"))
    }

    fn remove(&mut self, leaves: &[u32]) -> Pending {
        let mut builder = self.group().commit_builder();
        for leaf in leaves {
            builder = builder.remove_member(*leaf).expect("remove");
        }
        Self::pending(builder.build().expect("commit"))
    }

    fn propose_update(&mut self) -> Vec<u8> {
        bytes(&self.group().propose_update(Vec::new()).expect("propose"))
    }

    fn commit_proposals(&mut self) -> Pending {
        Self::pending(self.group().commit(Vec::new()).expect("commit"))
    }

    fn join_externally(&mut self, group_info: &[u8]) -> Pending {
        let info = MlsMessage::from_bytes(group_info).expect("group info");
        let (group, commit) = self
            .client
            .external_commit_builder()
            .expect("external commit builder")
            .build(info)
            .expect("external commit");
        let group_info = group
            .group_info_message_allowing_ext_commit(true)
            .expect("group info");
        self.group = Some(group);
        Pending {
            commit: bytes(&commit),
            welcome: None,
            group_info: Some(bytes(&group_info)),
        }
    }

    fn confirm(&mut self) {
        if self.group().has_pending_commit() {
            self.group()
                .apply_pending_commit()
                .expect("apply own commit");
        }
    }

    fn discard(&mut self) {
        if let Some(group) = self.group.as_mut() {
            if group.has_pending_commit() {
                group.clear_pending_commit();
            }
        }
    }

    fn send(&mut self, text: &[u8]) -> Vec<u8> {
        bytes(
            &self
                .group()
                .encrypt_application_message(text, Vec::new())
                .expect("encrypt"),
        )
    }

    fn receive(&mut self, kind: &str, message: &[u8]) -> Option<Vec<u8>> {
        let message = MlsMessage::from_bytes(message).expect("event");
        if kind == "welcome" {
            let (group, _) = self.client.join_group(None, &message, None).expect("join");
            self.group = Some(group);
            return None;
        }
        let group = self.group.as_mut()?;
        match group.process_incoming_message(message).expect("process") {
            ReceivedMessage::ApplicationMessage(m) => Some(m.data().to_vec()),
            ReceivedMessage::Commit(commit) => {
                if matches!(commit.effect, mls_rs::group::CommitEffect::Removed { .. }) {
                    self.group = None;
                }
                None
            }
            _ => None,
        }
    }

    fn discard_proposals(&mut self) {
        if let Some(group) = self.group.as_mut() {
            group.clear_proposal_cache();
        }
    }

    /// On a copy of the group, loaded from the client's storage.
    fn verdict(&mut self, message: &[u8]) -> bool {
        let Ok(message) = MlsMessage::from_bytes(message) else {
            return false;
        };
        self.group().write_to_storage().expect("write the group");
        let id = self.group_id();
        let mut copy = self.client.load_group(&id).expect("load a copy");
        copy.process_incoming_message(message).is_ok()
    }

    fn epoch(&self) -> u64 {
        self.group.as_ref().expect("in the group").current_epoch()
    }

    fn epoch_authenticator(&self) -> Vec<u8> {
        self.group
            .as_ref()
            .expect("in the group")
            .epoch_authenticator()
            .expect("epoch authenticator")
            .to_vec()
    }

    fn roster(&self) -> Vec<(u32, Vec<u8>)> {
        self.group
            .as_ref()
            .expect("in the group")
            .roster()
            .members()
            .into_iter()
            .map(|m| (m.index, m.signing_identity.signature_key.to_vec()))
            .collect()
    }

    fn leaf(&self) -> u32 {
        self.group
            .as_ref()
            .expect("in the group")
            .current_member_index()
    }
}
