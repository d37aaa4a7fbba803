//! A polyproto home server's MLS half over HTTP: the KeyPackage directory
//! and the Delivery Service, each on an embedded RocksDB under one data
//! directory:
//!
//! ```sh
//! cargo run --release --features server,delivery --example home_server -- \
//!     --listen 127.0.0.1:8080 --data /tmp/home --demo-auth
//! ```
//!
//! Authentication is the embedding server's job; this example has only the
//! demo one (`--demo-auth`: `Authorization: Bearer ACTOR/DEVICE`, anyone as
//! anyone; a leaf's device is the one that first uploaded a KeyPackage with
//! its signature key, remembered in the data directory), for trials and
//! tests, and refuses to start without it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use polymls::delivery::{self, DeliveryService};
use polymls::directory::http::DemoAuth;
use polymls::directory::{self, Directory};

struct Args {
    listen: SocketAddr,
    data: PathBuf,
    demo_auth: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut data = None;
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
                data = Some(PathBuf::from(
                    args.next().ok_or("--data needs a directory")?,
                ))
            }
            "--demo-auth" => demo_auth = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen ADDR is required")?,
        data: data.ok_or("--data DIR is required")?,
        demo_auth,
    })
}

fn fail(what: &str, error: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {error}");
    std::process::exit(1);
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("{e}\nusage: home_server --listen ADDR --data DIR --demo-auth");
        std::process::exit(2);
    });
    if !args.demo_auth {
        eprintln!(
            "no authentication configured: embed polymls's directory and delivery routers with \
             your own Authenticator and Identities, or pass --demo-auth for a trial (anyone can \
             act as anyone)"
        );
        std::process::exit(2);
    }
    std::fs::create_dir_all(&args.data).unwrap_or_else(|e| fail("creating --data", e));
    let auth = Arc::new(
        DemoAuth::remembering(args.data.join("demo-keys"))
            .unwrap_or_else(|e| fail("opening the demo's keys", e)),
    );
    let directory = Directory::open(args.data.join("directory"), Arc::clone(&auth))
        .unwrap_or_else(|e| fail("opening the directory", e));
    let delivery = DeliveryService::open(args.data.join("delivery"), Arc::clone(&auth))
        .unwrap_or_else(|e| fail("opening the Delivery Service", e));
    let delivery = Arc::new(delivery);
    // Inbox events older than 30 days go, read or not.
    {
        let delivery = Arc::clone(&delivery);
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            if let Err(e) = delivery.purge_events(std::time::Duration::from_secs(30 * 24 * 3600)) {
                eprintln!("purging inbox events: {e}");
            }
        });
    }
    let app = directory::http::router(
        Arc::new(directory),
        auth.clone(),
        directory::http::Limits::default(),
    )
    .merge(delivery::http::router(
        delivery,
        auth,
        delivery::http::Limits::default(),
    ));
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| fail("tokio runtime", e));
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .unwrap_or_else(|e| fail(&format!("binding {}", args.listen), e));
        let address = listener
            .local_addr()
            .unwrap_or_else(|e| fail("the listening address", e));
        println!("home server listening on http://{address}/.p2/mls/v1/");
        axum::serve(listener, app)
            .await
            .unwrap_or_else(|e| fail("serving", e));
    });
}
