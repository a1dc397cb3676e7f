"""Bot code runs in worker processes the server kills: built-ins that loop in native code end at
the budget while other channels' bots keep answering, a loop at the top level of bot_code is
refused at create, a stuck event neither blocks SIGTERM nor a restart, and each worker is one
confined thread with nothing of the server's environment."""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import pytest

from conftest import ServerProcess, ToolCallFailed, connect, invite_for
from test_bots import ECHO_BOT, Feed, from_bot, system_event

pytestmark = pytest.mark.anyio

# Built-ins that never reach QuickJS's interrupt check, each on an array-like of 2**53-1 items
# (or a quadratic string search). In a thread of the server they ran for seconds, or forever.
NATIVE_LOOPS = {
    "reverse": "Array.prototype.reverse.call({length: 2**53 - 1});",
    "join": "Array.prototype.join.call({length: 2**53 - 1});",
    "unshift": "Array.prototype.unshift.call({length: 2**53 - 2}, 1);",
    "splice": "Array.prototype.splice.call({length: 2**53 - 1}, 0, 1);",
    "copyWithin": "Array.prototype.copyWithin.call({length: 2**53 - 1}, 1, 0);",
    "indexOf": "const hay = 'a'.repeat(1 << 22); hay.indexOf('a'.repeat(1 << 21) + 'b');",
}


def looping_bot(loop: str) -> str:
    """A bot whose every user message runs `loop`."""
    return (
        "class Bot {\n"
        "  constructor(ctx) { this.ctx = ctx; }\n"
        f"  on_message(msg) {{ if (msg.kind === 'user') {{ {loop} }} }}\n"
        "}\n"
    )


def workers_of(server: ServerProcess) -> list[int]:
    """The pids of the server's worker processes (its children)."""
    assert server.process is not None
    # Each thread lists the children it started; the runtime's threads start workers.
    tasks = Path(f"/proc/{server.process.pid}/task")
    return sorted(int(child) for task in tasks.iterdir() for child in (task / "children").read_text().split())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_native_loops_end_at_the_budget_while_another_owners_bot_answers(server, mode):
    async with connect(server, "mallory", mode) as mallory, connect(server, "alice", mode) as alice:
        echo = await alice.call("create_channel", name="echo", slots=["invite:alice"], bot_code=ECHO_BOT)
        echo_id = echo["channel"]["channel_id"]
        echo_feed = Feed(alice, echo_id)
        for name, loop in NATIVE_LOOPS.items():
            created = await mallory.call(
                "create_channel", name=name, slots=["invite:mallory"], bot_code=looping_bot(loop)
            )
            channel_id = created["channel"]["channel_id"]
            feed = Feed(mallory, channel_id)
            await feed.pull()
            start = feed.cursor
            began = time.monotonic()
            await mallory.call("post_message", channel_id=channel_id, text="go")
            # While the loop runs, alice's echo bot answers her.
            said = await alice.call("post_message", channel_id=echo_id, text=f"during {name}")
            await echo_feed.wait_for(from_bot(re=said["message"]["seq"]), timeout_s=10.0)
            error = await feed.wait_for(system_event("bot_error"), after=start, timeout_s=10.0)
            assert error["data"]["kind"] == "cpu_budget", (name, error)
            print(f"{name}: bot_error after {1000 * (time.monotonic() - began):.0f} ms")
        # The server is as responsive as ever.
        assert (await alice.call("get_channel", channel_id=echo_id))["channel_id"] == echo_id


async def test_a_native_loop_at_the_top_level_is_refused_at_create(server, mode):
    async with connect(server, "mallory", mode) as mallory:
        began = time.monotonic()
        with pytest.raises(ToolCallFailed) as refused:
            await mallory.call(
                "create_channel",
                name="top",
                slots=["invite:mallory"],
                bot_code=NATIVE_LOOPS["reverse"] + "\nclass Bot {}\n",
            )
        assert refused.value.info.code == "INVALID_ARGUMENT"
        assert "budget" in refused.value.info.message, refused.value.info
        assert time.monotonic() - began < 5.0
        listing = await mallory.call("list_channels")
        assert listing["channels"] == [], "nothing was created"


async def test_sigterm_during_a_stuck_event_and_its_replay_after_restart(server_factory):
    # A budget of ten seconds keeps the event running while the server is told to stop.
    server = server_factory("--bot-budget-ms", "10000")
    async with connect(server, "mallory", "legacy") as mallory:
        created = await mallory.call(
            "create_channel", name="stuck", slots=["invite:mallory"], bot_code=looping_bot(NATIVE_LOOPS["reverse"])
        )
        channel_id = created["channel"]["channel_id"]
        posted = await mallory.call("post_message", channel_id=channel_id, text="go")

    # Wait until a worker is visibly burning CPU on the event.
    deadline = time.monotonic() + 10
    while not any(cpu_seconds(pid) > 0.3 for pid in workers_of(server)):
        assert time.monotonic() < deadline, "no worker picked up the event"
        await anyio.sleep(0.05)
    began = time.monotonic()
    code = await anyio.to_thread.run_sync(server.stop)
    assert code == 0, server.log_tail()
    print(f"stopped {1000 * (time.monotonic() - began):.0f} ms after SIGTERM during a stuck event")

    # Restarted with the default budget, the replayed event is killed like any other.
    server.extra_args = [arg for arg in server.extra_args if arg not in ("--bot-budget-ms", "10000")]
    server.start()
    async with connect(server, "mallory", "legacy") as mallory:
        feed = Feed(mallory, channel_id)
        error = await feed.wait_for(system_event("bot_error", seq=posted["message"]["seq"]), timeout_s=15.0)
        assert error["data"]["kind"] == "cpu_budget", error
        assert (await mallory.call("get_channel", channel_id=channel_id))["channel_id"] == channel_id


async def test_each_worker_is_one_thread_with_an_empty_environment_at_low_priority(server, mode):
    async with connect(server, "alice", mode) as alice:
        created = await alice.call("create_channel", name="echo", slots=["invite:alice"], bot_code=ECHO_BOT)
        feed = Feed(alice, created["channel"]["channel_id"])
        said = await alice.call("post_message", channel_id=created["channel"]["channel_id"], text="hi")
        await feed.wait_for(from_bot(re=said["message"]["seq"]))
    pids = workers_of(server)
    assert len(pids) == (os.cpu_count() or 2), pids
    for pid in pids:
        assert len(os.listdir(f"/proc/{pid}/task")) == 1, f"worker {pid} has more than one thread"
        environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        names = {entry.split(b"=", 1)[0] for entry in environment if entry}
        assert names <= {b"_RJEM_MALLOC_CONF"}, names
        status = Path(f"/proc/{pid}/status").read_text()
        assert "Seccomp:\t2" in status, "a seccomp filter is installed"
        assert "NoNewPrivs:\t1" in status
        nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
        assert nice >= 10, nice
