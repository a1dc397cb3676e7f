//! The HTTP connection layer, driven over raw TCP: parked syncs and their waiting slots, the cap
//! on a request's head, the header read timeout that stops clients trickling bytes, refusals of
//! ambiguously framed requests, and the JSON-RPC shape of transport refusals on `/mcp`.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, agent, call, create_channel};

/// One request on its own connection, sent but not yet answered.
struct Exchange {
    stream: TcpStream,
}

impl Exchange {
    fn send(server: &Server, request: &[u8]) -> Exchange {
        let address = server.address();
        let mut stream = TcpStream::connect(address).expect("connect");
        stream.write_all(request).expect("send");
        Exchange { stream }
    }

    /// The status and body of the answer, or `None` when none came within `patience`.
    fn answer(&mut self, patience: Duration) -> Option<(u16, String)> {
        self.stream
            .set_read_timeout(Some(patience))
            .expect("timeout");
        let mut received = Vec::new();
        let mut chunk = [0_u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    received.extend_from_slice(&chunk[..n]);
                    if complete(&received) {
                        break;
                    }
                }
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    if received.is_empty() {
                        return None;
                    }
                    break;
                }
                Err(error) => panic!("read failed: {error}"),
            }
        }
        let text = String::from_utf8_lossy(&received).into_owned();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map_or_else(String::new, |(_, body)| body.to_owned());
        Some((status, body))
    }
}

/// Whether `received` holds a whole response with a `Content-Length` body.
fn complete(received: &[u8]) -> bool {
    let text = String::from_utf8_lossy(received);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .is_some_and(|length| body.len() >= length)
}

/// The two ways a client states its protocol version: the 2025-11-25 header after an
/// `initialize`, or 2026-07-28's per-request metadata.
#[derive(Clone, Copy, Debug)]
enum Protocol {
    Legacy,
    /// An older version with the header, as some clients still send it.
    June2025,
    PerRequest,
}

impl Protocol {
    fn version(self) -> &'static str {
        match self {
            Protocol::Legacy => "2025-11-25",
            Protocol::June2025 => "2025-06-18",
            Protocol::PerRequest => "2026-07-28",
        }
    }
}

fn mcp_post(server: &Server, token: &str, body: &Value) -> Vec<u8> {
    mcp_post_as(server, token, body, Protocol::Legacy)
}

fn mcp_post_as(server: &Server, token: &str, body: &Value, protocol: Protocol) -> Vec<u8> {
    let mut body = body.clone();
    let mut extra = String::new();
    if let Protocol::PerRequest = protocol {
        body["params"]["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": protocol.version(),
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
        });
        extra = format!(
            "Mcp-Method: {}\r\nMcp-Name: {}\r\n",
            body["method"].as_str().unwrap_or_default(),
            body["params"]["name"].as_str().unwrap_or_default()
        );
    }
    let body = body.to_string();
    let host = server.address();
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         MCP-Protocol-Version: {}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        protocol.version(),
        body.len()
    )
    .into_bytes()
}

fn sync_call(channel: &str, cursor: i64) -> Value {
    sync_call_waiting(channel, cursor, 30_000)
}

fn sync_call_waiting(channel: &str, cursor: i64, wait_ms: u64) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": "sync_messages",
            "arguments": {"channel_id": channel, "cursor": cursor, "wait_ms": wait_ms},
        },
    })
}

/// The tool result's text, which holds the page or the error as JSON.
fn tool_text(body: &str) -> Value {
    let response: Value = serde_json::from_str(body).expect("a JSON-RPC response");
    let result = &response["result"];
    let text = result["content"]
        .as_array()
        .and_then(|content| content.last())
        .and_then(|block| block["text"].as_str())
        .unwrap_or_else(|| panic!("no text in {response}"));
    serde_json::from_str(text).expect("the text is JSON")
}

/// Alice creates a channel, Bob joins; returns the channel id and the last seq.
fn channel_with_bob(server: &Server) -> (String, i64) {
    let http = agent();
    let (created, channel) = create_channel(
        server,
        "alice",
        json!({"name": "Parking", "slots": ["invite:alice", "invite:bob"]}),
    );
    let code = created["invites"][0]["code"].as_str().expect("invite code");
    let joined = call(
        &http,
        "POST",
        &format!("{}/api/join", server.base),
        "bob",
        Some(json!({"code": code})),
    )
    .expect("join");
    let last_seq = joined["channel"]["last_seq"].as_i64().expect("last_seq");
    (channel, last_seq)
}

/// A sync Bob sends, returned once the server counts it as waiting.
fn parked_sync(server: &Server, channel: &str, cursor: i64) -> Exchange {
    parked_sync_as(server, channel, cursor, Protocol::Legacy)
}

fn parked_sync_as(server: &Server, channel: &str, cursor: i64, protocol: Protocol) -> Exchange {
    waiting_sync(server, &through_rmcp(sync_call(channel, cursor)), protocol)
}

/// A sync Bob sends on the direct path (`server::mcp::direct`), once it counts as waiting.
fn direct_sync(server: &Server, channel: &str, cursor: i64) -> Exchange {
    waiting_sync(server, &sync_call(channel, cursor), Protocol::Legacy)
}

fn waiting_sync(server: &Server, call: &Value, protocol: Protocol) -> Exchange {
    let waiting = server.waiting_syncs();
    let exchange = Exchange::send(server, &mcp_post_as(server, "bob", call, protocol));
    server.wait_for_waiting_syncs(waiting + 1);
    exchange
}

/// The call with an empty `_meta`, which rmcp serves rather than the direct path: only plain
/// calls go direct.
fn through_rmcp(mut call: Value) -> Value {
    call["params"]["_meta"] = json!({});
    call
}

#[test]
fn parked_syncs_count_as_waiting_and_free_their_slot_when_the_client_leaves() {
    syncs_count_as_waiting_and_free_their_slot_when_the_client_leaves(parked_sync);
}

#[test]
fn direct_syncs_count_as_waiting_and_free_their_slot_when_the_client_leaves() {
    syncs_count_as_waiting_and_free_their_slot_when_the_client_leaves(direct_sync);
}

fn syncs_count_as_waiting_and_free_their_slot_when_the_client_leaves(
    waiting_sync: fn(&Server, &str, i64) -> Exchange,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--max-waiting-syncs", "3"]);
    let (channel, head) = channel_with_bob(&server);

    let abandoned: Vec<Exchange> = (0..3)
        .map(|_| waiting_sync(&server, &channel, head))
        .collect();
    let mut over_the_cap = Exchange::send(
        &server,
        &mcp_post(&server, "bob", &sync_call(&channel, head)),
    );
    let (status, body) = over_the_cap
        .answer(Duration::from_secs(10))
        .expect("a fourth sync is refused at once");
    assert_eq!(status, 200);
    assert_eq!(
        tool_text(&body)["error"]["code"],
        "LIMIT_EXCEEDED",
        "{body}"
    );

    // The clients go away without an answer; the server must notice and free their slots.
    drop(abandoned);
    server.wait_for_waiting_syncs(0);
    let waiting: Vec<Exchange> = (0..3)
        .map(|_| waiting_sync(&server, &channel, head))
        .collect();

    // One post answers every waiting sync with it.
    for page in release(&server, &channel, waiting, Duration::from_secs(10)) {
        assert_eq!(page["next_cursor"], head + 1);
    }
}

/// Alice posts "released"; every sync in `waiting` must answer with it within `patience`.
/// Returns their pages.
fn release(
    server: &Server,
    channel: &str,
    waiting: impl IntoIterator<Item = Exchange>,
    patience: Duration,
) -> Vec<Value> {
    call(
        &agent(),
        "POST",
        &format!("{}/api/channels/{channel}/messages", server.base),
        "alice",
        Some(json!({"text": "released"})),
    )
    .expect("post");
    waiting
        .into_iter()
        .map(|mut exchange| {
            let (status, body) = exchange
                .answer(patience)
                .expect("every waiting sync answers after the post");
            assert_eq!(status, 200);
            let page = tool_text(&body);
            assert_eq!(page["messages"][0]["text"], "released", "{page}");
            page
        })
        .collect()
}

/// Syncs take turns for their first pass through rmcp, so a burst does not hold a session each
/// at once. Turns must not become a way to stall everyone: a sync that hid its progress token
/// (and so waits inside its session, holding its turn) keeps a turn for its whole wait, yet
/// other syncs still get through after a short wait for a turn.
#[test]
fn syncs_beyond_the_first_pass_turns_park_even_while_every_turn_is_held() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--max-waiting-syncs", "0"]);
    let (channel, head) = channel_with_bob(&server);
    let turns = server::mcp::SYNC_FIRST_PASSES;

    // A progress token spelled with a JSON escape: rmcp reads it, the turn-taker does not.
    let mut hostage = sync_call_waiting(&channel, head, 40_000);
    hostage["params"]["_meta"] = json!({"progressToken": "held"});
    let request = String::from_utf8(mcp_post(&server, "bob", &hostage)).expect("utf-8");
    let (head_lines, body) = request.split_once("\r\n\r\n").expect("a head and a body");
    let body = body.replace("\"progressToken\"", "\"progress\\u0054oken\"");
    let head_lines = head_lines.replace(
        &format!("Content-Length: {}", request.len() - head_lines.len() - 4),
        &format!("Content-Length: {}", body.len()),
    );
    let disguised = format!("{head_lines}\r\n\r\n{body}");
    let hostages: Vec<Exchange> = (0..turns)
        .map(|_| Exchange::send(&server, disguised.as_bytes()))
        .collect();
    server.wait_for_waiting_syncs(u64::try_from(turns).expect("small"));

    // Every turn is held for 40 s; a burst of three times as many syncs parks long before.
    let burst = 3 * turns;
    let started = std::time::Instant::now();
    let waiting: Vec<Exchange> = (0..burst)
        .map(|_| {
            Exchange::send(
                &server,
                &mcp_post(&server, "bob", &through_rmcp(sync_call(&channel, head))),
            )
        })
        .collect();
    server.wait_for_waiting_syncs(u64::try_from(turns + burst).expect("small"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "parked only after {:?}, the hostages' wait",
        started.elapsed()
    );

    let answered = release(
        &server,
        &channel,
        waiting.into_iter().chain(hostages),
        Duration::from_secs(20),
    );
    assert_eq!(answered.len(), turns + burst);
}

#[test]
fn a_request_head_over_8_kib_is_refused_with_431() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let host = server.address();
    let padding = "x".repeat(9 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Padding: {padding}\r\n\r\n");
    let (status, _) = Exchange::send(&server, request.as_bytes())
        .answer(Duration::from_secs(10))
        .expect("an answer");
    assert_eq!(status, 431);

    let ordinary = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let (status, body) = Exchange::send(&server, ordinary.as_bytes())
        .answer(Duration::from_secs(10))
        .expect("an answer");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_client_that_trickles_its_request_is_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--request-read-timeout-secs", "1"]);
    let host = server.address();
    let mut slow = Exchange::send(
        &server,
        format!("POST /mcp HTTP/1.1\r\nHost: {host}\r\n").as_bytes(),
    );
    // Never finishing the head: the server must close the connection, with or without a 408.
    slow.stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut rest = Vec::new();
    match slow.stream.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        Err(error) => panic!("the server kept a half-sent request open: {error}"),
    }
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected answer: {text}"
    );

    // A complete head, then a body that never finishes: a 408, and the connection closes.
    let mut slow_body = Exchange::send(
        &server,
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer bob\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"jsonrpc\""
        )
        .as_bytes(),
    );
    let (status, body) = slow_body
        .answer(Duration::from_secs(20))
        .expect("the server answers a body that stalls");
    assert_eq!(status, 408, "{body}");
    // On /mcp, a JSON-RPC error an MCP client can show.
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["id"], Value::Null, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("did not arrive within 1 s")),
        "{answer}"
    );
    assert_eq!(
        answer["error"]["data"]["code"], "INVALID_ARGUMENT",
        "{answer}"
    );
}

/// A parked sync is answered by our middleware, not by rmcp: its answer must look exactly like
/// one rmcp gives, in both protocol versions.
#[test]
fn a_parked_answer_has_the_shape_of_an_immediate_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let (channel, _) = channel_with_bob(&server);
    for protocol in [Protocol::Legacy, Protocol::PerRequest] {
        let post = |body: &Value| mcp_post_as(&server, "bob", body, protocol);
        let cursor = head_seq(&server, &channel);
        let (status, immediate) =
            Exchange::send(&server, &post(&sync_call_waiting(&channel, 0, 0)))
                .answer(Duration::from_secs(10))
                .expect("an immediate answer");
        assert_eq!(status, 200, "{protocol:?}: {immediate}");

        let mut parked = parked_sync_as(&server, &channel, cursor, protocol);
        call(
            &agent(),
            "POST",
            &format!("{}/api/channels/{channel}/messages", server.base),
            "alice",
            Some(json!({"text": format!("news for {protocol:?}")})),
        )
        .expect("post");
        let (status, woken) = parked
            .answer(Duration::from_secs(10))
            .expect("the parked sync answers");
        assert_eq!(status, 200, "{protocol:?}: {woken}");

        let immediate: Value = serde_json::from_str(&immediate).expect("JSON");
        let woken: Value = serde_json::from_str(&woken).expect("JSON");
        assert_eq!(woken["jsonrpc"], "2.0");
        assert_eq!(
            woken["id"], 7,
            "{protocol:?}: the answer carries the request's id"
        );
        let keys = |value: &Value| -> Vec<String> {
            let mut keys: Vec<String> = value["result"]
                .as_object()
                .map(|result| result.keys().cloned().collect())
                .unwrap_or_default();
            keys.sort();
            keys
        };
        assert_eq!(
            keys(&woken),
            keys(&immediate),
            "{protocol:?}: parked {woken} vs immediate {immediate}"
        );
        assert_eq!(
            woken["result"]["resultType"],
            immediate["result"]["resultType"]
        );
        assert_eq!(
            woken["result"]["structuredContent"]["messages"][0]["text"],
            format!("news for {protocol:?}")
        );
        assert_eq!(
            tool_text(&woken.to_string()),
            woken["result"]["structuredContent"],
            "{protocol:?}: the text block repeats the structured content"
        );
    }
}

/// A parked sync that ends in a refusal (here: Bob loses his seat while he waits) is answered
/// by the middleware too, and must be the tool error an immediate refusal is, in both protocol
/// versions: `isError`, the error text and JSON, the request's id.
#[test]
fn a_parked_sync_refused_while_waiting_answers_a_tool_error_in_both_protocols() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    for protocol in [Protocol::Legacy, Protocol::PerRequest] {
        let (channel, head) = channel_with_bob(&server);
        let mut parked = parked_sync_as(&server, &channel, head, protocol);
        call(
            &agent(),
            "POST",
            &format!("{}/api/channels/{channel}/admin", server.base),
            "alice",
            Some(json!({"op": "kick", "slot": "bob"})),
        )
        .expect("kick");
        let (status, refused) = parked
            .answer(Duration::from_secs(10))
            .expect("the parked sync answers when Bob loses his seat");
        assert_eq!(status, 200, "{protocol:?}: {refused}");
        let (status, immediate) = Exchange::send(
            &server,
            &mcp_post_as(&server, "bob", &sync_call(&channel, head), protocol),
        )
        .answer(Duration::from_secs(10))
        .expect("an immediate refusal");
        assert_eq!(status, 200, "{protocol:?}: {immediate}");

        let refused: Value = serde_json::from_str(&refused).expect("JSON");
        let immediate: Value = serde_json::from_str(&immediate).expect("JSON");
        assert_eq!(refused["id"], 7, "{protocol:?}: {refused}");
        assert!(
            refused.get("error").is_none(),
            "{protocol:?}: a tool refusal, not a JSON-RPC error: {refused}"
        );
        assert_eq!(
            refused["result"]["isError"], true,
            "{protocol:?}: {refused}"
        );
        assert!(
            refused["result"].get("structuredContent").is_none(),
            "{protocol:?}: {refused}"
        );
        assert_eq!(
            tool_text(&refused.to_string())["error"]["code"],
            "NOT_MEMBER",
            "{protocol:?}: {refused}"
        );
        assert!(
            refused["result"]["content"][0]["text"]
                .as_str()
                .is_some_and(|text| text.starts_with("NOT_MEMBER: ")),
            "{protocol:?}: the first block is 'CODE: message': {refused}"
        );
        // The same refusal as a sync that is turned away at once, key for key.
        let mut expected = immediate["result"].clone();
        let mut got = refused["result"].clone();
        for result in [&mut expected, &mut got] {
            result.as_object_mut().map(|result| result.remove("_meta"));
        }
        assert_eq!(
            got, expected,
            "{protocol:?}: parked {refused} vs immediate {immediate}"
        );
    }
}

/// The direct path (`server::mcp::direct`) answers plain calls of the busiest tools without
/// rmcp; its answers must be the ones rmcp gives: the same status, the same JSON-RPC envelope,
/// the same result, the same refusals, in every protocol version it serves.
#[test]
fn a_direct_answer_is_the_answer_rmcp_gives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let (channel, _) = channel_with_bob(&server);
    let tool = |name: &str, arguments: Value| {
        json!({
            "jsonrpc": "2.0",
            "id": "same-id",
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        })
    };
    let calls = [
        tool("get_channel", json!({"channel_id": channel})),
        tool("get_channel", json!({"channel_id": "ch_nobodyhasthisone"})),
        tool("get_channel", json!({"channel": 1})),
        tool(
            "post_message",
            json!({"channel_id": channel, "text": "hello twice"}),
        ),
        tool(
            "post_message",
            json!({"channel_id": channel, "text": "x", "kind": "system"}),
        ),
        tool("post_message", json!({"channel_id": channel})),
        tool(
            "sync_messages",
            json!({"channel_id": channel, "cursor": 0, "wait_ms": 0}),
        ),
        tool(
            "sync_messages",
            json!({"channel_id": channel, "cursor": -4}),
        ),
    ];
    for protocol in [Protocol::Legacy, Protocol::June2025] {
        for call in &calls {
            let answer = |call: &Value| {
                Exchange::send(&server, &mcp_post_as(&server, "bob", call, protocol))
                    .answer(Duration::from_secs(10))
                    .expect("an answer")
            };
            let (direct_status, direct) = answer(call);
            let (rmcp_status, rmcp) = answer(&through_rmcp(call.clone()));
            assert_eq!(
                direct_status, rmcp_status,
                "{protocol:?} {call}: {direct} vs {rmcp}"
            );
            let direct: Value = serde_json::from_str(&direct).expect("JSON");
            let rmcp: Value = serde_json::from_str(&rmcp).expect("JSON");
            assert_eq!(steady(&direct), steady(&rmcp), "{protocol:?} {call}");
        }
    }
}

/// An answer with what may differ between two calls in a row blanked out: seqs, times, links,
/// the signed head, how long a sync waited. The text blocks that hold JSON are read as JSON.
fn steady(value: &Value) -> Value {
    const VOLATILE: [&str; 8] = [
        "seq",
        "at",
        "hash",
        "head",
        "last_seq",
        "next_cursor",
        "next_step",
        "waited_ms",
    ];
    match value {
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(key, member)| {
                    let member = if VOLATILE.contains(&key.as_str()) {
                        json!("<varies>")
                    } else if key == "text"
                        && let Some(inner) = member
                            .as_str()
                            .and_then(|text| serde_json::from_str::<Value>(text).ok())
                    {
                        json!({"json": steady(&inner)})
                    } else {
                        steady(member)
                    };
                    (key.clone(), member)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(steady).collect()),
        other => other.clone(),
    }
}

fn head_seq(server: &Server, channel: &str) -> i64 {
    let view = call(
        &agent(),
        "GET",
        &format!("{}/api/channels/{channel}", server.base),
        "bob",
        None,
    )
    .expect("get_channel");
    view["last_seq"].as_i64().expect("last_seq")
}

#[test]
fn past_the_connection_limit_a_client_waits_for_a_free_seat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--max-connections", "2"]);
    let host = server.address();
    let health = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let mut first = Exchange::send(&server, health.as_bytes());
    let mut second = Exchange::send(&server, health.as_bytes());
    for exchange in [&mut first, &mut second] {
        let (status, _) = exchange.answer(Duration::from_secs(10)).expect("served");
        assert_eq!(status, 200);
    }
    // Both keep-alive connections stay open; a third is accepted by the kernel but not served.
    // Nothing can be observed of a connection not served, so this waits: a server that served
    // it would answer a health check in well under the half second.
    let mut third = Exchange::send(&server, health.as_bytes());
    assert!(
        third.answer(Duration::from_millis(500)).is_none(),
        "a third connection was served past --max-connections 2"
    );
    drop(first);
    let (status, _) = third
        .answer(Duration::from_secs(10))
        .expect("served once a seat is free");
    assert_eq!(status, 200);
}

/// Reads until the server closes the connection (or `patience` runs out): the whole exchange.
fn read_until_closed(exchange: &mut Exchange, patience: Duration) -> (String, bool) {
    exchange
        .stream
        .set_read_timeout(Some(patience))
        .expect("timeout");
    let mut received = Vec::new();
    let closed = match exchange.stream.read_to_end(&mut received) {
        Ok(_) => true,
        Err(error) if error.kind() == ErrorKind::ConnectionReset => true,
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(error) => panic!("read failed: {error}"),
    };
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

/// hyper keeps both Host lines of a request and `HeaderMap::get` reads the first, while a proxy
/// in front may have checked or routed by the last.
#[test]
fn a_request_with_two_host_headers_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let host = server.address();
    for path in ["/healthz", "/mcp"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\n\r\n");
        let (status, body) = Exchange::send(&server, request.as_bytes())
            .answer(Duration::from_secs(10))
            .expect("an answer");
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("more than one Host"), "{path}: {body}");
    }
}

/// hyper alone drops a `Content-Length` sent with
/// `Transfer-Encoding` (reading the body as chunked), and keeps one of two equal lengths, so a
/// proxy in front could have framed or routed the same bytes differently. Each is refused with
/// a 400 and, for the framing ones, the connection closes: nothing after the head is read as
/// a request.
#[test]
fn ambiguously_framed_requests_are_refused_and_their_connection_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let host = server.address();
    let smuggled = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");

    let body = r#"{"name":"x","slots":["invite:a"]}"#;
    let chunk = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    for (label, framing) in [
        (
            "length then chunked",
            format!(
                "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
                chunk.len()
            ),
        ),
        (
            "chunked then length",
            format!(
                "Transfer-Encoding: chunked\r\nContent-Length: {}\r\n",
                chunk.len()
            ),
        ),
    ] {
        let request = format!(
            "POST /api/channels HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer alice\r\n\
             Content-Type: application/json\r\n{framing}\r\n{chunk}{smuggled}"
        );
        let answer = refused_and_closed(&server, &request, label);
        assert!(
            answer.contains("both Content-Length and Transfer-Encoding"),
            "{label}: {answer}"
        );
    }

    let repeated = format!(
        "POST /api/channels HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer alice\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\nContent-Length: {len}\r\n\r\n{body}{smuggled}",
        len = body.len()
    );
    let answer = refused_and_closed(&server, &repeated, "repeated Content-Length");
    assert!(answer.contains("more than one Content-Length"), "{answer}");

    // Lengths that disagree, in two headers or one: hyper itself answers 400 and closes.
    for lengths in [
        format!("Content-Length: {}\r\nContent-Length: 1\r\n", body.len()),
        format!("Content-Length: {len}, {len}\r\n", len = body.len()),
    ] {
        let request = format!(
            "POST /api/channels HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer alice\r\n\
             Content-Type: application/json\r\n{lengths}\r\n{body}{smuggled}"
        );
        refused_and_closed(&server, &request, &lengths);
    }

    // Sound requests still share a connection, and chunked alone is served (then closed).
    let sound = format!(
        "POST /api/channels HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer alice\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}{smuggled}",
        body.len()
    );
    let (answer, closed) = read_until_closed(
        &mut Exchange::send(&server, sound.as_bytes()),
        Duration::from_secs(2),
    );
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 1, "{answer}");
    assert!(!closed, "a keep-alive connection was closed");
    let chunked = format!(
        "POST /api/channels HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer alice\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}"
    );
    let (answer, closed) = read_until_closed(
        &mut Exchange::send(&server, chunked.as_bytes()),
        Duration::from_secs(10),
    );
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(closed, "a chunked request's connection stayed open");
}

/// MCP clients show a JSON-RPC error's message; a REST-shaped 413 reached users as "Server
/// returned an error response".
#[test]
fn an_oversized_mcp_request_gets_a_json_rpc_error_naming_the_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let huge = json!({
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "list_channels", "arguments": {"pad": "x".repeat(300 * 1024)}},
    });
    let (status, body) = Exchange::send(&server, &mcp_post(&server, "bob", &huge))
        .answer(Duration::from_secs(10))
        .expect("an answer");
    assert_eq!(status, 413, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
    assert_eq!(answer["id"], Value::Null, "{answer}");
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    let message = answer["error"]["message"].as_str().expect("a message");
    assert!(message.contains("262144 bytes"), "{message}");
    assert_eq!(
        answer["error"]["data"]["code"], "LIMIT_EXCEEDED",
        "{answer}"
    );
    assert!(answer["error"]["data"]["hint"].is_string(), "{answer}");

    // REST keeps its own error shape.
    let host = server.address();
    let padding = "x".repeat(300 * 1024);
    let rest = format!(
        "POST /api/channels HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer bob\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{padding}",
        padding.len()
    );
    let (status, body) = Exchange::send(&server, rest.as_bytes())
        .answer(Duration::from_secs(10))
        .expect("an answer");
    assert_eq!(status, 413, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["error"]["code"], "LIMIT_EXCEEDED", "{answer}");
}

/// Sends `request` on a fresh connection and checks the answer: one 400, no second response
/// (nothing smuggled behind the head was served), and the connection closed. Returns the answer.
#[track_caller]
fn refused_and_closed(server: &Server, request: &str, label: &str) -> String {
    let (answer, closed) = read_until_closed(
        &mut Exchange::send(server, request.as_bytes()),
        Duration::from_secs(10),
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{label}: {answer}");
    assert_eq!(
        answer.matches("HTTP/1.1").count(),
        1,
        "{label}: a second request was served: {answer}"
    );
    assert!(closed, "{label}: the connection stayed open");
    answer
}
