//! What checking issued tokens costs: `get_channel` throughput against a server checking
//! OAuth-issued tokens, next to one running `--auth dev`, both started fresh here and measured
//! in alternating rounds so that the machine's drift hits both alike. Target: token checks
//! cost at most 15% of throughput.

use crate::client::Target;
use crate::report::Row;
use crate::server::{ServerAuth, ServerProcess};
use crate::throughput::{self, LoadResult};
use crate::{BenchError, Context};

/// Alternating rounds per side.
const ROUNDS: usize = 2;

pub async fn auth_cost(context: &Context) -> Result<Vec<Row>, BenchError> {
    println!();
    println!(
        "== auth: get_channel with OAuth-checked tokens vs --auth dev, {} clients, {ROUNDS}×{} s per side, alternating ==",
        context.concurrency,
        context.duration.as_secs()
    );
    let dev = ServerProcess::start(ServerAuth::Dev).await?;
    let oauth = ServerProcess::start(ServerAuth::OAuth).await?;
    let outcome = measure(context, &dev, &oauth).await;
    dev.stop().await;
    oauth.stop().await;
    outcome
}

async fn measure(
    context: &Context,
    dev: &ServerProcess,
    oauth: &ServerProcess,
) -> Result<Vec<Row>, BenchError> {
    let dev_context = context.against(Target::at(dev.addr).map_err(BenchError::Server)?, dev.pid);
    let oauth_context = context.against(
        Target::at(oauth.addr).map_err(BenchError::Server)?,
        oauth.pid,
    );
    let dev_channels = throughput::prepare_channels(&dev_context).await?;
    let tokens = oauth.personal_tokens(context.concurrency).await?;
    let oauth_channels = throughput::prepare_channels_as(&oauth_context, tokens).await?;

    let mut dev_runs = Vec::with_capacity(ROUNDS);
    let mut oauth_runs = Vec::with_capacity(ROUNDS);
    for round in 1..=ROUNDS {
        let dev_run = throughput::tool_load(&dev_context, &dev_channels, "get_channel").await?;
        println!("  round {round} dev:   {:>8.0} req/s", dev_run.rate());
        dev_runs.push(dev_run);
        let oauth_run =
            throughput::tool_load(&oauth_context, &oauth_channels, "get_channel").await?;
        println!("  round {round} oauth: {:>8.0} req/s", oauth_run.rate());
        oauth_runs.push(oauth_run);
    }
    let (dev_rate, dev_errors) = combined(&dev_runs);
    let (oauth_rate, oauth_errors) = combined(&oauth_runs);
    let cost = if dev_rate > 0.0 {
        (1.0 - oauth_rate / dev_rate) * 100.0
    } else {
        f64::NAN
    };
    println!(
        "  = OAuth token checks cost {cost:.1}% of get_channel throughput (target: at most 15%)"
    );
    let last = |runs: &[LoadResult]| runs.last().and_then(|run| run.latencies);
    Ok(vec![
        Row {
            scenario: format!("get_channel dev auth (c={})", context.concurrency),
            rate: Some(dev_rate),
            latencies: last(&dev_runs),
            errors: dev_errors,
            note: "baseline for the row below".into(),
        },
        Row {
            scenario: format!("get_channel OAuth tokens (c={})", context.concurrency),
            rate: Some(oauth_rate),
            latencies: last(&oauth_runs),
            errors: oauth_errors,
            note: format!("token checks cost {cost:.1}% (target ≤ 15%)"),
        },
    ])
}

/// Requests per second over all rounds, and their errors.
fn combined(runs: &[LoadResult]) -> (f64, usize) {
    let ok: usize = runs.iter().map(|run| run.ok).sum();
    let seconds: f64 = runs.iter().map(|run| run.elapsed.as_secs_f64()).sum();
    let errors = runs.iter().map(|run| run.errors).sum();
    (
        if seconds > 0.0 {
            ok as f64 / seconds
        } else {
            0.0
        },
        errors,
    )
}
