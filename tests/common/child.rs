//! The child side of the crash tests: this test binary run again for one
//! test, told by an environment variable to play the child, and killed with
//! SIGKILL at a random point.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The child's stdout, line by line.
pub type Output = Lines<BufReader<ChildStdout>>;

/// Runs `test` of this binary again with `var` set to `dir`, and waits for
/// its first line containing `ready` (libtest prints "test <name> ... "
/// before the test's own output, so it is matched anywhere in a line).
/// Returns the process, that line, and the rest of its output.
pub fn spawn(test: &str, var: &str, dir: &Path, ready: &str) -> (Child, String, Output) {
    let mut process = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(var, dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut lines = BufReader::new(process.stdout.take().expect("stdout")).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains(ready))
        .expect("child ready");
    (process, line, lines)
}

/// Sleeps a random 0 to 255 `units`, then kills `process` with SIGKILL,
/// which must still be running then, and reaps it.
pub fn kill_at_random(process: &mut Child, rand: &polymls::Rand, unit: Duration) {
    let mut delay = [0u8; 1];
    rand.fill(&mut delay);
    std::thread::sleep(unit * u32::from(delay[0]));
    assert!(
        process.try_wait().expect("poll").is_none(),
        "the child must still be running when killed"
    );
    process.kill().expect("SIGKILL");
    process.wait().expect("reap");
}
