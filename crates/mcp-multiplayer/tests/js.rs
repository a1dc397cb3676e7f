//! Runs the JavaScript suite in `tests/js` (the official TypeScript MCP SDK's OAuth flow, the
//! consent page in headless Chromium, and the MCP conformance suite's authorization-server
//! scenarios) against this binary, through `tests/js/run.sh`.
//!
//! The script installs what it needs on first use (`npm ci` in `tests/js`, Debian's `chromium`
//! through apt-get), so the suite only runs when asked: with `CI` set, or `MCP_JS_TESTS=1`.
//! Otherwise the test prints `SKIPPED js: <reason>` and passes.
//!
//! The script's output streams to the terminal as it runs and, on failure, its tail is repeated
//! in the panic message. Knob: `MCP_JS_TEST_ARGS` adds `node --test` arguments
//! (whitespace-separated, e.g. `--test-name-pattern=deny`).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

/// Progress and skip notices go straight to stderr: the test harness captures `eprintln!`, and
/// would hide them unless `--nocapture` is given.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-multiplayer");
/// How much of the script's output a failure repeats.
const TAIL_LINES: usize = 80;

#[test]
fn javascript_suite() {
    if let Some(reason) = why_skipped() {
        return skip(&reason);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/mcp-multiplayer sits two levels below the workspace root")
        .to_path_buf();
    let script = workspace.join("tests/js/run.sh");
    assert!(script.exists(), "{} is missing", script.display());

    let mut args = vec![script.into_os_string()];
    if let Ok(extra) = std::env::var("MCP_JS_TEST_ARGS") {
        args.extend(extra.split_whitespace().map(Into::into));
    }
    say!(
        "js: running tests/js/run.sh against {BINARY} (cwd {})",
        workspace.display()
    );
    let started = Instant::now();
    let mut child = Command::new("bash")
        .args(&args)
        .current_dir(&workspace)
        .env("MCP_MULTIPLAYER_BIN", BINARY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("could not run bash tests/js/run.sh: {error}"));

    // Both streams are echoed as they come and kept, so a failure can repeat them.
    let transcript = Arc::new(Mutex::new(Vec::<String>::new()));
    let pumps = [
        pump(child.stdout.take().expect("stdout is piped"), &transcript),
        pump(child.stderr.take().expect("stderr is piped"), &transcript),
    ];
    let status = child
        .wait()
        .unwrap_or_else(|error| panic!("waiting for tests/js/run.sh failed: {error}"));
    for handle in pumps {
        let _ = handle.join();
    }
    say!(
        "js: run.sh finished in {:.1} s with {status}",
        started.elapsed().as_secs_f64()
    );
    if !status.success() {
        let lines = transcript
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
        panic!("the JavaScript suite failed ({status}); the end of its output:\n{tail}");
    }
}

/// Why the suite does not run here, if it does not.
fn why_skipped() -> Option<String> {
    if std::env::var_os("CI").is_some() {
        return None;
    }
    match std::env::var("MCP_JS_TESTS") {
        Ok(value) if value == "1" => None,
        _ => Some(
            "the JavaScript suite installs npm packages and Chromium, so it runs only in CI or \
             with MCP_JS_TESTS=1 (or run `bash tests/js/run.sh`)"
                .to_owned(),
        ),
    }
}

fn skip(reason: &str) {
    say!("");
    say!("==================================================================");
    say!("SKIPPED js: {reason}");
    say!("==================================================================");
    say!("");
}

/// Copies `stream` line by line to stderr and into `transcript`.
fn pump(
    stream: impl Read + Send + 'static,
    transcript: &Arc<Mutex<Vec<String>>>,
) -> thread::JoinHandle<()> {
    let transcript = Arc::clone(transcript);
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            say!("{line}");
            transcript
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .push(line);
        }
    })
}
