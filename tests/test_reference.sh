#!/usr/bin/env bash
# Reference test: weft's logits (prefill of 20 tokens, then 32 single-token decode steps through
# a paged KV cache) must match an independent numpy implementation to 1e-4 relative error on a
# synthetic F32 model with several layers and grouped-query attention.
set -euo pipefail
build=$1
py=/usr/bin/python3
if ! $py -c 'import numpy' 2>/dev/null; then
  echo "FAIL: python3-numpy is missing (run scripts/setup.sh)"; exit 1
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# 52 deterministic pseudo-random token ids in [3, 512)
tokens=$($py -c 'import random; r=random.Random(5); print(" ".join(str(r.randrange(3,512)) for _ in range(52)))')
# F32 is the contract (1e-4). Half types compute in F32 from exactly converted weights, so the
# same bound holds. Q8_0/Q4_0 also quantize activations to 8-bit blocks (as llama.cpp does), which
# on this tiny random model costs ~4% of the largest logit, hence the looser bound.
# test-gqa has head size 8 (generic attention loops), test-hd64 head size 64 (SIMD attention).
for spec in test-gqa:f32:1e-4 test-gqa:f16:1e-4 test-gqa:bf16:1e-4 test-gqa:q8_0:1e-1 \
            test-gqa:q4_0:1e-1 test-hd64:f32:1e-4 test-hd64:q8_0:1e-1; do
  IFS=: read -r preset type tol <<<"$spec"
  echo "-- $preset $type (tolerance $tol)"
  "$build/weft" model synth --preset "$preset" --type "$type" --seed 7 --out "$dir/m.gguf" >/dev/null
  "$build/ref_logits" "$dir/m.gguf" 20 "$dir/logits.f32" $tokens
  $py "$(dirname "$0")/ref/llama_ref.py" --tol "$tol" "$dir/m.gguf" "$dir/logits.f32" $tokens
done
