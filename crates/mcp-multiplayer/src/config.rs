//! Command-line configuration: every flag has an environment-variable twin and a documented
//! default. [`ServeArgs::validate`] checks it without I/O and splits it into per-crate settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "mcp-multiplayer",
    version,
    about = "A remote MCP server where AI assistant sessions meet."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: MCP endpoint at /mcp, REST API at /api, health at /healthz.
    Serve(ServeArgs),
    /// Measure a server's throughput, latency, fan-out and memory (starts one unless --url).
    Bench(bench::BenchArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Development only: every distinct bearer token is its own person. Loopback only.
    Dev,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MCP_LISTEN", default_value = "127.0.0.1:8100")]
    pub listen: SocketAddr,

    /// Directory for the embedded database; created if missing.
    #[arg(long, env = "MCP_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Database URL. Default: a SQLite file in --data-dir.
    #[arg(long, env = "MCP_DATABASE_URL")]
    pub database_url: Option<String>,

    /// The URL clients use to reach this server (e.g. https://mcp.example.com behind a TLS
    /// terminator). Default: http://<listen>.
    #[arg(long, env = "MCP_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Extra Host names to accept, comma-separated (loopback names and the public URL's host
    /// are always accepted). `*` accepts any Host.
    #[arg(long, env = "MCP_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Extra browser Origins to accept, comma-separated (loopback origins and the public URL's
    /// origin are always accepted). `*` accepts any Origin.
    #[arg(long, env = "MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// How callers are identified.
    #[arg(long, env = "MCP_AUTH", value_enum, default_value = "dev")]
    pub auth: AuthMode,

    /// Log format.
    #[arg(long, env = "MCP_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Requests per second per principal (bursts of twice that); 0 turns the limit off.
    #[arg(long, env = "MCP_RATE_LIMIT", default_value_t = 20)]
    pub rate_limit: u32,

    /// Syncs one principal may have waiting at once; 0 means no cap.
    #[arg(long, env = "MCP_MAX_WAITING_SYNCS", default_value_t = 32)]
    pub max_waiting_syncs: usize,

    /// Seconds to let requests finish after SIGINT/SIGTERM before exiting anyway.
    #[arg(long, env = "MCP_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
}

/// Validated configuration, split per crate.
#[derive(Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: Option<PathBuf>,
    pub database_url: String,
    pub public_url: String,
    pub host_policy: server::HostPolicy,
    pub authenticator: auth::Authenticator,
    pub service: service::ServiceSettings,
    pub shutdown_grace_secs: u64,
}

const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl ServeArgs {
    pub fn validate(&self) -> anyhow::Result<Settings> {
        let authenticator = match self.auth {
            AuthMode::Dev => {
                if !self.listen.ip().is_loopback() {
                    bail!(
                        "--auth dev trusts anyone who can reach the port, so it only listens on loopback \
                         (e.g. --listen 127.0.0.1:8100), not on {}",
                        self.listen
                    );
                }
                auth::Authenticator::Dev
            }
        };
        let public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| match self.listen.port() {
                // Port 0 is chosen at bind time; loopback origins on any port are allowed anyway.
                0 => format!("http://{}", self.listen.ip()),
                _ => format!("http://{}", self.listen),
            })
            .trim_end_matches('/')
            .to_owned();
        let (scheme, public_host) = split_url(&public_url)
            .with_context(|| format!("--public-url {public_url:?} is not an http(s) URL"))?;

        let hosts = if self.allowed_hosts.iter().any(|host| host == "*") {
            Vec::new()
        } else {
            let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).collect();
            hosts.push(host_without_port(public_host).to_owned());
            hosts.extend(
                self.allowed_hosts
                    .iter()
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty()),
            );
            hosts
        };
        let origins = if self.allowed_origins.iter().any(|origin| origin == "*") {
            Vec::new()
        } else {
            let mut origins: Vec<String> =
                ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
                    .iter()
                    .map(|o| (*o).to_owned())
                    .collect();
            origins.push(format!("{scheme}://{public_host}"));
            origins.extend(
                self.allowed_origins
                    .iter()
                    .map(|o| o.trim().trim_end_matches('/').to_owned()),
            );
            origins
        };

        let (data_dir, database_url) = match &self.database_url {
            Some(url) => (None, url.clone()),
            None => (
                Some(self.data_dir.clone()),
                format!(
                    "sqlite://{}",
                    self.data_dir.join("mcp-multiplayer.db").display()
                ),
            ),
        };
        Ok(Settings {
            listen: self.listen,
            data_dir,
            database_url,
            public_url,
            host_policy: server::HostPolicy { hosts, origins },
            authenticator,
            service: service::ServiceSettings {
                rate_limit_per_second: self.rate_limit,
                max_waiting_syncs: self.max_waiting_syncs,
                ..service::ServiceSettings::default()
            },
            shutdown_grace_secs: self.shutdown_grace_secs,
        })
    }
}

/// `https://host:port/path` → (`https`, `host:port`).
fn split_url(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split('/').next()?;
    (!authority.is_empty()).then_some((scheme, authority))
}

fn host_without_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.split(':').next().unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> ServeArgs {
        let cli =
            Cli::try_parse_from(["mcp-multiplayer", "serve"].iter().chain(args)).expect("parses");
        match cli.command {
            Command::Serve(args) => args,
            Command::Bench(_) => unreachable!("serve was given"),
        }
    }

    #[test]
    fn defaults_need_no_configuration() {
        let settings = parse(&[]).validate().expect("valid");
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8100");
        assert_eq!(settings.database_url, "sqlite://data/mcp-multiplayer.db");
        assert_eq!(settings.public_url, "http://127.0.0.1:8100");
        assert!(settings.host_policy.hosts.contains(&"localhost".to_owned()));
    }

    #[test]
    fn dev_auth_is_refused_off_loopback() {
        let error = parse(&["--listen", "0.0.0.0:8100"]).validate().unwrap_err();
        assert!(error.to_string().contains("loopback"));
    }

    #[test]
    fn the_public_host_is_allowed() {
        let settings = parse(&[
            "--public-url",
            "https://mcp.example.com/",
            "--allowed-hosts",
            "alt.example.com",
        ])
        .validate()
        .expect("valid");
        assert_eq!(settings.public_url, "https://mcp.example.com");
        assert!(
            settings
                .host_policy
                .hosts
                .contains(&"mcp.example.com".to_owned())
        );
        assert!(
            settings
                .host_policy
                .hosts
                .contains(&"alt.example.com".to_owned())
        );
        assert!(
            settings
                .host_policy
                .origins
                .contains(&"https://mcp.example.com".to_owned())
        );
        assert!(parse(&["--public-url", "ftp://x"]).validate().is_err());
    }
}
