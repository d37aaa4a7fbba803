//! The KeyPackage directory of a polyproto home server (polyproto-mls
//! v0.1.0-alpha.1, §1.1-1.3), as a library the server embeds: validated
//! uploads, one-time claims, a last resort per device and suite, low-stock
//! signals, expiry and multi-device, on a [`Backend`] (the embedded RocksDB
//! one by default, [`Directory::open`]).
//!
//! What it guarantees, on every backend:
//! - a KeyPackage is stored only if it passes [`validate::check`] (RFC 9420
//!   §10.1 on polymls's own parser, every suite of the suite table,
//!   0xF110 included), its `init_key` is unique among the KeyPackages held
//!   and those handed out whose lifetime has not lapsed, and the server's
//!   [`IdentityCheck`] accepts its credential for the actor and device;
//! - a regular KeyPackage is handed out at most once, under any number of
//!   concurrent claims, across crashes and restarts; a device's last resort
//!   only when it has no regular one left in the acceptable suites;
//! - nothing whose lifetime has lapsed is handed out.
//!
//! What it does not: it does not authenticate requests (the server maps
//! them to an actor and device), and it does not check a credential beyond
//! asking the hook (an X.509 or polyproto ID-Cert chain is the server's to
//! verify there).
//!
//! The parser and the checks ([`keypackage`], [`validate`]) are always
//! built; the embedded backend needs the cargo feature `directory`
//! (RocksDB).

pub mod backend;
#[cfg(feature = "directory")]
mod embedded;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod http;
pub mod keypackage;
#[cfg(feature = "postgres")]
mod postgres;
pub mod validate;

use sha2::{Digest, Sha256};

pub use backend::{Backend, Claimed, Entry, LastResort, Stock, Wanted};
#[cfg(feature = "directory")]
#[cfg_attr(docsrs, doc(cfg(feature = "directory")))]
pub use embedded::Embedded;
pub use keypackage::Credential;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{Postgres, PostgresOptions};
pub use validate::{Policy, Rejection};

/// Why a directory operation failed (not a KeyPackage's verdict: those are
/// [`Rejection`]s).
#[derive(Debug)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The embedded backend's RocksDB reported an error.
    #[cfg(feature = "directory")]
    Database(rocksdb::Error),
    /// The PostgreSQL backend's database refused a statement.
    #[cfg(feature = "postgres")]
    Postgres(r2d2_postgres::postgres::Error),
    /// The database cannot be reached (down, restarting, the connection
    /// lost, no connection free in time); the operation changed nothing
    /// unless it committed before the loss, and may be retried.
    Unavailable(String),
    /// The database's schema is newer than this build knows.
    SchemaTooNew {
        /// The database's schema version.
        found: i32,
        /// The newest this build migrates to.
        supported: i32,
    },
    /// A stored record does not decode.
    Corrupted(&'static str),
    /// An actor or device name longer than 65,535 bytes.
    NameTooLong,
}

impl std::fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            #[cfg(feature = "directory")]
            DirectoryError::Database(error) => write!(f, "directory database: {error}"),
            #[cfg(feature = "postgres")]
            DirectoryError::Postgres(error) => match std::error::Error::source(error) {
                Some(source) => write!(f, "directory database: {error}: {source}"),
                None => write!(f, "directory database: {error}"),
            },
            DirectoryError::Unavailable(why) => write!(f, "directory database unavailable: {why}"),
            DirectoryError::SchemaTooNew { found, supported } => write!(
                f,
                "directory schema version {found} is newer than this build's {supported}: \
                 upgrade polymls"
            ),
            DirectoryError::Corrupted(what) => write!(f, "directory corrupted: {what}"),
            DirectoryError::NameTooLong => f.write_str("actor or device name too long"),
        }
    }
}

impl std::error::Error for DirectoryError {}

#[cfg(feature = "directory")]
impl From<rocksdb::Error> for DirectoryError {
    fn from(error: rocksdb::Error) -> Self {
        DirectoryError::Database(error)
    }
}

/// The server's answer to "is this the actor's identity for this device?"
/// (polyproto: the leaf's signature key is the identity key of the
/// device's ID-Cert).
pub trait IdentityCheck: Send + Sync {
    /// Whether `credential` with `signature_key` is `actor`'s identity on
    /// `device`.
    fn accepts(
        &self,
        actor: &str,
        device: &str,
        credential: &Credential,
        signature_key: &[u8],
    ) -> bool;
}

/// A hook shared with the rest of the server (its authenticator, say) is a
/// hook too.
impl<T: IdentityCheck + ?Sized> IdentityCheck for std::sync::Arc<T> {
    fn accepts(
        &self,
        actor: &str,
        device: &str,
        credential: &Credential,
        signature_key: &[u8],
    ) -> bool {
        (**self).accepts(actor, device, credential, signature_key)
    }
}

/// Seconds since the Unix epoch; injectable for tests.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// What a device should be asked to upload: the server turns these into
/// polyproto's `LOW_KEY_PACKAGES` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Fewer regular KeyPackages than the threshold in a suite.
    LowStock {
        /// The actor.
        actor: String,
        /// The device.
        device: String,
        /// The suite.
        suite: u16,
        /// How many regular ones are left.
        remaining: usize,
    },
    /// A device has no last resort in a suite it has KeyPackages in.
    LastResortMissing {
        /// The actor.
        actor: String,
        /// The device.
        device: String,
        /// The suite.
        suite: u16,
    },
    /// The last resort of a device was handed out: it should be replaced.
    LastResortUsed {
        /// The actor.
        actor: String,
        /// The device.
        device: String,
        /// The suite.
        suite: u16,
    },
}

/// Called with each [`Signal`] a claim raises.
pub trait Notify: Send + Sync {
    /// One signal; called after the claim is durable.
    fn signal(&self, signal: Signal);
}

/// One KeyPackage of an upload.
#[derive(Clone, Debug)]
pub struct Upload {
    /// The client's identifier for it, echoed in its verdict.
    pub id: String,
    /// The TLS-encoded MLS KeyPackage.
    pub key_package: Vec<u8>,
    /// Whether the client marks it as its last resort; it must then carry
    /// the `last_resort` extension, and one with the extension is a last
    /// resort whatever the flag says.
    pub last_resort: bool,
}

/// The verdict on one uploaded KeyPackage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The upload's identifier.
    pub id: String,
    /// `Ok` if stored (durably, when [`Directory::publish`] returns).
    pub result: Result<(), Rejection>,
}

/// The directory over a backend `B` ([`Directory::open`]: the embedded one).
pub struct Directory<B: Backend> {
    backend: B,
    policy: Policy,
    identity: Box<dyn IdentityCheck>,
    clock: Box<dyn Clock>,
    notify: Option<Box<dyn Notify>>,
    low_stock: usize,
}

impl<B: Backend> std::fmt::Debug for Directory<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Regular KeyPackages per device and suite below which a device is asked
/// for more, by default.
pub const DEFAULT_LOW_STOCK: usize = 10;

#[cfg(feature = "directory")]
impl Directory<Embedded> {
    /// The directory on an embedded RocksDB in `path`, with the default
    /// [`Policy`] and the system clock.
    pub fn open(
        path: impl AsRef<std::path::Path>,
        identity: impl IdentityCheck + 'static,
    ) -> Result<Self, DirectoryError> {
        Ok(Directory::with_backend(Embedded::open(path)?, identity))
    }
}

impl<B: Backend> Directory<B> {
    /// The directory on `backend`, with the default [`Policy`] and the
    /// system clock.
    pub fn with_backend(backend: B, identity: impl IdentityCheck + 'static) -> Self {
        Directory {
            backend,
            policy: Policy::default(),
            identity: Box::new(identity),
            clock: Box::new(SystemClock),
            notify: None,
            low_stock: DEFAULT_LOW_STOCK,
        }
    }

    /// With `policy` (suites taken, longest lifetime).
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// With `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// With `notify` called for each signal a claim raises.
    pub fn with_notify(mut self, notify: impl Notify + 'static) -> Self {
        self.notify = Some(Box::new(notify));
        self
    }

    /// With `threshold` regular KeyPackages per device and suite as the
    /// low-stock mark ([`DEFAULT_LOW_STOCK`] unless set).
    pub fn with_low_stock(mut self, threshold: usize) -> Self {
        self.low_stock = threshold;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Validates each upload and stores the valid ones; a verdict per
    /// upload, in order. A rejected KeyPackage changes nothing; the
    /// accepted ones are durable when this returns.
    pub fn publish(
        &self,
        actor: &str,
        device: &str,
        uploads: &[Upload],
    ) -> Result<Vec<Verdict>, DirectoryError> {
        let now = self.clock.now();
        let mut verdicts: Vec<Verdict> = Vec::with_capacity(uploads.len());
        let mut entries = Vec::new();
        let mut entry_of = Vec::new();
        let mut last_resorts = std::collections::HashSet::new();
        let bytes: Vec<&[u8]> = uploads.iter().map(|u| &u.key_package[..]).collect();
        let checked = validate::check_batch(&bytes, &self.policy, now);
        for (index, (upload, checked)) in uploads.iter().zip(checked).enumerate() {
            let result = self
                .admit(actor, device, upload, checked)
                .and_then(|entry| {
                    if entry.last_resort && !last_resorts.insert(entry.suite) {
                        return Err(Rejection::LastResort("two for one suite in one upload"));
                    }
                    Ok(entry)
                });
            verdicts.push(Verdict {
                id: upload.id.clone(),
                result: result.as_ref().map(|_| ()).map_err(Clone::clone),
            });
            if let Ok(entry) = result {
                entries.push(entry);
                entry_of.push(index);
            }
        }
        let stored = self.backend.insert(&entries)?;
        for (index, stored) in entry_of.into_iter().zip(stored) {
            if !stored {
                verdicts[index].result = Err(Rejection::DuplicateInitKey);
            }
        }
        Ok(verdicts)
    }

    /// Everything after validation but uniqueness, which the backend
    /// decides atomically.
    fn admit(
        &self,
        actor: &str,
        device: &str,
        upload: &Upload,
        checked: Result<validate::Checked, Rejection>,
    ) -> Result<Entry, Rejection> {
        let checked = checked?;
        let leaf = &checked.key_package.leaf_node;
        if !self
            .identity
            .accepts(actor, device, &leaf.credential, &leaf.signature_key)
        {
            return Err(Rejection::Identity);
        }
        let marked = checked.key_package.is_last_resort();
        if upload.last_resort && !marked {
            return Err(Rejection::LastResort(
                "flagged as last resort without the last_resort extension",
            ));
        }
        Ok(Entry {
            extensions: checked.key_package.extension_types(),
            actor: actor.to_string(),
            device: device.to_string(),
            suite: checked.suite.code_point,
            key_package: upload.key_package.clone(),
            init_key_hash: Sha256::digest(&checked.key_package.init_key).into(),
            not_after: checked.not_after,
            last_resort: marked,
        })
    }

    /// One KeyPackage per device of `actor` in the first of `suites` the
    /// device has (see [`Backend::claim`]), sorted by device; empty if none
    /// is available.
    /// Raises a [`Signal`] for each device left low or whose last resort
    /// was handed out.
    pub fn claim(&self, actor: &str, suites: &[u16]) -> Result<Vec<Claimed>, DirectoryError> {
        self.claim_wanted(
            actor,
            Wanted {
                suites,
                extensions: None,
            },
        )
    }

    /// [`Directory::claim`] among the KeyPackages `wanted` allows (its
    /// suites, and an allowlist of extensions).
    pub fn claim_wanted(
        &self,
        actor: &str,
        wanted: Wanted<'_>,
    ) -> Result<Vec<Claimed>, DirectoryError> {
        let now = self.clock.now();
        let mut claimed = self.backend.claim(actor, wanted, now)?;
        claimed.sort_by(|a, b| a.device.cmp(&b.device));
        if let Some(notify) = &self.notify {
            for signal in self.signals_after(actor, &claimed, now)? {
                notify.signal(signal);
            }
        }
        Ok(claimed)
    }

    fn signals_after(
        &self,
        actor: &str,
        claimed: &[Claimed],
        now: u64,
    ) -> Result<Vec<Signal>, DirectoryError> {
        let threshold = self.low_stock;
        let stock = self.backend.stock(actor, now)?;
        let mut signals = Vec::new();
        for claim in claimed {
            if claim.last_resort {
                signals.push(Signal::LastResortUsed {
                    actor: actor.to_string(),
                    device: claim.device.clone(),
                    suite: claim.suite,
                });
                continue;
            }
            let remaining = stock
                .iter()
                .find(|s| s.device == claim.device && s.suite == claim.suite)
                .map_or(0, |s| s.regular);
            if remaining < threshold {
                signals.push(Signal::LowStock {
                    actor: actor.to_string(),
                    device: claim.device.clone(),
                    suite: claim.suite,
                    remaining,
                });
            }
        }
        Ok(signals)
    }

    /// What each device of `actor` holds, per suite.
    /// Sorted by device, then suite.
    pub fn stock(&self, actor: &str) -> Result<Vec<Stock>, DirectoryError> {
        let mut stock = self.backend.stock(actor, self.clock.now())?;
        stock.sort_by(|a, b| (&a.device, a.suite).cmp(&(&b.device, b.suite)));
        Ok(stock)
    }

    /// What `actor`'s devices should upload now: every suite with fewer
    /// regular KeyPackages than the threshold, and every used or missing
    /// last resort.
    pub fn needs(&self, actor: &str) -> Result<Vec<Signal>, DirectoryError> {
        let threshold = self.low_stock;
        let mut signals = Vec::new();
        for stock in self.stock(actor)? {
            if stock.regular < threshold {
                signals.push(Signal::LowStock {
                    actor: actor.to_string(),
                    device: stock.device.clone(),
                    suite: stock.suite,
                    remaining: stock.regular,
                });
            }
            let (actor, device, suite) = (actor.to_string(), stock.device, stock.suite);
            match stock.last_resort {
                LastResort::Fresh => {}
                LastResort::Used => signals.push(Signal::LastResortUsed {
                    actor,
                    device,
                    suite,
                }),
                LastResort::Missing => signals.push(Signal::LastResortMissing {
                    actor,
                    device,
                    suite,
                }),
            }
        }
        Ok(signals)
    }

    /// Whether `actor` has any device in the directory.
    pub fn has_actor(&self, actor: &str) -> Result<bool, DirectoryError> {
        self.backend.has_actor(actor)
    }

    /// Deletes the KeyPackages whose lifetime has lapsed; returns how many.
    pub fn purge_expired(&self) -> Result<usize, DirectoryError> {
        self.backend.purge_expired(self.clock.now())
    }

    /// Deletes everything of one device; returns how many KeyPackages.
    pub fn remove_device(&self, actor: &str, device: &str) -> Result<usize, DirectoryError> {
        self.backend.remove_device(actor, device)
    }

    /// Deletes everything of an actor; returns how many KeyPackages.
    pub fn remove_actor(&self, actor: &str) -> Result<usize, DirectoryError> {
        self.backend.remove_actor(actor)
    }
}
