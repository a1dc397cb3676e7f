//! What the process-level tests share: the real binary started on a data directory (dev
//! authentication, no rate limit), killed with SIGKILL, and REST calls to it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// Starts the server on `data_dir`, with `flags` added to `serve`'s.
    pub fn start(data_dir: &Path, flags: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-multiplayer"))
            .args([
                "serve",
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
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the server starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server prints its address");
        assert!(
            line.starts_with("mcp-multiplayer listening on http://"),
            "unexpected first line: {line:?}"
        );
        let address = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .expect("a listening line")
            .to_owned();
        Server {
            child,
            base: address,
        }
    }

    #[allow(
        dead_code,
        reason = "each test binary compiles this module; not all of them kill"
    )]
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
