//! The polyproto flow over HTTP on loopback: Bob's clients register
//! KeyPackages (regular and last resort) with the home server's directory,
//! Alice claims over HTTP and adds Bob with OpenMLS on polymls (0x0001 and
//! 0x004F), Bob joins by the Welcome and they talk; 0xF110 KeyPackages are
//! uploaded, unique-checked and claimed the same way; and every status
//! code the routes promise (200, 204, 400, 401, 404, 413).

#[path = "common/groups.rs"]
mod groups;
#[path = "common/http_client.rs"]
mod http_client;
#[path = "common/keypackages.rs"]
mod keypackages;

use std::net::SocketAddr;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use groups::{Client, Participant, Received};
use http_client::request;
use keypackages::Spec;
use openmls::prelude::Ciphersuite;
use openmls_memory_storage::MemoryStorage;
use polymls::directory::http::{router, DemoAuth, Limits};
use polymls::directory::{Directory, Policy};
use polymls::Provider;
use serde_json::{json, Value};

const KEY_PACKAGE_MESSAGE: [u8; 4] = [0, 1, 0, 5];
const BASE: &str = "/.p2/mls/v1/keypackages";

/// The directory server on a loopback port.
fn serve(dir: &std::path::Path, limits: Limits) -> SocketAddr {
    let auth = Arc::new(DemoAuth::default());
    let policy = Policy {
        cipher_suites: vec![0x0001, 0x004F, 0xF110],
        ..Policy::default()
    };
    let directory = Directory::open(dir, Arc::clone(&auth))
        .expect("directory")
        .with_policy(policy);
    http_client::serve_on_loopback(router(Arc::new(directory), auth, limits))
}

fn json_body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("json")
}

fn item(id: &str, key_package: &[u8], last_resort: bool) -> Value {
    json!({"id": id, "keyPackage": BASE64.encode(key_package), "lastResort": last_resort})
}

#[test]
fn the_polyproto_flow_over_http() {
    for suite in [
        Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
        Ciphersuite::MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519,
    ] {
        let code = u16::from(suite);
        let dir = tempfile::tempdir().expect("tempdir");
        let server = serve(dir.path(), Limits::default());
        let in_memory = || Provider::with_storage(MemoryStorage::default());
        let mut alice = Client::new("alice", "polymls", in_memory(), suite);
        let mut bob = Client::new("bob", "polymls", in_memory(), suite);

        // Registration: the laptop uploads regular KeyPackages, the tablet
        // (another device, its own signer) a last resort.
        let items: Vec<Value> = (0..3)
            .map(|i| {
                let message = bob.key_package();
                assert_eq!(message[..4], KEY_PACKAGE_MESSAGE);
                item(&format!("laptop-{i}"), &message[4..], false)
            })
            .collect();
        let (status, body) = request(
            server,
            "POST",
            BASE,
            Some("bob/laptop"),
            Some(&json_body(&json!(items))),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let mut last = Spec::new(code, "bob", now());
        last.last_resort = true;
        let tablet = json!([item("tablet-last", &last.encode(), true)]);
        let (status, _) = request(
            server,
            "POST",
            BASE,
            Some("bob/tablet"),
            Some(&json_body(&tablet)),
        );
        assert_eq!(status, 200);

        // The caller's own stock (the route that extends the spec).
        let (status, body) = request(server, "GET", BASE, Some("bob/laptop"), None);
        assert_eq!(status, 200);
        let stock: Value = serde_json::from_slice(&body).expect("stock json");
        assert_eq!(stock["stock"].as_array().expect("stock").len(), 2);

        // Alice claims: one KeyPackage per device, the laptop's a regular one.
        let path = format!("{BASE}/bob?ciphersuites=0x{code:04X}");
        let (status, body) = request(server, "GET", &path, Some("alice/phone"), None);
        assert_eq!(status, 200);
        let claimed: Vec<Value> = serde_json::from_slice(&body).expect("claim json");
        assert_eq!(claimed.len(), 2);
        let laptop = claimed
            .iter()
            .find(|c| c["device"] == "laptop")
            .expect("the laptop's");
        let key_package = BASE64
            .decode(laptop["keyPackage"].as_str().expect("base64"))
            .expect("decode");

        alice.create_group();
        let add = alice.add_members(&[[&KEY_PACKAGE_MESSAGE[..], &key_package].concat()]);
        bob.join_by_welcome(&add.welcome, &add.ratchet_tree);
        let hello = alice.send(b"hello over the directory");
        match bob.receive(&hello).expect("bob decrypts") {
            Received::Application { plaintext, .. } => {
                assert_eq!(plaintext, b"hello over the directory")
            }
            other => panic!("{other:?}"),
        }
        let reply = bob.send(b"hi");
        assert!(matches!(
            alice.receive(&reply),
            Ok(Received::Application { .. })
        ));
        println!("{suite:?}: registered over HTTP, claimed, Welcome joined, messages both ways");
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[test]
fn status_codes_and_the_hybrid_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = Limits {
        max_body: 64 * 1024,
        max_key_packages: 8,
    };
    let server = serve(dir.path(), limits);
    let base = Spec::new(0xF110, "carol", now());
    let specs: Vec<Spec> = (0..3).map(|_| base.another()).collect();
    let items: Vec<Value> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| item(&format!("pq-{i}"), &s.encode(), false))
        .collect();

    // 401 without a token, or with one that does not map.
    assert_eq!(request(server, "POST", BASE, None, Some(b"[]")).0, 401);
    assert_eq!(
        request(
            server,
            "GET",
            &format!("{BASE}/carol?ciphersuites=0xF110"),
            Some("nobody"),
            None
        )
        .0,
        401
    );

    // 0xF110 stored; a mixed batch stores the good one and names the bad.
    let (status, _) = request(
        server,
        "POST",
        BASE,
        Some("carol/phone"),
        Some(&json_body(&json!(items[..2]))),
    );
    assert_eq!(status, 200);
    let mixed = json!([
        items[2].clone(),
        item("reused", &specs[0].encode(), false),
        item("garbage", &[1, 2, 3], false),
        {"id": "not base64", "keyPackage": "***"},
        item("foreign identity", &Spec::new(0xF110, "mallory", now()).encode(), false),
    ]);
    let (status, body) = request(
        server,
        "POST",
        BASE,
        Some("carol/phone"),
        Some(&json_body(&mixed)),
    );
    assert_eq!(status, 400);
    let refused: Vec<Value> = serde_json::from_slice(&body).expect("refusals");
    let ids: Vec<&str> = refused
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 4, "{refused:?}");
    for id in ["reused", "garbage", "not base64", "foreign identity"] {
        assert!(ids.contains(&id), "{id} refused: {refused:?}");
    }
    assert!(refused
        .iter()
        .all(|r| !r["reason"].as_str().expect("reason").is_empty()));

    // 413: too many, or too large.
    let many: Vec<Value> = (0..9).map(|i| item(&i.to_string(), &[0], false)).collect();
    assert_eq!(
        request(
            server,
            "POST",
            BASE,
            Some("carol/phone"),
            Some(&json_body(&json!(many)))
        )
        .0,
        413
    );
    let huge = vec![b' '; 65 * 1024];
    assert_eq!(
        request(server, "POST", BASE, Some("carol/phone"), Some(&huge)).0,
        413
    );
    // 400: a body that is not the upload's JSON.
    assert_eq!(
        request(
            server,
            "POST",
            BASE,
            Some("carol/phone"),
            Some(b"{\"id\": 1}")
        )
        .0,
        400
    );

    // Claims: by code point or by name, in the requester's preference.
    let by_name = "Hybrid%20PQS%20(X-Wing%2C%20AES-128-GCM%2C%20SHA-256%2C%20Ed25519)";
    let mut handed_out = Vec::new();
    for query in [
        "ciphersuites=0xF110".to_string(),
        format!("ciphersuites=0x0001&ciphersuites={by_name}"),
        "ciphersuites=0x0001,0xF110&versions=1.0".to_string(),
    ] {
        let (status, body) = request(
            server,
            "GET",
            &format!("{BASE}/carol?{query}"),
            Some("dave/pc"),
            None,
        );
        assert_eq!(status, 200, "{query}");
        let claimed: Vec<Value> = serde_json::from_slice(&body).expect("claim");
        assert_eq!(claimed.len(), 1);
        handed_out.push(claimed[0]["keyPackage"].as_str().expect("kp").to_string());
    }
    let mut unique = handed_out.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "each 0xF110 KeyPackage once");
    let expected: Vec<String> = specs.iter().map(|s| BASE64.encode(s.encode())).collect();
    assert!(handed_out.iter().all(|kp| expected.contains(kp)));

    // 204 once drained (no last resort uploaded), or when no version fits;
    // 404 for an unknown actor; 400 for an unknown suite or none.
    let claim = |query: &str| {
        request(
            server,
            "GET",
            &format!("{BASE}/{query}"),
            Some("dave/pc"),
            None,
        )
        .0
    };
    assert_eq!(claim("carol?ciphersuites=0xF110"), 204);
    assert_eq!(claim("carol?ciphersuites=0xF110&versions=2.0"), 204);
    assert_eq!(claim("nobody?ciphersuites=0xF110"), 404);
    assert_eq!(claim("carol?ciphersuites=0x9999"), 400);
    assert_eq!(claim("carol?ciphersuites=bogus"), 400);
    assert_eq!(claim("carol?ciphersuites=0xF110&extensions=bogus"), 400);
    assert_eq!(
        claim("carol?ciphersuites=0xF110&extensions=last_resort,0x0003"),
        204
    );
    assert_eq!(claim("carol"), 400);
    println!("status codes: 200, 204, 400, 401, 404, 413 as promised; 3 0xF110 KeyPackages claimed once each");
}
