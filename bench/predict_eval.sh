#!/usr/bin/env bash
# predict_eval.sh — the length predictor's evaluations for README/docs (issue 5): the single
# held-out split, 5-fold cross-validation by prompt, and online (prequential) replay on each,
# written to bench/results/predict_eval*.txt with the command and its wall/CPU time.
# Run it through the quiet lock: bash bench/quiet.sh bash bench/predict_eval.sh
#   no argument: the shipped parameters (single split) and the default fit options (5-fold)
#   stack:       the per-kind stack candidate (docs/predict.md, round 3): first fits it on the
#                train prompts into bench/results/predict_params_stack.txt, then the same four
#                runs with that file (single split) and --stack-folds 5 (5-fold), written to
#                bench/results/predict_eval*_stack.txt
set -eu
cd "$(dirname "$0")/.."
data="../shared/data/pairs/*.jsonl ../shared/data/alpaca_eval"
mode=${1:-}
suffix="" split_opts=() fold_opts=()
if [ "$mode" = stack ]; then
    suffix=_stack
    params=bench/results/predict_params_stack.txt
    {
        echo "\$ time build/weft predict fit --data $data --stack-folds 5 --out $params"
        echo "# $(date -u +%FT%TZ), $(git rev-parse --short HEAD); this 2-core AMD EPYC Zen 5 VM (shared)"
        { time build/weft predict fit --data $data --stack-folds 5 --out $params; } 2>&1
    } >bench/results/predict_fit_stack.txt
    echo "wrote bench/results/predict_fit_stack.txt, $params"
    split_opts=(--params "$params")
    fold_opts=(--stack-folds 5)
elif [ -n "$mode" ]; then
    echo "usage: bash bench/predict_eval.sh [stack]" >&2
    exit 2
fi
run() { # OUT ARGS...
    local out=$1
    shift
    {
        echo "\$ time build/weft predict eval --data $data $*"
        echo "# $(date -u +%FT%TZ), $(git rev-parse --short HEAD); this 2-core AMD EPYC Zen 5 VM (shared)"
        { time build/weft predict eval --data $data "$@"; } 2>&1
    } >"bench/results/$out"
    echo "wrote bench/results/$out"
}
run predict_eval$suffix.txt ${split_opts[@]+"${split_opts[@]}"}
run predict_eval_online$suffix.txt ${split_opts[@]+"${split_opts[@]}"} --online
run predict_eval_folds5$suffix.txt --folds 5 ${fold_opts[@]+"${fold_opts[@]}"}
run predict_eval_folds5_online$suffix.txt --folds 5 ${fold_opts[@]+"${fold_opts[@]}"} --online
