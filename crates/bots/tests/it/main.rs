//! The bots crate through its public API: hostile code, determinism, the builtin bots.
//! One test binary, so the engine is linked once.

mod api;
mod blackjack;
mod chess;
mod determinism;
mod fetches;
mod fuzz_commitment;
mod guess;
mod hostile;
mod judge;
mod python;
mod rps;
mod sealed;
mod support;
mod table;
mod tictactoe;
mod timers;

/// How events run in this binary: in the calling thread.
mod runner {
    pub use bots::run_event;
}
