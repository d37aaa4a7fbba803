//! The forward-secrecy promise, tested end to end: a scripted session of
//! several members over many epochs and messages, each member on its own
//! RocksDB store; every secret value OpenMLS supersedes is recorded, and
//! afterwards no file of any store holds any 16-byte window of one, nor the
//! group id in clear. Where the test runs as root with loop devices, it
//! repeats on an ext4 image and scans the raw image after unmounting.

#[path = "common/groups.rs"]
mod groups;
#[path = "common/recorder.rs"]
mod recorder;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use groups::{Client, Participant};
use openmls::prelude::Ciphersuite;
use openmls_traits::OpenMlsProvider as _;
use polymls::store::entities::Entity;
use polymls::{Provider, Store};
use recorder::Recorder;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const WINDOW: usize = 16;

type Member = Client<Provider<Recorder<Store>>>;

fn member(dir: &Path, name: &str) -> Member {
    let store = Store::open(dir.join(name)).expect("open store");
    Client::new(
        name,
        "store",
        Provider::with_storage(Recorder::new(store)),
        SUITE,
    )
}

/// What the session did and what it superseded.
struct Session {
    group_id: Vec<u8>,
    epochs: u64,
    messages: usize,
    superseded: Vec<Vec<u8>>,
}

/// Alice, Bob and Charlie, joined by extra members who come and go; every
/// epoch a commit (update, add or remove) and three messages per member.
fn run_session(dir: &Path, epochs: u64) -> Session {
    let mut members: Vec<Member> = ["alice", "bob", "charlie"]
        .iter()
        .map(|n| member(dir, n))
        .collect();
    members[0].create_group();
    let key_packages = [members[1].key_package(), members[2].key_package()];
    let add = members[0].add_members(&key_packages);
    for joiner in &mut members[1..] {
        joiner.join_by_welcome(&add.welcome, &add.ratchet_tree);
    }
    let mut gone: Vec<Member> = Vec::new();
    let mut messages = 0;
    for epoch in 2..=epochs {
        // One of the three founders, who never leave.
        let committer = (epoch % 3) as usize;
        let (commit, welcome) = match epoch % 4 {
            0 => {
                let newcomer = member(dir, &format!("extra{epoch}"));
                let add = members[committer].add_members(&[newcomer.key_package()]);
                members.push(newcomer);
                (add.commit.clone(), Some(add))
            }
            2 if members.len() > 3 => {
                let leaving = members.pop().expect("an extra member");
                let commit = members[committer].remove_member(leaving.identity());
                gone.push(leaving);
                (commit, None)
            }
            _ => (members[committer].self_update(), None),
        };
        let last = members.len() - 1;
        for (index, receiver) in members.iter_mut().enumerate() {
            if index == committer {
                continue;
            }
            match &welcome {
                Some(add) if index == last => {
                    receiver.join_by_welcome(&add.welcome, &add.ratchet_tree)
                }
                _ => {
                    receiver.receive(&commit).expect("process commit");
                }
            }
        }
        let reference = members[0].view();
        assert!(members
            .iter()
            .all(|m| m.view().epoch_authenticator == reference.epoch_authenticator));
        for sender in 0..members.len() {
            for n in 0..3 {
                let message = members[sender].send(format!("epoch {epoch} message {n}").as_bytes());
                for receiver in (0..members.len()).filter(|&r| r != sender) {
                    members[receiver].receive(&message).expect("decrypt");
                    messages += 1;
                }
            }
        }
    }
    let group_id = members[0].group_id();
    let epochs = members[0].view().epoch;
    for member in members.iter().chain(&gone) {
        check_key_slots(member);
    }
    let superseded = members
        .iter()
        .chain(&gone)
        .flat_map(|m| m.provider().storage().superseded())
        .collect();
    Session {
        group_id,
        epochs,
        messages,
        superseded,
    }
}

/// The key-slot file holds exactly one key per live secret record: no key
/// of a superseded value is left in it.
fn check_key_slots(member: &Member) {
    let store = member.provider().storage().inner();
    let live: usize = store
        .inventory()
        .expect("inventory")
        .iter()
        .filter(|(entity, _)| Entity::is_secret(**entity))
        .map(|(_, usage)| usage.records)
        .sum();
    let dir = store.directory();
    let keys = std::fs::read(dir.join("keys")).expect("key file");
    // Slot halves are 64-byte blocks after the 4096-byte header; an erased
    // half is all zeros.
    let halves = keys[4096..]
        .chunks(64)
        .filter(|half| half.iter().any(|&b| b != 0))
        .count();
    assert_eq!(
        halves,
        live,
        "key halves in {} vs live secret records",
        dir.display()
    );
}

/// Every 16-byte window of the superseded values, leaving out windows of
/// fewer than 8 distinct bytes (padding, runs, format framing), which say
/// nothing about a secret and could match by chance.
fn windows(values: &[Vec<u8>]) -> HashSet<[u8; WINDOW]> {
    let mut set = HashSet::new();
    for value in values {
        for window in value.windows(WINDOW) {
            if window.iter().collect::<HashSet<_>>().len() >= 8 {
                set.insert(window.try_into().expect("16 bytes"));
            }
        }
    }
    set
}

/// Every regular file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Hits of `windows` and of `needle` in `bytes`.
fn scan(bytes: &[u8], windows: &HashSet<[u8; WINDOW]>, needle: &[u8]) -> (usize, usize) {
    let window_hits = bytes
        .windows(WINDOW)
        .filter(|w| windows.contains(*w))
        .count();
    let needle_hits = bytes.windows(needle.len()).filter(|w| *w == needle).count();
    (window_hits, needle_hits)
}

/// Scans files in 1 MiB chunks (a chunk carries the previous one's last
/// bytes, so no window is missed at a seam) and skips all-zero blocks, which
/// hold no window of a secret: a raw image is mostly zeros.
fn scan_files(
    paths: &[PathBuf],
    windows: &HashSet<[u8; WINDOW]>,
    needle: &[u8],
) -> (usize, usize, usize) {
    const CHUNK: usize = 1 << 20;
    const BLOCK: usize = 4096;
    let overlap = WINDOW.max(needle.len()) - 1;
    let mut bytes_scanned = 0;
    let (mut window_hits, mut needle_hits) = (0, 0);
    for path in paths {
        let mut file = std::fs::File::open(path).expect("open file");
        let (mut w, mut n) = (0, 0);
        let mut buffer: Vec<u8> = Vec::new();
        loop {
            let carried = buffer.len();
            buffer.resize(carried + CHUNK, 0);
            let read = std::io::Read::read(&mut file, &mut buffer[carried..]).expect("read file");
            buffer.truncate(carried + read);
            bytes_scanned += read;
            if read == 0 {
                break;
            }
            // Windows starting in [0, end) are scanned now; the rest carry over.
            let end = buffer.len().saturating_sub(overlap);
            for start in (0..end).step_by(BLOCK) {
                let stop = (start + BLOCK).min(end);
                let region = &buffer[start..(stop + overlap).min(buffer.len())];
                if region.iter().all(|&b| b == 0) {
                    continue;
                }
                let (block_w, block_n) = scan(region, windows, needle);
                // Only count windows that start before `stop`: the overlap
                // belongs to the next block.
                let tail = &buffer[stop..(stop + overlap).min(buffer.len())];
                let (tail_w, tail_n) = scan(tail, windows, needle);
                w += block_w - tail_w;
                n += block_n - tail_n;
            }
            buffer.drain(..end);
        }
        // What is left is shorter than a window plus its overlap.
        let (tail_w, tail_n) = scan(&buffer, windows, needle);
        w += tail_w;
        n += tail_n;
        if w + n > 0 {
            println!("  hits in {}: {w} windows, {n} group ids", path.display());
        }
        window_hits += w;
        needle_hits += n;
    }
    (bytes_scanned, window_hits, needle_hits)
}

#[test]
fn superseded_secrets_are_in_no_file() {
    let root = tempfile::tempdir().expect("tempdir");
    let session = run_session(root.path(), 24);
    assert!(
        session.epochs >= 20 && session.messages >= 200,
        "{} epochs, {} messages",
        session.epochs,
        session.messages
    );
    let windows = windows(&session.superseded);
    assert!(!windows.is_empty());

    // Positive control: the scanner finds a superseded value and the group
    // id when they are in a file.
    let control = [&session.superseded[0][..], &session.group_id].concat();
    let (window_hits, id_hits) = scan(&control, &windows, &session.group_id);
    assert!(
        window_hits > 0 && id_hits == 1,
        "the scanner must find planted bytes"
    );
    // The same through the chunked file scanner, planted across a chunk seam.
    let planted = root.path().join("control.bin");
    let mut bytes = vec![0u8; (1 << 20) - 7];
    bytes.extend_from_slice(&control);
    bytes.resize(3 << 20, 0);
    std::fs::write(&planted, &bytes).expect("write control");
    let (_, chunked_window_hits, chunked_id_hits) =
        scan_files(std::slice::from_ref(&planted), &windows, &session.group_id);
    assert_eq!(
        (chunked_window_hits, chunked_id_hits),
        (window_hits, id_hits),
        "the chunked scan finds what the plain scan finds"
    );
    std::fs::remove_file(&planted).expect("remove control");

    let paths = files(root.path());
    let (bytes, window_hits, id_hits) = scan_files(&paths, &windows, &session.group_id);
    println!(
        "forward secrecy: {} epochs, {} messages, {} superseded values ({} distinct windows); scanned {} files, {} bytes: {} window hits, {} group-id hits",
        session.epochs,
        session.messages,
        session.superseded.len(),
        windows.len(),
        paths.len(),
        bytes,
        window_hits,
        id_hits
    );
    assert_eq!((window_hits, id_hits), (0, 0));
}

/// The same session on an ext4 file system in a loop-mounted image; after
/// unmounting, the raw image (free blocks, journal and all) is scanned.
#[test]
fn superseded_secrets_are_not_on_the_raw_ext4_image() {
    let work = tempfile::tempdir().expect("tempdir");
    let image = work.path().join("ext4.img");
    let mount_point = work.path().join("mnt");
    std::fs::create_dir(&mount_point).expect("mount point");
    let run = |program: &str, args: &[&std::ffi::OsStr]| Command::new(program).args(args).output();
    let prepared = std::fs::File::create(&image)
        .and_then(|f| f.set_len(2 << 30))
        .is_ok()
        && run(
            "mkfs.ext4",
            &["-q".as_ref(), "-F".as_ref(), image.as_os_str()],
        )
        .is_ok_and(|o| o.status.success())
        && run(
            "mount",
            &[
                "-o".as_ref(),
                "loop".as_ref(),
                image.as_os_str(),
                mount_point.as_os_str(),
            ],
        )
        .is_ok_and(|o| o.status.success());
    if !prepared {
        println!("SKIPPED the ext4 image part: mounting a loop device needs root, loop devices and mkfs.ext4, which this machine does not offer");
        return;
    }
    let session = std::panic::catch_unwind(|| run_session(&mount_point, 20));
    let unmounted = run("umount", &[mount_point.as_os_str()]).is_ok_and(|o| o.status.success());
    let session = session.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert!(unmounted, "unmount the image");
    let windows = windows(&session.superseded);
    let (bytes, window_hits, id_hits) = scan_files(&[image], &windows, &session.group_id);
    println!(
        "raw ext4 image: {} epochs, {} messages, {} superseded values; scanned {} bytes: {} window hits, {} group-id hits",
        session.epochs,
        session.messages,
        session.superseded.len(),
        bytes,
        window_hits,
        id_hits
    );
    assert_eq!((window_hits, id_hits), (0, 0));
}
