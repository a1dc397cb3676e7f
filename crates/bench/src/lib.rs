//! `mcp-multiplayer bench`: a load generator that drives an MCP Multiplayer server with raw MCP
//! JSON-RPC over keep-alive HTTP/1.1 connections and prints throughput, latency, fan-out and
//! memory figures. It measures and reports; it asserts nothing.
//!
//! - [`server`]: starting the server under test as a child process.
//! - [`client`]: one connection per virtual client, and opening many of them.
//! - [`rpc`]: JSON-RPC request bodies and response parsing.
//! - [`channels`]: the tool calls used for set-up and posting.
//! - [`throughput`]: the closed-loop phases (baselines, `post_message`, `get_channel`).
//! - [`auth_cost`]: `get_channel` with issued tokens next to the dev authenticator.
//! - [`bot_cost`]: bot runtime per event, a GuessBot move end to end, busy-bot isolation.
//! - [`worker_cost`]: an event through a worker process, native-loop kills, the fair share.
//! - [`games`]: a chess move in a worker, a Blackjack hand end to end, timer lateness under load.
//! - [`waiters`], [`fanout`], [`memory`]: waiting syncs, fan-out rounds, memory with many waiters.
//! - [`procfs`]: memory and CPU readings from /proc.
//! - [`stats`], [`report`]: percentiles, formatting and the summary table.

mod auth_cost;
mod bot_cost;
mod channels;
mod client;
mod fanout;
mod games;
mod instances;
mod memory;
mod procfs;
mod report;
mod rpc;
mod server;
mod stats;
mod throughput;
mod transcript_cost;
mod waiters;
mod worker_cost;

use std::sync::Arc;
use std::time::Duration;

use client::Target;
use report::Row;
use server::{ServerAuth, ServerProcess};

/// A part of the bench that can be run on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// `GET /healthz`, `ping` and `tools/list` throughput, to compare the rest with.
    Baseline,
    /// `post_message` throughput and latency (durable writes).
    Post,
    /// `get_channel` throughput and latency (the per-call overhead).
    Get,
    /// One post waking many waiting syncs on one channel.
    Fanout,
    /// Server memory with many waiting syncs, each on its own connection.
    Memory,
    /// `get_channel` with tokens checked by the OAuth server next to `--auth dev`, alternating.
    Auth,
    /// Bot runtime per event, a GuessBot move end to end, and posts beside a busy-looping bot.
    Bots,
    /// Bot worker processes on their own: an event through a worker, native-loop kills, and
    /// one principal's echo bot beside another's flood of busy bots.
    Workers,
    /// The hash chain's share of a durable post's server CPU, and the cost of a signed head.
    Transcript,
    /// The games: a chess move checked in a worker, a Blackjack hand end to end, and how late
    /// bot timers fire while posts load the server.
    Games,
    /// Three servers on one PostgreSQL database (`--postgres-url`): syncs woken across
    /// instances, and posts on three instances next to one.
    Instances,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Drive the server at this http://host:port instead of starting one.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// With --url: the server's process id, to report its memory and CPU use.
    #[arg(long, value_name = "PID", requires = "url")]
    pub server_pid: Option<u32>,

    /// Scenarios to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    pub only: Vec<Scenario>,

    /// Seconds each throughput phase (baselines, post, get) runs.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub duration: u64,

    /// Clients in the throughput phases, one connection and one principal each.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub concurrency: usize,

    /// Waiting syncs in the fan-out scenario, one connection each.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub fanout_waiters: usize,

    /// Fan-out rounds: each arms every waiter and releases them with one post.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub fanout_rounds: usize,

    /// Least time, in ms, between arming the fan-out waiters and posting. With a known server
    /// pid the bench also waits until the server's CPU goes quiet.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub fanout_settle_ms: u64,

    /// Waiting syncs in the memory scenario, one connection each.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub memory_waiters: usize,

    /// Least time, in ms, between arming the memory waiters and reading the server's memory.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub memory_settle_ms: u64,

    /// A PostgreSQL server for the instances scenario, e.g.
    /// postgres://postgres@127.0.0.1:5432/test (it works in a fresh schema of it).
    #[arg(
        long,
        env = "MCP_BENCH_POSTGRES_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub postgres_url: Option<String>,

    /// Connections being opened at once (each counts until its first answer). Keep it below
    /// the server's listen backlog (128 for `mcp-multiplayer serve`), or the kernel drops SYNs
    /// and those clients retry after a second.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub connect_parallelism: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid bench options: {0}")]
    Usage(String),
    #[error("server under test: {0}")]
    Server(String),
    #[error("set-up failed: {0}")]
    Setup(String),
    #[error("{} scenario(s) failed: {}", .0.len(), .0.join("; "))]
    Failed(Vec<String>),
    #[error("interrupted by {0}")]
    Interrupted(&'static str),
}

/// What every scenario needs.
pub(crate) struct Context {
    pub target: Arc<Target>,
    pub server_pid: Option<u32>,
    pub duration: Duration,
    pub concurrency: usize,
    pub connect_parallelism: usize,
    pub fanout_waiters: usize,
    pub fanout_rounds: usize,
    pub fanout_settle: Duration,
    pub memory_waiters: usize,
    pub memory_settle: Duration,
    /// How to start bot workers, for the workers scenario.
    pub workers: workers::PoolConfig,
}

impl Context {
    /// The same settings against another server.
    fn against(&self, target: Target, server_pid: u32) -> Context {
        Context {
            target: Arc::new(target),
            server_pid: Some(server_pid),
            workers: self.workers.clone(),
            ..*self
        }
    }
}

impl BenchArgs {
    fn check(&self) -> Result<(), BenchError> {
        for (flag, value) in [
            (
                "--duration",
                usize::try_from(self.duration).unwrap_or(usize::MAX),
            ),
            ("--concurrency", self.concurrency),
            ("--fanout-waiters", self.fanout_waiters),
            ("--fanout-rounds", self.fanout_rounds),
            ("--memory-waiters", self.memory_waiters),
            ("--connect-parallelism", self.connect_parallelism),
        ] {
            if value == 0 {
                return Err(BenchError::Usage(format!("{flag} must be at least 1")));
            }
        }
        Ok(())
    }

    fn runs(&self, scenario: Scenario) -> bool {
        self.only.is_empty() || self.only.contains(&scenario)
    }
}

/// Runs the selected scenarios against a server (started here unless `--url`) and prints the
/// figures. Fails if the server cannot be started or a scenario cannot be set up; errors
/// during measurement are counted and printed, not fatal.
pub async fn run(args: BenchArgs, workers: workers::PoolConfig) -> Result<(), BenchError> {
    // On SIGINT or SIGTERM the bench is dropped mid-way, which kills a server it started.
    tokio::select! {
        outcome = bench(args, workers) => outcome,
        signal = interrupted() => Err(BenchError::Interrupted(signal)),
    }
}

/// Resolves with the signal's name on SIGINT or SIGTERM.
async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return "SIGINT",
                _ = terminate.recv() => return "SIGTERM",
            }
        }
    }
    match tokio::signal::ctrl_c().await {
        Ok(()) => "SIGINT",
        // Signals cannot be watched: never interrupt.
        Err(_) => std::future::pending().await,
    }
}

async fn bench(args: BenchArgs, workers: workers::PoolConfig) -> Result<(), BenchError> {
    args.check()?;
    let mut args = args;
    // Each waiting sync holds a socket here too.
    let files = rlimit::increase_nofile_limit(u64::MAX).ok();
    if args.runs(Scenario::Memory)
        && let Some(files) = files
    {
        let room = usize::try_from(files)
            .unwrap_or(usize::MAX)
            .saturating_sub(256);
        if args.memory_waiters > room {
            println!(
                "note: the open-file limit is {files}; --memory-waiters lowered from {} to {room}",
                args.memory_waiters
            );
            args.memory_waiters = room.max(1);
        }
    }

    println!("mcp-multiplayer bench");
    let (mut server, target, server_pid) = match &args.url {
        Some(url) => {
            let target = Target::resolve(url).await.map_err(BenchError::Usage)?;
            println!(
                "server: {url} ({}), not started here; {}",
                target.addr,
                match args.server_pid {
                    Some(pid) => format!("pid {pid} for memory and CPU readings"),
                    None => "no --server-pid, so no memory or CPU readings".into(),
                }
            );
            (None, target, args.server_pid)
        }
        None => {
            let (server, target) = start_server(ServerAuth::Dev).await?;
            let pid = server.pid;
            (Some(server), target, Some(pid))
        }
    };
    println!(
        "storage: the server's SQLite database is durable: WAL journal with synchronous=FULL, so every \
         acknowledged write (post_message, create_channel…) has been fsync'd; concurrent writes share \
         a group commit"
    );
    println!(
        "machine: {} CPU(s), shared by the server and this load generator; open-file limit {}",
        std::thread::available_parallelism().map_or(1, usize::from),
        files.map_or_else(|| "unknown".into(), |files| files.to_string())
    );

    let mut context = Context {
        target: Arc::new(target),
        server_pid,
        duration: Duration::from_secs(args.duration),
        concurrency: args.concurrency,
        connect_parallelism: args.connect_parallelism,
        fanout_waiters: args.fanout_waiters,
        fanout_rounds: args.fanout_rounds,
        fanout_settle: Duration::from_millis(args.fanout_settle_ms),
        memory_waiters: args.memory_waiters,
        memory_settle: Duration::from_millis(args.memory_settle_ms),
        workers,
    };
    let (mut rows, mut failures) = scenarios(&args, &context).await;

    if args.runs(Scenario::Memory) {
        // Earlier scenarios leave freed memory that the allocator keeps and the waiters would
        // reuse, which hides their cost; a server started here is replaced by a fresh one.
        let ran_before = args
            .only
            .iter()
            .any(|scenario| *scenario != Scenario::Memory)
            || args.only.is_empty();
        let mut ready = true;
        if ran_before && server.is_none() {
            println!();
            println!(
                "note: the server has run the other scenarios; memory it freed but kept makes the \
                 per-waiter figures below look smaller (use --only memory on a fresh server)"
            );
        }
        if ran_before && let Some(old) = server.take() {
            stop_server(old).await;
            println!();
            println!("starting a fresh server so the memory figures start from a clean heap");
            match start_server(ServerAuth::Dev).await {
                Ok((fresh, target)) => {
                    context.server_pid = Some(fresh.pid);
                    context.target = Arc::new(target);
                    server = Some(fresh);
                }
                Err(error) => {
                    println!("  memory: {error}");
                    failures.push(format!("memory: {error}"));
                    ready = false;
                }
            }
        }
        if ready {
            match memory::memory(&context).await {
                Ok(row) => rows.push(row),
                Err(error) => {
                    println!("  memory: {error}");
                    failures.push(format!("memory: {error}"));
                }
            }
        }
    }

    match server {
        Some(server) => stop_server(server).await,
        None => {
            if let Some(memory) = context.server_pid.and_then(procfs::memory) {
                println!();
                println!(
                    "server RSS at the end: {} (peak {})",
                    stats::mb(memory.rss_kib),
                    stats::mb(memory.peak_kib)
                );
            }
        }
    }
    report::print_summary(&rows);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(BenchError::Failed(failures))
    }
}

/// Starts a server and prints what it is.
async fn start_server(auth: ServerAuth) -> Result<(ServerProcess, Target), BenchError> {
    let server = ServerProcess::start(auth).await?;
    let target = Target::at(server.addr).map_err(BenchError::Server)?;
    println!(
        "server: started {} serve (pid {}) on {}, data in {} (removed afterwards)",
        server.exe.display(),
        server.pid,
        server.addr,
        server.data_dir().display()
    );
    println!(
        "        --rate-limit 0 (no per-principal limit), --max-waiting-syncs 0 (no cap), RUST_LOG=warn"
    );
    if let Some(memory) = procfs::memory(server.pid) {
        println!("        RSS at start: {}", stats::mb(memory.rss_kib));
    }
    Ok((server, target))
}

/// Prints a started server's final figures and stops it.
async fn stop_server(server: ServerProcess) {
    println!();
    if let Some(memory) = procfs::memory(server.pid) {
        println!(
            "server pid {}: RSS at the end {} (peak {})",
            server.pid,
            stats::mb(memory.rss_kib),
            stats::mb(memory.peak_kib)
        );
    }
    println!(
        "server pid {}: {} log line(s) at warn level or above (relayed to stderr with [server]; one is the dev-auth notice)",
        server.pid,
        server.log_lines()
    );
    server.stop().await;
}

/// Runs each selected scenario but memory, going on after one fails. Returns the rows and the
/// failures.
async fn scenarios(args: &BenchArgs, context: &Context) -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut fail = |name: &str, error: BenchError| {
        println!("  {name}: {error}");
        failures.push(format!("{name}: {error}"));
    };

    let mut baselines = throughput::Baselines::default();
    if args.runs(Scenario::Baseline) {
        match throughput::baselines(context).await {
            Ok((baseline_rows, measured)) => {
                baselines = measured;
                rows.extend(baseline_rows);
            }
            Err(error) => fail("baseline", error),
        }
    }
    if args.runs(Scenario::Post) || args.runs(Scenario::Get) {
        match throughput::prepare_channels(context).await {
            Ok(channels) => {
                for (scenario, tool) in [
                    (Scenario::Post, "post_message"),
                    (Scenario::Get, "get_channel"),
                ] {
                    if args.runs(scenario) {
                        match throughput::tool_phase(context, &channels, tool, &baselines).await {
                            Ok(row) => rows.push(row),
                            Err(error) => fail(tool, error),
                        }
                    }
                }
            }
            Err(error) => fail("post/get set-up", error),
        }
    }
    if args.runs(Scenario::Fanout) {
        match fanout::fanout(context).await {
            Ok(fanout_rows) => rows.extend(fanout_rows),
            Err(error) => fail("fan-out", error),
        }
    }
    if args.runs(Scenario::Bots) {
        match bot_cost::bot_cost(context).await {
            Ok(bot_rows) => rows.extend(bot_rows),
            Err(error) => fail("bots", error),
        }
    }
    if args.runs(Scenario::Workers) {
        match worker_cost::worker_cost(context).await {
            Ok(worker_rows) => rows.extend(worker_rows),
            Err(error) => fail("workers", error),
        }
    }
    if args.runs(Scenario::Transcript) {
        match transcript_cost::transcript_cost(context).await {
            Ok(transcript_rows) => rows.extend(transcript_rows),
            Err(error) => fail("transcript", error),
        }
    }
    if args.runs(Scenario::Games) {
        match games::games(context).await {
            Ok(game_rows) => rows.extend(game_rows),
            Err(error) => fail("games", error),
        }
    }
    if args.runs(Scenario::Instances) {
        match &args.postgres_url {
            Some(postgres) => match instances::instances(context, postgres).await {
                Ok(instance_rows) => rows.extend(instance_rows),
                Err(error) => fail("instances", error),
            },
            None => {
                println!();
                println!("instances: skipped; give --postgres-url (or MCP_BENCH_POSTGRES_URL)");
            }
        }
    }
    if args.runs(Scenario::Auth) {
        if args.url.is_some() {
            println!();
            println!("auth: skipped with --url (it starts a dev and an OAuth server of its own)");
        } else {
            match auth_cost::auth_cost(context).await {
                Ok(auth_rows) => rows.extend(auth_rows),
                Err(error) => fail("auth", error),
            }
        }
    }
    (rows, failures)
}
