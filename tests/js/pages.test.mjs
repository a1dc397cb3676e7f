// The pages for people, driven by a real browser: headless Debian Chromium through
// playwright-core, against the real binary with OAuth in prompt mode.
//
// Each person signs in the way people do: their app sends them to the consent page, they allow
// it (which signs their browser in), and the app gets a token from the code. Alice and Bob play
// tic-tac-toe through the REST API with those tokens while Alice's page follows the game live;
// Carol watches from a spectator seat; Dan is signed in but holds no seat; a fresh browser is
// signed in as nobody. Then: the admin actions, replay, verify (good and tampered), the bot
// catalog, connections with revoke, and each page's CSP, console and forms.
//
// Screenshots of the main pages go to $PAGES_SCREENSHOTS or target/page-screenshots.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign as signBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import {
  BINARY,
  WORKSPACE,
  authorizeUrl,
  exchangeCode,
  pkce,
  randomState,
  registerClient,
  rest,
  startBrowser,
  startCallbackServer,
  startServer,
} from './helpers.mjs';

const SHOTS = process.env.PAGES_SCREENSHOTS || join(WORKSPACE, 'target', 'page-screenshots');
const APP_NAME = 'Pages Test App';

let chrome;
let callback;
let server;
let client;
const people = {};

before(
  async () => {
    mkdirSync(SHOTS, { recursive: true });
    chrome = await startBrowser();
    callback = await startCallbackServer();
    server = await startServer({ approval: 'prompt' });
    client = await registerClient(server.issuer, { client_name: APP_NAME, redirect_uris: [callback.redirectUri] });
  },
  { timeout: 200_000 },
);

after(async () => {
  for (const person of Object.values(people)) await person.context.close().catch(() => {});
  await chrome?.close();
  await callback?.close();
  await server?.stop();
});

/**
 * A person who allowed the test app on the consent page, in their own browser context: the
 * context holds their cookie, `token` is the app's access token. Every page they open is
 * watched for console errors.
 */
async function person(name, options = {}) {
  const context = await chrome.browser.newContext(options);
  const errors = [];
  context.on('page', (page) => {
    page.setDefaultTimeout(15_000);
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => errors.push(`${page.url()}: ${error.message}`));
  });
  const { verifier, challenge } = pkce();
  const state = randomState();
  callback.clear();
  const page = await context.newPage();
  await page.goto(authorizeUrl(server, { clientId: client.client_id, redirectUri: callback.redirectUri, challenge, state }));
  await page.fill('#display_name', name);
  await page.click('button[value="approve"]');
  const { query } = await callback.next();
  assert.equal(query.state, state);
  const exchanged = await exchangeCode(server, { clientId: client.client_id, redirectUri: callback.redirectUri, code: query.code, verifier });
  assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
  await page.close();
  // The stand-in callback page is the test's, not ours (its favicon answers 404).
  errors.length = 0;
  const entry = { name, context, token: exchanged.body.access_token, errors };
  people[name] = entry;
  return entry;
}

async function open(who, path) {
  const page = await who.context.newPage();
  const response = await page.goto(`${server.baseUrl}${path}`);
  return { page, response };
}

async function bodyText(page) {
  return (await page.locator('main').innerText()).replace(/\s+/g, ' ');
}

/** The headers every page must carry, and no console error so far. */
function assertWellServed(response, who) {
  const headers = response.headers();
  const csp = headers['content-security-policy'] ?? '';
  assert.match(csp, /default-src 'none'/, csp);
  assert.match(csp, /script-src 'self'(;|$)/, `scripts only from this origin, never inline: ${csp}`);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, csp);
  assert.match(csp, /frame-ancestors 'none'/, csp);
  assert.equal(headers['x-frame-options'], 'DENY');
  assert.match(headers['cache-control'] ?? '', /no-store/);
  if (who) assert.deepEqual(who.errors, [], 'no console errors');
}

/** Every form on the page carries a token, and no script element is inline. */
async function assertFormsAndScripts(page) {
  const forms = await page.locator('form[method="post"]').evaluateAll((all) =>
    all.map((form) => ({ action: form.getAttribute('action'), token: form.querySelector('input[name="form_token"]')?.value ?? '' })),
  );
  for (const form of forms) assert.ok(form.token.length > 20, `the form to ${form.action} carries no token`);
  const inline = await page.locator('script:not([src])').count();
  assert.equal(inline, 0, 'no inline script');
}

const shot = (page, name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

async function api(who, method, path, body) {
  const answer = await rest(server, who.token, method, path, body);
  assert.ok(answer.status < 300, `${method} ${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** An MCP client (the official TypeScript SDK) acting with `who`'s access token. */
async function mcpClient(who) {
  const client = new Client({ name: `pages test (${who.name})`, version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(server.mcpUrl), {
    requestInit: { headers: { authorization: `Bearer ${who.token}` } },
  });
  await client.connect(transport);
  return client;
}

/** Calls a tool and returns its structured result, failing on a tool error. */
async function call(client, name, args) {
  const result = await client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 });
  assert.ok(!result.isError, `${name} failed: ${JSON.stringify(result.content)}`);
  return result.structuredContent;
}

describe('pages', () => {
  let alice;
  let bob;
  let carol;
  let dan;
  let channelId;

  before(async () => {
    alice = await person('Alice');
    bob = await person('Bob');
    carol = await person('Carol');
    dan = await person('Dan');
    const created = await api(alice, 'POST', '/channels', {
      name: 'Friday <b>game</b>',
      slots: ['invite:alice', 'invite:bob', 'spectator:audience', 'invite:spare', 'bot:referee'],
      bot_preset: 'tictactoe',
    });
    channelId = created.channel.channel_id;
    const codes = Object.fromEntries(created.invites.map((invite) => [invite.slot, invite.code]));
    await api(bob, 'POST', '/join', { code: codes.bob });
    await api(carol, 'POST', '/join', { code: codes.audience });
  });

  test('home shows how to connect and the person\'s channels; a visitor is asked to sign in', async () => {
    const { page, response } = await open(alice, '/');
    assert.equal(response.status(), 200);
    assertWellServed(response, alice);
    const shown = await bodyText(page);
    assert.ok(shown.includes(`${server.baseUrl}/mcp`), shown);
    assert.ok(shown.includes('Claude') && shown.includes('ChatGPT'), shown);
    // Untrusted names are text, never markup.
    assert.equal(await page.locator('main b').count(), 0, 'a channel name became markup');
    assert.ok(shown.includes('Friday <b>game</b>'), shown);
    await assertFormsAndScripts(page);
    await shot(page, 'home');

    const stranger = await chrome.browser.newContext();
    try {
      const visit = await stranger.newPage();
      const answer = await visit.goto(`${server.baseUrl}/`);
      assertWellServed(answer);
      assert.ok((await bodyText(visit)).includes('Sign in'), 'a visitor is offered sign-in');
      const denied = await visit.goto(`${server.baseUrl}/channels/${channelId}`);
      assert.equal(denied.status(), 401);
      assert.ok(!(await bodyText(visit)).includes('Friday'), 'a visitor sees nothing of the channel');
    } finally {
      await stranger.close();
    }
  });

  test('the channel page is live: a move by Bob appears on Alice\'s page without a reload', async () => {
    const { page, response } = await open(alice, `/channels/${channelId}`);
    assert.equal(response.status(), 200);
    assertWellServed(response, alice);
    await assertFormsAndScripts(page);
    const shown = await bodyText(page);
    assert.ok(shown.includes('Friday <b>game</b>'), shown);
    for (const expected of ['Bob', 'Carol', 'tictactoe', 'Signed head', 'Seed commitment', 'Code hash']) {
      assert.ok(shown.includes(expected), `${expected} is not on the page: ${shown.slice(0, 2000)}`);
    }
    // The source is the builtin's, byte for byte, and its hash is shown.
    const source = await page.locator('pre.source code').first().textContent();
    const hash = `sha256:${createHash('sha256').update(source, 'utf8').digest('hex')}`;
    assert.ok(shown.includes(hash), `the source shown does not hash to a hash on the page (${hash})`);
    assert.ok((await page.locator('pre.source .hl-kw').count()) > 10, 'the source is highlighted');

    const before = await page.locator('#messages li').count();
    const headBefore = await page.locator('#head-seq').innerText();
    await api(alice, 'POST', `/channels/${channelId}/messages`, { data: { cell: 1 } });
    await api(bob, 'POST', `/channels/${channelId}/messages`, { text: 'my turn: cell 5 <i>now</i>', data: { cell: 5 } });
    await page.locator('#messages li', { hasText: 'my turn: cell 5 <i>now</i>' }).waitFor();
    assert.ok((await page.locator('#messages li').count()) > before + 1);
    assert.equal(await page.locator('#messages i').count(), 0, 'a message became markup');
    await page.waitForFunction((old) => document.getElementById('head-seq').textContent !== old, headBefore);
    assertWellServed(response, alice);
    await shot(page, 'channel');
    await page.close();
  });

  test('a spectator watches from their seat and sees no private message; an outsider sees nothing', async () => {
    await api(alice, 'POST', `/channels/${channelId}/messages`, { text: 'psst, only for the referee', to: 'referee' });
    const mine = await open(alice, `/channels/${channelId}`);
    assert.ok((await bodyText(mine.page)).includes('psst, only for the referee'), 'the sender sees her private message');
    assert.ok((await mine.page.locator('li.private').count()) >= 1, 'it is marked private');
    await mine.page.close();

    const { page, response } = await open(carol, `/channels/${channelId}`);
    assert.equal(response.status(), 200);
    assertWellServed(response, carol);
    const shown = await bodyText(page);
    assert.ok(shown.includes('Watching from your seat audience'), shown.slice(0, 500));
    assert.ok(!shown.includes('psst'), 'a spectator sees a private message');
    assert.equal(await page.locator('#admin-title').count(), 0, 'a spectator gets no admin forms');
    await page.close();

    const outsider = await open(dan, `/channels/${channelId}`);
    assert.equal(outsider.response.status(), 404);
    const nothing = await bodyText(outsider.page);
    assert.ok(!nothing.includes('Friday') && !nothing.includes('psst'), nothing);
    const feed = await outsider.page.request.get(`${server.baseUrl}/channels/${channelId}/feed?cursor=0`);
    assert.equal(feed.status(), 403);
    const export_ = await outsider.page.request.get(`${server.baseUrl}/channels/${channelId}/transcript.json`);
    assert.equal(export_.status(), 404);
    await outsider.page.close();
    // The refused page load is the only thing the browser logged for Dan.
    assert.ok(dan.errors.every((error) => error.includes('status of 404')), JSON.stringify(dan.errors));
    dan.errors.length = 0;
  });

  test('the game finishes and replays step by step with its board', async () => {
    for (const [who, cell] of [[alice, 2], [bob, 4], [alice, 3]]) {
      await api(who, 'POST', `/channels/${channelId}/messages`, { data: { cell } });
    }
    // The referee answers after the commit: wait (long-polling) for its verdict.
    let cursor = 0;
    for (;;) {
      const page = await api(alice, 'GET', `/channels/${channelId}/messages?cursor=${cursor}&wait_ms=10000`);
      if (page.messages.some((message) => message.kind === 'bot' && message.data?.type === 'result')) break;
      cursor = page.next_cursor;
    }
    const { page, response } = await open(alice, `/channels/${channelId}/replay`);
    assertWellServed(response, alice);
    await page.locator('.ttt').waitFor();
    // The last board: X on 1, 2 and 3, O on 5 and 4.
    const waitForBoard = async (expected) => {
      await page.waitForFunction(
        (cells) => [...document.querySelectorAll('.ttt div')].map((cell) => cell.textContent).join('') === cells,
        expected.join(''),
      );
    };
    await waitForBoard(['X', 'X', 'X', 'O', 'O', '', '', '', '']);
    await shot(page, 'replay');
    await page.click('#replay-prev');
    await page.click('#replay-prev');
    await page.click('#replay-prev');
    const position = await page.locator('#replay-position').innerText();
    assert.match(position, /^Step \d+ of \d+/);
    await page.click('#replay-first');
    assert.match(await page.locator('#replay-position').innerText(), /^Step 1 of/);
    await page.click('#replay-last');
    await waitForBoard(['X', 'X', 'X', 'O', 'O', '', '', '', '']);
    assert.deepEqual(alice.errors, []);
    await page.close();
  });

  test('verify: a good transcript passes in the browser, a tampered one names its first divergence', async () => {
    const { page, response } = await open(alice, '/verify');
    assertWellServed(response, alice);
    const download = await page.request.get(`${server.baseUrl}/channels/${channelId}/transcript.json`);
    assert.equal(download.status(), 200);
    const transcript = await download.json();
    const good = join(SHOTS, 'transcript.json');
    writeFileSync(good, JSON.stringify(transcript));
    await page.setInputFiles('#transcript-file', good);
    await page.locator('#verdict.good').waitFor();
    const verdict = await page.locator('#verdict').innerText();
    assert.match(verdict, /Verified: chain, signature and hashes/);
    assert.match(verdict, /a key this server publishes/);
    assert.match(verdict, /every readable message was written by a slot that may/);
    assert.match(verdict, /revealed seed matches its commitment/, 'the game ended, so the seed is out and checked');
    await shot(page, 'verify-good');

    const tampered = structuredClone(transcript);
    const victim = tampered.messages.find((message) => message.kind === 'bot' && message.text?.includes('X'));
    victim.text = victim.text.replace(/X/, 'O');
    const bad = join(SHOTS, 'transcript-tampered.json');
    writeFileSync(bad, JSON.stringify(tampered));
    await page.setInputFiles('#transcript-file', bad);
    await page.locator('#verdict.bad').waitFor();
    const failure = await page.locator('#checks li.fail').innerText();
    assert.match(failure, new RegExp(`^seq ${victim.seq}: the chain breaks here`), failure);

    const forged = structuredClone(transcript);
    forged.bots[0].source += '\n// one more line';
    writeFileSync(bad, JSON.stringify(forged));
    await page.setInputFiles('#transcript-file', bad);
    await page.locator('#verdict.bad').waitFor();
    assert.match(await page.locator('#checks li.fail').innerText(), /does not hash to its code_hash/);
    await shot(page, 'verify-tampered');

    // A history made up from nothing, chained and signed by a key of the forger's own, listed
    // in the file itself: the page trusts only the keys this server publishes.
    const forgedHead = structuredClone(transcript);
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    const keyId = `ed25519:${createHash('sha256').update(raw).digest('hex').slice(0, 16)}`;
    forgedHead.keys = [{ id: keyId, algorithm: 'Ed25519', public: raw.toString('base64url'), created_at: 0, retired_at: null }];
    forgedHead.head.key_id = keyId;
    const { channel, seq, head, at } = forgedHead.head;
    const statement = `mcp-multiplayer signed head v1\n${JSON.stringify({ at, channel, head, seq })}`;
    forgedHead.head.signature = signBytes(null, Buffer.from(statement), privateKey).toString('base64url');
    writeFileSync(bad, JSON.stringify(forgedHead));
    await page.setInputFiles('#transcript-file', bad);
    await page.locator('#verdict.bad').waitFor();
    assert.match(await page.locator('#checks li.fail').innerText(), /which this server does not publish/);

    // The referee's entry pointed at an older attach notice, or left out: refused.
    const hidden = structuredClone(transcript);
    hidden.bots = [];
    writeFileSync(bad, JSON.stringify(hidden));
    await page.setInputFiles('#transcript-file', bad);
    await page.locator('#verdict.bad').waitFor();
    assert.match(await page.locator('#checks li.fail').innerText(), /not exactly one per slot/);
    const extra = structuredClone(transcript);
    extra.messages[0].surprise = true;
    writeFileSync(bad, JSON.stringify(extra));
    await page.setInputFiles('#transcript-file', bad);
    await page.locator('#verdict.bad').waitFor();
    assert.match(await page.locator('#checks li.fail').innerText(), /fields no version 1 transcript has: surprise/);
    assert.deepEqual(alice.errors, []);
    await page.close();
  });

  test('each admin action works from the page, and a forged form is refused', async () => {
    const { page } = await open(alice, `/channels/${channelId}`);
    await page.fill('#rename', 'Saturday rematch');
    await Promise.all([page.waitForURL(`**/channels/${channelId}**`), page.click('form:has(#rename) button')]);
    assert.equal(await page.locator('h1').innerText(), 'Saturday rematch');

    // Kick Bob; his seat opens; a new invite for it shows its code; his old access is gone.
    const kick = page.locator('tr', { hasText: 'bob' }).locator('button', { hasText: 'Kick' });
    await Promise.all([page.waitForURL(`**/channels/${channelId}**`), kick.click()]);
    assert.equal((await rest(server, bob.token, 'GET', `/channels/${channelId}`)).status, 403, 'a kicked player is out');
    const reissue = page.locator('tr', { hasText: 'bob' }).locator('button', { hasText: 'New invite' });
    await Promise.all([page.waitForURL(`**/channels/${channelId}/admin`), reissue.click()]);
    const code = (await page.locator('#invite-code').innerText()).trim();
    assert.ok(code.length > 10, code);
    await api(bob, 'POST', '/join', { code });
    await page.click('text=Back to Saturday rematch');

    // Yield Alice's own seat: it opens with a fresh invite that the page shows.
    const yieldButton = page.locator('tr', { hasText: 'alice' }).locator('button', { hasText: 'Yield' });
    await Promise.all([page.waitForURL(`**/channels/${channelId}/admin`), yieldButton.click()]);
    const seatCode = (await page.locator('#invite-code').innerText()).trim();
    await api(alice, 'POST', '/join', { code: seatCode });
    // The page was following the feed from the seat she gave up: that feed is refused (403),
    // which the browser logs. Nothing else may have been logged.
    assert.ok(alice.errors.every((error) => error.includes('status of 403')), JSON.stringify(alice.errors));
    alice.errors.length = 0;

    // A form posted with someone else's token, or none, changes nothing.
    const forged = await page.request.post(`${server.baseUrl}/channels/${channelId}/admin`, {
      form: { op: 'close', form_token: '9999999999999.deadbeef' },
    });
    assert.equal(forged.status(), 403);
    const tokenless = await page.request.post(`${server.baseUrl}/channels/${channelId}/admin`, { form: { op: 'close' } });
    assert.equal(tokenless.status(), 403);
    const danToken = await dan.context.newPage();
    await danToken.goto(`${server.baseUrl}/`);
    const dansForm = await danToken.locator('input[name="form_token"]').first().inputValue();
    await danToken.close();
    const borrowed = await page.request.post(`${server.baseUrl}/channels/${channelId}/admin`, { form: { op: 'close', form_token: dansForm } });
    assert.equal(borrowed.status(), 403, "another person's form token is refused");
    const still = await api(alice, 'GET', `/channels/${channelId}`);
    assert.equal(still.closed, false);
    // Bob is no admin: the same close, with his own valid token, is refused by the service.
    const bobs = await open(bob, `/channels/${channelId}`);
    assert.equal(await bobs.page.locator('#admin-title').count(), 0);
    const bobsToken = await bobs.page.locator('input[name="form_token"]').first().inputValue();
    const notAdmin = await bobs.page.request.post(`${server.baseUrl}/channels/${channelId}/admin`, { form: { op: 'close', form_token: bobsToken } });
    assert.equal(notAdmin.status(), 403);
    await bobs.page.close();

    await page.goto(`${server.baseUrl}/channels/${channelId}`);
    await Promise.all([page.waitForURL(`**/channels/${channelId}**`), page.click('button:has-text("Close the channel")')]);
    assert.ok((await bodyText(page)).includes('This channel is closed.'));
    assert.equal((await api(alice, 'GET', `/channels/${channelId}`)).closed, true);
    assert.deepEqual(alice.errors, []);
    await page.close();
  });

  test('the bot catalog shows each bot with its source and hash, to anyone', async () => {
    const stranger = await chrome.browser.newContext();
    try {
      const page = await stranger.newPage();
      const response = await page.goto(`${server.baseUrl}/bots`);
      assertWellServed(response);
      const shown = await bodyText(page);
      for (const bot of ['tictactoe', 'chess', 'blackjack', 'guess']) assert.ok(shown.includes(bot), bot);
      await shot(page, 'bots');
      await page.click('a[href="/bots/chess"]');
      const source = await page.locator('pre.source code').textContent();
      const hash = `sha256:${createHash('sha256').update(source, 'utf8').digest('hex')}`;
      assert.equal(await page.locator('#code-hash').innerText(), hash);
    } finally {
      await stranger.close();
    }
  });

  test('the lobby shows a quick-match table; two SDK clients are matched there and the page shows their game', async () => {
    const carolMcp = await mcpClient(carol);
    const danMcp = await mcpClient(dan);
    try {
      const waiting = await call(carolMcp, 'quick_match', { bot: 'tictactoe', wait_ms: 0 });
      assert.equal(waiting.matched, false);
      const table = waiting.channel.channel_id;

      const { page, response } = await open(dan, '/lobby');
      assertWellServed(response, dan);
      await assertFormsAndScripts(page);
      const row = page.locator(`tr[data-channel="${table}"]`);
      assert.match(await row.innerText(), /Quick match: tictactoe[\s\S]*quick match[\s\S]*Carol/);
      await shot(page, 'lobby');

      const stranger = await chrome.browser.newContext();
      try {
        const visit = await stranger.newPage();
        assertWellServed(await visit.goto(`${server.baseUrl}/lobby?bot=tictactoe`));
        assert.match(await visit.locator(`tr[data-channel="${table}"]`).innerText(), /Sign in to play/);
      } finally {
        await stranger.close();
      }

      const [first, second] = await Promise.all([
        call(carolMcp, 'quick_match', { bot: 'tictactoe', wait_ms: 20_000 }),
        call(danMcp, 'quick_match', { bot: 'tictactoe', wait_ms: 20_000 }),
      ]);
      assert.ok(first.matched && second.matched);
      assert.equal(second.channel.channel_id, table, 'Dan sits at the table Carol opened');

      await page.goto(`${server.baseUrl}/channels/${table}`);
      await page.locator('#messages li', { hasText: 'Game on!' }).waitFor();
      const seats = await page.locator('#slots-title + table').innerText();
      assert.match(seats, /Carol/);
      assert.match(seats, /Dan/);
      // The lobby page shows an answer for up to a second: reload until the full table is gone.
      for (let tries = 0; ; tries += 1) {
        await page.goto(`${server.baseUrl}/lobby`);
        if ((await page.locator(`tr[data-channel="${table}"]`).count()) === 0) break;
        assert.ok(tries < 20, 'a full table leaves the lobby');
        await page.waitForTimeout(200);
      }

      // A listed channel's seat is taken from the page, without a code.
      const listed = await call(carolMcp, 'create_channel', {
        name: 'Open chess', slots: ['invite:host', 'invite:guest'], bot_preset: 'chess', listed: true,
      });
      await page.goto(`${server.baseUrl}/lobby?bot=chess`);
      const seat = page.locator(`tr[data-channel="${listed.channel.channel_id}"] button`, { hasText: 'Take a seat' });
      await Promise.all([page.waitForURL(`**/channels/${listed.channel.channel_id}?slot=guest`), seat.click()]);
      assert.match(await bodyText(page), /Watching from your seat guest/);

      // White opens with e2e4; the replay draws the position the referee posted.
      const chessId = listed.channel.channel_id;
      const refereePost = async (type, after = 0) => {
        for (let cursor = after; ;) {
          const page_ = await api(carol, 'GET', `/channels/${chessId}/messages?cursor=${cursor}&wait_ms=10000`);
          const found = page_.messages.find((message) => message.kind === 'bot' && message.data?.type === type);
          if (found) return found;
          cursor = page_.next_cursor;
        }
      };
      const start = await refereePost('start');
      const white = start.data.white === 'host' ? carol : dan;
      const moved = await api(white, 'POST', `/channels/${chessId}/messages`, { data: { move: 'e2e4' } });
      await refereePost('move', moved.message.seq);
      await page.goto(`${server.baseUrl}/channels/${chessId}/replay`);
      await page.locator('.chess').waitFor();
      const squares = await page.locator('.chess div').allTextContents();
      assert.equal(squares.length, 64);
      assert.equal(squares[4 * 8 + 4], '♙', 'a white pawn on e4');
      assert.equal(squares[6 * 8 + 4], '', 'e2 is empty');
      await shot(page, 'replay-chess');
      assert.deepEqual(dan.errors, []);
      await page.close();
    } finally {
      await carolMcp.close();
      await danMcp.close();
    }
  });

  test('connections: Alice disconnects the app and its token stops working', async () => {
    const { page, response } = await open(alice, '/connections');
    assertWellServed(response, alice);
    await assertFormsAndScripts(page);
    assert.ok((await bodyText(page)).includes(APP_NAME));
    await shot(page, 'connections');
    assert.equal((await rest(server, alice.token, 'GET', '/channels')).status, 200);
    await Promise.all([page.waitForURL('**/connections'), page.click('button:has-text("Disconnect")')]);
    assert.equal((await rest(server, alice.token, 'GET', '/channels')).status, 401, 'the revoked token is refused');
    assert.ok((await bodyText(page)).includes('Nothing is connected'));
    // Dan cannot revoke Bob's grant by guessing: the family is not his.
    const dans = await open(dan, '/connections');
    const token = await dans.page.locator('input[name="form_token"]').first().inputValue();
    const guessed = await dans.page.request.post(`${server.baseUrl}/connections/revoke`, { form: { family: 'fam_guess', form_token: token } });
    assert.equal(guessed.status(), 404);
    assert.equal((await rest(server, bob.token, 'GET', '/channels')).status, 200);
    await dans.page.close();
    await page.close();
  });

  test('sign-in with a personal token on a new browser; a wrong token is refused', async () => {
    const made = spawnSync(BINARY, ['token', 'create', '--name', 'pages-script', '--display-name', 'Frank', '--data-dir', server.dataDir], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const token = made.stdout.trim();
    assert.match(token, /^mcp_pat_/);
    const context = await chrome.browser.newContext();
    try {
      const page = await context.newPage();
      assertWellServed(await page.goto(`${server.baseUrl}/signin?next=/connections`));
      await page.fill('#token', 'mcp_pat_not-a-real-token');
      await page.click('button:has-text("Sign in")');
      assert.match(await page.locator('.problem').innerText(), /not a live personal token/);
      await page.fill('#token', token);
      await Promise.all([page.waitForURL(`${server.baseUrl}/connections`), page.click('form:has(#token) button')]);
      assert.match(await page.locator('header').innerText(), /Frank/);
      assert.match(await bodyText(page), /Personal token pages-script/);
      // Revoking the token ends the session it opened, here and in every browser.
      await Promise.all([page.waitForURL('**/connections'), page.click('button:has-text("Disconnect")')]);
      assert.match(await bodyText(page), /Sign in first/);
      assert.doesNotMatch(await bodyText(page), /Frank|pages-script/);
    } finally {
      await context.close();
    }
  });

  test('sign-in on a new browser, dark mode on a phone, and sign-out', async () => {
    const phone = await chrome.browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: 'dark' });
    try {
      const page = await phone.newPage();
      const response = await page.goto(`${server.baseUrl}/signin`);
      assertWellServed(response);
      await page.fill('#display_name', 'Erin');
      await Promise.all([page.waitForURL(`${server.baseUrl}/`), page.click('button:has-text("Continue as someone new")')]);
      assert.ok((await page.locator('header').innerText()).includes('Erin'));
      const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(background, 'rgb(17, 17, 24)', 'dark mode follows the system');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page is wider than a phone by ${overflow}px`);
      await shot(page, 'home-phone-dark');
      // A sign-in form posted from elsewhere (no nonce cookie) is refused.
      const forged = await fetch(`${server.baseUrl}/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ how: 'new', display_name: 'Mallory', form_token: '1.2' }).toString(),
      });
      assert.equal(forged.status, 403);
      await Promise.all([page.waitForURL(`${server.baseUrl}/`), page.click('button:has-text("Sign out")')]);
      assert.ok((await page.locator('header').innerText()).includes('Sign in'));
    } finally {
      await phone.close();
    }
  });
});
