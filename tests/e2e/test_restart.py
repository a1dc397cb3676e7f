"""The server is stopped with SIGTERM in the middle of a conversation and started again on the
same data directory: messages, seats, invites and read cursors survive, open clients carry on,
and a sync that is waiting at shutdown is answered rather than dropped."""

from __future__ import annotations

import concurrent.futures
import time

import anyio
import pytest
from mcp import MCPError

from conftest import connect, eventually, invite_for, parse_tool_error

pytestmark = pytest.mark.anyio


async def test_restart_keeps_everything(server, mode):
    async with connect(server, "alice", mode) as alice, connect(server, "bob", mode) as bob:
        created = await alice.call(
            "create_channel", name="survivor", slots=["invite:alice", "invite:bob", "invite:carol"]
        )
        channel_id = created["channel"]["channel_id"]
        carol_code = invite_for(created, "carol")
        alice_token = created["your_seat"]["rejoin_token"]
        joined = await bob.call("join_channel", code=invite_for(created, "bob"))
        bob_token = joined["your_seat"]["rejoin_token"]
        await alice.call("post_message", channel_id=channel_id, text="move 1", data={"square": "e4"})
        await bob.call("post_message", channel_id=channel_id, text="move 2")
        psst = await alice.call("post_message", channel_id=channel_id, text="psst", to="bob")

        view_before = await alice.call("get_channel", channel_id=channel_id)
        last = view_before["last_seq"]
        assert last == psst["message"]["seq"]
        # alice reads to the end, bob only up to his join: both read cursors must survive.
        bob_read = joined["channel"]["last_seq"]
        before_alice = await alice.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)
        before_bob = await bob.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0, limit=bob_read)
        assert before_bob["next_cursor"] == bob_read and before_bob["has_more"] is True

        async def unread(player):
            listing = await player.call("list_channels")
            return [seat["unread"] for c in listing["channels"] for seat in c["seats"]]

        assert await eventually(lambda: unread(alice), [0]) == [0]
        # bob has read up to his join; of the three posts after it he wrote one, so alice's move
        # and her private note are unread.
        assert await eventually(lambda: unread(bob), [2]) == [2]

        # SIGTERM mid-conversation; restart() insists on a clean exit (code 0) well within the
        # grace period, then starts a new process on the same data directory and port.
        await anyio.to_thread.run_sync(server.restart)

        # The same client sessions carry on against the new process (same port, stateless). The
        # signed head is the same chain head under the same key; only its time and signature
        # are new.
        def unsigned(answer):
            head = answer.pop("head")
            return answer, {key: head[key] for key in ("channel", "seq", "head", "key_id")}

        assert unsigned(await alice.call("get_channel", channel_id=channel_id)) == unsigned(view_before)
        assert await unread(alice) == [0]
        assert await unread(bob) == [2]
        after_alice = await alice.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)
        after_bob = await bob.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0, limit=bob_read)
        for after, before in ((after_alice, before_alice), (after_bob, before_bob)):
            del after["waited_ms"], before["waited_ms"]
            assert unsigned(after) == unsigned(before)

        # The conversation continues, sequence numbers included.
        reply = await bob.call("post_message", channel_id=channel_id, text="move 3")
        assert reply["message"]["seq"] == last + 1
        page = await alice.call("sync_messages", channel_id=channel_id, cursor=last, wait_ms=5000)
        assert [(m["seq"], m["text"]) for m in page["messages"]] == [(last + 1, "move 3")]

    # Fresh connections see the same state; secrets issued before the restart still work.
    async with connect(server, "carol", mode) as carol, connect(server, "alice", mode) as alice:
        joined = await carol.call("join_channel", code=carol_code)
        assert joined["your_seat"]["slot"] == "carol"
        history = await carol.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)
        texts = [m.get("text") for m in history["messages"] if m["kind"] == "user"]
        assert texts == ["move 1", "move 2", "move 3"], "carol sees public messages, not the private one"
        again = await alice.call("join_channel", code=alice_token)
        assert again["your_seat"]["slot"] == "alice"
        view = await alice.call("get_channel", channel_id=channel_id)
        assert {s["slot"]: s.get("holder") for s in view["slots"]} == {"alice": "alice", "bob": "bob", "carol": "carol"}
        assert view["you_are_admin"] is True

    # A second restart, this time on a new port, with nothing open.
    server.restart(same_port=False)
    async with connect(server, "bob-laptop", mode) as laptop:
        moved = await laptop.call("join_channel", code=bob_token)
        assert moved["your_seat"]["slot"] == "bob"
        page = await laptop.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)
        assert [m["seq"] for m in page["messages"]] == list(range(1, page["next_cursor"] + 1))
        assert any(m.get("text") == "psst" and m.get("to") == "bob" for m in page["messages"])


async def _start_waiting(outcome: dict, call) -> None:
    began = time.monotonic()
    try:
        outcome["result"] = await call()
    except MCPError as error:
        outcome["error"] = error
    outcome["elapsed"] = time.monotonic() - began


async def test_a_waiting_sync_is_answered_at_shutdown(server, mode):
    """The server promises to answer waiting syncs with what they have when it stops, so an
    assistant sees an ordinary empty page (and syncs again) instead of a failed tool call."""
    async with connect(server, "alice", mode) as alice:
        created = await alice.call("create_channel", name="closing time", slots=["invite:alice", "invite:bob"])
        channel_id = created["channel"]["channel_id"]
        last = created["channel"]["last_seq"]
        outcome: dict = {}
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                _start_waiting,
                outcome,
                lambda: alice.raw("sync_messages", {"channel_id": channel_id, "cursor": last, "wait_ms": 30_000}),
            )
            await server.parked()
            code = await anyio.to_thread.run_sync(server.stop)
        statuses = [(x.path, x.status) for x in alice.http_log]

    assert code == 0
    assert "error" not in outcome, (
        f"the waiting sync failed at shutdown with {outcome['error']!r}; HTTP responses: {statuses}"
    )
    result = outcome["result"]
    assert not result.is_error, parse_tool_error(result)
    assert result.structured_content["messages"] == []
    assert result.structured_content["next_cursor"] == last
    assert outcome["elapsed"] < 5, f"answered {outcome['elapsed']:.1f} s after SIGTERM"


def test_a_waiting_rest_sync_is_answered_at_shutdown(server, rest):
    alice = rest(server, "alice")
    status, created, _ = alice.post("/channels", json={"name": "closing", "slots": ["invite:alice", "invite:bob"]})
    assert status == 201, created
    channel_id, last = created["channel"]["channel_id"], created["channel"]["last_seq"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        began = time.monotonic()
        waiting = pool.submit(alice.get, f"/channels/{channel_id}/messages", params={"cursor": last, "wait_ms": 30_000})
        server.wait_for_waiting_syncs(1)
        assert not waiting.done()
        assert server.stop() == 0
        status, page, _ = waiting.result(timeout=10)
        elapsed = time.monotonic() - began
    assert status == 200, page
    assert page["messages"] == [] and page["next_cursor"] == last
    assert elapsed < 5


TIMER_BOT = """
class Bot {
  constructor(ctx) { this.ctx = ctx; }
  on_init() { this.ctx.set_timer(1500, "wake"); this.ctx.post("armed"); }
  on_timer(tag) { this.ctx.post("woke " + tag); }
}
"""


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
async def test_a_timer_due_while_the_server_is_down_fires_once_after_the_restart(server, stop):
    """A bot's timer comes due while no server runs (stopped cleanly, or killed as in a crash):
    the next process fires it once, late, and the bot's on_timer runs once."""
    from test_transcript import rfc3339_ms

    mode = "legacy"

    async def history(player) -> list[dict]:
        page = await player.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0, limit=200)
        return page["messages"]

    async with connect(server, "alice", mode) as alice:
        created = await alice.call("create_channel", name="clock", slots=["invite:alice"], bot_code=TIMER_BOT)
        channel_id = created["channel"]["channel_id"]

        async def bot_posts() -> list[str]:
            return [m.get("text") for m in await history(alice) if m["kind"] == "bot"]

        # The timer is stored with the reaction that posts "armed".
        assert await eventually(bot_posts, ["armed"], timeout_s=10) == ["armed"]

    if stop == "sigterm":
        assert await anyio.to_thread.run_sync(server.stop) == 0
    else:
        await anyio.to_thread.run_sync(server.kill)
    # Down past the due time.
    await anyio.sleep(2.0)
    restarted_at = int(time.time() * 1000)
    await anyio.to_thread.run_sync(server.start, server.port)

    async with connect(server, "alice", mode) as alice:

        async def woken() -> list[str]:
            return [m.get("text") for m in await history(alice) if m["kind"] == "bot"]

        assert await eventually(woken, ["armed", "woke wake"], timeout_s=10) == ["armed", "woke wake"]
        # Long enough for a second firing, were there one.
        await anyio.sleep(1.5)
        messages = await history(alice)
        fired = [m for m in messages if m["kind"] == "system" and (m.get("data") or {}).get("event") == "timer_fired"]
        assert len(fired) == 1, fired
        notice = fired[0]["data"]
        assert notice["tag"] == "wake"
        fired_at = rfc3339_ms(fired[0]["at"])
        assert notice["due"] < restarted_at <= fired_at, (notice, restarted_at, fired_at)
        assert [m.get("text") for m in messages if m["kind"] == "bot"] == ["armed", "woke wake"]
