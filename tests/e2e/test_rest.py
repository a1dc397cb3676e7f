"""The REST API under /api: the same capabilities as the tools, as JSON over HTTP, with
{"error": {code, message, hint}} bodies and matching HTTP statuses."""

from __future__ import annotations

import concurrent.futures
import time

import anyio
import pytest

from conftest import assert_error_body, connect, invite_for

SLOTS = ["invite:alice", "invite:bob", "spectator:watcher"]


def test_rest_conversation(server, rest):
    alice, bob, eve = rest(server, "alice"), rest(server, "bob"), rest(server, "eve")

    # --- create ---
    status, created, _ = alice.post("/channels", json={"name": "rest game", "slots": SLOTS})
    assert status == 201, created
    channel_id = created["channel"]["channel_id"]
    assert created["channel"]["your_slots"] == ["alice"]
    assert sorted(i["slot"] for i in created["invites"]) == ["bob", "watcher"]
    assert created["your_seat"]["rejoin_token"].startswith("rejoin_")

    # --- join ---
    status, joined, _ = bob.post("/join", json={"code": invite_for(created, "bob")})
    assert status == 200, joined
    assert joined["your_seat"]["slot"] == "bob"
    assert joined["channel"]["your_slots"] == ["bob"]
    status, _, _ = eve.post("/join", json={"code": invite_for(created, "watcher")})
    assert status == 200

    # --- get ---
    status, view, _ = bob.get(f"/channels/{channel_id}")
    assert status == 200
    assert {s["slot"]: s.get("holder") for s in view["slots"]} == {"alice": "alice", "bob": "bob", "watcher": "eve"}
    assert view["last_seq"] == 4

    # --- post ---
    status, posted, _ = alice.post(f"/channels/{channel_id}/messages", json={"text": "hi bob", "data": {"move": 1}})
    assert status == 201, posted
    assert posted["message"]["seq"] == 5 and posted["message"]["from_slot"] == "alice"
    status, private, _ = alice.post(f"/channels/{channel_id}/messages", json={"text": "secret", "to": "bob"})
    assert status == 201 and private["message"]["to"] == "bob"

    # --- sync ---
    status, page, _ = bob.get(f"/channels/{channel_id}/messages", params={"cursor": 4, "wait_ms": 0})
    assert status == 200, page
    assert [(m["seq"], m["text"]) for m in page["messages"]] == [(5, "hi bob"), (6, "secret")]
    assert page["next_cursor"] == 6 and page["has_more"] is False and page["slot"] == "bob"
    status, page, _ = eve.get(f"/channels/{channel_id}/messages", params={"cursor": 4, "wait_ms": 0})
    assert [m["text"] for m in page["messages"]] == ["hi bob"], "the spectator does not see the private message"
    assert page["next_cursor"] == 6
    status, page, _ = bob.get(f"/channels/{channel_id}/messages", params={"cursor": 0, "wait_ms": 0, "limit": 2})
    assert [m["seq"] for m in page["messages"]] == [1, 2] and page["has_more"] is True and page["next_cursor"] == 2
    assert page["channel"]["channel_id"] == channel_id

    # --- long poll: bob waits, alice speaks ---
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        waiting = pool.submit(bob.get, f"/channels/{channel_id}/messages", params={"cursor": 6, "wait_ms": 20_000})
        time.sleep(0.5)
        assert not waiting.done(), "the sync answered without a new message"
        status, _, _ = alice.post(f"/channels/{channel_id}/messages", json={"text": "your move"})
        assert status == 201
        status, page, _ = waiting.result(timeout=30)
        elapsed = time.monotonic() - started
    assert status == 200
    assert [m["text"] for m in page["messages"]] == ["your move"]
    assert elapsed < 10, elapsed

    # --- list with unread counts ---
    deadline = time.monotonic() + 3
    while True:
        status, listing, _ = bob.get("/channels")
        assert status == 200
        [entry] = listing["channels"]
        if entry["seats"] == [{"slot": "bob", "unread": 0}] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert entry["seats"] == [{"slot": "bob", "unread": 0}]
    assert entry["channel_id"] == channel_id and entry["you_are_admin"] is False

    # --- admin ops ---
    status, renamed, _ = alice.post(f"/channels/{channel_id}/admin", json={"op": "rename", "name": "renamed"})
    assert status == 200 and renamed["channel"]["name"] == "renamed"
    status, body, _ = bob.post(f"/channels/{channel_id}/admin", json={"op": "rename", "name": "bob's"})
    assert status == 403
    assert_error_body(body, "NOT_ADMIN")
    status, yielded, _ = alice.post(f"/channels/{channel_id}/admin", json={"op": "yield_slot", "slot": "watcher"})
    assert status == 200 and yielded["invite"]["slot"] == "watcher"
    status, body, _ = eve.get(f"/channels/{channel_id}")
    assert status == 403
    assert_error_body(body, "NOT_MEMBER")

    # --- leave (an empty body leaves your only seat) ---
    status, left, _ = bob.post(f"/channels/{channel_id}/leave")
    assert status == 200, left
    assert left == {"channel_id": channel_id, "left_slot": "bob"}
    status, body, _ = bob.get(f"/channels/{channel_id}/messages", params={"cursor": 0, "wait_ms": 0})
    assert status == 403
    assert_error_body(body, "NOT_MEMBER")
    status, view, _ = alice.get(f"/channels/{channel_id}")
    assert [s["filled"] for s in view["slots"]] == [True, False, False]

    # --- close ---
    status, _, _ = alice.post(f"/channels/{channel_id}/admin", json={"op": "close"})
    assert status == 200
    status, body, _ = alice.post(f"/channels/{channel_id}/messages", json={"text": "anyone?"})
    assert status == 409
    assert_error_body(body, "CHANNEL_CLOSED")


def test_rest_errors(server, rest):
    alice, bob, mallory = rest(server, "alice"), rest(server, "bob"), rest(server, "mallory")
    status, created, _ = alice.post(
        "/channels", json={"name": "errors", "slots": ["invite:alice", "invite:alt", "invite:bob", "spectator:s"]}
    )
    assert status == 201
    channel_id = created["channel"]["channel_id"]
    messages = f"/channels/{channel_id}/messages"
    code_bob = invite_for(created, "bob")
    assert bob.post("/join", json={"code": code_bob})[0] == 200
    assert rest(server, "spectator").post("/join", json={"code": invite_for(created, "s")})[0] == 200

    cases = [
        # (client, method, path, kwargs, status, code)
        (mallory, "GET", f"/channels/{channel_id}", {}, 403, "NOT_MEMBER"),
        (mallory, "GET", messages, {"params": {"wait_ms": 0}}, 403, "NOT_MEMBER"),
        (mallory, "POST", messages, {"json": {"text": "hi"}}, 403, "NOT_MEMBER"),
        (mallory, "POST", "/join", {"json": {"code": code_bob}}, 404, "INVITE_INVALID"),
        (mallory, "POST", "/join", {"json": {"code": "inv_" + "0" * 32}}, 404, "INVITE_INVALID"),
        (alice, "GET", f"/channels/ch_{'0' * 24}", {}, 404, "CHANNEL_NOT_FOUND"),
        (alice, "GET", "/channels/ch_nope", {}, 404, "CHANNEL_NOT_FOUND"),
        (alice, "POST", messages, {"json": {"text": "x", "kind": "system"}}, 400, "INVALID_ARGUMENT"),
        (alice, "POST", messages, {"json": {"text": "x", "kind": "bot"}}, 400, "INVALID_ARGUMENT"),
        (alice, "POST", messages, {"json": {"text": "x", "from_slot": "bob"}}, 400, "INVALID_ARGUMENT"),
        (alice, "POST", messages, {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400,
         "INVALID_ARGUMENT"),
        (alice, "POST", messages, {"content": b'{"text": "x"}'}, 400, "INVALID_ARGUMENT"),  # no Content-Type
        (alice, "POST", messages, {"json": {"text": "x" * (16 * 1024 + 1)}}, 422, "LIMIT_EXCEEDED"),
        (alice, "GET", messages, {"params": {"cursor": "abc"}}, 400, "INVALID_ARGUMENT"),
        (alice, "GET", messages, {"params": {"cursor": 0, "since": 3}}, 400, "INVALID_ARGUMENT"),
        (bob, "GET", messages, {"params": {"cursor": 999, "wait_ms": 0}}, 400, "INVALID_ARGUMENT"),
        (alice, "POST", "/join", {"json": {"code": code_bob, "slot": "bob"}}, 400, "INVALID_ARGUMENT"),
        (alice, "POST", "/channels", {"json": {"name": "x"}}, 400, "INVALID_ARGUMENT"),
        (alice, "POST", messages, {"json": {"text": "which seat?"}}, 400, "SLOT_REQUIRED"),
        (alice, "POST", messages, {"json": {"text": "x", "slot": "ghost"}}, 404, "SLOT_NOT_FOUND"),
        (alice, "POST", f"/channels/{channel_id}/admin", {"json": {"op": "explode"}}, 400, "INVALID_ARGUMENT"),
        (alice, "POST", f"/channels/{channel_id}/leave", {"json": {"slots": "alt"}}, 400, "INVALID_ARGUMENT"),
        (bob, "POST", f"/channels/{channel_id}/admin", {"json": {"op": "close"}}, 403, "NOT_ADMIN"),
    ]
    # alice takes a second seat, so slot-less calls are ambiguous for her.
    assert alice.post("/join", json={"code": invite_for(created, "alt")})[0] == 200
    spectator = rest(server, "spectator")
    cases.append((spectator, "POST", messages, {"json": {"text": "boo"}}, 403, "READ_ONLY_SEAT"))

    failures = []
    for client, method, path, kwargs, want_status, want_code in cases:
        status, body, _ = client.request(method, path, **kwargs)
        try:
            assert status == want_status
            assert_error_body(body, want_code)
        except AssertionError:
            failures.append(f"{method} {path} {kwargs!s:.80}: want {want_status} {want_code}, got {status} {body!s:.200}")
    assert not failures, "\n".join(failures)

    # None of that wrote anything.
    status, view, _ = alice.get(f"/channels/{channel_id}")
    assert status == 200 and view["last_seq"] == 5 and view["closed"] is False and view["name"] == "errors"


def test_rest_and_mcp_share_one_channel(server, rest):
    alice = rest(server, "alice")
    status, created, _ = alice.post("/channels", json={"name": "bridge", "slots": ["invite:alice", "invite:bob"]})
    assert status == 201
    channel_id = created["channel"]["channel_id"]

    async def bob_over_mcp() -> list[str]:
        async with connect(server, "bob", "2026-07-28") as bob:
            await bob.call("join_channel", code=invite_for(created, "bob"))
            await bob.call("post_message", channel_id=channel_id, text="from mcp")
            page = await bob.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)
            return [m["text"] for m in page["messages"] if m["kind"] == "user"]

    alice.post(f"/channels/{channel_id}/messages", json={"text": "from rest"})
    seen = anyio.run(bob_over_mcp)
    assert seen == ["from rest", "from mcp"]
    status, page, _ = alice.get(f"/channels/{channel_id}/messages", params={"cursor": 0, "wait_ms": 0})
    assert [m["from_slot"] for m in page["messages"] if m["kind"] == "user"] == ["alice", "bob"]


@pytest.mark.parametrize("path", ["/channels", "/join", "/channels/ch_x/messages"])
def test_rest_without_a_token_is_401(server, rest, path):
    anonymous = rest(server, None)
    status, body, headers = anonymous.post(path, json={})
    assert status == 401
    assert_error_body(body, "UNAUTHENTICATED")
    assert headers["www-authenticate"] == 'Bearer realm="mcp-multiplayer"'
