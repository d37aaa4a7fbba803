//! A throwaway PostgreSQL cluster for the tests and benchmarks: `initdb`
//! into a temporary directory, `postgres` on a Unix socket there (no TCP
//! port), as the `postgres` user when this runs as root (PostgreSQL
//! refuses root), stopped when the test process exits or dies.
//!
//! There is no skip: a test that asks for a cluster fails when none can be
//! started (Debian's `postgresql` package missing: `scripts/install-deps`
//! installs it).

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A cluster of its own, with its data directory.
pub struct Cluster {
    bin: PathBuf,
    root: PathBuf,
    owner: Option<(u32, u32)>,
    pid: AtomicU32,
    databases: AtomicUsize,
}

/// PostgreSQL's binaries: Debian keeps them off `PATH`, one directory per
/// major version (the newest wins); `POLYMLS_PG_BIN` overrides.
fn binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("POLYMLS_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e} (install Debian's postgresql)"))?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no PostgreSQL server under /usr/lib/postgresql".into())
}

/// The `postgres` user's uid and gid, when this runs as root.
fn owner() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres"))
                .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
                .flatten()
        })
        .map(Some)
        .ok_or_else(|| "running as root and there is no postgres user".into())
}

impl Cluster {
    /// `initdb` and start a new cluster.
    pub fn start() -> Result<Cluster, String> {
        let bin = binaries()?;
        let owner = owner()?;
        let root = std::env::temp_dir().join(format!(
            "polymls-pg-{}-{}",
            std::process::id(),
            NEXT_CLUSTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&root, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        let cluster = Cluster {
            bin,
            root,
            owner,
            pid: AtomicU32::new(0),
            databases: AtomicUsize::new(0),
        };
        let status = cluster
            .command("initdb")
            .args(["-D", "data", "-U", "postgres", "-A", "trust", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(cluster.log()?)
            .status()
            .map_err(|e| format!("initdb: {e}"))?;
        if !status.success() {
            return Err(format!("initdb failed: {}", cluster.log_text()));
        }
        cluster.resume()?;
        Ok(cluster)
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.current_dir(&self.root);
        if let Some((uid, gid)) = self.owner {
            command.uid(uid).gid(gid);
        }
        command
    }

    fn log(&self) -> Result<std::fs::File, String> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("log"))
            .map_err(|e| e.to_string())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.root.join("log")).unwrap_or_default()
    }

    /// The connection string of `database` (over the Unix socket).
    pub fn url(&self, database: &str) -> String {
        format!(
            "host={} port=5432 user=postgres dbname={database} connect_timeout=5",
            self.root.display()
        )
    }

    /// A new, empty database; its connection string.
    pub fn create_database(&self) -> String {
        let name = format!("test{}", self.databases.fetch_add(1, Ordering::Relaxed));
        let mut admin =
            postgres::Client::connect(&self.url("postgres"), postgres::NoTls).expect("admin");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        self.url(&name)
    }

    /// Starts the server on the data directory (after [`Cluster::stop`]).
    pub fn resume(&self) -> Result<(), String> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let mut command = self.command("postgres");
        command
            .args(["-D", "data", "-k"])
            .arg(&self.root)
            .args(["-c", "listen_addresses=", "-c", "max_connections=300"])
            .args(["-c", "unix_socket_permissions=0777"])
            .stdout(Stdio::null())
            .stderr(self.log()?);
        // SAFETY: prctl is async-signal-safe; PR_SET_PDEATHSIG after the
        // uid change (which clears it) stops the server with the thread
        // that waits for it, which lives as long as this process.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        std::thread::spawn(move || match command.spawn() {
            Ok(mut child) => {
                let _ = sender.send(Ok(child.id()));
                let _ = child.wait();
            }
            Err(e) => {
                let _ = sender.send(Err(format!("postgres: {e}")));
            }
        });
        let pid = receiver.recv().map_err(|e| e.to_string())??;
        self.pid.store(pid, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match postgres::Client::connect(&self.url("postgres"), postgres::NoTls) {
                Ok(_) => return Ok(()),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => return Err(format!("postgres did not start: {e}\n{}", self.log_text())),
            }
        }
    }

    /// Stops the server (fast shutdown: clients are disconnected) and
    /// waits until it has exited.
    pub fn stop(&self) {
        let pid = self.pid.swap(0, Ordering::SeqCst);
        if pid == 0 {
            return;
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
        let pid_file = self.root.join("data/postmaster.pid");
        let deadline = Instant::now() + Duration::from_secs(30);
        while pid_file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn data(&self) -> &Path {
        &self.root
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

static NEXT_CLUSTER: AtomicU32 = AtomicU32::new(0);
static SHARED: OnceLock<Cluster> = OnceLock::new();

extern "C" fn stop_shared() {
    if let Some(cluster) = SHARED.get() {
        cluster.stop();
        let _ = std::fs::remove_dir_all(cluster.data());
    }
}

/// The cluster this process's tests share (each test takes a database of
/// its own), started on first use and stopped at exit.
pub fn shared() -> &'static Cluster {
    SHARED.get_or_init(|| {
        let cluster = Cluster::start().unwrap_or_else(|e| panic!("PostgreSQL: {e}"));
        // SAFETY: registering a plain function.
        unsafe { libc::atexit(stop_shared) };
        cluster
    })
}
