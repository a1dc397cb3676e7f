"""Several instances on one PostgreSQL database: three server processes, clients spread over
them, a game played across them, and one instance killed with SIGKILL in the middle of it.

What must hold: a write one instance acknowledged is never lost; each bot event runs exactly
once (one reaction per move, and the transcript replays); a sync waiting on one instance wakes
when another commits; the work of the dead instance resumes on the others once its lease runs
out. Runs only where the suite runs on PostgreSQL (`MCP_E2E_BACKEND=postgres`).
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from conftest import MODES, POSTGRES, connect, invite_for
from test_games import BOT, check_exports, open_table

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not POSTGRES, reason="several instances need PostgreSQL: set MCP_E2E_BACKEND=postgres"),
]

ALICE_MODE, BOB_MODE = MODES
# A dead instance's lease on a channel's bots runs out after 15 s (service::bots::BOT_LEASE_TERM),
# and the others look for such work every 5 s.
TAKEOVER_S = 40.0


@pytest.fixture
def instances(server_factory):
    first = server_factory("--rate-limit", "0")
    others = [server_factory("--rate-limit", "0", database_url=first.database_url) for _ in range(2)]
    return [first, *others]


async def test_a_sync_on_one_instance_wakes_when_another_commits(instances):
    a, b, _ = instances
    async with connect(a, "alice", ALICE_MODE) as alice, connect(b, "bob", BOB_MODE) as bob:
        created = await alice.call("create_channel", name="across", slots=["invite:alice", "invite:bob"])
        channel = created["channel"]["channel_id"]
        await bob.call("join_channel", code=invite_for(created, "bob"))
        cursor = (await bob.call("sync_messages", channel_id=channel))["next_cursor"]
        for round in range(5):
            woken: dict[str, Any] = {}

            async def wait() -> None:
                started = time.monotonic()
                woken["page"] = await bob.call("sync_messages", channel_id=channel, cursor=cursor, wait_ms=20000)
                woken["after_s"] = time.monotonic() - started

            async with anyio.create_task_group() as group:
                group.start_soon(wait)
                await b.parked(1)
                await alice.call("post_message", channel_id=channel, text=f"hello {round}")
            texts = [m.get("text") for m in woken["page"]["messages"]]
            assert texts == [f"hello {round}"], woken
            # Woken by the other instance's notice, not by the end of the 20 s wait.
            assert woken["after_s"] < 10, woken
            cursor = woken["page"]["next_cursor"]


async def test_a_game_goes_on_across_instances_when_one_is_killed(instances):
    a, b, c = instances
    async with connect(b, "bob", BOB_MODE) as bob:
        async with connect(a, "alice", ALICE_MODE) as alice_on_a:
            table = await open_table(alice_on_a, bob, "tictactoe", {"first": "join"})
            start = await table.bot("bob", "the start post", type="start")
            first = await table.post("alice", text="5")
            await table.bot("bob", "the board after Alice's first move", after=first["seq"], type="move", cell=5)
            second = await table.post("bob", text="1")
            await table.bot("alice", "the board after Bob's move", after=second["seq"], type="move", cell=1)
            # Alice's next move goes through A, which dies at once: its bot event may have run,
            # be running, or not have started.
            third = await table.post("alice", text="9")
        a.kill()
        acknowledged = [start, first, second, third]

        async with connect(c, "alice", ALICE_MODE) as alice_on_c:
            table.players["alice"] = alice_on_c
            table.feeds["alice"].player = alice_on_c
            move = await table.bot("bob", "the board after the move made just before A died", after=third["seq"],
                                   type="move", cell=9, timeout_s=TAKEOVER_S)
            fourth = await table.post("bob", text="2")
            await table.bot("alice", "the board after Bob's second move", after=fourth["seq"], type="move", cell=2)
            fifth = await table.post("alice", text="3")
            await table.bot("bob", "the board after Alice's third move", after=fifth["seq"], type="move", cell=3)
            sixth = await table.post("bob", text="7")
            await table.bot("alice", "the board after Bob's third move", after=sixth["seq"], type="move", cell=7)
            last = await table.post("alice", text="6")
            result = await table.bot("bob", "the result", after=last["seq"], type="result")
            assert result["data"]["winner"] == "alice", result
            acknowledged += [move, fourth, fifth, sixth, last, result]
            exports = await table.end_and_export(result["seq"])

    messages = {m["seq"]: m for m in exports["bob"]["messages"]}
    assert sorted(messages) == list(range(1, max(messages) + 1)), "seqs are contiguous"
    for message in acknowledged:
        assert messages[message["seq"]].get("text") == message.get("text"), message
    # Exactly one reaction of the bot to each move, however many instances saw it.
    moves = [m["data"]["cell"] for m in messages.values()
             if m.get("sender") == BOT and (m.get("data") or {}).get("type") == "move"]
    assert moves == [5, 1, 9, 2, 3, 7, 6], moves
    check_exports(c, table, exports, result["seq"])
