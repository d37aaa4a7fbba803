//! The store's footprint with the default options (the client profile): one 10-member
//! group, every member on its own store in this process, 1,000 application
//! messages (100 from each member), and a self-update commit every 100.
//!
//! - the directory of one member's store, sampled every 50 messages and at
//!   the end: at most 2 MiB at every sample;
//! - the resident memory the ten open stores (and their groups) add to
//!   the process, per store: at most 16 MiB.
//!
//! The same session on the server profile is measured beside it and
//! reported, not judged: it shows what the client profile saves. (This test
//! is alone in its binary, so that no other test's memory is counted.)

mod common;

use std::path::Path;

use common::member::Member;
use openmls::prelude::Ciphersuite;
use polymls::{Profile, StoreOptions};

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const MEMBERS: usize = 10;
const MESSAGES: usize = 1000;
const MIB: u64 = 1024 * 1024;

/// Bytes of every file under `dir`.
fn directory_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            let entry = entry.expect("entry");
            let metadata = entry.metadata().expect("metadata");
            if metadata.is_dir() {
                directory_size(&entry.path())
            } else {
                metadata.len()
            }
        })
        .sum()
}

/// The process's resident set, in bytes.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

struct Footprint {
    /// The largest sample of the first member's store directory.
    peak_directory: u64,
    final_directory: u64,
    /// Resident memory added, per open store.
    resident_per_store: u64,
}

fn session(root: &Path, options: StoreOptions) -> Footprint {
    let before = resident();
    let mut members: Vec<Member> = (0..MEMBERS)
        .map(|i| Member::new_with(root, &format!("member{i}"), SUITE, options.clone()))
        .collect();
    members[0].create_group(b"footprint group");
    let key_packages: Vec<_> = members[1..].iter().map(Member::key_package).collect();
    let (_, welcome) = members[0].add(&key_packages);
    for member in &mut members[1..] {
        member.join(&welcome);
    }
    let store = members[0].dir.clone();
    let mut peak_directory = 0;
    for n in 0..MESSAGES {
        let sender = n % MEMBERS;
        let message = members[sender].send(format!("message {n}").as_bytes());
        for (index, receiver) in members.iter_mut().enumerate() {
            if index != sender {
                assert!(receiver.receive(&message).is_some(), "decrypt {n}");
            }
        }
        if n % 100 == 99 {
            let committer = (n / 100) % MEMBERS;
            let commit = members[committer].self_update();
            for (index, receiver) in members.iter_mut().enumerate() {
                if index != committer {
                    receiver.receive(&commit);
                }
            }
        }
        if n % 50 == 49 {
            peak_directory = peak_directory.max(directory_size(&store));
        }
    }
    let final_directory = directory_size(&store);
    let resident_per_store = resident().saturating_sub(before) / MEMBERS as u64;
    drop(members);
    Footprint {
        peak_directory: peak_directory.max(final_directory),
        final_directory,
        resident_per_store,
    }
}

fn kib(bytes: u64) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

#[test]
fn a_client_store_stays_small() {
    let root = tempfile::tempdir().expect("tempdir");
    // The default options are the client profile's.
    let client = session(&root.path().join("client"), StoreOptions::default());
    let server = session(
        &root.path().join("server"),
        StoreOptions::default().with_profile(Profile::Server),
    );
    for (name, figures) in [("client", &client), ("server", &server)] {
        println!(
            "{name} profile, {MEMBERS} members, {MESSAGES} messages: one store's directory peaks at {} and ends at {}; {} resident per open store",
            kib(figures.peak_directory),
            kib(figures.final_directory),
            kib(figures.resident_per_store)
        );
    }
    assert!(
        client.peak_directory <= 2 * MIB,
        "client store directory peaked at {}",
        kib(client.peak_directory)
    );
    assert!(
        client.resident_per_store <= 16 * MIB,
        "{} resident per client store",
        kib(client.resident_per_store)
    );
}
