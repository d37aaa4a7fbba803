//! Three peers chat over Distributed MLS, without a server: each owns a
//! send group the others joined, messages go peer to peer (here, through
//! an in-process "LAN" that delivers them in reverse order), and every few
//! messages a peer updates its keys or imports the others' fresh epochs.
//!
//! ```sh
//! cargo run --release --features dmls --example dmls_chat
//! ```
//!
//! The peers' stores live in a temporary directory: the example reopens
//! one peer from its store halfway to show it carries on.

use polymls::dmls::{DmlsError, Participant, Received};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const SUITE: openmls::prelude::Ciphersuite =
    openmls::prelude::Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const NAMES: [&str; 3] = ["alice", "bob", "carol"];

/// Hands every message to every other peer, newest first, and retries
/// what a peer cannot process yet until nothing more goes through.
fn deliver(peers: &mut [Participant], from: usize, messages: Vec<Vec<u8>>) -> Result<()> {
    let mut waiting: Vec<(usize, Vec<u8>)> = Vec::new();
    for message in messages.into_iter().rev() {
        for to in (0..peers.len()).filter(|to| *to != from) {
            waiting.push((to, message.clone()));
        }
    }
    loop {
        let mut progressed = false;
        for (to, message) in std::mem::take(&mut waiting) {
            match peers[to].receive(&message) {
                Ok(Received::Message { owner, plaintext }) => {
                    progressed = true;
                    println!(
                        "  {:>5} reads {}: {}",
                        NAMES[to],
                        String::from_utf8_lossy(&owner),
                        String::from_utf8_lossy(&plaintext)
                    );
                }
                Ok(_) => progressed = true,
                Err(DmlsError::NotYet) => waiting.push((to, message)),
                Err(error) => return Err(error.into()),
            }
        }
        if waiting.is_empty() || !progressed {
            return Ok(());
        }
    }
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut peers = NAMES
        .iter()
        .map(|name| Participant::create(dir.path().join(name), name.as_bytes(), SUITE))
        .collect::<std::result::Result<Vec<_>, _>>()?;

    // INIT: each peer adds the others to its send group, with a KeyPackage
    // each of them made for it.
    for owner in 0..peers.len() {
        let mut key_packages = Vec::new();
        for other in (0..peers.len()).filter(|other| *other != owner) {
            key_packages.push(peers[other].key_package()?);
        }
        let welcome = peers[owner].add(&key_packages)?;
        deliver(&mut peers, owner, welcome)?;
    }
    println!("three send groups set up, no server involved");

    let lines = [
        (0, "hi both, no server today"),
        (1, "hi! updating my keys first"),
        (2, "hello from carol"),
        (0, "importing your fresh epochs"),
        (1, "and I reopened my store in between"),
        (2, "all three still read each other"),
    ];
    for (turn, (speaker, text)) in lines.into_iter().enumerate() {
        let mut outgoing = Vec::new();
        match turn {
            1 => outgoing.extend(peers[speaker].update()?),
            3 => outgoing.extend(peers[speaker].commit()?),
            4 => {
                // Bob's process restarts: his store has everything.
                let bob_dir = dir.path().join(NAMES[speaker]);
                drop(peers.remove(speaker));
                peers.insert(speaker, Participant::open(bob_dir)?);
            }
            _ => {}
        }
        println!("{} says: {text}", NAMES[speaker]);
        outgoing.extend(peers[speaker].protect(text.as_bytes())?);
        deliver(&mut peers, speaker, outgoing)?;
    }
    Ok(())
}
