// The consent page, driven by a real browser: headless Debian Chromium through playwright-core.
//
// A test client registers with a loopback redirect URI served by a tiny node listener, builds an
// authorization URL with PKCE S256, and a person approves or denies on the page. Covers prompt
// mode (approve, deny, a remembered person, a new browser without the cookie), passphrase mode
// (wrong then right passphrase), the page without JavaScript, and its anti-framing headers.
//
// The browser is $CHROMIUM_PATH or /usr/bin/chromium. One screenshot of the consent page is
// written to $CONSENT_SCREENSHOT or /tmp/consent.png.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
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

const SCREENSHOT = process.env.CONSENT_SCREENSHOT || '/tmp/consent.png';
const CLIENT_NAME = 'Consent Test App';
const PASSPHRASE = 'correct horse battery staple';

let chrome;
let browser;
let callback;

// Three browser starts of at most four 15 s steps each fit in the hook's time, so a browser
// that hangs is reported here, with its progress lines, rather than as the file timing out.
before(
  async () => {
    chrome = await startBrowser();
    browser = chrome.browser;
    callback = await startCallbackServer();
  },
  { timeout: 170_000 },
);

after(async () => {
  await chrome?.close();
  await callback?.close();
});

/**
 * Opens the consent page for `client` in `context`. Returns the page, the navigation response
 * and what the test needs to finish the flow (state and PKCE verifier).
 */
async function openConsent(server, client, context) {
  const { verifier, challenge } = pkce();
  const state = randomState();
  callback.clear();
  const page = await context.newPage();
  // Fail a stuck step with playwright's message (what it waited for) well inside the test's time.
  page.setDefaultTimeout(15_000);
  const url = authorizeUrl(server, {
    clientId: client.client_id,
    redirectUri: callback.redirectUri,
    challenge,
    state,
  });
  const response = await page.goto(url);
  assert.equal(response.status(), 200, `the consent page answered ${response.status()}`);
  return { page, response, state, verifier };
}

/** Clicks a decision button and waits for the POST /authorize answer (before any redirect). */
async function decide(page, decision) {
  const [answer] = await Promise.all([
    page.waitForResponse(
      (response) => response.request().method() === 'POST' && new URL(response.url()).pathname === '/authorize',
    ),
    page.click(`button[name="decision"][value="${decision}"]`),
  ]);
  if (answer.status() === 403) {
    // Say plainly what the browser sent: the usual cause is the Origin guard.
    const origin = await answer.request().headerValue('origin');
    assert.fail(
      `POST /authorize from the consent page's own form was refused with 403 (request Origin: ${origin}): ` +
        `${await answer.text()}`,
    );
  }
  return answer;
}

/** Waits for the redirect to reach our callback listener; checks state and iss. */
async function callbackFor(server, state) {
  const { path, query } = await callback.next();
  assert.equal(path, '/callback');
  assert.equal(query.state, state, 'the state comes back unchanged');
  assert.equal(query.iss, server.issuer, 'RFC 9207: iss names our issuer');
  return query;
}

/** Exchanges a code at /token and returns the access token. */
async function tokenFor(server, client, code, verifier) {
  const { status, body } = await exchangeCode(server, {
    clientId: client.client_id,
    redirectUri: callback.redirectUri,
    code,
    verifier,
  });
  assert.equal(status, 200, `/token answered ${status}: ${JSON.stringify(body)}`);
  assert.equal(body.token_type.toLowerCase(), 'bearer');
  assert.deepEqual(body.scope.split(' ').sort(), ['mcp:read', 'mcp:write']);
  return body.access_token;
}

async function text(page) {
  return (await page.locator('body').innerText()).replace(/\s+/g, ' ');
}

describe('prompt mode', () => {
  let server;
  let client;

  before(async () => {
    server = await startServer({ approval: 'prompt' });
    client = await registerClient(server.issuer, {
      client_name: CLIENT_NAME,
      redirect_uris: [callback.redirectUri],
    });
  });

  after(async () => {
    await server?.stop();
  });

  test('approve without JavaScript, then a remembered person approves in one click', async () => {
    // JavaScript off for the whole context: the page is a plain HTML form.
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const first = await openConsent(server, client, context);
      const headers = first.response.headers();
      assert.equal(headers['x-frame-options']?.toUpperCase(), 'DENY', JSON.stringify(headers));
      assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/, JSON.stringify(headers));
      assert.match(headers['cache-control'] ?? '', /no-store/);

      const page = first.page;
      const shown = await text(page);
      assert.ok(shown.includes(CLIENT_NAME), `the client name is not on the page: ${shown}`);
      assert.ok(shown.includes(`127.0.0.1:${callback.port}`), `the redirect host is not on the page: ${shown}`);
      assert.ok(!/You are .+ here/.test(shown), 'a first-time person is not greeted by name');
      assert.equal(await page.locator('#display_name').isVisible(), true);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });

      // Allow is refused by the browser while the name is empty (required field).
      await page.click('button[value="approve"]');
      await page.waitForTimeout(200);
      assert.equal(callback.pending, 0, 'no redirect without a name');

      await page.fill('#display_name', 'Ada Lovelace');
      const answer = await decide(page, 'approve');
      assert.equal(answer.status(), 303);
      const query = await callbackFor(server, first.state);
      assert.equal(query.error, undefined, JSON.stringify(query));
      assert.ok(query.code, JSON.stringify(query));
      await page.waitForURL(`${callback.redirectUri}?**`);
      assert.equal(await page.locator('#done').innerText(), 'Callback received.');

      const token = await tokenFor(server, client, query.code, first.verifier);
      const listing = await rest(server, token, 'GET', '/channels');
      assert.equal(listing.status, 200, JSON.stringify(listing.body));
      assert.deepEqual(listing.body, { channels: [] });
      // The code is single use, and a replay revokes what it was exchanged for (RFC 6749 §4.1.2).
      const replay = await exchangeCode(server, {
        clientId: client.client_id,
        redirectUri: callback.redirectUri,
        code: query.code,
        verifier: first.verifier,
      });
      assert.equal(replay.status, 400, JSON.stringify(replay.body));
      assert.equal(replay.body.error, 'invalid_grant');
      assert.equal((await rest(server, token, 'GET', '/channels')).status, 401, 'the replayed grant is revoked');

      // Same browser (the cookie remembers the person): greeted by name, one click. Twice, for
      // two independent grants.
      const remembered = async () => {
        const next = await openConsent(server, client, context);
        const greeting = await text(next.page);
        assert.ok(greeting.includes('You are Ada Lovelace here.'), `no greeting by name: ${greeting}`);
        assert.equal(await next.page.locator('#display_name').isVisible(), false, 'the name field hides under "Not you?"');
        assert.equal(await next.page.locator('details summary').innerText(), 'Not you?');
        assert.equal((await decide(next.page, 'approve')).status(), 303);
        const answer = await callbackFor(server, next.state);
        assert.ok(answer.code, JSON.stringify(answer));
        await next.page.close();
        return tokenFor(server, client, answer.code, next.verifier);
      };
      const firstToken = await remembered();
      const secondToken = await remembered();
      assert.notEqual(firstToken, secondToken);

      // Both tokens are the same person: a channel made with one is listed with the other.
      const created = await rest(server, firstToken, 'POST', '/channels', { name: 'Ada table', slots: ['invite:ada', 'invite:guest'] });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const channelId = created.body.channel.channel_id;
      const seen = await rest(server, secondToken, 'GET', '/channels');
      assert.equal(seen.status, 200);
      assert.deepEqual(seen.body.channels.map((channel) => channel.channel_id), [channelId]);
      assert.equal(seen.body.channels[0].you_are_admin, true);
      const view = await rest(server, secondToken, 'GET', `/channels/${channelId}`);
      assert.equal(view.status, 200, JSON.stringify(view.body));
      const ada = view.body.slots.find((slot) => slot.slot === 'ada');
      assert.equal(ada.holder, 'Ada Lovelace', 'the display name typed on the page is the seat holder');
      assert.equal(ada.yours, true);
    } finally {
      await context.close();
    }
  });

  test('a browser without the cookie is asked for a name again', async () => {
    const context = await browser.newContext();
    try {
      const { page, state, verifier } = await openConsent(server, client, context);
      const shown = await text(page);
      assert.ok(!shown.includes('You are Ada Lovelace'), `a new browser is greeted as Ada: ${shown}`);
      assert.equal(await page.locator('#display_name').isVisible(), true);
      await page.fill('#display_name', 'Grace Hopper');
      assert.equal((await decide(page, 'approve')).status(), 303);
      const query = await callbackFor(server, state);
      const token = await tokenFor(server, client, query.code, verifier);
      // Somebody else: none of Ada's channels.
      const listing = await rest(server, token, 'GET', '/channels');
      assert.deepEqual(listing.body, { channels: [] });
    } finally {
      await context.close();
    }
  });

  test('deny sends access_denied back to the client', async () => {
    const context = await browser.newContext();
    try {
      const { page, state } = await openConsent(server, client, context);
      // Deny needs no name.
      const answer = await decide(page, 'deny');
      assert.equal(answer.status(), 303);
      const query = await callbackFor(server, state);
      assert.equal(query.error, 'access_denied', JSON.stringify(query));
      assert.equal(query.code, undefined, 'no code after a denial');
    } finally {
      await context.close();
    }
  });
});

describe('passphrase mode', () => {
  let server;
  let client;

  before(async () => {
    server = await startServer({ approval: 'passphrase', passphrase: PASSPHRASE });
    client = await registerClient(server.issuer, {
      client_name: CLIENT_NAME,
      redirect_uris: [callback.redirectUri],
    });
  });

  after(async () => {
    await server?.stop();
  });

  test('a wrong passphrase is refused on the page; the right one lets the person in', async () => {
    const context = await browser.newContext();
    try {
      const { page, state, verifier } = await openConsent(server, client, context);
      assert.equal(await page.locator('#passphrase').getAttribute('type'), 'password');

      await page.fill('#display_name', 'Mallory');
      await page.fill('#passphrase', 'not the passphrase');
      const refused = await decide(page, 'approve');
      assert.equal(refused.status(), 401);
      const shown = await text(page);
      assert.ok(shown.includes('That passphrase is not right'), `no alert about the passphrase: ${shown}`);
      assert.match(await page.locator('[role="alert"]').innerText(), /That passphrase is not right/);
      assert.equal(new URL(page.url()).origin, server.issuer, 'the browser stays on the consent page');
      await page.waitForTimeout(200);
      assert.equal(callback.pending, 0, 'no redirect after a wrong passphrase');
      const headers = refused.headers();
      assert.equal(headers['x-frame-options']?.toUpperCase(), 'DENY');
      assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);

      // The re-rendered page is a working form: try again with the right passphrase.
      if (!(await page.locator('#display_name').isVisible())) {
        await page.click('details summary');
      }
      await page.fill('#display_name', 'Mallory');
      await page.fill('#passphrase', PASSPHRASE);
      const accepted = await decide(page, 'approve');
      assert.equal(accepted.status(), 303);
      const query = await callbackFor(server, state);
      assert.equal(query.error, undefined, JSON.stringify(query));
      const token = await tokenFor(server, client, query.code, verifier);
      assert.equal((await rest(server, token, 'GET', '/channels')).status, 200);
    } finally {
      await context.close();
    }
  });

  test('after ten attempts from one address, even the right passphrase waits', async () => {
    const context = await browser.newContext();
    try {
      const { page } = await openConsent(server, client, context);
      // The test above used two of this address's ten attempts.
      let last;
      for (let attempt = 0; attempt < 9; attempt += 1) {
        if (!(await page.locator('#display_name').isVisible())) {
          await page.click('details summary');
        }
        await page.fill('#display_name', 'Guesser');
        await page.fill('#passphrase', attempt < 8 ? 'still not it' : PASSPHRASE);
        last = await decide(page, 'approve');
      }
      assert.equal(last.status(), 429);
      assert.match(await page.locator('[role="alert"]').innerText(), /Too many passphrase attempts/);
      await page.waitForTimeout(200);
      assert.equal(callback.pending, 0, 'no redirect once the attempts are used up');
    } finally {
      await context.close();
    }
  });
});
