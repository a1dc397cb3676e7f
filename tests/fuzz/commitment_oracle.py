"""The commitment and chain encodings, from docs/bot-api.md ("Commitments") and
docs/transcript.md alone, in the standard library only: the oracle the Rust fuzz target
`fuzz_commitment` (crates/bots/tests/it) checks the server's encoders against.

Reads JSON lines on stdin, one case each, and writes one JSON line per case:

    {"commit": {"channel", "slot", "value", "salt" (hex)}}  ->  {"commitment": "sha256:..."}
    {"link": {"channel", "prev", "message"}}                 ->  {"canonical", "digest", "hash"}

`message` is a message as an export shows it, without `hash`. RFC 8785 (JCS) is written here
too, numbers as ECMAScript prints doubles, so the cross-check covers the canonicalizer as well.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from typing import Any

COMMIT_LABEL = b"mcp-multiplayer/commit/v1"


def sha256_tagged(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def commitment(channel: str, slot: str, value: str, salt: bytes) -> str:
    """SHA-256 over each field prefixed by its 8-byte big-endian length."""
    fields = [COMMIT_LABEL, channel.encode("utf-8"), slot.encode("utf-8"), value.encode("utf-8"), salt]
    return sha256_tagged(b"".join(struct.pack(">Q", len(field)) + field for field in fields))


def es_number(x: float) -> str:
    """ECMAScript's Number.prototype.toString for a finite double (ECMA-262 Number::toString),
    which RFC 8785 section 3.2.2.3 prescribes. repr() gives the shortest round-tripping digits."""
    if x == 0:
        return "0"
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("JCS has no NaN or infinity")
    sign = "-" if x < 0 else ""
    mantissa, _, exponent = repr(abs(x)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or 0)  # the value is 0.digits * 10^point
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        head = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{head}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


def jcs(value: Any) -> str:
    """RFC 8785: no whitespace, object keys sorted by their UTF-16 code units, strings with only
    the escapes JSON requires, numbers as doubles."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return es_number(float(value))
    if isinstance(value, float):
        return es_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(jcs(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: key.encode("utf-16-be"))
        return "{" + ",".join(jcs(key) + ":" + jcs(value[key]) for key in keys) + "}"
    raise TypeError(f"not JSON: {value!r}")


def link(channel: str, prev: str, message: dict[str, Any]) -> dict[str, str]:
    canonical = jcs({**message, "channel": channel})
    digest = sha256_tagged(canonical.encode("utf-8"))
    scope = "private" if "to" in message else "public"
    return {"canonical": canonical, "digest": digest, "hash": sha256_tagged(f"{prev}\n{digest}\n{scope}".encode("ascii"))}


def answer(case: dict[str, Any]) -> dict[str, str]:
    if "commit" in case:
        c = case["commit"]
        return {"commitment": commitment(c["channel"], c["slot"], c["value"], bytes.fromhex(c["salt"]))}
    c = case["link"]
    return link(c["channel"], c["prev"], c["message"])


def main() -> None:
    out = sys.stdout
    for line in sys.stdin:
        out.write(json.dumps(answer(json.loads(line)), ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
