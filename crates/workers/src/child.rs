//! The worker process: confine itself, say [`READY`](crate::frame::READY), then answer jobs
//! from standard input on standard output, one at a time, until its input closes.
//!
//! A worker keeps nothing between jobs: each one runs in a fresh runtime. It dies whenever the
//! parent decides (the watchdog) or the kernel does (the address-space cap, the seccomp filter);
//! the parent then starts another.

use std::io::{self, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use bots::job::{Job, encode_outcome};
use bots::{BotError, BotErrorKind};

use crate::confine::{Confinement, confine};
use crate::frame::{MAX_JOB_BYTES, READY, read_frame, write_frame};

/// Exit status of a worker that could not confine itself.
pub const EXIT_UNCONFINED: u8 = 70;
/// Exit status of a worker whose pipes failed or that read a malformed frame.
pub const EXIT_PROTOCOL: u8 = 71;

/// The worker's `main`: confine, announce, serve; returns the process's exit status. Call it
/// before starting any thread.
pub fn serve(confinement: &Confinement) -> u8 {
    if let Err(error) = confine(confinement) {
        // Standard error is the parent's pipe, which logs it.
        let _ = writeln!(io::stderr(), "bot worker: cannot confine itself: {error}");
        return EXIT_UNCONFINED;
    }
    match answer_jobs() {
        Ok(()) => 0,
        Err(error) => {
            let _ = writeln!(io::stderr(), "bot worker: {error}");
            EXIT_PROTOCOL
        }
    }
}

fn answer_jobs() -> io::Result<()> {
    let mut input = io::stdin().lock();
    let mut output = io::stdout().lock();
    output.write_all(READY)?;
    output.flush()?;
    while let Some(frame) = read_frame(&mut input, MAX_JOB_BYTES)? {
        let outcome = match Job::decode(&frame) {
            Ok(job) => run_caught(&job),
            Err(reason) => Err(BotError::new(BotErrorKind::Internal, reason)),
        };
        write_frame(&mut output, &encode_outcome(&outcome))?;
    }
    Ok(())
}

/// Runs a job; a panic inside a runtime is the bot's event failing, not the worker's end.
fn run_caught(job: &Job) -> bots::job::Outcome {
    catch_unwind(AssertUnwindSafe(|| job.run())).unwrap_or_else(|_| {
        Err(BotError::new(
            BotErrorKind::Crashed,
            "the bot's runtime panicked while running this event",
        ))
    })
}
