//! How a refusal reaches an assistant: a tool result with `isError`, never a protocol error,
//! so the model reads the code and the hint and can recover.

use std::cell::Cell;

use rmcp::ErrorData;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use service::ServiceError;

use crate::wire::ErrorBody;

/// A tool's failure, rendered as `CODE: message` plus a hint, and the same as JSON.
///
/// No `structuredContent` on errors: some clients validate it against the tool's output schema
/// even when `isError` is set.
#[derive(Debug)]
pub struct ToolError(pub ErrorBody);

impl From<ServiceError> for ToolError {
    fn from(error: ServiceError) -> Self {
        ToolError(ErrorBody::from(&error))
    }
}

tokio::task_local! {
    /// The code of the refusal a tool call returned, if it returned one.
    static REFUSED_WITH: Cell<Option<&'static str>>;
}

/// The code a sync's first pass ends with when the sync parks: it is not an answer, and the
/// call is counted when the parked sync is answered.
pub(super) const PARKED: &str = "PARKED";

/// Runs a tool call and tells which code it was refused with, if any: the one place that
/// knows the code is where a [`ToolError`] becomes the call's result.
pub(super) async fn refused_with<T>(call: impl Future<Output = T>) -> (T, Option<&'static str>) {
    REFUSED_WITH
        .scope(Cell::new(None), async move {
            let outcome = call.await;
            (outcome, REFUSED_WITH.with(Cell::get))
        })
        .await
}

impl IntoCallToolResult for ToolError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        let ErrorBody {
            code,
            message,
            hint,
        } = &self.0;
        // Outside a counted call (a parked sync answered later) there is nothing to tell.
        let _ = REFUSED_WITH.try_with(|refused| refused.set(Some(code)));
        let json = serde_json::json!({ "error": &self.0 }).to_string();
        Ok(CallToolResult::error(vec![
            ContentBlock::text(format!("{code}: {message}\nHint: {hint}")),
            ContentBlock::text(json),
        ])
        .into())
    }
}

impl ToolError {
    /// The refusal as a JSON-RPC error, for requests that are not tool calls (listing tools,
    /// reading resources): the code and hint go in `data`.
    pub fn into_protocol_error(self) -> ErrorData {
        let ErrorBody {
            code,
            message,
            hint,
        } = self.0;
        ErrorData::invalid_request(
            format!("{code}: {message}"),
            Some(serde_json::json!({ "code": code, "hint": hint })),
        )
    }
}
