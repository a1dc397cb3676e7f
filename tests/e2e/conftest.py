"""Fixtures for the end-to-end suite: the real `mcp-multiplayer` binary, driven by the official
Python MCP SDK and by plain HTTP.

- `server`: a fresh server (rate limit off) on port 0 with its own temporary data directory.
- `server_factory`: start servers with other flags (e.g. the default rate limit).
- `mode`: every test that takes it runs once per MCP protocol mode.
- `connect(server, token, mode)`: an MCP session for one bearer token, as a `Player`.
- `Player.call` returns a tool's structured content; `Player.error` expects a refusal and
  returns its parsed code, message and hint, after checking the error format.
- `rest(server, token)`: a small REST client returning (status, json, headers).

With `MCP_E2E_BACKEND=postgres` every server gets a fresh schema of the PostgreSQL database
that `MCP_TEST_POSTGRES_URL` names (through `psql`) instead of a SQLite file: CI runs the suite
once per backend. `server.database_args` are the flags that name the database to other
commands (`token`, `keys`, `export`), and `server.query(sql)` reads it directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

try:  # Python 3.10: the backport anyio depends on there.
    BaseExceptionGroup
except NameError:  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

WORKSPACE = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("MCP_MULTIPLAYER_BIN") or WORKSPACE / "target" / "debug" / "mcp-multiplayer")

MODES = ["legacy", "2026-07-28"]
# The line `serve` prints on stdout once it listens (documented where main.rs prints it); read
# here only, by `ServerProcess.start`.
LISTENING = re.compile(r"mcp-multiplayer listening on (http://127\.0\.0\.1:(\d+)) \(MCP endpoint (\S+)\)")
START_TIMEOUT_S = 20.0
BACKEND = os.environ.get("MCP_E2E_BACKEND", "sqlite")
assert BACKEND in ("sqlite", "postgres"), f"MCP_E2E_BACKEND={BACKEND!r}: use sqlite or postgres"
POSTGRES = BACKEND == "postgres"
STOP_TIMEOUT_S = 8.0


# ---------------------------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------------------------


class ServerProcess:
    """One `mcp-multiplayer serve` process; `restart()` starts a new one on the same data dir."""

    def __init__(self, data_dir: Path, extra_args: list[str], database_url: str | None = None):
        self.data_dir = data_dir
        self.extra_args = extra_args
        if database_url is None and POSTGRES:
            database_url = postgres_schema()
        self.database_url = database_url
        self.database_args = ["--database-url", database_url] if database_url else ["--data-dir", str(data_dir)]
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.mcp_url = ""
        self.port = 0
        self.starts = 0
        self.log_path = data_dir.parent / "server.log"

    def start(self, port: int = 0) -> None:
        """Starts the server on `port` (0: any free port) and waits until /healthz answers."""
        assert self.process is None, "already running"
        if not BINARY.exists():
            raise RuntimeError(f"server binary {BINARY} not found; run `cargo build -p mcp-multiplayer`")
        self.starts += 1
        log = open(self.log_path, "a", encoding="utf-8")
        log.write(f"\n===== start #{self.starts} =====\n")
        log.flush()
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info,sqlx=warn,rmcp=warn")
        env["NO_COLOR"] = "1"  # plain server logs in failure reports
        self.process = subprocess.Popen(
            [
                str(BINARY),
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                *self.database_args,
                # Most suites test channels, not sign-in: the dev authenticator unless told.
                *([] if "--auth" in self.extra_args else ["--auth", "dev"]),
                *self.extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        log.close()
        lines: queue.Queue[str | None] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None

        def pump() -> None:
            # Keeps reading so the pipe never fills; the first matching line is all we need.
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                raise RuntimeError(f"the server printed no listening line in {START_TIMEOUT_S} s\n{self.log_tail()}")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self.process.wait()
                self.process = None
                raise RuntimeError(f"the server exited with {code} before listening\n{self.log_tail()}")
            match = LISTENING.search(line)
            if match:
                self.base_url, self.port, self.mcp_url = match.group(1), int(match.group(2)), match.group(3)
                break
        assert self.port != 0, "the server reported port 0"
        assert port in (0, self.port), f"asked for port {port}, got {self.port}"
        assert self.mcp_url == f"{self.base_url}/mcp"
        self._wait_healthy(deadline)

    def _wait_healthy(self, deadline: float) -> None:
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                response = httpx2.get(f"{self.base_url}/healthz", timeout=2.0)
                if response.status_code == 200 and response.json().get("status") == "ok":
                    return
                last_error = RuntimeError(f"healthz answered {response.status_code}: {response.text}")
            except httpx2.HTTPError as error:
                last_error = error
            time.sleep(0.05)
        self._kill()
        raise RuntimeError(f"/healthz never answered ok: {last_error}\n{self.log_tail()}")

    def stop(self) -> int:
        """SIGTERM, then insist that the process exits on its own within STOP_TIMEOUT_S."""
        process = self.process
        assert process is not None, "not running"
        self.process = None
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"the server did not exit within {STOP_TIMEOUT_S} s of SIGTERM\n{self.log_tail()}")
        return code

    def restart(self, same_port: bool = True) -> None:
        """Stops the server (SIGTERM, clean exit required) and starts a new process on the same
        data directory, by default on the same port so that open clients can carry on."""
        code = self.stop()
        assert code == 0, f"the server exited with {code} after SIGTERM\n{self.log_tail()}"
        self.start(self.port if same_port else 0)

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as in a crash. `start(port)` brings it back."""
        assert self.process is not None, "not running"
        self._kill()

    def waiting_syncs(self) -> int:
        """How many syncs are waiting now, by /healthz."""
        return httpx2.get(f"{self.base_url}/healthz", timeout=5.0).json()["waiting_syncs"]

    def wait_for_waiting_syncs(self, expected: int, timeout_s: float = 10.0) -> None:
        """Returns once /healthz counts `expected` waiting syncs. Each has then read the channel
        and subscribed to it, so a post made now wakes it; a sleep only made that likely, and a
        post that won the race was answered at once, proving nothing."""
        deadline = time.monotonic() + timeout_s
        while (waiting := self.waiting_syncs()) != expected:
            assert time.monotonic() < deadline, f"{waiting} waiting syncs after {timeout_s} s, not {expected}"
            time.sleep(0.01)

    async def parked(self, expected: int = 1) -> None:
        """`wait_for_waiting_syncs` from async code, without blocking the event loop."""
        await anyio.to_thread.run_sync(self.wait_for_waiting_syncs, expected)

    @property
    def running(self) -> bool:
        return self.process is not None

    def _kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        """Rows of `sql` read from the server's database, beside the server, as text."""
        if self.database_url is None:
            database = self.data_dir / "mcp-multiplayer.db"
            with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
                return [tuple(None if value is None else str(value) for value in row) for row in db.execute(sql)]
        return psql(self.database_url, sql)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "--- server log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])


def postgres_schema() -> str:
    """A fresh schema on the PostgreSQL server of `MCP_TEST_POSTGRES_URL`, as a database URL."""
    server = os.environ.get("MCP_TEST_POSTGRES_URL")
    assert server, "MCP_E2E_BACKEND=postgres needs MCP_TEST_POSTGRES_URL"
    # Named as the cargo tests name theirs, so that their sweep drops it an hour later.
    schema = f"test_{int(time.time())}_{os.urandom(6).hex()}"
    psql(server, f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in server else "?"
    return f"{server}{separator}options[search_path]={schema}"


def psql(url: str, sql: str) -> list[tuple[str | None, ...]]:
    """Runs `sql` with `psql` (libpq does not take sqlx's `options[...]` URL parameter, so the
    search path moves into PGOPTIONS), returning rows of text; NULL reads as None."""
    base, _, query = url.partition("?")
    env = dict(os.environ)
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        if key.startswith("options[") and key.endswith("]"):
            env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c {key[8:-1]}={value}".strip()
    result = subprocess.run(
        ["psql", base, "-X", "-q", "-A", "-t", "-F", "\t", "-P", "null=\\N", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 0, f"psql failed: {result.stderr}"
    return [
        tuple(None if value == "\\N" else value for value in line.split("\t"))
        for line in result.stdout.splitlines()
        if line
    ]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server_factory():
    """Starts servers with extra flags; every one still running is stopped (and must exit
    cleanly) at teardown."""
    started: list[ServerProcess] = []
    roots: list[tempfile.TemporaryDirectory[str]] = []

    def start(*extra_args: str, database_url: str | None = None) -> ServerProcess:
        """`database_url` shares another server's database (PostgreSQL: several instances)."""
        root = tempfile.TemporaryDirectory(prefix="mcp-e2e-")
        roots.append(root)
        server = ServerProcess(Path(root.name) / "data", list(extra_args), database_url)
        server.start()
        started.append(server)
        return server

    yield start

    for server in started:
        # Shown by pytest only when the test failed.
        print(f"server on port {server.port}:\n{server.log_tail(60)}")
    failures = []
    for server in started:
        if server.running:
            code = server.stop()
            if code != 0:
                failures.append(f"exit code {code} after SIGTERM\n{server.log_tail()}")
    for root in roots:
        root.cleanup()
    assert not failures, "\n".join(failures)


@pytest.fixture
def server(server_factory) -> ServerProcess:
    """A fresh server without the per-user rate limit, so tests can call freely."""
    return server_factory("--rate-limit", "0")


@pytest.fixture(params=MODES)
def mode(request) -> str:
    return request.param


# ---------------------------------------------------------------------------------------------
# MCP clients
# ---------------------------------------------------------------------------------------------


@dataclass
class ToolErrorInfo:
    code: str
    message: str
    hint: str


class ToolCallFailed(AssertionError):
    """A tool call that was expected to succeed returned isError."""

    def __init__(self, tool: str, info: ToolErrorInfo):
        super().__init__(f"{tool} failed: {info.code}: {info.message} (hint: {info.hint})")
        self.info = info


ERROR_TEXT = re.compile(r"([A-Z][A-Z_]*): (.+)\nHint: (.+)", re.DOTALL)


def parse_tool_error(result: Any) -> ToolErrorInfo:
    """Parses a refusal from its text and checks the documented error format.

    isError true; content[0] is "CODE: message\nHint: hint"; content[1] is the same as JSON
    {"error": {code, message, hint}}; no structuredContent (clients would validate it against
    the output schema).
    """
    assert result.is_error is True, f"expected an error result, got {result}"
    assert result.structured_content is None, f"errors carry no structuredContent: {result.structured_content}"
    assert len(result.content) == 2, f"expected two text blocks, got {result.content}"
    match = ERROR_TEXT.fullmatch(result.content[0].text)
    assert match, f"error text not shaped as 'CODE: message\\nHint: hint': {result.content[0].text!r}"
    info = ToolErrorInfo(*match.groups())
    body = json.loads(result.content[1].text)
    assert body == {"error": {"code": info.code, "message": info.message, "hint": info.hint}}, (body, info)
    return info


@dataclass
class HttpExchange:
    method: str
    path: str
    status: int
    headers: httpx2.Headers


class Player:
    """An MCP session for one bearer token. `http_log` records every HTTP response it got."""

    def __init__(self, client: Client, token: str, mode: str, http_log: list[HttpExchange]):
        self.client = client
        self.token = token
        self.mode = mode
        self.http_log = http_log

    async def raw(self, tool: str, args: dict[str, Any], **kwargs: Any):
        return await self.client.call_tool(tool, args, **kwargs)

    async def call(self, tool: str, /, **args: Any) -> dict[str, Any]:
        """Calls a tool that must succeed; returns its structured content."""
        result = await self.client.call_tool(tool, args)
        if result.is_error:
            raise ToolCallFailed(tool, parse_tool_error(result))
        assert result.structured_content is not None, f"{tool} returned no structured content"
        # The text content mirrors the structured content for clients that ignore the latter.
        assert result.content and json.loads(result.content[0].text) == result.structured_content
        return result.structured_content

    async def error(self, tool: str, /, **args: Any) -> ToolErrorInfo:
        """Calls a tool that must refuse; returns the parsed refusal."""
        result = await self.client.call_tool(tool, args)
        assert result.is_error, f"{tool}({args}) was expected to fail but returned {result.structured_content}"
        return parse_tool_error(result)

    async def code(self, tool: str, /, **args: Any) -> str:
        """The error code of a call that must refuse."""
        return (await self.error(tool, **args)).code


def http_client(token: str | None, log: list[HttpExchange] | None = None) -> httpx2.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    hooks: dict[str, list[Any]] = {}
    if log is not None:

        async def record(response: httpx2.Response) -> None:
            request = response.request
            log.append(HttpExchange(request.method, request.url.path, response.status_code, response.headers))

        hooks["response"] = [record]
    # Always an explicit timeout: the 5 s default would cut long-polls short.
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=120.0), event_hooks=hooks)


def leaf_exceptions(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaf_exceptions(inner)]
    return [error]


@contextlib.asynccontextmanager
async def connect(server: ServerProcess, token: str | None, mode: str) -> AsyncIterator[Player]:
    """Opens an MCP session as `token` (None: no Authorization header) in `mode`.

    A single failure raised inside the block (an assertion, typically) is re-raised as itself
    rather than inside anyio's exception groups, so pytest shows it plainly.
    """
    log: list[HttpExchange] = []
    try:
        async with http_client(token, log) as http:
            async with Client(
                streamable_http_client(server.mcp_url, http_client=http),
                mode=mode,
                read_timeout_seconds=60,
            ) as client:
                yield Player(client, token or "", mode, log)
    except BaseExceptionGroup as group:
        leaves = leaf_exceptions(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


async def eventually(probe, expected: Any, timeout_s: float = 3.0) -> Any:
    """Polls `await probe()` until it equals `expected` (for state the server records in the
    background, such as read progress); returns the last value seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value == expected or time.monotonic() > deadline:
            return value
        await anyio.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# REST
# ---------------------------------------------------------------------------------------------


class Rest:
    """Synchronous REST calls as one bearer token; each returns (status, json body, headers)."""

    def __init__(self, server: ServerProcess, token: str | None):
        self.base = f"{server.base_url}/api"
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        self.http = httpx2.Client(headers=headers, timeout=httpx2.Timeout(30.0, read=120.0))

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, httpx2.Headers]:
        response = self.http.request(method, f"{self.base}{path}", **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return response.status_code, body, response.headers

    def get(self, path: str, **kwargs: Any):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any):
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def rest():
    clients: list[Rest] = []

    def make(server: ServerProcess, token: str | None) -> Rest:
        client = Rest(server, token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def assert_error_body(body: Any, code: str) -> dict[str, str]:
    """The REST error shape: {"error": {"code", "message", "hint"}}."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "hint"}, error
    assert error["code"] == code, error
    assert error["message"] and error["hint"], error
    return error


# ---------------------------------------------------------------------------------------------
# Channel set-up shortcuts
# ---------------------------------------------------------------------------------------------

CHANNEL_ID = re.compile(r"ch_[0-9a-f]{24}")


def invite_for(created: dict[str, Any], slot: str) -> str:
    """The invite code that create_channel returned for `slot`."""
    codes = [invite["code"] for invite in created["invites"] if invite["slot"] == slot]
    assert len(codes) == 1, f"no single invite for {slot}: {created['invites']}"
    return codes[0]


async def create_with(owner: Player, slots: list[str], *players: tuple[str, Player], name: str = "e2e") -> dict[str, Any]:
    """`owner` creates a channel with `slots`; each (slot, player) pair then joins that slot.
    Returns create_channel's output."""
    created = await owner.call("create_channel", name=name, slots=slots)
    for slot, player in players:
        joined = await player.call("join_channel", code=invite_for(created, slot))
        assert joined["your_seat"]["slot"] == slot
    return created


def create_personal_token(server, name: str, *extra: str) -> str:
    """`mcp-multiplayer token create` against `server`'s database, beside it running."""
    result = subprocess.run(
        [str(BINARY), "token", "create", "--name", name, *server.database_args, *extra],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    token = result.stdout.strip()
    assert token.startswith("mcp_pat_"), result
    assert token not in result.stderr
    return token
