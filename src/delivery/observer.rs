//! The observer: mls-rs's `ExternalGroup` on polymls's crypto provider,
//! which validates a group's handshake messages as RFC 9420 lets a
//! non-member, and the bridge that makes the server's [`Identities`] its
//! identity provider, so every credential that enters a tree (the
//! creator's, an Add's, an Update's, a commit path's, an external
//! joiner's) passes the server's check.
//!
//! mls-rs rather than OpenMLS's `PublicGroup`: OpenMLS's cipher suite is a
//! closed enum that cannot decode 0xF110, polyproto's required hybrid,
//! while mls-rs takes any suite its crypto provider has, and
//! [`MlsRsCrypto`] has every suite of polymls's table.

use std::sync::Arc;

use mls_rs::external_client::builder::{
    ExternalBaseConfig, WithCryptoProvider, WithIdentityProvider,
};
use mls_rs::external_client::{ExternalClient, ExternalGroup, ExternalSnapshot};
use mls_rs::group::{ExportedTree, Node};
use mls_rs::mls_rs_codec::MlsEncode;
use mls_rs::{CryptoProvider, ExtensionList, KeyPackage, MlsMessage};
use mls_rs_core::error::IntoAnyError;
use mls_rs_core::identity::{
    Credential as MlsCredential, CredentialType, IdentityProvider, MemberValidationContext,
    SigningIdentity,
};
use mls_rs_core::protocol_version::ProtocolVersion;
use mls_rs_core::time::MlsTime;

use super::record::MemberRecord;
use super::{Device, Identities, Role};
use crate::directory::Credential;
use crate::mls_rs::MlsRsCrypto;

pub(super) type Config =
    WithIdentityProvider<Bridge, WithCryptoProvider<MlsRsCrypto, ExternalBaseConfig>>;
/// A group as the service sees it.
pub(super) type Observed = ExternalGroup<Config>;

/// The server's [`Identities`] as mls-rs's identity provider.
#[derive(Clone)]
pub(super) struct Bridge(Arc<dyn Identities>);

/// The identity hook refused a credential (or it is of a type the hook
/// cannot be asked about).
#[derive(Debug)]
pub(super) struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the server's identity check refused a credential")
    }
}

impl std::error::Error for Refused {}

impl IntoAnyError for Refused {
    fn into_dyn_error(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(Box::new(self))
    }
}

/// The credential as the directory's hook takes it.
fn credential(identity: &SigningIdentity) -> Option<Credential> {
    match &identity.credential {
        MlsCredential::Basic(basic) => Some(Credential::Basic(basic.identifier.clone())),
        MlsCredential::X509(chain) => Some(Credential::X509(
            chain
                .iter()
                .map(|certificate| certificate.to_vec())
                .collect(),
        )),
        _ => None,
    }
}

impl Bridge {
    /// The device `identity` belongs to, if the server's hook names one
    /// and accepts the credential for it.
    pub fn device_of(&self, identity: &SigningIdentity) -> Option<Device> {
        let credential = credential(identity)?;
        let key = identity.signature_key.as_bytes();
        let device = self.0.device_of(&credential, key)?;
        self.0
            .accepts(&device.actor, &device.device, &credential, key)
            .then_some(device)
    }
}

impl IdentityProvider for Bridge {
    type Error = Refused;

    fn validate_member(
        &self,
        identity: &SigningIdentity,
        _: Option<MlsTime>,
        _: MemberValidationContext<'_>,
    ) -> Result<(), Refused> {
        self.device_of(identity).map(|_| ()).ok_or(Refused)
    }

    /// External senders are not served: their proposals are refused.
    fn validate_external_sender(
        &self,
        _: &SigningIdentity,
        _: Option<MlsTime>,
        _: Option<&ExtensionList>,
    ) -> Result<(), Refused> {
        Err(Refused)
    }

    /// The device: two leaves of one device in a tree are refused, several
    /// devices of one actor are not.
    fn identity(&self, identity: &SigningIdentity, _: &ExtensionList) -> Result<Vec<u8>, Refused> {
        let device = self.device_of(identity).ok_or(Refused)?;
        let mut out = Vec::with_capacity(device.actor.len() + device.device.len() + 8);
        for part in [device.actor.as_bytes(), device.device.as_bytes()] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part);
        }
        Ok(out)
    }

    /// An external commit may replace only a leaf of the joiner's own
    /// device.
    fn valid_successor(
        &self,
        predecessor: &SigningIdentity,
        successor: &SigningIdentity,
        _: &ExtensionList,
    ) -> Result<bool, Refused> {
        Ok(self.device_of(predecessor).ok_or(Refused)?
            == self.device_of(successor).ok_or(Refused)?)
    }

    fn supported_types(&self) -> Vec<CredentialType> {
        vec![CredentialType::BASIC, CredentialType::X509]
    }
}

/// mls-rs's external client, configured for the service.
pub(super) struct Observer {
    client: ExternalClient<Config>,
    bridge: Bridge,
    crypto: MlsRsCrypto,
}

impl Observer {
    pub fn new(identities: Arc<dyn Identities>) -> Observer {
        let bridge = Bridge(identities);
        let crypto = MlsRsCrypto::default();
        let client = ExternalClient::builder()
            .crypto_provider(crypto.clone())
            .identity_provider(bridge.clone())
            .protocol_version(ProtocolVersion::MLS_10)
            .cache_proposals(true)
            .build();
        Observer {
            client,
            bridge,
            crypto,
        }
    }

    /// Validates `group_info` (its signature, the tree's hashes, every leaf)
    /// and starts observing the group it describes.
    pub fn observe(
        &self,
        group_info: MlsMessage,
        tree: Option<ExportedTree<'_>>,
    ) -> Result<Observed, String> {
        self.client
            // With the time, or mls-rs checks no leaf's lifetime.
            .observe_group(group_info, tree, Some(MlsTime::now()))
            .map_err(|e| format!("GroupInfo refused: {e}"))
    }

    /// A group from its stored snapshot.
    pub fn load(&self, snapshot: &[u8]) -> Result<Observed, String> {
        let snapshot =
            ExternalSnapshot::from_bytes(snapshot).map_err(|e| format!("snapshot: {e}"))?;
        self.client
            .load_group(snapshot)
            .map_err(|e| format!("snapshot: {e}"))
    }

    pub fn device_of(&self, identity: &SigningIdentity) -> Option<Device> {
        self.bridge.device_of(identity)
    }

    /// The members of `group` with their devices. A leaf whose credential
    /// and signature key are those `previous` has for it keeps its device
    /// and role without asking the server again (the hook was asked when
    /// they entered the tree); any other is asked, and keeps the leaf's
    /// role if it stays with the same device.
    pub fn members(
        &self,
        group: &Observed,
        previous: &[MemberRecord],
    ) -> Result<Vec<MemberRecord>, String> {
        let mut previous = previous.iter().peekable();
        let mut credential = Vec::new();
        let tree = group.exported_tree();
        // Leaves are the even nodes; read in place, as most are unchanged.
        let leaves = tree.nodes().iter().step_by(2).enumerate();
        let mut members = Vec::new();
        for (index, node) in leaves {
            let Some(Node::Leaf(leaf)) = node else {
                continue;
            };
            let index = index as u32;
            let identity = &leaf.signing_identity;
            credential.clear();
            identity
                .credential
                .mls_encode(&mut credential)
                .map_err(|e| format!("credential: {e}"))?;
            let signature_key = identity.signature_key.as_bytes();
            // Both lists are in leaf order.
            while previous.next_if(|p| p.leaf < index).is_some() {}
            let before = previous.next_if(|p| p.leaf == index);
            if let Some(kept) =
                before.filter(|p| p.signature_key == signature_key && p.credential == credential)
            {
                members.push(kept.clone());
                continue;
            }
            let device = self
                .device_of(identity)
                .ok_or("the identity check refused a member")?;
            let role = before
                .filter(|p| p.is(&device))
                .map_or(Role::Member, MemberRecord::role);
            members.push(MemberRecord {
                leaf: index,
                actor: device.actor,
                device: device.device,
                role: role as u8,
                signature_key: signature_key.to_vec(),
                credential: credential.clone(),
            });
        }
        Ok(members)
    }

    /// The KeyPackageRef of `key_package` in `suite`.
    pub fn key_package_ref(&self, suite: u16, key_package: &KeyPackage) -> Option<Vec<u8>> {
        let provider = self.crypto.cipher_suite_provider(suite.into())?;
        key_package.to_reference(&provider).ok().map(|r| r.to_vec())
    }
}
