//! A way in for applications on `openmls_sqlite_storage`: every entity of
//! its SQLite database, written through a [`Store`] in one transaction.
//!
//! The SQLite provider stores each value in the application's serde codec.
//! The migration decodes it into a self-describing value (without knowing
//! its OpenMLS type), re-encodes it as the store's CBOR, and writes it
//! through the store's own `StorageProvider` methods, so that names,
//! indexes and the clean-ups are exactly those of a group that had always
//! lived in the store.
//!
//! # The old file still holds the secrets
//!
//! The SQLite file (and its `-wal` and `-journal` files) keeps every secret
//! OpenMLS ever wrote there that SQLite has not reused the page of: old epoch
//! secrets, ratchet keys, private keys. Migrating does not change that:
//! after checking that the groups work on the store, destroy the old files
//! with [`destroy_sqlite_files`] (which overwrites them in place before
//! removing them). On flash storage (SSDs, phones: the controller writes
//! elsewhere and remaps), on copy-on-write file systems (btrfs, ZFS, APFS)
//! and in snapshots or backups, an overwrite does not reach the old blocks;
//! there, only destroying the key of a full-disk encryption (or the
//! device's own secure erase) removes them.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ciborium::Value;
use openmls_traits::storage::{traits, Entity, Key, StorageProvider, CURRENT_VERSION};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::codec::Untyped;
use super::{Store, StoreError};

/// The newest schema of `openmls_sqlite_storage` this migration reads: its
/// migration `V6` (crate version 0.3.0). A newer one may store entities
/// differently, so it is refused.
pub const NEWEST_KNOWN_SCHEMA: i64 = 6;

/// Where `openmls_sqlite_storage` records its schema version: the table of
/// `run_migrations`, or refinery's default of the deprecated `initialize`.
const SCHEMA_HISTORIES: [&str; 2] = [
    "openmls_sqlite_storage_migrations",
    "refinery_schema_history",
];

/// The `provider_version` every row must have (`openmls_sqlite_storage`'s
/// `STORAGE_PROVIDER_VERSION`, OpenMLS's storage format 1).
const PROVIDER_VERSION: i64 = 1;

/// The serde codec the application gave `SqliteStorageProvider`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqliteCodec {
    /// `serde_json` (`to_vec` / `from_slice`), as in OpenMLS's own tests.
    Json,
}

/// What a migration read and wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// The groups moved (those with any group data).
    pub groups: usize,
    /// The rows read from each table, by table name.
    pub rows: BTreeMap<&'static str, usize>,
}

impl MigrationReport {
    /// All rows read.
    pub fn total_rows(&self) -> usize {
        self.rows.values().sum()
    }
}

/// Why a migration failed. When it fails, it has written nothing to the
/// store (and it never writes to the SQLite file).
#[derive(Debug)]
#[non_exhaustive]
pub enum MigrationError {
    /// SQLite could not open or read the file: it is not a database, or it
    /// is corrupted.
    Sqlite(rusqlite::Error),
    /// SQLite's integrity check found the file damaged.
    Corrupted(String),
    /// The file is a database, but not one of `openmls_sqlite_storage`.
    NotOpenMlsStorage(&'static str),
    /// The database was written by a newer `openmls_sqlite_storage`.
    NewerSchema {
        /// The schema version found.
        found: i64,
        /// The newest this migration reads ([`NEWEST_KNOWN_SCHEMA`]).
        newest_known: i64,
    },
    /// A row of another OpenMLS storage format version.
    ProviderVersion {
        /// The table of the row.
        table: &'static str,
        /// The version found.
        found: i64,
    },
    /// The database holds entities polymls's store does not carry (those
    /// of OpenMLS's draft features).
    Unsupported(String),
    /// A stored key or value does not decode in the given codec.
    Undecodable {
        /// The table of the row.
        table: &'static str,
    },
    /// The store already holds records; a migration goes into an empty one.
    DestinationNotEmpty,
    /// The store failed.
    Store(StoreError),
}

impl fmt::Display for MigrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrationError::Sqlite(error) => write!(f, "cannot read the SQLite file: {error}"),
            MigrationError::Corrupted(report) => {
                write!(f, "the SQLite file is damaged: {report}")
            }
            MigrationError::NotOpenMlsStorage(what) => {
                write!(f, "not an openmls_sqlite_storage database: {what}")
            }
            MigrationError::NewerSchema {
                found,
                newest_known,
            } => write!(
                f,
                "schema version {found} is newer than the newest this migration reads ({newest_known})"
            ),
            MigrationError::ProviderVersion { table, found } => {
                write!(f, "a row of {table} has storage version {found}, not {PROVIDER_VERSION}")
            }
            MigrationError::Unsupported(what) => write!(f, "cannot migrate {what}"),
            MigrationError::Undecodable { table } => {
                write!(f, "a row of {table} does not decode in the given codec")
            }
            MigrationError::DestinationNotEmpty => f.write_str("the store is not empty"),
            MigrationError::Store(error) => write!(f, "the store failed: {error}"),
        }
    }
}

impl std::error::Error for MigrationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MigrationError::Sqlite(error) => Some(error),
            MigrationError::Store(error) => Some(error),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for MigrationError {
    fn from(error: rusqlite::Error) -> Self {
        MigrationError::Sqlite(error)
    }
}

impl From<StoreError> for MigrationError {
    fn from(error: StoreError) -> Self {
        MigrationError::Store(error)
    }
}

type Result<T> = std::result::Result<T, MigrationError>;

/// Moves every entity of the `openmls_sqlite_storage` database at `sqlite`
/// (written with `codec`) into `store`, in one transaction: afterwards the
/// application opens its groups from the store, or, if this fails, the
/// store is as it was.
///
/// `store` must be empty, and the application must not use the SQLite file
/// meanwhile (it is opened read-only and read in one SQLite transaction).
/// The file is left as it was: see the [module docs](self) for why and how
/// to destroy it afterwards.
pub fn migrate_openmls_sqlite(
    sqlite: &Path,
    codec: SqliteCodec,
    store: &Store,
) -> Result<MigrationReport> {
    let mut connection = Connection::open_with_flags(
        sqlite,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // A snapshot: rows read later see the same database as rows read first.
    let snapshot = connection.transaction()?;
    check_database(&snapshot)?;
    if !store.inventory()?.is_empty() {
        return Err(MigrationError::DestinationNotEmpty);
    }
    let source = Source {
        connection: &snapshot,
        codec,
    };
    let transaction = store.begin();
    let report = source.copy_into(&transaction)?;
    transaction.commit()?;
    Ok(report)
}

/// Refuses files that are damaged, not of `openmls_sqlite_storage`, of a
/// newer schema, or holding entities the store does not carry.
fn check_database(connection: &Connection) -> Result<()> {
    let integrity: String = connection.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if integrity != "ok" {
        return Err(MigrationError::Corrupted(integrity));
    }
    let history = SCHEMA_HISTORIES
        .into_iter()
        .map(|table| table_exists(connection, table).map(|exists| exists.then_some(table)))
        .find_map(|found| found.transpose())
        .transpose()?
        .ok_or(MigrationError::NotOpenMlsStorage("no schema history"))?;
    let schema: Option<i64> =
        connection.query_row(&format!("SELECT MAX(version) FROM {history}"), [], |row| {
            row.get(0)
        })?;
    let schema = schema.ok_or(MigrationError::NotOpenMlsStorage("empty schema history"))?;
    if schema > NEWEST_KNOWN_SCHEMA {
        return Err(MigrationError::NewerSchema {
            found: schema,
            newest_known: NEWEST_KNOWN_SCHEMA,
        });
    }
    for table in TABLES {
        if !table_exists(connection, table)? {
            return Err(MigrationError::NotOpenMlsStorage("a table is missing"));
        }
        let wrong: Option<i64> = connection
            .query_row(
                &format!("SELECT provider_version FROM {table} WHERE provider_version != ?1"),
                [PROVIDER_VERSION],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(found) = wrong {
            return Err(MigrationError::ProviderVersion { table, found });
        }
    }
    // The virtual-clients draft's tables (schema V3 and later).
    for table in [
        "vc_emulation_group_secrets",
        "vc_emulation_bindings",
        "vc_operation_trees",
        "vc_retained_key_package_material",
        "registered_vc_emulation_epochs",
    ] {
        if table_exists(connection, table)? {
            let rows: i64 =
                connection.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                    row.get(0)
                })?;
            if rows > 0 {
                return Err(MigrationError::Unsupported(format!(
                    "virtual-client data ({table})"
                )));
            }
        }
    }
    Ok(())
}

fn table_exists(connection: &Connection, table: &str) -> Result<bool> {
    Ok(connection
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

const SIGNATURE_KEYS: &str = "openmls_signature_keys";
const ENCRYPTION_KEYS: &str = "openmls_encryption_keys";
const KEY_PACKAGES: &str = "openmls_key_packages";
const PSKS: &str = "openmls_psks";
const GROUP_DATA: &str = "openmls_group_data";
const OWN_LEAF_NODES: &str = "openmls_own_leaf_nodes";
const PROPOSALS: &str = "openmls_proposals";
const EPOCH_KEY_PAIRS: &str = "openmls_epoch_keys_pairs";

/// The tables of OpenMLS's entities, in the order they are copied.
const TABLES: [&str; 8] = [
    SIGNATURE_KEYS,
    ENCRYPTION_KEYS,
    KEY_PACKAGES,
    PSKS,
    GROUP_DATA,
    OWN_LEAF_NODES,
    PROPOSALS,
    EPOCH_KEY_PAIRS,
];

/// A value of unknown OpenMLS type: decoded from the source codec, written
/// in the store's CBOR as the typed value would have been. It may hold
/// private keys, so it has no `Debug`. The decoded tree is not wiped when
/// dropped (ciborium's values have no zeroizing support); the source bytes
/// are read in place from SQLite and the store's encoding is zeroized.
struct Transcoded(Value);

impl Serialize for Transcoded {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        Untyped(&self.0).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Transcoded {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Transcoded)
    }
}

impl Key<CURRENT_VERSION> for Transcoded {}
impl Entity<CURRENT_VERSION> for Transcoded {}

/// `Transcoded` stands for every key and entity type of OpenMLS.
macro_rules! stands_for {
    ($($role:ident),* $(,)?) => {
        $(impl traits::$role<CURRENT_VERSION> for Transcoded {})*
    };
}

stands_for!(
    GroupId,
    SignaturePublicKey,
    HashReference,
    PskId,
    EncryptionKey,
    EpochKey,
    QueuedProposal,
    TreeSync,
    GroupContext,
    InterimTranscriptHash,
    ConfirmationTag,
    SignatureKeyPair,
    PskBundle,
    HpkeKeyPair,
    GroupState,
    GroupEpochSecrets,
    LeafNodeIndex,
    MessageSecrets,
    ResumptionPskStore,
    KeyPackage,
    MlsGroupJoinConfig,
    LeafNode,
    ProposalRef,
);

impl SqliteCodec {
    /// The self-describing value of `bytes`, shaped as the store's CBOR
    /// encoder shapes the typed value.
    fn transcode(self, bytes: &[u8]) -> Option<Transcoded> {
        match self {
            SqliteCodec::Json => {
                let mut value: Value = serde_json::from_slice(bytes).ok()?;
                restore_integer_keys(&mut value);
                Some(Transcoded(value))
            }
        }
    }
}

/// JSON writes the integer keys of maps (OpenMLS has them, e.g. the leaf
/// indexes of a pending commit's tree diff) as strings, which CBOR keeps
/// as integers; this turns them back. A key that is the canonical decimal
/// form of an integer cannot be a struct field or enum variant name (Rust
/// identifiers do not start with a digit or `-`), so no text key of
/// OpenMLS's types is mistaken for one.
fn restore_integer_keys(value: &mut Value) {
    match value {
        Value::Map(entries) => {
            for (key, value) in entries.iter_mut() {
                if let Some(integer) = key.as_text().and_then(canonical_integer) {
                    *key = integer;
                }
                restore_integer_keys(value);
            }
        }
        Value::Array(elements) => elements.iter_mut().for_each(restore_integer_keys),
        Value::Tag(_, inner) => restore_integer_keys(inner),
        _ => {}
    }
}

/// The integer `text` is the canonical decimal form of (as `serde_json`
/// writes integer keys), if any.
fn canonical_integer(text: &str) -> Option<Value> {
    let integer: i128 = text.parse().ok()?;
    if integer.to_string() != text {
        return None;
    }
    if let Ok(unsigned) = u64::try_from(integer) {
        return Some(Value::from(unsigned));
    }
    i64::try_from(integer).ok().map(Value::from)
}

struct Source<'a> {
    connection: &'a Connection,
    codec: SqliteCodec,
}

impl Source<'_> {
    /// Calls `visit` with every row of `sql`; returns how many there were.
    /// Blobs are read in place (SQLite's page cache), not copied.
    fn each_row(
        &self,
        sql: &str,
        mut visit: impl FnMut(&rusqlite::Row<'_>) -> Result<()>,
    ) -> Result<usize> {
        let mut statement = self.connection.prepare(sql)?;
        let mut rows = statement.query([])?;
        let mut count = 0;
        while let Some(row) = rows.next()? {
            visit(row)?;
            count += 1;
        }
        Ok(count)
    }

    /// Column `column` of a row of `table`: a key or value in the codec.
    fn value(
        &self,
        table: &'static str,
        row: &rusqlite::Row<'_>,
        column: usize,
    ) -> Result<Transcoded> {
        let bytes = row
            .get_ref(column)?
            .as_blob()
            .map_err(|_| MigrationError::Undecodable { table })?;
        self.codec
            .transcode(bytes)
            .ok_or(MigrationError::Undecodable { table })
    }

    fn copy_into(&self, store: &Store) -> Result<MigrationReport> {
        let mut report = MigrationReport::default();

        // Keys by public key or reference: `key || value`.
        let keyed: [(&'static str, &str, KeyedWrite); 4] = [
            (SIGNATURE_KEYS, "public_key, signature_key", |s, k, v| {
                s.write_signature_key_pair(k, v)
            }),
            (ENCRYPTION_KEYS, "public_key, key_pair", |s, k, v| {
                s.write_encryption_key_pair(k, v)
            }),
            (KEY_PACKAGES, "key_package_ref, key_package", |s, k, v| {
                s.write_key_package(k, v)
            }),
            (PSKS, "psk_id, psk_bundle", |s, k, v| s.write_psk(k, v)),
        ];
        for (table, columns, write) in keyed {
            let rows = self.each_row(&format!("SELECT {columns} FROM {table}"), |row| {
                let (key, value) = (self.value(table, row, 0)?, self.value(table, row, 1)?);
                Ok(write(store, &key, &value)?)
            })?;
            report.rows.insert(table, rows);
        }

        let mut groups = std::collections::BTreeSet::new();
        let sql = format!("SELECT group_id, group_data, data_type FROM {GROUP_DATA}");
        let rows = self.each_row(&sql, |row| {
            let group = self.value(GROUP_DATA, row, 0)?;
            let value = self.value(GROUP_DATA, row, 1)?;
            let data_type: String = row.get(2)?;
            write_group_data(store, &data_type, &group, &value)?;
            groups.insert(row.get::<_, Vec<u8>>(0)?);
            Ok(())
        })?;
        report.rows.insert(GROUP_DATA, rows);
        report.groups = groups.len();

        // In the order they were appended.
        let sql = format!("SELECT group_id, leaf_node FROM {OWN_LEAF_NODES} ORDER BY id");
        let rows = self.each_row(&sql, |row| {
            let group = self.value(OWN_LEAF_NODES, row, 0)?;
            let leaf_node = self.value(OWN_LEAF_NODES, row, 1)?;
            Ok(store.append_own_leaf_node(&group, &leaf_node)?)
        })?;
        report.rows.insert(OWN_LEAF_NODES, rows);

        // In the order they were queued.
        let sql =
            format!("SELECT group_id, proposal_ref, proposal FROM {PROPOSALS} ORDER BY rowid");
        let rows = self.each_row(&sql, |row| {
            let group = self.value(PROPOSALS, row, 0)?;
            let reference = self.value(PROPOSALS, row, 1)?;
            let proposal = self.value(PROPOSALS, row, 2)?;
            Ok(store.queue_proposal(&group, &reference, &proposal)?)
        })?;
        report.rows.insert(PROPOSALS, rows);

        // Oldest epoch first: the store erases a group's older epoch key
        // pairs when it writes newer ones, as it would have in the session.
        let mut epoch_key_pairs = Vec::new();
        let sql =
            format!("SELECT group_id, epoch_id, key_pairs, leaf_index FROM {EPOCH_KEY_PAIRS}");
        let rows = self.each_row(&sql, |row| {
            let group = self.value(EPOCH_KEY_PAIRS, row, 0)?;
            let epoch = self.value(EPOCH_KEY_PAIRS, row, 1)?;
            let number = epoch.0.as_integer().and_then(|n| u64::try_from(n).ok());
            let Value::Array(key_pairs) = self.value(EPOCH_KEY_PAIRS, row, 2)?.0 else {
                return Err(MigrationError::Undecodable {
                    table: EPOCH_KEY_PAIRS,
                });
            };
            let leaf_index = u32::try_from(row.get::<_, i64>(3)?).ok();
            let (Some(number), Some(leaf_index)) = (number, leaf_index) else {
                return Err(MigrationError::Undecodable {
                    table: EPOCH_KEY_PAIRS,
                });
            };
            let key_pairs: Vec<Transcoded> = key_pairs.into_iter().map(Transcoded).collect();
            epoch_key_pairs.push((number, group, epoch, leaf_index, key_pairs));
            Ok(())
        })?;
        epoch_key_pairs.sort_by_key(|(number, ..)| *number);
        for (_, group, epoch, leaf_index, key_pairs) in epoch_key_pairs {
            store.write_encryption_epoch_key_pairs(&group, &epoch, leaf_index, &key_pairs)?;
        }
        report.rows.insert(EPOCH_KEY_PAIRS, rows);
        Ok(report)
    }
}

type KeyedWrite = fn(&Store, &Transcoded, &Transcoded) -> std::result::Result<(), StoreError>;

/// Writes one row of `openmls_group_data` through the method for its type.
fn write_group_data(
    store: &Store,
    data_type: &str,
    group: &Transcoded,
    value: &Transcoded,
) -> Result<()> {
    match data_type {
        "join_group_config" => store.write_mls_join_config(group, value),
        "tree" => store.write_tree(group, value),
        "interim_transcript_hash" => store.write_interim_transcript_hash(group, value),
        "context" => store.write_context(group, value),
        "confirmation_tag" => store.write_confirmation_tag(group, value),
        "group_state" => store.write_group_state(group, value),
        "message_secrets" => store.write_message_secrets(group, value),
        "resumption_psk_store" => store.write_resumption_psk_store(group, value),
        "own_leaf_index" => store.write_own_leaf_index(group, value),
        "group_epoch_secrets" => store.write_group_epoch_secrets(group, value),
        // `application_export_tree` (OpenMLS's extensions draft) and
        // `use_ratchet_tree_extension` (in the schema, never written by
        // OpenMLS 0.9): nothing of the store would read them.
        other => {
            return Err(MigrationError::Unsupported(format!(
                "group data of type {other:?}"
            )))
        }
    }
    .map_err(MigrationError::Store)
}

/// Overwrites the SQLite database at `sqlite` and its `-wal`, `-shm` and
/// `-journal` files with zeros, syncs them, and removes them.
///
/// This reaches the disk blocks only where the file system overwrites in
/// place (ext4, XFS) on a disk that does too: not on flash (SSDs, phones),
/// copy-on-write file systems (btrfs, ZFS, APFS), snapshots or backups.
/// See the [module docs](self).
pub fn destroy_sqlite_files(sqlite: &Path) -> std::io::Result<()> {
    let mut paths = vec![sqlite.to_path_buf()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = sqlite.as_os_str().to_owned();
        name.push(suffix);
        paths.push(PathBuf::from(name));
    }
    for path in paths {
        let mut file = match std::fs::OpenOptions::new().write(true).open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        let length = file.metadata()?.len();
        let zeros = vec![0u8; 64 * 1024];
        let mut left = length;
        while left > 0 {
            let chunk = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..chunk])?;
            left -= chunk as u64;
        }
        file.sync_all()?;
        drop(file);
        std::fs::remove_file(&path)?;
    }
    if let Some(parent) = sqlite.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_integers_become_integer_keys() {
        let json = br#"{"payload": {"3": [1, 2], "007": 1, "-4": null, "x1": 0}}"#;
        let Transcoded(value) = SqliteCodec::Json.transcode(json).expect("decodes");
        let payload = &value.as_map().expect("map")[0].1;
        let keys: Vec<&Value> = payload
            .as_map()
            .expect("map")
            .iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                &Value::from(3u64),
                &Value::from("007"),
                &Value::from(-4i64),
                &Value::from("x1")
            ]
        );
        // Field order is the stored order (the store's names depend on it).
        assert_eq!(value.as_map().expect("map")[0].0, Value::from("payload"));
    }

    /// A JSON null (OpenMLS's `None`) is stored as a CBOR null and reads
    /// back as one, not as an empty list.
    #[test]
    fn a_json_null_is_stored_as_null() {
        use crate::store::codec::{Cbor, Codec};
        let transcoded = SqliteCodec::Json
            .transcode(br#"{"a": null, "b": [null, 1]}"#)
            .expect("decodes");
        let stored = Cbor::encode(&transcoded).expect("encodes");
        assert_eq!(
            Cbor::decode::<Value>(&stored).expect("decodes"),
            transcoded.0
        );
        assert_eq!(&stored[..5], &[0xa2, 0x61, b'a', 0xf6, 0x61]);
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(SqliteCodec::Json.transcode(b"{\"a\":").is_none());
        assert!(SqliteCodec::Json.transcode(b"").is_none());
    }
}
