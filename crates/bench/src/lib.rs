//! Placeholder while the load generator is written.

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {}

#[derive(Debug, thiserror::Error)]
#[error("bench failed: {0}")]
pub struct BenchError(String);

pub async fn run(_args: BenchArgs) -> Result<(), BenchError> {
    Err(BenchError("not written yet".into()))
}
