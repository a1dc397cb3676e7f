//! The busiest tool calls, answered without rmcp's per-request session.
//!
//! rmcp serves each stateless request by starting a session for it: the request decoded into
//! its general message enum, a service loop and a handler task joined by channels, a tree of
//! cancellation tokens. For the calls that make nearly all of the traffic (`get_channel`,
//! `post_message`, `sync_messages`) that machinery cost more than the work: in a profile of
//! `get_channel` it was about 40% of the server's CPU, against 12% for the tool itself.
//!
//! [`answer_directly`] serves those three calls itself when the request is *plain*: a single
//! JSON-RPC `tools/call` with nothing but `name` and `arguments`, `Content-Type` and `Accept`
//! as every client sends them, and an `MCP-Protocol-Version` header naming a known version
//! that does not negotiate per request. It calls the same tool bodies (`McpServer::*_as`),
//! counts them in the same metrics, and frames the answer with rmcp's own types, as rmcp
//! frames it ([`framed`]). Anything else (another method or tool, `_meta`, a progress token,
//! a 2026-07-28 request, an odd header, a batch) goes to rmcp untouched, so every protocol
//! question is still rmcp's to answer. `tests/connections.rs` holds the two paths to the same
//! bytes.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::ErrorData;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{
    CallToolResponse, JsonObject, JsonRpcVersion2_0, ProtocolVersion, RequestId,
    ServerJsonRpcMessage, ServerResult,
};
use serde::Deserialize;
use service::{Caller, Service};
use std::future::Future;
use std::pin::Pin;

use super::McpServer;
use super::args::Args;
use crate::metrics::Metrics;
use crate::middleware::{BufferedBody, ScopeChallenge};

/// What the direct path needs: the same handler rmcp builds for each request.
#[derive(Clone)]
pub struct DirectCalls(McpServer);

impl DirectCalls {
    pub fn new(service: Service, metrics: Arc<Metrics>) -> Self {
        DirectCalls(McpServer { service, metrics })
    }
}

/// A JSON-RPC request as the direct path takes it. Any other member, anywhere, makes the
/// request not plain, and rmcp serves it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainRequest {
    #[allow(dead_code, reason = "checked by its type: only \"2.0\" parses")]
    jsonrpc: JsonRpcVersion2_0,
    id: RequestId,
    method: String,
    params: PlainParams,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainParams {
    name: String,
    #[serde(default)]
    arguments: Option<JsonObject>,
}

/// The tools served here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DirectTool {
    GetChannel,
    PostMessage,
    SyncMessages,
}

impl DirectTool {
    fn named(name: &str) -> Option<Self> {
        match name {
            "get_channel" => Some(DirectTool::GetChannel),
            "post_message" => Some(DirectTool::PostMessage),
            "sync_messages" => Some(DirectTool::SyncMessages),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            DirectTool::GetChannel => "get_channel",
            DirectTool::PostMessage => "post_message",
            DirectTool::SyncMessages => "sync_messages",
        }
    }
}

/// A plain call, decoded.
struct PlainCall {
    id: RequestId,
    version: ProtocolVersion,
    tool: DirectTool,
    arguments: JsonObject,
}

/// The `/mcp` middleware: answers a plain call of a [`DirectTool`] itself, passes everything
/// else on to rmcp.
pub async fn answer_directly(
    State(DirectCalls(server)): State<DirectCalls>,
    request: Request,
    next: Next,
) -> Response {
    let plain = plain_call(&request);
    let who = request.extensions().get::<Caller>();
    let (Some(call), Some(who)) = (plain, who) else {
        return next.run(request).await;
    };
    let who = who.clone();
    let challenge = request.extensions().get::<ScopeChallenge>().cloned();
    drop(request);
    let PlainCall {
        id,
        version,
        tool,
        arguments,
    } = call;
    let challenge = challenge.as_ref();
    // Each tool's future in a box of its own size: a sync may wait for 45 s, and ten thousand
    // of them must not each hold room for the largest of the three.
    macro_rules! boxed_call {
        ($body:ident) => {
            Box::pin(async {
                let args = Args::from_object(arguments);
                server
                    .$body(&who, challenge, args)
                    .await
                    .into_call_tool_result()
            })
        };
    }
    let call: Pin<Box<dyn Future<Output = Result<CallToolResponse, ErrorData>> + Send + '_>> =
        match tool {
            DirectTool::GetChannel => boxed_call!(get_channel_as),
            DirectTool::PostMessage => boxed_call!(post_message_as),
            DirectTool::SyncMessages => boxed_call!(sync_messages_as),
        };
    let outcome = server.counted(tool.name(), call).await;
    framed(outcome, id, Some(&version))
}

/// The call, if the request is plain and names a [`DirectTool`]; `None` sends it to rmcp.
fn plain_call(request: &Request) -> Option<PlainCall> {
    if request.method() != Method::POST {
        return None;
    }
    let headers = request.headers();
    let version = plain_version(headers)?;
    if !plain_content_type(headers) || !plain_accept(headers) {
        return None;
    }
    let BufferedBody(body) = request.extensions().get::<BufferedBody>()?;
    let PlainRequest {
        id, method, params, ..
    } = serde_json::from_slice(body).ok()?;
    if method != "tools/call" {
        return None;
    }
    Some(PlainCall {
        id,
        version,
        tool: DirectTool::named(&params.name)?,
        arguments: params.arguments.unwrap_or_default(),
    })
}

/// The one `MCP-Protocol-Version` header, if it names a version rmcp knows and serves the
/// same way for every request (no per-request negotiation, no standard-header rules).
fn plain_version(headers: &HeaderMap) -> Option<ProtocolVersion> {
    let value = single(headers, "mcp-protocol-version")?;
    ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .find(|known| known.as_str() == value)
        .filter(|known| known.as_str() < ProtocolVersion::STANDARD_HEADERS.as_str())
        .cloned()
}

/// `Content-Type: application/json`, with parameters or without.
fn plain_content_type(headers: &HeaderMap) -> bool {
    single(headers, header::CONTENT_TYPE.as_str()).is_some_and(|value| {
        let essence = value.split_once(';').map_or(value, |(essence, _)| essence);
        essence.trim().eq_ignore_ascii_case("application/json")
    })
}

/// One `Accept` header that lists both `application/json` and `text/event-stream`, with no
/// parameters (so no weights) on any entry: rmcp accepts that, and refuses less.
fn plain_accept(headers: &HeaderMap) -> bool {
    let Some(value) = single(headers, header::ACCEPT.as_str()) else {
        return false;
    };
    let (mut json, mut sse) = (false, false);
    for entry in value.split(',').map(str::trim) {
        if entry.contains(';') || entry.contains('"') {
            return false;
        }
        json |= entry.eq_ignore_ascii_case("application/json");
        sse |= entry.eq_ignore_ascii_case("text/event-stream");
    }
    json && sse
}

/// The value of a header that appears exactly once, as text.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    values.next().is_none().then_some(())?;
    value.to_str().ok()
}

/// A tool call's outcome as rmcp's stateless JSON mode answers it: the result adjusted to the
/// protocol version (rmcp's `ServerHandler` does the same to every result), in a JSON-RPC
/// response with status 200 and a JSON content type. rmcp's handler has two more steps that
/// our tools cannot reach (a remap of `RESOURCE_NOT_FOUND`, a check on input-required
/// results); an rmcp upgrade that adds steps should be read against this function, and
/// `tests/connections.rs` compares its answers with rmcp's.
pub(super) fn framed(
    outcome: Result<CallToolResponse, ErrorData>,
    request_id: RequestId,
    protocol_version: Option<&ProtocolVersion>,
) -> Response {
    let message = match outcome {
        Ok(response) => {
            let mut result = ServerResult::from(response);
            let current = protocol_version
                .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
            if current {
                result.fill_missing_cache_hints();
            } else {
                result.strip_result_type_for_legacy_peer();
                result.strip_non_object_output_for_legacy_peer();
            }
            ServerJsonRpcMessage::response(result, request_id)
        }
        Err(error) => ServerJsonRpcMessage::error(error, Some(request_id)),
    };
    match serde_json::to_vec(&message) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "could not serialize a tool call's answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, Bytes};
    use serde_json::{Value, json};

    use super::*;

    fn call(name: &str) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": name, "arguments": {"channel_id": "ch_x"}},
        })
    }

    fn request(body: &Value, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(Method::POST).uri("/mcp");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let bytes = Bytes::from(body.to_string());
        let mut request = builder.body(Body::empty()).expect("request");
        request.extensions_mut().insert(BufferedBody(bytes));
        request
    }

    const PLAIN: [(&str, &str); 3] = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2025-11-25"),
    ];

    fn tool_of(body: &Value, headers: &[(&str, &str)]) -> Option<DirectTool> {
        plain_call(&request(body, headers)).map(|call| call.tool)
    }

    #[test]
    fn plain_calls_of_the_busiest_tools_are_answered_here() {
        for (name, tool) in [
            ("get_channel", DirectTool::GetChannel),
            ("post_message", DirectTool::PostMessage),
            ("sync_messages", DirectTool::SyncMessages),
        ] {
            assert_eq!(tool_of(&call(name), &PLAIN), Some(tool));
        }
        for version in ["2025-06-18", "2025-03-26", "2024-11-05"] {
            let headers = [PLAIN[0], PLAIN[1], ("mcp-protocol-version", version)];
            assert!(
                tool_of(&call("get_channel"), &headers).is_some(),
                "{version}"
            );
        }
        let spaced = [
            ("content-type", "application/json; charset=utf-8"),
            ("accept", "text/event-stream,application/json"),
            PLAIN[2],
        ];
        assert!(tool_of(&call("post_message"), &spaced).is_some());
        let mut string_id = call("get_channel");
        string_id["id"] = json!("a-string-id");
        assert!(tool_of(&string_id, &PLAIN).is_some());
    }

    #[test]
    fn anything_unusual_is_left_to_rmcp() {
        assert_eq!(
            tool_of(&call("create_channel"), &PLAIN),
            None,
            "another tool"
        );
        assert_eq!(
            tool_of(&call("Get_Channel"), &PLAIN),
            None,
            "a name rmcp refuses"
        );
        let mut other = call("get_channel");
        other["method"] = json!("tools/list");
        assert_eq!(tool_of(&other, &PLAIN), None, "another method");
        for (pointer, value) in [
            ("/params/_meta", json!({"progressToken": 1})),
            ("/params/_meta", json!({})),
            ("/params/task", json!({"ttl": 1})),
            ("/extra", json!(1)),
            ("/jsonrpc", json!("1.0")),
            ("/id", json!(null)),
            ("/id", json!(1.5)),
            ("/params/arguments", json!([1, 2])),
            ("/params/arguments", json!("text")),
        ] {
            let mut odd = call("get_channel");
            let (parent, key) = pointer.rsplit_once('/').expect("pointer");
            let target = if parent.is_empty() {
                &mut odd
            } else {
                odd.pointer_mut(parent).expect("parent")
            };
            target[key] = value.clone();
            assert_eq!(tool_of(&odd, &PLAIN), None, "{pointer} = {value}");
        }
        assert_eq!(
            tool_of(&json!([call("get_channel")]), &PLAIN),
            None,
            "a batch"
        );

        let without = |skip: &str| -> Vec<(&str, &str)> {
            PLAIN
                .iter()
                .copied()
                .filter(|(name, _)| *name != skip)
                .collect()
        };
        for header in ["content-type", "accept", "mcp-protocol-version"] {
            assert_eq!(
                tool_of(&call("get_channel"), &without(header)),
                None,
                "no {header}"
            );
        }
        for (name, value) in [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-protocol-version", "2099-01-01"),
            ("content-type", "text/plain"),
            ("accept", "application/json"),
            ("accept", "application/json;q=0, text/event-stream"),
            ("accept", "*/*"),
        ] {
            let mut headers = without(name);
            headers.push((name, value));
            assert_eq!(
                tool_of(&call("get_channel"), &headers),
                None,
                "{name}: {value}"
            );
        }
        let mut twice = PLAIN.to_vec();
        twice.push(("mcp-protocol-version", "2025-11-25"));
        assert_eq!(
            tool_of(&call("get_channel"), &twice),
            None,
            "two version headers"
        );

        let mut get = request(&call("get_channel"), &PLAIN);
        *get.method_mut() = Method::GET;
        assert!(plain_call(&get).is_none(), "not a POST");
        let mut unread = request(&call("get_channel"), &PLAIN);
        unread.extensions_mut().remove::<BufferedBody>();
        assert!(plain_call(&unread).is_none(), "no buffered body");
    }
}
