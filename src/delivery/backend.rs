//! The interface a Delivery Service backend implements: a group's record
//! under a version, changed only by a compare-and-set that also appends the
//! change's events to the recipients' inboxes, and the accepted commits,
//! one per (group, epoch). What the record holds is the service's business
//! ([`super::DeliveryService`] encodes it); a backend keeps it opaque.

use super::{Device, EventKind, StorageError};

/// A group as stored: the version every change is compared against, the
/// epoch, and the service's record of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Bumped by every change; a change names the version it was computed
    /// from.
    pub version: u64,
    /// The group's current epoch.
    pub epoch: u64,
    /// The service's record (public group state, members, proposals).
    pub record: Vec<u8>,
}

/// A commit the service accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The epoch it was accepted in (the group then moved to `epoch + 1`).
    pub epoch: u64,
    /// Its identifier: SHA-256 of the MLSMessage.
    pub id: [u8; 32],
    /// The TLS-encoded MLSMessage (PublicMessage).
    pub message: Vec<u8>,
}

/// One message for the inboxes of `recipients`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The devices whose inboxes receive it.
    pub recipients: Vec<Device>,
    /// What it is.
    pub kind: EventKind,
    /// The TLS-encoded MLSMessage.
    pub message: Vec<u8>,
}

/// A change of one group, computed from the state at `version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The version the change was computed from; the change lands only if
    /// the group is still at it.
    pub version: u64,
    /// The epoch after the change.
    pub epoch: u64,
    /// The new record; `None` keeps the stored one (an application
    /// message changes no state, but is ordered against the changes that
    /// do).
    pub record: Option<Vec<u8>>,
    /// The commit accepted for the group's current epoch, if the change is
    /// one: the backend refuses the change if a commit is already stored
    /// for that epoch, whatever the version says.
    pub commit: Option<Accepted>,
    /// The member devices after the change, if they changed (the index of
    /// a device's groups follows them).
    pub devices: Option<Vec<Device>>,
    /// The events, appended to each recipient's inbox in this order.
    pub deliveries: Vec<Delivery>,
}

/// An event of a device's inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Its sequence number: increasing in the order events become readable
    /// in the inbox, and never behind the microseconds since the Unix epoch
    /// at which its change landed; the events of one change share one.
    pub seq: u64,
    /// The MLS group id.
    pub group: Vec<u8>,
    /// What it is.
    pub kind: EventKind,
    /// The TLS-encoded MLSMessage.
    pub message: Vec<u8>,
}

/// Storage for the Delivery Service. Every method is atomic and durable
/// when it returns `Ok`; none decides anything with a lock that only one
/// process holds, where several processes share the storage.
pub trait Backend: Send + Sync {
    /// Stores a new group at version 1 with its member devices; `false`
    /// (and nothing changed) if a group with this id exists.
    fn create(
        &self,
        group: &[u8],
        epoch: u64,
        record: &[u8],
        devices: &[Device],
    ) -> Result<bool, StorageError>;

    /// The group as stored, if it exists.
    fn load(&self, group: &[u8]) -> Result<Option<Stored>, StorageError>;

    /// Applies `change` if the group is still at `change.version` (and, for
    /// a commit, no commit is stored for its epoch): the record, the
    /// version (plus one), the commit, the device index and every
    /// delivery land together, or nothing does. Returns whether it landed.
    fn apply(&self, group: &[u8], change: &Change) -> Result<bool, StorageError>;

    /// The commit accepted in `epoch`, if any.
    fn commit(&self, group: &[u8], epoch: u64) -> Result<Option<Accepted>, StorageError>;

    /// Deletes `device`'s events up to `after` (they are acknowledged) and
    /// returns up to `limit` of the following ones, in sequence order. An
    /// event is returned only once every event with a lower sequence
    /// number that will ever be in this inbox is readable, so a reader
    /// that moves its cursor past what it read misses nothing.
    fn inbox(&self, device: &Device, after: u64, limit: usize) -> Result<Vec<Event>, StorageError>;

    /// The groups `device` is a member of.
    fn groups_of(&self, device: &Device) -> Result<Vec<Vec<u8>>, StorageError>;

    /// Deletes the events numbered below `before` from every inbox, read or
    /// not: sequence numbers never run behind the microseconds since the
    /// Unix epoch at which their change landed, so a time in microseconds
    /// purges what is older than it.
    fn purge_events(&self, before: u64) -> Result<(), StorageError>;
}

/// A backend chosen at run time is a backend too.
impl<B: Backend + ?Sized> Backend for Box<B> {
    fn create(
        &self,
        group: &[u8],
        epoch: u64,
        record: &[u8],
        devices: &[Device],
    ) -> Result<bool, StorageError> {
        (**self).create(group, epoch, record, devices)
    }

    fn load(&self, group: &[u8]) -> Result<Option<Stored>, StorageError> {
        (**self).load(group)
    }

    fn apply(&self, group: &[u8], change: &Change) -> Result<bool, StorageError> {
        (**self).apply(group, change)
    }

    fn commit(&self, group: &[u8], epoch: u64) -> Result<Option<Accepted>, StorageError> {
        (**self).commit(group, epoch)
    }

    fn inbox(&self, device: &Device, after: u64, limit: usize) -> Result<Vec<Event>, StorageError> {
        (**self).inbox(device, after, limit)
    }

    fn groups_of(&self, device: &Device) -> Result<Vec<Vec<u8>>, StorageError> {
        (**self).groups_of(device)
    }

    fn purge_events(&self, before: u64) -> Result<(), StorageError> {
        (**self).purge_events(before)
    }
}
