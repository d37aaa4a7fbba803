//! A polyproto home server's KeyPackage directory over HTTP, on an embedded
//! RocksDB:
//!
//! ```sh
//! cargo run --release --features server --example directory_server -- \
//!     --listen 127.0.0.1:8080 --data /tmp/directory --demo-auth
//! ```
//!
//! or on PostgreSQL, where any number of these processes can share one
//! database (built with the `postgres` feature):
//!
//! ```sh
//! cargo run --release --features server,postgres --example directory_server -- \
//!     --listen 127.0.0.1:8080 --postgres postgresql://user@host/db --demo-auth
//! ```
//!
//! Authentication is the embedding server's job; this example has only the
//! demo one (`--demo-auth`: `Authorization: Bearer ACTOR/DEVICE`, anyone as
//! anyone), for trials and tests, and refuses to start without it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use polymls::directory::http::{router, DemoAuth, Limits};
use polymls::directory::{Backend, Directory, Embedded};

/// Where the directory keeps its KeyPackages.
enum Storage {
    Embedded(PathBuf),
    Postgres(String),
}

struct Args {
    listen: SocketAddr,
    storage: Storage,
    demo_auth: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut storage = None;
    let mut demo_auth = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let value = args.next().ok_or("--listen needs an address")?;
                listen = Some(
                    value
                        .parse()
                        .map_err(|e| format!("--listen {value}: {e}"))?,
                );
            }
            "--data" => {
                let dir = args.next().ok_or("--data needs a directory")?;
                storage = Some(Storage::Embedded(PathBuf::from(dir)));
            }
            "--postgres" => {
                let url = args.next().ok_or("--postgres needs a URL")?;
                storage = Some(Storage::Postgres(url));
            }
            "--demo-auth" => demo_auth = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen ADDR is required")?,
        storage: storage.ok_or("--data DIR or --postgres URL is required")?,
        demo_auth,
    })
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!(
            "{e}\nusage: directory_server --listen ADDR (--data DIR | --postgres URL) --demo-auth"
        );
        std::process::exit(2);
    });
    if !args.demo_auth {
        eprintln!(
            "no authentication configured: embed polymls::directory::http::router with your own \
             Authenticator, or pass --demo-auth for a trial (anyone can act as anyone)"
        );
        std::process::exit(2);
    }
    let auth = Arc::new(DemoAuth::default());
    let backend: Box<dyn Backend> = match args.storage {
        Storage::Embedded(dir) => Box::new(Embedded::open(&dir).unwrap_or_else(|e| {
            eprintln!("opening {}: {e}", dir.display());
            std::process::exit(1);
        })),
        Storage::Postgres(url) => on_postgres(&url),
    };
    let directory = Directory::with_backend(backend, Arc::clone(&auth));
    let app = router(Arc::new(directory), auth, Limits::default());
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .unwrap_or_else(|e| {
                eprintln!("binding {}: {e}", args.listen);
                std::process::exit(1);
            });
        println!(
            "directory listening on http://{}/.p2/mls/v1/",
            listener.local_addr().expect("address")
        );
        axum::serve(listener, app).await.expect("serve");
    });
}

#[cfg(feature = "postgres")]
fn on_postgres(url: &str) -> Box<dyn Backend> {
    Box::new(
        polymls::directory::Postgres::connect(url).unwrap_or_else(|e| {
            eprintln!("connecting to PostgreSQL: {e}");
            std::process::exit(1);
        }),
    )
}

#[cfg(not(feature = "postgres"))]
fn on_postgres(_: &str) -> Box<dyn Backend> {
    eprintln!("--postgres needs a build with the `postgres` feature");
    std::process::exit(2);
}
