"""Admin operations that succeed, over MCP (both protocol modes) and REST: a kick removes the
holder and everyone is told, `set_admin` with `admin: false` takes the right away again, and a
reissued invite is recorded in the history while the old code stops working."""

from __future__ import annotations

import pytest

from conftest import assert_error_body, connect, create_with, invite_for

pytestmark = pytest.mark.anyio

SLOTS = ["invite:alice", "invite:bob", "invite:carol"]


def notices(messages: list[dict]) -> list[dict]:
    return [m["data"] for m in messages if m["kind"] == "system"]


async def test_kick_grant_revoke_and_reissue_over_mcp(server, mode):
    async with (
        connect(server, "alice", mode) as alice,
        connect(server, "bob", mode) as bob,
        connect(server, "carol", mode) as carol,
    ):
        created = await create_with(alice, SLOTS, ("bob", bob), ("carol", carol))
        channel_id = created["channel"]["channel_id"]
        start = (await alice.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0))["next_cursor"]

        # Granted, Bob renames; revoked with admin: false, he no longer may.
        await alice.call("update_channel", channel_id=channel_id, op="set_admin", slot="bob")
        await bob.call("update_channel", channel_id=channel_id, op="rename", name="bob was here")
        revoked = await alice.call("update_channel", channel_id=channel_id, op="set_admin", slot="bob", admin=False)
        bob_slot = next(s for s in revoked["channel"]["slots"] if s["slot"] == "bob")
        assert bob_slot["admin"] is False, bob_slot
        assert await bob.code("update_channel", channel_id=channel_id, op="rename", name="again") == "NOT_ADMIN"

        # The kick empties Carol's seat; she can no longer read, and everyone is told.
        kicked = await alice.call("update_channel", channel_id=channel_id, op="kick", slot="carol")
        carol_slot = next(s for s in kicked["channel"]["slots"] if s["slot"] == "carol")
        assert carol_slot["filled"] is False, carol_slot
        assert await carol.code("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0) == "NOT_MEMBER"

        # Reissued: the history says so, the new code seats Carol again, the old one is dead.
        reissued = await alice.call("update_channel", channel_id=channel_id, op="reissue_invite", slot="carol")
        fresh = reissued["invite"]["code"]
        assert fresh != invite_for(created, "carol")
        assert await carol.code("join_channel", code=invite_for(created, "carol")) == "INVITE_INVALID"
        await carol.call("join_channel", code=fresh)

        seen = await bob.call("sync_messages", channel_id=channel_id, cursor=start, wait_ms=0)
        events = [(n["event"], n.get("slot"), n.get("admin")) for n in notices(seen["messages"])]
        assert events == [
            ("admin_changed", "bob", True),
            ("renamed", None, None),
            ("admin_changed", "bob", False),
            ("kicked", "carol", None),
            ("invite_reissued", "carol", None),
            ("joined", "carol", None),
        ], events


def test_kick_and_revoke_over_rest(server, rest):
    alice, bob, carol = rest(server, "alice"), rest(server, "bob"), rest(server, "carol")
    status, created, _ = alice.post("/channels", json={"name": "rest admin", "slots": SLOTS})
    assert status == 201, created
    channel_id = created["channel"]["channel_id"]
    for name, client in (("bob", bob), ("carol", carol)):
        status, joined, _ = client.post("/join", json={"code": invite_for(created, name)})
        assert status == 200, joined
    admin = f"/channels/{channel_id}/admin"

    status, granted, _ = alice.post(admin, json={"op": "set_admin", "slot": "bob", "admin": True})
    assert status == 200, granted
    status, body, _ = bob.post(admin, json={"op": "rename", "name": "bob's"})
    assert status == 200, body
    status, revoked, _ = alice.post(admin, json={"op": "set_admin", "slot": "bob", "admin": False})
    assert status == 200, revoked
    assert next(s for s in revoked["channel"]["slots"] if s["slot"] == "bob")["admin"] is False
    status, body, _ = bob.post(admin, json={"op": "rename", "name": "again"})
    assert status == 403
    assert_error_body(body, "NOT_ADMIN")

    status, kicked, _ = alice.post(admin, json={"op": "kick", "slot": "carol"})
    assert status == 200, kicked
    assert next(s for s in kicked["channel"]["slots"] if s["slot"] == "carol")["filled"] is False
    status, body, _ = carol.get(f"/channels/{channel_id}/messages", params={"cursor": 0, "wait_ms": 0})
    assert status == 403
    assert_error_body(body, "NOT_MEMBER")
    status, page, _ = bob.get(f"/channels/{channel_id}/messages", params={"cursor": 0, "wait_ms": 0, "limit": 200})
    assert status == 200, page
    last = notices(page["messages"])[-1]
    assert (last["event"], last["slot"]) == ("kicked", "carol"), last
