//! Moves an application's OpenMLS groups from `openmls_sqlite_storage`
//! (JSON codec) into a new polymls store:
//!
//! ```sh
//! cargo run --release --features sqlite-migration --example migrate_sqlite -- \
//!     OLD.sqlite NEW-STORE-DIR [--destroy-source]
//! ```
//!
//! Stop the application first. With `--destroy-source`, the SQLite files
//! are overwritten and removed once the store has them (see
//! `polymls::store::migrate` for what that does not reach); without it
//! they stay, and still hold every secret the application's groups ever
//! had there.

use std::path::PathBuf;
use std::process::ExitCode;

use polymls::store::migrate::{destroy_sqlite_files, migrate_openmls_sqlite, SqliteCodec};
use polymls::Store;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let destroy = args.iter().any(|a| a == "--destroy-source");
    let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [sqlite, store_dir] = paths[..] else {
        eprintln!("usage: migrate_sqlite OLD.sqlite NEW-STORE-DIR [--destroy-source]");
        return ExitCode::from(2);
    };
    let (sqlite, store_dir) = (PathBuf::from(sqlite), PathBuf::from(store_dir));
    if !sqlite.is_file() {
        eprintln!("no SQLite file at {}", sqlite.display());
        return ExitCode::FAILURE;
    }
    let store = match Store::open(&store_dir) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("cannot open the store in {}: {error}", store_dir.display());
            return ExitCode::FAILURE;
        }
    };
    match migrate_openmls_sqlite(&sqlite, SqliteCodec::Json, &store) {
        Ok(report) => {
            println!(
                "migrated {} groups, {} rows:",
                report.groups,
                report.total_rows()
            );
            for (table, rows) in &report.rows {
                println!("  {table}: {rows}");
            }
        }
        Err(error) => {
            eprintln!("nothing migrated: {error}");
            return ExitCode::FAILURE;
        }
    }
    drop(store);
    if destroy {
        if let Err(error) = destroy_sqlite_files(&sqlite) {
            eprintln!(
                "migrated, but destroying {} failed: {error}",
                sqlite.display()
            );
            return ExitCode::FAILURE;
        }
        println!("overwrote and removed {}", sqlite.display());
    } else {
        println!(
            "{} still holds every secret written there; destroy it with --destroy-source",
            sqlite.display()
        );
    }
    ExitCode::SUCCESS
}
