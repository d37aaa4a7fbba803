//! The interface a directory backend implements: storage and the atomic
//! steps (insert with `init_key` uniqueness, claim), with the semantics
//! every backend must give. Validation happens before, in the directory.

use super::DirectoryError;

/// A validated KeyPackage to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The actor (its federation id) the KeyPackage belongs to.
    pub actor: String,
    /// The actor's device.
    pub device: String,
    /// The cipher suite's code point.
    pub suite: u16,
    /// The TLS-encoded KeyPackage, as uploaded.
    pub key_package: Vec<u8>,
    /// SHA-256 of the `init_key`: what uniqueness is decided on.
    pub init_key_hash: [u8; 32],
    /// When the lifetime lapses (seconds since the Unix epoch).
    pub not_after: u64,
    /// Whether this is the device's last-resort KeyPackage for the suite.
    pub last_resort: bool,
    /// The types of the extensions it carries, its own and its leaf
    /// node's (what [`Wanted::extensions`] filters on).
    pub extensions: Vec<u16>,
}

/// What a claim asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted<'a> {
    /// The acceptable suites, most preferred first.
    pub suites: &'a [u16],
    /// If set, an allowlist: only KeyPackages every extension of which (its
    /// own and its leaf node's) is listed here (polyproto-mls's
    /// `extensions` query parameter); if `None`, any.
    pub extensions: Option<&'a [u16]>,
}

impl Wanted<'_> {
    /// Whether a KeyPackage carrying extensions of `types` may be handed out.
    pub fn allows(&self, types: &[u16]) -> bool {
        self.extensions
            .is_none_or(|allowed| types.iter().all(|t| allowed.contains(t)))
    }
}

/// A KeyPackage a claim handed out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The device it belongs to.
    pub device: String,
    /// Its suite.
    pub suite: u16,
    /// The TLS-encoded KeyPackage.
    pub key_package: Vec<u8>,
    /// Whether it is the device's last resort (handed out again until
    /// replaced).
    pub last_resort: bool,
}

/// The state of a device's last-resort KeyPackage for a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastResort {
    /// None uploaded (or it lapsed).
    Missing,
    /// Uploaded and not yet handed out.
    Fresh,
    /// Handed out at least once: the client should replace it.
    Used,
}

/// What a device holds in one suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stock {
    /// The device.
    pub device: String,
    /// The suite.
    pub suite: u16,
    /// Regular KeyPackages whose lifetime has not lapsed.
    pub regular: usize,
    /// The last-resort KeyPackage's state.
    pub last_resort: LastResort,
}

/// Storage for the directory. Every method is atomic and durable when it
/// returns `Ok`; none decides anything with a lock that only one process
/// holds, where several processes share the storage.
pub trait Backend: Send + Sync {
    /// Stores each entry whose `init_key_hash` is not already reserved (by a
    /// KeyPackage held, or handed out and not lapsed), reserving it until
    /// `not_after`; a last-resort entry replaces the device's previous one
    /// for its suite. Returns, per entry, whether it was stored. An entry
    /// not stored changes nothing.
    fn insert(&self, entries: &[Entry]) -> Result<Vec<bool>, DirectoryError>;

    /// Hands out one KeyPackage per device of `actor`, among those
    /// `wanted` allows: a regular one in the first of `wanted.suites` that
    /// the device has one in, deleting it; or, if the device has no regular
    /// one left in any of them, its last resort in the first suite it has
    /// one in, marking it used. KeyPackages whose lifetime has lapsed at
    /// `now` are never handed out. A regular KeyPackage is handed out at
    /// most once, whatever runs concurrently.
    fn claim(
        &self,
        actor: &str,
        wanted: Wanted<'_>,
        now: u64,
    ) -> Result<Vec<Claimed>, DirectoryError>;

    /// What each device of `actor` holds, per suite, at `now`.
    fn stock(&self, actor: &str, now: u64) -> Result<Vec<Stock>, DirectoryError>;

    /// Whether `actor` has any device in the directory.
    fn has_actor(&self, actor: &str) -> Result<bool, DirectoryError>;

    /// Deletes every KeyPackage whose lifetime has lapsed at `now`, and the
    /// `init_key` reservations that lapsed with them; returns how many
    /// KeyPackages it deleted.
    fn purge_expired(&self, now: u64) -> Result<usize, DirectoryError>;

    /// Deletes everything of one device; returns how many KeyPackages.
    fn remove_device(&self, actor: &str, device: &str) -> Result<usize, DirectoryError>;

    /// Deletes everything of an actor; returns how many KeyPackages.
    fn remove_actor(&self, actor: &str) -> Result<usize, DirectoryError>;
}

/// A backend chosen at run time (say, from the server's configuration) is a
/// backend too.
impl<B: Backend + ?Sized> Backend for Box<B> {
    fn insert(&self, entries: &[Entry]) -> Result<Vec<bool>, DirectoryError> {
        (**self).insert(entries)
    }

    fn claim(
        &self,
        actor: &str,
        wanted: Wanted<'_>,
        now: u64,
    ) -> Result<Vec<Claimed>, DirectoryError> {
        (**self).claim(actor, wanted, now)
    }

    fn stock(&self, actor: &str, now: u64) -> Result<Vec<Stock>, DirectoryError> {
        (**self).stock(actor, now)
    }

    fn has_actor(&self, actor: &str) -> Result<bool, DirectoryError> {
        (**self).has_actor(actor)
    }

    fn purge_expired(&self, now: u64) -> Result<usize, DirectoryError> {
        (**self).purge_expired(now)
    }

    fn remove_device(&self, actor: &str, device: &str) -> Result<usize, DirectoryError> {
        (**self).remove_device(actor, device)
    }

    fn remove_actor(&self, actor: &str) -> Result<usize, DirectoryError> {
        (**self).remove_actor(actor)
    }
}
