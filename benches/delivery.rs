//! The Delivery Service: a commit's validation at 10, 100 and 1,000
//! members (an mls-rs client's self-update with its path), from its bytes,
//! by the service (`validate_commit`: the checks of `submit_commit`, not the
//! encoding and the write) and by the two libraries' observers doing the
//! same work, OpenMLS's `PublicGroup` on `openmls_rust_crypto` (which
//! stages the commit without cloning the group) and mls-rs's
//! `ExternalGroup` on `mls-rs-crypto-rustcrypto` (on a clone of the group,
//! as processing changes it, and as the service does); durable commits accepted per second over 64
//! groups of 100 members on the embedded backend, 64 threads submitting
//! commit chains made beforehand; and submission-to-inbox latency (the
//! answer comes once the events are durable in every inbox) at 64 clients
//! over HTTP on loopback.
//!
//! `POLYMLS_PAIRED=1` adds the validation ratios in interleaved rounds (see
//! `benches/common.rs`); the throughput and latency figures are printed and
//! appended to `delivery.jsonl` in criterion's directory.

mod common;
#[path = "../tests/common/ds_client.rs"]
mod ds_client;
#[path = "../tests/common/http_client.rs"]
mod http_client;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ds_client::{mls_rs_client, Client, Devices};
use mls_rs::external_client::ExternalClient;
use mls_rs::identity::basic::BasicIdentityProvider;
use mls_rs::MlsMessage;
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{MlsMessageBodyIn, MlsMessageIn, ProtocolMessage, RatchetTreeIn};
use polymls::delivery::{DeliveryService, Embedded, Memory};

const SUITE: u16 = 0x0001;

/// A group of `size` members made by client 0 (the others only give their
/// KeyPackages), registered with a service on `backend`.
struct Made<B: polymls::delivery::Backend> {
    ds: DeliveryService<B>,
    creator: Box<dyn Client>,
    group: Vec<u8>,
    /// The GroupInfo of the current epoch, with the ratchet tree.
    info: Vec<u8>,
}

fn made<B: polymls::delivery::Backend>(backend: B, size: usize, name: &str) -> Made<B> {
    let devices = Devices::default();
    let ds = DeliveryService::with_backend(backend, devices.clone());
    let mut creator: Box<dyn Client> = Box::new(mls_rs_client(
        &devices,
        &format!("{name}-0"),
        "d",
        SUITE,
        false,
    ));
    let (info, tree) = creator.create();
    ds.create_group(creator.device(), &info, Some(&tree))
        .expect("create");
    let group = creator.group_id();
    let key_packages: Vec<Vec<u8>> = (1..size)
        .map(|i| mls_rs_client(&devices, &format!("{name}-{i}"), "d", SUITE, false).key_package())
        .collect();
    let add = creator.add(&key_packages);
    ds.submit_commit(
        creator.device(),
        &group,
        &add.commit,
        add.welcome.as_deref(),
        add.group_info.as_deref(),
    )
    .expect("add");
    creator.confirm();
    Made {
        ds,
        creator,
        group,
        info: add.group_info.expect("GroupInfo"),
    }
}

fn validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("delivery/validation");
    for size in [10usize, 100, 1000] {
        let mut made = made(Memory::default(), size, &format!("v{size}"));
        let commit = made.creator.update();
        made.creator.discard();
        let device = made.creator.device().clone();
        let ds = &made.ds;
        let validate_polymls = || {
            black_box(
                ds.validate_commit(&device, &made.group, &commit.commit, None, None)
                    .expect("valid"),
            );
        };
        // mls-rs's observer on its own RustCrypto provider.
        let observer = ExternalClient::builder()
            .crypto_provider(mls_rs_crypto_rustcrypto::RustCryptoProvider::default())
            .identity_provider(BasicIdentityProvider)
            .build();
        let observed = observer
            .observe_group(
                MlsMessage::from_bytes(&made.info).expect("GroupInfo"),
                None,
                None,
            )
            .expect("observe");
        // Each observer is handed the commit's bytes, as a server is.
        let validate_mls_rs = || {
            let message = MlsMessage::from_bytes(&commit.commit).expect("commit");
            let mut group = observed.clone();
            black_box(group.process_incoming_message(message).expect("valid"));
        };
        // OpenMLS's observer on openmls_rust_crypto.
        let provider = openmls_rust_crypto::OpenMlsRustCrypto::default();
        let info = match MlsMessageIn::tls_deserialize_exact(&made.info)
            .expect("GroupInfo")
            .extract()
        {
            MlsMessageBodyIn::GroupInfo(info) => info,
            _ => panic!("not a GroupInfo"),
        };
        let tree = openmls_tree(&made.info);
        let storage = openmls_memory_storage::MemoryStorage::default();
        let (public, _) = openmls::group::PublicGroup::from_external(
            openmls_traits::OpenMlsProvider::crypto(&provider),
            &storage,
            tree,
            info,
            openmls::group::ProposalStore::new(),
        )
        .expect("OpenMLS observes the group");
        let validate_openmls = || {
            let protocol: ProtocolMessage = MlsMessageIn::tls_deserialize_exact(&commit.commit)
                .expect("commit")
                .try_into_protocol_message()
                .expect("a protocol message");
            black_box(
                public
                    .process_message(openmls_traits::OpenMlsProvider::crypto(&provider), protocol)
                    .expect("valid"),
            );
        };
        group.bench_function(BenchmarkId::new("polymls", size), |b| {
            b.iter(validate_polymls)
        });
        group.bench_function(BenchmarkId::new("mls-rs ExternalGroup", size), |b| {
            b.iter(validate_mls_rs)
        });
        group.bench_function(BenchmarkId::new("OpenMLS PublicGroup", size), |b| {
            b.iter(validate_openmls)
        });
        if common::paired_enabled() {
            let operation = format!("commit validation at {size} members");
            common::record_ratio(
                "delivery",
                &operation,
                "polymls",
                "mls-rs ExternalGroup",
                common::paired_ratio(validate_polymls, validate_mls_rs),
            );
            common::record_ratio(
                "delivery",
                &operation,
                "polymls",
                "OpenMLS PublicGroup",
                common::paired_ratio(validate_polymls, validate_openmls),
            );
        }
    }
    group.finish();
}

/// The ratchet tree from a GroupInfo's `ratchet_tree` extension, as
/// OpenMLS takes it.
fn openmls_tree(info: &[u8]) -> RatchetTreeIn {
    let message = MlsMessage::from_bytes(info).expect("GroupInfo");
    let group_info = message.into_group_info().expect("GroupInfo");
    let extension = group_info
        .extensions()
        .get_as::<mls_rs::extension::built_in::RatchetTreeExt>()
        .expect("extension")
        .expect("the ratchet_tree extension");
    let bytes =
        mls_rs::mls_rs_codec::MlsEncode::mls_encode_to_vec(&extension.tree_data).expect("tree");
    RatchetTreeIn::tls_deserialize_exact(&bytes).expect("OpenMLS decodes the tree")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn report(what: &str, figures: serde_json::Value) {
    println!("delivery/{what}: {figures}");
    common::append_record(
        "delivery.jsonl",
        &serde_json::json!({ "benchmark": what, "figures": figures }),
    );
}

/// Durable commits per second over 64 groups of 100 members, then the same
/// groups over HTTP at 64 concurrent clients.
fn throughput_and_latency() {
    const GROUPS: usize = 64;
    const MEMBERS: usize = 100;
    const CHAIN: usize = 30;
    let dir = tempfile::tempdir().expect("temp dir");
    let devices = Devices::default();
    let ds = Arc::new(DeliveryService::with_backend(
        Embedded::open(dir.path()).expect("open"),
        devices.clone(),
    ));
    let mut groups = Vec::new();
    for g in 0..GROUPS {
        let mut creator: Box<dyn Client> = Box::new(mls_rs_client(
            &devices,
            &format!("t{g}-0"),
            "d",
            SUITE,
            false,
        ));
        let (info, tree) = creator.create();
        ds.create_group(creator.device(), &info, Some(&tree))
            .expect("create");
        let group = creator.group_id();
        let key_packages: Vec<Vec<u8>> = (1..MEMBERS)
            .map(|i| mls_rs_client(&devices, &format!("t{g}-{i}"), "d", SUITE, false).key_package())
            .collect();
        let add = creator.add(&key_packages);
        ds.submit_commit(
            creator.device(),
            &group,
            &add.commit,
            add.welcome.as_deref(),
            None,
        )
        .expect("add");
        creator.confirm();
        let commits: Vec<Vec<u8>> = (0..2 * CHAIN)
            .map(|_| {
                let pending = creator.update();
                creator.confirm();
                pending.commit
            })
            .collect();
        groups.push((creator.device().clone(), group, commits));
    }
    // The library, durable: 64 threads, one group each.
    timed(
        "durable commits over 64 groups of 100 (embedded)",
        &groups,
        |(device, group, commits)| {
            commits[..CHAIN]
                .iter()
                .map(|commit| {
                    let t = Instant::now();
                    ds.submit_commit(device, group, commit, None, None)
                        .expect("accepted");
                    t.elapsed()
                })
                .collect()
        },
    );
    // Over HTTP: 64 clients, one kept-alive connection and one group each.
    let auth: Arc<dyn polymls::directory::http::Authenticator> =
        Arc::new(polymls::directory::http::DemoAuth::default());
    let app = polymls::delivery::http::router(Arc::clone(&ds), auth, Default::default());
    let server = http_client::serve_on_loopback(app);
    timed(
        "submission-to-inbox over HTTP, 64 clients (embedded)",
        &groups,
        |(device, group, commits)| {
            let mut connection = http_client::KeepAlive::new(server);
            let token = format!("{}/{}", device.actor, device.device);
            let path = format!("/.p2/mls/v1/groups/{}/commits", BASE64URL.encode(group));
            commits[CHAIN..]
                .iter()
                .map(|commit| {
                    let body = serde_json::json!({ "commit": BASE64.encode(commit) }).to_string();
                    let t = Instant::now();
                    let (status, answer) = connection
                        .request("POST", &path, Some(&token), Some(body.as_bytes()))
                        .expect("answer");
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
                    t.elapsed()
                })
                .collect()
        },
    );
}

/// Runs `each` on every item at once, a thread each, and reports the
/// latencies it returns and the throughput over the whole run.
fn timed<T: Sync>(what: &str, items: &[T], each: impl Fn(&T) -> Vec<Duration> + Sync) {
    let start = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .iter()
            .map(|item| scope.spawn(|| each(item)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect()
    });
    let elapsed = start.elapsed();
    latencies.sort();
    report(
        what,
        serde_json::json!({
            "commits": latencies.len(),
            "per_second": latencies.len() as f64 / elapsed.as_secs_f64(),
            "p50_ms": percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            "p99_ms": percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        }),
    );
}

fn delivery(c: &mut Criterion) {
    validation(c);
    throughput_and_latency();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = delivery
}
criterion_main!(benches);
