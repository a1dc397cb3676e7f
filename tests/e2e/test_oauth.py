"""OAuth 2.1: the official Python SDK signs in through our authorization server (auto approval),
two sign-ins are two principals, and every refusal the issue lists gets its OAuth error:
missing PKCE, wrong verifier, `plain`, redirect mismatch, unknown client, wrong audience,
expired and revoked tokens, refresh-token reuse, replayed codes. Client ID metadata documents
are served from loopback (a test-only server switch allows plain HTTP there). The prototype's
`/oauth/...` paths answer like the modern ones, the issuer never follows the request's Host, and
no response carries a principal id, another's token or a stored hash."""

from __future__ import annotations

import base64
import hashlib
import html
import http.server
import json
import re
import secrets
import subprocess
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest

from conftest import BINARY, connect, create_personal_token, leaf_exceptions
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

pytestmark = pytest.mark.anyio

REDIRECT = "http://127.0.0.1:9/callback"


@pytest.fixture
def oauth(server_factory):
    return server_factory("--auth", "oauth", "--approval", "auto")


# ---------------------------------------------------------------------------------------------
# Helpers: a hand-driven client, to reach every refusal
# ---------------------------------------------------------------------------------------------


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class Flow:
    """A raw OAuth client against one server. `endpoints` is where the OAuth endpoints are:
    "" for `/register`, `/authorize`, `/token`, `/revoke`, or the prototype's "/oauth"."""

    def __init__(self, server, endpoints: str = ""):
        self.base = server.base_url
        self.endpoints = f"{server.base_url}{endpoints}"
        self.http = httpx2.Client(timeout=10.0, follow_redirects=False)

    def register(self, redirect_uris=(REDIRECT,), method: str = "none", **extra) -> dict:
        response = self.http.post(
            f"{self.endpoints}/register",
            json={"redirect_uris": list(redirect_uris), "client_name": "Test client", "token_endpoint_auth_method": method, **extra},
        )
        assert response.status_code == 201, response.text
        return response.json()

    def authorize(self, client_id: str, challenge: str | None, redirect_uri: str = REDIRECT, **overrides) -> httpx2.Response:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": "st4te",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": f"{self.base}/mcp",
            **overrides,
        }
        params = {key: value for key, value in params.items() if value is not None}
        return self.http.get(f"{self.endpoints}/authorize", params=params)

    def code(self, client_id: str, challenge: str, redirect_uri: str = REDIRECT, **overrides) -> str:
        response = self.authorize(client_id, challenge, redirect_uri, **overrides)
        query = redirect_query(response)
        assert "code" in query, query
        assert query["state"] == "st4te" and query["iss"] == self.base, query
        return query["code"]

    def token(self, form: dict, **kwargs) -> httpx2.Response:
        return self.http.post(f"{self.endpoints}/token", data=form, **kwargs)

    def refresh(self, client_id: str, refresh_token: str, **extra) -> httpx2.Response:
        return self.token({"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token, **extra})

    def revoke(self, client_id: str, token: str, **extra) -> httpx2.Response:
        return self.http.post(f"{self.endpoints}/revoke", data={"client_id": client_id, "token": token, **extra})

    def exchange(self, client_id: str, code: str, verifier: str, redirect_uri: str = REDIRECT, **extra) -> httpx2.Response:
        form = {"grant_type": "authorization_code", "client_id": client_id, "code": code, "code_verifier": verifier, "redirect_uri": redirect_uri, **extra}
        return self.token(form)

    def sign_in(self, **register_extra) -> tuple[dict, dict]:
        """Registers, authorizes and exchanges: (client, token response)."""
        client = self.register(**register_extra)
        verifier, challenge = pkce()
        response = self.exchange(client["client_id"], self.code(client["client_id"], challenge), verifier)
        assert response.status_code == 200, response.text
        return client, response.json()

    def api(self, token: str, path: str = "/api/channels", method: str = "GET", **kwargs) -> httpx2.Response:
        return self.http.request(method, f"{self.base}{path}", headers={"Authorization": f"Bearer {token}"}, **kwargs)


def redirect_query(response: httpx2.Response) -> dict[str, str]:
    assert response.status_code in (302, 303), f"expected a redirect, got {response.status_code}: {response.text[:300]}"
    location = response.headers["location"]
    assert location.startswith(REDIRECT) or location.startswith("http://127.0.0.1"), location
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def assert_oauth_error(response: httpx2.Response, error: str, status: int = 400) -> None:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    body = response.json()
    assert body["error"] == error, body
    assert body["error_description"], body
    assert response.headers["cache-control"] == "no-store"


@pytest.fixture
def flow(oauth):
    client = Flow(oauth)
    yield client
    client.http.close()


# ---------------------------------------------------------------------------------------------
# The official SDK, end to end
# ---------------------------------------------------------------------------------------------


class MemoryStorage:
    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


def sdk_provider(server, storage: MemoryStorage) -> OAuthClientProvider:
    """The SDK's provider, with a headless browser: the authorization URL is fetched without
    following the redirect, and the callback parameters are read off the Location header."""
    captured: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        async with httpx2.AsyncClient(follow_redirects=False, timeout=10.0) as http:
            response = await http.get(url)
        captured.update(redirect_query(response))

    async def callback_handler() -> AuthorizationCodeResult:
        assert "code" in captured, f"no code in the redirect: {captured}"
        return AuthorizationCodeResult(code=captured["code"], state=captured.get("state"), iss=captured.get("iss"))

    metadata = OAuthClientMetadata(
        client_name="pytest SDK client",
        redirect_uris=["http://127.0.0.1:9/callback"],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(server.mcp_url, metadata, storage, redirect_handler, callback_handler)


async def test_the_python_sdk_signs_in_and_two_sign_ins_are_two_players(oauth, mode):
    alice_storage, bob_storage = MemoryStorage(), MemoryStorage()
    async with (
        httpx2.AsyncClient(auth=sdk_provider(oauth, alice_storage), timeout=httpx2.Timeout(30.0, read=120.0)) as alice_http,
        httpx2.AsyncClient(auth=sdk_provider(oauth, bob_storage), timeout=httpx2.Timeout(30.0, read=120.0)) as bob_http,
    ):
        try:
            async with (
                Client(streamable_http_client(oauth.mcp_url, http_client=alice_http), mode=mode) as alice,
                Client(streamable_http_client(oauth.mcp_url, http_client=bob_http), mode=mode) as bob,
            ):
                created = (await alice.call_tool("create_channel", {"name": "OAuth game", "slots": ["invite:a", "invite:b"]})).structured_content
                channel_id = created["channel"]["channel_id"]
                joined = await bob.call_tool("join_channel", {"code": created["invites"][0]["code"]})
                assert not joined.is_error, joined
                await alice.call_tool("post_message", {"channel_id": channel_id, "text": "hello over OAuth"})
                synced = (await bob.call_tool("sync_messages", {"channel_id": channel_id, "cursor": 0, "wait_ms": 0})).structured_content
        except BaseExceptionGroup as group:
            raise leaf_exceptions(group)[0] from None
    said = [message for message in synced["messages"] if message.get("text") == "hello over OAuth"]
    assert len(said) == 1, synced["messages"]
    alice_name = said[0]["from_name"]
    assert alice_name.startswith("guest-"), "auto approval names a fresh guest"
    holders = {slot["slot"]: slot["holder"] for slot in synced["channel"]["slots"]}
    assert holders["a"] == alice_name and holders["b"] != alice_name, holders
    # The tokens the SDK stored are ours: prefixed, opaque, with a refresh token.
    for storage in (alice_storage, bob_storage):
        assert storage.tokens.access_token.startswith("mcp_at_")
        assert storage.tokens.refresh_token.startswith("mcp_rt_")
        assert storage.client_info.client_id.startswith("mcpc_")


async def test_tokens_survive_a_restart(oauth, flow, mode):
    _, tokens = flow.sign_in()
    assert flow.api(tokens["access_token"]).status_code == 200
    oauth.restart()
    assert flow.api(tokens["access_token"]).status_code == 200, "a restart signs nobody out"
    async with connect(oauth, tokens["access_token"], mode) as player:
        listed = await player.call("list_channels")
        assert listed["channels"] == []


# ---------------------------------------------------------------------------------------------
# Discovery and the protected resource
# ---------------------------------------------------------------------------------------------


def test_metadata_points_clients_to_us(oauth, flow):
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        prm = flow.http.get(f"{oauth.base_url}{path}").json()
        assert prm["resource"] == f"{oauth.base_url}/mcp"
        assert prm["authorization_servers"] == [oauth.base_url]
        assert prm["scopes_supported"] == ["mcp:read", "mcp:write"]
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        meta = flow.http.get(f"{oauth.base_url}{path}").json()
        assert meta["issuer"] == oauth.base_url
        assert meta["code_challenge_methods_supported"] == ["S256"]
        assert "none" in meta["token_endpoint_auth_methods_supported"]
        assert meta["client_id_metadata_document_supported"] is True
        assert meta["authorization_response_iss_parameter_supported"] is True


def test_the_issuer_never_comes_from_the_requests_host(server_factory):
    """ARCHITECTURE.md: issuer and resource come from the configured public URL, never from a
    request. `--allowed-hosts '*'` lets a foreign Host past the Host check, so only that rule
    stands between the Host header and what clients are told to trust."""
    server = server_factory("--auth", "oauth", "--approval", "auto", "--allowed-hosts", "*")
    base = server.base_url
    foreign = "attacker.example"
    flow = Flow(server)
    flow.http.headers.update({"Host": foreign, "X-Forwarded-Host": foreign, "X-Forwarded-Proto": "https"})
    answers = []
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        answers.append(prm := flow.http.get(f"{base}{path}"))
        assert prm.status_code == 200, f"the foreign Host must be served, not refused: {prm.status_code}"
        assert prm.json()["resource"] == f"{base}/mcp"
        assert prm.json()["authorization_servers"] == [base]
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        answers.append(meta := flow.http.get(f"{base}{path}"))
        assert meta.status_code == 200
        meta = meta.json()
        assert meta["issuer"] == base
        for endpoint in ("authorization", "token", "registration", "revocation"):
            assert meta[f"{endpoint}_endpoint"].startswith(f"{base}/"), meta
    answers.append(refused := flow.http.post(f"{base}/mcp", json={}))
    assert refused.status_code == 401
    assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in refused.headers["www-authenticate"]
    # The authorization response's `iss` too (Flow.code checks it is the configured base).
    client = flow.register()["client_id"]
    _, challenge = pkce()
    flow.code(client, challenge)
    for answer in answers:
        assert foreign not in answer.text and foreign not in str(answer.headers), answer.url


def test_without_a_valid_token_the_resource_says_where_to_sign_in(oauth, flow):
    for path, method in (("/mcp", "POST"), ("/api/channels", "GET")):
        response = flow.http.request(method, f"{oauth.base_url}{path}", json={})
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert f'resource_metadata="{oauth.base_url}/.well-known/oauth-protected-resource/mcp"' in challenge
        assert 'scope="mcp:read mcp:write"' in challenge
        assert "error=" not in challenge, "no token is not an invalid token"
    for bad in ("mcp_at_" + "0" * 64, "mcp_rt_nope", "alice"):
        response = flow.api(bad)
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_read_only_personal_token_gets_insufficient_scope(oauth, flow):
    token = create_personal_token(oauth, "reader", "--read-only")
    assert flow.api(token).status_code == 200, "reading is allowed"
    response = flow.api(token, method="POST", json={"name": "x", "slots": ["invite:a"]})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "INSUFFICIENT_SCOPE"
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="mcp:read mcp:write"' in challenge
    # Over MCP too: a read-only tool passes, a writing one is refused at the HTTP layer.
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "create_channel", "arguments": {"name": "x", "slots": ["invite:a"]}}}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    refused = flow.http.post(f"{oauth.base_url}/mcp", json=rpc, headers=headers)
    assert refused.status_code == 403 and 'error="insufficient_scope"' in refused.headers["www-authenticate"]


def test_personal_tokens_are_listed_and_revoked_beside_a_running_server(oauth, flow):
    token = create_personal_token(oauth, "ci-bot", "--display-name", "CI bot")
    created = flow.api(token, method="POST", json={"name": "From CI", "slots": ["invite:ci"]})
    assert created.status_code in (200, 201), created.text
    listed = subprocess.run([str(BINARY), "token", "list", *oauth.database_args], capture_output=True, text=True, check=True)
    assert "ci-bot" in listed.stdout and "CI bot" in listed.stdout and token not in listed.stdout
    subprocess.run([str(BINARY), "token", "revoke", "ci-bot", *oauth.database_args], capture_output=True, check=True)
    # Another process revoked it: the README promises a running server refuses it within 5 s
    # (a check is remembered at most 5 s, and the last one was made before the revocation).
    deadline = time.monotonic() + 5
    while flow.api(token).status_code == 200:
        assert time.monotonic() < deadline, "the revoked token still works"
        time.sleep(0.25)
    assert flow.api(token).status_code == 401


# ---------------------------------------------------------------------------------------------
# Refusals at the authorization endpoint
# ---------------------------------------------------------------------------------------------


def test_missing_pkce_plain_and_malformed_challenges_are_refused(flow):
    client = flow.register()["client_id"]
    _, challenge = pkce()
    flow.code(client, challenge)  # approved once: from now on its errors go back to it
    missing = redirect_query(flow.authorize(client, None))
    assert missing["error"] == "invalid_request" and "PKCE" in missing["error_description"]
    assert missing["state"] == "st4te" and missing["iss"] == flow.base
    plain = redirect_query(flow.authorize(client, challenge, code_challenge_method="plain"))
    assert plain["error"] == "invalid_request" and "S256" in plain["error_description"]
    short = redirect_query(flow.authorize(client, "abc"))
    assert short["error"] == "invalid_request"
    wrong_type = redirect_query(flow.authorize(client, challenge, response_type="token"))
    assert wrong_type["error"] == "unsupported_response_type"
    scope = redirect_query(flow.authorize(client, challenge, scope="mcp:read admin"))
    assert scope["error"] == "invalid_scope"


def test_redirect_mismatch_and_unknown_clients_are_never_redirected(flow):
    client = flow.register()["client_id"]
    _, challenge = pkce()
    for response in (
        flow.authorize(client, challenge, redirect_uri="http://127.0.0.1:9/other"),
        flow.authorize(client, challenge, redirect_uri="https://evil.example/callback"),
        flow.authorize("mcpc_" + "0" * 32, challenge),
        flow.authorize("", challenge),
    ):
        assert response.status_code == 400, response.status_code
        assert "location" not in response.headers
        assert "text/html" in response.headers["content-type"]
        assert response.headers["x-frame-options"] == "DENY"


def test_a_foreign_resource_is_refused(flow):
    client = flow.register()["client_id"]
    _, challenge = pkce()
    # The canonical resource with a trailing slash, and the bare base URL, are ours.
    for resource in (f"{flow.base}/mcp/", flow.base, None):
        assert "code" in redirect_query(flow.authorize(client, challenge, resource=resource))
    refused = redirect_query(flow.authorize(client, challenge, resource="https://other.example/mcp"))
    assert refused["error"] == "invalid_target"


def test_errors_for_a_client_nobody_approved_are_shown_not_redirected(flow):
    """RFC 9700 §4.11: anyone may register any redirect URI, so until a person approved the
    client, redirecting its errors would make us an open redirector."""
    phish = "https://evil.example/phish"
    client = flow.register(redirect_uris=(phish,))["client_id"]
    _, challenge = pkce()
    for overrides in ({"response_type": "token"}, {"scope": "admin"}, {"code_challenge_method": "plain"}):
        response = flow.authorize(client, challenge, redirect_uri=phish, **overrides)
        assert response.status_code == 400, (overrides, response.status_code, response.headers.get("location"))
        assert "location" not in response.headers
        assert "text/html" in response.headers["content-type"]
        assert "evil.example" not in response.headers.get("refresh", "")
    assert "unsupported_response_type" in flow.authorize(client, challenge, redirect_uri=phish, response_type="token").text
    # Once approved (auto approval: a valid request), its errors are redirected as RFC 6749 says.
    approved = flow.authorize(client, challenge, redirect_uri=phish)
    assert approved.status_code == 302 and approved.headers["location"].startswith(f"{phish}?code=")
    refused = flow.authorize(client, challenge, redirect_uri=phish, response_type="token")
    assert refused.status_code == 302 and "error=unsupported_response_type" in refused.headers["location"]


def test_registration_caps_redirect_uris_and_metadata_size(flow):
    def register(body: dict) -> httpx2.Response:
        return flow.http.post(f"{flow.base}/register", json=body)

    five = [f"http://127.0.0.1:{port}/callback" for port in range(9001, 9006)]
    assert register({"redirect_uris": five, "token_endpoint_auth_method": "none"}).status_code == 201
    too_many = register({"redirect_uris": [*five, "http://127.0.0.1:9006/callback"]})
    assert_oauth_error(too_many, "invalid_redirect_uri")
    assert "at most 5" in too_many.json()["error_description"]
    long_uri = "https://a.example/" + "x" * 495
    assert len(long_uri) == 513
    assert_oauth_error(register({"redirect_uris": [long_uri]}), "invalid_redirect_uri")
    assert register({"redirect_uris": [long_uri[:-1]], "token_endpoint_auth_method": "none"}).status_code == 201
    padded = register({"redirect_uris": [REDIRECT], "software_statement": "x" * 9000})
    assert_oauth_error(padded, "invalid_client_metadata")
    assert "8192 bytes" in padded.json()["error_description"]
    assert_oauth_error(register({"redirect_uris": [REDIRECT], "client_name": "n" * 101}), "invalid_client_metadata")


def test_registration_refuses_unsafe_redirect_uris(flow):
    for uris in (["http://example.com/cb"], ["javascript:alert(1)"], [], ["https://a.example/cb#x"]):
        response = flow.http.post(f"{flow.base}/register", json={"redirect_uris": uris})
        assert_oauth_error(response, "invalid_redirect_uri")
    response = flow.http.post(f"{flow.base}/register", json={"redirect_uris": [REDIRECT], "grant_types": ["password"]})
    assert_oauth_error(response, "invalid_client_metadata")
    response = flow.http.post(f"{flow.base}/register", content=b"not json", headers={"content-type": "application/json"})
    assert_oauth_error(response, "invalid_client_metadata")


# ---------------------------------------------------------------------------------------------
# Refusals at the token endpoint
# ---------------------------------------------------------------------------------------------


def test_wrong_verifier_wrong_redirect_and_other_clients_get_invalid_grant(flow):
    client = flow.register()["client_id"]
    other = flow.register()["client_id"]
    verifier, challenge = pkce()
    wrong_verifier, _ = pkce()
    code = flow.code(client, challenge)
    assert_oauth_error(flow.exchange(client, code, wrong_verifier), "invalid_grant")
    code = flow.code(client, challenge)
    assert_oauth_error(flow.exchange(client, code, verifier, redirect_uri="http://127.0.0.1:9/other"), "invalid_grant")
    code = flow.code(client, challenge)
    assert_oauth_error(flow.exchange(other, code, verifier), "invalid_grant")
    code = flow.code(client, challenge)
    assert_oauth_error(flow.token({"grant_type": "authorization_code", "client_id": client, "code": code, "redirect_uri": REDIRECT}), "invalid_request")
    assert_oauth_error(flow.exchange("mcpc_" + "1" * 32, code, verifier), "invalid_client", status=401)
    assert_oauth_error(flow.token({"grant_type": "password", "client_id": client}), "unsupported_grant_type")
    assert_oauth_error(flow.http.post(f"{flow.base}/token", json={"grant_type": "authorization_code"}), "invalid_request")


def test_a_replayed_code_revokes_what_it_gave(flow):
    client = flow.register()["client_id"]
    verifier, challenge = pkce()
    code = flow.code(client, challenge)
    first = flow.exchange(client, code, verifier)
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    tokens = first.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert tokens["scope"] == "mcp:read mcp:write"
    assert flow.api(tokens["access_token"]).status_code == 200
    assert_oauth_error(flow.exchange(client, code, verifier), "invalid_grant")
    assert flow.api(tokens["access_token"]).status_code == 401, "the first exchange's tokens are revoked"
    refresh = flow.token({"grant_type": "refresh_token", "client_id": client, "refresh_token": tokens["refresh_token"]})
    assert_oauth_error(refresh, "invalid_grant")


def test_refresh_tokens_rotate_and_reuse_revokes_the_family(flow):
    client, tokens = flow.sign_in()
    client_id = client["client_id"]
    rotated = flow.token({"grant_type": "refresh_token", "client_id": client_id, "refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["refresh_token"] != tokens["refresh_token"] and new["access_token"] != tokens["access_token"]
    assert flow.api(new["access_token"]).status_code == 200
    reuse = flow.token({"grant_type": "refresh_token", "client_id": client_id, "refresh_token": tokens["refresh_token"]})
    assert_oauth_error(reuse, "invalid_grant")
    assert "revoked" in reuse.json()["error_description"]
    for token in (tokens["access_token"], new["access_token"]):
        assert flow.api(token).status_code == 401, "the whole family is revoked"
    after = flow.token({"grant_type": "refresh_token", "client_id": client_id, "refresh_token": new["refresh_token"]})
    assert_oauth_error(after, "invalid_grant")


def test_a_refresh_may_narrow_the_scope_but_never_widen_it(flow):
    client, tokens = flow.sign_in()
    client_id = client["client_id"]
    assert tokens["scope"] == "mcp:read mcp:write"
    narrowed = flow.refresh(client_id, tokens["refresh_token"], scope="mcp:read")
    assert narrowed.status_code == 200, narrowed.text
    reader = narrowed.json()
    assert reader["scope"] == "mcp:read"
    assert flow.api(reader["access_token"]).status_code == 200, "reading is within mcp:read"
    write = flow.api(reader["access_token"], method="POST", json={"name": "x", "slots": ["invite:a"]})
    assert write.status_code == 403, write.text
    assert 'error="insufficient_scope"' in write.headers["www-authenticate"]
    # The narrowed grant stays narrow: asking for the old scope back is widening.
    widened = flow.refresh(client_id, reader["refresh_token"], scope="mcp:read mcp:write")
    assert_oauth_error(widened, "invalid_scope")
    assert "widen" in widened.json()["error_description"]
    # The refused refresh spent nothing; without a scope the grant keeps what it has.
    again = flow.refresh(client_id, reader["refresh_token"])
    assert again.status_code == 200, again.text
    assert again.json()["scope"] == "mcp:read"


def test_the_prototype_oauth_paths_answer_like_the_modern_ones(server_factory):
    """The README: `/oauth/authorize`, `/oauth/token`, `/oauth/register` and `/oauth/revoke`
    answer too. A whole grant goes through them, and the same mistakes get the same answers
    under both paths."""
    server = server_factory("--auth", "oauth", "--approval", "auto")
    modern, prototype = Flow(server), Flow(server, endpoints="/oauth")
    client, tokens = prototype.sign_in()
    client_id = client["client_id"]
    assert modern.api(tokens["access_token"]).status_code == 200
    refreshed = prototype.refresh(client_id, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert prototype.revoke(client_id, refreshed.json()["refresh_token"]).status_code == 200
    assert modern.api(refreshed.json()["access_token"]).status_code == 401, "revoked through /oauth/revoke"

    def answer(response: httpx2.Response) -> tuple:
        return response.status_code, response.headers.get("content-type"), response.headers.get("location"), response.text

    _, challenge = pkce()
    mistakes = {
        "register": lambda flow: flow.http.post(f"{flow.endpoints}/register", json={"redirect_uris": []}),
        "authorize, unknown client": lambda flow: flow.authorize("mcpc_" + "0" * 32, challenge),
        "authorize, approved client": lambda flow: flow.authorize(client_id, challenge, response_type="token"),
        "token": lambda flow: flow.token({"grant_type": "password", "client_id": client_id}),
        "revoke": lambda flow: flow.http.post(f"{flow.endpoints}/revoke", data={"client_id": client_id}),
    }
    for mistake, send in mistakes.items():
        old, new = send(prototype), send(modern)
        assert new.status_code >= 300, (mistake, new.status_code)
        assert answer(old) == answer(new), mistake

    # The consent page's form answers to the path it was shown under.
    prompting = Flow(server_factory("--auth", "oauth"), endpoints="/oauth")
    page = prompting.authorize(prompting.register()["client_id"], challenge)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    form = {key: html.unescape(value) for key, value in consent_form(page.text).items()}
    approved = prompting.http.post(f"{prompting.endpoints}/authorize", data={**form, "decision": "approve", "display_name": "Ada"})
    assert "code" in redirect_query(approved)


def test_revocation_signs_a_grant_out(flow):
    client, tokens = flow.sign_in()
    # Used first, so the server remembers the check: revoking must forget it.
    assert flow.api(tokens["access_token"]).status_code == 200
    response = flow.revoke(client["client_id"], tokens["refresh_token"])
    assert response.status_code == 200
    assert flow.api(tokens["access_token"]).status_code == 401
    # Unknown tokens are accepted silently (RFC 7009 §2.2).
    assert flow.http.post(f"{flow.base}/revoke", data={"client_id": client["client_id"], "token": "nope"}).status_code == 200


def test_confidential_clients_must_authenticate(flow):
    client = flow.register(method="client_secret_basic")
    assert client["client_secret"].startswith("mcp_cs_")
    verifier, challenge = pkce()
    code = flow.code(client["client_id"], challenge)
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": REDIRECT}
    assert_oauth_error(flow.token({**form, "client_id": client["client_id"]}), "invalid_client", status=401)
    wrong = flow.token(form, auth=(client["client_id"], "mcp_cs_wrong"))
    assert_oauth_error(wrong, "invalid_client", status=401)
    right = flow.token(form, auth=(client["client_id"], client["client_secret"]))
    assert right.status_code == 200, right.text


def test_expired_access_tokens_are_refused(server_factory):
    server = server_factory("--auth", "oauth", "--approval", "auto", "--access-token-ttl-secs", "1")
    flow = Flow(server)
    client, tokens = flow.sign_in()
    assert tokens["expires_in"] == 1
    assert flow.api(tokens["access_token"]).status_code == 200
    time.sleep(1.2)
    assert flow.api(tokens["access_token"]).status_code == 401
    refreshed = flow.token({"grant_type": "refresh_token", "client_id": client["client_id"], "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200 and flow.api(refreshed.json()["access_token"]).status_code == 200


def test_tokens_for_another_public_url_are_refused(server_factory, tmp_path):
    server = server_factory("--auth", "oauth", "--approval", "auto")
    flow = Flow(server)
    _, tokens = flow.sign_in()
    port = server.port
    server.stop()
    # Same database, another public URL: the old tokens' audience is no longer this resource.
    server.extra_args = [*server.extra_args, "--public-url", f"http://localhost:{port}"]
    server.start(port)
    assert flow.api(tokens["access_token"]).status_code == 401


# ---------------------------------------------------------------------------------------------
# Client ID metadata documents
# ---------------------------------------------------------------------------------------------


class DocumentServer:
    """Serves client metadata documents on loopback: path -> JSON body."""

    def __init__(self):
        documents: dict[str, bytes] = {}
        hits: dict[str, int] = {}
        self.documents = documents
        self.hits = hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                # Counted before answering, so a test that got its answer sees the count.
                hits[self.path] = hits.get(self.path, 0) + 1
                body = documents.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body or b"{}")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, path: str, document: dict) -> str:
        self.documents[path] = json.dumps(document).encode()
        return f"{self.base}{path}"

    def close(self):
        self.httpd.shutdown()


def test_client_id_metadata_documents(server_factory):
    documents = DocumentServer()
    try:
        strict = Flow(server_factory("--auth", "oauth", "--approval", "auto"))
        testing = Flow(server_factory("--auth", "oauth", "--approval", "auto", "--test-loopback-metadata-documents"))
        url = f"{documents.base}/client.json"
        documents.publish("/client.json", {"client_id": url, "client_name": "Doc client", "redirect_uris": [REDIRECT]})
        verifier, challenge = pkce()
        # Without the test switch, http and loopback documents are never fetched.
        assert strict.authorize(url, challenge).status_code == 400
        assert documents.hits.get("/client.json", 0) == 0, "the strict server fetched the document"
        code = testing.code(url, challenge)
        assert documents.hits["/client.json"] == 1, "the switch lets the same document be fetched"
        tokens = testing.exchange(url, code, verifier)
        assert tokens.status_code == 200, tokens.text
        assert testing.api(tokens.json()["access_token"]).status_code == 200
        # Redirect URIs of a document match exactly.
        assert testing.authorize(url, challenge, redirect_uri="http://127.0.0.1:9/elsewhere").status_code == 400
        # A document that names another client_id is refused.
        liar = documents.publish("/liar.json", {"client_id": "https://claude.ai/x.json", "redirect_uris": [REDIRECT]})
        assert testing.authorize(liar, challenge).status_code == 400
        missing = f"{documents.base}/missing.json"
        assert testing.authorize(missing, challenge).status_code == 400
    finally:
        documents.close()


def test_consent_page_modes_are_guarded_by_configuration(server_factory):
    """Prompt mode shows a page rather than redirecting; the consent form itself is tested in
    headless Chromium (tests/js)."""
    server = server_factory("--auth", "oauth")
    flow = Flow(server)
    client = flow.register()["client_id"]
    _, challenge = pkce()
    page = flow.authorize(client, challenge)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Test client" in page.text and "127.0.0.1:9" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    # A forged form (no valid form token) is refused; nothing is redirected.
    form = {"response_type": "code", "client_id": client, "redirect_uri": REDIRECT, "code_challenge": challenge, "code_challenge_method": "S256", "decision": "approve", "display_name": "Mallory", "form_token": "1.00"}
    forged = flow.http.post(f"{server.base_url}/authorize", data=form)
    assert forged.status_code == 400 and "location" not in forged.headers


def test_no_secret_reaches_the_log(server_factory):
    server = server_factory("--auth", "oauth", "--approval", "auto")
    flow = Flow(server)
    client = flow.register(method="client_secret_post")
    verifier, challenge = pkce()
    code = flow.code(client["client_id"], challenge)
    tokens = flow.exchange(client["client_id"], code, verifier, client_secret=client["client_secret"]).json()
    refreshed = flow.token(
        {"grant_type": "refresh_token", "client_id": client["client_id"], "client_secret": client["client_secret"], "refresh_token": tokens["refresh_token"]}
    ).json()
    flow.api(refreshed["access_token"])
    flow.api("mcp_at_" + "f" * 64)
    flow.exchange(client["client_id"], code, verifier, client_secret=client["client_secret"])  # a replay, logged as a warning
    server.stop()
    log = server.log_path.read_text()
    assert "authorization code replayed" in log, "the log is being written"
    for secret in (code, client["client_secret"], verifier, tokens["access_token"], tokens["refresh_token"], refreshed["access_token"], refreshed["refresh_token"]):
        assert secret not in log


# ---------------------------------------------------------------------------------------------
# Unauthenticated growth: per-address limits, expiry of what strangers leave behind
# ---------------------------------------------------------------------------------------------


def assert_too_many(response: httpx2.Response, path: str) -> None:
    assert_oauth_error(response, "too_many_requests", status=429)
    assert int(response.headers["retry-after"]) >= 1, response.headers
    assert path in response.json()["error_description"]


def test_register_authorize_and_token_are_limited_per_address(server_factory):
    server = server_factory(
        "--auth", "oauth", "--approval", "auto",
        "--oauth-register-per-hour", "3", "--oauth-authorize-per-minute", "4", "--oauth-token-per-minute", "2",
    )
    flow = Flow(server)
    clients = [flow.register()["client_id"] for _ in range(2)]
    # The /oauth/... alias counts against the same allowance.
    alias = flow.http.post(f"{flow.base}/oauth/register", json={"redirect_uris": [REDIRECT]})
    assert alias.status_code == 201, alias.text
    assert_too_many(flow.http.post(f"{flow.base}/register", json={"redirect_uris": [REDIRECT]}), "/register")
    # Three an hour: the next one is 20 minutes away.
    retry = int(flow.http.post(f"{flow.base}/oauth/register", json={"redirect_uris": [REDIRECT]}).headers["retry-after"])
    assert 1100 <= retry <= 1200, retry

    verifier, challenge = pkce()
    code = flow.code(clients[0], challenge)
    for _ in range(3):
        assert flow.authorize(clients[0], challenge).status_code == 302
    assert_too_many(flow.authorize(clients[0], challenge), "/authorize")
    assert_too_many(flow.http.post(f"{flow.base}/oauth/authorize", data={}), "/authorize")

    assert flow.exchange(clients[0], code, verifier).status_code == 200
    assert flow.exchange(clients[0], code, verifier).status_code == 400  # a replay: counted too
    assert_too_many(flow.exchange(clients[0], code, verifier), "/token")
    assert_too_many(flow.http.post(f"{flow.base}/revoke", data={"token": "x"}), "/token")
    # What is not an unauthenticated OAuth endpoint is not counted.
    assert flow.http.get(f"{flow.base}/.well-known/oauth-authorization-server").status_code == 200


def test_forwarded_addresses_count_only_from_trusted_proxies(server_factory):
    limited = ("--auth", "oauth", "--approval", "auto", "--oauth-register-per-hour", "2")
    direct = Flow(server_factory(*limited))
    # From an untrusted peer the header is ignored: a new forwarded address per request is
    # still the same client.
    for n in range(2):
        assert direct.http.post(f"{direct.base}/register", json={"redirect_uris": [REDIRECT]}, headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code == 201
    assert direct.http.post(f"{direct.base}/register", json={"redirect_uris": [REDIRECT]}, headers={"X-Forwarded-For": "198.51.100.9"}).status_code == 429

    proxied = Flow(server_factory(*limited, "--trusted-proxies", "127.0.0.1, 10.0.0.0/8"))

    def register(forwarded: str) -> int:
        return proxied.http.post(f"{proxied.base}/register", json={"redirect_uris": [REDIRECT]}, headers={"X-Forwarded-For": forwarded}).status_code

    # The right-most hop that is not a trusted proxy is the client; what it wrote itself to
    # the left does not matter.
    assert register("6.6.6.1, 203.0.113.5, 10.0.0.7") == 201
    assert register("6.6.6.2, 203.0.113.5") == 201
    assert register("6.6.6.3, 203.0.113.5, 10.1.2.3") == 429
    assert register("203.0.113.6") == 201


def test_clients_that_never_obtained_a_token_and_people_who_hold_nothing_expire(server_factory):
    server = server_factory("--auth", "oauth", "--approval", "auto", "--unused-registration-ttl-secs", "2")
    flow = Flow(server)
    unused = flow.register()["client_id"]
    _, challenge = pkce()
    flow.code(unused, challenge)  # auto approval creates a guest who never gets a token
    used, tokens = flow.sign_in()
    owner_token = tokens["access_token"]
    channel = flow.api(owner_token, method="POST", json={"name": "Kept", "slots": ["invite:a"]})
    assert channel.status_code in (200, 201), channel.text
    def people() -> int:
        return int(server.query("SELECT COUNT(*) FROM people")[0][0])

    deadline = time.monotonic() + 10
    while flow.authorize(unused, challenge).status_code != 400:
        assert time.monotonic() < deadline, "the unused client was never deleted"
        time.sleep(0.5)
    page = flow.authorize(unused, challenge)
    assert "unknown client_id" in page.text and "location" not in page.headers
    while people() != 1:
        assert time.monotonic() < deadline, "the guest who holds nothing was never deleted"
        time.sleep(0.5)
    # The client that obtained tokens, and the person who holds them and a channel, stay.
    assert "code" in redirect_query(flow.authorize(used["client_id"], challenge))
    assert flow.api(owner_token).status_code == 200


def consent_form(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page))


def test_a_consent_form_is_answered_once(server_factory):
    server = server_factory("--auth", "oauth")
    flow = Flow(server)
    client = flow.register()["client_id"]
    _, challenge = pkce()
    page = flow.authorize(client, challenge)
    assert page.status_code == 200
    form = {key: html.unescape(value) for key, value in consent_form(page.text).items()}
    assert form["form_token"], form
    answer = {**form, "decision": "approve", "display_name": "Ada"}
    first = flow.http.post(f"{server.base_url}/authorize", data=answer)
    assert "code" in redirect_query(first)
    again = flow.http.post(f"{server.base_url}/authorize", data=answer)
    assert again.status_code == 400 and "location" not in again.headers, again.status_code
    assert "already answered" in again.text
    denied = flow.http.post(f"{server.base_url}/authorize", data={**answer, "decision": "deny"})
    assert denied.status_code == 400 and "location" not in denied.headers


# ---------------------------------------------------------------------------------------------
# What no response carries
# ---------------------------------------------------------------------------------------------


def stored_secrets(server) -> tuple[dict[str, str], set[str]]:
    """What the database holds that no response may show: each person's id by display name,
    and every stored hash."""
    hashes = [
        "SELECT token_hash FROM tokens",
        "SELECT code_hash FROM oauth_codes",
        "SELECT secret_hash FROM oauth_clients",
        "SELECT token_hash FROM oauth_spent_forms",
        "SELECT invite_hash FROM slots",
        "SELECT rejoin_hash FROM slots",
    ]
    people = dict(server.query("SELECT display_name, id FROM people"))
    stored = {row[0] for query in hashes for row in server.query(query) if row[0]}
    return people, stored


def sign_in_through_consent(flow: Flow, name: str, **register_extra) -> tuple[dict, dict]:
    """As `Flow.sign_in`, on a server that asks: the person approves as `name`."""
    client = flow.register(**register_extra)
    verifier, challenge = pkce()
    page = flow.authorize(client["client_id"], challenge)
    assert page.status_code == 200, page.text
    form = {key: html.unescape(value) for key, value in consent_form(page.text).items()}
    answered = flow.http.post(f"{flow.endpoints}/authorize", data={**form, "decision": "approve", "display_name": name})
    secret = {"client_secret": client["client_secret"]} if "client_secret" in client else {}
    response = flow.exchange(client["client_id"], redirect_query(answered)["code"], verifier, **secret)
    assert response.status_code == 200, response.text
    return client, response.json()


def test_no_response_carries_a_principal_id_a_token_or_a_stored_hash(server_factory):
    """ARCHITECTURE.md: no response contains a principal id, a token other than the caller's
    own, or a stored hash. Two people sign in (consent page, confidential client) and use the
    OAuth endpoints, REST and MCP; every response's headers and body are searched for every
    principal id and hash the database holds, and for every token and secret issued (allowed
    only in the answer that issues them). One exception: the cookie that remembers a person in
    their own browser is signed over their id, and names only them."""
    server = server_factory("--auth", "oauth", "--rate-limit", "0")
    responses: list[httpx2.Response] = []

    def record(response: httpx2.Response) -> None:
        response.read()
        responses.append(response)

    flow = Flow(server)
    flow.http.event_hooks["response"] = [record]
    base = server.base_url
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server", "/"):
        flow.http.get(f"{base}{path}")
    ada_client, ada = sign_in_through_consent(flow, "Ada")
    bob_client, bob = sign_in_through_consent(flow, "Bob", method="client_secret_post")
    refreshed = flow.refresh(ada_client["client_id"], ada["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    ada_refreshed = refreshed.json()
    issued = {bob_client["client_secret"]}
    issued |= {grant[kind] for grant in (ada, bob, ada_refreshed) for kind in ("access_token", "refresh_token")}

    def rest(token: str, method: str, path: str, **kwargs) -> dict:
        response = flow.api(token, f"/api{path}", method, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    token = ada_refreshed["access_token"]
    created = rest(token, "POST", "/channels", json={"name": "Leaks", "slots": ["invite:ada", "invite:bob"]})
    channel = created["channel"]["channel_id"]
    invites = {invite["slot"]: invite["code"] for invite in created["invites"]}
    rest(bob["access_token"], "POST", "/join", json={"code": invites["bob"]})
    rest(token, "POST", f"/channels/{channel}/messages", json={"text": "hello bob"})
    rest(token, "POST", f"/channels/{channel}/messages", json={"text": "psst", "to": "bob"})
    for path in ("/channels", f"/channels/{channel}", f"/channels/{channel}/transcript", "/bots"):
        rest(bob["access_token"], "GET", path)
    rest(bob["access_token"], "GET", f"/channels/{channel}/messages", params={"cursor": 0, "wait_ms": 0})
    rpc_headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    calls = [("list_channels", {}), ("get_channel", {"channel_id": channel}), ("sync_messages", {"channel_id": channel, "cursor": 0, "wait_ms": 0})]
    for number, (tool, arguments) in enumerate(calls):
        rpc = {"jsonrpc": "2.0", "id": number, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
        answered = flow.http.post(f"{base}/mcp", json=rpc, headers={**rpc_headers, "Authorization": f"Bearer {token}"})
        assert answered.status_code == 200 and '"isError":true' not in answered.text, answered.text
    flow.http.post(f"{base}/mcp", json={}, headers=rpc_headers)  # no token
    flow.api("mcp_at_" + "0" * 64)  # an unknown one
    assert flow.revoke(bob_client["client_id"], bob["refresh_token"], client_secret=bob_client["client_secret"]).status_code == 200
    assert flow.api(bob["access_token"]).status_code == 401

    people, hashes = stored_secrets(server)
    assert set(people) == {"Ada", "Bob"} and len(hashes) >= 8, (people, hashes)
    remembered = 0
    for response in responses:
        where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
        headers = [(name, value) for name, value in response.headers.multi_items()]
        for name, value in headers:
            if name == "set-cookie" and value.startswith("mcpmp_person="):
                approver = parse_qs(response.request.content.decode())["display_name"][0]
                assert value.removeprefix("mcpmp_person=").startswith(f"{people[approver]}."), f"{where} sets another's cookie"
                remembered += 1
        shown = (str([header for header in headers if header[0] != "set-cookie"]) + response.text).lower()
        for value in hashes:
            assert value.lower() not in shown, f"{where} shows a stored hash"
        for name, principal in people.items():
            assert principal.lower() not in shown, f"{where} shows {name}'s principal id"
        issuing = response.request.url.path in ("/token", "/register") and response.status_code < 300
        for secret in issued:
            assert issuing or secret.lower() not in shown, f"{where} shows a token or client secret"
    assert remembered == 2, "each approval sets its person's cookie"
    assert len(responses) > 25, "every answer was searched"
