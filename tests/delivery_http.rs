//! The Delivery Service end to end over HTTP on loopback, beside the
//! KeyPackage directory, with `--demo-auth`: real clients of both
//! libraries on polymls (mls-rs in 0x0001 and 0xF110, OpenMLS in 0x0001,
//! and a group mixing the two), each device uploading its KeyPackages to
//! the directory, the adder claiming them, every message through the
//! routes and every client reading only its inbox; 50 rounds of commits
//! from different members; after every epoch all members agree and the
//! service's member list is each client's roster.

#![cfg(all(feature = "delivery", feature = "server"))]

#[path = "common/ds_client.rs"]
mod ds_client;
#[path = "common/ds_harness.rs"]
mod ds_harness;
#[path = "common/ds_http.rs"]
mod ds_http;
#[path = "common/ds_openmls.rs"]
mod ds_openmls;
#[path = "common/http_client.rs"]
mod http_client;

use std::sync::Arc;

use ds_client::{mls_rs_client, Client, Devices};
use ds_http::HttpDs;
use polymls::delivery::{self, DeliveryService};
use polymls::directory::http::DemoAuth;
use polymls::directory::{self, Directory};

/// The directory and the Delivery Service on one loopback port, each on an
/// embedded RocksDB in `dir`.
fn home_server(dir: &std::path::Path) -> HttpDs {
    let auth = Arc::new(DemoAuth::default());
    let directory = Directory::open(dir.join("directory"), Arc::clone(&auth)).expect("directory");
    let service = DeliveryService::open(dir.join("delivery"), Arc::clone(&auth)).expect("service");
    let app = directory::http::router(Arc::new(directory), auth.clone(), Default::default()).merge(
        delivery::http::router(Arc::new(service), auth, Default::default()),
    );
    HttpDs::new(http_client::serve_on_loopback(app))
}

/// The clients' own registry of devices is not the server's here (the
/// demo learns keys from uploads); it is kept for the library's API.
fn mls_rs(suite: u16, i: usize) -> Box<dyn Client> {
    Box::new(mls_rs_client(
        &Devices::default(),
        &format!("user{i}"),
        "phone",
        suite,
        false,
    ))
}

fn openmls(i: usize) -> Box<dyn Client> {
    Box::new(ds_openmls::openmls_client(
        &Devices::default(),
        &format!("user{i}"),
        "laptop",
    ))
}

fn life_over_http(name: &str, clients: Vec<Box<dyn Client>>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ds = home_server(dir.path());
    let life = ds_harness::group_life(&ds, clients, 50);
    println!(
        "{name} over HTTP: {} rounds, epoch {}, {} messages decrypted, {} inbox events",
        life.rounds, life.epoch, life.decrypted, life.events
    );
}

#[test]
fn mls_rs_clients_in_0x0001() {
    life_over_http("mls-rs 0x0001", (0..6).map(|i| mls_rs(0x0001, i)).collect());
}

#[test]
fn mls_rs_clients_in_0xf110() {
    life_over_http("mls-rs 0xF110", (0..6).map(|i| mls_rs(0xF110, i)).collect());
}

#[test]
fn openmls_clients_in_0x0001() {
    life_over_http("OpenMLS 0x0001", (0..6).map(openmls).collect());
}

#[test]
fn openmls_and_mls_rs_clients_in_one_group() {
    let clients = (0..6)
        .map(|i| {
            if i % 2 == 0 {
                openmls(i)
            } else {
                mls_rs(0x0001, i)
            }
        })
        .collect();
    life_over_http("OpenMLS and mls-rs 0x0001", clients);
}
