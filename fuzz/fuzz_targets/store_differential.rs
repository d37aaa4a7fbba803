//! The store against `openmls_memory_storage` on step sequences decoded
//! from the input (`tests/common/differential.rs`): any disagreement, lost
//! commit, visible abort or key left behind by a crash is a panic.
#![no_main]

#[path = "../../tests/common/differential.rs"]
mod differential;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let steps = differential::steps_from_bytes(data);
    let dir = tempfile::tempdir().expect("tempdir");
    if let Err(disagreement) = differential::run(&dir.path().join("store"), &steps) {
        panic!("{disagreement}");
    }
});
