// Shared helpers for the JavaScript suite: the real `mcp-multiplayer` binary on port 0 in a
// temporary data directory, a loopback "OAuth callback" HTTP listener, PKCE and client
// registration.
//
// The binary is $MCP_MULTIPLAYER_BIN, or target/debug/mcp-multiplayer in the workspace.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const WORKSPACE = resolve(HERE, '..', '..');
export const BINARY =
  process.env.MCP_MULTIPLAYER_BIN || join(WORKSPACE, 'target', 'debug', 'mcp-multiplayer');

// The line `serve` prints on stdout once it listens (documented where main.rs prints it); read
// here only, by startServer, which every JavaScript test uses.
const LISTENING =
  /mcp-multiplayer listening on (http:\/\/127\.0\.0\.1:(\d+)) \(MCP endpoint (\S+)\)/;
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 8_000;

/**
 * Starts `mcp-multiplayer serve --auth oauth` with the given approval mode and waits until
 * /healthz answers. Returns { baseUrl, mcpUrl, port, log(), stop() }; stop() sends SIGTERM,
 * insists on a clean exit and removes the temporary directory.
 */
export async function startServer({ approval = 'auto', passphrase, extraArgs = [] } = {}) {
  if (!existsSync(BINARY)) {
    throw new Error(`server binary ${BINARY} not found; run \`cargo build -p mcp-multiplayer\``);
  }
  const root = mkdtempSync(join(tmpdir(), 'mcp-js-'));
  const args = [
    'serve',
    '--listen', '127.0.0.1:0',
    '--data-dir', join(root, 'data'),
    '--auth', 'oauth',
    '--approval', approval,
    ...(passphrase !== undefined ? ['--passphrase', passphrase] : []),
    ...extraArgs,
  ];
  const child = spawn(BINARY, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { RUST_LOG: 'info,sqlx=warn,rmcp=warn', ...process.env, NO_COLOR: '1' },
  });
  let output = '';
  const exited = new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
  const append = (chunk) => {
    output += chunk.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stderr.on('data', append);

  const log = (lines = 40) =>
    `--- server log (${approval}, tail) ---\n` + output.split('\n').slice(-lines).join('\n');

  const listening = await new Promise((done, fail) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`the server printed no listening line in ${START_TIMEOUT_MS} ms\n${log()}`));
    }, START_TIMEOUT_MS);
    child.stdout.on('data', (chunk) => {
      append(chunk);
      stdout += chunk.toString();
      const match = LISTENING.exec(stdout);
      if (match) {
        clearTimeout(timer);
        done({ baseUrl: match[1], port: Number(match[2]), mcpUrl: match[3] });
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      fail(new Error(`the server exited (${code ?? signal}) before listening\n${log()}`));
    });
  });
  if (listening.mcpUrl !== `${listening.baseUrl}/mcp`) {
    child.kill('SIGKILL');
    throw new Error(`unexpected MCP endpoint ${listening.mcpUrl} for ${listening.baseUrl}`);
  }

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      const response = await fetch(`${listening.baseUrl}/healthz`);
      if (response.ok && (await response.json()).status === 'ok') break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`/healthz never answered ok\n${log()}`);
    }
    await sleep(50);
  }

  let stopped = false;
  async function stop() {
    if (stopped) return;
    stopped = true;
    child.kill('SIGTERM');
    let timer;
    const outcome = await Promise.race([
      exited,
      new Promise((done) => {
        timer = setTimeout(() => done(null), STOP_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    rmSync(root, { recursive: true, force: true });
    if (outcome === null) {
      child.kill('SIGKILL');
      throw new Error(`the server did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM\n${log()}`);
    }
    if (outcome.code !== 0) {
      throw new Error(`the server exited with ${outcome.code ?? outcome.signal} after SIGTERM\n${log()}`);
    }
  }

  return { ...listening, issuer: listening.baseUrl, dataDir: join(root, 'data'), log, stop };
}

export function sleep(ms) {
  return new Promise((done) => setTimeout(done, ms));
}

/** A port that was free a moment ago (for listeners that must be named before they start). */
export async function freePort() {
  const server = createServer();
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address();
  await new Promise((done) => server.close(done));
  return port;
}

/**
 * A loopback HTTP listener standing in for an OAuth client's redirect URI. Every request to
 * /callback is recorded (its URL's query as an object) and answered 200 with a short page.
 * `next()` resolves with the next request's query (or one already received and not taken).
 */
export async function startCallbackServer() {
  const received = [];
  const waiting = [];
  const server = createServer((request, response) => {
    const url = new URL(request.url, 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      // Browsers also ask for /favicon.ico and the like.
      response.writeHead(404).end();
      return;
    }
    const query = Object.fromEntries(url.searchParams);
    const entry = { path: url.pathname, query };
    const waiter = waiting.shift();
    if (waiter) waiter(entry);
    else received.push(entry);
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end('<!doctype html><title>Callback</title><p id="done">Callback received.</p>');
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address();
  return {
    port,
    redirectUri: `http://127.0.0.1:${port}/callback`,
    /** Resolves with { path, query } of the next callback request; rejects after timeoutMs. */
    next(timeoutMs = 10_000) {
      if (received.length) return Promise.resolve(received.shift());
      return new Promise((done, fail) => {
        const timer = setTimeout(() => {
          const index = waiting.indexOf(waiter);
          if (index >= 0) waiting.splice(index, 1);
          fail(new Error(`no callback request within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = (entry) => {
          clearTimeout(timer);
          done(entry);
        };
        waiting.push(waiter);
      });
    },
    /** Forgets callback requests nobody took (a failed test's leftovers). */
    clear() {
      received.length = 0;
    },
    /** How many callback requests arrived that nobody took yet. */
    get pending() {
      return received.length;
    },
    close() {
      server.closeAllConnections();
      return new Promise((done) => server.close(done));
    },
  };
}

function base64url(buffer) {
  return buffer.toString('base64url');
}

/** A PKCE pair: { verifier, challenge } with the S256 method. */
export function pkce() {
  const verifier = base64url(randomBytes(32));
  const challenge = base64url(createHash('sha256').update(verifier).digest());
  return { verifier, challenge };
}

export function randomState() {
  return base64url(randomBytes(16));
}

/** Dynamic client registration (RFC 7591); returns the server's answer (client_id etc.). */
export async function registerClient(issuer, metadata) {
  const response = await fetch(`${issuer}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token_endpoint_auth_method: 'none', ...metadata }),
  });
  const body = await response.json();
  if (response.status !== 201 && response.status !== 200) {
    throw new Error(`/register answered ${response.status}: ${JSON.stringify(body)}`);
  }
  return body;
}

/** The authorization URL for a public client, with PKCE S256, state and the MCP resource. */
export function authorizeUrl(server, { clientId, redirectUri, challenge, state, scope = 'mcp:read mcp:write' }) {
  const url = new URL(`${server.issuer}/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    scope,
    resource: server.mcpUrl,
  }).toString();
  return url.toString();
}

/** Exchanges an authorization code at /token (public client); returns { status, body }. */
export async function exchangeCode(server, { clientId, redirectUri, code, verifier }) {
  const response = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      client_id: clientId,
      code_verifier: verifier,
      resource: server.mcpUrl,
    }).toString(),
  });
  return { status: response.status, body: await response.json() };
}

/** A REST call with a bearer token; returns { status, body, headers }. */
export async function rest(server, token, method, path, body) {
  const response = await fetch(`${server.baseUrl}/api${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/**
 * Resolves like `promise`, or rejects with "<what> took longer than <ms> ms". Playwright's own
 * timeouts do not cover everything: a browser that accepts the DevTools connection and then
 * never answers keeps `connectOverCDP` waiting past its `timeout`.
 */
export function within(ms, what, promise) {
  let timer;
  const deadline = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Debian's browser binary itself rather than its /usr/bin/chromium wrapper, which adds flags
 * for a desktop (GPU rasterization, bundled extensions loaded at start) that a headless test
 * does not want.
 */
function defaultChromium() {
  const binary = '/usr/lib/chromium/chromium';
  return existsSync(binary) ? binary : '/usr/bin/chromium';
}

/** A progress line on stderr, with the time since `since`: CI keeps it when a test hangs. */
function progress(since, text) {
  console.error(`chromium: ${text} (${Date.now() - since} ms)`);
}

/**
 * Starts headless Chromium ($CHROMIUM_PATH or /usr/bin/chromium) as our own child process and
 * connects playwright-core to it over CDP, then opens and closes one page to prove the browser
 * answers. Returns { browser, close() }.
 *
 * Why not `chromium.launch()`: starts in CI hung past the file's two minutes without ever
 * reporting playwright's own timeout, and left nothing to read. Owning the process gives a hard
 * deadline on every step that kills it and tries again, its stderr in the error, a fresh
 * profile per start, and a progress line per step, so a slow or stuck step shows in the output.
 */
export async function startBrowser({ attempts = 3, timeoutMs = 15_000 } = {}) {
  const { chromium } = await import('playwright-core');
  const executable = process.env.CHROMIUM_PATH || defaultChromium();
  let lastError;
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    const started = Date.now();
    const profile = mkdtempSync(join(tmpdir(), 'mcp-chromium-'));
    const child = spawn(
      executable,
      [
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        // This machine's network is closed: background fetches only add failed lookups.
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--disable-extensions',
        '--disable-breakpad',
        '--no-first-run',
        '--no-default-browser-check',
        // No keyring lookup over D-Bus, which can wait on a bus nobody answers.
        '--password-store=basic',
        '--use-mock-keychain',
        '--mute-audio',
        `--user-data-dir=${profile}`,
        '--remote-debugging-address=127.0.0.1',
        '--remote-debugging-port=0',
        'about:blank',
      ],
      // Its own process group, so that killing the group takes Chromium's helper processes
      // (renderers, the crash handler) too: left running, they keep writing to the profile
      // and hold the stderr pipe, which keeps this test file from ending.
      { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
    );
    progress(started, `attempt ${attempt} of ${attempts}: started ${executable} as pid ${child.pid}`);
    let stderr = '';
    const exited = new Promise((done) => child.once('exit', (code, signal) => done(code ?? signal)));
    const kill = async () => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      await Promise.race([exited, sleep(5_000)]);
      try {
        rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
      } catch (error) {
        // A temporary profile left behind is no test failure.
        progress(started, `could not remove ${profile}: ${error.message}`);
      }
    };
    let browser;
    try {
      const endpoint = await within(
        timeoutMs,
        'waiting for the DevTools endpoint',
        new Promise((done, fail) => {
          child.stderr.on('data', (chunk) => {
            stderr += chunk.toString();
            if (stderr.length > 50_000) stderr = stderr.slice(-20_000);
            const match = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
            if (match) done(match[1]);
          });
          child.once('error', fail);
          exited.then((status) => fail(new Error(`chromium exited (${status}) before listening`)));
        }),
      );
      progress(started, `DevTools listening at ${endpoint}`);
      browser = await within(
        timeoutMs,
        'connecting over CDP',
        chromium.connectOverCDP(endpoint, { timeout: timeoutMs }),
      );
      progress(started, 'connected');
      await within(
        timeoutMs,
        'opening and closing a first page',
        (async () => {
          const context = await browser.newContext();
          const page = await context.newPage();
          await page.goto('about:blank');
          await context.close();
        })(),
      );
      progress(started, `ready after attempt ${attempt}`);
      const ready = browser;
      return {
        browser: ready,
        async close() {
          await Promise.race([ready.close().catch(() => {}), sleep(5_000)]);
          await kill();
        },
      };
    } catch (error) {
      lastError = error;
      const tail = stderr.split('\n').slice(-15).join('\n');
      progress(
        started,
        `attempt ${attempt} of ${attempts} failed: ${error.message}\n--- chromium stderr (tail) ---\n${tail}`,
      );
      // A browser that never answered must not keep this process alive.
      if (browser) await Promise.race([browser.close().catch(() => {}), sleep(2_000)]);
      await kill();
    }
  }
  throw lastError;
}
