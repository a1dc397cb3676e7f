"""An independent verifier of mcp-multiplayer transcript exports, written from docs/transcript.md
alone (it shares no code with the server).

It checks the format (unknown fields refused), the seqs, the hash chain (every link, withheld
messages linked by their given digest), the nonces of private messages, the server's signed
head, the channel header against its notices (slots, name, closed, reveal_private,
faithful_from), and each bot's code, params, seed, end and disabling against what the channel
announced; and any signed heads saved from earlier answers against the chain and against each
other. It does not replay bots: that is the job of `mcp-multiplayer verify`.

    verify(export, saved_heads=(), trusted_keys=None)  # raises Divergence on the first problem

From a shell:

    python transcript_oracle.py EXPORT.json [--head HEAD.json ...] [--keys KEYS.json]

prints `verified: ...` and exits 0, or the first divergence and exits 1 (2: unreadable input).
A head file holds one signed head or a list of them; a keys file is the server's
`/.well-known/mcp-multiplayer-keys` answer (or a bare list of keys).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
import sys
from typing import Any, Iterable

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "mcp-multiplayer-transcript"
VERSIONS = (1,)
GENESIS = "sha256:" + "0" * 64
HEAD_PREFIX = b"mcp-multiplayer signed head v1\n"
COMMIT_LABEL = b"mcp-multiplayer/commit/v1"

HASH = re.compile(r"sha256:[0-9a-f]{64}")
SEED = re.compile(r"[0-9a-f]{64}")
NONCE = re.compile(r"[0-9a-f]{32}")
BASE64URL = re.compile(r"[A-Za-z0-9_-]*")

# The fields of a readable message (besides `hash`): required, then optional.
MESSAGE_REQUIRED = ("seq", "kind", "sender_name", "at")
MESSAGE_OPTIONAL = ("sender", "to", "nonce", "text", "data")
WITHHELD_FIELDS = ("seq", "withheld", "digest", "hash")
EXPORT_FIELDS = ("format", "version", "exported_at", "channel", "viewer", "messages", "bots", "head", "keys")
CHANNEL_FIELDS = ("id", "name", "slots", "closed", "faithful_from", "reveal_private")
HEAD_FIELDS = ("channel", "seq", "head", "at", "key_id", "signature")
KEY_FIELDS = ("id", "algorithm", "public", "created_at", "retired_at")
BOT_FIELDS = (
    "slot", "name", "language", "source", "code_hash", "params", "params_hash", "seed_commitment",
    "seed", "attached_seq", "ended", "disabled",
)
BOT_CHECKED = ("name", "language", "code_hash", "params_hash", "seed_commitment")


class Divergence(Exception):
    """The first place where the export disagrees with itself, the spec or a saved head.

    `seq` is the message the problem is at (None for the export as a whole), `what` a short
    stable name of the check, `expected` and `found` the two sides."""

    def __init__(self, seq: int | None, what: str, expected: Any, found: Any):
        self.seq = seq
        self.what = what
        self.expected = expected
        self.found = found
        where = "the export" if seq is None else f"seq {seq}"
        super().__init__(f"divergence at {where}: {what}: expected {_show(expected)}, found {_show(found)}")


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:197] + "..."


# ---------------------------------------------------------------------------------------------
# The primitives of the spec
# ---------------------------------------------------------------------------------------------


def sha256_tagged(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def jcs(value: Any) -> bytes:
    """RFC 8785 canonical JSON. RFC 8785 reads every JSON number as an IEEE 754 double, while
    Python's parser keeps integers exact (and the `rfc8785` package refuses those past 2^53):
    such integers are made doubles first, as the RFC's data model says."""
    return rfc8785.dumps(_as_doubles(value))


def _as_doubles(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) >= 2**53:
        return float(value)
    if isinstance(value, dict):
        return {key: _as_doubles(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_doubles(item) for item in value]
    return value


def canonical_message(channel_id: str, message: dict[str, Any]) -> bytes:
    """The export's message minus `hash`, plus `channel`, as JCS."""
    body = {key: value for key, value in message.items() if key != "hash"}
    body["channel"] = channel_id
    return jcs(body)


def digest(channel_id: str, message: dict[str, Any]) -> str:
    """digest(m) = "sha256:" + hex(SHA-256(canonical(m)))."""
    return sha256_tagged(canonical_message(channel_id, message))


def link_digest(prev: str, message_digest: str, private: bool) -> str:
    """hash(m) = "sha256:" + hex(SHA-256(prev + "\\n" + digest(m) + "\\n" + scope)), all ASCII;
    scope is "private" for a message with `to` (every withheld one), else "public"."""
    scope = b"private" if private else b"public"
    return sha256_tagged(prev.encode("ascii") + b"\n" + message_digest.encode("ascii") + b"\n" + scope)


def link(prev: str, channel_id: str, message: dict[str, Any]) -> str:
    """The link of a readable message."""
    return link_digest(prev, digest(channel_id, message), "to" in message)


def head_signing_bytes(head: dict[str, Any]) -> bytes:
    statement = {"channel": head["channel"], "seq": head["seq"], "head": head["head"], "at": head["at"]}
    return HEAD_PREFIX + jcs(statement)


ATTESTATION_PREFIX = b"mcp-multiplayer fetch attestation v1\n"


def attestation_signing_bytes(channel_id: str, notice: dict[str, Any]) -> bytes:
    """What the server signs for a `fetch_attested` notice (crates/transcript/src/signing.rs):
    the prefix, then the JCS of the record bound to its channel, slot, tag and asking event."""
    return ATTESTATION_PREFIX + jcs({
        "attestation": notice["attestation"],
        "channel": channel_id,
        "requested_by": notice["requested_by"],
        "slot": notice["slot"],
        "tag": notice["tag"],
    })


def check_attestations(export: dict[str, Any], keys: dict[str, bytes]) -> None:
    """Every readable `fetch_attested` notice is signed by a trusted key over its record."""
    for message in export["messages"]:
        data = message.get("data") or {}
        if message.get("kind") != "system" or data.get("event") != "fetch_attested":
            continue
        witness = data.get("witness") or {}
        public = keys.get(witness.get("key_id"))
        if public is None:
            raise Divergence(message["seq"], "fetch record key", f"a known key among {sorted(keys)}", witness.get("key_id"))
        try:
            signature = b64url_decode(witness.get("signature"))
            Ed25519PublicKey.from_public_bytes(public).verify(
                signature, attestation_signing_bytes(export["channel"]["id"], data))
        except (ValueError, InvalidSignature):
            raise Divergence(message["seq"], "fetch record signature", "a valid signature", witness.get("signature")) from None


def b64url_decode(text: str) -> bytes:
    """Base64url without padding, strictly: the alphabet, no `=`, and the canonical encoding
    (unused trailing bits zero), so one value has one spelling."""
    if not isinstance(text, str) or not BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError(f"not base64url without padding: {text!r}")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(raw) != text:
        raise ValueError(f"not the canonical base64url encoding: {text!r}")
    return raw


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def key_id_of(public: bytes) -> str:
    return "ed25519:" + hashlib.sha256(public).hexdigest()[:16]


def commitment(channel_id: str, bot_slot: str, value: str, salt: bytes) -> str:
    """bot-api.md's commitment: SHA-256 over length-prefixed label, channel, slot, value, salt."""

    def lp(field: bytes) -> bytes:
        return struct.pack(">Q", len(field)) + field

    fields = [COMMIT_LABEL, channel_id.encode(), bot_slot.encode(), value.encode(), salt]
    return sha256_tagged(b"".join(lp(field) for field in fields))


def seed_commitment(channel_id: str, bot_slot: str, seed: str) -> str:
    return commitment(channel_id, bot_slot, seed, b"")


# ---------------------------------------------------------------------------------------------
# Signed heads
# ---------------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_head_shape(head: Any, seq: int | None, what: str) -> None:
    if not isinstance(head, dict) or set(head) != set(HEAD_FIELDS):
        found = sorted(head) if isinstance(head, dict) else head
        raise Divergence(seq, what, f"a signed head with fields {sorted(HEAD_FIELDS)}", found)
    if not isinstance(head["channel"], str) or not _is_int(head["seq"]) or head["seq"] < 0:
        raise Divergence(seq, what, "a channel id and a seq", [head["channel"], head["seq"]])
    if not isinstance(head["head"], str) or not HASH.fullmatch(head["head"]):
        raise Divergence(seq, what, "sha256: and 64 lowercase hex digits", head["head"])
    if not _is_int(head["at"]):
        raise Divergence(seq, what, "milliseconds since the epoch", head["at"])


def usable_keys(keys: Any, trusted_keys: Iterable[dict[str, Any]] | None) -> dict[str, bytes]:
    """The export's keys by id, each with an id that names its bytes; with `trusted_keys`, only
    those that the trusted list has with the same bytes."""
    if not isinstance(keys, list):
        raise Divergence(None, "keys", "a list of keys", keys)
    found: dict[str, bytes] = {}
    for key in keys:
        if not isinstance(key, dict) or set(key) != set(KEY_FIELDS) or not isinstance(key["id"], str):
            found = sorted(key) if isinstance(key, dict) else key
            raise Divergence(None, "keys", f"a key with fields {sorted(KEY_FIELDS)}", found)
        if not _is_int(key["created_at"]) or not (key["retired_at"] is None or _is_int(key["retired_at"])):
            raise Divergence(None, "keys", "created_at and retired_at in milliseconds (retired_at or null)",
                             [key["created_at"], key["retired_at"]])
        if key.get("algorithm") != "Ed25519":
            raise Divergence(None, "keys", "algorithm Ed25519", key.get("algorithm"))
        try:
            public = b64url_decode(key.get("public"))
        except ValueError as error:
            raise Divergence(None, "keys", "a base64url public key", str(error)) from None
        if len(public) != 32:
            raise Divergence(None, "keys", "a 32-byte public key", f"{len(public)} bytes")
        if key_id_of(public) != key["id"]:
            raise Divergence(None, "key_id", key_id_of(public), key["id"])
        found[key["id"]] = public
    if trusted_keys is not None:
        trusted: dict[str, str] = {}
        for key in trusted_keys:
            trusted[key["id"]] = key["public"]
        found = {kid: public for kid, public in found.items() if trusted.get(kid) == b64url_encode(public)}
    return found


def check_signature(head: dict[str, Any], keys: dict[str, bytes], seq: int | None, prefix: str = "") -> None:
    public = keys.get(head["key_id"])
    if public is None:
        raise Divergence(seq, prefix + "key", f"a known key among {sorted(keys)}", head["key_id"])
    try:
        signature = b64url_decode(head["signature"])
    except ValueError as error:
        raise Divergence(seq, prefix + "signature", "base64url without padding", str(error)) from None
    if len(signature) != 64:
        raise Divergence(seq, prefix + "signature", "a 64-byte Ed25519 signature", f"{len(signature)} bytes")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, head_signing_bytes(head))
    except InvalidSignature:
        raise Divergence(seq, prefix + "signature", f"a valid signature by {head['key_id']}", head["signature"]) from None


# ---------------------------------------------------------------------------------------------
# The export
# ---------------------------------------------------------------------------------------------


def _check_message(message: dict[str, Any], seq: int, faithful_from: int) -> None:
    """A readable message: the known fields, none null, each of its type; a nonce (32 lowercase
    hex digits) on a private message and only there (older private messages, at or before
    `faithful_from`, have none)."""
    keys = set(message) - {"hash"}
    missing = [key for key in MESSAGE_REQUIRED if key not in keys]
    unknown = sorted(keys - set(MESSAGE_REQUIRED) - set(MESSAGE_OPTIONAL))
    nulls = sorted(key for key in keys if message[key] is None)
    if missing or unknown or nulls:
        raise Divergence(
            seq,
            "fields",
            f"{list(MESSAGE_REQUIRED)} and optionally {list(MESSAGE_OPTIONAL)}, none null",
            {"missing": missing, "unknown": unknown, "null": nulls},
        )
    wrong = sorted(
        key
        for key, value in message.items()
        if key in ("kind", "sender", "sender_name", "to", "nonce", "text") and not isinstance(value, str)
        or key == "at" and not _is_int(value)
        or key == "data" and not isinstance(value, dict)
    )
    if wrong:
        raise Divergence(seq, "fields", "strings, at an integer, data an object", {key: message[key] for key in wrong})
    if "nonce" in message:
        if not NONCE.fullmatch(message["nonce"]):
            raise Divergence(seq, "nonce", "32 lowercase hex digits", message["nonce"])
        if "to" not in message:
            raise Divergence(seq, "nonce", "a nonce only on a private message (one with to)", message["nonce"])
    elif "to" in message and seq > faithful_from:
        raise Divergence(seq, "nonce", "a nonce on a private message", None)


def chain_hashes(export: dict[str, Any]) -> list[str]:
    """Checks seqs, each message's shape and the chain, every link recomputed (a withheld
    message's from its given digest); returns the hash at every seq (index 0: genesis)."""
    channel_id = export["channel"]["id"]
    faithful_from = export["channel"]["faithful_from"]
    messages = export["messages"]
    head = export["head"]
    hashes = [GENESIS]
    for index, message in enumerate(messages):
        position = index + 1
        if not isinstance(message, dict) or message.get("seq") != position:
            found = message.get("seq") if isinstance(message, dict) else message
            raise Divergence(position, "seq", position, found)
        stored = message.get("hash")
        if not isinstance(stored, str) or not HASH.fullmatch(stored):
            raise Divergence(position, "hash", "sha256: and 64 lowercase hex digits", stored)
        if "withheld" in message:
            if message["withheld"] is not True or set(message) != set(WITHHELD_FIELDS):
                raise Divergence(position, "withheld", sorted(WITHHELD_FIELDS), {k: message[k] for k in sorted(message) if k != "hash"})
            given = message["digest"]
            if not isinstance(given, str) or not HASH.fullmatch(given):
                raise Divergence(position, "digest", "sha256: and 64 lowercase hex digits", given)
            computed = link_digest(hashes[-1], given, True)
        else:
            _check_message(message, position, faithful_from)
            try:
                computed = link(hashes[-1], channel_id, message)
            except (rfc8785.CanonicalizationError, UnicodeEncodeError, TypeError, OverflowError) as error:
                raise Divergence(position, "canonical", "JSON that RFC 8785 can canonicalize", str(error)) from None
        if computed != stored:
            raise Divergence(position, "hash", computed, stored)
        hashes.append(stored)
    if len(messages) < head["seq"]:
        raise Divergence(len(messages) + 1, "missing", f"messages up to head seq {head['seq']}", f"{len(messages)} messages")
    if len(messages) > head["seq"]:
        raise Divergence(head["seq"] + 1, "beyond head", f"no message after head seq {head['seq']}", f"{len(messages)} messages")
    if hashes[-1] != head["head"]:
        raise Divergence(head["seq"], "head", hashes[-1], head["head"])
    return hashes


def _all_notices(messages: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [
        message
        for message in messages
        if not message.get("withheld")
        and message.get("kind") == "system"
        and isinstance(message.get("data"), dict)
        and message["data"].get("event") == event
    ]


def _notices(messages: list[dict[str, Any]], event: str, slot: str) -> list[dict[str, Any]]:
    return [message for message in _all_notices(messages, event) if message["data"].get("slot") == slot]


def check_header(export: dict[str, Any]) -> None:
    """The channel header against the notices: seq 1 is the created notice with the header's
    slots and (when it carries one) reveal_private, and then faithful_from is 0; the name is the
    last one a created or renamed notice gave; closed says whether a closed notice exists."""
    channel = export["channel"]
    messages = export["messages"]
    first = messages[0] if messages else None
    if (
        not isinstance(first, dict)
        or first.get("withheld")
        or first.get("kind") != "system"
        or not isinstance(first.get("data"), dict)
        or first["data"].get("event") != "created"
    ):
        raise Divergence(1, "created", "the created notice", first)
    created = first["data"]
    if created.get("slots") != channel["slots"]:
        raise Divergence(1, "slots", channel["slots"], created.get("slots"))
    if "reveal_private" in created:
        if created["reveal_private"] != channel["reveal_private"]:
            raise Divergence(1, "reveal_private", created["reveal_private"], channel["reveal_private"])
        if channel["faithful_from"] != 0:
            raise Divergence(1, "faithful_from", 0, channel["faithful_from"])
    naming = [first] + _all_notices(messages, "renamed")
    named = max(naming, key=lambda message: message["seq"])
    if named["data"].get("name") != channel["name"]:
        raise Divergence(named["seq"], "name", named["data"].get("name"), channel["name"])
    closes = _all_notices(messages, "closed")
    if bool(closes) != channel["closed"]:
        raise Divergence(closes[0]["seq"] if closes else None, "closed", bool(closes), channel["closed"])


def check_bot(export: dict[str, Any], bot: Any) -> None:
    channel_id = export["channel"]["id"]
    messages = export["messages"]
    if not isinstance(bot, dict) or set(bot) != set(BOT_FIELDS):
        found = sorted(bot) if isinstance(bot, dict) else bot
        raise Divergence(None, "bot", f"a bot with fields {sorted(BOT_FIELDS)}", found)
    slot, at = bot["slot"], bot["attached_seq"]
    if not isinstance(slot, str) or not _is_int(at):
        raise Divergence(None, "bot", "a slot and an attached_seq", [slot, at])
    if not isinstance(bot["ended"], bool) or not isinstance(bot["disabled"], bool):
        raise Divergence(at, "bot", "ended and disabled true or false", [bot["ended"], bot["disabled"]])
    if f"bot:{slot}" not in export["channel"]["slots"]:
        raise Divergence(at, "bot slot", f"one of the bot slots in {export['channel']['slots']}", slot)
    if not isinstance(bot["source"], str):
        raise Divergence(at, "code_hash", "the bot's source", bot["source"])
    if sha256_tagged(bot["source"].encode("utf-8")) != bot["code_hash"]:
        raise Divergence(at, "code_hash", sha256_tagged(bot["source"].encode("utf-8")), bot["code_hash"])
    try:
        params_hash = sha256_tagged(jcs(bot["params"]))
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, TypeError, OverflowError) as error:
        raise Divergence(at, "params_hash", "params that RFC 8785 can canonicalize", str(error)) from None
    if params_hash != bot["params_hash"]:
        raise Divergence(at, "params_hash", params_hash, bot["params_hash"])

    attached = _notices(messages, "bot_attached", slot)
    if not attached:
        raise Divergence(at, "bot_attached", f"a bot_attached notice for {slot}", None)
    latest = attached[-1]
    if latest["seq"] != at:
        raise Divergence(at, "attached_seq", latest["seq"], at)
    announced = {field: latest["data"].get(field) for field in BOT_CHECKED}
    listed = {field: bot[field] for field in BOT_CHECKED}
    if announced != listed:
        raise Divergence(at, "bot_attached", announced, listed)

    for field, event in (("ended", "bot_run_ended"), ("disabled", "bot_disabled")):
        after = [notice["seq"] for notice in _notices(messages, event, slot) if notice["seq"] > at]
        if bool(after) != bot[field]:
            raise Divergence(after[0] if after else at, field, bool(after), bot[field])

    reveals = [notice for notice in _notices(messages, "bot_seed_revealed", slot) if notice["seq"] > at]
    seed = bot["seed"]
    if seed is None:
        if reveals:
            raise Divergence(reveals[0]["seq"], "seed", reveals[0]["data"].get("seed"), None)
        return
    if not isinstance(seed, str) or not SEED.fullmatch(seed):
        raise Divergence(at, "seed", "64 lowercase hex digits", seed)
    if seed_commitment(channel_id, slot, seed) != bot["seed_commitment"]:
        raise Divergence(at, "seed", bot["seed_commitment"], seed_commitment(channel_id, slot, seed))
    if not reveals:
        raise Divergence(at, "seed_revealed", f"a bot_seed_revealed notice for {slot}", None)
    if reveals[0]["data"].get("seed") != seed:
        raise Divergence(reveals[0]["seq"], "seed_revealed", seed, reveals[0]["data"].get("seed"))


def check_saved_heads(export: dict[str, Any], keys: dict[str, bytes], hashes: list[str], saved_heads: Iterable[Any]) -> None:
    channel_id = export["channel"]["id"]
    heads = list(saved_heads)
    for head in heads:
        seq = head.get("seq") if isinstance(head, dict) and _is_int(head.get("seq")) else None
        check_head_shape(head, seq, "saved head")
        check_signature(head, keys, head["seq"], prefix="saved head ")
        if head["channel"] != channel_id:
            raise Divergence(head["seq"], "saved head channel", channel_id, head["channel"])
    # Two validly signed heads that disagree at one seq are the server's own proof of a rewrite.
    seen: dict[int, str] = {export["head"]["seq"]: export["head"]["head"]}
    for head in heads:
        earlier = seen.setdefault(head["seq"], head["head"])
        if earlier != head["head"]:
            raise Divergence(head["seq"], "rewrite proven", earlier, head["head"])
    for head in heads:
        if head["seq"] >= len(hashes):
            raise Divergence(head["seq"], "saved head beyond the export", f"a seq up to {len(hashes) - 1}", head["seq"])
        if hashes[head["seq"]] != head["head"]:
            raise Divergence(head["seq"], "saved head off the chain", hashes[head["seq"]], head["head"])


def check_shape(export: Any) -> None:
    """The export's own fields and the header's, each known and of its type (verifiers refuse
    fields they do not know)."""
    if not isinstance(export, dict) or export.get("format") != FORMAT:
        raise Divergence(None, "format", FORMAT, export.get("format") if isinstance(export, dict) else export)
    if export.get("version") not in VERSIONS:
        raise Divergence(None, "version", list(VERSIONS), export.get("version"))
    if set(export) != set(EXPORT_FIELDS):
        raise Divergence(None, "fields", sorted(EXPORT_FIELDS), sorted(export))
    if not _is_int(export["exported_at"]):
        raise Divergence(None, "exported_at", "milliseconds since the epoch", export["exported_at"])
    channel = export["channel"]
    if not isinstance(channel, dict) or set(channel) != set(CHANNEL_FIELDS):
        found = sorted(channel) if isinstance(channel, dict) else channel
        raise Divergence(None, "channel", f"a channel with fields {sorted(CHANNEL_FIELDS)}", found)
    if (
        not isinstance(channel["id"], str)
        or not isinstance(channel["name"], str)
        or not isinstance(channel["slots"], list)
        or not all(isinstance(slot, str) for slot in channel["slots"])
        or not isinstance(channel["closed"], bool)
        or not _is_int(channel["faithful_from"])
        or channel["faithful_from"] < 0
        or not isinstance(channel["reveal_private"], bool)
    ):
        raise Divergence(None, "channel", "strings, a list of slots, true or false, a seq", channel)
    viewer = export["viewer"]
    participant = (
        isinstance(viewer, dict)
        and set(viewer) == {"slots"}
        and isinstance(viewer["slots"], list)
        and all(isinstance(slot, str) for slot in viewer["slots"])
    )
    if not participant and viewer != {"operator": True}:
        raise Divergence(None, "viewer", '{"slots": [...]} or {"operator": true}', viewer)
    if not isinstance(export["messages"], list):
        raise Divergence(None, "messages", "a list of messages", export["messages"])
    if not isinstance(export["bots"], list):
        raise Divergence(None, "bots", "a list of bots", export["bots"])


def verify(
    export: dict[str, Any],
    saved_heads: Iterable[dict[str, Any]] = (),
    trusted_keys: Iterable[dict[str, Any]] | None = None,
) -> None:
    """Raises Divergence on the first problem. `saved_heads`: signed heads kept from earlier
    answers. `trusted_keys`: the server's published keys; without them, the export's own list is
    used, which proves only that the export is consistent with itself."""
    check_shape(export)
    head = export["head"]
    check_head_shape(head, None, "head")
    keys = usable_keys(export["keys"], None if trusted_keys is None else list(trusted_keys))

    hashes = chain_hashes(export)
    if head["channel"] != export["channel"]["id"]:
        raise Divergence(head["seq"], "head.channel", export["channel"]["id"], head["channel"])
    check_signature(head, keys, head["seq"])
    check_attestations(export, keys)
    check_header(export)
    for bot in export["bots"]:
        check_bot(export, bot)
    check_saved_heads(export, keys, hashes, saved_heads)


def summary(export: dict[str, Any], saved_heads: int = 0) -> str:
    messages = export["messages"]
    withheld = sum(1 for message in messages if message.get("withheld"))
    head = export["head"]
    return (
        f"verified: channel {export['channel']['id']}, {len(messages)} messages ({withheld} withheld), "
        f"head {head['head']} at seq {head['seq']} signed by {head['key_id']}, "
        f"{len(export['bots'])} bots, {saved_heads} saved heads on the chain (bots not replayed)"
    )


def _load(path: str) -> Any:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Verify an mcp-multiplayer transcript export (no bot replay).")
    parser.add_argument("export")
    parser.add_argument("--head", action="append", default=[], help="a saved signed head (or a list of them)")
    parser.add_argument("--keys", help="the server's published keys (/.well-known/mcp-multiplayer-keys)")
    args = parser.parse_args(argv)
    try:
        export = _load(args.export)
        heads: list[Any] = []
        for path in args.head:
            loaded = _load(path)
            heads.extend(loaded if isinstance(loaded, list) else [loaded])
        trusted = None
        if args.keys:
            loaded = _load(args.keys)
            trusted = loaded["keys"] if isinstance(loaded, dict) else loaded
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"unreadable input: {error}", file=sys.stderr)
        return 2
    try:
        verify(export, heads, trusted)
    except Divergence as divergence:
        print(divergence)
        return 1
    print(summary(export, len(heads)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
