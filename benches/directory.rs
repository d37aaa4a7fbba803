//! The KeyPackage directory: publish per KeyPackage (validation, and a
//! durable batch upload on each backend) against OpenMLS's
//! `KeyPackageIn::validate` one by one; durable claims per second with
//! p50/p99 latency at 1, 16 and 64 concurrent claimers, on the embedded
//! backend and on PostgreSQL (a throwaway cluster on this machine), spread
//! over 10,000 actors and all on one actor; and HTTP upload and claim on
//! loopback with a bounded (closed-loop) load generator.
//!
//! Criterion measures the single-threaded operations; the concurrent ones
//! are timed here, each run for a fixed time, and printed (and appended to
//! `directory.jsonl` in criterion's directory).

mod common;
#[path = "../tests/common/http_client.rs"]
mod http_client;
#[path = "../tests/common/keypackages.rs"]
mod keypackages;
#[path = "../tests/common/postgres.rs"]
mod postgres;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use keypackages::{ActorIsIdentity, Spec};
use openmls::prelude::{KeyPackageIn, ProtocolVersion};
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider;
use polymls::directory::http::{router, DemoAuth, Limits};
use polymls::directory::{
    validate, Backend, Directory, Embedded, Policy, Postgres, PostgresOptions, Upload,
};
use tls_codec::Deserialize as _;

const SUITE: u16 = 0x0001;
const ACTORS: usize = 10_000;
const CONCURRENCY: [usize; 3] = [1, 16, 64];
/// How long each concurrent measurement runs.
const RUN: Duration = Duration::from_secs(3);
const BATCH: usize = 100;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// `count` fresh KeyPackages of `actor`'s one signer, made on both cores.
fn key_packages(actor: &str, count: usize) -> Vec<Vec<u8>> {
    let base = Spec::new(SUITE, actor, now());
    let half = count / 2;
    let other = {
        let base = base.clone();
        std::thread::spawn(move || {
            (0..half)
                .map(|_| base.another().encode())
                .collect::<Vec<_>>()
        })
    };
    let mut out: Vec<Vec<u8>> = (half..count).map(|_| base.another().encode()).collect();
    out.extend(other.join().expect("generator"));
    out
}

fn uploads(key_packages: &[Vec<u8>]) -> Vec<Upload> {
    key_packages
        .iter()
        .enumerate()
        .map(|(i, kp)| Upload {
            id: i.to_string(),
            key_package: kp.clone(),
            last_resort: false,
        })
        .collect()
}

fn publish_all<B: Backend>(directory: &Directory<B>, actor: &str, key_packages: &[Vec<u8>]) {
    for chunk in key_packages.chunks(BATCH) {
        let verdicts = directory
            .publish(actor, "phone", &uploads(chunk))
            .expect("publish");
        assert!(verdicts.iter().all(|v| v.result.is_ok()), "{verdicts:?}");
    }
}

/// One figure of a concurrent run, printed and appended to
/// `directory.jsonl`.
fn report(what: &str, figures: serde_json::Value) {
    println!("directory/{what}: {figures}");
    common::append_record(
        "directory.jsonl",
        &serde_json::json!({ "what": what, "figures": figures }),
    );
}

/// Per-operation latencies from several threads: count, rate, p50, p99.
fn summary(mut latencies: Vec<Duration>, elapsed: Duration) -> serde_json::Value {
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    serde_json::json!({
        "operations": latencies.len(),
        "per_second": (latencies.len() as f64 / elapsed.as_secs_f64()).round(),
        "p50_ms": (at(0.50) * 1000.0).round() / 1000.0,
        "p99_ms": (at(0.99) * 1000.0).round() / 1000.0,
    })
}

/// `threads` closed-loop workers calling `operation(worker)` for [`RUN`]
/// or `budget` operations in all, whichever comes first: their latencies
/// and the time taken.
fn closed_loop(
    threads: usize,
    budget: usize,
    operation: impl Fn(usize) + Send + Sync + 'static,
) -> (Vec<Duration>, Duration) {
    let operation = Arc::new(operation);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|worker| {
            let (operation, stop) = (Arc::clone(&operation), Arc::clone(&stop));
            let started = Arc::clone(&started);
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed)
                    && started.fetch_add(1, Ordering::Relaxed) < budget
                {
                    let began = Instant::now();
                    operation(worker);
                    latencies.push(began.elapsed());
                }
                latencies
            })
        })
        .collect();
    while start.elapsed() < RUN && started.load(Ordering::Relaxed) < budget {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.join().expect("worker"));
    }
    (all, start.elapsed())
}

/// `threads` workers offering `rate` operations per second in all, each on
/// its own fixed schedule, for [`RUN`]: each latency counted from the
/// operation's scheduled start (so a stalled server's queue counts against
/// it: no coordinated omission), and the time taken.
fn paced_loop(
    threads: usize,
    rate: f64,
    operation: impl Fn(usize) + Send + Sync + 'static,
) -> (Vec<Duration>, Duration) {
    let operation = Arc::new(operation);
    let interval = Duration::from_secs_f64(threads as f64 / rate);
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|worker| {
            let operation = Arc::clone(&operation);
            std::thread::spawn(move || {
                let offset = interval.mul_f64(worker as f64 / threads as f64);
                let mut latencies = Vec::new();
                for n in 0.. {
                    let due = start + offset + interval * n;
                    if due.duration_since(start) >= RUN {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    operation(worker);
                    latencies.push(due.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.join().expect("worker"));
    }
    (all, start.elapsed())
}

/// Validation of one KeyPackage: polymls's `validate::check` against
/// OpenMLS's decode and `KeyPackageIn::validate` on `openmls_rust_crypto`;
/// and publish per KeyPackage in durable batches of 100 on each backend.
fn publish(c: &mut Criterion, postgres_url: &str) {
    let mut group = c.benchmark_group("directory");
    let key_package = key_packages("alice", 1).remove(0);
    let policy = Policy::default();
    let crypto = OpenMlsRustCrypto::default();
    let openmls_validate = || {
        KeyPackageIn::tls_deserialize_exact(black_box(&key_package[..]))
            .expect("decode")
            .validate(crypto.crypto(), ProtocolVersion::Mls10)
            .expect("OpenMLS accepts it");
    };
    let polymls_validate = || {
        validate::check(black_box(&key_package), &policy, now()).expect("polymls accepts it");
    };
    group.bench_function("validate/polymls", |b| b.iter(polymls_validate));
    group.bench_function("validate/openmls", |b| b.iter(openmls_validate));
    let batch = key_packages("alice", BATCH);
    let batch: Vec<&[u8]> = batch.iter().map(|kp| &kp[..]).collect();
    group.bench_function("validate/polymls batch of 100, per KeyPackage", |b| {
        b.iter_custom(|iters| {
            let batches = iters.div_ceil(BATCH as u64);
            let start = Instant::now();
            for _ in 0..batches {
                let verdicts = validate::check_batch(black_box(&batch), &policy, now());
                assert!(verdicts.iter().all(Result::is_ok));
            }
            start
                .elapsed()
                .mul_f64(iters as f64 / (batches * BATCH as u64) as f64)
        })
    });
    if common::paired_enabled() {
        let measured = common::paired_ratio(openmls_validate, polymls_validate);
        common::record_ratio("directory", "validate", "openmls", "polymls", measured);
    }

    let embedded_dir = tempfile::tempdir().expect("tempdir");
    let embedded = Directory::open(embedded_dir.path(), ActorIsIdentity).expect("open");
    let on_postgres = Directory::with_backend(
        Postgres::connect(postgres_url).expect("connect"),
        ActorIsIdentity,
    );
    let mut bench_publish = |name: &str, publish: &dyn Fn(&[Upload])| {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let batches = (iters as usize).div_ceil(BATCH);
                let fresh = key_packages("alice", batches * BATCH);
                let batches: Vec<Vec<Upload>> = fresh.chunks(BATCH).map(uploads).collect();
                let start = Instant::now();
                for batch in &batches {
                    publish(batch);
                }
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (batches.len() * BATCH) as f64)
            })
        });
    };
    bench_publish("publish per KeyPackage/embedded", &|batch| {
        embedded.publish("alice", "phone", batch).expect("publish");
    });
    bench_publish("publish per KeyPackage/postgres", &|batch| {
        on_postgres
            .publish("alice", "phone", batch)
            .expect("publish");
    });
    group.finish();
    if common::paired_enabled() {
        // A durable upload of 100 fresh KeyPackages against OpenMLS
        // validating 100 one by one (as a server on OpenMLS would).
        let fresh: Vec<Vec<Upload>> = key_packages("bob", 250 * BATCH)
            .chunks(BATCH)
            .map(uploads)
            .collect();
        let mut fresh = fresh.into_iter();
        let openmls_side: Vec<Vec<u8>> = key_packages("carol", BATCH);
        let measured = common::paired_ratio(
            || {
                for key_package in &openmls_side {
                    KeyPackageIn::tls_deserialize_exact(black_box(&key_package[..]))
                        .expect("decode")
                        .validate(crypto.crypto(), ProtocolVersion::Mls10)
                        .expect("OpenMLS accepts it");
                }
            },
            || {
                let batch = fresh
                    .next()
                    .expect("enough fresh KeyPackages for the rounds");
                let verdicts = embedded.publish("bob", "phone", &batch).expect("publish");
                assert!(verdicts.iter().all(|v| v.result.is_ok()));
            },
        );
        common::record_ratio(
            "directory",
            "publish per KeyPackage (batches of 100, durable)",
            "openmls validate",
            "polymls embedded",
            measured,
        );
    }
}

/// Each actor's KeyPackages (one signer per actor, whose basic credential
/// is the actor's name), made on both cores.
type Stock = Vec<(String, Vec<Vec<u8>>)>;

fn actor_stock(actors: usize, per_actor: usize) -> Stock {
    let make = move |range: std::ops::Range<usize>| {
        range
            .map(|i| {
                let actor = format!("actor{i}");
                let base = Spec::new(SUITE, &actor, now());
                let kps = (0..per_actor).map(|_| base.another().encode()).collect();
                (actor, kps)
            })
            .collect::<Stock>()
    };
    let other = std::thread::spawn(move || make(actors / 2..actors));
    let mut out = make(0..actors / 2);
    out.extend(other.join().expect("generator"));
    out
}

/// Durable claims at 1, 16 and 64 concurrent claimers over 10,000 actors,
/// then on one hot actor, on `directory`.
fn claims<B: Backend + 'static>(
    name: &str,
    directory: Directory<B>,
    stock: &Stock,
    hot: &[Vec<u8>],
) {
    let directory = Arc::new(directory);
    for (actor, kps) in stock {
        let verdicts = directory
            .publish(actor, "phone", &uploads(kps))
            .expect("publish");
        assert!(verdicts.iter().all(|v| v.result.is_ok()));
    }
    publish_all(&directory, "hot", hot);
    let actors: Arc<Vec<String>> = Arc::new(stock.iter().map(|(a, _)| a.clone()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    for claimers in CONCURRENCY {
        let (directory, next, actors) = (
            Arc::clone(&directory),
            Arc::clone(&next),
            Arc::clone(&actors),
        );
        let budget = stock.len() * stock[0].1.len() / CONCURRENCY.len();
        let (latencies, elapsed) = closed_loop(claimers, budget, move |_| {
            let actor = &actors[next.fetch_add(1, Ordering::Relaxed) % actors.len()];
            let claimed = directory.claim(actor, &[SUITE]).expect("claim");
            assert!(
                claimed.len() == 1 && !claimed[0].last_resort,
                "stock ran out"
            );
        });
        report(
            &format!("claims/{name}/{} actors/{claimers} claimers", stock.len()),
            summary(latencies, elapsed),
        );
    }
    for claimers in CONCURRENCY {
        let directory = Arc::clone(&directory);
        let budget = hot.len() / CONCURRENCY.len();
        let (latencies, elapsed) = closed_loop(claimers, budget, move |_| {
            let claimed = directory.claim("hot", &[SUITE]).expect("claim");
            assert!(
                claimed.len() == 1 && !claimed[0].last_resort,
                "stock ran out"
            );
        });
        report(
            &format!("claims/{name}/one hot actor/{claimers} claimers"),
            summary(latencies, elapsed),
        );
    }
}

/// The directory server on a loopback port (embedded backend).
fn serve(dir: &std::path::Path) -> SocketAddr {
    let auth = Arc::new(DemoAuth::default());
    let directory = Directory::open(dir, Arc::clone(&auth)).expect("directory");
    http_client::serve_on_loopback(router(Arc::new(directory), auth, Limits::default()))
}

fn upload_body(key_packages: &[Vec<u8>]) -> Vec<u8> {
    let items: Vec<serde_json::Value> = key_packages
        .iter()
        .enumerate()
        .map(|(i, kp)| {
            serde_json::json!({"id": i.to_string(), "keyPackage": BASE64.encode(kp), "lastResort": false})
        })
        .collect();
    serde_json::to_vec(&items).expect("json")
}

/// HTTP on loopback: each actor's upload (one uploader), then claims from
/// 64 closed-loop clients over 10,000 actors, each client on a kept-alive
/// connection (as real clients and load generators hold them).
fn http(stock: &Stock) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(dir.path());
    let bodies: Vec<(&String, Vec<u8>)> = stock
        .iter()
        .map(|(actor, kps)| (actor, upload_body(kps)))
        .collect();
    let mut latencies = Vec::new();
    let start = Instant::now();
    for (actor, body) in &bodies {
        let began = Instant::now();
        let (status, answer) = http_client::request(
            server,
            "POST",
            "/.p2/mls/v1/keypackages",
            Some(&format!("{actor}/phone")),
            Some(body),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        latencies.push(began.elapsed());
    }
    let elapsed = start.elapsed();
    let mut figures = summary(latencies, elapsed);
    figures["key_packages_per_upload"] = stock[0].1.len().into();
    report("http/upload/1 uploader", figures);
    let clients = 64;
    let next = Arc::new(AtomicUsize::new(0));
    let budget = stock.len() * stock[0].1.len();
    let connections: Arc<Vec<std::sync::Mutex<http_client::KeepAlive>>> = Arc::new(
        (0..clients)
            .map(|_| std::sync::Mutex::new(http_client::KeepAlive::new(server)))
            .collect(),
    );
    let claim = move |worker: usize| {
        let actor = next.fetch_add(1, Ordering::Relaxed) % ACTORS;
        let path = format!("/.p2/mls/v1/keypackages/actor{actor}?ciphersuites=0x0001");
        let mut connection = connections[worker].lock().expect("connection");
        let (status, _) = connection
            .request("GET", &path, Some(&format!("client{worker}/d")), None)
            .expect("claim over HTTP");
        assert_eq!(status, 200);
    };
    let claim = Arc::new(claim);
    // Saturation: every client sends its next claim as soon as the
    // last is answered.
    let saturating = Arc::clone(&claim);
    let (latencies, elapsed) = closed_loop(clients, budget / 4, move |worker| saturating(worker));
    let saturated = summary(latencies, elapsed);
    report(
        &format!("http/claim/{ACTORS} actors/{clients} clients/saturated"),
        saturated.clone(),
    );
    // A bounded offered load: half the saturated rate, spread over the
    // same clients on fixed schedules.
    let rate = saturated["per_second"].as_f64().expect("rate") / 2.0;
    let (latencies, elapsed) = paced_loop(clients, rate, move |worker| claim(worker));
    let mut figures = summary(latencies, elapsed);
    figures["offered_per_second"] = rate.round().into();
    report(
        &format!("http/claim/{ACTORS} actors/{clients} clients/half load"),
        figures,
    );
}

fn directory(c: &mut Criterion) {
    let cluster = postgres::Cluster::start().unwrap_or_else(|e| panic!("PostgreSQL: {e}"));
    publish(c, &cluster.create_database());
    if !common::paired_enabled() && std::env::var_os("POLYMLS_BENCH_DIRECTORY_CLAIMS").is_none() {
        return;
    }
    // Four per actor: more than 3 s of the fastest claims take.
    let stock = actor_stock(ACTORS, 4);
    let hot = key_packages("hot", 15_000);
    let dir = tempfile::tempdir().expect("tempdir");
    claims(
        "embedded",
        Directory::with_backend(Embedded::open(dir.path()).expect("open"), ActorIsIdentity),
        &stock,
        &hot,
    );
    claims(
        "postgres",
        Directory::with_backend(
            Postgres::connect_with(
                &cluster.create_database(),
                PostgresOptions::default().with_pool_size(64),
            )
            .expect("connect"),
            ActorIsIdentity,
        ),
        &stock,
        &hot,
    );
    http(&stock);
}

criterion_group! {
    name = benches;
    config = common::criterion().sample_size(20);
    targets = directory
}
criterion_main!(benches);
