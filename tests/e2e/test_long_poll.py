"""sync_messages waits: a post wakes a waiting reader at once, and a long wait tells the client
it is alive with progress notifications."""

from __future__ import annotations

import time

import anyio
import pytest

from conftest import connect, create_with, parse_tool_error

pytestmark = pytest.mark.anyio

WAIT_MS = 20_000


async def test_a_post_wakes_a_waiting_sync(server, mode):
    async with connect(server, "alice", mode) as alice, connect(server, "bob", mode) as bob:
        created = await create_with(alice, ["invite:alice", "invite:bob"], ("bob", bob))
        channel_id = created["channel"]["channel_id"]
        cursor = (await alice.call("get_channel", channel_id=channel_id))["last_seq"]

        outcome: dict = {}

        async def wait_for_bob() -> None:
            started = time.monotonic()
            result = await alice.raw("sync_messages", {"channel_id": channel_id, "cursor": cursor, "wait_ms": WAIT_MS})
            outcome["elapsed"] = time.monotonic() - started
            outcome["result"] = result

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait_for_bob)
            await server.parked()
            assert "result" not in outcome, f"the sync answered without a new message: {outcome}"
            await bob.call("post_message", channel_id=channel_id, text="your turn")

        result = outcome["result"]
        assert not result.is_error, parse_tool_error(result)
        page = result.structured_content
        assert [(m["from_slot"], m["text"]) for m in page["messages"]] == [("bob", "your turn")]
        assert page["next_cursor"] == cursor + 1
        assert page["has_more"] is False
        # It was waiting before the post (the server counted it), and it answered soon after
        # the post rather than at the deadline.
        assert page["waited_ms"] <= 1000 * outcome["elapsed"], (page["waited_ms"], outcome["elapsed"])
        assert outcome["elapsed"] < 10, f"woken after {outcome['elapsed']:.1f} s of a {WAIT_MS} ms wait"


async def test_a_sync_refused_while_it_waits_gets_a_tool_error(server, mode):
    """A waiting sync whose caller loses the seat (kicked) is answered with the refusal, shaped
    as every tool error is, in both protocol versions (a parked sync is answered by the
    server's own middleware, not by the MCP library)."""
    async with connect(server, "alice", mode) as alice, connect(server, "bob", mode) as bob:
        created = await create_with(alice, ["invite:alice", "invite:bob"], ("bob", bob))
        channel_id = created["channel"]["channel_id"]
        cursor = (await bob.call("get_channel", channel_id=channel_id))["last_seq"]
        outcome: dict = {}

        async def bob_waits() -> None:
            outcome["result"] = await bob.raw("sync_messages", {"channel_id": channel_id, "cursor": cursor, "wait_ms": WAIT_MS})

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(bob_waits)
            await server.parked()
            await alice.call("update_channel", channel_id=channel_id, op="kick", slot="bob")

        refusal = parse_tool_error(outcome["result"])
        assert refusal.code == "NOT_MEMBER", refusal
        # The same refusal as a sync that is turned away at once.
        assert await bob.error("sync_messages", channel_id=channel_id, cursor=cursor, wait_ms=0) == refusal


async def test_a_waiting_sync_sends_progress_and_returns_empty(server, mode):
    async with connect(server, "alice", mode) as alice:
        created = await alice.call("create_channel", name="quiet", slots=["invite:alice", "invite:bob"])
        channel_id = created["channel"]["channel_id"]
        cursor = created["channel"]["last_seq"]

        updates: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            updates.append((progress, total, message))

        started = time.monotonic()
        result = await alice.raw(
            "sync_messages",
            {"channel_id": channel_id, "cursor": cursor, "wait_ms": 7000},
            progress_callback=on_progress,
        )
        elapsed = time.monotonic() - started

    assert not result.is_error, parse_tool_error(result)
    page = result.structured_content
    assert page["messages"] == []
    assert page["next_cursor"] == cursor
    assert page["has_more"] is False
    assert page["slot"] == "alice"
    assert 6.5 <= elapsed < 20, f"a 7000 ms wait took {elapsed:.1f} s"
    assert page["waited_ms"] >= 6900, page["waited_ms"]
    assert updates, "no progress notification during a 7 s wait (one is due every 5 s)"
    progress, total, message = updates[0]
    assert 4.0 <= progress <= 7.0, updates
    assert total == pytest.approx(7.0), updates
    assert message, updates
    assert [u[0] for u in updates] == sorted(u[0] for u in updates), "progress never goes back"
