"""Two players meet: create, join with the invite code, post, sync with cursors, inspect the
channel and list channels with unread counts."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from conftest import CHANNEL_ID, connect, eventually, invite_for

pytestmark = pytest.mark.anyio


def slot_by_label(view: dict, label: str) -> dict:
    [slot] = [slot for slot in view["slots"] if slot["slot"] == label]
    return slot


async def test_two_players_talk(server, mode):
    async with connect(server, "alice", mode) as alice, connect(server, "bob", mode) as bob:
        # --- create ---
        created = await alice.call("create_channel", name="  Chess night  ", slots=["invite:alice", "invite:bob"])
        channel = created["channel"]
        channel_id = channel["channel_id"]
        assert CHANNEL_ID.fullmatch(channel_id), channel_id
        assert channel["name"] == "Chess night", "the name is trimmed"
        assert channel["closed"] is False
        assert channel["last_seq"] == 2, "created + alice joined"
        assert channel["you_are_admin"] is True
        assert channel["your_slots"] == ["alice"]
        assert slot_by_label(channel, "alice") == {
            "slot": "alice",
            "kind": "invite",
            "filled": True,
            "holder": "alice",
            "display": "alice",
            "admin": True,
            "yours": True,
        }
        assert slot_by_label(channel, "bob") == {
            "slot": "bob",
            "kind": "invite",
            "filled": False,
            "admin": False,
            "yours": False,
        }
        assert [invite["slot"] for invite in created["invites"]] == ["bob"]
        code = created["invites"][0]["code"]
        assert re.fullmatch(r"inv_[0-9a-f]+", code), code
        assert created["your_seat"]["slot"] == "alice"
        assert created["your_seat"]["rejoin_token"].startswith("rejoin_")
        assert channel_id in created["next_step"]

        # --- join ---
        joined = await bob.call("join_channel", code=code)
        assert joined["your_seat"]["slot"] == "bob"
        assert joined["your_seat"]["rejoin_token"].startswith("rejoin_")
        assert joined["your_seat"]["rejoin_token"] != created["your_seat"]["rejoin_token"]
        view = joined["channel"]
        assert view["channel_id"] == channel_id
        assert view["last_seq"] == 3
        assert view["you_are_admin"] is False
        assert view["your_slots"] == ["bob"]
        assert slot_by_label(view, "bob") == {
            "slot": "bob",
            "kind": "invite",
            "filled": True,
            "holder": "bob",
            "display": "bob",
            "admin": False,
            "yours": True,
        }
        assert slot_by_label(view, "alice")["yours"] is False
        assert slot_by_label(view, "alice")["holder"] == "alice"
        assert "sync_messages" in joined["next_step"]

        # --- get_channel, from both sides ---
        for player, mine, admin in ((alice, "alice", True), (bob, "bob", False)):
            seen = await player.call("get_channel", channel_id=channel_id)
            assert seen["your_slots"] == [mine]
            assert seen["you_are_admin"] is admin
            assert {s["slot"]: s.get("holder") for s in seen["slots"]} == {"alice": "alice", "bob": "bob"}
            assert {s["slot"]: s["admin"] for s in seen["slots"]} == {"alice": True, "bob": False}
            assert {s["slot"]: s["yours"] for s in seen["slots"]} == {"alice": mine == "alice", "bob": mine == "bob"}
            assert seen["last_seq"] == 3

        # --- bob reads the history ---
        page = await bob.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)
        assert [m["seq"] for m in page["messages"]] == [1, 2, 3]
        assert all(m["kind"] == "system" and "from_slot" not in m for m in page["messages"])
        assert [m["data"]["event"] for m in page["messages"]] == ["created", "joined", "joined"]
        assert page["messages"][2]["data"]["slot"] == "bob"
        assert page["next_cursor"] == 3
        assert page["has_more"] is False
        assert page["slot"] == "bob"
        assert page["channel"]["channel_id"] == channel_id, "a first sync carries the channel"
        assert page["channel"]["your_slots"] == ["bob"]

        # --- alice speaks ---
        posted = await alice.call("post_message", channel_id=channel_id, text="hello bob")
        message = posted["message"]
        assert message["seq"] == 4
        assert message["kind"] == "user"
        assert message["from_slot"] == "alice"
        assert message["from_name"] == "alice"
        assert message["text"] == "hello bob"
        assert "to" not in message and "data" not in message
        datetime.fromisoformat(message["at"].replace("Z", "+00:00"))
        # The hint never points at the posted seq, which would skip what others posted meanwhile.
        assert "next_cursor of your last sync" in posted["next_step"] and "cursor 4" not in posted["next_step"]
        move = await alice.call("post_message", channel_id=channel_id, text="my move", data={"move": "e4", "n": 1})
        assert move["message"]["seq"] == 5
        assert move["message"]["data"] == {"move": "e4", "n": 1}

        # --- unread counts before bob reads on ---
        async def seats_of(player):
            listing = await player.call("list_channels")
            return {c["channel_id"]: c["seats"] for c in listing["channels"]}

        # bob read up to 3; alice's own two posts are unread for him.
        assert await eventually(lambda: seats_of(bob), {channel_id: [{"slot": "bob", "unread": 2}]}) == {
            channel_id: [{"slot": "bob", "unread": 2}]
        }
        # alice never synced: three system messages, her own posts excluded.
        listing = await alice.call("list_channels")
        [entry] = listing["channels"]
        assert entry == {
            "channel_id": channel_id,
            "name": "Chess night",
            "closed": False,
            "last_seq": 5,
            "you_are_admin": True,
            "seats": [{"slot": "alice", "unread": 3}],
        }

        # --- bob syncs from his cursor ---
        page = await bob.call("sync_messages", channel_id=channel_id, cursor=3, wait_ms=0)
        assert [m["seq"] for m in page["messages"]] == [4, 5]
        assert [m["text"] for m in page["messages"]] == ["hello bob", "my move"]
        assert page["next_cursor"] == 5 and page["has_more"] is False
        assert "channel" not in page, "no roster change, no channel"
        assert await eventually(lambda: seats_of(bob), {channel_id: [{"slot": "bob", "unread": 0}]}) == {
            channel_id: [{"slot": "bob", "unread": 0}]
        }

        # --- paging: limit, has_more and next_cursor ---
        cursor, seen, pages = 0, [], 0
        while True:
            page = await bob.call("sync_messages", channel_id=channel_id, cursor=cursor, wait_ms=0, limit=2)
            pages += 1
            assert len(page["messages"]) <= 2
            seen += [m["seq"] for m in page["messages"]]
            assert page["next_cursor"] == seen[-1]
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
        assert seen == [1, 2, 3, 4, 5]
        assert pages == 3
        empty = await bob.call("sync_messages", channel_id=channel_id, cursor=5, wait_ms=0)
        assert empty["messages"] == [] and empty["next_cursor"] == 5 and empty["has_more"] is False

        # A cursor past the end, or negative, is a mistake and says so.
        assert await bob.code("sync_messages", channel_id=channel_id, cursor=6, wait_ms=0) == "INVALID_ARGUMENT"
        assert await bob.code("sync_messages", channel_id=channel_id, cursor=-1, wait_ms=0) == "INVALID_ARGUMENT"

        # --- bob answers privately; alice reads it ---
        reply = await bob.call("post_message", channel_id=channel_id, text="e5, quietly", to="alice")
        assert reply["message"]["to"] == "alice"
        page = await alice.call("sync_messages", channel_id=channel_id, cursor=5, wait_ms=0)
        assert [(m["seq"], m["from_slot"], m.get("to"), m["text"]) for m in page["messages"]] == [
            (6, "bob", "alice", "e5, quietly")
        ]

    # Someone else has no channels at all.
    async with connect(server, "carol", mode) as carol:
        assert (await carol.call("list_channels")) == {"channels": []}


async def test_list_channels_shows_newest_first_with_one_entry_per_seat(server, mode):
    async with connect(server, "alice", mode) as alice:
        first = await alice.call("create_channel", name="first", slots=["invite:alice", "invite:bob"])
        second = await alice.call("create_channel", name="second", slots=["invite:a", "invite:b"])
        # alice takes the second seat of "second" herself: two seats, two unread counters.
        await alice.call("join_channel", code=second["invites"][0]["code"])
        # join=false: the channel is set up but alice holds no seat; she still administers it.
        third = await alice.call("create_channel", name="third", slots=["invite:x"], join=False)
        assert "your_seat" not in third
        assert [i["slot"] for i in third["invites"]] == ["x"]
        listing = await alice.call("list_channels")
        assert [c["name"] for c in listing["channels"]] == ["third", "second", "first"]
        by_name = {c["name"]: c for c in listing["channels"]}
        assert by_name["third"]["seats"] == [] and by_name["third"]["you_are_admin"] is True
        assert [s["slot"] for s in by_name["second"]["seats"]] == ["a", "b"]
        assert by_name["first"]["channel_id"] == first["channel"]["channel_id"]


async def test_following_the_post_hint_never_skips_a_message(server, mode):
    """A model that does what post_message tells it must still read what others posted meanwhile."""
    async with connect(server, "alice", mode) as alice, connect(server, "bob", mode) as bob:
        created = await alice.call("create_channel", name="hints", slots=["invite:alice", "invite:bob"])
        channel_id = created["channel"]["channel_id"]
        await bob.call("join_channel", code=invite_for(created, "bob"))
        last_sync = await alice.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)

        await bob.call("post_message", channel_id=channel_id, text="bob spoke first")
        posted = await alice.call("post_message", channel_id=channel_id, text="alice answers")
        seq = posted["message"]["seq"]
        hint = posted["next_step"]
        assert f"cursor {seq}" not in hint and f"cursor={seq}" not in hint, hint
        assert "next_cursor" in hint, hint

        page = await alice.call("sync_messages", channel_id=channel_id, cursor=last_sync["next_cursor"], wait_ms=0)
        assert [m.get("text") for m in page["messages"]] == ["bob spoke first", "alice answers"]


async def test_a_wait_above_the_cap_says_so(server, mode):
    async with connect(server, "alice", mode) as alice:
        created = await alice.call("create_channel", name="patience", slots=["invite:alice"])
        channel_id = created["channel"]["channel_id"]
        page = await alice.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=60000)
        assert "60000" in page["notice"] and "45000" in page["notice"], page
        page = await alice.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=45000)
        assert "notice" not in page, page


async def test_join_hints_fit_the_seat(server, mode):
    """A spectator is not told to post; taking a second seat with an invite warns."""
    async with connect(server, "alice", mode) as alice, connect(server, "carol", mode) as carol:
        created = await alice.call("create_channel", name="seats", slots=["invite:alice", "invite:bob", "spectator:crowd"])
        watching = await carol.call("join_channel", code=invite_for(created, "crowd"))
        assert "cannot post" in watching["next_step"] and "post_message" not in watching["next_step"], watching["next_step"]
        assert "Note:" not in watching["next_step"]
        # Alice redeems the invite she should have handed to bob.
        doubled = await alice.call("join_channel", code=invite_for(created, "bob"))
        assert "you already held alice" in doubled["next_step"], doubled["next_step"]
        assert "leave_channel" in doubled["next_step"] and "slot bob" in doubled["next_step"], doubled["next_step"]
        # A rejoin moves a seat one already had: no warning.
        again = await alice.call("join_channel", code=doubled["your_seat"]["rejoin_token"])
        assert "Note:" not in again["next_step"], again["next_step"]
