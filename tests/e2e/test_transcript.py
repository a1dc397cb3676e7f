"""The verifiable transcript (docs/transcript.md).

Two parts:
- `test_oracle_*`: the independent Python verifier (transcript_oracle.py) on transcripts built
  here from the spec, with no server: it accepts an honest one and names the seq and the check of
  each tamper. Run alone with `-k oracle`.
- The rest: GuessBot games on the real server, exported by both players (MCP and REST), checked
  by the oracle and by `mcp-multiplayer verify`, with the signed heads a player kept on the way,
  and tampered exports and foreign or damaged heads that both must refuse.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import transcript_oracle as oracle
from transcript_oracle import Divergence

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------
# A transcript built from the spec alone
# ---------------------------------------------------------------------------------------------

CHANNEL = "ch_0123456789abcdef01234567"
SLOTS = ["invite:alice", "invite:bob", "bot:referee"]
BOT_SOURCE = 'class Bot {\n  constructor(ctx, params) { this.ctx = ctx; }\n  on_message(msg) { /* é */ }\n}\n'
BOT_PARAMS = {"min": 1, "max": 8, "note": "ünïcode", "ratio": 0.5}
SEED = "5eed" * 16
T0 = 1_765_000_000_000


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_entry(key: Ed25519PrivateKey, created_at: int = T0, retired_at: int | None = None) -> dict[str, Any]:
    public = public_bytes(key)
    return {
        "id": oracle.key_id_of(public),
        "algorithm": "Ed25519",
        "public": oracle.b64url_encode(public),
        "created_at": created_at,
        "retired_at": retired_at,
    }


def sign_head(key: Ed25519PrivateKey, channel: str, seq: int, head: str, at: int) -> dict[str, Any]:
    statement = {"channel": channel, "seq": seq, "head": head, "at": at}
    signature = key.sign(oracle.head_signing_bytes(statement))
    return {**statement, "key_id": oracle.key_id_of(public_bytes(key)), "signature": oracle.b64url_encode(signature)}


def notice(event: str, text: str, **data: Any) -> dict[str, Any]:
    return {"kind": "system", "sender_name": "system", "text": text, "data": {"event": event, "v": 1, **data}}


def full_history() -> list[dict[str, Any]]:
    """A small GuessBot-like game, every message readable, without seq, at or hash."""
    code_hash = oracle.sha256_tagged(BOT_SOURCE.encode())
    params_hash = oracle.sha256_tagged(oracle.jcs(BOT_PARAMS))
    bot = {"kind": "bot", "sender": "referee", "sender_name": "guess"}
    return [
        notice("created", 'channel "Guess night" created by "Alice"', name="Guess night", by="Alice", slots=SLOTS),
        notice(
            "bot_attached", "guess took referee", slot="referee", name="guess", language="javascript",
            code_hash=code_hash, params_hash=params_hash,
            seed_commitment=oracle.seed_commitment(CHANNEL, "referee", SEED),
        ),
        {**bot, "text": "I committed.", "data": {"type": "commitment", "commitment": "sha256:" + "1" * 64}},
        notice("joined", '"Alice" took alice', slot="alice", name="Alice"),
        notice("joined", '"Bob" took bob', slot="bob", name="Bob"),
        {"kind": "user", "sender": "alice", "sender_name": "Alice", "text": "4"},
        {"kind": "user", "sender": "bob", "sender_name": "Bob", "to": "referee", "text": "5"},
        {**bot, "to": "bob", "text": "BAD_TURN: not yours", "data": {"type": "violation", "code": "BAD_TURN"}},
        {**bot, "text": "Alice guessed 4: higher", "data": {"type": "hint", "guess": 4, "direction": "higher", "next": "bob"}},
        {"kind": "user", "sender": "bob", "sender_name": "Bob", "to": "referee", "data": {"guess": 6}},
        {**bot, "text": "Bob guessed it: 6!", "data": {"type": "reveal", "target": 6, "winner": "bob", "ratio": 1.0}},
        notice("bot_run_ended", "referee ended its run", slot="referee", reason="game over"),
        notice("bot_seed_revealed", "referee's seed", slot="referee", seed=SEED),
    ]


def chained(history: list[dict[str, Any]], channel: str = CHANNEL) -> list[dict[str, Any]]:
    """Numbers, times and chains the messages as the spec says."""
    messages, prev = [], oracle.GENESIS
    for index, body in enumerate(history):
        message = {"seq": index + 1, "at": T0 + 1000 * index, **body}
        message["hash"] = hashlib_link(prev, channel, message)
        prev = message["hash"]
        messages.append(message)
    return messages


def hashlib_link(prev: str, channel: str, message: dict[str, Any]) -> str:
    """The chain link written out once more here, not through the oracle's own helper."""
    import rfc8785

    body = {key: value for key, value in message.items() if key != "hash"}
    canonical = rfc8785.dumps({**body, "channel": channel})
    return "sha256:" + hashlib.sha256(prev.encode() + b"\n" + canonical).hexdigest()


def withhold(messages: list[dict[str, Any]], seqs: set[int]) -> list[dict[str, Any]]:
    return [{"seq": m["seq"], "withheld": True, "hash": m["hash"]} if m["seq"] in seqs else m for m in messages]


def build_export(key: Ed25519PrivateKey, withheld: set[int] = frozenset({7, 8})) -> dict[str, Any]:
    """Alice's export of the finished game: Bob's first note to the bot and his violation are
    withheld; the rest is readable."""
    messages = chained(full_history())
    head = sign_head(key, CHANNEL, len(messages), messages[-1]["hash"], T0 + 60_000)
    return {
        "format": "mcp-multiplayer-transcript",
        "version": 1,
        "exported_at": T0 + 61_000,
        "channel": {"id": CHANNEL, "name": "Guess night", "slots": SLOTS, "closed": False,
                    "faithful_from": 0, "reveal_private": True},
        "viewer": {"slots": ["alice"]},
        "messages": withhold(messages, set(withheld)),
        "bots": [{
            "slot": "referee", "name": "guess", "language": "javascript", "source": BOT_SOURCE,
            "code_hash": oracle.sha256_tagged(BOT_SOURCE.encode()), "params": BOT_PARAMS,
            "params_hash": oracle.sha256_tagged(oracle.jcs(BOT_PARAMS)),
            "seed_commitment": oracle.seed_commitment(CHANNEL, "referee", SEED), "seed": SEED,
            "attached_seq": 2, "ended": True, "disabled": False,
        }],
        "head": head,
        "keys": [key_entry(key)],
    }


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def divergence_of(export: dict[str, Any], *args: Any, **kwargs: Any) -> Divergence:
    with pytest.raises(Divergence) as caught:
        oracle.verify(export, *args, **kwargs)
    return caught.value


def flip_signature_bit(head: dict[str, Any], bit: int = 0) -> dict[str, Any]:
    raw = bytearray(oracle.b64url_decode(head["signature"]))
    raw[bit // 8] ^= 1 << (bit % 8)
    return {**head, "signature": oracle.b64url_encode(bytes(raw))}


def swap(export: dict[str, Any], seq: int, renumber: bool) -> None:
    """Swaps messages `seq` and `seq + 1`; with `renumber`, each keeps the seq of its new place."""
    messages = export["messages"]
    first, second = messages[seq - 1], messages[seq]
    messages[seq - 1], messages[seq] = second, first
    if renumber:
        second["seq"], first["seq"] = seq, seq + 1


# ---------------------------------------------------------------------------------------------
# The oracle against the pinned known answers of the spec's primitives
# ---------------------------------------------------------------------------------------------


def test_oracle_chain_link_matches_the_pinned_known_answer():
    # The vector the Rust domain crate pins (crates/domain/src/chain.rs); computed here from the
    # spec, so a drift on either side shows.
    message = {"seq": 1, "kind": "user", "sender": "alice", "sender_name": "Alice", "at": 1_700_000_000_000,
               "text": "hi", "data": {"b": 1.0, "a": [1, "é"]}}
    channel = "ch_000000000000000000000001"
    assert oracle.canonical_message(channel, message).decode() == (
        '{"at":1700000000000,"channel":"ch_000000000000000000000001","data":{"a":[1,"é"],"b":1},'
        '"kind":"user","sender":"alice","sender_name":"Alice","seq":1,"text":"hi"}'
    )
    assert oracle.link(oracle.GENESIS, channel, message) == (
        "sha256:e3724c5a0dd2a1514306b903d0417e0801165b2a2350e06d4e2bd66efd973539"
    )


def test_oracle_head_signature_matches_the_pinned_known_answer():
    # The vector the Rust transcript crate pins: secret key 32 bytes of 7, channel
    # ch_0123456789abcdef01234567, seq 42, head sha256:abab…, at 1750000000000.
    key = Ed25519PrivateKey.from_private_bytes(bytes([7] * 32))
    head = sign_head(key, "ch_0123456789abcdef01234567", 42, "sha256:" + "ab" * 32, 1_750_000_000_000)
    assert oracle.head_signing_bytes(head) == (
        b'mcp-multiplayer signed head v1\n{"at":1750000000000,"channel":"ch_0123456789abcdef01234567",'
        b'"head":"sha256:abababababababababababababababababababababababababababababababab","seq":42}'
    )
    assert head["key_id"] == "ed25519:fe812c12f3ab4ce6"
    assert key_entry(key)["public"] == "6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw"
    assert head["signature"] == (
        "jcZUqhMlMfn3JMHraEHANnBqjlcSpcRtq_uXev9aobZu87rJ7T6gbLAh7qtNGAFhgWVDjFTjyLK8nBHrbcgpBg"
    )
    oracle.check_signature(head, {head["key_id"]: public_bytes(key)}, 42)


def test_oracle_commitment_matches_the_pinned_known_answer():
    # bot-api.md's commitment; the vector test_bots.py and the Rust crate pin.
    assert oracle.commitment("ch_000000000000000000000000", "referee", "42", bytes(range(16))) == (
        "sha256:7ed59369cf6b2fa4c6434550f17e6f0a5109d1c36c35a688e125e4a413dd5cd9"
    )


# ---------------------------------------------------------------------------------------------
# An honest transcript verifies; each tamper is named
# ---------------------------------------------------------------------------------------------


def test_oracle_accepts_an_honest_transcript(key):
    export = build_export(key)
    oracle.verify(export)
    oracle.verify(export, trusted_keys=[key_entry(key)])
    # Nothing withheld (an operator's export), and everything withheld but the notices.
    oracle.verify(build_export(key, withheld=set()))
    oracle.verify(build_export(key, withheld={6, 7, 8, 9, 10, 11}))
    # The export survives a JSON round trip (floats such as 1.0 and 0.5 included).
    oracle.verify(json.loads(json.dumps(export)))


def user_message_text(export: dict[str, Any]) -> None:
    export["messages"][5]["text"] = "5"


TAMPERS: dict[str, tuple[Callable[[dict[str, Any]], None], int | None, str]] = {
    "a message's text": (user_message_text, 6, "hash"),
    "two messages' order": (lambda e: swap(e, 5, renumber=False), 5, "seq"),
    "two messages' order, renumbered": (lambda e: swap(e, 5, renumber=True), 5, "hash"),
    "a seq": (lambda e: e["messages"][8].update(seq=10), 9, "seq"),
    "a sender": (lambda e: e["messages"][5].update(sender="bob"), 6, "hash"),
    "a sender name": (lambda e: e["messages"][5].update(sender_name="Bob"), 6, "hash"),
    "a private message made public": (lambda e: e["messages"][9].pop("to"), 10, "hash"),
    "a bot post's data": (lambda e: e["messages"][8]["data"].update(direction="lower"), 9, "hash"),
    "a notice's data": (lambda e: e["messages"][3]["data"].update(slot="bob"), 4, "hash"),
    "a time": (lambda e: e["messages"][2].update(at=T0), 3, "hash"),
    "a null field": (lambda e: e["messages"][5].update(to=None), 6, "fields"),
    # Caught at the next readable message, whose link covers it.
    "a withheld message's hash": (lambda e: e["messages"][7].update(hash="sha256:" + "e" * 64), 9, "hash"),
    "a withheld message shown with a field": (lambda e: e["messages"][6].update(text="x"), 7, "withheld"),
    "a message removed": (lambda e: e["messages"].pop(5), 6, "seq"),
    "the last message removed": (lambda e: e["messages"].pop(), 13, "missing"),
    "the signature": (lambda e: e.update(head=flip_signature_bit(e["head"], 77)), 13, "signature"),
    "the head's time": (lambda e: e["head"].update(at=e["head"]["at"] + 1), 13, "signature"),
    "the head's hash": (lambda e: e["head"].update(head="sha256:" + "0" * 64), 13, "head"),
    "the head's channel": (lambda e: e["head"].update(channel="ch_0123456789abcdef01234568"), 13, "head.channel"),
    "the head's key": (lambda e: e["head"].update(key_id="ed25519:0123456789abcdef"), 13, "key"),
    "the channel's slots": (lambda e: e["channel"].update(slots=["invite:alice", "bot:referee"]), 1, "slots"),
    "the seed": (lambda e: e["bots"][0].update(seed="5eed" * 15 + "5eee"), 2, "seed"),
    "the seed withheld though revealed": (lambda e: e["bots"][0].update(seed=None), 13, "seed"),
    "the code": (lambda e: e["bots"][0].update(source=BOT_SOURCE + " "), 2, "code_hash"),
    "the code and its hash": (
        lambda e: e["bots"][0].update(source="x", code_hash=oracle.sha256_tagged(b"x")), 2, "bot_attached"),
    "the params": (lambda e: e["bots"][0]["params"].update(max=9), 2, "params_hash"),
    "the attach seq": (lambda e: e["bots"][0].update(attached_seq=3), 3, "attached_seq"),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_oracle_names_each_tamper(key, tamper):
    change, seq, what = TAMPERS[tamper]
    export = build_export(key)
    change(export)
    divergence = divergence_of(export)
    assert (divergence.seq, divergence.what) == (seq, what), str(divergence)
    assert f"seq {seq}" in str(divergence)


def test_oracle_cannot_see_inside_a_run_of_withheld_messages(key):
    # Only the last hash of a run of withheld messages is bound by the next readable link: the
    # hash of seq 7 went into seq 8's, which the viewer cannot recompute. The spec's limit, kept
    # here so nobody counts on the oracle catching it.
    export = build_export(key)
    export["messages"][6]["hash"] = "sha256:" + "e" * 64
    oracle.verify(export)


def test_oracle_checks_format_version_and_keys(key):
    export = build_export(key)
    assert divergence_of({**export, "format": "other"}).what == "format"
    assert divergence_of({**export, "version": 2}).what == "version"
    # A key listed under an id that names other bytes.
    other = Ed25519PrivateKey.generate()
    forged = {**key_entry(key), "public": key_entry(other)["public"]}
    assert divergence_of({**export, "keys": [forged]}).what == "key_id"
    # Signed by a key the export lists but the server does not publish.
    divergence = divergence_of(export, trusted_keys=[key_entry(other)])
    assert (divergence.seq, divergence.what) == (13, "key")
    # A signature in another spelling of base64 (padded) is refused.
    padded = {**export["head"], "signature": export["head"]["signature"] + "=="}
    assert divergence_of({**export, "head": padded}).what == "signature"
    # A head signed by a key in the list with the right id, but not the key that signed.
    impostor = sign_head(other, CHANNEL, 13, export["head"]["head"], export["head"]["at"])
    impostor["key_id"] = export["head"]["key_id"]
    assert divergence_of({**export, "head": impostor}).what == "signature"


def test_oracle_checks_saved_heads(key):
    export = build_export(key)
    messages = chained(full_history())
    saved = [sign_head(key, CHANNEL, seq, messages[seq - 1]["hash"], T0 + seq) for seq in (1, 5, 7, 13)]
    oracle.verify(export, saved)

    # A head of another channel, though validly signed.
    foreign = sign_head(key, "ch_0123456789abcdef01234568", 5, messages[4]["hash"], T0)
    divergence = divergence_of(export, [*saved, foreign])
    assert (divergence.seq, divergence.what) == (5, "saved head channel")
    # A flipped bit in a saved head's signature.
    divergence = divergence_of(export, [flip_signature_bit(saved[1], 300)])
    assert (divergence.seq, divergence.what) == (5, "saved head signature")
    # A validly signed head of another history at seq 6: it is off the export's chain.
    rewritten = chained([*full_history()[:5], {**full_history()[5], "text": "3"}])
    other = sign_head(key, CHANNEL, 6, rewritten[5]["hash"], T0)
    divergence = divergence_of(export, [other])
    assert (divergence.seq, divergence.what) == (6, "saved head off the chain")
    assert divergence.expected == messages[5]["hash"] and divergence.found == rewritten[5]["hash"]
    # Two saved heads disagreeing at one seq prove a rewrite, whatever the export says.
    twin = sign_head(key, CHANNEL, 6, messages[5]["hash"], T0 + 1)
    divergence = divergence_of(export, [twin, other])
    assert (divergence.seq, divergence.what) == (6, "rewrite proven")
    # A head past the export's own.
    later = sign_head(key, CHANNEL, 14, "sha256:" + "c" * 64, T0)
    assert divergence_of(export, [later]).what == "saved head beyond the export"
    # A retired key still verifies what it signed.
    old = Ed25519PrivateKey.generate()
    old_head = sign_head(old, CHANNEL, 5, messages[4]["hash"], T0)
    with_old = {**export, "keys": [key_entry(old, retired_at=T0 + 1), key_entry(key)]}
    oracle.verify(with_old, [old_head])


def run_oracle_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HERE / "transcript_oracle.py"), *args],
        capture_output=True, text=True, timeout=60,
    )


def test_oracle_command_line(key, tmp_path):
    export = build_export(key)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    messages = chained(full_history())
    head = tmp_path / "head.json"
    head.write_text(json.dumps(sign_head(key, CHANNEL, 5, messages[4]["hash"], T0)))
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [key_entry(key)], "active": key_entry(key)["id"]}))

    done = run_oracle_cli(str(path), "--head", str(head), "--keys", str(keys))
    assert done.returncode == 0, done
    assert done.stdout.startswith("verified: ") and "1 saved heads" in done.stdout, done.stdout

    user_message_text(export)
    path.write_text(json.dumps(export))
    done = run_oracle_cli(str(path))
    assert done.returncode == 1, done
    assert done.stdout.startswith("divergence at seq 6: hash:"), done.stdout

    path.write_text("{not json")
    assert run_oracle_cli(str(path)).returncode == 2
    assert run_oracle_cli(str(tmp_path / "missing.json")).returncode == 2
