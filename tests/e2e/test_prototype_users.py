"""What users of the Python prototype type, and what they get: its preset names work, and its
Python bots get an error that says what to write instead."""

from __future__ import annotations

import pytest

from conftest import connect

pytestmark = pytest.mark.anyio

# The prototype README's inline bot, as its users have it.
PROTOTYPE_ECHO_BOT = """
class EchoBot:
    def __init__(self, ctx, params):
        self.ctx = ctx

    def on_init(self):
        self.ctx.post('system', {'text': 'Echo ready'})

    def on_message(self, msg):
        if msg.get('kind') == 'user':
            self.ctx.post('bot', {'echo': msg.get('body')})
"""


async def test_the_prototypes_preset_names_work(server, mode):
    async with connect(server, "alice", mode) as alice:
        for preset, name in (("GuessBot", "guess"), ("GUESS", "guess"), ("EchoBot", "echo")):
            created = await alice.call("create_channel", name=preset, slots=["invite:alice", "invite:bob"], bot_preset=preset)
            [bot_slot] = [slot for slot in created["channel"]["slots"] if slot["kind"] == "bot"]
            assert bot_slot["bot"]["name"] == name, bot_slot
        refusal = await alice.error("create_channel", name="x", slots=["invite:alice"], bot_preset="ChessBot")
        assert refusal.code == "INVALID_ARGUMENT" and "guess" in refusal.message, refusal


async def test_a_python_bot_is_told_that_bots_are_javascript(server, mode):
    async with connect(server, "alice", mode) as alice:
        refusal = await alice.error("create_channel", name="echo", slots=["bot:echo", "invite:player"], bot_code=PROTOTYPE_ECHO_BOT)
        assert refusal.code == "INVALID_ARGUMENT", refusal
        assert "looks like Python" in refusal.message and "JavaScript" in refusal.message, refusal
        assert "mcp-multiplayer://docs/bot-api" in refusal.message, refusal
        # Broken JavaScript is still reported as it is.
        broken = await alice.error("create_channel", name="js", slots=["bot:b", "invite:p"], bot_code="class Bot { on_message( }")
        assert broken.code == "INVALID_ARGUMENT" and "Python" not in broken.message, broken
