#!/usr/bin/env bash
# test_server_disconnect.sh — 100 clients that hang up at random points (mid-request, in the
# queue, after the headers, mid-stream, during a non-streaming generation; FIN or RST), 16 at a
# time, against a server whose KV cache holds only a few sequences so that many wait. Then
# /metrics must show weft_requests_running 0, weft_requests_waiting 0 and
# weft_kv_cache_usage_ratio 0 within a few seconds, the cancellations must be counted (no
# errors), the server's threads and file descriptors must return to their baseline, and a
# normal request must still work. The clients are tests/support/disconnect.py.
# usage: tests/test_server_disconnect.sh BUILD_DIR SHARED_DIR
set -euo pipefail
build=$1
shared=${2:-}
src=$(cd "$(dirname "$0")/.." && pwd)
source "$src/tests/support/serve_lib.sh"
require_tools

start_server gone --ctx 512 --kv-cache 1024 --threads 1 --max-queue 64
healthy || fail "not healthy at the start"
threads0=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")
fds0=$(ls "/proc/$pid/fd" | wc -l)

seed=${WEFT_TEST_SEED:-$(date +%s)}
echo "seed $seed (set WEFT_TEST_SEED to replay)"
# sample the queue while the clients run: some of them must hang up while waiting
( max=0
  for _ in $(seq 1 $((600 * slow))); do
      [ -f "$tmp/clients.done" ] && break
      w=$(metric weft_requests_waiting) || true
      [ -n "$w" ] && [ "$w" -gt "$max" ] && max=$w
      echo "$max" >"$tmp/max_waiting"
      sleep 0.05
  done ) &
bgpids+=($!)
t0=$SECONDS
rc=0
timeout $((150 * slow)) "$PY" "$src/tests/support/disconnect.py" "$url" 100 16 "$seed" $slow \
    >"$tmp/clients.out" 2>&1 || rc=$?
touch "$tmp/clients.done"
cat "$tmp/clients.out"
[ "$rc" -eq 0 ] || fail "the clients failed (exit $rc)"
grep -q '^disconnect: 100 clients done' "$tmp/clients.out" || fail "not every client ran"
echo "ok: 100 clients hung up in $((SECONDS - t0)) s"
wait "${bgpids[0]}" || true
bgpids=()
max_waiting=$(cat "$tmp/max_waiting" 2>/dev/null || echo 0)
[ "$max_waiting" -ge 1 ] || fail "no request was ever seen waiting (max waiting $max_waiting)"
echo "ok: up to $max_waiting requests waited in the queue"

wait_idle $((5 * slow)) || fail "requests or KV cache still held after the clients left"
echo "ok: running 0, waiting 0, KV usage 0"

curl -s -m 5 "$url/metrics" >"$tmp/m"
cancelled=$(metric 'weft_requests_total{status="cancelled"}' "$tmp/m")
errors=$(metric 'weft_requests_total{status="error"}' "$tmp/m")
[ "${cancelled%.*}" -ge 20 ] || fail "only $cancelled cancellations counted"
[ "${errors%.*}" -eq 0 ] || fail "$errors requests counted as errors"
echo "ok: $cancelled cancellations counted, no errors"

# connection threads and per-request eventfds are released
for _ in $(seq 1 $((50 * slow))); do
    threads=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")
    fds=$(ls "/proc/$pid/fd" | wc -l)
    [ "$threads" -le "$threads0" ] && [ "$fds" -le "$fds0" ] && break
    sleep 0.1
done
[ "$threads" -le "$threads0" ] || fail "threads: $threads now, $threads0 before"
[ "$fds" -le "$fds0" ] || fail "file descriptors: $fds now, $fds0 before: $(ls -l "/proc/$pid/fd")"
echo "ok: threads ($threads) and fds ($fds) back to the baseline"

healthy || fail "a normal request failed afterwards"
curl -sN -m $((30 * slow)) -d '{"prompt":"Once upon a time","max_tokens":20,"stream":true}' \
    "$url/v1/completions" >"$tmp/sse" || fail "a normal stream failed afterwards"
[ "$(tail -c 14 "$tmp/sse")" = "data: [DONE]" ] || fail "the stream afterwards lacks [DONE]"
echo "ok: normal requests work afterwards"
stop_server "$pid"
echo "PASS"
