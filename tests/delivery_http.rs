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

/// A request and the status it must get: its name, method, path, token,
/// body and status.
type Case<'a> = (
    &'a str,
    &'a str,
    String,
    Option<&'a str>,
    Option<Vec<u8>>,
    u16,
);

/// The routes' own refusals, each a clear status that changes nothing:
/// no token, a body over the limit, JSON that is not the route's, base64
/// and group ids that do not decode, a non-member's reads; and the roles
/// as the member list shows them.
#[test]
fn the_routes_refuse_what_they_cannot_serve() {
    use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let ds = home_server(dir.path());
    let server = *ds.server.read().expect("server");
    let mut h = ds_harness::Harness::new(&ds, (0..3).map(|i| mls_rs(0x0001, i)).collect());
    h.create(0);
    let key_package = h.key_package(0, 1);
    let pending = h.clients[0].add(&[key_package]);
    h.accept(0, &pending);
    h.agree();
    let group = BASE64URL.encode(&h.group);
    let commits = format!("/.p2/mls/v1/groups/{group}/commits");
    // Kept pending through the refusals, submitted at the end.
    let update = h.clients[0].update();
    let good = serde_json::json!({ "commit": BASE64.encode(&update.commit) }).to_string();
    let owner = Some("user0/phone");
    let cases: Vec<Case> = vec![
        (
            "no token",
            "POST",
            commits.clone(),
            None,
            Some(good.clone().into_bytes()),
            401,
        ),
        (
            "a token that maps to no one",
            "POST",
            commits.clone(),
            Some("nobody"),
            Some(good.clone().into_bytes()),
            401,
        ),
        (
            "a body over the limit",
            "POST",
            commits.clone(),
            owner,
            Some(vec![b' '; 9 << 20]),
            413,
        ),
        (
            "a body that is not JSON",
            "POST",
            commits.clone(),
            owner,
            Some(b"commit".to_vec()),
            400,
        ),
        (
            "an unknown field",
            "POST",
            commits.clone(),
            owner,
            Some(br#"{"commit": "", "extra": 1}"#.to_vec()),
            400,
        ),
        (
            "a commit that is not base64",
            "POST",
            commits.clone(),
            owner,
            Some(br#"{"commit": "!!"}"#.to_vec()),
            400,
        ),
        (
            "a group id that is not base64url",
            "POST",
            "/.p2/mls/v1/groups/%%%/commits".into(),
            owner,
            Some(good.clone().into_bytes()),
            400,
        ),
        (
            "a proposal body without its field",
            "POST",
            format!("/.p2/mls/v1/groups/{group}/proposals"),
            owner,
            Some(b"{}".to_vec()),
            400,
        ),
        (
            "a message body with another field",
            "POST",
            format!("/.p2/mls/v1/groups/{group}/messages"),
            owner,
            Some(br#"{"message": "", "x": ""}"#.to_vec()),
            400,
        ),
        (
            "a non-member reading the group",
            "GET",
            format!("/.p2/mls/v1/groups/{group}"),
            Some("user2/phone"),
            None,
            404,
        ),
        (
            "a non-member reading the members",
            "GET",
            format!("/.p2/mls/v1/groups/{group}/members"),
            Some("user2/phone"),
            None,
            404,
        ),
        (
            "a member that is not there",
            "GET",
            format!("/.p2/mls/v1/groups/{group}/members/7"),
            owner,
            None,
            404,
        ),
        (
            "a member id that is not a leaf index",
            "GET",
            format!("/.p2/mls/v1/groups/{group}/members/first"),
            owner,
            None,
            404,
        ),
        (
            "a group that does not exist",
            "GET",
            "/.p2/mls/v1/groups/AAAA".into(),
            owner,
            None,
            404,
        ),
        (
            "an inbox cursor that is not a number",
            "GET",
            "/.p2/mls/v1/inbox?after=soon".into(),
            owner,
            None,
            400,
        ),
    ];
    let before = ds_client::Ds::members(&ds, h.clients[0].device(), &h.group).expect("members");
    for (name, method, path, token, body, expected) in &cases {
        let (status, answer) = http_client::request(server, method, path, *token, body.as_deref());
        assert_eq!(
            status,
            *expected,
            "{name}: {}",
            String::from_utf8_lossy(&answer)
        );
        println!("refused: {name}: {status}");
    }
    assert_eq!(
        ds_client::Ds::members(&ds, h.clients[0].device(), &h.group).expect("members"),
        before,
        "nothing changed"
    );
    // The commit those requests wrapped is still good.
    assert!(h.submit(0, &update).is_ok());
    h.agree();
    // Roles: the creator is the admin, the other a member.
    let (status, members) = http_client::request(
        server,
        "GET",
        &format!("/.p2/mls/v1/groups/{group}/members"),
        owner,
        None,
    );
    assert_eq!(status, 200);
    let members: serde_json::Value = serde_json::from_slice(&members).expect("JSON");
    let roles: Vec<(&str, &str)> = members
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["identity"].as_str().expect("identity"),
                m["role"].as_str().expect("role"),
            )
        })
        .collect();
    assert_eq!(roles, vec![("user0", "admin"), ("user1", "member")]);
    println!(
        "{} kinds refused by the routes, nothing changed",
        cases.len()
    );
}
