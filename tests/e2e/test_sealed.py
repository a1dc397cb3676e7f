"""The sealed exchange (crates/bots/builtin/sealed.js) end to end, with two Python SDK clients,
Alice (who creates the channel, so sits first) and Bob, in channels created with
reveal_private false (the bot refuses any other unless told):

- an exchange played to the reveal, with a public answer refused, a double submission refused,
  every commitment recomputed, and a withdrawal after the reveal that the bot never sees;
- a withdrawal before the last answer: nothing is revealed, in posts or in either player's
  export, and what the revealed seed still gives away (a short answer without a nonce);
- a second-price auction.

Each transcript is exported by both players and by the operator (`mcp-multiplayer export`) and
checked by the Python oracle and by `mcp-multiplayer verify`. With reveal_private false a
player's export withholds the other player's private answers for good, and the replay of the
bot stops at the first message withheld from that player (the operator's export, which
withholds nothing, replays every event).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import struct
from typing import Any

import pytest

import transcript_oracle as oracle
from conftest import Player, ServerProcess, connect, invite_for
from test_bots import system_event
from test_games import (
    ALICE_MODE,
    BOB_MODE,
    BOT,
    BOT_TROUBLE,
    Table,
    by_seq,
    notices,
    operator_export,
    published_keys,
    replay_line,
)
from test_transcript import cli_verify
from transcript_oracle import Divergence

pytestmark = pytest.mark.anyio

PRESET = "sealed"
SCHEME = "mcp-multiplayer/commit/v1"
RANDOM_LABEL = b"mcp-multiplayer/bot-random/v1"
COMPLETE = re.compile(r"bot \S+ in \S+: (\d+) events, every event replayed identically")


def question_hash(question: str) -> str:
    return "sha256:" + hashlib.sha256(question.encode()).hexdigest()


async def open_sealed_table(alice: Player, bob: Player, params: dict[str, Any], slots: list[str]) -> Table:
    """Alice creates a channel with reveal_private false and the sealed exchange (asked for by
    its prototype name) and takes the first seat; Bob joins with his invite. (test_games'
    open_table creates channels with the default, reveal_private true, which this bot refuses.)"""
    catalog = {bot["name"]: bot for bot in (await alice.call("list_bots"))["bots"]}
    assert PRESET in catalog, f"{PRESET} is not in the catalog: {sorted(catalog)}"
    assert "reveal_private false" in catalog[PRESET]["summary"], catalog[PRESET]
    created = await alice.call("create_channel", name="sealed night", slots=slots, bot_preset="SealedExchangeBot",
                               bot_params=params, reveal_private=False)
    channel = created["channel"]
    assert channel["reveal_private"] is False, channel
    [card] = [slot for slot in channel["slots"] if slot["kind"] == "bot"]
    assert card["slot"] == BOT and card["bot"]["code_hash"] == catalog[PRESET]["code_hash"], card
    assert card["bot"]["params_hash"] == oracle.sha256_tagged(oracle.jcs(params)), (card, params)
    joined = await bob.call("join_channel", code=invite_for(created, "bob"))
    assert joined["your_seat"]["slot"] == "bob", joined
    return Table({"alice": alice, "bob": bob}, channel["channel_id"], PRESET, params, catalog[PRESET]["code_hash"])


async def seated_both(table: Table) -> dict[str, Any]:
    """The rules post, and the bot's word that Alice and Bob are both participants."""
    rules = await table.bot("alice", "the rules post", type="rules")
    assert rules["data"]["reveal_private"] is False and rules["data"]["scheme"] == SCHEME, rules
    assert "WARNING" not in rules["text"], rules
    if rules["data"]["seated"] != ["alice", "bob"]:
        joined = await table.bot("alice", "Bob's place as a participant", type="participant", slot="bob")
        assert joined["data"]["seated"] == ["alice", "bob"], joined
    return rules


async def answer(table: Table, who: str, number: int, **body: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """`who` answers privately; returns their message, the private receipt and the public
    commitment, as the other player saw it."""
    mine = await table.post(who, to=BOT, **body)
    receipt = await table.bot(who, f"the receipt of {who}'s answer", after=mine["seq"], to=who, type="your_answer")
    other = "bob" if who == "alice" else "alice"
    sealed = await table.bot(other, f"the commitment to {who}'s answer", after=mine["seq"], type="sealed", slot=who)
    assert receipt["data"]["order"] == sealed["data"]["order"] == number, (receipt, sealed)
    assert receipt["data"]["commitment"] == sealed["data"]["commitment"], (receipt, sealed)
    assert oracle.commitment(table.channel_id, BOT, receipt["data"]["answer"], bytes.fromhex(receipt["data"]["salt"])) == (
        receipt["data"]["commitment"]), receipt
    assert set(sealed["data"]) == {"type", "slot", "commitment", "order", "seated", "waiting", "open_seats", "deadline"}, sealed
    shown = json.dumps(sealed["data"]) + sealed["text"]
    assert receipt["data"]["salt"] not in shown, sealed
    if not receipt["data"]["answer"].isdigit():  # a bid's digits could turn up in a hash
        assert receipt["data"]["answer"] not in shown, sealed
    return mine, receipt, sealed


def check_sealed_exports(server: ServerProcess, table: Table, exports: dict[str, dict[str, Any]],
                         answers: dict[str, list[int]], slots: list[str]) -> dict[str, Any]:
    """Each player's export and the operator's: the oracle and `mcp-multiplayer verify` accept
    them against the published keys; the bot's run ended, its seed is revealed, no event failed;
    everyone exports the same chain. `answers` lists each player's private messages to the bot:
    a player's export withholds the other's (reveal_private false) even now that the run is over,
    so its replay stops at a withheld message and never covers the whole run; the operator's
    replays every event. Returns the operator's export."""
    keys = published_keys(server)
    full = operator_export(server, table.channel_id)
    everything = by_seq(full)
    for who, export in [*exports.items(), ("the operator", full)]:
        operator = who == "the operator"
        assert export["channel"]["id"] == table.channel_id and export["channel"]["slots"] == slots, export["channel"]
        assert export["channel"]["reveal_private"] is False, export["channel"]
        assert export["viewer"] == ({"operator": True} if operator else {"slots": [who]}), export["viewer"]
        try:
            oracle.verify(export, trusted_keys=keys["keys"])
        except Divergence as divergence:
            raise AssertionError(f"the oracle refuses {who}'s export: {divergence}") from None
        [bot] = export["bots"]
        assert (bot["slot"], bot["name"], bot["params"]) == (BOT, PRESET, table.params), bot
        assert bot["ended"] is True and re.fullmatch(r"[0-9a-f]{64}", bot["seed"] or ""), bot
        assert not [m for event in BOT_TROUBLE for m in notices(export, event)], "bot events failed or were cut"
        assert [m["hash"] for m in export["messages"]] == [m["hash"] for m in full["messages"]], f"{who}: another chain"

        withheld = [m["seq"] for m in export["messages"] if m.get("withheld")]
        for seq in withheld:
            whole = everything[seq]
            assert whole.get("to") and who not in (whole.get("to"), whole.get("sender")), f"{who} may not read {whole}"
            assert oracle.digest(table.channel_id, whole) == by_seq(export)[seq]["digest"], (who, seq)
        if not operator:
            other = "bob" if who == "alice" else "alice"
            assert set(answers[other]) <= set(withheld), f"{who}'s export shows {other}'s private answers"
            assert not set(answers[who]) & set(withheld), f"{who}'s export hides {who}'s own answers"

        line = replay_line(table, cli_verify(export, keys=keys))
        complete = COMPLETE.fullmatch(line)
        if operator:
            assert complete and int(complete.group(1)) > 0, f"verify did not replay {who}'s export to the end: {line}"
        else:
            # The other player's answers are the bot's inputs, withheld for good: no player can
            # replay the whole run. Today the replay stops at the first withheld message, even a
            # private post of the bot to the other player that the replay had just matched
            # (test_games' REPLAY_STOPS_AT_WITHHELD_BOT_POST); once that is fixed it will stop at
            # the first withheld input.
            after = [seq for seq in withheld if seq > bot["attached_seq"]]
            inputs = [seq for seq in after if everything[seq]["kind"] == "user"]
            assert inputs and not complete, f"{who}'s export: {line}"
            stopped = re.search(r"replayed up to seq (\d+), a message withheld from this export$", line)
            assert stopped and int(stopped.group(1)) in (after[0], inputs[0]), f"{who}: {line}"
            stop = everything[int(stopped.group(1))]
            line += f" (a {stop['kind']} message from {stop.get('sender')} to {stop.get('to')})"
        print(f"verify, {who}'s export: {line}")
    return full


def salt_from_seed(seed_hex: str, seq: int) -> bytes:
    """The first 16 bytes of the random stream of the event at `seq` (docs/bot-api.md,
    Determinism): what the bot drew as a salt, for anyone holding the revealed seed."""
    block = hmac.new(bytes.fromhex(seed_hex), RANDOM_LABEL + struct.pack(">q", seq) + struct.pack(">Q", 0),
                     hashlib.sha256).digest()
    return block[:16]


# ---------------------------------------------------------------------------------------------


async def test_sealed_exchange_to_the_reveal(server):
    question = "Which city should host the offsite?"
    params = {"question": question, "participants": 2}
    slots = ["invite:alice", "invite:bob", f"bot:{BOT}"]
    async with connect(server, "alice", ALICE_MODE) as alice, connect(server, "bob", BOB_MODE) as bob:
        table = await open_sealed_table(alice, bob, params, slots)
        rules = await seated_both(table)
        data = rules["data"]
        assert (data["question"], data["question_hash"], data["mode"], data["participants"]) == (
            question, question_hash(question), "exchange", 2), rules
        assert question in rules["text"] and "PRIVATELY" in rules["text"], rules

        # A public answer does not count: everyone saw it.
        public = await table.post("alice", data={"answer": "Oslo"})
        await table.bot("alice", "BAD_MOVE for a public answer", after=public["seq"], to="alice",
                        type="violation", code="BAD_MOVE")

        alice_msg, alice_receipt, _ = await answer(table, "alice", 1, text="Lisbon")
        assert alice_receipt["data"]["answer"] == "Lisbon", alice_receipt
        # A second answer: refused, the first stands.
        again = await table.post("alice", text="Rome", to=BOT)
        await table.bot("alice", "ALREADY_ANSWERED for a second answer", after=again["seq"], to="alice",
                        type="violation", code="ALREADY_ANSWERED")
        bob_msg, bob_receipt, _ = await answer(table, "bob", 2, data={"answer": "Kyoto", "nonce": "bob's own 7Qx!"})
        reveal = await table.bot("alice", "the reveal", after=bob_msg["seq"], type="reveal")
        data = reveal["data"]
        assert (data["question_hash"], data["mode"], data["scheme"], data["channel_id"], data["bot_slot"]) == (
            question_hash(question), "exchange", SCHEME, table.channel_id, BOT), reveal
        assert [(a["slot"], a["answer"]) for a in data["answers"]] == [("alice", "Lisbon"), ("bob", "Kyoto")], reveal
        for entry, receipt in zip(data["answers"], (alice_receipt, bob_receipt), strict=True):
            assert (entry["salt"], entry["commitment"]) == (receipt["data"]["salt"], receipt["data"]["commitment"]), entry
            assert oracle.commitment(table.channel_id, BOT, entry["answer"], bytes.fromhex(entry["salt"])) == entry["commitment"]

        # Before the reveal, Bob never synced Alice's answer, nor Alice Bob's.
        for who, secret in (("bob", "Lisbon"), ("alice", "Kyoto")):
            before = [m for m in table.feeds[who].seen if m["seq"] < reveal["seq"]]
            assert not [m for m in before if secret in json.dumps(m)], f"{who} saw {secret} before the reveal"

        ended = await table.expect("bob", "the bot_run_ended notice", system_event("bot_run_ended", slot=BOT),
                                   after=reveal["seq"])
        assert ended["data"]["reason"] == "all 2 answers revealed", ended
        # Too late to withdraw: the run is over, the bot never sees it, and the reveal stands.
        late = await table.post("bob", text="withdraw")
        exports = await table.end_and_export(reveal["seq"])
    full = check_sealed_exports(server, table, exports, {"alice": [alice_msg["seq"], again["seq"]], "bob": [bob_msg["seq"]]},
                                slots)
    assert not [m for m in full["messages"] if m["seq"] > late["seq"] and m.get("kind") == "bot"], "the bot answered after its end"
    assert not [m for m in full["messages"] if (m.get("data") or {}).get("type") == "called_off"]


async def test_sealed_withdrawal_reveals_nothing(server):
    """Three places, two players: Alice answers "yes" (no nonce), Bob answers with a nonce, then
    Alice withdraws before the third participant arrives. Nothing is revealed; each player's
    export withholds the other's answer for good. But the seed, revealed when the run ends, gives
    the salt of Alice's answer, and "yes" is one of two candidates: the header says so. Bob's
    nonce keeps his sealed."""
    question = "Should we sign the contract?"
    params = {"question": question, "participants": 3}
    slots = ["invite:alice", "invite:bob", "invite:carol", f"bot:{BOT}"]
    bob_answer = "no, not at that price (bob-5e4f1a)"
    async with connect(server, "alice", ALICE_MODE) as alice, connect(server, "bob", BOB_MODE) as bob:
        table = await open_sealed_table(alice, bob, params, slots)
        rules = await seated_both(table)
        assert rules["data"]["participants"] == 3, rules
        alice_msg, _, alice_sealed = await answer(table, "alice", 1, text="yes")
        assert alice_sealed["data"]["open_seats"] == 1 and alice_sealed["data"]["waiting"] == ["bob"], alice_sealed
        bob_msg, bob_receipt, bob_sealed = await answer(table, "bob", 2, data={"answer": bob_answer, "nonce": "bob's 9f!k"})
        withdraw = await table.post("alice", data={"action": "withdraw"})
        off = await table.bot("bob", "the exchange called off", after=withdraw["seq"], type="called_off")
        assert off["data"] == {"type": "called_off", "reason": "withdrawn", "by": "alice", "answered": ["alice", "bob"],
                               "missing": [], "open_seats": 1}, off
        exports = await table.end_and_export(off["seq"])
        seen = {who: json.dumps(table.feeds[who].seen) for who in ("alice", "bob")}
    assert bob_answer not in seen["alice"] and bob_answer not in json.dumps(exports["alice"]), "Alice read Bob's answer"
    assert bob_answer in json.dumps(exports["bob"]), "Bob's own export has his answer"
    assert not [m for e in exports.values() for m in e["messages"] if (m.get("data") or {}).get("type") == "reveal"]
    full = check_sealed_exports(server, table, exports, {"alice": [alice_msg["seq"]], "bob": [bob_msg["seq"]]}, slots)
    assert bob_answer in json.dumps(full), "the operator withholds nothing"

    # What the seed gives away: Bob tries both candidates for Alice's answer with the salt of her
    # message's event, and finds it. Alice cannot do the same for Bob's, who sent a nonce.
    seed = exports["bob"]["bots"][0]["seed"]
    found = [c for c in ("yes", "no") if oracle.commitment(table.channel_id, BOT, c, salt_from_seed(seed, alice_msg["seq"]))
             == alice_sealed["data"]["commitment"]]
    assert found == ["yes"], found
    plain = salt_from_seed(seed, bob_msg["seq"])
    assert oracle.commitment(table.channel_id, BOT, bob_answer, plain) != bob_sealed["data"]["commitment"]
    assert bytes.fromhex(bob_receipt["data"]["salt"]) != plain


async def test_sealed_second_price_auction(server):
    question = "What do you bid for the 1962 lamp?"
    params = {"question": question, "mode": "auction", "price": "second", "min_bid": 1, "max_bid": 500,
              "answer_timeout_ms": 600000}
    slots = ["invite:alice", "invite:bob", f"bot:{BOT}"]
    async with connect(server, "alice", ALICE_MODE) as alice, connect(server, "bob", BOB_MODE) as bob:
        table = await open_sealed_table(alice, bob, params, slots)
        rules = await seated_both(table)
        data = rules["data"]
        assert (data["mode"], data["price"], data["min_bid"], data["max_bid"], data["answer_timeout_ms"]) == (
            "auction", "second", 1, 500, 600000), rules
        low = await table.post("bob", text="bid 501", to=BOT)
        await table.bot("bob", "BAD_MOVE for a bid above max_bid", after=low["seq"], to="bob",
                        type="violation", code="BAD_MOVE")
        alice_msg, _, _ = await answer(table, "alice", 1, text="bid 120")
        bob_msg, _, _ = await answer(table, "bob", 2, data={"bid": 80})
        reveal = await table.bot("alice", "the auction's reveal", after=bob_msg["seq"], type="reveal")
        data = reveal["data"]
        assert (data["winner"], data["price"], data["price_rule"]) == ("alice", 80, "second"), reveal
        assert data["bids"] == [{"slot": "alice", "bid": 120}, {"slot": "bob", "bid": 80}], reveal
        for entry in data["answers"]:
            assert oracle.commitment(table.channel_id, BOT, entry["answer"], bytes.fromhex(entry["salt"])) == entry["commitment"]
        exports = await table.end_and_export(reveal["seq"])
    check_sealed_exports(server, table, exports, {"alice": [alice_msg["seq"]], "bob": [low["seq"], bob_msg["seq"]]}, slots)
    [ended] = notices(exports["alice"], "bot_run_ended")
    assert ended["data"]["reason"].lower() == "alice wins at 80 (second price)", ended  # Alice's display name
    # The clock was cancelled with the reveal: no timer fired.
    assert not notices(exports["alice"], "timer_fired")
