"""What a client discovers before calling anything: the tools with their schemas, annotations
and descriptions, and the quick-start resource."""

from __future__ import annotations

import json

import pytest
from mcp import MCPError

from conftest import connect

pytestmark = pytest.mark.anyio

TOOLS = {
    "create_channel",
    "join_channel",
    "get_channel",
    "post_message",
    "sync_messages",
    "list_channels",
    "update_channel",
    "leave_channel",
    "attach_bot",
    "list_bots",
    "get_bot_code",
    "export_transcript",
    "list_open_games",
    "take_seat",
    "quick_match",
}
READ_ONLY = {
    "get_channel",
    "sync_messages",
    "list_channels",
    "list_bots",
    "get_bot_code",
    "export_transcript",
    "list_open_games",
}
DESTRUCTIVE = {"update_channel", "leave_channel"}
QUICKSTART = "mcp-multiplayer://docs/quickstart"


async def test_tools_are_fully_described(server, mode):
    async with connect(server, "alice", mode) as alice:
        listed = await alice.client.list_tools()
        version = alice.client.protocol_version
        server_info = alice.client.server_info
        instructions = alice.client.instructions

    if mode == "legacy":
        assert version == "2025-11-25"
        assert server_info is not None and server_info.name == "mcp-multiplayer"
        assert instructions and QUICKSTART in instructions
    else:
        assert version == mode

    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == TOOLS
    for name, tool in tools.items():
        assert tool.description and len(tool.description) > 40, name
        assert tool.input_schema.get("type") == "object", (name, tool.input_schema)
        schema = tool.output_schema
        assert schema is not None, f"{name} has no outputSchema"
        assert schema.get("type") == "object" and schema.get("properties"), (name, schema)
        notes = tool.annotations
        assert notes is not None, f"{name} has no annotations"
        assert notes.read_only_hint is (name in READ_ONLY), (name, notes)
        assert notes.destructive_hint is (name in DESTRUCTIVE), (name, notes)
        assert notes.open_world_hint is False, (name, notes)
        if name in READ_ONLY:
            assert notes.idempotent_hint is True, (name, notes)

    # Descriptions tell the model what to do next.
    assert "sync_messages" in tools["create_channel"].description
    assert "wait_ms" in tools["sync_messages"].description
    assert "next_cursor" in tools["sync_messages"].description

    # Input schemas name the arguments and refuse unknown ones.
    create = tools["create_channel"].input_schema
    assert set(create["required"]) == {"name", "slots"}
    assert create.get("additionalProperties") is False
    assert set(tools["post_message"].input_schema["properties"]) >= {"channel_id", "text", "data", "to", "slot"}
    assert "kind" not in tools["post_message"].input_schema["properties"], "a choice of one is no choice"
    # update_channel's op is an enum whose every value says what it needs.
    op = tools["update_channel"].input_schema["properties"]["op"]
    if "$ref" in op:
        op = tools["update_channel"].input_schema["$defs"][op["$ref"].rsplit("/", 1)[-1]]
    choices = {branch["const"]: branch["description"] for branch in op["oneOf"]}
    assert set(choices) == {"rename", "set_admin", "yield_slot", "kick", "reissue_invite", "close"}
    assert all(choices.values()), choices
    assert tools["sync_messages"].input_schema["properties"]["wait_ms"]["maximum"] == 45000
    # Portable schemas: no type arrays with null anywhere (the Inspector's --strict check).
    for tool in tools.values():
        for schema in (tool.input_schema, tool.output_schema or {}):
            assert '"null"' not in json.dumps(schema), (tool.name, schema)
    assert tools["sync_messages"].input_schema["required"] == ["channel_id"]

    # Output schemas describe what the tools return.
    sync = tools["sync_messages"].output_schema
    assert {"messages", "next_cursor", "has_more", "slot", "waited_ms"} <= set(sync["properties"])
    assert {"channel", "invites", "next_step"} <= set(tools["create_channel"].output_schema["properties"])
    assert {"channels"} <= set(tools["list_channels"].output_schema["properties"])


async def test_structured_results_match_the_output_schemas(server, mode):
    """The SDK validates structuredContent against outputSchema; every tool passes that."""
    async with connect(server, "alice", mode) as alice, connect(server, "bob", mode) as bob:
        created = await alice.call("create_channel", name="schemas", slots=["invite:alice", "invite:bob", "spectator:s"])
        channel_id = created["channel"]["channel_id"]
        await bob.call("join_channel", code=created["invites"][0]["code"])
        await alice.call("post_message", channel_id=channel_id, text="t", data={"k": [1, {"x": None}]}, to="bob")
        await bob.call("sync_messages", channel_id=channel_id, cursor=0, wait_ms=0)
        await bob.call("get_channel", channel_id=channel_id)
        await alice.call("list_channels")
        await alice.call("update_channel", channel_id=channel_id, op="yield_slot", slot="s")
        await alice.call("update_channel", channel_id=channel_id, op="rename", name="renamed")
        await bob.call("leave_channel", channel_id=channel_id)
        # list_tools ran before the first call, and each result was validated against it.
        validated = await alice.client.list_tools()
        assert all(tool.output_schema for tool in validated.tools)


async def test_the_quickstart_resource(server, mode):
    async with connect(server, "alice", mode) as alice:
        resources = (await alice.client.list_resources()).resources
        read = await alice.client.read_resource(QUICKSTART)
        missing = None
        try:
            await alice.client.read_resource("mcp-multiplayer://docs/nope")
        except MCPError as error:
            missing = error

    by_uri = {str(resource.uri): resource for resource in resources}
    assert QUICKSTART in by_uri, list(by_uri)
    assert by_uri[QUICKSTART].mime_type == "text/markdown"
    [content] = read.contents
    assert str(content.uri) == QUICKSTART
    assert content.mime_type == "text/markdown"
    assert content.text.startswith("# ")
    for word in ("create_channel", "join_channel", "sync_messages", "rejoin_token"):
        assert word in content.text, word
    assert missing is not None, "reading an unknown resource succeeded"
    # The guide for a model about to write a bot.
    assert "mcp-multiplayer://docs/bot-api" in by_uri, list(by_uri)
