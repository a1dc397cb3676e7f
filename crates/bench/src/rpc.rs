//! The MCP JSON-RPC wire as the bench speaks it: request bodies, and reading a response into a
//! result, a protocol error or a tool error (`isError`). Pure functions, no I/O.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

/// Sent as `MCP-Protocol-Version` on every request.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// A JSON-RPC request body.
pub fn request_body(id: u64, method: &str, params: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
        .to_string()
        .into_bytes()
}

/// A `tools/call` request body.
pub fn tool_call_body(id: u64, tool: &str, arguments: Value) -> Vec<u8> {
    request_body(
        id,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
}

/// Why a response did not carry the result that was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("unreadable response: {0}")]
    Malformed(String),
    #[error("JSON-RPC error {code}: {message}")]
    Rpc { code: i64, message: String },
    #[error("tool error: {0}")]
    Tool(String),
}

/// The `result` of the JSON-RPC response with this `id`. The body is a JSON object, or an event
/// stream whose `data:` lines carry one (in case a server answers with SSE).
pub fn parse_response(body: &[u8], id: u64) -> Result<Value, ResponseError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ResponseError::Malformed("the body is not UTF-8".into()))?;
    let mut message = if text.trim_start().starts_with('{') {
        let message: Value = serde_json::from_str(text)
            .map_err(|error| ResponseError::Malformed(format!("{error}: {}", snippet(text))))?;
        if message.get("id") != Some(&json!(id)) {
            return Err(ResponseError::Malformed(format!(
                "expected the answer to request {id}: {}",
                snippet(text)
            )));
        }
        message
    } else {
        text.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|message| message.get("id") == Some(&json!(id)))
            .ok_or_else(|| {
                ResponseError::Malformed(format!("no answer to request {id} in: {}", snippet(text)))
            })?
    };
    if let Some(error) = message.get("error") {
        return Err(ResponseError::Rpc {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
                .to_owned(),
        });
    }
    message
        .as_object_mut()
        .and_then(|object| object.remove("result"))
        .ok_or_else(|| ResponseError::Malformed(format!("no result: {}", snippet(text))))
}

/// The answer to `tools/list`, read without building a JSON tree: the list is ~20 KB, and on a
/// machine the bench shares with the server the client's parsing cost would skew the baseline.
#[derive(Deserialize)]
struct ToolsListEnvelope {
    id: Option<u64>,
    result: Option<ToolsList>,
    error: Option<RpcErrorBody>,
}

#[derive(Deserialize)]
struct ToolsList {
    tools: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct RpcErrorBody {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// How many tools a `tools/list` answer lists.
pub fn tools_listed(body: &[u8], id: u64) -> Result<usize, ResponseError> {
    if !body.trim_ascii_start().starts_with(b"{") {
        let result = parse_response(body, id)?;
        return result["tools"]
            .as_array()
            .map(Vec::len)
            .ok_or_else(|| ResponseError::Malformed("tools/list returned no tools".into()));
    }
    let envelope: ToolsListEnvelope = serde_json::from_slice(body).map_err(|error| {
        ResponseError::Malformed(format!(
            "{error}: {}",
            snippet(&String::from_utf8_lossy(body))
        ))
    })?;
    if let Some(error) = envelope.error {
        return Err(ResponseError::Rpc {
            code: error.code,
            message: error.message,
        });
    }
    if envelope.id != Some(id) {
        return Err(ResponseError::Malformed(format!(
            "expected the answer to request {id}"
        )));
    }
    envelope
        .result
        .map(|list| list.tools.len())
        .ok_or_else(|| ResponseError::Malformed("tools/list returned no result".into()))
}

/// The `structuredContent` of a `tools/call` result, or the tool's error text when `isError`.
pub fn tool_output(mut result: Value) -> Result<Value, ResponseError> {
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        let text = result
            .get("content")
            .and_then(Value::as_array)
            .and_then(|blocks| blocks.iter().find_map(|block| block.get("text")?.as_str()))
            .unwrap_or("(no text)");
        return Err(ResponseError::Tool(text.replace('\n', " | ")));
    }
    result
        .as_object_mut()
        .and_then(|object| object.remove("structuredContent"))
        .ok_or_else(|| ResponseError::Malformed("the tool result has no structuredContent".into()))
}

/// The start of a body, for error messages.
pub fn snippet(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_are_json_rpc() {
        let body = tool_call_body(7, "get_channel", json!({"channel_id": "ch_1"}));
        let value: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            value,
            json!({
                "jsonrpc": "2.0",
                "id": 7,
                "method": "tools/call",
                "params": {"name": "get_channel", "arguments": {"channel_id": "ch_1"}}
            })
        );
    }

    #[test]
    fn a_tool_result_yields_its_structured_content() {
        let body = br#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"{}"}],"structuredContent":{"message":{"seq":4}},"isError":false}}"#;
        let result = parse_response(body, 3).expect("result");
        assert_eq!(
            tool_output(result).expect("output"),
            json!({"message": {"seq": 4}})
        );
    }

    #[test]
    fn a_tool_error_yields_its_text() {
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"NOT_MEMBER: you hold no seat\nHint: join first"},{"type":"text","text":"{\"error\":{}}"}],"isError":true}}"#;
        let result = parse_response(body, 1).expect("a result, not a protocol error");
        assert_eq!(
            tool_output(result),
            Err(ResponseError::Tool(
                "NOT_MEMBER: you hold no seat | Hint: join first".into()
            ))
        );
    }

    #[test]
    fn protocol_errors_and_bad_bodies() {
        let body =
            br#"{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"no such method"}}"#;
        assert_eq!(
            parse_response(body, 2),
            Err(ResponseError::Rpc {
                code: -32601,
                message: "no such method".into()
            })
        );
        assert!(matches!(
            parse_response(br#"{"jsonrpc":"2.0","id":9,"result":{}}"#, 2),
            Err(ResponseError::Malformed(_))
        ));
        assert!(matches!(
            parse_response(b"<html>", 2),
            Err(ResponseError::Malformed(_))
        ));
        assert!(matches!(
            parse_response(br#"{"jsonrpc":"2.0","id":2}"#, 2),
            Err(ResponseError::Malformed(_))
        ));
        assert!(matches!(
            tool_output(json!({"content": []})),
            Err(ResponseError::Malformed(_))
        ));
    }

    #[test]
    fn event_stream_bodies_are_read_too() {
        let body = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"tools\":[]}}\n\n";
        assert_eq!(
            parse_response(body, 5).expect("result"),
            json!({"tools": []})
        );
    }

    #[test]
    fn tool_lists_are_counted() {
        let body = br#"{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"a","inputSchema":{"type":"object"}},{"name":"b"}]}}"#;
        assert_eq!(tools_listed(body, 4), Ok(2));
        assert!(matches!(
            tools_listed(body, 5),
            Err(ResponseError::Malformed(_))
        ));
        let error = br#"{"jsonrpc":"2.0","id":4,"error":{"code":-32600,"message":"bad"}}"#;
        assert_eq!(
            tools_listed(error, 4),
            Err(ResponseError::Rpc {
                code: -32600,
                message: "bad".into()
            })
        );
        let stream = b"data: {\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"tools\":[{}]}}\n\n";
        assert_eq!(tools_listed(stream, 4), Ok(1));
    }

    #[test]
    fn snippets_are_cut() {
        assert_eq!(snippet("short"), "short");
        assert_eq!(snippet(&"é".repeat(300)).chars().count(), 201);
    }
}
