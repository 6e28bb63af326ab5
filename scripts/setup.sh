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
echo "setup: all dependencies present"
