//! What OpenMLS stores, as data: each entity's label, whether it holds
//! secrets, and whether it belongs to a group.

/// One kind of value OpenMLS stores. The discriminant is the label stored
/// in records: never reuse one.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    /// `MlsGroupJoinConfig`, per group.
    JoinConfig = 1,
    /// The group's own leaf nodes from Update proposals, per group.
    OwnLeafNodes = 2,
    /// The references of queued proposals, per group.
    ProposalRefs = 3,
    /// One queued proposal, per group and reference.
    Proposal = 4,
    /// The ratchet tree, per group.
    Tree = 5,
    /// The interim transcript hash, per group.
    InterimTranscriptHash = 6,
    /// The group context, per group.
    Context = 7,
    /// The confirmation tag, per group.
    ConfirmationTag = 8,
    /// The group state, which holds a pending commit's path secrets.
    GroupState = 9,
    /// The secret tree and sender ratchets, rewritten on every message.
    MessageSecrets = 10,
    /// Resumption PSKs of past epochs.
    ResumptionPskStore = 11,
    /// The own leaf index, per group.
    OwnLeafIndex = 12,
    /// The epoch's secrets (init, exporter, ...).
    EpochSecrets = 13,
    /// HPKE key pairs of the tree nodes, per group, epoch and leaf.
    EpochKeyPairs = 14,
    /// A signature key pair, by public key.
    SignatureKeyPair = 15,
    /// An encryption key pair of an Update leaf node, by public key.
    EncryptionKeyPair = 16,
    /// A key package bundle with its private keys, by reference.
    KeyPackage = 17,
    /// A PSK bundle, by PSK id.
    Psk = 18,
    /// The names and epochs of the group's epoch key pair records, so that
    /// erasing older epochs reaches them without a scan.
    EpochKeyPairIndex = 19,
    /// A Distributed MLS participant's own record: its send groups and what
    /// it imported from them (`polymls::dmls`), public.
    DmlsParticipant = 20,
}

impl Entity {
    /// Every entity.
    pub const ALL: [Entity; 20] = [
        Entity::JoinConfig,
        Entity::OwnLeafNodes,
        Entity::ProposalRefs,
        Entity::Proposal,
        Entity::Tree,
        Entity::InterimTranscriptHash,
        Entity::Context,
        Entity::ConfirmationTag,
        Entity::GroupState,
        Entity::MessageSecrets,
        Entity::ResumptionPskStore,
        Entity::OwnLeafIndex,
        Entity::EpochSecrets,
        Entity::EpochKeyPairs,
        Entity::SignatureKeyPair,
        Entity::EncryptionKeyPair,
        Entity::KeyPackage,
        Entity::Psk,
        Entity::EpochKeyPairIndex,
        Entity::DmlsParticipant,
    ];

    /// The entity with this label.
    pub fn from_label(label: u8) -> Option<Entity> {
        Self::ALL.into_iter().find(|entity| entity.label() == label)
    }

    /// The byte that names the entity inside record names and values.
    pub const fn label(self) -> u8 {
        self as u8
    }

    /// Whether a superseded value must become unrecoverable: the entities
    /// that hold private keys or secrets from which keys derive.
    pub const fn is_secret(self) -> bool {
        matches!(
            self,
            Entity::GroupState
                | Entity::MessageSecrets
                | Entity::ResumptionPskStore
                | Entity::EpochSecrets
                | Entity::EpochKeyPairs
                | Entity::SignatureKeyPair
                | Entity::EncryptionKeyPair
                | Entity::KeyPackage
                | Entity::Psk
        )
    }

    /// Whether the entity is stored under a group (and erased with it).
    pub const fn is_per_group(self) -> bool {
        !matches!(
            self,
            Entity::SignatureKeyPair
                | Entity::EncryptionKeyPair
                | Entity::KeyPackage
                | Entity::Psk
                | Entity::DmlsParticipant
        )
    }
}
