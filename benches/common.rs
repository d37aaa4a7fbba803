//! What the benchmark groups share: the providers compared, and criterion's
//! settings (short, as one run covers every group on 2 noisy cores).
#![allow(dead_code)]

use std::time::Duration;

use criterion::Criterion;
use openmls_traits::crypto::OpenMlsCrypto;

/// The crypto providers compared, by name, called through the same trait.
pub fn providers() -> Vec<(&'static str, Box<dyn OpenMlsCrypto>)> {
    vec![
        ("polymls", Box::new(polymls::Crypto::default())),
        (
            "openmls_rust_crypto",
            Box::new(openmls_rust_crypto::RustCrypto::default()),
        ),
        (
            "openmls_libcrux_crypto",
            Box::new(openmls_libcrux_crypto::CryptoProvider::new().expect("libcrux provider")),
        ),
    ]
}

/// Criterion tuned for many short benchmarks in one run.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
        .noise_threshold(0.05)
}

// Shared with the tests; not every benchmark group uses it.
#[path = "../tests/common/sqlite_json.rs"]
mod sqlite_json;
#[allow(unused_imports)]
pub use sqlite_json::Json;

/// Whether this run measures the goals' ratios in interleaved rounds
/// (`POLYMLS_PAIRED=1`, as `scripts/run-benchmarks` sets): off for ad-hoc
/// runs, which then take only the benchmarks their filter selects.
pub fn paired_enabled() -> bool {
    std::env::var_os("POLYMLS_PAIRED").is_some()
}

/// `a`'s time over `b`'s, measured in alternating batches a few hundred
/// microseconds apart: the median of the per-round ratios.
///
/// On a machine shared with other tenants, two criterion medians taken
/// seconds apart can differ by 30% for identical work; interference that
/// lasts longer than a round slows both sides of it alike and cancels in
/// the ratio. The order alternates every round, so neither side always
/// runs first.
pub fn paired_ratio(mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, usize) {
    use std::time::Instant;
    let time = |f: &mut dyn FnMut(), n: u64| {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed().as_secs_f64()
    };
    // A batch of about 200 µs of `a`, and a warm-up of both.
    let mut batch = 1;
    while time(&mut a, batch) < 200e-6 {
        batch *= 2;
    }
    time(&mut b, batch);
    let mut ratios = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) || ratios.len() < 101 {
        let round = ratios.len();
        let (ta, tb) = if round % 2 == 0 {
            let ta = time(&mut a, batch);
            (ta, time(&mut b, batch))
        } else {
            let tb = time(&mut b, batch);
            (time(&mut a, batch), tb)
        };
        ratios.push(ta / tb);
    }
    ratios.sort_by(f64::total_cmp);
    (ratios[ratios.len() / 2], ratios.len())
}

/// Appends `line` to `file` (a JSON-lines file) in criterion's output
/// directory, where `scripts/bench-report.py` and the reports read them.
pub fn append_record(file: &str, line: &serde_json::Value) {
    use std::io::Write;
    let dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into()),
    )
    .join("criterion");
    std::fs::create_dir_all(&dir).expect("criterion directory");
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    writeln!(out, "{line}").unwrap_or_else(|e| panic!("{file}: {e}"));
}

/// Appends one paired ratio to `ratios.jsonl` (see [`append_record`]).
pub fn record_ratio(
    group: &str,
    operation: &str,
    numerator: &str,
    denominator: &str,
    measured: (f64, usize),
) {
    let (ratio, rounds) = measured;
    let line = serde_json::json!({
        "group": group,
        "operation": operation,
        "numerator": numerator,
        "denominator": denominator,
        "ratio": ratio,
        "rounds": rounds,
    });
    append_record("ratios.jsonl", &line);
    println!(
        "paired {group}/{operation}: {numerator}/{denominator} = {ratio:.3} over {rounds} rounds"
    );
}
