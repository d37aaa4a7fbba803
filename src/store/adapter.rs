//! OpenMLS's `StorageProvider` on the vault: every entity becomes one named,
//! sealed record.
//!
//! Record names ([`super::naming`]) have the group (or "no group") as their
//! scope, and the entity with its other key parts as the record: a group's
//! records sit together for the clean-ups below.
//!
//! A record's plaintext is `label || aux (u64 LE) || CBOR body`: the label
//! says which entity it is, `aux` carries the epoch of epoch key pairs.
//!
//! Beyond what OpenMLS asks, the adapter erases what OpenMLS 0.9.2 leaves
//! behind (found in a trace of its storage calls):
//! - writing a group's epoch key pairs for epoch N erases those of its
//!   older epochs, and deleting epoch N's erases older ones too: a removed
//!   member's keys sit under epoch N while `MlsGroup::delete` deletes N + 1;
//! - the standalone encryption key pair of an own Update leaf node is erased
//!   with the group's own leaf nodes: OpenMLS deletes it only if the Update
//!   is committed;
//! - deleting the group's join config (only `MlsGroup::delete` does)
//!   erases every record of the group.

use ciborium::Value;
use openmls_traits::storage::{traits, StorageProvider, CURRENT_VERSION};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use super::codec::{Cbor, Codec, SecretBuffer, Untyped};
use super::entities::Entity;
use super::naming::NAME_PART_LEN;
use super::vault::Op;
use super::{Store, StoreError};
const ENVELOPE_LEN: usize = 1 + 8;

type Result<T> = std::result::Result<T, StoreError>;

/// The scope of a record: one group (by its encoded id) or none.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Group(&'a [u8]),
    Global,
}

impl<'a> Scope<'a> {
    /// What the names' prefix is computed over (an empty part changes
    /// nothing: the HMAC is over the concatenation).
    fn naming_input(self) -> [&'a [u8]; 2] {
        match self {
            Scope::Group(group) => [b"group", group],
            Scope::Global => [b"global", b""],
        }
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Zeroizing<Vec<u8>>> {
    Cbor::encode(value)
}

/// Splits a record plaintext into label, aux and body.
fn envelope(plaintext: &[u8]) -> Result<(u8, u64, &[u8])> {
    if plaintext.len() < ENVELOPE_LEN {
        return Err(StoreError::Corrupted("record shorter than its envelope"));
    }
    let aux = u64::from_le_bytes(plaintext[1..ENVELOPE_LEN].try_into().expect("8 bytes"));
    Ok((plaintext[0], aux, &plaintext[ENVELOPE_LEN..]))
}

impl Store {
    fn prefix(&self, scope: Scope) -> [u8; NAME_PART_LEN] {
        self.scope_prefix(&scope.naming_input())
    }

    fn name(&self, entity: Entity, scope: Scope, parts: &[&[u8]]) -> Vec<u8> {
        let mut input: Vec<&[u8]> = Vec::with_capacity(parts.len() * 2 + 1);
        let label = [entity.label()];
        input.push(&label);
        let lengths: Vec<[u8; 4]> = parts
            .iter()
            .map(|p| (p.len() as u32).to_be_bytes())
            .collect();
        for (part, length) in parts.iter().zip(&lengths) {
            input.push(length);
            input.push(part);
        }
        self.record_name(&scope.naming_input(), &input)
    }

    fn put_op<T: Serialize + ?Sized>(
        &self,
        entity: Entity,
        scope: Scope,
        parts: &[&[u8]],
        aux: u64,
        value: &T,
    ) -> Result<Op> {
        let mut plaintext = SecretBuffer::default();
        plaintext.extend_from_slice(&[entity.label()]);
        plaintext.extend_from_slice(&aux.to_le_bytes());
        Cbor::encode_into(value, &mut plaintext)?;
        Ok(Op::Put {
            name: self.name(entity, scope, parts),
            value: plaintext.into_inner(),
            secret: entity.is_secret(),
        })
    }

    fn put<T: Serialize + ?Sized>(
        &self,
        entity: Entity,
        scope: Scope,
        parts: &[&[u8]],
        value: &T,
    ) -> Result<()> {
        let op = self.put_op(entity, scope, parts, 0, value)?;
        self.apply(vec![op])
    }

    fn read<T: DeserializeOwned>(
        &self,
        entity: Entity,
        scope: Scope,
        parts: &[&[u8]],
    ) -> Result<Option<T>> {
        let Some(plaintext) = self.get(&self.name(entity, scope, parts))? else {
            return Ok(None);
        };
        let (label, _, body) = envelope(&plaintext)?;
        if label != entity.label() {
            return Err(StoreError::Corrupted("record holds another entity"));
        }
        Cbor::decode(body).map(Some)
    }

    fn remove(&self, entity: Entity, scope: Scope, parts: &[&[u8]]) -> Result<()> {
        self.apply(vec![Op::Delete {
            name: self.name(entity, scope, parts),
        }])
    }

    /// A list entity's elements, as CBOR values.
    fn read_list(&self, entity: Entity, scope: Scope, parts: &[&[u8]]) -> Result<Vec<Value>> {
        Ok(self.read(entity, scope, parts)?.unwrap_or_default())
    }

    /// The write of a list entity's elements, as [`Untyped`] values (a
    /// `Value`'s null or tag would not encode as ciborium wrote it).
    fn list_op(&self, entity: Entity, scope: Scope, list: Vec<Value>) -> Result<Op> {
        self.put_op(entity, scope, &[], 0, &Untyped(&Value::Array(list)))
    }

    fn decode_list<T: DeserializeOwned>(list: Vec<Value>) -> Result<Vec<T>> {
        list.into_iter()
            .map(|value| {
                value
                    .deserialized()
                    .map_err(|_| StoreError::Corrupted("list element does not decode"))
            })
            .collect()
    }

    fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
        Value::serialized(value).map_err(|e| StoreError::Encoding(e.to_string()))
    }

    /// Every record of the group, as (name, label, aux).
    fn group_records(&self, group: &[u8]) -> Result<Vec<(Vec<u8>, u8, u64)>> {
        self.scan(&self.prefix(Scope::Group(group)))?
            .into_iter()
            .map(|(name, plaintext)| envelope(&plaintext).map(|(label, aux, _)| (name, label, aux)))
            .collect()
    }

    /// The group's epoch key pair records as (epoch, record name), from
    /// the group's index. A group without one (its first epoch key pairs,
    /// or a store from before the index) is scanned once instead.
    fn epoch_key_pair_index(&self, group: &[u8]) -> Result<Vec<(u64, Vec<u8>)>> {
        if let Some(index) = self.read(Entity::EpochKeyPairIndex, Scope::Group(group), &[])? {
            return Ok(index);
        }
        Ok(self
            .group_records(group)?
            .into_iter()
            .filter(|(_, label, _)| *label == Entity::EpochKeyPairs.label())
            .map(|(name, _, epoch)| (epoch, name))
            .collect())
    }

    /// Deletions of the group's epoch key pairs whose epoch `drop` selects,
    /// and the index of those left, with `added` (epoch, name) among them.
    fn epoch_key_pair_changes(
        &self,
        group: &[u8],
        drop: impl Fn(u64) -> bool,
        added: Option<(u64, Vec<u8>)>,
    ) -> Result<Vec<Op>> {
        let (dropped, mut kept): (Vec<_>, Vec<_>) = self
            .epoch_key_pair_index(group)?
            .into_iter()
            .partition(|(epoch, _)| drop(*epoch));
        let mut ops: Vec<Op> = dropped
            .into_iter()
            .map(|(_, name)| Op::Delete { name })
            .collect();
        if let Some(added) = added {
            kept.retain(|(_, name)| *name != added.1);
            kept.push(added);
        }
        ops.push(self.put_op(
            Entity::EpochKeyPairIndex,
            Scope::Group(group),
            &[],
            0,
            &kept,
        )?);
        Ok(ops)
    }

    /// Deletes every record of the group and the standalone key pairs of its
    /// own leaf nodes.
    fn erase_group(&self, group: &[u8]) -> Result<()> {
        let mut ops = self.own_leaf_node_deletions(group)?;
        ops.extend(
            self.group_records(group)?
                .into_iter()
                .map(|(name, _, _)| Op::Delete { name }),
        );
        self.apply(ops)
    }

    /// Deletions of the standalone encryption key pairs of the group's own
    /// leaf nodes (those of its Update proposals), and of the leaf nodes.
    ///
    /// OpenMLS reads such a key pair only through the group's own leaf
    /// nodes, and deletes it itself only when the proposal is committed; an
    /// Update never committed would otherwise keep its private key forever.
    fn own_leaf_node_deletions(&self, group: &[u8]) -> Result<Vec<Op>> {
        let scope = Scope::Group(group);
        let mut ops = Vec::new();
        for leaf_node in self.read_list(Entity::OwnLeafNodes, scope, &[])? {
            if let Some(key) = Self::leaf_encryption_key(&leaf_node) {
                ops.push(Op::Delete {
                    name: self.name(Entity::EncryptionKeyPair, Scope::Global, &[&encode(&key)?]),
                });
            }
        }
        ops.push(Op::Delete {
            name: self.name(Entity::OwnLeafNodes, scope, &[]),
        });
        Ok(ops)
    }

    /// The encryption key in an encoded leaf node (`payload.encryption_key`
    /// in OpenMLS's serde shape), if present.
    fn leaf_encryption_key(leaf_node: &Value) -> Option<Value> {
        fn field<'v>(map: &'v Value, name: &str) -> Option<&'v Value> {
            map.as_map()?
                .iter()
                .find(|(k, _)| k.as_text() == Some(name))
                .map(|(_, v)| v)
        }
        field(field(leaf_node, "payload")?, "encryption_key").cloned()
    }
}

/// Records of polymls's own protocols beside OpenMLS's (the Distributed MLS
/// participant), in the same transactions as the OpenMLS calls.
#[cfg(feature = "dmls")]
impl Store {
    pub(crate) fn write_dmls_participant<T: Serialize>(&self, value: &T) -> Result<()> {
        self.put(Entity::DmlsParticipant, Scope::Global, &[], value)
    }

    pub(crate) fn dmls_participant<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.read(Entity::DmlsParticipant, Scope::Global, &[])
    }
}

/// What the store holds of one entity, as [`Store::inventory`] reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// How many records.
    pub records: usize,
    /// Their encoded (CBOR) values in bytes, before sealing.
    pub bytes: usize,
}

impl Store {
    /// What the store holds, per entity (in a transaction, as the
    /// transaction sees it). Reads and authenticates every record: for
    /// audits and tests, e.g. that deleting a group left no secrets.
    pub fn inventory(&self) -> Result<std::collections::BTreeMap<Entity, Usage>> {
        let mut usage = std::collections::BTreeMap::new();
        for (_, plaintext) in self.scan(&[])? {
            let (label, _, body) = envelope(&plaintext)?;
            let entity =
                Entity::from_label(label).ok_or(StoreError::Corrupted("unknown entity label"))?;
            let entry: &mut Usage = usage.entry(entity).or_default();
            entry.records += 1;
            entry.bytes += body.len();
        }
        Ok(usage)
    }
}

/// The epoch number in an encoded epoch key (OpenMLS's `GroupEpoch` is a u64).
fn epoch_number(epoch: &[u8]) -> Result<u64> {
    Cbor::decode::<u64>(epoch).map_err(|_| StoreError::Encoding("epoch key is not a number".into()))
}

impl StorageProvider<CURRENT_VERSION> for Store {
    type Error = StoreError;

    fn write_mls_join_config<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MlsGroupJoinConfig: traits::MlsGroupJoinConfig<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        config: &MlsGroupJoinConfig,
    ) -> Result<()> {
        self.put(
            Entity::JoinConfig,
            Scope::Group(&encode(group_id)?),
            &[],
            config,
        )
    }

    fn append_own_leaf_node<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        leaf_node: &LeafNode,
    ) -> Result<()> {
        let group = encode(group_id)?;
        let scope = Scope::Group(&group);
        let mut leaves = self.read_list(Entity::OwnLeafNodes, scope, &[])?;
        leaves.push(Self::to_value(leaf_node)?);
        let op = self.list_op(Entity::OwnLeafNodes, scope, leaves)?;
        self.apply(vec![op])
    }

    fn queue_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
        proposal: &QueuedProposal,
    ) -> Result<()> {
        let group = encode(group_id)?;
        let scope = Scope::Group(&group);
        let mut refs = self.read_list(Entity::ProposalRefs, scope, &[])?;
        refs.push(Self::to_value(proposal_ref)?);
        let ops = vec![
            self.put_op(
                Entity::Proposal,
                scope,
                &[&encode(proposal_ref)?],
                0,
                proposal,
            )?,
            self.list_op(Entity::ProposalRefs, scope, refs)?,
        ];
        self.apply(ops)
    }

    fn write_tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        TreeSync: traits::TreeSync<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        tree: &TreeSync,
    ) -> Result<()> {
        self.put(Entity::Tree, Scope::Group(&encode(group_id)?), &[], tree)
    }

    fn write_interim_transcript_hash<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        InterimTranscriptHash: traits::InterimTranscriptHash<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        interim_transcript_hash: &InterimTranscriptHash,
    ) -> Result<()> {
        self.put(
            Entity::InterimTranscriptHash,
            Scope::Group(&encode(group_id)?),
            &[],
            interim_transcript_hash,
        )
    }

    fn write_context<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupContext: traits::GroupContext<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_context: &GroupContext,
    ) -> Result<()> {
        self.put(
            Entity::Context,
            Scope::Group(&encode(group_id)?),
            &[],
            group_context,
        )
    }

    fn write_confirmation_tag<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ConfirmationTag: traits::ConfirmationTag<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        confirmation_tag: &ConfirmationTag,
    ) -> Result<()> {
        self.put(
            Entity::ConfirmationTag,
            Scope::Group(&encode(group_id)?),
            &[],
            confirmation_tag,
        )
    }

    /// A member removed from the group finds its state `Inactive`: its epoch
    /// key pairs can decrypt nothing any more and are erased then, not only
    /// when the application deletes the group.
    fn write_group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_state: &GroupState,
    ) -> Result<()> {
        let group = encode(group_id)?;
        let state = self.put_op(
            Entity::GroupState,
            Scope::Group(&group),
            &[],
            0,
            group_state,
        )?;
        // Recognised by its encoding: `Inactive` is a unit variant, which
        // serde encodes as its name. (Decoding the state instead would copy
        // a pending commit's secrets into an unwiped `Value`, for a second
        // pass over them.)
        let inactive = matches!(&state, Op::Put { value, .. }
            if value[ENVELOPE_LEN..] == encode("Inactive")?[..]);
        let mut ops = Vec::new();
        if inactive {
            ops = self.epoch_key_pair_changes(&group, |_| true, None)?;
        }
        ops.push(state);
        self.apply(ops)
    }

    fn write_message_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MessageSecrets: traits::MessageSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        message_secrets: &MessageSecrets,
    ) -> Result<()> {
        self.put(
            Entity::MessageSecrets,
            Scope::Group(&encode(group_id)?),
            &[],
            message_secrets,
        )
    }

    fn write_resumption_psk_store<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ResumptionPskStore: traits::ResumptionPskStore<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        resumption_psk_store: &ResumptionPskStore,
    ) -> Result<()> {
        self.put(
            Entity::ResumptionPskStore,
            Scope::Group(&encode(group_id)?),
            &[],
            resumption_psk_store,
        )
    }

    fn write_own_leaf_index<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNodeIndex: traits::LeafNodeIndex<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        own_leaf_index: &LeafNodeIndex,
    ) -> Result<()> {
        self.put(
            Entity::OwnLeafIndex,
            Scope::Group(&encode(group_id)?),
            &[],
            own_leaf_index,
        )
    }

    fn write_group_epoch_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupEpochSecrets: traits::GroupEpochSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_epoch_secrets: &GroupEpochSecrets,
    ) -> Result<()> {
        self.put(
            Entity::EpochSecrets,
            Scope::Group(&encode(group_id)?),
            &[],
            group_epoch_secrets,
        )
    }

    fn write_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
        signature_key_pair: &SignatureKeyPair,
    ) -> Result<()> {
        self.put(
            Entity::SignatureKeyPair,
            Scope::Global,
            &[&encode(public_key)?],
            signature_key_pair,
        )
    }

    fn write_encryption_key_pair<
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
        key_pair: &HpkeKeyPair,
    ) -> Result<()> {
        self.put(
            Entity::EncryptionKeyPair,
            Scope::Global,
            &[&encode(public_key)?],
            key_pair,
        )
    }

    fn write_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
        key_pairs: &[HpkeKeyPair],
    ) -> Result<()> {
        let group = encode(group_id)?;
        let epoch = encode(epoch)?;
        let number = epoch_number(&epoch)?;
        let record = self.put_op(
            Entity::EpochKeyPairs,
            Scope::Group(&group),
            &[&epoch, &leaf_index.to_be_bytes()],
            number,
            key_pairs,
        )?;
        let added = (number, record.name().to_vec());
        let mut ops = self.epoch_key_pair_changes(&group, |older| older < number, Some(added))?;
        ops.push(record);
        self.apply(ops)
    }

    fn write_key_package<
        HashReference: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &HashReference,
        key_package: &KeyPackage,
    ) -> Result<()> {
        self.put(
            Entity::KeyPackage,
            Scope::Global,
            &[&encode(hash_ref)?],
            key_package,
        )
    }

    fn write_psk<
        PskId: traits::PskId<CURRENT_VERSION>,
        PskBundle: traits::PskBundle<CURRENT_VERSION>,
    >(
        &self,
        psk_id: &PskId,
        psk: &PskBundle,
    ) -> Result<()> {
        self.put(Entity::Psk, Scope::Global, &[&encode(psk_id)?], psk)
    }

    fn mls_group_join_config<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MlsGroupJoinConfig: traits::MlsGroupJoinConfig<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<MlsGroupJoinConfig>> {
        self.read(Entity::JoinConfig, Scope::Group(&encode(group_id)?), &[])
    }

    fn own_leaf_nodes<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<LeafNode>> {
        Self::decode_list(self.read_list(
            Entity::OwnLeafNodes,
            Scope::Group(&encode(group_id)?),
            &[],
        )?)
    }

    fn queued_proposal_refs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<ProposalRef>> {
        Self::decode_list(self.read_list(
            Entity::ProposalRefs,
            Scope::Group(&encode(group_id)?),
            &[],
        )?)
    }

    fn queued_proposals<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<(ProposalRef, QueuedProposal)>> {
        let group = encode(group_id)?;
        let scope = Scope::Group(&group);
        let refs: Vec<ProposalRef> =
            Self::decode_list(self.read_list(Entity::ProposalRefs, scope, &[])?)?;
        refs.into_iter()
            .filter_map(|proposal_ref| {
                match encode(&proposal_ref).and_then(|r| self.read(Entity::Proposal, scope, &[&r]))
                {
                    Ok(Some(proposal)) => Some(Ok((proposal_ref, proposal))),
                    Ok(None) => None,
                    Err(error) => Some(Err(error)),
                }
            })
            .collect()
    }

    fn tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        TreeSync: traits::TreeSync<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<TreeSync>> {
        self.read(Entity::Tree, Scope::Group(&encode(group_id)?), &[])
    }

    fn group_context<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupContext: traits::GroupContext<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupContext>> {
        self.read(Entity::Context, Scope::Group(&encode(group_id)?), &[])
    }

    fn interim_transcript_hash<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        InterimTranscriptHash: traits::InterimTranscriptHash<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<InterimTranscriptHash>> {
        self.read(
            Entity::InterimTranscriptHash,
            Scope::Group(&encode(group_id)?),
            &[],
        )
    }

    fn confirmation_tag<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ConfirmationTag: traits::ConfirmationTag<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<ConfirmationTag>> {
        self.read(
            Entity::ConfirmationTag,
            Scope::Group(&encode(group_id)?),
            &[],
        )
    }

    fn group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupState>> {
        self.read(Entity::GroupState, Scope::Group(&encode(group_id)?), &[])
    }

    fn message_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MessageSecrets: traits::MessageSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<MessageSecrets>> {
        self.read(
            Entity::MessageSecrets,
            Scope::Group(&encode(group_id)?),
            &[],
        )
    }

    fn resumption_psk_store<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ResumptionPskStore: traits::ResumptionPskStore<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<ResumptionPskStore>> {
        self.read(
            Entity::ResumptionPskStore,
            Scope::Group(&encode(group_id)?),
            &[],
        )
    }

    fn own_leaf_index<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNodeIndex: traits::LeafNodeIndex<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<LeafNodeIndex>> {
        self.read(Entity::OwnLeafIndex, Scope::Group(&encode(group_id)?), &[])
    }

    fn group_epoch_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupEpochSecrets: traits::GroupEpochSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupEpochSecrets>> {
        self.read(Entity::EpochSecrets, Scope::Group(&encode(group_id)?), &[])
    }

    fn signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<Option<SignatureKeyPair>> {
        self.read(
            Entity::SignatureKeyPair,
            Scope::Global,
            &[&encode(public_key)?],
        )
    }

    fn encryption_key_pair<
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<Option<HpkeKeyPair>> {
        self.read(
            Entity::EncryptionKeyPair,
            Scope::Global,
            &[&encode(public_key)?],
        )
    }

    fn encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<Vec<HpkeKeyPair>> {
        let parts: [&[u8]; 2] = [&encode(epoch)?, &leaf_index.to_be_bytes()];
        Ok(self
            .read(
                Entity::EpochKeyPairs,
                Scope::Group(&encode(group_id)?),
                &parts,
            )?
            .unwrap_or_default())
    }

    fn key_package<
        KeyPackageRef: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<Option<KeyPackage>> {
        self.read(Entity::KeyPackage, Scope::Global, &[&encode(hash_ref)?])
    }

    fn psk<PskBundle: traits::PskBundle<CURRENT_VERSION>, PskId: traits::PskId<CURRENT_VERSION>>(
        &self,
        psk_id: &PskId,
    ) -> Result<Option<PskBundle>> {
        self.read(Entity::Psk, Scope::Global, &[&encode(psk_id)?])
    }

    fn remove_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
    ) -> Result<()> {
        let group = encode(group_id)?;
        let scope = Scope::Group(&group);
        let removed = Self::to_value(proposal_ref)?;
        let mut refs = self.read_list(Entity::ProposalRefs, scope, &[])?;
        refs.retain(|r| *r != removed);
        let ops = vec![
            Op::Delete {
                name: self.name(Entity::Proposal, scope, &[&encode(proposal_ref)?]),
            },
            self.list_op(Entity::ProposalRefs, scope, refs)?,
        ];
        self.apply(ops)
    }

    fn delete_own_leaf_nodes<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        let ops = self.own_leaf_node_deletions(&encode(group_id)?)?;
        self.apply(ops)
    }

    /// The join config is written when a group is created or joined and
    /// deleted only by `MlsGroup::delete`: polymls takes its deletion as the
    /// group's and erases every record of the group, including epoch key
    /// pairs OpenMLS no longer knows of and Update key pairs never committed.
    fn delete_group_config<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.erase_group(&encode(group_id)?)
    }

    fn delete_tree<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.remove(Entity::Tree, Scope::Group(&encode(group_id)?), &[])
    }

    fn delete_confirmation_tag<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.remove(
            Entity::ConfirmationTag,
            Scope::Group(&encode(group_id)?),
            &[],
        )
    }

    fn delete_group_state<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.remove(Entity::GroupState, Scope::Group(&encode(group_id)?), &[])
    }

    fn delete_context<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.remove(Entity::Context, Scope::Group(&encode(group_id)?), &[])
    }

    fn delete_interim_transcript_hash<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.remove(
            Entity::InterimTranscriptHash,
            Scope::Group(&encode(group_id)?),
            &[],
        )
    }

    fn delete_message_secrets<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.remove(
            Entity::MessageSecrets,
            Scope::Group(&encode(group_id)?),
            &[],
        )
    }

    fn delete_all_resumption_psk_secrets<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.remove(
            Entity::ResumptionPskStore,
            Scope::Group(&encode(group_id)?),
            &[],
        )
    }

    fn delete_own_leaf_index<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.remove(Entity::OwnLeafIndex, Scope::Group(&encode(group_id)?), &[])
    }

    fn delete_group_epoch_secrets<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        self.remove(Entity::EpochSecrets, Scope::Group(&encode(group_id)?), &[])
    }

    fn clear_proposal_queue<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        let group = encode(group_id)?;
        let scope = Scope::Group(&group);
        let mut ops = Vec::new();
        for proposal_ref in self.read_list(Entity::ProposalRefs, scope, &[])? {
            ops.push(Op::Delete {
                name: self.name(Entity::Proposal, scope, &[&encode(&proposal_ref)?]),
            });
        }
        ops.push(Op::Delete {
            name: self.name(Entity::ProposalRefs, scope, &[]),
        });
        self.apply(ops)
    }

    fn delete_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<()> {
        self.remove(
            Entity::SignatureKeyPair,
            Scope::Global,
            &[&encode(public_key)?],
        )
    }

    fn delete_encryption_key_pair<EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>>(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<()> {
        self.remove(
            Entity::EncryptionKeyPair,
            Scope::Global,
            &[&encode(public_key)?],
        )
    }

    fn delete_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<()> {
        let group = encode(group_id)?;
        let epoch = encode(epoch)?;
        let number = epoch_number(&epoch)?;
        let mut ops = self.epoch_key_pair_changes(&group, |older| older <= number, None)?;
        ops.push(Op::Delete {
            name: self.name(
                Entity::EpochKeyPairs,
                Scope::Group(&group),
                &[&epoch, &leaf_index.to_be_bytes()],
            ),
        });
        self.apply(ops)
    }

    fn delete_key_package<KeyPackageRef: traits::HashReference<CURRENT_VERSION>>(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<()> {
        self.remove(Entity::KeyPackage, Scope::Global, &[&encode(hash_ref)?])
    }

    fn delete_psk<PskKey: traits::PskId<CURRENT_VERSION>>(&self, psk_id: &PskKey) -> Result<()> {
        self.remove(Entity::Psk, Scope::Global, &[&encode(psk_id)?])
    }
}

#[cfg(test)]
mod tests {
    use openmls_traits::storage::{traits, Entity, Key, StorageProvider, CURRENT_VERSION};
    use serde::{Deserialize, Serialize};

    use super::Store;

    /// A list element with a `None` (a leaf node without an optional field,
    /// a proposal ref of that shape).
    #[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
    struct Element {
        optional: Option<u8>,
        bytes: Vec<u8>,
    }
    impl Entity<CURRENT_VERSION> for Element {}
    impl Key<CURRENT_VERSION> for Element {}
    impl traits::LeafNode<CURRENT_VERSION> for Element {}
    impl traits::ProposalRef<CURRENT_VERSION> for Element {}
    impl traits::QueuedProposal<CURRENT_VERSION> for Element {}

    #[derive(Serialize)]
    struct Group(u8);
    impl Key<CURRENT_VERSION> for Group {}
    impl traits::GroupId<CURRENT_VERSION> for Group {}

    /// The stored lists' elements read back as they were written, a `None`
    /// in them included (written as an empty list, it would not decode).
    #[test]
    fn lists_keep_the_nones_of_their_elements() {
        let store = Store::temporary().expect("store");
        let group = Group(1);
        let elements = [
            Element {
                optional: None,
                bytes: vec![1, 2],
            },
            Element {
                optional: Some(7),
                bytes: vec![],
            },
        ];
        for element in &elements {
            store
                .append_own_leaf_node(&group, element)
                .expect("appends");
            store
                .queue_proposal(&group, element, element)
                .expect("queues");
        }
        let leaves: Vec<Element> = store.own_leaf_nodes(&group).expect("reads");
        assert_eq!(leaves, elements);
        let refs: Vec<Element> = store.queued_proposal_refs(&group).expect("reads");
        assert_eq!(refs, elements);
        store
            .remove_proposal(&group, &elements[1])
            .expect("removes");
        let refs: Vec<Element> = store.queued_proposal_refs(&group).expect("reads");
        assert_eq!(refs, elements[..1]);
    }
}
