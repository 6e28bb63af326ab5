#!/usr/bin/env bash
# test_split_cli.sh — `weft serve --split-port` with `weft split-client` as separate processes:
# greedy text equal to `weft run --temp 0` for every split point 0..L, F32 and F16 hidden
# states; the API key is enforced; --split auto is refused without the server's profile and,
# with --split-profile, takes the planner's choice (a server whose layers cost far more than
# the client's, a generous SLA: the planner gives the client every layer it may run, L-1);
# argument errors. Skips (77) loudly without ../shared (stories260K.gguf).
# usage: tests/test_split_cli.sh BUILD_DIR SHARED_DIR
set -u
build=$1
shared=${2:-}
source "$(dirname "$0")/support/serve_lib.sh"
[ -x "$weft" ] || fail "$weft not built"
[ -f "$gguf" ] || skip "$gguf not found (pass the shared directory as the second argument)"
command -v curl >/dev/null || skip "curl is not installed"
prompt="Once upon a time"
n=40

split_port() { # NAME: the split port from the server's log
    local i sp=
    for i in $(seq 1 $((200 * slow))); do
        sp=$(grep -o 'split clients on [^ ]*' "$tmp/$1.err" | sed 's/.*://') || true
        [ -n "$sp" ] && { echo "$sp"; return 0; }
        sleep 0.05
    done
    return 1
}

"$weft" run --model "$gguf" --temp 0 -n $n -p "$prompt" -t 1 >"$tmp/ref.txt" 2>/dev/null || fail "weft run"
[ -s "$tmp/ref.txt" ] || fail "empty reference"

start_server a --split-port 0 --api-key K1 --threads 1
sp=$(split_port a) || fail "no split port line"
L=$("$weft" model inspect "$gguf" | grep -o 'block_count *[0-9]*' | grep -o '[0-9]*$' | head -1)
[ -n "$L" ] || fail "cannot read the layer count"
for h in f32 f16; do
    for p in $(seq 0 "$L"); do
        timeout $((30 * slow)) "$weft" split-client --server 127.0.0.1:"$sp" --model "$gguf" --split "$p" \
            --hidden $h --api-key K1 -n $n -p "$prompt" -t 1 --chunk 3 >"$tmp/out.txt" 2>"$tmp/client.err" \
            || fail "split-client p=$p $h: $(cat "$tmp/client.err")"
        cmp -s "$tmp/out.txt" "$tmp/ref.txt" || fail "split at $p ($h) differs from weft run: $(cat "$tmp/out.txt")"
        grep -q "split $p/$L" "$tmp/client.err" || fail "summary line: $(cat "$tmp/client.err")"
    done
done
echo "ok: every split point 0..$L gives weft run's greedy text (f32 and f16)"

# the API key
WEFT_API_KEY=wrong timeout 20 "$weft" split-client --server 127.0.0.1:"$sp" --model "$gguf" --split 2 -n 4 \
    >/dev/null 2>"$tmp/bad.err" && fail "a wrong key was accepted"
grep -q "invalid API key" "$tmp/bad.err" || fail "wrong key message: $(cat "$tmp/bad.err")"
WEFT_API_KEY=K1 timeout 20 "$weft" split-client --server 127.0.0.1:"$sp" --model "$gguf" --split 2 -n 4 \
    >/dev/null 2>"$tmp/env.err" || fail "key from WEFT_API_KEY: $(cat "$tmp/env.err")"
# auto without a server profile
timeout 20 "$weft" split-client --server 127.0.0.1:"$sp" --model "$gguf" --api-key K1 -n 4 \
    >/dev/null 2>"$tmp/auto.err" && fail "auto without --split-profile was accepted"
grep -q "split-profile" "$tmp/auto.err" || fail "auto message: $(cat "$tmp/auto.err")"
# argument errors
"$weft" split-client --model "$gguf" >/dev/null 2>&1; [ $? = 2 ] || fail "missing --server should exit 2"
"$weft" split-client --server nohost --model "$gguf" >/dev/null 2>&1; [ $? = 2 ] || fail "bad --server should exit 2"
"$weft" split-client --server 127.0.0.1:1 --model "$gguf" --split x >/dev/null 2>&1; [ $? = 2 ] || fail "bad --split should exit 2"
"$weft" split-client --server 127.0.0.1:1 --model "$gguf" --hidden f64 >/dev/null 2>&1; [ $? = 2 ] || fail "bad --hidden should exit 2"
"$weft" serve --model "$gguf" --split-port 0 --prefix-sharing --kv-layout paged --port 0 2>"$tmp/ps.err" &
psp=$!
pids+=("$psp")
wait $psp && fail "--split-port with --prefix-sharing should fail"
grep -q "prefix-sharing off" "$tmp/ps.err" || fail "prefix sharing message: $(cat "$tmp/ps.err")"

# auto with profiles: the server's layers are 100x the client's
cat >"$tmp/server.json" <<J
{"device": "test server", "model": "$gguf", "n_layers": $L, "dim": 64, "kv_dim": 64, "threads": 1,
 "prompt_tokens": 16, "decode_batch": 1, "k_lo": 1, "k_hi": $L,
 "cost": {"layer_prefill_s": 0.001, "layer_decode_s": 0.001, "head_prefill_s": 0.0001, "head_decode_s": 0.0001}}
J
cat >"$tmp/client.json" <<J
{"device": "test client", "model": "$gguf", "n_layers": $L, "dim": 64, "kv_dim": 64, "threads": 1,
 "prompt_tokens": 16, "decode_batch": 1, "k_lo": 1, "k_hi": $L,
 "cost": {"layer_prefill_s": 0.00001, "layer_decode_s": 0.00001, "head_prefill_s": 0.000001, "head_decode_s": 0.000001}}
J
start_server b --split-port 0 --split-profile "$tmp/server.json" --threads 1
sp=$(split_port b) || fail "no split port line (b)"
grep -q "planned from the profile" "$tmp/b.err" || fail "profile not loaded: $(cat "$tmp/b.err")"
timeout 30 "$weft" split-client --server 127.0.0.1:"$sp" --model "$gguf" --profile "$tmp/client.json" \
    --sla-ms 60000 --link-bw 1e9 --link-rtt-ms 0.1 -n $n -p "$prompt" -t 1 >"$tmp/auto.txt" 2>"$tmp/auto2.err" \
    || fail "auto split: $(cat "$tmp/auto2.err")"
cmp -s "$tmp/auto.txt" "$tmp/ref.txt" || fail "auto split text differs"
grep -q "split $((L - 1))/$L" "$tmp/auto2.err" || fail "auto should give the client $((L - 1)) layers: $(cat "$tmp/auto2.err")"
echo "ok: auth, auto planning, argument errors"
