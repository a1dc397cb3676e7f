//! The parent's side of one worker process: start it, hand it a job, watch its CPU while it
//! runs, and kill it (`SIGKILL`) when the job overruns; then say what became of it.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use bots::job::{Outcome, decode_outcome};
use bots::{BotError, BotErrorKind, Job};
use tokio::io::{AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::oneshot;

use crate::frame::{MAX_REPLY_BYTES, await_ready, receive_frame, send_frame};

/// How to start a worker: a program, its arguments, and the only environment it gets (the
/// server's own environment, which may hold secrets, is not passed on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
}

impl WorkerCommand {
    /// This very executable with `args` (the server passes its hidden worker subcommand).
    /// `/proc/self/exe` still names the running binary after an upgrade replaced the file.
    pub fn this_executable(args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        WorkerCommand {
            program: PathBuf::from("/proc/self/exe"),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
        }
    }
}

/// How the watchdog judges a running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watchdog {
    /// How often the worker's CPU time is read while a job runs.
    pub poll: Duration,
    /// CPU time past the job's budget before the worker is killed. The runtimes stop most
    /// overruns themselves at the budget; this is for native code that never yields.
    pub grace: Duration,
    /// Wall-clock time, as a multiple of the budget, after which a job is stopped even if its
    /// worker got too little CPU to reach the budget (a saturated machine).
    pub wall_factor: u32,
    /// The floor of that wall-clock limit.
    pub min_wall: Duration,
    /// Address space past which a worker is replaced after its job. The allocator keeps what
    /// one greedy event reserved, and a worker near its cap would fail the next, innocent
    /// event; half the cap leaves every event the room its own heap cap promises.
    pub retire_above_bytes: u64,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog {
            poll: Duration::from_millis(5),
            grace: Duration::from_millis(10),
            wall_factor: 20,
            min_wall: Duration::from_secs(1),
            retire_above_bytes: crate::confine::Confinement::default().memory_bytes / 2,
        }
    }
}

/// What a job cost and how it ended.
#[derive(Debug)]
pub(crate) struct Ran {
    pub outcome: Outcome,
    /// CPU time the worker used on the job.
    pub cpu: Duration,
    /// `false` when the worker is gone (killed or dead) and must be replaced.
    pub worker_alive: bool,
}

/// A running, confined worker that has announced itself.
pub(crate) struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pid: u32,
}

/// How long a new worker may take to confine itself and announce it.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest piece of a worker's standard error that is logged at once.
const MAX_LOGGED_LINE: usize = 300;
/// Most bytes of one worker's standard error that are logged.
const MAX_LOGGED_BYTES: usize = 16 * 1024;

impl Worker {
    /// Starts a worker and waits until it is confined and ready.
    pub async fn start(command: &WorkerCommand) -> io::Result<Worker> {
        let mut spawn = Command::new(&command.program);
        spawn
            .args(&command.args)
            .env_clear()
            .envs(command.env.iter().map(|(key, value)| (key, value)))
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = spawn_from_keeper(spawn).await?;
        let pid = child.id().unwrap_or_default();
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(log_stderr(pid, stderr));
        }
        let mut stdout = BufReader::new(stdout);
        match tokio::time::timeout(START_TIMEOUT, await_ready(&mut stdout)).await {
            Ok(Ok(())) => Ok(Worker {
                child,
                stdin,
                stdout,
                pid,
            }),
            Ok(Err(error)) => {
                let status = finish(&mut child).await;
                Err(io::Error::other(format!(
                    "the worker did not start ({error}; {})",
                    describe_status(status)
                )))
            }
            Err(_) => {
                finish(&mut child).await;
                Err(io::Error::other(format!(
                    "the worker did not announce itself within {} s",
                    START_TIMEOUT.as_secs()
                )))
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Runs one job under the watchdog. Never fails: a dead or killed worker is an outcome.
    pub async fn run(&mut self, job: &Job, watchdog: &Watchdog) -> Ran {
        let budget = job.limits.cpu;
        let request = job.encode();
        let cpu_before = cpu_time(self.pid);
        let total_before = process_cpu_total(self.pid);
        let started = Instant::now();
        let wall_limit = (budget * watchdog.wall_factor).max(watchdog.min_wall);

        let exchange = async {
            send_frame(&mut self.stdin, &request).await?;
            receive_frame(&mut self.stdout, MAX_REPLY_BYTES).await
        };
        let overrun = async {
            let mut every = tokio::time::interval(watchdog.poll);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let used = cpu_time(self.pid).saturating_sub(cpu_before);
                if used > budget + watchdog.grace || started.elapsed() > wall_limit {
                    return used;
                }
            }
        };
        let reply = tokio::select! {
            reply = exchange => reply,
            used = overrun => {
                self.kill().await;
                tracing::info!(worker = self.pid, cpu_ms = used.as_millis() as u64, "bot worker killed: the event overran its budget");
                return Ran {
                    outcome: Err({
                        let mut error = BotError::over_budget(budget);
                        error.message.push_str("; its worker process was stopped");
                        error
                    }),
                    cpu: used,
                    worker_alive: false,
                };
            }
        };
        // Threads that ended during the job (Python runs each event on one) are gone from the
        // per-thread figures; the process's total keeps them, at clock-tick precision.
        let cpu = cpu_time(self.pid)
            .saturating_sub(cpu_before)
            .max(process_cpu_total(self.pid).saturating_sub(total_before));
        match reply {
            Ok(bytes) => match decode_outcome(&bytes, &job.limits) {
                Ok(outcome) => {
                    let size = address_space(self.pid);
                    let retire = size > watchdog.retire_above_bytes;
                    if retire {
                        tracing::debug!(
                            worker = self.pid,
                            bytes = size,
                            "bot worker retired: its address space grew past the mark"
                        );
                        self.kill().await;
                    }
                    Ran {
                        outcome,
                        cpu,
                        worker_alive: !retire,
                    }
                }
                Err(reason) => {
                    // Only a subverted or broken worker sends this; it does not get another job.
                    tracing::warn!(worker = self.pid, %reason, "bot worker sent a malformed reply; killed");
                    self.kill().await;
                    Ran {
                        outcome: Err(BotError::new(
                            BotErrorKind::Crashed,
                            "the bot's worker process sent a malformed reply",
                        )),
                        cpu,
                        worker_alive: false,
                    }
                }
            },
            Err(error) => {
                let status = finish(&mut self.child).await;
                let outcome = Err(death_error(status, &error));
                Ran {
                    outcome,
                    cpu,
                    worker_alive: false,
                }
            }
        }
    }

    /// Kills the worker at once and reaps it.
    pub async fn kill(&mut self) {
        finish(&mut self.child).await;
    }
}

/// A worker dies with the *thread* that started it: `PR_SET_PDEATHSIG` follows the parent
/// thread, not the process. Runtime threads come and go (a blocking-pool thread, a test's
/// thread), so every worker is started from one thread that lives as long as the process.
async fn spawn_from_keeper(command: Command) -> io::Result<Child> {
    type Request = (
        Command,
        tokio::runtime::Handle,
        oneshot::Sender<io::Result<Child>>,
    );
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (requests, inbox) = mpsc::channel::<Request>();
        let started = std::thread::Builder::new()
            .name("bot-worker-keeper".to_owned())
            .spawn(move || {
                for (mut command, runtime, reply) in inbox {
                    // The child is reaped by the runtime that asked for it.
                    let _entered = runtime.enter();
                    let _ = reply.send(command.spawn());
                }
            });
        if let Err(error) = started {
            tracing::error!(%error, "the thread that starts bot workers could not start");
        }
        Mutex::new(requests)
    });
    let (reply, answer) = oneshot::channel();
    let request = (command, tokio::runtime::Handle::current(), reply);
    let sent = keeper
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .send(request);
    match sent {
        Ok(()) => answer
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the worker keeper thread is gone"))),
        // No keeper thread: start the worker from here rather than not at all.
        Err(mpsc::SendError((mut unsent, _, _))) => unsent.spawn(),
    }
}

/// Kills (if still running) and reaps a child.
async fn finish(child: &mut Child) -> Option<ExitStatus> {
    let _ = child.start_kill();
    child.wait().await.ok()
}

/// What a worker's unexpected death means for the event it was running.
fn death_error(status: Option<ExitStatus>, error: &io::Error) -> BotError {
    let signal = status.and_then(|status| status.signal());
    let (kind, message) = match signal {
        Some(libc::SIGABRT) | Some(libc::SIGKILL) => (
            BotErrorKind::Memory,
            "the event ran out of memory; its worker process was stopped".to_owned(),
        ),
        Some(libc::SIGSEGV) | Some(libc::SIGBUS) => (
            BotErrorKind::StackOverflow,
            "the event overflowed the native stack (recursion too deep); its worker process was stopped"
                .to_owned(),
        ),
        Some(libc::SIGSYS) => {
            tracing::warn!(
                "a bot worker made a forbidden system call and was killed by its seccomp filter"
            );
            (
                BotErrorKind::Crashed,
                "the event's worker process made a forbidden system call and was stopped".to_owned(),
            )
        }
        _ => {
            tracing::warn!(status = %describe_status(status), %error, "a bot worker died");
            (
                BotErrorKind::Crashed,
                format!(
                    "the event's worker process died ({})",
                    describe_status(status)
                ),
            )
        }
    };
    BotError::new(kind, message)
}

fn describe_status(status: Option<ExitStatus>) -> String {
    match status {
        None => "status unknown".to_owned(),
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => status.to_string(),
        },
    }
}

/// CPU time the live threads of a process have used: the sum of
/// `/proc/<pid>/task/*/schedstat` (nanoseconds on a CPU), for the watchdog. A thread that ends
/// leaves the sum; a thread that ends while it is being read is skipped. Where the kernel keeps
/// no schedstat, the process's total from `/proc/<pid>/stat`. Zero once the process is gone.
pub(crate) fn cpu_time(pid: u32) -> Duration {
    schedstat_nanos(pid).map_or_else(|| process_cpu_total(pid), Duration::from_nanos)
}

fn schedstat_nanos(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    let mut read_any = false;
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += text.split_ascii_whitespace().next()?.parse::<u64>().ok()?;
        read_any = true;
    }
    read_any.then_some(total)
}

/// CPU time a process has used in all, ended threads included (`utime` + `stime` of
/// `/proc/<pid>/stat`, in clock ticks). Zero once the process is gone.
fn process_cpu_total(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name, which is in parentheses and may contain spaces.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // utime and stime are fields 14 and 15 of the file; `rest` starts at field 3.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&index| fields.get(index)?.parse::<u64>().ok())
        .sum();
    let per_second = rustix::param::clock_ticks_per_second();
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / per_second.max(1))
}

/// A process's address space in bytes (`VmSize`, from `/proc/<pid>/statm`); 0 if unknown.
fn address_space(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|text| text.split_ascii_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |pages| {
            pages.saturating_mul(rustix::param::page_size() as u64)
        })
}

/// Logs what a worker writes to standard error (panic messages, confinement failures), cut
/// short and escaped, as a field: it may hold bot-chosen text. At most [`MAX_LOGGED_BYTES`] per
/// worker are logged; the rest is read and dropped so the worker never blocks on a full pipe.
async fn log_stderr(pid: u32, mut stderr: tokio::process::ChildStderr) {
    let mut buffer = [0u8; 1024];
    let mut logged = 0;
    loop {
        let read = match stderr.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if logged >= MAX_LOGGED_BYTES {
            continue;
        }
        logged += read;
        let text = String::from_utf8_lossy(&buffer[..read]);
        let cut: String = text.trim_end().chars().take(MAX_LOGGED_LINE).collect();
        tracing::warn!(worker = pid, output = %cut.escape_debug(), "bot worker wrote to stderr");
        if logged >= MAX_LOGGED_BYTES {
            tracing::warn!(
                worker = pid,
                "bot worker wrote more to stderr; the rest is not logged"
            );
        }
    }
}
