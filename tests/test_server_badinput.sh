#!/usr/bin/env bash
# test_server_badinput.sh — weft serve under hostile input: malformed JSON, invalid UTF-8, every
# known field with a wrong type or out of range, empty/odd prompts and messages, unknown fields,
# oversized and chunked bodies, the context limit, unknown routes, wrong methods, missing/wrong
# API keys, and raw-socket abuse (slow-loris stalls closed by --connection-timeout-s, oversized
# headers, garbage, pipelining). The cases live in tests/support/badinput.py (exact status +
# OpenAI error shape each). Throughout, a background load of good requests (completions, chat,
# streams) must keep succeeding, and the server must be healthy and idle at the end.
# usage: tests/test_server_badinput.sh BUILD_DIR SHARED_DIR
set -euo pipefail
build=$1
shared=${2:-}
src=$(cd "$(dirname "$0")/.." && pwd)
source "$src/tests/support/serve_lib.sh"
require_tools

ctx=128
max_body=65536
conn_timeout_s=2
key="sk-badinput-$$"
auth=(-H "Authorization: Bearer $key")
start_server bad --ctx $ctx --max-body-bytes $max_body --connection-timeout-s $conn_timeout_s \
    --api-key "$key" --threads 2

# load_worker ID: good requests until $tmp/stop appears (bounded in count and time); writes
# "OK FAILED" to $tmp/load.ID and the failures' details to $tmp/load.ID.log.
load_worker() {
    local id=$1 n=0 ok=0 bad=0 code body end=$((SECONDS + 120 * slow))
    while [ ! -f "$tmp/stop" ] && [ $n -lt 2000 ] && [ $SECONDS -lt $end ]; do
        case $((n % 3)) in
        0) body='{"prompt":"Once upon a time","max_tokens":6}'
           code=$(curl -s -m $((30 * slow)) -o "$tmp/w$id" -w '%{http_code}' "${auth[@]}" \
                  -d "$body" "$url/v1/completions") || true
           [ "$code" = 200 ] && grep -q '"completion_tokens":6' "$tmp/w$id" ;;
        1) body='{"messages":[{"role":"user","content":"Hi"}],"max_tokens":5}'
           code=$(curl -s -m $((30 * slow)) -o "$tmp/w$id" -w '%{http_code}' "${auth[@]}" \
                  -d "$body" "$url/v1/chat/completions") || true
           [ "$code" = 200 ] && grep -q '"finish_reason":"' "$tmp/w$id" ;;
        2) body='{"prompt":"The cat","max_tokens":8,"stream":true}'
           code=$(curl -sN -m $((30 * slow)) -o "$tmp/w$id" -w '%{http_code}' "${auth[@]}" \
                  -d "$body" "$url/v1/completions") || true
           [ "$code" = 200 ] && [ "$(tail -c 14 "$tmp/w$id")" = "data: [DONE]" ] ;;
        esac && ok=$((ok + 1)) || {
            bad=$((bad + 1))
            echo "request $n ($body): status $code: $(head -c 300 "$tmp/w$id" 2>/dev/null)" >>"$tmp/load.$id.log"
        }
        n=$((n + 1))
        echo "$ok $bad" >"$tmp/load.$id"
    done
}
workers=3
for i in $(seq 1 $workers); do
    echo "0 0" >"$tmp/load.$i"
    load_worker "$i" &
    bgpids+=($!)
done

t0=$SECONDS
rc=0
timeout $((150 * slow)) "$PY" "$src/tests/support/badinput.py" "$url" "$key" $ctx $max_body \
    $conn_timeout_s $slow >"$tmp/cases.out" 2>&1 || rc=$?
touch "$tmp/stop"
for p in "${bgpids[@]}"; do wait "$p" || true; done
bgpids=()
grep -v '^ok: ' "$tmp/cases.out" || true
[ "$rc" -eq 0 ] || fail "bad-input cases failed (exit $rc)"
n_cases=$(grep -c '^ok: ' "$tmp/cases.out")
[ "$n_cases" -ge 40 ] || fail "only $n_cases cases ran"
echo "ok: $n_cases bad-input cases in $((SECONDS - t0)) s"

ok=0 bad=0
for i in $(seq 1 $workers); do
    read -r o b <"$tmp/load.$i"
    ok=$((ok + o)) bad=$((bad + b))
done
echo "background load: $ok succeeded, $bad failed"
if [ "$bad" -ne 0 ]; then
    cat "$tmp"/load.*.log
    fail "$bad good requests failed during the bad-input cases"
fi
[ "$ok" -ge 15 ] || fail "only $ok good requests completed during the cases"

wait_idle 10 || fail "the server is not idle after the suite"
healthy || fail "the server is unhealthy after the suite"
# every refused request was counted, none as a server error
curl -s -m 5 "${auth[@]}" "$url/metrics" >"$tmp/m"
ce=$(metric 'weft_requests_total{status="client_error"}' "$tmp/m")
er=$(metric 'weft_requests_total{status="error"}' "$tmp/m")
[ "${ce%.*}" -ge 60 ] || fail "client_error counter $ce, expected >= 60"
[ "${er%.*}" -eq 0 ] || fail "error counter $er, expected 0"
echo "ok: healthy and idle afterwards (client_error $ce, error $er)"
stop_server "$pid"
echo "PASS"
