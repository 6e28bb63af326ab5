#!/usr/bin/env bash
# test_predict_cli.sh — end-to-end check of `weft predict`: features of a prompt (and its kind for the
# per-kind stack), misuse exits 2,
# bad parameter and data files exit 1 with their message, then fit + eval on a subset of
# ../shared/data (held out by prompt) with the pooled Spearman above a floor and the fitted model
# ahead of both baselines pooled. Exits 77 (skip, loudly) when ../shared is absent.
# usage: tests/test_predict_cli.sh BUILD_DIR SHARED_DIR
set -u
build=$1
shared=${2:-}
weft="$build/weft"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# The floor for the pooled Spearman rho of this subset (the full data reaches more; README).
RHO_FLOOR=0.5

out=$("$weft" predict features --prompt "Explain in detail, step by step, how tides work.") \
    || fail "features exited $?"
echo "$out" | grep -qE "^  open_explain +0\.6931" || fail "open_explain missing: $out"
echo "$out" | grep -qE "^  step_by_step +0\.6931" || fail "step_by_step missing: $out"
echo "$out" | grep -q "predicted output tokens: p50 [0-9]* *p90 [0-9]*" || fail "no prediction: $out"

"$weft" predict >/dev/null 2>&1; [ $? -eq 2 ] || fail "no subcommand should exit 2"
"$weft" predict bogus >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown subcommand should exit 2"
"$weft" predict fit --out "$tmp/x" >/dev/null 2>&1; [ $? -eq 2 ] || fail "fit without --data should exit 2"
"$weft" predict eval --data >/dev/null 2>&1; [ $? -eq 2 ] || fail "--data without files should exit 2"
"$weft" predict features >/dev/null 2>&1; [ $? -eq 2 ] || fail "features without --prompt should exit 2"

printf 'weft-predict-params 1\nfeatures 3\n' >"$tmp/bad.params"
msg=$("$weft" predict features --prompt hi --params "$tmp/bad.params" 2>&1)
[ $? -eq 1 ] || fail "bad params should exit 1"
echo "$msg" | grep -q "bad.params:2: file has 3 features" || fail "bad params message: $msg"

# the per-kind stack: kinds and whether the parameters have a stack; a bad --stack-folds is misuse
out=$("$weft" predict features --prompt "$(printf 'def f(x):\n    """Return x twice."""\n')") \
    || fail "features (completion) exited $?"
echo "$out" | grep -q "^prompt kind: completion (per-kind stack: none in these parameters)$" \
    || fail "kind line of the default parameters: $out"
src=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$src/bench/results/predict_params_stack.txt" ]; then
    out=$("$weft" predict features --prompt "Tell me about Paris." \
        --params "$src/bench/results/predict_params_stack.txt") || fail "features (stack) exited $?"
    echo "$out" | grep -q "^prompt kind: chat (per-kind stack: yes)$" || fail "stack kind line: $out"
fi
"$weft" predict fit --data x --out y --stack-folds 1 >/dev/null 2>&1; [ $? -eq 2 ] \
    || fail "--stack-folds 1 should exit 2"
printf 'weft-predict-params 1\nstack chat 0 1\n' >"$tmp/bad2.params"
msg=$("$weft" predict features --prompt hi --params "$tmp/bad2.params" 2>&1)
[ $? -eq 1 ] || fail "bad stack line should exit 1"
echo "$msg" | grep -q "bad2.params:2: 'stack' takes a kind" || fail "bad stack message: $msg"

if [ -z "$shared" ] || [ ! -d "$shared/data/pairs" ] || [ ! -f "$shared/models/tokenizers/tokenizer_llama2_32000.bin" ]; then
    echo "SKIP (loud): $shared/data or the Llama-2 tokenizer is absent — fit/eval not tested"
    exit 77
fi
tok="$shared/models/tokenizers/tokenizer_llama2_32000.bin"
printf '{"prompt": "a", "response": "b"}\n{"prompt": 3}\n' >"$tmp/bad.jsonl"
msg=$("$weft" predict eval --tokenizer "$tok" --data "$tmp/bad.jsonl" 2>&1)
[ $? -eq 1 ] || fail "bad data should exit 1"
echo "$msg" | grep -q "bad.jsonl:2: needs string fields 'prompt' and 'response'" || fail "bad data message: $msg"

P="$shared/data/pairs"
data="$P/alpaca_cleaned_1000.jsonl $P/gsm8k_test.jsonl $P/code_alpaca_2k.jsonl $P/GPTeacher_roleplay-instruct.jsonl $P/hh_rlhf_harmless_test_turn1.jsonl $shared/data/alpaca_eval"
"$weft" predict fit --tokenizer "$tok" --data $data --out "$tmp/p.params" || fail "fit exited $?"
head -1 "$tmp/p.params" | grep -q "^weft-predict-params 1$" || fail "fit wrote no parameter file"
ev=$("$weft" predict eval --tokenizer "$tok" --data $data --params "$tmp/p.params") || fail "eval exited $?"
echo "$ev"
pooled=$(echo "$ev" | grep "^pooled ")
[ -n "$pooled" ] || fail "no pooled row"
# columns: name n | model rho tau mae cov | const rho tau mae cov | plen rho tau mae cov | beats
read -r rho tau mae cov crho cmae prho pmae <<<"$(echo "$pooled" | awk -F'|' '{
    split($2, m, " "); split($3, c, " "); split($4, p, " ");
    print m[1], m[2], m[3], m[4], c[1], c[3], p[1], p[3] }')"
echo "pooled: rho $rho tau $tau mae $mae cov90 $cov (const mae $cmae; plen rho $prho mae $pmae)"
awk -v r="$rho" -v f="$RHO_FLOOR" 'BEGIN { exit !(r >= f) }' || fail "pooled Spearman $rho below the floor $RHO_FLOOR"
awk -v r="$rho" -v p="$prho" 'BEGIN { exit !(r > p) }' || fail "pooled rho $rho not above prompt length's $prho"
awk -v m="$mae" -v c="$cmae" -v p="$pmae" 'BEGIN { exit !(m < c && m < p) }' || fail "pooled MAE $mae not below the baselines"
awk -v c="$cov" 'BEGIN { exit !(c > 0.8 && c < 0.97) }' || fail "pooled p90 coverage $cov far from 0.9"
echo "$ev" | grep -q "^alpaca_eval/median " || fail "no per-prompt median view of alpaca_eval"

# cross-validation and online replay (small sets: a few seconds)
"$weft" predict eval --data "$P/humaneval.jsonl" --folds 1 >/dev/null 2>&1; [ $? -eq 2 ] || fail "--folds 1 should exit 2"
"$weft" predict eval --data "$P/humaneval.jsonl" --folds 3 --params "$tmp/p.params" >/dev/null 2>&1; [ $? -eq 2 ] || fail "--folds with --params should exit 2"
small="$P/gsm8k_test.jsonl $P/humaneval.jsonl $P/code_alpaca_2k.jsonl"
cv=$("$weft" predict eval --tokenizer "$tok" --data $small --folds 3 --trees 50) || fail "eval --folds exited $?"
echo "$cv" | grep -q "^protocol: 3-fold cross-validation" || fail "no cross-validation protocol line"
# every prompt is scored once: humaneval has 164 prompts, one answer each
echo "$cv" | grep -qE "^humaneval +164 " || fail "cross-validation did not score all 164 humaneval prompts: $cv"
echo "$cv" | grep -qE "^gsm8k_test +1319 " || fail "cross-validation did not score all 1319 gsm8k_test prompts"
read -r cvrho <<<"$(echo "$cv" | grep "^pooled " | head -1 | awk -F'|' '{ split($2, m, " "); print m[1] }')"
awk -v r="$cvrho" 'BEGIN { exit !(r >= 0.4) }' || fail "cross-validated pooled rho $cvrho below 0.4"
on=$("$weft" predict eval --tokenizer "$tok" --data $small --online) || fail "eval --online exited $?"
echo "$on" | grep -q "^online (prequential)" || fail "no online protocol line"
on2=$("$weft" predict eval --tokenizer "$tok" --data $small --online --seed 1)
[ "$(echo "$on" | grep -v '^time:')" = "$(echo "$on2" | grep -v '^time:')" ] || fail "--online is not deterministic for a seed"
echo "PASS"
