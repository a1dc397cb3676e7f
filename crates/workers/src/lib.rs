//! Bot code runs here: in worker processes the server can kill, never on the server's threads.
//!
//! QuickJS and Monty stop most runaway code themselves, but some native loops (a built-in
//! called on a huge array-like, a giant power) never check back. So every bot event and every
//! check of a bot's source is a [`bots::Job`] sent to a worker process from a [`Pool`]:
//!
//! - [`child`]: the worker's side. It confines itself ([`confine`]: seccomp, rlimits, lower
//!   priority, death with the parent), then answers jobs on its pipes.
//! - `process` (private): the parent's side of one worker: start, send, watch its CPU, kill.
//! - [`fair`]: which waiting job gets the next free worker, so one principal's busy bots
//!   cannot starve another's.
//! - `pool` (private): the workers, replacements for the dead, and shutdown.
//! - [`frame`]: the length-prefixed framing on the pipes.
//! - [`testing`]: lets a test binary act as its own worker.
//!
//! The server starts workers by running its own executable with a hidden subcommand
//! ([`WorkerCommand::this_executable`]), so one binary is all there is to build and ship.

pub mod child;
pub mod confine;
pub mod fair;
pub mod frame;
mod pool;
mod process;
pub mod testing;

pub use confine::Confinement;
pub use fair::Account;
pub use pool::{Pool, PoolConfig, PoolError, PoolStats};
pub use process::{Watchdog, WorkerCommand};
