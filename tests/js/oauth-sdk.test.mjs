// The official TypeScript MCP SDK signs in through our OAuth 2.1 authorization server (in
// `--approval auto` mode, so no browser is needed) and then plays: two providers are two
// principals who meet in a channel.
//
// The flow is the SDK's documented one: connect() with an authProvider fails with
// UnauthorizedError after calling redirectToAuthorization(url); the app obtains the code from
// the redirect, calls transport.finishAuth(code) and connects again on a new transport.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { randomState, startServer } from './helpers.mjs';

/** An in-memory OAuthClientProvider whose "browser" is a fetch that does not follow redirects. */
class HeadlessProvider {
  constructor(server, name) {
    this.server = server;
    this.name = name;
    // Nobody listens here: the redirect is read from the Location header, never followed.
    this.redirectUrl = 'http://127.0.0.1:9/callback';
    this.savedClient = undefined;
    this.savedTokens = undefined;
    this.savedVerifier = undefined;
    this.expectedState = undefined;
    this.authorizations = 0;
    /** The query of the last redirect back to us (code, state, iss, or error). */
    this.lastRedirect = undefined;
  }

  get clientMetadata() {
    return {
      client_name: `JS SDK test (${this.name})`,
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: 'mcp:read mcp:write',
    };
  }

  state() {
    this.expectedState = randomState();
    return this.expectedState;
  }

  clientInformation() {
    return this.savedClient;
  }

  saveClientInformation(information) {
    this.savedClient = information;
  }

  tokens() {
    return this.savedTokens;
  }

  saveTokens(tokens) {
    this.savedTokens = tokens;
  }

  saveCodeVerifier(verifier) {
    this.savedVerifier = verifier;
  }

  codeVerifier() {
    if (!this.savedVerifier) throw new Error('no code verifier saved');
    return this.savedVerifier;
  }

  async redirectToAuthorization(url) {
    this.authorizations += 1;
    const response = await fetch(url, { redirect: 'manual' });
    const location = response.headers.get('location');
    if (response.status !== 302 || !location) {
      throw new Error(
        `auto approval should redirect at once; /authorize answered ${response.status}: ${await response.text()}`,
      );
    }
    const target = new URL(location);
    this.lastRedirect = { url: target, query: Object.fromEntries(target.searchParams) };
  }

  /** The code from the last redirect, after checking state and iss. */
  code() {
    const redirect = this.lastRedirect;
    assert.ok(redirect, 'redirectToAuthorization was never called');
    assert.equal(`${redirect.url.origin}${redirect.url.pathname}`, this.redirectUrl);
    assert.equal(redirect.query.error, undefined, `authorization refused: ${JSON.stringify(redirect.query)}`);
    assert.equal(redirect.query.state, this.expectedState, 'the state comes back unchanged');
    assert.equal(redirect.query.iss, this.server.issuer, 'RFC 9207: iss names our issuer');
    assert.match(redirect.query.code ?? '', /\S{16,}/, 'a code of some length');
    return redirect.query.code;
  }
}

/** Records every HTTP exchange the SDK makes, for assertions on the discovery dance. */
function recordingFetch(log) {
  return async (input, init) => {
    const response = await fetch(input, init);
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    log.push({
      method: init?.method ?? 'GET',
      path: url.pathname,
      status: response.status,
      wwwAuthenticate: response.headers.get('www-authenticate'),
    });
    return response;
  };
}

/** Connects as `provider`, running the whole OAuth flow first if it has no tokens yet. */
async function signIn(server, provider, http = []) {
  const first = new StreamableHTTPClientTransport(new URL(server.mcpUrl), {
    authProvider: provider,
    fetch: recordingFetch(http),
  });
  const firstClient = new Client({ name: `js-${provider.name}`, version: '1.0.0' });
  try {
    await firstClient.connect(first);
    return firstClient; // already had valid tokens
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  await first.finishAuth(provider.code());
  await first.close().catch(() => {});
  // The documented pattern: a new transport (and client) once the tokens are saved.
  const transport = new StreamableHTTPClientTransport(new URL(server.mcpUrl), {
    authProvider: provider,
    fetch: recordingFetch(http),
  });
  const client = new Client({ name: `js-${provider.name}`, version: '1.0.0' });
  await client.connect(transport);
  return client;
}

/** A tool call that must succeed; returns its structured content. */
async function call(client, name, args = {}) {
  const result = await client.callTool({ name, arguments: args });
  assert.notEqual(result.isError, true, `${name} failed: ${JSON.stringify(result.content)}`);
  assert.ok(result.structuredContent, `${name} returned no structuredContent`);
  return result.structuredContent;
}

let server;
const clients = [];

before(async () => {
  server = await startServer({ approval: 'auto' });
});

after(async () => {
  for (const client of clients) await client.close().catch(() => {});
  if (server) await server.stop();
});

test('the MCP endpoint refuses a request without a token and points to its resource metadata', async () => {
  const response = await fetch(server.mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
    }),
  });
  assert.equal(response.status, 401);
  const challenge = response.headers.get('www-authenticate') ?? '';
  assert.match(challenge, /^Bearer /, challenge);
  assert.ok(
    challenge.includes(`resource_metadata="${server.issuer}/.well-known/oauth-protected-resource/mcp"`),
    `no resource_metadata in ${challenge}`,
  );

  const metadata = await (await fetch(`${server.issuer}/.well-known/oauth-protected-resource/mcp`)).json();
  assert.equal(metadata.resource, server.mcpUrl);
  assert.deepEqual(metadata.authorization_servers, [server.issuer]);
});

test('two SDK clients sign in as two people, meet in a channel and talk', async () => {
  const alice = new HeadlessProvider(server, 'alice');
  const bob = new HeadlessProvider(server, 'bob');
  const aliceHttp = [];

  const aliceClient = await signIn(server, alice, aliceHttp);
  clients.push(aliceClient);
  const bobClient = await signIn(server, bob);
  clients.push(bobClient);

  // The SDK found its way from the 401 to our authorization server on its own.
  assert.equal(aliceHttp[0].status, 401, JSON.stringify(aliceHttp));
  assert.match(aliceHttp[0].wwwAuthenticate ?? '', /resource_metadata=/);
  const paths = aliceHttp.map((exchange) => exchange.path);
  for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-authorization-server', '/register', '/token']) {
    assert.ok(paths.includes(path), `the SDK never called ${path}: ${paths.join(' ')}`);
  }
  assert.equal(alice.authorizations, 1);
  assert.equal(bob.authorizations, 1);
  assert.ok(alice.savedClient?.client_id?.length, 'alice registered a client');
  assert.notEqual(alice.savedClient.client_id, bob.savedClient.client_id, 'each provider registered its own client');
  for (const provider of [alice, bob]) {
    assert.equal(provider.savedTokens.token_type.toLowerCase(), 'bearer');
    assert.ok(provider.savedTokens.access_token, 'an access token');
    assert.ok(provider.savedTokens.refresh_token, 'a refresh token');
    assert.deepEqual(provider.savedTokens.scope?.split(' ').sort(), ['mcp:read', 'mcp:write']);
  }
  assert.notEqual(alice.savedTokens.access_token, bob.savedTokens.access_token);

  const tools = (await aliceClient.listTools()).tools.map((tool) => tool.name);
  for (const name of ['create_channel', 'join_channel', 'get_channel', 'post_message', 'sync_messages', 'list_channels']) {
    assert.ok(tools.includes(name), `tool ${name} missing from ${tools.join(', ')}`);
  }

  // alice creates a channel with two invite slots and keeps the first one.
  const created = await call(aliceClient, 'create_channel', {
    name: 'JS SDK table',
    slots: ['invite:alice', 'invite:bob'],
  });
  const channelId = created.channel.channel_id;
  assert.match(channelId, /^ch_[0-9a-f]{24}$/);
  assert.equal(created.your_seat.slot, 'alice');
  const invite = created.invites.find((entry) => entry.slot === 'bob');
  assert.ok(invite, `no invite for bob: ${JSON.stringify(created.invites)}`);

  // bob joins with the invite.
  const joined = await call(bobClient, 'join_channel', { code: invite.code });
  assert.equal(joined.your_seat.slot, 'bob');
  assert.equal(joined.channel.channel_id, channelId);
  assert.deepEqual(joined.channel.your_slots, ['bob']);

  // alice posts; bob syncs from the start and sees it, signed with alice's name.
  const posted = await call(aliceClient, 'post_message', { channel_id: channelId, text: 'hello from the TS SDK' });
  assert.equal(posted.message.from_slot, 'alice');
  const page = await call(bobClient, 'sync_messages', { channel_id: channelId, cursor: 0, wait_ms: 0 });
  const userMessages = page.messages.filter((message) => message.kind === 'user');
  assert.equal(userMessages.length, 1, JSON.stringify(page.messages));
  const [message] = userMessages;
  assert.equal(message.text, 'hello from the TS SDK');
  assert.equal(message.from_slot, 'alice');
  assert.ok(message.from_name, 'the message carries its author display name');

  // Two principals: the seats are held by two different people with different names.
  const view = await call(bobClient, 'get_channel', { channel_id: channelId });
  const holders = Object.fromEntries(view.slots.map((slot) => [slot.slot, slot.holder]));
  assert.equal(holders.alice, message.from_name);
  assert.ok(holders.bob, JSON.stringify(view.slots));
  assert.notEqual(holders.alice, holders.bob, `both seats are held by the same name: ${JSON.stringify(holders)}`);
  const bobPost = await call(bobClient, 'post_message', { channel_id: channelId, text: 'hi alice' });
  assert.equal(bobPost.message.from_name, holders.bob);
  assert.notEqual(bobPost.message.from_name, message.from_name);

  // bob's own channel list shows the channel; alice's too, as its admin.
  const bobList = await call(bobClient, 'list_channels');
  assert.deepEqual(bobList.channels.map((channel) => channel.channel_id), [channelId]);
  assert.equal(bobList.channels[0].you_are_admin, false);

  // A fresh transport and client reuse the saved tokens: no new authorization.
  await aliceClient.close();
  const freshHttp = [];
  const fresh = new Client({ name: 'js-alice-again', version: '1.0.0' });
  clients.push(fresh);
  await fresh.connect(
    new StreamableHTTPClientTransport(new URL(server.mcpUrl), { authProvider: alice, fetch: recordingFetch(freshHttp) }),
  );
  const aliceList = await call(fresh, 'list_channels');
  assert.deepEqual(aliceList.channels.map((channel) => channel.channel_id), [channelId]);
  assert.equal(aliceList.channels[0].you_are_admin, true);
  const again = await call(fresh, 'sync_messages', { channel_id: channelId, cursor: 0, wait_ms: 0 });
  assert.deepEqual(
    again.messages.filter((m) => m.kind === 'user').map((m) => [m.from_slot, m.text]),
    [['alice', 'hello from the TS SDK'], ['bob', 'hi alice']],
  );
  assert.equal(alice.authorizations, 1, 'the saved tokens were enough');
  assert.ok(
    freshHttp.every((exchange) => exchange.status !== 401),
    `the fresh transport was refused: ${JSON.stringify(freshHttp)}`,
  );
});

test('a refresh token gets new tokens that still work', async () => {
  const carol = new HeadlessProvider(server, 'carol');
  const client = await signIn(server, carol);
  clients.push(client);
  const before = await call(client, 'list_channels');
  assert.deepEqual(before.channels, [], 'a new person has no channels');
  await client.close();

  const response = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: carol.savedTokens.refresh_token,
      client_id: carol.savedClient.client_id,
      resource: server.mcpUrl,
    }).toString(),
  });
  const refreshed = await response.json();
  assert.equal(response.status, 200, JSON.stringify(refreshed));
  assert.ok(refreshed.access_token && refreshed.access_token !== carol.savedTokens.access_token);
  carol.saveTokens(refreshed);

  const again = new Client({ name: 'js-carol-again', version: '1.0.0' });
  clients.push(again);
  await again.connect(new StreamableHTTPClientTransport(new URL(server.mcpUrl), { authProvider: carol }));
  const created = await call(again, 'create_channel', { name: 'after refresh', slots: ['invite:carol'] });
  assert.equal(created.your_seat.slot, 'carol');
  assert.equal(carol.authorizations, 1);
});
