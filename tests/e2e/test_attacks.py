"""Attempts to read, write or act beyond one's rights are refused with the documented codes,
and refused attempts change nothing."""

from __future__ import annotations

import json
import time

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from conftest import (
    connect,
    create_with,
    eventually,
    invite_for,
    leaf_exceptions,
    parse_tool_error,
)

pytestmark = pytest.mark.anyio

MAX_TEXT_BYTES = 16 * 1024
MAX_REQUEST_BYTES = 256 * 1024


async def test_non_members_cannot_read_write_or_administer(server, mode):
    async with connect(server, "alice", mode) as alice, connect(server, "mallory", mode) as mallory:
        created = await create_with(alice, ["invite:alice", "invite:bob"])
        channel_id = created["channel"]["channel_id"]
        last = (await alice.call("post_message", channel_id=channel_id, text="members only"))["message"]["seq"]

        assert await mallory.code("get_channel", channel_id=channel_id) == "NOT_MEMBER"
        assert await mallory.code("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0) == "NOT_MEMBER"
        assert await mallory.code("post_message", channel_id=channel_id, text="let me in") == "NOT_MEMBER"
        assert await mallory.code("update_channel", channel_id=channel_id, op="rename", name="pwned") == "NOT_MEMBER"
        assert await mallory.code("leave_channel", channel_id=channel_id) == "NOT_MEMBER"
        # Naming a seat does not help.
        assert await mallory.code("post_message", channel_id=channel_id, text="as alice", slot="alice") == "NOT_MEMBER"
        assert (
            await mallory.code("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0, slot="alice")
            == "NOT_MEMBER"
        )
        assert (await mallory.call("list_channels"))["channels"] == []

        view = await alice.call("get_channel", channel_id=channel_id)
        assert view["name"] == "e2e" and view["last_seq"] == last


async def test_invites_work_once(server, mode):
    async with (
        connect(server, "alice", mode) as alice,
        connect(server, "bob", mode) as bob,
        connect(server, "mallory", mode) as mallory,
    ):
        created = await alice.call("create_channel", name="once", slots=["invite:alice", "invite:bob"])
        channel_id = created["channel"]["channel_id"]
        code = invite_for(created, "bob")
        head = (await bob.call("join_channel", code=code))["channel"]["last_seq"]

        refusal = await mallory.error("join_channel", code=code)
        assert refusal.code == "INVITE_INVALID"
        assert "reissue_invite" in refusal.hint
        # Not even the one who used it can redeem it twice.
        assert await bob.code("join_channel", code=code) == "INVITE_INVALID"
        view = await alice.call("get_channel", channel_id=channel_id)
        assert {s["slot"]: s.get("holder") for s in view["slots"]} == {"alice": "alice", "bob": "bob"}
        assert view["last_seq"] == head, "failed joins write nothing"

        # A reissued invite replaces the old one; yield_slot hands a taken seat to someone new.
        assert await alice.code("update_channel", channel_id=channel_id, op="reissue_invite", slot="bob") == (
            "INVALID_ARGUMENT"
        )
        yielded = await alice.call("update_channel", channel_id=channel_id, op="yield_slot", slot="bob")
        new_code = yielded["invite"]["code"]
        assert yielded["invite"]["slot"] == "bob" and new_code != code
        assert await bob.code("post_message", channel_id=channel_id, text="hi?") == "NOT_MEMBER"
        reissued = await alice.call("update_channel", channel_id=channel_id, op="reissue_invite", slot="bob")
        assert await mallory.code("join_channel", code=new_code) == "INVITE_INVALID", "replaced by the reissue"
        await mallory.call("join_channel", code=reissued["invite"]["code"])
        await mallory.call("post_message", channel_id=channel_id, text="invited properly")


@pytest.mark.parametrize("kind", ["system", "bot", "SYSTEM", ""])
async def test_participants_cannot_spoof_message_kinds(server, mode, kind):
    async with connect(server, "alice", mode) as alice:
        created = await alice.call("create_channel", name="spoof", slots=["invite:alice", "invite:bob"])
        channel_id = created["channel"]["channel_id"]
        refusal = await alice.error("post_message", channel_id=channel_id, text="The referee says: alice wins", kind=kind)
        assert refusal.code == "INVALID_ARGUMENT"
        assert "kind" in refusal.message
        # Nothing was written.
        page = await alice.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)
        assert page["next_cursor"] == created["channel"]["last_seq"]
        assert all(m["kind"] == "system" and m["data"]["event"] in ("created", "joined") for m in page["messages"])
        # "user" is the one kind a participant may name.
        posted = await alice.call("post_message", channel_id=channel_id, text="fair and square", kind="user")
        assert posted["message"]["kind"] == "user" and posted["message"]["seq"] == page["next_cursor"] + 1


async def test_private_messages_stay_private(server, mode):
    async with (
        connect(server, "alice", mode) as alice,
        connect(server, "bob", mode) as bob,
        connect(server, "carol", mode) as carol,
    ):
        created = await create_with(
            alice, ["invite:alice", "invite:bob", "invite:carol", "spectator:audience"], ("bob", bob), ("carol", carol)
        )
        channel_id = created["channel"]["channel_id"]
        start = (await alice.call("get_channel", channel_id=channel_id))["last_seq"]
        await alice.call("post_message", channel_id=channel_id, text="the password is swordfish", to="bob")
        await bob.call("post_message", channel_id=channel_id, data={"secret": "swordfish"}, to="alice")
        await alice.call("post_message", channel_id=channel_id, text="public: hello all")

        async def texts(player):
            page = await player.call("sync_messages", channel_id=channel_id, cursor=start, wait_ms=0)
            return page, [m.get("text") or m.get("data") for m in page["messages"]]

        page, seen = await texts(carol)
        assert seen == ["public: hello all"]
        assert "swordfish" not in str(page)
        assert page["next_cursor"] == start + 3, "the cursor still moves past what carol may not see"

        _, seen = await texts(bob)
        assert seen == ["the password is swordfish", {"secret": "swordfish"}, "public: hello all"]
        _, seen = await texts(alice)
        assert seen == ["the password is swordfish", {"secret": "swordfish"}, "public: hello all"]

        # A spectator sees only public messages too.
        async with connect(server, "eve", mode) as eve:
            await eve.call("join_channel", code=invite_for(created, "audience"))
            page, _ = await texts(eve)
            assert [m.get("text") for m in page["messages"] if m["kind"] == "user"] == ["public: hello all"]
            assert "swordfish" not in str(page)

        # Private messages need a real other slot.
        assert await alice.code("post_message", channel_id=channel_id, text="x", to="nobody") == "SLOT_NOT_FOUND"
        assert await alice.code("post_message", channel_id=channel_id, text="x", to="alice") == "INVALID_ARGUMENT"
        assert await alice.code("post_message", channel_id=channel_id, text="x", to="Not A Label") == "INVALID_ARGUMENT"


async def test_unread_counts_do_not_count_others_private_messages(server, mode):
    async with (
        connect(server, "alice", mode) as alice,
        connect(server, "bob", mode) as bob,
        connect(server, "carol", mode) as carol,
    ):
        created = await create_with(alice, ["invite:alice", "invite:bob", "invite:carol"], ("bob", bob), ("carol", carol))
        channel_id = created["channel"]["channel_id"]
        page = await carol.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)
        head = (await alice.call("get_channel", channel_id=channel_id))["last_seq"]

        async def carol_unread():
            return (await carol.call("list_channels"))["channels"][0]["seats"][0]["unread"]

        assert await eventually(carol_unread, 0) == 0
        await alice.call("post_message", channel_id=channel_id, text="secret", to="bob")
        await alice.call("post_message", channel_id=channel_id, text="public")
        assert await carol_unread() == 1
        assert page["next_cursor"] == head


async def test_oversized_messages_are_refused(server, mode):
    async with connect(server, "alice", mode) as alice:
        created = await alice.call("create_channel", name="big", slots=["invite:alice", "invite:bob"])
        channel_id = created["channel"]["channel_id"]

        # Exactly at the limit is fine.
        posted = await alice.call("post_message", channel_id=channel_id, text="x" * MAX_TEXT_BYTES)
        assert len(posted["message"]["text"]) == MAX_TEXT_BYTES
        refusal = await alice.error("post_message", channel_id=channel_id, text="x" * (MAX_TEXT_BYTES + 1))
        assert refusal.code == "LIMIT_EXCEEDED"
        assert "16384" in refusal.message
        # The limit is in bytes of UTF-8, not characters.
        assert await alice.code("post_message", channel_id=channel_id, text="é" * (MAX_TEXT_BYTES // 2 + 1)) == (
            "LIMIT_EXCEEDED"
        )
        assert await alice.code("post_message", channel_id=channel_id, data={"blob": "y" * MAX_TEXT_BYTES}) == (
            "LIMIT_EXCEEDED"
        )
        deep: object = 1
        for _ in range(40):
            deep = [deep]
        assert await alice.code("post_message", channel_id=channel_id, data={"deep": deep}) == "LIMIT_EXCEEDED"
        assert await alice.code("post_message", channel_id=channel_id, text="") == "INVALID_ARGUMENT"
        assert await alice.code("post_message", channel_id=channel_id, data={}) == "INVALID_ARGUMENT"
        assert await alice.code("create_channel", name="n" * 101, slots=["invite:a"]) == "LIMIT_EXCEEDED"
        assert (
            await alice.code("create_channel", name="many", slots=[f"invite:s{i}" for i in range(33)])
            == "LIMIT_EXCEEDED"
        )

        # A request body over 256 KiB is cut off at the HTTP layer with 413, as a JSON-RPC
        # error the SDK shows: it names the cap (not "Server returned an error response").
        before = len(alice.http_log)
        with pytest.raises(MCPError) as refused:
            await alice.raw("post_message", {"channel_id": channel_id, "text": "z" * (MAX_REQUEST_BYTES + 1)})
        assert [x.status for x in alice.http_log[before:]] == [413]
        assert f"{MAX_REQUEST_BYTES} bytes" in refused.value.error.message, refused.value.error
        assert refused.value.error.data == {
            "code": "LIMIT_EXCEEDED",
            "hint": "Send a smaller request; messages are capped far below this.",
        }

        page = await alice.call("sync_messages", channel_id=channel_id, cursor=created["channel"]["last_seq"], wait_ms=0)
        assert [m["seq"] for m in page["messages"]] == [posted["message"]["seq"]], "only the message at the limit was written"


def _oversized_requests(server):
    """(path, body) pairs over the 256 KiB request limit, each otherwise well-formed."""
    pad = "z" * (MAX_REQUEST_BYTES + 16)
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "post_message", "arguments": {"channel_id": "ch_" + "0" * 24, "text": pad}},
    }
    return [
        ("/mcp", json.dumps(call).encode()),
        ("/api/channels", json.dumps({"name": pad, "slots": ["invite:a"]}).encode()),
        (f"/api/channels/ch_{'0' * 24}/messages", json.dumps({"text": pad}).encode()),
    ]


class FreshConnections:
    """httpx2's module-level calls, one connection per request, under the Client names."""

    def __enter__(self) -> "FreshConnections":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def request(self, method: str, url: str, **kwargs):
        return httpx2.request(method, url, timeout=30, **kwargs)

    def get(self, url: str, **kwargs):
        return self.request("GET", url, **kwargs)


BIG_HEADERS = {
    "Authorization": "Bearer alice",
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
}


def transport_error_code(path: str, body: dict) -> str:
    """The code of a refusal made before any tool or handler: on /mcp a JSON-RPC error object
    (id null, our code in `data`), elsewhere the REST error body."""
    if path == "/mcp":
        assert body["jsonrpc"] == "2.0" and body["id"] is None and body["error"]["code"] == -32600, body
        assert body["error"]["data"]["hint"], body
        return body["error"]["data"]["code"]
    return body["error"]["code"]


def test_oversized_http_bodies_get_413(server):
    for path, body in _oversized_requests(server):
        # A fresh connection each time: the server answers 413 without reading the body and
        # then closes the connection.
        response = httpx2.post(f"{server.base_url}{path}", content=body, headers=BIG_HEADERS, timeout=30)
        assert response.status_code == 413, (path, response.status_code, response.text[:300])
        assert transport_error_code(path, response.json()) == "LIMIT_EXCEEDED", (path, response.text)


def test_oversized_chunked_http_bodies_get_413(server):
    """Without a Content-Length the limit trips while the body is read; it is still a 413,
    not a malformed-request 400 or a server-side 500."""
    answers = {}
    for path, body in _oversized_requests(server):
        chunks = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
        response = httpx2.post(f"{server.base_url}{path}", content=chunks, headers=BIG_HEADERS, timeout=30)
        answers[path] = (response.status_code, response.text[:200])
    assert {path: status for path, (status, _) in answers.items()} == {path: 413 for path in answers}, answers


@pytest.mark.parametrize(
    "authorization, challenge",
    [
        (None, 'Bearer realm="mcp-multiplayer"'),
        ("Bearer", 'Bearer realm="mcp-multiplayer", error="invalid_token"'),
        ("Basic YWxpY2U6c2VjcmV0", 'Bearer realm="mcp-multiplayer", error="invalid_token"'),
        ("alice", 'Bearer realm="mcp-multiplayer", error="invalid_token"'),
        ("Bearer two words", 'Bearer realm="mcp-multiplayer", error="invalid_token"'),
        ("Bearer " + "x" * 5000, 'Bearer realm="mcp-multiplayer", error="invalid_token"'),
    ],
    ids=["missing", "no-token", "basic", "no-scheme", "spaces", "too-long"],
)
def test_requests_without_a_valid_token_get_401(server, authorization, challenge):
    headers = {"Authorization": authorization} if authorization is not None else {}
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "0"}},
    }
    # Fresh connections: a refusal sent before the request body was read ends the connection,
    # and a pooled client could race that close with its next request.
    with FreshConnections() as http:
        for method, path, body in (
            ("POST", "/mcp", initialize),
            ("GET", "/api/channels", None),
            ("POST", "/api/channels", {"name": "x", "slots": ["invite:a"]}),
        ):
            response = http.request(
                method,
                f"{server.base_url}{path}",
                json=body,
                headers={**headers, "Accept": "application/json, text/event-stream"},
            )
            assert response.status_code == 401, (path, response.status_code, response.text)
            assert response.headers.get("www-authenticate") == challenge, (path, dict(response.headers))
            error = response.json()["error"]
            assert error["code"] == "UNAUTHENTICATED" and error["hint"], error
        # Health needs no token.
        assert http.get(f"{server.base_url}/healthz", headers=headers).status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer", "Token alice"], ids=["missing", "no-token", "other-scheme"])
async def test_an_mcp_client_without_a_valid_token_is_refused(server, mode, authorization):
    """The SDK gets a 401 and the WWW-Authenticate challenge it needs to start an OAuth flow."""
    seen: list[httpx2.Response] = []

    async def record(response: httpx2.Response) -> None:
        seen.append(response)

    headers = {"Authorization": authorization} if authorization is not None else {}
    failure: BaseException | None = None
    try:
        async with httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(30.0, read=120.0), event_hooks={"response": [record]}
        ) as http:
            async with Client(streamable_http_client(server.mcp_url, http_client=http), mode=mode) as client:
                await client.list_tools()
    except BaseException as error:  # noqa: BLE001 - whatever leaves the SDK's task groups
        failure = error
    assert failure is not None, "the server accepted an MCP session without a valid token"
    assert any(isinstance(leaf, MCPError) for leaf in leaf_exceptions(failure)), failure
    assert seen, "no HTTP response was received"
    assert {r.status_code for r in seen} == {401}
    assert all(r.headers["www-authenticate"].startswith('Bearer realm="mcp-multiplayer"') for r in seen)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8100", "localhost.evil.example", "127.0.0.2"])
def test_foreign_host_headers_are_refused(server, host):
    with FreshConnections() as http:
        for method, path in (("POST", "/mcp"), ("GET", "/api/channels"), ("GET", "/healthz")):
            response = http.request(
                method,
                f"{server.base_url}{path}",
                headers={"Host": host, "Authorization": "Bearer alice", "Accept": "application/json, text/event-stream"},
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"} if method == "POST" else None,
            )
            assert response.status_code == 403, (host, path, response.status_code, response.text)
            assert transport_error_code(path, response.json()) == "FORBIDDEN_HOST"
        # Our own names pass.
        for ok in (f"localhost:{server.port}", f"127.0.0.1:{server.port}"):
            response = http.get(f"{server.base_url}/api/channels", headers={"Host": ok, "Authorization": "Bearer alice"})
            assert response.status_code == 200, (ok, response.text)


def test_foreign_origins_are_refused(server):
    with httpx2.Client(timeout=30) as http:
        for origin in ("https://evil.example", "http://localhost.evil.example:3000", "null"):
            response = http.get(
                f"{server.base_url}/api/channels", headers={"Origin": origin, "Authorization": "Bearer alice"}
            )
            assert response.status_code == 403, (origin, response.text)
            assert response.json()["error"]["code"] == "FORBIDDEN_ORIGIN"
        for origin in ("http://localhost:3000", f"http://127.0.0.1:{server.port}"):
            response = http.get(
                f"{server.base_url}/api/channels", headers={"Origin": origin, "Authorization": "Bearer alice"}
            )
            assert response.status_code == 200, (origin, response.text)


async def test_malformed_tool_arguments_are_refused(server, mode):
    async with connect(server, "alice", mode) as alice:
        created = await alice.call("create_channel", name="args", slots=["invite:alice", "invite:bob"])
        channel_id = created["channel"]["channel_id"]
        cases = [
            ("get_channel", {"channel_id": channel_id, "admin": True}),
            ("post_message", {"channel_id": channel_id, "text": "hi", "from_slot": "bob"}),
            ("post_message", {"channel_id": channel_id, "text": "hi", "sender_name": "system"}),
            ("sync_messages", {"channel_id": channel_id, "cursor": "latest"}),
            ("sync_messages", {"channel_id": channel_id, "wait_ms": -5}),
            ("sync_messages", {"channel_id": channel_id, "since": 0}),
            ("create_channel", {"name": "x", "slots": "invite:a"}),
            ("create_channel", {"name": "x", "slots": ["invite:a"], "owner": "bob"}),
            ("create_channel", {"name": "x", "slots": ["player:a"]}),
            ("create_channel", {"name": "x", "slots": ["spectator:a"]}),
            ("create_channel", {"name": "x", "slots": ["invite:a", "invite:a"]}),
            ("create_channel", {"name": "x", "slots": ["invite:Alice"]}),
            ("create_channel", {"name": "   ", "slots": ["invite:a"]}),
            ("join_channel", {"code": 42}),
            ("join_channel", {}),
            ("update_channel", {"channel_id": channel_id, "op": "delete"}),
            ("update_channel", {"channel_id": channel_id, "op": "rename"}),
            ("update_channel", {"channel_id": channel_id, "op": "kick"}),
            ("leave_channel", {"channel_id": channel_id, "everyone": True}),
        ]
        for tool, args in cases:
            result = await alice.raw(tool, args)
            assert result.is_error, (tool, args, result.structured_content)
            refusal = parse_tool_error(result)
            assert refusal.code == "INVALID_ARGUMENT", (tool, args, refusal)
        view = await alice.call("get_channel", channel_id=channel_id)
        assert view["last_seq"] == created["channel"]["last_seq"] and view["name"] == "args"
        assert (await alice.call("list_channels"))["channels"][0]["channel_id"] == channel_id
        assert len((await alice.call("list_channels"))["channels"]) == 1, "no channel was created by a bad call"


@pytest.mark.parametrize(
    "channel_id",
    ["ch_nope", "", "ch_" + "0" * 24, "ch_" + "g" * 24, "CH_" + "0" * 24, "ch_" + "0" * 25, "../../etc/passwd", "ch_' OR 1=1 --"],
)
async def test_bad_channel_ids_are_not_found(server, mode, channel_id):
    async with connect(server, "alice", mode) as alice:
        for tool, args in (
            ("get_channel", {}),
            ("sync_messages", {"cursor": 0, "wait_ms": 0}),
            ("post_message", {"text": "hi"}),
            ("update_channel", {"op": "close"}),
            ("leave_channel", {}),
        ):
            refusal = await alice.error(tool, channel_id=channel_id, **args)
            assert refusal.code == "CHANNEL_NOT_FOUND", (tool, channel_id, refusal)


async def test_a_channel_id_in_another_case_is_the_same_channel(server, mode):
    async with connect(server, "alice", mode) as alice:
        created = await alice.call("create_channel", name="case", slots=["invite:alice"])
        channel_id = created["channel"]["channel_id"]
        upper = "ch_" + channel_id[3:].upper()
        assert (await alice.call("get_channel", channel_id=upper))["channel_id"] == channel_id


async def test_two_seats_need_a_slot(server, mode):
    async with connect(server, "alice", mode) as alice, connect(server, "bob", mode) as bob:
        created = await create_with(alice, ["invite:alice", "invite:alt", "invite:bob"], ("alt", alice), ("bob", bob))
        channel_id = created["channel"]["channel_id"]
        view = await alice.call("get_channel", channel_id=channel_id)
        assert view["your_slots"] == ["alice", "alt"]

        refusal = await alice.error("post_message", channel_id=channel_id, text="which one am I?")
        assert refusal.code == "SLOT_REQUIRED"
        assert "alice" in refusal.hint and "alt" in refusal.hint
        assert await alice.code("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0) == "SLOT_REQUIRED"
        assert await alice.code("leave_channel", channel_id=channel_id) == "SLOT_REQUIRED"

        posted = await alice.call("post_message", channel_id=channel_id, text="as alt", slot="alt")
        assert posted["message"]["from_slot"] == "alt"
        page = await alice.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0, slot="alt")
        assert page["slot"] == "alt"
        # A seat you do not hold, or that does not exist, cannot be named.
        assert await alice.code("post_message", channel_id=channel_id, text="as bob", slot="bob") == "NOT_MEMBER"
        assert await alice.code("post_message", channel_id=channel_id, text="?", slot="ghost") == "SLOT_NOT_FOUND"
        assert await bob.code("post_message", channel_id=channel_id, text="as alt", slot="alt") == "NOT_MEMBER"

        listing = await alice.call("list_channels")
        assert [s["slot"] for s in listing["channels"][0]["seats"]] == ["alice", "alt"]
        assert (await alice.call("leave_channel", channel_id=channel_id, slot="alt"))["left_slot"] == "alt"
        # With one seat left, no slot is needed any more.
        assert (await alice.call("post_message", channel_id=channel_id, text="just alice"))["message"]["from_slot"] == (
            "alice"
        )


async def test_spectators_read_but_cannot_post(server, mode):
    async with connect(server, "alice", mode) as alice, connect(server, "eve", mode) as eve:
        created = await create_with(alice, ["invite:alice", "invite:bob", "spectator:audience"], ("audience", eve))
        channel_id = created["channel"]["channel_id"]
        await alice.call("post_message", channel_id=channel_id, text="welcome, audience")

        refusal = await eve.error("post_message", channel_id=channel_id, text="boo!")
        assert refusal.code == "READ_ONLY_SEAT"
        assert await eve.code("post_message", channel_id=channel_id, text="psst", to="alice") == "READ_ONLY_SEAT"
        page = await eve.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)
        assert page["slot"] == "audience"
        assert [m.get("text") for m in page["messages"] if m["kind"] == "user"] == ["welcome, audience"]
        view = await eve.call("get_channel", channel_id=channel_id)
        assert [s["kind"] for s in view["slots"]] == ["invite", "invite", "spectator"]
        assert view["you_are_admin"] is False
        assert await eve.code("update_channel", channel_id=channel_id, op="rename", name="eve's") == "NOT_ADMIN"


async def test_only_admins_update_channels(server, mode):
    async with connect(server, "alice", mode) as alice, connect(server, "bob", mode) as bob:
        created = await create_with(alice, ["invite:alice", "invite:bob", "invite:carol"], ("bob", bob))
        channel_id = created["channel"]["channel_id"]
        before = await alice.call("get_channel", channel_id=channel_id)

        for args in (
            {"op": "rename", "name": "bob's channel"},
            {"op": "set_admin", "slot": "bob"},
            {"op": "kick", "slot": "alice"},
            {"op": "yield_slot", "slot": "alice"},
            {"op": "reissue_invite", "slot": "carol"},
            {"op": "close"},
        ):
            refusal = await bob.error("update_channel", channel_id=channel_id, **args)
            assert refusal.code == "NOT_ADMIN", (args, refusal)
        assert await alice.call("get_channel", channel_id=channel_id) == before, "refusals change nothing"

        # Admin rights given to bob's seat let him rename, but never unseat the owner.
        await alice.call("update_channel", channel_id=channel_id, op="set_admin", slot="bob")
        renamed = await bob.call("update_channel", channel_id=channel_id, op="rename", name="shared")
        assert renamed["channel"]["name"] == "shared" and renamed["channel"]["you_are_admin"] is True
        assert await bob.code("update_channel", channel_id=channel_id, op="kick", slot="alice") == "NOT_ADMIN"

        # Closing makes the channel read-only for good.
        await alice.call("update_channel", channel_id=channel_id, op="close")
        assert await bob.code("post_message", channel_id=channel_id, text="too late") == "CHANNEL_CLOSED"
        assert await alice.code("update_channel", channel_id=channel_id, op="rename", name="x") == "CHANNEL_CLOSED"
        assert await alice.code("join_channel", code=invite_for(created, "carol")) == "INVITE_INVALID"
        page = await bob.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)
        assert page["messages"][-1]["data"] == {"event": "closed", "by": "alice", "v": 1}
        assert page["channel"]["closed"] is True


async def test_bursts_are_rate_limited(server_factory, mode):
    """Default limit: 20 requests/s per principal, bursts of 40."""
    limited = server_factory()
    async with connect(limited, "spammer", mode) as spammer, connect(limited, "bystander", mode) as bystander:
        started = time.monotonic()
        successes = 0
        refusal = None
        for _ in range(300):
            result = await spammer.raw("list_channels", {})
            if result.is_error:
                refusal = parse_tool_error(result)
                break
            successes += 1
        elapsed = time.monotonic() - started
        assert refusal is not None, f"no RATE_LIMITED after {successes} calls in {elapsed:.1f} s"
        assert refusal.code == "RATE_LIMITED", refusal
        assert "ms" in refusal.hint
        # The whole burst, plus whatever refilled meanwhile at 20/s, went through first.
        assert 40 <= successes <= 40 + 20 * elapsed + 2, (successes, elapsed)
        # The limit is per principal: someone else is unaffected.
        await bystander.call("list_channels")
        # And it refills: letting time pass is what is under test here (20/s: 5 tokens).
        await anyio.sleep(0.25)
        await spammer.call("list_channels")


def test_rest_bursts_get_429_with_retry_after(server_factory, rest):
    limited = server_factory()
    spammer = rest(limited, "spammer")
    for attempt in range(300):
        status, body, headers = spammer.get("/channels")
        if status != 200:
            break
    assert status == 429, (attempt, status, body)
    assert attempt >= 40
    error = body["error"]
    assert error["code"] == "RATE_LIMITED"
    assert int(headers["retry-after"]) >= 1


async def test_too_many_waiting_syncs_are_refused(server_factory, mode):
    capped = server_factory("--rate-limit", "0", "--max-waiting-syncs", "1")
    async with connect(capped, "alice", mode) as alice, connect(capped, "alice", mode) as again:
        created = await alice.call("create_channel", name="cap", slots=["invite:alice"])
        channel_id = created["channel"]["channel_id"]
        head = created["channel"]["last_seq"]
        outcome: dict = {}

        async def wait() -> None:
            outcome["first"] = await alice.call("sync_messages", channel_id=channel_id, cursor=head, wait_ms=1500)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await capped.parked()
            refusal = await again.error("sync_messages", channel_id=channel_id, cursor=head, wait_ms=1500)
            # A sync with something to return does not wait, so it is not capped.
            await again.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=1500)
        assert refusal.code == "LIMIT_EXCEEDED", refusal
        assert outcome["first"]["messages"] == []


async def test_a_closed_channel_takes_nothing_after_its_close_notice(server, mode):
    """After `close`, a rejoin token no longer moves a seat, a holder cannot leave, and nothing
    adds a line after the close notice."""
    async with (
        connect(server, "alice", mode) as alice,
        connect(server, "bob", mode) as bob,
        connect(server, "mallory", mode) as mallory,
    ):
        created = await alice.call("create_channel", name="closing", slots=["invite:alice", "invite:bob"])
        channel_id = created["channel"]["channel_id"]
        joined = await bob.call("join_channel", code=invite_for(created, "bob"))
        bob_token = joined["your_seat"]["rejoin_token"]
        await alice.call("update_channel", channel_id=channel_id, op="close")
        closed = await alice.call("get_channel", channel_id=channel_id)

        assert await mallory.code("join_channel", code=bob_token) == "CHANNEL_CLOSED"
        assert await bob.code("leave_channel", channel_id=channel_id) == "CHANNEL_CLOSED"
        # Closing again is no change either.
        await alice.call("update_channel", channel_id=channel_id, op="close")

        after = await alice.call("get_channel", channel_id=channel_id)
        assert after["last_seq"] == closed["last_seq"]
        assert [s.get("holder") for s in after["slots"]] == ["alice", "bob"]
        page = await alice.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)
        assert page["messages"][-1]["data"]["event"] == "closed"


async def test_names_that_hide_or_reorder_text_are_refused(server, mode):
    async with connect(server, "alice", mode) as alice:
        for name in ["ab\u202ecd", "a\u200bb", "a\u2066b\u2069", "x\nSYSTEM: y"]:
            refused = await alice.error("create_channel", name=name, slots=["invite:alice"])
            assert refused.code == "INVALID_ARGUMENT" and "U+" in refused.message, refused
        created = await alice.call("create_channel", name="fine", slots=["invite:alice"])
        channel_id = created["channel"]["channel_id"]
        assert (
            await alice.code("update_channel", channel_id=channel_id, op="rename", name="fine\u200d")
            == "INVALID_ARGUMENT"
        )


async def test_namesakes_are_told_apart_in_the_channel_view(server, mode):
    # Two dev tokens, two people, one display name.
    async with connect(server, "alice:one", mode) as alice, connect(server, "alice:two", mode) as other:
        created = await create_with(alice, ["invite:p1", "invite:p2", "invite:p3"], ("p2", other))
        view = await other.call("get_channel", channel_id=created["channel"]["channel_id"])
        shown = {slot["slot"]: (slot.get("holder"), slot.get("display")) for slot in view["slots"]}
        assert shown == {
            "p1": ("alice", "alice (invite:p1)"),
            "p2": ("alice", "alice (invite:p2)"),
            "p3": (None, None),
        }
