//! `mcp-multiplayer`: the binary. Reads the configuration, sets up logging, opens the store,
//! serves the app until SIGINT/SIGTERM, and maps the outcome to an exit code.
//!
//! - [`config`]: flags, environment variables and their validation.
//! - [`database`]: where the database is, its folder, and its URL as it may be shown.
//! - [`token`]: the `token` commands (personal tokens).
//! - [`keys`]: the `keys` commands (the server's signing keys).
//! - [`verify`]: the `export` and `verify` commands (transcripts).

mod config;
mod database;
mod keys;
mod token;
mod verify;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use config::{AuthMode, AuthSettings, Cli, Command, LogFormat, ServeArgs};
use tokio_util::sync::CancellationToken;

/// jemalloc: when one post wakes a thousand syncs, a thousand responses are built at once, and
/// glibc's allocator made that burst a quarter slower (fan-out p99 55-59 ms against 40-43 ms,
/// `bench --only fanout`). Its background thread (the `background_threads` feature) hands
/// memory freed after such a burst back to the system within seconds; without it, the server
/// kept the burst's peak resident while thousands of syncs waited (330 MB against 260 MB with
/// 10,000 waiters, `bench --only memory`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        // A worker confines itself while it has no thread but its own: before any runtime.
        Command::BotWorker(args) => {
            return ExitCode::from(workers::child::serve(&args.confinement()));
        }
        Command::Serve(args) => with_runtime(serve(*args)),
        Command::Bench(args) => {
            let workers = config::worker_pool(config::DEFAULT_WORKER_MEMORY_MIB, 0);
            with_runtime(async { bench::run(args, workers).await.map_err(anyhow::Error::from) })
        }
        Command::Token(command) => with_runtime(token::run(command)),
        Command::Keys(command) => with_runtime(keys::run(command)),
        Command::Export(args) => with_runtime(verify::export(args)),
        // Its own exit codes: a divergence is not a failure to run.
        Command::Verify(args) => return verify::verify(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn with_runtime(work: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?
        .block_on(work)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,rmcp=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours_wanted())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Colours only for a person at a terminal: escape codes garble log files and collectors.
/// `NO_COLOR` (any non-empty value, no-color.org) turns them off there too.
fn colours_wanted() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// `--listen` as addresses: a literal one as is, a host name through the system resolver.
async fn resolve_listen(args: &ServeArgs) -> anyhow::Result<Vec<std::net::SocketAddr>> {
    if let Some(address) = args.listen_literal() {
        return Ok(vec![address]);
    }
    let mut addresses: Vec<_> = tokio::net::lookup_host(&args.listen)
        .await
        .with_context(|| {
            format!(
                "--listen {:?} is neither IP:PORT nor a HOST:PORT whose name resolves",
                args.listen
            )
        })?
        .collect();
    addresses.dedup();
    Ok(addresses)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let settings = args.validate(resolve_listen(&args).await?)?;
    // Each waiting sync holds a socket; the default soft limit of 1024 files is far too low.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open file limit"),
    }
    let store = settings.database.open().await?;
    let listeners = listen_all(&settings.listen)?;
    let local = listeners[0].local_addr()?;
    let public_url = settings.public_url.clone().unwrap_or_else(|| {
        // A name given to --listen is the one people will type.
        match args.listen_literal() {
            Some(_) => format!("http://{local}"),
            None => {
                let host = args
                    .listen
                    .rsplit_once(':')
                    .map_or(&*args.listen, |(host, _)| host);
                format!("http://{host}:{}", local.port())
            }
        }
    });
    let auth_mode = match settings.auth {
        AuthSettings::Dev => AuthMode::Dev,
        AuthSettings::OAuth(_) => AuthMode::Oauth,
    };
    let authenticator = authenticator(settings.auth, &public_url, &store).await?;

    // Two stages: `shutdown` releases waiting syncs and stops accepting connections;
    // `transport_shutdown` cuts whatever is still open once the grace period is over.
    let shutdown = CancellationToken::new();
    let transport_shutdown = CancellationToken::new();
    let workers = workers::Pool::start(settings.workers.clone())
        .await
        .context("the bot worker processes could not start")?;
    tracing::info!(workers = settings.workers.size, "bot workers started");
    let fetch = settings.fetch.settings()?;
    if settings.fetch.policy.allow_loopback {
        tracing::warn!(
            "--fetch-allow-loopback: bots may have this server fetch from loopback addresses; for tests only"
        );
    }
    let service = service::Service::new(
        store,
        service::ServiceSettings {
            fetch,
            ..settings.service.clone()
        },
        Arc::new(service::SystemClock),
        shutdown.clone(),
        workers,
    );
    // Before serving: keys that cannot be loaded stop the server here, not at the first head.
    let keyring = service
        .load_keys()
        .await
        .context("could not load the server's signing keys")?;
    tracing::info!(key = %keyring.active_id(), "signing transcript heads");
    match service.resume_bots().await {
        Ok(0) => {}
        Ok(channels) => tracing::info!(channels, "resuming bot events left over from the last run"),
        Err(error) => tracing::warn!(%error, "could not look for pending bot events"),
    }
    let app = server::app(server::AppParts {
        service: service.clone(),
        authenticator,
        host_policy: settings.host_policy.clone(),
        trusted_proxies: settings.trusted_proxies.clone(),
        request_read_timeout: settings.request_read_timeout,
        transport_shutdown: transport_shutdown.clone(),
        public_url: public_url.clone(),
        metrics_token: settings
            .metrics_token
            .as_ref()
            .map(|config::Secret(token)| token.clone()),
    });
    let addresses: Vec<String> = listeners
        .iter()
        .filter_map(|listener| listener.local_addr().ok())
        .map(|address| address.to_string())
        .collect();
    tracing::info!(addresses = %addresses.join(", "), public_url = %public_url, database = %settings.database.describe(), "listening");
    tracing::info!("{}", how_to_connect(&public_url, &auth_mode));
    // A stable line on stdout, for scripts and tests that start the server on port 0:
    // `mcp-multiplayer listening on http://ADDRESS (MCP endpoint http://ADDRESS/mcp)`, the first
    // address bound. Each language reads it in one place: `tests/support/mod.rs`,
    // `tests/e2e/conftest.py`, `tests/js/helpers.mjs`, and the bench's `server.rs`.
    println!("mcp-multiplayer listening on http://{local} (MCP endpoint http://{local}/mcp)");

    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            wait_for_signal().await;
            tracing::info!("shutting down: answering waiting syncs and finishing requests");
            shutdown.cancel();
        }
    });
    let server = server::listen::serve(
        listeners,
        app,
        server::listen::ConnectionSettings {
            header_read_timeout: settings.request_read_timeout,
            max_connections: settings.max_connections,
        },
        shutdown.clone(),
    );
    tokio::select! {
        () = server => {}
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_secs = grace.as_secs(), "requests still open after the grace period; exiting anyway");
            transport_shutdown.cancel();
        }
    }
    // A bot event cut short may still have renewed its lease after the housekeeping task gave
    // it back; nothing runs bot code any more, so this release is the last word.
    service.hand_over().await;
    tracing::info!("stopped");
    Ok(())
}

/// Builds the authenticator; in OAuth mode the issuer is the public URL, now that it is known.
async fn authenticator(
    settings: AuthSettings,
    public_url: &str,
    store: &store::Store,
) -> anyhow::Result<auth::Authenticator> {
    match settings {
        AuthSettings::Dev => {
            tracing::warn!(
                "DEVELOPMENT AUTHENTICATION: every bearer token is accepted and names its own user. \
                 Never expose this server beyond this machine."
            );
            Ok(auth::Authenticator::Dev)
        }
        AuthSettings::OAuth(mut config) => {
            config.issuer = public_url.trim_end_matches('/').to_owned();
            if config.approval == auth::ApprovalMode::Auto {
                tracing::warn!(
                    "AUTO APPROVAL: every OAuth request is approved for a new person without asking. \
                     For tests and local development only."
                );
            }
            if config.allow_loopback_metadata_documents {
                tracing::warn!(
                    "test switch on: client metadata documents may be fetched over http from loopback"
                );
            }
            tracing::info!(issuer = %config.issuer, approval = ?config.approval, "OAuth authorization server on");
            let server = auth::OAuthServer::new(config, store.clone())
                .await
                .map_err(anyhow::Error::msg)?;
            let server = Arc::new(server);
            tokio::spawn(sweep_authorization_server(server.clone()));
            Ok(auth::Authenticator::OAuth(server))
        }
    }
}

/// Deletes expired codes and tokens, and what strangers left behind (clients that never
/// obtained a token, people who hold nothing), hourly, or more often when unused
/// registrations are kept less than a few hours.
async fn sweep_authorization_server(server: Arc<auth::OAuthServer>) {
    let ttl = server.config().unused_registration_ttl;
    let every = (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match server.purge_expired().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired codes and tokens deleted"),
            Err(error) => tracing::warn!(%error, "could not delete expired codes and tokens"),
        }
        match server.sweep_unused().await {
            Ok(swept) if swept.clients + swept.people > 0 => tracing::info!(
                clients = swept.clients,
                people = swept.people,
                "unused client registrations and people who hold nothing deleted"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not delete unused registrations"),
        }
    }
}

/// The startup line that tells a person how to connect.
fn how_to_connect(public_url: &str, auth: &AuthMode) -> String {
    match auth {
        AuthMode::Dev => format!(
            "connect an MCP client to {public_url}/mcp and send Authorization: Bearer <any name> \
             (each name is its own user)"
        ),
        AuthMode::Oauth => format!(
            "connect: add {public_url}/mcp as a custom connector in your MCP client (it signs in \
             with OAuth), or use `mcp-multiplayer token create` for scripts"
        ),
    }
}

/// Binds every address, all on one port: the first bound address's, which is the one chosen
/// when `--listen` asked for port 0. An address that cannot be bound (a name resolving to `::1`
/// on a host without IPv6) is skipped with a warning, unless none can be.
fn listen_all(addresses: &[std::net::SocketAddr]) -> anyhow::Result<Vec<tokio::net::TcpListener>> {
    let mut listeners: Vec<tokio::net::TcpListener> = Vec::with_capacity(addresses.len());
    let mut first_error = None;
    for &address in addresses {
        let mut address = address;
        if let Some(first) = listeners.first() {
            address.set_port(first.local_addr()?.port());
        }
        match listen(address) {
            Ok(listener) => listeners.push(listener),
            Err(error) => {
                tracing::warn!(%address, %error, "could not listen on one of the --listen addresses");
                first_error.get_or_insert((address, error));
            }
        }
    }
    match (listeners.is_empty(), first_error) {
        (true, Some((address, error))) => Err(anyhow::Error::new(error).context(format!(
            "could not listen on {address}; is another server running there?"
        ))),
        _ => Ok(listeners),
    }
}

/// Binds with a deep accept queue: thousands of long-polling clients reconnect at once after a
/// restart, and the default backlog of 128 would make the rest wait for SYN retries.
fn listen(address: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(4096)
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
