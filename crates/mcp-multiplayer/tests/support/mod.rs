//! What the process-level tests share: the one launcher of the real binary (its listening line
//! is read here and nowhere else), by default on a data directory with dev authentication and
//! no rate limit; waiting on the server's count of waiting syncs; REST calls to it.

#![allow(
    dead_code,
    reason = "each test binary compiles this module and uses a part of it"
)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The start of the line `serve` prints on stdout once it listens (`main.rs`):
/// `mcp-multiplayer listening on http://ADDRESS (MCP endpoint http://ADDRESS/mcp)`.
const LISTENING: &str = "mcp-multiplayer listening on ";

/// The base URL (`http://ADDRESS`) in `serve`'s listening line, and the one place in the Rust
/// tests that knows that line's format.
fn listening_base(line: &str) -> Option<&str> {
    let rest = line.strip_prefix(LISTENING)?;
    let (base, endpoint) = rest.split_once(" (MCP endpoint ")?;
    let mcp = endpoint.trim_end().strip_suffix(')')?;
    (base.starts_with("http://") && mcp == format!("{base}/mcp")).then_some(base)
}

/// `mcp-multiplayer serve`, to which a test adds its flags before [`Server::launch`].
pub fn serve_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-multiplayer"));
    command.arg("serve");
    command
}

pub struct Server {
    child: Child,
    /// `http://ADDRESS`, without a trailing slash.
    pub base: String,
}

impl Server {
    /// Starts the server on `data_dir` (dev authentication, no rate limit, loopback port 0),
    /// with `flags` added to `serve`'s.
    pub fn start(data_dir: &Path, flags: &[&str]) -> Server {
        let mut command = serve_command();
        command
            .args([
                "--auth",
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--rate-limit",
                "0",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(flags)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit());
        Server::launch(command)
    }

    /// Spawns `command` (from [`serve_command`]) and waits for its listening line.
    pub fn launch(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut line)
            .expect("the server prints its address");
        let Some(base) = listening_base(&line) else {
            let _ = child.kill();
            panic!("not a listening line: {line:?}");
        };
        Server {
            base: base.to_owned(),
            child,
        }
    }

    /// `HOST:PORT`, for raw TCP.
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// How many syncs are waiting now, by `/healthz`.
    pub fn waiting_syncs(&self) -> u64 {
        let health = call(&agent(), "GET", &format!("{}/healthz", self.base), "", None)
            .expect("/healthz answers");
        health["waiting_syncs"]
            .as_u64()
            .unwrap_or_else(|| panic!("no waiting_syncs in {health}"))
    }

    /// Returns once `/healthz` counts `expected` waiting syncs: then each of them has read the
    /// channel and subscribed to it, so a post made now wakes it (a sleep would only make that
    /// likely, and a post that won the race would be answered at once, proving nothing).
    #[track_caller]
    pub fn wait_for_waiting_syncs(&self, expected: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let waiting = self.waiting_syncs();
            if waiting == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{waiting} waiting syncs after 10 s, not {expected}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Kills the server and returns what it wrote to stderr, when that was piped.
    pub fn stop_and_read_log(mut self) -> String {
        let _ = self.child.kill();
        let mut logged = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut logged);
        }
        let _ = self.child.wait();
        logged
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_listening_line_is_read_strictly() {
    assert_eq!(
        listening_base(
            "mcp-multiplayer listening on http://127.0.0.1:8100 (MCP endpoint http://127.0.0.1:8100/mcp)\n"
        ),
        Some("http://127.0.0.1:8100")
    );
    assert_eq!(
        listening_base(
            "mcp-multiplayer listening on http://[::1]:80 (MCP endpoint http://[::1]:80/mcp)"
        ),
        Some("http://[::1]:80")
    );
    assert_eq!(listening_base("listening on http://127.0.0.1:8100"), None);
    assert_eq!(
        listening_base("mcp-multiplayer listening on http://a:1 (MCP endpoint http://b:1/mcp)"),
        None
    );
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

pub fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let auth = format!("Bearer {token}");
    let response = match body {
        Some(body) => agent
            .post(url)
            .header("Authorization", &auth)
            .send_json(body),
        None if method == "GET" => agent.get(url).header("Authorization", &auth).call(),
        None => agent.post(url).header("Authorization", &auth).send_empty(),
    };
    let mut response = response.map_err(|error| error.to_string())?;
    let status = response.status();
    let value: Value = response
        .body_mut()
        .read_json()
        .map_err(|error| error.to_string())?;
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!("{status}: {value}"))
    }
}

/// Creates a channel over REST as `token`; returns the answer and the channel id.
pub fn create_channel(server: &Server, token: &str, spec: Value) -> (Value, String) {
    let created = call(
        &agent(),
        "POST",
        &format!("{}/api/channels", server.base),
        token,
        Some(spec),
    )
    .expect("create_channel");
    let channel = created["channel"]["channel_id"]
        .as_str()
        .expect("a channel id")
        .to_owned();
    (created, channel)
}
