"""Scopes are decided by the service on the decoded call, never from the raw request bytes.

The attack this guards against: a read-only token spelled a writing call with JSON escapes
(`"tools\\/call"`, `"create\\u005fchannel"`). A middleware that read the body on its own saw no
`tools/call` of a writing tool and let it through, and rmcp, decoding the escapes, ran the tool.
"""

from __future__ import annotations

import json

import httpx2
import pytest

from conftest import create_personal_token

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25", "Content-Type": "application/json"}


@pytest.fixture
def oauth(server_factory):
    return server_factory("--auth", "oauth", "--approval", "auto", "--rate-limit", "0")


class Caller:
    def __init__(self, server, token: str):
        self.base = server.base_url
        self.http = httpx2.Client(timeout=10.0, headers={"Authorization": f"Bearer {token}"})

    def rpc(self, raw_body: str) -> httpx2.Response:
        """POSTs the JSON-RPC body exactly as written, escapes and all."""
        return self.http.post(f"{self.base}/mcp", content=raw_body.encode(), headers=MCP_HEADERS)

    def call_tool(self, name: str, arguments: dict) -> httpx2.Response:
        body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
        return self.rpc(json.dumps(body))

    def api(self, method: str, path: str, **kwargs) -> httpx2.Response:
        return self.http.request(method, f"{self.base}{path}", **kwargs)


def assert_scope_refused(response: httpx2.Response) -> None:
    assert response.status_code == 403, f"{response.status_code}: {response.text[:300]}"
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    error = response.json()["error"]
    # REST's error object, or on /mcp a JSON-RPC error with our code in its data.
    assert "INSUFFICIENT_SCOPE" in (error["code"], error.get("data", {}).get("code")), error


def test_escaped_method_and_tool_names_cannot_write(oauth):
    alice = Caller(oauth, create_personal_token(oauth, "alice"))
    reader = Caller(oauth, create_personal_token(oauth, "mallory", "--read-only"))
    status = alice.api("POST", "/api/channels", json={"name": "Alice's", "slots": ["invite:alice", "invite:bob"]})
    assert status.status_code == 201, status.text
    created = status.json()
    channel_id = created["channel"]["channel_id"]
    invite = next(i["code"] for i in created["invites"] if i["slot"] == "bob")

    create = '{"name": "x", "slots": ["invite:a"]}'
    attempts = [
        # The escapes of the review, then every other spelling JSON allows.
        '{"jsonrpc":"2.0","id":1,"method":"tools\\/call","params":{"name":"create_channel","arguments":%s}}' % create,
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create\\u005fchannel","arguments":%s}}' % create,
        '{"jsonrpc":"2.0","id":1,"method":"\\u0074ools\\/call","params":{"name":"\\u0063reate_channel","arguments":%s}}' % create,
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_channel","arguments":%s}}' % create,
        '{"jsonrpc":"2.0","id":1,"method":"tools\\/call","params":{"name":"join\\u005fchannel","arguments":{"code":"%s"}}}' % invite,
        '{"jsonrpc":"2.0","id":1,"method":"tools\\/call","params":{"name":"post\\u005fmessage","arguments":{"channel_id":"%s","text":"forged"}}}' % channel_id,
        '{"jsonrpc":"2.0","id":1,"method":"tools\\/call","params":{"name":"update\\u005fchannel","arguments":{"channel_id":"%s","op":"close"}}}' % channel_id,
    ]
    for body in attempts:
        assert_scope_refused(reader.rpc(body))

    # Nothing was written: the reader holds nothing, alice's channel is open with bob's seat free,
    # and the invite still works for someone allowed to write.
    assert reader.api("GET", "/api/channels").json()["channels"] == []
    view = alice.api("GET", f"/api/channels/{channel_id}").json()
    assert view["closed"] is False
    assert next(s for s in view["slots"] if s["slot"] == "bob")["filled"] is False
    bob = Caller(oauth, create_personal_token(oauth, "bob"))
    joined = bob.api("POST", "/api/join", json={"code": invite})
    assert joined.status_code in (200, 201), joined.text

    # REST: the same refusal for every writing route, however the request is dressed up.
    for method, path, body in [
        ("POST", "/api/channels", {"name": "x", "slots": ["invite:a"]}),
        ("POST", f"/api/channels/{channel_id}/messages", {"text": "forged"}),
        ("POST", "/api/join", {"code": invite}),
        ("POST", f"/api/channels/{channel_id}/bot", {"bot_preset": "echo"}),
    ]:
        # A method-override header changes nothing: the route's capability decides.
        assert_scope_refused(reader.api(method, path, json=body, headers={"X-HTTP-Method-Override": "GET"}))
    # A percent-encoded path names no route at all (axum does not decode the path to route it).
    encoded = reader.api("POST", "/api/%63hannels", json={"name": "x", "slots": ["invite:a"]})
    assert encoded.status_code == 404 and encoded.json()["error"]["code"] == "NOT_FOUND", encoded.text
    assert reader.api("GET", "/api/channels").json()["channels"] == []


# Well-formed arguments for every tool that writes, so the refusal can only be for scope.
WRITING_CALLS = {
    "create_channel": {"name": "x", "slots": ["invite:a"]},
    "join_channel": {"code": "inv_" + "0" * 32},
    "post_message": {"channel_id": "ch_" + "0" * 24, "text": "hi"},
    "update_channel": {"channel_id": "ch_" + "0" * 24, "op": "close"},
    "leave_channel": {"channel_id": "ch_" + "0" * 24},
    "attach_bot": {"channel_id": "ch_" + "0" * 24, "bot_preset": "echo"},
    "take_seat": {"channel_id": "ch_" + "0" * 24},
    "quick_match": {"bot": "tictactoe", "wait_ms": 0},
}


def test_a_read_only_token_calls_exactly_the_tools_annotated_read_only(oauth):
    reader = Caller(oauth, create_personal_token(oauth, "reader", "--read-only"))
    listed = reader.rpc('{"jsonrpc":"2.0","id":1,"method":"tools/list"}')
    assert listed.status_code == 200, listed.text
    tools = listed.json()["result"]["tools"]
    writers = {tool["name"] for tool in tools if not tool["annotations"]["readOnlyHint"]}
    assert writers == set(WRITING_CALLS), "a new writing tool needs its well-formed call here"
    for tool in tools:
        response = reader.call_tool(tool["name"], WRITING_CALLS.get(tool["name"], {}))
        if tool["annotations"]["readOnlyHint"]:
            assert response.status_code == 200, (tool["name"], response.text)
            result = response.json()["result"]
            # It may fail for its arguments, never for scope.
            assert "INSUFFICIENT_SCOPE" not in str(result), (tool["name"], result)
        else:
            assert_scope_refused(response)
