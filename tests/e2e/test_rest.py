"""The REST API under /api: the same capabilities as the tools, as JSON over HTTP, with
{"error": {code, message, hint}} bodies and matching HTTP statuses."""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import time

import anyio
import httpx2
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
    status, watching, _ = eve.post("/join", json={"code": invite_for(created, "watcher")})
    assert status == 200
    # The join answers' heads, not a count of the notices a create and a join write.
    head = watching["channel"]["last_seq"]
    assert joined["channel"]["last_seq"] < head

    # --- get ---
    status, view, _ = bob.get(f"/channels/{channel_id}")
    assert status == 200
    assert {s["slot"]: s.get("holder") for s in view["slots"]} == {"alice": "alice", "bob": "bob", "watcher": "eve"}
    assert view["last_seq"] == head

    # --- post ---
    status, posted, _ = alice.post(f"/channels/{channel_id}/messages", json={"text": "hi bob", "data": {"move": 1}})
    assert status == 201, posted
    assert posted["message"]["seq"] == head + 1 and posted["message"]["from_slot"] == "alice"
    status, private, _ = alice.post(f"/channels/{channel_id}/messages", json={"text": "secret", "to": "bob"})
    assert status == 201 and private["message"]["to"] == "bob"
    hi, secret = posted["message"]["seq"], private["message"]["seq"]
    assert secret == hi + 1

    # --- sync ---
    status, page, _ = bob.get(f"/channels/{channel_id}/messages", params={"cursor": head, "wait_ms": 0})
    assert status == 200, page
    assert [(m["seq"], m["text"]) for m in page["messages"]] == [(hi, "hi bob"), (secret, "secret")]
    assert page["next_cursor"] == secret and page["has_more"] is False and page["slot"] == "bob"
    status, page, _ = eve.get(f"/channels/{channel_id}/messages", params={"cursor": head, "wait_ms": 0})
    assert [m["text"] for m in page["messages"]] == ["hi bob"], "the spectator does not see the private message"
    assert page["next_cursor"] == secret
    status, page, _ = bob.get(f"/channels/{channel_id}/messages", params={"cursor": 0, "wait_ms": 0, "limit": 2})
    assert [m["seq"] for m in page["messages"]] == [1, 2] and page["has_more"] is True and page["next_cursor"] == 2
    assert page["channel"]["channel_id"] == channel_id

    # --- long poll: bob waits, alice speaks ---
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        waiting = pool.submit(bob.get, f"/channels/{channel_id}/messages", params={"cursor": secret, "wait_ms": 20_000})
        server.wait_for_waiting_syncs(1)
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
    status, second_seat, _ = alice.post("/join", json={"code": invite_for(created, "alt")})
    assert status == 200
    head = second_seat["channel"]["last_seq"]
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
    assert status == 200 and view["last_seq"] == head and view["closed"] is False and view["name"] == "errors"


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


# --- Parity with the tools: bots, next steps, errors on every path, and a true OpenAPI document ---


def test_rest_serves_the_bot_capabilities(server, rest):
    alice, bob = rest(server, "alice"), rest(server, "bob")
    status, catalog, _ = alice.get("/bots")
    assert status == 200, catalog
    names = [bot["name"] for bot in catalog["bots"]]
    assert "guess" in names
    assert "/api/bots/" in catalog["next_step"] and "get_bot_code" not in catalog["next_step"]

    status, code, _ = alice.get("/bots/guess")
    assert status == 200, code
    guess_hash = next(bot["code_hash"] for bot in catalog["bots"] if bot["name"] == "guess")
    assert code["code_hash"] == guess_hash and code["source"]
    status, body, _ = alice.get("/bots/no-such-bot")
    assert status == 400
    assert_error_body(body, "INVALID_ARGUMENT")

    status, created, _ = alice.post("/channels", json={"name": "bots", "slots": ["invite:alice", "invite:bob", "bot:ref"]})
    assert status == 201, created
    channel_id = created["channel"]["channel_id"]
    assert bob.post("/join", json={"code": invite_for(created, "bob")})[0] == 200

    status, body, _ = bob.post(f"/channels/{channel_id}/bot", json={"bot_preset": "echo"})
    assert status == 403
    assert_error_body(body, "NOT_ADMIN")
    status, attached_bot, _ = alice.post(f"/channels/{channel_id}/bot", json={"bot_preset": "echo", "slot": "ref"})
    view = attached_bot["channel"]
    assert f"GET /api/channels/{channel_id}/bot?slot=ref" in attached_bot["next_step"], attached_bot["next_step"]
    assert status == 200, view
    [ref] = [slot for slot in view["slots"] if slot["slot"] == "ref"]
    assert ref["bot"]["name"] == "echo"

    status, attached, _ = bob.get(f"/channels/{channel_id}/bot", params={"slot": "ref"})
    assert status == 200, attached
    assert attached["code_hash"] == ref["bot"]["code_hash"]
    status, body, _ = rest(server, "mallory").get(f"/channels/{channel_id}/bot")
    assert status == 403
    assert_error_body(body, "NOT_MEMBER")


def test_next_steps_name_the_surface_the_caller_used(server, rest):
    alice, bob = rest(server, "alice"), rest(server, "bob")
    status, created, _ = alice.post("/channels", json={"name": "steps", "slots": ["invite:alice", "invite:bob"]})
    assert status == 201
    channel_id = created["channel"]["channel_id"]
    status, joined, _ = bob.post("/join", json={"code": invite_for(created, "bob")})
    assert status == 200
    status, posted, _ = bob.post(f"/channels/{channel_id}/messages", json={"text": "hi"})
    assert status == 201
    tool_names = ["join_channel", "sync_messages", "post_message", "get_bot_code", "create_channel"]
    for step in (created["next_step"], joined["next_step"], posted["next_step"]):
        assert "/api/" in step, step
        assert not any(tool in step for tool in tool_names), step
    assert "POST it to /api/join" in created["next_step"]
    assert f"GET /api/channels/{channel_id}/messages" in created["next_step"]
    assert f"POST /api/channels/{channel_id}/messages" in joined["next_step"]
    # Following a post's hint never skips what others posted meanwhile: it names your own cursor.
    assert "next_cursor" in posted["next_step"]
    assert f"cursor={posted['message']['seq']}" not in posted["next_step"]

    async def over_mcp() -> list[str]:
        async with connect(server, "carol", "2026-07-28") as carol:
            made = await carol.call("create_channel", name="mcp steps", slots=["invite:carol", "invite:dave"])
            said = await carol.call("post_message", channel_id=made["channel"]["channel_id"], text="hello")
            bots = await carol.call("list_bots")
            return [made["next_step"], said["next_step"], bots["next_step"]]

    for step in anyio.run(over_mcp):
        assert "/api/" not in step, step
        assert any(tool in step for tool in tool_names), step


@pytest.mark.parametrize(
    "method, path, status, code",
    [
        ("GET", "/nope", 404, "NOT_FOUND"),
        ("GET", "/api/nope", 404, "NOT_FOUND"),
        ("GET", "/api/channels/ch_x/nope", 404, "NOT_FOUND"),
        ("DELETE", "/api/channels", 405, "METHOD_NOT_ALLOWED"),
        ("PUT", "/api/channels/ch_x/messages", 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/healthz", 405, "METHOD_NOT_ALLOWED"),
    ],
)
def test_unknown_paths_and_methods_answer_json(server, method, path, status, code):
    response = httpx2.request(method, f"{server.base_url}{path}", headers={"Authorization": "Bearer alice"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = assert_error_body(response.json(), code)
    assert "/api/openapi.json" in error["hint"]
    if status == 405:
        assert response.headers.get("allow"), "a 405 names the methods the path takes"


def test_openapi_document_lists_every_route(server):
    response = httpx2.get(f"{server.base_url}/api/openapi.json")
    assert response.status_code == 200, "the API description needs no token"
    document = response.json()
    assert document["openapi"].startswith("3.1")
    routes = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert routes == {
        ("GET", "/api/channels"),
        ("POST", "/api/channels"),
        ("GET", "/api/channels/{channel_id}"),
        ("GET", "/api/channels/{channel_id}/messages"),
        ("POST", "/api/channels/{channel_id}/messages"),
        ("POST", "/api/channels/{channel_id}/admin"),
        ("POST", "/api/channels/{channel_id}/leave"),
        ("GET", "/api/channels/{channel_id}/bot"),
        ("POST", "/api/channels/{channel_id}/bot"),
        ("GET", "/api/channels/{channel_id}/transcript"),
        ("POST", "/api/join"),
        ("GET", "/api/bots"),
        ("GET", "/api/bots/{name}"),
        ("GET", "/api/lobby"),
        ("POST", "/api/channels/{channel_id}/seat"),
        ("POST", "/api/quick-match"),
    }


def test_the_running_server_conforms_to_its_openapi_document(server, rest, tmp_path):
    """Schemathesis generates requests for every documented route from the served document and
    checks each answer against it: documented status, content type, headers and body schema, no
    5xx, invalid input refused, unsupported methods answered 405 with Allow. Two checks do not
    apply: `ignored_auth` (the dev authenticator accepts any token by design) and
    `positive_data_acceptance` (rules the schema cannot state, like a non-empty name, refuse some
    schema-valid requests with 400). `quick_match` is left out: a valid call waits, by design, up
    to 45 s for players nobody sends; `test_lobby.py` covers its answers and refusals."""
    alice = rest(server, "alice")
    status, created, _ = alice.post(
        "/channels", json={"name": "fuzzed", "slots": ["invite:alice", "invite:bob", "bot:ref"], "bot_preset": "echo"}
    )
    assert status == 201, created
    # A real channel, so that requests reach the rules and not only CHANNEL_NOT_FOUND.
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.channel_id" = "{created["channel"]["channel_id"]}"\n"path.name" = "guess"\n')
    result = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
            f"{server.base_url}/api/openapi.json",
            "--url", server.base_url,
            "--header", "Authorization: Bearer alice",
            "--checks", "all",
            "--exclude-checks", "ignored_auth,positive_data_acceptance",
            "--exclude-operation-id", "quick_match",
            "--max-examples", "25",
            "--workers", "2",
            "--seed", "1",
        ],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Tested: 15" in result.stdout, result.stdout[-3000:]


def test_sync_pages_are_bounded_by_bytes_over_rest_and_mcp(server, rest):
    alice, bob = rest(server, "alice"), rest(server, "bob")
    status, created, _ = alice.post("/channels", json={"name": "big", "slots": ["invite:alice", "invite:bob"]})
    channel_id = created["channel"]["channel_id"]
    assert bob.post("/join", json={"code": invite_for(created, "bob")})[0] == 200
    status, head, _ = bob.get(f"/channels/{channel_id}/messages", params={"cursor": 0, "wait_ms": 0})
    cursor = head["next_cursor"]
    big = {"text": "t" * 16_000, "data": {"blob": "d" * 16_000}}
    for _ in range(30):
        assert alice.post(f"/channels/{channel_id}/messages", json=big)[0] == 201
    page_cap = 256 * 1024

    def check(page: dict) -> None:
        bodies = sum(len(json.dumps(m["text"])) + len(json.dumps(m["data"], separators=(",", ":"))) for m in page["messages"])
        assert page["messages"] and bodies <= page_cap, (len(page["messages"]), bodies)
        assert page["has_more"] and page["next_cursor"] == page["messages"][-1]["seq"]

    status, page, _ = bob.get(f"/channels/{channel_id}/messages", params={"cursor": cursor, "limit": 200, "wait_ms": 0})
    assert status == 200
    check(page)
    seen = [m["seq"] for m in page["messages"]]
    while page["has_more"]:
        status, page, _ = bob.get(
            f"/channels/{channel_id}/messages", params={"cursor": page["next_cursor"], "limit": 200, "wait_ms": 0}
        )
        seen += [m["seq"] for m in page["messages"]]
    assert seen == list(range(cursor + 1, cursor + 31)), "every message once, in order"

    async def over_mcp() -> dict:
        async with connect(server, "bob", "2026-07-28") as player:
            return await player.call("sync_messages", channel_id=channel_id, cursor=cursor, limit=200, wait_ms=0)

    check(anyio.run(over_mcp))
