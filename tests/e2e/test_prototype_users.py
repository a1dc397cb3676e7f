"""What users of the Python prototype type, and what they get: its preset names work, and its
README's Python bot, pasted unchanged, runs."""

from __future__ import annotations

import pytest

from conftest import connect
from test_bots import Feed, from_bot, system_event

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
        for preset, name in (
            ("GuessBot", "guess"),
            ("GUESS", "guess"),
            ("EchoBot", "echo"),
            ("ChessBot", "chess"),
            ("blackjack", "blackjack"),
            ("TicTacToeBot", "tictactoe"),
            ("RockPaperScissorsBot", "rps"),
            ("SealedExchangeBot", "sealed"),
            ("ContractJudgeBot", "judge"),
            ("WitnessBot", "witness"),
        ):
            created = await alice.call("create_channel", name=preset, slots=["invite:alice", "invite:bob"], bot_preset=preset)
            [bot_slot] = [slot for slot in created["channel"]["slots"] if slot["kind"] == "bot"]
            assert bot_slot["bot"]["name"] == name, bot_slot
        refusal = await alice.error("create_channel", name="x", slots=["invite:alice"], bot_preset="TriviaBot")
        assert refusal.code == "INVALID_ARGUMENT" and "guess" in refusal.message, refusal


async def test_the_prototypes_echo_bot_runs_unchanged(server, mode):
    async with connect(server, "alice", mode) as alice:
        created = await alice.call(
            "create_channel", name="Echo Game", slots=["bot:echo", "invite:player"], bot_code=PROTOTYPE_ECHO_BOT
        )
        channel_id = created["channel"]["channel_id"]
        [bot_slot] = [slot for slot in created["channel"]["slots"] if slot["kind"] == "bot"]
        assert bot_slot["bot"]["language"] == "python", bot_slot
        code = await alice.call("get_bot_code", channel_id=channel_id)
        assert code["language"] == "python" and code["source"] == PROTOTYPE_ECHO_BOT
        feed = Feed(alice, channel_id)
        attached = await feed.wait_for(system_event("bot_attached", slot="echo"))
        assert attached["data"]["language"] == "python"
        # `ctx.post('system', …)` posts as the bot: a bot never writes system messages.
        ready = await feed.wait_for(from_bot("echo"))
        assert ready["kind"] == "bot" and ready["text"] == "Echo ready", ready
        said = await alice.call("post_message", channel_id=channel_id, text="hello")
        echoed = await feed.wait_for(from_bot("echo"), after=said["message"]["seq"])
        assert echoed["data"] == {"echo": {"text": "hello", "data": None}}, echoed


async def test_a_wrong_bot_language_is_named_in_the_refusal(server, mode):
    async with connect(server, "alice", mode) as alice:
        refusal = await alice.error(
            "create_channel",
            name="echo",
            slots=["bot:echo", "invite:player"],
            bot_code=PROTOTYPE_ECHO_BOT,
            bot_language="javascript",
        )
        assert refusal.code == "INVALID_ARGUMENT", refusal
        assert "reads like python" in refusal.message and "bot_language" in refusal.message, refusal
        assert "mcp-multiplayer://docs/bot-api" in refusal.message, refusal
        unknown = await alice.error(
            "create_channel", name="x", slots=["bot:b", "invite:p"], bot_code="class Bot {}", bot_language="ruby"
        )
        assert unknown.code == "INVALID_ARGUMENT" and "ruby" in unknown.message, unknown
        # Broken JavaScript is still reported as it is.
        broken = await alice.error("create_channel", name="js", slots=["bot:b", "invite:p"], bot_code="class Bot { on_message( }")
        assert broken.code == "INVALID_ARGUMENT" and "python" not in broken.message.lower(), broken
