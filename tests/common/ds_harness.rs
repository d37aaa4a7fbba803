//! A group of Delivery Service clients driven through a [`Ds`]: submissions
//! with their answers applied as a client applies them (a pending commit
//! merged when accepted, dropped when refused), inboxes read from each
//! device's cursor, and the check that every member and the service agree.
#![allow(dead_code)]

use std::collections::HashMap;

use super::ds_client::{Client, Ds, Pending, Received, Refusal};
use polymls::delivery::Device;

pub struct Harness<'a> {
    pub ds: &'a dyn Ds,
    pub clients: Vec<Box<dyn Client>>,
    pub group: Vec<u8>,
    cursors: HashMap<Device, u64>,
    /// Application messages decrypted, over all clients.
    pub decrypted: usize,
    /// Events read, over all clients.
    pub events: usize,
}

impl<'a> Harness<'a> {
    pub fn new(ds: &'a dyn Ds, mut clients: Vec<Box<dyn Client>>) -> Self {
        for client in &mut clients {
            ds.enroll(&mut **client);
        }
        Harness {
            ds,
            clients,
            group: Vec::new(),
            cursors: HashMap::new(),
            decrypted: 0,
            events: 0,
        }
    }

    /// Client `creator` creates the group and registers it.
    pub fn create(&mut self, creator: usize) {
        let (info, tree) = self.clients[creator].create();
        self.ds
            .create(self.clients[creator].device(), &info, Some(&tree))
            .expect("create the group");
        self.group = self.clients[creator].group_id();
    }

    /// A KeyPackage of client `of` for client `claimer` to add, as the
    /// service's clients get one.
    pub fn key_package(&mut self, claimer: usize, of: usize) -> Vec<u8> {
        let claimer = self.clients[claimer].device().clone();
        self.ds.key_package(&claimer, &mut *self.clients[of])
    }

    /// Submits `pending` as client `i`'s, applying the answer.
    pub fn submit(&mut self, i: usize, pending: &Pending) -> Result<u64, Refusal> {
        let device = self.clients[i].device().clone();
        let answer = self.ds.commit(&device, &self.group, pending);
        match answer {
            Ok(_) => self.clients[i].confirm(),
            Err(_) => self.clients[i].discard(),
        }
        answer
    }

    /// Submits `pending` as client `i`'s, leaving the answer to the caller.
    pub fn submit_unconfirmed(&mut self, i: usize, pending: &Pending) -> Result<u64, Refusal> {
        let device = self.clients[i].device().clone();
        self.ds.commit(&device, &self.group, pending)
    }

    /// Submits and expects acceptance.
    pub fn accept(&mut self, i: usize, pending: &Pending) -> u64 {
        self.submit(i, pending).expect("commit accepted")
    }

    /// Client `i`'s inbox, processed: returns the application data read.
    pub fn sync(&mut self, i: usize) -> Vec<Vec<u8>> {
        let device = self.clients[i].device().clone();
        let after = self.cursors.get(&device).copied().unwrap_or(0);
        let events: Vec<Received> = self.ds.inbox(&device, after).expect("inbox");
        let mut data = Vec::new();
        let mut last = after;
        for event in events {
            assert!(event.seq > last, "inbox events in order");
            last = event.seq;
            self.events += 1;
            if event.group != self.group {
                continue;
            }
            if let Some(text) = self.clients[i].receive(&event.kind, &event.message) {
                self.decrypted += 1;
                data.push(text);
            }
        }
        self.cursors.insert(device, last);
        data
    }

    pub fn sync_all(&mut self) {
        for i in 0..self.clients.len() {
            self.sync(i);
        }
    }

    /// Every client in the group is at one epoch with one epoch
    /// authenticator, and the service lists exactly each one's roster.
    pub fn agree(&mut self) {
        self.sync_all();
        let members = self.members();
        let first = members[0];
        let epoch = self.clients[first].epoch();
        let authenticator = self.clients[first].epoch_authenticator();
        let mut roster = self.clients[first].roster();
        roster.sort();
        for &i in &members {
            assert_eq!(self.clients[i].epoch(), epoch, "epochs agree");
            assert_eq!(
                self.clients[i].epoch_authenticator(),
                authenticator,
                "epoch authenticators agree"
            );
            let mut own = self.clients[i].roster();
            own.sort();
            assert_eq!(own, roster, "rosters agree");
        }
        let mut listed: Vec<(u32, Vec<u8>)> = self
            .ds
            .members(self.clients[first].device(), &self.group)
            .expect("members")
            .into_iter()
            .map(|m| (m.leaf, m.signature_key))
            .collect();
        listed.sort();
        assert_eq!(listed, roster, "the service lists the members' roster");
    }

    /// Every member sends one message; every other reads it from its
    /// inbox.
    pub fn talk(&mut self) {
        let members = self.members();
        for &from in &members {
            let text = format!("from {} at {}", from, self.clients[from].epoch());
            let message = self.clients[from].send(text.as_bytes());
            let device = self.clients[from].device().clone();
            self.ds
                .message(&device, &self.group, &message)
                .expect("message accepted");
            for &to in &members {
                if to != from {
                    assert_eq!(self.sync(to), vec![text.as_bytes().to_vec()]);
                }
            }
        }
    }

    /// The clients in the group.
    pub fn members(&self) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&i| self.clients[i].in_group() && self.clients[i].group_id() == self.group)
            .collect()
    }

    /// The index of the client at `leaf`.
    pub fn at_leaf(&self, leaf: u32) -> usize {
        (0..self.clients.len())
            .find(|&i| self.clients[i].in_group() && self.clients[i].leaf() == leaf)
            .expect("a client at the leaf")
    }
}

/// What [`group_life`] went through.
pub struct Life {
    pub group: Vec<u8>,
    pub rounds: usize,
    pub epoch: u64,
    pub decrypted: usize,
    pub events: usize,
}

/// Client `i` takes the group through an epoch.
pub fn advance(h: &mut Harness<'_>, i: usize) -> u64 {
    let pending = h.clients[i].update();
    let epoch = h.accept(i, &pending);
    h.agree();
    epoch
}

/// A group's life through `ds`, with `clients` (six): creation, two adds in
/// one commit, `rounds` epochs of commits from members in turn (self-updates;
/// every ten rounds a proposal committed by reference by another member, an
/// external join from the service's GroupInfo and the joiner's removal, an
/// add by Welcome and that member's removal), application messages from
/// every member, and at the end an add and a removal; all agree after every
/// epoch.
pub fn group_life(ds: &dyn Ds, clients: Vec<Box<dyn Client>>, rounds: usize) -> Life {
    let mut h = Harness::new(ds, clients);
    h.create(0);
    let key_packages = vec![h.key_package(0, 1), h.key_package(0, 2)];
    let pending = h.clients[0].add(&key_packages);
    h.accept(0, &pending);
    h.agree();
    h.talk();
    for round in 0..rounds {
        let members = h.members();
        let committer = members[round % members.len()];
        match round % 10 {
            // A proposal by one member, committed by reference by another.
            3 => {
                let proposer = members[(round + 1) % members.len()];
                let proposal = h.clients[proposer].propose_update();
                let device = h.clients[proposer].device().clone();
                ds.propose(&device, &h.group, &proposal)
                    .expect("proposal accepted");
                h.sync_all();
                let committer_device = h.clients[committer].device().clone();
                assert_eq!(ds.proposals(&committer_device, &h.group), Ok(1), "held");
                let pending = h.clients[committer].commit_proposals();
                h.accept(committer, &pending);
                h.agree();
                assert_eq!(
                    ds.proposals(&committer_device, &h.group),
                    Ok(0),
                    "proposals dropped with their epoch"
                );
            }
            // Someone joins externally from the service's GroupInfo...
            5 => {
                let joiner = h.clients.len() - 1;
                let device = h.clients[joiner].device().clone();
                let info = ds.group_info(&device, &h.group).expect("the GroupInfo");
                let pending = h.clients[joiner].join_externally(&info);
                h.accept(joiner, &pending);
                h.agree();
            }
            // ... and is removed five epochs later.
            0 if round > 0 => {
                let joiner = h.clients.len() - 1;
                let leaf = h.clients[joiner].leaf();
                let pending = h.clients[committer].remove(&[leaf]);
                h.accept(committer, &pending);
                h.sync(joiner);
                assert!(
                    !h.clients[joiner].in_group(),
                    "the removed member saw its removal"
                );
                h.agree();
            }
            // Another is added by Welcome, and removed two epochs later.
            7 => {
                let newcomer = h.clients.len() - 2;
                let key_package = h.key_package(committer, newcomer);
                let pending = h.clients[committer].add(&[key_package]);
                h.accept(committer, &pending);
                h.agree();
            }
            9 => {
                let newcomer = h.clients.len() - 2;
                let leaf = h.clients[newcomer].leaf();
                let remover = if committer == newcomer {
                    members[0]
                } else {
                    committer
                };
                let pending = h.clients[remover].remove(&[leaf]);
                h.accept(remover, &pending);
                h.sync(newcomer);
                assert!(
                    !h.clients[newcomer].in_group(),
                    "the removed member saw its removal"
                );
                h.agree();
            }
            _ => {
                advance(&mut h, committer);
            }
        }
        if round % 7 == 0 {
            h.talk();
        }
    }
    let key_package = h.key_package(0, 3);
    let pending = h.clients[0].add(&[key_package]);
    h.accept(0, &pending);
    h.agree();
    let leaf = h.clients[1].leaf();
    let pending = h.clients[2].remove(&[leaf]);
    h.accept(2, &pending);
    h.sync(1);
    assert!(!h.clients[1].in_group());
    h.agree();
    h.talk();
    let epoch = h.clients[0].epoch();
    assert!(epoch as usize >= rounds, "an epoch per round at least");
    Life {
        group: h.group.clone(),
        rounds,
        epoch,
        decrypted: h.decrypted,
        events: h.events,
    }
}
