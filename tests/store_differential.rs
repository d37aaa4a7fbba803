//! The store against `openmls_memory_storage` as the oracle, over random
//! sequences of OpenMLS's storage calls, transactions, reopenings and
//! crashes (`common/differential.rs`): a bounded, seeded property test that
//! shrinks a failing sequence to a small one.

#[path = "common/differential.rs"]
mod differential;

use std::sync::atomic::{AtomicUsize, Ordering};

use differential::{Global, One, Step, EPOCHS, GLOBALS, GROUPS, KEYS, LEAVES, ONES, PROPOSALS};
use polymls::store::CrashPoint;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..48)
}

fn one() -> impl Strategy<Value = One> {
    prop::sample::select(ONES.to_vec())
}

fn global() -> impl Strategy<Value = Global> {
    prop::sample::select(GLOBALS.to_vec())
}

fn step() -> impl Strategy<Value = Step> {
    let g = 0..GROUPS;
    prop_oneof![
        6 => (one(), g.clone(), value()).prop_map(|(o, g, v)| Step::WriteOne(o, g, v)),
        2 => (one(), g.clone()).prop_map(|(o, g)| Step::DeleteOne(o, g)),
        2 => (g.clone(), value()).prop_map(|(g, v)| Step::WriteJoinConfig(g, v)),
        1 => g.clone().prop_map(Step::DeleteGroup),
        2 => (g.clone(), value()).prop_map(|(g, v)| Step::AppendLeafNode(g, v)),
        1 => g.clone().prop_map(Step::DeleteLeafNodes),
        2 => (g.clone(), 0..PROPOSALS, value()).prop_map(|(g, p, v)| Step::QueueProposal(g, p, v)),
        1 => (g.clone(), 0..PROPOSALS).prop_map(|(g, p)| Step::RemoveProposal(g, p)),
        1 => g.clone().prop_map(Step::ClearProposals),
        4 => (g.clone(), 0..EPOCHS, 0..LEAVES, prop::collection::vec(value(), 0..3))
            .prop_map(|(g, e, l, v)| Step::WriteEpochKeyPairs(g, e, l, v)),
        2 => (g.clone(), 0..EPOCHS, 0..LEAVES).prop_map(|(g, e, l)| Step::DeleteEpochKeyPairs(g, e, l)),
        3 => (global(), 0..KEYS, value()).prop_map(|(k, i, v)| Step::WriteGlobal(k, i, v)),
        2 => (global(), 0..KEYS).prop_map(|(k, i)| Step::DeleteGlobal(k, i)),
        3 => Just(Step::Begin),
        2 => Just(Step::Commit),
        1 => Just(Step::Abort),
        1 => Just(Step::Reopen),
        1 => Just(Step::Crash(CrashPoint::AfterStagingKeys)),
        1 => Just(Step::Crash(CrashPoint::AfterLandingBatch)),
    ]
}

#[test]
fn the_store_agrees_with_the_memory_storage() {
    const CASES: u32 = 256;
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    // Seeded, so every run tries the same sequences (and CI's failure is
    // the developer's).
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[0x5e; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let totals = std::sync::Mutex::new(differential::Counts::default());
    let cases = AtomicUsize::new(0);
    let result = runner.run(&prop::collection::vec(step(), 1..80), |steps| {
        let dir = tempfile::tempdir().expect("tempdir");
        let counts =
            differential::run(&dir.path().join("store"), &steps).map_err(TestCaseError::fail)?;
        cases.fetch_add(1, Ordering::Relaxed);
        let mut totals = totals.lock().expect("totals");
        totals.steps += counts.steps;
        totals.calls += counts.calls;
        totals.commits += counts.commits;
        totals.aborts += counts.aborts;
        totals.reopens += counts.reopens;
        totals.crashes += counts.crashes;
        totals.comparisons += counts.comparisons;
        Ok(())
    });
    let totals = *totals.lock().expect("totals");
    println!(
        "differential: {} sequences passed, {} steps ({} storage calls, {} commits, {} aborts, {} reopenings, {} crashes mid-commit), {} reads compared",
        cases.load(Ordering::Relaxed),
        totals.steps,
        totals.calls,
        totals.commits,
        totals.aborts,
        totals.reopens,
        totals.crashes,
        totals.comparisons
    );
    if let Err(error) = result {
        panic!("{error}");
    }
    assert!(cases.load(Ordering::Relaxed) >= CASES as usize);
    assert!(totals.crashes > 0 && totals.commits > 0 && totals.aborts > 0);
}

/// The fuzz target's corpus (`fuzz/corpus/store_differential/`: seeds,
/// what campaigns kept, fixed crashes), replayed on stable Rust.
#[test]
fn the_fuzz_corpus_replays() {
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/store_differential");
    let mut inputs = 0;
    let mut steps = 0;
    for entry in std::fs::read_dir(&corpus).expect("corpus") {
        let path = entry.expect("entry").path();
        let sequence = differential::steps_from_bytes(&std::fs::read(&path).expect("read"));
        let dir = tempfile::tempdir().expect("tempdir");
        let counts = differential::run(&dir.path().join("store"), &sequence)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        inputs += 1;
        steps += counts.steps;
    }
    println!("store_differential: {inputs} corpus inputs replayed, {steps} steps");
    assert!(inputs > 0, "empty corpus");
}
