# serve_lib.sh — helpers shared by the `weft serve` test scripts (sourced, not run): a temp
# directory and a trap that kills every server and background job we started, loud skips,
# starting a server on a free port (port 0) and waiting for its listening line, reading
# /metrics, and waiting until the server is idle again. Every network call has a timeout.
# The sourcing script sets $build and $shared first (its two arguments).
weft="$build/weft"
gguf=$shared/models/stories260K.gguf
tmp=$(mktemp -d)
pids=()   # servers
bgpids=() # background jobs (load loops, clients)
cleanup() { # runs under set -e: nothing here may fail
    local p
    for p in "${bgpids[@]}"; do # the job and the clients it started
        pkill -KILL -P "$p" 2>/dev/null || true
        kill -KILL "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp" || true
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    local f
    for f in "$tmp"/*.err; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
    exit 1
}
skip() { echo "SKIP: $*"; echo "SKIP: $*" >&2; exit 77; }
# Under ASan+UBSan (make san sets WEFT_SANITIZED) everything is several times slower.
slow=1
[ -n "${WEFT_SANITIZED:-}" ] && slow=4
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3 || true)

require_tools() { # curl, python3, the model
    command -v curl >/dev/null || skip "curl is not installed"
    [ -n "$PY" ] || skip "python3 is not installed"
    [ -x "$weft" ] || fail "$weft not built"
    [ -f "$gguf" ] || skip "$gguf not found (pass the shared directory as the second argument)"
}

# start_server NAME ARGS...: weft serve on 127.0.0.1, port 0; waits for the listening line and
# sets $url, $pid.
start_server() {
    local name=$1 i
    shift
    "$weft" serve --model "$gguf" --host 127.0.0.1 --port 0 "$@" 2>"$tmp/$name.err" &
    pid=$!
    pids+=("$pid")
    url=
    for i in $(seq 1 $((400 * slow))); do
        url=$(grep -o 'listening on http://[^ ]*' "$tmp/$name.err" | head -1 | sed 's/listening on //') || true
        [ -n "$url" ] && break
        kill -0 "$pid" 2>/dev/null || fail "server $name exited early: $(cat "$tmp/$name.err")"
        sleep 0.05
    done
    [ -n "$url" ] || fail "server $name did not print its listening line in time"
    # the port is bound before the model loads: wait for /health 200
    for i in $(seq 1 $((200 * slow))); do
        [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$url/health")" = 200 ] && return 0
        sleep 0.05
    done
    fail "server $name never became healthy"
}

# stop_server: SIGTERM, expect a clean exit 0 within a bound.
stop_server() {
    local p=$1 i
    kill -TERM "$p" 2>/dev/null || fail "server $p is not running"
    for i in $(seq 1 $((200 * slow))); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$p" 2>/dev/null && fail "server $p did not exit after SIGTERM"
    local rc=0
    wait "$p" || rc=$?
    [ "$rc" -eq 0 ] || fail "server $p exited $rc after SIGTERM"
}

# metric NAME [FILE]: the value of one metric line from /metrics (or from FILE).
metric() {
    if [ -n "${2:-}" ]; then
        awk -v k="$1" '$1 == k { print $2 }' "$2"
    else
        curl -s -m 5 "${auth[@]}" "$url/metrics" | awk -v k="$1" '$1 == k { print $2 }'
    fi
}
auth=()

# wait_idle SECONDS: polls /metrics until running = waiting = 0 and KV usage = 0.
wait_idle() {
    local i m
    for i in $(seq 1 $(($1 * 10))); do
        m=$(curl -s -m 5 "${auth[@]}" "$url/metrics") || true
        if [ "$(awk '$1 == "weft_requests_running" { print $2 }' <<<"$m")" = 0 ] &&
            [ "$(awk '$1 == "weft_requests_waiting" { print $2 }' <<<"$m")" = 0 ] &&
            [ "$(awk '$1 == "weft_kv_cache_usage_ratio" { print $2 }' <<<"$m")" = 0.000000 ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "$m" | grep -E '^weft_(requests|kv)' >&2
    return 1
}

# healthy: /health 200 and a short completion works.
healthy() {
    [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$url/health")" = 200 ] || return 1
    [ "$(curl -s -m $((20 * slow)) -o "$tmp/healthy.json" -w '%{http_code}' "${auth[@]}" \
        -H 'Content-Type: application/json' \
        -d '{"prompt":"Once upon a time","max_tokens":4,"temperature":0}' \
        "$url/v1/completions")" = 200 ] || return 1
    "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["usage"]["completion_tokens"] == 4' \
        "$tmp/healthy.json"
}

# vmrss_kb PID
vmrss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
