//! Syncs per durable commit, as the kernel sees them: a child process runs a
//! group member's commits under `strace -f`, which logs every `fsync`,
//! `fdatasync`, `sync_file_range`, `syncfs` and `msync` of every thread,
//! RocksDB's included. `access` calls on a
//! path no one else asks about mark where each phase starts.
//!
//! - strict durability: exactly two syncs per commit on the committing
//!   thread (RocksDB's WAL, then the key-slot file);
//! - an erasure window: one per commit (RocksDB's WAL), plus the key-slot
//!   file's now and then, when the spare keys run out;
//! - without durability: none.
//!
//! RocksDB's background threads sync the files of a flush or compaction;
//! they are counted and reported apart, as they do not delay a commit.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::member::Member;
use openmls::prelude::Ciphersuite;
use polymls::StoreOptions;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const CHILD: &str = "POLYMLS_SYNCS_CHILD";
const MESSAGES: usize = 60;
const UPDATES: usize = 20;
const SYNC_CALLS: [&str; 5] = ["fsync", "fdatasync", "sync_file_range", "syncfs", "msync"];

fn options(mode: &str) -> StoreOptions {
    match mode {
        "strict" => StoreOptions::default(),
        "window" => StoreOptions::default().erase_within(Duration::from_secs(5)),
        "fast" => StoreOptions::default().with_durability(false),
        other => panic!("unknown mode {other}"),
    }
}

/// A path no one else asks about: its `access` call marks a phase boundary.
const MARK: &str = "/polymls-sync-count-mark";
/// The calls `access` may become.
const MARK_CALLS: [&str; 3] = ["access", "faccessat", "faccessat2"];

/// A phase boundary strace can see.
fn mark() {
    let path = std::ffi::CString::new(MARK).expect("no NUL");
    // SAFETY: a valid C string; the answer (no such file) is not used.
    unsafe { libc::access(path.as_ptr(), libc::F_OK) };
}

/// In the child: Alice's group, warmed up, then the measured messages and
/// self-updates, each one transaction.
fn child(dir: &Path, mode: &str) -> ! {
    let mut alice = Member::new_with(dir, "alice", SUITE, options(mode));
    alice.create_group(b"sync group");
    for _ in 0..3 {
        alice.send(b"warm-up");
        alice.self_update();
    }
    mark();
    for _ in 0..MESSAGES {
        alice.send(b"a message");
    }
    mark();
    for _ in 0..UPDATES {
        alice.self_update();
    }
    mark();
    // Exit without closing the store: its closing erasures are not a
    // commit's.
    std::process::exit(0)
}

/// Syncs per phase (between marks) on the committing thread, and on
/// others.
#[derive(Debug, Default)]
struct Counted {
    main: Vec<usize>,
    background: Vec<usize>,
}

fn count(log: &str, committer: &str) -> Counted {
    let mut counted = Counted::default();
    let mut phase: Option<usize> = None;
    let mut by_call: HashMap<String, usize> = HashMap::new();
    for line in log.lines() {
        let mut words = line.split_whitespace();
        let (Some(pid), Some(call)) = (words.next(), words.next()) else {
            continue;
        };
        let call = call.split('(').next().unwrap_or("");
        if MARK_CALLS.contains(&call) && line.contains(MARK) && pid == committer {
            let next = phase.map_or(0, |p| p + 1);
            counted.main.push(0);
            counted.background.push(0);
            phase = Some(next);
            continue;
        }
        if !SYNC_CALLS.contains(&call) {
            continue;
        }
        if let Some(p) = phase {
            *by_call.entry(call.to_owned()).or_default() += 1;
            if pid == committer {
                counted.main[p] += 1;
            } else {
                counted.background[p] += 1;
            }
        }
    }
    println!("sync calls by kind: {by_call:?}");
    // The last mark closes the last phase.
    counted.main.pop();
    counted.background.pop();
    counted
}

fn run(mode: &str) -> Counted {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("strace.log");
    let exe = std::env::current_exe().expect("test binary");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&log)
        .arg("-e")
        .arg(format!(
            "trace={},{}",
            MARK_CALLS.join(","),
            SYNC_CALLS.join(",")
        ))
        .arg(&exe)
        .args([
            "--exact",
            "syncs_per_commit",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, format!("{}:{mode}", dir.path().display()))
        .status();
    let status = match status {
        Ok(status) => status,
        Err(error) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have strace: {error}"
            );
            panic!(
                "strace is needed to count syncs ({error}): install it (scripts/install-deps does)"
            );
        }
    };
    assert!(status.success(), "the child under strace failed");
    let log = std::fs::read_to_string(&log).expect("strace log");
    // The thread that marks is the one that commits.
    let committer = log
        .lines()
        .find(|l| l.contains(MARK))
        .and_then(|l| l.split_whitespace().next())
        .expect("strace logged the marks")
        .to_owned();
    count(&log, &committer)
}

#[test]
fn syncs_per_commit() {
    if let Ok(spec) = std::env::var(CHILD) {
        let (dir, mode) = spec.rsplit_once(':').expect("dir:mode");
        child(Path::new(dir), mode);
    }
    let mut report = Vec::new();
    for mode in ["strict", "window", "fast"] {
        let counted = run(mode);
        assert_eq!(counted.main.len(), 2, "{mode}: two phases marked");
        let (messages, updates) = (counted.main[0], counted.main[1]);
        report.push(format!(
            "{mode}: {messages} syncs for {MESSAGES} messages, {updates} for {UPDATES} commits on the committing thread; {} and {} on RocksDB's background threads",
            counted.background[0], counted.background[1]
        ));
        match mode {
            "strict" => {
                assert_eq!(messages, 2 * MESSAGES, "strict: two syncs per message");
                assert_eq!(updates, 2 * UPDATES, "strict: two syncs per commit");
            }
            "window" => {
                // One per commit, and the key-slot file's when the spares
                // run out: a few in a phase, never one per commit.
                assert!(
                    (MESSAGES..=MESSAGES + MESSAGES / 8).contains(&messages),
                    "window: {messages} syncs for {MESSAGES} messages"
                );
                assert!(
                    (UPDATES..=UPDATES + UPDATES / 2).contains(&updates),
                    "window: {updates} syncs for {UPDATES} commits"
                );
            }
            _ => assert_eq!((messages, updates), (0, 0), "fast: no syncs"),
        }
    }
    for line in report {
        println!("{line}");
    }
}
