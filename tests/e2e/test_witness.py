"""The witness end to end: WitnessBot in a channel of two Python SDK clients asks the server to
fetch a page from a local HTTPS server signed by a test CA; both players see the same signed
record (`fetch_attested`) and the bot's summary; the transcript exports and verifies (the oracle
checks the record's signature from the documented format, `mcp-multiplayer verify` replays the
bot from the record without fetching again).

Hostile targets: private, link-local and metadata addresses, loopback on a server without the
operator's test flag, a redirect to a private address (recorded, never followed), a 50 MB
body (cut at the cap), a server that never answers (cut at the time cap).

Trusting the test CA and fetching from loopback take two operator flags, off by default:
`--fetch-trust-ca` and `--fetch-allow-loopback`.
"""

from __future__ import annotations

import datetime
import hashlib
import http.server
import ipaddress
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import transcript_oracle as oracle
from conftest import connect
from test_bots import system_event
from test_games import ALICE_MODE, BOB_MODE, BOT, open_table, operator_export, published_keys
from test_transcript import cli_verify

pytestmark = pytest.mark.anyio

PAGE = b"the sky is blue\n"
MAX_BYTES = 256 * 1024
TIMEOUT_MS = 2000


class Site:
    """A local HTTPS server with a certificate for localhost and 127.0.0.1 from a fresh CA."""

    def __init__(self, root: Path):
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e2e witness test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_path = root / "ca.pem"
        self.ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        chain = root / "chain.pem"
        chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
        key_path = root / "key.pem"
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        self.leaf_sha256 = hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
        self.requests: list[str] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                site.requests.append(self.path)
                if self.path == "/page":
                    self.send_response(200)
                    self.send_header("content-type", "text/plain")
                    self.send_header("content-length", str(len(PAGE)))
                    self.send_header("set-cookie", "session=not-recorded")
                    self.end_headers()
                    self.wfile.write(PAGE)
                elif self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("location", "https://10.0.0.1/admin")
                    self.send_header("content-length", "0")
                    self.end_headers()
                elif self.path == "/big":
                    total = 50 * 1024 * 1024
                    self.send_response(200)
                    self.send_header("content-length", str(total))
                    self.end_headers()
                    chunk = b"x" * 65536
                    try:
                        for _ in range(total // len(chunk)):
                            self.wfile.write(chunk)
                    except OSError:
                        pass
                elif self.path == "/never":
                    time.sleep(30)
                else:
                    self.send_response(404)
                    self.end_headers()

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key_path)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with tempfile.TemporaryDirectory(prefix="mcp-e2e-witness-") as root:
        site = Site(Path(root))
        yield site
        site.httpd.shutdown()


@pytest.fixture
def server(server_factory, site):
    """A server that trusts the test CA and may fetch from loopback: both only by flag."""
    return server_factory(
        "--rate-limit", "0",
        "--fetch-trust-ca", str(site.ca_path), "--fetch-allow-loopback",
        "--fetch-timeout-ms", str(TIMEOUT_MS), "--fetch-max-bytes", str(MAX_BYTES),
    )


@pytest.fixture
def default_server(server_factory, site):
    """A server as it starts without fetch flags (except trusting the CA, so that only the
    address rule can refuse)."""
    return server_factory("--rate-limit", "0", "--fetch-trust-ca", str(site.ca_path))


async def ask(table, url: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Alice asks the witness for `url`; returns the bot's `requested` post, the record and the
    bot's `attested` post, as Alice saw them."""
    mine = await table.post("alice", text=f"fetch {url}")
    requested = await table.bot("alice", "the requested post", after=mine["seq"], type="requested")
    assert requested["data"]["url"] == url and requested["data"]["by"] == "alice", requested
    assert requested["data"]["tag"] == f"req-{mine['seq']}", requested
    record = await table.expect("alice", "the fetch_attested notice", system_event("fetch_attested", slot=BOT),
                                after=requested["seq"], timeout_s=30)
    attested = await table.bot("alice", "the attested post", after=record["seq"], type="attested", timeout_s=30)
    assert attested["data"]["seq"] == record["seq"], (attested, record)
    # The record names the event that asked (Alice's message) and the bot's tag for it.
    assert (record["data"]["requested_by"], record["data"]["tag"]) == (mine["seq"], requested["data"]["tag"]), record
    return requested, record["data"], attested["data"]


async def test_both_players_see_the_same_signed_record_and_the_transcript_verifies(server, site):
    async with connect(server, "alice", ALICE_MODE) as alice, connect(server, "bob", BOB_MODE) as bob:
        table = await open_table(alice, bob, "witness", {})
        requested, record, attested = await ask(table, site.url("/page"))
        att = record["attestation"]
        assert att["url"] == site.url("/page") and att["error"] is None, att
        assert att["status"] == 200 and att["address"] == f"127.0.0.1:{site.port}", att
        assert att["headers"].get("content-type") == "text/plain" and "set-cookie" not in att["headers"], att
        assert att["body"]["text"] == PAGE.decode() and att["body"]["sha256"] == hashlib.sha256(PAGE).hexdigest()
        assert att["tls"]["version"].startswith("TLSv1_") and att["tls"]["server_name"] == "localhost", att["tls"]
        assert att["tls"]["chain"][0]["sha256"] == site.leaf_sha256, att["tls"]["chain"]
        assert (attested["status"], attested["body_sha256"], attested["excerpt"]) == (200, hashlib.sha256(PAGE).hexdigest(), PAGE.decode())
        # Bob sees the same record, byte for byte.
        bobs = await table.expect("bob", "the fetch_attested notice", system_event("fetch_attested", slot=BOT), timeout_s=30)
        assert bobs["data"] == record, (bobs, record)
        assert site.requests.count("/page") == 1

        await alice.call("update_channel", channel_id=table.channel_id, op="close")
        exports = {who: await player.call("export_transcript", channel_id=table.channel_id)
                   for who, player in table.players.items()}
    keys = published_keys(server)
    full = operator_export(server, table.channel_id)
    for who, export in [*exports.items(), ("the operator", full)]:
        oracle.verify(export, trusted_keys=keys["keys"])
        done = cli_verify(export)
        assert done.returncode == 0 and done.stdout.startswith("verified:"), f"{who}: {done.stdout}\n{done.stderr}"
        assert "bot witness in referee:" in done.stdout, done.stdout
    assert site.requests.count("/page") == 1, "verifying replayed the record and fetched nothing"

    # A record changed after signing: the oracle's own signature check refuses it.
    forged = dict(full)
    forged["messages"] = [dict(m) for m in full["messages"]]
    index = next(i for i, m in enumerate(forged["messages"]) if (m.get("data") or {}).get("event") == "fetch_attested")
    data = forged["messages"][index]["data"] = {**forged["messages"][index]["data"]}
    data["attestation"] = {**data["attestation"], "status": 404}
    with pytest.raises(oracle.Divergence):
        oracle.check_attestations(forged, oracle.usable_keys(forged["keys"], keys["keys"]))


async def test_hostile_targets_are_refused_or_cut_and_recorded(server, site):
    async with connect(server, "alice", ALICE_MODE) as alice, connect(server, "bob", BOB_MODE) as bob:
        table = await open_table(alice, bob, "witness", {})

        for url in ["https://10.0.0.1/", "https://169.254.169.254/latest/meta-data/", "https://[fd00:ec2::254]/",
                    "https://192.168.1.1/", "https://[fe80::1]/", "https://100.64.0.1/"]:
            _, record, attested = await ask(table, url)
            att = record["attestation"]
            assert att["error"]["code"] == "ADDRESS_REFUSED" and att["address"] is None, (url, att)
            assert attested["ok"] is False and attested["error"]["code"] == "ADDRESS_REFUSED", attested

        # A redirect to a private address is recorded with its location, and not followed.
        _, record, _ = await ask(table, site.url("/redirect"))
        att = record["attestation"]
        assert (att["status"], att["error"], att["headers"].get("location")) == (302, None, "https://10.0.0.1/admin"), att

        # 50 MB: cut at the cap, with what was read hashed and the first 8 KiB kept.
        started = time.monotonic()
        _, record, _ = await ask(table, site.url("/big"))
        att = record["attestation"]
        assert att["error"]["code"] == "TOO_LARGE" and att["body"]["bytes"] == MAX_BYTES, att["error"]
        assert att["body"]["sha256"] == hashlib.sha256(b"x" * MAX_BYTES).hexdigest()
        assert len(att["body"]["text"]) == 8 * 1024 and att["body"]["truncated"] is True
        assert time.monotonic() - started < 20

        # A server that never answers: cut at the time cap.
        started = time.monotonic()
        _, record, _ = await ask(table, site.url("/never"))
        assert record["attestation"]["error"]["code"] == "TIMEOUT", record["attestation"]
        assert TIMEOUT_MS / 1000 - 0.5 < time.monotonic() - started < 20

        # Not an https URL: the bot refuses it privately and asks for nothing.
        mine = await table.post("alice", text="fetch http://example.com/")
        refusal = await table.bot("alice", "BAD_URL", after=mine["seq"], to="alice", code="BAD_URL")
        assert refusal["data"]["type"] == "violation", refusal


async def test_loopback_is_refused_without_the_operators_flag(default_server, site):
    seen = len(site.requests)
    async with connect(default_server, "alice", ALICE_MODE) as alice, connect(default_server, "bob", BOB_MODE) as bob:
        table = await open_table(alice, bob, "witness", {})
        for host in ["localhost", "127.0.0.1", "[::1]"]:
            _, record, _ = await ask(table, site.url("/page", host))
            assert record["attestation"]["error"]["code"] == "ADDRESS_REFUSED", record["attestation"]
    assert len(site.requests) == seen, "nothing reached the local server"
