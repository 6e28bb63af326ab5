#!/usr/bin/env bash
# test_bench_serve.sh — end-to-end check of `weft bench serve`: starts `weft serve` on a tiny
# synthesized model (test-gqa) on a free loopback port, runs 8 streamed requests and checks the
# CSV has the expected columns with every request finished and none failed, the JSON's
# per-request records are all 200 / length with TTFT <= e2e and the asked-for token count;
# --no-stream works; bad options exit 2 naming the option; a closed loopback port gives
# network failures and exit 1 quickly instead of hanging.
# usage: tests/test_bench_serve.sh BUILD_DIR [SHARED_DIR]
set -u
build=$1
weft="$build/weft"
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    [ -f "$tmp/srv.err" ] && { echo "--- server"; tail -5 "$tmp/srv.err"; }
    exit 1
}
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }

# expect RC WANT_IN_STDERR ARGS...
expect() {
    local want_rc=$1 want_msg=$2; shift 2
    timeout 20 "$weft" bench serve "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ $rc -eq "$want_rc" ] || fail "weft bench serve $*: exit $rc, want $want_rc ($(cat "$tmp/err"))"
    grep -qF -- "$want_msg" "$tmp/err" || fail "weft bench serve $*: stderr lacks '$want_msg': $(cat "$tmp/err")"
    echo "ok: weft bench serve $* -> exit $rc"
}

# --- options ---
"$weft" bench serve --help >"$tmp/out" 2>&1 || fail "--help should exit 0"
grep -q "usage: weft bench serve" "$tmp/out" || fail "--help should print usage"
expect 2 "--url is required" -n 2
expect 2 "--url expects http://" --url ftp://x
expect 2 "unknown option '--bogus'" --url http://127.0.0.1:1 --bogus
expect 2 "--max-concurrency expects an integer" --url http://127.0.0.1:1 --max-concurrency 0
expect 2 "--timeout expects a number" --url http://127.0.0.1:1 --timeout -3
expect 2 "--rate and --gap-mean are exclusive" --url http://127.0.0.1:1 --rate 2 --gap-mean 1
expect 2 "--output-len-range expects A:B" --url http://127.0.0.1:1 --output-len-range 5:2
expect 2 "--csv needs a value" --url http://127.0.0.1:1 --csv

# --- a closed port: a free port number, bound and released, so nothing listens there ---
closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
start=$(date +%s)
expect 1 "first failure" --url "http://127.0.0.1:$closed" -n 4 --output-len 4 --timeout 5 \
    --csv "$tmp/closed.csv"
[ $(( $(date +%s) - start )) -le 10 ] || fail "an unreachable server took more than 10 s"
python3 - "$tmp/closed.csv" <<'PY' || fail "closed-port CSV: $(cat "$tmp/closed.csv")"
import csv, sys
row = list(csv.DictReader(open(sys.argv[1])))[0]
assert row["finished"] == "0" and row["failed"] == "4" and row["net_errors"] == "4", row
PY
echo "ok: closed port -> 4 network errors"

# --- a real server ---
"$weft" model synth --preset test-gqa --out "$tmp/m.gguf" >/dev/null 2>"$tmp/synth.err" ||
    fail "synth failed: $(cat "$tmp/synth.err")"
"$weft" serve --model "$tmp/m.gguf" --port 0 --threads 1 2>"$tmp/srv.err" &
pids+=($!)
url=
for _ in $(seq 1 400); do
    url=$(grep -o 'listening on http://[^ ]*' "$tmp/srv.err" | head -1 | sed 's/listening on //')
    [ -n "$url" ] && break
    kill -0 "${pids[0]}" 2>/dev/null || fail "server exited early"
    sleep 0.05
done
[ -n "$url" ] || fail "server did not print its listening line within 20 s"
for _ in $(seq 1 400); do
    curl -fs "$url/health" >/dev/null 2>&1 && break
    sleep 0.05
done

timeout 60 "$weft" bench serve --url "$url" --model m -n 8 --output-len 12 --prompt-len 10 --rate 50 \
    --label smoke --csv "$tmp/r.csv" --json "$tmp/r.json" --timeout 30 >"$tmp/out" 2>"$tmp/err" ||
    fail "bench serve exited $?: $(cat "$tmp/err")"
grep -q "^| smoke | http-stream | - | 8/8 |" "$tmp/out" || fail "table lacks the run: $(cat "$tmp/out")"
header=$(head -n 1 "$tmp/r.csv")
for col in label mode requests finished failed makespan_s out_tok_s req_s ttft_p50_ms ttft_p99_ms \
    tpot_mean_ms tpot_p50_ms tpot_p99_ms e2e_mean_s e2e_p50_s e2e_p99_s wall_s http_errors \
    net_errors short_outputs; do
    echo ",$header," | grep -q ",$col," || fail "CSV header lacks $col: $header"
done
python3 - "$tmp/r.csv" "$tmp/r.json" <<'PY' || fail "bad results: $(cat "$tmp/r.csv")"
import csv, json, sys
row = list(csv.DictReader(open(sys.argv[1])))
assert len(row) == 1, row
row = row[0]
assert row["finished"] == "8" and row["failed"] == "0", row
assert row["http_errors"] == "0" and row["net_errors"] == "0" and row["short_outputs"] == "0", row
assert float(row["ttft_p50_ms"]) / 1e3 <= float(row["e2e_p50_s"]) + 1e-9, row
assert int(row["output_tokens"]) == 8 * 12, row
run = json.load(open(sys.argv[2]))["runs"][0]
assert run["summary"]["finished"] == 8, run["summary"]
for q in run["requests"]:
    assert q["http_status"] == 200 and q["finish"] == "length", q
    assert q["n_generated"] == 12 == q["n_expected"], q
    assert 0 <= q["arrival_s"] <= q["first_token_s"] <= q["finish_s"], q
    assert q["n_prompt"] >= 2, q
PY
echo "ok: 8 streamed requests, CSV and JSON"

timeout 60 "$weft" bench serve --url "$url/v1/" -n 3 --output-len 5 --no-stream --csv "$tmp/w.csv" \
    -q >"$tmp/out" 2>"$tmp/err" || fail "--no-stream exited $?: $(cat "$tmp/err")"
python3 - "$tmp/w.csv" <<'PY' || fail "bad --no-stream results: $(cat "$tmp/w.csv")"
import csv, sys
row = list(csv.DictReader(open(sys.argv[1])))[0]
assert row["mode"] == "http-whole" and row["finished"] == "3" and row["output_tokens"] == "15", row
PY
echo "ok: --no-stream"

# --nominal-max-tokens: max_tokens is the cap (--max-output), each length is forced with the
# bench-only bench_output_tokens: every request still gets exactly its workload length
timeout 60 "$weft" bench serve --url "$url" -n 4 --output-len-range 3:9 --max-output 20 \
    --nominal-max-tokens --json "$tmp/n.json" -q >"$tmp/out" 2>"$tmp/err" ||
    fail "--nominal-max-tokens exited $?: $(cat "$tmp/err")"
python3 - "$tmp/n.json" <<'PY' || fail "bad --nominal-max-tokens results"
import json, sys
run = json.load(open(sys.argv[1]))["runs"][0]
assert run["summary"]["finished"] == 4, run["summary"]
for q in run["requests"]:
    assert q["http_status"] == 200, q
    assert 3 <= q["n_expected"] <= 9 and q["n_generated"] == q["n_expected"], q
PY
echo "ok: --nominal-max-tokens"

# an HTTP error is counted as such: a prompt + max_tokens beyond the context is a 400
timeout 60 "$weft" bench serve --url "$url" -n 2 --output-len 100000 --csv "$tmp/e.csv" -q \
    >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] || fail "over-long requests should exit 1"
grep -q "HTTP 400" "$tmp/err" || fail "first failure should name HTTP 400: $(cat "$tmp/err")"
python3 - "$tmp/e.csv" <<'PY' || fail "bad error counts: $(cat "$tmp/e.csv")"
import csv, sys
row = list(csv.DictReader(open(sys.argv[1])))[0]
assert row["http_errors"] == "2" and row["failed"] == "2", row
PY
echo "ok: HTTP errors counted"
echo "PASS"
