#!/usr/bin/env bash
# Installs everything weft needs to build, test and benchmark on a fresh Debian 12 machine.
# Idempotent and non-interactive; run as root (or with sudo available).
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config      # toolchain
  clang libclang-rt-14-dev              # libFuzzer targets + sanitizer runtimes
  libopenblas-dev                       # BLAS for F32 batched matmul
  libcmocka-dev                         # unit-test framework
  python3 python3-numpy                 # independent numerical reference in tests
  gnuplot-nox                           # benchmark plots
  libjansson-dev                        # JSON (data sets, traces, HTTP API)
  libmicrohttpd-dev                     # HTTP server (weft serve)
  libcurl4-openssl-dev                  # HTTP client (weft bench serve)
  curl                                  # integration tests
  openmpi-bin libopenmpi-dev            # tensor parallelism over MPI (--tp N under mpirun)
)

# The openai Node client for the integration tests needs node + npm; the base image may ship
# its own, which Debian's nodejs package would conflict with.
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The pinned openai client for tests/test_openai_node.sh: `npm ci` from package-lock.json when
# node_modules is missing or the lock file changed since the last install (npm keeps a copy of
# the lock it installed in node_modules/.package-lock.json). Tests then need no network.
NODE_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
if [ -f "$NODE_DIR/package-lock.json" ]; then
  stamp="$NODE_DIR/node_modules/.weft-lock-sha256"
  want=$(sha256sum "$NODE_DIR/package-lock.json" | cut -d' ' -f1)
  if [ ! -d "$NODE_DIR/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund)
    echo "$want" >"$stamp"
  fi
fi
echo "setup: all dependencies present"
