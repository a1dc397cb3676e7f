//! The closed-loop throughput phases: baselines (`GET /healthz`, `tools/list`), `post_message`
//! and `get_channel`, each with N clients on their own connections sending back to back for a
//! fixed time.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{CallError, Conn, REQUEST_TIMEOUT, open_many};
use crate::procfs::{CpuMeter, CpuUse};
use crate::report::Row;
use crate::rpc::{self, ResponseError};
use crate::stats::{Latencies, rate};
use crate::{BenchError, Context, channels};

/// What a client does, again and again.
#[derive(Clone)]
pub enum Op {
    Healthz,
    Ping,
    ToolsList,
    Tool { name: &'static str, args: Value },
}

async fn perform(conn: &mut Conn, op: &Op) -> Result<(), CallError> {
    match op {
        Op::Healthz => conn.healthz().await,
        Op::Ping => {
            let result = conn.rpc("ping", json!({}), REQUEST_TIMEOUT, None).await?;
            if result.is_object() {
                Ok(())
            } else {
                Err(CallError::Response(ResponseError::Malformed(
                    "ping returned no result object".into(),
                )))
            }
        }
        Op::ToolsList => {
            let (id, body) = conn
                .rpc_body("tools/list", json!({}), REQUEST_TIMEOUT, None)
                .await?;
            match rpc::tools_listed(&body, id)? {
                0 => Err(CallError::Response(ResponseError::Malformed(
                    "tools/list returned no tools".into(),
                ))),
                _ => Ok(()),
            }
        }
        Op::Tool { name, args } => conn.tool(name, args.clone()).await.map(drop),
    }
}

/// The figures of one phase.
pub struct LoadResult {
    pub ok: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Of the successful requests.
    pub latencies: Option<Latencies>,
    pub cpu: CpuUse,
}

impl LoadResult {
    pub fn rate(&self) -> f64 {
        rate(self.ok, self.elapsed)
    }

    /// Prints the phase's line (and its first error, if any).
    pub(crate) fn print(&self, label: &str, clients: usize) {
        let latencies = self
            .latencies
            .map_or_else(|| "no successful requests".to_owned(), |l| l.brief());
        println!(
            "{label:<14} c={clients} {:.1} s: {:>8.0} req/s  {latencies}  errors {}  {}",
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.errors,
            self.cpu.brief()
        );
        if let Some(error) = &self.first_error {
            println!("  first error: {error}");
        }
    }
}

/// Each worker runs its op back to back until `duration` has passed.
pub async fn closed_loop(
    workers: Vec<(Conn, Op)>,
    duration: Duration,
    server_pid: Option<u32>,
) -> LoadResult {
    let meter = CpuMeter::start(server_pid);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = JoinSet::new();
    for (mut conn, op) in workers {
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(4096);
            let (mut errors, mut first_error) = (0usize, None);
            while Instant::now() < deadline {
                let sent = Instant::now();
                match perform(&mut conn, &op).await {
                    Ok(()) => latencies.push(sent.elapsed()),
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| error.to_string());
                    }
                }
            }
            (latencies, errors, first_error)
        });
    }
    let (mut all, mut errors, mut first_error) = (Vec::new(), 0, None);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((latencies, worker_errors, worker_first)) => {
                all.extend(latencies);
                errors += worker_errors;
                if first_error.is_none() {
                    first_error = worker_first;
                }
            }
            Err(error) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("a worker failed: {error}"));
            }
        }
    }
    let elapsed = started.elapsed();
    LoadResult {
        ok: all.len(),
        errors,
        first_error,
        elapsed,
        latencies: Latencies::of(all),
        cpu: meter.finish(),
    }
}

/// Opens one connection per worker, token `token(i)`, each with its op.
pub(crate) async fn workers(
    context: &Context,
    tokens: &[String],
    op: impl Fn(usize) -> Op,
) -> Result<Vec<(Conn, Op)>, BenchError> {
    let opened = open_many(
        &context.target,
        tokens.len(),
        context.connect_parallelism,
        |i| tokens[i].clone(),
        None,
    )
    .await;
    if let Some(error) = opened.first_error {
        return Err(BenchError::Setup(format!(
            "{} of {} connections failed: {error}",
            opened.failures,
            tokens.len()
        )));
    }
    Ok(opened
        .conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| (conn, op(i)))
        .collect())
}

pub(crate) fn row(scenario: String, result: &LoadResult, note: String) -> Row {
    Row {
        scenario,
        rate: Some(result.rate()),
        latencies: result.latencies,
        errors: result.errors,
        note,
    }
}

/// The baselines measured in the same run, to compare the tool figures with.
#[derive(Default)]
pub struct Baselines {
    /// (name, requests per second).
    pub rates: Vec<(&'static str, f64)>,
}

impl Baselines {
    /// `61% of ping, 80% of tools/list`, or `None` without baselines.
    fn compare(&self, rate: f64) -> Option<String> {
        let parts: Vec<String> = self
            .rates
            .iter()
            .filter(|(_, base)| *base > 0.0)
            .map(|(name, base)| format!("{:.0}% of {name}", rate / base * 100.0))
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// `GET /healthz` (HTTP alone), `ping` (an MCP round trip with an empty result) and
/// `tools/list` (MCP with a ~20 KB answer, no tool): what the tool figures compare with.
pub async fn baselines(context: &Context) -> Result<(Vec<Row>, Baselines), BenchError> {
    let clients = context.concurrency;
    println!();
    println!(
        "== baselines: {clients} clients, {} s each ==",
        context.duration.as_secs()
    );
    let tokens: Vec<String> = (0..clients).map(|i| format!("bench-base-{i}")).collect();
    let phases: [(&'static str, Op, &str); 3] = [
        ("GET /healthz", Op::Healthz, "HTTP only, no MCP"),
        ("ping", Op::Ping, "MCP round trip, empty result"),
        ("tools/list", Op::ToolsList, "MCP, ~20 KB answer, no tool"),
    ];
    let (mut rows, mut baselines) = (Vec::new(), Baselines::default());
    for (name, op, note) in phases {
        let result = closed_loop(
            workers(context, &tokens, |_| op.clone()).await?,
            context.duration,
            context.server_pid,
        )
        .await;
        result.print(name, clients);
        if name != "GET /healthz" {
            baselines.rates.push((name, result.rate()));
        }
        rows.push(row(format!("{name} (c={clients})"), &result, note.into()));
    }
    Ok((rows, baselines))
}

/// One channel per client, each created by that client's own principal.
pub struct LoadChannels {
    /// (token, channel id) per client.
    pub seats: Vec<(String, String)>,
}

pub async fn prepare_channels(context: &Context) -> Result<LoadChannels, BenchError> {
    let tokens: Vec<String> = (0..context.concurrency)
        .map(|i| format!("bench-client-{i}"))
        .collect();
    prepare_channels_as(context, tokens).await
}

/// One channel per token, each created by that token's principal.
pub async fn prepare_channels_as(
    context: &Context,
    tokens: Vec<String>,
) -> Result<LoadChannels, BenchError> {
    let mut seats = Vec::with_capacity(tokens.len());
    let conns = workers(context, &tokens, |_| Op::Healthz).await?;
    for ((mut conn, _), token) in conns.into_iter().zip(tokens) {
        let created = channels::create(&mut conn, &format!("bench-{token}"))
            .await
            .map_err(|error| BenchError::Setup(format!("create_channel: {error}")))?;
        seats.push((token, created.channel_id));
    }
    Ok(LoadChannels { seats })
}

/// `post_message` or `get_channel` by every client on its own channel, for `duration`,
/// without printing.
pub async fn tool_load(
    context: &Context,
    channels: &LoadChannels,
    tool: &'static str,
) -> Result<LoadResult, BenchError> {
    let tokens: Vec<String> = channels
        .seats
        .iter()
        .map(|(token, _)| token.clone())
        .collect();
    let op = |i: usize| {
        let channel_id = &channels.seats[i].1;
        let args = match tool {
            "post_message" => json!({"channel_id": channel_id, "text": "bench message"}),
            _ => json!({"channel_id": channel_id}),
        };
        Op::Tool { name: tool, args }
    };
    Ok(closed_loop(
        workers(context, &tokens, op).await?,
        context.duration,
        context.server_pid,
    )
    .await)
}

/// `post_message` or `get_channel` by every client on its own channel.
pub async fn tool_phase(
    context: &Context,
    channels: &LoadChannels,
    tool: &'static str,
    baselines: &Baselines,
) -> Result<Row, BenchError> {
    let clients = channels.seats.len();
    println!();
    println!(
        "== {tool}: {clients} clients, each on its own channel, {} s ==",
        context.duration.as_secs()
    );
    let result = tool_load(context, channels, tool).await?;
    result.print(tool, clients);
    let relative = baselines.compare(result.rate());
    if let Some(relative) = &relative {
        println!("  = {relative}");
    }
    let mut notes: Vec<String> = Vec::new();
    if tool == "post_message" {
        notes.push("durable (fsync'd) writes".into());
    }
    notes.extend(relative);
    let note = notes.join("; ");
    Ok(row(format!("{tool} (c={clients})"), &result, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_compared_with_each_baseline() {
        assert_eq!(Baselines::default().compare(100.0), None);
        let baselines = Baselines {
            rates: vec![("ping", 400.0), ("tools/list", 200.0), ("broken", 0.0)],
        };
        assert_eq!(
            baselines.compare(100.0).as_deref(),
            Some("25% of ping, 50% of tools/list")
        );
    }
}
