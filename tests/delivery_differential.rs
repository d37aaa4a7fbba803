//! The Delivery Service's verdict against a member's: commits and
//! proposals made by members of a group (self-updates, adds with their
//! Welcome, removals, proposals, commits of the epoch before), half of them
//! tampered with (a byte flipped anywhere but in the confirmation and
//! membership tags, which only members can check, or the message cut
//! short), each judged by the service (`validate_commit` /
//! `validate_proposal`, which change nothing) and by a member processing it
//! on a copy of its state: OpenMLS on polymls for 0x0001, mls-rs on polymls
//! for 0xF110. The verdicts must be equal for every one; now and then a
//! valid commit is accepted so that the epochs move on.

#![cfg(feature = "delivery")]

#[path = "common/ds_client.rs"]
mod ds_client;
#[path = "common/ds_harness.rs"]
mod ds_harness;
#[path = "common/ds_openmls.rs"]
mod ds_openmls;

use ds_client::{mls_rs_client, Client, Devices, Pending};
use ds_harness::Harness;
use polymls::delivery::{DeliveryService, Memory};

const CASES: usize = 300;

/// xorshift64*: which candidate, which byte.
struct Random(u64);

impl Random {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below as u64) as usize
    }
}

/// The bytes a non-member cannot check at the end of a member's
/// PublicMessage: the confirmation tag of a commit (with its length) and the
/// membership tag (with its presence byte and length), 32 bytes each here.
fn unverifiable_tail(commit: bool) -> usize {
    if commit {
        33 + 34
    } else {
        34
    }
}

fn differential(name: &str, clients: Vec<Box<dyn Client>>, devices: &Devices) {
    let ds = DeliveryService::with_backend(Memory::default(), devices.clone());
    let mut h = Harness::new(&ds, clients);
    h.create(0);
    let key_packages = vec![h.key_package(0, 1), h.key_package(0, 2)];
    let pending = h.clients[0].add(&key_packages);
    h.accept(0, &pending);
    h.agree();
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let (mut agreed, mut accepted, mut refused, mut tampered) = (0, 0, 0, 0);
    // A valid commit kept for a later case, with its author.
    let mut stale: Option<(usize, Pending)> = None;
    for case in 0..CASES {
        // The candidate: from member 0 or 1, judged by member 2.
        let mut author = random.next(2);
        let kind = random.next(5);
        let (message, commit, pending) = match kind {
            0 => {
                let p = h.clients[author].update();
                (p.commit.clone(), true, Some(p))
            }
            1 => {
                let key_package = h.clients[3].key_package();
                let p = h.clients[author].add(&[key_package]);
                (p.commit.clone(), true, Some(p))
            }
            2 => {
                let judge = h.clients[2].leaf();
                let p = h.clients[author].remove(&[judge]);
                (p.commit.clone(), true, Some(p))
            }
            3 => (h.clients[author].propose_update(), false, None),
            _ => match stale.take() {
                Some((by, p)) => {
                    author = by;
                    (p.commit.clone(), true, Some(p))
                }
                None => {
                    let p = h.clients[author].update();
                    (p.commit.clone(), true, Some(p))
                }
            },
        };
        let mut candidate = message.clone();
        if random.next(2) == 0 {
            tampered += 1;
            if random.next(4) == 0 {
                candidate.truncate(random.next(candidate.len()));
            } else {
                let end = candidate.len() - unverifiable_tail(commit);
                let at = random.next(end);
                candidate[at] ^= 1 << random.next(8);
            }
        }
        let device = h.clients[author].device().clone();
        let welcome = pending.as_ref().and_then(|p| p.welcome.clone());
        let by_service = if commit {
            ds.validate_commit(&device, &h.group, &candidate, welcome.as_deref(), None)
                .is_ok()
        } else {
            ds.validate_proposal(&device, &h.group, &candidate).is_ok()
        };
        let by_member = h.clients[2].verdict(&candidate);
        assert_eq!(
            by_service,
            by_member,
            "{name}, case {case} (kind {kind}, {} bytes): the service says {by_service}, a \
             member {by_member}",
            candidate.len()
        );
        agreed += 1;
        if by_service {
            accepted += 1;
        } else {
            refused += 1;
        }
        h.clients.iter_mut().for_each(|c| c.discard());
        // Keep a valid commit of this epoch for later (stale then), and
        // move the epoch on now and then.
        if kind == 0 && candidate == message && stale.is_none() {
            stale = pending.map(|p| (author, p));
        } else if case % 10 == 9 {
            let committer = random.next(2);
            let p = h.clients[committer].update();
            h.accept(committer, &p);
            h.agree();
        }
        if !commit {
            // A proposal left in the proposer's store would be committed
            // with its next commit.
            h.clients[author].discard_proposals();
        }
    }
    println!(
        "{name}: {agreed} verdicts equal ({accepted} accepted, {refused} refused; {tampered} \
         tampered), epoch {}",
        h.clients[0].epoch()
    );
    assert_eq!(agreed, CASES);
}

#[test]
fn verdicts_agree_with_openmls_members_in_0x0001() {
    let devices = Devices::default();
    let clients = (0..4)
        .map(|i| {
            Box::new(ds_openmls::openmls_client(
                &devices,
                &format!("user{i}"),
                "laptop",
            )) as Box<dyn Client>
        })
        .collect();
    differential("OpenMLS 0x0001", clients, &devices);
}

#[test]
fn verdicts_agree_with_mls_rs_members_in_0xf110() {
    let devices = Devices::default();
    let clients = (0..4)
        .map(|i| {
            Box::new(mls_rs_client(
                &devices,
                &format!("user{i}"),
                "phone",
                0xF110,
                false,
            )) as Box<dyn Client>
        })
        .collect();
    differential("mls-rs 0xF110", clients, &devices);
}
