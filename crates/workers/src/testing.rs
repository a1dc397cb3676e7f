//! A test binary as its own worker. The server runs workers from its own executable; a test has
//! no such binary, so it re-runs itself with an environment variable that turns one test
//! function into a worker:
//!
//! ```ignore
//! #[test]
//! fn bot_worker() {
//!     workers::testing::serve_if_worker();
//! }
//!
//! let command = workers::testing::worker_command("bot_worker");
//! ```
//!
//! The same variable can ask for a *probe* instead: confine, try one forbidden thing, and exit
//! 0 if it was allowed. That is how the tests check each part of the confinement, with the same
//! attempt made unconfined as the control.

use std::ffi::OsString;

use crate::confine::{Confinement, confine};
use crate::process::WorkerCommand;

/// The variable that makes a test binary serve as a worker (`1`) or run a probe
/// (`probe:<name>` confined, `control:<name>` unconfined).
pub const WORKER_VARIABLE: &str = "MCP_MULTIPLAYER_TEST_WORKER";

/// What a probe tries. Each must succeed unconfined on any Linux machine.
pub const PROBES: [&str; 6] = ["open", "create", "socket", "spawn", "signal", "memory"];

/// The command that runs the current test binary as a worker, through the test named
/// `test_name` (its full path, as `cargo test` prints it), which must call
/// [`serve_if_worker`].
pub fn worker_command(test_name: &str) -> WorkerCommand {
    worker_command_with(test_name, "1")
}

/// Like [`worker_command`], with another value of [`WORKER_VARIABLE`].
pub fn worker_command_with(test_name: &str, value: &str) -> WorkerCommand {
    let program = std::env::current_exe().expect("the test binary knows its path");
    WorkerCommand {
        program,
        args: [
            test_name,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ]
        .into_iter()
        .map(OsString::from)
        .collect(),
        env: vec![
            (OsString::from(WORKER_VARIABLE), OsString::from(value)),
            // As the server does for its workers: a jemalloc-linked worker stays one thread.
            (
                OsString::from("_RJEM_MALLOC_CONF"),
                OsString::from("background_thread:false,retain:false"),
            ),
        ],
    }
}

/// Serves as a worker (or runs a probe) and exits the process if this test binary was started
/// as one; returns at once otherwise.
pub fn serve_if_worker() {
    let Some(value) = std::env::var_os(WORKER_VARIABLE) else {
        return;
    };
    let value = value.to_string_lossy().into_owned();
    // Exit without returning to the test harness, which would print its summary.
    let code = if let Some(probe) = value.strip_prefix("probe:") {
        if let Err(error) = confine(&Confinement::default()) {
            eprintln!("cannot confine: {error}");
            std::process::exit(70);
        }
        attempt(probe)
    } else if let Some(probe) = value.strip_prefix("control:") {
        attempt(probe)
    } else if value == "nice" {
        if confine(&Confinement::default()).is_err() {
            std::process::exit(70);
        }
        rustix::process::getpriority_process(None).map_or(255, |nice| nice as u8)
    } else {
        crate::child::serve(&Confinement::default())
    };
    std::process::exit(i32::from(code));
}

/// Tries one thing a worker must not do; 0 if it worked, 1 if it failed without killing us.
fn attempt(probe: &str) -> u8 {
    let worked = match probe {
        "open" => std::fs::File::open("/proc/self/status").is_ok(),
        "create" => tempfile_path().is_some_and(|path| {
            let created = std::fs::File::create(&path).is_ok();
            if created {
                let _ = std::fs::remove_file(&path);
            }
            created
        }),
        "socket" => std::net::UdpSocket::bind("127.0.0.1:0").is_ok(),
        "spawn" => std::process::Command::new("/bin/sh")
            .args(["-c", "exit 0"])
            .status()
            .is_ok_and(|status| status.success()),
        "signal" => {
            // Signal 0 only checks that the parent exists; a worker may not even ask.
            let parent = rustix::process::getppid();
            parent.is_some_and(|parent| rustix::process::test_kill_process(parent).is_ok())
        }
        "memory" => {
            // Above the default address-space cap; without the cap, only address space is
            // reserved, nothing is touched.
            let mut reserved: Vec<u8> = Vec::new();
            reserved.try_reserve_exact(4 << 30).is_ok()
        }
        other => {
            eprintln!("unknown probe {other:?}");
            return 2;
        }
    };
    if worked { 0 } else { 1 }
}

fn tempfile_path() -> Option<std::path::PathBuf> {
    Some(std::env::temp_dir().join(format!("worker-probe-{}", std::process::id())))
}
