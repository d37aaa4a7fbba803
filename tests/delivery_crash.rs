//! The Delivery Service through SIGKILLs: a `home_server` process (the
//! example, on an embedded RocksDB) killed at 50 random points while one
//! member submits commits and messages as fast as it can; after each
//! restart every member reads its inbox and all must agree (epoch, epoch
//! authenticator, roster, and the service's member list). A commit answered
//! 200 that the service lost would leave its committer alone in its epoch;
//! one answered 409 or 400 that the service applied would leave it behind
//! the others: either fails the agreement. A submission whose answer was
//! cut off is resolved as a client would: accepted if it is the group's
//! latest commit after the restart.

#![cfg(all(feature = "delivery", feature = "server"))]

#[path = "common/ds_client.rs"]
mod ds_client;
#[path = "common/ds_harness.rs"]
mod ds_harness;
#[path = "common/ds_http.rs"]
mod ds_http;
#[path = "common/http_client.rs"]
mod http_client;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ds_client::{mls_rs_client, Client, Devices, Refusal};
use ds_harness::Harness;
use ds_http::HttpDs;
use sha2::{Digest, Sha256};

const KILLS: usize = 50;
const MEMBERS: usize = 5;

fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .join("examples/home_server");
    assert!(
        path.exists(),
        "{} is missing: run the whole suite (`cargo test --release --all-features` builds the examples)",
        path.display()
    );
    path
}

fn start(data: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(server_binary())
        .args(["--listen", "127.0.0.1:0", "--demo-auth", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start home_server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("server's first line");
    let address = line
        .trim()
        .strip_prefix("home server listening on http://")
        .and_then(|rest| rest.strip_suffix("/.p2/mls/v1/"))
        .and_then(|address| address.parse().ok())
        .unwrap_or_else(|| panic!("server said {line:?}"));
    (child, address)
}

/// xorshift64*, seeded from the clock: the kill points.
struct Random(u64);

impl Random {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below
    }
}

#[derive(Default, Debug)]
struct Tally {
    accepted: usize,
    cut_off_accepted: usize,
    cut_off_lost: usize,
    messages: usize,
}

#[test]
fn commits_survive_sigkills_of_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut child, address) = start(dir.path());
    let ds = HttpDs::new(address);
    let clients: Vec<Box<dyn Client>> = (0..MEMBERS)
        .map(|i| {
            Box::new(mls_rs_client(
                &Devices::default(),
                &format!("user{i}"),
                "phone",
                1,
                false,
            )) as Box<dyn Client>
        })
        .collect();
    let mut h = Harness::new(&ds, clients);
    h.create(0);
    let key_packages: Vec<Vec<u8>> = (1..MEMBERS).map(|i| h.key_package(0, i)).collect();
    let pending = h.clients[0].add(&key_packages);
    h.accept(0, &pending);
    h.agree();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut random = Random(seed);
    let mut tally = Tally::default();
    for kill in 0..KILLS {
        let committer = random.next(MEMBERS as u64) as usize;
        let delay = Duration::from_millis(random.next(120));
        let pid = child.id() as libc::pid_t;
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            // SAFETY: a plain kill(2) of the child this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        // Submit until the server is gone.
        let unresolved = loop {
            assert!(Instant::now() < deadline, "the server was not killed");
            let text = format!("message {} after kill {kill}", tally.messages);
            let message = h.clients[committer].send(text.as_bytes());
            let device = h.clients[committer].device().clone();
            match ds_client::Ds::message(&ds, &device, &h.group, &message) {
                Ok(()) => tally.messages += 1,
                Err(Refusal::Other(_)) => break None,
                Err(other) => panic!("message refused: {other:?}"),
            }
            let pending = h.clients[committer].update();
            match h.submit_unconfirmed(committer, &pending) {
                Ok(_) => {
                    h.clients[committer].confirm();
                    tally.accepted += 1;
                }
                Err(Refusal::Other(_)) => break Some(pending),
                Err(other) => panic!("a lone committer's commit refused: {other:?}"),
            }
        };
        killer.join().expect("killer");
        let _ = child.wait();
        let (next, address) = start(dir.path());
        child = next;
        ds.moved(address);
        if let Some(pending) = unresolved {
            // Accepted before the kill if it is the group's latest commit.
            let device = h.clients[committer].device().clone();
            let id: [u8; 32] = Sha256::digest(&pending.commit).into();
            if ds.latest_commit_id(&device, &h.group) == Some(id) {
                h.clients[committer].confirm();
                tally.cut_off_accepted += 1;
            } else {
                h.clients[committer].discard();
                tally.cut_off_lost += 1;
            }
        }
        h.agree();
    }
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "{KILLS} SIGKILLs: {} commits accepted, answers cut off: {} found accepted after the \
         restart, {} not; {} messages accepted, {} read; 0 forks (epoch {})",
        tally.accepted,
        tally.cut_off_accepted,
        tally.cut_off_lost,
        tally.messages,
        h.decrypted,
        h.clients[0].epoch()
    );
    assert!(tally.accepted > KILLS, "commits landed between the kills");
}
