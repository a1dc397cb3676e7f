//! How many cases a fuzz target runs, shared by every `fuzz_*` test through `#[path]` (test
//! binaries of different crates cannot share a module otherwise).
//!
//! `FUZZ_CASES` sets the count (the README's testing section has the 1,000,000-case command);
//! without it each target runs its small CI default, a few seconds at most.

use proptest::test_runner::Config;

/// The proptest configuration of a target whose CI run is `ci_default` cases.
pub fn fuzz_config(ci_default: u32) -> Config {
    let cases = match std::env::var("FUZZ_CASES") {
        Ok(raw) => raw
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("FUZZ_CASES={raw:?} is not a number of cases")),
        Err(_) => ci_default,
    };
    Config {
        cases,
        // A failure is kept as a named regression test beside the target, not as a seed file.
        failure_persistence: None,
        // Shrinking a million-case run's failure can take long; a bounded shrink still gives a
        // small case to read.
        max_shrink_iters: 4096,
        ..Config::default()
    }
}
