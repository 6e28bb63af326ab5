#!/usr/bin/env bash
# test_server.sh — end-to-end check of `weft serve` over real HTTP with curl: every endpoint,
# completions and chat (whole and streamed: SSE framing, [DONE], usage), greedy text equal to
# `weft run --temp 0`, stop strings, finish reasons, logprobs shape, auth, 404/405/413/400/429,
# queue timeout, /metrics counters, and a graceful SIGTERM with a stream in flight.
# Skips (77) loudly without ../shared (stories260K.gguf).
# usage: tests/test_server.sh BUILD_DIR SHARED_DIR
set -u
build=$1
shared=${2:-}
weft="$build/weft"
gguf=$shared/models/stories260K.gguf
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in "$tmp"/*.err; do [ -f "$f" ] && { echo "--- $f"; tail -5 "$f"; }; done
    exit 1
}
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }

# --- options (no model needed) ---
"$weft" serve --help >"$tmp/help" 2>&1 || fail "--help should exit 0"
for w in --model WEFT_MODEL --port WEFT_PORT --api-key WEFT_API_KEY --kv-cache --max-queue \
         --queue-timeout-ms --max-body-bytes --chat-template --shutdown-timeout-s --config; do
    grep -q -- "$w" "$tmp/help" || fail "--help lacks $w"
done
"$weft" serve --bogus 2>"$tmp/o.err"; [ $? -eq 2 ] || fail "an unknown option should exit 2"
"$weft" serve --model x --port 70000 2>"$tmp/o.err"; [ $? -eq 2 ] || fail "--port 70000 should exit 2"
grep -q -- "--port" "$tmp/o.err" || fail "bad --port message: $(cat "$tmp/o.err")"
WEFT_PORT=abc "$weft" serve --model x 2>"$tmp/o.err"; [ $? -eq 2 ] || fail "WEFT_PORT=abc should exit 2"
grep -q "WEFT_PORT" "$tmp/o.err" || fail "bad env message should name WEFT_PORT"
"$weft" serve 2>"$tmp/o.err"; [ $? -eq 2 ] || fail "no --model should exit 2"
echo "ok: options"

if [ ! -f "$gguf" ]; then
    echo "SKIP: $gguf not found (pass the shared directory as the second argument)"
    exit 77
fi

# start_server NAME ARGS...: starts weft serve on port 0, waits for the listening line, sets
# $url and $pid.
start_server() {
    local name=$1; shift
    "$weft" serve --model "$gguf" --port 0 "$@" 2>"$tmp/$name.err" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 1 200); do
        url=$(grep -o 'listening on http://[^ ]*' "$tmp/$name.err" | head -1 | sed 's/listening on //')
        [ -n "$url" ] && return 0
        kill -0 "$pid" 2>/dev/null || fail "server $name exited early: $(cat "$tmp/$name.err")"
        sleep 0.05
    done
    fail "server $name did not print its listening line within 10 s"
}
# json FILE EXPR: evaluates a Python expression over the parsed JSON `j`.
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
# post PATH BODY: POST JSON; body to $tmp/r, status to $tmp/s
post() { curl -s -o "$tmp/r" -w '%{http_code}' -H 'Content-Type: application/json' "${@:3}" \
         --data-binary "$2" "$url$1" >"$tmp/s"; }
status() { cat "$tmp/s"; }
expect_error() { # STATUS CODE_SUBSTRING PATH BODY [curl args]
    local want=$1 code=$2 path=$3 body=$4; shift 4
    post "$path" "$body" "$@"
    [ "$(status)" = "$want" ] || fail "$path $body: status $(status), want $want: $(cat "$tmp/r")"
    [ "$(json "$tmp/r" "sorted(j['error'].keys())")" = "['code', 'message', 'param', 'type']" ] \
        || fail "error shape: $(cat "$tmp/r")"
    json "$tmp/r" "j['error']['code']" | grep -q -- "$code" || fail "error code: $(cat "$tmp/r"), want $code"
}

start_server main --ctx 256 --max-body-bytes 4096
main_pid=$pid

# --- health, models, metrics ---
[ "$(curl -s -o "$tmp/r" -w '%{http_code}' "$url/health")" = 200 ] || fail "/health"
[ "$(json "$tmp/r" "j['status']")" = ok ] || fail "/health body: $(cat "$tmp/r")"
curl -s "$url/v1/models" >"$tmp/r"
[ "$(json "$tmp/r" "j['object'], j['data'][0]['id'], j['data'][0]['object']")" = "list stories260K model" ] \
    || fail "/v1/models: $(cat "$tmp/r")"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/models/stories260K")" = 200 ] || fail "/v1/models/ID"
curl -s "$url/metrics" >"$tmp/m0"
for m in weft_requests_running weft_requests_waiting weft_kv_cache_usage_ratio \
         weft_prompt_tokens_total weft_generation_tokens_total 'weft_requests_total{status="ok"}' \
         'weft_queue_time_seconds_bucket{le="+Inf"}' weft_time_to_first_token_seconds_count \
         weft_time_per_output_token_seconds_sum weft_e2e_latency_seconds_bucket; do
    grep -qF "$m" "$tmp/m0" || fail "/metrics lacks $m"
done
echo "ok: /health, /v1/models, /metrics"

# --- greedy completion equals weft run --temp 0 ---
"$weft" run -m "$gguf" --temp 0 -n 40 -p "Once upon a time" --no-echo 2>/dev/null | head -c -1 >"$tmp/greedy"
post /v1/completions '{"model":"x","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
[ "$(status)" = 200 ] || fail "completion status $(status): $(cat "$tmp/r")"
json "$tmp/r" "j['choices'][0]['text']" | head -c -1 >"$tmp/text"
cmp -s "$tmp/text" "$tmp/greedy" || fail "completion text '$(cat "$tmp/text")' != weft run '$(cat "$tmp/greedy")'"
[ "$(json "$tmp/r" "j['object'], j['choices'][0]['finish_reason'], j['usage']['prompt_tokens'], j['usage']['completion_tokens'], j['usage']['total_tokens']")" = "text_completion length 5 40 45" ] \
    || fail "completion fields: $(cat "$tmp/r")"
echo "ok: greedy completion equals weft run"

# --- chat (raw template for this model): same text ---
post /v1/chat/completions '{"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":40,"temperature":0}'
[ "$(status)" = 200 ] || fail "chat status $(status): $(cat "$tmp/r")"
json "$tmp/r" "j['choices'][0]['message']['content']" | head -c -1 >"$tmp/text"
cmp -s "$tmp/text" "$tmp/greedy" || fail "chat text differs: $(cat "$tmp/text")"
[ "$(json "$tmp/r" "j['object'], j['choices'][0]['message']['role'], j['choices'][0]['finish_reason']")" = "chat.completion assistant length" ] \
    || fail "chat fields: $(cat "$tmp/r")"
echo "ok: chat completion"

# --- streaming: SSE framing, [DONE], usage, text equal ---
check_stream() { # FILE FIELD: every event is 'data: ...' + blank line, last is [DONE]
    python3 - "$1" "$2" "$tmp/greedy" <<'PY' || fail "stream check failed for $1: $(head -c 600 "$1")"
import json, sys
raw = open(sys.argv[1]).read()
assert raw.endswith("data: [DONE]\n\n"), "no [DONE] at the end"
events = raw.split("\n\n")[:-1]
assert all(e.startswith("data: ") for e in events), "bad framing"
objs = [json.loads(e[6:]) for e in events[:-1]]
text, finish, usage = "", None, None
for o in objs:
    if o.get("usage"): usage = o["usage"]
    for c in o["choices"]:
        if sys.argv[2] == "chat":
            assert o["object"] == "chat.completion.chunk"
            text += c["delta"].get("content") or ""
        else:
            assert o["object"] == "text_completion"
            text += c["text"]
        finish = c["finish_reason"] or finish
want = open(sys.argv[3]).read()
assert text == want, "text %r != %r" % (text, want)
assert finish == "length", finish
assert usage and usage["completion_tokens"] == 40 and usage["prompt_tokens"] == 5, usage
assert objs[-1]["choices"] == [], "usage chunk should have no choices"
PY
}
curl -sN "$url/v1/completions" -d '{"prompt":"Once upon a time","max_tokens":40,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' \
    -D "$tmp/h" >"$tmp/sse"
grep -qi "content-type: text/event-stream" "$tmp/h" || fail "stream content type: $(cat "$tmp/h")"
check_stream "$tmp/sse" cmpl
curl -sN "$url/v1/chat/completions" -d '{"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":40,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' >"$tmp/sse"
check_stream "$tmp/sse" chat
curl -sN "$url/v1/completions" -d '{"prompt":"Once","max_tokens":3,"stream":true}' >"$tmp/sse"
grep -q '"usage"' "$tmp/sse" && fail "usage without include_usage"
tail -c 14 "$tmp/sse" | grep -q 'data: \[DONE\]' || fail "stream without [DONE]"
echo "ok: streaming (completions, chat, usage)"

# --- stop strings: text before the first occurrence, finish_reason stop ---
for stop in "park" "little girl"; do
    post /v1/completions "{\"prompt\":\"Once upon a time\",\"max_tokens\":40,\"temperature\":0,\"stop\":[\"zzz\",\"$stop\"]}"
    python3 - "$tmp/r" "$tmp/greedy" "$stop" <<'PY' || fail "stop '$stop': $(cat "$tmp/r")"
import json, sys
j = json.load(open(sys.argv[1])); want = open(sys.argv[2]).read(); s = sys.argv[3]
assert j["choices"][0]["text"] == want[:want.index(s)], j["choices"][0]["text"]
assert j["choices"][0]["finish_reason"] == "stop"
PY
done
post /v1/completions '{"prompt":"Once upon a time","max_tokens":40,"temperature":0,"stop":"park","stream":true}'
grep -q '"finish_reason":"stop"' "$tmp/r" || fail "streamed stop: $(cat "$tmp/r")"
grep -q 'park' "$tmp/r" && fail "streamed stop leaked the stop string"
echo "ok: stop strings and finish reasons"

# --- logprobs ---
post /v1/completions '{"prompt":"Once upon a time","max_tokens":5,"temperature":0,"logprobs":2}'
python3 - "$tmp/r" <<'PY' || fail "logprobs: $(cat "$tmp/r")"
import json, sys
lp = json.load(open(sys.argv[1]))["choices"][0]["logprobs"]
assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(lp["text_offset"]) == 5
assert all(x <= 0 for x in lp["token_logprobs"])
assert all(len(t) == 2 for t in lp["top_logprobs"])
# greedy: the chosen token is the most likely one
assert all(abs(max(t.values()) - x) < 1e-5 for t, x in zip(lp["top_logprobs"], lp["token_logprobs"]))
PY
post /v1/chat/completions '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":3,"logprobs":true,"top_logprobs":3}'
python3 - "$tmp/r" <<'PY' || fail "chat logprobs: $(cat "$tmp/r")"
import json, sys
c = json.load(open(sys.argv[1]))["choices"][0]["logprobs"]["content"]
assert len(c) >= 1 and all(set(e) >= {"token", "logprob", "bytes", "top_logprobs"} for e in c)
assert all(len(e["top_logprobs"]) == 3 for e in c)
PY
echo "ok: logprobs"

# --- errors ---
expect_error 404 not_found /v1/nothing '{}'
[ "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$url/v1/completions")" = 405 ] || fail "DELETE should be 405"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/chat/completions")" = 405 ] || fail "GET chat should be 405"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/health")" = 405 ] || fail "POST /health should be 405"
expect_error 400 invalid_json /v1/completions '{"prompt": "x",'
expect_error 400 invalid_json /v1/completions '[1,2]'
expect_error 400 invalid_json /v1/completions "$(printf '{"prompt":"\xff\xfe"}')"
expect_error 400 missing_field /v1/completions '{"max_tokens":3}'
expect_error 400 invalid_type /v1/completions '{"prompt":5}'
expect_error 400 invalid_type /v1/completions '{"prompt":"x","max_tokens":"3"}'
expect_error 400 invalid_type /v1/completions '{"prompt":"x","temperature":"hot"}'
expect_error 400 invalid_value /v1/completions '{"prompt":"x","temperature":3}'
expect_error 400 invalid_type /v1/completions '{"prompt":"x","stream":"yes"}'
expect_error 400 invalid_value /v1/completions '{"prompt":"x","max_tokens":0}'
expect_error 400 invalid_value /v1/completions '{"prompt":"x","max_tokens":-5}'
expect_error 400 context_length_exceeded /v1/completions '{"prompt":"x","max_tokens":100000}'
json "$tmp/r" "j['error']['message']" | grep -q "256" || fail "context message should name the context: $(cat "$tmp/r")"
expect_error 400 invalid_value /v1/completions '{"prompt":"x","n":2}'
expect_error 400 invalid_value /v1/completions '{"prompt":"x","logprobs":9}'
expect_error 400 invalid_type /v1/completions '{"prompt":"x","stop":[1]}'
expect_error 400 missing_field /v1/chat/completions '{"max_tokens":3}'
expect_error 400 invalid_value /v1/chat/completions '{"messages":[]}'
expect_error 400 invalid_value /v1/chat/completions '{"messages":[{"role":"wizard","content":"x"}]}'
expect_error 400 invalid_type /v1/chat/completions '{"messages":[{"role":"user","content":7}]}'
long=$(python3 -c "print(' '.join(['Once upon a time']*80))")
expect_error 400 context_length_exceeded /v1/completions "{\"prompt\":\"$long\"}"
big=$(python3 -c "print('{\"prompt\":\"' + 'a'*5000 + '\"}')")
expect_error 413 request_too_large /v1/completions "$big"
python3 -c "print('{\"prompt\":\"' + 'a'*5000 + '\"}', end='')" >"$tmp/big.json"
code=$(curl -s -o "$tmp/r" -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/big.json" "$url/v1/completions")
[ "$code" = 413 ] || fail "chunked body over the limit: $code"
post /v1/completions '{"prompt":"Once upon a time","max_tokens":2,"unknown_field":{"a":1},"user":"u"}'
[ "$(status)" = 200 ] || fail "unknown fields should be ignored: $(cat "$tmp/r")"
echo "ok: 404/405/400/413 in OpenAI's error shape"

# --- metrics moved ---
curl -s "$url/metrics" >"$tmp/m1"
python3 - "$tmp/m1" <<'PY' || fail "metrics did not move: $(grep -v '^#' "$tmp/m1" | head -20)"
import sys
m = {}
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip(): continue
    k, v = line.rsplit(" ", 1); m[k] = float(v)
assert m['weft_requests_total{status="ok"}'] >= 8, m
assert m['weft_requests_total{status="client_error"}'] >= 10
assert m["weft_generation_tokens_total"] >= 200 and m["weft_prompt_tokens_total"] >= 40
assert m["weft_e2e_latency_seconds_count"] >= 8 and m["weft_time_to_first_token_seconds_count"] >= 8
assert m['weft_queue_time_seconds_bucket{le="+Inf"}'] >= 1
PY
echo "ok: /metrics counters move"

# --- graceful SIGTERM: a stream in flight finishes, /health turns 503, exit 0 ---
curl -sN "$url/v1/completions" -d '{"prompt":"Once upon a time","max_tokens":250,"ignore_eos":true,"stream":true}' >"$tmp/inflight" &
cpid=$!
sleep 0.05
kill -TERM "$main_pid"
sleep 0.05
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/health")
wait "$cpid"
wait "$main_pid"; rc=$?
[ $rc -eq 0 ] || fail "SIGTERM: exit $rc, want 0"
tail -c 14 "$tmp/inflight" | grep -q 'data: \[DONE\]' || fail "the in-flight stream did not finish: $(tail -c 300 "$tmp/inflight")"
grep -q '"finish_reason":"length"' "$tmp/inflight" || fail "the in-flight stream lacks its finish"
if [ "$code" != 503 ] && [ "$code" != 000 ]; then fail "/health while draining: $code"; fi
echo "ok: SIGTERM drains the in-flight stream and exits 0 (health while draining: $code)"

# --- shutdown timeout: a stream still running is cancelled with an error event ---
start_server drain --shutdown-timeout-s 0 --threads 1
curl -sN "$url/v1/completions" -d '{"prompt":"Once upon a time","max_tokens":2000,"ignore_eos":true,"stream":true}' >"$tmp/cut" &
cpid=$!
sleep 0.3
kill -TERM "$pid"
wait "$cpid"
wait "$pid"; rc=$?
[ $rc -eq 0 ] || fail "SIGTERM with timeout 0: exit $rc"
grep -q '"code":"shutting_down"' "$tmp/cut" || fail "the cut stream lacks the error event: $(tail -c 300 "$tmp/cut")"
tail -c 14 "$tmp/cut" | grep -q 'data: \[DONE\]' || fail "the cut stream lacks [DONE]"
echo "ok: past --shutdown-timeout-s running streams end with an error event"

# --- auth (config file + env precedence) ---
printf '# test config\napi-key = filekey\nmax-queue = 4\n' >"$tmp/conf"
WEFT_API_KEY=envkey start_server auth --config "$tmp/conf"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/health")" = 200 ] || fail "/health must not need auth"
[ "$(curl -s -o "$tmp/r" -w '%{http_code}' "$url/v1/models")" = 401 ] || fail "no key should be 401"
[ "$(json "$tmp/r" "j['error']['code']")" = invalid_api_key ] || fail "401 shape: $(cat "$tmp/r")"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer filekey' "$url/v1/models")" = 401 ] \
    || fail "the env key should override the file's"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer envke' "$url/v1/models")" = 401 ] || fail "a prefix of the key passed"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer envkey' "$url/v1/models")" = 200 ] || fail "the right key failed"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer envkey' "$url/metrics")" = 200 ] || fail "metrics with key"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/metrics")" = 401 ] || fail "metrics without key"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer envkey' -d '{"prompt":"hi","max_tokens":2}' "$url/v1/completions")" = 200 ] \
    || fail "completion with key"
[ "$(curl -s -o /dev/null -w '%{http_code}' -d '{"prompt":"hi","max_tokens":2}' "$url/v1/completions")" = 401 ] || fail "completion without key"
kill -TERM "$pid"; wait "$pid" || fail "auth server exit"
echo "ok: auth"

# --- 429 and queue timeout: a cache holding one sequence, so later requests wait ---
start_server busy --ctx 2048 --kv-cache 2048 --max-queue 1 --queue-timeout-ms 300 --threads 1
long='{"prompt":"Once upon a time","max_tokens":2000,"ignore_eos":true}'
curl -s -o "$tmp/a" -w '%{http_code}' -d "$long" "$url/v1/completions" >"$tmp/a.code" &
apid=$!
sleep 0.2
curl -s -o "$tmp/b" -w '%{http_code}' -d "$long" "$url/v1/completions" >"$tmp/b.code" &
bpid=$!
sleep 0.1
curl -s -o "$tmp/c" -D "$tmp/c.h" -w '%{http_code}' -d "$long" "$url/v1/completions" >"$tmp/c.code"
wait "$apid" "$bpid"
[ "$(cat "$tmp/a.code")" = 200 ] || fail "the running request: $(cat "$tmp/a.code") $(cat "$tmp/a")"
[ "$(cat "$tmp/b.code")" = 503 ] || fail "the waiting request should time out (503): $(cat "$tmp/b.code") $(cat "$tmp/b")"
[ "$(json "$tmp/b" "j['error']['code']")" = queue_timeout ] || fail "queue timeout code: $(cat "$tmp/b")"
[ "$(cat "$tmp/c.code")" = 429 ] || fail "the third request should get 429: $(cat "$tmp/c.code") $(cat "$tmp/c")"
grep -qi "^retry-after:" "$tmp/c.h" || fail "429 without Retry-After"
curl -s "$url/metrics" | grep -q 'weft_requests_total{status="timeout"} 1' || fail "timeout not counted"
kill -TERM "$pid"; wait "$pid" || fail "busy server exit"
echo "ok: 429 with Retry-After, queue timeout 503"

# --- a client that disconnects mid-stream is cancelled (its cache freed) ---
start_server gone --threads 1
curl -sN -m 0.3 "$url/v1/completions" -d '{"prompt":"Once upon a time","max_tokens":2000,"ignore_eos":true,"stream":true}' >/dev/null
sleep 0.3
curl -s "$url/metrics" >"$tmp/m2"
grep -q 'weft_requests_total{status="cancelled"} 1' "$tmp/m2" || fail "disconnect not counted: $(grep requests_ "$tmp/m2")"
grep -q '^weft_requests_running 0' "$tmp/m2" || fail "the cancelled request still runs"
grep -q '^weft_kv_cache_usage_ratio 0.000000' "$tmp/m2" || fail "the cancelled request still holds cache"
kill -TERM "$pid"; wait "$pid" || fail "gone server exit"
echo "ok: disconnect cancels"
echo "PASS"
