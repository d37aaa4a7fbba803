//! The store against an oracle: sequences of the `StorageProvider` calls
//! OpenMLS makes, run on `polymls::Store` and on `openmls_memory_storage`,
//! with transactions that commit or abort, reopenings, and crashes cut into
//! a commit at each of its steps. After every step every read agrees.
//!
//! The oracle is the memory storage plus the clean-ups polymls documents
//! beyond OpenMLS (`src/store/adapter.rs`): writing a group's epoch key
//! pairs for epoch N erases those of older epochs, deleting epoch N's
//! erases those up to N, and deleting the join config erases the group.
//! (The other two, epoch key pairs of an `Inactive` group and the key pairs
//! of own leaf nodes, need OpenMLS's own value shapes, which these opaque
//! test values do not have: the OpenMLS group tests cover them.)
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;

use openmls_memory_storage::MemoryStorage;
use openmls_traits::storage::{traits, Entity, Key, StorageProvider, CURRENT_VERSION};
use polymls::store::CrashPoint;
use polymls::{Store, StoreOptions};
use serde::{Deserialize, Serialize};

/// Any key: group ids, public keys, references, PSK ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Id(pub Vec<u8>);

/// An epoch, as OpenMLS's `GroupEpoch` encodes (a number).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Epoch(pub u64);

/// Any stored value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Val(pub Vec<u8>);

const V: u16 = CURRENT_VERSION;
impl Key<V> for Id {}
impl Entity<V> for Id {}
impl traits::GroupId<V> for Id {}
impl traits::SignaturePublicKey<V> for Id {}
impl traits::HashReference<V> for Id {}
impl traits::PskId<V> for Id {}
impl traits::EncryptionKey<V> for Id {}
impl traits::ProposalRef<V> for Id {}
impl Key<V> for Epoch {}
impl traits::EpochKey<V> for Epoch {}
impl Entity<V> for Val {}
impl traits::QueuedProposal<V> for Val {}
impl traits::TreeSync<V> for Val {}
impl traits::GroupContext<V> for Val {}
impl traits::InterimTranscriptHash<V> for Val {}
impl traits::ConfirmationTag<V> for Val {}
impl traits::SignatureKeyPair<V> for Val {}
impl traits::PskBundle<V> for Val {}
impl traits::HpkeKeyPair<V> for Val {}
impl traits::GroupState<V> for Val {}
impl traits::GroupEpochSecrets<V> for Val {}
impl traits::LeafNodeIndex<V> for Val {}
impl traits::MessageSecrets<V> for Val {}
impl traits::ResumptionPskStore<V> for Val {}
impl traits::KeyPackage<V> for Val {}
impl traits::MlsGroupJoinConfig<V> for Val {}
impl traits::LeafNode<V> for Val {}

pub const GROUPS: u8 = 3;
pub const EPOCHS: u8 = 4;
pub const LEAVES: u8 = 2;
pub const KEYS: u8 = 3;
pub const PROPOSALS: u8 = 3;

/// A group's value of which it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum One {
    Tree,
    InterimTranscriptHash,
    Context,
    ConfirmationTag,
    GroupState,
    MessageSecrets,
    ResumptionPskStore,
    OwnLeafIndex,
    EpochSecrets,
}

pub const ONES: [One; 9] = [
    One::Tree,
    One::InterimTranscriptHash,
    One::Context,
    One::ConfirmationTag,
    One::GroupState,
    One::MessageSecrets,
    One::ResumptionPskStore,
    One::OwnLeafIndex,
    One::EpochSecrets,
];

/// A value kept by key, outside any group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    SignatureKeyPair,
    EncryptionKeyPair,
    KeyPackage,
    Psk,
}

pub const GLOBALS: [Global; 4] = [
    Global::SignatureKeyPair,
    Global::EncryptionKeyPair,
    Global::KeyPackage,
    Global::Psk,
];

/// One step of a sequence.
#[derive(Clone, Debug)]
pub enum Step {
    WriteOne(One, u8, Vec<u8>),
    DeleteOne(One, u8),
    WriteJoinConfig(u8, Vec<u8>),
    /// `delete_group_config`, which polymls takes as the group's deletion.
    DeleteGroup(u8),
    AppendLeafNode(u8, Vec<u8>),
    DeleteLeafNodes(u8),
    QueueProposal(u8, u8, Vec<u8>),
    RemoveProposal(u8, u8),
    ClearProposals(u8),
    WriteEpochKeyPairs(u8, u8, u8, Vec<Vec<u8>>),
    DeleteEpochKeyPairs(u8, u8, u8),
    WriteGlobal(Global, u8, Vec<u8>),
    DeleteGlobal(Global, u8),
    Begin,
    Commit,
    Abort,
    Reopen,
    /// A crash in the middle of committing the open transaction (or, with
    /// none open, between two commits), then a reopening.
    Crash(CrashPoint),
}

fn group(g: u8) -> Id {
    Id(vec![b'g', g])
}

fn key(k: u8) -> Id {
    Id(vec![b'k', k])
}

fn proposal(p: u8) -> Id {
    Id(vec![b'p', p])
}

/// Applies a storage call (not a control step) to any storage.
fn call<S: StorageProvider<V>>(s: &S, step: &Step) -> Result<(), S::Error> {
    match step {
        Step::WriteOne(one, g, v) => {
            let (g, v) = (&group(*g), &Val(v.clone()));
            match one {
                One::Tree => s.write_tree(g, v),
                One::InterimTranscriptHash => s.write_interim_transcript_hash(g, v),
                One::Context => s.write_context(g, v),
                One::ConfirmationTag => s.write_confirmation_tag(g, v),
                One::GroupState => s.write_group_state(g, v),
                One::MessageSecrets => s.write_message_secrets(g, v),
                One::ResumptionPskStore => s.write_resumption_psk_store(g, v),
                One::OwnLeafIndex => s.write_own_leaf_index(g, v),
                One::EpochSecrets => s.write_group_epoch_secrets(g, v),
            }
        }
        Step::DeleteOne(one, g) => delete_one(s, *one, &group(*g)),
        Step::WriteJoinConfig(g, v) => s.write_mls_join_config(&group(*g), &Val(v.clone())),
        Step::DeleteGroup(g) => s.delete_group_config(&group(*g)),
        Step::AppendLeafNode(g, v) => s.append_own_leaf_node(&group(*g), &Val(v.clone())),
        Step::DeleteLeafNodes(g) => s.delete_own_leaf_nodes(&group(*g)),
        Step::QueueProposal(g, p, v) => {
            s.queue_proposal(&group(*g), &proposal(*p), &Val(v.clone()))
        }
        Step::RemoveProposal(g, p) => s.remove_proposal(&group(*g), &proposal(*p)),
        Step::ClearProposals(g) => s.clear_proposal_queue::<Id, Id>(&group(*g)),
        Step::WriteEpochKeyPairs(g, e, l, values) => {
            let values: Vec<Val> = values.iter().cloned().map(Val).collect();
            s.write_encryption_epoch_key_pairs(&group(*g), &Epoch(*e as u64), *l as u32, &values)
        }
        Step::DeleteEpochKeyPairs(g, e, l) => {
            s.delete_encryption_epoch_key_pairs(&group(*g), &Epoch(*e as u64), *l as u32)
        }
        Step::WriteGlobal(global, k, v) => {
            let (k, v) = (&key(*k), &Val(v.clone()));
            match global {
                Global::SignatureKeyPair => s.write_signature_key_pair(k, v),
                Global::EncryptionKeyPair => s.write_encryption_key_pair(k, v),
                Global::KeyPackage => s.write_key_package(k, v),
                Global::Psk => s.write_psk(k, v),
            }
        }
        Step::DeleteGlobal(global, k) => {
            let k = &key(*k);
            match global {
                Global::SignatureKeyPair => s.delete_signature_key_pair(k),
                Global::EncryptionKeyPair => s.delete_encryption_key_pair(k),
                Global::KeyPackage => s.delete_key_package(k),
                Global::Psk => s.delete_psk(k),
            }
        }
        Step::Begin | Step::Commit | Step::Abort | Step::Reopen | Step::Crash(_) => Ok(()),
    }
}

fn delete_one<S: StorageProvider<V>>(s: &S, one: One, g: &Id) -> Result<(), S::Error> {
    match one {
        One::Tree => s.delete_tree(g),
        One::InterimTranscriptHash => s.delete_interim_transcript_hash(g),
        One::Context => s.delete_context(g),
        One::ConfirmationTag => s.delete_confirmation_tag(g),
        One::GroupState => s.delete_group_state(g),
        One::MessageSecrets => s.delete_message_secrets(g),
        One::ResumptionPskStore => s.delete_all_resumption_psk_secrets(g),
        One::OwnLeafIndex => s.delete_own_leaf_index(g),
        One::EpochSecrets => s.delete_group_epoch_secrets(g),
    }
}

/// Everything a storage answers, as text, in a fixed order.
fn observe<S: StorageProvider<V>>(s: &S) -> Vec<String>
where
    S::Error: std::fmt::Debug,
{
    let mut seen = Vec::new();
    for g in 0..GROUPS {
        let id = &group(g);
        seen.push(format!(
            "group {g}: join config {:?}, leaf nodes {:?}, proposal refs {:?}, proposals {:?}",
            s.mls_group_join_config::<Id, Val>(id),
            s.own_leaf_nodes::<Id, Val>(id),
            s.queued_proposal_refs::<Id, Id>(id),
            s.queued_proposals::<Id, Id, Val>(id),
        ));
        seen.push(format!(
            "group {g}: tree {:?}, transcript {:?}, context {:?}, tag {:?}, state {:?}, message secrets {:?}, psk store {:?}, leaf index {:?}, epoch secrets {:?}",
            s.tree::<Id, Val>(id),
            s.interim_transcript_hash::<Id, Val>(id),
            s.group_context::<Id, Val>(id),
            s.confirmation_tag::<Id, Val>(id),
            s.group_state::<Val, Id>(id),
            s.message_secrets::<Id, Val>(id),
            s.resumption_psk_store::<Id, Val>(id),
            s.own_leaf_index::<Id, Val>(id),
            s.group_epoch_secrets::<Id, Val>(id),
        ));
        for e in 0..EPOCHS {
            for l in 0..LEAVES {
                seen.push(format!(
                    "group {g} epoch {e} leaf {l}: {:?}",
                    s.encryption_epoch_key_pairs::<Id, Epoch, Val>(id, &Epoch(e as u64), l as u32)
                ));
            }
        }
    }
    for k in 0..KEYS {
        let id = &key(k);
        seen.push(format!(
            "key {k}: signature {:?}, encryption {:?}, key package {:?}, psk {:?}",
            s.signature_key_pair::<Id, Val>(id),
            s.encryption_key_pair::<Val, Id>(id),
            s.key_package::<Id, Val>(id),
            s.psk::<Val, Id>(id),
        ));
    }
    seen
}

/// The oracle: the memory storage and the epoch key pairs it holds, which
/// the memory storage cannot list.
#[derive(Clone, Default)]
struct Model {
    storage: MemoryStorage,
    epoch_keys: BTreeSet<(u8, u8, u8)>,
    /// Queued proposals: OpenMLS never queues a reference twice (it is the
    /// proposal's hash), and the memory storage cannot read a queue that
    /// holds one twice, so such a call is left out of sequences.
    queued: BTreeSet<(u8, u8)>,
}

impl Model {
    /// Whether OpenMLS could make this call now.
    fn allows(&self, step: &Step) -> bool {
        match step {
            Step::QueueProposal(g, p, _) => !self.queued.contains(&(*g, *p)),
            _ => true,
        }
    }

    fn apply(&mut self, step: &Step) {
        match step {
            Step::QueueProposal(g, p, _) => {
                self.queued.insert((*g, *p));
            }
            Step::RemoveProposal(g, p) => {
                self.queued.remove(&(*g, *p));
            }
            Step::ClearProposals(g) => self.queued.retain(|(group_of, _)| group_of != g),
            Step::WriteEpochKeyPairs(g, e, l, _) => {
                self.delete_epoch_keys(*g, |older| older < *e);
                self.epoch_keys.insert((*g, *e, *l));
            }
            Step::DeleteEpochKeyPairs(g, e, l) => {
                self.delete_epoch_keys(*g, |older| older <= *e);
                self.epoch_keys.remove(&(*g, *e, *l));
            }
            Step::DeleteGroup(g) => {
                let id = group(*g);
                for one in ONES {
                    delete_one(&self.storage, one, &id).expect("memory storage");
                }
                self.storage
                    .delete_own_leaf_nodes(&id)
                    .expect("memory storage");
                self.storage
                    .clear_proposal_queue::<Id, Id>(&id)
                    .expect("memory storage");
                self.delete_epoch_keys(*g, |_| true);
                self.queued.retain(|(group_of, _)| group_of != g);
            }
            _ => {}
        }
        call(&self.storage, step).expect("memory storage");
    }

    fn delete_epoch_keys(&mut self, g: u8, drop: impl Fn(u8) -> bool) {
        let doomed: Vec<_> = self
            .epoch_keys
            .iter()
            .filter(|(group_of, epoch, _)| *group_of == g && drop(*epoch))
            .copied()
            .collect();
        for (g, e, l) in doomed {
            self.storage
                .delete_encryption_epoch_key_pairs(&group(g), &Epoch(e as u64), l as u32)
                .expect("memory storage");
            self.epoch_keys.remove(&(g, e, l));
        }
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub steps: usize,
    pub calls: usize,
    pub commits: usize,
    pub aborts: usize,
    pub reopens: usize,
    pub crashes: usize,
    pub comparisons: usize,
}

fn open(dir: &Path) -> Store {
    let options = StoreOptions::default().with_durability(false);
    Store::open_with(dir, options).expect("open store")
}

/// Non-zero halves in the key-slot file must be exactly the live secret
/// records and the spare keys (and deferred erasures) the store reports:
/// recovery erased every key a crash left behind, and no key of a
/// superseded value is left. (This trusts the store's own classification
/// of entities and its count of spares; the forward-secrecy attacker, which
/// tries every key of the file on every record version, does not.)
pub fn check_key_slots(store: &Store) -> Result<(), String> {
    let live: usize = store
        .inventory()
        .map_err(|e| format!("inventory: {e}"))?
        .iter()
        .filter(|(entity, _)| entity.is_secret())
        .map(|(_, usage)| usage.records)
        .sum();
    let keys = std::fs::read(store.directory().join("keys")).map_err(|e| e.to_string())?;
    let halves = keys[4096..]
        .chunks(64)
        .filter(|half| half.iter().any(|&b| b != 0))
        .count();
    // Beside the live records' keys: the spares written ahead for coming
    // commits, and what an erasure window still defers.
    let (spare, awaiting) = store.unused_keys();
    if halves == live + spare + awaiting {
        Ok(())
    } else {
        Err(format!(
            "{}: {halves} key halves for {live} live secret records, {spare} spare keys and {awaiting} awaiting erasure",
            store.directory().display()
        ))
    }
}

/// Runs `steps` on a store in `dir` and on the oracle; the first
/// disagreement is the error.
pub fn run(dir: &Path, steps: &[Step]) -> Result<Counts, String> {
    let mut counts = Counts::default();
    let mut store = Some(open(dir));
    let mut model = Model::default();
    // The open transaction: its store and the oracle as it would commit.
    let mut transaction: Option<(Store, Model)> = None;
    for (index, step) in steps.iter().enumerate() {
        counts.steps += 1;
        match step {
            Step::Begin => {
                if transaction.is_none() {
                    let begun = store.as_ref().expect("open").begin();
                    transaction = Some((begun, model.clone()));
                }
            }
            Step::Commit => {
                if let Some((begun, committed)) = transaction.take() {
                    begun
                        .commit()
                        .map_err(|e| format!("step {index}: commit: {e}"))?;
                    model = committed;
                    counts.commits += 1;
                }
            }
            Step::Abort => {
                if transaction.take().is_some() {
                    counts.aborts += 1;
                }
            }
            Step::Reopen | Step::Crash(_) => {
                if let (Step::Crash(point), Some((begun, committed))) = (step, transaction.take()) {
                    begun
                        .commit_until(Some(*point))
                        .map_err(|e| format!("step {index}: crashing commit: {e}"))?;
                    if *point == CrashPoint::AfterLandingBatch {
                        model = committed;
                    }
                    counts.crashes += 1;
                } else {
                    // A transaction open across a reopening is lost with it.
                    transaction = None;
                    counts.reopens += 1;
                }
                drop(store.take());
                let reopened = open(dir);
                check_key_slots(&reopened).map_err(|e| format!("step {index} ({step:?}): {e}"))?;
                store = Some(reopened);
            }
            _ => {
                let (target, oracle) = match &mut transaction {
                    Some((begun, pending)) => (&*begun, pending),
                    None => (store.as_ref().expect("open"), &mut model),
                };
                if !oracle.allows(step) {
                    continue;
                }
                counts.calls += 1;
                call(target, step).map_err(|e| format!("step {index} ({step:?}): {e}"))?;
                oracle.apply(step);
            }
        }
        let (target, oracle) = match &transaction {
            Some((begun, pending)) => (begun, pending),
            None => (store.as_ref().expect("open"), &model),
        };
        let (got, want) = (observe(target), observe(&oracle.storage));
        counts.comparisons += got.len();
        if let Some((got, want)) = got.iter().zip(&want).find(|(a, b)| a != b) {
            return Err(format!(
                "step {index} ({step:?}): store and oracle disagree\n  store:  {got}\n  oracle: {want}"
            ));
        }
    }
    Ok(counts)
}

/// Steps from arbitrary bytes, for the fuzz target and its corpus replay:
/// each step is a selector byte and the bytes of its arguments; a value is
/// a length byte and that many bytes. Every input decodes (short input ends
/// the sequence).
pub fn steps_from_bytes(data: &[u8]) -> Vec<Step> {
    struct Reader<'a>(&'a [u8]);
    impl Reader<'_> {
        fn byte(&mut self) -> Option<u8> {
            let (&first, rest) = self.0.split_first()?;
            self.0 = rest;
            Some(first)
        }
        fn below(&mut self, bound: u8) -> Option<u8> {
            Some(self.byte()? % bound)
        }
        fn value(&mut self) -> Option<Vec<u8>> {
            let len = (self.byte()? % 48) as usize;
            let len = len.min(self.0.len());
            let (value, rest) = self.0.split_at(len);
            self.0 = rest;
            Some(value.to_vec())
        }
    }
    let mut r = Reader(data);
    let mut steps = Vec::new();
    while let Some(selector) = r.byte() {
        let step = (|| {
            Some(match selector % 19 {
                0 => Step::WriteOne(ONES[r.below(9)? as usize], r.below(GROUPS)?, r.value()?),
                1 => Step::DeleteOne(ONES[r.below(9)? as usize], r.below(GROUPS)?),
                2 => Step::WriteJoinConfig(r.below(GROUPS)?, r.value()?),
                3 => Step::DeleteGroup(r.below(GROUPS)?),
                4 => Step::AppendLeafNode(r.below(GROUPS)?, r.value()?),
                5 => Step::DeleteLeafNodes(r.below(GROUPS)?),
                6 => Step::QueueProposal(r.below(GROUPS)?, r.below(PROPOSALS)?, r.value()?),
                7 => Step::RemoveProposal(r.below(GROUPS)?, r.below(PROPOSALS)?),
                8 => Step::ClearProposals(r.below(GROUPS)?),
                9 => {
                    let (g, e, l) = (r.below(GROUPS)?, r.below(EPOCHS)?, r.below(LEAVES)?);
                    let count = r.below(3)?;
                    let values = (0..count).map(|_| r.value()).collect::<Option<_>>()?;
                    Step::WriteEpochKeyPairs(g, e, l, values)
                }
                10 => {
                    Step::DeleteEpochKeyPairs(r.below(GROUPS)?, r.below(EPOCHS)?, r.below(LEAVES)?)
                }
                11 => Step::WriteGlobal(GLOBALS[r.below(4)? as usize], r.below(KEYS)?, r.value()?),
                12 => Step::DeleteGlobal(GLOBALS[r.below(4)? as usize], r.below(KEYS)?),
                13 => Step::Begin,
                14 => Step::Commit,
                15 => Step::Abort,
                16 => Step::Reopen,
                17 => Step::Crash(CrashPoint::AfterStagingKeys),
                _ => Step::Crash(CrashPoint::AfterLandingBatch),
            })
        })();
        match step {
            Some(step) => steps.push(step),
            None => break,
        }
    }
    steps
}
