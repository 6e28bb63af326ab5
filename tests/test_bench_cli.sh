#!/usr/bin/env bash
# test_bench_cli.sh — end-to-end check of `weft bench engine` on a tiny synthesized model
# (test-gqa): 8 requests of 16 output tokens through all four modes, then the CSV has the
# expected columns and one row per mode with every request finished, the JSON has every
# per-request record finished by length, the table reaches stdout; argument errors exit 2
# naming the option; a data-set workload runs when ../shared is present (skipped loudly if not).
# usage: tests/test_bench_cli.sh BUILD_DIR SHARED_DIR
set -u
build=$1
shared=${2:-}
weft="$build/weft"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export TMPDIR="$tmp"

# expect RC WANT_IN_STDERR ARGS...
expect() {
    local want_rc=$1 want_msg=$2; shift 2
    "$weft" bench "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ $rc -eq "$want_rc" ] || fail "weft bench $*: exit $rc, want $want_rc ($(cat "$tmp/err"))"
    grep -qF -- "$want_msg" "$tmp/err" || fail "weft bench $*: stderr lacks '$want_msg': $(cat "$tmp/err")"
    echo "ok: weft bench $* -> exit $rc"
}

# --- usage and argument errors ---
"$weft" bench engine --help >"$tmp/out" 2>&1 || fail "--help should exit 0"
grep -q "usage: weft bench engine" "$tmp/out" || fail "--help should print usage"
expect 2 "unknown target 'bogus'" bogus
expect 2 "give exactly one of --model and --synth" engine
expect 2 "give exactly one of --model and --synth" engine --model x.gguf --synth test-gqa
expect 2 "--mode expects a list" engine --synth test-gqa --mode fused,warp
expect 2 "--kv expects dense, paged" engine --synth test-gqa --kv sparse
expect 2 "--requests expects an integer" engine --synth test-gqa --requests 0
expect 2 "--rate expects a number" engine --synth test-gqa --rate -1
expect 2 "--rate and --gap-mean are exclusive" engine --synth test-gqa --rate 2 --gap-mean 1
expect 2 "--output-len-range expects A:B" engine --synth test-gqa --output-len-range 9:3
expect 2 "are exclusive" engine --synth test-gqa --output-len 4 --output-len-range 1:3
expect 2 "--prompt-len and --prompts-from are exclusive" engine --synth test-gqa --prompt-len 4 --prompts-from x.jsonl
expect 2 "--prefix-sharing needs --kv paged" engine --synth test-gqa --kv dense --prefix-sharing
expect 2 "--synth preset 'nope' unknown" engine --synth nope
expect 2 "--synth type 'q9' unknown" engine --synth test-gqa:q9
expect 2 "--threads expects an integer" engine --synth test-gqa --threads x
expect 2 "unknown option '--bogus'" engine --synth test-gqa --bogus
expect 2 "--csv needs a value" engine --synth test-gqa --csv
expect 1 "cannot open" engine --model "$tmp/missing.gguf"
expect 2 "--kv-type expects f16, f32 or q8_0, got 'q4'" engine --synth test-gqa --kv-type q4
# a q8_0 KV cache runs both layouts to the end
for kv in dense paged; do
    "$weft" bench engine --synth test-gqa --vocab-from none -n 4 --output-len 8 --prompt-len 6 \
        --kv $kv --kv-type q8_0 --mode fused --threads 1 --label q8kv >"$tmp/out" 2>"$tmp/err" ||
        fail "--kv-type q8_0 --kv $kv exited $?: $(cat "$tmp/err")"
    grep -q "^| q8kv | fused | $kv | 4/4 |" "$tmp/out" || fail "--kv-type q8_0 --kv $kv: $(cat "$tmp/out")"
    echo "ok: weft bench engine --kv-type q8_0 --kv $kv"
done
expect 1 "workload: " engine --synth test-gqa --vocab-from none --trace "$tmp/missing.csv"

# --- all four modes on one workload ---
"$weft" bench engine --synth test-gqa --vocab-from none -n 8 --output-len 16 --prompt-len 12 \
    --mode fused,sequential,static,dynamic --max-wait-ms 5 --gap-mean 0.002 --threads 1 \
    --label smoke --csv "$tmp/r.csv" --json "$tmp/r.json" >"$tmp/out" 2>"$tmp/err" ||
    fail "bench run exited $?: $(cat "$tmp/err")"
grep -q "^| smoke | fused | paged | 8/8 |" "$tmp/out" || fail "table lacks the fused row: $(cat "$tmp/out")"
[ -s "$tmp/r.csv" ] || fail "no CSV"
[ -s "$tmp/r.json" ] || fail "no JSON"
header=$(head -n 1 "$tmp/r.csv")
for col in label mode kv requests finished failed makespan_s out_tok_s req_s ttft_p50_ms ttft_p99_ms \
    tpot_mean_ms e2e_p50_s e2e_p99_s kv_live_frac tokens_prefilled prefix_hit_tokens slot_moves \
    t_forward_s; do
    echo ",$header," | grep -q ",$col," || fail "CSV header lacks '$col': $header"
done
[ "$(wc -l <"$tmp/r.csv")" -eq 5 ] || fail "CSV should have a header and 4 rows"
awk -F, -v h="$header" 'BEGIN { n = split(h, c, ","); for (i = 1; i <= n; i++) col[c[i]] = i }
    NR > 1 { if ($col["requests"] != 8 || $col["finished"] != 8 || $col["failed"] != 0 ||
                 $col["output_tokens"] != 128) { print "bad row: " $0; exit 1 }
             seen[$col["mode"]] = 1 }
    END { if (!seen["fused"] || !seen["sequential"] || !seen["static"] || !seen["dynamic"]) {
              print "missing a mode"; exit 1 } }' "$tmp/r.csv" || fail "CSV rows"
if command -v jq >/dev/null; then
    [ "$(jq '.runs | length' "$tmp/r.json")" -eq 4 ] || fail "JSON should hold 4 runs"
    [ "$(jq '[.runs[].requests[] | select(.finish == "length" and .n_generated == 16)] | length' \
        "$tmp/r.json")" -eq 32 ] || fail "JSON: every request should finish by length with 16 tokens"
    jq -e '.runs[0].summary.ttft_ms.p99 > 0 and .runs[0].engine.kv.capacity_tokens > 0' \
        "$tmp/r.json" >/dev/null || fail "JSON summary fields"
    echo "ok: JSON checked with jq"
else
    grep -q '"finish": "length"' "$tmp/r.json" || fail "JSON lacks finished requests"
fi
echo "ok: four modes, CSV and JSON"

# --- dense layout, appended CSV ---
"$weft" bench engine --synth test-gqa --vocab-from none -n 4 --output-len-range 2:6 --kv dense,paged \
    --csv-append "$tmp/r.csv" -q >/dev/null 2>"$tmp/err" || fail "dense run exited $?: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/r.csv")" -eq 7 ] || fail "--csv-append should add 2 rows without a header"
echo "ok: dense + paged appended"

# --- a real data set (prompts and lengths) with the shared tokenizer ---
pairs=$shared/data/pairs/alpaca_cleaned_1000.jsonl
if [ -r "$pairs" ]; then
    "$weft" bench engine --synth test-gqa --vocab-from none -n 6 --lengths-from "$pairs" \
        --prompts-from "$pairs" --max-output 8 --max-prompt 40 --system-prefix 16 \
        --prefix-sharing --block-tokens 8 --csv "$tmp/d.csv" -q >/dev/null 2>"$tmp/err" ||
        fail "data-set run exited $?: $(cat "$tmp/err")"
    awk -F, 'NR == 2 && $12 == 6 { ok = 1 } END { exit !ok }' "$tmp/d.csv" || fail "data-set run: $(cat "$tmp/d.csv")"
    echo "ok: data-set workload"
else
    echo "SKIP (loud): $pairs not found — ../shared is absent, data-set check skipped"
fi
echo "PASS"
