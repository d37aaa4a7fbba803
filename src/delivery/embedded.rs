//! The embedded backend: the Delivery Service in a RocksDB database of its
//! own.
//!
//! RocksDB holds the database's lock file, so one process owns it. Inside
//! it, a group's changes run one at a time under a lock of that group's
//! (the compare-and-set of [`Backend::apply`]), each landing as one synced
//! write batch with the commit, the device index and every inbox event; a
//! crash between the batch and the answer loses the answer, never the
//! batch's atomicity. Changes of different groups run in parallel and share
//! their WAL syncs (RocksDB's group commit).
//!
//! Sequence numbers come from a counter whose ceiling is persisted ahead of
//! use, so they keep increasing across restarts, and which never runs
//! behind the clock's microseconds (so [`Backend::purge_events`] can cut by
//! time). An event becomes readable only when every change holding a lower
//! number has landed or failed (changes of different groups land in any
//! order), so a reader's cursor never passes an event still being written.
//!
//! A change's messages are stored once, under its number; each recipient's
//! inbox holds a reference (the kind), so a commit to a group of a hundred
//! writes the commit once, not a hundred times.
//!
//! Keys (each name part length-prefixed):
//! - `G group` → `version || epoch || record`;
//! - `D group` → the member devices;
//! - `C group epoch` → `id || commit`;
//! - `M actor device group` → (nothing): a device's groups;
//! - `E actor device seq` → `kind`: inboxes;
//! - `X seq kind` → `group || message`: the messages of a change;
//! - `S` → the sequence ceiling.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use super::backend::{Accepted, Backend, Change, Event, Stored};
use super::{now_micros, Device, EventKind, StorageError};

const GROUP: u8 = b'G';
const DEVICES: u8 = b'D';
const COMMIT: u8 = b'C';
const MEMBERSHIP: u8 = b'M';
const EVENT: u8 = b'E';
const MESSAGE: u8 = b'X';
const CEILING: &[u8] = b"S";
/// Lock stripes for groups.
const STRIPES: usize = 64;
/// A RocksDB key and its value.
type KeyValue = (Box<[u8]>, Box<[u8]>);
/// Sequence numbers reserved per synced write of the ceiling: about 71
/// minutes of the clock's microseconds, which the numbers follow.
const BLOCK: u64 = 1 << 32;

/// The Delivery Service's storage on an embedded RocksDB (see the module
/// docs).
pub struct Embedded {
    db: DB,
    stripes: Vec<Mutex<()>>,
    sequencer: Mutex<Sequencer>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").finish_non_exhaustive()
    }
}

/// Sequence numbers handed out and not yet landed or failed.
struct Sequencer {
    next: u64,
    ceiling: u64,
    in_flight: BTreeSet<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn push_part(out: &mut Vec<u8>, part: &[u8]) -> Result<(), StorageError> {
    let len = u16::try_from(part.len()).map_err(|_| StorageError::NameTooLong)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(part);
    Ok(())
}

/// `tag || len(part) || part || ...`
fn key(tag: u8, parts: &[&[u8]]) -> Result<Vec<u8>, StorageError> {
    let mut out = vec![tag];
    for part in parts {
        push_part(&mut out, part)?;
    }
    Ok(out)
}

fn device_parts(device: &Device) -> [&[u8]; 2] {
    [device.actor.as_bytes(), device.device.as_bytes()]
}

/// Reads length-prefixed parts from `bytes`.
struct Parts<'a>(&'a [u8]);

impl<'a> Parts<'a> {
    fn next(&mut self) -> Result<&'a [u8], StorageError> {
        let short = StorageError::Corrupted("short delivery record");
        let (len, rest) = self.0.split_first_chunk::<2>().ok_or(short)?;
        let len = u16::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(StorageError::Corrupted("short delivery record"));
        }
        let (part, rest) = rest.split_at(len);
        self.0 = rest;
        Ok(part)
    }

    fn string(&mut self) -> Result<String, StorageError> {
        String::from_utf8(self.next()?.to_vec())
            .map_err(|_| StorageError::Corrupted("name is not UTF-8"))
    }

    fn u64(&mut self) -> Result<u64, StorageError> {
        let (value, rest) = self
            .0
            .split_first_chunk::<8>()
            .ok_or(StorageError::Corrupted("short delivery record"))?;
        self.0 = rest;
        Ok(u64::from_be_bytes(*value))
    }
}

fn encode_devices(devices: &[Device]) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::new();
    for device in devices {
        for part in device_parts(device) {
            push_part(&mut out, part)?;
        }
    }
    Ok(out)
}

fn decode_devices(mut bytes: &[u8]) -> Result<Vec<Device>, StorageError> {
    let mut devices = Vec::new();
    while !bytes.is_empty() {
        let mut parts = Parts(bytes);
        devices.push(Device {
            actor: parts.string()?,
            device: parts.string()?,
        });
        bytes = parts.0;
    }
    Ok(devices)
}

impl Embedded {
    /// Opens (or creates) the Delivery Service's database in `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Embedded, StorageError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        let db = DB::open(&options, path.as_ref())?;
        let ceiling = match db.get(CEILING)? {
            Some(value) => Parts(&value).u64()?,
            None => 1,
        };
        Ok(Embedded {
            db,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            sequencer: Mutex::new(Sequencer {
                // Every number below the persisted ceiling may have been
                // handed out before a crash.
                next: ceiling,
                ceiling,
                in_flight: BTreeSet::new(),
            }),
        })
    }

    fn stripe(&self, group: &[u8]) -> MutexGuard<'_, ()> {
        // FNV-1a: it only spreads groups over stripes.
        let hash = group.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
        });
        lock(&self.stripes[(hash % STRIPES as u64) as usize])
    }

    /// A sequence number above every one handed out before, in flight until
    /// [`Embedded::landed`].
    fn begin(&self) -> Result<u64, StorageError> {
        let mut sequencer = lock(&self.sequencer);
        sequencer.next = sequencer.next.max(now_micros());
        if sequencer.next >= sequencer.ceiling {
            let ceiling = sequencer.next + BLOCK;
            self.write_synced(|batch| batch.put(CEILING, ceiling.to_be_bytes()))?;
            sequencer.ceiling = ceiling;
        }
        let seq = sequencer.next;
        sequencer.next += 1;
        sequencer.in_flight.insert(seq);
        Ok(seq)
    }

    fn landed(&self, seq: u64) {
        lock(&self.sequencer).in_flight.remove(&seq);
    }

    /// The highest sequence number below which nothing is in flight.
    fn readable(&self) -> u64 {
        let sequencer = lock(&self.sequencer);
        match sequencer.in_flight.first() {
            Some(first) => first - 1,
            None => sequencer.next - 1,
        }
    }

    fn write_synced(&self, fill: impl FnOnce(&mut WriteBatch)) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        fill(&mut batch);
        self.write(batch)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut options = WriteOptions::default();
        options.set_sync(true);
        Ok(self.db.write_opt(batch, &options)?)
    }

    fn stored_devices(&self, group: &[u8]) -> Result<Vec<Device>, StorageError> {
        match self.db.get_pinned(key(DEVICES, &[group])?)? {
            Some(bytes) => decode_devices(&bytes),
            None => Ok(Vec::new()),
        }
    }

    /// Every key and value under `prefix`, at most `limit` of them.
    fn scan(
        &self,
        prefix: &[u8],
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(from, Direction::Forward))
        {
            let (key, value) = item?;
            if !key.starts_with(prefix) || out.len() == limit {
                break;
            }
            out.push((key, value));
        }
        Ok(out)
    }
}

fn message_key(seq: u64, kind: EventKind) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    out.push(MESSAGE);
    out.extend_from_slice(&seq.to_be_bytes());
    out.push(kind as u8);
    out
}

fn group_value(version: u64, epoch: u64, record: &[u8]) -> Vec<u8> {
    [&version.to_be_bytes()[..], &epoch.to_be_bytes(), record].concat()
}

impl Backend for Embedded {
    fn create(
        &self,
        group: &[u8],
        epoch: u64,
        record: &[u8],
        devices: &[Device],
    ) -> Result<bool, StorageError> {
        let _group = self.stripe(group);
        let name = key(GROUP, &[group])?;
        if self.db.get_pinned(&name)?.is_some() {
            return Ok(false);
        }
        let mut batch = WriteBatch::default();
        batch.put(&name, group_value(1, epoch, record));
        batch.put(key(DEVICES, &[group])?, encode_devices(devices)?);
        for device in devices {
            let [actor, device] = device_parts(device);
            batch.put(key(MEMBERSHIP, &[actor, device, group])?, []);
        }
        self.write(batch)?;
        Ok(true)
    }

    fn load(&self, group: &[u8]) -> Result<Option<Stored>, StorageError> {
        let Some(value) = self.db.get(key(GROUP, &[group])?)? else {
            return Ok(None);
        };
        let mut parts = Parts(&value);
        let version = parts.u64()?;
        let epoch = parts.u64()?;
        Ok(Some(Stored {
            version,
            epoch,
            record: parts.0.to_vec(),
        }))
    }

    fn apply(&self, group: &[u8], change: &Change) -> Result<bool, StorageError> {
        let _group = self.stripe(group);
        let name = key(GROUP, &[group])?;
        let Some(current) = self.db.get(&name)? else {
            return Ok(false);
        };
        let mut parts = Parts(&current);
        let (version, epoch) = (parts.u64()?, parts.u64()?);
        if version != change.version {
            return Ok(false);
        }
        let mut batch = WriteBatch::default();
        if let Some(commit) = &change.commit {
            let commit_name = key(COMMIT, &[group, &commit.epoch.to_be_bytes()])?;
            if commit.epoch != epoch || self.db.get_pinned(&commit_name)?.is_some() {
                return Ok(false);
            }
            batch.put(commit_name, [&commit.id[..], &commit.message].concat());
        }
        let record = change.record.as_deref().unwrap_or(parts.0);
        batch.put(&name, group_value(version + 1, change.epoch, record));
        if let Some(devices) = &change.devices {
            for old in self.stored_devices(group)? {
                if !devices.contains(&old) {
                    let [actor, device] = device_parts(&old);
                    batch.delete(key(MEMBERSHIP, &[actor, device, group])?);
                }
            }
            for new in devices {
                let [actor, device] = device_parts(new);
                batch.put(key(MEMBERSHIP, &[actor, device, group])?, []);
            }
            batch.put(key(DEVICES, &[group])?, encode_devices(devices)?);
        }
        let seq = if change.deliveries.is_empty() {
            None
        } else {
            Some(self.begin()?)
        };
        if let Some(seq) = seq {
            // The events of one change share its number; a device gets at
            // most one of them per change, the first that names it (a
            // member added and welcomed is not also sent the commit).
            let mut seen = std::collections::HashSet::new();
            for delivery in &change.deliveries {
                let mut value = Vec::with_capacity(delivery.message.len() + group.len() + 2);
                push_part(&mut value, group)?;
                value.extend_from_slice(&delivery.message);
                batch.put(message_key(seq, delivery.kind), value);
                for recipient in &delivery.recipients {
                    if !seen.insert(recipient) {
                        continue;
                    }
                    let [actor, device] = device_parts(recipient);
                    let mut name = key(EVENT, &[actor, device])?;
                    name.extend_from_slice(&seq.to_be_bytes());
                    batch.put(name, [delivery.kind as u8]);
                }
            }
        }
        let written = self.write(batch);
        if let Some(seq) = seq {
            self.landed(seq);
        }
        written?;
        Ok(true)
    }

    fn commit(&self, group: &[u8], epoch: u64) -> Result<Option<Accepted>, StorageError> {
        let Some(value) = self.db.get(key(COMMIT, &[group, &epoch.to_be_bytes()])?)? else {
            return Ok(None);
        };
        let (id, message) = value
            .split_first_chunk::<32>()
            .ok_or(StorageError::Corrupted("short commit record"))?;
        Ok(Some(Accepted {
            epoch,
            id: *id,
            message: message.to_vec(),
        }))
    }

    fn inbox(&self, device: &Device, after: u64, limit: usize) -> Result<Vec<Event>, StorageError> {
        let prefix = key(EVENT, &device_parts(device))?;
        let readable = self.readable();
        let from = [&prefix[..], &after.saturating_add(1).to_be_bytes()].concat();
        // Only what was readable can have been read: a cursor beyond it
        // acknowledges nothing still being written. The range is bounded
        // by the device's prefix, so no other inbox falls in it.
        let acknowledged = [
            &prefix[..],
            &after.min(readable).saturating_add(1).to_be_bytes(),
        ]
        .concat();
        // A range tombstone only when something is acknowledged: readers
        // that poll an empty inbox would otherwise pile them up.
        if let Some(first) = self.scan(&prefix, &prefix, 1)?.first() {
            if first.0[..] < acknowledged[..] {
                let mut batch = WriteBatch::default();
                batch.delete_range(&prefix[..], &acknowledged[..]);
                self.db.write(batch)?;
            }
        }
        let mut found = Vec::new();
        for (name, value) in self.scan(&prefix, &from, limit)? {
            let seq = Parts(&name[prefix.len()..]).u64()?;
            if seq > readable {
                break;
            }
            let kind = value
                .first()
                .and_then(|byte| EventKind::from_byte(*byte))
                .ok_or(StorageError::Corrupted("unknown event kind"))?;
            found.push((seq, kind));
        }
        let messages = self
            .db
            .multi_get(found.iter().map(|(seq, kind)| message_key(*seq, *kind)));
        let mut events = Vec::with_capacity(found.len());
        for ((seq, kind), message) in found.into_iter().zip(messages) {
            // A message purged with its retention leaves references behind
            // in inboxes not read since: they are skipped.
            let Some(message) = message? else {
                continue;
            };
            let mut parts = Parts(&message);
            let group = parts.next()?.to_vec();
            events.push(Event {
                seq,
                group,
                kind,
                message: parts.0.to_vec(),
            });
        }
        Ok(events)
    }

    fn purge_events(&self, before: u64) -> Result<(), StorageError> {
        // Messages are keyed by number first: one range. The references
        // left in inboxes are skipped when read, and go when acknowledged.
        let mut batch = WriteBatch::default();
        batch.delete_range(&[MESSAGE][..], &message_key(before, EventKind::Commit)[..9]);
        Ok(self.db.write(batch)?)
    }

    fn groups_of(&self, device: &Device) -> Result<Vec<Vec<u8>>, StorageError> {
        let prefix = key(MEMBERSHIP, &device_parts(device))?;
        self.scan(&prefix, &prefix, usize::MAX)?
            .into_iter()
            .map(|(name, _)| Ok(Parts(&name[prefix.len()..]).next()?.to_vec()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::backend::Delivery;

    fn message(version: u64, to: &Device) -> Change {
        Change {
            version,
            epoch: 0,
            record: None,
            commit: None,
            devices: None,
            deliveries: vec![Delivery {
                recipients: vec![to.clone()],
                kind: EventKind::Message,
                message: b"m".to_vec(),
            }],
        }
    }

    /// A change holding a lower number that has not landed hides the
    /// events numbered after it, and they show once it lands; numbers go
    /// on increasing after a reopening.
    #[test]
    fn an_event_waits_for_every_lower_number_in_flight() {
        let dir = tempfile::tempdir().expect("temp dir");
        let reader = Device::new("reader", "phone");
        let last = {
            let db = Embedded::open(dir.path()).expect("open");
            assert!(db
                .create(b"g", 0, b"r", std::slice::from_ref(&reader))
                .expect("create"));
            let in_flight = db.begin().expect("a number");
            assert!(db.apply(b"g", &message(1, &reader)).expect("apply"));
            assert!(
                db.inbox(&reader, 0, 10).expect("inbox").is_empty(),
                "the later event waits"
            );
            db.landed(in_flight);
            let events = db.inbox(&reader, 0, 10).expect("inbox");
            assert_eq!(events.len(), 1);
            assert!(events[0].seq > in_flight);
            events[0].seq
        };
        let db = Embedded::open(dir.path()).expect("reopen");
        assert!(db.apply(b"g", &message(2, &reader)).expect("apply"));
        let events = db.inbox(&reader, last, 10).expect("inbox");
        assert_eq!(events.len(), 1);
        assert!(events[0].seq > last, "numbers increase across a reopening");
    }
}
