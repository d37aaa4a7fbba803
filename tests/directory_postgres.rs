//! The directory beyond one process: three `directory_server --postgres`
//! processes over one PostgreSQL (a throwaway cluster), 64 HTTP claimers
//! spread over them, one actor's KeyPackages.
//! - 1,000 KeyPackages, no faults: each handed out exactly once, then only
//!   the last resort.
//! - One of the three killed with SIGKILL at a random point of each of 20
//!   rounds of 1,000 KeyPackages, and started again: no KeyPackage handed
//!   out twice, the ones consumed without an answer counted (at most the
//!   requests the kills cut off), none other lost, the stock right after.
//! - The database restarted while claims run: clear 503s while it is down,
//!   every server claims again after it.
//!
//! And the schema: processes starting together migrate once; a database
//! with a newer schema is refused.

#[path = "common/http_client.rs"]
mod http_client;
#[path = "common/keypackages.rs"]
mod keypackages;
#[path = "common/postgres.rs"]
mod postgres;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use keypackages::{ActorIsIdentity, Spec};
use polymls::directory::{Directory, DirectoryError, LastResort, Postgres, Upload};
use serde_json::Value;

const SERVERS: usize = 3;
const CLAIMERS: usize = 64;
const KEY_PACKAGES: usize = 1000;
const KILL_ROUNDS: usize = 20;
const ACTOR: &str = "grace";
const CLAIM: &str = "/.p2/mls/v1/keypackages/grace?ciphersuites=0x0001";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The example server, which `cargo test` builds beside the tests.
fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .join("examples/directory_server");
    assert!(
        path.exists(),
        "{} is missing: run the whole suite (`cargo test --release --all-features` builds the examples)",
        path.display()
    );
    path
}

/// A `directory_server --postgres` process and its address.
struct Server {
    child: Child,
    address: SocketAddr,
}

impl Server {
    fn start(url: &str) -> Server {
        let mut child = Command::new(server_binary())
            .args(["--listen", "127.0.0.1:0", "--postgres", url, "--demo-auth"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start directory_server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("server's first line");
        let address = line
            .trim()
            .strip_prefix("directory listening on http://")
            .and_then(|rest| rest.strip_suffix("/.p2/mls/v1/"))
            .and_then(|address| address.parse().ok())
            .unwrap_or_else(|| panic!("server said {line:?}"));
        Server { child, address }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the claimers saw.
#[derive(Default)]
struct Seen {
    /// Every regular KeyPackage an answer carried, in order.
    regular: Vec<Vec<u8>>,
    last_resorts: usize,
    /// Requests that got no answer (the server killed, or not yet back).
    cut_off: usize,
    /// 503 answers, with their bodies.
    unavailable: Vec<String>,
}

struct Claimers {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    claims: Arc<AtomicUsize>,
}

/// `CLAIMERS` threads, each on one server (round robin), claiming until
/// stopped, or `limit` claims each.
fn claimers(
    addresses: &Arc<RwLock<Vec<SocketAddr>>>,
    last_resort: &[u8],
    limit: usize,
) -> Claimers {
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let claims = Arc::new(AtomicUsize::new(0));
    let threads = (0..CLAIMERS)
        .map(|i| {
            let (stop, seen, claims) = (Arc::clone(&stop), Arc::clone(&seen), Arc::clone(&claims));
            let addresses = Arc::clone(addresses);
            let last_resort = last_resort.to_vec();
            std::thread::spawn(move || {
                let token = format!("claimer{i}/device");
                let mut done = 0;
                while !stop.load(Ordering::Relaxed) && done < limit {
                    let server = addresses.read().expect("addresses")[i % SERVERS];
                    let answer = http_client::try_request(server, "GET", CLAIM, Some(&token), None);
                    let mut seen = seen.lock().expect("seen");
                    match answer {
                        Ok((200, body)) => {
                            done += 1;
                            claims.fetch_add(1, Ordering::Relaxed);
                            let items: Vec<Value> = serde_json::from_slice(&body).expect("json");
                            assert_eq!(items.len(), 1, "one device, one KeyPackage");
                            let key_package = BASE64
                                .decode(items[0]["keyPackage"].as_str().expect("keyPackage"))
                                .expect("base64");
                            if key_package == last_resort {
                                seen.last_resorts += 1;
                            } else {
                                seen.regular.push(key_package);
                            }
                        }
                        Ok((503, body)) => {
                            seen.unavailable
                                .push(String::from_utf8_lossy(&body).into_owned());
                            drop(seen);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Ok((status, body)) => panic!(
                            "claim answered {status}: {}",
                            String::from_utf8_lossy(&body)
                        ),
                        Err(_) => {
                            seen.cut_off += 1;
                            drop(seen);
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                }
            })
        })
        .collect();
    Claimers {
        stop,
        seen,
        threads,
        claims,
    }
}

impl Claimers {
    /// Waits until `count` claims were answered in all.
    fn wait_for(&self, count: usize) {
        while self.claims.load(Ordering::Relaxed) < count {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the claimers; what they saw.
    fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("claimer");
        }
        Arc::try_unwrap(self.seen)
            .ok()
            .expect("claimers done")
            .into_inner()
            .expect("seen")
    }
}

/// `count` regular KeyPackages of one device, published in one upload;
/// their bytes.
fn publish(directory: &Directory<Postgres>, base: &Spec, count: usize) -> Vec<Vec<u8>> {
    let uploads: Vec<Upload> = (0..count)
        .map(|i| Upload {
            id: i.to_string(),
            key_package: base.another().encode(),
            last_resort: false,
        })
        .collect();
    let verdicts = directory
        .publish(ACTOR, "phone", &uploads)
        .expect("publish");
    assert!(verdicts.iter().all(|v| v.result.is_ok()), "{verdicts:?}");
    uploads.into_iter().map(|u| u.key_package).collect()
}

fn regular_left(directory: &Directory<Postgres>) -> usize {
    directory
        .stock(ACTOR)
        .expect("stock")
        .iter()
        .map(|s| s.regular)
        .sum()
}

fn wait_until_drained(directory: &Directory<Postgres>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while regular_left(directory) > 0 {
        assert!(Instant::now() < deadline, "claims did not drain the stock");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn three_servers_share_one_database_through_kills_and_a_restart() {
    let cluster = postgres::Cluster::start().unwrap_or_else(|e| panic!("PostgreSQL: {e}"));
    let url = cluster.create_database();
    let directory =
        Directory::with_backend(Postgres::connect(&url).expect("connect"), ActorIsIdentity);
    let base = Spec::new(0x0001, ACTOR, now());
    let mut last = base.another();
    last.last_resort = true;
    let last_resort = last.encode();
    let verdicts = directory
        .publish(
            ACTOR,
            "phone",
            &[Upload {
                id: "last".into(),
                key_package: last_resort.clone(),
                last_resort: true,
            }],
        )
        .expect("publish last resort");
    assert!(verdicts[0].result.is_ok());

    let mut servers: Vec<Server> = (0..SERVERS).map(|_| Server::start(&url)).collect();
    let addresses = Arc::new(RwLock::new(
        servers.iter().map(|s| s.address).collect::<Vec<_>>(),
    ));

    // No faults: each exactly once, then only the last resort.
    let published: HashSet<Vec<u8>> = publish(&directory, &base, KEY_PACKAGES)
        .into_iter()
        .collect();
    let per_claimer = (KEY_PACKAGES + 2 * CLAIMERS) / CLAIMERS;
    let claims = CLAIMERS * per_claimer;
    let bounded = claimers(&addresses, &last_resort, per_claimer);
    bounded.wait_for(claims);
    let seen = bounded.finish();
    let distinct: HashSet<&Vec<u8>> = seen.regular.iter().collect();
    assert_eq!(distinct.len(), seen.regular.len(), "handed out twice");
    assert_eq!(seen.regular.len(), KEY_PACKAGES);
    assert!(seen.regular.iter().all(|kp| published.contains(kp)));
    assert_eq!(seen.last_resorts, claims - KEY_PACKAGES);
    assert_eq!(seen.cut_off, 0);
    println!(
        "three servers: {claims} claims over {SERVERS} processes by {CLAIMERS} claimers, \
         {KEY_PACKAGES} KeyPackages each once, then {} last resorts, 0 double hand-outs",
        seen.last_resorts
    );

    // Kills: one server killed at a random point of each round.
    let running = claimers(&addresses, &last_resort, usize::MAX);
    let mut published_all: HashSet<Vec<u8>> = HashSet::new();
    let mut random = Spec::new(0x0001, "dice", now()).init_key;
    let mut mid_drain = 0;
    for round in 0..KILL_ROUNDS {
        published_all.extend(publish(&directory, &base, KEY_PACKAGES));
        if round % 8 == 0 {
            random = Spec::new(0x0001, "dice", now()).init_key;
        }
        let delay = Duration::from_millis(u64::from(random[round % 8]));
        std::thread::sleep(delay);
        if regular_left(&directory) > 0 {
            mid_drain += 1;
        }
        let victim = round % SERVERS;
        servers[victim].kill();
        servers[victim] = Server::start(&url);
        addresses.write().expect("addresses")[victim] = servers[victim].address;
        wait_until_drained(&directory);
    }
    assert!(
        mid_drain >= KILL_ROUNDS / 2,
        "only {mid_drain} kills before a drain"
    );
    // The last resort after the drain, to every claimer.
    running.wait_for(running.claims.load(Ordering::Relaxed) + 2 * CLAIMERS);
    let seen = running.finish();
    let distinct: HashSet<&Vec<u8>> = seen.regular.iter().collect();
    assert_eq!(distinct.len(), seen.regular.len(), "handed out twice");
    assert!(seen.regular.iter().all(|kp| published_all.contains(kp)));
    let unanswered = published_all.len() - seen.regular.len();
    assert!(
        unanswered <= seen.cut_off,
        "{unanswered} consumed without an answer, only {} requests cut off",
        seen.cut_off
    );
    let stock = directory.stock(ACTOR).expect("stock");
    assert_eq!(stock.len(), 1);
    assert_eq!(stock[0].regular, 0);
    assert_eq!(stock[0].last_resort, LastResort::Used);
    println!(
        "kills: {KILL_ROUNDS} SIGKILLs of one of {SERVERS} servers ({mid_drain} while regular \
         KeyPackages were left), {} KeyPackages, {} handed out \
         once each, {unanswered} consumed without an answer ({} requests cut off), \
         {} last resorts, 0 double hand-outs, stock 0 regular after",
        published_all.len(),
        seen.regular.len(),
        seen.cut_off,
        seen.last_resorts
    );

    // The database restarted while claims run.
    let published: HashSet<Vec<u8>> = publish(&directory, &base, KEY_PACKAGES)
        .into_iter()
        .collect();
    let running = claimers(&addresses, &last_resort, usize::MAX);
    running.wait_for(100);
    cluster.stop();
    std::thread::sleep(Duration::from_secs(2));
    cluster.resume().expect("restart PostgreSQL");
    let during = running.claims.load(Ordering::Relaxed);
    let reconnected =
        Directory::with_backend(Postgres::connect(&url).expect("reconnect"), ActorIsIdentity);
    wait_until_drained(&reconnected);
    running.wait_for(during + 2 * CLAIMERS);
    let seen = running.finish();
    assert!(
        !seen.unavailable.is_empty(),
        "no 503 while the database was down"
    );
    assert!(
        seen.unavailable
            .iter()
            .all(|body| body.contains("unavailable")),
        "{:?}",
        seen.unavailable
    );
    let distinct: HashSet<&Vec<u8>> = seen.regular.iter().collect();
    assert_eq!(distinct.len(), seen.regular.len(), "handed out twice");
    assert!(seen.regular.iter().all(|kp| published.contains(kp)));
    let unanswered = published.len() - seen.regular.len();
    assert!(
        unanswered <= seen.unavailable.len() + seen.cut_off,
        "{unanswered} consumed without an answer, but only {} failed answers",
        seen.unavailable.len() + seen.cut_off
    );
    for server in &servers {
        let (status, _) = http_client::request(server.address, "GET", CLAIM, Some("check/d"), None);
        assert_eq!(status, 200, "every server claims again");
    }
    println!(
        "database restart: {} answers 503 while down ({:?}), {} KeyPackages handed out once \
         each, {unanswered} consumed without an answer, every server claims again",
        seen.unavailable.len(),
        seen.unavailable
            .first()
            .map(|b| b.chars().take(80).collect::<String>()),
        seen.regular.len()
    );
    // `directory`'s pool lost its connections with the restart: its next
    // operation may report that, and the one after reconnects.
    let _ = directory.stock(ACTOR);
    drop(servers);
}

#[test]
fn processes_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let cluster = postgres::shared();
    let url = cluster.create_database();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || Postgres::connect(&url).map(|_| ()))
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread").expect("connect and migrate");
    }
    let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).expect("admin");
    let rows = admin
        .query("SELECT version FROM polymls_directory_schema", &[])
        .expect("schema");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(0), Postgres::SCHEMA_VERSION);

    admin
        .execute("UPDATE polymls_directory_schema SET version = 99", &[])
        .expect("bump");
    match Postgres::connect(&url) {
        Err(DirectoryError::SchemaTooNew {
            found: 99,
            supported,
        }) => {
            assert_eq!(supported, Postgres::SCHEMA_VERSION)
        }
        other => panic!("{other:?}"),
    }
    let bad = Postgres::connect("host=/nonexistent port=1 user=postgres connect_timeout=1");
    assert!(
        matches!(bad, Err(DirectoryError::Unavailable(_))),
        "{bad:?}"
    );
}
