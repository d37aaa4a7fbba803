//! Crash safety: a scripted group session runs in a child process that is
//! killed with SIGKILL at random points, again and again on the same store.
//! After each kill the store reopens, nothing committed is lost, and the
//! group still processes the next commit and message. In every durability
//! mode: strict, with an erasure window, and without durability.

#[path = "common/child.rs"]
mod child;
mod common;
#[path = "common/differential.rs"]
mod differential;

use std::time::{Duration, Instant};

use common::member::Member;
use openmls::prelude::Ciphersuite;
use openmls_traits::OpenMlsProvider as _;
use polymls::StoreOptions;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const GROUP: &[u8] = b"crash group";
const CHILD: &str = "POLYMLS_CRASH_CHILD_DIR";

fn options(mode: &str) -> StoreOptions {
    match mode {
        "strict" => StoreOptions::default(),
        "window" => StoreOptions::default().erase_within(Duration::from_millis(100)),
        "fast" => StoreOptions::default().with_durability(false),
        other => panic!("unknown mode {other}"),
    }
}

/// In the child: Alice sends messages and commits self-updates, each in a
/// transaction, reporting every epoch that has landed, until killed.
fn child(dir: &std::path::Path, mode: &str) -> ! {
    let mut alice = Member::load_with(dir, "alice", SUITE, GROUP, options(mode));
    println!("ready epoch={}", alice.epoch());
    for round in 0u64.. {
        if round % 3 == 2 {
            alice.self_update();
        } else {
            alice.send(b"a message that may never land");
        }
        println!("landed epoch={}", alice.epoch());
    }
    unreachable!()
}

/// The epoch in a child's progress line.
fn epoch_of(line: &str) -> Option<u64> {
    line.split("epoch=").nth(1)?.trim().parse().ok()
}

#[test]
fn survives_sigkill_at_random_points() {
    survives_sigkills("survives_sigkill_at_random_points", "strict", 60);
}

#[test]
fn survives_sigkill_with_an_erasure_window() {
    survives_sigkills("survives_sigkill_with_an_erasure_window", "window", 50);
}

#[test]
fn survives_sigkill_without_durability() {
    survives_sigkills("survives_sigkill_without_durability", "fast", 50);
}

/// `kills` rounds of the child (this test, `test`, run again) killed at a
/// random point, on a store in `mode`.
fn survives_sigkills(test: &str, mode: &str, kills_wanted: usize) {
    if let Ok(dir) = std::env::var(CHILD) {
        child(std::path::Path::new(&dir), mode);
    }
    let root = tempfile::tempdir().expect("tempdir");
    let mut alice = Member::new_with(root.path(), "alice", SUITE, options(mode));
    alice.create_group(GROUP);
    drop(alice);

    let rand = polymls::Rand::default();
    let (mut kills, mut landed_total) = (0, 0);
    for round in 0..kills_wanted {
        let (mut process, ready, lines) = child::spawn(test, CHILD, root.path(), "ready epoch=");
        let start_epoch = epoch_of(&ready).expect("epoch");
        child::kill_at_random(&mut process, &rand, Duration::from_micros(200));
        kills += 1;

        // Everything the child reported before dying had landed.
        let reported: Vec<u64> = lines
            .map_while(Result::ok)
            .filter_map(|l| epoch_of(&l))
            .collect();
        landed_total += reported.len();
        let last_reported = reported.last().copied().unwrap_or(start_epoch);

        let started = Instant::now();
        let mut alice = Member::load_with(root.path(), "alice", SUITE, GROUP, options(mode));
        let epoch = alice.epoch();
        // Opening erased every key the kill left behind: a deferred
        // erasure, a spare, the key of a batch that never landed.
        differential::check_key_slots(alice.provider.storage())
            .unwrap_or_else(|error| panic!("round {round}: {error}"));
        assert!(
            epoch == last_reported || epoch == last_reported + 1,
            "round {round}: the store holds epoch {epoch}, the child last reported {last_reported}"
        );

        // The group still works: a new member joins, a message and a commit
        // go both ways, and the member leaves again.
        let name = format!("bob{round}");
        let mut bob = Member::new_with(root.path(), &name, SUITE, options(mode));
        let (_, welcome) = alice.add(&[bob.key_package()]);
        bob.join(&welcome);
        let message = alice.send(b"after the crash");
        assert_eq!(
            bob.receive(&message).as_deref(),
            Some(&b"after the crash"[..])
        );
        let commit = bob.self_update();
        alice.receive(&commit);
        let reply = bob.send(b"still here");
        assert_eq!(alice.receive(&reply).as_deref(), Some(&b"still here"[..]));
        assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
        alice.remove(&name);
        if round % 10 == 0 {
            println!(
                "round {round}: recovered at epoch {epoch} in {:?}",
                started.elapsed()
            );
        }
    }
    println!(
        "{mode}: {kills} SIGKILLs survived; the children landed {landed_total} operations between them"
    );
    assert_eq!(kills, kills_wanted);
    assert!(landed_total > 0, "the children got work done between kills");
}
