"""The contract judge (crates/bots/builtin/judge.js) end to end, over MCP, with two Python SDK
clients: Alice proposes a two-clause contract, both accept its exact hash, Bob confirms the
clause Alice owed him (fulfilled), and the clause Bob owed her has a deadline 1.5 s after the
agreement that passes without a confirmation (breached, on the server's timer). The judge posts
the record and ends its run; both players export the transcript, and the exports (and the
operator's) are verified by the Python oracle and by `mcp-multiplayer verify`, which replays the
judge over them (test_games.check_exports).

Witness evidence needs the server to fetch for bots, which it does not yet (it refuses a fetch
request as the event's failure): the judge's rules on fetch results are tested in the bots
crate (crates/bots/tests/it/judge.rs).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import pytest

import transcript_oracle as oracle
from conftest import connect
from test_bots import system_event
from test_games import ALICE_MODE, BOB_MODE, BOT, TIMER_WAIT_S, by_seq, check_exports, notices, open_table

pytestmark = pytest.mark.anyio

SCHEME = "mcp-multiplayer/contract-terms/v1"
PAY_DUE_IN_MS = 1500


def python_terms_hash(terms: dict[str, Any]) -> str:
    """The recipe in the judge's header, in plain Python."""
    canonical = json.dumps(terms, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def ms(at: str) -> int:
    """A synced message's time (RFC 3339, ms precision) in ms since the epoch, as bots see it."""
    return round(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() * 1000)


async def test_two_parties_agree_and_the_judge_rules_each_clause(server):
    async with connect(server, "alice", ALICE_MODE) as alice, connect(server, "bob", BOB_MODE) as bob:
        # The prototype-style class name picks the same bot.
        table = await open_table(alice, bob, "judge", {}, ask_as="ContractJudgeBot", name="a contract")
        rules = await table.bot("alice", "the rules post", type="rules")
        assert (rules["data"]["parties"], rules["data"]["scheme"]) == (2, SCHEME), rules
        start = await table.bot("bob", "the start post", type="start")
        assert start["data"]["parties"] == ["alice", "bob"], start

        proposal = {
            "title": "Widgets — délivrance",
            "text": "Alice ships ten widgets to Bob; Bob pays 10 € for them.",
            "clauses": [
                {"id": "deliver", "text": "Alice ships ten widgets.", "obligor": "alice", "beneficiary": "bob",
                 "kind": "deliver", "due_in_ms": 60000},
                {"id": "pay", "text": "Bob pays 10 €.", "obligor": "bob", "beneficiary": "alice", "kind": "pay",
                 "due_in_ms": PAY_DUE_IN_MS},
            ],
        }
        proposed = await table.post("alice", data={"propose": proposal})
        posted = await table.bot("bob", "the proposal with its hash", after=proposed["seq"], type="proposal")
        data = posted["data"]
        terms = data["terms"]
        assert (data["n"], data["by"], data["seq"], data["voided"]) == (1, "alice", proposed["seq"], None), posted
        assert terms == {
            "scheme": SCHEME, "channel_id": table.channel_id, "judge": BOT, "parties": ["alice", "bob"],
            "title": proposal["title"], "text": proposal["text"],
            "clauses": [
                {**proposal["clauses"][0], "deadline_ms": None, "fulfilled_by": "confirmation", "witness": None},
                {**proposal["clauses"][1], "deadline_ms": None, "fulfilled_by": "confirmation", "witness": None},
            ],
        }, posted
        # Anyone recomputes the hash: RFC 8785, or the header's json.dumps recipe.
        terms_hash = data["terms_hash"]
        assert terms_hash == oracle.sha256_tagged(oracle.jcs(terms)) == python_terms_hash(terms), posted

        # A wrong hash is refused privately, naming the pending one.
        wrong = await table.post("bob", data={"accept": "sha256:" + "0" * 64})
        refused = await table.bot("bob", "BAD_HASH for a wrong hash", after=wrong["seq"], to="bob",
                                  type="violation", code="BAD_HASH")
        assert refused["data"]["pending_hash"] == terms_hash, refused

        # Alice accepts in text, Bob in data: agreed.
        accepted_by_alice = await table.post("alice", text=f"accept {terms_hash}")
        await table.bot("bob", "Alice's acceptance", after=accepted_by_alice["seq"], type="accepted", by="alice")
        accepted_by_bob = await table.post("bob", data={"accept": terms_hash})
        agreed = await table.bot("alice", "the agreement", after=accepted_by_bob["seq"], type="agreed")
        data = agreed["data"]
        agreement = sorted([proposed["seq"], accepted_by_alice["seq"], accepted_by_bob["seq"]])
        assert (data["terms_hash"], data["proposal_seq"], data["cites"]) == (terms_hash, proposed["seq"], agreement), agreed
        assert data["accepted"] == [{"slot": "alice", "seq": accepted_by_alice["seq"]},
                                    {"slot": "bob", "seq": accepted_by_bob["seq"]}], agreed
        agreed_at = data["agreed_at"]
        assert agreed_at == ms(accepted_by_bob["at"]), (agreed, accepted_by_bob)
        pay_due = agreed_at + PAY_DUE_IN_MS
        assert data["deadlines"] == [
            {"clause": "deliver", "due": agreed_at + 60000, "tag": "clause:deliver"},
            {"clause": "pay", "due": pay_due, "tag": "clause:pay"},
        ], agreed

        # Alice claims she shipped (on record, decides nothing); Bob confirms: fulfilled.
        claim = await table.post("alice", data={"claim": {"clause": "deliver", "text": "Shipped by courier."}})
        recorded = await table.bot("bob", "the claim on record", after=claim["seq"], type="recorded")
        assert (recorded["data"]["kind"], recorded["data"]["late"], recorded["data"]["ruling"]) == ("claim", False, None), recorded
        confirmed = await table.post("bob", data={"confirm": "deliver"})
        fulfilled = await table.bot("alice", "the ruling on deliver", after=confirmed["seq"], type="ruling", clause="deliver")
        data = fulfilled["data"]
        assert (data["outcome"], data["rule"]["code"]) == ("fulfilled", "CONFIRMED_BY_BENEFICIARY"), fulfilled
        assert data["cites"] == sorted(agreement + [confirmed["seq"]]), fulfilled
        assert data["confirmation"] == {"by": "bob", "seq": confirmed["seq"]}, fulfilled

        # Nobody confirms pay: its timer fires at the deadline, and the judge rules it breached.
        fired = await table.expect(
            "alice", "the timer_fired notice of pay's deadline, set by the agreement",
            system_event("timer_fired", slot=BOT, tag="clause:pay", set_by=accepted_by_bob["seq"]),
            after=accepted_by_bob["seq"], timeout_s=TIMER_WAIT_S,
        )
        assert fired["data"]["due"] == pay_due and ms(fired["at"]) >= pay_due, fired
        breached = await table.bot("bob", "the ruling on pay", after=fired["seq"], type="ruling", clause="pay")
        data = breached["data"]
        assert (data["outcome"], data["rule"]["code"], data["cites"]) == ("breached", "DEADLINE_PASSED", agreement), breached
        assert data["timer"] == {"tag": "clause:pay", "due": pay_due, "fired_at": ms(fired["at"]), "held_until": None}, breached

        # Every clause is ruled: the record, then the end of the run.
        record = await table.bot("alice", "the record", after=max(fulfilled["seq"], breached["seq"]), type="record")
        data = record["data"]
        assert (data["terms_hash"], data["part"], data["parts"], data["terms"]) == (terms_hash, 1, 1, terms), record
        assert data["summary"] == {"fulfilled": 1, "breached": 1, "disputed": 0}, record
        assert data["proposal"] == {"n": 1, "by": "alice", "seq": proposed["seq"]}, record
        strip = lambda post: {k: v for k, v in post["data"].items() if k != "type"}  # noqa: E731
        # In the order made: Bob's confirmation and pay's deadline may come either way round.
        assert data["rulings"] == [strip(p) for p in sorted((fulfilled, breached), key=lambda p: p["seq"])], record
        assert [(e["kind"], e["seq"]) for e in data["entries"]] == [("claim", claim["seq"])], record
        exports = await table.end_and_export(record["seq"])

    check_exports(server, table, exports, record["seq"])
    for who, export in exports.items():
        messages = by_seq(export)
        [ended] = notices(export, "bot_run_ended")
        assert ended["data"]["reason"] == "Contract judged: 1 fulfilled, 1 breached, 0 disputed", ended
        # Every ruling cites messages of the channel that Alice and Bob both read: the proposal,
        # the acceptances, the confirmation; the breach names its timer_fired notice.
        for ruling in (fulfilled, breached):
            for seq in ruling["data"]["cites"]:
                assert messages[seq]["kind"] == "user" and not messages[seq].get("withheld"), (who, seq)
        assert messages[fired["seq"]]["data"]["tag"] == breached["data"]["timer"]["tag"], who
        assert fired["seq"] < breached["seq"] < record["seq"] < ended["seq"], who
        # The terms in the export hash to what everyone accepted.
        shown = messages[posted["seq"]]["data"]
        assert python_terms_hash(shown["terms"]) == shown["terms_hash"] == terms_hash, who
