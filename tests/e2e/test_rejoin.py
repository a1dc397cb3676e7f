"""A rejoin token moves a seat to whoever presents it, e.g. the same person from another chat
(another account here). The previous holder loses the seat."""

from __future__ import annotations

import pytest

from conftest import connect, create_with

pytestmark = pytest.mark.anyio


async def test_a_rejoin_token_moves_the_seat(server, mode):
    async with (
        connect(server, "alice", mode) as alice,
        connect(server, "bob", mode) as bob,
        connect(server, "bob-laptop", mode) as laptop,
    ):
        created = await alice.call("create_channel", name="moving", slots=["invite:alice", "invite:bob"])
        channel_id = created["channel"]["channel_id"]
        joined = await bob.call("join_channel", code=created["invites"][0]["code"])
        token = joined["your_seat"]["rejoin_token"]
        await alice.call("post_message", channel_id=channel_id, text="for bob's eyes only", to="bob")
        head = (await bob.call("post_message", channel_id=channel_id, text="from the phone"))["message"]["seq"]

        # Presenting the token again as the same holder changes nothing and writes nothing.
        again = await bob.call("join_channel", code=token)
        assert again["your_seat"] == {"slot": "bob", "rejoin_token": token}
        assert again["channel"]["last_seq"] == head

        # Another account presents the token: the seat moves there.
        moved = await laptop.call("join_channel", code=token)
        assert moved["your_seat"] == {"slot": "bob", "rejoin_token": token}
        assert moved["channel"]["your_slots"] == ["bob"]
        [seat] = [s for s in moved["channel"]["slots"] if s["slot"] == "bob"]
        assert seat["holder"] == "bob-laptop" and seat["yours"] is True

        # The previous holder is out: no posting, reading or even seeing the channel.
        assert await bob.code("post_message", channel_id=channel_id, text="still here?") == "NOT_MEMBER"
        assert await bob.code("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0) == "NOT_MEMBER"
        assert await bob.code("get_channel", channel_id=channel_id) == "NOT_MEMBER"
        assert (await bob.call("list_channels"))["channels"] == []

        # The new holder speaks as seat bob and reads the seat's whole history, private
        # messages to the seat included.
        posted = await laptop.call("post_message", channel_id=channel_id, text="now from the laptop")
        assert posted["message"]["from_slot"] == "bob"
        assert posted["message"]["from_name"] == "bob-laptop"
        history = await laptop.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)
        texts = [m.get("text") for m in history["messages"] if m["kind"] == "user"]
        assert texts == ["for bob's eyes only", "from the phone", "now from the laptop"]

        # Everyone is told that the seat moved.
        page = await alice.call("sync_messages", channel_id=channel_id, cursor=head, wait_ms=0)
        system = [m for m in page["messages"] if m["kind"] == "system"]
        assert [m["data"] for m in system] == [{"event": "rejoined", "slot": "bob", "name": "bob-laptop", "v": 1}]
        assert "channel" in page, "a roster change carries the channel"
        [seat] = [s for s in page["channel"]["slots"] if s["slot"] == "bob"]
        assert seat["holder"] == "bob-laptop" and seat["yours"] is False

        # The token keeps working: bob takes the seat back, and the laptop is out in turn.
        back = await bob.call("join_channel", code=token)
        assert back["your_seat"]["slot"] == "bob"
        assert await laptop.code("post_message", channel_id=channel_id, text="mine?") == "NOT_MEMBER"
        await bob.call("post_message", channel_id=channel_id, text="back on the phone")

        # Leaving ends the token for good.
        left = await bob.call("leave_channel", channel_id=channel_id)
        assert left == {"channel_id": channel_id, "left_slot": "bob"}
        assert await laptop.code("join_channel", code=token) == "INVITE_INVALID"
        assert await bob.code("join_channel", code=token) == "INVITE_INVALID"
        view = await alice.call("get_channel", channel_id=channel_id)
        [seat] = [s for s in view["slots"] if s["slot"] == "bob"]
        assert seat["filled"] is False and "holder" not in seat


async def test_forged_rejoin_tokens_are_refused(server, mode):
    async with connect(server, "alice", mode) as alice, connect(server, "mallory", mode) as mallory:
        created = await create_with(alice, ["invite:alice", "invite:bob"])
        token = created["your_seat"]["rejoin_token"]
        forged = [
            token[:-1] + ("0" if token[-1] != "0" else "1"),
            "rejoin_" + "0" * 64,
            token.upper(),
            "rejoin_",
            "",
            created["channel"]["channel_id"],
        ]
        for code in forged:
            assert await mallory.code("join_channel", code=code) == "INVITE_INVALID", code
        view = await alice.call("get_channel", channel_id=created["channel"]["channel_id"])
        assert view["your_slots"] == ["alice"] and view["last_seq"] == created["channel"]["last_seq"]
