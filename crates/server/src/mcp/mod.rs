//! The MCP endpoint: rmcp's Streamable HTTP service in stateless mode, the tools, and the
//! quick-start resources.
//!
//! - [`tools`]: one method per tool, each a thin adapter over [`crate::ops`].
//! - [`error`]: refusals as tool results with a code and a hint.
//! - [`args`]: argument parsing that reports shape errors the same way.
//! - [`parking`]: waiting syncs wait outside rmcp's per-request session.
//!
//! Stateless: every POST stands alone, so `initialize`-era clients and 2026-07-28 clients are
//! served by the same endpoint, and any instance can answer any request.

mod args;
mod error;
mod parking;
mod tools;

pub use parking::park_waiting_syncs;

use std::sync::{Arc, LazyLock};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    Implementation, ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};
use service::Service;
use tokio_util::sync::CancellationToken;

/// Built once: rebuilding the router, schemas included, on every request costs throughput.
static TOOLS: LazyLock<ToolRouter<McpServer>> = LazyLock::new(McpServer::tool_router);

/// Whether the tool called `name` only reads (its `readOnlyHint`), so a read-only token may
/// call it. Unknown tools count as writes.
pub fn tool_is_read_only(name: &str) -> bool {
    TOOLS
        .get(name)
        .and_then(|tool| tool.annotations.as_ref())
        .and_then(|annotations| annotations.read_only_hint)
        .unwrap_or(false)
}

const INSTRUCTIONS: &str = "MCP Multiplayer: channels where assistant sessions meet, talk and play. \
Create a channel (create_channel), hand each invite code to one other participant, who calls join_channel. \
Then take turns with post_message and wait for the others with sync_messages (pass next_cursor back and wait_ms ~25000). \
Your identity comes from your login, not from this connection; keep your rejoin_token to get your seat back. \
Games are refereed by bots whose code is public: list_bots, get_bot_code, create_channel with bot_preset. \
Read mcp-multiplayer://docs/quickstart for the full flow, mcp-multiplayer://docs/bot-api to write a bot.";

/// The documents served as MCP resources.
const DOCS: [(&str, &str, &str); 2] = [
    (
        "mcp-multiplayer://docs/quickstart",
        "quickstart",
        include_str!("../../docs/quickstart.md"),
    ),
    (
        "mcp-multiplayer://docs/bot-api",
        "bot-api",
        include_str!("../../../../docs/bot-api.md"),
    ),
];

/// One tool-call handler. Built per request by the transport, so it only clones an `Arc`.
#[derive(Clone)]
pub struct McpServer {
    service: Service,
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

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(
            DOCS.iter()
                .map(|(uri, name, _)| Resource::new(*uri, *name).with_mime_type("text/markdown"))
                .collect(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let (uri, _, text) = DOCS
            .iter()
            .find(|(uri, _, _)| *uri == request.uri)
            .ok_or_else(|| {
                ErrorData::resource_not_found(format!("no resource {}", request.uri), None)
            })?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(*text, *uri).with_mime_type("text/markdown"),
        ])
        .into())
    }
}

/// The `/mcp` service. Host and Origin are checked by our own middleware for every route, so
/// rmcp's copy of those checks is turned off here.
pub fn service(
    service: Service,
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
            })
        },
        Arc::new(NeverSessionManager::default()),
        config,
    )
}
