//! The server under test when the bench starts its own: `mcp-multiplayer serve` as a child on a
//! free loopback port with a fresh data directory, its address learnt from its stdout, its log
//! relayed to stderr, and the child killed when the bench ends (also on error, by drop).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::BenchError;

/// How long the server may take to print its listening line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Log lines relayed to stderr before the rest are only counted.
const RELAYED_LOG_LINES: usize = 40;

const LISTENING_PREFIX: &str = "mcp-multiplayer listening on http://";

/// The address in `mcp-multiplayer listening on http://127.0.0.1:PORT (MCP endpoint …)`.
pub fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix(LISTENING_PREFIX)?;
    rest.split(|c: char| c.is_whitespace() || c == '/')
        .next()?
        .parse()
        .ok()
}

/// The flags naming a server's database: its own SQLite file in `data`, or `database_url`.
fn database_args(data: &std::path::Path, database_url: Option<&str>) -> Vec<std::ffi::OsString> {
    match database_url {
        Some(url) => vec!["--database-url".into(), url.into()],
        None => vec!["--data-dir".into(), data.as_os_str().to_owned()],
    }
}

/// A running child server. Field order matters: the child is killed before its data is removed.
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub exe: PathBuf,
    log_lines: Arc<AtomicUsize>,
    data: TempDir,
    /// `--database-url`, when not a SQLite file in `data`.
    database_url: Option<String>,
}

impl ServerProcess {
    /// Starts `<this executable> serve` on 127.0.0.1:0 with the rate limit and the waiting-sync
    /// cap off, and waits for its listening line.
    pub async fn start(auth: ServerAuth) -> Result<Self, BenchError> {
        Self::start_on(auth, None).await
    }

    /// As [`ServerProcess::start`], on the database `database_url` (PostgreSQL: several
    /// instances on one database) instead of a SQLite file of its own.
    pub async fn start_on(
        auth: ServerAuth,
        database_url: Option<&str>,
    ) -> Result<Self, BenchError> {
        let exe = std::env::current_exe()
            .map_err(|error| BenchError::Server(format!("cannot find this executable: {error}")))?;
        let data = tempfile::Builder::new()
            .prefix("mcp-multiplayer-bench-")
            .tempdir()
            .map_err(|error| {
                BenchError::Server(format!("cannot create a data directory: {error}"))
            })?;
        let mut command = Command::new(&exe);
        command
            .arg("serve")
            .args(["--auth", auth.flag(), "--listen", "127.0.0.1:0"])
            .args(database_args(data.path(), database_url))
            .args(["--rate-limit", "0", "--max-waiting-syncs", "0"])
            .args(["--log-format", "text"])
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Settings of the caller's own server must not leak in (e.g. MCP_DATABASE_URL would
        // point the bench at a real database).
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MCP_") {
                command.env_remove(name);
            }
        }
        let mut child = command.spawn().map_err(|error| {
            BenchError::Server(format!("cannot start {}: {error}", exe.display()))
        })?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Server("the server exited at once".into()))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(BenchError::Server(
                "the server's output is not piped".into(),
            ));
        };

        let log_lines = Arc::new(AtomicUsize::new(0));
        tokio::spawn(relay_log(stderr, log_lines.clone()));

        let mut stdout = BufReader::new(stdout).lines();
        let listening = tokio::time::timeout(STARTUP_TIMEOUT, async {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Some(addr) = parse_listening_line(&line) {
                    return Some(addr);
                }
            }
            None
        })
        .await;
        let addr = match listening {
            Ok(Some(addr)) => addr,
            Ok(None) => {
                let status = child.wait().await.map(|status| status.to_string());
                return Err(BenchError::Server(format!(
                    "the server exited before listening ({}); see its log above",
                    status.unwrap_or_else(|error| error.to_string())
                )));
            }
            Err(_) => {
                return Err(BenchError::Server(format!(
                    "no listening line within {STARTUP_TIMEOUT:?}"
                )));
            }
        };
        // Keep reading, so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });

        Ok(Self {
            child,
            pid,
            addr,
            exe,
            log_lines,
            data,
            database_url: database_url.map(str::to_owned),
        })
    }

    /// Issues `count` personal tokens with `token create` on this server's database. They are
    /// checked exactly as OAuth access tokens are (hash, memory of recent checks, store).
    pub async fn personal_tokens(&self, count: usize) -> Result<Vec<String>, BenchError> {
        let mut tokens = Vec::with_capacity(count);
        for i in 0..count {
            let output = Command::new(&self.exe)
                .args(["token", "create", "--name", &format!("bench-{i}")])
                .args(database_args(
                    self.data.path(),
                    self.database_url.as_deref(),
                ))
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(|error| BenchError::Setup(format!("token create: {error}")))?;
            if !output.status.success() {
                return Err(BenchError::Setup(format!(
                    "token create failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            tokens.push(String::from_utf8_lossy(&output.stdout).trim().to_owned());
        }
        Ok(tokens)
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.data.path()
    }

    /// Log lines the server wrote to stderr so far (at `RUST_LOG=warn`: warnings and errors).
    pub fn log_lines(&self) -> usize {
        self.log_lines.load(Ordering::Relaxed)
    }

    /// Kills the server and waits for it; its data directory is removed afterwards.
    pub async fn stop(mut self) {
        if let Err(error) = self.child.start_kill() {
            eprintln!(
                "warning: could not kill the server (pid {}): {error}",
                self.pid
            );
        }
        let _ = self.child.wait().await;
    }
}

/// Copies the server's log to stderr with a prefix, up to a limit, and counts every line.
async fn relay_log(stderr: tokio::process::ChildStderr, count: Arc<AtomicUsize>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let seen = count.fetch_add(1, Ordering::Relaxed) + 1;
        if seen <= RELAYED_LOG_LINES {
            eprintln!("  [server] {line}");
        } else if seen == RELAYED_LOG_LINES + 1 {
            eprintln!("  [server] … (further log lines are only counted)");
        }
    }
}

/// How the started server identifies callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerAuth {
    /// Every token is its own principal: the bench makes up tokens freely.
    Dev,
    /// Tokens must be issued by the server (`token create`).
    OAuth,
}

impl ServerAuth {
    fn flag(self) -> &'static str {
        match self {
            ServerAuth::Dev => "dev",
            ServerAuth::OAuth => "oauth",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address() {
        assert_eq!(
            parse_listening_line(
                "mcp-multiplayer listening on http://127.0.0.1:43817 (MCP endpoint http://127.0.0.1:43817/mcp)"
            ),
            Some("127.0.0.1:43817".parse().expect("address"))
        );
        assert_eq!(
            parse_listening_line("mcp-multiplayer listening on http://[::1]:8100\n"),
            Some("[::1]:8100".parse().expect("address"))
        );
        assert_eq!(
            parse_listening_line("mcp-multiplayer listening on http://127.0.0.1:8100/mcp"),
            Some("127.0.0.1:8100".parse().expect("address"))
        );
        assert_eq!(parse_listening_line("listening on 127.0.0.1:8100"), None);
        assert_eq!(
            parse_listening_line("mcp-multiplayer listening on http://localhost:8100"),
            None
        );
    }
}
