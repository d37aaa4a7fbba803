//! Crash safety of claims: a child process claims from an actor's stock on
//! four threads and reports every KeyPackage a claim returned; it is killed
//! with SIGKILL at random points, 50 times, on the same directory. After
//! each kill: no KeyPackage was handed out twice, and the stock is the
//! initial one less what was reported, less at most one claim per thread
//! that the kill cut off between its durable write and its report.

#[path = "common/child.rs"]
mod child;
#[path = "common/keypackages.rs"]
mod keypackages;

use std::collections::HashSet;
use std::time::Duration;

use keypackages::{ActorIsIdentity, Spec};
use polymls::directory::{Directory, Embedded, Upload};
use sha2::{Digest, Sha256};

const CHILD: &str = "POLYMLS_DIRECTORY_CRASH_DIR";
const KILLS: usize = 50;
const THREADS: usize = 4;
const KEY_PACKAGES: usize = 4000;
const SUITE: u16 = 0x0001;

fn open(dir: &std::path::Path) -> Directory<Embedded> {
    Directory::open(dir, ActorIsIdentity).expect("open directory")
}

fn fingerprint(key_package: &[u8]) -> String {
    hex::encode(&Sha256::digest(key_package)[..12])
}

/// In the child: claim on every thread until killed, reporting each regular
/// KeyPackage a claim returned.
fn child(dir: &std::path::Path) -> ! {
    let directory = std::sync::Arc::new(open(dir));
    println!("ready");
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let directory = std::sync::Arc::clone(&directory);
            std::thread::spawn(move || loop {
                for claimed in directory.claim("grace", &[SUITE]).expect("claim") {
                    if !claimed.last_resort {
                        println!("claimed {}", fingerprint(&claimed.key_package));
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    unreachable!()
}

fn regular_stock(dir: &std::path::Path) -> usize {
    open(dir).stock("grace").expect("stock")[0].regular
}

#[test]
fn claims_survive_sigkill_at_random_points() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(std::path::Path::new(&dir));
    }
    let root = tempfile::tempdir().expect("tempdir");
    {
        let directory = open(root.path());
        let base = Spec::new(SUITE, "grace", directory_now());
        let mut last = base.another();
        last.last_resort = true;
        let mut uploads = vec![Upload {
            id: "last".into(),
            key_package: last.encode(),
            last_resort: true,
        }];
        uploads.extend((0..KEY_PACKAGES).map(|i| Upload {
            id: i.to_string(),
            key_package: base.another().encode(),
            last_resort: false,
        }));
        let verdicts = directory
            .publish("grace", "phone", &uploads)
            .expect("publish");
        assert!(verdicts.iter().all(|v| v.result.is_ok()));
    }

    let rand = polymls::Rand::default();
    let mut handed_out: HashSet<String> = HashSet::new();
    let (mut kills, mut cut_off) = (0, 0);
    let mut stock = KEY_PACKAGES;
    for round in 0..KILLS {
        let (mut process, _, lines) = child::spawn(
            "claims_survive_sigkill_at_random_points",
            CHILD,
            root.path(),
            "ready",
        );
        child::kill_at_random(&mut process, &rand, Duration::from_micros(100));
        kills += 1;

        let reported: Vec<String> = lines
            .map_while(Result::ok)
            .filter_map(|l| l.split("claimed ").nth(1).map(|f| f.trim().to_string()))
            .collect();
        for fingerprint in &reported {
            assert!(
                handed_out.insert(fingerprint.clone()),
                "round {round}: {fingerprint} handed out twice"
            );
        }
        let now = regular_stock(root.path());
        let consumed = stock - now;
        assert!(
            consumed >= reported.len() && consumed - reported.len() <= THREADS,
            "round {round}: {consumed} consumed, {} reported",
            reported.len()
        );
        cut_off += consumed - reported.len();
        stock = now;
        if stock == 0 {
            break;
        }
    }
    // What is left goes out once each, never one already handed out.
    let directory = open(root.path());
    let mut drained = 0;
    loop {
        let claimed = directory.claim("grace", &[SUITE]).expect("claim");
        if claimed[0].last_resort {
            break;
        }
        assert!(
            handed_out.insert(fingerprint(&claimed[0].key_package)),
            "handed out twice"
        );
        drained += 1;
    }
    println!(
        "directory crash: {kills} SIGKILLs while 4 threads claimed; {} KeyPackages reported, {cut_off} consumed by a cut-off claim without an answer, {drained} drained afterwards, 0 handed out twice",
        handed_out.len() - drained
    );
    assert_eq!(handed_out.len() + cut_off, KEY_PACKAGES);
    assert!(kills == KILLS && cut_off <= THREADS * kills);
}

fn directory_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}
