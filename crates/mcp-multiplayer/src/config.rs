//! Command-line configuration: every flag has an environment-variable twin and a documented
//! default. [`ServeArgs::validate`] checks it without I/O and splits it into per-crate settings.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::database::Database;

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
    Serve(Box<ServeArgs>),
    /// Measure a server's throughput, latency, fan-out and memory (starts one unless --url).
    Bench(bench::BenchArgs),
    /// Personal tokens for scripts and curl: create, list, revoke. Safe to run beside a
    /// running server.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The server's signing keys, which sign transcript heads: list, rotate. Safe to run
    /// beside a running server, which signs with a rotated key within a minute.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Export a channel's whole transcript (nothing withheld), signed, as JSON: for an operator
    /// who must show a channel's history. Safe to run beside a running server.
    Export(ExportArgs),
    /// Check an exported transcript offline: the hash chain, the server's signatures, the bots'
    /// code, params and seeds, and every bot event replayed and compared with what was
    /// recorded. Prints `verified: …` (exit 0) or the first divergence (exit 1); exit 2 when
    /// the file cannot be read.
    Verify(VerifyArgs),
    /// Run bot code for a server: started by `serve`, never by hand. It confines itself and
    /// answers jobs on its standard input and output.
    #[command(hide = true)]
    BotWorker(BotWorkerArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The channel, `ch_…`.
    pub channel_id: String,
    /// Where to write the JSON; standard output when absent.
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The exported transcript (from export_transcript, the REST API or `export`).
    pub file: std::path::PathBuf,
    /// A signed head you kept from an earlier get_channel or sync answer (its `head` object,
    /// as JSON): it must lie on the transcript's chain. Repeat for several.
    #[arg(long = "head")]
    pub heads: Vec<std::path::PathBuf>,
    /// The server's published keys (the JSON of /.well-known/mcp-multiplayer-keys), to check
    /// that the transcript's signing key is really the server's; without it the keys in the
    /// file are used and the report says so.
    #[arg(long)]
    pub keys: Option<std::path::PathBuf>,
    /// Check the chain, signatures and hashes only; do not replay bot events.
    #[arg(long)]
    pub no_replay: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BotWorkerArgs {
    /// Address-space cap of the worker process, in MiB.
    #[arg(long, default_value_t = DEFAULT_WORKER_MEMORY_MIB)]
    pub memory_mib: u64,
}

/// jemalloc in a worker: no background threads (they start threads on demand, which the
/// worker's seccomp filter forbids), and freed memory unmapped rather than kept, so one greedy
/// event does not leave the worker's address space near its cap.
pub const WORKER_MALLOC_CONF: &str = "background_thread:false,retain:false";

/// The default address-space cap of a bot worker, in MiB.
pub const DEFAULT_WORKER_MEMORY_MIB: u64 = 1024;

/// Workers run this executable's hidden `bot-worker` command; `count` 0 is one per core.
pub fn worker_pool(memory_mib: u64, count: u64) -> workers::PoolConfig {
    let mut command = workers::WorkerCommand::this_executable([
        "bot-worker".to_owned(),
        "--memory-mib".to_owned(),
        memory_mib.to_string(),
    ]);
    command
        .env
        .push(("_RJEM_MALLOC_CONF".into(), WORKER_MALLOC_CONF.into()));
    let mut pool = workers::PoolConfig::per_core(command);
    pool.watchdog.retire_above_bytes = memory_mib.saturating_mul(1024 * 1024) / 2;
    if count > 0 {
        pool.size = usize::try_from(count).unwrap_or(pool.size);
    }
    pool
}

impl BotWorkerArgs {
    pub fn confinement(&self) -> workers::Confinement {
        workers::Confinement {
            memory_bytes: self.memory_mib.saturating_mul(1024 * 1024),
            ..workers::Confinement::default()
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a personal token and print it (it is shown only once).
    Create(TokenCreateArgs),
    /// List personal tokens (never their values).
    List(DatabaseArgs),
    /// Revoke the personal token with this name.
    Revoke {
        /// The token's name, as given to `token create`.
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List every signing key: its id, when it was made, when it retired, and which one signs.
    List(DatabaseArgs),
    /// Retire the active signing key and make a new one. The retired key's public half stays
    /// published at /.well-known/mcp-multiplayer-keys, forever, so what it signed still
    /// verifies; its secret is erased. A running server starts signing with the new key
    /// within a minute (when it next looks at the keys), or at its next start.
    Rotate(DatabaseArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TokenCreateArgs {
    /// A unique name for the token, to list and revoke it (letters, digits, '-', '_', '.').
    #[arg(long)]
    pub name: String,
    /// Display name of the new person the token acts as. Default: the token's name.
    #[arg(long, conflicts_with = "person")]
    pub display_name: Option<String>,
    /// Act as this existing person (a `usr_…` id from `token list`) instead of a new one.
    #[arg(long)]
    pub person: Option<String>,
    /// Only grant mcp:read: the token can look but not post, join or create.
    #[arg(long)]
    pub read_only: bool,
    /// Days until the token expires. Default: never.
    #[arg(long)]
    pub expires_in_days: Option<u32>,
    /// Start a new database if none exists where --data-dir or --database-url points.
    /// Without it, a missing database is an error: a token in a database that no server
    /// reads is refused by the server.
    #[arg(long)]
    pub create_database: bool,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Where the data lives; shared by `serve`, `token` and `keys`.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Directory for the embedded database; created if missing.
    #[arg(long, env = "MCP_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Database URL: sqlite://path/to/file.db (its folder is created if missing), or
    /// postgres://user:password@host/database for several instances on one database.
    /// Default: a SQLite file in --data-dir.
    #[arg(long, env = "MCP_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Database connections this process keeps: SQLite's readers (its one writer comes on
    /// top), or PostgreSQL's pool (plus one connection that listens for other instances).
    #[arg(long, env = "MCP_DATABASE_CONNECTIONS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// OAuth 2.1: clients sign in through our authorization server and consent page.
    Oauth,
    /// Development only: every distinct bearer token is its own person. Loopback only.
    Dev,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Approval {
    /// A person approves each connection on the consent page.
    Prompt,
    /// As prompt, and the person must type --passphrase: a private server.
    Passphrase,
    /// Approve at once, a new person per grant: tests and local development. Loopback only
    /// unless --force-auto-approval.
    Auto,
}

/// A value that must never be printed.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Ok(Secret(raw.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on: IP:PORT, or HOST:PORT (e.g. localhost:8100), which listens on
    /// every address the name resolves to.
    #[arg(long, env = "MCP_LISTEN", default_value = "127.0.0.1:8100")]
    pub listen: String,

    #[command(flatten)]
    pub database: DatabaseArgs,

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
    #[arg(long, env = "MCP_AUTH", value_enum, default_value = "oauth")]
    pub auth: AuthMode,

    /// How the consent page approves a connection (OAuth).
    #[arg(long, env = "MCP_APPROVAL", value_enum, default_value = "prompt")]
    pub approval: Approval,

    /// The passphrase people must type on the consent page (--approval passphrase).
    #[arg(long, env = "MCP_PASSPHRASE", hide_env_values = true)]
    pub passphrase: Option<Secret>,

    /// Allow --approval auto on a non-loopback address. Anyone who reaches the port gets in.
    #[arg(long, env = "MCP_FORCE_AUTO_APPROVAL")]
    pub force_auto_approval: bool,

    /// Lifetime of OAuth access tokens, in seconds.
    #[arg(long, env = "MCP_ACCESS_TOKEN_TTL_SECS", default_value_t = 3600)]
    pub access_token_ttl_secs: u64,

    /// Lifetime of OAuth refresh tokens, in days.
    #[arg(long, env = "MCP_REFRESH_TOKEN_TTL_DAYS", default_value_t = 30)]
    pub refresh_token_ttl_days: u64,

    /// Test only: accept client ID metadata documents served over plain HTTP on loopback.
    #[arg(long, env = "MCP_TEST_LOOPBACK_METADATA_DOCUMENTS", hide = true)]
    pub test_loopback_metadata_documents: bool,

    /// Reverse proxies whose X-Forwarded-For is believed, as a comma-separated list of networks
    /// or addresses (e.g. 127.0.0.1,10.0.0.0/8). Per-address limits then count the right-most
    /// forwarded address that is not one of them; from anyone else the header is ignored.
    #[arg(long, env = "MCP_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,

    /// The bearer token /metrics answers to (Prometheus: `authorization: {credentials: …}`),
    /// at least 16 characters. Without it /metrics is off.
    #[arg(long, env = "MCP_METRICS_TOKEN")]
    pub metrics_token: Option<Secret>,

    /// Client registrations (POST /register) one client address may make per hour.
    #[arg(long, env = "MCP_OAUTH_REGISTER_PER_HOUR", default_value = "20")]
    pub oauth_register_per_hour: NonZeroU32,

    /// Requests to /authorize (the consent page and its answers) per client address per minute.
    #[arg(long, env = "MCP_OAUTH_AUTHORIZE_PER_MINUTE", default_value = "30")]
    pub oauth_authorize_per_minute: NonZeroU32,

    /// Requests to /token and /revoke per client address per minute.
    #[arg(long, env = "MCP_OAUTH_TOKEN_PER_MINUTE", default_value = "60")]
    pub oauth_token_per_minute: NonZeroU32,

    /// Seconds after which a registered client that never obtained a token, and a person who
    /// holds nothing (no token, seat or channel), are deleted.
    #[arg(long, env = "MCP_UNUSED_REGISTRATION_TTL_SECS", default_value_t = 24 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub unused_registration_ttl_secs: u64,

    /// Log format.
    #[arg(long, env = "MCP_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Requests per second per principal (bursts of twice that); 0 turns the limit off.
    #[arg(long, env = "MCP_RATE_LIMIT", default_value_t = 20)]
    pub rate_limit: u32,

    /// Syncs one principal may have waiting at once; 0 means no cap.
    #[arg(long, env = "MCP_MAX_WAITING_SYNCS", default_value_t = 32)]
    pub max_waiting_syncs: usize,

    /// Seconds a client has to send a request's headers, and again its body; an idle
    /// keep-alive connection is closed after as long. Stops clients that hold connections by
    /// trickling bytes.
    #[arg(long, env = "MCP_REQUEST_READ_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_read_timeout_secs: u64,

    /// Connections served at once (each waiting sync holds one, about 25 KB). Past it, new
    /// connections wait until one closes.
    #[arg(long, env = "MCP_MAX_CONNECTIONS", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,

    /// Seconds to let requests finish after SIGINT/SIGTERM before exiting anyway.
    #[arg(long, env = "MCP_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// CPU budget of one bot event, in milliseconds. The runtimes stop bot code at the budget;
    /// a watchdog kills the worker process of an event that runs past it.
    #[arg(long, env = "MCP_BOT_BUDGET_MS", default_value_t = 50)]
    pub bot_budget_ms: u64,

    /// Worker processes that run bot code (0: one per core).
    #[arg(long, env = "MCP_BOT_WORKERS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=256))]
    pub bot_workers: u64,

    /// Address-space cap of each bot worker process, in MiB: the backstop for memory the
    /// interpreters do not count.
    #[arg(long, env = "MCP_BOT_WORKER_MEMORY_MIB", default_value_t = DEFAULT_WORKER_MEMORY_MIB,
          value_parser = clap::value_parser!(u64).range(256..=65_536))]
    pub bot_worker_memory_mib: u64,

    /// Heap cap of one bot event, in MiB.
    #[arg(long, env = "MCP_BOT_MEMORY_MIB", default_value_t = 16)]
    pub bot_memory_mib: usize,

    /// Most bot slots a new channel may declare. What bots write is capped per channel, so
    /// more bots share the same budget; raise this only for games that need several referees.
    #[arg(long, env = "MCP_MAX_BOT_SLOTS", default_value_t = domain::limits::DEFAULT_MAX_BOT_SLOTS as u64,
          value_parser = clap::value_parser!(u64).range(0..=domain::limits::MAX_SLOTS_PER_CHANNEL as u64))]
    pub max_bot_slots: u64,

    /// Messages all bots of one channel may write per minute (their bytes are capped at 1 MiB a
    /// minute). Past it their replies are dropped with a notice; raise it for chatty bots.
    #[arg(long, env = "MCP_BOT_CHANNEL_MESSAGES_PER_MINUTE", default_value_t = 240,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub bot_channel_messages_per_minute: u64,

    /// Messages all bots of one owner's channels may write per minute (4 MiB of bytes).
    #[arg(long, env = "MCP_BOT_OWNER_MESSAGES_PER_MINUTE", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub bot_owner_messages_per_minute: u64,

    /// Hosts the witness may fetch from for bots (`ctx.request_fetch`), comma-separated:
    /// `example.com` (that name) or `*.example.com` (names under it). Empty: any public host.
    #[arg(long, env = "MCP_FETCH_ALLOW", value_delimiter = ',')]
    pub fetch_allow: Vec<String>,

    /// Hosts the witness never fetches from, in the same form; they win over --fetch-allow.
    #[arg(long, env = "MCP_FETCH_DENY", value_delimiter = ',')]
    pub fetch_deny: Vec<String>,

    /// Most bytes of a response body the witness reads; a longer body is cut there.
    #[arg(long, env = "MCP_FETCH_MAX_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=16 * 1024 * 1024))]
    pub fetch_max_bytes: u64,

    /// How long one witness fetch may take in all, in milliseconds.
    #[arg(long, env = "MCP_FETCH_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub fetch_timeout_ms: u64,

    /// Fetches all bots of one channel may have made per minute.
    #[arg(long, env = "MCP_FETCH_CHANNEL_PER_MINUTE", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub fetch_channel_per_minute: u32,

    /// Fetches all bots of one owner's channels may have made per minute.
    #[arg(long, env = "MCP_FETCH_OWNER_PER_MINUTE", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub fetch_owner_per_minute: u32,

    /// Also trust the certificate authorities in this PEM file for witness fetches (an
    /// internal CA, or a test CA).
    #[arg(long, env = "MCP_FETCH_TRUST_CA")]
    pub fetch_trust_ca: Option<PathBuf>,

    /// Let the witness fetch from loopback addresses. For tests against a local server only:
    /// off by default, never on a server that others use.
    #[arg(long, env = "MCP_FETCH_ALLOW_LOOPBACK")]
    pub fetch_allow_loopback: bool,
}

impl ServeArgs {
    /// The caps on bot output across events, with the per-minute message counts from the flags.
    fn bot_output(&self) -> domain::bot_output::BotOutputLimits {
        let mut limits = domain::bot_output::BotOutputLimits::default();
        limits.per_channel_minute.messages = saturate(self.bot_channel_messages_per_minute);
        limits.per_owner_minute.messages = saturate(self.bot_owner_messages_per_minute);
        limits
    }
}

fn saturate(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// Validated configuration, split per crate.
#[derive(Debug)]
pub struct Settings {
    /// The addresses `--listen` resolved to, in the resolver's order.
    pub listen: Vec<SocketAddr>,
    pub database: Database,
    /// `None`: `http://<--listen, with the port actually bound>`, known only after binding.
    pub public_url: Option<String>,
    pub host_policy: server::HostPolicy,
    pub trusted_proxies: server::TrustedProxies,
    /// What `/metrics` answers to; `None`: off.
    pub metrics_token: Option<Secret>,
    pub auth: AuthSettings,
    pub service: service::ServiceSettings,
    /// How the witness fetches; its trusted roots are read when the server starts
    /// ([`FetchPolicy::settings`]).
    pub fetch: FetchPolicy,
    /// The bot worker processes.
    pub workers: workers::PoolConfig,
    pub shutdown_grace_secs: u64,
    pub request_read_timeout: std::time::Duration,
    pub max_connections: usize,
}

/// How callers will be identified, before the store exists.
#[derive(Debug)]
pub enum AuthSettings {
    Dev,
    /// The issuer is filled in once the public URL is known.
    OAuth(auth::OAuthConfig),
}

const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl ServeArgs {
    /// Checks the flags; `listen` holds the addresses `--listen` resolved to (see
    /// [`ServeArgs::listen_literal`] and `main`, which resolves names).
    pub fn validate(&self, listen: Vec<SocketAddr>) -> anyhow::Result<Settings> {
        if listen.is_empty() {
            bail!("--listen {:?} resolves to no address", self.listen);
        }
        // Dev authentication and auto approval trust whoever reaches the port: every address
        // must be loopback.
        let loopback = listen.iter().all(|address| address.ip().is_loopback());
        let auth = match self.auth {
            AuthMode::Dev => {
                if !loopback {
                    bail!(
                        "--auth dev trusts anyone who can reach the port, so it only listens on loopback \
                         (e.g. --listen 127.0.0.1:8100), not on {}",
                        self.listen
                    );
                }
                AuthSettings::Dev
            }
            AuthMode::Oauth => AuthSettings::OAuth(self.oauth_config(loopback)?),
        };
        let public_url = self
            .public_url
            .as_deref()
            .map(|url| url.trim_end_matches('/').to_owned());
        // Until bound, a port-0 address has no port; loopback origins on any port are allowed.
        let provisional = public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen));
        let (scheme, public_host) = split_url(&provisional)
            .with_context(|| format!("--public-url {provisional:?} is not an http(s) URL"))?;
        if public_url
            .as_deref()
            .is_some_and(|url| url[scheme.len() + 3..].contains('/'))
        {
            bail!(
                "--public-url must be a scheme and host only (e.g. https://mcp.example.com), without a path"
            );
        }

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

        let trusted_proxies = self
            .trusted_proxies
            .parse()
            .map_err(|problem| anyhow::anyhow!("--trusted-proxies: {problem}"))?;
        if let Some(Secret(token)) = &self.metrics_token
            && token.chars().count() < server::metrics::MIN_TOKEN_CHARS
        {
            anyhow::bail!(
                "--metrics-token: at least {} characters, please (e.g. `openssl rand -hex 24`)",
                server::metrics::MIN_TOKEN_CHARS
            );
        }
        Ok(Settings {
            listen,
            database: Database::new(&self.database),
            public_url,
            host_policy: server::HostPolicy { hosts, origins },
            trusted_proxies,
            metrics_token: self.metrics_token.clone(),
            auth,
            service: service::ServiceSettings {
                rate_limit_per_second: self.rate_limit,
                max_waiting_syncs: self.max_waiting_syncs,
                bot_limits: self.bot_limits()?,
                max_bot_slots: usize::try_from(self.max_bot_slots)?,
                bot_output: self.bot_output(),
                ..service::ServiceSettings::default()
            },
            fetch: self.fetch_policy()?,
            workers: self.worker_pool(),
            shutdown_grace_secs: self.shutdown_grace_secs,
            request_read_timeout: std::time::Duration::from_secs(self.request_read_timeout_secs),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        })
    }
}

/// The witness's settings from the flags, before its trusted-roots file is read.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    pub policy: outbound::WitnessPolicy,
    pub trust_ca: Option<PathBuf>,
    pub per_channel_per_minute: u32,
    pub per_owner_per_minute: u32,
}

impl FetchPolicy {
    /// The service's fetch settings, reading the `--fetch-trust-ca` file if there is one.
    pub fn settings(&self) -> anyhow::Result<service::FetchSettings> {
        let mut policy = self.policy.clone();
        if let Some(path) = &self.trust_ca {
            policy.extra_roots =
                outbound::witness::read_pem_certificates(path).map_err(|problem| {
                    anyhow::anyhow!("--fetch-trust-ca {}: {problem}", path.display())
                })?;
        }
        let witness = outbound::Witness::new(policy, std::sync::Arc::new(outbound::SystemResolver))
            .map_err(|problem| anyhow::anyhow!("the witness: {problem}"))?;
        Ok(service::FetchSettings {
            per_channel_per_minute: self.per_channel_per_minute,
            per_owner_per_minute: self.per_owner_per_minute,
            ..service::FetchSettings::with_witness(witness)
        })
    }
}

impl ServeArgs {
    fn fetch_policy(&self) -> anyhow::Result<FetchPolicy> {
        let hosts = |flag: &str, raw: &[String]| {
            raw.iter()
                .map(|host| host.trim())
                .filter(|host| !host.is_empty())
                .map(|host| {
                    outbound::HostPattern::parse(host)
                        .map_err(|problem| anyhow::anyhow!("{flag}: {problem}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        };
        Ok(FetchPolicy {
            policy: outbound::WitnessPolicy {
                max_body_bytes: self.fetch_max_bytes,
                timeout: std::time::Duration::from_millis(self.fetch_timeout_ms),
                allow: hosts("--fetch-allow", &self.fetch_allow)?,
                deny: hosts("--fetch-deny", &self.fetch_deny)?,
                extra_roots: Vec::new(),
                allow_loopback: self.fetch_allow_loopback,
            },
            trust_ca: self.fetch_trust_ca.clone(),
            per_channel_per_minute: self.fetch_channel_per_minute,
            per_owner_per_minute: self.fetch_owner_per_minute,
        })
    }

    /// `--listen` as a literal socket address, when it is one (no name to resolve).
    pub fn listen_literal(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    fn worker_pool(&self) -> workers::PoolConfig {
        worker_pool(self.bot_worker_memory_mib, self.bot_workers)
    }

    fn bot_limits(&self) -> anyhow::Result<bots::Limits> {
        if !(1..=10_000).contains(&self.bot_budget_ms) {
            bail!("--bot-budget-ms must be between 1 and 10000");
        }
        if !(1..=1024).contains(&self.bot_memory_mib) {
            bail!("--bot-memory-mib must be between 1 and 1024");
        }
        // A worker is retired once past half its cap; an event's heap must fit below that.
        let heap_room = self.bot_worker_memory_mib / 2;
        if self.bot_memory_mib as u64 + 128 > heap_room {
            bail!(
                "--bot-memory-mib {} leaves no room in a worker of --bot-worker-memory-mib {}: \
                 give workers at least {} MiB",
                self.bot_memory_mib,
                self.bot_worker_memory_mib,
                (self.bot_memory_mib as u64 + 128) * 2
            );
        }
        Ok(bots::Limits {
            cpu: std::time::Duration::from_millis(self.bot_budget_ms),
            memory_bytes: self.bot_memory_mib * 1024 * 1024,
            ..bots::Limits::default()
        })
    }

    fn oauth_config(&self, loopback: bool) -> anyhow::Result<auth::OAuthConfig> {
        let approval = match self.approval {
            Approval::Prompt => auth::ApprovalMode::Prompt,
            Approval::Passphrase => match &self.passphrase {
                Some(Secret(passphrase)) if passphrase.chars().count() >= 8 => {
                    auth::ApprovalMode::Passphrase(passphrase.clone())
                }
                Some(_) => bail!("--passphrase must have at least 8 characters"),
                None => bail!("--approval passphrase needs --passphrase (or MCP_PASSPHRASE)"),
            },
            Approval::Auto => {
                if !loopback && !self.force_auto_approval {
                    bail!(
                        "--approval auto lets anyone who reaches the port in, so it only listens on \
                         loopback; add --force-auto-approval if you really mean {}",
                        self.listen
                    );
                }
                auth::ApprovalMode::Auto
            }
        };
        if self.access_token_ttl_secs == 0 || self.refresh_token_ttl_days == 0 {
            bail!("token lifetimes must be positive");
        }
        // The issuer is a placeholder until the public URL is known (see `main`).
        let mut config = auth::OAuthConfig::new("http://unset");
        config.approval = approval;
        config.access_token_ttl = std::time::Duration::from_secs(self.access_token_ttl_secs);
        config.refresh_token_ttl =
            std::time::Duration::from_secs(self.refresh_token_ttl_days * 24 * 3600);
        config.allow_loopback_metadata_documents = self.test_loopback_metadata_documents;
        config.limits = auth::oauth::EndpointLimits {
            register_per_hour: self.oauth_register_per_hour,
            authorize_per_minute: self.oauth_authorize_per_minute,
            token_per_minute: self.oauth_token_per_minute,
        };
        config.unused_registration_ttl =
            std::time::Duration::from_secs(self.unused_registration_ttl_secs);
        Ok(config)
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
            Command::Serve(args) => *args,
            _ => unreachable!("serve was given"),
        }
    }

    impl ServeArgs {
        /// As `validate`, for a literal `--listen`.
        fn check(&self) -> anyhow::Result<Settings> {
            self.validate(self.listen_literal().into_iter().collect())
        }
    }

    #[test]
    fn defaults_need_no_configuration() {
        let settings = parse(&[]).check().expect("valid");
        assert_eq!(
            settings.listen,
            ["127.0.0.1:8100".parse().expect("address")]
        );
        assert_eq!(settings.database.url(), "sqlite://data/mcp-multiplayer.db");
        assert_eq!(settings.public_url, None);
        assert!(settings.host_policy.hosts.contains(&"localhost".to_owned()));
        assert!(
            matches!(settings.auth, AuthSettings::OAuth(_)),
            "OAuth is the default"
        );
    }

    #[test]
    fn the_witness_fetches_only_public_hosts_unless_told_otherwise() {
        let fetch = parse(&[]).check().expect("valid").fetch;
        assert!(
            !fetch.policy.allow_loopback,
            "loopback takes the operator's flag"
        );
        assert!(fetch.policy.allow.is_empty() && fetch.policy.deny.is_empty());
        assert_eq!(fetch.trust_ca, None);
        let fetch = parse(&[
            "--fetch-allow",
            "example.com, *.example.org",
            "--fetch-deny",
            "bad.example.org",
            "--fetch-max-bytes",
            "4096",
        ])
        .check()
        .expect("valid")
        .fetch;
        assert_eq!(
            fetch.policy.allow,
            [
                outbound::HostPattern::Exact("example.com".into()),
                outbound::HostPattern::Subdomains("example.org".into())
            ]
        );
        assert_eq!(fetch.policy.deny.len(), 1);
        assert_eq!(fetch.policy.max_body_bytes, 4096);
        let error = parse(&["--fetch-deny", "a b"]).check().unwrap_err();
        assert!(error.to_string().contains("--fetch-deny"), "{error}");
        let missing = FetchPolicy {
            trust_ca: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..fetch
        };
        let error = missing.settings().unwrap_err();
        assert!(error.to_string().contains("--fetch-trust-ca"), "{error}");
    }

    #[test]
    fn trusted_proxies_and_oauth_limits_are_read_and_checked() {
        let settings = parse(&[
            "--trusted-proxies",
            "127.0.0.1, 10.0.0.0/8",
            "--oauth-register-per-hour",
            "5",
        ])
        .check()
        .expect("valid");
        assert!(!settings.trusted_proxies.is_empty());
        let AuthSettings::OAuth(config) = settings.auth else {
            panic!("OAuth is the default");
        };
        assert_eq!(config.limits.register_per_hour.get(), 5);
        assert_eq!(config.limits.token_per_minute.get(), 60);
        assert!(
            parse(&[])
                .check()
                .expect("valid")
                .trusted_proxies
                .is_empty()
        );
        let refused = parse(&["--trusted-proxies", "proxy.example"])
            .check()
            .expect_err("a host name is no network");
        assert!(
            refused.to_string().contains("--trusted-proxies"),
            "{refused}"
        );
        assert!(
            Cli::try_parse_from(["mcp-multiplayer", "serve", "--oauth-token-per-minute", "0"])
                .is_err()
        );
    }

    #[test]
    fn workers_default_to_one_per_core_and_must_hold_a_bot_heap() {
        let settings = parse(&[]).check().expect("valid");
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        assert_eq!(settings.workers.size, cores);
        assert_eq!(settings.workers.watchdog.retire_above_bytes, 512 << 20);
        assert_eq!(
            settings.workers.command.args,
            ["bot-worker", "--memory-mib", "1024"]
        );
        let settings = parse(&["--bot-workers", "3", "--bot-worker-memory-mib", "2048"])
            .check()
            .expect("valid");
        assert_eq!(settings.workers.size, 3);
        assert_eq!(settings.workers.watchdog.retire_above_bytes, 1 << 30);
        let error = parse(&["--bot-memory-mib", "512"]).check().unwrap_err();
        assert!(
            error.to_string().contains("--bot-worker-memory-mib"),
            "{error}"
        );
        parse(&["--bot-memory-mib", "512", "--bot-worker-memory-mib", "2048"])
            .check()
            .expect("a larger worker holds a larger heap");
    }

    #[test]
    fn bot_slots_default_to_four_and_the_operator_may_change_it() {
        let settings = parse(&[]).check().expect("valid");
        assert_eq!(settings.service.max_bot_slots, 4);
        let settings = parse(&["--max-bot-slots", "12"]).check().expect("valid");
        assert_eq!(settings.service.max_bot_slots, 12);
        let settings = parse(&["--bot-channel-messages-per-minute", "1000"])
            .check()
            .expect("valid");
        assert_eq!(
            settings.service.bot_output.per_channel_minute.messages,
            1000
        );
        assert_eq!(settings.service.bot_output.per_owner_minute.messages, 600);
        assert!(
            Cli::try_parse_from(["mcp-multiplayer", "serve", "--max-bot-slots", "33"]).is_err()
        );
    }

    #[test]
    fn dev_auth_and_auto_approval_are_refused_off_loopback() {
        let error = parse(&["--auth", "dev", "--listen", "0.0.0.0:8100"])
            .check()
            .unwrap_err();
        assert!(error.to_string().contains("loopback"));
        let error = parse(&["--approval", "auto", "--listen", "0.0.0.0:8100"])
            .check()
            .unwrap_err();
        assert!(error.to_string().contains("loopback"));
        assert!(
            parse(&[
                "--approval",
                "auto",
                "--listen",
                "0.0.0.0:8100",
                "--force-auto-approval"
            ])
            .check()
            .is_ok()
        );
        assert!(parse(&["--listen", "0.0.0.0:8100"]).check().is_ok());
    }

    #[test]
    fn a_listen_name_is_loopback_only_if_every_address_is() {
        let args = parse(&["--auth", "dev", "--listen", "localhost:8100"]);
        let loopback = ["127.0.0.1:8100", "[::1]:8100"].map(|a| a.parse().expect("address"));
        let settings = args.validate(loopback.to_vec()).expect("valid");
        assert_eq!(settings.listen.len(), 2);
        let mixed = ["127.0.0.1:8100", "192.0.2.1:8100"].map(|a| a.parse().expect("address"));
        assert!(args.validate(mixed.to_vec()).is_err());
        assert!(args.validate(Vec::new()).is_err());
    }

    #[test]
    fn passphrase_mode_needs_a_passphrase_that_is_never_printed() {
        assert!(parse(&["--approval", "passphrase"]).check().is_err());
        assert!(
            parse(&["--approval", "passphrase", "--passphrase", "short"])
                .check()
                .is_err()
        );
        let args = parse(&["--approval", "passphrase", "--passphrase", "open sesame"]);
        let settings = args.check().expect("valid");
        assert!(!format!("{args:?} {settings:?}").contains("open sesame"));
    }

    #[test]
    fn the_public_host_is_allowed() {
        let settings = parse(&[
            "--public-url",
            "https://mcp.example.com/",
            "--allowed-hosts",
            "alt.example.com",
        ])
        .check()
        .expect("valid");
        assert_eq!(
            settings.public_url.as_deref(),
            Some("https://mcp.example.com")
        );
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
        assert!(parse(&["--public-url", "ftp://x"]).check().is_err());
    }
}
