//! The in-memory backend: the same semantics as the embedded one, kept in
//! the process and lost with it. For tests, fuzzing and benchmarks of the
//! validation alone; not for a server, whose acceptances must outlive it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::backend::{Accepted, Backend, Change, Event, Stored};
use super::{Device, StorageError};

/// The Delivery Service's storage in memory (see the module docs). One lock
/// orders every change, so an event is readable as soon as it is stored.
#[derive(Debug, Default)]
pub struct Memory {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    groups: HashMap<Vec<u8>, (Stored, Vec<Device>)>,
    commits: HashMap<(Vec<u8>, u64), Accepted>,
    inboxes: HashMap<Device, BTreeMap<u64, Event>>,
    memberships: HashMap<Device, HashSet<Vec<u8>>>,
    next: u64,
}

impl Memory {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Moves `group` in the device index from the `old` devices to the `new`.
fn index(
    memberships: &mut HashMap<Device, HashSet<Vec<u8>>>,
    group: &[u8],
    old: &[Device],
    new: &[Device],
) {
    for device in old.iter().filter(|d| !new.contains(d)) {
        if let Some(groups) = memberships.get_mut(device) {
            groups.remove(group);
        }
    }
    for device in new {
        memberships
            .entry(device.clone())
            .or_default()
            .insert(group.to_vec());
    }
}

impl Backend for Memory {
    fn create(
        &self,
        group: &[u8],
        epoch: u64,
        record: &[u8],
        devices: &[Device],
    ) -> Result<bool, StorageError> {
        let mut state = self.state();
        if state.groups.contains_key(group) {
            return Ok(false);
        }
        let stored = Stored {
            version: 1,
            epoch,
            record: record.to_vec(),
        };
        state
            .groups
            .insert(group.to_vec(), (stored, devices.to_vec()));
        index(&mut state.memberships, group, &[], devices);
        Ok(true)
    }

    fn load(&self, group: &[u8]) -> Result<Option<Stored>, StorageError> {
        Ok(self
            .state()
            .groups
            .get(group)
            .map(|(stored, _)| stored.clone()))
    }

    fn apply(&self, group: &[u8], change: &Change) -> Result<bool, StorageError> {
        let mut guard = self.state();
        let State {
            groups,
            commits,
            inboxes,
            memberships,
            next,
        } = &mut *guard;
        let Some((stored, devices)) = groups.get_mut(group) else {
            return Ok(false);
        };
        if stored.version != change.version {
            return Ok(false);
        }
        if let Some(commit) = &change.commit {
            let key = (group.to_vec(), commit.epoch);
            if commit.epoch != stored.epoch || commits.contains_key(&key) {
                return Ok(false);
            }
            commits.insert(key, commit.clone());
        }
        stored.version += 1;
        stored.epoch = change.epoch;
        if let Some(record) = &change.record {
            stored.record.clone_from(record);
        }
        if let Some(new) = &change.devices {
            let old = std::mem::replace(devices, new.clone());
            index(memberships, group, &old, new);
        }
        if !change.deliveries.is_empty() {
            *next = (*next + 1).max(super::now_micros());
            let mut seen = HashSet::new();
            for delivery in &change.deliveries {
                for recipient in &delivery.recipients {
                    if seen.insert(recipient) {
                        inboxes.entry(recipient.clone()).or_default().insert(
                            *next,
                            Event {
                                seq: *next,
                                group: group.to_vec(),
                                kind: delivery.kind,
                                message: delivery.message.clone(),
                            },
                        );
                    }
                }
            }
        }
        Ok(true)
    }

    fn commit(&self, group: &[u8], epoch: u64) -> Result<Option<Accepted>, StorageError> {
        Ok(self.state().commits.get(&(group.to_vec(), epoch)).cloned())
    }

    fn inbox(&self, device: &Device, after: u64, limit: usize) -> Result<Vec<Event>, StorageError> {
        let mut state = self.state();
        let Some(inbox) = state.inboxes.get_mut(device) else {
            return Ok(Vec::new());
        };
        let unread = inbox.split_off(&after.saturating_add(1));
        *inbox = unread;
        Ok(inbox.values().take(limit).cloned().collect())
    }

    fn purge_events(&self, before: u64) -> Result<(), StorageError> {
        for inbox in self.state().inboxes.values_mut() {
            *inbox = inbox.split_off(&before);
        }
        Ok(())
    }

    fn groups_of(&self, device: &Device) -> Result<Vec<Vec<u8>>, StorageError> {
        let mut groups: Vec<Vec<u8>> = self
            .state()
            .memberships
            .get(device)
            .map(|groups| groups.iter().cloned().collect())
            .unwrap_or_default();
        groups.sort();
        Ok(groups)
    }
}
