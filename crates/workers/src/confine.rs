//! What a worker does to itself before it reads its first job, so that bot code, even if it
//! broke out of its interpreter, could do nothing but compute and answer on its pipes:
//!
//! - **Death with the parent** (`PR_SET_PDEATHSIG`): a worker never outlives the server.
//! - **Lower CPU priority** (`nice`): request handling wins a contended core.
//! - **Resource limits**: an address-space cap (the memory cap, which also stops runaway
//!   native allocations the interpreters do not count), no core dumps (bot memory stays in the
//!   process), no file writes (`RLIMIT_FSIZE` 0) and no new descriptors (`RLIMIT_NOFILE` 0).
//! - **A seccomp filter**, last, as an allowlist: reading standard input, writing standard
//!   output and error, memory management, clocks, futexes, signals to itself and exiting.
//!   New threads are allowed (`clone` with `CLONE_THREAD`), new processes are not.
//!   Opening or inspecting a path fails with `EACCES` (C libraries probe files such as
//!   `/proc/sys/vm/overcommit_memory` and cope with a refusal). Everything else (sockets,
//!   `fork`/`clone`/`execve`, `kill` of another process, `ptrace`, …) kills the worker with
//!   `SIGSYS`, which the parent reports. Memory may never be mapped executable, so there is
//!   nowhere to put injected code.
//!
//! The filters are installed on every thread (`TSYNC`) and imply `no_new_privs`.

use std::collections::BTreeMap;
use std::io;

use rustix::process::{Resource, Rlimit, Signal};
use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

/// How a worker confines itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    /// Address-space cap, in bytes.
    pub memory_bytes: u64,
    /// Niceness to add (0–19); higher runs later.
    pub nice: i32,
}

impl Default for Confinement {
    fn default() -> Self {
        Confinement {
            memory_bytes: 1024 * 1024 * 1024,
            nice: 10,
        }
    }
}

/// Why a worker could not confine itself; it then exits without taking a job.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("{what}: {source}")]
    Os {
        what: &'static str,
        source: io::Error,
    },
    #[error("seccomp: {0}")]
    Seccomp(String),
}

fn os(what: &'static str) -> impl FnOnce(rustix::io::Errno) -> ConfineError {
    move |errno| ConfineError::Os {
        what,
        source: errno.into(),
    }
}

/// Confines the calling process. Irreversible.
pub fn confine(confinement: &Confinement) -> Result<(), ConfineError> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(os("parent death signal"))?;
    // `setpriority` on Linux applies to the calling thread; a worker has only one.
    let nice = confinement.nice.clamp(0, 19);
    if nice > 0 {
        let current = rustix::process::getpriority_process(None).map_err(os("getpriority"))?;
        rustix::process::setpriority_process(None, (current + nice).min(19))
            .map_err(os("setpriority"))?;
    }
    let limit = |resource, value: u64, what| {
        rustix::process::setrlimit(
            resource,
            Rlimit {
                current: Some(value),
                maximum: Some(value),
            },
        )
        .map_err(os(what))
    };
    limit(
        Resource::As,
        confinement.memory_bytes,
        "address-space limit",
    )?;
    limit(Resource::Core, 0, "core-dump limit")?;
    limit(Resource::Fsize, 0, "file-size limit")?;
    limit(Resource::Nofile, 0, "descriptor limit")?;
    install_filter()
}

/// The syscalls a worker needs once it is running jobs.
fn allowed() -> Result<BTreeMap<i64, Vec<SeccompRule>>, ConfineError> {
    let err = |error: seccompiler::BackendError| ConfineError::Seccomp(error.to_string());
    let arg_is = |index: u8, value: u64| {
        SeccompCondition::new(index, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value).map_err(err)
    };
    let rule = |conditions: Vec<SeccompCondition>| SeccompRule::new(conditions).map_err(err);
    let not_executable = |prot_index: u8| {
        SeccompCondition::new(
            prot_index,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64),
            0,
        )
        .map_err(err)
    };
    let me = u64::from(
        rustix::process::getpid()
            .as_raw_nonzero()
            .get()
            .unsigned_abs(),
    );

    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut always = |syscall: i64| {
        rules.insert(syscall, Vec::new());
    };
    for syscall in [
        libc::SYS_brk,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_futex,
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_gettimeofday,
        libc::SYS_getrandom,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_getpriority,
        libc::SYS_getcpu,
        libc::SYS_sched_yield,
        libc::SYS_sched_getaffinity,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigaction,
        libc::SYS_sigaltstack,
        libc::SYS_restart_syscall,
        libc::SYS_close,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ] {
        always(syscall);
    }
    rules.insert(libc::SYS_read, vec![rule(vec![arg_is(0, 0)?])?]);
    rules.insert(
        libc::SYS_write,
        vec![rule(vec![arg_is(0, 1)?])?, rule(vec![arg_is(0, 2)?])?],
    );
    rules.insert(libc::SYS_mmap, vec![rule(vec![not_executable(2)?])?]);
    rules.insert(libc::SYS_mprotect, vec![rule(vec![not_executable(2)?])?]);
    // The C library reads its own auxiliary vector and names its anonymous mappings, and a
    // runtime names its thread; no other `prctl` is needed.
    rules.insert(
        libc::SYS_prctl,
        vec![
            rule(vec![arg_is(0, PR_GET_AUXV)?])?,
            rule(vec![arg_is(0, libc::PR_SET_VMA as u64)?])?,
            rule(vec![arg_is(0, libc::PR_SET_NAME as u64)?])?,
        ],
    );
    // Threads, not processes: a runtime may run an event on a thread of its own (Python does,
    // for its stack). `clone` passes only with CLONE_THREAD; `clone3`, whose flags a filter
    // cannot read, fails with ENOSYS below, and the C library falls back to `clone`.
    rules.insert(
        libc::SYS_clone,
        vec![rule(vec![
            SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
                libc::CLONE_THREAD as u64,
            )
            .map_err(err)?,
        ])?],
    );
    for syscall in [libc::SYS_clone3, libc::SYS_set_robust_list, libc::SYS_rseq] {
        rules.insert(syscall, Vec::new());
    }
    // `abort()` raises SIGABRT on its own thread; no signal may reach another process.
    rules.insert(libc::SYS_tgkill, vec![rule(vec![arg_is(0, me)?])?]);
    // Let through here, and refused with an error by the second filter.
    for syscall in PATH_SYSCALLS {
        rules.insert(syscall, Vec::new());
    }
    Ok(rules)
}

/// `prctl` option that copies the auxiliary vector (Linux 6.4), not yet in `libc`.
const PR_GET_AUXV: u64 = 0x4155_5856;

/// Syscalls that name a path: refused with `EACCES` rather than killing the worker.
#[cfg(target_arch = "x86_64")]
const PATH_SYSCALLS: [i64; 8] = [
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_stat,
    libc::SYS_lstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_access,
];
#[cfg(not(target_arch = "x86_64"))]
const PATH_SYSCALLS: [i64; 5] = [
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_faccessat,
];

/// Installs three filters; the kernel applies the strictest verdict. The last kills on anything
/// not allowed; the first two turn `clone3` into `ENOSYS` and the path syscalls into `EACCES`,
/// which the last lets through. In this order because the last forbids installing filters.
fn install_filter() -> Result<(), ConfineError> {
    let fail = |error: &dyn std::fmt::Display| ConfineError::Seccomp(error.to_string());
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|error| fail(&error))?;
    let paths: BTreeMap<i64, Vec<SeccompRule>> = PATH_SYSCALLS
        .into_iter()
        .map(|syscall| (syscall, Vec::new()))
        .collect();
    let no_clone3: BTreeMap<i64, Vec<SeccompRule>> =
        [(libc::SYS_clone3, Vec::new())].into_iter().collect();
    let filters = [
        SeccompFilter::new(
            no_clone3,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        ),
        SeccompFilter::new(
            paths,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EACCES as u32),
            arch,
        ),
        SeccompFilter::new(
            allowed()?,
            SeccompAction::KillProcess,
            SeccompAction::Allow,
            arch,
        ),
    ];
    for filter in filters {
        let program: seccompiler::BpfProgram = filter
            .map_err(|error| fail(&error))?
            .try_into()
            .map_err(|error: seccompiler::BackendError| fail(&error))?;
        seccompiler::apply_filter_all_threads(&program).map_err(|error| fail(&error))?;
    }
    Ok(())
}
