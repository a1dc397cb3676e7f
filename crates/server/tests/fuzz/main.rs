//! Fuzz targets for the HTTP boundary, driven through the real router (`server::app`) in
//! process, so "never a 500" is checked on the status a client would get:
//!
//! - [`arguments`]: REST bodies, paths and queries, and MCP tool arguments;
//! - [`headers`]: `Authorization`, `Host` and `Origin`.
//!
//! One test binary, so the server is linked once. `FUZZ_CASES` sets the cases per target (see
//! the README's testing section).

#[path = "../../../../tests/fuzz/config.rs"]
mod config;

mod arguments;
mod harness;
mod headers;

/// The bot workers of this binary's service: the test binary re-run as one.
#[test]
fn bot_worker() {
    workers::testing::serve_if_worker();
}
