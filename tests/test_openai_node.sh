#!/usr/bin/env bash
# test_openai_node.sh — weft serve checked with the official `openai` Node client: starts a
# server with an API key on a free port and runs `node --test tests/node/` against it
# (completions, chat, streaming with usage, models, APIError statuses, seeds). The client is
# pinned in tests/node/package-lock.json and installed by scripts/setup.sh (`npm ci`), so no
# network is needed here. Skips (77) loudly without node, the installed client or ../shared.
# usage: tests/test_openai_node.sh BUILD_DIR SHARED_DIR
set -euo pipefail
build=$1
shared=${2:-}
src=$(cd "$(dirname "$0")/.." && pwd)
source "$src/tests/support/serve_lib.sh"

command -v node >/dev/null || skip "node is not installed (scripts/setup.sh installs it)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || skip "node $(node --version) is too old (need >= 18)"
[ -f "$src/tests/node/node_modules/openai/package.json" ] ||
    skip "the openai client is not installed: run scripts/setup.sh (npm ci in tests/node)"
require_tools

key="sk-weft-test-$$"
auth=(-H "Authorization: Bearer $key")
start_server node --api-key "$key" --ctx 256 --threads 2
export WEFT_TEST_URL=$url WEFT_TEST_KEY=$key WEFT_TEST_MODEL=stories260K
# Node's runner gives each file its own process; a bound on the whole run as a backstop.
rc=0
( cd "$src/tests/node" && timeout $((120 * slow)) node --test --test-reporter=spec . ) \
    >"$tmp/node.out" 2>&1 || rc=$?
cat "$tmp/node.out"
[ "$rc" -eq 0 ] || fail "node --test exited $rc"
grep -qE '^ℹ pass [1-9]' "$tmp/node.out" || fail "no passing node tests were reported"
grep -qE '^ℹ fail 0' "$tmp/node.out" || fail "node tests failed"
healthy || fail "server unhealthy after the node suite"
stop_server "$pid"
echo "PASS"
