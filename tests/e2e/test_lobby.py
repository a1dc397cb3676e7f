"""The public lobby and quick match, with the official Python SDK (both protocol modes) and
REST: two sessions that ask for a game at once are seated at one table and play it; a listed
channel's open seat is taken without a code; an unlisted channel, a full one and a second seat
are refused; a wait that runs out keeps the seat."""

from __future__ import annotations

import anyio
import pytest

from conftest import assert_error_body, connect

pytestmark = pytest.mark.anyio


async def test_two_sessions_quick_match_into_one_game_and_play_it(server, mode):
    async with connect(server, "alice", mode) as alice, connect(server, "bob", mode) as bob:
        results: dict[str, dict] = {}

        async def ask(name, player):
            results[name] = await player.call("quick_match", bot="tictactoe", wait_ms=20000)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(ask, "alice", alice)
            tasks.start_soon(ask, "bob", bob)

        a, b = results["alice"], results["bob"]
        assert a["matched"] and b["matched"], (a, b)
        channel_id = a["channel"]["channel_id"]
        assert b["channel"]["channel_id"] == channel_id, "one table for both"
        assert {a["your_seat"]["slot"], b["your_seat"]["slot"]} == {"p1", "p2"}
        assert a["your_seat"]["rejoin_token"].startswith("rejoin_")
        assert "get_bot_code" in a["next_step"] and "sync_messages" in a["next_step"]
        [referee] = [s for s in b["channel"]["slots"] if s["kind"] == "bot"]
        assert referee["bot"]["name"] == "tictactoe"
        # The full table has left the lobby.
        assert (await alice.call("list_open_games", bot="tictactoe"))["games"] == []

        # The referee started the game; X (the first to sit down) plays, O answers.
        async def rules_for(player):
            cursor, seen = 0, []
            while not any("Game on!" in (m.get("text") or "") for m in seen):
                page = await player.call("sync_messages", channel_id=channel_id, cursor=cursor, wait_ms=10000)
                seen += page["messages"]
                cursor = page["next_cursor"]
            return seen, cursor

        seen, cursor = await rules_for(alice)
        start = next(m for m in seen if "Game on!" in (m.get("text") or ""))
        mover = alice if a["your_seat"]["slot"] == start["data"]["x"] else bob
        posted = await mover.call("post_message", channel_id=channel_id, data={"cell": 5})
        reply = None
        while reply is None:
            page = await alice.call("sync_messages", channel_id=channel_id, cursor=cursor, wait_ms=10000)
            cursor = page["next_cursor"]
            reply = next((m for m in page["messages"] if m["kind"] == "bot" and m["seq"] > posted["message"]["seq"]), None)
        assert reply["data"]["type"] == "move" and reply["data"]["cell"] == 5, reply


async def test_a_lonely_quick_match_keeps_its_seat_and_a_listed_channel_gives_seats_without_codes(server, mode):
    async with (
        connect(server, "alice", mode) as alice,
        connect(server, "bob", mode) as bob,
        connect(server, "carol", mode) as carol,
    ):
        lonely = await alice.call("quick_match", bot="chess", wait_ms=0)
        assert lonely["matched"] is False and "quick_match" in lonely["next_step"], lonely
        again = await alice.call("quick_match", bot="chess", wait_ms=0)
        assert again["channel"]["channel_id"] == lonely["channel"]["channel_id"]
        assert "rejoin_token" not in again["your_seat"], "the token is shown once"
        games = (await bob.call("list_open_games", bot="chess"))["games"]
        assert [g["channel_id"] for g in games] == [lonely["channel"]["channel_id"]]
        assert games[0]["listing"] == "quick_match" and games[0]["open_seats"] == ["p2"], games
        assert games[0]["bot"]["code_hash"].startswith("sha256:")

        listed = await alice.call(
            "create_channel", name="Open table", slots=["invite:alice", "invite:guest"], listed=True
        )
        private = await alice.call("create_channel", name="Private", slots=["invite:alice", "invite:guest"])
        open_ids = [g["channel_id"] for g in (await carol.call("list_open_games"))["games"]]
        assert listed["channel"]["channel_id"] in open_ids
        assert private["channel"]["channel_id"] not in open_ids, "an unlisted channel stays out of the lobby"

        assert await carol.code("take_seat", channel_id=private["channel"]["channel_id"]) == "INVALID_ARGUMENT"
        seated = await carol.call("take_seat", channel_id=listed["channel"]["channel_id"])
        assert seated["your_seat"]["slot"] == "guest" and seated["your_seat"]["rejoin_token"].startswith("rejoin_")
        assert await bob.code("take_seat", channel_id=listed["channel"]["channel_id"]) == "INVALID_ARGUMENT"
        assert await carol.code("take_seat", channel_id="ch_" + "0" * 24) == "CHANNEL_NOT_FOUND"
        assert await carol.code("quick_match", bot="echo") == "INVALID_ARGUMENT"


def test_the_lobby_over_rest(server, rest):
    alice, bob, reader = rest(server, "alice"), rest(server, "bob"), rest(server, "carol")
    status, created, _ = alice.post(
        "/channels", json={"name": "REST table", "slots": ["invite:alice", "invite:bob"], "listed": True}
    )
    assert status == 201, created
    channel_id = created["channel"]["channel_id"]
    status, lobby, _ = reader.get("/lobby")
    assert status == 200 and [g["channel_id"] for g in lobby["games"]] == [channel_id], lobby
    status, refused, _ = reader.get("/lobby", params={"bot": "x" * 65})
    assert status == 400
    assert_error_body(refused, "INVALID_ARGUMENT")
    status, seated, _ = bob.post(f"/channels/{channel_id}/seat")
    assert status == 200 and seated["your_seat"]["slot"] == "bob", seated
    status, full, _ = reader.post(f"/channels/{channel_id}/seat", json={"slot": "bob"})
    assert status == 400
    assert_error_body(full, "INVALID_ARGUMENT")
    status, waiting, _ = reader.post("/quick-match", json={"bot": "rps", "wait_ms": 0})
    assert status == 200 and waiting["matched"] is False, waiting
    assert "POST /api/quick-match" in waiting["next_step"], waiting
