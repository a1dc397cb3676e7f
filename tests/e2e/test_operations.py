"""What an operator scrapes: /metrics behind its token, counting calls from both surfaces by
operation and outcome; /livez and /readyz."""

from __future__ import annotations

import re
import subprocess

import httpx2
import pytest

from conftest import BINARY, connect

pytestmark = pytest.mark.anyio

TOKEN = "metrics-token-for-the-e2e-suite"


def scrape(server, token: str | None = TOKEN) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx2.get(f"{server.base_url}/metrics", headers=headers, timeout=10)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample, its labels matched exactly (in any order)."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


async def test_calls_are_counted_by_surface_operation_and_code(server_factory, mode):
    server = server_factory("--rate-limit", "0", "--metrics-token", TOKEN)
    async with connect(server, "alice", mode) as alice:
        created = await alice.call("create_channel", name="metered", slots=["invite:alice", "invite:bob"])
        channel_id = created["channel"]["channel_id"]
        await alice.call("get_channel", channel_id=channel_id)
        assert await alice.code("get_channel", channel_id="ch_doesnotexist") == "CHANNEL_NOT_FOUND"
    rest = httpx2.Client(headers={"Authorization": "Bearer bob"}, base_url=f"{server.base_url}/api")
    assert rest.get(f"/channels/{channel_id}").status_code == 403
    assert rest.get("/bots").status_code == 200
    rest.close()

    response = scrape(server)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    counted = lambda surface, operation, code: sample(  # noqa: E731
        text, "mcp_multiplayer_calls_total", surface=surface, operation=operation, code=code
    )
    assert counted("mcp", "create_channel", "ok") == 1
    assert counted("mcp", "get_channel", "ok") == 1
    assert counted("mcp", "get_channel", "CHANNEL_NOT_FOUND") == 1
    assert counted("rest", "get_channel", "NOT_MEMBER") == 1
    assert counted("rest", "list_bots", "ok") == 1
    # Every counted call is also timed.
    assert sample(text, "mcp_multiplayer_call_duration_seconds_count", surface="mcp", operation="get_channel") == 2
    assert sample(text, "mcp_multiplayer_waiting_syncs") == 0
    assert sample(text, "mcp_multiplayer_worker_processes_started_total") is not None
    assert "# HELP mcp_multiplayer_bot_failures" in text


def test_a_parked_sync_is_counted_once_with_its_outcome_and_whole_wait(server_factory):
    """A sync served by the MCP SDK parks while it waits (`_meta` keeps it off the direct path):
    it is counted when answered, as ok and timed with its wait, and never as INTERNAL."""
    server = server_factory("--rate-limit", "0", "--metrics-token", TOKEN)
    alice = httpx2.Client(base_url=server.base_url, headers={"Authorization": "Bearer alice"}, timeout=10)
    created = alice.post("/api/channels", json={"name": "parked", "slots": ["invite:alice", "invite:bob"]})
    assert created.status_code == 201, created.text
    channel_id = created.json()["channel"]["channel_id"]
    cursor = alice.get(f"/api/channels/{channel_id}").json()["last_seq"]
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "sync_messages",
            "arguments": {"channel_id": channel_id, "cursor": cursor, "wait_ms": 400},
            "_meta": {"note": "not plain"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    answered = alice.post("/mcp", json=body, headers=headers)
    alice.close()
    assert answered.status_code == 200, answered.text
    assert '"messages":[]' in answered.text.replace(" ", ""), answered.text[:300]

    text = scrape(server).text
    counted = lambda code: sample(  # noqa: E731
        text, "mcp_multiplayer_calls_total", surface="mcp", operation="sync_messages", code=code
    )
    assert counted("ok") == 1
    assert counted("INTERNAL") is None
    waited = sample(text, "mcp_multiplayer_call_duration_seconds_sum", surface="mcp", operation="sync_messages")
    assert waited is not None and waited >= 0.4, waited


async def test_a_made_up_tool_name_is_counted_as_unknown(server_factory, mode):
    server = server_factory("--rate-limit", "0", "--metrics-token", TOKEN)
    async with connect(server, "alice", mode) as alice:
        with pytest.raises(Exception):
            await alice.raw("no_such_tool_" + "x" * 40, {})
    text = scrape(server).text
    assert "no_such_tool" not in text
    assert sample(
        text, "mcp_multiplayer_calls_total", surface="mcp", operation="unknown", code="PROTOCOL_ERROR"
    ) == 1


def test_metrics_need_the_token_and_are_off_without_one(server_factory):
    server = server_factory("--rate-limit", "0", "--metrics-token", TOKEN)
    assert scrape(server, None).status_code == 401
    assert scrape(server, "bob").status_code == 401
    assert scrape(server, TOKEN + "x").status_code == 401
    # An MCP bearer token is not the metrics token.
    refused = scrape(server, "alice")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHENTICATED"

    plain = server_factory("--rate-limit", "0")
    off = scrape(plain)
    assert off.status_code == 404
    assert "--metrics-token" in off.json()["error"]["hint"]


def test_a_short_metrics_token_is_refused_at_start(tmp_path):
    run = subprocess.run(
        [str(BINARY), "serve", "--auth", "dev", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path), "--metrics-token", "short"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode != 0
    assert "--metrics-token" in run.stderr and "16" in run.stderr


def test_liveness_and_readiness(server):
    live = httpx2.get(f"{server.base_url}/livez", timeout=10)
    assert live.status_code == 200 and live.json() == {"status": "alive"}
    ready = httpx2.get(f"{server.base_url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
