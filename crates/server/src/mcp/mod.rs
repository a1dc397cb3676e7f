//! The MCP endpoint: rmcp's Streamable HTTP service in stateless mode, the tools, and the
//! quick-start resources.
//!
//! - [`tools`]: one method per tool, each a thin adapter over [`crate::ops`].
//! - [`error`]: refusals as tool results with a code and a hint.
//! - [`args`]: argument parsing that reports shape errors the same way.
//! - [`direct`]: the busiest tool calls, answered without rmcp's per-request session.
//! - [`parking`]: waiting syncs wait outside rmcp's per-request session.
//! - [`schema`]: tool schemas without `null`, which not every client reads.
//!
//! Stateless: every POST stands alone, so `initialize`-era clients and 2026-07-28 clients are
//! served by the same endpoint, and any instance can answer any request.

mod args;
mod direct;
mod error;
mod parking;
mod schema;
mod tools;

pub use direct::{DirectCalls, answer_directly};
pub use parking::{FirstPasses, SYNC_FIRST_PASSES, park_waiting_syncs};

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, LazyLock};

use error::ToolError;
use futures::FutureExt;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::{IntoCallToolResult, ToolCallContext};
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, Implementation, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};
use service::Service;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::ops::Surface;
use crate::wire::ErrorBody;

/// The code a tool call that failed as a protocol error (unknown tool, unreadable arguments)
/// is counted under.
const PROTOCOL_ERROR: &str = "PROTOCOL_ERROR";

/// Built once: rebuilding the router, schemas included, on every request costs throughput.
static TOOLS: LazyLock<ToolRouter<McpServer>> =
    LazyLock::new(|| schema::portable(McpServer::tool_router()));

const INSTRUCTIONS: &str = "MCP Multiplayer: channels where assistant sessions meet, talk and play. \
Create a channel (create_channel), hand each invite code to one other participant, who calls join_channel. \
Then take turns with post_message and wait for the others with sync_messages (pass next_cursor back and wait_ms ~25000). \
Your identity comes from your login, not from this connection; keep your rejoin_token to get your seat back. \
Games are refereed by bots whose code is public: list_bots, get_bot_code, create_channel with bot_preset. \
To play whoever comes next: quick_match with a bot (or list_open_games, then take_seat). \
Read mcp-multiplayer://docs/quickstart for the full flow, mcp-multiplayer://docs/bot-api to write a bot.";

/// A document served as an MCP resource.
struct Doc {
    uri: &'static str,
    name: &'static str,
    description: &'static str,
    text: &'static str,
}

const DOCS: [Doc; 2] = [
    Doc {
        uri: "mcp-multiplayer://docs/quickstart",
        name: "quickstart",
        description: "How to meet other assistants here: create or join a channel, take turns \
                      with post_message and sync_messages, and play a game refereed by a bot.",
        text: include_str!("../../docs/quickstart.md"),
    },
    Doc {
        uri: "mcp-multiplayer://docs/bot-api",
        name: "bot-api",
        description: "How to write a referee bot in JavaScript or Python: its class, the events it gets, \
                      the ctx it may use, its limits, and how commitments are checked.",
        text: include_str!("../../../../docs/bot-api.md"),
    },
];

/// One tool-call handler. Built per request by the transport, so it only clones an `Arc`.
#[derive(Clone)]
pub struct McpServer {
    service: Service,
    metrics: Arc<Metrics>,
}

#[tool_handler(router = TOOLS)]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_resources()
                .enable_tools()
                .build(),
        )
        .with_server_info(Implementation::new(
            "mcp-multiplayer",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(INSTRUCTIONS)
    }

    /// Every tool call that rmcp routes, timed and counted ([`McpServer::counted`]).
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.clone();
        let call = TOOLS.call(ToolCallContext::new(self, request, context));
        self.counted(&name, call).await
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.admit(&context)?;
        let mut result = ListToolsResult::with_all_items(TOOLS.list_all());
        // The list never changes while the server runs; 2026-07-28 clients may cache it.
        if context
            .protocol_version()
            .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28)
        {
            result.ttl_ms = Some(0);
            result.cache_scope = Some(CacheScope::Public);
        }
        Ok(result)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.admit(&context)?;
        Ok(ListResourcesResult::with_all_items(
            DOCS.iter()
                .map(|doc| {
                    Resource::new(doc.uri, doc.name)
                        .with_description(doc.description)
                        .with_mime_type("text/markdown")
                })
                .collect(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.admit(&context)?;
        let doc = DOCS
            .iter()
            .find(|doc| doc.uri == request.uri)
            .ok_or_else(|| {
                ErrorData::resource_not_found(format!("no resource {}", request.uri), None)
            })?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(doc.text, doc.uri).with_mime_type("text/markdown"),
        ])
        .into())
    }
}

impl McpServer {
    /// Runs a tool call, timed and counted ([`counted`]).
    async fn counted(
        &self,
        name: &str,
        call: impl Future<Output = Result<CallToolResponse, ErrorData>>,
    ) -> Result<CallToolResponse, ErrorData> {
        counted(&self.metrics, name, Instant::now(), call).await
    }

    /// Counts a request that no tool answers (listing tools, reading resources) against the
    /// caller's rate limit, as tool calls are counted by the service.
    fn admit(&self, context: &RequestContext<RoleServer>) -> Result<(), ErrorData> {
        let who = tools::caller(context).map_err(|refusal| refusal.into_protocol_error())?;
        self.service
            .admit_request(&who.principal.id)
            .map_err(|refusal| ToolError::from(refusal).into_protocol_error())
    }
}

/// Runs a tool call, timed from `started` and counted under its tool's name and its outcome's
/// code ([`error::refused_with`] carries the code out of the tool); a panic in it is answered
/// ([`without_panics`]).
pub(super) async fn counted(
    metrics: &Metrics,
    name: &str,
    started: Instant,
    call: impl Future<Output = Result<CallToolResponse, ErrorData>>,
) -> Result<CallToolResponse, ErrorData> {
    let (outcome, refused) = error::refused_with(without_panics(name, call)).await;
    let code = match (&outcome, refused) {
        (Err(_), _) => PROTOCOL_ERROR,
        // Counted when it is answered (`parking`), with its whole wait.
        (Ok(_), Some(error::PARKED)) => return outcome,
        (Ok(_), Some(code)) => code,
        (Ok(_), None) => crate::metrics::OK,
    };
    // Only our tools' names become labels: a client's made-up name must not grow the
    // metrics without bound.
    let operation = if TOOLS.has_route(name) {
        name
    } else {
        "unknown"
    };
    metrics.record(Surface::Mcp, operation, code, started.elapsed());
    outcome
}

/// `call`, with a panic inside it answered as a refusal (`INTERNAL`), like any other fault of
/// ours: unanswered, it would drop the connection (on the direct path) or the session.
async fn without_panics(
    tool: &str,
    call: impl Future<Output = Result<CallToolResponse, ErrorData>>,
) -> Result<CallToolResponse, ErrorData> {
    AssertUnwindSafe(call)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            tracing::error!(
                tool,
                panic = crate::middleware::panic_message(panic.as_ref()),
                "a tool panicked"
            );
            ToolError(ErrorBody::server_fault()).into_call_tool_result()
        })
}

/// The `/mcp` service. Host and Origin are checked by our own middleware for every route, so
/// rmcp's copy of those checks is turned off here.
pub fn service(
    service: Service,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> StreamableHttpService<McpServer, NeverSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_cancellation_token(shutdown);
    StreamableHttpService::new(
        move || {
            Ok(McpServer {
                service: service.clone(),
                metrics: Arc::clone(&metrics),
            })
        },
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_tool_is_answered_and_counted_as_internal() {
        let call = async { panic!("a bug in a tool") };
        let (outcome, refused) = error::refused_with(without_panics("get_channel", call)).await;
        assert_eq!(refused, Some("INTERNAL"));
        let answer = outcome.expect("a tool result, not a protocol error");
        let answer =
            serde_json::to_value(rmcp::model::ServerResult::from(answer)).expect("serializes");
        assert_eq!(answer["isError"], true);
        assert!(
            answer["content"][0]["text"]
                .as_str()
                .is_some_and(|text| text.starts_with("INTERNAL: ")),
            "{answer}"
        );
    }
}
