//! What an operator scrapes: `/metrics` in Prometheus's text format, `/livez` and `/readyz`.
//!
//! Calls are recorded once per tool call, whichever surface it came through: the MCP server
//! records each `tools/call` ([`crate::mcp`]), the REST router each operation
//! ([`crate::api`]), under the same operation names (the tool names). Everything else (waiting
//! syncs, bot events and failures, worker processes) is read from the service when scraped.
//!
//! `/metrics` answers only to `Authorization: Bearer <--metrics-token>`: counts of calls and
//! failures are for the operator, and a proxy in front of the server would make "local only"
//! mean "everyone". Without a token it is off, and says how to turn it on.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use service::Service;
use tokio::time::Instant;

use crate::ops::Surface;

/// The code a successful call is counted under; refusals use their stable error code.
pub const OK: &str = "ok";

/// The shortest `--metrics-token` accepted: it guards `/metrics` alone, but should not be
/// guessable.
pub const MIN_TOKEN_CHARS: usize = 16;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    surface: &'static str,
    operation: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    surface: &'static str,
    operation: String,
}

/// The registry and the call counters, shared by both surfaces and the `/metrics` handler.
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    seconds: Family<OperationLabels, Histogram>,
    token: Option<String>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics over `service`, served to callers holding `token` (none: `/metrics` is off).
    pub fn new(service: Service, token: Option<String>) -> Arc<Self> {
        let mut registry = Registry::with_prefix("mcp_multiplayer");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "calls",
            "Tool calls by surface (mcp or rest), operation (the tool's name) and outcome (ok, or the error code)",
            calls.clone(),
        );
        // 0.5 ms to about 16 s; a parked sync is counted when it parks, so long-polls do not
        // fill the top bucket.
        let seconds = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "call_duration_seconds",
            "Time to answer a tool call, by surface and operation",
            seconds.clone(),
        );
        registry.register_collector(Box::new(ServiceGauges(service)));
        Arc::new(Metrics {
            registry,
            calls,
            seconds,
            token,
        })
    }

    /// Counts one call and its duration.
    pub fn record(&self, surface: Surface, operation: &str, code: &'static str, took: Duration) {
        let surface = surface.as_str();
        self.calls
            .get_or_create(&CallLabels {
                surface,
                operation: operation.to_owned(),
                code,
            })
            .inc();
        self.seconds
            .get_or_create(&OperationLabels {
                surface,
                operation: operation.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    fn allows(&self, request: &Request) -> Result<(), Refusal> {
        let Some(token) = &self.token else {
            return Err(Refusal::Off);
        };
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, credential)| credential.trim());
        match presented {
            Some(presented) if same_secret(presented, token) => Ok(()),
            _ => Err(Refusal::Unauthenticated),
        }
    }
}

/// Compares in time that depends on the lengths only, not on where the first difference is.
fn same_secret(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len()
        && presented
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
}

enum Refusal {
    Off,
    Unauthenticated,
}

/// Records the REST operation `id` around its handler. A refusal's code travels in the
/// response's extensions ([`crate::api::ApiError`] puts it there).
pub async fn measure_rest(
    State((metrics, id)): State<(Arc<Metrics>, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    let code = response
        .extensions()
        .get::<RefusedWith>()
        .map_or(OK, |refused| refused.0);
    metrics.record(Surface::Rest, id, code, started.elapsed());
    response
}

/// The stable error code of a refused REST call, for [`measure_rest`].
#[derive(Debug, Clone, Copy)]
pub struct RefusedWith(pub &'static str);

/// `GET /metrics`.
pub async fn serve(State(metrics): State<Arc<Metrics>>, request: Request) -> Response {
    let refusal = match metrics.allows(&request) {
        Ok(()) => {
            return match metrics.render() {
                Ok(text) => (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    )],
                    text,
                )
                    .into_response(),
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            };
        }
        Err(refusal) => refusal,
    };
    let (status, code, message, hint) = match refusal {
        Refusal::Off => (
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "metrics are off on this server",
            "Start the server with --metrics-token (or MCP_METRICS_TOKEN) and scrape /metrics with Authorization: Bearer <that token>.",
        ),
        Refusal::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "this endpoint needs the metrics token",
            "Send Authorization: Bearer <the server's --metrics-token>.",
        ),
    };
    let body = serde_json::json!({ "error": { "code": code, "message": message, "hint": hint } });
    (status, axum::Json(body)).into_response()
}

/// `GET /livez`: the process is up and serving HTTP. Restart it if this stops answering.
pub async fn live() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "alive" }))
}

/// `GET /readyz`: this instance should get requests: it is not shutting down and its
/// database answers. A load balancer takes it out of rotation on a 503.
pub async fn ready(State(service): State<Service>) -> Response {
    match service.check_ready().await {
        Ok(()) => axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(not_ready) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "not_ready", "reason": not_ready.as_str() })),
        )
            .into_response(),
    }
}

/// What the service knows, read at each scrape.
struct ServiceGauges(Service);

impl fmt::Debug for ServiceGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceGauges")
    }
}

impl Collector for ServiceGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let service = &self.0;
        let activity = service.bot_activity();
        let gauge = |encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64| {
            let metric = ConstGauge::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
        };
        let counter = |encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64| {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
        };
        gauge(
            &mut encoder,
            "waiting_syncs",
            "Long-polls waiting for a message now (REST and MCP, parked or not)",
            count(service.waiting_syncs()),
        )?;
        counter(
            &mut encoder,
            "bot_events",
            "Bot events this process ran in a worker, failed ones included",
            activity.tally.events,
        )?;
        let failures = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "bot_failures",
            "Bot events that failed, by the kind of failure (docs/bot-api.md)",
            None,
            failures.metric_type(),
        )?;
        for (kind, n) in &activity.tally.failures {
            ConstCounter::new(*n).encode(family.encode_family(&[("kind", *kind)])?)?;
        }
        counter(
            &mut encoder,
            "worker_processes_started",
            "Bot worker processes started, the first ones included: a rise beyond the pool size counts restarts (a killed or retired worker)",
            activity.workers.started,
        )?;
        gauge(
            &mut encoder,
            "workers_idle",
            "Bot worker processes waiting for a job",
            count(activity.workers.idle),
        )?;
        gauge(
            &mut encoder,
            "bot_jobs_waiting",
            "Bot events queued for a worker",
            count(activity.workers.waiting),
        )?;
        let database = service.database_stats();
        gauge(
            &mut encoder,
            "db_connections",
            "Open database connections (SQLite: the read pool and the writer)",
            i64::from(database.connections),
        )?;
        gauge(
            &mut encoder,
            "db_connections_idle",
            "Open database connections not in use",
            i64::from(database.idle_connections),
        )?;
        counter(
            &mut encoder,
            "db_notices",
            "PostgreSQL: notices of commits received (this instance's and other instances')",
            database.notices,
        )?;
        let delay = ConstCounter::new(database.notice_delay.as_secs_f64());
        delay.encode(encoder.encode_descriptor(
            "db_notice_delay_seconds",
            "PostgreSQL: the sum of the delays from a commit to the arrival of its notice here; divided by db_notices_total, the mean notification lag",
            None,
            delay.metric_type(),
        )?)?;
        counter(
            &mut encoder,
            "db_notice_reconnections",
            "PostgreSQL: times the connection receiving notices was lost and made again (every waiting sync then reads again)",
            database.notice_reconnections,
        )
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_match_only_whole() {
        assert!(same_secret("0123456789abcdef", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcdeX", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcde", "0123456789abcdef"));
        assert!(!same_secret("", "0123456789abcdef"));
    }
}
