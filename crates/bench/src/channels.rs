//! The few tool calls the scenarios need to set themselves up and to post, reading just the
//! fields they use out of the tools' structured output.

use serde_json::{Value, json};

use crate::client::{CallError, Conn};
use crate::rpc::ResponseError;

/// Two invite seats: the creator takes `a`, `b` is left for someone else.
const SLOTS: [&str; 2] = ["invite:a", "invite:b"];

/// A channel the caller just created.
pub struct Created {
    pub channel_id: String,
    /// Invite codes for the seats left open.
    pub invites: Vec<String>,
}

fn missing(what: &str, output: &Value) -> CallError {
    CallError::Response(ResponseError::Malformed(format!(
        "no {what} in {}",
        crate::rpc::snippet(&output.to_string())
    )))
}

/// `create_channel` with seats a and b; the caller holds a.
pub async fn create(conn: &mut Conn, name: &str) -> Result<Created, CallError> {
    let output = conn
        .tool("create_channel", json!({"name": name, "slots": SLOTS}))
        .await?;
    let channel = &output["channel"];
    Ok(Created {
        channel_id: channel["channel_id"]
            .as_str()
            .ok_or_else(|| missing("channel.channel_id", &output))?
            .to_owned(),
        invites: output["invites"]
            .as_array()
            .map(|invites| {
                invites
                    .iter()
                    .filter_map(|invite| invite["code"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// `join_channel` with an invite code.
pub async fn join(conn: &mut Conn, code: &str) -> Result<(), CallError> {
    conn.tool("join_channel", json!({"code": code})).await?;
    Ok(())
}

/// The channel's newest seq, from `get_channel`.
pub async fn last_seq(conn: &mut Conn, channel_id: &str) -> Result<i64, CallError> {
    let output = conn
        .tool("get_channel", json!({"channel_id": channel_id}))
        .await?;
    output["last_seq"]
        .as_i64()
        .ok_or_else(|| missing("last_seq", &output))
}

/// `post_message` with a text; returns the message's seq.
pub async fn post(conn: &mut Conn, channel_id: &str, text: &str) -> Result<i64, CallError> {
    let output = conn
        .tool(
            "post_message",
            json!({"channel_id": channel_id, "text": text}),
        )
        .await?;
    output["message"]["seq"]
        .as_i64()
        .ok_or_else(|| missing("message.seq", &output))
}

/// Whether a `sync_messages` output delivers the message with this seq and text.
pub fn delivers(output: &Value, seq: i64, text: &str) -> bool {
    output["messages"].as_array().is_some_and(|messages| {
        messages
            .iter()
            .any(|message| message["seq"].as_i64() == Some(seq) && message["text"] == text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_needs_the_right_seq_and_text() {
        let output = json!({
            "messages": [{"seq": 7, "kind": "user", "from_name": "p", "text": "round 1", "at": ""}],
            "next_cursor": 7, "has_more": false, "slot": "a", "waited_ms": 12
        });
        assert!(delivers(&output, 7, "round 1"));
        assert!(!delivers(&output, 8, "round 1"));
        assert!(!delivers(&output, 7, "round 2"));
        assert!(!delivers(&json!({"messages": []}), 7, "round 1"));
        assert!(!delivers(&json!({}), 7, "round 1"));
    }
}
