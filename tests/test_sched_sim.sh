#!/usr/bin/env bash
# test_sched_sim.sh — end-to-end check of the virtual clock (docs/scheduling.md "Simulator"):
# `weft bench engine --virtual-clock PARAMS` on a tiny synthesized model gives bit-identical
# scheduling traces and per-request arrival / first-token / finish times twice in a row and with
# 1 or 2 kernel threads, labels its rows virtual, and `weft bench stepfit` fits its own trace
# back to the model it ran with; a bad params file, an unusable combination and an old-format
# trace are refused with precise messages. With ../shared: the same determinism on the
# scheduling benchmark's data set with the Llama-2 vocabulary (the simulator's real use).
# usage: tests/test_sched_sim.sh BUILD_DIR SHARED_DIR
set -u
build=$1
shared=${2:-}
weft="$build/weft"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export TMPDIR="$tmp"

expect() { # expect RC WANT_IN_STDERR ARGS...
    local want_rc=$1 want_msg=$2; shift 2
    "$weft" bench "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ $rc -eq "$want_rc" ] || fail "weft bench $*: exit $rc, want $want_rc ($(cat "$tmp/err"))"
    grep -qF -- "$want_msg" "$tmp/err" || fail "weft bench $*: stderr lacks '$want_msg': $(cat "$tmp/err")"
    echo "ok: weft bench $* -> exit $rc"
}

printf '# test model\nstepm 1\nconst 20\nseqs 2\ntokens 0.5\nkv 0.001\n' >"$tmp/m.params"
printf 'stepm 1\nconst 20\nspeed 3\n' >"$tmp/bad.params"
expect 2 "bad.params:3: unknown term 'speed'" engine --synth test-gqa --virtual-clock "$tmp/bad.params"
expect 2 "--virtual-clock: $tmp/none.params: No such file" engine --synth test-gqa --virtual-clock "$tmp/none.params"
expect 2 "dynamic mode waits on the clock" engine --synth test-gqa --virtual-clock "$tmp/m.params" --mode dynamic
printf 'run x fused paged fcfs\nstep 0.1 2 2 0 3.5\n' >"$tmp/old.trace"
expect 1 "old.trace:2: step line has 5 fields" stepfit --trace "$tmp/old.trace" --out "$tmp/o.params"
expect 2 "--trace and --out are required" stepfit --trace "$tmp/old.trace"

# run THREADS TAG [extra args]: a virtual run of 40 requests at an overload (queues form)
run() {
    local t=$1 tag=$2; shift 2
    "$weft" bench engine "$@" --virtual-clock "$tmp/m.params" --max-running 4 \
        --threads "$t" --policy fcfs,rtlm,oracle --priorities 3 --deadline-ms 2000 \
        --json "$tmp/$tag.json" --csv "$tmp/$tag.csv" --sched-trace "$tmp/$tag.trace" -q \
        >"$tmp/$tag.out" 2>"$tmp/$tag.err" || fail "virtual run $tag: $(cat "$tmp/$tag.err")"
}
# the per-request times of every run in a --json file, one line per request
times() {
    /usr/bin/python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["runs"]:
    for q in r["requests"]:
        print(r["label"], q["id"], repr(q["arrival_s"]), repr(q["first_token_s"]), repr(q["finish_s"]), q["n_generated"])
' "$1"
}
check_same() { # check_same A B: traces and per-request times identical
    cmp -s "$tmp/$1.trace" "$tmp/$2.trace" || fail "traces of $1 and $2 differ: $(diff "$tmp/$1.trace" "$tmp/$2.trace" | head -5)"
    times "$tmp/$1.json" >"$tmp/$1.times"
    times "$tmp/$2.json" >"$tmp/$2.times"
    cmp -s "$tmp/$1.times" "$tmp/$2.times" || fail "per-request times of $1 and $2 differ"
    echo "ok: $1 and $2 identical ($(grep -c '^step' "$tmp/$1.trace") steps)"
}

wl=(--synth test-gqa --vocab-from none -n 40 --rate 40 --prompt-len 24 --output-len-range 2:48 --seed 3)
run 1 a "${wl[@]}"
run 1 b "${wl[@]}"
run 2 c "${wl[@]}"
check_same a b
check_same a c
grep -q "VIRTUAL CLOCK (step model $tmp/m.params)" "$tmp/a.out" || fail "the table does not say the times are virtual"
[ "$(awk -F, 'NR > 1 { print $2 }' "$tmp/a.csv" | sort -u)" = fused-virtual ] || fail "CSV mode column is not fused-virtual"
[ "$(awk -F, 'NR > 1 && $12 == 40' "$tmp/a.csv" | wc -l)" -eq 3 ] || fail "not every request finished in every run"
grep -q '^step .* .* .* .* .* .* .* .*$' "$tmp/a.trace" || fail "step lines lack the 8-field format"

# the fitter recovers the model the virtual run used from the run's own step lines
"$weft" bench stepfit --trace "$tmp/a.trace" --terms const,seqs,tokens,kv --out "$tmp/fit.params" \
    --report "$tmp/fit.md" || fail "stepfit on a virtual trace"
awk '$1 == "const" { c = $2 } $1 == "seqs" { s = $2 } $1 == "tokens" { t = $2 } $1 == "kv" { k = $2 }
     END { ok = (c - 20)^2 < 1e-4 && (s - 2)^2 < 1e-6 && (t - 0.5)^2 < 1e-6 && (k - 0.001)^2 < 1e-10
           if (!ok) { print "fit", c, s, t, k > "/dev/stderr"; exit 1 } }' "$tmp/fit.params" ||
    fail "stepfit did not recover const 20, seqs 2, tokens 0.5, kv 0.001"
grep -q "median |error| per step" "$tmp/fit.md" || fail "the fit report lacks the error line"
echo "ok: stepfit recovers the virtual run's model"

vocab=$shared/models/tokenizers/tokenizer_llama2_32000.bin
pairs=$shared/data/pairs/alpaca_cleaned_1000.jsonl
if [ -z "$shared" ] || [ ! -r "$vocab" ] || [ ! -r "$pairs" ]; then
    echo "SKIP (loud): ../shared not found; the data-set part of the simulator test did not run"
    exit 77
fi
"$weft" model synth --preset test-gqa --layers 1 --ctx 1024 --vocab-from "$vocab" \
    --out "$tmp/sim.gguf" >/dev/null || fail "synth the simulator's model"
ds=(--model "$tmp/sim.gguf" -n 30 --rate 3 --prompts-from "$pairs" --lengths-from "$pairs"
    --max-prompt 128 --max-output 256 --seed 7 --aging-s 20)
run 1 d "${ds[@]}"
run 2 e "${ds[@]}"
check_same d e
echo "PASS"
