#!/usr/bin/env bash
# test_server_overload.sh — weft serve past its queue: --max-queue 4 and a KV cache for two
# sequences, then waves of 40 simultaneous clients (10 streaming). No crash; every answer is
# either 200 with a complete body or 429 queue_full with Retry-After (tests/support/overload.py);
# some 429s in every wave, and /metrics counts exactly the 200s as ok and the 429s as rejected.
# Server memory stays bounded: VmHWM under a generous limit, and VmRSS not growing from the
# first wave to the last. Healthy and idle afterwards.
# usage: tests/test_server_overload.sh BUILD_DIR SHARED_DIR
set -euo pipefail
build=$1
shared=${2:-}
src=$(cd "$(dirname "$0")/.." && pwd)
source "$src/tests/support/serve_lib.sh"
require_tools

max_queue=4
clients=40
streaming=10
waves=4
start_server busy --ctx 512 --kv-cache 1024 --threads 1 --max-queue $max_queue
healthy || fail "not healthy at the start"
curl -s -m 5 "$url/metrics" >"$tmp/m0"
ok0=$(metric 'weft_requests_total{status="ok"}' "$tmp/m0")
rej0=$(metric 'weft_requests_total{status="rejected"}' "$tmp/m0")

ok_all=0 rej_all=0 rss_first=0
for w in $(seq 1 $waves); do
    rc=0
    timeout $((120 * slow)) "$PY" "$src/tests/support/overload.py" "$url" $clients $streaming 100 \
        $slow >"$tmp/wave$w.out" 2>&1 || rc=$?
    cat "$tmp/wave$w.out"
    kill -0 "$pid" 2>/dev/null || fail "the server died in wave $w"
    [ "$rc" -eq 0 ] || fail "wave $w: some answers were neither a complete 200 nor a 429"
    ok=$(sed -n 's/^overload: ok=\([0-9]*\) .*/\1/p' "$tmp/wave$w.out")
    rej=$(sed -n 's/.* rejected=\([0-9]*\) .*/\1/p' "$tmp/wave$w.out")
    [ $((ok + rej)) -eq $clients ] || fail "wave $w: $ok + $rej answers for $clients clients"
    [ "$rej" -ge 1 ] || fail "wave $w: no 429 with $clients clients and --max-queue $max_queue"
    [ "$ok" -ge 1 ] || fail "wave $w: nothing was accepted"
    ok_all=$((ok_all + ok)) rej_all=$((rej_all + rej))
    wait_idle $((5 * slow)) || fail "not idle after wave $w"
    rss=$(vmrss_kb "$pid")
    echo "wave $w: $ok accepted and completed, $rej rejected with 429; VmRSS $rss kB"
    # the first wave warms allocators and caches; later waves must not grow
    [ "$w" -eq 1 ] && rss_first=$rss
done

curl -s -m 5 "$url/metrics" >"$tmp/m1"
ok_m=$(( $(metric 'weft_requests_total{status="ok"}' "$tmp/m1") - ok0 ))
rej_m=$(( $(metric 'weft_requests_total{status="rejected"}' "$tmp/m1") - rej0 ))
[ "$ok_m" -eq "$ok_all" ] || fail "metrics count $ok_m ok, the clients saw $ok_all"
[ "$rej_m" -eq "$rej_all" ] || fail "metrics count $rej_m rejected, the clients saw $rej_all"
[ "$(metric 'weft_requests_total{status="error"}' "$tmp/m1")" = 0 ] || fail "errors counted"
echo "ok: metrics agree ($ok_all ok, $rej_all rejected)"

# memory: ASan's quarantine and shadow make the sanitized build far larger
limit_kb=$((256 * 1024)) growth_kb=$((16 * 1024))
[ -n "${WEFT_SANITIZED:-}" ] && limit_kb=$((2048 * 1024)) growth_kb=$((128 * 1024))
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
[ "$hwm" -lt "$limit_kb" ] || fail "peak RSS $hwm kB over $limit_kb kB"
[ "$rss" -le $((rss_first + growth_kb)) ] ||
    fail "RSS grew from $rss_first kB after wave 1 to $rss kB after wave $waves"
echo "ok: peak RSS $hwm kB, RSS $rss_first -> $rss kB across waves"

healthy || fail "unhealthy after the overload"
stop_server "$pid"
echo "PASS"
