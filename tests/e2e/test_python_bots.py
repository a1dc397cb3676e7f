"""A Python bot in a real game: the GuessBot-like fixture from the bots crate, attached as
bot_code (its language inferred), played to the end by two Python SDK clients taking turns, and
its reveal checked against the commitment it posted at the start."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import WORKSPACE, connect, invite_for
from test_bots import Feed, commitment, from_bot

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(server_factory):
    """A server with a generous bot budget: these tests are about Python bots playing, and a
    debug build's interpreter on a loaded CI machine once ran a move past the default 50 ms."""
    return server_factory("--rate-limit", "0", "--bot-budget-ms", "2000")

GUESS_PY = (Path(WORKSPACE) / "crates/bots/tests/fixtures/guess.py").read_text()


async def test_a_python_guessing_game_played_to_the_end(server, mode):
    async with connect(server, "alice", mode) as alice, connect(server, "bob", mode) as bob:
        created = await alice.call(
            "create_channel",
            name="python guess",
            slots=["invite:alice", "invite:bob"],
            bot_code=GUESS_PY,
            bot_params={"min": 1, "max": 1000},
        )
        channel_id = created["channel"]["channel_id"]
        [bot] = [slot["bot"] for slot in created["channel"]["slots"] if slot["kind"] == "bot"]
        assert bot["language"] == "python", bot
        code = await bob.call("join_channel", code=invite_for(created, "bob"))
        assert code["your_seat"]["slot"] == "bob"
        read = await bob.call("get_bot_code", channel_id=channel_id)
        assert read["language"] == "python" and read["source"] == GUESS_PY

        feed = Feed(alice, channel_id)
        opening = await feed.wait_for(from_bot(type="commitment"))
        committed = opening["data"]["commitment"]
        low, high = opening["data"]["min"], opening["data"]["max"]
        assert (low, high) == (1, 1000)

        # Alice joined first, so she guesses first; each halves the range the hints leave.
        players = {"alice": alice, "bob": bob}
        turn = ["alice", "bob"]
        moves = 0
        while True:
            guess = (low + high) // 2
            player = players[turn[moves % 2]]
            said = await player.call("post_message", channel_id=channel_id, text=str(guess))
            moves += 1
            # The bot's welcome to Bob (text only) may come after Alice's first guess: wait for
            # the answer to the guess itself.
            answer = await feed.wait_for(
                lambda m: from_bot()(m) and (m.get("data") or {}).get("type") in ("hint", "reveal"),
                after=said["message"]["seq"],
            )
            data = answer["data"]
            if data["type"] == "reveal":
                break
            assert data == {"type": "hint", "guess": guess, "hint": data["hint"]}, data
            if data["hint"] == "higher":
                low = guess + 1
            else:
                high = guess - 1
            assert moves <= 10, "binary search over 1000 numbers ends within 10 guesses"

        assert data["value"] == str(guess) and data["winner"] == turn[(moves - 1) % 2]
        assert data["channel_id"] == channel_id and data["bot_slot"] == "referee"
        recomputed = commitment(channel_id, "referee", data["value"], bytes.fromhex(data["salt"]))
        assert recomputed == committed == data["commitment"]

        # The game is over: more guesses get no answer, and nothing broke along the way.
        await alice.call("post_message", channel_id=channel_id, text="1")
        seen = await feed.everything()
        assert not [m for m in seen if m["kind"] == "system" and (m.get("data") or {}).get("event") == "bot_error"]
