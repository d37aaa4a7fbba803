//! The MLS interop vectors that need a whole OpenMLS provider, run with
//! polymls: key-schedule (OpenMLS's own runner), treekem, and
//! passive-client-welcome (replayed through OpenMLS's public API).

#[path = "common/groups.rs"]
mod groups;

use openmls_memory_storage::MemoryStorage;
use polymls::Provider;

fn vector(file: &str) -> String {
    format!("{}/vectors/mls/{file}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn key_schedule() {
    groups::run_key_schedule(
        &Provider::<MemoryStorage>::default(),
        &vector("key-schedule.json"),
    );
}

#[test]
fn treekem() {
    groups::run_treekem(
        &Provider::<MemoryStorage>::default(),
        &vector("treekem.json"),
    );
}

#[test]
fn passive_client_welcome() {
    groups::run_passive_client_welcome(
        Provider::<MemoryStorage>::default,
        &vector("passive-client-welcome.json"),
    );
}

#[test]
fn passive_client_welcome_on_the_store() {
    let root = tempfile::tempdir().expect("tempdir");
    let counter = std::cell::Cell::new(0);
    let open = || {
        counter.set(counter.get() + 1);
        Provider::open(root.path().join(counter.get().to_string())).expect("open store")
    };
    groups::run_passive_client_welcome(open, &vector("passive-client-welcome.json"));
}
