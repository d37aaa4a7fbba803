//! The PostgreSQL backend: the directory in one database shared by any
//! number of server processes on any number of machines.
//!
//! Nothing is decided by a lock of this process: every operation is one
//! transaction, and the database's row locks and unique indexes give the
//! one-time and uniqueness properties.
//! - A claim deletes each regular KeyPackage it returns in the transaction
//!   that selects it, `FOR UPDATE SKIP LOCKED`: concurrent claims take
//!   different rows instead of queueing on one. Only when no unlocked row
//!   is left does a claim wait for the locked ones (`FOR UPDATE`), so that a
//!   claim that aborts does not make another hand out the last resort while
//!   regular KeyPackages remain.
//! - `init_key` uniqueness is the primary key of `init_keys` (the SHA-256 of
//!   each `init_key`, with its KeyPackage's end of lifetime): an upload that
//!   races another with the same key waits on the index and then stores
//!   nothing.
//! - Expiry is in every claim's and stock query's `WHERE`.
//!
//! A commit is durable as PostgreSQL makes it (`synchronous_commit`, on by
//! default); a process killed after the commit of a claim and before its
//! answer loses the answer, never the one-time property, and one killed
//! before the commit changes nothing.
//!
//! The schema is versioned in `polymls_directory_schema` and migrated when
//! the backend opens, under an advisory lock so that processes starting
//! together migrate once; a database whose schema is newer than this
//! build's is refused ([`DirectoryError::SchemaTooNew`]).
//!
//! Connections are plain (`NoTls`): a Unix socket, loopback or a network
//! the operator trusts; TLS to the database is not built in.

use std::collections::HashMap;
use std::time::Duration;

use r2d2_postgres::postgres::types::ToSql;
use r2d2_postgres::postgres::{Client, NoTls, Statement, Transaction};
use r2d2_postgres::r2d2::{self, ManageConnection, Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;

use super::backend::{Backend, Claimed, Entry, LastResort, Stock, Wanted};
use super::DirectoryError;

/// The schema, one migration per version (the index + 1 is the version).
/// A migration is never edited once released: a change is a new one.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE devices (
        actor text NOT NULL,
        device text NOT NULL,
        PRIMARY KEY (actor, device)
    );
    -- The key leads with the device and suite and ends with the upload
    -- order, so that a claim's oldest-first pick is an index scan; no index
    -- on id alone, which a generic plan could prefer (scanning every actor's
    -- rows in id order for the first match).
    CREATE TABLE key_packages (
        id bigint GENERATED ALWAYS AS IDENTITY,
        actor text NOT NULL,
        device text NOT NULL,
        suite integer NOT NULL,
        last_resort boolean NOT NULL,
        used boolean NOT NULL DEFAULT false,
        not_after bigint NOT NULL,
        key_package bytea NOT NULL,
        extensions integer[] NOT NULL,
        PRIMARY KEY (actor, device, suite, id)
    );
    CREATE UNIQUE INDEX key_packages_last_resort ON key_packages (actor, device, suite)
        WHERE last_resort;
    CREATE INDEX key_packages_not_after ON key_packages (not_after);
    CREATE TABLE init_keys (
        hash bytea PRIMARY KEY,
        not_after bigint NOT NULL
    );
    CREATE INDEX init_keys_not_after ON init_keys (not_after);
"];

/// Serializes migrations between processes (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x706f_6c79_6d6c_7301;

const DEVICES: &str = "SELECT device FROM devices WHERE actor = $1 ORDER BY device COLLATE \"C\"";
/// Deletes and returns the oldest regular KeyPackage of a device in one
/// suite, the row locked with `$lock`. One suite at a time, in the
/// claimer's order, so that each is an index scan of (actor, device,
/// suite, id) however many KeyPackages the device holds: ordering by the
/// suite's position in the list would sort them all.
macro_rules! take_regular {
    ($lock:literal) => {
        concat!(
            "DELETE FROM key_packages
             WHERE actor = $1 AND device = $2 AND suite = $3 AND id = (
                 SELECT id FROM key_packages
                 WHERE actor = $1 AND device = $2 AND NOT last_resort
                   AND suite = $3 AND not_after > $4
                   AND ($5::integer[] IS NULL OR extensions <@ $5)
                 ORDER BY id
                 LIMIT 1 ",
            $lock,
            ")
             RETURNING key_package"
        )
    };
}
const TAKE_REGULAR: &str = take_regular!("FOR UPDATE SKIP LOCKED");
const WAIT_REGULAR: &str = take_regular!("FOR UPDATE");
const LAST_RESORT_OF: &str = "
    SELECT id, suite, key_package, used FROM key_packages
    WHERE actor = $1 AND device = $2 AND last_resort
      AND suite = ANY($3) AND not_after > $4
      AND ($5::integer[] IS NULL OR extensions <@ $5)
    ORDER BY array_position($3, suite)
    LIMIT 1 FOR NO KEY UPDATE";
const MARK_USED: &str = "
    UPDATE key_packages SET used = true
    WHERE actor = $1 AND device = $2 AND suite = $3 AND id = $4";
const RESERVE: &str =
    "INSERT INTO init_keys (hash, not_after) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const ADD_DEVICE: &str =
    "INSERT INTO devices (actor, device) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const ADD_REGULAR: &str = "
    INSERT INTO key_packages
        (actor, device, suite, last_resort, not_after, key_package, extensions)
    VALUES ($1, $2, $3, false, $4, $5, $6)";
const ADD_LAST_RESORT: &str = "
    INSERT INTO key_packages
        (actor, device, suite, last_resort, not_after, key_package, extensions)
    VALUES ($1, $2, $3, true, $4, $5, $6)
    ON CONFLICT (actor, device, suite) WHERE last_resort DO UPDATE
    SET used = false, not_after = EXCLUDED.not_after, key_package = EXCLUDED.key_package,
        extensions = EXCLUDED.extensions";
const STOCK: &str = "
    SELECT device, suite,
        count(*) FILTER (WHERE NOT last_resort AND not_after > $2),
        bool_or(last_resort AND not_after > $2 AND NOT used),
        bool_or(last_resort AND not_after > $2 AND used)
    FROM key_packages WHERE actor = $1
    GROUP BY device, suite";
const HAS_ACTOR: &str = "SELECT EXISTS (SELECT 1 FROM devices WHERE actor = $1)";
const PURGE: &str = "DELETE FROM key_packages WHERE not_after <= $1";
const PURGE_RESERVATIONS: &str = "DELETE FROM init_keys WHERE not_after <= $1";
const REMOVE_DEVICE_KEY_PACKAGES: &str =
    "DELETE FROM key_packages WHERE actor = $1 AND device = $2";
const REMOVE_DEVICE: &str = "DELETE FROM devices WHERE actor = $1 AND device = $2";
const REMOVE_ACTOR_KEY_PACKAGES: &str = "DELETE FROM key_packages WHERE actor = $1";
const REMOVE_ACTOR: &str = "DELETE FROM devices WHERE actor = $1";

/// How the backend connects (see [`Postgres::connect_with`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Connections in the pool: at most this many operations of this
    /// process run at once.
    pub pool_size: u32,
    /// How long an operation waits for a connection (the database down,
    /// or the pool busy) before it fails with
    /// [`DirectoryError::Unavailable`].
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl PostgresOptions {
    /// With `size` connections in the pool.
    pub fn with_pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    /// With `timeout` to wait for a connection.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// A connection with the statements it has prepared, so that each
/// operation costs its round trips of execution only.
struct Session {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// r2d2_postgres's manager, with a statement cache on each connection.
struct Manager(PostgresConnectionManager<NoTls>);

impl ManageConnection for Manager {
    type Connection = Session;
    type Error = r2d2_postgres::postgres::Error;

    fn connect(&self) -> Result<Session, Self::Error> {
        Ok(Session {
            client: self.0.connect()?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, session: &mut Session) -> Result<(), Self::Error> {
        self.0.is_valid(&mut session.client)
    }

    fn has_broken(&self, session: &mut Session) -> bool {
        session.client.is_closed()
    }
}

/// The directory on PostgreSQL (see the module docs).
pub struct Postgres {
    pool: Pool<Manager>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("pool_size", &self.pool.max_size())
            .finish_non_exhaustive()
    }
}

impl From<r2d2_postgres::postgres::Error> for DirectoryError {
    fn from(error: r2d2_postgres::postgres::Error) -> Self {
        let code = error.code().map(|c| c.code());
        // SQLSTATE classes 08 (connection exception) and 57 (operator
        // intervention: the server shutting down), a closed connection or
        // an I/O error: the database, not the statement, failed.
        let unavailable = error.is_closed()
            || code.is_some_and(|c| c.starts_with("08") || c.starts_with("57"))
            || std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>());
        if unavailable {
            // `Display` of a server's error says only "db error": the
            // message is in its source.
            let why = match std::error::Error::source(&error) {
                Some(source) => format!("{error}: {source}"),
                None => error.to_string(),
            };
            DirectoryError::Unavailable(why)
        } else {
            DirectoryError::Postgres(error)
        }
    }
}

impl From<r2d2::Error> for DirectoryError {
    fn from(error: r2d2::Error) -> Self {
        DirectoryError::Unavailable(error.to_string())
    }
}

/// The prepared statement for `sql` on this connection.
fn statement(
    transaction: &mut Transaction<'_>,
    statements: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> Result<Statement, DirectoryError> {
    if let Some(statement) = statements.get(sql) {
        return Ok(statement.clone());
    }
    let prepared = transaction.prepare(sql)?;
    statements.insert(sql, prepared.clone());
    Ok(prepared)
}

/// An open transaction and its connection's statement cache.
struct Work<'a> {
    transaction: Transaction<'a>,
    statements: &'a mut HashMap<&'static str, Statement>,
}

impl Work<'_> {
    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<r2d2_postgres::postgres::Row>, DirectoryError> {
        let statement = statement(&mut self.transaction, self.statements, sql)?;
        Ok(self.transaction.query(&statement, params)?)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, DirectoryError> {
        let statement = statement(&mut self.transaction, self.statements, sql)?;
        Ok(self.transaction.execute(&statement, params)?)
    }
}

fn to_i64(value: u64) -> Result<i64, DirectoryError> {
    i64::try_from(value).map_err(|_| DirectoryError::Corrupted("time beyond PostgreSQL's bigint"))
}

fn to_u16(value: i32) -> Result<u16, DirectoryError> {
    u16::try_from(value).map_err(|_| DirectoryError::Corrupted("suite out of range"))
}

impl Postgres {
    /// Connects to the database at `url` (a `postgresql://` URL or a
    /// `key=value` connection string) with the default options, and
    /// migrates its schema.
    pub fn connect(url: &str) -> Result<Postgres, DirectoryError> {
        Postgres::connect_with(url, PostgresOptions::default())
    }

    /// Connects with `options`, and migrates the schema.
    pub fn connect_with(url: &str, options: PostgresOptions) -> Result<Postgres, DirectoryError> {
        let config = url
            .parse()
            .map_err(|e| DirectoryError::Unavailable(format!("connection URL: {e}")))?;
        let manager = Manager(PostgresConnectionManager::new(config, NoTls));
        let pool = Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(0))
            .connection_timeout(options.connect_timeout)
            // A broken connection shows itself on use (`has_broken`); a test
            // query on every checkout would cost every operation a round trip.
            .test_on_check_out(false)
            .build_unchecked(manager);
        let backend = Postgres { pool };
        backend.migrate()?;
        Ok(backend)
    }

    /// The schema version this build writes.
    pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

    fn migrate(&self) -> Result<(), DirectoryError> {
        let mut session = self.pool.get()?;
        let mut transaction = session.client.transaction()?;
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        transaction.batch_execute(
            "CREATE TABLE IF NOT EXISTS polymls_directory_schema (version integer NOT NULL)",
        )?;
        let found: i32 =
            match transaction.query_opt("SELECT version FROM polymls_directory_schema", &[])? {
                Some(row) => row.try_get(0)?,
                None => {
                    transaction.execute("INSERT INTO polymls_directory_schema VALUES (0)", &[])?;
                    0
                }
            };
        if found > Self::SCHEMA_VERSION {
            return Err(DirectoryError::SchemaTooNew {
                found,
                supported: Self::SCHEMA_VERSION,
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            transaction.batch_execute(migration)?;
            transaction.execute(
                "UPDATE polymls_directory_schema SET version = $1",
                &[&(index as i32 + 1)],
            )?;
        }
        Ok(transaction.commit()?)
    }

    /// Runs `work` in one transaction on a pooled connection, and commits.
    fn transaction<T>(
        &self,
        work: impl FnOnce(&mut Work<'_>) -> Result<T, DirectoryError>,
    ) -> Result<T, DirectoryError> {
        let mut session: PooledConnection<Manager> = self.pool.get()?;
        let Session { client, statements } = &mut *session;
        let mut work_in = Work {
            transaction: client.transaction()?,
            statements,
        };
        let value = work(&mut work_in)?;
        work_in.transaction.commit()?;
        Ok(value)
    }
}

/// Deletes and returns the device's oldest regular KeyPackage in the first
/// of `suites` it has one in: first among the rows no other claim holds;
/// only if there is none, waiting for those others hold (a claim that
/// aborts gives its row back).
fn take_regular(
    work: &mut Work<'_>,
    actor: &str,
    device: &str,
    suites: &[i32],
    extensions: &Option<Vec<i32>>,
    now: i64,
) -> Result<Option<(u16, Vec<u8>)>, DirectoryError> {
    for query in [TAKE_REGULAR, WAIT_REGULAR] {
        for suite in suites {
            let params: [&(dyn ToSql + Sync); 5] = [&actor, &device, suite, &now, extensions];
            if let Some(row) = work.query(query, &params)?.first() {
                return Ok(Some((to_u16(*suite)?, row.try_get(0)?)));
            }
        }
    }
    Ok(None)
}

impl Backend for Postgres {
    fn insert(&self, entries: &[Entry]) -> Result<Vec<bool>, DirectoryError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.transaction(|work| {
            let mut stored = Vec::with_capacity(entries.len());
            let mut devices = std::collections::HashSet::new();
            for entry in entries {
                let not_after = to_i64(entry.not_after)?;
                let reserved = work.execute(RESERVE, &[&&entry.init_key_hash[..], &not_after])?;
                stored.push(reserved == 1);
                if reserved == 0 {
                    continue;
                }
                if devices.insert((&entry.actor, &entry.device)) {
                    work.execute(ADD_DEVICE, &[&entry.actor, &entry.device])?;
                }
                let add = if entry.last_resort {
                    ADD_LAST_RESORT
                } else {
                    ADD_REGULAR
                };
                let extensions: Vec<i32> = entry.extensions.iter().map(|&t| i32::from(t)).collect();
                work.execute(
                    add,
                    &[
                        &entry.actor,
                        &entry.device,
                        &i32::from(entry.suite),
                        &not_after,
                        &entry.key_package,
                        &extensions,
                    ],
                )?;
            }
            Ok(stored)
        })
    }

    fn claim(
        &self,
        actor: &str,
        wanted: Wanted<'_>,
        now: u64,
    ) -> Result<Vec<Claimed>, DirectoryError> {
        let suites: Vec<i32> = wanted.suites.iter().map(|&s| i32::from(s)).collect();
        let extensions: Option<Vec<i32>> = wanted
            .extensions
            .map(|types| types.iter().map(|&t| i32::from(t)).collect());
        let now = to_i64(now)?;
        self.transaction(|work| {
            let mut claimed = Vec::new();
            for row in work.query(DEVICES, &[&actor])? {
                let device: String = row.try_get(0)?;
                if let Some((suite, key_package)) =
                    take_regular(work, actor, &device, &suites, &extensions, now)?
                {
                    claimed.push(Claimed {
                        device,
                        suite,
                        key_package,
                        last_resort: false,
                    });
                    continue;
                }
                let params: [&(dyn ToSql + Sync); 5] =
                    [&actor, &device, &suites, &now, &extensions];
                if let Some(row) = work.query(LAST_RESORT_OF, &params)?.first() {
                    let used: bool = row.try_get(3)?;
                    let suite: i32 = row.try_get(1)?;
                    if !used {
                        let id: i64 = row.try_get(0)?;
                        work.execute(MARK_USED, &[&actor, &device, &suite, &id])?;
                    }
                    claimed.push(Claimed {
                        device,
                        suite: to_u16(suite)?,
                        key_package: row.try_get(2)?,
                        last_resort: true,
                    });
                }
            }
            Ok(claimed)
        })
    }

    fn stock(&self, actor: &str, now: u64) -> Result<Vec<Stock>, DirectoryError> {
        let now = to_i64(now)?;
        self.transaction(|work| {
            work.query(STOCK, &[&actor, &now])?
                .iter()
                .map(|row| {
                    let regular: i64 = row.try_get(2)?;
                    let fresh: Option<bool> = row.try_get(3)?;
                    let used: Option<bool> = row.try_get(4)?;
                    Ok(Stock {
                        device: row.try_get(0)?,
                        suite: to_u16(row.try_get(1)?)?,
                        regular: usize::try_from(regular)
                            .map_err(|_| DirectoryError::Corrupted("negative count"))?,
                        last_resort: match (fresh, used) {
                            (Some(true), _) => LastResort::Fresh,
                            (_, Some(true)) => LastResort::Used,
                            _ => LastResort::Missing,
                        },
                    })
                })
                .collect()
        })
    }

    fn has_actor(&self, actor: &str) -> Result<bool, DirectoryError> {
        self.transaction(|work| Ok(work.query(HAS_ACTOR, &[&actor])?[0].get(0)))
    }

    fn purge_expired(&self, now: u64) -> Result<usize, DirectoryError> {
        let now = to_i64(now)?;
        self.transaction(|work| {
            let purged = work.execute(PURGE, &[&now])?;
            work.execute(PURGE_RESERVATIONS, &[&now])?;
            Ok(purged as usize)
        })
    }

    fn remove_device(&self, actor: &str, device: &str) -> Result<usize, DirectoryError> {
        self.transaction(|work| {
            let removed = work.execute(REMOVE_DEVICE_KEY_PACKAGES, &[&actor, &device])?;
            work.execute(REMOVE_DEVICE, &[&actor, &device])?;
            Ok(removed as usize)
        })
    }

    fn remove_actor(&self, actor: &str) -> Result<usize, DirectoryError> {
        self.transaction(|work| {
            let removed = work.execute(REMOVE_ACTOR_KEY_PACKAGES, &[&actor])?;
            work.execute(REMOVE_ACTOR, &[&actor])?;
            Ok(removed as usize)
        })
    }
}
