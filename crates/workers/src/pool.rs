//! The pool: a fixed number of worker processes, jobs handed out by the [`Fair`] policy, a
//! replacement started for every worker that dies or is killed, and a shutdown that kills them
//! all, whatever they are running.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bots::Job;
use bots::job::Outcome;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::fair::{Account, Fair};
use crate::process::{Watchdog, Worker, WorkerCommand};

/// How a pool is made.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Worker processes kept running.
    pub size: usize,
    pub command: WorkerCommand,
    pub watchdog: Watchdog,
}

impl PoolConfig {
    /// One worker per core, the default.
    pub fn per_core(command: WorkerCommand) -> Self {
        PoolConfig {
            size: std::thread::available_parallelism().map_or(2, usize::from),
            command,
            watchdog: Watchdog::default(),
        }
    }
}

/// Why a job did not run. Never the bot's fault: the caller retries later, and must not count
/// it against the bot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("the bot worker pool is shut down")]
    Closed,
}

/// What a waiting job carries.
struct Pending {
    account: Account,
    job: Job,
    reply: oneshot::Sender<Result<Outcome, PoolError>>,
}

struct State {
    idle: Vec<Worker>,
    fair: Fair<Pending>,
    /// Workers being started (new or replacements).
    starting: usize,
    /// Worker processes started since the pool began, replacements included.
    started: u64,
}

struct Shared {
    config: PoolConfig,
    state: Mutex<State>,
    closed: CancellationToken,
}

/// A pool of worker processes. Cheap to clone; clones share the workers.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

/// Counters for logs, metrics and benchmarks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    pub idle: usize,
    pub waiting: usize,
    pub starting: usize,
    /// Worker processes started in all, the first ones included.
    pub started: u64,
}

/// Pause before retrying a worker that failed to start.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);

impl Pool {
    /// Starts the pool. The first worker is started before this returns, so a server whose
    /// workers cannot run (a missing binary, a kernel without seccomp) fails at start with the
    /// reason; the others start in the background.
    pub async fn start(config: PoolConfig) -> io::Result<Pool> {
        let first = Worker::start(&config.command).await?;
        let size = config.size.max(1);
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State {
                idle: vec![first],
                fair: Fair::default(),
                starting: 0,
                started: 1,
            }),
            closed: CancellationToken::new(),
        });
        for _ in 1..size {
            shared.start_worker();
        }
        Ok(Pool { shared })
    }

    /// Runs `job` on a worker when its turn comes, and returns its outcome. A job that overran
    /// or whose worker died comes back as the bot's error; `Err` only when the pool shut down.
    pub async fn run(&self, account: Account, job: Job) -> Result<Outcome, PoolError> {
        let (reply, outcome) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            if self.shared.closed.is_cancelled() {
                return Err(PoolError::Closed);
            }
            let principal = account.principal.clone();
            state.fair.push(
                &principal,
                Pending {
                    account,
                    job,
                    reply,
                },
            );
        }
        self.shared.dispatch();
        outcome.await.unwrap_or(Err(PoolError::Closed))
    }

    /// Kills every worker, running or idle, and fails every waiting job with
    /// [`PoolError::Closed`]. Returns at once; the kills complete in the background.
    pub fn shutdown(&self) {
        self.shared.closed.cancel();
        let (idle, waiting) = {
            let mut state = self.shared.lock();
            (std::mem::take(&mut state.idle), state.fair.drain())
        };
        // Dropping a worker kills its process (`kill_on_drop`).
        drop(idle);
        for pending in waiting {
            let _ = pending.reply.send(Err(PoolError::Closed));
        }
    }

    pub fn stats(&self) -> PoolStats {
        let state = self.shared.lock();
        PoolStats {
            idle: state.idle.len(),
            waiting: state.fair.waiting(),
            starting: state.starting,
            started: state.started,
        }
    }

    /// CPU used in all by the bots `principal` pays for.
    pub fn cpu_of_principal(&self, principal: &str) -> Duration {
        self.shared.lock().fair.total_of_principal(principal)
    }

    /// CPU used in all by the bots of `channel`.
    pub fn cpu_of_channel(&self, channel: &str) -> Duration {
        self.shared.lock().fair.total_of_channel(channel)
    }
}

impl Shared {
    /// A std mutex: held for queue operations only, never across an await.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Hands idle workers to waiting jobs, as the policy picks them.
    fn dispatch(self: &Arc<Self>) {
        let mut state = self.lock();
        while !state.idle.is_empty() {
            let idle = state.idle.len();
            let Some((_, pending)) = state.fair.pick(idle, Instant::now()) else {
                return;
            };
            let Some(worker) = state.idle.pop() else {
                return;
            };
            let shared = Arc::clone(self);
            tokio::spawn(async move { shared.run_on(worker, pending).await });
        }
    }

    async fn run_on(self: Arc<Self>, mut worker: Worker, pending: Pending) {
        let Pending {
            account,
            job,
            reply,
        } = pending;
        let ran = tokio::select! {
            ran = worker.run(&job, &self.config.watchdog) => ran,
            () = self.closed.cancelled() => {
                worker.kill().await;
                let _ = reply.send(Err(PoolError::Closed));
                return;
            }
        };
        {
            let mut state = self.lock();
            state.fair.finished(&account, ran.cpu, Instant::now());
            if ran.worker_alive && !self.closed.is_cancelled() {
                state.idle.push(worker);
            }
        }
        // The replacement is under way before anyone hears of the kill.
        if !ran.worker_alive {
            self.start_worker();
        }
        let _ = reply.send(Ok(ran.outcome));
        self.dispatch();
    }

    /// Starts one worker in the background, retrying until it starts or the pool closes.
    fn start_worker(self: &Arc<Self>) {
        if self.closed.is_cancelled() {
            return;
        }
        self.lock().starting += 1;
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let started = tokio::select! {
                    started = Worker::start(&shared.config.command) => started,
                    () = shared.closed.cancelled() => break,
                };
                match started {
                    Ok(worker) => {
                        let mut state = shared.lock();
                        state.starting -= 1;
                        state.started += 1;
                        if !shared.closed.is_cancelled() {
                            tracing::debug!(worker = worker.pid(), "bot worker started");
                            state.idle.push(worker);
                        }
                        drop(state);
                        shared.dispatch();
                        return;
                    }
                    Err(error) => {
                        tracing::error!(%error, "a bot worker could not start; retrying");
                        tokio::select! {
                            () = tokio::time::sleep(RESTART_BACKOFF) => {}
                            () = shared.closed.cancelled() => break,
                        }
                    }
                }
            }
            shared.lock().starting -= 1;
        });
    }
}
