#!/usr/bin/env bash
# predict_eval.sh — the length predictor's evaluations for README/docs (issue 5): the single
# held-out split, 5-fold cross-validation by prompt, and online (prequential) replay on each,
# written to bench/results/predict_eval*.txt with the command and its wall/CPU time.
# Run it through the quiet lock: bash bench/quiet.sh bash bench/predict_eval.sh
set -eu
cd "$(dirname "$0")/.."
data="../shared/data/pairs/*.jsonl ../shared/data/alpaca_eval"
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
run predict_eval.txt
run predict_eval_online.txt --online
run predict_eval_folds5.txt --folds 5
run predict_eval_folds5_online.txt --folds 5 --online
