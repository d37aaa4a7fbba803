//! The directory's conformance suite, run unchanged on every backend (the
//! embedded RocksDB one, and PostgreSQL on a throwaway cluster with the
//! `postgres` feature): the lifecycle (claims drain the stock, the last
//! resort follows and is reported, low stock at the threshold,
//! replenishing, expiry, device removal, several devices), 0xF110
//! KeyPackages beside 0x0001 ones, reopening, every kind of bad upload, 64
//! concurrent claimers on one actor with 1,000 KeyPackages, and concurrent
//! uploads of the same KeyPackages.

#[path = "common/keypackages.rs"]
mod keypackages;
#[cfg(feature = "postgres")]
#[path = "common/postgres.rs"]
mod postgres;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use keypackages::{ActorIsIdentity, Spec};
use polymls::directory::{
    Backend, Clock, Directory, Embedded, LastResort, Notify, Rejection, Signal, Upload, Wanted,
};

const NOW: u64 = 1_800_000_000;
const X25519: u16 = 0x0001;
const XWING: u16 = 0xF110;

#[derive(Clone)]
struct TestClock(Arc<AtomicU64>);

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Default)]
struct Signals(Arc<Mutex<Vec<Signal>>>);

impl Notify for Signals {
    fn signal(&self, signal: Signal) {
        self.0.lock().expect("signals").push(signal);
    }
}

impl Signals {
    fn take(&self) -> Vec<Signal> {
        std::mem::take(&mut *self.0.lock().expect("signals"))
    }
}

fn upload(id: &str, spec: &Spec) -> Upload {
    Upload {
        id: id.to_string(),
        key_package: spec.encode(),
        last_resort: spec.last_resort,
    }
}

/// Storage a backend opens, and opens again (after the previous one is
/// dropped) on the same data.
trait Fixture: Sync {
    fn open(&self) -> Box<dyn Backend>;
}

struct OnEmbedded(tempfile::TempDir);

impl Fixture for OnEmbedded {
    fn open(&self) -> Box<dyn Backend> {
        Box::new(Embedded::open(self.0.path()).expect("open embedded directory"))
    }
}

fn embedded() -> OnEmbedded {
    OnEmbedded(tempfile::tempdir().expect("tempdir"))
}

#[cfg(feature = "postgres")]
struct OnPostgres(String);

#[cfg(feature = "postgres")]
impl Fixture for OnPostgres {
    fn open(&self) -> Box<dyn Backend> {
        Box::new(polymls::directory::Postgres::connect(&self.0).expect("connect to PostgreSQL"))
    }
}

/// A database of its own on the process's cluster.
#[cfg(feature = "postgres")]
fn on_postgres() -> OnPostgres {
    OnPostgres(postgres::shared().create_database())
}

type TestDirectory = Directory<Box<dyn Backend>>;

fn directory(fixture: &dyn Fixture) -> (TestDirectory, TestClock, Signals) {
    let clock = TestClock(Arc::new(AtomicU64::new(NOW)));
    let signals = Signals::default();
    let directory = Directory::with_backend(fixture.open(), ActorIsIdentity)
        .with_clock(clock.clone())
        .with_notify(signals.clone())
        .with_low_stock(2);
    (directory, clock, signals)
}

/// `count` regular KeyPackages and a last resort of one device and suite.
fn stock_up(
    directory: &TestDirectory,
    actor: &str,
    device: &str,
    suite: u16,
    count: usize,
) -> Vec<Vec<u8>> {
    let base = Spec::new(suite, actor, NOW);
    let mut uploads: Vec<Upload> = (0..count)
        .map(|i| upload(&format!("{device}-{i}"), &base.another()))
        .collect();
    let mut last = base.another();
    last.last_resort = true;
    uploads.push(upload(&format!("{device}-last"), &last));
    let verdicts = directory.publish(actor, device, &uploads).expect("publish");
    assert!(verdicts.iter().all(|v| v.result.is_ok()), "{:?}", verdicts);
    uploads.into_iter().map(|u| u.key_package).collect()
}

fn lifecycle_of_two_devices_on_two_suites(fixture: &dyn Fixture) {
    let (directory, clock, signals) = directory(fixture);
    let phone = stock_up(&directory, "alice", "phone", X25519, 3);
    let laptop = stock_up(&directory, "alice", "laptop", XWING, 3);
    assert!(directory.has_actor("alice").expect("has"));
    assert!(!directory.has_actor("bob").expect("has"));
    assert!(directory.claim("bob", &[X25519]).expect("claim").is_empty());

    // One per device, in the first suite each has; regular ones first.
    let mut handed_out = HashSet::new();
    for round in 0..3 {
        let claimed = directory.claim("alice", &[XWING, X25519]).expect("claim");
        assert_eq!(claimed.len(), 2, "one per device");
        for c in &claimed {
            assert!(!c.last_resort);
            let expected = if c.device == "phone" {
                (&phone, X25519)
            } else {
                (&laptop, XWING)
            };
            assert_eq!(c.suite, expected.1);
            assert!(expected.0[..3].contains(&c.key_package));
            assert!(handed_out.insert(c.key_package.clone()), "handed out once");
        }
        // Low stock at the threshold (2): after the second and third claim.
        let low = signals
            .take()
            .into_iter()
            .filter(|s| matches!(s, Signal::LowStock { .. }))
            .count();
        assert_eq!(low, if round == 0 { 0 } else { 2 }, "round {round}");
    }
    // Drained: the last resorts, again and again, each reported.
    for _ in 0..3 {
        let claimed = directory.claim("alice", &[X25519, XWING]).expect("claim");
        assert_eq!(claimed.len(), 2);
        assert!(claimed.iter().all(|c| c.last_resort));
        assert!(claimed.iter().all(|c| c.key_package
            == if c.device == "phone" {
                phone[3].clone()
            } else {
                laptop[3].clone()
            }));
        let used = signals
            .take()
            .into_iter()
            .filter(|s| matches!(s, Signal::LastResortUsed { .. }))
            .count();
        assert_eq!(used, 2);
    }
    // Only acceptable suites: the phone has none in 0xF110 alone.
    let claimed = directory.claim("alice", &[XWING]).expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].device, "laptop");

    let stock = directory.stock("alice").expect("stock");
    assert_eq!(stock.len(), 2);
    assert!(stock
        .iter()
        .all(|s| s.regular == 0 && s.last_resort == LastResort::Used));
    assert_eq!(directory.needs("alice").expect("needs").len(), 4);

    // Replenishing clears the signals: new regular ones and a new last resort.
    stock_up(&directory, "alice", "phone", X25519, 3);
    let needs = directory.needs("alice").expect("needs");
    assert!(needs.iter().all(|s| match s {
        Signal::LowStock { device, .. } | Signal::LastResortUsed { device, .. } =>
            device == "laptop",
        other => panic!("{other:?}"),
    }));
    let claimed = directory.claim("alice", &[X25519, XWING]).expect("claim");
    assert!(claimed
        .iter()
        .any(|c| c.device == "phone" && !c.last_resort));

    // Expiry: nothing lapsed is handed out; purge deletes it and says how many.
    clock.0.store(NOW + 31 * 24 * 3600, Ordering::Relaxed);
    assert!(directory
        .claim("alice", &[X25519, XWING])
        .expect("claim")
        .is_empty());
    let purged = directory.purge_expired().expect("purge");
    assert_eq!(
        purged,
        2 + 1 + 1,
        "the phone's two regular ones and both last resorts"
    );
    assert_eq!(directory.purge_expired().expect("purge again"), 0);

    // Removing a device removes its stock.
    clock.0.store(NOW, Ordering::Relaxed);
    stock_up(&directory, "alice", "tablet", X25519, 2);
    assert_eq!(
        directory.remove_device("alice", "tablet").expect("remove"),
        3
    );
    assert!(directory
        .stock("alice")
        .expect("stock")
        .iter()
        .all(|s| s.device != "tablet"));
    stock_up(&directory, "alice", "tablet", X25519, 1);
    assert!(directory.remove_actor("alice").expect("remove actor") >= 2);
    assert!(!directory.has_actor("alice").expect("has"));
}

fn uploads_survive_reopening_and_claims_stay_one_time(fixture: &dyn Fixture) {
    let first = {
        let (directory, _, _) = directory(fixture);
        stock_up(&directory, "carol", "phone", XWING, 2);
        directory.claim("carol", &[XWING]).expect("claim")
    };
    let (directory, _, _) = directory(fixture);
    let second = directory.claim("carol", &[XWING]).expect("claim");
    assert_ne!(first[0].key_package, second[0].key_package);
    assert!(directory.claim("carol", &[XWING]).expect("claim")[0].last_resort);
}

/// A bad upload: its name, bytes, last-resort flag, and the rejection due.
type Case = (&'static str, Vec<u8>, bool, fn(&Rejection) -> bool);

/// Every kind of bad upload: a clear rejection, nothing stored, no panic.
fn bad_uploads_are_refused_and_change_nothing(fixture: &dyn Fixture) {
    let (directory, _, _) = directory(fixture);
    let good = Spec::new(X25519, "dave", NOW);
    let good_bytes = good.encode();
    let mut cases: Vec<Case> = Vec::new();
    let mut truncated = good_bytes.clone();
    truncated.truncate(good_bytes.len() - 5);
    cases.push(("truncated", truncated, false, |r| {
        matches!(r, Rejection::Malformed(_))
    }));
    cases.push(("empty", Vec::new(), false, |r| {
        matches!(r, Rejection::Malformed(_))
    }));
    cases.push((
        "trailing bytes",
        [&good_bytes[..], &[0]].concat(),
        false,
        |r| matches!(r, Rejection::Malformed(_)),
    ));
    cases.push(("garbage", vec![0xff; 300], false, |r| {
        matches!(r, Rejection::Malformed(_))
    }));
    let mut spec = good.another();
    spec.version = 2;
    cases.push(("protocol version", spec.encode(), false, |r| {
        matches!(r, Rejection::ProtocolVersion(2))
    }));
    let mut spec = Spec::new(0x0003, "dave", NOW);
    spec.capability_suites = vec![0x0003];
    cases.push(("suite not offered", spec.encode(), false, |r| {
        matches!(r, Rejection::CipherSuite(3))
    }));
    let mut spec = good.another();
    spec.suite = 0x1234;
    cases.push(("unknown suite", spec.encode(), false, |r| {
        matches!(r, Rejection::CipherSuite(0x1234))
    }));
    let mut spec = good.another();
    spec.capability_suites = vec![0x0002];
    cases.push(("suite not in capabilities", spec.encode(), false, |r| {
        matches!(r, Rejection::Capabilities(_))
    }));
    cases.push((
        "KeyPackage signature",
        good.another().encode_with_bad_signature(),
        false,
        |r| matches!(r, Rejection::KeyPackageSignature),
    ));
    cases.push((
        "leaf node signature",
        good.another().encode_with_bad_leaf_signature(),
        false,
        |r| matches!(r, Rejection::LeafNodeSignature),
    ));
    let mut spec = good.another();
    spec.signature_key = Spec::new(X25519, "dave", NOW).signature_key;
    cases.push(("signed by another key", spec.encode(), false, |r| {
        matches!(r, Rejection::LeafNodeSignature)
    }));
    let mut spec = good.another();
    spec.source = 2;
    cases.push(("update leaf node", spec.encode(), false, |r| {
        matches!(r, Rejection::LeafNodeSource)
    }));
    let mut spec = good.another();
    spec.not_after = NOW - 1;
    cases.push(("lapsed", spec.encode(), false, |r| {
        matches!(r, Rejection::Lifetime(_))
    }));
    let mut spec = good.another();
    spec.not_before = NOW + 100;
    cases.push(("not yet valid", spec.encode(), false, |r| {
        matches!(r, Rejection::Lifetime(_))
    }));
    let mut spec = good.another();
    spec.not_after = NOW + 365 * 24 * 3600;
    cases.push(("too long", spec.encode(), false, |r| {
        matches!(r, Rejection::Lifetime(_))
    }));
    let mut spec = good.another();
    spec.init_key = spec.encryption_key.clone();
    cases.push(("init_key = encryption_key", spec.encode(), false, |r| {
        matches!(r, Rejection::InitKeyEqualsEncryptionKey)
    }));
    let mut spec = good.another();
    spec.init_key = vec![9; 31];
    cases.push(("short X25519 init_key", spec.encode(), false, |r| {
        matches!(r, Rejection::InvalidKey(_))
    }));
    let mut spec = Spec::new(XWING, "dave", NOW);
    spec.init_key[..2].copy_from_slice(&[0xff, 0xff]);
    cases.push(("ML-KEM key out of range", spec.encode(), false, |r| {
        matches!(r, Rejection::InvalidKey(_))
    }));
    let mut spec = Spec::new(XWING, "dave", NOW);
    spec.init_key.truncate(1184);
    cases.push(("short X-Wing init_key", spec.encode(), false, |r| {
        matches!(r, Rejection::InvalidKey(_))
    }));
    let mut spec = good.another();
    spec.identity = b"mallory".to_vec();
    cases.push(("identity refused", spec.encode(), false, |r| {
        matches!(r, Rejection::Identity)
    }));
    cases.push((
        "last resort flag without extension",
        good.another().encode(),
        true,
        |r| matches!(r, Rejection::LastResort(_)),
    ));
    let mut spec = good.another();
    spec.capability_extensions = vec![];
    spec.last_resort = true;
    cases.push(("extension not in capabilities", spec.encode(), true, |r| {
        matches!(r, Rejection::UnsupportedExtension(0x000a))
    }));

    let uploads: Vec<Upload> = cases
        .iter()
        .map(|(name, bytes, last_resort, _)| Upload {
            id: name.to_string(),
            key_package: bytes.clone(),
            last_resort: *last_resort,
        })
        .collect();
    let verdicts = directory
        .publish("dave", "phone", &uploads)
        .expect("publish");
    for ((name, _, _, expected), verdict) in cases.iter().zip(&verdicts) {
        assert_eq!(verdict.id, *name);
        match &verdict.result {
            Err(rejection) if expected(rejection) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    println!(
        "bad uploads: {} cases refused with their reasons",
        cases.len()
    );
    assert!(!directory.has_actor("dave").expect("has"), "nothing stored");

    // A reused init_key, within one upload and across uploads; and an
    // init_key handed out stays reserved.
    let twin = good.another();
    let verdicts = directory
        .publish(
            "dave",
            "phone",
            &[upload("a", &good), upload("b", &twin), upload("c", &good)],
        )
        .expect("publish");
    let results: Vec<_> = verdicts.iter().map(|v| v.result.clone()).collect();
    assert_eq!(
        results,
        vec![Ok(()), Ok(()), Err(Rejection::DuplicateInitKey)]
    );
    let again = directory
        .publish("dave", "laptop", &[upload("d", &good)])
        .expect("publish");
    assert_eq!(again[0].result, Err(Rejection::DuplicateInitKey));
    directory.claim("dave", &[X25519]).expect("claim");
    directory.claim("dave", &[X25519]).expect("claim");
    let after = directory
        .publish("dave", "phone", &[upload("e", &good)])
        .expect("publish");
    assert_eq!(
        after[0].result,
        Err(Rejection::DuplicateInitKey),
        "handed out, still reserved"
    );
}

/// 64 threads claim against one actor holding 1,000 KeyPackages: each is
/// handed out exactly once, then only the last resort.
fn concurrent_claims_hand_out_each_key_package_once(fixture: &dyn Fixture) {
    const KEY_PACKAGES: usize = 1000;
    const CLAIMERS: usize = 64;
    let (directory, _, _) = directory(fixture);
    let base = Spec::new(X25519, "erin", NOW);
    for chunk in 0..10 {
        let mut uploads: Vec<Upload> = (0..KEY_PACKAGES / 10)
            .map(|i| upload(&format!("{chunk}-{i}"), &base.another()))
            .collect();
        if chunk == 0 {
            let mut last = base.another();
            last.last_resort = true;
            uploads.push(upload("last", &last));
        }
        let verdicts = directory
            .publish("erin", "phone", &uploads)
            .expect("publish");
        assert!(verdicts.iter().all(|v| v.result.is_ok()));
    }
    let directory = Arc::new(directory);
    let claims_per_thread = (KEY_PACKAGES + 2 * CLAIMERS) / CLAIMERS;
    let threads: Vec<_> = (0..CLAIMERS)
        .map(|_| {
            let directory = Arc::clone(&directory);
            std::thread::spawn(move || {
                (0..claims_per_thread)
                    .map(|_| directory.claim("erin", &[X25519]).expect("claim"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut regular = HashSet::new();
    let mut last_resorts = 0;
    let mut claims = 0;
    for thread in threads {
        for claimed in thread.join().expect("claimer") {
            claims += 1;
            assert_eq!(claimed.len(), 1);
            if claimed[0].last_resort {
                last_resorts += 1;
            } else {
                assert!(
                    regular.insert(claimed[0].key_package.clone()),
                    "handed out twice"
                );
            }
        }
    }
    println!(
        "concurrent claims: {CLAIMERS} claimers, {claims} claims, {} regular KeyPackages each once, {last_resorts} last resorts, 0 double hand-outs",
        regular.len()
    );
    assert_eq!(regular.len(), KEY_PACKAGES);
    assert_eq!(last_resorts, claims - KEY_PACKAGES);
    let stock = directory.stock("erin").expect("stock");
    assert_eq!(stock[0].regular, 0);
    assert_eq!(stock[0].last_resort, LastResort::Used);
}

/// 16 threads upload the same 50 KeyPackages at once (each from its own
/// device): each is stored exactly once, whichever upload wins.
fn concurrent_uploads_store_each_init_key_once(fixture: &dyn Fixture) {
    const UPLOADERS: usize = 16;
    let (directory, _, _) = directory(fixture);
    let base = Spec::new(X25519, "frank", NOW);
    let uploads: Arc<Vec<Upload>> = Arc::new(
        (0..50)
            .map(|i| upload(&i.to_string(), &base.another()))
            .collect(),
    );
    let directory = Arc::new(directory);
    let threads: Vec<_> = (0..UPLOADERS)
        .map(|thread| {
            let (directory, uploads) = (Arc::clone(&directory), Arc::clone(&uploads));
            std::thread::spawn(move || {
                directory
                    .publish("frank", &format!("device{thread}"), &uploads)
                    .expect("publish")
            })
        })
        .collect();
    let mut accepted = vec![0usize; uploads.len()];
    for thread in threads {
        for (i, verdict) in thread.join().expect("uploader").iter().enumerate() {
            match &verdict.result {
                Ok(()) => accepted[i] += 1,
                Err(Rejection::DuplicateInitKey) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
    }
    assert!(accepted.iter().all(|&n| n == 1), "{accepted:?}");
    let held: usize = directory
        .stock("frank")
        .expect("stock")
        .iter()
        .map(|s| s.regular)
        .sum();
    assert_eq!(held, uploads.len());
    println!(
        "concurrent uploads: {UPLOADERS} uploaders x {} KeyPackages, each stored once",
        uploads.len()
    );
}

/// The `extensions` allowlist: only KeyPackages all of whose extensions
/// are listed are handed out, regular and last resort alike; the others
/// stay for claims that allow them.
fn extensions_allowlist_filters_claims(fixture: &dyn Fixture) {
    const EXTRA: u16 = 0xff00;
    let (directory, _, _) = directory(fixture);
    let base = Spec::new(X25519, "gina", NOW);
    let plain = base.another();
    let mut extended = base.another();
    extended.extra_extensions = vec![EXTRA];
    extended.capability_extensions.push(EXTRA);
    let mut last = base.another();
    last.last_resort = true;
    let uploads = [
        upload("plain", &plain),
        upload("extended", &extended),
        upload("last", &last),
    ];
    let verdicts = directory
        .publish("gina", "phone", &uploads)
        .expect("publish");
    assert!(verdicts.iter().all(|v| v.result.is_ok()), "{verdicts:?}");
    let claim = |extensions: Option<&[u16]>| {
        directory
            .claim_wanted(
                "gina",
                Wanted {
                    suites: &[X25519],
                    extensions,
                },
            )
            .expect("claim")
            .into_iter()
            .map(|c| c.key_package)
            .collect::<Vec<_>>()
    };
    assert_eq!(claim(Some(&[])), vec![uploads[0].key_package.clone()]);
    assert!(claim(Some(&[])).is_empty(), "the others carry extensions");
    assert!(claim(Some(&[0x0a])).len() == 1, "the last resort");
    assert_eq!(claim(Some(&[EXTRA])), vec![uploads[1].key_package.clone()]);
    assert_eq!(claim(None), vec![uploads[2].key_package.clone()]);
}

/// The suite, one test per case, on one backend.
macro_rules! conformance {
    ($backend:ident, $fixture:expr) => {
        mod $backend {
            use super::*;

            #[test]
            fn lifecycle_of_two_devices_on_two_suites() {
                super::lifecycle_of_two_devices_on_two_suites(&$fixture)
            }

            #[test]
            fn uploads_survive_reopening_and_claims_stay_one_time() {
                super::uploads_survive_reopening_and_claims_stay_one_time(&$fixture)
            }

            #[test]
            fn bad_uploads_are_refused_and_change_nothing() {
                super::bad_uploads_are_refused_and_change_nothing(&$fixture)
            }

            #[test]
            fn concurrent_claims_hand_out_each_key_package_once() {
                super::concurrent_claims_hand_out_each_key_package_once(&$fixture)
            }

            #[test]
            fn extensions_allowlist_filters_claims() {
                super::extensions_allowlist_filters_claims(&$fixture)
            }

            #[test]
            fn concurrent_uploads_store_each_init_key_once() {
                super::concurrent_uploads_store_each_init_key_once(&$fixture)
            }
        }
    };
}

conformance!(embedded_backend, embedded());
#[cfg(feature = "postgres")]
conformance!(postgres_backend, on_postgres());
